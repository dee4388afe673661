"""One mounted bucket's moving parts, started in order and stopped in reverse.

``open_filesystem`` builds the inode table, the chunk reader and the watcher over a Store, waits
until the watcher has applied the bucket's snapshot, and yields the pyfuse3 operations object;
leaving the block stops the watcher and the reader's prefetches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from osfs.core.cache import ChunkCache
from osfs.core.inodes import InodeTable
from osfs.core.posix import MountDefaults
from osfs.core.store_api import Store
from osfs.fs.ops import OsfsOperations
from osfs.fs.reader import open_chunk_reader
from osfs.fs.watcher import Invalidator, KernelInvalidator, Watcher


@asynccontextmanager
async def open_filesystem(
    store: Store,
    defaults: MountDefaults,
    cache_size: int,
    *,
    invalidator: Invalidator | None = None,
) -> AsyncIterator[OsfsOperations]:
    """The operations of a mounted bucket, its tree loaded and kept current.

    Args:
        store: the bucket.
        defaults: mode, uid and gid for objects that carry none.
        cache_size: bytes of chunk cache.
        invalidator: where kernel invalidations go (tests record them).
    """
    table = InodeTable()
    status = await store.status()
    async with open_chunk_reader(store, ChunkCache(cache_size)) as reader:
        operations = OsfsOperations(table, reader, store, defaults, read_only=True)
        operations.sealed = status.sealed
        watcher = Watcher(store, table, invalidator or KernelInvalidator())
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
            try:
                yield operations
            finally:
                nursery.cancel_scope.cancel()
