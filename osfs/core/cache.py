"""The chunk-cache policy: which chunk payloads to keep in memory, and how far to read ahead.

Rules (DESIGN §4, STYLE 5):
1. Chunks are keyed by ``ChunkKey(nuid, index)``. A new put gets a new nuid, so a cached chunk can
   never be served for another version: nothing is ever invalidated for correctness, and
   :meth:`ChunkCache.discard_version` only frees memory early (a deleted object, say).
2. The budget counts payload bytes and is never exceeded: the least recently used chunks are
   evicted first, and a chunk larger than the whole budget is not cached at all (it would evict
   everything and still not fit).
3. Readahead is decided per open handle from its reads alone: sequential reads grow the window
   (doubling up to a maximum), any jump resets it, so random access fetches only what it reads.
4. Policy only: no fetching, no locking, no waiting. The trio reader (``osfs.fs.reader``) makes
   it concurrent; every method here runs to completion without yielding.
Pure: stdlib and cachetools.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache

from osfs.core.chunks import ChunkKey


@dataclass(frozen=True, slots=True)
class CacheStatistics:
    """A snapshot of a :class:`ChunkCache`.

    Attributes:
        hits: lookups that found the chunk.
        misses: lookups that did not.
        bytes: payload bytes held now (never more than ``budget_bytes``).
        entries: chunks held now.
        budget_bytes: the most payload bytes the cache may hold.
    """

    hits: int
    misses: int
    bytes: int
    entries: int
    budget_bytes: int


class ChunkCache:
    """A byte-budgeted LRU of chunk payloads, shared by every open file of a mount.

    Args:
        budget_bytes: the most payload bytes to hold; 0 disables caching.

    Raises:
        ValueError: a negative budget.
    """

    def __init__(self, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError("the cache budget must not be negative")
        self._budget = budget_bytes
        self._lru: LRUCache[ChunkKey, bytes] = LRUCache(maxsize=budget_bytes, getsizeof=len)
        self._hits = 0
        self._misses = 0

    @property
    def budget_bytes(self) -> int:
        """The most payload bytes the cache may hold."""
        return self._budget

    def get(self, key: ChunkKey) -> bytes | None:
        """The cached payload of ``key`` (now the most recently used), or None."""
        data = self._lru.get(key)
        if data is None:
            self._misses += 1
        else:
            self._hits += 1
        return data

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is cached; neither counted nor refreshed (for planning a prefetch)."""
        return key in self._lru

    def put(self, key: ChunkKey, data: bytes) -> bool:
        """Cache ``data`` as ``key``, evicting the least recently used chunks to make room.

        Returns:
            True if the chunk is now cached; False if it is larger than the whole budget.
        """
        if len(data) > self._budget:
            return False
        self._lru[key] = data
        return True

    def discard_version(self, nuid: str) -> int:
        """Drop every chunk of version ``nuid`` (it was deleted or replaced); returns how many.

        Only frees memory early: keys never collide across versions (rule 1).
        """
        stale = [key for key in self._lru if key.nuid == nuid]
        for key in stale:
            del self._lru[key]
        return len(stale)

    def clear(self) -> None:
        """Drop every chunk (the statistics counters keep counting)."""
        self._lru.clear()

    def statistics(self) -> CacheStatistics:
        """Hits, misses and what the cache holds now."""
        return CacheStatistics(
            hits=self._hits,
            misses=self._misses,
            bytes=int(self._lru.currsize),
            entries=len(self._lru),
            budget_bytes=self._budget,
        )


class Readahead:
    """How many chunks to prefetch past each read of one open handle.

    A read is sequential when it starts exactly where the previous one ended; the first read of a
    handle is sequential when it starts at offset 0 (``cat``, ``cp`` and ``sha256sum`` do). The
    first sequential read opens a window of ``initial_chunks``; each further one doubles it, up
    to ``max_chunks``. Any other read (a seek backwards or forwards) closes the window: random
    access then fetches only the chunks it reads, until reads run sequentially again.

    Args:
        initial_chunks: the window after the first sequential read (at least 1).
        max_chunks: the largest window; 0 disables readahead.

    Raises:
        ValueError: ``initial_chunks`` < 1 or ``max_chunks`` < 0.
    """

    def __init__(self, *, initial_chunks: int = 1, max_chunks: int = 16) -> None:
        if initial_chunks < 1:
            raise ValueError("initial_chunks must be at least 1")
        if max_chunks < 0:
            raise ValueError("max_chunks must not be negative")
        self._initial = min(initial_chunks, max_chunks)
        self._max = max_chunks
        self._next = 0
        self._window = 0

    @property
    def window(self) -> int:
        """The current window, in chunks (0 after a jump)."""
        return self._window

    def observe(self, offset: int, length: int) -> int:
        """Record a read of ``length`` bytes at ``offset``; return how many chunks to prefetch.

        The chunks are counted from the one after the last chunk the read touches. An empty read
        (``length`` <= 0) changes nothing and asks for nothing.
        """
        if length <= 0:
            return 0
        if offset == self._next:
            self._window = self._initial if self._window == 0 else min(self._window * 2, self._max)
        else:
            self._window = 0
        self._next = offset + length
        return self._window
