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
Pure: this module declares types only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from osfs.core.chunks import ChunkIndex
from osfs.core.config import ObjectStoreStatus
from osfs.core.meta import ObjectInfo

#: One delivery of a bucket watch: object infos in stream order; ``None`` marks the end of the
#: initial values (it appears once, possibly in the middle of a batch).
WatchBatch = tuple[ObjectInfo | None, ...]


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
