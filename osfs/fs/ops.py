"""The pyfuse3 adapter: each handler converts arguments, asks the core, converts the answer.

Rules:
1. Handlers stay a few lines; behaviour lives in ``osfs.core`` (inode table, names, posix
   attributes) and ``osfs.fs`` (reader, watcher). Every handler runs under
   :func:`osfs.fs.errno_map.fuse_errors`: only ``FUSEError`` escapes, an unexpected exception
   is logged with its traceback and answered EIO, and the mount stays up.
2. Lookup counts follow pyfuse3's documentation: one ``remember`` per successful ``lookup`` and
   per ``readdir_reply`` that returned True; ``forget`` subtracts.
3. This issue's mount is read-only: every change answers EROFS (never a silent no-op).
4. An open file pins the object's version (its nuid). The page cache is kept across opens
   (``keep_cache``) while it holds the version being opened: the watcher invalidates an inode's
   data when its version changes, and a read through a handle of an older (or corrupt) version
   drops the pages it brought in again.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import pyfuse3
import trio

from osfs.core import errors
from osfs.core.inodes import Inode, InodeTable, Kind, Node
from osfs.core.meta import ObjectInfo
from osfs.core.posix import MountDefaults
from osfs.core.store_api import Store
from osfs.fs.attributes import entry_attributes
from osfs.fs.errno_map import fuse_errors
from osfs.fs.reader import ChunkReader, ReadHandle

log = logging.getLogger(__name__)

#: Extended attributes every object exposes (read-only), and how each is computed.
XATTR_PREFIX = "user.nats."
#: ``statfs`` caches the bucket's status this long (seconds): ``df`` in a loop stays cheap.
STATFS_TTL = 2.0
#: Reported as the size of a bucket without ``max_bytes``: 1 PiB, "plenty".
UNLIMITED_BYTES = 1 << 50
_FRAGMENT = 4096


class OsfsOperations(pyfuse3.Operations):
    """The mounted bucket, as pyfuse3 sees it.

    Args:
        table: the inode table (kept current by the watcher).
        reader: the chunk reader shared by every open file.
        store: the bucket (for ``statfs``).
        defaults: mode, uid and gid for objects that carry none.
        read_only: answer EROFS to every change (always true until writes land).
    """

    def __init__(
        self,
        table: InodeTable,
        reader: ChunkReader,
        store: Store,
        defaults: MountDefaults,
        *,
        read_only: bool = True,
    ) -> None:
        super().__init__()
        self.table = table
        self.reader = reader
        self.store = store
        self.defaults = defaults
        self.read_only = read_only
        self.sealed = False
        self.started_ns = time.time_ns()
        self._handles: dict[int, tuple[Inode, ReadHandle]] = {}
        # The version whose pages the kernel may hold per inode: the page cache is kept at open
        # only when it holds the version being opened (rule 4).
        self._page_version: dict[Inode, str] = {}
        self._next_handle = itertools.count(1)
        self._statfs: tuple[float, pyfuse3.StatvfsData] | None = None

    # Helpers --------------------------------------------------------------------------------

    def _node(self, ino: int) -> Node:
        try:
            return self.table.node(Inode(ino))
        except KeyError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None

    def _attrs(self, node: Node) -> pyfuse3.EntryAttributes:
        target = (
            self.table.readlink(node.ino) if node.kind is Kind.SYMLINK and node.attached else ""
        )
        return entry_attributes(node, self.defaults, started_ns=self.started_ns, link_target=target)

    # Names ----------------------------------------------------------------------------------

    @fuse_errors
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        """Find ``name`` in a directory; counts a lookup."""
        node = self._lookup(parent_inode, name)
        attrs = self._attrs(node)
        self.table.remember(node.ino)
        return attrs

    def _lookup(self, parent_inode: int, name: bytes) -> Node:
        parent = self._node(parent_inode)
        if name == b".":
            return parent
        if name == b"..":
            return self._node(parent.parent or parent_inode)
        try:
            found = self.table.lookup(parent.ino, name.decode("utf-8"))
        except (UnicodeDecodeError, KeyError):
            found = None
        if found is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return found

    @fuse_errors
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        """The attributes of an inode."""
        return self._attrs(self._node(inode))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        """Drop kernel references (must not raise, so errors are only logged)."""
        for ino, count in inode_list:
            try:
                self.table.forget(Inode(ino), count)
            except KeyError:
                log.debug("forget of unknown inode %d", ino)

    @fuse_errors
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        """A symlink's target."""
        node = self._node(inode)
        if node.kind is not Kind.SYMLINK:
            raise pyfuse3.FUSEError(errno.EINVAL)
        return self.table.readlink(node.ino).encode("utf-8")

    # Directories ----------------------------------------------------------------------------

    @fuse_errors
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        """Directories need no state: the handle is the inode."""
        if self._node(inode).kind is not Kind.DIR:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return inode

    @fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        """List entries after ``start_id`` (stable offsets: the table's entry ids)."""
        for next_id, name, node in self.table.readdir(Inode(fh), start_id):
            if not pyfuse3.readdir_reply(token, name.encode("utf-8"), self._attrs(node), next_id):
                return
            self.table.remember(node.ino)

    async def releasedir(self, fh: int) -> None:
        """Nothing to release."""

    # Files ----------------------------------------------------------------------------------

    @fuse_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        """Open for reading: pin the current version; keep the page cache (rule 4)."""
        if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
            raise pyfuse3.FUSEError(errno.EROFS)
        node = self._node(inode)
        if node.kind is Kind.DIR:
            raise pyfuse3.FUSEError(errno.EISDIR)
        if node.info is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        handle = await self.reader.open(node.info)
        fh = next(self._next_handle)
        self._handles[fh] = (node.ino, handle)
        nuid = node.info.nuid
        keep = self._page_version.get(node.ino, nuid) == nuid
        self._page_version[node.ino] = nuid
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh), keep_cache=keep)

    @fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        """Bytes of the pinned version.

        A handle of a replaced version fills the page cache with old bytes, and a corrupt
        version must not stay readable from it: both drop the inode's pages afterwards.
        """
        ino, handle = self._handles[fh]
        try:
            data = await handle.read(off, size)
        except errors.DigestMismatchError:
            self._drop_pages_soon(ino)
            raise
        try:
            current = self.table.node(ino).info
        except KeyError:
            current = None
        if current is not None and current.nuid != handle.info.nuid:
            self._page_version[ino] = handle.info.nuid
            self._drop_pages_soon(ino)
        return data

    def _drop_pages_soon(self, ino: Inode) -> None:
        """Invalidate an inode's cached data after this request, not inside it.

        The kernel holds the page being read until we reply, so the invalidation runs in a
        system task and a worker thread.
        """
        trio.lowlevel.spawn_system_task(_drop_pages, ino)

    async def release(self, fh: int) -> None:
        """Forget the handle."""
        self._handles.pop(fh, None)

    # The filesystem -------------------------------------------------------------------------

    @fuse_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        """``df``: the bucket's used bytes against its ``max_bytes`` (1 PiB when unlimited)."""
        now = time.monotonic()
        if self._statfs is not None and now - self._statfs[0] < STATFS_TTL:
            return self._statfs[1]
        status = await self.store.status()
        self.sealed = status.sealed
        total = status.max_bytes if status.max_bytes > 0 else max(UNLIMITED_BYTES, status.size)
        data = pyfuse3.StatvfsData()
        data.f_bsize = 128 * 1024
        data.f_frsize = _FRAGMENT
        data.f_blocks = total // _FRAGMENT
        data.f_bfree = max(total - status.size, 0) // _FRAGMENT
        data.f_bavail = 0 if (self.read_only or status.sealed) else data.f_bfree
        data.f_files = self.table.entries() + 1
        data.f_ffree = 1 << 32
        data.f_namemax = 255
        self._statfs = (now, data)
        return data

    # Extended attributes --------------------------------------------------------------------

    @fuse_errors
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> Sequence[bytes]:
        """The ``user.nats.*`` attributes an object has."""
        node = self._node(inode)
        info = node.info or node.marker_info
        if info is None:
            return []
        return [(XATTR_PREFIX + key).encode() for key in XATTRS if _xattr(info, key) is not None]

    @fuse_errors
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        """One ``user.nats.*`` attribute: digest, nuid, description, headers, metadata, ..."""
        node = self._node(inode)
        info = node.info or node.marker_info
        key = name.decode("utf-8", "replace").removeprefix(XATTR_PREFIX)
        value = (
            None
            if info is None or not name.startswith(XATTR_PREFIX.encode())
            else (_xattr(info, key))
        )
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return value

    # Changes: refused until the write path lands (rule 3) ------------------------------------

    async def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise pyfuse3.FUSEError(errno.EROFS)

    setattr = mknod = mkdir = unlink = rmdir = symlink = rename = link = _refuse
    create = write = setxattr = removexattr = _refuse


async def _drop_pages(ino: Inode) -> None:
    try:
        await trio.to_thread.run_sync(pyfuse3.invalidate_inode, pyfuse3.InodeT(ino), False)
    except OSError as exc:
        log.debug("could not drop the pages of inode %d: %s", ino, exc)


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True).encode()


#: ``user.nats.<key>`` -> its value for an object, or None when the object has none.
_XATTR_VALUES: dict[str, Callable[[ObjectInfo], bytes | None]] = {
    "digest": lambda info: info.digest.encode() or None,
    "nuid": lambda info: info.nuid.encode() or None,
    "description": lambda info: info.description.encode() or None,
    "headers": lambda info: (
        _json({k: list(v) for k, v in info.headers.items()}) if info.headers else None
    ),
    "metadata": lambda info: _json(dict(info.metadata)) if info.metadata else None,
    "bucket": lambda info: info.bucket.encode(),
    "revision": lambda info: str(info.revision).encode(),
}
XATTRS = tuple(_XATTR_VALUES)


def _xattr(info: ObjectInfo, key: str) -> bytes | None:
    """The value of ``user.nats.<key>`` for an object, or None if it has none."""
    value = _XATTR_VALUES.get(key)
    return None if value is None else value(info)
