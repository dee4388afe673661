"""The seam (osfs.bridge) against a real server: what the Store contract leaves to it."""

from __future__ import annotations

import pytest
import trio

from osfs.bridge import WATCH_BATCH_GAP, BridgedStore
from osfs.core.meta import ObjectMeta
from osfs.core.store_api import WatchBatch
from osfs.store import ConnectOptions

pytestmark = pytest.mark.integration


async def test_a_steady_stream_of_changes_crosses_in_few_batches(
    nats_url: str, bucket_name: str
) -> None:
    """Each batch wakes trio; a change per millisecond or so (the echoes of a ``cp -r``)
    must not cost a crossing each."""
    count = 40
    bridged = await BridgedStore.open(ConnectOptions(servers=(nats_url,)), bucket_name, create=True)
    try:
        async with bridged.watch() as feed:
            with trio.fail_after(10):
                assert await anext(feed) == (None,)  # an empty bucket: just the marker
            received: list[WatchBatch] = []

            async def collect() -> None:
                total = 0
                while total < count:
                    batch = await anext(feed)
                    received.append(batch)
                    total += len(batch)

            start = trio.current_time()
            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(collect)
                    for i in range(count):
                        await bridged.put_data(ObjectMeta(name=f"o{i:02d}"), b"x")
            span = trio.current_time() - start
    finally:
        await bridged.aclose()
    names = [entry.name for batch in received for entry in batch if entry is not None]
    assert names == [f"o{i:02d}" for i in range(count)]
    assert len(received) <= span / WATCH_BATCH_GAP + 2, (len(received), span)
