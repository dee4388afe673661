"""Writing through the mount with the programs people use: cp, rsync, tar, git, sqlite3, an
editor's save, and the POSIX calls under them, on a real mount over a real server.

Rules (beside the conftest's and ``tests.support.mounting``'s):
1. One bucket is mounted for the whole module; each test works in its own directory of it
   (:func:`work`), made through the mount, and never looks at another test's. Tests that must
   unmount and mount again (rsync, sqlite3, an unlinked open file) have a bucket of their own.
2. "After a remount" means a new ``osfs mount`` process: either the same bucket mounted a second
   time at another path (:meth:`Shared.again`), or, where the test owns its bucket, the same
   mountpoint after an unmount. Either way nothing comes from the first process or the kernel's
   caches of it: what is read back is what the bucket holds.
3. What the mount stored is checked with other clients too: nats-py (``tests.support
   .natspy_peer``, its own object store client, which verifies the digest on every get) and,
   for the interop test, nats.js (``@nats-io/obj``).
4. Every program runs as a subprocess with a timeout; every other blocking call on a mount runs
   under :func:`tests.support.mounting.run_io`. After each test the module mount's log must hold
   no WARNING/ERROR line the test did not declare (none does: nothing here should warn).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import random
import re
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from osfs.core.config import ObjectStoreConfig
from tests.support import natspy_peer as peer
from tests.support.aio import run
from tests.support.data import payload
from tests.support.mounting import (
    MountedProcess,
    clean_env,
    io_errno,
    mounted,
    read_file,
    run_io,
    wait_until_path,
)
from tests.support.natsjs import NatsJs, NatsJsSetupError
from tests.support.store_fixtures import opened

pytestmark = [pytest.mark.integration, pytest.mark.fuse, pytest.mark.interop]

#: The object store's default chunk size: files above it are stored in several chunks.
CHUNK = 128 * 1024
#: Seconds one program (cp, rsync, tar, git, sqlite3, diff) may run.
PROGRAM_TIMEOUT = 120.0
#: Files in the rsync test's tree: a couple of thousand, so the quick check is tested at scale
#: while the test stays around 20 s on a 2-core machine (each new file is a few round trips).
RSYNC_FILES = 2000
#: Old, distinct timestamps (ns) for generated trees: rsync's quick check and ``cp -a`` keep them.
OLD_NS = 1_000_000_000_123_456_789


# Fixtures ---------------------------------------------------------------------------------------


@dataclass
class Shared:
    """The module's bucket and its mount."""

    url: str
    bucket: str
    mount: MountedProcess
    base: Path

    @property
    def root(self) -> Path:
        return self.mount.path

    @contextmanager
    def again(self, name: str) -> Iterator[Path]:
        """The same bucket mounted a second time by a new process (rule 2): its root."""
        with mounted(self.url, self.bucket, self.base / name) as second:
            yield second.path


async def _create_bucket(url: str, bucket: str) -> None:
    async with opened(url) as connection:
        store = await connection.manager.create_object_store(ObjectStoreConfig(bucket=bucket))
        await store.aclose()


@pytest.fixture(scope="module")
def shared(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    bucket = f"mwrite_{uuid.uuid4().hex[:10]}"
    run(_create_bucket(nats_url, bucket))
    base = tmp_path_factory.mktemp("mount-write")
    with mounted(nats_url, bucket, base / "mnt") as mount:
        yield Shared(nats_url, bucket, mount, base)


@pytest.fixture(autouse=True)
def _log_stays_clean(shared: Shared) -> Iterator[None]:
    yield
    shared.mount.check_log()


@pytest.fixture
def work(shared: Shared, request: pytest.FixtureRequest) -> Path:
    """This test's own directory in the shared bucket (rule 1), made through the mount."""
    name: str = request.node.name
    path = shared.root / name.removeprefix("test_")[:60]
    run_io(path.mkdir, what=f"mkdir {path}")
    return path


@pytest.fixture
def own_bucket(nats_url: str, bucket_name: str) -> str:
    """A new, empty bucket for a test that unmounts and mounts again (rule 1)."""
    run(_create_bucket(nats_url, bucket_name))
    return bucket_name


# Helpers ----------------------------------------------------------------------------------------


def program(
    *argv: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = PROGRAM_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion under a deadline: it must exit with 0 and print nothing on
    stderr, or the test fails showing its output."""
    done = subprocess.run(
        [str(arg) for arg in argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env if env is not None else clean_env({"LC_ALL": "C.UTF-8"}),
        timeout=timeout,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, ""), (
        f"{' '.join(map(str, argv))} exited with {done.returncode}\n"
        f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"
    )
    return done


def object_name(shared: Shared, path: Path) -> str:
    """The object behind ``path`` in the shared mount."""
    return str(path.relative_to(shared.root))


def sha256_digest(data: bytes) -> str:
    """An object store digest as the meta document carries it."""
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create (or replace the content of) ``path`` through the mount; the close stores it."""

    def write() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    run_io(write, timeout=30, what=f"writing {path}")


def listdir(path: Path) -> list[str]:
    """The sorted entries of a directory on a mount."""
    return sorted(run_io(lambda: os.listdir(path), what=f"listdir {path}"))


def lstat(path: Path) -> os.stat_result:
    return run_io(lambda: os.lstat(path), what=f"lstat {path}")


@dataclass(frozen=True)
class Stored:
    """One live object as nats-py sees it."""

    data: bytes
    info: peer.api.ObjectInfo
    metadata: dict[str, str]


async def _natspy_get(url: str, bucket: str, names: list[str]) -> dict[str, Stored]:
    """nats-py's get of each name (digest verified by nats-py) and the stored metadata."""
    found = {}
    async with peer.connect(url) as js:
        store = await peer.open_bucket(js, bucket)
        for name in names:
            data, info = await peer.get(store, name)
            document = await peer.raw_meta(js, bucket, name)
            found[name] = Stored(data, info, dict(document.doc.get("metadata") or {}))
    return found


def natspy_get(url: str, bucket: str, *names: str) -> dict[str, Stored]:
    return run(_natspy_get(url, bucket, list(names)))


async def _natspy_names(url: str, bucket: str) -> set[str]:
    async with peer.connect(url) as js:
        store = await peer.open_bucket(js, bucket)
        return {info.name for info in await peer.list_objects(store, ignore_deletes=True)}


def natspy_names(url: str, bucket: str, prefix: str = "") -> set[str]:
    """Live object names under ``prefix``, as nats-py's list gives them."""
    return {name for name in run(_natspy_names(url, bucket)) if name.startswith(prefix)}


async def _natspy_put(url: str, bucket: str, name: str, data: bytes) -> None:
    async with peer.connect(url) as js:
        await peer.put(await peer.open_bucket(js, bucket), name, data)


def natspy_put(url: str, bucket: str, name: str, data: bytes) -> None:
    run(_natspy_put(url, bucket, name, data))


# Generated trees --------------------------------------------------------------------------------

#: (relative path, size, mode, uid, gid) of the files of :func:`make_tree`.
TREE_FILES = [
    ("empty.txt", 0, 0o644, 0, 0),
    ("one.byte", 1, 0o600, 0, 0),
    ("docs/readme.md", 1000, 0o444, 0, 0),
    ("docs/deep/er/still.txt", 4095, 0o640, 0, 0),
    ("docs/ünïcødé — name.txt", 333, 0o644, 0, 0),
    ("bin/tool.sh", 300, 0o755, 0, 0),
    ("data/chunk-exact.bin", CHUNK, 0o644, 0, 0),
    ("data/chunk-plus-one.bin", CHUNK + 1, 0o664, 0, 0),
    ("data/several MiB.bin", 3 * 1024 * 1024 + 7, 0o600, 0, 0),
    ("data/owned.txt", 77, 0o640, 1234, 5678),
    ("data/before-1970.txt", 12, 0o644, 0, 0),
]
#: (relative path, mode) of the directories, parents first.
TREE_DIRS = [
    ("docs", 0o755),
    ("docs/deep", 0o750),
    ("docs/deep/er", 0o700),
    ("bin", 0o755),
    ("data", 0o775),
    ("empty-dir", 0o700),
    ("sticky", 0o1777),
]
#: (relative path, target) of the symlinks.
TREE_LINKS = [
    ("links/to-readme", "../docs/readme.md"),
    ("links/dangling", "../../nowhere/x y"),
]


def make_tree(root: Path) -> None:
    """A local tree of every kind of entry ``cp -a`` and ``tar`` keep: files of 0 bytes to a few
    MiB (one exactly a chunk, one a byte more), varied modes and owners, a unicode name,
    symlinks (one dangling), an empty directory, a sticky one, and old mtimes (one before 1970).
    """
    root.mkdir()
    for name, mode in TREE_DIRS:
        (root / name).mkdir()
        os.chmod(root / name, mode)
    (root / "links").mkdir()
    for seed, (name, size, mode, uid, gid) in enumerate(TREE_FILES):
        path = root / name
        path.write_bytes(payload(size, seed=100 + seed))
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        mtime = -1_234_567_891 if "1970" in name else OLD_NS + seed * 1_000_000_007
        os.utime(path, ns=(mtime, mtime))
    for seed, (name, target) in enumerate(TREE_LINKS):
        os.symlink(target, root / name)
        mtime = OLD_NS + 500 + seed
        os.utime(root / name, ns=(mtime, mtime), follow_symlinks=False)
    directories = ["links", *(name for name, _ in TREE_DIRS)]
    for seed, name in enumerate(sorted(directories, key=len, reverse=True)):
        mtime = OLD_NS + 900 + seed
        os.utime(root / name, ns=(mtime, mtime))
    os.utime(root, ns=(OLD_NS, OLD_NS))


Snapshot = dict[str, tuple[Any, ...]]


def snapshot(root: Path) -> Snapshot:
    """Every entry below ``root`` (and ``.``): type, permission bits, owner, mtime in ns, and
    the SHA-256 of a file's bytes or a symlink's target. Directory sizes are left out (a local
    filesystem counts blocks, the mount 0)."""

    def entry(path: Path) -> tuple[Any, ...]:
        st = os.lstat(path)
        common = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(path), st.st_uid, st.st_gid, st.st_mtime_ns)
        if stat.S_ISDIR(st.st_mode):
            return ("dir", *common)
        assert stat.S_ISREG(st.st_mode), path
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return ("file", *common, st.st_size, digest)

    def walk() -> Snapshot:
        found = {".": entry(root)}
        for directory, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(directory, name)
                found[str(path.relative_to(root))] = entry(path)
        return found

    return run_io(walk, timeout=60, what=f"a snapshot of {root}")


def tree_differences(expected: Snapshot, got: Snapshot) -> list[str]:
    """Readable differences between two snapshots (empty when equal)."""
    lines = [f"missing: {name}" for name in sorted(expected.keys() - got.keys())]
    lines += [f"extra: {name}" for name in sorted(got.keys() - expected.keys())]
    lines += [
        f"{name}: expected {expected[name]}, got {got[name]}"
        for name in sorted(expected.keys() & got.keys())
        if expected[name] != got[name]
    ]
    return lines


# 1. cp -a ---------------------------------------------------------------------------------------


def test_cp_a_in_and_back_out_keeps_bytes_modes_owners_and_ns_mtimes(
    shared: Shared, work: Path, tmp_path: Path
) -> None:
    """``cp -a`` into the mount, ``diff -r``; then ``cp -a`` back out of a second mount of the
    bucket (a new process: only what was stored) and ``diff -r`` again. Every entry's mode,
    owner and mtime (to the nanosecond) survives both ways."""
    source = tmp_path / "src"
    make_tree(source)
    expected = snapshot(source)
    program("cp", "-a", source, work / "tree")
    program("diff", "-r", "--no-dereference", source, work / "tree")
    assert tree_differences(expected, snapshot(work / "tree")) == []
    out = tmp_path / "out"
    with shared.again("cp-out") as again:
        program("cp", "-a", again / work.name / "tree", out)
    program("diff", "-r", "--no-dereference", source, out)
    assert tree_differences(expected, snapshot(out)) == []
    # The directory markers and files are objects any client lists.
    prefix = f"{work.name}/tree/"
    names = natspy_names(shared.url, shared.bucket, prefix)
    assert {prefix + name for name, *_ in TREE_FILES} <= names
    assert {prefix + name + "/" for name, _ in TREE_DIRS} <= names


# 2. rsync ---------------------------------------------------------------------------------------


def make_many(root: Path, count: int) -> None:
    """``count`` small files (0 to 3 KiB) in 20 x 7 directories, with old mtimes and varied
    modes, plus two symlinks and an empty directory."""
    rng = random.Random(2000)
    for i in range(count):
        directory = root / f"d{i % 20:02d}" / f"e{i % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"f{i:05d}.txt"
        path.write_bytes(payload(rng.randrange(0, 3000), seed=i))
        os.chmod(path, (0o644, 0o600, 0o755)[i % 3])
        mtime = OLD_NS + i * 1_000_001
        os.utime(path, ns=(mtime, mtime))
    (root / "empty").mkdir()
    os.symlink("d00/e0/f00000.txt", root / "first")
    os.symlink("../elsewhere", root / "d01" / "out")


_TRANSFERRED = re.compile(r"^Number of regular files transferred: ([\d,]+)$", re.MULTILINE)


def rsync_changes(source: Path, destination: Path) -> tuple[list[str], int]:
    """``rsync -a --itemize-changes --stats``: its itemized lines and the files it transferred."""
    done = program("rsync", "-a", "--itemize-changes", "--stats", f"{source}/", f"{destination}/")
    itemized, _, stats = done.stdout.partition("\nNumber of files:")
    found = _TRANSFERRED.search(stats)
    assert found is not None, done.stdout
    return [line for line in itemized.splitlines() if line.strip()], int(
        found.group(1).replace(",", "")
    )


def test_rsync_a_quick_check_finds_nothing_to_do_even_after_a_remount(
    nats_url: str, own_bucket: str, tmp_path: Path
) -> None:
    """rsync's quick check (size and mtime) holds for a tree of 2,000 small files written by
    ``rsync -a``: a second run transfers nothing, and so does a third by a new mount process."""
    source = tmp_path / "src"
    make_many(source, RSYNC_FILES)
    mountpoint = tmp_path / "mnt"
    with mounted(nats_url, own_bucket, mountpoint):
        program("rsync", "-a", f"{source}/", f"{mountpoint}/tree/")
        assert rsync_changes(source, mountpoint / "tree") == ([], 0)
    with mounted(nats_url, own_bucket, mountpoint):
        assert rsync_changes(source, mountpoint / "tree") == ([], 0)
        program("diff", "-r", "--no-dereference", source, mountpoint / "tree")
    names = natspy_names(nats_url, own_bucket)
    assert sum(not name.endswith("/") for name in names) == RSYNC_FILES + 2  # + 2 symlinks
    assert "tree/empty/" in names


# 3. tar -----------------------------------------------------------------------------------------


def tar_members(archive: Path) -> dict[str, tuple[Any, ...]]:
    """Each member of a tar archive: type, mode, owner, mtime, size, link target, bytes' hash."""
    members = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            data = b""
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                data = extracted.read()
            members[member.name.removeprefix("./").rstrip("/") or "."] = (
                member.type,
                member.mode,
                member.uid,
                member.gid,
                member.pax_headers.get("mtime", str(member.mtime)),
                member.size,
                member.linkname,
                hashlib.sha256(data).hexdigest(),
            )
    return members


def test_tar_x_into_the_mount_and_tar_c_out_of_it(work: Path, tmp_path: Path) -> None:
    """``tar x`` of a POSIX (pax, ns mtimes) archive into the mount, ``tar c`` of the extracted
    tree: both archives list the same entries with the same attributes and bytes."""
    source = tmp_path / "src"
    make_tree(source)
    archive, again = tmp_path / "in.tar", tmp_path / "out.tar"
    program("tar", "--format=posix", "-cf", archive, "-C", source, ".")
    run_io((work / "x").mkdir)
    # (--warning=no-timestamp: tar finds the pre-1970 mtime "implausibly old"; it keeps it.)
    program("tar", "--warning=no-timestamp", "-xpf", archive, "-C", work / "x")
    program("tar", "--format=posix", "-cf", again, "-C", work / "x", ".")
    before, after = tar_members(archive), tar_members(again)
    assert len(before) == len(TREE_FILES) + len(TREE_DIRS) + len(TREE_LINKS) + 2  # links/, .
    assert after == before
    program("diff", "-r", "--no-dereference", source, work / "x")


# 4. git -----------------------------------------------------------------------------------------


def git_env(home: Path) -> dict[str, str]:
    """No system or user git configuration: the test's identity and nothing else."""
    return clean_env(
        {
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Osfs Test",
            "GIT_AUTHOR_EMAIL": "test@osfs.invalid",
            "GIT_COMMITTER_NAME": "Osfs Test",
            "GIT_COMMITTER_EMAIL": "test@osfs.invalid",
            "LC_ALL": "C.UTF-8",
        }
    )


def test_git_clone_status_log_fsck_and_commit_in_the_mount(work: Path, tmp_path: Path) -> None:
    """A repository cloned into the mount is clean and whole, takes a commit, and that commit
    can be pushed back to where it came from."""
    env = git_env(tmp_path / "home")
    (tmp_path / "home").mkdir()
    repo = tmp_path / "repo"

    def git(*args: str | Path, cwd: Path = repo) -> str:
        return program("git", *args, cwd=cwd, env=env).stdout

    git("init", "-q", "-b", "main", repo, cwd=tmp_path)
    (repo / "README.md").write_text("# a repository\n")
    (repo / "src").mkdir()
    (repo / "src" / "main.py").write_text("print('hello')\n")
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    (repo / "run.sh").write_text("#!/bin/sh\necho run\n")
    os.chmod(repo / "run.sh", 0o755)
    os.symlink("src/main.py", repo / "main-link")
    (repo / "data.bin").write_bytes(payload(300_000, seed=4))
    git("add", "-A")
    git("commit", "-q", "-m", "second: a script, a symlink, a blob")
    (repo / "README.md").write_text("# a repository\n\nmore\n")
    git("commit", "-q", "-am", "third")
    history = git("log", "--format=%H %s")

    clone = work / "clone"
    git("clone", "-q", f"file://{repo}", clone, cwd=tmp_path)
    assert git("status", "--porcelain", cwd=clone) == ""
    assert git("log", "--format=%H %s", cwd=clone) == history
    git("fsck", "--full", "--strict", cwd=clone)
    assert stat.S_IMODE(lstat(clone / "run.sh").st_mode) == 0o755
    assert run_io(lambda: os.readlink(clone / "main-link")) == "src/main.py"

    write_file(clone / "new.txt", b"made in the mount\n")
    git("add", "new.txt", cwd=clone)
    git("commit", "-q", "-m", "fourth, in the mount", cwd=clone)
    assert git("status", "--porcelain", cwd=clone) == ""
    log = git("log", "--format=%s", cwd=clone).splitlines()
    assert log == ["fourth, in the mount", "third", "second: a script, a symlink, a blob", "first"]
    git("fsck", "--full", "--strict", cwd=clone)
    git("push", "-q", "origin", "HEAD:refs/heads/from-mount", cwd=clone)
    assert git("log", "-1", "--format=%s", "from-mount") == "fourth, in the mount\n"
    assert git("show", "from-mount:new.txt") == "made in the mount\n"


# 5. sqlite3 -------------------------------------------------------------------------------------

SQL_FILL = (
    """
create table items(id integer primary key, name text not null, value blob not null);
create index items_name on items(name);
"""
    + "".join(
        f"""
begin;
with recursive n(x) as (values({start}) union all select x + 1 from n where x < {start + 249})
insert into items(name, value) select 'item-' || x, zeroblob(50 + x % 200) from n;
commit;
"""
        for start in range(1, 3001, 250)
    )
    + """
begin;
update items set name = name || '-odd' where id % 2 = 1;
delete from items where id % 10 = 0;
commit;
"""
)

SQL_QUERY = """
select count(*), sum(length(value)), count(*) filter (where name like '%-odd') from items;
pragma integrity_check;
"""


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_sqlite3_database_on_the_mount_survives_a_remount(
    nats_url: str, own_bucket: str, tmp_path: Path, journal: str
) -> None:
    """sqlite3 fills a database of 3,000 rows in 13 transactions (an fsync per commit; with a
    rollback journal, or a write-ahead log whose index is a shared ``mmap`` of the ``-shm``
    file); the database answers and checks ``ok``, and still does from a new mount and as the
    object nats-py fetches."""
    mountpoint = tmp_path / "mnt"
    expected_rows = 3000 - 300
    expected_bytes = sum(50 + x % 200 for x in range(1, 3001) if x % 10)
    expected = f"{expected_rows}|{expected_bytes}|1500\nok\n"
    with mounted(nats_url, own_bucket, mountpoint):
        run_io((mountpoint / "db").mkdir)
        database = mountpoint / "db" / "items.sqlite"
        program("sqlite3", "-bail", database, stdin=f"pragma journal_mode={journal};{SQL_FILL}")
        assert program("sqlite3", database, SQL_QUERY).stdout == expected
        assert listdir(mountpoint / "db") == ["items.sqlite"]  # the journal or log is gone
    with mounted(nats_url, own_bucket, mountpoint):
        assert program("sqlite3", mountpoint / "db" / "items.sqlite", SQL_QUERY).stdout == expected
    assert natspy_names(nats_url, own_bucket) == {"db/", "db/items.sqlite"}
    # The object itself is the whole database: a copy fetched by nats-py opens and checks ok.
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(natspy_get(nats_url, own_bucket, "db/items.sqlite")["db/items.sqlite"].data)
    assert program("sqlite3", copy, SQL_QUERY).stdout == expected


# 6. An editor's save ----------------------------------------------------------------------------


def test_editor_save_replaces_the_file_and_an_open_reader_keeps_the_old_bytes(
    shared: Shared, work: Path
) -> None:
    """Write ``.name.tmp``, fsync, rename it over ``name`` (vim's and most editors' safe save).

    The original is put by nats-py, so the mount has not a byte of it in any cache: a reader
    that opened it before the save must be served its bytes (POSIX) although the store drops
    the replaced version, until it closes; a new open reads the new bytes, and so does nats-py.
    """
    path, temporary = work / "notes.txt", work / ".notes.txt.tmp"
    old, new = payload(5 * CHUNK + 99, seed=61), payload(2 * CHUNK + 1, seed=62)
    natspy_put(shared.url, shared.bucket, object_name(shared, path), old)
    wait_until_path(path)
    reader = run_io(lambda: os.open(path, os.O_RDONLY), what="open the original")
    try:
        assert run_io(lambda: os.pread(reader, 100, 0)) == old[:100]

        def save() -> None:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, new)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, path)

        run_io(save, what="the editor's save")
        assert read_file(path) == new
        assert listdir(work) == ["notes.txt"]
        assert run_io(lambda: os.pread(reader, len(old) + 10, 0), what="old read") == old
        assert run_io(lambda: os.fstat(reader)).st_size == len(old)
    finally:
        run_io(lambda: os.close(reader))
    assert read_file(path) == new
    stored = natspy_get(shared.url, shared.bucket, object_name(shared, path))
    assert stored[object_name(shared, path)].data == new
    assert natspy_names(shared.url, shared.bucket, f"{work.name}/") == {
        f"{work.name}/",
        object_name(shared, path),
    }


# 7. Namespace semantics -------------------------------------------------------------------------


def test_mkdir_rmdir_and_an_empty_directory_is_a_marker_object(shared: Shared, work: Path) -> None:
    """Every directory made is a marker object ``d/``, so an empty one survives a new mount;
    rmdir of a non-empty one is ENOTEMPTY, of an empty one deletes its marker."""

    def tree() -> None:
        os.makedirs(work / "full" / "sub")
        (work / "full" / "sub" / "file").write_bytes(b"x")
        os.mkdir(work / "empty")
        os.mkdir(work / "short-lived")

    run_io(tree)
    assert io_errno(lambda: os.rmdir(work / "full")) == errno.ENOTEMPTY
    assert io_errno(lambda: os.rmdir(work / "full" / "sub")) == errno.ENOTEMPTY
    assert io_errno(lambda: os.mkdir(work / "empty")) == errno.EEXIST
    assert io_errno(lambda: os.rmdir(work / "full" / "sub" / "file")) == errno.ENOTDIR
    run_io(lambda: os.rmdir(work / "short-lived"))
    assert listdir(work) == ["empty", "full"]
    prefix = f"{work.name}/"
    assert natspy_names(shared.url, shared.bucket, prefix) == {
        prefix,
        prefix + "empty/",
        prefix + "full/",
        prefix + "full/sub/",
        prefix + "full/sub/file",
    }
    with shared.again("mkdir-again") as again:
        assert listdir(again / work.name) == ["empty", "full"]
        assert stat.S_ISDIR(lstat(again / work.name / "empty").st_mode)
        assert listdir(again / work.name / "empty") == []
    run_io(lambda: os.unlink(work / "full" / "sub" / "file"))
    run_io(lambda: os.rmdir(work / "full" / "sub"))
    run_io(lambda: os.rmdir(work / "full"))
    run_io(lambda: os.rmdir(work / "empty"))
    assert listdir(work) == []
    assert natspy_names(shared.url, shared.bucket, prefix) == {prefix}


def test_an_unlinked_open_file_lives_until_closed_and_never_comes_back(
    nats_url: str, own_bucket: str, tmp_path: Path
) -> None:
    """POSIX: an unlinked file lives on for its open descriptors. A stored file (put by
    nats-py: not cached anywhere in the mount) keeps reading; a new file, unlinked before its
    first close, keeps taking writes; neither name comes back, not even after the mount that
    held them is gone (its spool must not keep the new file's bytes for the next mount)."""
    old = payload(4 * CHUNK + 5, seed=71)
    natspy_put(nats_url, own_bucket, "d/", b"")
    natspy_put(nats_url, own_bucket, "d/stored.bin", old)
    mountpoint = tmp_path / "mnt"
    with mounted(nats_url, own_bucket, mountpoint):
        directory = mountpoint / "d"
        reader = run_io(lambda: os.open(directory / "stored.bin", os.O_RDONLY))
        writer = run_io(lambda: os.open(directory / "new.txt", os.O_RDWR | os.O_CREAT, 0o644))
        try:
            assert run_io(lambda: os.pread(reader, 10, 0)) == old[:10]
            assert run_io(lambda: os.write(writer, b"before unlink, ")) == 15
            run_io(lambda: os.unlink(directory / "stored.bin"))
            run_io(lambda: os.unlink(directory / "new.txt"))
            assert listdir(directory) == []
            assert natspy_names(nats_url, own_bucket) == {"d/"}
            assert run_io(lambda: os.pread(reader, len(old), 0)) == old
            assert run_io(lambda: os.write(writer, b"after unlink")) == 12
            assert run_io(lambda: os.pread(writer, 100, 0)) == b"before unlink, after unlink"
            assert run_io(lambda: os.fstat(writer)).st_size == 27
        finally:
            run_io(lambda: os.close(reader))
            run_io(lambda: os.close(writer))
        assert listdir(directory) == []
    with mounted(nats_url, own_bucket, mountpoint):
        assert listdir(mountpoint / "d") == []
    assert natspy_names(nats_url, own_bucket) == {"d/"}


def test_rename_onto_an_existing_file_replaces_it(shared: Shared, work: Path) -> None:
    """The renamed file takes the name (its inode and its stored bytes, not copied: the same
    nuid); the replaced one is gone for every client."""
    write_file(work / "a.txt", b"the new content\n")
    write_file(work / "b.txt", payload(3 * CHUNK, seed=81))
    source = object_name(shared, work / "a.txt")
    nuid = natspy_get(shared.url, shared.bucket, source)[source].info.nuid
    inode = lstat(work / "a.txt").st_ino
    run_io(lambda: os.rename(work / "a.txt", work / "b.txt"))
    assert listdir(work) == ["b.txt"]
    assert lstat(work / "b.txt").st_ino == inode  # the renamed file, not the replaced one
    assert read_file(work / "b.txt") == b"the new content\n"
    name = object_name(shared, work / "b.txt")
    assert natspy_names(shared.url, shared.bucket, f"{work.name}/") == {f"{work.name}/", name}
    stored = natspy_get(shared.url, shared.bucket, name)[name]
    assert (stored.data, stored.info.nuid) == (b"the new content\n", nuid)
    # RENAME_NOREPLACE, as mv --no-clobber (GNU coreutils >= 9.1 asks the kernel for it).
    write_file(work / "c.txt", b"c\n")
    program("mv", "--no-clobber", work / "c.txt", work / "b.txt")
    assert read_file(work / "b.txt") == b"the new content\n"
    assert read_file(work / "c.txt") == b"c\n"


def test_rename_of_a_directory_moves_every_object_below_it(shared: Shared, work: Path) -> None:
    """Markers, a symlink and files all move (the files' bytes are not copied: same nuids);
    no old name is left in nats-py's list; inode numbers stay; a new mount shows the tree."""
    contents = {
        "top.txt": b"top\n",
        "sub/deeper/file.bin": payload(2 * CHUNK + 3, seed=91),
        "sub/other.txt": b"other\n",
    }

    def tree() -> None:
        os.makedirs(work / "before" / "sub" / "deeper")
        os.mkdir(work / "before" / "empty")
        os.symlink("sub/other.txt", work / "before" / "link")

    run_io(tree)
    for name, data in contents.items():
        write_file(work / "before" / name, data)
    prefix = f"{work.name}/"
    nuids = {
        name: stored.info.nuid
        for name, stored in natspy_get(
            shared.url, shared.bucket, *(f"{prefix}before/{name}" for name in contents)
        ).items()
    }
    inode = lstat(work / "before" / "sub").st_ino
    run_io(lambda: os.rename(work / "before", work / "after"))
    assert listdir(work) == ["after"]
    assert lstat(work / "after" / "sub").st_ino == inode
    objects = {
        "",
        "sub/",
        "sub/deeper/",
        "empty/",
        "link",
        *contents,
    }
    names = natspy_names(shared.url, shared.bucket, prefix)
    assert names == {prefix, *(f"{prefix}after/{name}" for name in objects)}
    stored = natspy_get(shared.url, shared.bucket, *(f"{prefix}after/{name}" for name in contents))
    for name, data in contents.items():
        got = stored[f"{prefix}after/{name}"]
        assert got.data == data, name
        assert got.info.nuid == nuids[f"{prefix}before/{name}"], name  # no data copied
    with shared.again("rename-dir-again") as again:
        moved = again / work.name / "after"
        assert listdir(moved) == ["empty", "link", "sub", "top.txt"]
        assert run_io(lambda: os.readlink(moved / "link")) == "sub/other.txt"
        for name, data in contents.items():
            assert read_file(moved / name) == data, name


#: Targets a symlink must give back exactly: relative, with spaces, unicode, absolute,
#: dangling, odd but legal ('.', '..', '//', a trailing slash, a tab), 1,000 bytes long.
ODD_TARGETS = [
    "../../x y/z",
    "ünïcødé/→/日本語.txt",
    "/etc/hostname",
    "nowhere at all",
    ".",
    "..",
    "a//b/",
    "tab\there",
    " leading and trailing ",
    "x" * 1000,
]


def test_symlink_targets_round_trip_exactly(shared: Shared, work: Path) -> None:
    """``readlink`` gives back exactly what ``symlink`` got, in this mount and a new one, and
    the target is the object's ``osfs.symlink`` metadata."""
    for i, target in enumerate(ODD_TARGETS):
        run_io(partial(os.symlink, target, work / f"link-{i}"))
    names = [object_name(shared, work / f"link-{i}") for i in range(len(ODD_TARGETS))]
    stored = natspy_get(shared.url, shared.bucket, *names)
    with shared.again("symlink-again") as again:
        for i, target in enumerate(ODD_TARGETS):
            for root in (shared.root, again):
                path = root / work.name / f"link-{i}"
                assert stat.S_ISLNK(lstat(path).st_mode), target
                assert run_io(partial(os.readlink, path)) == target
                assert lstat(path).st_size == len(target.encode())
            assert stored[names[i]].metadata["osfs.symlink"] == target
            assert stored[names[i]].data == b""
    # The exact bytes, as a program that reads the link as bytes gets them (UTF-8).
    raw = run_io(lambda: os.readlink(os.fsencode(work / "link-1")))
    assert raw == ODD_TARGETS[1].encode("utf-8")


def test_chmod_chown_and_utime_are_stored_and_survive_a_remount(shared: Shared, work: Path) -> None:
    """Mode, owner and mtime of a file, a directory, a symlink and a directory that exists only
    by the objects below it (it gets a marker) are stored in metadata, not by a new upload (the
    file keeps its nuid), and a new mount shows them."""
    file, directory, link, implicit = work / "file", work / "dir", work / "link", work / "implicit"
    write_file(file, b"attributes\n")
    natspy_put(shared.url, shared.bucket, object_name(shared, implicit / "inner.txt"), b"in\n")
    wait_until_path(implicit / "inner.txt")
    nuid = natspy_get(shared.url, shared.bucket, object_name(shared, file))[
        object_name(shared, file)
    ].info.nuid

    def change() -> None:
        os.mkdir(directory)
        os.symlink("file", link)
        os.chmod(file, 0o604)
        os.chown(file, 4321, 8765)
        os.utime(file, ns=(1, OLD_NS))
        os.chmod(directory, 0o710)
        os.chown(directory, 11, 22)
        os.utime(directory, ns=(1, OLD_NS + 1))
        os.chown(link, 33, 44, follow_symlinks=False)
        os.utime(link, ns=(1, OLD_NS + 2), follow_symlinks=False)
        os.chmod(implicit, 0o701)
        os.utime(implicit, ns=(1, OLD_NS + 3))

    run_io(change)
    expected = {
        "file": (stat.S_IFREG | 0o604, 4321, 8765, OLD_NS),
        "dir": (stat.S_IFDIR | 0o710, 11, 22, OLD_NS + 1),
        "link": (stat.S_IFLNK | 0o777, 33, 44, OLD_NS + 2),
        "implicit": (stat.S_IFDIR | 0o701, os.getuid(), os.getgid(), OLD_NS + 3),
    }

    def attributes(root: Path) -> dict[str, tuple[int, int, int, int]]:
        found = {}
        for name in expected:
            st = lstat(root / name)
            found[name] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)
        return found

    assert attributes(work) == expected
    with shared.again("attrs-again") as again:
        assert attributes(again / work.name) == expected
    name = object_name(shared, file)
    stored = natspy_get(shared.url, shared.bucket, name, object_name(shared, implicit) + "/")
    assert stored[name].metadata == {
        "osfs.mode": "100604",
        "osfs.uid": "4321",
        "osfs.gid": "8765",
        "osfs.mtime": str(OLD_NS),
    }
    assert stored[name].info.nuid == nuid  # metadata only: the bytes were not stored again
    assert stored[object_name(shared, implicit) + "/"].metadata["osfs.mode"] == "40701"
    assert read_file(file) == b"attributes\n"


def test_user_xattrs_are_object_metadata(shared: Shared, work: Path) -> None:
    """``user.<key>`` is metadata key ``<key>``: set, read, listed, removed, stored (nats-py
    reads it in the meta document) and shown by a new mount."""
    path = work / "tagged.txt"
    write_file(path, b"tagged\n")
    name = object_name(shared, path)

    def tag() -> None:
        os.setxattr(path, "user.color", b"blue")
        os.setxattr(path, "user.ünï code", "värde ✓".encode())
        os.setxattr(path, "user.to-remove", b"soon gone")
        os.removexattr(path, "user.to-remove")

    run_io(tag)
    assert run_io(lambda: os.getxattr(path, "user.color")) == b"blue"
    assert run_io(lambda: os.getxattr(path, "user.ünï code")) == "värde ✓".encode()
    listed = set(run_io(lambda: os.listxattr(path)))
    assert {"user.color", "user.ünï code"} <= listed
    assert "user.to-remove" not in listed
    assert io_errno(lambda: os.getxattr(path, "user.to-remove")) == errno.ENODATA
    assert io_errno(lambda: os.removexattr(path, "user.never-set")) == errno.ENODATA
    # The mount's own keys and the computed ones are not user metadata.
    assert io_errno(lambda: os.setxattr(path, "user.osfs.mode", b"777")) == errno.EPERM
    assert io_errno(lambda: os.setxattr(path, "user.nats.digest", b"x")) == errno.EPERM
    metadata = natspy_get(shared.url, shared.bucket, name)[name].metadata
    assert metadata["color"] == "blue"
    assert metadata["ünï code"] == "värde ✓"
    assert "to-remove" not in metadata
    assert {"osfs.mode", "osfs.mtime"} <= metadata.keys()
    with shared.again("xattr-again") as again:
        assert run_io(lambda: os.getxattr(again / name, "user.color")) == b"blue"
    assert read_file(path) == b"tagged\n"


def test_hard_links_and_fifos_are_refused_with_eperm(shared: Shared, work: Path) -> None:
    """An object has one name and holds bytes: ``link`` and ``mkfifo`` are EPERM, leaving
    nothing behind."""
    write_file(work / "file", b"one name only\n")
    assert io_errno(lambda: os.link(work / "file", work / "hard")) == errno.EPERM
    assert io_errno(lambda: os.mkfifo(work / "fifo")) == errno.EPERM
    assert listdir(work) == ["file"]
    assert natspy_names(shared.url, shared.bucket, f"{work.name}/") == {
        f"{work.name}/",
        object_name(shared, work / "file"),
    }


def test_truncate_by_path_to_smaller_and_larger_sizes(shared: Shared, work: Path) -> None:
    """``truncate(2)`` by path, with no descriptor open (so no close to store it): each size,
    across chunk borders, to 0 and back up with zeros, is stored at once."""
    path = work / "cut.bin"
    name = object_name(shared, path)
    data = payload(3 * CHUNK + 17, seed=101)
    write_file(path, data)
    for size in (CHUNK + 5, 10, 0, 2 * CHUNK + 1, 2 * CHUNK + 1, 7):
        run_io(partial(os.truncate, path, size))
        data = data[:size] + bytes(max(0, size - len(data)))
        assert lstat(path).st_size == size
        assert read_file(path) == data, size
        assert natspy_get(shared.url, shared.bucket, name)[name].data == data, size


def test_append_with_o_append(shared: Shared, work: Path) -> None:
    """``O_APPEND`` writes land at the end whatever the offset, by Python and by the shell."""
    path = work / "log.txt"
    write_file(path, payload(CHUNK + 3, seed=111))
    expected = payload(CHUNK + 3, seed=111)

    def append(line: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            os.lseek(fd, 0, os.SEEK_SET)  # O_APPEND ignores the offset
            os.write(fd, line)
        finally:
            os.close(fd)

    for i in range(5):
        line = f"line {i}\n".encode()
        run_io(partial(append, line))
        expected += line
    program("sh", "-c", 'echo "from the shell" >> "$1"', "sh", path)
    expected += b"from the shell\n"
    assert read_file(path) == expected
    name = object_name(shared, path)
    assert natspy_get(shared.url, shared.bucket, name)[name].data == expected


def test_random_writes_into_a_stored_multi_chunk_file(shared: Shared, work: Path) -> None:
    """pwrites here and there (across chunk borders, past the end) into a file put by nats-py:
    the mount copies the stored bytes in first; every byte ends up where POSIX says."""
    path = work / "patched.bin"
    name = object_name(shared, path)
    data = bytearray(payload(6 * CHUNK + 1234, seed=121))
    natspy_put(shared.url, shared.bucket, name, bytes(data))
    wait_until_path(path)
    rng = random.Random(121)
    writes = [(CHUNK - 3, b"across a chunk border"), (0, b"start"), (len(data) - 2, b"end+grow")]
    for _ in range(40):
        size = rng.choice((1, 100, 4096, CHUNK, CHUNK + 1, 70_000))
        writes.append((rng.randrange(0, len(data) + 3000), rng.randbytes(size)))

    def patch() -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            for offset, chunk in writes:
                assert os.pwrite(fd, chunk, offset) == len(chunk)
        finally:
            os.close(fd)

    run_io(patch, timeout=30)
    for offset, chunk in writes:
        if offset > len(data):
            data.extend(bytes(offset - len(data)))
        data[offset : offset + len(chunk)] = chunk
    assert read_file(path) == bytes(data)
    assert natspy_get(shared.url, shared.bucket, name)[name].data == bytes(data)
    with shared.again("pwrite-again") as again:
        assert read_file(again / name) == bytes(data)


def test_a_reader_sees_what_another_descriptor_just_wrote(shared: Shared, work: Path) -> None:
    """Reads through other descriptors see every write at once, before any close: a plain one
    (the kernel's page cache), an ``O_DIRECT`` one (the kernel writes its dirty pages back and
    asks the mount, which answers from the file's spool) and another process's."""
    path = work / "shared.txt"
    writer = run_io(lambda: os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    readers = [
        run_io(lambda: os.open(path, os.O_RDONLY)),
        run_io(lambda: os.open(path, os.O_RDONLY | os.O_DIRECT)),
    ]
    expected = b""
    try:
        for piece in (b"first ", b"second ", payload(CHUNK + 1, seed=131)):
            run_io(partial(os.write, writer, piece))
            expected += piece
            for reader in readers:
                assert run_io(partial(os.pread, reader, 2 * CHUNK, 0)) == expected, reader
        run_io(lambda: os.pwrite(writer, b"FIRST", 0))
        expected = b"FIRST" + expected[5:]
        for reader in readers:
            assert run_io(partial(os.pread, reader, 2 * CHUNK, 0)) == expected, reader
        assert program("head", "-c", "12", path).stdout == "FIRST second"
    finally:
        for fd in (*readers, writer):
            run_io(partial(os.close, fd))
    name = object_name(shared, path)
    assert natspy_get(shared.url, shared.bucket, name)[name].data == expected


# 8. Interop -------------------------------------------------------------------------------------

#: Sizes of the files the interop test writes: empty, tiny, a chunk, a chunk and a byte, MiBs.
INTEROP_SIZES = (0, 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 5)


def test_files_written_through_the_mount_read_back_with_natspy_and_natsjs(
    shared: Shared, work: Path
) -> None:
    """Byte-identical, digest-verified (both clients check the SHA-256 on get, and so do we),
    with the size right and the POSIX metadata (``osfs.mode``, ``osfs.mtime``) in the meta
    document. The other direction, objects by nats-py and nats.js read through the mount, is
    ``test_mount_read``'s."""
    try:
        natsjs = NatsJs(shared.url)
    except NatsJsSetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    files = {f"{work.name}/size-{size}.bin": payload(size, seed=size + 1) for size in INTEROP_SIZES}
    modes = {}
    for i, (name, data) in enumerate(files.items()):
        write_file(shared.root / name, data, mode=(0o644, 0o600, 0o755, 0o640, 0o444)[i])
        modes[name] = stat.S_IMODE(lstat(shared.root / name).st_mode)
    mtimes = {name: lstat(shared.root / name).st_mtime_ns for name in files}
    stored = natspy_get(shared.url, shared.bucket, *files)
    for name, data in files.items():
        got = stored[name]
        assert got.data == data, name
        assert got.info.size == len(data), name
        assert got.info.digest == sha256_digest(data), name
        assert got.metadata["osfs.mode"] == f"{stat.S_IFREG | modes[name]:o}", name
        assert got.metadata["osfs.mtime"] == str(mtimes[name]), name
        js_data, js_info = natsjs.get(shared.bucket, name)
        assert js_data == data, name
        assert js_info["size"] == len(data), name
        assert js_info["digest"] == sha256_digest(data), name
        assert js_info["metadata"]["osfs.mode"] == f"{stat.S_IFREG | modes[name]:o}", name
        assert js_info["metadata"]["osfs.mtime"] == str(mtimes[name]), name
    assert {name for name in files if (stored[name].info.chunks or 0) > 1} == {
        f"{work.name}/size-{size}.bin" for size in INTEROP_SIZES if size > CHUNK
    }
