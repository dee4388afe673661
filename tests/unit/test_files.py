"""The write state of open files over the in-memory store: spools, uploads, retries
(``osfs.fs.files``).

Rules for these tests:
1. No FUSE, no network: ``MemoryStore`` plays the bucket (``FlakyStore`` fails or holds chosen
   calls), a real ``ChunkReader`` copies objects in, and spool files live in a real
   ``SpoolDir`` under ``tmp_path``.
2. What was stored is read back from the store itself (content, metadata through
   ``osfs.core.posix.attrs_of``); what was fetched is what the store's ``fetch_log`` and
   ``calls`` counted.
3. No sleeps: concurrency is arranged with gates and ``wait_all_tasks_blocked``; the retry task
   runs on trio's autojump clock.
"""

from __future__ import annotations

import errno
import itertools
import random
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from osfs.core import errors
from osfs.core.cache import ChunkCache
from osfs.core.meta import ObjectInfo, ObjectMeta
from osfs.core.posix import MODE_KEY, MountDefaults, PosixAttrs, attrs_of
from osfs.core.spool_record import decode_record
from osfs.core.store_api import Store
from osfs.fs import files as files_module
from osfs.fs.files import RETRY_MAX, RETRY_MIN, Files, OpenFile
from osfs.fs.reader import open_chunk_reader
from osfs.fs.spool import SpoolDir
from tests.support.memory_store import Fault, FlakyStore, MemoryStore

MIB = 1 << 20
DEFAULTS = MountDefaults(uid=1000, gid=1000)
NEW_ATTRS = PosixAttrs(stat.S_IFREG | 0o640, 1001, 1002, 1_000_000_000)


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


@dataclass
class Harness:
    files: Files
    spool_dir: SpoolDir
    stored: list[tuple[OpenFile, ObjectInfo]] = field(default_factory=list)

    def data_files(self) -> list[str]:
        return sorted(p.name for p in self.spool_dir.folder.glob("*.data"))


@asynccontextmanager
async def open_files(store: Store, tmp_path: Path) -> AsyncIterator[Harness]:
    spool_dir = SpoolDir.open(tmp_path / "spool", mountpoint="/mnt/test")
    try:
        async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=0) as reader:
            harness = Harness(Files(store, reader, spool_dir), spool_dir)
            harness.files.on_stored = lambda file, info: harness.stored.append((file, info))
            yield harness
    finally:
        spool_dir.close()


async def stored_bytes(store: MemoryStore, name: str) -> bytes:
    info = await store.get_info(name)
    index = await store.chunk_index(info)
    return b"".join(await store.fetch_chunks(index, range(index.count)))


def open_object(harness: Harness, ino: int, info: ObjectInfo) -> OpenFile:
    return harness.files.open(ino, info, attrs_of(info, DEFAULTS))


def flags(file: OpenFile) -> set[str]:
    """Which of the file's state flags are set (read through a call: no stale narrowing)."""
    return {name for name in ("pending", "dirty", "failed", "unlinked") if getattr(file, name)}


def record_of(file: OpenFile) -> ObjectMeta:
    assert file.spool is not None
    return decode_record(file.spool.record_path.read_bytes())


# New files ------------------------------------------------------------------------------------


async def test_a_new_file_is_pending_until_its_flush_stores_it(tmp_path: Path) -> None:
    store = MemoryStore()
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = files.create(5, "dir/new", NEW_ATTRS)
        assert files.get(5) is file
        assert flags(file) == {"pending", "dirty"}
        assert file.handles == 1
        assert record_of(file).name == "dir/new"  # a crash now loses nothing
        assert await files.write(file, 0, b"hello ") == 6
        assert await files.write(file, 6, b"world") == 5
        assert file.size == 11
        assert file.attrs.mtime_ns > NEW_ATTRS.mtime_ns  # the write touched it
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("dir/new")
        assert harness.stored == []

        await files.flush(file)

        info = await store.get_info("dir/new")
        assert await stored_bytes(store, "dir/new") == b"hello world"
        assert info.size == 11
        assert attrs_of(info, DEFAULTS) == file.attrs
        assert info.metadata[MODE_KEY] == "100640"
        assert harness.stored == [(file, info)]
        assert file.base == info
        assert flags(file) == set()
        assert file.spool is not None
        assert not file.spool.record_path.exists()
        assert files.uploads == 1
        await files.flush(file)  # clean: nothing more to store
        assert store.calls["put_path"] == 1
        assert files.dirty() == []


async def test_reads_of_a_spooled_file_see_what_was_written(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("old", b"stored bytes")
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = files.create(5, "new", NEW_ATTRS)
        assert files.read(file, 0, 10) == b""
        await files.write(file, 0, b"abcdef")
        await files.write(file, 10, b"xyz")
        assert files.read(file, 0, 100) == b"abcdef" + bytes(4) + b"xyz"
        assert files.read(file, 2, 3) == b"cde"
        assert files.read(file, 13, 3) == b""
        # A file not spooled yet is read from the store by the caller.
        other = open_object(harness, 6, info)
        assert files.read(other, 0, 10) is None
        assert files.open(6, info, attrs_of(info, DEFAULTS)) is other  # handles share it
        assert other.handles == 2


# Existing objects -----------------------------------------------------------------------------


async def test_a_write_into_an_object_copies_it_in_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_module, "FILL_STEP", 1500)  # several reads of several chunks
    store = MemoryStore()
    data = payload(10_000)
    info = await store.put("big", data, chunk_size=1000, metadata={"user.k": "v"})
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 7, info)
        assert file.size == 10_000
        assert "dirty" not in flags(file)
        assert files.read(file, 0, 10) is None
        assert store.fetch_log == []
        await files.write(file, 4500, b"X" * 2000)  # across chunks 4, 5, 6
        expected = data[:4500] + b"X" * 2000 + data[6500:]
        assert files.read(file, 0, 20_000) == expected
        assert file.size == 10_000
        assert "dirty" in flags(file)
        assert record_of(file).metadata["user.k"] == "v"
        await files.write(file, 10_000, b"tail")
        expected += b"tail"
        await files.flush(file)
        assert await stored_bytes(store, "big") == expected
        stored = await store.get_info("big")
        assert stored.metadata["user.k"] == "v"
        assert stored.nuid != info.nuid
        assert not store.has_version(info.nuid)  # the old version was replaced
        assert harness.stored == [(file, stored)]


async def test_an_open_file_follows_new_versions_until_it_is_copied_in(tmp_path: Path) -> None:
    store = MemoryStore()
    first = await store.put("f", b"first")
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, first)
        second = await store.put("f", b"second version")
        assert files.open(3, second, attrs_of(second, DEFAULTS)) is file
        assert file.base == second
        await files.write(file, 0, b"S")
        assert files.read(file, 0, 100) == b"Second version"
        third = await store.put("f", b"third")
        files.open(3, third, attrs_of(third, DEFAULTS))
        assert file.base == second  # copied in: the spool is the truth now
        assert files.read(file, 0, 100) == b"Second version"


async def test_truncate_to_zero_needs_no_copy(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("f", payload(5000), chunk_size=1000)
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, info)
        await files.truncate(file, 0)
        assert store.fetch_log == []
        assert store.calls["chunk_index"] == 0
        assert file.size == 0
        assert "dirty" in flags(file)
        assert files.read(file, 0, 100) == b""
        await files.write(file, 0, b"fresh")
        await files.flush(file)
        assert store.fetch_log == []
        assert (await store.get_info("f")).size == 5
        assert await stored_bytes(store, "f") == b"fresh"


async def test_truncate_grows_with_zeros_and_shrinks_after_a_copy(tmp_path: Path) -> None:
    store = MemoryStore()
    data = payload(3000)
    grow = await store.put("grow", data, chunk_size=1000)
    shrink = await store.put("shrink", data, chunk_size=1000)
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        grown = open_object(harness, 3, grow)
        await files.truncate(grown, 5000)
        assert grown.size == 5000
        assert files.read(grown, 0, 10_000) == data + bytes(2000)
        await files.flush(grown)
        assert await stored_bytes(store, "grow") == data + bytes(2000)

        shrunk = open_object(harness, 4, shrink)
        await files.truncate(shrunk, 1234)
        await files.flush(shrunk)
        assert await stored_bytes(store, "shrink") == data[:1234]

        new = files.create(5, "new", NEW_ATTRS)
        await files.write(new, 0, b"abc")
        await files.truncate(new, 6)
        await files.flush(new)
        assert await stored_bytes(store, "new") == b"abc" + bytes(3)


async def test_a_failed_copy_in_leaves_no_spool_behind(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("f", payload(3000), chunk_size=1000)
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, info)
        await store.delete("f")  # its chunks are purged: the copy cannot be made
        with pytest.raises(errors.StaleVersionError):
            await files.write(file, 10, b"x")
        assert file.spool is None
        assert "dirty" not in flags(file)
        assert harness.data_files() == []
        assert harness.spool_dir.dirty_records() == []


# Attributes -----------------------------------------------------------------------------------


async def test_attributes_of_a_clean_file_are_stored_at_once_without_data(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("f", payload(3000), chunk_size=1000, metadata={"user.k": "v"})
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, info)
        await files.change_attrs(file, NEW_ATTRS)
        assert store.calls["update_meta"] == 1
        assert store.calls["put_path"] == store.calls["put_data"] == 0
        assert store.fetch_log == []
        assert file.spool is None
        stored = await store.get_info("f")
        assert stored.nuid == info.nuid
        assert attrs_of(stored, DEFAULTS) == NEW_ATTRS
        assert stored.metadata["user.k"] == "v"
        assert file.base == stored
        assert harness.stored == [(file, stored)]

        await files.change_attrs(file, NEW_ATTRS, {"user.other": "1"})
        stored = await store.get_info("f")
        assert "user.k" not in stored.metadata
        assert stored.metadata["user.other"] == "1"
        assert store.calls["update_meta"] == 2
        assert "dirty" not in flags(file)


async def test_attributes_of_a_dirty_file_ride_with_its_next_upload(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("f", b"old")
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, info)
        await files.write(file, 0, b"new")
        await files.change_attrs(file, NEW_ATTRS, {"user.x": "y"})
        assert store.calls["update_meta"] == 0
        assert record_of(file).metadata[MODE_KEY] == "100640"  # a crash keeps them too
        assert record_of(file).metadata["user.x"] == "y"
        pending = files.create(4, "pending", NEW_ATTRS)
        await files.change_attrs(pending, PosixAttrs(stat.S_IFREG | 0o600, 1, 2, 3))
        assert record_of(pending).metadata[MODE_KEY] == "100600"
        assert store.calls["update_meta"] == 0
        await files.flush(file)
        await files.flush(pending)
        stored = await store.get_info("f")
        assert attrs_of(stored, DEFAULTS) == NEW_ATTRS
        assert stored.metadata["user.x"] == "y"
        assert await stored_bytes(store, "f") == b"new"
        assert attrs_of(await store.get_info("pending"), DEFAULTS) == PosixAttrs(
            stat.S_IFREG | 0o600, 1, 2, 3
        )
        assert store.calls["update_meta"] == 0


# Failures and retries -------------------------------------------------------------------------


async def test_a_failed_upload_keeps_the_file_dirty_and_a_retry_stores_it(tmp_path: Path) -> None:
    store = MemoryStore()
    flaky = FlakyStore(store, {("put_path", 1): errors.StoreUnavailableError("down")})
    async with open_files(flaky, tmp_path) as harness:
        files = harness.files
        file = files.create(3, "f", NEW_ATTRS)
        await files.write(file, 0, b"precious")
        with pytest.raises(errors.StoreUnavailableError):
            await files.flush(file)
        assert flags(file) == {"pending", "dirty", "failed"}  # still only in this mount
        assert record_of(file).name == "f"
        assert harness.stored == []
        assert files.dirty() == [file]
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("f")

        assert await files.retry_now() == []
        assert await stored_bytes(store, "f") == b"precious"
        assert flags(file) == set()
        assert harness.spool_dir.dirty_records() == []
        assert [info.name for _, info in harness.stored] == ["f"]


class TimedStore(FlakyStore):
    """Records the (virtual) time of every ``put_path``."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.put_times: list[float] = []

    async def put_path(self, meta: ObjectMeta, path: str) -> ObjectInfo:
        self.put_times.append(trio.current_time())
        return await super().put_path(meta, path)


@asynccontextmanager
async def retrying_files(store: Store, tmp_path: Path) -> AsyncIterator[tuple[Files, trio.Event]]:
    """Files with its retry task running, and an event set by the first file stored."""
    async with open_files(store, tmp_path) as harness, trio.open_nursery() as nursery:
        stored = trio.Event()
        harness.files.on_stored = lambda file, info: stored.set()
        await nursery.start(harness.files.run)
        yield harness.files, stored
        nursery.cancel_scope.cancel()


async def test_the_retry_task_stores_failed_files_with_backoff(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    store = MemoryStore()
    timed = TimedStore(store)
    failures = 7
    for n in range(1, failures + 1):
        timed.inject("put_path", n, errors.StoreUnavailableError("down"))
    async with retrying_files(timed, tmp_path) as (files, stored):
        file = files.create(3, "f", NEW_ATTRS)
        await files.write(file, 0, b"data")
        with pytest.raises(errors.StoreUnavailableError):
            await files.flush(file)
        with trio.fail_after(1000):
            await stored.wait()
    assert await stored_bytes(store, "f") == b"data"
    assert "dirty" not in flags(file)
    times = timed.put_times
    assert len(times) == failures + 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    expected = [RETRY_MIN]
    while len(expected) < failures:
        expected.append(min(expected[-1] * 2, RETRY_MAX))
    assert gaps == pytest.approx(expected, abs=0.01)


async def test_a_retry_waits_its_pause_even_when_the_idle_timer_is_about_to_ring(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """The retry task also wakes every RETRY_MIN while idle; a failure just before that must
    not be retried at once (a cluster electing a leader needs the pause)."""
    store = MemoryStore()
    timed = TimedStore(store)
    timed.inject("put_path", 1, errors.StoreUnavailableError("down"))
    async with retrying_files(timed, tmp_path) as (files, stored):
        file = files.create(3, "f", NEW_ATTRS)
        await files.write(file, 0, b"data")
        await trio.sleep(0.9 * RETRY_MIN)  # the idle timer rings at RETRY_MIN
        with pytest.raises(errors.StoreUnavailableError):
            await files.flush(file)
        failed_at = trio.current_time()
        with trio.fail_after(1000):
            await stored.wait()
    assert timed.put_times[1] - failed_at >= RETRY_MIN - 1e-6  # (float sums)


async def test_a_sealed_bucket_stops_the_retries_and_keeps_the_bytes(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """A seal is for good: the refused file stays dirty with its record (nothing lost), the
    retry task leaves it alone, and ``Files.sealed`` tells the adapter to refuse changes."""
    store = MemoryStore()
    async with open_files(store, tmp_path) as harness, trio.open_nursery() as nursery:
        files = harness.files
        await nursery.start(files.run)
        file = files.create(3, "f", NEW_ATTRS)
        await files.write(file, 0, b"data")
        await store.seal()
        with pytest.raises(errors.BucketSealedError):
            await files.flush(file)
        assert files.sealed
        await trio.sleep(10 * RETRY_MAX)  # many retry periods
        assert store.calls["put_path"] == 1
        assert "dirty" in flags(file)
        assert file.spool is not None
        assert file.spool.record_path.exists()
        nursery.cancel_scope.cancel()


async def test_a_dirty_file_released_without_a_flush_is_stored_by_the_retry_task(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """The kernel closes without a flush when its own writeback failed (a full spool disk):
    nobody will close the file again, so the retry task stores it."""
    store = MemoryStore()
    async with retrying_files(store, tmp_path) as (files, stored):
        file = files.create(3, "f", NEW_ATTRS)
        await files.write(file, 0, b"data")
        files.release(file)  # no flush
        assert "failed" not in flags(file)
        with trio.fail_after(5 * RETRY_MIN):
            await stored.wait()
    assert await stored_bytes(store, "f") == b"data"
    assert "dirty" not in flags(file)


async def test_a_failed_spool_write_is_never_stored_until_the_file_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full spool disk loses bytes the program wrote: storing the rest would be half a
    file. Its flush fails with EIO, retries and unmount leave it alone; a truncate to 0 starts
    it over and then it is stored as usual."""
    store = MemoryStore()
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = files.create(3, "f", NEW_ATTRS)
        await files.write(file, 0, b"first part ")
        assert file.spool is not None
        real = type(file.spool).pwrite

        def full(self: object, offset: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(type(file.spool), "pwrite", full)
        with pytest.raises(OSError, match="No space"):
            await files.write(file, 11, b"second part")
        monkeypatch.setattr(type(file.spool), "pwrite", real)
        with pytest.raises(OSError) as caught:
            await files.flush(file)
        assert caught.value.errno == errno.EIO
        assert await files.retry_now() == []  # not even tried
        assert store.calls["put_path"] == 0
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("f")
        await files.truncate(file, 0)
        await files.write(file, 0, b"whole again")
        await files.flush(file)
    assert await stored_bytes(store, "f") == b"whole again"


async def test_drain_stores_what_it_can_and_names_the_rest(tmp_path: Path) -> None:
    store = MemoryStore()
    flaky = FlakyStore(store, {("put_path", 2): errors.StoreUnavailableError("down")})
    async with open_files(flaky, tmp_path) as harness:
        files = harness.files
        one = files.create(3, "one", NEW_ATTRS)
        two = files.create(4, "two", NEW_ATTRS)
        clean = open_object(harness, 5, await store.put("clean", b"c"))
        await files.write(one, 0, b"1")
        await files.write(two, 0, b"2")
        assert await files.drain() == ["two"]
        assert await stored_bytes(store, "one") == b"1"
        assert files.dirty() == [two]
        assert "dirty" not in flags(clean)
        assert await files.drain() == []
        assert await stored_bytes(store, "two") == b"2"
        assert flaky.calls["put_path"] == 3


async def test_adopted_files_are_uploaded_as_their_records_say(tmp_path: Path) -> None:
    store = MemoryStore()
    gone = SpoolDir.open(tmp_path / "spool", mountpoint="/mnt/gone")
    left = gone.create()
    left.pwrite(0, b"left behind")
    left.mark_dirty(ObjectMeta(name="a/left", metadata={MODE_KEY: "100600", "user.k": "v"}))
    gone.close()  # its mount is gone, the dirty file stays
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        files.adopt(harness.spool_dir.adopt())
        (orphan,) = files.dirty()
        assert orphan.name == "a/left"
        assert orphan.ino == 0
        assert files.get(0) is None  # no inode: not in the mount before it is stored
        assert await files.retry_now() == []
        info = await store.get_info("a/left")
        assert await stored_bytes(store, "a/left") == b"left behind"
        assert info.metadata == {MODE_KEY: "100600", "user.k": "v"}
        assert harness.stored == [(orphan, info)]
        assert files.dirty() == []
        assert harness.data_files() == []  # stored and let go
        assert harness.spool_dir.dirty_records() == []
    assert not gone.folder.exists()


# Handles, unlink ------------------------------------------------------------------------------


async def test_release_of_a_clean_file_removes_its_spool(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("f", b"old")
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, info)
        await files.write(file, 0, b"new")
        await files.flush(file)
        assert file.spool is not None
        path = file.spool.path
        files.release(file)
        assert not path.exists()
        assert files.get(3) is None

        # A dirty file outlives its last handle, until it is stored.
        again = open_object(harness, 3, await store.get_info("f"))
        assert again is not file
        await files.write(again, 0, b"NEW")
        files.release(again)
        assert files.get(3) is again
        assert harness.data_files() != []
        await files.flush(again)
        assert files.get(3) is None
        assert harness.data_files() == []
        assert await stored_bytes(store, "f") == b"NEW"


async def only_here() -> None:
    """The name of a file never stored: only this mount knows it, nothing to delete."""
    await trio.lowlevel.checkpoint()


async def test_an_unlinked_file_keeps_its_bytes_and_is_never_uploaded(tmp_path: Path) -> None:
    store = MemoryStore()
    data = payload(3000)
    info = await store.put("doomed", data, chunk_size=1000)
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, info)

        async def delete() -> None:
            await store.delete("doomed")  # its chunks are purged

        await files.remove(file, delete)  # the bytes are copied in before the name goes
        assert "unlinked" in flags(file)
        assert files.read(file, 0, 5000) == data
        await files.flush(file)
        assert store.calls["put_path"] == 0
        assert files.dirty() == []
        files.release(file)
        assert files.get(3) is None
        assert harness.data_files() == []


async def test_a_dirty_file_unlinked_while_open_drops_its_record(tmp_path: Path) -> None:
    store = MemoryStore()
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = files.create(3, "tmp", NEW_ATTRS)
        await files.write(file, 0, b"scratch")
        await files.remove(file, only_here)
        assert "dirty" not in flags(file)
        assert harness.spool_dir.dirty_records() == []
        assert files.read(file, 0, 100) == b"scratch"
        assert await files.drain() == []
        assert store.calls["put_path"] == 0


async def test_writes_after_unlink_never_make_the_file_dirty(tmp_path: Path) -> None:
    """open, unlink, write, close: the scratch-file idiom must leave nothing to upload, now or
    at the next mount (a record would bring the name back from the dead)."""
    store = MemoryStore()
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = files.create(3, "tmp", NEW_ATTRS)
        await files.remove(file, only_here)
        await files.write(file, 0, b"scratch data")
        await files.truncate(file, 7)
        assert files.read(file, 0, 100) == b"scratch"
        assert "dirty" not in flags(file)
        assert harness.spool_dir.dirty_records() == []
        assert files.dirty() == []
        await files.flush(file)
        files.release(file)
        assert files.get(3) is None
        assert harness.data_files() == []
        assert await files.drain() == []
        assert store.calls["put_path"] == 0


async def test_attribute_changes_after_unlink_touch_no_object(tmp_path: Path) -> None:
    store = MemoryStore()
    info = await store.put("name", b"old")
    async with open_files(store, tmp_path) as harness:
        files = harness.files
        file = open_object(harness, 3, info)

        async def delete() -> None:
            await store.delete("name")

        await files.remove(file, delete)
        newcomer = await store.put("name", b"another client's", metadata={"user.k": "v"})
        await files.change_attrs(file, NEW_ATTRS)  # fchmod on the open descriptor
        assert file.attrs == NEW_ATTRS
        assert store.calls["update_meta"] == 0
        assert await store.get_info("name") == newcomer
        assert harness.stored == []


# Concurrency ----------------------------------------------------------------------------------


async def test_a_write_during_an_upload_waits_and_leaves_the_file_dirty(tmp_path: Path) -> None:
    store = MemoryStore()
    gate = trio.Event()
    flaky = FlakyStore(store, {("put_path", 1): Fault(gate=gate)})
    async with open_files(flaky, tmp_path) as harness:
        files = harness.files
        file = files.create(3, "f", NEW_ATTRS)
        await files.write(file, 0, b"first state")
        done: list[str] = []

        async def write_later() -> None:
            await files.write(file, 0, b"FIRST")
            done.append("write")

        async def truncate_later() -> None:
            await files.truncate(file, 20)
            done.append("truncate")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(files.flush, file)
            await wait_all_tasks_blocked()
            assert flaky.calls["put_path"] == 1  # the upload is in flight...
            nursery.start_soon(write_later)
            await wait_all_tasks_blocked()
            nursery.start_soon(truncate_later)
            await wait_all_tasks_blocked()
            assert done == []  # ...and the changes wait for it
            assert files.read(file, 0, 100) == b"first state"
            gate.set()
        assert done == ["write", "truncate"]
        assert await stored_bytes(store, "f") == b"first state"
        assert "dirty" in flags(file)  # the later changes are not stored yet
        assert record_of(file).name == "f"
        await files.flush(file)
        assert await stored_bytes(store, "f") == b"FIRST state" + bytes(9)
        assert "dirty" not in flags(file)
