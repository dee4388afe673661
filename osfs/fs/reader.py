"""Reading pinned object versions through the chunk cache: single-flight fetches, readahead.

One :class:`ChunkReader` serves the whole mount; every open file gets a :class:`ReadHandle`
pinned to the :class:`ObjectInfo` (so the nuid) it was opened with. A read maps its byte range to
chunks through the version's chunk index, takes what :class:`ChunkCache` holds, and fetches the
rest with ONE ``Store.fetch_chunks`` call: one crossing of the seam per read (DESIGN §2, §4).

Rules:
1. Versions are pinned. Chunks are keyed by ``ChunkKey(nuid, index)`` and a handle only asks for
   its own nuid, so a re-put never mixes versions within one open file. When the pinned version's
   chunks are gone (replaced and purged, or deleted), the store raises ``StaleVersionError``
   and the read raises it unchanged; the adapter answers **ESTALE** (the handle is stale, a new
   open sees the new version; gcsfuse does the same), not ENOENT: the file is still there.
   Chunks still cached keep being served: they are the pinned version's bytes. ``open`` of a
   version already gone raises ``StaleVersionError`` too.
2. Indexes are fetched once per nuid (they never change, ``osfs.core.chunks`` rule 2) and kept
   in a small LRU; an empty object needs no crossing at all.
3. Readahead never blocks a read. After a sequential read (``osfs.core.cache.Readahead``) a
   prefetch of the next chunks starts in the reader's own nursery, beside the read's fetch. At
   most ``max_in_flight`` prefetches run at once; one more is dropped, not queued (the next
   sequential read asks again), and a prefetch claims its chunks only once it runs, so a read
   never waits for a prefetch that has not started. A failed prefetch is logged (debug level for
   an osfs error, with its traceback for anything else) and forgotten: the read that needs those
   chunks fetches them itself and gets the error; the mount never goes down for a prefetch.
4. Whole-object reads are verified. When a handle has read its version sequentially from offset
   0 to the end, the SHA-256 of the bytes it returned is compared with ``info.digest``; on a
   mismatch the read that completes the pass raises ``DigestMismatchError`` (the adapter answers
   EIO and logs). The hashing runs on a worker thread of its own, in batches of
   :data:`HASH_BATCH_BYTES`, not on trio's thread, which serves every FUSE request: there every
   ``update`` gave up the GIL and waited to get it back, and the check cost a cold 1 GiB read
   1.6 s of the daemon's 5.0 s of CPU time (docs/benchmarks.md). A pass smaller than one batch
   is hashed inline at its end.
   A pass may restart at offset 0; a jump or a failed read ends it unverified.
   A version that failed is remembered as corrupt: its cached chunks are dropped and every
   later open or read of it raises ``DigestMismatchError`` too (the kernel retries a failed
   read, and a retry must not succeed).
5. Reads at or past the end return ``b""``; a read across the end returns the bytes up to it.
6. A fetch the servers could not answer (no responders, no answer in time) is tried again for
   up to :data:`RETRY_FOR` seconds before its error goes to the read: a cluster elects a new
   stream leader within seconds, and a read that waits for it beats an EIO. A server that
   stays away still fails the read, later. A missing version or a corrupt one is not retried.

Concurrency invariants (trio runs the code between two checkpoints atomically; each invariant
names state that must not be split by an ``await``):
I1. A chunk is cached, in flight (``_chunk_flights``), or free to claim. A read looks up the
    cache, looks up the flights and claims what is missing in one step; the results go into the
    cache, the claims are removed and the waiters woken in one step when ``fetch_chunks``
    returns. So two tasks never fetch the same chunk at once.
I2. Every claim is released on every way out of a fetch (result, error, cancellation), before the
    exception goes on, and its event is set: a waiter never hangs. An error is handed to every
    waiter, which raises it; a cancelled fetch (an interrupted read, a reader shutting down) is
    marked abandoned and its waiters plan again and fetch the chunks themselves, because another
    task's ``Cancelled`` must never be raised.
I3. A waiter holds the flight, not the key: it takes the bytes from the flight even when the
    cache did not keep them (too small a budget, or evicted already).
I4. A read takes the bytes of the chunks it found cached into locals before its first await, so
    an eviction while it waits for the rest cannot take them away.
I5. A handle's readahead window and digest pass advance at the start of ``read``, before its
    first await, in the order the kernel sent the reads. The bytes are hashed in offset order
    too: a read that completes before an earlier one parks its bytes until those are hashed.
I6. ``_prefetching`` counts prefetch tasks from the moment they are spawned (synchronously,
    in the read) until their ``finally``; index fetches are single-flight like chunks (I1, I2).
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio
from cachetools import LRUCache

from osfs.core import errors
from osfs.core.cache import ChunkCache, Readahead
from osfs.core.chunks import ChunkIndex, ChunkKey
from osfs.core.digest import parse_digest
from osfs.core.meta import ObjectInfo
from osfs.core.store_api import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Prefetch crossings running at once, by default.
MAX_IN_FLIGHT = 4
#: The largest readahead window, in chunks (4 MiB of 128 KiB chunks).
READAHEAD_CHUNKS = 32
#: Chunk indexes kept (one per recently opened version).
INDEX_CACHE_SIZE = 256
#: Seconds a fetch the servers could not answer is retried (rule 6), and the pauses between.
RETRY_FOR = 15.0
RETRY_PAUSES = (0.1, 0.2, 0.5, 1.0, 2.0)
#: Bytes of a digest pass gathered before they go to the hashing thread (rule 4).
HASH_BATCH_BYTES = 1024 * 1024
#: Batches of one pass queued for hashing at most; one more waits for the oldest (a machine too
#: busy to hash slows the reads down instead of holding their bytes in memory).
HASH_BATCHES_QUEUED = 8

_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="osfs-read-sha256")


async def _patiently(fetch: Callable[[], Awaitable[T]], what: str) -> T:
    """``await fetch()``, again while it fails for want of an answer (rule 6)."""
    deadline = trio.current_time() + RETRY_FOR
    attempt = 0
    while True:
        try:
            return await fetch()
        except (errors.StoreUnavailableError, errors.StoreTimeoutError) as exc:
            pause = RETRY_PAUSES[min(attempt, len(RETRY_PAUSES) - 1)]
            if trio.current_time() + pause > deadline:
                raise
            if attempt == 0:
                log.info("%s: %s; trying again for up to %g s", what, exc, RETRY_FOR)
            attempt += 1
            await trio.sleep(pause)


class _Flight(Generic[T]):
    """One fetch in progress, and its outcome for whoever waits on it (I2, I3)."""

    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._error: Exception | None = None

    def resolve(self, value: T) -> None:
        self._value = value
        self._event.set()

    def fail(self, error: Exception) -> None:
        self._error = error
        self._event.set()

    def abandon(self) -> None:
        self._event.set()

    async def outcome(self) -> T | None:
        """The fetched value; None if the fetch was abandoned (plan again).

        Raises:
            Exception: whatever the fetch raised.
        """
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value


@dataclass(frozen=True, slots=True)
class ReaderStatistics:
    """A snapshot of a :class:`ChunkReader`.

    Attributes:
        fetch_calls: ``fetch_chunks`` crossings made, by reads and prefetches.
        chunks_fetched: chunks those crossings returned.
        prefetch_calls: the crossings made by prefetches.
        prefetches_dropped: prefetches not started because ``max_in_flight`` were running.
        prefetches_running: prefetch tasks alive now.
        chunks_in_flight: chunks being fetched now.
        index_calls: ``chunk_index`` crossings made.
        indexes_cached: chunk indexes held now.
    """

    fetch_calls: int
    chunks_fetched: int
    prefetch_calls: int
    prefetches_dropped: int
    prefetches_running: int
    chunks_in_flight: int
    index_calls: int
    indexes_cached: int


class ChunkReader:
    """Fetches and caches chunks for every open file of a mount.

    Run it in a nursery (``await nursery.start(reader.run)``) or use :func:`open_chunk_reader`:
    prefetches run in its nursery. With ``readahead_chunks=0`` it needs no nursery.

    Args:
        store: the bucket.
        cache: the chunk cache (shared; its budget bounds the memory held).
        max_in_flight: prefetch crossings running at once; reads themselves are never limited.
        readahead_chunks: the largest readahead window per handle; 0 disables readahead.
        index_cache_size: chunk indexes kept.
    """

    def __init__(
        self,
        store: Store,
        cache: ChunkCache,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        readahead_chunks: int = READAHEAD_CHUNKS,
        index_cache_size: int = INDEX_CACHE_SIZE,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if readahead_chunks < 0:
            raise ValueError("readahead_chunks must not be negative")
        self._store = store
        self._cache = cache
        self._corrupt: set[str] = set()
        self._max_in_flight = max_in_flight
        self._readahead_chunks = readahead_chunks
        self._indexes: LRUCache[str, ChunkIndex] = LRUCache(maxsize=max(index_cache_size, 1))
        self._index_flights: dict[str, _Flight[ChunkIndex]] = {}
        self._chunk_flights: dict[ChunkKey, _Flight[bytes]] = {}
        self._nursery: trio.Nursery | None = None
        self._prefetching = 0
        self._fetch_calls = 0
        self._chunks_fetched = 0
        self._prefetch_calls = 0
        self._prefetches_dropped = 0
        self._index_calls = 0

    @property
    def cache(self) -> ChunkCache:
        """The chunk cache."""
        return self._cache

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the prefetch tasks until cancelled; cancelling stops the prefetches.

        Raises:
            RuntimeError: already running.
        """
        if self._nursery is not None:
            raise RuntimeError("this ChunkReader is already running")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def statistics(self) -> ReaderStatistics:
        """Crossings made and work in progress."""
        return ReaderStatistics(
            fetch_calls=self._fetch_calls,
            chunks_fetched=self._chunks_fetched,
            prefetch_calls=self._prefetch_calls,
            prefetches_dropped=self._prefetches_dropped,
            prefetches_running=self._prefetching,
            chunks_in_flight=len(self._chunk_flights),
            index_calls=self._index_calls,
            indexes_cached=len(self._indexes),
        )

    def forget_version(self, nuid: str) -> None:
        """Drop the index and cached chunks of version ``nuid`` (deleted or replaced).

        Frees memory only; open handles on that version keep their index.
        """
        self._indexes.pop(nuid, None)
        self._cache.discard_version(nuid)

    async def open(self, info: ObjectInfo) -> ReadHandle:
        """A handle that reads ``info``'s version, whatever happens to the name afterwards.

        Fetches the version's chunk index now (once per nuid), so the handle knows its layout.

        Raises:
            ObjectNotFoundError: ``info`` is a delete marker, or the version is gone.
            BadObjectMetaError: the stored chunks do not add up to ``info``'s size and count.
            ValueError: ``info`` is a link (resolve it first).
            RuntimeError: readahead is on and the reader is not running.
        """
        if info.deleted:
            raise errors.ObjectNotFoundError(f"object {info.name!r} is deleted")
        if info.is_link:
            raise ValueError(f"object {info.name!r} is a link: open its target")
        if not info.nuid and info.chunks:
            raise errors.BadObjectMetaError(f"object {info.name!r} has no nuid")
        self._refuse_corrupt(info.nuid, info.name)
        if self._readahead_chunks and self._nursery is None:
            raise RuntimeError(
                "ChunkReader is not running: use open_chunk_reader() or nursery.start(reader.run)"
            )
        index = await self._index_of(info)
        if index.count != info.chunks or index.size != info.size:
            raise errors.BadObjectMetaError(
                f"object {info.name!r}: {index.count} chunks of {index.size} bytes stored, "
                f"meta says {info.chunks} of {info.size}"
            )
        return ReadHandle(self, info, index, Readahead(max_chunks=self._readahead_chunks))

    # Corrupt versions -----------------------------------------------------------------------

    def mark_corrupt(self, nuid: str) -> None:
        """Remember that a version failed its digest: every later read of it fails (rule 4).

        Its cached chunks are dropped, so nothing of it is served from this cache again.
        """
        self._corrupt.add(nuid)
        self._cache.discard_version(nuid)

    def _refuse_corrupt(self, nuid: str, name: str) -> None:
        if nuid in self._corrupt:
            raise errors.DigestMismatchError(
                f"object {name!r}: this version failed its digest check earlier"
            )

    # Indexes --------------------------------------------------------------------------------

    async def _index_of(self, info: ObjectInfo) -> ChunkIndex:
        """The chunk index of ``info``'s version: cached, awaited, or fetched (I6)."""
        if info.chunks == 0:
            await trio.lowlevel.checkpoint()
            return ChunkIndex.from_sizes(info.nuid, [], [])
        while True:
            cached = self._indexes.get(info.nuid)
            if cached is not None:
                await trio.lowlevel.checkpoint()
                return cached
            flight = self._index_flights.get(info.nuid)
            if flight is not None:
                index = await flight.outcome()
                if index is not None:
                    return index
                continue  # the fetch was abandoned: fetch it ourselves
            flight = self._index_flights[info.nuid] = _Flight()
            self._index_calls += 1
            try:
                index = await _patiently(
                    lambda: self._store.chunk_index(info), f"chunk index of {info.name!r}"
                )
            except Exception as exc:
                del self._index_flights[info.nuid]
                flight.fail(exc)
                raise
            except BaseException:
                del self._index_flights[info.nuid]
                flight.abandon()
                raise
            self._indexes[info.nuid] = index
            del self._index_flights[info.nuid]
            flight.resolve(index)
            return index

    # Chunks ---------------------------------------------------------------------------------

    async def _chunks(self, index: ChunkIndex, positions: range) -> list[bytes]:
        """The payloads of chunks ``positions`` of ``index``'s version, in order."""
        found: dict[int, bytes] = {}
        while True:
            # One atomic step (I1, I4): look up, then claim what nobody is fetching.
            waiting: list[tuple[int, _Flight[bytes]]] = []
            claims: dict[int, _Flight[bytes]] = {}
            for position in positions:
                if position in found:
                    continue
                key = ChunkKey(index.nuid, position)
                data = self._cache.get(key)
                if data is not None:
                    found[position] = data
                    continue
                flight = self._chunk_flights.get(key)
                if flight is not None:
                    waiting.append((position, flight))
                else:
                    claims[position] = self._chunk_flights[key] = _Flight()
            if claims:
                found.update(await self._fetch(index, claims))
            for position, flight in waiting:
                data = await flight.outcome()
                if data is not None:
                    found[position] = data
            if len(found) == len(positions):
                if not claims and not waiting:
                    await trio.lowlevel.checkpoint()
                return [found[position] for position in positions]

    async def _fetch(
        self, index: ChunkIndex, claims: dict[int, _Flight[bytes]]
    ) -> dict[int, bytes]:
        """Fetch the claimed chunks in one crossing; publish or release every claim (I1, I2)."""
        positions = sorted(claims)
        self._fetch_calls += 1
        try:
            payloads = await _patiently(
                lambda: self._store.fetch_chunks(index, positions), f"chunks of {index.nuid}"
            )
            _check_payloads(index, positions, payloads)
        except Exception as exc:
            self._release(index, claims)
            for flight in claims.values():
                flight.fail(exc)
            raise
        except BaseException:
            self._release(index, claims)
            for flight in claims.values():
                flight.abandon()
            raise
        self._chunks_fetched += len(payloads)
        fetched = dict(zip(positions, payloads, strict=True))
        for position, data in fetched.items():
            self._cache.put(ChunkKey(index.nuid, position), data)
        self._release(index, claims)
        for position, flight in claims.items():
            flight.resolve(fetched[position])
        return fetched

    def _release(self, index: ChunkIndex, claims: dict[int, _Flight[bytes]]) -> None:
        for position in claims:
            del self._chunk_flights[ChunkKey(index.nuid, position)]

    # Readahead ------------------------------------------------------------------------------

    def _start_prefetch(self, index: ChunkIndex, start: int, count: int) -> None:
        """Spawn a prefetch of up to ``count`` chunks from ``start`` on, if one may run (rule 3).

        Synchronous: called from a read before its first await.
        """
        positions = range(start, min(start + count, index.count))
        if not positions or self._nursery is None or self._cache.budget_bytes == 0:
            return
        if all(self._busy(ChunkKey(index.nuid, position)) for position in positions):
            return
        if self._prefetching >= self._max_in_flight:
            self._prefetches_dropped += 1
            return
        self._prefetching += 1
        self._nursery.start_soon(self._prefetch, index, positions)

    def _busy(self, key: ChunkKey) -> bool:
        return key in self._cache or key in self._chunk_flights

    async def _prefetch(self, index: ChunkIndex, positions: range) -> None:
        try:
            claims: dict[int, _Flight[bytes]] = {}
            for position in positions:  # claims made when the prefetch runs (rule 3, I1)
                key = ChunkKey(index.nuid, position)
                if not self._busy(key):
                    claims[position] = self._chunk_flights[key] = _Flight()
            if claims:
                self._prefetch_calls += 1
                await self._fetch(index, claims)
        except errors.OsfsError as exc:
            log.debug("readahead of version %s failed: %s", index.nuid, exc)
        except Exception:
            log.exception("readahead of version %s failed", index.nuid)
        finally:
            self._prefetching -= 1


def _check_payloads(index: ChunkIndex, positions: Sequence[int], payloads: list[bytes]) -> None:
    """Refuse payloads that do not fit the index: slicing them would return the wrong bytes.

    Raises:
        DigestMismatchError: a chunk of the wrong size (the stored object is corrupt).
        BadObjectMetaError: the store answered with the wrong number of chunks.
    """
    if len(payloads) != len(positions):
        raise errors.BadObjectMetaError(
            f"version {index.nuid}: asked for {len(positions)} chunks, got {len(payloads)}"
        )
    for position, data in zip(positions, payloads, strict=True):
        start, end = index.bounds(position)
        if len(data) != end - start:
            raise errors.DigestMismatchError(
                f"version {index.nuid}: chunk {position} holds {len(data)} bytes, "
                f"its index says {end - start}"
            )


@dataclass(frozen=True, slots=True)
class _Ticket:
    """A read's place in the digest pass it belongs to."""

    generation: int
    offset: int


def _hash_pieces(sha: hashlib._Hash, pieces: Sequence[bytes]) -> None:
    for piece in pieces:
        sha.update(piece)


def _hash_and_digest(sha: hashlib._Hash, pieces: Sequence[bytes]) -> bytes:
    _hash_pieces(sha, pieces)
    return sha.digest()


class _OrderedSha256:
    """A SHA-256 fed in order, hashed on the one worker thread :data:`_HASHER` (rule 4).

    One worker runs the batches in the order they were queued, so the bytes reach ``sha`` in
    order; nothing else touches ``sha`` until :meth:`finish`'s future is done.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._queued: deque[Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Batches handed to the worker and not hashed yet."""
        while self._queued and self._queued[0].done():
            self._queued.popleft()
        return len(self._queued)

    def add(self, data: bytes) -> None:
        """The next bytes (blocks only when :data:`HASH_BATCHES_QUEUED` batches wait)."""
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= HASH_BATCH_BYTES:
            while self.queued >= HASH_BATCHES_QUEUED:
                self._queued.popleft().result()
            batch, self._batch, self._batched = self._batch, [], 0
            self._queued.append(_HASHER.submit(_hash_pieces, self._sha, batch))

    def finish(self) -> Future[bytes]:
        """The digest of everything added: already done when nothing is queued."""
        batch, self._batch, self._batched = self._batch, [], 0
        if self.queued:
            return _HASHER.submit(_hash_and_digest, self._sha, batch)
        done: Future[bytes] = Future()
        done.set_result(_hash_and_digest(self._sha, batch))
        return done


async def _result_of(future: Future[T]) -> T:
    """Wait in trio for a future of the hashing thread (at most once per pass: a thread hop)."""
    if future.done():
        return future.result()
    return await trio.to_thread.run_sync(future.result)


class _DigestPass:
    """SHA-256 of one handle's sequential pass over its version (rule 4, I5)."""

    def __init__(self, info: ObjectInfo) -> None:
        self._name = info.name
        self._size = info.size
        self._expected: bytes | None = None
        if info.digest:
            try:
                self._expected = parse_digest(info.digest)
            except errors.InvalidDigestFormatError as exc:
                log.warning("object %r: not verifying reads: %s", info.name, exc)
        self._generation = 0
        self._broken = True  # until a read at offset 0 starts a pass
        self._issued = 0
        self._hashed = 0
        self._sha = _OrderedSha256()
        self._parked: dict[int, bytes] = {}
        self._done = False

    def begin(self, offset: int, end: int) -> _Ticket | None:
        """Enter a read of bytes ``offset..end`` in the pass; None if it is not part of one."""
        if self._expected is None:
            return None
        if offset == 0:
            self._generation += 1
            self._broken = self._done = False
            self._issued = self._hashed = 0
            self._sha = _OrderedSha256()
            self._parked.clear()
        elif self._broken or offset != self._issued:
            self._broken = True
            return None
        self._issued = max(end, offset)
        return _Ticket(self._generation, offset)

    def abandon(self, ticket: _Ticket | None) -> None:
        """A read of the pass failed: its bytes will never come, so the pass is over."""
        if ticket is not None and ticket.generation == self._generation:
            self._broken = True
            self._parked.clear()

    def feed(self, ticket: _Ticket | None, data: bytes) -> Future[bytes] | None:
        """Hash a read's bytes in offset order.

        Returns the digest of the pass (to :meth:`judge`) when these bytes complete it.
        """
        if ticket is None or ticket.generation != self._generation or self._broken:
            return None
        self._parked[ticket.offset] = data
        while self._hashed in self._parked:
            piece = self._parked.pop(self._hashed)
            self._sha.add(piece)
            self._hashed += len(piece)
        if self._hashed >= self._size and not self._done:
            self._done = True
            return self._sha.finish()
        return None

    def judge(self, digest: bytes) -> None:
        """Compare a completed pass's digest with the stored one.

        Raises:
            DigestMismatchError: they differ.
        """
        if digest != self._expected:
            raise errors.DigestMismatchError(
                f"object {self._name!r}: the bytes read do not match the stored digest"
            )


class ReadHandle:
    """One open file: reads of the version it was opened with. Get one from ChunkReader.open."""

    def __init__(
        self, reader: ChunkReader, info: ObjectInfo, index: ChunkIndex, readahead: Readahead
    ) -> None:
        self._reader = reader
        self._info = info
        self._index = index
        self._readahead = readahead
        self._digest = _DigestPass(info)

    @property
    def info(self) -> ObjectInfo:
        """The pinned version."""
        return self._info

    @property
    def size(self) -> int:
        """Bytes in the pinned version."""
        return self._index.size

    async def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` of the pinned version (short or empty at the end).

        Raises:
            StaleVersionError: the version's chunks are gone (adapter: ESTALE, rule 1).
            DigestMismatchError: this read completes a sequential pass whose bytes do not match
                the stored digest, or a chunk has the wrong size (adapter: EIO).
            ValueError: a negative offset or size.
            OsfsError: whatever else the store raises (unavailable, timeout, ...).
        """
        if offset < 0 or size < 0:
            raise ValueError("offset and size must not be negative")
        self._reader._refuse_corrupt(self._info.nuid, self._info.name)
        if size == 0:
            await trio.lowlevel.checkpoint()
            return b""
        index = self._index
        end = min(offset + size, index.size)
        span = index.span(offset, size)
        # Before the first await (I5): the order of these calls is the order of the reads.
        ticket = self._digest.begin(offset, end)
        ahead = self._readahead.observe(offset, size)
        if ahead and span:
            self._reader._start_prefetch(index, span.stop, ahead)
        try:
            if span:
                chunks = await self._reader._chunks(index, span)
                data = _slice(index, span, chunks, offset, end)
            else:
                await trio.lowlevel.checkpoint()
                data = b""
        except BaseException:
            self._digest.abandon(ticket)
            raise
        verdict = self._digest.feed(ticket, data)
        if verdict is not None:
            try:
                self._digest.judge(await _result_of(verdict))
            except errors.DigestMismatchError:
                self._reader.mark_corrupt(self._info.nuid)
                raise
        return data


def _slice(index: ChunkIndex, span: range, chunks: list[bytes], offset: int, end: int) -> bytes:
    """Bytes ``offset..end`` out of the chunks ``span`` (one copy at most)."""
    if len(chunks) == 1:
        start = index.offsets[span.start]
        chunk = chunks[0]
        if offset == start and end - start == len(chunk):
            return chunk
        return chunk[offset - start : end - start]
    pieces = []
    for position, chunk in zip(span, chunks, strict=True):
        start, stop = index.bounds(position)
        pieces.append(memoryview(chunk)[max(offset, start) - start : min(end, stop) - start])
    return b"".join(pieces)


@asynccontextmanager
async def open_chunk_reader(
    store: Store,
    cache: ChunkCache,
    *,
    max_in_flight: int = MAX_IN_FLIGHT,
    readahead_chunks: int = READAHEAD_CHUNKS,
    index_cache_size: int = INDEX_CACHE_SIZE,
) -> AsyncIterator[ChunkReader]:
    """A running :class:`ChunkReader`; leaving the block cancels its prefetches."""
    reader = ChunkReader(
        store,
        cache,
        max_in_flight=max_in_flight,
        readahead_chunks=readahead_chunks,
        index_cache_size=index_cache_size,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(reader.run)
        try:
            yield reader
        finally:
            nursery.cancel_scope.cancel()
