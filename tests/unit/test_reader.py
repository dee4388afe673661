"""The chunk reader over the in-memory store: bytes, crossings, single flight, readahead, digests.

Rules:
1. No network: ``MemoryStore`` plays the bucket, ``FlakyStore`` injects faults and holds calls at
   gates, and its ``calls`` / the store's ``fetch_log`` count the crossings a real mount would
   make.
2. No sleeps: concurrency is arranged with gates and ``trio.testing.wait_all_tasks_blocked``;
   tests where time matters run on the autojump clock.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Sequence
from typing import Any

import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked

from osfs.core import errors
from osfs.core.cache import ChunkCache
from osfs.core.meta import ObjectInfo, ObjectLink
from osfs.fs import reader as reader_module
from osfs.fs.reader import (
    HASH_BATCH_BYTES,
    HASH_BATCHES_QUEUED,
    RETRY_FOR,
    RETRY_PAUSES,
    ChunkReader,
    ReadHandle,
    open_chunk_reader,
)
from tests.support.memory_store import Fault, FlakyStore, MemoryStore

MIB = 1 << 20
Outcome = bytes | Exception


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


async def read_into(
    results: dict[str, Outcome], name: str, handle: ReadHandle, offset: int, size: int
) -> None:
    try:
        results[name] = await handle.read(offset, size)
    except Exception as exc:
        results[name] = exc


async def read_all(handle: ReadHandle, piece: int) -> bytes:
    out = bytearray()
    for offset in range(0, handle.size, piece):
        out += await handle.read(offset, piece)
    return bytes(out)


# Bytes ------------------------------------------------------------------------------------------


async def test_reads_spanning_chunks_return_exactly_the_bytes_asked_for() -> None:
    store = MemoryStore()
    data = payload(10_000)
    info = await store.put("o", data, chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        for offset in range(0, 10_500, 333):
            for length in (0, 1, 999, 1000, 1001, 2500, 20_000):
                got = await handle.read(offset, length)
                assert got == data[offset : offset + length], (offset, length)


async def test_uneven_chunks_are_mapped_through_their_real_sizes() -> None:
    store = MemoryStore()
    sizes = [4096, 4096, 3000, 17, 4096, 1, 2500]
    data = payload(sum(sizes))
    info = await store.put("o", data, chunk_size=4096, chunk_sizes=sizes)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        for offset in range(0, len(data) + 10, 211):
            for length in (1, 17, 100, 4097, 10_000):
                got = await handle.read(offset, length)
                assert got == data[offset : offset + length], (offset, length)


async def test_reads_at_or_past_the_end_are_empty_and_across_it_short() -> None:
    store = MemoryStore()
    data = payload(2500)
    info = await store.put("o", data, chunk_size=1000)
    empty = await store.put("empty", b"")
    async with open_chunk_reader(store, ChunkCache(MIB)) as reader:
        handle = await reader.open(info)
        assert handle.size == 2500
        assert await handle.read(2500, 10) == b""
        assert await handle.read(10_000, 10) == b""
        assert await handle.read(2495, 100) == data[-5:]
        nothing = await reader.open(empty)
        assert await nothing.read(0, 4096) == b""
    assert store.calls["chunk_index"] == 1  # the empty object needs no crossing


async def test_negative_offsets_and_sizes_are_refused() -> None:
    store = MemoryStore()
    info = await store.put("o", b"abc")
    reader = ChunkReader(store, ChunkCache(MIB), readahead_chunks=0)
    handle = await reader.open(info)
    with pytest.raises(ValueError):
        await handle.read(-1, 1)
    with pytest.raises(ValueError):
        await handle.read(0, -1)


# Crossings --------------------------------------------------------------------------------------


async def test_cached_chunks_are_served_without_a_fetch() -> None:
    store = MemoryStore()
    data = payload(5000)
    info = await store.put("o", data, chunk_size=1000)
    cache = ChunkCache(MIB)
    async with open_chunk_reader(store, cache, readahead_chunks=0) as reader:
        handle = await reader.open(info)
        assert await handle.read(0, 3000) == data[:3000]
        assert store.calls["fetch_chunks"] == 1
        assert await handle.read(500, 2000) == data[500:2500]
        other = await reader.open(info)  # another open file of the same version
        assert await other.read(0, 3000) == data[:3000]
    assert store.calls["fetch_chunks"] == 1
    assert cache.statistics().hits == 6


async def test_a_read_of_many_uncached_chunks_is_one_fetch() -> None:
    store = MemoryStore()
    data = payload(10_000)
    info = await store.put("o", data, chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        assert await handle.read(3500, 2000) == data[3500:5500]  # chunks 3, 4, 5
        assert await handle.read(0, 10_000) == data
    assert store.fetch_log == [
        (info.nuid, (3, 4, 5)),
        (info.nuid, (0, 1, 2, 6, 7, 8, 9)),  # only the missing ones, in one crossing
    ]


async def test_the_index_is_fetched_once_per_version() -> None:
    store = MemoryStore()
    info = await store.put("o", payload(5000), chunk_size=1000)
    gate = trio.Event()
    flaky = FlakyStore(store, {("chunk_index", 1): Fault(gate=gate)})
    async with open_chunk_reader(flaky, ChunkCache(MIB)) as reader:
        handles: list[ReadHandle] = []

        async def open_one() -> None:
            handles.append(await reader.open(info))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(open_one)
            await wait_all_tasks_blocked()
            gate.set()
        handles.append(await reader.open(info))
        assert len(handles) == 4
        assert reader.statistics().index_calls == 1
    assert store.calls["chunk_index"] == 1


async def test_a_failed_index_fetch_reaches_every_waiting_open() -> None:
    store = MemoryStore()
    info = await store.put("o", payload(5000), chunk_size=1000)
    gate = trio.Event()
    failure = errors.OsfsError("refused")  # not retried (rule 6)
    flaky = FlakyStore(store, {("chunk_index", 1): Fault(gate=gate, error=failure)})
    async with open_chunk_reader(flaky, ChunkCache(MIB)) as reader:
        outcomes: list[BaseException] = []

        async def open_one() -> None:
            try:
                await reader.open(info)
            except errors.OsfsError as exc:
                outcomes.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(open_one)
            await wait_all_tasks_blocked()
            gate.set()
        assert outcomes == [failure] * 3
        assert (await reader.open(info)).size == 5000  # the next open tries again


# Single flight ----------------------------------------------------------------------------------


async def test_concurrent_reads_of_one_chunk_share_one_fetch() -> None:
    store = MemoryStore()
    data = payload(3000)
    info = await store.put("o", data, chunk_size=1000)
    gate = trio.Event()
    flaky = FlakyStore(store, {("fetch_chunks", 1): Fault(gate=gate)})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        first, second = await reader.open(info), await reader.open(info)
        results: dict[str, Outcome] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_into, results, "a", first, 100, 500)
            nursery.start_soon(read_into, results, "b", second, 0, 1000)
            await wait_all_tasks_blocked()
            assert reader.statistics().chunks_in_flight == 1
            gate.set()
    assert results == {"a": data[100:600], "b": data[:1000]}
    assert flaky.calls["fetch_chunks"] == 1
    assert store.fetch_log == [(info.nuid, (0,))]


async def test_overlapping_reads_fetch_each_chunk_once() -> None:
    store = MemoryStore()
    data = payload(3000)
    info = await store.put("o", data, chunk_size=1000)
    gate = trio.Event()
    flaky = FlakyStore(store, {("fetch_chunks", 1): Fault(gate=gate)})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        results: dict[str, Outcome] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_into, results, "a", handle, 0, 2000)  # chunks 0, 1
            await wait_all_tasks_blocked()
            nursery.start_soon(read_into, results, "b", handle, 1500, 1500)  # chunks 1, 2
            await wait_all_tasks_blocked()
            gate.set()
    assert results == {"a": data[:2000], "b": data[1500:]}
    assert sorted(store.fetch_log) == [(info.nuid, (0, 1)), (info.nuid, (2,))]


async def test_a_failed_fetch_wakes_every_waiter_with_the_error() -> None:
    store = MemoryStore()
    data = payload(3000)
    info = await store.put("o", data, chunk_size=1000)
    gate = trio.Event()
    failure = errors.OsfsError("refused")  # not retried (rule 6)
    flaky = FlakyStore(store, {("fetch_chunks", 1): Fault(gate=gate, error=failure)})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        handles = [await reader.open(info) for _ in range(3)]
        results: dict[str, Outcome] = {}
        async with trio.open_nursery() as nursery:
            for i, handle in enumerate(handles):
                nursery.start_soon(read_into, results, str(i), handle, i * 10, 100)
            await wait_all_tasks_blocked()
            gate.set()
        assert results == {"0": failure, "1": failure, "2": failure}
        assert reader.statistics().chunks_in_flight == 0
        assert await handles[0].read(0, 100) == data[:100]  # nothing is left claimed
    assert flaky.calls["fetch_chunks"] == 2


async def test_waiters_of_a_cancelled_read_fetch_the_chunk_themselves() -> None:
    store = MemoryStore()
    data = payload(3000)
    info = await store.put("o", data, chunk_size=1000)
    never = trio.Event()
    flaky = FlakyStore(store, {("fetch_chunks", 1): Fault(gate=never)})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        results: dict[str, Outcome] = {}
        interrupted = trio.CancelScope()

        async def interrupted_read() -> None:
            with interrupted:
                await handle.read(0, 1000)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(interrupted_read)
            await wait_all_tasks_blocked()
            nursery.start_soon(read_into, results, "waiter", handle, 0, 1000)
            await wait_all_tasks_blocked()
            interrupted.cancel()  # as a FUSE interrupt would
        assert interrupted.cancelled_caught
        assert results == {"waiter": data[:1000]}
        assert reader.statistics().chunks_in_flight == 0
    assert flaky.calls["fetch_chunks"] == 2


# Readahead --------------------------------------------------------------------------------------


async def test_sequential_reads_prefetch_a_growing_window() -> None:
    store = MemoryStore()
    data = payload(64 * 1000)
    info = await store.put("o", data, chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=8) as reader:
        handle = await reader.open(info)
        out = bytearray()
        for offset in range(0, len(data), 1000):
            out += await handle.read(offset, 1000)
            await wait_all_tasks_blocked()  # let the prefetch land
        stats = reader.statistics()
    assert bytes(out) == data
    assert store.fetch_log[:6] == [
        (info.nuid, (0,)),  # the first read itself
        (info.nuid, (1,)),  # window 1
        (info.nuid, (2, 3)),  # window 2
        (info.nuid, (4, 5, 6)),  # window 4: chunk 3 is cached already
        (info.nuid, (7, 8, 9, 10, 11)),  # window 8, the maximum
        (info.nuid, (12,)),
    ]
    assert stats.fetch_calls == stats.prefetch_calls + 1  # every later read hit the cache
    assert sorted(p for _, positions in store.fetch_log for p in positions) == list(range(64))


async def test_random_reads_fetch_only_what_they_read() -> None:
    store = MemoryStore()
    data = payload(64 * 1000)
    info = await store.put("o", data, chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=8) as reader:
        handle = await reader.open(info)
        for chunk in (50, 3, 40, 10, 60, 0, 30):
            assert await handle.read(chunk * 1000 + 5, 10) == data[chunk * 1000 + 5 :][:10]
            await wait_all_tasks_blocked()
        assert reader.statistics().prefetch_calls == 0
    assert [positions for _, positions in store.fetch_log] == [
        (50,),
        (3,),
        (40,),
        (10,),
        (60,),
        (0,),
        (30,),
    ]


async def test_readahead_stops_at_the_end_of_the_object() -> None:
    store = MemoryStore()
    data = payload(3000)
    info = await store.put("o", data, chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=8) as reader:
        handle = await reader.open(info)
        for offset in (0, 1000, 2000, 3000):
            await handle.read(offset, 1000)
            await wait_all_tasks_blocked()
    assert [positions for _, positions in store.fetch_log] == [(0,), (1,), (2,)]


async def test_a_read_never_waits_for_its_own_prefetch() -> None:
    store = MemoryStore()
    data = payload(5000)
    info = await store.put("o", data, chunk_size=1000)
    never = trio.Event()
    flaky = FlakyStore(store, {("fetch_chunks", 2): Fault(gate=never)})  # the prefetch hangs
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=4) as reader:
        handle = await reader.open(info)
        assert await handle.read(0, 1000) == data[:1000]
        assert reader.statistics().prefetches_running == 1
    # Leaving the block cancelled the hung prefetch and released its claim.
    assert reader.statistics().prefetches_running == 0
    assert reader.statistics().chunks_in_flight == 0


async def test_prefetches_beyond_max_in_flight_are_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore(latency=1.0)
    infos = [await store.put(f"o{i}", payload(5000, seed=i), chunk_size=1000) for i in range(3)]
    async with open_chunk_reader(
        store, ChunkCache(MIB), max_in_flight=1, readahead_chunks=4
    ) as reader:
        handles = [await reader.open(info) for info in infos]
        results: dict[str, Outcome] = {}
        async with trio.open_nursery() as nursery:
            for i, handle in enumerate(handles):
                nursery.start_soon(read_into, results, str(i), handle, 0, 1000)
        await wait_all_tasks_blocked()
        stats = reader.statistics()
    assert results == {str(i): payload(5000, seed=i)[:1000] for i in range(3)}
    assert (stats.prefetch_calls, stats.prefetches_dropped) == (1, 2)


async def test_a_failed_prefetch_is_forgotten_and_the_read_fetches_again() -> None:
    store = MemoryStore()
    data = payload(5000)
    info = await store.put("o", data, chunk_size=1000)
    flaky = FlakyStore(
        store, {("fetch_chunks", 2): errors.StoreUnavailableError("server away")}
    )  # call 1 is the first read, call 2 its prefetch of chunk 1
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=4) as reader:
        handle = await reader.open(info)
        assert await handle.read(0, 1000) == data[:1000]
        await wait_all_tasks_blocked()
        assert await handle.read(1000, 1000) == data[1000:2000]
        await wait_all_tasks_blocked()
        assert reader.statistics().chunks_in_flight == 0
    assert (info.nuid, (1,)) in store.fetch_log


# Retries (rule 6) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure", [errors.StoreUnavailableError("no responders"), errors.StoreTimeoutError("late")]
)
async def test_a_fetch_nobody_answered_is_tried_again(
    failure: errors.OsfsError, autojump_clock: MockClock
) -> None:
    """A cluster electing a leader: the read waits for it instead of failing."""
    store = MemoryStore()
    data = payload(3000)
    info = await store.put("o", data, chunk_size=1000)
    flaky = FlakyStore(store, {("chunk_index", 1): failure, ("fetch_chunks", 1): failure})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        assert await handle.read(0, 3000) == data
    assert (flaky.calls["chunk_index"], flaky.calls["fetch_chunks"]) == (2, 2)


async def test_a_server_that_stays_away_fails_the_read_after_the_retry_window(
    autojump_clock: MockClock,
) -> None:
    store = MemoryStore()
    info = await store.put("o", payload(3000), chunk_size=1000)
    flaky = FlakyStore(store, {("fetch_chunks", None): errors.StoreTimeoutError("late")})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        started = trio.current_time()
        with pytest.raises(errors.StoreTimeoutError):
            await handle.read(0, 1000)
        waited = trio.current_time() - started
        assert RETRY_FOR - max(RETRY_PAUSES) <= waited <= RETRY_FOR
        assert reader.statistics().chunks_in_flight == 0


# Digest -----------------------------------------------------------------------------------------


async def test_a_corrupt_object_read_sequentially_fails_on_the_last_read() -> None:
    store = MemoryStore()
    data = payload(10_000)
    await store.put("o", data, chunk_size=1000)
    store.corrupt("o", chunk=4, at=17)
    corrupt = bytearray(data)
    corrupt[4017] ^= 0xFF
    info = await store.get_info("o")
    async with open_chunk_reader(store, ChunkCache(MIB)) as reader:
        handle = await reader.open(info)
        received = bytearray()
        for offset in range(0, 9000, 1500):
            received += await handle.read(offset, 1500)
            assert await handle.read(0, 0) == b""  # an empty read is no restart of the pass
        with pytest.raises(errors.DigestMismatchError):
            await handle.read(9000, 1500)
        assert bytes(received) == bytes(corrupt[:9000])
        with pytest.raises(errors.DigestMismatchError):  # a second pass is checked again
            await read_all(handle, 4096)


async def test_large_passes_are_hashed_on_the_hashing_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trio's thread serves every FUSE request: it must not spend a read hashing (rule 4)."""
    hashed_on: list[str] = []
    hash_pieces = reader_module._hash_pieces

    def recording(sha: Any, pieces: Sequence[bytes]) -> None:
        if pieces:
            hashed_on.append(threading.current_thread().name)
        hash_pieces(sha, pieces)

    monkeypatch.setattr(reader_module, "_hash_pieces", recording)
    store = MemoryStore()
    data = payload(3 * HASH_BATCH_BYTES + 1000)
    good = await store.put("good", data, chunk_size=128 * 1024)
    await store.put("bad", data, chunk_size=128 * 1024)
    store.corrupt("bad", chunk=20)
    bad = await store.get_info("bad")
    async with open_chunk_reader(store, ChunkCache(8 * MIB)) as reader:
        assert await read_all(await reader.open(good), 128 * 1024) == data
        handle = await reader.open(bad)
        with pytest.raises(errors.DigestMismatchError):
            await read_all(handle, 128 * 1024)
        with pytest.raises(errors.DigestMismatchError):  # remembered as corrupt
            await handle.read(0, 10)
    batches = [name for name in hashed_on if name.startswith("osfs-read-sha256")]
    assert len(batches) >= 6  # three whole batches per pass
    assert len(hashed_on) - len(batches) <= 2  # at most each pass's tail, inline


def test_the_hashing_thread_holds_a_bounded_queue() -> None:
    """A machine too busy to hash makes the reads wait instead of holding their bytes."""
    gate = threading.Event()
    reader_module._HASHER.submit(gate.wait, 10)  # the hashing thread is busy for now
    sha = reader_module._OrderedSha256()
    piece = bytes(HASH_BATCH_BYTES)
    for _ in range(HASH_BATCHES_QUEUED):
        sha.add(piece)
    assert sha.queued == HASH_BATCHES_QUEUED
    threading.Timer(0.2, gate.set).start()
    sha.add(piece)  # one more: waits until the oldest batch is hashed
    assert gate.is_set()
    assert sha.queued <= HASH_BATCHES_QUEUED
    whole = hashlib.sha256(piece * (HASH_BATCHES_QUEUED + 1)).digest()
    assert sha.finish().result(timeout=10) == whole


async def test_a_corrupt_object_read_at_random_is_not_judged() -> None:
    store = MemoryStore()
    data = payload(10_000)
    await store.put("o", data, chunk_size=1000)
    store.corrupt("o", chunk=9)
    info = await store.get_info("o")
    async with open_chunk_reader(store, ChunkCache(MIB)) as reader:
        handle = await reader.open(info)
        for offset in (5000, 0, 9000, 1000, 2000, 3000, 4000, 6000, 7000, 8000):
            await handle.read(offset, 1000)


async def test_a_good_object_read_sequentially_passes() -> None:
    store = MemoryStore()
    data = payload(10_000)
    info = await store.put("o", data, chunk_size=1000)
    empty = await store.put("empty", b"")
    async with open_chunk_reader(store, ChunkCache(MIB)) as reader:
        assert await read_all(await reader.open(info), 777) == data
        assert await (await reader.open(info)).read(0, 20_000) == data
        assert await (await reader.open(empty)).read(0, 10) == b""


async def test_the_digest_pass_survives_reads_completing_out_of_order() -> None:
    store = MemoryStore()
    data = payload(2000)
    await store.put("o", data, chunk_size=1000)
    store.corrupt("o", chunk=1)
    info = await store.get_info("o")
    gate = trio.Event()
    flaky = FlakyStore(store, {("fetch_chunks", 1): Fault(gate=gate)})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        results: dict[str, Outcome] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_into, results, "first", handle, 0, 1000)
            await wait_all_tasks_blocked()
            nursery.start_soon(read_into, results, "last", handle, 1000, 1000)
            await wait_all_tasks_blocked()
            assert "last" in results  # done first; the pass waits for the earlier bytes
            gate.set()
    assert isinstance(results["last"], bytes)
    assert isinstance(results["first"], errors.DigestMismatchError)


async def test_a_failed_read_ends_the_digest_pass_without_a_verdict() -> None:
    store = MemoryStore()
    data = payload(3000)
    await store.put("o", data, chunk_size=1000)
    store.corrupt("o", chunk=2)
    info = await store.get_info("o")
    flaky = FlakyStore(store, {("fetch_chunks", 2): errors.OsfsError("refused")})
    async with open_chunk_reader(flaky, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        await handle.read(0, 1000)
        with pytest.raises(errors.OsfsError, match="refused"):
            await handle.read(1000, 1000)
        await handle.read(1000, 1000)  # retried, but the pass has a hole now
        await handle.read(2000, 1000)


# Pinned versions --------------------------------------------------------------------------------


async def test_a_handle_keeps_reading_its_version_while_it_is_stored() -> None:
    store = MemoryStore()
    old, new = payload(5000, seed=1), payload(7000, seed=2)
    v1 = await store.put("o", old, chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(v1)
        assert await handle.read(0, 1000) == old[:1000]
        await store.put("o", new, chunk_size=1000, keep_previous=True)
        assert await handle.read(0, 5000) == old  # uncached chunks of v1 too
        fresh = await reader.open(await store.get_info("o"))
        assert await fresh.read(0, 7000) == new


async def test_once_its_chunks_are_purged_a_handle_serves_only_what_is_cached() -> None:
    store = MemoryStore()
    old, new = payload(5000, seed=1), payload(5000, seed=2)
    v1 = await store.put("o", old, chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(v1)
        assert await handle.read(0, 1000) == old[:1000]
        await store.put("o", new, chunk_size=1000)  # purges v1's chunks
        assert await handle.read(0, 1000) == old[:1000]
        with pytest.raises(errors.ObjectNotFoundError):
            await handle.read(2000, 1000)
        assert reader.statistics().chunks_in_flight == 0


async def test_reads_of_a_deleted_object_raise_not_found() -> None:
    store = MemoryStore()
    info = await store.put("o", payload(5000), chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB), readahead_chunks=0) as reader:
        handle = await reader.open(info)
        marker = await store.delete("o")
        with pytest.raises(errors.ObjectNotFoundError):
            await handle.read(0, 10)
        with pytest.raises(errors.ObjectNotFoundError):
            await reader.open(marker)


async def test_opening_a_version_already_gone_raises_not_found() -> None:
    store = MemoryStore()
    v1 = await store.put("o", payload(5000), chunk_size=1000)
    await store.put("o", payload(10), chunk_size=1000)
    async with open_chunk_reader(store, ChunkCache(MIB)) as reader:
        with pytest.raises(errors.ObjectNotFoundError):
            await reader.open(v1)


# Memory -----------------------------------------------------------------------------------------


async def test_memory_stays_within_the_cache_budget(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore(latency=0.005)
    data = payload(50 * 1000)
    info = await store.put("o", data, chunk_size=1000)
    cache = ChunkCache(3500)
    async with open_chunk_reader(store, cache, readahead_chunks=8) as reader:
        handles = [await reader.open(info) for _ in range(3)]
        outs = [bytearray() for _ in handles]

        async def sequential(i: int) -> None:
            for offset in range(0, len(data), 700):
                outs[i] += await handles[i].read(offset, 700)
                assert cache.statistics().bytes <= 3500

        async with trio.open_nursery() as nursery:
            for i in range(len(handles)):
                nursery.start_soon(sequential, i)
        assert reader.statistics().chunks_in_flight == 0
    assert all(bytes(out) == data for out in outs)
    assert cache.statistics().bytes <= 3500


async def test_chunks_larger_than_the_budget_are_read_but_not_kept() -> None:
    store = MemoryStore()
    data = payload(5000)
    info = await store.put("o", data, chunk_size=1000)
    cache = ChunkCache(500)
    async with open_chunk_reader(store, cache, readahead_chunks=4) as reader:
        handle = await reader.open(info)
        assert await read_all(handle, 1000) == data
        await wait_all_tasks_blocked()
    assert cache.statistics().entries == 0


async def test_forget_version_drops_its_index_and_chunks() -> None:
    store = MemoryStore()
    info = await store.put("o", payload(3000), chunk_size=1000)
    cache = ChunkCache(MIB)
    async with open_chunk_reader(store, cache, readahead_chunks=0) as reader:
        await (await reader.open(info)).read(0, 3000)
        reader.forget_version(info.nuid)
        assert cache.statistics().entries == 0
        assert reader.statistics().indexes_cached == 0


# Opening ----------------------------------------------------------------------------------------


async def test_open_refuses_links_and_a_reader_that_is_not_running() -> None:
    store = MemoryStore()
    info = await store.put("target", b"bytes")
    link = await store.put("ln", link=ObjectLink(bucket=store.bucket, name="target"))
    idle = ChunkReader(store, ChunkCache(MIB))
    with pytest.raises(RuntimeError):
        await idle.open(info)
    async with open_chunk_reader(store, ChunkCache(MIB)) as reader:
        with pytest.raises(ValueError):
            await reader.open(link)
        with pytest.raises(errors.BadObjectMetaError):
            await reader.open(ObjectInfo(name="x", bucket=store.bucket, size=5, chunks=1))


async def test_a_reader_without_readahead_needs_no_nursery() -> None:
    store = MemoryStore()
    info = await store.put("o", b"plain bytes")
    reader = ChunkReader(store, ChunkCache(MIB), readahead_chunks=0)
    assert await (await reader.open(info)).read(0, 100) == b"plain bytes"


async def test_a_reader_runs_once_at_a_time() -> None:
    reader = ChunkReader(MemoryStore(), ChunkCache(MIB))
    async with trio.open_nursery() as nursery:
        await nursery.start(reader.run)
        with pytest.raises(RuntimeError):
            await reader.run()
        nursery.cancel_scope.cancel()
