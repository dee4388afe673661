"""The chunk index and byte-range arithmetic (wire.md §5.3, §17).

Rules for these tests: uneven chunk sizes are the normal case; every lookup is checked against
a naive linear scan over the sizes, and the uniform-layout rule is checked as the theorem the
module docstring states.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.chunks import ChunkIndex, ChunkKey, uniform_last_size

# wire.md §17: a nats.go put of 1,000,000 bytes from a pipe, 19 chunks at stream seqs 15..33.
# The first five sizes and the last are the captured ones; the middle is filler with the same
# total, so every chunk boundary is uneven like the real object.
GO_PIPE_SIZES = [65536, 65536, 65536, 53392, 16384]
GO_PIPE_SIZES += [65536, 65536, 53392, 16384] * 3 + [85872] + [45200]
GO_PIPE_SEQS = list(range(15, 34))


def naive_chunk_at(sizes: list[int], offset: int) -> int:
    start = 0
    for index, size in enumerate(sizes):
        if start <= offset < start + size:
            return index
        start += size
    raise AssertionError("offset outside the object")


def test_go_pipe_sample_shape() -> None:
    assert len(GO_PIPE_SIZES) == 19
    assert sum(GO_PIPE_SIZES) == 1_000_000
    index = ChunkIndex.from_sizes("N", GO_PIPE_SEQS, GO_PIPE_SIZES)
    assert index.size == 1_000_000
    assert index.count == 19
    assert index.seqs == tuple(range(15, 34))
    assert index.nuid == "N"


@pytest.mark.parametrize(
    ("offset", "chunk"),
    [
        (0, 0),
        (65535, 0),
        (65536, 1),
        (131072, 2),  # where offset // max_chunk_size would say 1
        (196607, 2),
        (196608, 3),
        (249999, 3),
        (250000, 4),
        (266383, 4),
        (266384, 5),
        (954799, 17),
        (954800, 18),
        (999999, 18),
    ],
)
def test_chunk_at_uneven_boundaries(offset: int, chunk: int) -> None:
    index = ChunkIndex.from_sizes("N", GO_PIPE_SEQS, GO_PIPE_SIZES)
    assert index.chunk_at(offset) == chunk


@pytest.mark.parametrize("offset", [-1, 1_000_000, 10**9])
def test_chunk_at_outside_the_object_raises(offset: int) -> None:
    index = ChunkIndex.from_sizes("N", GO_PIPE_SEQS, GO_PIPE_SIZES)
    with pytest.raises(IndexError):
        index.chunk_at(offset)


def test_bounds_of_uneven_chunks() -> None:
    index = ChunkIndex.from_sizes("N", GO_PIPE_SEQS, GO_PIPE_SIZES)
    assert index.bounds(0) == (0, 65536)
    assert index.bounds(3) == (196608, 250000)
    assert index.bounds(4) == (250000, 266384)
    assert index.bounds(18) == (954800, 1_000_000)


@pytest.mark.parametrize(
    ("offset", "length", "chunks"),
    [
        (0, 1, range(1)),
        (0, 65536, range(1)),
        (0, 65537, range(2)),
        (65530, 100, range(2)),
        (249999, 2, range(3, 5)),
        (0, 10**9, range(19)),
        (999_999, 5, range(18, 19)),
        (100, 0, range(0)),
        (100, -5, range(0)),
        (1_000_000, 10, range(0)),
        (2_000_000, 10, range(0)),
    ],
)
def test_span(offset: int, length: int, chunks: range) -> None:
    index = ChunkIndex.from_sizes("N", GO_PIPE_SEQS, GO_PIPE_SIZES)
    assert index.span(offset, length) == chunks


def test_empty_object() -> None:
    for index in (
        ChunkIndex.from_sizes("N", [], []),
        ChunkIndex.uniform("N", [], 0, 131072),
        ChunkIndex("N", ()),
    ):
        assert index.size == 0
        assert index.count == 0
        assert index.span(0, 10) == range(0)
        with pytest.raises(IndexError):
            index.chunk_at(0)


def test_from_sizes_needs_one_size_per_sequence() -> None:
    with pytest.raises(ValueError):
        ChunkIndex.from_sizes("N", [1, 2], [4])


def test_empty_chunk_in_the_middle_is_skipped() -> None:
    index = ChunkIndex.from_sizes("N", [1, 2, 3], [3, 0, 2])
    assert [index.chunk_at(i) for i in range(5)] == [0, 0, 0, 2, 2]
    assert index.bounds(1) == (3, 3)


def full_chunks_then_rest(total: int, chunk_size: int) -> list[int]:
    """Reference: the sizes of a uniform layout, written the obvious way."""
    full, rest = divmod(total, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def test_uniform_layout() -> None:
    index = ChunkIndex.uniform("N", [7, 8, 9], 10, 4)
    assert index.offsets == (0, 4, 8, 10)
    assert index.bounds(2) == (8, 10)
    assert index.seqs == (7, 8, 9)
    assert [index.chunk_at(i) for i in range(10)] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]


@settings(max_examples=200)
@given(st.integers(0, 2000), st.integers(1, 300))
def test_uniform_equals_the_index_of_full_chunks(total: int, chunk_size: int) -> None:
    sizes = full_chunks_then_rest(total, chunk_size)
    seqs = list(range(1, len(sizes) + 1))
    assert ChunkIndex.uniform("N", seqs, total, chunk_size) == ChunkIndex.from_sizes(
        "N", seqs, sizes
    )


@pytest.mark.parametrize(
    ("size", "chunks", "chunk_size", "last"),
    [
        (10, 3, 4, 2),
        (12, 3, 4, 4),
        (13, 3, 4, None),  # the last chunk would exceed the chunk size
        (8, 3, 4, None),  # the last chunk would be empty
        (9, 3, 4, 1),
        (4, 1, 4, 4),
        (1, 1, 131072, 1),
        (5, 1, 4, None),
        (0, 0, 4, None),
        (0, 1, 4, None),
        (10, 0, 4, None),
        (10, 3, 0, None),
        (10, 3, -4, None),
        (1_000_000, 8, 131072, 82496),
        (1_000_000, 19, 131072, None),  # the uneven Go pipe object
    ],
)
def test_uniform_last_size(size: int, chunks: int, chunk_size: int, last: int | None) -> None:
    assert uniform_last_size(size, chunks, chunk_size) == last


@st.composite
def sizes_and_chunk_size(draw: st.DrawFn) -> tuple[list[int], int]:
    chunk_size = draw(st.integers(1, 16))
    count = draw(st.integers(1, 12))
    near_uniform = draw(st.booleans())
    if near_uniform:
        # Mostly full chunks, so the premise of the rule holds often.
        sizes = [chunk_size] * (count - 1) + [draw(st.integers(1, chunk_size))]
        if draw(st.booleans()):
            i = draw(st.integers(0, count - 1))
            sizes[i] = draw(st.integers(0, chunk_size))
    else:
        sizes = draw(st.lists(st.integers(0, chunk_size), min_size=count, max_size=count))
    return sizes, chunk_size


@settings(max_examples=500)
@given(sizes_and_chunk_size())
def test_last_size_proves_the_uniform_layout(case: tuple[list[int], int]) -> None:
    sizes, chunk_size = case
    last = uniform_last_size(sum(sizes), len(sizes), chunk_size)
    if last is not None and sizes[-1] == last:
        assert all(size == chunk_size for size in sizes[:-1])
    uniform = all(size == chunk_size for size in sizes[:-1]) and sizes[-1] > 0
    if uniform:
        assert last == sizes[-1]


@settings(max_examples=200)
@given(st.integers(0, 20_000), st.integers(1, 5_000))
def test_uniform_last_size_is_the_last_of_the_uniform_layout(total: int, chunk_size: int) -> None:
    sizes = full_chunks_then_rest(total, chunk_size)
    assert sum(sizes) == total
    assert len(sizes) == -(-total // chunk_size)
    assert all(0 < size <= chunk_size for size in sizes)
    assert all(size == chunk_size for size in sizes[:-1])
    if sizes:
        assert uniform_last_size(total, len(sizes), chunk_size) == sizes[-1]


uneven_sizes = st.lists(st.integers(0, 40), max_size=25)


@settings(max_examples=200)
@given(uneven_sizes)
def test_every_byte_maps_to_the_chunk_that_holds_it(sizes: list[int]) -> None:
    index = ChunkIndex.from_sizes("N", list(range(len(sizes))), sizes)
    assert index.size == sum(sizes)
    assert index.count == len(sizes)
    for chunk, size in enumerate(sizes):
        start, end = index.bounds(chunk)
        assert end - start == size
        assert start == sum(sizes[:chunk])
    for offset in range(index.size):
        assert index.chunk_at(offset) == naive_chunk_at(sizes, offset)


@settings(max_examples=200)
@given(uneven_sizes, st.integers(-5, 1100), st.integers(-5, 1100))
def test_span_covers_exactly_the_touched_chunks(sizes: list[int], offset: int, length: int) -> None:
    index = ChunkIndex.from_sizes("N", list(range(len(sizes))), sizes)
    offset = max(offset, 0)
    end = min(offset + length, index.size)
    touched = sorted({naive_chunk_at(sizes, b) for b in range(offset, end)})
    expected = range(touched[0], touched[-1] + 1) if touched else range(0)
    assert index.span(offset, length) == expected


def test_chunk_key_tells_versions_apart() -> None:
    cache = {ChunkKey("nuid-a", 0): b"old", ChunkKey("nuid-b", 0): b"new"}
    assert cache[ChunkKey("nuid-a", 0)] == b"old"
    assert cache[ChunkKey("nuid-b", 0)] == b"new"
    assert ChunkKey("nuid-a", 0) != ChunkKey("nuid-a", 1)
