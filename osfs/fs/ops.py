"""The pyfuse3 adapter: each handler converts arguments, asks the core, converts the answer.

Rules:
1. Handlers stay a few lines; behaviour lives in ``osfs.core`` (inode table, names, posix
   attributes) and ``osfs.fs`` (reader, watcher, files, namespace). Every handler runs under
   :func:`osfs.fs.errno_map.fuse_errors`: only ``FUSEError`` escapes, an unexpected exception
   is logged with its traceback and answered EIO, and the mount stays up.
2. Lookup counts follow pyfuse3's documentation: one ``remember`` per successful ``lookup`` and
   per ``readdir_reply`` that returned True; ``forget`` subtracts.
3. Changes go through ``osfs.fs.files`` (bytes: spool, upload at flush) and
   ``osfs.fs.namespace`` (entries and attributes). A read-only mount or a sealed bucket answers
   EROFS to every change, never a silent no-op.
4. Extended attributes: ``user.nats.*`` are computed from the object (read-only, EPERM to set);
   ``user.<key>`` is metadata key ``<key>`` (the ``osfs.`` keys are the mount's own: EPERM);
   other namespaces (``security.``, ``trusted.``, ACLs) ENOTSUP.
5. An open file pins the object's version (its nuid). The page cache is kept across opens
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
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyfuse3
import trio

from osfs.core import errors
from osfs.core.inodes import Inode, Kind, Node
from osfs.core.meta import ObjectInfo
from osfs.core.posix import PosixAttrs
from osfs.fs.attributes import entry_attributes
from osfs.fs.errno_map import fuse_errors
from osfs.fs.files import OpenFile
from osfs.fs.namespace import Namespace
from osfs.fs.reader import ChunkReader, ReadHandle

log = logging.getLogger(__name__)

#: Extended attributes every object exposes (read-only), and how each is computed.
XATTR_PREFIX = "user.nats."
#: The xattr namespace of user metadata (rule 4).
USER_PREFIX = "user."
#: Metadata keys the mount keeps itself (``osfs.core.posix``): not settable as xattrs.
RESERVED_METADATA_PREFIX = "osfs."
#: rename(2) flags (linux/fs.h).
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
#: ``statfs`` caches the bucket's status this long (seconds): ``df`` in a loop stays cheap.
STATFS_TTL = 2.0
#: Reported as the size of a bucket without ``max_bytes``: 1 PiB, "plenty".
UNLIMITED_BYTES = 1 << 50
_FRAGMENT = 4096


class OsfsOperations(pyfuse3.Operations):
    """The mounted bucket, as pyfuse3 sees it.

    Args:
        reader: the chunk reader shared by every open file.
        namespace: the tree-changing operations; its inode table (kept current by the
            watcher), bucket, defaults and open files are the adapter's too.
        read_only: answer EROFS to every change.
    """

    #: The kernel gathers writes in its page cache and sends them in large batches, several in
    #: flight, instead of one synchronous request per 128 KiB ``write(2)`` piece; it flushes them
    #: before every ``flush``/``fsync``, so close still reports the upload.
    enable_writeback_cache = True

    def __init__(
        self,
        reader: ChunkReader,
        namespace: Namespace,
        *,
        read_only: bool = False,
    ) -> None:
        super().__init__()
        self.reader = reader
        self.namespace = namespace
        self.table = namespace.table
        self.store = namespace.store
        self.defaults = namespace.defaults
        self.files = namespace.files
        self.read_only = read_only
        self.sealed = False
        self._handles: dict[int, _Handle] = {}
        # The version whose pages the kernel may hold per inode: the page cache is kept at open
        # only when it holds the version being opened (rule 5).
        self._page_version: dict[Inode, str] = {}
        self._next_handle = itertools.count(1)
        self._statfs: tuple[float, pyfuse3.StatvfsData] | None = None
        #: Set once the kernel has FUSE's INIT reply (see :meth:`init`).
        self.initialized = trio.Event()

    def init(self) -> None:
        """pyfuse3 calls this while it handles FUSE's INIT, just before libfuse writes the reply.

        Why: the kernel applies the reply's limits (the readahead among them) within that write,
        and a task woken by :attr:`initialized` runs only after it, since this call and the
        write share one step of pyfuse3's session loop.
        """
        self.initialized.set()

    # Helpers --------------------------------------------------------------------------------

    def _node(self, ino: int) -> Node:
        return self.namespace.node(ino)

    def _attrs(self, node: Node) -> pyfuse3.EntryAttributes:
        target = (
            self.table.readlink(node.ino) if node.kind is Kind.SYMLINK and node.attached else ""
        )
        return entry_attributes(
            node,
            self.defaults,
            started_ns=self.namespace.started_ns,
            link_target=target,
            local=self.namespace.local_attrs(node),
        )

    def _writable(self) -> None:
        """EROFS on a read-only mount or a sealed bucket (rule 3)."""
        if self.read_only or self.sealed or self.files.sealed:
            raise pyfuse3.FUSEError(errno.EROFS)

    def _entry(self, node: Node) -> pyfuse3.EntryAttributes:
        """The attributes of a node the kernel is about to hold: counts a lookup (rule 2)."""
        attrs = self._attrs(node)
        self.table.remember(node.ino)
        return attrs

    def stored(self, file: OpenFile, info: ObjectInfo) -> None:
        """An upload or metadata change stored ``info``: show it (``Files``' callback)."""
        self.namespace.watcher.apply_local([info])
        if file.ino and file.spool is not None:
            # The kernel's pages hold what was written: they are this version's bytes.
            self._page_version[Inode(file.ino)] = info.nuid

    # Names ----------------------------------------------------------------------------------

    @fuse_errors
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        """Find ``name`` in a directory; counts a lookup."""
        node = self._lookup(parent_inode, name)
        return self._entry(node)

    def _lookup(self, parent_inode: int, name: bytes) -> Node:
        parent = self._node(parent_inode)
        if name == b".":
            return parent
        if name == b"..":
            return self._node(parent.parent or parent_inode)
        try:
            found = self.table.lookup(parent.ino, name.decode("utf-8"))
        except (UnicodeDecodeError, KeyError, NotADirectoryError):
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

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        """Directory changes are stored when they happen: nothing to do."""

    @fuse_errors
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        """A directory, stored at once as its marker object."""
        self._writable()
        directory, part = self.namespace.new_name(parent_inode, name)
        node = await self.namespace.make_dir(directory, part, mode, ctx.uid, ctx.gid)
        return self._entry(node)

    @fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        """Remove an empty directory (its marker object)."""
        self._writable()
        await self.namespace.remove_dir(parent_inode, name)

    # Links ----------------------------------------------------------------------------------

    @fuse_errors
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        """A symlink; ``readlink`` gives back exactly ``target``."""
        self._writable()
        directory, part = self.namespace.new_name(parent_inode, name)
        node = await self.namespace.make_symlink(directory, part, target, ctx.uid, ctx.gid)
        return self._entry(node)

    @fuse_errors
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        """Hard links: an object has one name, so EPERM (as on FAT, and as git expects)."""
        self._writable()
        raise pyfuse3.FUSEError(errno.EPERM)

    @fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        """Remove a file or symlink; open handles keep reading it."""
        self._writable()
        await self.namespace.remove_file(parent_inode, name)

    @fuse_errors
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        """Move an entry (no data copied); RENAME_EXCHANGE is not supported (EINVAL)."""
        self._writable()
        if flags & RENAME_EXCHANGE:
            raise pyfuse3.FUSEError(errno.EINVAL)
        await self.namespace.rename(
            parent_inode_old,
            name_old,
            parent_inode_new,
            name_new,
            no_replace=bool(flags & RENAME_NOREPLACE),
        )

    # Files ----------------------------------------------------------------------------------

    @fuse_errors
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        """An empty regular file, stored at once; other kinds EPERM."""
        self._writable()
        directory, part = self.namespace.new_name(parent_inode, name)
        node = await self.namespace.make_node(directory, part, mode, ctx.uid, ctx.gid)
        return self._entry(node)

    @fuse_errors
    async def create(
        self,
        parent_inode: int,
        name: bytes,
        mode: int,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        """A new file, open; it is stored when closed."""
        self._writable()
        directory, part = self.namespace.new_name(parent_inode, name)
        node, file = self.namespace.create_file(directory, part, mode, ctx.uid, ctx.gid)
        fh = self._new_handle(node.ino, file, None, writing=True)
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh)), self._entry(node)

    def _new_handle(
        self, ino: Inode, file: OpenFile, reading: ReadHandle | None, *, writing: bool
    ) -> int:
        fh = next(self._next_handle)
        self._handles[fh] = _Handle(ino, file, reading, writing)
        return fh

    @fuse_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        """Open a file: pin the current version; keep the page cache when it is current."""
        writing = flags & os.O_ACCMODE != os.O_RDONLY or bool(flags & os.O_TRUNC)
        if writing:
            self._writable()
        node = self._node(inode)
        if node.kind is Kind.DIR:
            raise pyfuse3.FUSEError(errno.EISDIR)
        info = node.info
        if info is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        existing = self.files.get(node.ino)
        spooled = existing is not None and existing.spool is not None
        reading = None
        if not spooled and not flags & os.O_TRUNC:
            reading = await self.reader.open(info)
        file = self.files.open(node.ino, info, self.namespace.posix_of(node))
        fh = self._new_handle(node.ino, file, reading, writing=writing)
        try:
            if flags & os.O_TRUNC:
                await self.files.truncate(file, 0)
        except BaseException:
            await self.release(fh)
            raise
        if spooled:
            keep = True  # every change went through the kernel's pages
        else:
            keep = self._page_version.get(node.ino, info.nuid) == info.nuid
            self._page_version[node.ino] = info.nuid
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(fh), keep_cache=keep)

    @fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        """Bytes of the file: its spool when it has one, else the pinned version.

        A handle of a replaced version fills the page cache with old bytes, and a corrupt
        version must not stay readable from it: both drop the inode's pages afterwards.
        """
        handle = self._handles[fh]
        spooled = self.files.read(handle.file, off, size)
        if spooled is not None:
            return spooled
        reading = handle.reading
        if reading is None:
            base = handle.file.base
            if base is None:
                return b""
            reading = handle.reading = await self.reader.open(base)
        ino = handle.ino
        try:
            data = await reading.read(off, size)
        except errors.DigestMismatchError:
            self._drop_pages_soon(ino)
            raise
        try:
            current = self.table.node(ino).info
        except KeyError:
            current = None
        if current is not None and current.nuid != reading.info.nuid:
            self._page_version[ino] = reading.info.nuid
            self._drop_pages_soon(ino)
        return data

    def _drop_pages_soon(self, ino: Inode) -> None:
        """Invalidate an inode's cached data after this request, not inside it.

        The kernel holds the page being read until we reply, so the invalidation runs in a
        system task and a worker thread.
        """
        trio.lowlevel.spawn_system_task(_drop_pages, ino)

    @fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        """Into the file's spool; stored at flush."""
        self._writable()
        return await self.files.write(self._handles[fh].file, off, buf)

    @fuse_errors
    async def flush(self, fh: int) -> None:
        """Every ``close`` of a handle opened for writing: store the file if it changed; the
        upload's error is close's. Closing a handle opened for reading stores nothing: a reader
        must not wait for, nor fail with, an upload of bytes someone else wrote (their close
        reported it; the retry task and unmount take care of what is still dirty)."""
        handle = self._handles[fh]
        if handle.writing:
            await self.files.flush(handle.file)

    @fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        """Store the file if it changed."""
        await self.files.flush(self._handles[fh].file)

    async def release(self, fh: int) -> None:
        """The last close of a handle: a clean file lets go of its spool."""
        handle = self._handles.pop(fh, None)
        if handle is not None:
            self.files.release(handle.file)

    @fuse_errors
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        """Truncate, chmod, chown, utimens: stored in the object's metadata (its data only
        for a truncate)."""
        self._writable()
        node = self._node(inode)
        if fields.update_size:
            await self._truncate(node, attr.st_size, None if fh is None else self._handles.get(fh))
        if fields.update_mode or fields.update_uid or fields.update_gid or fields.update_mtime:
            current = self.namespace.posix_of(node)
            changed = PosixAttrs(
                mode=(
                    stat.S_IFMT(current.mode) | stat.S_IMODE(attr.st_mode)
                    if fields.update_mode
                    else current.mode
                ),
                uid=attr.st_uid if fields.update_uid else current.uid,
                gid=attr.st_gid if fields.update_gid else current.gid,
                mtime_ns=attr.st_mtime_ns if fields.update_mtime else current.mtime_ns,
            )
            if changed != current:
                await self.namespace.set_attrs(node, changed)
        return self._attrs(self._node(inode))

    async def _truncate(self, node: Node, size: int, handle: _Handle | None) -> None:
        if node.kind is Kind.DIR:
            raise pyfuse3.FUSEError(errno.EISDIR)
        if node.kind is not Kind.FILE or node.info is None:
            raise pyfuse3.FUSEError(errno.EINVAL)
        if handle is not None:
            await self.files.truncate(handle.file, size)
            return
        # truncate(2) by path: no close will follow, so the file is stored now unless
        # a descriptor open for writing is open on it (its close stores it).
        file = self.files.open(node.ino, node.info, self.namespace.posix_of(node))
        try:
            await self.files.truncate(file, size)
            if not any(h.writing and h.file is file for h in self._handles.values()):
                await self.files.flush(file)
        finally:
            self.files.release(file)

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
        """``user.nats.*`` (what the store says) and ``user.<key>`` for each metadata key."""
        node = self._node(inode)
        info = node.info or node.marker_info
        names = []
        if info is not None:
            names = [(XATTR_PREFIX + k).encode() for k in XATTRS if _xattr(info, k) is not None]
        for key in self.namespace.metadata_of(node):
            if not key.startswith(RESERVED_METADATA_PREFIX):
                names.append((USER_PREFIX + key).encode("utf-8", "surrogateescape"))
        return names

    @fuse_errors
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        """``user.nats.*``: digest, nuid, description, headers, metadata, ...; ``user.<key>``:
        that metadata value."""
        node = self._node(inode)
        if name.startswith(XATTR_PREFIX.encode()):
            info = node.info or node.marker_info
            key = name.decode("utf-8", "replace").removeprefix(XATTR_PREFIX)
            value = None if info is None else _xattr(info, key)
        else:
            key = _user_key(name)
            found = self.namespace.metadata_of(node).get(key)
            value = None if found is None else found.encode("utf-8")
        if value is None:
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        return value

    @fuse_errors
    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        """``user.<key>`` is stored as metadata key ``<key>`` (UTF-8 values only)."""
        self._writable()
        key = _user_key(name)
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise pyfuse3.FUSEError(errno.EINVAL) from None
        await self.namespace.set_metadata(self._node(inode), lambda old: {**old, key: text})

    @fuse_errors
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        """Remove metadata key ``<key>`` of ``user.<key>``."""
        self._writable()
        key = _user_key(name)
        node = self._node(inode)
        if key not in self.namespace.metadata_of(node):
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        await self.namespace.set_metadata(
            node, lambda old: {k: v for k, v in old.items() if k != key}
        )


@dataclass(slots=True)
class _Handle:
    """One open file descriptor: its inode, the inode's write state, the pinned reader, and
    whether it was opened for writing (only those store the file at ``flush``)."""

    ino: Inode
    file: OpenFile
    reading: ReadHandle | None
    writing: bool


def _user_key(name: bytes) -> str:
    """The metadata key of a ``user.*`` xattr; other namespaces are not supported, ours are
    read-only."""
    if not name.startswith(USER_PREFIX.encode()):
        raise pyfuse3.FUSEError(errno.ENOTSUP)
    if name.startswith(XATTR_PREFIX.encode()):
        raise pyfuse3.FUSEError(errno.EPERM)
    try:
        key = name[len(USER_PREFIX) :].decode("utf-8")
    except UnicodeDecodeError:
        raise pyfuse3.FUSEError(errno.EINVAL) from None
    if not key or key.startswith(RESERVED_METADATA_PREFIX):
        raise pyfuse3.FUSEError(errno.EPERM)
    return key


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
