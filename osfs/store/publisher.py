"""Publishing chunks with many acks outstanding: the put path's engine.

Why: awaiting each publish's ack caps a put at one round trip per chunk (nats-py's put reaches
≈ 180 MB/s); keeping a window of publishes in flight reaches the raw JetStream rate.

Rules:
1. One :class:`AckRouter` per bucket owns one wildcard reply subscription for its whole life;
   each put opens a cheap :class:`AckWindow` on it (no SUB/UNSUB per put: small objects pay
   for round trips, not set-up).
2. The first failed ack fails the window; :meth:`AckWindow.settle` lets a failed put wait until
   what it published has landed, so the purge that undoes it cannot overtake queued chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable, Mapping

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from osfs.core import errors
from osfs.store.translate import api_error, translated

DEFAULT_WINDOW = 32


class AckRouter:
    """Routes publish acks to the window that is waiting for them.

    Args:
        nc: the connection.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._sub: Subscription | None = None
        self._windows: dict[str, AckWindow] = {}
        self._ids = itertools.count(1)

    async def _ensure_sub(self) -> None:
        if self._sub is None:
            self._prefix = self._nc.new_inbox()
            with translated("publish"):
                self._sub = await self._nc.subscribe(self._prefix + ".*.*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        window = self._windows.get(msg.subject.split(".")[-2])
        if window is not None:
            window.on_ack(msg)

    async def open_window(
        self, *, window: int = DEFAULT_WINDOW, ack_timeout: float = 5.0
    ) -> AckWindow:
        """A new window of publishes; close it with :meth:`AckWindow.close`.

        Args:
            window: publishes allowed in flight.
            ack_timeout: seconds without any ack progress before the put gives up.
        """
        await self._ensure_sub()
        token = str(next(self._ids))
        opened = AckWindow(self, token, f"{self._prefix}.{token}", window, ack_timeout)
        self._windows[token] = opened
        return opened

    def _drop(self, token: str) -> None:
        self._windows.pop(token, None)

    async def aclose(self) -> None:
        """Drop the reply subscription."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


class AckWindow:
    """Publishes of one put, with up to ``window`` acks outstanding."""

    def __init__(
        self, router: AckRouter, token: str, reply_prefix: str, window: int, timeout: float
    ) -> None:
        self._router = router
        self._token = token
        self._reply = reply_prefix
        self._window = window
        self._timeout = timeout
        self._sent = 0
        self._acked = 0
        self._error: errors.OsfsError | None = None
        self._progress = asyncio.Event()
        self.last_seq = 0

    def close(self) -> None:
        """Stop routing acks to this window."""
        self._router._drop(self._token)

    def on_ack(self, msg: Msg) -> None:
        """Count one ack (called by the router)."""
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
        if self._sent - self._acked >= self._window:
            await self._wait_for(lambda: self._sent - self._acked < self._window)
        self.raise_if_failed()
        self._sent += 1
        with translated(f"publish {subject}"):
            await self._router._nc.publish(
                subject,
                payload,
                reply=f"{self._reply}.{self._sent}",
                headers=dict(headers) if headers else None,
            )

    async def wait_all(self) -> None:
        """Wait until every publish is acked; raise the first failure."""
        await self._wait_for(lambda: self._acked >= self._sent)

    async def settle(self) -> None:
        """Wait (bounded by the timeout) until no publish is outstanding, ignoring failures."""
        with contextlib.suppress(errors.OsfsError):
            await self._wait_for(lambda: self._acked >= self._sent, fail=False)

    def raise_if_failed(self) -> None:
        """Raise the first failed ack, if any."""
        if self._error is not None:
            raise self._error

    async def _wait_for(self, ready: Callable[[], bool], *, fail: bool = True) -> None:
        while True:
            if fail:
                self.raise_if_failed()
            if ready():
                return
            self._progress.clear()
            try:
                async with asyncio.timeout(self._timeout):
                    await self._progress.wait()
            except TimeoutError as exc:
                raise errors.StoreTimeoutError(
                    f"no publish ack for {self._timeout:.0f}s "
                    f"({self._sent - self._acked} outstanding)"
                ) from exc
