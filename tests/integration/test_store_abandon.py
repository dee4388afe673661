"""Abandoning a put on a real nats-server: it waits for what it sent to land, and no longer.

(Found by ``test_mount_concurrency``: every streamed upload the mount abandoned, because a write
landed below what was already sent, held its file's ``close`` for the whole ack timeout.)
"""

from __future__ import annotations

import time

import pytest

from osfs.core import errors
from osfs.core.meta import ObjectMeta
from osfs.core.subjects import stream_name
from tests.support.aio import asyncio_test
from tests.support.data import payload
from tests.support.store_fixtures import bucket, message_count, raw

pytestmark = pytest.mark.integration

CHUNK = 128 * 1024
#: The client's ack timeout (``ConnectOptions.request_timeout``) is 5 s; a local server acks
#: 2 MiB in milliseconds.
ABANDON_LIMIT = 2.5


@asyncio_test
async def test_abandon_hears_the_acks_of_what_was_sent_instead_of_timing_out(
    nats_url: str, bucket_name: str
) -> None:
    """``abandon`` right after the last publish (its ack cannot have come back yet): it waits
    until every chunk sent has landed, so the purge that follows cannot be overtaken by one
    (publisher rule 2), then purges them all, within a moment. It used to stop listening for
    acks first, so its wait always lasted the whole ack timeout."""
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        upload = await store.begin_put(ObjectMeta(name="abandoned"))
        await upload.add(payload(16 * CHUNK))
        started = time.monotonic()
        await upload.abandon()
        took = time.monotonic() - started
        assert took < ABANDON_LIMIT, f"abandon took {took:.2f} s"
        assert await message_count(nc, stream_name(bucket_name), f"$O.{bucket_name}.C.>") == 0
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("abandoned")
        await upload.abandon()  # again: nothing to do
