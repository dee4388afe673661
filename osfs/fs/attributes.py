"""``stat`` attributes for inode-table nodes: one place that turns a node into what FUSE shows.

Rules:
1. Type and permissions come from ``osfs.core.posix`` (stored keys, else the mount's defaults);
   size from the object; mtime from ``osfs.mtime`` or the server's timestamp; ctime is the
   server's timestamp of the current document.
2. A size no file can have (a document may claim up to 2**64 - 1 bytes, as nats.go reads it;
   ``st_size`` is a signed 64-bit ``off_t``) is shown as the largest one, :data:`MAX_FILE_SIZE`:
   one lying document must not make its whole directory unlistable. Reading it fails anyway.
3. Timeouts are a safety net only: the watcher invalidates the kernel's caches on every change,
   so a missed invalidation is stale for at most :data:`CACHE_TIMEOUT` seconds.
"""

from __future__ import annotations

import stat

import pyfuse3

from osfs.core.inodes import Kind, Node
from osfs.core.posix import MountDefaults, PosixAttrs, attrs_of, implicit_dir_attrs

#: Seconds the kernel may trust an entry or attributes without asking again.
CACHE_TIMEOUT = 1.0
#: ``st_blksize``: programs such as ``cp`` and ``cat`` size their buffers by it. 1 MiB is
#: FUSE's largest request: a ``cp`` of 1 GiB into the mount makes 1,024 writes instead of
#: 8,192 at 128 KiB, and ran about 15% faster (docs/benchmarks.md).
BLOCK_SIZE = 1024 * 1024
#: The largest ``st_size`` FUSE can carry (``off_t`` is a signed 64-bit integer).
MAX_FILE_SIZE = 2**63 - 1


def entry_attributes(
    node: Node,
    defaults: MountDefaults,
    *,
    started_ns: int,
    link_target: str = "",
    local: tuple[PosixAttrs, int] | None = None,
) -> pyfuse3.EntryAttributes:
    """The attributes of ``node``.

    Args:
        node: a node of the inode table.
        defaults: the mount's mode, uid and gid for objects that carry none.
        started_ns: the time shown for implicit directories (the mount's start).
        link_target: a symlink's target (its length is the symlink's size, as POSIX has it).
        local: attributes and size of a file written through the mount, not (all) stored yet:
            they win over the stored object's.
    """
    posix = _posix_of(node, defaults, started_ns) if local is None else local[0]
    entry = pyfuse3.EntryAttributes()
    entry.st_ino = pyfuse3.InodeT(node.ino)
    entry.generation = 0
    entry.entry_timeout = CACHE_TIMEOUT
    entry.attr_timeout = CACHE_TIMEOUT
    entry.st_mode = pyfuse3.ModeT(posix.mode)
    entry.st_nlink = node.nlink
    entry.st_uid = posix.uid
    entry.st_gid = posix.gid
    entry.st_rdev = 0
    if node.kind is Kind.SYMLINK:
        size = len(link_target.encode())
    else:
        size = _size_of(node) if local is None else local[1]
    size = min(size, MAX_FILE_SIZE)  # rule 2
    entry.st_size = size
    entry.st_blksize = BLOCK_SIZE
    entry.st_blocks = (size + 511) // 512
    entry.st_mtime_ns = posix.mtime_ns
    entry.st_atime_ns = posix.mtime_ns
    info = node.info or node.marker_info
    entry.st_ctime_ns = info.mtime_ns if info is not None else started_ns
    return entry


def _posix_of(node: Node, defaults: MountDefaults, started_ns: int) -> PosixAttrs:
    if node.kind is Kind.DIR:
        if node.marker_info is not None:
            attrs = attrs_of(node.marker_info, defaults)
            return PosixAttrs(
                mode=stat.S_IFDIR | stat.S_IMODE(attrs.mode),
                uid=attrs.uid,
                gid=attrs.gid,
                mtime_ns=attrs.mtime_ns,
            )
        return implicit_dir_attrs(defaults, mtime_ns=started_ns)
    assert node.info is not None
    return attrs_of(node.info, defaults)


def _size_of(node: Node) -> int:
    if node.kind is Kind.DIR or node.info is None:
        return 0
    return node.info.size
