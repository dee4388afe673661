"""Changes to the tree through the mount: make, remove and rename entries, store attributes.

Each operation changes the bucket first, then the inode table from what the store returned
(``Watcher.apply_local``), so the mount shows the change at once and every other client sees it
as an ordinary object change (DESIGN §3, §5).

Rules:
1. Files are made *pending* (``osfs.fs.files`` rule 5) and stored at their first ``close``;
   directories, symlinks and ``mknod`` files are stored at once (an empty object each: a marker
   ``a/b/``, an object with ``osfs.symlink``, an empty file).
2. Rename of a file or symlink moves its meta document (``Store.rename``: no data copied); onto
   an existing file it replaces it atomically for other readers, and handles open on the
   replaced file keep reading its bytes (as in rule 3). A dirty or pending file is stored
   first, under its old name; the files moved and the file replaced are held still until the
   rename is done (``osfs.fs.files`` rule 7). Rename of a directory renames every object below
   it one by one: not atomic (a failure midway leaves some objects under each name, both
   visible, and answers EIO). The table moves the entries in place, so inode numbers survive
   (the kernel keeps its dentries across rename).
3. Removing a file deletes its object (a pending file just goes); handles open on it keep
   reading its bytes (``Files.remove``). Removing a directory deletes its marker; a
   directory with entries is ENOTEMPTY.
4. Mode, owner and mtime are stored in the object's metadata (``osfs.core.posix``): for a
   directory in its marker (made if it has none); for the root, which has no object, they are
   kept for the life of the mount only.
5. POSIX's answers for what the store cannot do: ``link`` EPERM (no hard links); ``mknod`` of
   anything but a regular file EPERM; a symlink target that is not UTF-8 EINVAL (metadata are
   JSON strings).
"""

from __future__ import annotations

import errno
import logging
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

import pyfuse3

from osfs.core.inodes import ROOT, Inode, InodeTable, Kind, Node
from osfs.core.meta import ObjectInfo, ObjectMeta
from osfs.core.names import component_from_fuse, object_name
from osfs.core.posix import (
    MountDefaults,
    PosixAttrs,
    attrs_of,
    implicit_dir_attrs,
    metadata_with,
)
from osfs.core.store_api import Store
from osfs.fs.files import Files, OpenFile
from osfs.fs.watcher import Watcher

log = logging.getLogger(__name__)

#: The longest name component FUSE passes (Linux NAME_MAX).
NAME_MAX = 255

MetadataChange = Callable[[Mapping[str, str]], Mapping[str, str]]


def fuse_error(number: int) -> pyfuse3.FUSEError:
    """A FUSE error to raise."""
    return pyfuse3.FUSEError(number)


class Namespace:
    """The tree-changing operations of a mounted bucket (see the module rules)."""

    def __init__(
        self,
        table: InodeTable,
        store: Store,
        watcher: Watcher,
        files: Files,
        defaults: MountDefaults,
        *,
        started_ns: int,
    ) -> None:
        self.table = table
        self.store = store
        self.watcher = watcher
        self.files = files
        self.defaults = defaults
        self.started_ns = started_ns
        self.root_attrs: PosixAttrs | None = None

    # Looking things up ----------------------------------------------------------------------

    def node(self, ino: int) -> Node:
        """The node of an inode the kernel knows (ENOENT once freed)."""
        try:
            return self.table.node(Inode(ino))
        except KeyError:
            raise fuse_error(errno.ENOENT) from None

    def directory(self, ino: int) -> Node:
        """A directory still in the tree (ENOENT once removed, ENOTDIR for others)."""
        node = self.node(ino)
        if node.kind is not Kind.DIR:
            raise fuse_error(errno.ENOTDIR)
        if not node.attached:
            raise fuse_error(errno.ENOENT)
        return node

    def child(self, parent: int, raw: bytes) -> Node:
        """The existing entry ``raw`` of directory ``parent`` (ENOENT if none)."""
        try:
            found = self.table.lookup(self.directory(parent).ino, raw.decode("utf-8"))
        except UnicodeDecodeError:
            found = None
        if found is None:
            raise fuse_error(errno.ENOENT)
        return found

    def new_name(self, parent: int, raw: bytes) -> tuple[Node, str]:
        """Directory and component for a new entry: ENAMETOOLONG, EINVAL, EEXIST as due."""
        directory = self.directory(parent)
        if len(raw) > NAME_MAX:
            raise fuse_error(errno.ENAMETOOLONG)
        part = component_from_fuse(raw)  # InvalidObjectNameError: EINVAL
        if self.table.lookup(directory.ino, part) is not None:
            raise fuse_error(errno.EEXIST)
        return directory, part

    def object_name(self, directory: Node, part: str, *, is_dir: bool = False) -> str:
        """The object name of entry ``part`` in ``directory``."""
        return object_name((*self.table.parts_of(directory.ino), part), is_dir=is_dir)

    def posix_of(self, node: Node) -> PosixAttrs:
        """Mode, owner and mtime as the mount shows them now."""
        file = self.files.get(node.ino)
        if file is not None and (file.spool is not None or file.dirty or file.pending):
            return file.attrs
        if node.kind is Kind.DIR:
            if node.ino == ROOT and self.root_attrs is not None:
                return self.root_attrs
            if node.marker_info is not None:
                attrs = attrs_of(node.marker_info, self.defaults)
                return replace(attrs, mode=stat.S_IFDIR | stat.S_IMODE(attrs.mode))
            return implicit_dir_attrs(self.defaults, mtime_ns=self.started_ns)
        assert node.info is not None
        return attrs_of(node.info, self.defaults)

    def local_attrs(self, node: Node) -> tuple[PosixAttrs, int] | None:
        """Attributes and size that win over the stored object's (a file being written)."""
        file = self.files.get(node.ino)
        if file is not None and (file.spool is not None or file.dirty or file.pending):
            return file.attrs, file.size
        if node.ino == ROOT and self.root_attrs is not None:
            return self.root_attrs, 0
        return None

    def _applied(self, info: ObjectInfo, directory: Node, part: str) -> Node:
        self.watcher.apply_local([info])
        node = self.table.lookup(directory.ino, part)
        if node is None:  # the table hid it: cannot happen for a name new_name accepted
            raise fuse_error(errno.EIO)
        return node

    # Making entries (rule 1) ----------------------------------------------------------------

    def create_file(
        self, directory: Node, part: str, mode: int, uid: int, gid: int
    ) -> tuple[Node, OpenFile]:
        """A new pending file with one open handle."""
        name = self.object_name(directory, part)
        attrs = PosixAttrs(stat.S_IFREG | stat.S_IMODE(mode), uid, gid, time.time_ns())
        pending = ObjectInfo(
            name=name,
            bucket=self.store.bucket,
            metadata=metadata_with(attrs, {}),
            mtime_ns=attrs.mtime_ns,
        )
        node = self._applied(pending, directory, part)
        return node, self.files.create(node.ino, name, attrs)

    async def make_dir(self, directory: Node, part: str, mode: int, uid: int, gid: int) -> Node:
        """A directory, stored as its marker object."""
        attrs = PosixAttrs(stat.S_IFDIR | stat.S_IMODE(mode), uid, gid, time.time_ns())
        meta = ObjectMeta(
            name=self.object_name(directory, part, is_dir=True), metadata=metadata_with(attrs, {})
        )
        return self._applied(await self.store.put_data(meta, b""), directory, part)

    async def make_symlink(
        self, directory: Node, part: str, raw_target: bytes, uid: int, gid: int
    ) -> Node:
        """A symlink, stored as an empty object whose ``osfs.symlink`` is the exact target."""
        try:
            target = raw_target.decode("utf-8")
        except UnicodeDecodeError:
            raise fuse_error(errno.EINVAL) from None
        if not target:
            raise fuse_error(errno.ENOENT)
        attrs = PosixAttrs(stat.S_IFLNK | 0o777, uid, gid, time.time_ns())
        meta = ObjectMeta(
            name=self.object_name(directory, part),
            metadata=metadata_with(attrs, {}, symlink=target),
        )
        return self._applied(await self.store.put_data(meta, b""), directory, part)

    async def make_node(self, directory: Node, part: str, mode: int, uid: int, gid: int) -> Node:
        """``mknod``: an empty regular file, stored at once; other types EPERM (rule 5)."""
        if not stat.S_ISREG(mode):
            raise fuse_error(errno.EPERM)
        attrs = PosixAttrs(stat.S_IFREG | stat.S_IMODE(mode), uid, gid, time.time_ns())
        meta = ObjectMeta(name=self.object_name(directory, part), metadata=metadata_with(attrs, {}))
        return self._applied(await self.store.put_data(meta, b""), directory, part)

    # Removing entries (rule 3) --------------------------------------------------------------

    async def remove_file(self, parent: int, raw: bytes) -> None:
        """``unlink``."""
        node = self.child(parent, raw)
        if node.kind is Kind.DIR:
            raise fuse_error(errno.EISDIR)

        async def remove_name() -> None:
            info = node.info  # read under the file's lock: an upload may have just stored it
            assert info is not None
            if info.revision == 0 and not info.nuid:  # pending: only this mount knows it
                self.watcher.apply_local([replace(info, deleted=True)])
            else:
                self.watcher.apply_local([await self.store.delete(info.name)])

        file = self.files.get(node.ino)
        if file is None:
            await remove_name()
        else:
            await self.files.remove(file, remove_name)

    async def remove_dir(self, parent: int, raw: bytes) -> None:
        """``rmdir``."""
        node = self.child(parent, raw)
        if node.kind is not Kind.DIR:
            raise fuse_error(errno.ENOTDIR)
        if next(iter(self.table.readdir(node.ino, 0)), None) is not None:
            raise fuse_error(errno.ENOTEMPTY)
        if node.marker_info is None:
            raise fuse_error(errno.ENOTEMPTY)  # only its hidden objects keep it
        self.watcher.apply_local([await self.store.delete(node.marker_info.name)])

    # Renaming (rule 2) ----------------------------------------------------------------------

    async def rename(
        self, old_parent: int, old: bytes, new_parent: int, new: bytes, *, no_replace: bool
    ) -> None:
        """``rename``; RENAME_EXCHANGE is refused by the adapter."""
        # Dirty files are stored first, while the watcher runs (an upload may take long)...
        source = self.child(old_parent, old)
        prefix = self.table.path_of(source.ino) + "/"
        dirty = self.files.under(prefix) if source.kind is Kind.DIR else []
        for file in [self.files.get(source.ino), *dirty]:
            if file is not None:
                await self.files.flush(file)
        # ...then the table is held still from the store's rename to the table's move.
        async with self.watcher.held:
            source = self.child(old_parent, old)
            directory = self.directory(new_parent)
            if len(new) > NAME_MAX:
                raise fuse_error(errno.ENAMETOOLONG)
            part = component_from_fuse(new)
            target = self.table.lookup(directory.ino, part)
            if target is source:
                return
            if target is not None and no_replace:
                raise fuse_error(errno.EEXIST)
            if source.kind is Kind.DIR:
                await self._rename_dir(source, directory, part, target)
            else:
                await self._rename_leaf(source, directory, part, target)

    async def _rename_leaf(
        self, source: Node, directory: Node, part: str, target: Node | None
    ) -> None:
        if target is not None and target.kind is Kind.DIR:
            raise fuse_error(errno.EISDIR)
        file = self.files.get(source.ino)
        parent = source.parent
        assert parent is not None
        new_name = self.object_name(directory, part)
        # The store purges the replaced version's chunks: handles open on it keep its bytes, as
        # after an unlink (rule 3). Both files are held still meanwhile (``Files`` rule 7), the
        # renamed one stored under its old name first.
        replaced = None if target is None else self.files.get(target.ino)
        async with self.files.renaming([] if file is None else [file], replaced):
            info = source.info
            assert info is not None
            moved = await self.store.rename(info.name, new_name, overwrite=target is not None)
            if file is not None:
                self.files.renamed(file, moved.name, moved)
        self.table.move(parent, source.name, directory.ino, part, {info.name: moved})
        self.watcher.noted_local([moved], gone=[info.name])

    async def _rename_dir(
        self, source: Node, directory: Node, part: str, target: Node | None
    ) -> None:
        if target is not None:
            if target.kind is not Kind.DIR:
                raise fuse_error(errno.ENOTDIR)
            if next(iter(self.table.readdir(target.ino, 0)), None) is not None:
                raise fuse_error(errno.ENOTEMPTY)
            if target.marker_info is None or target.shadowed is not None:
                raise fuse_error(errno.ENOTEMPTY)
            self.watcher.apply_local([await self.store.delete(target.marker_info.name)])
        parent = source.parent
        assert parent is not None
        old_prefix = self.table.path_of(source.ino) + "/"
        new_prefix = self.object_name(directory, part) + "/"
        if new_prefix.startswith(old_prefix):
            raise fuse_error(errno.EINVAL)  # into itself (the kernel checks this first)
        moving = self.files.under(old_prefix)
        async with self.files.renaming(moving):  # stored first, held still (``Files`` rule 7)
            objects = self.table.objects_below(source.ino)
            hidden = [name for name in self.table.hidden() if name.startswith(old_prefix)]
            renamed: dict[str, ObjectInfo] = {}
            moved_hidden: list[ObjectInfo] = []
            try:
                for info in objects:
                    new_name = new_prefix + info.name[len(old_prefix) :]
                    renamed[info.name] = await self.store.rename(info.name, new_name)
                for name in hidden:
                    moved = await self.store.rename(name, new_prefix + name[len(old_prefix) :])
                    moved_hidden.append(moved)
            except BaseException:
                self._apply_partial_rename(renamed, [*hidden[: len(moved_hidden)]], moved_hidden)
                raise
            self.table.move(parent, source.name, directory.ino, part, renamed)
            self.watcher.noted_local(list(renamed.values()), gone=list(renamed))
            if moved_hidden:
                self._apply_partial_rename({}, hidden, moved_hidden)
            for file in moving:
                new_name = new_prefix + file.name[len(old_prefix) :]
                self.files.renamed(file, new_name, renamed.get(file.name))

    def _apply_partial_rename(
        self, renamed: Mapping[str, ObjectInfo], old_hidden: list[str], new_hidden: list[ObjectInfo]
    ) -> None:
        """Show renames as the watcher would: each old name deleted, each new one added."""
        infos: list[ObjectInfo] = []
        for old_name, info in renamed.items():
            infos.append(replace(info, name=old_name, deleted=True))
            infos.append(info)
        for old_name, info in zip(old_hidden, new_hidden, strict=True):
            infos.append(replace(info, name=old_name, deleted=True))
            infos.append(info)
        if infos:
            self.watcher.apply_local(infos)

    # Attributes (rules 4, 6 of files) -------------------------------------------------------

    async def set_attrs(self, node: Node, attrs: PosixAttrs) -> None:
        """Store new mode, owner or mtime."""
        await self.change(node, attrs, None)

    async def set_metadata(self, node: Node, change: MetadataChange) -> None:
        """Store a change of the user metadata (``user.*`` xattrs)."""
        if node.ino == ROOT:
            raise fuse_error(errno.ENOTSUP)
        await self.change(node, self.posix_of(node), change)

    async def change(self, node: Node, attrs: PosixAttrs, change: MetadataChange | None) -> None:
        """Store ``attrs`` and a metadata change in the object behind ``node``."""
        if node.ino == ROOT:
            self.root_attrs = attrs
            return
        if node.kind is Kind.FILE:
            assert node.info is not None
            file = self.files.open(node.ino, node.info, self.posix_of(node))
            try:
                metadata = None if change is None else change(file.metadata)
                await self.files.change_attrs(file, attrs, metadata)
            finally:
                self.files.release(file)
            return
        current = node.marker_info if node.kind is Kind.DIR else node.info
        if current is None:  # an implicit directory: its marker makes it persist
            name = self.table.path_of(node.ino) + "/"
            metadata = metadata_with(attrs, {} if change is None else change({}))
            info = await self.store.put_data(ObjectMeta(name=name, metadata=metadata), b"")
        else:
            base = current.metadata if change is None else change(current.metadata)
            meta = replace(current.meta, metadata=metadata_with(attrs, base))
            info = await self.store.update_meta(current.name, meta, current=current)
        self.watcher.apply_local([info])

    def metadata_of(self, node: Node) -> Mapping[str, str]:
        """The metadata as the mount shows it now (a file's pending changes included)."""
        file = self.files.get(node.ino)
        if file is not None and (file.dirty or file.pending):
            return file.metadata
        info = node.info or node.marker_info
        return {} if info is None else info.metadata
