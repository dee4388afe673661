"""The mount on a 3-node cluster: an R3 bucket loses its stream leader in the middle of a copy
into the mount, and in the middle of a read from it; once the node is back, every node agrees.

Each test mounts its own R3 bucket of the session's cluster (``nats_cluster``) with the real CLI,
naming all three servers (``--server URL1,URL2,URL3``), and SIGKILLs the node that leads the
bucket's stream ``OBJ_<bucket>``. It runs twice: with the mount connected to the leader (the
kill also cuts the mount's connection: it reconnects to a survivor), and to a follower (the
connection survives; only the leader goes). Where the mount is connected is read from the
nodes' ``/connz``, and the leader is moved there or away by a stepdown naming the node.

What a leader's death does, as measured here (nats-server 2.15, the mount's default
``--timeout 5``): the stream has no leader for some seconds (a raft election, 4 to 9 s and
more); publishes and requests sent to the dead node, or to the stream while it has no
leader, get no answer; and right after the kill the survivors answer Direct Gets with "no
responders" for a moment.

- A copy: the page cache takes the 64 MiB at once and the upload streams behind it. The
  chunks in flight to the dead leader are never acked, so the streamed put fails after the
  5 s ack timeout. Then either close stores the file with one whole put to the new leader and
  returns 0, or there is no leader to take it in time and close returns EIO (either one 10 to
  15 s after the kill), the bytes stay in the spool, and the mount's retry stores the file
  once there is a leader (a second or two later). Both outcomes occur with either connection
  (the election's length decides), so the test accepts both and asserts each precisely:
  after 0 the leader holds exactly the data and the mount no record; after EIO the file is
  kept, nothing but the whole new version ever shows, and the retry stores it. Either way a
  client of the survivors then reads the data back, digest checked, and so does the mount
  (from the store: the page cache is dropped first, and the servers' outgoing bytes prove
  the read reached them).
- A read: the reader is paused 16 MiB into the file, the leader killed, the read resumed.
  Connected to a follower, the mount's next Direct Gets may be answered "no responders" (or,
  once, not at all: a 5 s stall); connected to the leader, the mount reconnects to a survivor
  within milliseconds and a request lost with the old connection fails after the 5 s request
  timeout. Either way the mount tries such a fetch again for up to 15 s (before, about a
  third of the runs got EIO), so the test asserts that the read completes with the exact
  bytes.

Rules (beside the conftest's and ``tests.support.mounting``'s):
1. A test that kills a node restarts it in ``finally`` (the cluster is the session's), then
   checks the bucket on every node (:func:`assert_consistent`): every replica holds the same
   messages (each node's ``/jsz``), a client of each node lists the same objects, and
   ``osfs fsck --verify`` finds nothing damaged or corrupt.
2. The tests' own connections are named :data:`CLIENT_NAME`, so the one named ``osfs`` on a
   node's ``/connz`` is the mount's.
3. Every wait is bounded; the bounds are the mount's timeouts plus an election, with room.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import pytest

from osfs.core import errors
from osfs.core.config import ObjectStoreConfig
from osfs.core.digest import digest_of
from osfs.core.meta import ObjectInfo, ObjectMeta, decode_meta
from osfs.core.subjects import all_chunks_subject, chunk_subject, meta_subject, stream_name
from osfs.store import Connection, ConnectOptions, ObjectStore, open_connection
from osfs.store.jsapi import NotFound
from tests.support.mounting import (
    IO_TIMEOUT,
    Background,
    Failure,
    MiB,
    MountedProcess,
    big_payload,
    clean_env,
    mounted,
    run_io,
    write_file,
)
from tests.support.nats_server import Cluster, NatsServer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fuse, pytest.mark.cluster]

T = TypeVar("T")

#: The file copied in or read: 512 chunks of 128 KiB.
SIZE = 64 * MiB
CHUNKS = 512
#: Bytes of the copy that reach the leader (or of the read that are done) before it is killed.
BEFORE_KILL = 16 * MiB
#: Name of the tests' own connections (rule 2); the mount's is "osfs".
CLIENT_NAME = "osfs-test"
MOUNT_CLIENT = "osfs"
#: Seconds the stream may take to elect a leader (raft: 4 to 9 s), with room.
ELECTION = 20.0
#: Seconds close may take: the 5 s ack timeout, 5 s for the failed put's chunks to settle, the
#: purge that undoes it, and one whole put (which may fail the same way if no leader yet).
CLOSE_DEADLINE = 45.0
#: Seconds the mount's retry may take to store a file whose close failed (backoff 1, 2, 4 s
#: after attempts of up to 15 s each while there is no leader).
RETRY_DEADLINE = 45.0
#: Seconds a read of the whole file may take, a stall of a request timeout or two included.
READ_DEADLINE = 30.0
#: Seconds a restarted node may take to catch up.
RECOVERY = 30.0
#: Seconds one CLI run may take.
CLI_TIMEOUT = 60.0

# Log lines the faults make the mount write. --------------------------------------------------
#: The first failure of big.bin's upload: close failed (or its whole put did), kept, retried.
STORE_FAILED = r"WARNING osfs\.fs\.files: could not store 'big\.bin' \(kept, retrying\): "
#: The adapter logs every EIO it answers at WARNING: the close that failed.
FLUSH_EIO = r"WARNING osfs\.fs\.errno_map: flush: .* \(answered EIO\)$"
#: The purge that undoes a failed put got no answer either (no leader yet): the store sweeps
#: the chunks later.
PURGE_FAILED = (
    r"WARNING osfs\.store\.bucket: could not purge \$O\.\S+: .*\(orphan chunks left behind\)"
)

Role = Literal["leader", "follower"]


# Helpers ----------------------------------------------------------------------------------------


@dataclass
class ReadOutcome:
    """What a :class:`PausedRead` got: the bytes read, and the error that ended it early."""

    data: bytes
    error: OSError | None


class PausedRead:
    """Read a file through one descriptor, 1 MiB at a time, pausing once ``pause_at`` bytes
    are read until :meth:`resume`; the first failed read ends it."""

    def __init__(self, path: Path, pause_at: int) -> None:
        self._path = path
        self._pause_at = pause_at
        self._paused = threading.Event()
        self._resumed = threading.Event()
        self._run = Background(self._read, f"reading {path}")

    def _read(self) -> ReadOutcome:
        got = bytearray()
        fd = os.open(self._path, os.O_RDONLY)
        try:
            while True:
                if len(got) == self._pause_at:
                    self._paused.set()
                    if not self._resumed.wait(ELECTION):
                        raise AssertionError("the paused read was never resumed")
                try:
                    piece = os.read(fd, MiB)
                except OSError as exc:
                    return ReadOutcome(bytes(got), exc)
                if not piece:
                    return ReadOutcome(bytes(got), None)
                got += piece
        finally:
            os.close(fd)

    def wait_paused(self, timeout: float) -> None:
        """Wait until the first ``pause_at`` bytes are read."""
        if not self._paused.wait(timeout):
            if self._run.done():
                self._run.result(0)  # it ended early: raise its error
            raise AssertionError(f"{self._path}: {self._pause_at} bytes not read in {timeout:g} s")

    def resume(self) -> None:
        """Let the read go on."""
        self._resumed.set()

    def result(self, timeout: float) -> ReadOutcome:
        """The outcome, once the read has ended (within ``timeout`` seconds)."""
        return self._run.result(timeout)


def read_from_store(path: Path, servers: list[NatsServer]) -> bytes:
    """The whole file, read through the mount after dropping the kernel's cached pages of it,
    and the proof that it came from the cluster: ``servers`` sent at least that many bytes."""

    def sent() -> int:
        return sum(int(server.monitor("varz")["out_bytes"]) for server in servers)

    def read() -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            pieces = []
            while piece := os.read(fd, 4 * MiB):
                pieces.append(piece)
            return b"".join(pieces)
        finally:
            os.close(fd)

    before = sent()
    data = run_io(read, READ_DEADLINE, f"reading {path}")
    assert sent() - before >= len(data), "the read was served from the page cache"
    return data


def spool_files(cache_dir: Path) -> list[Path]:
    """The spool data files under a mount's ``--cache-dir``."""
    return sorted(cache_dir.glob("*/*/*.data"))


def dirty_records(cache_dir: Path) -> list[Path]:
    """The records of files not stored yet under a mount's ``--cache-dir``."""
    return sorted(cache_dir.glob("*/*/*.meta"))


def wait_spool_released(cache_dir: Path) -> None:
    """Wait until the mount has let go of every spool file (before unmounting, see
    ``test_mount_write_faults`` rule 5)."""
    wait_until(
        lambda: not spool_files(cache_dir),
        10.0,
        0.02,
        lambda: f"the spool to let go of {spool_files(cache_dir)}",
    )


def osfs_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m osfs ARGV`` to completion in a clean environment."""
    return subprocess.run(
        [sys.executable, "-m", "osfs", *argv],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=CLI_TIMEOUT,
        check=False,
    )


# The store, as another client sees it ----------------------------------------------------------


class StoreClient:
    """osfs's own client of ``bucket`` through ``servers`` only, on an asyncio loop of its own
    (the test bodies are synchronous: the mount is another process). Connected on first use;
    use as a context manager. The loop runs only during a call: a client must not outlive a
    node it may be connected to (it would notice only when closed, and wait for it there)."""

    def __init__(self, servers: tuple[str, ...], bucket: str, *, timeout: float = 2.0) -> None:
        self.servers = servers
        self.bucket = bucket
        self.stream = stream_name(bucket)
        self._timeout = timeout
        self._runner = asyncio.Runner()
        self._connection: Connection | None = None
        self._store: ObjectStore | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await make()

        return self._runner.run(bounded())

    async def _connected(self) -> Connection:
        if self._connection is None:
            options = ConnectOptions(
                servers=self.servers, name=CLIENT_NAME, request_timeout=self._timeout
            )
            self._connection = await open_connection(options)
        return self._connection

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            self._store = await (await self._connected()).manager.object_store(self.bucket)
        return self._store

    def create(self, objects: dict[str, bytes]) -> None:
        """Create the bucket with three replicas, holding ``objects``."""

        async def create() -> None:
            manager = (await self._connected()).manager
            config = ObjectStoreConfig(bucket=self.bucket, replicas=3)
            self._store = await manager.create_object_store(config)
            for name, data in objects.items():
                await self._store.put(ObjectMeta(name=name), data)

        self._call(create)

    def stream_leader(self) -> str:
        """The stream's leader as ``STREAM.INFO`` reports it."""

        async def leader() -> str:
            info = await (await self._connected()).api.stream_info(self.stream)
            return str(info["cluster"]["leader"])

        return self._call(leader)

    def step_down(self, preferred: str) -> None:
        """Ask the stream's leader to hand over to ``preferred``."""

        async def step_down() -> None:
            api = (await self._connected()).api
            body = {"placement": {"preferred": preferred}}
            await api.request(f"STREAM.LEADER.STEPDOWN.{self.stream}", body)

        self._call(step_down)

    def info(self, name: str) -> ObjectInfo | None:
        """``get_info`` (a Direct Get: any replica answers); None when there is no such object.

        Raises:
            OsfsError: no answer (the stream between leaders, say).
        """

        async def info() -> ObjectInfo | None:
            try:
                return await (await self._bucket()).get_info(name)
            except errors.ObjectNotFoundError:
                return None

        return self._call(info)

    def leader_info(self, name: str) -> ObjectInfo | None:
        """The document of ``name`` as the stream leader has it (``STREAM.MSG.GET``: read after
        write); None when there is none.

        Raises:
            OsfsError: no answer (no leader yet, say).
        """

        async def leader_info() -> ObjectInfo | None:
            api = (await self._connected()).api
            try:
                msg = await api.msg_get_last(self.stream, meta_subject(self.bucket, name))
            except NotFound:
                return None
            return decode_meta(msg.data, bucket=self.bucket, mtime_ns=msg.time_ns, revision=msg.seq)

        return self._call(leader_info)

    def get(self, name: str) -> bytes:
        """The whole content of ``name`` (the client checks size and digest)."""

        async def get() -> bytes:
            return await (await self._bucket()).get_bytes(name)

        return self._call(get, timeout=60.0)

    def listing(self) -> dict[str, tuple[str, str, int]]:
        """Every live object: its nuid, digest and size, by name."""

        async def listing() -> dict[str, tuple[str, str, int]]:
            try:
                infos = await (await self._bucket()).list()
            except errors.NoObjectsFoundError:
                return {}
            return {info.name: (info.nuid, info.digest, info.size) for info in infos}

        return self._call(listing)

    def chunk_counts(self) -> dict[str, int]:
        """Messages per chunk subject of the bucket (``STREAM.INFO``, the leader's view)."""

        async def counts() -> dict[str, int]:
            api = (await self._connected()).api
            return await api.subject_counts(self.stream, all_chunks_subject(self.bucket))

        return self._call(counts)

    def close(self) -> None:
        """Close the connection and the loop."""

        async def close() -> None:
            if self._store is not None:
                await self._store.aclose()
            if self._connection is not None:
                await self._connection.close()

        try:
            self._call(close)
        finally:
            self._runner.close()


# The cluster -----------------------------------------------------------------------------------


def create_bucket(cluster: Cluster, bucket: str, objects: dict[str, bytes]) -> None:
    """Create ``bucket`` with three replicas, holding ``objects``."""
    with StoreClient(cluster.urls, bucket) as admin:
        admin.create(objects)


def place_leader(cluster: Cluster, bucket: str, mount_on: Role) -> int:
    """Make the stream's leader the node the mount is connected to (``"leader"``) or another
    one (``"follower"``); return the leader's index: the node to kill.

    (The client that asks is closed before the kill: its loop runs only during its calls, so a
    connection to a killed node would only find out, and reconnect, when closed.)"""
    stream = stream_name(bucket)
    mount_node = str(cluster.nodes[cluster.client_node(MOUNT_CLIENT)].server_name)
    leader = cluster.wait_for_stream_leader(stream)
    if mount_on == "leader":
        target = mount_node
    elif leader != mount_node:
        target = leader
    else:
        target = next(str(n.server_name) for n in cluster.nodes if n.server_name != mount_node)
    with StoreClient(cluster.urls, bucket) as admin:
        if leader != target:
            admin.step_down(target)
            wait_until(
                lambda: cluster.stream_leader(stream) == target,
                ELECTION,
                0.1,
                f"{target} to lead {stream}",
                ignore=(OSError, ValueError),
            )
        assert admin.stream_leader() == target
    assert cluster.nodes[cluster.client_node(MOUNT_CLIENT)].server_name == mount_node
    return cluster.index_of(target)


def replica_state(node: NatsServer, stream: str) -> tuple[int, ...] | None:
    """What the node's replica of ``stream`` holds (from its own ``/jsz``)."""
    detail = node.stream_detail(stream)
    if detail is None:
        return None
    state = detail.get("state") or {}
    keys = ("messages", "bytes", "first_seq", "last_seq", "num_subjects", "num_deleted")
    return tuple(int(state.get(key) or 0) for key in keys)


def assert_consistent(cluster: Cluster, bucket: str, expected: dict[str, tuple[str, int]]) -> None:
    """Rule 1: with every node back, the replicas agree, every node's clients list ``expected``
    (name: digest and size), and fsck finds nothing damaged or corrupt."""
    stream = stream_name(bucket)
    cluster.wait_for_stream_leader(stream, RECOVERY)
    states: dict[str | None, tuple[int, ...] | None] = {}

    def agreeing() -> bool:
        states.clear()
        states.update({node.server_name: replica_state(node, stream) for node in cluster.nodes})
        return None not in states.values() and len(set(states.values())) == 1

    wait_until(
        agreeing,
        RECOVERY,
        0.1,
        lambda: f"every replica of {stream} to hold the same messages: {states}",
        ignore=(OSError, ValueError),
    )
    listings = []
    for node in cluster.nodes:
        with StoreClient((node.url,), bucket) as client:
            listings.append(client.listing())
    assert listings[0] == listings[1] == listings[2], listings
    assert {name: (digest, size) for name, (_, digest, size) in listings[0].items()} == expected

    check = osfs_cli("--server", ",".join(cluster.urls), "--json", "fsck", bucket, "--verify")
    assert check.returncode == 0, check
    report = json.loads(check.stdout)
    assert report["objects"] == len(expected), report
    assert report["damaged"] == report["corrupt"] == [], report
    assert report["unreadable_documents"] == 0, report
    assert report["orphans"] == [], report  # old ones; a failed attempt's late chunks are recent


def mount_cluster(
    cluster: Cluster, bucket: str, tmp_path: Path
) -> AbstractContextManager[MountedProcess]:
    """``osfs --server URL1,URL2,URL3 mount BUCKET MNT`` with a ``--cache-dir`` of its own."""
    cache = tmp_path / "cache"
    return mounted(",".join(cluster.urls), bucket, tmp_path / "mnt", "--cache-dir", str(cache))


# 1. The leader dies during a copy into the mount ------------------------------------------------


@pytest.mark.parametrize("mount_on", ["leader", "follower"])
def test_leader_killed_during_a_copy_into_the_mount(
    nats_cluster: Cluster, bucket_name: str, tmp_path: Path, mount_on: Role
) -> None:
    """64 MiB copied in; the leader is killed once 16 MiB of it reached the leader. close is
    0 or EIO (module docstring); nothing but the whole new version is ever visible to a client
    of the survivors; the data ends up stored (by close, or by the mount's retry) and reads
    back exactly through a client and through the mount; with the node back all agree."""
    cluster = nats_cluster
    data = big_payload(SIZE, seed=1)
    final = (digest_of(data), len(data))
    cache = tmp_path / "cache"
    create_bucket(cluster, bucket_name, {})
    with mount_cluster(cluster, bucket_name, tmp_path) as mount:
        expect_write_faults(mount)
        victim = place_leader(cluster, bucket_name, mount_on)
        survivors = [node for i, node in enumerate(cluster.nodes) if i != victim]
        path = mount.path / "big.bin"
        try:
            with StoreClient(tuple(node.url for node in survivors), bucket_name) as client:
                stored = copy_in_and_kill(cluster, victim, client, mount, data, cache)
                assert (stored.digest, stored.size, stored.chunks) == (*final, CHUNKS)
                counts = client.chunk_counts()
                assert counts[chunk_subject(bucket_name, stored.nuid)] == CHUNKS
                assert client.get("big.bin") == data
            wait_spool_released(cache)
            assert read_from_store(path, survivors) == data
        finally:
            if not cluster.nodes[victim].running:
                cluster.restart_node(victim)
        assert_consistent(cluster, bucket_name, {"big.bin": final})
        assert run_io(lambda: os.listdir(mount.path)) == ["big.bin"]


def expect_write_faults(mount: MountedProcess) -> None:
    """Declare what the mount logs when the leader dies under an upload."""
    mount.expect_log(STORE_FAILED)  # when close fails: the file is kept and retried...
    mount.expect_log(FLUSH_EIO)  # ...and close answered EIO
    # Rarely (an election that outlasts the failed attempt): its undo found no leader either.
    mount.expect_log(PURGE_FAILED)


def copy_in_and_kill(
    cluster: Cluster,
    victim: int,
    client: StoreClient,
    mount: MountedProcess,
    data: bytes,
    cache_dir: Path,
) -> ObjectInfo:
    """Copy ``data`` into the mount as ``big.bin``, kill the leader once ``BEFORE_KILL`` bytes
    of it reached the leader, and watch through ``client`` (on the survivors) until the file
    is stored; its info. Every version a client sees is none or the whole new one."""
    path = mount.path / "big.bin"
    final = (digest_of(data), len(data))

    def whole(info: ObjectInfo | None) -> ObjectInfo | None:
        if info is not None:
            assert (info.digest, info.size, info.chunks) == (*final, CHUNKS), (
                f"a client saw a version that is not the whole file: {info}"
            )
        return info

    leader = cluster.nodes[victim]
    baseline = int(leader.monitor("jsz")["bytes"])
    closing = Background(lambda: write_file(path, data), f"copying {path.name} in")
    wait_until(
        lambda: closing.done() or int(leader.monitor("jsz")["bytes"]) > baseline + BEFORE_KILL,
        CLOSE_DEADLINE,
        0.005,
        "16 MiB of the copy on the leader",
    )
    assert not closing.done(), "the copy was stored before the leader could be killed"
    cluster.kill_node(victim)
    killed = time.monotonic()
    while not closing.done():
        try:
            whole(client.info(path.name))
        except errors.OsfsError:
            pass  # between leaders: no answer is no news
        time.sleep(0.05)
    outcome = closing.result(CLOSE_DEADLINE)
    print(f"close: {outcome or 0} {time.monotonic() - killed:.1f} s after the kill")
    assert outcome in (None, Failure("close", errno.EIO)), outcome

    def stored() -> ObjectInfo | None:
        info = whole(client.leader_info(path.name))
        return info if info is not None and not dirty_records(cache_dir) else None

    if outcome is None:
        # Stored by close: the (new) leader has exactly this version, and the mount no record.
        assert not dirty_records(cache_dir), "close returned 0, yet the file is kept as dirty"
        assert "could not store" not in mount.log_text()  # (a failed stream is a debug line)
        return wait_until(stored, ELECTION, 0.1, "the leader's answer", ignore=(errors.OsfsError,))
    # Not stored by close: kept (a record on disk) and retried once there is a leader; until
    # then a client finds no big.bin, never a part of it.
    assert dirty_records(cache_dir), "close failed, yet the file is not kept for a retry"
    mount.wait_for_log(STORE_FAILED)
    retried = wait_until(
        stored,
        RETRY_DEADLINE,
        0.2,
        "the mount's retry to store the file",
        ignore=(errors.OsfsError,),
    )
    print(f"stored by the mount's retry {time.monotonic() - killed:.1f} s after the kill")
    return retried


# 2. The leader dies during a read from the mount ------------------------------------------------


@pytest.mark.parametrize("mount_on", ["leader", "follower"])
def test_leader_killed_during_a_read_from_the_mount(
    nats_cluster: Cluster, bucket_name: str, tmp_path: Path, mount_on: Role
) -> None:
    """A 64 MiB object stored before the mount; a program reads it through the mount, the
    leader is killed once it has read 16 MiB. The read completes with the exact bytes (the
    mount retries the fetches nobody answered until a new leader is elected), within bounds,
    and with the node back all agree."""
    cluster = nats_cluster
    data = big_payload(SIZE, seed=2)
    final = (digest_of(data), len(data))
    create_bucket(cluster, bucket_name, {"big.bin": data})
    with mount_cluster(cluster, bucket_name, tmp_path) as mount:
        victim = place_leader(cluster, bucket_name, mount_on)
        path = mount.path / "big.bin"
        reading = PausedRead(path, pause_at=BEFORE_KILL)
        try:
            reading.wait_paused(IO_TIMEOUT)
            cluster.kill_node(victim)
            killed = time.monotonic()
            reading.resume()
            outcome = reading.result(READ_DEADLINE)
            print(
                f"read: {outcome.error or 'whole'} after {len(outcome.data)} bytes, "
                f"{time.monotonic() - killed:.1f} s after the kill"
            )
            assert outcome.error is None, outcome.error
            assert outcome.data == data  # (and the mount checked the digest)
            assert time.monotonic() - killed < READ_DEADLINE
        finally:
            reading.resume()
            if not cluster.nodes[victim].running:
                cluster.restart_node(victim)
        assert_consistent(cluster, bucket_name, {"big.bin": final})
