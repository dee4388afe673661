"""THE seam between trio (pyfuse3) and asyncio (nats-py): an asyncio loop on its own thread.

Why a thread and not trio-asyncio: measured on the 2-core machine, bulk work through a
dedicated asyncio thread keeps the pure-asyncio rate (put 345 vs 398 MB/s, get 265 vs 262),
while trio-asyncio lost 40% on reads (DESIGN §2). One crossing costs 0.1-0.2 ms, hence:

1. Cross once per whole operation (an info, a chunk index, a batch of chunks, a batch of watch
   entries, a whole put of a local file), never per message.
2. Only immutable values cross (bytes, str, frozen dataclasses); errors are osfs errors.
3. A trio cancellation cancels the asyncio task it was waiting for.
This is the only module that imports both trio and asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import CancelledError, Future
from typing import Any, Generic, TypeVar

import trio

from osfs.core import errors
from osfs.core.chunks import ChunkIndex
from osfs.core.config import ObjectStoreConfig, ObjectStoreStatus
from osfs.core.meta import ObjectInfo, ObjectMeta
from osfs.core.store_api import WatchBatch
from osfs.store import Connection, ConnectOptions, ObjectStore, open_connection
from osfs.store.bucket import Upload

T = TypeVar("T")

#: Watch entries shipped per crossing at most; a batch also ends when the stream goes quiet.
WATCH_BATCH = 2048
#: Seconds a watch entry waits for others to join its batch.
WATCH_GATHER = 0.001
#: Seconds at least between two live batches: a steady stream of changes (the echoes of the
#: mount's own writes, one per file of a ``cp -r``) then crosses ~50 times a second instead of
#: once per change, which took ~7% off ``cp -r`` of small files (measured: docs/benchmarks.md).
#: A change after a quiet spell still crosses after WATCH_GATHER.
WATCH_BATCH_GAP = 0.02


class AsyncioThread:
    """An asyncio event loop running on a daemon thread of its own."""

    def __init__(self, name: str = "osfs-asyncio") -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        """Start the loop and wait until it runs."""
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def stop(self) -> None:
        """Stop the loop (cancelling what still runs) and join the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def submit(self, fn: Callable[[], Awaitable[T]]) -> Future[T]:
        """Schedule ``fn()`` on the loop from any thread."""

        async def wrapper() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` on the asyncio loop and wait for it from trio (cancellable).

        The hand-off is two bare wake-ups: a callback that starts the task on the loop, and one
        that reschedules the waiting trio task when it is done. ``run_coroutine_threadsafe`` and
        a ``trio.Event`` cost 15-40 µs more per crossing (measured: docs/benchmarks.md).
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled caller starts nothing
        crossing = _Crossing(self._loop, fn, trio.lowlevel.current_trio_token())
        self._loop.call_soon_threadsafe(crossing.start)
        await trio.lowlevel.wait_task_rescheduled(crossing.abandon)
        return crossing.result()

    def call_soon_in_trio(self, token: trio.lowlevel.TrioToken, fn: Callable[..., Any]) -> None:
        """From the asyncio thread, run ``fn()`` in trio (dropped if trio has finished)."""
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(fn)


class _Crossing(Generic[T]):
    """One call across the seam: started on the asyncio loop, awaited by one trio task.

    Each method says the thread it runs on. Whether the trio task gave up is decided, and the
    task rescheduled, only on trio's thread, so an answer that arrives after a cancel is dropped.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fn: Callable[[], Awaitable[T]],
        token: trio.lowlevel.TrioToken,
    ) -> None:
        self._loop = loop
        self._fn = fn
        self._token = token
        self._waiter = trio.lowlevel.current_task()
        self._task: asyncio.Task[T] | None = None
        # Written on trio's thread only. Read there, and by start(): a start that misses it
        # just creates a task the queued _cancel then cancels.
        self._abandoned = False

    async def _run(self) -> T:
        return await self._fn()

    def start(self) -> None:
        """On the asyncio thread: start the task (not if trio gave up already)."""
        if self._abandoned:
            return
        self._task = self._loop.create_task(self._run())
        self._task.add_done_callback(self._finished)

    def _finished(self, _: asyncio.Task[T]) -> None:
        """On the asyncio thread: wake the trio task."""
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._wake)

    def _wake(self) -> None:
        """On trio's thread."""
        if not self._abandoned:
            trio.lowlevel.reschedule(self._waiter)

    def abandon(self, _: object) -> trio.lowlevel.Abort:
        """On trio's thread, when the waiting task is cancelled: cancel the asyncio task too."""
        self._abandoned = True
        self._loop.call_soon_threadsafe(self._cancel)
        return trio.lowlevel.Abort.SUCCEEDED

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def result(self) -> T:
        """The task's result, or its error raised (trio's thread, after the wake-up)."""
        assert self._task is not None
        if self._task.cancelled():  # the loop is shutting down, say
            raise CancelledError("the asyncio task was cancelled")
        return self._task.result()


class BridgedStore:
    """The real :class:`osfs.core.store_api.Store`: the asyncio client, reached across the seam.

    Open it with :meth:`open` from trio; close it with :meth:`aclose`.
    """

    def __init__(self, thread: AsyncioThread, connection: Connection, store: ObjectStore) -> None:
        self._thread = thread
        self._connection = connection
        self._store = store

    @classmethod
    async def open(
        cls, options: ConnectOptions, bucket: str, *, create: bool = False
    ) -> BridgedStore:
        """Connect, and bind ``bucket`` (creating it if ``create``).

        Raises:
            StoreUnavailableError, AuthorizationError, BucketNotFoundError,
            InvalidBucketNameError.
        """
        thread = AsyncioThread()
        thread.start()

        async def connect() -> tuple[Connection, ObjectStore]:
            connection = await open_connection(options, reconnect=True)
            try:
                if create:
                    store = await _bind_or_create(connection, bucket)
                else:
                    store = await connection.manager.object_store(bucket)
            except BaseException:
                await connection.close()
                raise
            return connection, store

        try:
            connection, store = await thread.call(connect)
        except BaseException:
            thread.stop()
            raise
        return cls(thread, connection, store)

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._store.bucket

    @property
    def connection(self) -> Connection:
        """The asyncio-side connection (use only through :attr:`thread`)."""
        return self._connection

    @property
    def thread(self) -> AsyncioThread:
        """The asyncio thread, for operations this class does not wrap."""
        return self._thread

    async def aclose(self) -> None:
        """Close the connection and stop the asyncio thread."""
        with contextlib.suppress(errors.OsfsError):
            await self._thread.call(self._store.aclose)
            await self._thread.call(self._connection.close)
        self._thread.stop()

    async def get_info(self, name: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.get_info`."""
        return await self._thread.call(lambda: self._store.get_info(name))

    async def chunk_index(self, info: ObjectInfo) -> ChunkIndex:
        """See :meth:`osfs.core.store_api.Store.chunk_index`."""
        return await self._thread.call(lambda: self._store.chunk_index(info))

    async def fetch_chunks(self, index: ChunkIndex, positions: Sequence[int]) -> list[bytes]:
        """See :meth:`osfs.core.store_api.Store.fetch_chunks`."""
        wanted = tuple(positions)
        return await self._thread.call(lambda: self._store.read_chunks(index, wanted))

    async def status(self) -> ObjectStoreStatus:
        """See :meth:`osfs.core.store_api.Store.status`."""
        return await self._thread.call(self._store.status)

    async def put_path(self, meta: ObjectMeta, path: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.put_path`: the file is read on the asyncio side."""

        async def upload() -> ObjectInfo:
            with open(path, "rb") as handle:  # noqa: ASYNC230 - local file, read chunk by chunk
                return await self._store.put(meta, handle)

        return await self._thread.call(upload)

    async def put_data(self, meta: ObjectMeta, data: bytes) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.put_data`."""
        return await self._thread.call(lambda: self._store.put(meta, data))

    async def update_meta(
        self, name: str, meta: ObjectMeta, *, current: ObjectInfo | None = None
    ) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.update_meta` (never a rename here)."""
        if meta.name != name:
            raise ValueError(f"update_meta of {name!r} names {meta.name!r}: use rename")
        return await self._thread.call(lambda: self._store.update_meta(name, meta, current=current))

    async def rename(self, name: str, new_name: str, *, overwrite: bool = False) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.rename`."""
        return await self._thread.call(
            lambda: self._store.rename(name, new_name, overwrite=overwrite)
        )

    async def delete(self, name: str) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Store.delete`."""
        return await self._thread.call(lambda: self._store.delete(name))

    async def begin_put(self, meta: ObjectMeta) -> BridgedUpload:
        """See :meth:`osfs.core.store_api.Store.begin_put`."""
        upload = await self._thread.call(lambda: self._store.begin_put(meta))
        return BridgedUpload(self._thread, upload)

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[AsyncIterator[WatchBatch]]:
        """See :meth:`osfs.core.store_api.Store.watch`: batches cross the seam, not entries."""
        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[WatchBatch | BaseException](math.inf)
        store, thread = self._store, self._thread

        def deliver(item: WatchBatch | BaseException) -> None:
            thread.call_soon_in_trio(token, lambda: send.send_nowait(item))

        async def pump() -> None:
            pending: list[ObjectInfo | None] = []
            arrived = asyncio.Event()

            async def read(watcher: AsyncIterator[ObjectInfo | None]) -> None:
                async for entry in watcher:
                    pending.append(entry)
                    arrived.set()

            loop = asyncio.get_running_loop()
            live = False  # the initial values are delivered: the gap applies
            last = -math.inf
            try:
                async with store.watch() as watcher:
                    reader = asyncio.create_task(read(aiter(watcher)))
                    try:
                        while not reader.done() or pending:
                            waiter = asyncio.create_task(arrived.wait())
                            await asyncio.wait(
                                {reader, waiter}, return_when=asyncio.FIRST_COMPLETED
                            )
                            waiter.cancel()
                            arrived.clear()
                            if len(pending) < WATCH_BATCH:
                                # Let a burst gather into one batch.
                                gap = last + WATCH_BATCH_GAP - loop.time() if live else 0.0
                                await asyncio.sleep(max(WATCH_GATHER, gap))
                            while pending:
                                batch = tuple(pending[:WATCH_BATCH])
                                del pending[:WATCH_BATCH]
                                live = live or None in batch
                                deliver(batch)
                            last = loop.time()
                        reader.result()
                    finally:
                        reader.cancel()
                        with contextlib.suppress(BaseException):
                            await reader
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # ends the trio side's iteration with the error
                deliver(exc)

        future = thread.submit(pump)

        async def batches() -> AsyncGenerator[WatchBatch, None]:
            async for item in receive:
                if isinstance(item, BaseException):
                    raise item
                yield item

        iterator = batches()
        try:
            yield iterator
        finally:
            future.cancel()
            await iterator.aclose()
            await receive.aclose()


class BridgedUpload:
    """The real :class:`osfs.core.store_api.Upload`: an asyncio put, fed across the seam."""

    def __init__(self, thread: AsyncioThread, upload: Upload) -> None:
        self._thread = thread
        self._upload = upload

    @property
    def size(self) -> int:
        """Bytes added so far."""
        return self._upload.size

    async def add(self, data: bytes) -> None:
        """See :meth:`osfs.core.store_api.Upload.add`."""
        await self._thread.call(lambda: self._upload.add(data))

    async def commit(self, meta: ObjectMeta | None = None) -> ObjectInfo:
        """See :meth:`osfs.core.store_api.Upload.commit`."""
        return await self._thread.call(lambda: self._upload.commit(meta))

    async def abandon(self) -> None:
        """See :meth:`osfs.core.store_api.Upload.abandon`."""
        await self._thread.call(self._upload.abandon)


async def _bind_or_create(connection: Connection, bucket: str) -> ObjectStore:
    """Bind ``bucket``, creating it with default settings if it does not exist."""
    try:
        return await connection.manager.object_store(bucket)
    except errors.BucketNotFoundError:
        return await connection.manager.create_object_store(ObjectStoreConfig(bucket=bucket))
