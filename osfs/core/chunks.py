"""Where the bytes of an object version live: the chunk index and byte-range arithmetic.

Rules (wire.md §5.3, §17):
1. Chunk sizes may be uneven (nats.go from a pipe writes 64 KiB, 52 KiB, 16 KiB, ... chunks),
   so a byte offset is mapped through the real sizes, never ``offset // max_chunk_size``.
2. An index is immutable for a nuid: a new put gets a new nuid, so an index keyed by nuid never
   goes stale.
3. The *uniform* layout (every chunk full but the last) can be proven from one fact: if the last
   chunk holds exactly ``size - (chunks - 1) * max_chunk_size`` bytes, every other chunk holds
   ``max_chunk_size`` (each is at most that, and they must add up).
Pure: no I/O.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChunkKey:
    """A cache key that can never serve another version's bytes."""

    nuid: str
    index: int


@dataclass(frozen=True, slots=True)
class ChunkIndex:
    """Stream sequence and byte offset of every chunk of one object version.

    Attributes:
        nuid: the version.
        seqs: stream sequence of each chunk, in order (empty when unknown, see ``uniform``).
        offsets: byte offset of each chunk, plus the total size as the last element.
    """

    nuid: str
    seqs: tuple[int, ...]
    offsets: tuple[int, ...] = field(default=(0,))

    @classmethod
    def from_sizes(cls, nuid: str, seqs: list[int], sizes: list[int]) -> ChunkIndex:
        """Build from per-chunk (sequence, size) as a headers-only scan reports them."""
        if len(seqs) != len(sizes):
            raise ValueError("one size per chunk sequence")
        offsets = [0]
        for size in sizes:
            offsets.append(offsets[-1] + size)
        return cls(nuid=nuid, seqs=tuple(seqs), offsets=tuple(offsets))

    @classmethod
    def uniform(cls, nuid: str, seqs: list[int], size: int, chunk_size: int) -> ChunkIndex:
        """Build for the uniform layout: every chunk ``chunk_size`` bytes but the last."""
        count = len(seqs)
        offsets = [min(i * chunk_size, size) for i in range(count)] + [size]
        return cls(nuid=nuid, seqs=tuple(seqs), offsets=tuple(offsets))

    @property
    def size(self) -> int:
        """Total bytes."""
        return self.offsets[-1]

    @property
    def count(self) -> int:
        """Number of chunks."""
        return len(self.offsets) - 1

    def chunk_at(self, offset: int) -> int:
        """The index of the chunk that holds byte ``offset`` (0 <= offset < size)."""
        if not 0 <= offset < self.size:
            raise IndexError(f"offset {offset} outside 0..{self.size}")
        return bisect.bisect_right(self.offsets, offset) - 1

    def span(self, offset: int, length: int) -> range:
        """The chunk indexes a read of ``length`` bytes at ``offset`` touches (may be empty)."""
        end = min(offset + length, self.size)
        if length <= 0 or offset >= end:
            return range(0)
        return range(self.chunk_at(offset), self.chunk_at(end - 1) + 1)

    def bounds(self, index: int) -> tuple[int, int]:
        """Start and end byte offsets of chunk ``index``."""
        return self.offsets[index], self.offsets[index + 1]


def uniform_last_size(size: int, chunks: int, chunk_size: int) -> int | None:
    """The size the last chunk must have if the layout is uniform, or None if it cannot be."""
    if chunks <= 0 or chunk_size <= 0:
        return None
    last = size - (chunks - 1) * chunk_size
    if not 0 < last <= chunk_size:
        return None
    return last
