"""The Store protocol: everything the filesystem asks of a bucket, and nothing more.

Rules:
1. The filesystem (``osfs.fs``, trio) sees a bucket only through this protocol; the real
   implementation is ``osfs.bridge.BridgedStore`` (the asyncio client across the one seam), the
   test double is ``tests/support/memory_store.MemoryStore``, and one contract suite
   (``tests/contract``) keeps the two honest.
2. Each method is one crossing of the seam, so methods take and return whole batches: several
   chunks per fetch, several watch entries per event.
3. Only immutable values cross: frozen dataclasses, bytes, str, tuples; errors are
   ``osfs.core.errors`` types.
4. Every write returns the info it published, whose ``revision`` is the stream sequence of that
   meta document: the same revision the watch delivers for it, so a writer can recognise its
   own change when the watch echoes it.
5. Writes behave as the real bucket's (``osfs.store.bucket.ObjectStore``): nothing is visible
   before its meta document lands, and a replaced or deleted version's chunks are purged right
   after, so an open handle pinned to it gets ``StaleVersionError``.
Pure: this module declares types only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from osfs.core.chunks import ChunkIndex
from osfs.core.config import ObjectStoreStatus
from osfs.core.meta import ObjectInfo, ObjectMeta

#: One delivery of a bucket watch: object infos in stream order; ``None`` marks the end of the
#: initial values (it appears once, possibly in the middle of a batch).
WatchBatch = tuple[ObjectInfo | None, ...]


class Upload(Protocol):
    """A put whose bytes come in pieces (a file streamed while it is being written).

    Nothing is visible until :meth:`commit` publishes the meta document; :meth:`abandon` purges
    what was sent. Each method is one crossing of the seam, so add pieces of a MiB or more.
    """

    @property
    def size(self) -> int:
        """Bytes added so far."""
        ...

    async def add(self, data: bytes) -> None:
        """Send the next bytes (any length; cut into the put's chunks as they fill)."""
        ...

    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        """Send the rest and the meta document; returns the stored info with its revision.

        ``meta`` replaces the description, headers and metadata given at the start (same name).

        Raises:
            BucketSealedError, BucketFullError, StoreUnavailableError, StoreTimeoutError:
                then :meth:`abandon`.
        """
        ...

    async def abandon(self) -> None:
        """Purge what was sent; never raises an osfs error. Safe after a failed commit."""
        ...


class Store(Protocol):
    """A bucket, as the filesystem uses it (trio side)."""

    @property
    def bucket(self) -> str:
        """The bucket name."""
        ...

    async def get_info(self, name: str) -> ObjectInfo:
        """The current info of a live object.

        Raises:
            ObjectNotFoundError: no such live object.
        """
        ...

    async def chunk_index(self, info: ObjectInfo) -> ChunkIndex:
        """Where each chunk of ``info``'s version lives.

        Raises:
            StaleVersionError: that version no longer exists.
        """
        ...

    async def fetch_chunks(self, index: ChunkIndex, positions: Sequence[int]) -> list[bytes]:
        """The payloads of the chunks at ``positions`` of an indexed version, in that order.

        Raises:
            StaleVersionError: that version no longer exists (replaced or deleted).
        """
        ...

    async def status(self) -> ObjectStoreStatus:
        """The bucket's configuration and usage (``df``, sealed)."""
        ...

    def watch(self) -> AbstractAsyncContextManager[AsyncIterator[WatchBatch]]:
        """Every object's latest info, the end marker, then every change, in batches.

        Survives reconnects and server restarts: after an outage it resumes where it stopped.
        """
        ...

    # Writes (rule 4: each returns the info it published, with its ``revision``) -------------

    async def put_path(self, meta: ObjectMeta, path: str) -> ObjectInfo:
        """Store the local file at ``path`` as object ``meta.name`` (a new version).

        The object gets ``meta``'s description, headers and metadata (and its chunk size, 0 for
        the default). Nothing is visible unless complete; the previous version's chunks are
        purged after the new meta document lands.

        Raises:
            InvalidObjectNameError, BucketSealedError, BucketFullError, StoreUnavailableError,
            StoreTimeoutError: nothing new is visible; the previous version stays readable.
            OSError: the file cannot be read.
        """
        ...

    async def put_data(self, meta: ObjectMeta, data: bytes) -> ObjectInfo:
        """As :meth:`put_path`, from bytes (directory markers, symlinks, empty files)."""
        ...

    async def update_meta(
        self, name: str, meta: ObjectMeta, *, current: ObjectInfo | None = None
    ) -> ObjectInfo:
        """Change description, headers and metadata of live object ``name`` in place.

        The data and the nuid stay; ``meta.chunk_size`` is ignored. ``current`` is the
        document the caller believes is the latest: if it still is, the update costs one round
        trip instead of two; if not, the result is the same as without it.

        Raises:
            ValueError: ``meta.name`` is not ``name`` (use :meth:`rename`).
            UpdateMetaDeletedError: no live object ``name``.
            BucketSealedError: the bucket is sealed.
        """
        ...

    async def rename(self, name: str, new_name: str, *, overwrite: bool = False) -> ObjectInfo:
        """Move live object ``name`` to ``new_name``, keeping its nuid and chunks (no copy).

        The document is published under ``new_name`` (a rollup), then the chunks of
        ``new_name``'s previous version are purged if it was a live object with another nuid,
        then ``name``'s meta subject is purged: a watch sees the new name's document and
        nothing for the old name. A replaced ``new_name`` changes atomically for its readers:
        they see the old version until the new document lands, never a gap. ``new_name ==
        name`` changes nothing and returns the current info.

        Raises:
            ObjectNotFoundError: no live object ``name``.
            ObjectAlreadyExistsError: ``new_name`` is a live object and not ``overwrite``.
            InvalidObjectNameError, BucketSealedError.
        """
        ...

    async def begin_put(self, meta: ObjectMeta) -> Upload:
        """Start a put of ``meta.name`` whose bytes follow (see :class:`Upload`).

        Raises:
            InvalidObjectNameError, StoreUnavailableError.
        """
        ...

    async def delete(self, name: str) -> ObjectInfo:
        """Write a delete marker for ``name`` and purge its chunks; returns the marker.

        Deleting a deleted object writes another marker.

        Raises:
            ObjectNotFoundError: the name never existed.
            BucketSealedError: the bucket is sealed.
        """
        ...
