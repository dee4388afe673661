"""Spool files: the bytes of files written through the mount, on local disk until stored.

Layout (DESIGN §5)::

    <cache dir>/<bucket>@<server id>/        one folder per bucket and server
        <instance>/                           one per running mount (pid + random)
            lock                              flock()ed while the mount runs
            owner.json                        {"mountpoint": ..., "pid": ...} for `osfs umount`
            <n>.data                          a spool file
            <n>.meta                          its record while dirty (osfs.core.spool_record)

Rules:
1. Nothing written is lost to a crash: a spool file gets its record (the object name and
   metadata to store it as) when it turns dirty, and loses it only once the upload succeeded.
2. An instance folder whose lock is free belongs to a mount that is gone (a crash, a kill, an
   unmount that could not upload everything). The next mount of the same bucket *adopts* its
   dirty files (moves them into its own folder) and removes the rest: :meth:`SpoolDir.adopt`.
3. Several mounts of one bucket may run at once: each has its own instance folder.
4. All I/O here is local and short (page-cache writes of one FUSE request); it runs on the
   calling thread. Errors are ``OSError`` with the real errno (ENOSPC on a full disk), which the
   adapter answers as is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from osfs.core.meta import ObjectMeta
from osfs.core.spool_record import decode_record, encode_record

log = logging.getLogger(__name__)

LOCK_NAME = "lock"
OWNER_NAME = "owner.json"
DATA_SUFFIX = ".data"
RECORD_SUFFIX = ".meta"


def server_id(servers: Sequence[str]) -> str:
    """A short stable id of where a bucket lives, so two servers' buckets never share a spool."""
    joined = "\n".join(sorted(servers))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:12]


def bucket_folder(cache_dir: Path, bucket: str, servers: Sequence[str]) -> Path:
    """The folder holding every instance folder of ``bucket`` on ``servers``."""
    return cache_dir / f"{bucket}@{server_id(servers)}"


class SpoolFile:
    """One spool file: an open descriptor, its size, and its dirty record.

    Attributes:
        path: the data file.
        size: its length in bytes (kept here: no ``fstat`` per request).
    """

    def __init__(self, path: Path, fd: int, size: int = 0) -> None:
        self.path = path
        self._fd = fd
        self.size = size
        self._record = path.with_suffix(RECORD_SUFFIX)
        self._closed = False

    @property
    def record_path(self) -> Path:
        """Where the dirty record lives."""
        return self._record

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``."""
        return os.pread(self._fd, size, offset)

    def pwrite(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (all of it); returns its length."""
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)
        self.size = max(self.size, offset + len(view))
        return len(view)

    def truncate(self, size: int) -> None:
        """Cut or extend (with zeros) to ``size`` bytes."""
        os.ftruncate(self._fd, size)
        self.size = size

    def _reopen(self) -> None:
        """Open :attr:`path` again, after another data file was moved onto it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        os.close(self._fd)
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def mark_dirty(self, meta: ObjectMeta) -> None:
        """Write (or rewrite) the record: the file is to be stored as ``meta`` (rule 1).

        Written to a temporary name and renamed, so a crash of osfs leaves the old record or
        the new one, never half of one. Not fsynced: the data file is not either, and what a
        power cut takes is the local disk's business, as for any file not yet fsynced.
        """
        temporary = self._record.with_suffix(".meta-new")
        temporary.write_bytes(encode_record(meta))
        os.replace(temporary, self._record)

    def mark_clean(self) -> None:
        """Drop the record: the file's content is stored."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._record)

    def remove(self) -> None:
        """Close and delete the data and the record."""
        if self._closed:
            return
        self._closed = True
        os.close(self._fd)
        for path in (self.path, self._record):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


@dataclass(frozen=True, slots=True)
class Adopted:
    """A dirty spool file left by a mount that is gone, now owned by this one."""

    meta: ObjectMeta
    spool: SpoolFile


class SpoolDir:
    """This mount's instance folder (see the module layout and rules)."""

    def __init__(self, folder: Path, lock_fd: int) -> None:
        self.folder = folder
        self._lock_fd = lock_fd
        self._numbers = itertools.count(1)

    @classmethod
    def open(cls, bucket_dir: Path, *, mountpoint: str) -> SpoolDir:
        """Make and lock a new instance folder under ``bucket_dir``.

        Raises:
            OSError: the cache folder cannot be created or written.
        """
        bucket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder = bucket_dir / f"{os.getpid()}-{secrets.token_hex(4)}"
        folder.mkdir(mode=0o700)
        lock_fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        owner = {"mountpoint": mountpoint, "pid": os.getpid()}
        (folder / OWNER_NAME).write_text(json.dumps(owner))
        return cls(folder, lock_fd)

    def create(self) -> SpoolFile:
        """A new, empty spool file."""
        while True:
            path = self.folder / f"{next(self._numbers)}{DATA_SUFFIX}"
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue  # an adopted file took this number
            return SpoolFile(path, fd)

    def adopt(self) -> list[Adopted]:
        """Take over the dirty files of mounts of this bucket that are gone (rule 2).

        Records that cannot be read are moved aside (``*.meta-unreadable``) with a log line,
        their data kept, never uploaded under a guessed name.
        """
        adopted: list[Adopted] = []
        for sibling in sorted(self.folder.parent.iterdir()):
            if sibling == self.folder or not sibling.is_dir():
                continue
            with _lock_of_gone_mount(sibling) as gone:
                if gone:
                    adopted.extend(self._adopt_from(sibling))
        return adopted

    def _adopt_from(self, sibling: Path) -> Iterator[Adopted]:
        for record in sorted(sibling.glob(f"*{RECORD_SUFFIX}")):
            data = record.with_suffix(DATA_SUFFIX)
            try:
                meta = decode_record(record.read_bytes())
            except (OSError, ValueError) as exc:
                log.error(
                    "spool record %s is unreadable (%s): kept aside, not uploaded", record, exc
                )
                with contextlib.suppress(OSError):
                    record.rename(record.with_suffix(".meta-unreadable"))
                continue
            if not data.exists():
                log.error("spool record %s has no data file: dropped", record)
                record.unlink()
                continue
            spool = self.create()  # a free number in this folder
            os.replace(data, spool.path)
            os.replace(record, spool.record_path)
            spool._reopen()  # its descriptor is still the empty file the move replaced
            log.info("adopted dirty spool file for %r from %s", meta.name, sibling.name)
            yield Adopted(meta, spool)
        if any(sibling.glob("*.meta-unreadable")):
            return  # keep the folder: someone has to look at those
        shutil.rmtree(sibling, ignore_errors=True)

    def dirty_records(self) -> list[Path]:
        """The records of this instance's dirty files (for diagnostics)."""
        return sorted(self.folder.glob(f"*{RECORD_SUFFIX}"))

    def close(self) -> None:
        """Release the lock; the folder goes unless dirty files remain (rule 2)."""
        if any(self.folder.glob(f"*{RECORD_SUFFIX}")):
            log.warning("dirty spool files remain in %s: the next mount uploads them", self.folder)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
        os.close(self._lock_fd)


@contextlib.contextmanager
def _lock_of_gone_mount(folder: Path) -> Iterator[bool]:
    """Hold ``folder``'s lock if its mount is gone; yields whether it is."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True  # never fully created: nothing can own it
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            yield False
            return
        yield True
    finally:
        os.close(fd)


def dirty_names(cache_dir: Path, mountpoint: str) -> list[str] | None:
    """The object names the running mount at ``mountpoint`` has not stored yet (``osfs
    umount``); None when no running mount under ``cache_dir`` has that mountpoint."""
    for owner_file in sorted(cache_dir.glob(f"*/*/{OWNER_NAME}")):
        folder = owner_file.parent
        try:
            owner = json.loads(owner_file.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(owner, dict) or owner.get("mountpoint") != mountpoint:
            continue
        with _lock_of_gone_mount(folder) as gone:
            if gone:
                continue
        names = []
        for record in sorted(folder.glob(f"*{RECORD_SUFFIX}")):
            try:
                names.append(decode_record(record.read_bytes()).name)
            except (OSError, ValueError):
                names.append(f"<unreadable record {record.name}>")
        return names
    return None
