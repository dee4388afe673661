"""A thin JetStream API client: the requests the Object Store needs, as raw NATS messages.

Why not nats-py's ``JetStreamContext``: the Object Store needs batch Direct Get, last-by-subject
Direct Get with the server timestamp in nanoseconds, purge by subject, and publishes whose acks
are counted rather than awaited one by one; nats-py either lacks these or reaches into private
state for them. Every method maps errors through :mod:`osfs.store.translate`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from osfs.core import errors
from osfs.core.timefmt import parse_rfc3339_ns
from osfs.store.translate import NO_MESSAGE_FOUND, api_error, translated

ROLLUP_HEADERS = {"Nats-Rollup": "sub"}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoredMsg:
    """One stored stream message as a get returns it."""

    subject: str
    seq: int
    data: bytes
    time_ns: int
    headers: Mapping[str, str]
    pending: int = -1  # messages on the filter after this one (batch gets only)


class NotFound(Exception):
    """Internal: the requested message does not exist (mapped to a domain error by callers)."""


def reply_status(msg: Msg) -> str:
    """The server's status code of a reply ("" for none).

    nats-py cannot tell the server's status line from a ``Status`` header a publisher stored
    with its message, so a Direct Get reply, which always carries ``Nats-Sequence``, never has
    a status: its headers are the stored message's own.
    """
    headers = msg.headers or {}
    if "Nats-Sequence" in headers:
        return ""
    return str(headers.get("Status", ""))


def stored_from_direct(msg: Msg) -> StoredMsg:
    """Decode a Direct Get reply (payload plus ``Nats-*`` headers)."""
    headers = {str(k): str(v) for k, v in (msg.headers or {}).items()}
    return StoredMsg(
        subject=headers.get("Nats-Subject", ""),
        seq=int(headers.get("Nats-Sequence", "0")),
        data=msg.data,
        time_ns=parse_rfc3339_ns(headers["Nats-Time-Stamp"]) if "Nats-Time-Stamp" in headers else 0,
        headers=headers,
        pending=int(headers.get("Nats-Num-Pending", "-1")),
    )


def parse_header_block(raw: bytes) -> dict[str, str]:
    """Parse a ``NATS/1.0`` header block (as MSG.GET returns it base64-encoded)."""
    headers: dict[str, str] = {}
    lines = raw.decode("utf-8", "replace").split("\r\n")
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value.strip()
    return headers


class _Replies:
    """Requests on one wildcard reply subscription, each told by a counter.

    What nats-py's ``request`` does, less its cost per request: a ``getrandom`` call for a
    random token, a NUID and a timeout task (measured: about 5% of the CPU time of a small get,
    which is two requests). A request may also take several replies (a batch Direct Get).
    Statuses are left to the caller (:func:`reply_status`), which also tells a stored message's
    own ``Status`` header from the server's.
    """

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._sub: Subscription | None = None
        self._subscribing = asyncio.Lock()
        self._waiting: dict[str, Callable[[Msg], None]] = {}
        self._ids = itertools.count(1)

    async def request(
        self,
        subject: str,
        payload: bytes,
        *,
        within: float,
        headers: Mapping[str, str] | None = None,
    ) -> Msg:
        """Publish with a reply subject and wait for the reply.

        Raises:
            TimeoutError: no reply within ``within`` seconds.
        """
        reply: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

        def answer(msg: Msg) -> None:
            if not reply.done():
                reply.set_result(msg)

        return await self._exchange(subject, payload, answer, reply, within, headers)

    async def collect(
        self, subject: str, payload: bytes, take: Callable[[Msg], bool], *, within: float
    ) -> None:
        """Publish with a reply subject and hand every reply to ``take`` until it returns True.

        Raises:
            TimeoutError: the last reply did not come within ``within`` seconds.
        """
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def answer(msg: Msg) -> None:
            if not finished.done() and take(msg):
                finished.set_result(None)

        await self._exchange(subject, payload, answer, finished, within, None)

    async def _exchange(
        self,
        subject: str,
        payload: bytes,
        answer: Callable[[Msg], None],
        finished: asyncio.Future[T],
        within: float,
        headers: Mapping[str, str] | None,
    ) -> T:
        if self._sub is None:
            async with self._subscribing:
                if self._sub is None:
                    prefix = self._nc.new_inbox()
                    self._sub = await self._nc.subscribe(prefix + ".*", cb=self._on_reply)
                    self._prefix = prefix
        token = str(next(self._ids))
        self._waiting[token] = answer
        try:
            await self._nc.publish(
                subject,
                payload,
                reply=f"{self._prefix}.{token}",
                headers=dict(headers) if headers else None,
            )
            async with asyncio.timeout(within):
                return await finished
        finally:
            del self._waiting[token]

    async def _on_reply(self, msg: Msg) -> None:
        answer = self._waiting.get(msg.subject.rpartition(".")[2])
        if answer is not None:
            answer(msg)


class JetStreamApi:
    """Requests to ``$JS.API`` on one connection.

    Args:
        nc: a connected nats-py client.
        prefix: the API prefix (``$JS.API``, or ``$JS.<domain>.API``).
        timeout: seconds to wait for each answer.
    """

    def __init__(self, nc: Client, *, prefix: str = "$JS.API", timeout: float = 5.0) -> None:
        self.nc = nc
        self.prefix = prefix
        self.timeout = timeout
        self._replies = _Replies(nc)

    async def request(self, subject: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send an API request; return the response body or raise its error."""
        payload = json.dumps(body).encode() if body is not None else b""
        with translated(subject.removeprefix(self.prefix + ".")):
            msg = await self._replies.request(
                f"{self.prefix}.{subject}", payload, within=self.timeout
            )
        if reply_status(msg) == "503":
            raise errors.StoreUnavailableError("JetStream is not available (no responders)")
        try:
            response: dict[str, Any] = json.loads(msg.data)
        except ValueError as exc:
            raise errors.ApiError(0, 0, f"unreadable JetStream response to {subject}") from exc
        if "error" in response:
            raise api_error(response["error"])
        return response

    async def collect(self, subject: str, payload: bytes, take: Callable[[Msg], bool]) -> None:
        """Publish ``payload`` to ``subject`` and hand every reply to ``take`` until it returns
        True (the last one), within the API timeout. Errors are the caller's to translate."""
        await self._replies.collect(subject, payload, take, within=self.timeout)

    # Streams --------------------------------------------------------------------------------

    async def stream_info(self, stream: str) -> dict[str, Any]:
        """``STREAM.INFO``."""
        return await self.request(f"STREAM.INFO.{stream}")

    async def stream_create(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``STREAM.CREATE`` (idempotent for an identical config)."""
        return await self.request(f"STREAM.CREATE.{config['name']}", config)

    async def stream_update(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``STREAM.UPDATE``."""
        return await self.request(f"STREAM.UPDATE.{config['name']}", config)

    async def stream_delete(self, stream: str) -> None:
        """``STREAM.DELETE``."""
        await self.request(f"STREAM.DELETE.{stream}")

    async def stream_names(self, subject_filter: str) -> list[str]:
        """Every stream name whose subjects overlap ``subject_filter`` (all pages)."""
        names: list[str] = []
        while True:
            page = await self.request(
                "STREAM.NAMES", {"offset": len(names), "subject": subject_filter}
            )
            batch = page.get("streams") or []
            names.extend(batch)
            if not batch or len(names) >= int(page.get("total", 0)):
                return names

    async def stream_list(self, subject_filter: str) -> list[dict[str, Any]]:
        """Every stream info whose subjects overlap ``subject_filter`` (all pages)."""
        infos: list[dict[str, Any]] = []
        while True:
            page = await self.request(
                "STREAM.LIST", {"offset": len(infos), "subject": subject_filter}
            )
            batch = page.get("streams") or []
            infos.extend(batch)
            if not batch or len(infos) >= int(page.get("total", 0)):
                return infos

    async def subject_counts(self, stream: str, subject_filter: str) -> dict[str, int]:
        """Messages per subject matching ``subject_filter`` (``STREAM.INFO``, all pages)."""
        counts: dict[str, int] = {}
        while True:
            info = await self.request(
                f"STREAM.INFO.{stream}",
                {"subjects_filter": subject_filter, "offset": len(counts)},
            )
            page = info.get("state", {}).get("subjects") or {}
            before = len(counts)
            counts.update({str(subject): int(n) for subject, n in page.items()})
            total = int(info.get("total", 0) or 0)
            if len(counts) == before or len(counts) >= total:
                return counts

    async def purge(self, stream: str, subject: str) -> int:
        """Purge every message on ``subject``; return how many were removed."""
        response = await self.request(f"STREAM.PURGE.{stream}", {"filter": subject})
        return int(response.get("purged", 0))

    # Messages -------------------------------------------------------------------------------

    async def msg_get_last(self, stream: str, subject: str) -> StoredMsg:
        """The last message on ``subject`` via ``STREAM.MSG.GET`` (the leader: read-after-write).

        Raises:
            NotFound: no message on that subject.
        """
        try:
            response = await self.request(f"STREAM.MSG.GET.{stream}", {"last_by_subj": subject})
        except errors.ApiError as exc:
            if exc.err_code == NO_MESSAGE_FOUND:
                raise NotFound(subject) from exc
            raise
        message = response["message"]
        raw_headers = message.get("hdrs")
        return StoredMsg(
            subject=message["subject"],
            seq=int(message["seq"]),
            data=base64.b64decode(message.get("data") or ""),
            time_ns=parse_rfc3339_ns(message["time"]),
            headers=parse_header_block(base64.b64decode(raw_headers)) if raw_headers else {},
        )

    async def last_message(self, stream: str, subject: str) -> StoredMsg:
        """The last message on ``subject``: a Direct Get, or the stream leader when nobody
        answers it.

        nats-py raises "no responders" for any reply with a ``Status: 503`` header, also for a
        stored message some client published with that header; ``STREAM.MSG.GET`` answers in
        JSON, which tells them apart. When the leader cannot answer either, the first error
        stands.

        Raises:
            NotFound: no message on that subject.
        """
        try:
            return await self.direct_get_last(stream, subject)
        except errors.StoreUnavailableError as unavailable:
            try:
                return await self.msg_get_last(stream, subject)
            except NotFound:
                raise
            except errors.OsfsError:
                raise unavailable from None

    async def direct_get_last(self, stream: str, subject: str) -> StoredMsg:
        """The last message on ``subject`` via Direct Get (any replica answers: fast).

        Raises:
            NotFound: no message on that subject.
        """
        with translated(f"direct get {subject}"):
            msg = await self._replies.request(
                f"{self.prefix}.DIRECT.GET.{stream}.{subject}", b"", within=self.timeout
            )
        return self._direct_reply(msg, subject)

    async def direct_get_seq(self, stream: str, seq: int) -> StoredMsg:
        """The message at stream sequence ``seq`` via Direct Get.

        Raises:
            NotFound: no message at that sequence.
        """
        body = json.dumps({"seq": seq}).encode()
        with translated(f"direct get seq {seq}"):
            msg = await self._replies.request(
                f"{self.prefix}.DIRECT.GET.{stream}", body, within=self.timeout
            )
        return self._direct_reply(msg, f"seq {seq}")

    def _direct_reply(self, msg: Msg, what: str) -> StoredMsg:
        status = reply_status(msg)
        if status == "404":
            raise NotFound(what)
        if status == "503":
            raise errors.StoreUnavailableError("JetStream is not available (no responders)")
        if status:
            description = (msg.headers or {}).get("Description", "")
            raise errors.ApiError(int(status), 0, f"direct get {what}: {status} {description}")
        return stored_from_direct(msg)

    async def publish(
        self, subject: str, payload: bytes, headers: Mapping[str, str] | None = None
    ) -> int:
        """Publish to a stream and wait for its ack; return the stored sequence."""
        with translated(f"publish {subject}"):
            msg = await self._replies.request(
                subject, payload, within=self.timeout, headers=headers
            )
        return parse_puback(msg)


def parse_puback(msg: Msg) -> int:
    """The sequence in a publish ack, or the osfs error it reports."""
    if reply_status(msg) == "503":
        raise errors.StoreUnavailableError("no stream answered the publish (no responders)")
    try:
        ack = json.loads(msg.data)
    except ValueError as exc:
        raise errors.ApiError(0, 0, "unreadable publish ack") from exc
    if "error" in ack:
        raise api_error(ack["error"])
    return int(ack.get("seq", 0))
