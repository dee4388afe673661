"""Publishing chunks with many acks outstanding: the put path's engine.

Why: awaiting each publish's ack caps a put at one round trip per chunk (nats-py's put reaches
≈ 180 MB/s); keeping a window of publishes in flight reaches the raw JetStream rate. Acks are
counted by one wildcard subscription; the first failed ack fails the put.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from osfs.core import errors
from osfs.store.translate import api_error, translated

DEFAULT_WINDOW = 32


class PipelinedPublisher:
    """Publish with up to ``window`` acks outstanding.

    Use as an async context manager; call :meth:`publish` for each message and
    :meth:`wait_all` before trusting that everything was stored.

    Args:
        nc: the connection.
        window: publishes allowed in flight.
        timeout: seconds without any ack progress before giving up.
    """

    def __init__(self, nc: Client, *, window: int = DEFAULT_WINDOW, timeout: float = 5.0) -> None:
        self._nc = nc
        self._window = window
        self._timeout = timeout
        self._prefix = nc.new_inbox()
        self._sub: Subscription | None = None
        self._sent = 0
        self._acked = 0
        self._error: errors.OsfsError | None = None
        self._progress = asyncio.Event()
        self.last_seq = 0

    async def __aenter__(self) -> PipelinedPublisher:
        with translated("publish"):
            self._sub = await self._nc.subscribe(self._prefix + ".*", cb=self._on_ack)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            with translated("publish"):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_ack(self, msg: Msg) -> None:
        self._acked += 1
        headers = msg.headers or {}
        if headers.get("Status") == "503":
            self._error = self._error or errors.StoreUnavailableError(
                "no stream answered the publish (no responders)"
            )
        else:
            try:
                ack = json.loads(msg.data)
            except ValueError:
                ack = {"error": {"description": "unreadable publish ack"}}
            if "error" in ack:
                self._error = self._error or api_error(ack["error"])
            else:
                self.last_seq = max(self.last_seq, int(ack.get("seq", 0)))
        self._progress.set()

    async def publish(
        self, subject: str, payload: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Publish one message, first waiting for room in the window."""
        await self._wait_for(lambda: self._sent - self._acked < self._window)
        self._sent += 1
        with translated(f"publish {subject}"):
            await self._nc.publish(
                subject,
                payload,
                reply=f"{self._prefix}.{self._sent}",
                headers=dict(headers) if headers else None,
            )

    async def wait_all(self) -> None:
        """Wait until every publish is acked; raise the first failure."""
        await self._wait_for(lambda: self._acked >= self._sent)

    async def settle(self) -> None:
        """Wait (bounded by the timeout) until no publish is outstanding, ignoring failures.

        A purge after a failed put must come after the last chunk is stored: JetStream handles
        API requests apart from stored messages, so an early purge can miss chunks still queued.
        """
        deadline = asyncio.get_running_loop().time() + self._timeout
        while self._acked < self._sent:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)

    def raise_if_failed(self) -> None:
        """Raise the first failed ack, if any."""
        if self._error is not None:
            raise self._error

    async def _wait_for(self, ready: Callable[[], bool]) -> None:
        while True:
            self.raise_if_failed()
            if ready():
                return
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), self._timeout)
            except TimeoutError as exc:
                raise errors.StoreTimeoutError(
                    f"no publish ack for {self._timeout:.0f}s "
                    f"({self._sent - self._acked} outstanding)"
                ) from exc
