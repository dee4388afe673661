"""Opening the osfs client in asyncio test bodies, and reaching under it to the raw stream.

Tests that check the wire use a plain nats-py connection next to osfs's (``raw``), so what they
assert is what another client would see, not what osfs's own reader reports.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import nats
from nats.aio.client import Client

from osfs.core.config import ObjectStoreConfig
from osfs.core.digest import digest_of
from osfs.core.meta import ObjectInfo, encode_meta
from osfs.core.subjects import chunk_subject, meta_subject
from osfs.store import Connection, ConnectOptions, ObjectStore, open_connection


@asynccontextmanager
async def opened(url: str | tuple[str, ...]) -> AsyncIterator[Connection]:
    """An osfs connection that is closed when the block ends."""
    servers = (url,) if isinstance(url, str) else url
    connection = await open_connection(ConnectOptions(servers=servers), reconnect=True)
    try:
        yield connection
    finally:
        await connection.close()


@asynccontextmanager
async def bucket(url: str, name: str, **config: Any) -> AsyncIterator[ObjectStore]:
    """A fresh bucket ``name`` on ``url`` (created with ``config``), and its ObjectStore."""
    async with opened(url) as connection:
        store = await connection.manager.create_object_store(
            ObjectStoreConfig(bucket=name, **config)
        )
        try:
            yield store
        finally:
            await store.aclose()


@asynccontextmanager
async def raw(url: str) -> AsyncIterator[Client]:
    """A plain nats-py connection, for looking at (or tampering with) the stream directly."""
    nc = await nats.connect(url)
    try:
        yield nc
    finally:
        await nc.close()


async def put_raw(
    url: str,
    bucket: str,
    name: str,
    chunks: list[bytes],
    *,
    nuid: str,
    max_chunk_size: int | None = None,
    chunk_headers: Callable[[int], Mapping[str, str]] | None = None,
) -> ObjectInfo:
    """Store an object with plain publishes, chunk by chunk, then its meta document (a rollup),
    as clients osfs did not write store them: nats.go from a pipe (uneven chunks), or one that
    gives chunk ``i`` the headers ``chunk_headers(i)``."""
    data = b"".join(chunks)
    info = ObjectInfo(
        name=name,
        bucket=bucket,
        nuid=nuid,
        size=len(data),
        chunks=len(chunks),
        digest=digest_of(data),
        max_chunk_size=max_chunk_size or max(len(chunk) for chunk in chunks),
    )
    async with raw(url) as nc:
        js = nc.jetstream()
        for i, chunk in enumerate(chunks):
            headers = dict(chunk_headers(i)) if chunk_headers is not None else None
            await js.publish(chunk_subject(bucket, nuid), chunk, headers=headers)
        await js.publish(
            meta_subject(bucket, name), encode_meta(info), headers={"Nats-Rollup": "sub"}
        )
    return info


async def api(nc: Client, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A raw JetStream API request."""
    payload = json.dumps(body).encode() if body is not None else b""
    msg = await nc.request(f"$JS.API.{subject}", payload, timeout=5)
    response: dict[str, Any] = json.loads(msg.data)
    return response


async def stored_messages(nc: Client, stream: str, subject: str) -> list[dict[str, Any]]:
    """Every stored message on ``subject`` (seq, headers block, data) via STREAM.MSG.GET."""
    found: list[dict[str, Any]] = []
    seq = 1
    while True:
        reply = await api(nc, f"STREAM.MSG.GET.{stream}", {"seq": seq, "next_by_subj": subject})
        if "error" in reply:
            return found
        message = reply["message"]
        message["data"] = base64.b64decode(message.get("data") or "")
        message["hdrs"] = base64.b64decode(message["hdrs"]).decode() if message.get("hdrs") else ""
        found.append(message)
        seq = int(message["seq"]) + 1


async def message_count(nc: Client, stream: str, subject: str) -> int:
    """How many messages the stream holds on ``subject`` (wildcards allowed)."""
    info = await api(nc, f"STREAM.INFO.{stream}", {"subjects_filter": subject})
    subjects = info.get("state", {}).get("subjects") or {}
    return int(sum(subjects.values()))
