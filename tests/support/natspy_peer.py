"""Thin typed helpers around nats-py's own Object Store client (the peer for interop tests).

Everything here calls nats-py's public API (``nats.connect``, ``js.create_object_store``,
``js.object_store``, ``ObjectStore.put/get/get_info/delete/list/watch/...``) and keeps its
behaviour, warts included (wire.md §15): metadata is dropped, ``list`` includes deleted
entries, a delete marker has ``"mtime": ""``, any rename raises ``ObjectAlreadyExists``.
``raw_meta`` reads the stored meta document itself, to check what is on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext, api
from nats.js.object_store import ObjectStore

__all__ = [
    "NATS",
    "JetStreamContext",
    "ObjectStore",
    "RawMeta",
    "api",
    "collect_watch",
    "connect",
    "create_bucket",
    "delete",
    "get",
    "get_info",
    "list_objects",
    "meta_subject",
    "open_bucket",
    "put",
    "raw_meta",
    "seal",
    "status",
    "subject_counts",
    "update_meta",
    "watch",
]


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[JetStreamContext]:
    """A nats-py connection to ``url``; yields its JetStream context, closes on exit."""
    nc = await nats.connect(servers=[url], connect_timeout=5, max_reconnect_attempts=0)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def create_bucket(
    js: JetStreamContext, bucket: str, *, description: str | None = None
) -> ObjectStore:
    """``js.create_object_store(bucket, config)``."""
    config = api.ObjectStoreConfig(description=description)
    return await js.create_object_store(bucket, config=config)


async def open_bucket(js: JetStreamContext, bucket: str) -> ObjectStore:
    """``js.object_store(bucket)`` (raises nats-py's ``BucketNotFoundError``)."""
    return await js.object_store(bucket)


async def put(
    store: ObjectStore,
    name: str,
    data: bytes,
    *,
    description: str | None = None,
    headers: Mapping[str, list[str]] | None = None,
    chunk_size: int | None = None,
) -> api.ObjectInfo:
    """``store.put(name, data, meta)``; nats-py has no per-object metadata to pass."""
    options = api.ObjectMetaOptions(max_chunk_size=chunk_size) if chunk_size else None
    meta = api.ObjectMeta(
        name=name,
        description=description,
        headers={k: list(v) for k, v in headers.items()} if headers is not None else None,
        options=options,
    )
    return await store.put(name, data, meta=meta)


async def get(
    store: ObjectStore, name: str, *, show_deleted: bool = False
) -> tuple[bytes, api.ObjectInfo]:
    """``store.get(name)``: the whole content and the info."""
    result = await store.get(name, show_deleted=show_deleted)
    return bytes(result.data or b""), result.info


async def get_info(store: ObjectStore, name: str, *, show_deleted: bool = False) -> api.ObjectInfo:
    """``store.get_info(name, show_deleted)``."""
    return await store.get_info(name, show_deleted=show_deleted)


async def delete(store: ObjectStore, name: str) -> None:
    """``store.delete(name)`` (writes a marker with ``"mtime": ""``)."""
    await store.delete(name)


async def update_meta(
    store: ObjectStore,
    name: str,
    *,
    new_name: str,
    description: str | None = None,
    headers: Mapping[str, list[str]] | None = None,
) -> None:
    """``store.update_meta(name, ObjectMeta(...))`` (any rename raises ``ObjectAlreadyExists``)."""
    meta = api.ObjectMeta(
        name=new_name,
        description=description,
        headers={k: list(v) for k, v in headers.items()} if headers is not None else None,
    )
    await store.update_meta(name, meta)


async def list_objects(store: ObjectStore, *, ignore_deletes: bool = False) -> list[api.ObjectInfo]:
    """``store.list(ignore_deletes)`` (nats-py includes deleted entries by default)."""
    return await store.list(ignore_deletes=ignore_deletes)


async def seal(store: ObjectStore) -> None:
    """``store.seal()``."""
    await store.seal()  # type: ignore[no-untyped-call]


async def status(store: ObjectStore) -> ObjectStore.ObjectStoreStatus:
    """``store.status()``."""
    return await store.status()


@asynccontextmanager
async def watch(
    store: ObjectStore,
    *,
    ignore_deletes: bool = False,
    include_history: bool = False,
    updates_only: bool = False,
) -> AsyncIterator[ObjectStore.ObjectWatcher]:
    """``store.watch(...)``, live on entry, stopped on exit; read it with :func:`collect_watch`."""
    watcher = await store.watch(
        ignore_deletes=ignore_deletes,
        include_history=include_history,
        updates_only=updates_only,
    )
    try:
        yield watcher
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]


async def collect_watch(
    watcher: ObjectStore.ObjectWatcher, *, count: int, within: float = 10.0
) -> list[api.ObjectInfo | None]:
    """The next ``count`` watcher entries (None is the end-of-initial-values marker).

    Raises:
        TimeoutError: fewer than ``count`` entries arrived within ``within`` seconds in all.
    """
    entries: list[api.ObjectInfo | None] = []
    try:
        async with asyncio.timeout(within):
            while len(entries) < count:
                try:
                    entry = await watcher.updates(timeout=within)  # type: ignore[no-untyped-call]
                except NatsTimeoutError:
                    continue
                entries.append(entry)
    except TimeoutError as exc:
        raise TimeoutError(f"nats-py watch: got {len(entries)} of {count}: {entries!r}") from exc
    return entries


def meta_subject(bucket: str, name: str) -> str:
    """The meta subject of ``name`` as nats.go and nats-py encode it (base64url of UTF-8)."""
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode('utf-8')).decode('ascii')}"


@dataclass(frozen=True)
class RawMeta:
    """One stored meta message: the parsed document, its exact bytes, headers and sequence."""

    doc: dict[str, Any]
    payload: bytes
    headers: dict[str, str]
    seq: int


async def raw_meta(js: JetStreamContext, bucket: str, name: str) -> RawMeta:
    """The last stored meta message of ``name`` (found under nats.go's subject encoding).

    Raises:
        nats.js.errors.NotFoundError: nothing stored under that name.
    """
    msg = await js.get_last_msg(f"OBJ_{bucket}", meta_subject(bucket, name))
    payload = bytes(msg.data or b"")
    doc = json.loads(payload)
    assert isinstance(doc, dict), doc
    return RawMeta(doc=doc, payload=payload, headers=dict(msg.headers or {}), seq=msg.seq or 0)


async def subject_counts(js: JetStreamContext, bucket: str, subjects: str) -> dict[str, int]:
    """Messages stored per subject matching ``subjects`` (e.g. ``$O.<bucket>.C.>``)."""
    info = await js.stream_info(f"OBJ_{bucket}", subjects_filter=subjects)
    return dict(info.state.subjects or {})
