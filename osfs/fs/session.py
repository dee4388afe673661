"""One mounted bucket's moving parts, started in order and stopped in reverse.

``open_filesystem`` builds the inode table, the chunk reader, the watcher and the write path
over a Store, waits until the watcher has applied the bucket's snapshot, takes over the dirty
files a crashed mount of the bucket left behind, and yields the pyfuse3 operations object.
Leaving the block stores what is still dirty (the names it could not store stay on disk for the
next mount and are logged), then stops the retry task, the watcher and the reader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from osfs.core.cache import ChunkCache
from osfs.core.inodes import InodeTable
from osfs.core.posix import MountDefaults
from osfs.core.store_api import Store
from osfs.fs.files import Files
from osfs.fs.namespace import Namespace
from osfs.fs.ops import OsfsOperations
from osfs.fs.reader import open_chunk_reader
from osfs.fs.spool import SpoolDir
from osfs.fs.watcher import Invalidator, KernelInvalidator, Watcher

log = logging.getLogger(__name__)

#: Seconds the recovered files of a crashed mount may take to upload before the mount answers
#: (the rest are retried in the background).
RECOVERY_BUDGET = 30.0
#: Seconds unmount may spend storing dirty files; what is left stays on disk for the next mount.
UNMOUNT_BUDGET = 120.0


@asynccontextmanager
async def open_filesystem(
    store: Store,
    defaults: MountDefaults,
    cache_size: int,
    spool_dir: SpoolDir,
    *,
    read_only: bool = False,
    invalidator: Invalidator | None = None,
) -> AsyncIterator[OsfsOperations]:
    """The operations of a mounted bucket, its tree loaded and kept current.

    Args:
        store: the bucket.
        defaults: mode, uid and gid for objects that carry none.
        cache_size: bytes of chunk cache.
        spool_dir: where written files wait for their upload (this mount's instance folder).
        read_only: refuse every change.
        invalidator: where kernel invalidations go (tests record them).
    """
    table = InodeTable()
    status = await store.status()
    async with open_chunk_reader(store, ChunkCache(cache_size)) as reader:
        watcher = Watcher(store, table, invalidator or KernelInvalidator())
        files = Files(store, reader, spool_dir)
        namespace = Namespace(table, store, watcher, files, defaults, started_ns=time.time_ns())
        operations = OsfsOperations(reader, namespace, read_only=read_only)
        files.on_stored = operations.stored
        watcher.ours = files.is_ours
        operations.sealed = status.sealed
        async with trio.open_nursery() as nursery:
            await nursery.start(watcher.run)
            adopted = spool_dir.adopt()
            if adopted:
                files.adopt(adopted)
                log.info("uploading %d file(s) a previous mount left unstored", len(adopted))
                with trio.move_on_after(RECOVERY_BUDGET):
                    await files.retry_now()
            await nursery.start(files.run)
            try:
                yield operations
            finally:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + UNMOUNT_BUDGET
                    await files.drain()
                left = [file.name for file in files.dirty()]
                if left:
                    log.error(
                        "%d file(s) could not be stored and stay in %s for the next mount: %s",
                        len(left),
                        spool_dir.folder,
                        ", ".join(repr(name) for name in left),
                    )
                nursery.cancel_scope.cancel()
