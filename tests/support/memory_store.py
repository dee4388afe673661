"""An in-memory bucket that behaves like the real one, and a wrapper that makes any Store fail.

``MemoryStore`` implements ``osfs.core.store_api.Store`` on trio with no network. It models the
stream the way the real bucket stores it, because that is what the filesystem sees:
1. Every chunk and every meta document takes the next stream sequence; ``revision`` is the meta
   document's sequence and ``ChunkIndex.seqs`` are the chunks' (purges take none).
2. A put stores the chunks on a new nuid, then the meta document, then purges the previous
   version's chunks: a pinned old version's uncached chunks are gone (``StaleVersionError``).
   ``keep_previous=True`` and :meth:`MemoryStore.purge_version` split that last step off, to
   model the moment between the new meta document and the purge.
3. Delete writes a marker (the old document with ``deleted``, size 0, no digest) and purges the
   chunks; deleting a marker writes another one. Rename writes the new name's document with the
   same nuid, then purges the chunks of the version it replaced (an overwriting rename onto a
   live object with another nuid), then the old name's document: a watcher sees the new name
   only, never a delete of the old one.
4. ``watch`` delivers the last document of every name (markers included) in stream order, then
   ``None`` once, then each new document, in batches.
5. Every Store method yields to trio (after ``latency`` seconds, if set) before it looks at the
   state, like a server answering a request, and counts its calls in ``calls``.
6. Writes check what the real bucket checks, in its order: the name, then the lookups (not
   found, already exists), then a sealed bucket (the real one refuses only the publish).
The test helpers (``put`` with uneven chunks or a link, ``seal``, ``corrupt``, ...) change the
bucket as another client would and mirror the real client's errors; ``tests/contract`` runs one
suite against this and the real bucket to keep it honest.

``FlakyStore`` wraps any Store to inject faults: an error, a delay (use trio's autojump clock)
or a gate (an event the call waits for) on the N-th or every call of a method.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from osfs.core import errors
from osfs.core.chunks import ChunkIndex
from osfs.core.config import ObjectStoreStatus
from osfs.core.digest import format_digest
from osfs.core.meta import (
    DEFAULT_CHUNK_SIZE,
    Headers,
    ObjectInfo,
    ObjectLink,
    ObjectMeta,
    encode_meta,
)
from osfs.core.store_api import Store, Upload, WatchBatch
from osfs.core.subjects import validate_bucket, validate_object_name

__all__ = ["Fault", "FlakyStore", "MemoryStore"]


class MemoryStore:
    """A bucket in memory (see the module rules).

    Args:
        bucket: the bucket name.
        latency: seconds every Store method waits before answering (0: just a checkpoint).
        clock: the server clock, ns since the epoch (``time.time_ns`` by default); timestamps
            are made strictly increasing.

    Attributes:
        calls: how many times each Store method was called, by name.
        fetch_log: ``(nuid, positions)`` of every ``fetch_chunks`` call, in order.
    """

    def __init__(
        self,
        bucket: str = "memory",
        *,
        latency: float = 0.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._bucket = validate_bucket(bucket)
        self._latency = latency
        self._clock = clock
        self._last_time = 0
        self._seq = 0
        self._nuids = itertools.count(1)
        self._docs: dict[str, tuple[ObjectInfo, int]] = {}  # name -> (last document, its size)
        self._chunks: dict[int, bytes] = {}  # stream sequence -> chunk payload
        self._versions: dict[str, tuple[int, ...]] = {}  # nuid -> its chunks' sequences
        self._watchers: set[trio.MemorySendChannel[ObjectInfo]] = set()
        self._sealed = False
        self.calls: Counter[str] = Counter()
        self.fetch_log: list[tuple[str, tuple[int, ...]]] = []

    # The Store protocol ---------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    async def get_info(self, name: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.get_info`."""
        await self._answer("get_info")
        validate_object_name(name)
        info = self._live(name)
        if info is None:
            raise errors.ObjectNotFoundError(f"object {name!r} not found")
        return info

    async def chunk_index(self, info: ObjectInfo) -> ChunkIndex:
        """See :meth:`osfs.core.store_api.Store.chunk_index`."""
        await self._answer("chunk_index")
        if info.chunks == 0:
            return ChunkIndex.from_sizes(info.nuid, [], [])
        seqs = self._versions.get(info.nuid)
        if seqs is None:
            raise errors.StaleVersionError(f"version {info.nuid} of {info.name!r} is gone")
        index = ChunkIndex.from_sizes(info.nuid, list(seqs), [len(self._chunks[s]) for s in seqs])
        if index.count != info.chunks or index.size != info.size:
            raise errors.BadObjectMetaError(
                f"object {info.name!r}: {index.count} chunks of {index.size} bytes stored, "
                f"meta says {info.chunks} of {info.size}"
            )
        return index

    async def fetch_chunks(self, index: ChunkIndex, positions: Sequence[int]) -> list[bytes]:
        """See :meth:`osfs.core.store_api.Store.fetch_chunks`."""
        wanted = tuple(positions)
        self.fetch_log.append((index.nuid, wanted))
        await self._answer("fetch_chunks")
        payloads = []
        for position in wanted:
            data = self._chunks.get(index.seqs[position])
            if data is None:
                raise errors.StaleVersionError(
                    f"chunk {position} of version {index.nuid} is gone (object replaced or deleted)"
                )
            payloads.append(data)
        return payloads

    async def status(self) -> ObjectStoreStatus:
        """See :meth:`osfs.core.store_api.Store.status`; ``size`` counts payload bytes only."""
        await self._answer("status")
        size = sum(map(len, self._chunks.values())) + sum(size for _, size in self._docs.values())
        return ObjectStoreStatus(
            bucket=self._bucket,
            description="",
            ttl=0.0,
            storage="memory",
            replicas=1,
            sealed=self._sealed,
            size=size,
            max_bytes=-1,
            compressed=False,
            metadata={},
            messages=len(self._chunks) + len(self._docs),
            stream_info={},
            backing_store="memory",
        )

    def watch(self) -> AbstractAsyncContextManager[AsyncIterator[WatchBatch]]:
        """See :meth:`osfs.core.store_api.Store.watch` (module rule 4)."""
        self.calls["watch"] += 1
        return self._watch()

    @asynccontextmanager
    async def _watch(self) -> AsyncIterator[AsyncIterator[WatchBatch]]:
        await self._pause()
        send, receive = trio.open_memory_channel[ObjectInfo](math.inf)
        # One step: the snapshot and the subscription, so no change is lost or seen twice.
        initial = tuple(sorted((info for info, _ in self._docs.values()), key=_revision))
        self._watchers.add(send)
        try:
            yield _WatchFeed((*initial, None), receive)
        finally:
            self._watchers.discard(send)
            send.close()
            receive.close()

    async def put_path(self, meta: ObjectMeta, path: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.put_path` (the file is read whole, then stored)."""
        await self._answer("put_path")
        # Read first, as the real client opens the file before any check; synchronously, so
        # trio's autojump clock never sees a thread as idle time.
        data = Path(path).read_bytes()  # noqa: ASYNC240
        return self._put_meta(meta, data)

    async def put_data(self, meta: ObjectMeta, data: bytes) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.put_data`."""
        await self._answer("put_data")
        return self._put_meta(meta, bytes(data))

    async def begin_put(self, meta: ObjectMeta) -> MemoryUpload:
        """See :meth:`osfs.core.store_api.Store.begin_put`: the bytes gather in memory and
        are stored at ``commit`` (the real store's chunks are invisible until then too)."""
        await self._answer("begin_put")
        validate_object_name(meta.name)
        return MemoryUpload(self, meta)

    async def update_meta(
        self, name: str, meta: ObjectMeta, *, current: ObjectInfo | None = None
    ) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.update_meta`."""
        if meta.name != name:
            raise ValueError(f"update_meta of {name!r} names {meta.name!r}: use rename")
        await self._answer("update_meta")
        validate_object_name(name)
        # ``current`` only saves the real store a lookup: the outcome is the latest document's.
        latest = self._live(name)
        if latest is None:
            raise errors.UpdateMetaDeletedError(f"cannot update meta of {name!r}: not found")
        self._check_writable()
        return self._publish(latest.with_meta(meta))

    async def rename(self, name: str, new_name: str, *, overwrite: bool = False) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.rename` (module rule 3)."""
        await self._answer("rename")
        validate_object_name(name)
        validate_object_name(new_name)
        current = self._live(name)
        if current is None:
            raise errors.ObjectNotFoundError(f"object {name!r} not found")
        if new_name == name:
            return current
        target = self._live(new_name)
        if target is not None and not overwrite:
            raise errors.ObjectAlreadyExistsError(f"object {new_name!r} already exists")
        self._check_writable()
        moved = self._publish(replace(current, name=new_name))
        if target is not None and target.nuid != current.nuid:
            self._purge(target.nuid)
        del self._docs[name]  # a purge of the old meta subject: no watch event
        return moved

    async def delete(self, name: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.delete` (module rule 3)."""
        await self._answer("delete")
        validate_object_name(name)
        current = self._docs.get(name)
        if current is None:
            raise errors.ObjectNotFoundError(f"object {name!r} not found")
        self._check_writable()
        info = current[0]
        marker = replace(
            info,
            nuid=info.nuid or self._new_nuid(),
            size=0,
            chunks=0,
            digest="",
            deleted=True,
        )
        published = self._publish(marker)
        self._purge(info.nuid)
        return published

    # Helpers for tests: change the bucket as another client would ---------------------------

    async def put(
        self,
        name: str,
        data: bytes = b"",
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        chunk_sizes: Sequence[int] | None = None,
        description: str = "",
        metadata: Mapping[str, str] | None = None,
        link: ObjectLink | None = None,
        keep_previous: bool = False,
    ) -> ObjectInfo:
        """Store ``data`` as ``name`` (a new version), or make ``name`` a link.

        Args:
            chunk_size: bytes per chunk (and the document's ``max_chunk_size``).
            chunk_sizes: uneven chunks instead (they must add up to ``len(data)``), as nats.go
                writes from a pipe.
            link: make ``name`` a link (``data`` must be empty), as ``add_link`` does.
            keep_previous: leave the previous version's chunks (see module rule 2).

        Raises:
            BucketSealedError, InvalidObjectNameError, ObjectAlreadyExistsError (a link onto an
            object), ObjectNotFoundError, NoLinkToDeletedError, NoLinkToLinkError (link targets).
        """
        await trio.lowlevel.checkpoint()
        self._check_writable()
        validate_object_name(name)
        if link is not None:
            return self._put_link(name, link, data)
        return self._store(
            name,
            data,
            chunk_size=chunk_size,
            chunk_sizes=chunk_sizes,
            description=description,
            headers={},
            metadata=metadata or {},
            keep_previous=keep_previous,
        )

    def _put_link(self, name: str, link: ObjectLink, data: bytes) -> ObjectInfo:
        if data:
            raise ValueError("a link has no content")
        existing = self._docs.get(name)
        if existing is not None and not existing[0].is_link:
            raise errors.ObjectAlreadyExistsError(
                f"object {name!r} already exists and is not a link"
            )
        if link.name and link.bucket == self._bucket:
            target = self._docs.get(link.name)
            if target is None:
                raise errors.ObjectNotFoundError(f"object {link.name!r} not found")
            if target[0].deleted:
                raise errors.NoLinkToDeletedError(f"{link.name!r} is deleted")
            if target[0].is_link:
                raise errors.NoLinkToLinkError(f"{link.name!r} is itself a link")
        info = ObjectInfo(name=name, bucket=self._bucket, nuid=self._new_nuid(), link=link)
        return self._publish(info)

    async def seal(self) -> None:
        """Seal the bucket: reads keep working, every change raises ``BucketSealedError``."""
        await trio.lowlevel.checkpoint()
        self._sealed = True

    def corrupt(self, name: str, *, chunk: int = 0, at: int = 0) -> None:
        """Flip one byte of chunk ``chunk`` of ``name``'s current version (digest unchanged).

        Raises:
            ObjectNotFoundError: no live object ``name``.
            IndexError: no such chunk or byte.
        """
        info = self._live(name)
        if info is None:
            raise errors.ObjectNotFoundError(f"object {name!r} not found")
        seq = self._versions[info.nuid][chunk]
        data = bytearray(self._chunks[seq])
        data[at] ^= 0xFF
        self._chunks[seq] = bytes(data)

    def purge_version(self, nuid: str) -> None:
        """Purge the chunks of version ``nuid`` (the late half of a put, module rule 2)."""
        self._purge(nuid)

    def has_version(self, nuid: str) -> bool:
        """Whether the chunks of version ``nuid`` are still stored."""
        return nuid in self._versions

    # Internals ------------------------------------------------------------------------------

    async def _pause(self) -> None:
        if self._latency > 0:
            await trio.sleep(self._latency)
        else:
            await trio.lowlevel.checkpoint()

    async def _answer(self, method: str) -> None:
        self.calls[method] += 1
        await self._pause()

    def _put_meta(self, meta: ObjectMeta, data: bytes) -> ObjectInfo:
        """A put through the Store protocol: ``meta``'s fields, uniform chunks."""
        validate_object_name(meta.name)
        chunk_size = meta.chunk_size or DEFAULT_CHUNK_SIZE
        if chunk_size < 0:
            raise errors.InvalidOptionError("chunk size must be positive")
        self._check_writable()
        return self._store(
            meta.name,
            data,
            chunk_size=chunk_size,
            chunk_sizes=None,
            description=meta.description,
            headers=meta.headers,
            metadata=meta.metadata,
            keep_previous=False,
        )

    def _store(
        self,
        name: str,
        data: bytes,
        *,
        chunk_size: int,
        chunk_sizes: Sequence[int] | None,
        description: str,
        headers: Headers,
        metadata: Mapping[str, str],
        keep_previous: bool,
    ) -> ObjectInfo:
        """Chunks on a new nuid, the meta document, then the previous version purged (rule 2)."""
        sizes = _layout(len(data), chunk_size, chunk_sizes)
        previous = self._docs.get(name)
        nuid = self._new_nuid()
        seqs = []
        start = 0
        for size in sizes:
            seq = self._next_seq()
            self._chunks[seq] = data[start : start + size]
            seqs.append(seq)
            start += size
        self._versions[nuid] = tuple(seqs)
        info = ObjectInfo(
            name=name,
            bucket=self._bucket,
            nuid=nuid,
            size=len(data),
            chunks=len(sizes),
            digest=format_digest(hashlib.sha256(data).digest()),
            description=description,
            headers=dict(headers),
            metadata=dict(metadata),
            max_chunk_size=chunk_size,
        )
        info = self._publish(info)
        if previous is not None and not keep_previous and not previous[0].deleted:
            self._purge(previous[0].nuid)
        return info

    def _check_writable(self) -> None:
        if self._sealed:
            raise errors.BucketSealedError(f"bucket {self._bucket!r} is sealed")

    def _live(self, name: str) -> ObjectInfo | None:
        entry = self._docs.get(name)
        if entry is None or entry[0].deleted:
            return None
        return entry[0]

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_nuid(self) -> str:
        return f"MEMNUID{next(self._nuids):015d}"

    def _now(self) -> int:
        self._last_time = max(self._clock(), self._last_time + 1)
        return self._last_time

    def _publish(self, info: ObjectInfo) -> ObjectInfo:
        """Store ``info`` as ``info.name``'s only document (a rollup) and tell the watchers."""
        info = replace(info, mtime_ns=self._now(), revision=self._next_seq())
        self._docs[info.name] = (info, len(encode_meta(info)))
        for send in self._watchers:
            send.send_nowait(info)
        return info

    def _purge(self, nuid: str) -> None:
        for seq in self._versions.pop(nuid, ()):
            del self._chunks[seq]


def _revision(info: ObjectInfo) -> int:
    return info.revision


def _layout(total: int, chunk_size: int, chunk_sizes: Sequence[int] | None) -> list[int]:
    """The chunk sizes of a put: uniform, or the uneven ones given."""
    if chunk_size <= 0:
        raise errors.InvalidOptionError("chunk size must be positive")
    if chunk_sizes is None:
        full, rest = divmod(total, chunk_size)
        return [chunk_size] * full + ([rest] if rest else [])
    sizes = list(chunk_sizes)
    if any(size <= 0 for size in sizes) or sum(sizes) != total:
        raise ValueError(f"chunk sizes {sizes} are not a split of {total} bytes")
    return sizes


class MemoryUpload:
    """A :class:`MemoryStore` put in pieces (see ``Store.begin_put``)."""

    def __init__(self, store: MemoryStore, meta: ObjectMeta) -> None:
        self._store = store
        self._meta = meta
        self._data = bytearray()
        self._done = False

    @property
    def size(self) -> int:
        """Bytes added so far."""
        return len(self._data)

    async def add(self, data: bytes) -> None:
        """See :meth:`osfs.core.store_api.Upload.add`."""
        await self._store._answer("upload_add")
        if self._done:
            raise RuntimeError("this upload is finished")
        self._data += data

    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Upload.commit`."""
        await self._store._answer("upload_commit")
        if meta is not None and meta.name != self._meta.name:
            raise ValueError(f"upload of {self._meta.name!r} cannot commit {meta.name!r}")
        self._done = True
        return self._store._put_meta(meta or self._meta, bytes(self._data))

    async def abandon(self) -> None:
        """See :meth:`osfs.core.store_api.Upload.abandon`."""
        self._done = True
        await trio.lowlevel.checkpoint()


class _WatchFeed:
    """The batches of one MemoryStore watch: the initial values with the marker, then changes."""

    def __init__(self, initial: WatchBatch, receive: trio.MemoryReceiveChannel[ObjectInfo]) -> None:
        self._initial: WatchBatch | None = initial
        self._receive = receive

    def __aiter__(self) -> _WatchFeed:
        return self

    async def __anext__(self) -> WatchBatch:
        if self._initial is not None:
            initial, self._initial = self._initial, None
            await trio.lowlevel.checkpoint()
            return initial
        try:
            first = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        batch: list[ObjectInfo | None] = [first]
        while True:
            try:
                batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                return tuple(batch)


# Fault injection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What one call of a Store method does before (or instead of) reaching the real store.

    Attributes:
        error: raised after the wait, instead of calling the store.
        delay: seconds to sleep first (use trio's autojump clock).
        gate: an event to wait for first, so a test decides when the call proceeds.
    """

    error: Exception | None = None
    delay: float = 0.0
    gate: trio.Event | None = None


FaultKey = tuple[str, int | None]
"""``(method, n)``: the n-th call of ``method`` (1-based), or every call when n is None."""


class FlakyStore:
    """A Store that fails, stalls or holds chosen calls of another Store.

    Args:
        inner: the store that answers the calls that go through.
        fail_on: faults by ``(method, n)``; an exception stands for ``Fault(error=...)``.

    Attributes:
        calls: how many times each Store method was called here (failed calls included).
    """

    def __init__(
        self, inner: Store, fail_on: Mapping[FaultKey, Fault | Exception] | None = None
    ) -> None:
        self._inner = inner
        self._faults: dict[FaultKey, Fault] = {}
        self.calls: Counter[str] = Counter()
        for (method, n), fault in (fail_on or {}).items():
            self.inject(method, n, fault)

    def inject(self, method: str, n: int | None, fault: Fault | Exception) -> None:
        """Apply ``fault`` to the n-th call of ``method`` (from the start), or to every call."""
        self._faults[(method, n)] = fault if isinstance(fault, Fault) else Fault(error=fault)

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    @property
    def bucket(self) -> str:
        """The inner store's bucket."""
        return self._inner.bucket

    async def _enter(self, method: str) -> None:
        self.calls[method] += 1
        n = self.calls[method]
        for fault in _matching(self._faults, method, n):
            if fault.delay > 0:
                await trio.sleep(fault.delay)
            if fault.gate is not None:
                await fault.gate.wait()
            if fault.error is not None:
                raise fault.error

    async def get_info(self, name: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.get_info`."""
        await self._enter("get_info")
        return await self._inner.get_info(name)

    async def chunk_index(self, info: ObjectInfo) -> ChunkIndex:
        """See :meth:`osfs.core.store_api.Store.chunk_index`."""
        await self._enter("chunk_index")
        return await self._inner.chunk_index(info)

    async def fetch_chunks(self, index: ChunkIndex, positions: Sequence[int]) -> list[bytes]:
        """See :meth:`osfs.core.store_api.Store.fetch_chunks`."""
        await self._enter("fetch_chunks")
        return await self._inner.fetch_chunks(index, positions)

    async def status(self) -> ObjectStoreStatus:
        """See :meth:`osfs.core.store_api.Store.status`."""
        await self._enter("status")
        return await self._inner.status()

    def watch(self) -> AbstractAsyncContextManager[AsyncIterator[WatchBatch]]:
        """See :meth:`osfs.core.store_api.Store.watch` (counted, never faulted)."""
        self.calls["watch"] += 1
        return self._inner.watch()

    async def put_path(self, meta: ObjectMeta, path: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.put_path`."""
        await self._enter("put_path")
        return await self._inner.put_path(meta, path)

    async def put_data(self, meta: ObjectMeta, data: bytes) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.put_data`."""
        await self._enter("put_data")
        return await self._inner.put_data(meta, data)

    async def begin_put(self, meta: ObjectMeta) -> Upload:
        """See :meth:`osfs.core.store_api.Store.begin_put`."""
        await self._enter("begin_put")
        return await self._inner.begin_put(meta)

    async def update_meta(
        self, name: str, meta: ObjectMeta, *, current: ObjectInfo | None = None
    ) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.update_meta`."""
        await self._enter("update_meta")
        return await self._inner.update_meta(name, meta, current=current)

    async def rename(self, name: str, new_name: str, *, overwrite: bool = False) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.rename`."""
        await self._enter("rename")
        return await self._inner.rename(name, new_name, overwrite=overwrite)

    async def delete(self, name: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.delete`."""
        await self._enter("delete")
        return await self._inner.delete(name)


def _matching(faults: Mapping[FaultKey, Fault], method: str, n: int) -> Iterable[Fault]:
    for key in ((method, n), (method, None)):
        fault = faults.get(key)
        if fault is not None:
            yield fault
