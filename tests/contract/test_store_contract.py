"""One contract for every Store: the in-memory fake and the real bucket must answer alike.

Rules:
1. Every test runs twice, against ``MemoryStore`` and against ``BridgedStore`` on the session's
   nats-server (marked ``integration``), each in a fresh bucket. A test may not branch on which
   one it has; the only exception is a known defect, marked ``xfail`` with its reason.
2. Reads and the writes the protocol has (put_path, put_data, update_meta, rename, delete) go
   through the Store protocol. What it cannot do (uneven chunks, links, seal) goes through a
   writer with the same helper methods for both: the MemoryStore itself, or ``NatsWriter``,
   which does the same with osfs's own asyncio client on the bridge's thread (and with raw
   JetStream publishes for uneven chunks, as nats.go writes them from a pipe).
3. Every wait has a deadline (``WAIT``); a watch is read entry by entry across batches, since
   batch boundaries are not part of the contract.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
import trio
from nats.nuid import NUID

from osfs.bridge import BridgedStore
from osfs.core import errors
from osfs.core.digest import EMPTY_DIGEST, digest_of
from osfs.core.meta import DEFAULT_CHUNK_SIZE, ObjectInfo, ObjectLink, ObjectMeta, encode_meta
from osfs.core.store_api import Store, WatchBatch
from osfs.core.subjects import chunk_subject, meta_subject, stream_name
from osfs.store import ConnectOptions, ObjectStore
from tests.support.memory_store import MemoryStore

T = TypeVar("T")

WAIT = 10.0
"""Seconds any single expectation may take."""

INDEX_WAIT = 3.0
"""Seconds to wait for the index of a purged version before calling it a hang."""


class Writer(Protocol):
    """What the tests do to a bucket, as another client would."""

    async def put(
        self,
        name: str,
        data: bytes = b"",
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunk_sizes: Sequence[int] | None = None,
        description: str = "",
        metadata: Mapping[str, str] | None = None,
        link: ObjectLink | None = None,
    ) -> ObjectInfo: ...

    async def seal(self) -> None: ...


class NatsWriter:
    """MemoryStore's helper methods, done on the real bucket by osfs's asyncio client."""

    def __init__(self, bridged: BridgedStore, objects: ObjectStore) -> None:
        self._bridged = bridged
        self._objects = objects

    @classmethod
    async def open(cls, bridged: BridgedStore) -> NatsWriter:
        objects = await bridged.thread.call(
            lambda: bridged.connection.manager.object_store(bridged.bucket)
        )
        return cls(bridged, objects)

    async def aclose(self) -> None:
        await self._call(self._objects.aclose)

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await self._bridged.thread.call(fn)

    async def put(
        self,
        name: str,
        data: bytes = b"",
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunk_sizes: Sequence[int] | None = None,
        description: str = "",
        metadata: Mapping[str, str] | None = None,
        link: ObjectLink | None = None,
    ) -> ObjectInfo:
        if link is not None:
            if data:
                raise ValueError("a link has no content")
            return await self._call(lambda: self._link(name, link))
        if chunk_sizes is not None:
            sizes = list(chunk_sizes)
            info = ObjectInfo(
                name=name,
                bucket=self._objects.bucket,
                nuid=NUID().next().decode("ascii"),
                size=len(data),
                chunks=len(sizes),
                digest=digest_of(data),
                description=description,
                metadata=dict(metadata or {}),
                max_chunk_size=chunk_size,
            )
            return await self._call(lambda: self._put_raw(info, data, sizes))
        meta = ObjectMeta(
            name=name,
            description=description,
            metadata=dict(metadata or {}),
            chunk_size=chunk_size,
        )
        return await self._call(lambda: self._objects.put(meta, data))

    async def _link(self, name: str, link: ObjectLink) -> ObjectInfo:
        if link.is_bucket_link:
            return await self._objects.add_bucket_link(name, link.bucket)
        if link.bucket == self._objects.bucket:
            target = await self._objects.get_info(link.name, show_deleted=True)
        else:
            target = ObjectInfo(name=link.name, bucket=link.bucket)
        return await self._objects.add_link(name, target)

    async def _put_raw(self, info: ObjectInfo, data: bytes, sizes: list[int]) -> ObjectInfo:
        """Chunks of the given sizes, then the meta document, then the old chunks purged."""
        js = self._bridged.connection.nc.jetstream()
        bucket = self._objects.bucket
        try:
            previous: ObjectInfo | None = await self._objects.get_info(info.name, show_deleted=True)
        except errors.ObjectNotFoundError:
            previous = None
        start = 0
        for size in sizes:
            await js.publish(chunk_subject(bucket, info.nuid), data[start : start + size])
            start += size
        document = encode_meta(replace(info, mtime_ns=time.time_ns()))
        await js.publish(meta_subject(bucket, info.name), document, headers={"Nats-Rollup": "sub"})
        if previous is not None and previous.nuid and not previous.deleted:
            await js.purge_stream(stream_name(bucket), subject=chunk_subject(bucket, previous.nuid))
        return await self._objects.get_info(info.name)

    async def seal(self) -> None:
        await self._call(self._objects.seal)


@dataclass(frozen=True)
class Backend:
    kind: str
    bucket: str
    url: str = ""


@dataclass(frozen=True)
class Bucket:
    """A Store under test and the writer that changes it."""

    store: Store
    writer: Writer
    kind: str
    name: str


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, bucket_name: str) -> Backend:
    """Which Store to test; the real one brings up the session's nats-server."""
    if request.param == "nats":
        return Backend("nats", bucket_name, url=request.getfixturevalue("nats_url"))
    return Backend("memory", bucket_name)


@pytest.fixture
async def bucket(backend: Backend) -> AsyncIterator[Bucket]:
    """A fresh, empty bucket behind the Store protocol."""
    if backend.kind == "memory":
        memory = MemoryStore(backend.bucket)
        yield Bucket(memory, memory, backend.kind, backend.bucket)
        return
    bridged = await BridgedStore.open(
        ConnectOptions(servers=(backend.url,)), backend.bucket, create=True
    )
    try:
        writer = await NatsWriter.open(bridged)
        try:
            yield Bucket(bridged, writer, backend.kind, backend.bucket)
        finally:
            await writer.aclose()
    finally:
        await bridged.aclose()


class Entries:
    """A watch read entry by entry, whatever its batches."""

    def __init__(self, feed: AsyncIterator[WatchBatch]) -> None:
        self._feed = feed
        self._buffer: deque[ObjectInfo | None] = deque()

    async def take(self, count: int) -> list[ObjectInfo | None]:
        with trio.fail_after(WAIT):
            while len(self._buffer) < count:
                self._buffer.extend(await anext(self._feed))
        return [self._buffer.popleft() for _ in range(count)]

    async def until_marker(self) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        while True:
            [entry] = await self.take(1)
            if entry is None:
                return found
            found.append(entry)


def payload(size: int, seed: int = 1) -> bytes:
    return bytes((i * 31 + seed * 7 + i // 251) % 256 for i in range(size))


def sizes_of(offsets: Sequence[int]) -> list[int]:
    return [b - a for a, b in itertools.pairwise(offsets)]


def named(entries: Sequence[ObjectInfo | None]) -> list[tuple[str, bool] | None]:
    return [None if e is None else (e.name, e.deleted) for e in entries]


# Infos ------------------------------------------------------------------------------------------


async def test_the_store_names_its_bucket(bucket: Bucket) -> None:
    assert bucket.store.bucket == bucket.name


async def test_get_info_of_a_missing_or_deleted_object_raises_not_found(bucket: Bucket) -> None:
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.get_info("missing")
    await bucket.writer.put("gone", b"x")
    await bucket.store.delete("gone")
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.get_info("gone")
    with pytest.raises(errors.InvalidObjectNameError):
        await bucket.store.get_info("")


async def test_get_info_describes_what_was_put(bucket: Bucket) -> None:
    data = payload(4500)
    put = await bucket.writer.put(
        "dir/file.txt", data, chunk_size=1000, description="d", metadata={"k": "v"}
    )
    info = await bucket.store.get_info("dir/file.txt")
    assert replace(info, mtime_ns=0) == replace(put, mtime_ns=0)
    assert (info.name, info.bucket, info.description) == ("dir/file.txt", bucket.name, "d")
    assert (info.size, info.chunks, info.digest) == (4500, 5, digest_of(data))
    assert dict(info.metadata) == {"k": "v"}
    assert (info.max_chunk_size, info.deleted, info.link) == (1000, False, None)
    assert info.nuid
    assert info.mtime_ns > 0
    assert info.revision == 6  # five chunks, then the meta document, in a fresh stream
    again = await bucket.writer.put("dir/file.txt", b"short", chunk_size=1000)
    assert again.nuid != info.nuid
    assert again.revision == 8


# Chunk index and fetch --------------------------------------------------------------------------


async def test_chunk_index_of_uniform_chunks(bucket: Bucket) -> None:
    data = payload(4500)
    info = await bucket.writer.put("o", data, chunk_size=1000)
    index = await bucket.store.chunk_index(info)
    assert index.nuid == info.nuid
    assert index.offsets == (0, 1000, 2000, 3000, 4000, 4500)
    assert index.seqs == (1, 2, 3, 4, 5)
    assert (index.count, index.size) == (5, 4500)


async def test_chunk_index_of_uneven_chunks(bucket: Bucket) -> None:
    sizes = [1000, 1000, 700, 17, 1000, 1, 300]
    data = payload(sum(sizes))
    info = await bucket.writer.put("o", data, chunk_size=1000, chunk_sizes=sizes)
    assert (info.size, info.chunks, info.digest) == (len(data), len(sizes), digest_of(data))
    index = await bucket.store.chunk_index(info)
    assert sizes_of(index.offsets) == sizes
    chunks = await bucket.store.fetch_chunks(index, range(index.count))
    assert [len(chunk) for chunk in chunks] == sizes
    assert b"".join(chunks) == data


async def test_an_empty_object_has_an_empty_index(bucket: Bucket) -> None:
    info = await bucket.writer.put("empty", b"")
    assert (info.size, info.chunks) == (0, 0)
    index = await bucket.store.chunk_index(info)
    assert (index.count, index.size) == (0, 0)
    assert await bucket.store.fetch_chunks(index, []) == []


async def test_fetch_chunks_returns_payloads_in_the_order_asked(bucket: Bucket) -> None:
    data = payload(4500)
    info = await bucket.writer.put("o", data, chunk_size=1000)
    index = await bucket.store.chunk_index(info)
    got = await bucket.store.fetch_chunks(index, [3, 0, 4, 0])
    assert got == [data[3000:4000], data[:1000], data[4000:], data[:1000]]


async def test_after_an_overwrite_the_old_version_cannot_be_fetched(bucket: Bucket) -> None:
    old, new = payload(4500, seed=1), payload(2500, seed=2)
    first = await bucket.writer.put("o", old, chunk_size=1000)
    old_index = await bucket.store.chunk_index(first)
    second = await bucket.writer.put("o", new, chunk_size=1000)
    assert second.nuid != first.nuid
    assert second.revision > first.revision
    with pytest.raises(errors.StaleVersionError):
        await bucket.store.fetch_chunks(old_index, [0])
    current = await bucket.store.get_info("o")
    assert current.nuid == second.nuid
    index = await bucket.store.chunk_index(current)
    assert b"".join(await bucket.store.fetch_chunks(index, range(index.count))) == new


async def test_chunk_index_of_a_replaced_version_is_stale(bucket: Bucket) -> None:
    first = await bucket.writer.put("o", payload(4500), chunk_size=1000)
    await bucket.writer.put("o", payload(10), chunk_size=1000)
    with trio.fail_after(INDEX_WAIT), pytest.raises(errors.StaleVersionError):
        await bucket.store.chunk_index(first)


async def test_delete_leaves_a_marker_and_the_version_cannot_be_fetched(bucket: Bucket) -> None:
    info = await bucket.writer.put("o", payload(2500), chunk_size=1000, metadata={"k": "v"})
    index = await bucket.store.chunk_index(info)
    marker = await bucket.store.delete("o")
    assert (marker.name, marker.deleted, marker.size, marker.chunks) == ("o", True, 0, 0)
    assert (marker.digest, marker.nuid, dict(marker.metadata)) == ("", info.nuid, {"k": "v"})
    assert marker.revision > info.revision
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.fetch_chunks(index, [0])
    again = await bucket.store.delete("o")  # deleting a deleted object is not an error
    assert again.deleted
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.delete("never-was")
    back = await bucket.writer.put("o", b"back")
    assert (await bucket.store.get_info("o")).nuid == back.nuid


async def test_rename_moves_the_document_and_keeps_the_version(bucket: Bucket) -> None:
    data = payload(2500)
    info = await bucket.writer.put("a", data, chunk_size=1000, metadata={"k": "v"})
    await bucket.writer.put("taken", b"x")
    moved = await bucket.store.rename("a", "b")
    assert (moved.name, moved.nuid, moved.digest, moved.size) == ("b", info.nuid, info.digest, 2500)
    assert dict(moved.metadata) == {"k": "v"}
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.get_info("a")
    current = await bucket.store.get_info("b")
    assert current.nuid == info.nuid
    index = await bucket.store.chunk_index(current)
    assert b"".join(await bucket.store.fetch_chunks(index, range(index.count))) == data
    with pytest.raises(errors.ObjectAlreadyExistsError):
        await bucket.store.rename("b", "taken")
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.rename("missing", "elsewhere")


async def test_links_have_no_content_and_name_their_target(bucket: Bucket) -> None:
    await bucket.writer.put("target", b"bytes")
    target = ObjectLink(bucket=bucket.name, name="target")
    await bucket.writer.put("ln", link=target)
    info = await bucket.store.get_info("ln")
    assert (info.link, info.size, info.chunks) == (target, 0, 0)
    assert (await bucket.store.chunk_index(info)).count == 0
    with pytest.raises(errors.NoLinkToLinkError):
        await bucket.writer.put("ln2", link=ObjectLink(bucket=bucket.name, name="ln"))
    with pytest.raises(errors.ObjectAlreadyExistsError):
        await bucket.writer.put("target", link=ObjectLink(bucket="elsewhere"))


# Writes through the protocol ------------------------------------------------------------------


async def read_back(store: Store, info: ObjectInfo) -> bytes:
    """The whole content of ``info``'s version, through the chunk index."""
    index = await store.chunk_index(info)
    assert (index.count, index.size) == (info.chunks, info.size)
    return b"".join(await store.fetch_chunks(index, range(index.count)))


async def test_put_path_round_trip_and_the_watch_sees_its_revision(
    bucket: Bucket, tmp_path: Path
) -> None:
    data = payload(4500)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    meta = ObjectMeta(
        name="dir/file.bin",
        description="d",
        headers={"X-A": ("1", "2")},
        metadata={"osfs.mode": "100644"},
        chunk_size=1000,
    )
    async with bucket.store.watch() as feed:
        entries = Entries(feed)
        assert await entries.take(1) == [None]
        put = await bucket.store.put_path(meta, str(source))
        [seen] = await entries.take(1)
    assert (put.name, put.size, put.chunks, put.digest) == (
        "dir/file.bin",
        4500,
        5,
        digest_of(data),
    )
    assert (put.description, dict(put.headers), dict(put.metadata)) == (
        "d",
        {"X-A": ("1", "2")},
        {"osfs.mode": "100644"},
    )
    assert (put.max_chunk_size, put.deleted, put.link) == (1000, False, None)
    assert put.revision == 6  # five chunks, then the meta document, in a fresh stream
    assert seen is not None
    assert (seen.name, seen.nuid, seen.revision) == (put.name, put.nuid, put.revision)
    info = await bucket.store.get_info("dir/file.bin")
    assert replace(info, mtime_ns=0) == replace(put, mtime_ns=0)
    assert await read_back(bucket.store, info) == data


async def test_put_path_of_a_large_file_uses_default_chunks(bucket: Bucket, tmp_path: Path) -> None:
    data = payload(2 * DEFAULT_CHUNK_SIZE + 17)
    source = tmp_path / "large.bin"
    source.write_bytes(data)
    put = await bucket.store.put_path(ObjectMeta(name="large"), str(source))
    assert (put.size, put.chunks, put.max_chunk_size) == (len(data), 3, DEFAULT_CHUNK_SIZE)
    assert await read_back(bucket.store, put) == data


async def test_put_path_of_a_missing_file_raises_and_stores_nothing(
    bucket: Bucket, tmp_path: Path
) -> None:
    before = await bucket.store.put_data(ObjectMeta(name="o"), b"before")
    with pytest.raises(FileNotFoundError):
        await bucket.store.put_path(ObjectMeta(name="o"), str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        await bucket.store.put_path(ObjectMeta(name="new"), str(tmp_path / "missing"))
    assert (await bucket.store.get_info("o")).nuid == before.nuid
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.get_info("new")
    with pytest.raises(errors.InvalidObjectNameError):
        await bucket.store.put_data(ObjectMeta(name=""), b"x")


async def test_put_data_of_an_empty_and_a_small_object(bucket: Bucket) -> None:
    empty = await bucket.store.put_data(ObjectMeta(name="dir/", metadata={"k": "v"}), b"")
    assert (empty.size, empty.chunks, empty.digest) == (0, 0, EMPTY_DIGEST)
    assert empty.revision == 1  # no chunks: the meta document is the first message
    assert dict((await bucket.store.get_info("dir/")).metadata) == {"k": "v"}
    assert await read_back(bucket.store, empty) == b""
    small = await bucket.store.put_data(ObjectMeta(name="ln", description="link"), b"target")
    assert (small.size, small.chunks, small.digest) == (6, 1, digest_of(b"target"))
    assert small.revision == 3
    assert await read_back(bucket.store, await bucket.store.get_info("ln")) == b"target"


async def test_put_data_replaces_and_purges_the_previous_version(bucket: Bucket) -> None:
    first = await bucket.store.put_data(ObjectMeta(name="o", chunk_size=1000), payload(2500))
    old_index = await bucket.store.chunk_index(first)
    second = await bucket.store.put_data(ObjectMeta(name="o"), b"second")
    assert second.nuid != first.nuid
    assert second.revision > first.revision
    with pytest.raises(errors.StaleVersionError):
        await bucket.store.fetch_chunks(old_index, [0])
    assert await read_back(bucket.store, await bucket.store.get_info("o")) == b"second"


async def test_update_meta_changes_the_document_and_keeps_the_data(bucket: Bucket) -> None:
    data = payload(2500)
    put = await bucket.store.put_data(
        ObjectMeta(name="o", description="old", metadata={"k": "v"}, chunk_size=1000), data
    )
    index = await bucket.store.chunk_index(put)
    meta = ObjectMeta(name="o", description="new", headers={"H": ("1",)}, metadata={"m": "2"})
    updated = await bucket.store.update_meta("o", meta)
    assert (updated.nuid, updated.size, updated.chunks, updated.digest) == (
        put.nuid,
        put.size,
        put.chunks,
        put.digest,
    )
    assert (updated.description, dict(updated.headers), dict(updated.metadata)) == (
        "new",
        {"H": ("1",)},
        {"m": "2"},
    )
    assert updated.max_chunk_size == 1000
    assert updated.revision > put.revision
    info = await bucket.store.get_info("o")
    assert replace(info, mtime_ns=0) == replace(updated, mtime_ns=0)
    assert await bucket.store.fetch_chunks(index, range(index.count)) == [
        data[:1000],
        data[1000:2000],
        data[2000:],
    ]
    with pytest.raises(ValueError):
        await bucket.store.update_meta("o", ObjectMeta(name="other"))
    with pytest.raises(errors.UpdateMetaDeletedError):
        await bucket.store.update_meta("missing", ObjectMeta(name="missing"))
    await bucket.store.delete("o")
    with pytest.raises(errors.UpdateMetaDeletedError):
        await bucket.store.update_meta("o", ObjectMeta(name="o"))


async def test_rename_onto_a_live_object_needs_overwrite_and_purges_it(bucket: Bucket) -> None:
    data = payload(2500, seed=1)
    source = await bucket.store.put_data(ObjectMeta(name="src", chunk_size=1000), data)
    target = await bucket.store.put_data(
        ObjectMeta(name="dst", chunk_size=1000), payload(3500, seed=2)
    )
    target_index = await bucket.store.chunk_index(target)
    with pytest.raises(errors.ObjectAlreadyExistsError):
        await bucket.store.rename("src", "dst")
    assert (await bucket.store.get_info("src")).nuid == source.nuid
    assert (await bucket.store.get_info("dst")).nuid == target.nuid
    async with bucket.store.watch() as feed:
        entries = Entries(feed)
        await entries.until_marker()
        moved = await bucket.store.rename("src", "dst", overwrite=True)
        await bucket.store.put_data(ObjectMeta(name="sentinel"), b"")
        # The new document of "dst", and nothing at all for "src" (its subject is purged).
        assert named(await entries.take(2)) == [("dst", False), ("sentinel", False)]
    assert (moved.name, moved.nuid, moved.digest, moved.size) == (
        "dst",
        source.nuid,
        source.digest,
        2500,
    )
    assert moved.revision > target.revision
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.get_info("src")
    current = await bucket.store.get_info("dst")
    assert (current.nuid, current.revision) == (source.nuid, moved.revision)
    assert await read_back(bucket.store, current) == data
    with pytest.raises(errors.StaleVersionError):
        await bucket.store.fetch_chunks(target_index, [0])
    # An info of the replaced version that was never indexed: its index is stale too.
    other = await bucket.store.put_data(ObjectMeta(name="other", chunk_size=1000), payload(1500))
    await bucket.store.rename("dst", "other", overwrite=True)
    with trio.fail_after(INDEX_WAIT), pytest.raises(errors.StaleVersionError):
        await bucket.store.chunk_index(other)
    assert await read_back(bucket.store, await bucket.store.get_info("other")) == data


async def test_rename_onto_a_free_or_deleted_name_and_to_itself(bucket: Bucket) -> None:
    source = await bucket.store.put_data(ObjectMeta(name="a"), b"content")
    await bucket.store.put_data(ObjectMeta(name="gone"), b"old")
    await bucket.store.delete("gone")
    moved = await bucket.store.rename("a", "gone")  # a deleted name may be reused
    assert (moved.name, moved.nuid) == ("gone", source.nuid)
    same = await bucket.store.rename("gone", "gone")  # a no-op: nothing is published
    assert replace(same, mtime_ns=0) == replace(moved, mtime_ns=0)
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.rename("a", "b")
    with pytest.raises(errors.ObjectNotFoundError):
        await bucket.store.rename("never-was", "b", overwrite=True)
    with pytest.raises(errors.InvalidObjectNameError):
        await bucket.store.rename("gone", "")


async def test_every_write_on_a_sealed_bucket_raises(bucket: Bucket, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"file")
    keep = await bucket.store.put_data(ObjectMeta(name="keep"), b"keep")
    await bucket.store.put_data(ObjectMeta(name="other"), b"other")
    await bucket.writer.seal()
    writes: list[Callable[[], Awaitable[ObjectInfo]]] = [
        lambda: bucket.store.put_path(ObjectMeta(name="keep"), str(source)),
        lambda: bucket.store.put_path(ObjectMeta(name="new"), str(source)),
        lambda: bucket.store.put_data(ObjectMeta(name="new"), b""),
        lambda: bucket.store.update_meta("keep", ObjectMeta(name="keep", description="d")),
        lambda: bucket.store.rename("keep", "free"),
        lambda: bucket.store.rename("keep", "other", overwrite=True),
        lambda: bucket.store.delete("keep"),
    ]
    for write in writes:
        with pytest.raises(errors.BucketSealedError):
            await write()
    info = await bucket.store.get_info("keep")
    assert (info.nuid, info.revision) == (keep.nuid, keep.revision)
    assert await read_back(bucket.store, info) == b"keep"


# Watch ------------------------------------------------------------------------------------------


async def test_watch_of_an_empty_bucket_starts_with_the_marker(bucket: Bucket) -> None:
    async with bucket.store.watch() as feed:
        entries = Entries(feed)
        assert await entries.take(1) == [None]
        put = await bucket.writer.put("first", b"1")
        [entry] = await entries.take(1)
        assert entry is not None
        assert (entry.name, entry.nuid, entry.revision) == ("first", put.nuid, put.revision)


async def test_watch_delivers_latest_documents_then_one_marker_then_changes(
    bucket: Bucket,
) -> None:
    writer, store = bucket.writer, bucket.store
    await writer.put("a", b"one")
    await writer.put("b", b"two", metadata={"k": "v"})
    await writer.put("a", b"three")
    await store.delete("b")
    renamed = await writer.put("c", b"c")
    await store.rename("c", "d")
    async with store.watch() as feed:
        entries = Entries(feed)
        initial = await entries.until_marker()
        # The last document of every name, delete markers included, in stream order; the
        # renamed-away name has no document left at all.
        assert named(initial) == [("a", False), ("b", True), ("d", False)]
        assert [e.revision for e in initial] == sorted(e.revision for e in initial)
        a, b, d = initial
        assert (a.size, a.digest) == (5, digest_of(b"three"))
        assert (b.size, b.digest, dict(b.metadata)) == (0, "", {"k": "v"})
        assert d.nuid == renamed.nuid
        await writer.put("e", b"eee")
        await store.delete("a")
        await store.rename("d", "f")  # the new name only: no delete marker for "d"
        await writer.put("sentinel", b"")
        live = await entries.take(4)
        assert named(live) == [("e", False), ("a", True), ("f", False), ("sentinel", False)]
        revisions = [e.revision for e in live if e is not None]
        assert revisions == sorted(revisions)
        assert revisions[0] > d.revision
        assert live[2] is not None
        assert live[2].nuid == renamed.nuid


# Status -----------------------------------------------------------------------------------------


async def test_status_reports_size_messages_and_sealed(bucket: Bucket) -> None:
    empty = await bucket.store.status()
    assert (empty.bucket, empty.sealed, empty.messages, empty.size) == (bucket.name, False, 0, 0)
    await bucket.writer.put("keep", b"k" * 100)
    await bucket.writer.put("o", payload(4500), chunk_size=1000)
    full = await bucket.store.status()
    assert full.messages == 2 + 6  # chunks and one meta document per object
    assert full.size >= 4600
    await bucket.store.delete("o")
    deleted = await bucket.store.status()
    assert deleted.messages == 2 + 1  # the chunks purged, the marker in place of the document
    assert deleted.size < full.size
    await bucket.writer.seal()
    sealed = await bucket.store.status()
    assert sealed.sealed
    with pytest.raises(errors.BucketSealedError):
        await bucket.writer.put("late", b"refused")
    info = await bucket.store.get_info("keep")  # reads keep working
    index = await bucket.store.chunk_index(info)
    assert await bucket.store.fetch_chunks(index, [0]) == [b"k" * 100]
