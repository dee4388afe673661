"""The filesystem (trio): chunk reader, spool files, watcher, locks and the thin pyfuse3 adapter.

Sees a bucket only through ``osfs.core.store_api.Store``; never imports ``osfs.store`` or
``osfs.bridge`` (DESIGN §1).
"""
