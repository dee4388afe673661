"""Streaming a file to the store while it is being written: the pipelined put of DESIGN §5.

Uploading a large file only at ``close`` costs the write time plus the upload time. A file
that is written front to back from empty (``cp``, ``rsync``, a download) can instead be sent
while it grows: by ``close`` most of it is stored and only the tail and the meta document are
left. The store's put is the same (chunks, then the meta document last), so nothing is visible
before ``close`` and a failure purges what was sent.

Rules:
1. A :class:`Stream` covers one dirty period of a file whose spool started empty (a new file,
   ``O_TRUNC``, ``truncate`` to 0). It tracks the *frontier*: how far the file is written
   contiguously from offset 0 (writes arriving slightly out of order, as the kernel's writeback
   sends them, are merged as they join up).
2. Whole chunks below the frontier are sent in pieces of at least :data:`STREAM_STEP` bytes
   (one crossing of the seam each) by a task of their own, never by the write request.
3. A write below what was already sent, or a truncate to anything but 0, *breaks* the stream:
   what was sent is abandoned (purged) and ``close`` stores the file with one ordinary put.
   So does a failed send, and a file that still has holes at ``close``.
4. A file that never reached :data:`STREAM_STEP` is not streamed at all: one put at ``close``
   is cheaper than a put in pieces.
Concurrency: trio. A send and the ``close`` that finishes the stream exclude each other (the
store's upload takes one piece at a time); the bytes sent are counted before the send awaits,
so a write landing on them meanwhile breaks the stream (rule 3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from osfs.core import errors
from osfs.core.meta import DEFAULT_CHUNK_SIZE, ObjectInfo, ObjectMeta
from osfs.core.store_api import Store, Upload
from osfs.fs.spool import SpoolFile

log = logging.getLogger(__name__)

#: Bytes below the frontier that make the sender go (and the least it sends at once).
STREAM_STEP = 1024 * 1024
#: The most one send takes from the spool (bounds the memory a stream holds).
MAX_SEND = 8 * 1024 * 1024


class Stream:
    """The eager upload of one file (see the module rules).

    Args:
        store: the bucket.
        spool: the file's spool (read, never written, here).
        meta: what the file is to be stored as, asked when the upload begins.
        chunk_size: the put's chunk size (sends are whole chunks, so the layout is uniform).
    """

    def __init__(
        self,
        store: Store,
        spool: SpoolFile,
        meta: Callable[[], ObjectMeta],
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._store = store
        self._spool = spool
        self._meta = meta
        self._chunk = chunk_size
        self.sent = 0
        self._frontier = 0
        self._extents: dict[int, int] = {}
        self.broken = False
        self._closed = False
        self._upload: Upload | None = None
        self._sending = trio.Lock()
        self._wake = trio.Event()

    @property
    def frontier(self) -> int:
        """How far the file is written contiguously from offset 0."""
        return self._frontier

    def wrote(self, offset: int, length: int) -> None:
        """Take note of a write (rules 1 and 3); wakes the sender when there is enough."""
        if self.broken:
            return
        if offset < self.sent:
            self._break("a write landed on bytes already sent")
            return
        end = offset + length
        if offset <= self._frontier:
            self._frontier = max(self._frontier, end)
            self._join_extents()
        else:
            self._extents[offset] = max(self._extents.get(offset, 0), end)
        if self._frontier - self.sent >= STREAM_STEP:
            self._wake.set()

    def _join_extents(self) -> None:
        joined = True
        while joined and self._extents:
            joined = False
            for start, end in list(self._extents.items()):
                if start <= self._frontier:
                    del self._extents[start]
                    self._frontier = max(self._frontier, end)
                    joined = True

    def _break(self, why: str) -> None:
        log.debug("stream of %s stops (%s): stored at close instead", self._spool.path, why)
        self.broken = True
        self._wake.set()

    async def run(self) -> None:
        """Send whole chunks below the frontier until finished or broken (rule 2)."""
        while not self._closed and not self.broken:
            await self._wake.wait()
            self._wake = trio.Event()
            async with self._sending:
                while not self._closed and not self.broken:
                    ready = (self._frontier - self.sent) // self._chunk * self._chunk
                    if ready < STREAM_STEP:
                        break
                    await self._send(min(ready, MAX_SEND))
        if self.broken and not self._closed:
            async with self._sending:
                await self._abandon()

    async def _send(self, length: int) -> None:
        data = self._spool.pread(self.sent, length)
        self.sent += len(data)  # before the await: rule 3's check sees it
        try:
            if self._upload is None:
                self._upload = await self._store.begin_put(self._meta())
            await self._upload.add(data)
        except (errors.OsfsError, OSError) as exc:
            self._break(f"sending failed: {exc}")

    async def finish(self, meta: ObjectMeta) -> ObjectInfo | None:
        """At ``close``: send the rest and commit as ``meta``. None when the stream cannot
        store the file (rules 3 and 4): the caller puts it whole.

        Raises:
            OsfsError: the commit failed (what was sent is abandoned first).
        """
        self._closed = True
        self._wake.set()
        async with self._sending:
            size = self._spool.size
            if self._upload is None or self.broken or self._frontier < size or self._extents:
                await self._abandon()
                return None
            try:
                while self.sent < size:
                    data = self._spool.pread(self.sent, min(size - self.sent, MAX_SEND))
                    if not data:
                        raise errors.StoreUnavailableError("the spool file ended early")
                    self.sent += len(data)
                    await self._upload.add(data)
                return await self._upload.commit(meta)
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self._abandon()
                raise

    async def cancel(self) -> None:
        """Stop for good and purge what was sent (the file was removed or truncated)."""
        self._closed = True
        self.broken = True
        self._wake.set()
        async with self._sending:
            await self._abandon()

    async def _abandon(self) -> None:
        upload, self._upload = self._upload, None
        if upload is not None:
            with trio.CancelScope(shield=True):
                await upload.abandon()
