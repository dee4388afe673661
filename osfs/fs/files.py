"""Files open for writing through the mount: spool files, uploads at flush, retries (DESIGN §5).

One :class:`OpenFile` per inode that is open (any number of handles share it, so a write through
one descriptor is read through another, as POSIX says) or that still holds bytes not yet stored.

Rules:
1. Bytes go to a spool file on local disk. A file is *spooled* once it has one: from then on
   every read of the inode is served from it. An existing object is copied into the spool at
   the first change that needs its bytes (a write, or a truncate to a non-zero size); ``O_TRUNC``
   and new files start empty and need no copy.
2. A file is *dirty* from its first change until that change is stored. Upload happens at
   ``flush`` (every ``close``) and ``fsync``, as one put of the whole spool file: the store
   publishes the chunks, then the meta document, so no reader anywhere sees half a file. The
   upload's error is the error of ``close``/``fsync``.
3. Nothing is lost: a failed upload leaves the file dirty and its spool record on disk; a
   background task retries with backoff (1 s doubling to 30 s); unmount uploads what is left
   (:meth:`Files.drain`); a crash leaves the records for the next mount
   (``osfs.fs.spool`` rule 2, :meth:`Files.adopt`).
4. Per-file lock: writes, truncates, attribute changes, the copy-in and the upload of one file
   exclude each other, so an upload stores one consistent state and marks exactly that state
   clean. Reads do not take it (a spool being uploaded is not changing).
5. New files exist only in this mount until their first upload (the *pending* state); a file
   unlinked while open keeps its bytes for the open handles (copied in first, if need be) and is
   never uploaded again.
6. Attribute changes (mode, owner, times, user xattrs) of a dirty file ride along with its next
   upload; of a clean one they are stored at once by ``update_meta`` (no data copied).
7. A rename holds the locks of the files it moves and of the file it replaces from the upload
   under the old name until the new name is theirs (:meth:`Files.renaming`): an upload that
   started in between (another process's ``close``) would store a moved file under a name the
   store's rename just removed (bringing it back), or the replaced file's bytes over the name
   the renamed file now has. Writes and uploads of those files wait for the rename instead.
Concurrency: trio; the state of an OpenFile changes only in this module.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import trio

from osfs.core import errors
from osfs.core.meta import ObjectInfo, ObjectMeta
from osfs.core.posix import PosixAttrs, metadata_with
from osfs.core.store_api import Store
from osfs.fs.reader import ChunkReader
from osfs.fs.spool import Adopted, SpoolDir, SpoolFile
from osfs.fs.streaming import Stream

log = logging.getLogger(__name__)

#: Seconds before the first retry of a failed upload; doubled after each failure up to the max.
RETRY_MIN = 1.0
RETRY_MAX = 30.0
#: Spool files at least this large are deleted by a worker thread.
REMOVE_IN_THREAD = 8 * 1024 * 1024
#: Bytes copied per read when an existing object is copied into a spool file.
FILL_STEP = 1024 * 1024

#: Called with a file and the info of the version an upload just stored.
StoredCallback = Callable[["OpenFile", ObjectInfo], None]


@dataclass(eq=False)
class OpenFile:
    """The write state of one inode (see the module rules).

    Attributes:
        ino: the inode (0 for a file adopted from a crashed mount, which has none yet).
        name: the object the bytes are stored as (changes on rename).
        base: the stored version the bytes came from; None for a file never stored.
        attrs: mode, owner and mtime as the mount shows them now (maybe not stored yet).
        metadata: the other metadata keys to store with the next upload.
        handles: open descriptors.
        spool: the spool file, once there is one.
        dirty: changed since the last successful upload.
        failed: the last upload failed (the retry task tries again).
        unlinked: the name was removed: never upload again.
        record: the meta an adopted file is stored as (its record from the crashed mount).
        stream: the upload that runs while the file is written (``osfs.fs.streaming``).
        torn: a write into the spool failed (a full disk): the spool lacks bytes the program
            wrote, so it is never stored (that would be half a file) until a truncate to 0
            starts the file over; its flush fails with EIO.
    """

    ino: int
    name: str
    base: ObjectInfo | None
    attrs: PosixAttrs
    metadata: dict[str, str]
    handles: int = 0
    spool: SpoolFile | None = None
    dirty: bool = False
    failed: bool = False
    unlinked: bool = False
    record: ObjectMeta | None = None
    stream: Stream | None = None
    torn: bool = False

    def __post_init__(self) -> None:
        self.lock = trio.Lock()

    @property
    def size(self) -> int:
        """The file's size as the mount shows it."""
        if self.spool is not None:
            return self.spool.size
        return 0 if self.base is None else self.base.size

    @property
    def pending(self) -> bool:
        """True for a file that exists only in this mount (never stored)."""
        return self.base is None

    def meta(self) -> ObjectMeta:
        """What the next upload stores the bytes as."""
        if self.record is not None:
            return self.record
        base = self.base
        return ObjectMeta(
            name=self.name,
            description="" if base is None else base.description,
            headers={} if base is None else dict(base.headers),
            metadata=metadata_with(self.attrs, self.metadata),
        )


class Files:
    """Every inode open or not yet stored, and the upload machinery.

    Args:
        store: the bucket.
        reader: copies existing objects into spool files.
        spool_dir: where spool files live.
        on_stored: told about every version an upload stored (the table applies it); may be
            set later, as the attribute of the same name.
    """

    def __init__(
        self,
        store: Store,
        reader: ChunkReader,
        spool_dir: SpoolDir,
        on_stored: StoredCallback | None = None,
    ) -> None:
        self._store = store
        self._reader = reader
        self._spool_dir = spool_dir
        self.on_stored: StoredCallback = on_stored or _ignore
        self._files: dict[int, OpenFile] = {}
        self._orphans: list[OpenFile] = []
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._in_flight: Counter[str] = Counter()
        self.uploads = 0
        #: The bucket refused an upload as sealed: no more retries (ops refuses changes).
        self.sealed = False

    # Lookup -----------------------------------------------------------------------------------

    def get(self, ino: int) -> OpenFile | None:
        """The write state of ``ino``, if it is open or not yet stored."""
        return self._files.get(ino)

    def dirty(self) -> list[OpenFile]:
        """Files with bytes not yet stored (orphans from a crashed mount included)."""
        files = (*self._files.values(), *self._orphans)
        return [f for f in files if f.dirty and not f.unlinked and not f.torn]

    # Opening and closing --------------------------------------------------------------------

    def open(self, ino: int, info: ObjectInfo, attrs: PosixAttrs) -> OpenFile:
        """One more handle on a stored file ``info`` (its current version and attributes)."""
        file = self._files.get(ino)
        if file is None:
            file = OpenFile(ino, info.name, info, attrs, dict(info.metadata))
            self._files[ino] = file
        elif file.spool is None and not file.dirty and file.base is not None:
            # Not copied in yet: follow the newest version the table knows.
            file.base, file.attrs, file.metadata = info, attrs, dict(info.metadata)
        file.handles += 1
        return file

    def create(self, ino: int, name: str, attrs: PosixAttrs) -> OpenFile:
        """A new, empty file (one handle), pending until its first upload (rule 5)."""
        file = OpenFile(ino, name, None, attrs, {}, handles=1)
        file.spool = self._spool_dir.create()
        self._files[ino] = file
        self._mark_dirty(file)
        self._start_stream(file)
        return file

    def _start_stream(self, file: OpenFile) -> None:
        """Stream the file while it is written (it is empty now); only once :meth:`run` runs."""
        if self._nursery is None or file.spool is None:
            return
        file.stream = Stream(self._store, file.spool, file.meta)
        self._nursery.start_soon(file.stream.run)

    async def _stop_stream(self, file: OpenFile) -> None:
        stream, file.stream = file.stream, None
        if stream is not None:
            await stream.cancel()

    def release(self, file: OpenFile) -> None:
        """One handle fewer; a clean file without handles lets go of its spool."""
        file.handles -= 1
        if file.handles <= 0 and not file.dirty:
            self._drop(file)

    def _drop(self, file: OpenFile) -> None:
        spool, file.spool = file.spool, None
        if spool is not None:
            if self._nursery is not None and spool.size >= REMOVE_IN_THREAD:
                # Freeing a large file's blocks takes the filesystem tens of milliseconds:
                # not on the thread that answers FUSE.
                self._nursery.start_soon(trio.to_thread.run_sync, spool.remove)
            else:
                spool.remove()
        if file in self._orphans:
            self._orphans.remove(file)
        elif self._files.get(file.ino) is file:
            del self._files[file.ino]

    # Reading and writing --------------------------------------------------------------------

    def read(self, file: OpenFile, offset: int, size: int) -> bytes | None:
        """The bytes at ``offset`` from the spool, or None when the file is not spooled."""
        if file.spool is None:
            return None
        return file.spool.pread(offset, size)

    async def write(self, file: OpenFile, offset: int, data: bytes) -> int:
        """Write into the spool (copying the object in first, rule 1); returns the count."""
        async with file.lock:
            spool = await self._spooled(file, keep=True)
            try:
                written = spool.pwrite(offset, data)
            except OSError:
                file.torn = True
                self._touch(file)
                raise
            if file.stream is not None:
                file.stream.wrote(offset, written)
            self._touch(file)
        return written

    async def truncate(self, file: OpenFile, size: int) -> None:
        """Cut or extend the file to ``size`` bytes."""
        async with file.lock:
            spool = await self._spooled(file, keep=size > 0)
            await self._stop_stream(file)
            spool.truncate(size)
            if size == 0:
                file.torn = False  # started over: nothing the program wrote is missing
                self._start_stream(file)
            self._touch(file)

    async def change_attrs(
        self, file: OpenFile, attrs: PosixAttrs, metadata: Mapping[str, str] | None = None
    ) -> None:
        """New mode, owner, times or metadata: stored now, or with the next upload (rule 6)."""
        async with file.lock:
            before = (file.attrs, file.metadata)
            file.attrs = attrs
            if metadata is not None:
                file.metadata = dict(metadata)
            if file.unlinked:
                return  # no name to store them under: they live as long as the handles
            if file.dirty or file.base is None:
                # The crash record follows mode, owner and metadata; not the mtime alone,
                # which the kernel sets at every close of a written file (writeback cache):
                # a recovered file gets the mtime of its last record, a fair price.
                mtime_only = before == (replace(attrs, mtime_ns=before[0].mtime_ns), file.metadata)
                if file.dirty and file.spool is not None and not mtime_only:
                    file.spool.mark_dirty(file.meta())
                return
            with self._storing(file.name):
                info = await self._store.update_meta(file.name, file.meta(), current=file.base)
                file.base = info
                self.on_stored(file, info)

    async def _spooled(self, file: OpenFile, *, keep: bool) -> SpoolFile:
        """The file's spool, made now if need be: with the object's bytes if ``keep``."""
        if file.spool is not None:
            return file.spool
        spool = self._spool_dir.create()
        try:
            if keep and file.base is not None and file.base.size > 0:
                await self._copy_in(file.base, spool)
        except BaseException:
            spool.remove()
            raise
        file.spool = spool
        return spool

    async def _copy_in(self, info: ObjectInfo, spool: SpoolFile) -> None:
        """Copy a stored version into a spool file (its digest is checked on the way)."""
        handle = await self._reader.open(info)
        offset = 0
        while offset < info.size:
            data = await handle.read(offset, FILL_STEP)
            if not data:
                raise errors.StaleVersionError(f"object {info.name!r} ended early")
            spool.pwrite(offset, data)
            offset += len(data)

    def _touch(self, file: OpenFile) -> None:
        """After a change of the bytes: a new mtime, and dirty (with its record, rule 3).

        An unlinked file's bytes live only for its open handles (rule 5): it never turns dirty
        again, or its record would outlive it and the next mount would upload it back.
        """
        now = time.time_ns()
        file.attrs = replace(file.attrs, mtime_ns=now)
        if not file.dirty and not file.unlinked:
            self._mark_dirty(file)

    def _mark_dirty(self, file: OpenFile) -> None:
        assert file.spool is not None
        file.spool.mark_dirty(file.meta())
        file.dirty = True

    # Uploading ------------------------------------------------------------------------------

    async def flush(self, file: OpenFile) -> None:
        """Store the file if it is dirty (``close``, ``fsync``); raises the upload's error."""
        if not file.dirty:
            return
        with self._storing(file.name):
            async with file.lock:
                if not file.dirty or file.unlinked:
                    return
                info = await self._upload(file)
            if file.handles <= 0:
                self._drop(file)
            self.on_stored(file, info)

    async def _upload(self, file: OpenFile) -> ObjectInfo:
        """Under the file's lock: store the dirty file as it is now, and mark it clean."""
        if file.torn:
            raise OSError(errno.EIO, f"{file.name!r}: earlier writes failed, not stored")
        assert file.spool is not None
        meta = file.meta()
        stream, file.stream = file.stream, None
        try:
            info = None if stream is None else await stream.finish(meta)
            if info is None:
                info = await self._store.put_path(meta, str(file.spool.path))
        except errors.BucketSealedError as exc:
            # Sealed for good: retrying is pointless. The bytes stay in the spool
            # (unmount names them) and the mount refuses changes from now on.
            if not file.failed:
                log.error("could not store %r, kept in the spool: %s", file.name, exc)
            file.failed = True
            self.sealed = True
            raise
        except (errors.OsfsError, OSError) as exc:
            if not file.failed:
                log.warning("could not store %r (kept, retrying): %s", file.name, exc)
            file.failed = True
            self._wake.set()
            raise
        file.spool.mark_clean()
        file.dirty = file.failed = False
        file.base, file.record = info, None
        self.uploads += 1
        return info

    @contextlib.contextmanager
    def _storing(self, name: str) -> Iterator[None]:
        """Mark ``name`` as having a document of ours on its way (see :meth:`is_ours`)."""
        self._in_flight[name] += 1
        try:
            yield
        finally:
            self._in_flight[name] -= 1
            if not self._in_flight[name]:
                del self._in_flight[name]

    def is_ours(self, name: str) -> bool:
        """True while an upload or attribute change of ``name`` is between the store and the
        table: a watched document of that name may be our own, arriving first."""
        return name in self._in_flight

    async def remove(self, file: OpenFile, remove_name: Callable[[], Awaitable[None]]) -> None:
        """``unlink``: ``remove_name`` deletes the name, under the file's lock, so no upload
        can store the file between the delete and the moment it is marked gone (rule 5);
        open handles keep its bytes (copied in first if need be)."""
        async with file.lock:
            if file.handles > 0:
                await self._spooled(file, keep=True)
            await remove_name()
            await self._mark_gone(file)
        if file.handles <= 0:
            self._drop(file)

    async def _mark_gone(self, file: OpenFile) -> None:
        """Under the file's lock: no stream, no record, never dirty again (rule 5)."""
        await self._stop_stream(file)
        file.unlinked = True
        file.dirty = file.failed = False
        if file.spool is not None:
            file.spool.mark_clean()

    def under(self, prefix: str) -> list[OpenFile]:
        """The files whose object names start with ``prefix`` (a directory being renamed)."""
        return [f for f in self._files.values() if f.name.startswith(prefix) and not f.unlinked]

    @contextlib.asynccontextmanager
    async def renaming(
        self, moving: Sequence[OpenFile], replaced: OpenFile | None = None
    ) -> AsyncIterator[None]:
        """Hold still the files a rename moves, and the file it replaces, while the store
        renames (rule 7): each moving file is stored under its old name first; the body renames
        the objects and calls :meth:`renamed`; on success ``replaced`` is marked gone, its bytes
        kept for its open handles (rule 5)."""
        async with contextlib.AsyncExitStack() as locks:
            for file in moving:
                await locks.enter_async_context(file.lock)
                if file.dirty and not file.unlinked:
                    with self._storing(file.name):
                        self.on_stored(file, await self._upload(file))
            if replaced is not None:
                await locks.enter_async_context(replaced.lock)
                if replaced.handles > 0:
                    await self._spooled(replaced, keep=True)
            yield
            if replaced is not None:
                await self._mark_gone(replaced)
        for file in (*moving, *([] if replaced is None else [replaced])):
            if file.handles <= 0 and not file.dirty:
                self._drop(file)

    def renamed(self, file: OpenFile, name: str, info: ObjectInfo | None) -> None:
        """The file's object is now ``name`` (stored as ``info``, when it was stored)."""
        file.name = name
        if info is not None:
            file.base = info
        if file.dirty and file.spool is not None:
            file.spool.mark_dirty(file.meta())

    # Crash recovery and retries -------------------------------------------------------------

    def adopt(self, adopted: list[Adopted]) -> None:
        """Take the dirty files of a mount that is gone (rule 3). They have no inode: they
        show in the mount once :meth:`retry_now` or the retry task has stored them."""
        for item in adopted:
            file = OpenFile(0, item.meta.name, None, _NO_ATTRS, {}, record=item.meta)
            file.spool = item.spool
            file.dirty = file.failed = True
            self._orphans.append(file)

    async def retry_now(self) -> list[str]:
        """Try to store every dirty file once; the names still not stored."""
        left = []
        for file in self.dirty():
            try:
                await self.flush(file)
            except (errors.OsfsError, OSError):
                left.append(file.name)
        return left

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Retry failed uploads until cancelled (rule 3); runs the streams' senders."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                task_status.started()
                await self._retry()
            finally:
                self._nursery = None

    async def _retry(self) -> None:
        delay = RETRY_MIN
        while True:
            woken = False
            with trio.move_on_after(delay):
                await self._wake.wait()
                woken = True
            if woken:
                # A failure just happened: do not hammer. Outside the timer's scope, or a
                # failure just before it rings would be retried at once.
                await trio.sleep(RETRY_MIN)
            self._wake = trio.Event()
            # Failed uploads, and dirty files nobody holds open: no close will come for them
            # (the kernel skips the flush when its own writeback failed, e.g. ENOSPC).
            failing = [file for file in self.dirty() if file.failed or file.handles <= 0]
            if not failing or self.sealed:
                delay = RETRY_MIN
                continue
            left = await self.retry_now()
            # These failures are the ones just counted: they must not cut the backoff short.
            self._wake = trio.Event()
            delay = RETRY_MIN if not left else min(delay * 2, RETRY_MAX)

    async def drain(self) -> list[str]:
        """At unmount: store every dirty file; the names that could not be (kept on disk)."""
        return await self.retry_now()


def _ignore(file: OpenFile, info: ObjectInfo) -> None:
    """The default ``on_stored``: nobody to tell."""


#: Attributes of an adopted file, never shown or stored: its record says what to store.
_NO_ATTRS = PosixAttrs(mode=0o100644, uid=0, gid=0, mtime_ns=0)
