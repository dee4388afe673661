"""Faults on the write path of a mount: what ``close`` answers, and that nothing written is lost.

Each test is one failure of DESIGN §5's write path on a real nats-server and a real ``osfs mount``
(the CLI in a subprocess): the server dies during an upload, osfs dies with a file not stored,
unmount with the server away, a full spool disk, a full bucket, a sealed bucket, readers
racing an upload; and that only a writer's close stores (a reader's close must not wait for,
nor fail with, an upload). Other clients look through nats-py's own Object Store client.

Rules (beside the conftest's and ``tests.support.mounting``'s):
1. A test that stops, kills or restarts a server has its own (``fresh_nats_server``); the others
   use the shared server, each in its own bucket.
2. Every mount gets its own ``--cache-dir`` under ``tmp_path``, so its spool files and their
   dirty records (``<cache>/<bucket>@<id>/<instance>/<n>.data`` and ``<n>.meta``) can be read.
3. Mounts whose server goes away run with ``--timeout 1``: an upload to a server that is gone
   fails after a few seconds (no ack for 1 s, 1 s for queued chunks to land, 1 s for the purge
   that undoes it; twice when a streamed upload failed first and close tries one whole put),
   which keeps each test well under 30 s. Every wait still has its own deadline.
4. Every WARNING/ERROR line a fault makes the mount log is declared with ``expect_log``, with
   the reason beside it; any other one fails the test.
5. Before a mount is left, its spool must have let go of the files it stored. The ``release``
   that follows ``close`` is asynchronous, and osfs unlinks the spool file inside it (tens of
   ms for a big file): unmounting meanwhile makes pyfuse3 log an ERROR about its reply to a
   request the kernel dropped. A big file's data file vanishes before that unlink returns, so
   its test reads the file back through the mount first, which outlasts the release.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
import pytest

from osfs.core.config import ObjectStoreConfig
from osfs.core.digest import digest_of
from osfs.core.meta import ObjectMeta
from osfs.core.spool_record import decode_record
from osfs.core.subjects import chunk_subject
from osfs.store import ConnectOptions, open_connection
from tests.support import natspy_peer as peer
from tests.support.aio import run
from tests.support.data import payload
from tests.support.mounting import (
    EXIT_TIMEOUT,
    Background,
    Failure,
    MiB,
    MountedProcess,
    big_payload,
    clean_env,
    io_errno,
    mounted,
    read_file,
    require_fuse,
    run_io,
    write_file,
)
from tests.support.nats_server import NatsServer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fuse, pytest.mark.interop]

T = TypeVar("T")

#: ``--timeout`` of the mounts whose server goes away (rule 3).
QUICK_TIMEOUT = 1.0
#: Seconds a ``close`` whose upload fails may take (a few server timeouts, with room to spare).
FAILING_CLOSE = 20.0
#: Seconds a big file may take to be written and stored through the mount.
BIG_IO = 30.0
#: Seconds the mount may take to store a file by itself once the server is back.
RECOVERY = 20.0
#: Seconds one CLI run may take.
CLI_TIMEOUT = 60.0
#: ``osfs umount``'s exit status when it refuses (a MountError).
EXIT_MOUNT = 9
#: Seconds the store's sweeps of abandoned puts may take to purge late chunks (SWEEP_DELAYS:
#: two purges that reach the server, the first retried until the server is back).
SWEEPS = 45.0
#: ``osfs fsck --json``'s orphans must be older than this to be purged by ``--repair``.
NO_GRACE = "0"

# Log lines the faults make the mount write (rule 4). ----------------------------------------
#: A failed put is undone by purging its chunk subject; with the server away the purge gets no
#: answer either. The message says chunks may be left behind (fsck's business, test 1).
PURGE_FAILED = (
    r"WARNING osfs\.store\.bucket: could not purge \$O\.\S+: .*\(orphan chunks left behind\)"
)
#: The first failure of a file's upload (later retries stay quiet until one succeeds).
STORE_FAILED = r"WARNING osfs\.fs\.files: could not store {name} \(kept, retrying\): "
#: ... and a sealed bucket's refusal, which is for good (no retries).
STORE_SEALED = r"ERROR osfs\.fs\.files: could not store {name}, kept in the spool: .*sealed"
#: The adapter logs every EIO it answers at WARNING (other errnos at DEBUG).
FLUSH_EIO = r"WARNING osfs\.fs\.errno_map: flush: .* \(answered EIO\)$"
#: Unmount could not store everything: it names what stays on disk...
LEFT_AT_UNMOUNT = r"ERROR osfs\.fs\.session: \d+ file\(s\) could not be stored and stay in "
#: ...and the spool says its folder is kept for the next mount.
SPOOL_KEPT = r"WARNING osfs\.fs\.spool: dirty spool files remain in "


# Helpers ----------------------------------------------------------------------------------------


def mount_args(cache_dir: Path, timeout: float | None = None) -> tuple[str, ...]:
    """``--cache-dir`` (rule 2), and ``--timeout`` when given (rule 3)."""
    args = ("--cache-dir", str(cache_dir))
    return args if timeout is None else (*args, "--timeout", f"{timeout:g}")


def osfs(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m osfs ARGV`` to completion in a clean environment."""
    return subprocess.run(
        [sys.executable, "-m", "osfs", *argv],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=CLI_TIMEOUT,
        check=False,
    )


# The spool on disk (rule 2) ---------------------------------------------------------------------


def records(cache_dir: Path, bucket: str) -> list[str]:
    """The object names of the dirty records of ``bucket``'s spool files, sorted."""
    return sorted(
        decode_record(path.read_bytes()).name for path in cache_dir.glob(f"{bucket}@*/*/*.meta")
    )


def spool_files(cache_dir: Path, bucket: str) -> list[Path]:
    """The spool data files of ``bucket`` (every instance folder)."""
    return sorted(cache_dir.glob(f"{bucket}@*/*/*.data"))


def instance_folders(cache_dir: Path, bucket: str) -> list[Path]:
    """The instance folders (one per mount, running or gone) of ``bucket``."""
    return sorted(path for path in cache_dir.glob(f"{bucket}@*/*") if path.is_dir())


def wait_spool_released(cache_dir: Path, bucket: str) -> None:
    """Wait until the mount has let go of every spool file of ``bucket`` (rule 5)."""
    wait_until(
        lambda: not spool_files(cache_dir, bucket),
        10.0,
        0.02,
        lambda: f"the spool to let go of {spool_files(cache_dir, bucket)}",
    )


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a local file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


# The server and other clients -------------------------------------------------------------------


async def _create_bucket(url: str, bucket: str, objects: dict[str, bytes], max_bytes: int) -> None:
    async with asyncio.timeout(30):
        connection = await open_connection(ConnectOptions(servers=(url,)), reconnect=False)
        try:
            store = await connection.manager.create_object_store(
                ObjectStoreConfig(bucket=bucket, max_bytes=max_bytes)
            )
            for name, data in objects.items():
                await store.put(ObjectMeta(name=name), data)
            await store.aclose()
        finally:
            await connection.close()


def create_bucket(
    url: str, bucket: str, objects: dict[str, bytes] | None = None, *, max_bytes: int = -1
) -> None:
    """Create ``bucket`` (with ``max_bytes``) holding ``objects``, with osfs's client."""
    run(_create_bucket(url, bucket, objects or {}, max_bytes))


async def _seal(url: str, bucket: str) -> None:
    async with asyncio.timeout(30):
        connection = await open_connection(ConnectOptions(servers=(url,)), reconnect=False)
        try:
            store = await connection.manager.object_store(bucket)
            await store.seal()
            await store.aclose()
        finally:
            await connection.close()


def stream_bytes(server: NatsServer) -> int:
    """Bytes JetStream stores on ``server`` (every stream), from the monitoring port."""
    value: int = server.monitor("jsz")["bytes"]
    return value


class NatsPy:
    """nats-py's Object Store client on one asyncio loop of its own, connected on first use."""

    def __init__(self, url: str, bucket: str) -> None:
        self.url = url
        self.bucket = bucket
        self._runner = asyncio.Runner()
        self._nc: peer.NATS | None = None
        self._js: peer.JetStreamContext | None = None
        self._store: peer.ObjectStore | None = None

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await coro

        return self._runner.run(bounded())

    async def _open(self) -> tuple[peer.JetStreamContext, peer.ObjectStore]:
        if self._js is None or self._store is None:
            nc = await nats.connect(servers=[self.url], connect_timeout=2, max_reconnect_attempts=0)
            try:
                js = nc.jetstream()
                store = await peer.open_bucket(js, self.bucket)
            except BaseException:
                await nc.close()
                raise
            self._nc, self._js, self._store = nc, js, store
        return self._js, self._store

    def info(self, name: str) -> peer.api.ObjectInfo | None:
        """``get_info(name)``; None when there is no such object (or it is deleted)."""

        async def get_info() -> peer.api.ObjectInfo | None:
            _, store = await self._open()
            try:
                return await peer.get_info(store, name)
            except nats.js.errors.ObjectNotFoundError:
                return None

        return self._call(get_info())

    def get(self, name: str) -> bytes:
        """``get(name)``: the whole content (nats-py checks the digest)."""

        async def get() -> bytes:
            _, store = await self._open()
            data, _ = await peer.get(store, name)
            return data

        return self._call(get(), timeout=60.0)

    def metadata(self, name: str) -> dict[str, str]:
        """The ``metadata`` of the stored meta document (nats-py's API drops it)."""

        async def metadata() -> dict[str, str]:
            js, _ = await self._open()
            document = (await peer.raw_meta(js, self.bucket, name)).doc
            found: dict[str, str] = document.get("metadata") or {}
            return found

        return self._call(metadata())

    def chunk_counts(self) -> dict[str, int]:
        """Messages per chunk subject of the bucket."""

        async def counts() -> dict[str, int]:
            js, _ = await self._open()
            return await peer.subject_counts(js, self.bucket, f"$O.{self.bucket}.C.>")

        return self._call(counts())

    def close(self) -> None:
        """Close the connection and the loop."""

        async def close() -> None:
            if self._nc is not None:
                await self._nc.close()

        try:
            self._call(close())
        finally:
            self._runner.close()


@contextmanager
def natspy(url: str, bucket: str) -> Iterator[NatsPy]:
    """A :class:`NatsPy` on ``bucket``, closed on exit."""
    client = NatsPy(url, bucket)
    try:
        yield client
    finally:
        client.close()


#: What a nats-py call may raise while a restarted server is still coming up.
NOT_YET = (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError)


def expect_upload_failures(mount: MountedProcess, name: str) -> None:
    """Declare what a mount logs when uploads of ``name`` fail because the server is away."""
    mount.expect_log(PURGE_FAILED)  # the undo of each failed attempt got no answer either
    mount.expect_log(STORE_FAILED.format(name=_quoted(name)))  # kept, retried in the background
    mount.expect_log(FLUSH_EIO)  # close answered EIO


def quoted_names(text: str) -> set[str]:
    """The names quoted as ``'name'`` in a message."""
    return set(re.findall(r"'([^']*)'", text))


def _quoted(name: str) -> str:
    """``name`` as the log shows it (``repr``), escaped for a regex."""
    return "'" + name.replace(".", r"\.") + "'"


# 1. The server dies during the upload of a big file ---------------------------------------------


def test_server_killed_during_an_upload_then_back(
    fresh_nats_server: NatsServer, tmp_path: Path
) -> None:
    """close() is EIO; nothing but the old version is ever visible; the bytes wait in the spool;
    once the server is back the mount stores the file by itself and serves it.

    What a server crash leaves in the stream: the purge that undoes each failed attempt gets no
    answer while the server is away. The mount's NATS client (nats-py) keeps what it could not
    send, chunks and purge alike, and sends it in order when it reconnects; but the server
    handles API requests (the purge) apart from stream publishes (the chunks queued before it),
    so some chunks of the abandoned attempts may land after their purge (in 3 of 5 runs here,
    3 to 25 chunks). The store sweeps an abandoned put's chunk subject again over the next
    minute (``SWEEP_DELAYS``), so they go without anyone's help: the stream ends up holding
    the stored version's chunks alone, and fsck finds nothing.
    """
    server = fresh_nats_server
    bucket = "killed"
    old = payload(300_000, seed=2)
    create_bucket(server.url, bucket, {"big.bin": old})
    data = big_payload(64 * MiB, seed=1)
    cache = tmp_path / "cache"
    with natspy(server.url, bucket) as before:
        old_info = before.info("big.bin")
    assert old_info is not None
    versions = {
        (old_info.digest, old_info.size): "the old version",
        (digest_of(data), len(data)): "the new version",
    }
    with mounted(server.url, bucket, tmp_path / "mnt", *mount_args(cache, QUICK_TIMEOUT)) as mount:
        expect_upload_failures(mount, "big.bin")
        path = mount.path / "big.bin"
        baseline = stream_bytes(server)
        closing = Background(lambda: write_file(path, data), "writing and closing big.bin")
        wait_until(
            lambda: stream_bytes(server) > baseline + 8 * MiB or closing.done(),
            BIG_IO,
            0.005,
            "8 MiB of big.bin's chunks on the server",
        )
        assert not closing.done(), "big.bin was stored before the server could be killed"
        server.kill()

        assert closing.result(FAILING_CLOSE) == Failure("close", errno.EIO)
        assert records(cache, bucket) == ["big.bin"]
        (spooled,) = spool_files(cache, bucket)
        assert sha256_of(spooled) == hashlib.sha256(data).hexdigest()  # every byte kept

        server.restart()
        with natspy(server.url, bucket) as client:

            def stored() -> peer.api.ObjectInfo | None:
                info = client.info("big.bin")
                assert info is not None, "nats-py found no big.bin at all"
                seen = (info.digest, info.size)
                assert seen in versions, f"nats-py saw a version that is neither: {info}"
                return info if versions[seen] == "the new version" else None

            info = wait_until(
                stored, RECOVERY, 0.05, "the retry to store big.bin by itself", ignore=NOT_YET
            )
            new_chunks = chunk_subject(bucket, info.nuid)
            assert client.chunk_counts()[new_chunks] == info.chunks == 512  # whole
            # The old version's chunks are purged by the put; the abandoned attempts' late
            # chunks by the sweeps.
            wait_until(
                lambda: client.chunk_counts() == {new_chunks: 512},
                SWEEPS,
                0.2,
                "only the stored version's chunks in the stream",
            )
            check = osfs("--server", server.url, "--json", "fsck", bucket, "--grace", NO_GRACE)
            report = json.loads(check.stdout)
            assert check.returncode == 0, report
            assert report["orphans"] == report["recent_orphans"] == []

        # The mount recovered by itself: the record is gone, listing and reading work.
        assert records(cache, bucket) == []
        assert run_io(lambda: os.listdir(mount.path)) == ["big.bin"]
        assert run_io(lambda: os.stat(path)).st_size == len(data)
        assert hashlib.sha256(read_file(path, BIG_IO)).digest() == hashlib.sha256(data).digest()
        wait_spool_released(cache, bucket)


# 2. osfs dies with a file not stored ------------------------------------------------------------


def test_a_killed_mount_leaves_its_dirty_file_to_the_next_mount(
    fresh_nats_server: NatsServer, tmp_path: Path
) -> None:
    """The server is away, so close() fails and the file stays dirty; osfs is then SIGKILLed.
    The next mount of the bucket with the same --cache-dir adopts the record, stores the file
    (bytes and metadata, a chmod made while dirty included) before it answers, and removes the
    dead mount's folder."""
    server = fresh_nats_server
    bucket = "crashed"
    create_bucket(server.url, bucket)
    data = payload(900_000, seed=3)  # 7 chunks, below the streaming step: one put at close
    cache = tmp_path / "cache"
    mnt = tmp_path / "mnt"
    first_log = tmp_path / "first.log"
    args = mount_args(cache, QUICK_TIMEOUT)
    with mounted(
        server.url, bucket, mnt, *args, log_path=first_log, expect_exit=-signal.SIGKILL
    ) as first:
        expect_upload_failures(first, "doc.txt")
        server.stop()
        failure = run_io(lambda: write_file(mnt / "doc.txt", data), FAILING_CLOSE)
        assert failure == Failure("close", errno.EIO)
        # A change of attributes of a dirty file is kept in its record, for its upload.
        run_io(lambda: os.chmod(mnt / "doc.txt", 0o600))
        assert records(cache, bucket) == ["doc.txt"]
        (dead,) = instance_folders(cache, bucket)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(EXIT_TIMEOUT)
        subprocess.run([require_fuse(), "-u", "-z", str(mnt)], check=True, timeout=10)
    assert records(cache, bucket) == ["doc.txt"]  # the crash took nothing

    server.restart()
    with mounted(server.url, bucket, mnt, *args, log_path=tmp_path / "second.log") as second:
        # Stored before the mount answered: no waiting here.
        with natspy(server.url, bucket) as client:
            info = client.info("doc.txt")
            assert info is not None
            assert (info.digest, info.size) == (digest_of(data), len(data))
            assert client.get("doc.txt") == data
            metadata = client.metadata("doc.txt")
        assert metadata["osfs.mode"] == "100600"
        assert (metadata["osfs.uid"], metadata["osfs.gid"]) == (str(os.getuid()), str(os.getgid()))
        second.wait_for_log(r"INFO osfs\.fs\.spool: adopted dirty spool file for 'doc\.txt'")
        assert not dead.exists()
        assert len(instance_folders(cache, bucket)) == 1
        assert records(cache, bucket) == []
        assert run_io(lambda: os.listdir(mnt)) == ["doc.txt"]
        assert stat.S_IMODE(run_io(lambda: os.stat(mnt / "doc.txt")).st_mode) == 0o600
        assert read_file(mnt / "doc.txt") == data
        wait_spool_released(cache, bucket)


# 3. Unmount with files not stored and the server away -------------------------------------------


def test_umount_refuses_while_files_are_not_stored_and_force_keeps_them(
    fresh_nats_server: NatsServer, tmp_path: Path
) -> None:
    """``osfs umount --wait 1`` refuses with one line naming the files; ``--force`` unmounts;
    the process tries once more, logs what it could not store and exits 0; the records stay;
    the next mount (server back) stores the files."""
    server = fresh_nats_server
    bucket = "away"
    create_bucket(server.url, bucket)
    files = {"one.txt": payload(1000, seed=4), "two.txt": payload(200_000, seed=5)}
    cache = tmp_path / "cache"
    mnt = tmp_path / "mnt"
    args = mount_args(cache, QUICK_TIMEOUT)
    with mounted(server.url, bucket, mnt, *args, log_path=tmp_path / "first.log") as mount:
        for name in files:
            expect_upload_failures(mount, name)
        mount.expect_log(LEFT_AT_UNMOUNT)  # the point of the test: unmount with files left
        mount.expect_log(SPOOL_KEPT)
        server.stop()
        closing = [
            Background(functools.partial(write_file, mnt / name, data), name)
            for name, data in files.items()
        ]
        failures = [close.result(FAILING_CLOSE) for close in closing]
        assert failures == [Failure("close", errno.EIO)] * 2
        # A reader of a file not stored neither waits for nor fails with its upload.
        started = time.monotonic()
        assert read_file(mnt / "two.txt") == files["two.txt"]
        assert time.monotonic() - started < 2 * QUICK_TIMEOUT  # a failing upload takes 3

        started = time.monotonic()
        refused = osfs("umount", str(mnt), "--wait", "1", "--cache-dir", str(cache))
        assert time.monotonic() - started >= 1.0  # it waited for the files first
        assert refused.returncode == EXIT_MOUNT, refused
        (line,) = refused.stderr.splitlines()
        assert line.startswith(f"osfs: error: {mnt} has 2 file(s) not yet stored: "), line
        assert quoted_names(line) == set(files), line
        assert "--force" in line, line
        assert os.path.ismount(mnt)
        assert sorted(run_io(lambda: os.listdir(mnt))) == sorted(files)  # still serving

        forced = osfs("umount", str(mnt), "--force", "--cache-dir", str(cache))
        assert forced.returncode == 0, forced
        assert not os.path.ismount(mnt)
        assert mount.process.wait(EXIT_TIMEOUT) == 0
    log = mount.log_text()
    (left,) = [line for line in log.splitlines() if "could not be stored and stay in" in line]
    assert " 2 file(s) " in left, left
    assert quoted_names(left.split(" for the next mount: ")[1]) == set(files), left
    assert records(cache, bucket) == sorted(files)

    server.restart()
    with mounted(server.url, bucket, mnt, *args, log_path=tmp_path / "second.log"):
        with natspy(server.url, bucket) as client:
            for name, data in files.items():
                info = client.info(name)
                assert info is not None, name
                assert (info.digest, info.size) == (digest_of(data), len(data)), name
        assert records(cache, bucket) == []
        assert sorted(run_io(lambda: os.listdir(mnt))) == sorted(files)
        assert read_file(mnt / "two.txt") == files["two.txt"]
        wait_spool_released(cache, bucket)


# 4. The spool disk is full ----------------------------------------------------------------------


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (the tests run as root), unmounted on exit
    (detached if something still holds it)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        check=True,
        timeout=10,
    )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False, timeout=10).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False, timeout=10)


def free_bytes(path: Path) -> int:
    """Bytes available on the filesystem of ``path``."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def test_a_full_spool_disk_is_enospc_and_the_mount_stays_up(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """A 4 MiB tmpfs as --cache-dir, an 8 MiB file written: ENOSPC reaches the writer.

    With the writeback cache the kernel takes the writes into its page cache and sends them
    to osfs later; the spool write that does not fit is answered ENOSPC, the kernel records
    it, and close() returns it, before it even asks osfs to flush (so no upload). The mount
    stays up; removing the file frees the disk and purges what was streamed of it; a small
    file is then written and stored.
    """
    create_bucket(nats_url, bucket_name)
    cache = tmp_path / "cache"
    with (
        small_tmpfs(cache, "4m"),
        mounted(nats_url, bucket_name, tmp_path / "mnt", *mount_args(cache)) as mount,
    ):
        # The adapter logs each local I/O error it answers: the spool writes that do not
        # fit, and the size change that comes with them.
        mount.expect_log(
            r"WARNING osfs\.fs\.errno_map: (write|setattr): \[Errno 28\] No space left on "
            r"device \(answered ENOSPC\)$"
        )
        path = mount.path / "fill.bin"
        failure = run_io(lambda: write_file(path, payload(8 * MiB, seed=6)), 30)
        assert failure is not None
        assert failure.errno == errno.ENOSPC, failure
        assert failure.call in ("write", "close")  # the kernel chooses when to write back
        assert free_bytes(cache) < 64 * 1024  # the spool did fill the disk

        assert mount.mounted
        assert run_io(lambda: os.listdir(mount.path)) == ["fill.bin"]
        with natspy(nats_url, bucket_name) as client:
            assert client.info("fill.bin") is None

            run_io(lambda: os.unlink(path))
            assert records(cache, bucket_name) == []
            assert spool_files(cache, bucket_name) == []
            assert free_bytes(cache) > 3 * MiB
            assert client.chunk_counts() == {}  # what was streamed of it is purged

            small = payload(200_000, seed=7)
            assert run_io(lambda: write_file(mount.path / "small.bin", small)) is None
            info = client.info("small.bin")
            assert info is not None
            assert info.digest == digest_of(small)
        assert read_file(mount.path / "small.bin") == small
        wait_spool_released(cache, bucket_name)


# 5. The bucket is full --------------------------------------------------------------------------


def test_a_full_bucket_is_enospc_and_an_unlink_ends_the_retries(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """A bucket of max_bytes 1 MiB, a 2 MiB file: close() is ENOSPC (BucketFullError), no object
    and no chunk is visible, the spool keeps the file dirty (retried in the background); after
    unlink nothing is left to store: the record goes, ``osfs umount --wait 0`` does not wait,
    and unmount logs nothing."""
    create_bucket(nats_url, bucket_name, max_bytes=1 * MiB)
    cache = tmp_path / "cache"
    with mounted(nats_url, bucket_name, tmp_path / "mnt", *mount_args(cache)) as mount:
        # ENOSPC is answered at DEBUG; the first failure of the upload is a WARNING.
        mount.expect_log(STORE_FAILED.format(name=_quoted("large.bin")) + "bucket is full")
        path = mount.path / "large.bin"
        data = payload(2 * MiB, seed=8)
        failure = run_io(lambda: write_file(path, data), FAILING_CLOSE)
        assert failure == Failure("close", errno.ENOSPC)
        assert records(cache, bucket_name) == ["large.bin"]
        (spooled,) = spool_files(cache, bucket_name)
        assert spooled.stat().st_size == len(data)
        with natspy(nats_url, bucket_name) as client:
            assert client.info("large.bin") is None
            # Still in the mount, read from the spool (a reader's close stores nothing).
            assert read_file(path) == data

            run_io(lambda: os.unlink(path))
            assert records(cache, bucket_name) == []
            assert spool_files(cache, bucket_name) == []
            # The unlink waited for any retry in progress, whose chunks were purged.
            assert client.info("large.bin") is None
            assert client.chunk_counts() == {}
        gone = osfs("umount", str(mount.path), "--wait", "0", "--cache-dir", str(cache))
        assert gone.returncode == 0, gone
        assert mount.process.wait(EXIT_TIMEOUT) == 0
    assert "could not be stored" not in mount.log_text()


# 6. The bucket is sealed while mounted ----------------------------------------------------------


def test_a_bucket_sealed_while_mounted(nats_url: str, bucket_name: str, tmp_path: Path) -> None:
    """The mount learns of the seal from the first put it refuses (or from ``statfs``, or a new
    mount). So a file created after the seal is accepted into the spool and its close() is
    EROFS; it is kept (listed, readable, its record on disk, never retried: a seal is for
    good), unmount names it in an ERROR line and leaves it in the cache dir. From that refusal
    on every change is EROFS at once, and ``statfs`` shows no free space."""
    create_bucket(nats_url, bucket_name, {"hello.txt": b"hello\n"})
    cache = tmp_path / "cache"
    with mounted(nats_url, bucket_name, tmp_path / "mnt", *mount_args(cache)) as mount:
        mount.expect_log(STORE_SEALED.format(name=_quoted("new.txt")))
        mount.expect_log(LEFT_AT_UNMOUNT)  # a sealed bucket can never store it
        mount.expect_log(SPOOL_KEPT)
        run(_seal(nats_url, bucket_name))
        path = mount.path / "new.txt"
        data = b"written after the seal\n"
        # Created and written (into the spool): only the upload at close fails.
        failure = run_io(lambda: write_file(path, data), FAILING_CLOSE)
        assert failure == Failure("close", errno.EROFS)
        assert records(cache, bucket_name) == ["new.txt"]
        with natspy(nats_url, bucket_name) as client:
            assert client.info("new.txt") is None
        assert sorted(run_io(lambda: os.listdir(mount.path))) == ["hello.txt", "new.txt"]
        assert read_file(path) == data  # nothing lost, and a reader's close stores nothing

        # The refused put told the mount: no statfs needed before every change is EROFS.
        assert run_io(lambda: write_file(mount.path / "newer.txt", data)) == Failure(
            "open", errno.EROFS
        )
        assert io_errno(lambda: os.open(mount.path / "hello.txt", os.O_WRONLY)) == errno.EROFS
        assert io_errno(lambda: os.mkdir(mount.path / "dir")) == errno.EROFS
        assert io_errno(lambda: os.unlink(mount.path / "hello.txt")) == errno.EROFS
        assert read_file(mount.path / "hello.txt") == b"hello\n"
        wait_until(
            lambda: run_io(lambda: os.statvfs(mount.path)).f_bavail == 0,
            5.0,
            0.1,
            "statfs to show the sealed bucket full",
        )
        assert mount.log_text().count("could not store 'new.txt'") == 1  # never retried
    (left,) = [line for line in mount.log_text().splitlines() if "could not be stored" in line]
    assert " 1 file(s) " in left, left
    assert quoted_names(left.split(" for the next mount: ")[1]) == {"new.txt"}, left
    assert records(cache, bucket_name) == ["new.txt"]


# 7. Never half an object ------------------------------------------------------------------------


def test_no_half_written_object_is_ever_visible(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """While a 96 MiB file replaces an object through the mount, nats-py polls ``get_info``:
    it finds the old version, or the new one with its final digest and every chunk stored,
    never anything else; and it does look while the new chunks are landing."""
    create_bucket(nats_url, bucket_name, {"big.bin": payload(500_000, seed=9)})
    data = big_payload(96 * MiB, seed=10)
    final = (digest_of(data), len(data))
    cache = tmp_path / "cache"
    with mounted(nats_url, bucket_name, tmp_path / "mnt", *mount_args(cache)) as mount:
        with natspy(nats_url, bucket_name) as client:
            old_info = client.info("big.bin")
            assert old_info is not None
            old = (old_info.digest, old_info.size)
            old_chunks = chunk_subject(bucket_name, old_info.nuid)
            closing = Background(
                lambda: write_file(mount.path / "big.bin", data), "writing big.bin"
            )
            polls = while_landing = 0
            while not closing.done():
                info = client.info("big.bin")
                counts = client.chunk_counts()
                polls += 1
                assert info is not None, "big.bin vanished during its overwrite"
                seen = (info.digest, info.size)
                if seen == old:
                    if any(n for subject, n in counts.items() if subject != old_chunks):
                        while_landing += 1
                    continue
                assert seen == final, f"nats-py saw a version that is neither: {info}"
                assert counts.get(chunk_subject(bucket_name, info.nuid)) == info.chunks
            assert closing.result(BIG_IO) is None
            info = client.info("big.bin")
            assert info is not None
            assert (info.digest, info.size) == final
            assert client.chunk_counts() == {chunk_subject(bucket_name, info.nuid): 768}
        assert while_landing >= 3, f"only {while_landing} of {polls} polls during the upload"
        # The mount serves the new version. (Reading it also outlasts the release of the
        # writer's handle, which unlinks 96 MiB of spool: rule 5.)
        digest = hashlib.sha256(read_file(mount.path / "big.bin", BIG_IO)).digest()
        assert digest == hashlib.sha256(data).digest()
        wait_spool_released(cache, bucket_name)


# 8. Who stores at close -------------------------------------------------------------------------


def test_only_writers_store_at_close_and_truncate_by_path_stores_at_once(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """A truncate by path is stored at once unless a descriptor open for writing will store it
    at its close; a descriptor open for reading does not count (its close stores nothing)."""
    create_bucket(nats_url, bucket_name, {"doc.txt": payload(1000, seed=11)})
    cache = tmp_path / "cache"
    with (
        mounted(nats_url, bucket_name, tmp_path / "mnt", *mount_args(cache)) as mount,
        natspy(nats_url, bucket_name) as client,
    ):
        path = mount.path / "doc.txt"

        def stored_size() -> int:
            info = client.info("doc.txt")
            assert info is not None
            assert info.size is not None
            return info.size

        reader = run_io(lambda: os.open(path, os.O_RDONLY))
        try:
            run_io(lambda: os.truncate(path, 10))
            assert stored_size() == 10
        finally:
            run_io(lambda: os.close(reader))

        writer = run_io(lambda: os.open(path, os.O_WRONLY))
        try:
            run_io(lambda: os.truncate(path, 5))
            assert stored_size() == 10  # the writer's close stores it
        finally:
            run_io(lambda: os.close(writer))
        assert stored_size() == 5
        assert read_file(path) == payload(1000, seed=11)[:5]
        wait_spool_released(cache, bucket_name)
