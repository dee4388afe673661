"""An ordered push consumer: the one consumer kind osfs creates (watch, chunk-index scans).

Rules:
1. Ephemeral, memory storage, R1, ack none, flow control and idle heartbeats, as every official
   client creates it (wire.md §16.4), plus an ``inactive_threshold`` so a crashed osfs leaves
   nothing behind for long.
2. Flow-control requests are answered when the reader takes that point of the stream off the
   queue, not by a poller: the server sends at the reader's pace and never stalls for 250 ms.
3. A reconnect of the connection, a gap in consumer sequences, or heartbeats missing for three
   intervals (lost consumer) recreates the consumer from the last stream sequence + 1: the
   reader sees every message once, in order, across outages.
4. A message is a delivery when its reply is a ``$JS.ACK`` subject, whatever its headers: a
   stored message whose publisher gave it a ``Status`` header is not mistaken for a heartbeat
   or a consumer status (which would drop it, then reset on the gap it left, for ever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from osfs.core import errors
from osfs.core.acks import Delivery, parse_ack_subject
from osfs.store.jsapi import JetStreamApi
from osfs.store.translate import translated

log = logging.getLogger(__name__)

DeliverPolicy = Literal["all", "last_per_subject", "new"]
#: Seconds between checks for a reconnect of the connection.
RECONNECT_POLL = 0.25
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Delivered:
    """One message delivered by the consumer."""

    subject: str
    data: bytes
    headers: Mapping[str, str]
    info: Delivery


class OrderedConsumer:
    """Deliver the messages of ``filter_subject`` in stream order, surviving outages.

    Use as an async context manager and an async iterator of :class:`Delivered`.

    Args:
        api: the JetStream API of the connection.
        stream: the stream name.
        filter_subject: the subject (may be a wildcard) to deliver.
        deliver_policy: where to start: every message, the last per subject, or only new ones.
        headers_only: deliver headers and ``Nats-Msg-Size`` without payloads.
        idle_heartbeat: seconds between the server's heartbeats while idle.
    """

    def __init__(
        self,
        api: JetStreamApi,
        stream: str,
        filter_subject: str,
        *,
        deliver_policy: DeliverPolicy = "all",
        headers_only: bool = False,
        idle_heartbeat: float = 5.0,
    ) -> None:
        self._api = api
        self._stream = stream
        self._filter = filter_subject
        self._policy = deliver_policy
        self._headers_only = headers_only
        self._heartbeat = idle_heartbeat
        self._queue: asyncio.Queue[tuple[int, Msg]] = asyncio.Queue()
        self._sub: Subscription | None = None
        self._name = ""
        self._last_stream_seq = 0
        self._last_consumer_seq = 0
        self._last_activity = time.monotonic()
        self._monitor: asyncio.Task[None] | None = None
        self._generation = 0
        self._closed = False
        self.resets = 0

    async def __aenter__(self) -> OrderedConsumer:
        await self._create()
        self._monitor = asyncio.create_task(self._watch_heartbeats())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> OrderedConsumer:
        return self

    async def __anext__(self) -> Delivered:
        while True:
            generation, msg = await self._queue.get()
            if generation != self._generation:
                continue  # a late message of a consumer we replaced
            delivered = await self._accept(msg)
            if delivered is not None:
                return delivered

    async def aclose(self) -> None:
        """Stop the heartbeat monitor, unsubscribe, and delete the consumer."""
        if self._closed:
            return
        self._closed = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self._drop_consumer()

    # Internals ------------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "ack_policy": "none",
            "max_deliver": 1,
            "ack_wait": 22 * 3600 * _NS,
            "flow_control": True,
            "idle_heartbeat": int(self._heartbeat * _NS),
            "mem_storage": True,
            "num_replicas": 1,
            "inactive_threshold": 60 * _NS,
            "filter_subject": self._filter,
        }
        if self._headers_only:
            config["headers_only"] = True
        if self._last_stream_seq:
            config["deliver_policy"] = "by_start_sequence"
            config["opt_start_seq"] = self._last_stream_seq + 1
        else:
            config["deliver_policy"] = self._policy
        return config

    async def _create(self) -> None:
        self._generation += 1
        generation = self._generation
        nc = self._api.nc
        inbox = nc.new_inbox()

        async def on_message(msg: Msg) -> None:
            if generation == self._generation:
                self._last_activity = time.monotonic()
                self._queue.put_nowait((generation, msg))

        with translated("create consumer"):
            self._sub = await nc.subscribe(inbox, cb=on_message)
        config = self._config()
        config["deliver_subject"] = inbox
        response = await self._api.request(
            f"CONSUMER.CREATE.{self._stream}", {"stream_name": self._stream, "config": config}
        )
        self._name = str(response.get("name", ""))
        self._last_consumer_seq = 0
        self._last_activity = time.monotonic()

    async def _drop_consumer(self) -> None:
        sub, name = self._sub, self._name
        self._sub, self._name = None, ""
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if name:
            with contextlib.suppress(errors.OsfsError):
                await self._api.request(f"CONSUMER.DELETE.{self._stream}.{name}")

    async def _reset(self, why: str) -> None:
        """Recreate the consumer from the last stream sequence + 1."""
        self.resets += 1
        log.info(
            "consumer on %s: %s; resuming after seq %d", self._filter, why, self._last_stream_seq
        )
        await self._drop_consumer()
        await self._create()

    async def _accept(self, msg: Msg) -> Delivered | None:
        """Handle one raw message; return it if it is a delivery for the reader.

        A stored message always comes with a ``$JS.ACK`` reply subject, control messages
        (heartbeats, flow control, consumer status) never do: so the reply decides (rule 4),
        and a ``Status`` header some publisher stored with its message is only a header.
        """
        headers = {str(k): str(v) for k, v in (msg.headers or {}).items()}
        try:
            info = parse_ack_subject(msg.reply or "")
        except ValueError:
            await self._control(msg, headers)
            return None
        if info.consumer_seq != self._last_consumer_seq + 1:
            await self._reset(
                f"gap: consumer seq {info.consumer_seq} after {self._last_consumer_seq}"
            )
            return None
        self._last_consumer_seq = info.consumer_seq
        self._last_stream_seq = info.stream_seq
        return Delivered(subject=msg.subject, data=msg.data, headers=headers, info=info)

    async def _control(self, msg: Msg, headers: Mapping[str, str]) -> None:
        """Act on a message that is not a delivery: a heartbeat, flow control, a status."""
        status = headers.get("Status", "")
        if status == "100":
            if msg.reply:  # a flow-control request: we have caught up to this point
                with translated("flow control"):
                    await self._api.nc.publish(msg.reply, b"")
            stalled = headers.get("Nats-Consumer-Stalled")
            if stalled:
                with translated("flow control"):
                    await self._api.nc.publish(stalled, b"")
        elif status:
            log.info("consumer on %s: status %s %s", self._filter, status, headers)
            if status in ("409", "404"):
                await self._reset(f"status {status}")
        elif msg.reply:
            log.warning("consumer on %s: unexpected reply subject %r", self._filter, msg.reply)

    async def _watch_heartbeats(self) -> None:
        """Recreate the consumer after a reconnect, or when the server fell silent.

        A reconnect is acted on at once (within :data:`RECONNECT_POLL` seconds): after a server
        restart the ephemeral consumer is gone, and waiting for three missed heartbeats would
        leave the reader stale for 15 s.
        """
        reconnects = self._reconnects()
        while True:
            await asyncio.sleep(min(self._heartbeat, RECONNECT_POLL))
            now_reconnects = self._reconnects()
            silent = time.monotonic() - self._last_activity
            if now_reconnects != reconnects and self._api.nc.is_connected:
                why = "reconnected"
            elif silent >= 3 * self._heartbeat and self._queue.empty():
                why = f"no heartbeat for {silent:.1f}s"
            else:
                continue
            try:
                await self._reset(why)
                reconnects = now_reconnects
            except errors.OsfsError as exc:
                log.info("consumer on %s: cannot recreate yet: %s", self._filter, exc)
                self._last_activity = time.monotonic()

    def _reconnects(self) -> int:
        return int(self._api.nc.stats.get("reconnects", 0))
