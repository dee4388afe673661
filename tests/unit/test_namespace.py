"""Tree changes through the mount over the in-memory store (``osfs.fs.namespace``).

Rules for these tests:
1. No FUSE, no network: a ``MemoryStore``, a real ``InodeTable`` fed by a real ``Watcher``
   (its run loop in a nursery, the store's watch delivering documents asynchronously), ``Files``
   with spools under ``tmp_path``, and an invalidator that records what the kernel would be
   told.
2. Each change is checked in the store (names, nuids, metadata) and in the table, at once
   (while the watcher is held, so only the operation itself can have changed the table) and
   again once the watcher has applied the echoes (``wait_all_tasks_blocked``: the watcher
   blocks only when its feed is empty).
3. The mount's own changes reach the kernel through the operation's reply, never as
   invalidations: an echo that changes the table afterwards is a bug, so the recorded
   invalidations must stay empty unless another client changed something.
"""

from __future__ import annotations

import errno
import stat
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pyfuse3
import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from osfs.core import errors
from osfs.core.cache import ChunkCache
from osfs.core.inodes import ROOT, Changes, Inode, InodeTable, Kind, Node
from osfs.core.meta import ObjectInfo
from osfs.core.posix import (
    GID_KEY,
    MODE_KEY,
    MTIME_KEY,
    SYMLINK_KEY,
    UID_KEY,
    MountDefaults,
    PosixAttrs,
    attrs_of,
)
from osfs.core.store_api import Store, WatchBatch
from osfs.fs.files import Files, OpenFile
from osfs.fs.namespace import Namespace
from osfs.fs.reader import open_chunk_reader
from osfs.fs.spool import SpoolDir
from osfs.fs.watcher import Watcher
from tests.support.memory_store import Fault, FlakyStore, MemoryStore

MIB = 1 << 20
DEFAULTS = MountDefaults(uid=1000, gid=1000)
STARTED_NS = 1_700_000_000_000_000_000


class OneDocPerBatch(MemoryStore):
    """A MemoryStore whose watch delivers every document in a batch of its own, so the table
    can be looked at between two documents that arrive together."""

    def watch(self) -> AbstractAsyncContextManager[AsyncIterator[WatchBatch]]:
        return self._split(super().watch())

    @asynccontextmanager
    async def _split(
        self, inner: AbstractAsyncContextManager[AsyncIterator[WatchBatch]]
    ) -> AsyncIterator[AsyncIterator[WatchBatch]]:
        async with inner as batches:
            yield _singles(batches)


async def _singles(batches: AsyncIterator[WatchBatch]) -> AsyncIterator[WatchBatch]:
    async for batch in batches:
        if None in batch:  # the snapshot stays whole, with its end marker
            yield batch
            continue
        for info in batch:
            yield (info,)


@dataclass
class Recorder:
    """The invalidator: every batch of changes, with the root's names when it arrived."""

    table: InodeTable
    changes: list[Changes] = field(default_factory=list)
    listings: list[list[str]] = field(default_factory=list)

    async def invalidate(self, changes: Changes) -> None:
        self.changes.append(changes)
        self.listings.append(names_in(self.table, ROOT))


@dataclass
class Mount:
    store: MemoryStore
    table: InodeTable
    watcher: Watcher
    files: Files
    ns: Namespace
    kernel: Recorder

    @property
    def root(self) -> Node:
        return self.ns.node(ROOT)

    def at(self, path: str) -> Node | None:
        node: Node | None = self.root
        for part in path.split("/"):
            assert node is not None
            node = self.table.lookup(node.ino, part)
            if node is None:
                return None
        return node

    def must(self, path: str) -> Node:
        node = self.at(path)
        assert node is not None, path
        return node

    async def settle(self) -> None:
        """Let the watcher apply everything the store has sent it."""
        await wait_all_tasks_blocked()


def names_in(table: InodeTable, ino: Inode) -> list[str]:
    return [name for _, name, _ in table.readdir(ino, 0)]


@asynccontextmanager
async def open_mount(
    tmp_path: Path, store: MemoryStore | None = None, *, through: Store | None = None
) -> AsyncIterator[Mount]:
    """A mount of ``store`` (reached ``through`` another Store, e.g. a FlakyStore, if given)."""
    store = store or MemoryStore()
    bucket = through or store
    table = InodeTable()
    kernel = Recorder(table)
    watcher = Watcher(bucket, table, kernel)
    spool_dir = SpoolDir.open(tmp_path / "spool", mountpoint="/mnt/test")
    try:
        async with (
            open_chunk_reader(bucket, ChunkCache(MIB)) as reader,
            trio.open_nursery() as nursery,
        ):
            files = Files(bucket, reader, spool_dir)

            def stored(file: OpenFile, info: ObjectInfo) -> None:
                watcher.apply_local([info])

            files.on_stored = stored
            ns = Namespace(table, bucket, watcher, files, DEFAULTS, started_ns=STARTED_NS)
            await nursery.start(watcher.run)
            await nursery.start(files.run)
            yield Mount(store, table, watcher, files, ns, kernel)
            table.check_invariants()
            nursery.cancel_scope.cancel()
    finally:
        spool_dir.close()


async def stored_bytes(store: MemoryStore, name: str) -> bytes:
    info = await store.get_info(name)
    index = await store.chunk_index(info)
    return b"".join(await store.fetch_chunks(index, range(index.count)))


async def absent(store: MemoryStore, name: str) -> bool:
    try:
        await store.get_info(name)
    except errors.ObjectNotFoundError:
        return True
    return False


async def fails_with(number: int, operation: Awaitable[object]) -> None:
    with pytest.raises(pyfuse3.FUSEError) as caught:
        await operation
    assert caught.value.errno == number


# Making entries -------------------------------------------------------------------------------


async def test_make_dir_stores_a_marker_and_shows_it_at_once(tmp_path: Path) -> None:
    async with open_mount(tmp_path) as m:
        async with m.watcher.held:  # the watcher cannot have done it
            node = await m.ns.make_dir(m.root, "a", 0o750, 1001, 1002)
            assert m.at("a") is node
            sub = await m.ns.make_dir(node, "b", 0o700, 1001, 1002)
            assert m.at("a/b") is sub
        assert node.kind is Kind.DIR
        assert node.marker_info is not None
        assert node.marker_info.name == "a/"
        info = await m.store.get_info("a/")
        assert info.size == 0
        assert info.metadata[MODE_KEY] == "40750"
        assert info.metadata[UID_KEY] == "1001"
        assert info.metadata[GID_KEY] == "1002"
        assert m.ns.posix_of(node) == PosixAttrs(
            stat.S_IFDIR | 0o750, 1001, 1002, int(info.metadata[MTIME_KEY])
        )
        assert (await m.store.get_info("a/b/")).metadata[MODE_KEY] == "40700"
        await m.settle()
        assert m.at("a") is node
        assert m.at("a/b") is sub
        assert m.kernel.changes == []


async def test_make_symlink_stores_the_exact_target(tmp_path: Path) -> None:
    target = "../some dir/é\u2028 x//./y"
    async with open_mount(tmp_path) as m:
        node = await m.ns.make_symlink(m.root, "ln", target.encode(), 1001, 1002)
        assert m.at("ln") is node
        assert node.kind is Kind.SYMLINK
        assert m.table.readlink(node.ino) == target
        info = await m.store.get_info("ln")
        assert info.metadata[SYMLINK_KEY] == target
        assert info.size == 0
        assert m.ns.posix_of(node).mode == stat.S_IFLNK | 0o777
        await fails_with(errno.EINVAL, m.ns.make_symlink(m.root, "bad", b"\xff", 1, 1))
        await fails_with(errno.ENOENT, m.ns.make_symlink(m.root, "empty", b"", 1, 1))
        assert await absent(m.store, "bad")
        await m.settle()
        assert m.table.readlink(m.must("ln").ino) == target
        assert m.kernel.changes == []


async def test_make_node_stores_an_empty_file_and_refuses_other_types(tmp_path: Path) -> None:
    async with open_mount(tmp_path) as m:
        node = await m.ns.make_node(m.root, "f", stat.S_IFREG | 0o600, 1, 2)
        assert node.kind is Kind.FILE
        assert (await m.store.get_info("f")).metadata[MODE_KEY] == "100600"
        await fails_with(errno.EPERM, m.ns.make_node(m.root, "p", stat.S_IFIFO, 1, 2))
        assert await absent(m.store, "p")


async def test_a_created_file_is_pending_until_its_first_flush(tmp_path: Path) -> None:
    async with open_mount(tmp_path) as m:
        node, file = m.ns.create_file(m.root, "new", 0o640, 1001, 1002)
        assert m.at("new") is node
        assert node.kind is Kind.FILE
        assert file.pending
        await m.settle()
        assert m.at("new") is node
        assert await absent(m.store, "new")
        assert m.store.calls["put_path"] == m.store.calls["put_data"] == 0
        assert m.ns.posix_of(node).mode == stat.S_IFREG | 0o640

        await m.files.write(file, 0, b"content")
        await m.files.flush(file)
        info = await m.store.get_info("new")
        assert await stored_bytes(m.store, "new") == b"content"
        assert attrs_of(info, DEFAULTS) == file.attrs
        assert m.at("new") is node
        assert node.info == info  # shown at once
        await m.settle()
        assert m.at("new") is node
        assert node.info == info
        assert m.kernel.changes == []


# Removing entries -----------------------------------------------------------------------------


async def test_removing_a_pending_file_never_touches_the_store(tmp_path: Path) -> None:
    async with open_mount(tmp_path) as m:
        node, file = m.ns.create_file(m.root, "scratch", 0o600, 1, 1)
        await m.files.write(file, 0, b"temporary")
        await m.ns.remove_file(ROOT, b"scratch")
        assert m.at("scratch") is None
        assert not node.attached
        assert file.unlinked
        assert m.files.read(file, 0, 100) == b"temporary"  # the open handle still reads it
        await m.files.flush(file)
        m.files.release(file)
        await m.settle()
        assert m.at("scratch") is None
        assert await absent(m.store, "scratch")
        assert sum(m.store.calls[name] for name in ("put_path", "put_data", "delete")) == 0
        assert m.store.calls["begin_put"] == 0


async def test_remove_file_deletes_the_object(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.put("f", b"data")
    await store.put("d/x", b"x")
    async with open_mount(tmp_path, store) as m:
        node = m.must("f")
        await m.ns.remove_file(ROOT, b"f")
        assert m.at("f") is None
        assert not node.attached
        assert await absent(store, "f")
        await fails_with(errno.ENOENT, m.ns.remove_file(ROOT, b"f"))
        await fails_with(errno.EISDIR, m.ns.remove_file(ROOT, b"d"))
        await m.settle()
        assert m.at("f") is None
        assert m.kernel.changes == []


async def test_an_unlinked_open_file_keeps_its_bytes(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("f", b"x" * 5000, chunk_size=1000)
    async with open_mount(tmp_path, store) as m:
        node = m.must("f")
        file = m.files.open(node.ino, info, m.ns.posix_of(node))
        await m.ns.remove_file(ROOT, b"f")
        assert not store.has_version(info.nuid)
        assert m.files.read(file, 0, 10_000) == b"x" * 5000
        await m.files.flush(file)
        m.files.release(file)
        assert store.calls["put_path"] == 0


async def test_unlink_during_the_first_upload_deletes_what_it_stored(tmp_path: Path) -> None:
    """``close`` of a new file is uploading when another process unlinks it: the upload
    lands, and the unlink must delete it (not treat the file as still pending)."""
    store = MemoryStore()
    gate = trio.Event()
    flaky = FlakyStore(store, {("put_path", 1): Fault(gate=gate)})
    async with open_mount(tmp_path, store, through=flaky) as m:
        node, file = m.ns.create_file(m.root, "f", 0o644, 1, 1)
        await m.files.write(file, 0, b"data")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(m.files.flush, file)
            await wait_all_tasks_blocked()
            assert flaky.calls["put_path"] == 1
            nursery.start_soon(m.ns.remove_file, ROOT, b"f")
            await wait_all_tasks_blocked()
            gate.set()
        assert m.at("f") is None
        assert not node.attached
        assert await absent(store, "f")
        await m.settle()
        assert m.at("f") is None
        assert names_in(m.table, ROOT) == []


async def test_a_close_during_the_unlinks_delete_does_not_store_the_file(tmp_path: Path) -> None:
    """``unlink`` holds the file while the store deletes the name: a ``close`` arriving then
    waits, finds the file gone, and uploads nothing (no object outlives the unlink)."""
    store = MemoryStore()
    gate = trio.Event()
    flaky = FlakyStore(store, {("delete", 1): Fault(gate=gate)})
    async with open_mount(tmp_path, store, through=flaky) as m:
        node, file = m.ns.create_file(m.root, "f", 0o644, 1, 1)
        await m.files.write(file, 0, b"first")
        await m.files.flush(file)  # stored: the unlink must delete it on the server
        await m.files.write(file, 0, b"second")  # dirty again, with a handle open
        async with trio.open_nursery() as nursery:
            nursery.start_soon(m.ns.remove_file, ROOT, b"f")
            await wait_all_tasks_blocked()
            assert flaky.calls["delete"] == 1  # the delete is in flight
            nursery.start_soon(m.files.flush, file)
            await wait_all_tasks_blocked()
            assert flaky.calls["put_path"] == 1  # only the first close's upload
            gate.set()
        assert flaky.calls["put_path"] == 1
        assert await absent(store, "f")
        assert m.files.read(file, 0, 6) == b"second"  # the open handle keeps its bytes
        m.files.release(file)
        await m.settle()
        assert m.at("f") is None
        assert not node.attached


async def test_remove_dir_refuses_a_non_empty_one_and_deletes_the_marker(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.put("d/")
    await store.put("d/x", b"x")
    await store.put("f", b"f")
    async with open_mount(tmp_path, store) as m:
        directory = m.must("d")
        await fails_with(errno.ENOTEMPTY, m.ns.remove_dir(ROOT, b"d"))
        await fails_with(errno.ENOTDIR, m.ns.remove_dir(ROOT, b"f"))
        await fails_with(errno.ENOENT, m.ns.remove_dir(ROOT, b"nothing"))
        assert m.store.calls["delete"] == 0
        await m.ns.remove_file(directory.ino, b"x")
        assert m.at("d") is directory  # marked: it stays, empty
        await m.ns.remove_dir(ROOT, b"d")
        assert m.at("d") is None
        assert await absent(store, "d/")
        await m.settle()
        assert m.at("d") is None
        assert m.kernel.changes == []


# Renaming -------------------------------------------------------------------------------------


async def test_rename_of_a_file_moves_its_document_and_keeps_its_inode(tmp_path: Path) -> None:
    store = MemoryStore()
    data = b"y" * 3000
    before = await store.put("a", data, chunk_size=1000)
    await store.put("dir/")
    async with open_mount(tmp_path, store) as m:
        node = m.must("a")
        await m.ns.rename(ROOT, b"a", m.must("dir").ino, b"b", no_replace=False)
        assert m.at("a") is None
        assert m.at("dir/b") is node
        assert node.info is not None
        assert node.info.name == "dir/b"
        after = await store.get_info("dir/b")
        assert after.nuid == before.nuid
        assert await stored_bytes(store, "dir/b") == data
        assert await absent(store, "a")
        assert store.calls["put_path"] == store.calls["put_data"] == 0  # no data copied
        await m.settle()
        assert m.at("dir/b") is node
        assert m.at("a") is None
        assert m.kernel.changes == []


async def test_rename_onto_a_file_replaces_it(tmp_path: Path) -> None:
    store = MemoryStore()
    source = await store.put("a", b"source")
    target = await store.put("b", b"target", chunk_size=2)
    async with open_mount(tmp_path, store) as m:
        moved, replaced = m.must("a"), m.must("b")
        handle = m.files.open(replaced.ino, target, m.ns.posix_of(replaced))
        await m.ns.rename(ROOT, b"a", ROOT, b"b", no_replace=False)
        assert m.at("b") is moved
        assert m.at("a") is None
        assert not replaced.attached
        assert (await store.get_info("b")).nuid == source.nuid
        assert not store.has_version(target.nuid)  # the replaced version is purged
        assert store.has_version(source.nuid)
        assert await absent(store, "a")
        # A handle open on the replaced file keeps reading what it had.
        assert m.files.read(handle, 0, 100) == b"target"
        m.files.release(handle)
        await m.settle()
        assert m.at("b") is moved
        assert m.kernel.changes == []


async def test_rename_with_no_replace_refuses_an_existing_target(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.put("a", b"a")
    await store.put("b", b"b")
    await store.put("d/")
    async with open_mount(tmp_path, store) as m:
        a, b, d = m.must("a"), m.must("b"), m.must("d")
        await fails_with(errno.EEXIST, m.ns.rename(ROOT, b"a", ROOT, b"b", no_replace=True))
        await fails_with(errno.EEXIST, m.ns.rename(ROOT, b"a", ROOT, b"d", no_replace=True))
        await fails_with(errno.EISDIR, m.ns.rename(ROOT, b"a", ROOT, b"d", no_replace=False))
        await fails_with(errno.ENOTDIR, m.ns.rename(ROOT, b"d", ROOT, b"a", no_replace=False))
        assert (m.at("a"), m.at("b"), m.at("d")) == (a, b, d)
        assert m.store.calls["rename"] == 0
        await m.ns.rename(ROOT, b"a", ROOT, b"a", no_replace=True)  # onto itself: nothing
        assert m.at("a") is a
        assert m.store.calls["rename"] == 0


async def test_rename_of_a_directory_renames_everything_below(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.put("d/", metadata={MODE_KEY: "40700"})
    await store.put("d/x", b"x")
    await store.put("d/sub/y", b"y")
    await store.put("d/sub/z/")
    await store.put("t/")
    before = {name: (await store.get_info(name)).nuid for name in ("d/", "d/x", "d/sub/y")}
    async with open_mount(tmp_path, store) as m:
        inodes = {path: m.must(path).ino for path in ("d", "d/x", "d/sub", "d/sub/y", "d/sub/z")}
        # A file being written below the directory goes along (stored first).
        pending, file = m.ns.create_file(m.must("d/sub"), "new", 0o644, 1, 1)
        await m.files.write(file, 0, b"pending")
        await m.ns.rename(ROOT, b"d", m.must("t").ino, b"e", no_replace=False)
        assert m.at("d") is None
        for path, ino in inodes.items():
            assert m.must("t/e" + path[1:]).ino == ino, path
        assert m.at("t/e/sub/new") is pending
        for old, nuid in before.items():
            assert await absent(store, old)
            assert (await store.get_info("t/e" + old[1:])).nuid == nuid
        assert not await absent(store, "t/e/sub/z/")
        assert await absent(store, "d/sub/z/")
        assert await stored_bytes(store, "t/e/sub/new") == b"pending"
        assert await absent(store, "d/sub/new")
        assert m.ns.posix_of(m.must("t/e")).mode == stat.S_IFDIR | 0o700
        # The open file now writes to its new name.
        assert file.name == "t/e/sub/new"
        await m.files.write(file, 0, b"PENDING")
        await m.files.flush(file)
        assert await stored_bytes(store, "t/e/sub/new") == b"PENDING"
        assert await absent(store, "d/sub/new")
        await m.settle()
        for path, ino in inodes.items():
            assert m.must("t/e" + path[1:]).ino == ino, path
        assert m.at("d") is None
        assert m.kernel.changes == []


async def test_rename_of_a_dirty_file_stores_it_first(tmp_path: Path) -> None:
    async with open_mount(tmp_path) as m:
        node, file = m.ns.create_file(m.root, "draft", 0o644, 1, 1)
        await m.files.write(file, 0, b"text")
        await m.ns.rename(ROOT, b"draft", ROOT, b"final", no_replace=False)
        assert m.at("final") is node
        assert await stored_bytes(m.store, "final") == b"text"
        assert await absent(m.store, "draft")
        assert file.name == "final"
        await m.files.write(file, 4, b"!")
        await m.files.flush(file)
        assert await stored_bytes(m.store, "final") == b"text!"
        assert await absent(m.store, "draft")


async def test_a_close_of_the_replaced_file_during_the_rename_stores_nothing(
    tmp_path: Path,
) -> None:
    """``mv a b`` while another process closes ``b`` with bytes not stored yet: that close
    waits for the rename, finds ``b``'s file gone and uploads nothing. (Its upload landing after
    the store's rename would put the replaced bytes back under ``b``, over ``a``'s.)"""
    store = MemoryStore()
    await store.put("a", b"source")
    target = await store.put("b", b"target")
    renaming, uploading = trio.Event(), trio.Event()
    flaky = FlakyStore(
        store, {("rename", 1): Fault(gate=renaming), ("put_path", 1): Fault(gate=uploading)}
    )
    async with open_mount(tmp_path, store, through=flaky) as m:
        moved, replaced = m.must("a"), m.must("b")
        handle = m.files.open(replaced.ino, target, m.ns.posix_of(replaced))
        await m.files.write(handle, 0, b"TARGET")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(m.ns.rename, ROOT, b"a", ROOT, b"b", no_replace=False))
            await wait_all_tasks_blocked()
            assert flaky.calls["rename"] == 1  # the store is renaming
            nursery.start_soon(m.files.flush, handle)  # the close of the replaced file
            await wait_all_tasks_blocked()
            renaming.set()
            await wait_all_tasks_blocked()
            uploading.set()
        assert flaky.calls["put_path"] == 0
        assert await stored_bytes(store, "b") == b"source"
        assert await absent(store, "a")
        assert m.files.read(handle, 0, 100) == b"TARGET"  # the open handle keeps its bytes
        m.files.release(handle)
        assert m.at("b") is moved
        await m.settle()
        assert m.at("b") is moved
        assert m.at("a") is None


async def _rename_during_a_close(
    m: Mount,
    flaky: FlakyStore,
    file: OpenFile,
    old: bytes,
    new: bytes,
    renaming: trio.Event,
    uploading: trio.Event,
) -> None:
    """``mv old new`` in the root while another task writes ``FIRST`` into ``file`` and closes
    it: the write arrives while the store is renaming (held by ``renaming``), and the upload
    of the close is held by ``uploading`` until the rename is done."""

    async def write_and_close() -> None:
        await m.files.write(file, 0, b"FIRST")
        await m.files.flush(file)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(m.ns.rename, ROOT, old, ROOT, new, no_replace=False))
        await wait_all_tasks_blocked()
        assert flaky.calls["rename"] == 1  # the store is renaming
        nursery.start_soon(write_and_close)
        await wait_all_tasks_blocked()
        renaming.set()
        await wait_all_tasks_blocked()
        uploading.set()


async def test_a_close_of_the_renamed_file_during_the_rename_stores_it_under_the_new_name(
    tmp_path: Path,
) -> None:
    """``mv a c`` while another process writes ``a`` and closes it: the write waits for the
    rename, and the close stores the file as ``c``. (An upload under the old name landing after
    the store's rename would bring ``a`` back, with a copy of the file.)"""
    store = MemoryStore()
    renaming, uploading = trio.Event(), trio.Event()
    flaky = FlakyStore(
        store, {("rename", 1): Fault(gate=renaming), ("put_path", 2): Fault(gate=uploading)}
    )
    async with open_mount(tmp_path, store, through=flaky) as m:
        node, file = m.ns.create_file(m.root, "a", 0o644, 1, 1)
        await m.files.write(file, 0, b"first")
        await m.files.flush(file)  # stored: the rename has nothing to upload

        await _rename_during_a_close(m, flaky, file, b"a", b"c", renaming, uploading)
        assert await absent(store, "a")
        assert await stored_bytes(store, "c") == b"FIRST"
        assert file.name == "c"
        m.files.release(file)
        assert m.at("c") is node
        assert m.at("a") is None
        await m.settle()
        assert m.at("c") is node
        assert m.at("a") is None


async def test_a_close_below_a_directory_being_renamed_stores_under_the_new_name(
    tmp_path: Path,
) -> None:
    """``mv d e`` while another process writes ``d/x`` and closes it: the same as for a file
    (the test above), for every open file below the directory."""
    store = MemoryStore()
    await store.put("d/")
    info = await store.put("d/x", b"first")
    renaming, uploading = trio.Event(), trio.Event()
    flaky = FlakyStore(
        store, {("rename", 1): Fault(gate=renaming), ("put_path", 1): Fault(gate=uploading)}
    )
    async with open_mount(tmp_path, store, through=flaky) as m:
        node = m.must("d/x")
        file = m.files.open(node.ino, info, m.ns.posix_of(node))

        await _rename_during_a_close(m, flaky, file, b"d", b"e", renaming, uploading)
        assert await absent(store, "d/x")
        assert await stored_bytes(store, "e/x") == b"FIRST"
        assert file.name == "e/x"
        m.files.release(file)
        assert m.at("e/x") is node
        assert m.at("d") is None
        await m.settle()
        assert m.at("e/x") is node
        assert m.at("d") is None


# Attributes -----------------------------------------------------------------------------------


async def test_set_attrs_of_a_file_updates_its_metadata_only(tmp_path: Path) -> None:
    store = MemoryStore()
    before = await store.put("f", b"data", metadata={"user.k": "v"})
    async with open_mount(tmp_path, store) as m:
        node = m.must("f")
        attrs = PosixAttrs(stat.S_IFREG | 0o600, 5, 6, 42)
        await m.ns.set_attrs(node, attrs)
        info = await store.get_info("f")
        assert info.nuid == before.nuid
        assert attrs_of(info, DEFAULTS) == attrs
        assert info.metadata["user.k"] == "v"
        assert node.info == info
        assert m.ns.posix_of(node) == attrs
        assert m.files.get(node.ino) is None  # nothing kept open
        assert store.calls["update_meta"] == 1
        assert store.calls["put_path"] == store.calls["put_data"] == 0
        assert store.fetch_log == []
        await m.settle()
        assert m.ns.posix_of(m.must("f")) == attrs
        assert m.kernel.changes == []


async def test_set_attrs_of_a_symlink_keeps_its_target(tmp_path: Path) -> None:
    async with open_mount(tmp_path) as m:
        node = await m.ns.make_symlink(m.root, "ln", b"target/path", 1, 1)
        attrs = PosixAttrs(stat.S_IFLNK | 0o777, 7, 8, 99)
        await m.ns.set_attrs(node, attrs)
        info = await m.store.get_info("ln")
        assert info.metadata[SYMLINK_KEY] == "target/path"
        assert attrs_of(info, DEFAULTS) == attrs
        assert m.table.readlink(node.ino) == "target/path"
        assert m.ns.posix_of(node) == attrs


async def test_set_attrs_of_directories(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.put("marked/")
    await store.put("implicit/x", b"x")
    async with open_mount(tmp_path, store) as m:
        marked, implicit = m.must("marked"), m.must("implicit")
        assert implicit.marker_info is None
        attrs = PosixAttrs(stat.S_IFDIR | 0o700, 3, 4, 77)
        await m.ns.set_attrs(marked, attrs)
        assert attrs_of(await store.get_info("marked/"), DEFAULTS) == attrs
        assert m.ns.posix_of(marked) == attrs
        assert store.calls["update_meta"] == 1

        # An implicit directory gets a marker to keep its attributes (and itself) in.
        await m.ns.set_attrs(implicit, attrs)
        marker = await store.get_info("implicit/")
        assert attrs_of(marker, DEFAULTS) == attrs
        assert m.at("implicit") is implicit
        assert m.must("implicit").marker_info == marker
        assert m.ns.posix_of(implicit) == attrs
        await m.ns.remove_file(implicit.ino, b"x")
        assert m.at("implicit") is implicit  # marked now: it outlives its last entry
        await m.settle()
        assert m.ns.posix_of(m.must("marked")) == attrs
        assert m.kernel.changes == []


async def test_attributes_of_the_root_live_in_memory(tmp_path: Path) -> None:
    async with open_mount(tmp_path) as m:
        default = m.ns.posix_of(m.root)
        assert default.mode == stat.S_IFDIR | 0o755
        assert m.ns.local_attrs(m.root) is None
        calls = dict(m.store.calls)
        attrs = PosixAttrs(stat.S_IFDIR | 0o711, 0, 0, 5)
        await m.ns.set_attrs(m.root, attrs)
        assert m.ns.posix_of(m.root) == attrs
        assert m.ns.local_attrs(m.root) == (attrs, 0)
        assert dict(m.store.calls) == calls
        await fails_with(errno.ENOTSUP, m.ns.set_metadata(m.root, dict))


async def test_set_metadata_adds_and_removes_keys(tmp_path: Path) -> None:
    store = MemoryStore()
    await store.put("f", b"data", metadata={MODE_KEY: "100600", "keep": "1"})
    await store.put("d/")
    async with open_mount(tmp_path, store) as m:
        node = m.must("f")
        await m.ns.set_metadata(node, lambda old: {**old, "user.k": "v"})
        info = await store.get_info("f")
        assert info.metadata["user.k"] == "v"
        assert info.metadata["keep"] == "1"
        assert info.metadata[MODE_KEY] == "100600"
        assert m.ns.metadata_of(node)["user.k"] == "v"
        await m.ns.set_metadata(node, lambda old: {k: v for k, v in old.items() if k != "user.k"})
        info = await store.get_info("f")
        assert "user.k" not in info.metadata
        assert info.metadata["keep"] == "1"
        assert "user.k" not in m.ns.metadata_of(node)

        directory = m.must("d")
        await m.ns.set_metadata(directory, lambda old: {**old, "user.d": "1"})
        assert (await store.get_info("d/")).metadata["user.d"] == "1"
        assert m.ns.metadata_of(directory)["user.d"] == "1"

        # A pending file's metadata rides with its first upload.
        pending, file = m.ns.create_file(m.root, "p", 0o644, 1, 1)
        await m.ns.set_metadata(pending, lambda old: {**old, "user.p": "2"})
        assert await absent(store, "p")
        assert m.ns.metadata_of(pending)["user.p"] == "2"
        await m.files.flush(file)
        assert (await store.get_info("p")).metadata["user.p"] == "2"


# Late echoes ----------------------------------------------------------------------------------


async def test_the_late_echo_of_a_renamed_files_old_name_does_not_bring_it_back(
    tmp_path: Path,
) -> None:
    """``write tmp; close; mv tmp final``: the watcher delivers ``tmp`` after the move."""
    store = OneDocPerBatch()
    async with open_mount(tmp_path, store) as m:
        node, file = m.ns.create_file(m.root, "tmp", 0o644, 1, 1)
        await m.files.write(file, 0, b"content")
        await m.files.flush(file)  # the document of "tmp" is on its way to the watcher...
        await m.ns.rename(ROOT, b"tmp", ROOT, b"final", no_replace=False)  # ...not applied yet
        assert m.at("final") is node
        await m.settle()
        assert m.at("tmp") is None
        assert m.at("final") is node
        assert names_in(m.table, ROOT) == ["final"]
        assert m.kernel.changes == []  # neither "tmp" nor a new inode ever showed
        assert m.watcher.batches >= 3  # snapshot, "tmp", "final": they did arrive
        # Later changes by other clients still get through, as a new inode (the kernel's
        # writeback cache would keep the old size otherwise: InodeTable rule 3).
        await store.put("final", b"remote")
        await m.settle()
        renewed = m.must("final")
        assert renewed is not node
        assert not node.attached
        assert renewed.info is not None
        assert renewed.info.size == len(b"remote")
        assert len(m.kernel.changes) == 1


async def test_a_remote_version_renamed_before_the_watcher_saw_it_leaves_no_ghost(
    tmp_path: Path,
) -> None:
    """Another client updates ``a``; we ``mv a b`` before the watcher delivered that update:
    the store moved the newer version, and its late document under ``a`` must not bring ``a``
    back."""
    store = OneDocPerBatch()
    await store.put("a", b"old")
    async with open_mount(tmp_path, store) as m:
        node = m.must("a")
        newer = await store.put("a", b"newer version")  # on its way to the watcher...
        await m.ns.rename(ROOT, b"a", ROOT, b"b", no_replace=False)  # ...not applied yet
        assert m.at("b") is node
        assert node.info is not None
        assert node.info.nuid == newer.nuid
        await m.settle()
        assert m.at("a") is None
        assert m.at("b") is node
        assert all("a" not in listing for listing in m.kernel.listings)  # never came back
        assert names_in(m.table, ROOT) == ["b"]


async def test_an_older_remote_version_arriving_after_ours_is_dropped(tmp_path: Path) -> None:
    store = OneDocPerBatch()
    await store.put("f", b"first")
    async with open_mount(tmp_path, store) as m:
        node = m.must("f")
        assert node.info is not None
        file = m.files.open(node.ino, node.info, m.ns.posix_of(node))
        await m.files.write(file, 0, b"ours")
        async with m.watcher.held:  # the watcher is busy elsewhere
            await store.put("f", b"another client's")  # revision R
            await m.files.flush(file)  # revision R + 1, shown at once
            ours = node.info
            assert ours is not None
            assert ours == await store.get_info("f")
        await m.settle()
        assert node.info == ours
        assert m.at("f") is node
        assert m.kernel.changes == []  # the remote version never showed in between
        m.files.release(file)


async def test_echoes_of_removals_and_new_directories_change_nothing(tmp_path: Path) -> None:
    store = OneDocPerBatch()
    await store.put("gone", b"x")
    async with open_mount(tmp_path, store) as m:
        await m.ns.remove_file(ROOT, b"gone")
        directory = await m.ns.make_dir(m.root, "dir", 0o755, 1, 1)
        await m.ns.remove_dir(ROOT, b"dir")
        again = await m.ns.make_dir(m.root, "dir", 0o700, 1, 1)
        assert again is not directory
        await m.settle()
        assert names_in(m.table, ROOT) == ["dir"]
        assert m.at("dir") is again
        assert m.kernel.changes == []
