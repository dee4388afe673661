"""The chunk-cache policy: the byte budget, LRU order, versions, and the readahead window.

Rules: pure and synchronous, no event loop; the budget is checked after every operation of
random sequences (hypothesis), not only in hand-picked cases.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from osfs.core.cache import CacheStatistics, ChunkCache, Readahead
from osfs.core.chunks import ChunkKey


def key(index: int, nuid: str = "v1") -> ChunkKey:
    return ChunkKey(nuid, index)


def chunk(size: int, fill: int = 0) -> bytes:
    return bytes([fill % 256]) * size


# ChunkCache -------------------------------------------------------------------------------------


def test_get_returns_what_was_put_and_counts_hits_and_misses() -> None:
    cache = ChunkCache(100)
    assert cache.get(key(0)) is None
    assert cache.put(key(0), b"abc")
    assert cache.get(key(0)) == b"abc"
    assert cache.statistics() == CacheStatistics(
        hits=1, misses=1, bytes=3, entries=1, budget_bytes=100
    )


def test_keys_of_different_versions_never_collide() -> None:
    cache = ChunkCache(100)
    cache.put(key(0, "old"), b"old bytes")
    cache.put(key(0, "new"), b"new bytes")
    assert cache.get(key(0, "old")) == b"old bytes"
    assert cache.get(key(0, "new")) == b"new bytes"


def test_least_recently_used_chunk_is_evicted_first() -> None:
    cache = ChunkCache(30)
    for i in range(3):
        cache.put(key(i), chunk(10, i))
    assert cache.get(key(0)) is not None  # 0 is now the most recent; 1 the least
    cache.put(key(3), chunk(10, 3))
    assert key(1) not in cache
    assert all(k in cache for k in (key(0), key(2), key(3)))


def test_a_large_chunk_evicts_as_many_as_it_needs() -> None:
    cache = ChunkCache(30)
    for i in range(3):
        cache.put(key(i), chunk(10, i))
    cache.put(key(9), chunk(25))
    assert [k for k in (key(0), key(1), key(2), key(9)) if k in cache] == [key(9)]
    assert cache.statistics().bytes == 25


def test_a_chunk_larger_than_the_budget_is_not_cached_and_evicts_nothing() -> None:
    cache = ChunkCache(30)
    cache.put(key(0), chunk(10))
    assert not cache.put(key(1), chunk(31))
    assert key(1) not in cache
    assert key(0) in cache
    assert cache.statistics().bytes == 10


def test_a_chunk_of_exactly_the_budget_is_cached() -> None:
    cache = ChunkCache(30)
    cache.put(key(0), chunk(10))
    assert cache.put(key(1), chunk(30))
    assert key(1) in cache
    assert key(0) not in cache


def test_zero_budget_caches_nothing() -> None:
    cache = ChunkCache(0)
    assert not cache.put(key(0), b"x")
    assert cache.get(key(0)) is None
    assert cache.statistics().entries == 0


def test_empty_chunk_fits_any_budget() -> None:
    cache = ChunkCache(0)
    assert cache.put(key(0), b"")
    assert cache.get(key(0)) == b""


def test_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError):
        ChunkCache(-1)


def test_contains_neither_counts_nor_refreshes() -> None:
    cache = ChunkCache(20)
    cache.put(key(0), chunk(10))
    cache.put(key(1), chunk(10))
    assert key(0) in cache  # must not make 0 the most recent
    cache.put(key(2), chunk(10))
    assert key(0) not in cache
    assert cache.statistics().hits == cache.statistics().misses == 0


def test_replacing_a_key_keeps_the_byte_count_exact() -> None:
    cache = ChunkCache(100)
    cache.put(key(0), chunk(40))
    cache.put(key(0), chunk(10))
    assert cache.statistics().bytes == 10
    assert cache.statistics().entries == 1


def test_discard_version_drops_only_that_version() -> None:
    cache = ChunkCache(100)
    for i in range(3):
        cache.put(key(i, "gone"), chunk(5))
        cache.put(key(i, "kept"), chunk(5))
    assert cache.discard_version("gone") == 3
    assert cache.discard_version("gone") == 0
    assert cache.statistics().entries == 3
    assert all(key(i, "kept") in cache for i in range(3))


def test_clear_drops_everything() -> None:
    cache = ChunkCache(100)
    cache.put(key(0), chunk(5))
    cache.clear()
    assert cache.statistics().bytes == 0
    assert key(0) not in cache


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 20), st.integers(0, 60)),
        st.tuples(st.just("get"), st.integers(0, 20), st.just(0)),
        st.tuples(st.just("discard"), st.integers(0, 20), st.just(0)),
    ),
    max_size=200,
)


@given(budget=st.integers(0, 100), ops=_ops)
def test_budget_is_never_exceeded_and_contents_are_right(
    budget: int, ops: list[tuple[str, int, int]]
) -> None:
    cache = ChunkCache(budget)
    written: dict[ChunkKey, bytes] = {}
    for op, index, size in ops:
        k = key(index % 7, nuid=f"v{index % 3}")
        if op == "put":
            data = chunk(size, index)
            stored = cache.put(k, data)
            assert stored == (size <= budget)
            if stored:
                written[k] = data
        elif op == "get":
            got = cache.get(k)
            assert got is None or got == written[k]
        else:
            cache.discard_version(k.nuid)
        stats = cache.statistics()
        assert stats.bytes <= budget
        assert stats.bytes == sum(len(written[k]) for k in written if k in cache)


@given(sizes=st.lists(st.integers(1, 10), min_size=1, max_size=40))
def test_most_recent_chunks_that_fit_are_the_ones_kept(sizes: list[int]) -> None:
    budget = 25
    cache = ChunkCache(budget)
    for i, size in enumerate(sizes):
        cache.put(key(i), chunk(size))
    # Walking back from the newest, the cache holds exactly the longest suffix that fits.
    kept, total = set(), 0
    for i in reversed(range(len(sizes))):
        if total + sizes[i] > budget:
            break
        total += sizes[i]
        kept.add(i)
    assert {i for i in range(len(sizes)) if key(i) in cache} == kept


# Readahead --------------------------------------------------------------------------------------


def test_sequential_reads_from_zero_grow_the_window_by_doubling_up_to_the_maximum() -> None:
    policy = Readahead(initial_chunks=1, max_chunks=8)
    windows = [policy.observe(i * 100, 100) for i in range(6)]
    assert windows == [1, 2, 4, 8, 8, 8]


def test_initial_window_is_honoured() -> None:
    policy = Readahead(initial_chunks=3, max_chunks=10)
    assert [policy.observe(i * 10, 10) for i in range(4)] == [3, 6, 10, 10]


def test_first_read_elsewhere_than_zero_asks_for_nothing() -> None:
    policy = Readahead(max_chunks=8)
    assert policy.observe(500, 100) == 0
    assert policy.observe(600, 100) == 1  # sequential from there on: the window opens


def test_a_jump_resets_the_window_then_it_grows_again() -> None:
    policy = Readahead(max_chunks=8)
    for i in range(4):
        policy.observe(i * 100, 100)
    assert policy.window == 8
    assert policy.observe(10_000, 100) == 0  # forwards
    assert policy.observe(10_100, 100) == 1
    assert policy.observe(10_200, 100) == 2
    assert policy.observe(0, 100) == 0  # backwards
    assert policy.window == 0


def test_a_reread_of_the_same_range_is_a_jump() -> None:
    policy = Readahead(max_chunks=8)
    policy.observe(0, 100)
    assert policy.observe(0, 100) == 0


def test_reads_of_varying_length_stay_sequential() -> None:
    policy = Readahead(max_chunks=4)
    offset, windows = 0, []
    for length in (1, 4096, 7, 131072):
        windows.append(policy.observe(offset, length))
        offset += length
    assert windows == [1, 2, 4, 4]


def test_empty_reads_change_nothing() -> None:
    policy = Readahead(max_chunks=4)
    policy.observe(0, 100)
    assert policy.observe(5000, 0) == 0
    assert policy.window == 1
    assert policy.observe(100, 100) == 2


def test_zero_maximum_disables_readahead() -> None:
    policy = Readahead(max_chunks=0)
    assert [policy.observe(i * 10, 10) for i in range(3)] == [0, 0, 0]


def test_initial_window_larger_than_maximum_is_capped() -> None:
    policy = Readahead(initial_chunks=10, max_chunks=4)
    assert policy.observe(0, 1) == 4


@pytest.mark.parametrize(("initial", "maximum"), [(0, 4), (-1, 4), (1, -1)])
def test_bad_limits_are_refused(initial: int, maximum: int) -> None:
    with pytest.raises(ValueError):
        Readahead(initial_chunks=initial, max_chunks=maximum)


@given(
    reads=st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 200)), max_size=100),
    maximum=st.integers(0, 64),
)
def test_window_stays_within_limits_and_is_zero_after_any_jump(
    reads: list[tuple[int, int]], maximum: int
) -> None:
    policy = Readahead(max_chunks=maximum)
    expected_next = 0
    for offset, length in reads:
        window = policy.observe(offset, length)
        assert 0 <= window <= maximum
        if length > 0:
            if offset != expected_next:
                assert window == 0
            expected_next = offset + length
