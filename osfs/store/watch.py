"""Watching a bucket: every object's latest info, a marker, then each change as it happens.

Semantics follow nats.go's ``Watch`` (wire.md §11): by default the last document of every name,
then ``None`` once the initial values are delivered, then live updates; ``include_history``
delivers every stored document; ``updates_only`` only new ones (and no marker). Unlike nats.go,
a document that cannot be decoded is logged and skipped *without* losing the end-of-initial
marker, so a bad document written by another client never hangs a listing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from osfs.core import errors
from osfs.core.meta import ObjectInfo, decode_meta
from osfs.core.subjects import all_meta_subject, stream_name
from osfs.store.consumer import DeliverPolicy, OrderedConsumer
from osfs.store.jsapi import JetStreamApi, NotFound

log = logging.getLogger(__name__)


class ObjectWatcher:
    """An async iterator of :class:`ObjectInfo` (and one ``None`` after the initial values).

    Use it as an async context manager so the consumer is deleted when you are done.
    """

    def __init__(
        self,
        api: JetStreamApi,
        bucket: str,
        *,
        include_history: bool,
        ignore_deletes: bool,
        updates_only: bool,
    ) -> None:
        self._api = api
        self._bucket = bucket
        self._ignore_deletes = ignore_deletes
        self._updates_only = updates_only
        policy: DeliverPolicy = "last_per_subject"
        if include_history:
            policy = "all"
        elif updates_only:
            policy = "new"
        self._consumer = OrderedConsumer(
            api, stream_name(bucket), all_meta_subject(bucket), deliver_policy=policy
        )
        self._initial_done = updates_only
        self._marker_due = False
        self._iterator: AsyncIterator[ObjectInfo | None] | None = None
        #: The subjects of the initial values skipped as unreadable (for ``osfs fsck``; later
        #: ones are only logged, so a long watch never grows this).
        self.unreadable: list[str] = []

    async def __aenter__(self) -> ObjectWatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Create the consumer; decide whether the bucket starts empty."""
        if not self._updates_only:
            try:
                # Not a plain Direct Get: a last document stored with a "Status: 503" header
                # would fail it with "no responders" (JetStreamApi.last_message).
                await self._api.last_message(
                    stream_name(self._bucket), all_meta_subject(self._bucket)
                )
            except NotFound:
                self._initial_done = True
                self._marker_due = True
        await self._consumer.__aenter__()

    async def stop(self) -> None:
        """Delete the consumer."""
        await self._consumer.aclose()

    def __aiter__(self) -> AsyncIterator[ObjectInfo | None]:
        if self._iterator is None:
            self._iterator = self._entries()
        return self._iterator

    async def _entries(self) -> AsyncIterator[ObjectInfo | None]:
        if self._marker_due:
            yield None
        async for delivered in self._consumer:
            entry: ObjectInfo | None = None
            try:
                entry = decode_meta(
                    delivered.data,
                    bucket=self._bucket,
                    mtime_ns=delivered.info.timestamp_ns,
                    revision=delivered.info.stream_seq,
                )
            except errors.BadObjectMetaError as exc:
                if not self._initial_done:
                    self.unreadable.append(delivered.subject)
                log.warning(
                    "bucket %s: skipping unreadable meta document on %s (seq %d): %s",
                    self._bucket,
                    delivered.subject,
                    delivered.info.stream_seq,
                    exc,
                )
            if entry is not None and not (self._ignore_deletes and entry.deleted):
                yield entry
            if not self._initial_done and delivered.info.pending == 0:
                self._initial_done = True
                yield None
