"""One Object Store bucket: the seed's ``ObjectStore`` interface with Python names.

Write rules (wire.md §0, §5, §7-§9), each to stay byte-compatible with nats.go:
1. Put publishes chunks on a fresh nuid with a window of acks outstanding, the meta document
   last with ``Nats-Rollup: sub``, then purges the previous version's chunks. Any failure before
   the meta is stored purges the new chunks: a half-written object is never visible, and an
   interrupted overwrite leaves the old version readable. The purge is repeated a few times
   over the next minute (:data:`SWEEP_DELAYS`), for chunks that land late after an outage, but
   never when the document did land and only its ack was lost. An unreadable previous document
   (another client's garbage) does not stop a put, unlike nats.go: the put replaces it, and the
   chunks of whatever version it hid are left to ``osfs fsck --repair``.
2. Lookups on the write paths (put, delete, update_meta, rename, links) use ``STREAM.MSG.GET``,
   served by the stream leader and so read-after-write consistent; reads use Direct Get, like
   nats.go.
3. Documents are written as nats.go writes them; any variant the other clients write is read.
4. Every write returns the info it published with ``revision`` set to the stream sequence of its
   meta document (the revision a watcher receives for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nats.nuid import NUID

from osfs.core import errors
from osfs.core.chunks import ChunkIndex
from osfs.core.config import ObjectStoreStatus
from osfs.core.digest import format_digest, parse_digest
from osfs.core.meta import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    ObjectLink,
    ObjectMeta,
    decode_meta,
    encode_meta,
)
from osfs.core.subjects import (
    chunk_subject,
    meta_subject,
    stream_name,
    validate_object_name,
)
from osfs.store.digester import Digester
from osfs.store.fetch import ChunkFetcher
from osfs.store.jsapi import ROLLUP_HEADERS, JetStreamApi, NotFound, StoredMsg
from osfs.store.publisher import AckRouter, AckWindow
from osfs.store.sources import Source, chunks_of
from osfs.store.translate import STREAM_WRONG_LAST_SEQUENCE
from osfs.store.watch import ObjectWatcher

if TYPE_CHECKING:
    from osfs.store.manager import ObjectStoreManager

log = logging.getLogger(__name__)

Progress = Callable[[int], None]
#: Seconds after an abandoned put at which its chunks are purged again. While the server is
#: away the client queues publishes; chunks queued before the failure can land after the first
#: purge (the server handles API requests apart from stored messages), and would stay orphans.
#: Two purges that reach the server end a sweep.
SWEEP_DELAYS = (2.0, 5.0, 10.0, 20.0, 40.0, 60.0)
#: Links are followed at most this deep (a cycle of links is an error, not a hang).
MAX_LINK_DEPTH = 8


class ObjectStore:
    """A bound Object Store bucket. Get one from :class:`ObjectStoreManager`.

    Attributes:
        bucket: the bucket name.
    """

    def __init__(
        self, manager: ObjectStoreManager, api: JetStreamApi, bucket: str, *, replicas: int = 3
    ) -> None:
        self.bucket = bucket
        self._replicas = replicas
        self._manager = manager
        self._api = api
        self._stream = stream_name(bucket)
        self._fetcher = ChunkFetcher(api, bucket)
        self._acks = AckRouter(api.nc)
        self._nuid = NUID()
        self._sweeps: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"ObjectStore({self.bucket!r})"

    @property
    def api(self) -> JetStreamApi:
        """The JetStream API this bucket talks through (for ``osfs fsck``)."""
        return self._api

    @property
    def stream(self) -> str:
        """The stream that holds the bucket."""
        return self._stream

    async def aclose(self) -> None:
        """Release the reply subscription used for publish acks; stop the sweeps
        of abandoned puts (what they did not purge, ``osfs fsck --repair`` does)."""
        for sweep in list(self._sweeps):
            sweep.cancel()
        await self._acks.aclose()

    def _new_nuid(self) -> str:
        return self._nuid.next().decode("ascii")

    # Reading meta ---------------------------------------------------------------------------

    def _decode(self, msg: StoredMsg) -> ObjectInfo:
        return decode_meta(msg.data, bucket=self.bucket, mtime_ns=msg.time_ns, revision=msg.seq)

    async def get_info(self, name: str, *, show_deleted: bool = False) -> ObjectInfo:
        """The current info of object ``name`` (Direct Get: any replica may answer).

        Raises:
            InvalidObjectNameError: empty name.
            ObjectNotFoundError: no such object, or deleted and not ``show_deleted``.
            BadObjectMetaError: the stored document is unusable.
        """
        validate_object_name(name)
        try:
            msg = await self._api.direct_get_last(self._stream, meta_subject(self.bucket, name))
        except NotFound:
            raise errors.ObjectNotFoundError(f"object {name!r} not found") from None
        info = self._decode(msg)
        if info.deleted and not show_deleted:
            raise errors.ObjectNotFoundError(f"object {name!r} not found (deleted)")
        return info

    async def _leader_info(self, name: str) -> ObjectInfo | None:
        """The current info including delete markers, as the stream leader has it.

        A replicated stream is asked through ``STREAM.MSG.GET`` (only the leader answers, so it
        is read-after-write consistent); a one-replica stream has nobody but the leader to
        answer a Direct Get, which skips the API queue and is faster.
        """
        subject = meta_subject(self.bucket, name)
        try:
            if self._replicas == 1:
                msg = await self._api.last_message(self._stream, subject)
            else:
                msg = await self._api.msg_get_last(self._stream, subject)
        except NotFound:
            return None
        return self._decode(msg)

    # Put ------------------------------------------------------------------------------------

    async def put(
        self, meta: ObjectMeta | str, source: Source, *, progress: Progress | None = None
    ) -> ObjectInfo:
        """Store ``source`` as object ``meta.name``, replacing any previous version.

        Args:
            meta: the name and descriptive fields (or just a name).
            source: bytes, a binary file, or an (async) iterable of bytes.
            progress: called with the number of bytes stored so far.

        Raises:
            InvalidObjectNameError, BucketSealedError, BucketFullError, StoreUnavailableError,
            StoreTimeoutError: nothing new is visible and the new chunks are purged.
        """
        upload = await self.begin_put(meta)
        try:
            async for chunk in chunks_of(source, upload.chunk_size):
                await upload.add(chunk)
                if progress is not None:
                    progress(upload.size)
            return await upload.commit()
        except BaseException:
            await asyncio.shield(upload.abandon())
            raise

    async def begin_put(self, meta: ObjectMeta | str) -> Upload:
        """Start a put whose bytes come later: :meth:`Upload.add` them, then
        :meth:`Upload.commit` (or :meth:`Upload.abandon`). Rule 1 holds as for :meth:`put`.

        Raises:
            InvalidObjectNameError, InvalidOptionError (a negative chunk size).
        """
        if isinstance(meta, str):
            meta = ObjectMeta(name=meta)
        validate_object_name(meta.name)
        chunk_size = meta.chunk_size or DEFAULT_CHUNK_SIZE
        if chunk_size < 0:
            raise errors.InvalidOptionError("chunk size must be positive")
        window = await self._acks.open_window(ack_timeout=self._api.timeout)
        # The previous version is looked up while the chunks go out, but must be known before
        # the meta is published: afterwards the lookup could find this put's own document.
        lookup = asyncio.create_task(self._leader_info(meta.name))
        lookup.add_done_callback(_retrieve)  # an abandoned lookup's error is nobody's news
        return Upload(self, meta, chunk_size, window, lookup)

    async def put_bytes(self, name: str, data: bytes) -> ObjectInfo:
        """Store ``data`` as object ``name``."""
        return await self.put(ObjectMeta(name=name), data)

    async def put_string(self, name: str, data: str) -> ObjectInfo:
        """Store ``data`` (UTF-8) as object ``name``."""
        return await self.put(ObjectMeta(name=name), data.encode("utf-8"))

    async def put_file(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        """Store the file at ``path``; the object name is the path as given unless ``name``."""
        meta = ObjectMeta(name=name or os.fspath(path))
        with open(path, "rb") as handle:  # noqa: ASYNC230 - local file, read chunk by chunk
            return await self.put(meta, handle, progress=progress)

    def _sweep_later(self, name: str, nuid: str) -> None:
        """Purge an abandoned put's chunks again later (see :data:`SWEEP_DELAYS`)."""
        task = asyncio.create_task(self._sweep(name, nuid))
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    async def _sweep(self, name: str, nuid: str) -> None:
        subject = chunk_subject(self.bucket, nuid)
        done = 0
        for delay in SWEEP_DELAYS:
            await asyncio.sleep(delay)
            try:
                if await self._committed(name, nuid):
                    log.warning("the put of %r was stored after all: its chunks stay", name)
                    return
                purged = await self._api.purge(self._stream, subject)
            except errors.OsfsError as exc:
                log.debug("sweep of %s failed (%s): trying again later", subject, exc)
                continue
            if purged:
                log.info("purged %d late chunk(s) of an abandoned put of %r", purged, name)
            done += 1
            if done == 2:
                return
        log.warning("could not sweep %s: orphan chunks may be left (osfs fsck --repair)", subject)

    async def _committed(self, name: str, nuid: str) -> bool:
        """True when ``name``'s document names ``nuid``: a put whose ack was lost did land."""
        current = await self._leader_info(name)
        return current is not None and current.nuid == nuid and not current.deleted

    async def _purge_quietly(self, subject: str) -> None:
        """Purge ``subject``, logging instead of raising: the caller's outcome stands."""
        try:
            await asyncio.shield(self._api.purge(self._stream, subject))
        except (errors.OsfsError, asyncio.CancelledError) as exc:
            log.warning("could not purge %s: %s (orphan chunks left behind)", subject, exc)

    # Get ------------------------------------------------------------------------------------

    async def _resolve(self, name: str, *, show_deleted: bool) -> tuple[ObjectStore, ObjectInfo]:
        """Follow links to the object that holds the bytes."""
        store: ObjectStore = self
        info = await self.get_info(name, show_deleted=show_deleted)
        for _ in range(MAX_LINK_DEPTH):
            if info.link is None:
                return store, info
            if info.link.is_bucket_link:
                raise errors.LinkIsABucketError(
                    f"object {info.name!r} is a link to bucket {info.link.bucket!r}"
                )
            if info.link.bucket != store.bucket:
                store = await self._manager.object_store(info.link.bucket)
            info = await store.get_info(info.link.name)
        raise errors.BadObjectMetaError(f"object {name!r}: links nest deeper than {MAX_LINK_DEPTH}")

    async def get(self, name: str, *, show_deleted: bool = False) -> ObjectResult:
        """Open object ``name`` for streaming; links are followed.

        Raises:
            ObjectNotFoundError, LinkIsABucketError, BadObjectMetaError.
        """
        store, info = await self._resolve(name, show_deleted=show_deleted)
        if not info.nuid and info.size:
            raise errors.BadObjectMetaError(f"object {info.name!r} has no nuid")
        return ObjectResult(info, store._fetcher)

    async def get_bytes(self, name: str, *, show_deleted: bool = False) -> bytes:
        """The whole content of object ``name`` (use :meth:`get` for large objects)."""
        async with await self.get(name, show_deleted=show_deleted) as result:
            return b"".join([chunk async for chunk in result])

    async def get_string(self, name: str, *, show_deleted: bool = False) -> str:
        """The content of object ``name`` decoded as UTF-8."""
        return (await self.get_bytes(name, show_deleted=show_deleted)).decode("utf-8")

    async def get_file(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        show_deleted: bool = False,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        """Write object ``name`` to ``path`` atomically: a failed get leaves no partial file."""
        target = Path(path)
        async with await self.get(name, show_deleted=show_deleted) as result:
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
            try:
                with os.fdopen(fd, "wb") as handle:
                    done = 0
                    async for chunk in result:
                        handle.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done)
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            return result.info

    async def chunk_index(self, info: ObjectInfo) -> ChunkIndex:
        """Where each chunk of ``info``'s version lives (for random access)."""
        return await self._fetcher.index(info)

    async def read_chunks(self, index: ChunkIndex, positions: Sequence[int]) -> list[bytes]:
        """The payloads of chunks ``positions`` of an indexed version, fetched concurrently.

        Raises:
            StaleVersionError: the version was replaced or deleted meanwhile.
        """
        return await self._fetcher.chunks(index, positions)

    async def read_range(self, info: ObjectInfo, offset: int, length: int) -> bytes:
        """``length`` bytes of ``info``'s version at ``offset``, reading only the chunks touched.

        Raises:
            ObjectNotFoundError: the version was replaced or deleted meanwhile.
        """
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        index = await self._fetcher.index(info)
        return await self._fetcher.read_range(index, offset, length)

    # Changing meta --------------------------------------------------------------------------

    async def _publish_meta(self, info: ObjectInfo, *, expect: int | None = None) -> ObjectInfo:
        info = replace(info, mtime_ns=time.time_ns())
        headers = ROLLUP_HEADERS
        if expect is not None:
            headers = {**ROLLUP_HEADERS, "Nats-Expected-Last-Subject-Sequence": str(expect)}
        seq = await self._api.publish(
            meta_subject(self.bucket, info.name), encode_meta(info), headers
        )
        return replace(info, revision=seq)

    async def update_meta(
        self, name: str, meta: ObjectMeta, *, current: ObjectInfo | None = None
    ) -> ObjectInfo:
        """Change name, description, headers and metadata without touching the data.

        A different ``meta.name`` renames the object (ADR-20): the document moves to the new
        name's subject, then the old subject is purged.

        ``current``, the document the caller believes is the latest (with its revision), saves
        the lookup: the new document is published on condition that the subject's last message
        is still that revision (``Nats-Expected-Last-Subject-Sequence``); if another client
        changed it meanwhile, the server refuses and the update takes the ordinary path.

        Raises:
            UpdateMetaDeletedError: no live object ``name``.
            ObjectAlreadyExistsError: renaming onto a live object.
        """
        validate_object_name(name)
        validate_object_name(meta.name)
        if (
            current is not None
            and current.revision > 0
            and current.name == name == meta.name
            and not current.deleted
        ):
            try:
                return await self._publish_meta(current.with_meta(meta), expect=current.revision)
            except errors.ApiError as exc:
                if exc.err_code != STREAM_WRONG_LAST_SEQUENCE:
                    raise
        current = await self._leader_info(name)
        if current is None or current.deleted:
            raise errors.UpdateMetaDeletedError(f"cannot update meta of {name!r}: not found")
        if meta.name != name:
            target = await self._leader_info(meta.name)
            if target is not None and not target.deleted:
                raise errors.ObjectAlreadyExistsError(f"object {meta.name!r} already exists")
        updated = await self._publish_meta(current.with_meta(meta))
        if meta.name != name:
            await self._api.purge(self._stream, meta_subject(self.bucket, name))
        return updated

    async def rename(self, name: str, new_name: str, *, overwrite: bool = False) -> ObjectInfo:
        """Move object ``name`` to ``new_name``, keeping its nuid and chunks (no data copied).

        The document is published under ``new_name`` (a rollup), then the chunks of the version
        it replaced are purged (if ``new_name`` was a live object with another nuid), then
        ``name``'s meta subject is purged. Readers of ``new_name`` see its old version until
        the new document lands, never a gap; a watcher sees no delete for ``name``. Renaming
        to the same name changes nothing and returns the current info.

        Raises:
            InvalidObjectNameError: an empty name.
            ObjectNotFoundError: no live object ``name``.
            ObjectAlreadyExistsError: ``new_name`` is a live object and not ``overwrite``.
            BucketSealedError: the bucket is sealed.
        """
        validate_object_name(name)
        validate_object_name(new_name)
        if new_name == name:
            current = await self._leader_info(name)
            target = current
        else:  # both lookups in one round trip
            current, target = await asyncio.gather(
                self._leader_info(name), self._leader_info(new_name)
            )
        if current is None or current.deleted:
            raise errors.ObjectNotFoundError(f"object {name!r} not found")
        if new_name == name:
            return current
        replaced = target is not None and not target.deleted
        if replaced and not overwrite:
            raise errors.ObjectAlreadyExistsError(f"object {new_name!r} already exists")
        moved = await self._publish_meta(replace(current, name=new_name))
        # Both purges in one round trip: the old name's document must go (or the object would
        # show under two names: that one raises), the replaced version's chunks should.
        purge_old = self._api.purge(self._stream, meta_subject(self.bucket, name))
        if replaced and target is not None and target.nuid and target.nuid != current.nuid:
            await asyncio.gather(
                purge_old, self._purge_quietly(chunk_subject(self.bucket, target.nuid))
            )
        else:
            await purge_old
        return moved

    async def delete(self, name: str) -> ObjectInfo:
        """Mark object ``name`` deleted and purge its chunks; deleting twice is not an error.

        An unreadable document (another client's garbage) is replaced by the marker all the
        same, as a put replaces it (rule 1): otherwise nothing could ever remove the name. The
        chunks of the version it hid, if any, are unknown and left to ``osfs fsck --repair``.

        Raises:
            ObjectNotFoundError: the name never existed.
        """
        validate_object_name(name)
        try:
            current = await self._leader_info(name)
        except errors.BadObjectMetaError as exc:
            log.warning("delete of %r replaces an unreadable meta document: %s", name, exc)
            current = ObjectInfo(name=name, bucket=self.bucket)
        if current is None:
            raise errors.ObjectNotFoundError(f"object {name!r} not found")
        marker = replace(
            current,
            nuid=current.nuid or self._new_nuid(),
            size=0,
            chunks=0,
            digest="",
            deleted=True,
        )
        published = await self._publish_meta(marker)
        if current.nuid:
            await self._api.purge(self._stream, chunk_subject(self.bucket, current.nuid))
        return published

    async def add_link(self, name: str, target: ObjectInfo) -> ObjectInfo:
        """Make object ``name`` a link to ``target`` (an object, in this or another bucket).

        Raises:
            ObjectRequiredError, NoLinkToDeletedError, NoLinkToLinkError,
            ObjectAlreadyExistsError: ``name`` holds an object that is not a link.
        """
        validate_object_name(name)
        if target is None or not target.name:
            raise errors.ObjectRequiredError("a link needs a target object")
        if target.deleted:
            raise errors.NoLinkToDeletedError(f"{target.name!r} is deleted")
        if target.is_link:
            raise errors.NoLinkToLinkError(f"{target.name!r} is itself a link")
        return await self._publish_link(name, ObjectLink(bucket=target.bucket, name=target.name))

    async def add_bucket_link(self, name: str, target: ObjectStore | str) -> ObjectInfo:
        """Make object ``name`` a link to a whole bucket.

        Raises:
            BucketRequiredError, ObjectAlreadyExistsError.
        """
        validate_object_name(name)
        bucket = target.bucket if isinstance(target, ObjectStore) else target
        if not bucket:
            raise errors.BucketRequiredError("a bucket link needs a target bucket")
        return await self._publish_link(name, ObjectLink(bucket=bucket))

    async def _publish_link(self, name: str, link: ObjectLink) -> ObjectInfo:
        existing = await self._leader_info(name)
        if existing is not None and not existing.is_link:
            raise errors.ObjectAlreadyExistsError(
                f"object {name!r} already exists and is not a link"
            )
        info = ObjectInfo(name=name, bucket=self.bucket, nuid=self._new_nuid(), link=link)
        return await self._publish_meta(info)

    # Bucket-wide ----------------------------------------------------------------------------

    async def seal(self) -> None:
        """Seal the bucket: from now on every change is refused, reads keep working."""
        info = await self._api.stream_info(self._stream)
        config = dict(info["config"])
        config["sealed"] = True
        await self._api.stream_update(config)

    async def status(self) -> ObjectStoreStatus:
        """The bucket's configuration and usage."""
        return ObjectStoreStatus.from_stream_info(await self._api.stream_info(self._stream))

    def watch(
        self,
        *,
        include_history: bool = False,
        ignore_deletes: bool = False,
        updates_only: bool = False,
    ) -> ObjectWatcher:
        """Watch the bucket's objects; see :class:`ObjectWatcher`.

        Raises:
            InvalidOptionError: ``include_history`` with ``updates_only``.
        """
        if include_history and updates_only:
            raise errors.InvalidOptionError("include_history and updates_only exclude each other")
        return ObjectWatcher(
            self._api,
            self.bucket,
            include_history=include_history,
            ignore_deletes=ignore_deletes,
            updates_only=updates_only,
        )

    async def list(self, *, show_deleted: bool = False) -> list[ObjectInfo]:
        """Every object (the latest version of each name), in meta-subject order.

        Raises:
            NoObjectsFoundError: the bucket holds no (live) objects.
        """
        found: list[ObjectInfo] = []
        async with self.watch(ignore_deletes=not show_deleted) as watcher:
            async for entry in watcher:
                if entry is None:
                    break
                found.append(entry)
        if not found:
            raise errors.NoObjectsFoundError(f"no objects found in bucket {self.bucket!r}")
        return found


class ObjectResult:
    """An open object: its info and its chunks as an async iterator.

    The digest (and size) is checked when the last chunk has been read: iterating to the end
    raises :class:`DigestMismatchError` if the bytes are not the ones stored.
    """

    def __init__(self, info: ObjectInfo, fetcher: ChunkFetcher) -> None:
        self.info = info
        self._chunks = fetcher.stream(info)
        self._digester = Digester()
        self._size = 0
        self._checked = False

    async def __aenter__(self) -> ObjectResult:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            await self._digester.update(chunk)
            self._size += len(chunk)
            yield chunk
        await self._verify()

    async def _verify(self) -> None:
        if self._checked:
            return
        self._checked = True
        if self._size != self.info.size:
            raise errors.DigestMismatchError(
                f"object {self.info.name!r}: read {self._size} bytes, meta says {self.info.size}"
            )
        if self.info.digest and parse_digest(self.info.digest) != await self._digester.digest():
            raise errors.DigestMismatchError(
                f"object {self.info.name!r}: received a corrupt object, digests do not match"
            )

    async def read(self) -> bytes:
        """The remaining content in one piece (checks the digest)."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        """Stop reading; outstanding requests are cancelled."""
        await self._chunks.aclose()  # type: ignore[attr-defined]


def _retrieve(task: asyncio.Task[ObjectInfo | None]) -> None:
    if not task.cancelled():
        task.exception()


class Upload:
    """One put in progress (see :meth:`ObjectStore.begin_put`).

    Bytes may be added in pieces of any size: they are cut into chunks of exactly
    ``chunk_size`` bytes (the last one shorter), as :meth:`ObjectStore.put` cuts them, so the
    stored layout is the same however the caller batches.

    Attributes:
        chunk_size: bytes per chunk.
        size: bytes added so far.
    """

    def __init__(
        self,
        store: ObjectStore,
        meta: ObjectMeta,
        chunk_size: int,
        window: AckWindow,
        lookup: asyncio.Task[ObjectInfo | None],
    ) -> None:
        self._store = store
        self._meta = meta
        self.chunk_size = chunk_size
        self._window = window
        self._lookup = lookup
        self._nuid = store._new_nuid()
        self._subject = chunk_subject(store.bucket, self._nuid)
        self._digester = Digester()
        self._pending = bytearray()
        self._chunks = 0
        self.size = 0
        self._done = False
        self._meta_sent = False

    async def add(self, data: bytes) -> None:
        """Publish the whole chunks ``data`` completes (several publishes in flight)."""
        if self._done:
            raise RuntimeError("this upload is finished")
        view = memoryview(data).cast("B")
        size = self.chunk_size
        if self._pending:  # complete the chunk begun by an earlier piece
            take = size - len(self._pending)
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < size:
                return
            chunk, self._pending = bytes(self._pending), bytearray()
            await self._publish(chunk)
        # Whole chunks straight from the piece: one copy each, never a shift of the rest.
        whole = len(view) - len(view) % size
        for start in range(0, whole, size):
            await self._publish(bytes(view[start : start + size]))
        self._pending += view[whole:]

    async def _publish(self, chunk: bytes) -> None:
        await self._window.publish(self._subject, chunk)
        await self._digester.update(chunk)
        self.size += len(chunk)
        self._chunks += 1

    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        """Publish the last chunk and the meta document; purge the previous version's chunks.

        Args:
            meta: description, headers and metadata as they are now (a file's attributes may
                change while its bytes stream); the name must be the one begun with.

        Returns the new info with its revision. On failure, call :meth:`abandon`.

        Raises:
            ValueError: ``meta`` names another object.
        """
        if meta is not None:
            if meta.name != self._meta.name:
                raise ValueError(f"upload of {self._meta.name!r} cannot commit {meta.name!r}")
            self._meta = meta
        if self._pending:
            chunk, self._pending = bytes(self._pending), bytearray()
            await self._publish(chunk)
        store, meta = self._store, self._meta
        await self._window.wait_all()
        info = ObjectInfo(
            name=meta.name,
            bucket=store.bucket,
            nuid=self._nuid,
            size=self.size,
            chunks=self._chunks,
            digest=format_digest(await self._digester.digest()),
            description=meta.description,
            headers=dict(meta.headers),
            metadata=dict(meta.metadata),
            max_chunk_size=self.chunk_size,
            mtime_ns=time.time_ns(),
        )
        try:
            previous = await self._lookup
        except errors.BadObjectMetaError as exc:
            # Another client's garbage on this name must not make it unwritable for ever: this
            # document replaces it (a rollup). The chunks of the version it hid, if any, are
            # unknown and left to ``osfs fsck --repair``.
            log.warning("put of %r replaces an unreadable meta document: %s", meta.name, exc)
            previous = None
        self._meta_sent = True
        await self._window.publish(
            meta_subject(store.bucket, meta.name), encode_meta(info), ROLLUP_HEADERS
        )
        await self._window.wait_all()
        revision = self._window.last_seq
        self._finish()
        if (
            previous is not None
            and previous.nuid
            and previous.nuid != self._nuid
            and not previous.deleted
        ):
            await store._purge_quietly(chunk_subject(store.bucket, previous.nuid))
        return replace(info, revision=revision)

    async def abandon(self) -> None:
        """Undo: let queued chunks land, then purge them (a sealed stream stored nothing and
        refuses purges). Safe to call after a failed :meth:`commit`, and more than once."""
        if self._done:
            return
        self._done = True
        try:
            # Before the window closes: once closed, it hears no more acks, and the wait would
            # always last the whole timeout.
            await self._window.settle()
        finally:
            self._finish()
        if self._store_sealed_error():
            return
        store = self._store
        if self._meta_sent:
            # The meta document went out: if only its ack was lost, the object is stored and
            # its chunks must stay. Unknown now: the sweep decides once it can ask.
            try:
                if await store._committed(self._meta.name, self._nuid):
                    return
            except errors.OsfsError:
                store._sweep_later(self._meta.name, self._nuid)
                return
        await store._purge_quietly(self._subject)
        store._sweep_later(self._meta.name, self._nuid)

    def _store_sealed_error(self) -> bool:
        try:
            self._window.raise_if_failed()
        except errors.BucketSealedError:
            return True
        except errors.OsfsError:
            return False
        return False

    def _finish(self) -> None:
        self._done = True
        self._window.close()
        if not self._lookup.done():
            self._lookup.cancel()
