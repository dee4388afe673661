"""Reading through the mount over a real server: what other clients wrote is what ``ls``,
``cat`` and ``stat`` show.

One bucket is filled before the mount (by nats-py, nats.js, osfs's own client and raw
publishes), then mounted once for the whole module beside a second bucket (so cross-bucket links
resolve the way they would under ``/mnt/<bucket>``). Tests only read, except the one that adds
hostile names while mounted, which uses names no other test looks at, and the one that mounts
the bucket a second time with ``--read-only`` to be refused every change. (Writing through a
mount is ``test_mount_write``'s.) After every test the mount's log must hold no WARNING/ERROR
line the test did not declare.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import random
import re
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from osfs.core.config import ObjectStoreConfig, ObjectStoreStatus
from osfs.core.digest import digest_of
from osfs.core.meta import ObjectInfo, ObjectMeta
from osfs.core.subjects import chunk_subject, stream_name
from osfs.store import ObjectStore
from tests.support import natspy_peer as peer
from tests.support.aio import run
from tests.support.data import payload
from tests.support.mounting import (
    MountedProcess,
    clean_env,
    io_errno,
    mounted,
    pread,
    read_file,
    run_io,
    wait_until_path,
)
from tests.support.natsjs import NatsJs, NatsJsSetupError
from tests.support.store_fixtures import opened, put_raw, raw
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fuse, pytest.mark.interop]

MAX_BYTES = 64 * 1024 * 1024
MANY = 2000
FILE_MODE, DIR_MODE, UID, GID = 0o640, 0o750, 4321, 4322

#: Names no path can stand for (names.map_name), written by nats-py before the mount.
HOSTILE = ("../x", "a//b", "/abs", "c" * 300, "x/./y", "nul\x00name", "d/../../etc")
#: One more, published raw (as a client that checks nothing would).
HOSTILE_RAW = "raw/../../escape"
#: More of them, written while mounted.
HOSTILE_LIVE = ("../live", "live//b", "/live-abs", "l" * 256, "live/./y", "live\x00nul")

#: POSIX keys an osfs writer stores (osfs.core.posix).
OSFS_META = {
    "osfs.mode": "100600",
    "osfs.uid": "1001",
    "osfs.gid": "1002",
    "osfs.mtime": "1600000000123456789",
    "team": "ops",
}
#: What nats.js writes (it keeps metadata): permission bits alone, a time before 1970.
JS_META = {"osfs.mode": "755", "osfs.mtime": "-1000000000"}


@dataclass
class Tree:
    """The mounted bucket and what was put in it."""

    url: str
    bucket: str
    other: str
    started_ns: int
    base: Path
    contents: dict[str, bytes] = field(default_factory=dict)
    infos: dict[str, ObjectInfo] = field(default_factory=dict)
    mounts: list[MountedProcess] = field(default_factory=list)

    @property
    def mount(self) -> MountedProcess:
        return self.mounts[0]

    @property
    def root(self) -> Path:
        return self.mount.path

    def path(self, name: str) -> Path:
        return self.root / name


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _uneven_nuid(name: str) -> str:
    return "UNEVEN" + hashlib.sha1(name.encode()).hexdigest()[:16]


async def _corrupt(url: str, bucket: str, nuid: str, chunks: list[bytes]) -> None:
    """Replace a version's chunks with ``chunks`` under the same nuid (a damaged stream)."""
    async with raw(url) as nc:
        js = nc.jetstream()
        await js.purge_stream(stream_name(bucket), subject=chunk_subject(bucket, nuid))
        for chunk in chunks:
            await js.publish(chunk_subject(bucket, nuid), chunk)


async def _fill(tree: Tree) -> None:
    """Everything the tests read, written by every kind of client."""
    contents, infos = tree.contents, tree.infos
    async with opened(tree.url) as connection:
        manager = connection.manager
        store = await manager.create_object_store(
            ObjectStoreConfig(bucket=tree.bucket, max_bytes=MAX_BYTES)
        )
        other = await manager.create_object_store(ObjectStoreConfig(bucket=tree.other))
        try:
            await _fill_with_osfs(tree, store, other)
        finally:
            await store.aclose()
            await other.aclose()
    async with peer.connect(tree.url) as js:
        pystore = await peer.open_bucket(js, tree.bucket)
        for name, data in (("py/hello.txt", b"hello from nats-py\n"), ("py/multi.bin", None)):
            data = data if data is not None else payload(3 * 1024 * 1024 + 123, seed=7)
            await peer.put(pystore, name, data)
            contents[name] = data
        for name in HOSTILE:
            await peer.put(pystore, name, b"hostile " + name.encode())
    sizes = [4096, 4096, 3000, 17, 4096, 1, 2500, 70_000, 333]
    data = payload(sum(sizes), seed=3)
    chunks, start = [], 0
    for size in sizes:
        chunks.append(data[start : start + size])
        start += size
    await put_raw(tree.url, tree.bucket, "uneven.bin", chunks, nuid=_uneven_nuid("uneven.bin"))
    contents["uneven.bin"] = data
    await put_raw(
        tree.url, tree.bucket, HOSTILE_RAW, [b"raw hostile"], nuid=_uneven_nuid(HOSTILE_RAW)
    )
    async with opened(tree.url) as connection:
        store = await connection.manager.object_store(tree.bucket)
        for name in contents:
            infos[name] = await store.get_info(name)
        await store.aclose()


async def _fill_with_osfs(tree: Tree, store: ObjectStore, other: ObjectStore) -> None:
    contents = tree.contents
    plain = {
        "target.txt": b"the target\n",
        "a/b/c/d.txt": b"deep\n",
        "clash": b"I am shadowed by the directory clash/\n",
        "clash/inner": b"inner\n",
        "empty/": b"",
    }
    for name, data in plain.items():
        await store.put_bytes(name, data)
        contents[name] = data
    meta = ObjectMeta(
        name="osfs/meta.txt",
        description="with everything",
        headers={"X-Origin": ("tests",)},
        metadata=OSFS_META,
    )
    contents["osfs/meta.txt"] = b"metadata-rich object\n"
    await store.put(meta, contents["osfs/meta.txt"])
    await store.put(ObjectMeta(name="modes/private/", metadata={"osfs.mode": "40700"}), b"")
    contents["modes/private/"] = b""
    corrupt = payload(300_000, seed=5)
    info = await store.put(ObjectMeta(name="corrupt.bin", chunk_size=65536), corrupt)
    bad = bytearray(corrupt)
    bad[150_000] ^= 0xFF
    await _corrupt(
        tree.url,
        tree.bucket,
        info.nuid,
        [bytes(bad[i : i + 65536]) for i in range(0, len(bad), 65536)],
    )
    target = await store.get_info("target.txt")
    deep = await store.get_info("a/b/c/d.txt")
    await store.add_link("links/same", target)
    await store.add_link("top-link", target)
    await store.add_link("a/b/up-link", target)
    await store.add_link("a/x/side-link", deep)
    far = await other.put_bytes("far.txt", b"far away\n")
    await store.add_link("links/far", far)
    await store.add_link("far-link", far)
    await store.add_bucket_link("links/bucket", other)
    for start in range(0, MANY, 250):
        batch = [f"many/entry-{i:05d}" for i in range(start, min(start + 250, MANY))]
        await _gather(store, batch)


async def _gather(store: ObjectStore, names: list[str]) -> None:
    await asyncio.gather(*(store.put_bytes(name, name.encode()) for name in names))


def _natsjs(tree: Tree) -> None:
    try:
        client = NatsJs(tree.url)
    except NatsJsSetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    for name, data, metadata in (
        ("js/hello.txt", b"hello from nats.js\n", None),
        ("js/meta.txt", payload(200_000, seed=11), JS_META),
    ):
        client.put(tree.bucket, name, data, metadata=metadata, chunk_size=50_000)
        tree.contents[name] = data


@pytest.fixture(scope="module")
def tree(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tree]:
    """The filled bucket, mounted (with the other bucket mounted beside it)."""
    base = tmp_path_factory.mktemp("mount-read")
    bucket, other = _unique("mread"), _unique("mread_other")
    tree = Tree(nats_url, bucket, other, started_ns=time.time_ns(), base=base)
    run(_fill(tree), timeout=120)
    _natsjs(tree)
    run(_infos_of(tree, ["js/hello.txt", "js/meta.txt"]))
    modes = ("--file-mode", "0640", "--dir-mode", "0750", "--uid", str(UID), "--gid", str(GID))
    with (
        mounted(nats_url, bucket, base / bucket, *modes) as mount,
        mounted(nats_url, other, base / other) as other_mount,
    ):
        _expect_hidden_names(mount, (*HOSTILE, HOSTILE_RAW))
        tree.mounts += [mount, other_mount]
        yield tree


def _expect_hidden_names(mount: MountedProcess, names: tuple[str, ...]) -> None:
    """The watcher's warnings about the names it hides, which the bucket holds on purpose."""
    for name in names:
        mount.expect_log(f"WARNING osfs.fs.watcher: hiding object {_repr_prefix(name)}")
    mount.expect_log(
        "WARNING osfs.fs.watcher: hiding object 'clash': a directory of the same name exists"
    )


def _repr_prefix(name: str) -> str:
    """A regex matching the start of ``repr(name)`` as the log shows it."""
    return re.escape(repr(name)[:40])


async def _infos_of(tree: Tree, names: list[str]) -> None:
    async with opened(tree.url) as connection:
        store = await connection.manager.object_store(tree.bucket)
        for name in names:
            tree.infos[name] = await store.get_info(name)
        await store.aclose()


@pytest.fixture(autouse=True)
def _log_stays_clean(tree: Tree) -> Iterator[None]:
    yield
    for mount in tree.mounts:
        mount.check_log()


# Names, sizes, bytes ----------------------------------------------------------------------------


def test_objects_from_natspy_and_natsjs_read_back(tree: Tree) -> None:
    assert sorted(os.listdir(tree.path("py"))) == ["hello.txt", "multi.bin"]
    assert sorted(os.listdir(tree.path("js"))) == ["hello.txt", "meta.txt"]
    for name in ("py/hello.txt", "py/multi.bin", "js/hello.txt", "js/meta.txt", "uneven.bin"):
        expected = tree.contents[name]
        assert os.stat(tree.path(name)).st_size == len(expected), name
        assert read_file(tree.path(name)) == expected, name


def test_cat_and_sha256sum_see_the_same_bytes(tree: Tree) -> None:
    done = subprocess.run(
        ["timeout", "10", "sha256sum", str(tree.path("py/multi.bin"))],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split()[0] == hashlib.sha256(tree.contents["py/multi.bin"]).hexdigest()


def test_random_preads_match(tree: Tree) -> None:
    rng = random.Random(20240601)
    for name in ("uneven.bin", "py/multi.bin", "js/meta.txt"):
        data = tree.contents[name]
        ranges = [(rng.randrange(0, len(data) + 10), rng.choice((1, 17, 4096, 65537, 200_000)))]
        ranges += [(rng.randrange(0, len(data)), rng.randrange(1, 150_000)) for _ in range(150)]
        ranges += [(0, 1), (len(data) - 1, 10), (len(data), 10), (len(data) + 4096, 1)]
        got = pread(tree.path(name), ranges, timeout=30)
        for (offset, length), chunk in zip(ranges, got, strict=True):
            assert chunk == data[offset : offset + length], (name, offset, length)


def test_nested_names_make_implicit_directories(tree: Tree) -> None:
    assert sorted(os.listdir(tree.path("a"))) == ["b", "x"]  # 'a//b' is hidden, not merged
    assert sorted(os.listdir(tree.path("a/b"))) == ["c", "up-link"]
    assert os.listdir(tree.path("a/b/c")) == ["d.txt"]
    for directory in ("a", "a/b", "a/b/c", "py", "many"):
        st = os.stat(tree.path(directory))
        assert stat.S_ISDIR(st.st_mode), directory
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (DIR_MODE, UID, GID)
    assert read_file(tree.path("a/b/c/d.txt")) == b"deep\n"


def test_directory_markers_are_directories(tree: Tree) -> None:
    st = os.stat(tree.path("empty"))
    assert stat.S_ISDIR(st.st_mode)
    assert os.listdir(tree.path("empty")) == []
    assert stat.S_IMODE(st.st_mode) == DIR_MODE
    private = os.stat(tree.path("modes/private"))
    assert stat.S_ISDIR(private.st_mode)
    assert stat.S_IMODE(private.st_mode) == 0o700  # osfs.mode of the marker
    assert os.listdir(tree.path("modes")) == ["private"]


def test_the_directory_wins(tree: Tree) -> None:
    assert stat.S_ISDIR(os.stat(tree.path("clash")).st_mode)
    assert os.listdir(tree.path("clash")) == ["inner"]
    assert read_file(tree.path("clash/inner")) == b"inner\n"
    assert os.listdir(tree.root).count("clash") == 1


def test_root_listing(tree: Tree) -> None:
    assert sorted(set(os.listdir(tree.root)) - {"live-sentinel.txt"}) == sorted(
        [
            "a",
            "clash",
            "corrupt.bin",
            "empty",
            "far-link",
            "js",
            "links",
            "many",
            "modes",
            "osfs",
            "py",
            "target.txt",
            "top-link",
            "uneven.bin",
        ]
    )


# Attributes -------------------------------------------------------------------------------------


def test_attributes_of_foreign_objects_are_the_mount_defaults(tree: Tree) -> None:
    for name in ("py/hello.txt", "js/hello.txt", "uneven.bin"):
        st = os.stat(tree.path(name))
        assert stat.S_ISREG(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == FILE_MODE, name
        assert (st.st_uid, st.st_gid) == (UID, GID), name
        assert st.st_mtime_ns == tree.infos[name].mtime_ns, name  # the server's timestamp
        assert abs(st.st_mtime_ns - tree.started_ns) < 300 * 10**9, name


def test_attributes_stored_in_metadata_win(tree: Tree) -> None:
    st = os.stat(tree.path("osfs/meta.txt"))
    assert st.st_mode == 0o100600
    assert (st.st_uid, st.st_gid) == (1001, 1002)
    assert st.st_mtime_ns == 1600000000123456789
    js = os.stat(tree.path("js/meta.txt"))
    assert js.st_mode == 0o100755  # permission bits alone, the type from the object
    assert js.st_mtime_ns == -1000000000
    assert (js.st_uid, js.st_gid) == (UID, GID)


def test_ls_long_shows_mode_owner_size_and_time(tree: Tree) -> None:
    done = subprocess.run(
        ["timeout", "10", "ls", "-ln", "--time-style=+%s", str(tree.path("osfs"))],
        capture_output=True,
        text=True,
        check=True,
    )
    line = done.stdout.splitlines()[-1].split()
    assert line[0] == "-rw-------"
    assert line[2:7] == [
        "1001",
        "1002",
        str(len(tree.contents["osfs/meta.txt"])),
        "1600000000",
        "meta.txt",
    ]
    done = subprocess.run(
        ["timeout", "10", "ls", "-ln", "--time-style=+%s", str(tree.path("py"))],
        capture_output=True,
        text=True,
        check=True,
    )
    hello = next(row.split() for row in done.stdout.splitlines() if row.endswith("hello.txt"))
    mtime = tree.infos["py/hello.txt"].mtime_ns // 10**9
    assert hello[0] == "-rw-r-----"
    assert hello[2:7] == [str(UID), str(GID), "19", str(mtime), "hello.txt"]


def test_xattrs_hold_the_object_values(tree: Tree) -> None:
    path, info = tree.path("osfs/meta.txt"), tree.infos["osfs/meta.txt"]
    names = set(os.listxattr(path))
    assert {"user.nats.digest", "user.nats.nuid", "user.nats.metadata"} <= names
    assert os.getxattr(path, "user.nats.digest") == info.digest.encode()
    assert info.digest == digest_of(tree.contents["osfs/meta.txt"])
    assert os.getxattr(path, "user.nats.nuid") == info.nuid.encode()
    assert json.loads(os.getxattr(path, "user.nats.metadata")) == OSFS_META
    assert os.getxattr(path, "user.nats.description") == b"with everything"
    assert json.loads(os.getxattr(path, "user.nats.headers")) == {"X-Origin": ["tests"]}
    plain = tree.path("py/hello.txt")
    assert "user.nats.metadata" not in os.listxattr(plain)  # nats-py stores no metadata
    assert io_errno(lambda: os.getxattr(plain, "user.nats.metadata")) == errno.ENODATA
    assert io_errno(lambda: os.getxattr(plain, "user.other")) == errno.ENODATA


def test_statfs_reports_the_bucket_against_max_bytes(tree: Tree) -> None:
    status = run(_status(tree))
    assert status.max_bytes == MAX_BYTES

    def matches() -> os.statvfs_result | None:
        vfs = os.statvfs(tree.root)
        used = (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize
        return vfs if abs(used - status.size) < vfs.f_frsize else None

    vfs = wait_until(matches, 5, 0.2, f"statvfs to show {status.size} bytes used")
    assert vfs.f_blocks * vfs.f_frsize == MAX_BYTES
    assert vfs.f_namemax == 255
    done = subprocess.run(
        ["timeout", "10", "df", "-B1", "--output=size,source", str(tree.root)],
        capture_output=True,
        text=True,
        check=True,
    )
    size, source = done.stdout.splitlines()[-1].split()
    assert (int(size), source) == (MAX_BYTES, f"osfs:{tree.bucket}")


async def _status(tree: Tree) -> ObjectStoreStatus:
    async with opened(tree.url) as connection:
        store = await connection.manager.object_store(tree.bucket)
        try:
            return await store.status()
        finally:
            await store.aclose()


# Links ------------------------------------------------------------------------------------------


def test_links_are_relative_symlinks(tree: Tree) -> None:
    expected = {
        "links/same": "../target.txt",
        "top-link": "target.txt",
        "a/b/up-link": "../../target.txt",
        "a/x/side-link": "../b/c/d.txt",
        "links/far": f"../../{tree.other}/far.txt",
        "far-link": f"../{tree.other}/far.txt",
        "links/bucket": f"../../{tree.other}",
    }
    for name, target in expected.items():
        st = os.lstat(tree.path(name))
        assert stat.S_ISLNK(st.st_mode), name
        assert os.readlink(tree.path(name)) == target, name
        assert st.st_size == len(target.encode()), name


def test_cat_through_links(tree: Tree) -> None:
    for name in ("links/same", "top-link", "a/b/up-link"):
        assert read_file(tree.path(name)) == b"the target\n", name
    assert read_file(tree.path("a/x/side-link")) == b"deep\n"
    # The other bucket is mounted beside this one, as under /mnt/<bucket>: its links resolve.
    assert read_file(tree.path("links/far")) == b"far away\n"
    assert read_file(tree.path("far-link")) == b"far away\n"
    assert os.listdir(tree.path("links/bucket")) == ["far.txt"]


# Hostile names ----------------------------------------------------------------------------------


def test_hostile_names_are_hidden_and_listed_by_the_cli(tree: Tree) -> None:
    _expect_hidden_names(tree.mount, HOSTILE_LIVE)
    run(_put_hostile_live(tree))
    wait_until_path(tree.path("live-sentinel.txt"), timeout=5)
    root = set(os.listdir(tree.root))
    assert not root & {"..", "live", "x", "d", "abs", "live-abs", "raw", "escape", "nul"}
    assert not any(
        entry.startswith(("c" * 200, "l" * 200, "nul", "live"))
        for entry in root - {"live-sentinel.txt"}
    )
    assert sorted(os.listdir(tree.path("a"))) == ["b", "x"]
    # The mount keeps serving.
    assert read_file(tree.path("live-sentinel.txt")) == b"still here"
    assert read_file(tree.path("target.txt")) == b"the target\n"
    listed = subprocess.run(
        [sys.executable, "-m", "osfs", "--server", tree.url, "--json", "ls", tree.bucket],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=clean_env(),
    )
    names = {entry["name"] for entry in json.loads(listed.stdout)}
    assert {*HOSTILE, *HOSTILE_LIVE, HOSTILE_RAW} <= names


async def _put_hostile_live(tree: Tree) -> None:
    async with peer.connect(tree.url) as js:
        store = await peer.open_bucket(js, tree.bucket)
        for name in HOSTILE_LIVE:
            await peer.put(store, name, b"hostile")
        await peer.put(store, "live-sentinel.txt", b"still here")


# Errors -----------------------------------------------------------------------------------------


def test_a_corrupt_object_reads_as_eio(tree: Tree) -> None:
    """A whole read (as ``cat`` does it) of an object whose bytes do not match its digest fails
    with EIO, and so does the next one: a corrupt object never reads as good bytes."""
    tree.mount.expect_log(  # the first read fails; once known corrupt, so does the open
        r"WARNING osfs\.fs\.errno_map: (open|read): object 'corrupt\.bin': .*\(answered EIO\)"
    )
    assert os.stat(tree.path("corrupt.bin")).st_size == 300_000
    for attempt in ("first", "second"):
        failure = io_errno(lambda: read_file(tree.path("corrupt.bin")))
        assert failure == errno.EIO, f"{attempt} whole read: {errno.errorcode.get(failure)}"
    tree.mount.wait_for_log(r"read: object 'corrupt\.bin'.*answered EIO")
    assert read_file(tree.path("target.txt")) == b"the target\n"  # still serving


def test_a_read_only_mount_refuses_every_change_with_erofs(tree: Tree) -> None:
    """The same bucket mounted again with ``--read-only``: every kind of change the mount can
    make is EROFS (the kernel's answer on an ``ro`` mount, and the mount's own behind it), and
    the bucket is left as it was."""
    with mounted(tree.url, tree.bucket, tree.base / "read-only", "--read-only") as read_only:
        _expect_hidden_names(read_only, (*HOSTILE, HOSTILE_RAW, *HOSTILE_LIVE))
        _every_change_is_refused(read_only.path)
    assert read_file(tree.path("py/hello.txt")) == b"hello from nats-py\n"
    assert sorted(os.listdir(tree.path("py"))) == ["hello.txt", "multi.bin"]


def _every_change_is_refused(root: Path) -> None:
    file, directory = root / "py/hello.txt", root / "empty"
    attempts = {
        "create": lambda: os.close(os.open(root / "py/new.txt", os.O_CREAT | os.O_WRONLY, 0o644)),
        "create (exclusive)": lambda: os.close(
            os.open(root / "new.txt", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        ),
        "write to an existing file": lambda: os.close(os.open(file, os.O_WRONLY)),
        "open read-write": lambda: os.close(os.open(file, os.O_RDWR)),
        "append": lambda: os.close(os.open(file, os.O_WRONLY | os.O_APPEND)),
        "open with O_TRUNC": lambda: os.close(os.open(file, os.O_RDONLY | os.O_TRUNC)),
        "truncate": lambda: os.truncate(file, 0),
        "mkdir": lambda: os.mkdir(root / "py/newdir"),
        "rmdir": lambda: os.rmdir(directory),
        "unlink": lambda: os.unlink(file),
        "rename": lambda: os.rename(file, root / "py/renamed.txt"),
        "rename a directory": lambda: os.rename(root / "a", root / "a2"),
        "chmod": lambda: os.chmod(file, 0o600),
        "chown": lambda: os.chown(file, 0, 0),
        "utime": lambda: os.utime(file, (0, 0)),
        "symlink": lambda: os.symlink("target.txt", root / "new-link"),
        "hard link": lambda: os.link(file, root / "py/hard"),
        "mknod (fifo)": lambda: os.mkfifo(root / "fifo"),
        "setxattr": lambda: os.setxattr(file, "user.x", b"1"),
        "removexattr": lambda: os.removexattr(file, "user.nats.digest"),
    }
    for what, attempt in attempts.items():
        assert io_errno(attempt) == errno.EROFS, what
    assert read_file(file) == b"hello from nats-py\n"
    assert sorted(run_io(lambda: os.listdir(root / "py"))) == ["hello.txt", "multi.bin"]


# Big directories --------------------------------------------------------------------------------


def test_readdir_of_2000_entries_returns_each_once(tree: Tree) -> None:
    expected = {f"entry-{i:05d}" for i in range(MANY)}
    for _ in range(2):  # the second listing may come from the kernel's caches
        names = run_io(lambda: os.listdir(tree.path("many")), what="listdir many/")
        assert len(names) == MANY
        assert set(names) == expected
    with os.scandir(tree.path("many")) as entries:
        seen = [entry.name for entry in entries if entry.is_file()]
    assert sorted(seen) == sorted(expected)
    assert read_file(tree.path("many/entry-01999")) == b"many/entry-01999"
