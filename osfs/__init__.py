"""osfs: a NATS JetStream Object Store as plain files.

The package is layered (see README "Architecture"): ``osfs.core`` is pure, ``osfs.store`` is the
asyncio client on nats-py, ``osfs.cli`` is the command line. Import the client API from
``osfs.store``.
"""

__version__ = "0.1.0"
