"""Spool files and instance folders on a real local disk (``osfs.fs.spool``).

Rules for these tests:
1. Real temporary directories, real ``flock``: a mount that is gone is a folder whose lock file
   nobody holds (made by hand, or left by :meth:`SpoolDir.close`); a live one is a folder an
   open :class:`SpoolDir` holds. ``flock`` locks belong to open file descriptions, so two
   SpoolDirs of one process exclude each other as two processes would.
2. What recovery must never do is checked on disk: adopt a live mount's files, lose a dirty
   file, upload a record it cannot read.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from osfs.core.meta import ObjectMeta
from osfs.core.spool_record import decode_record, encode_record
from osfs.fs.spool import (
    LOCK_NAME,
    OWNER_NAME,
    SpoolDir,
    SpoolFile,
    bucket_folder,
    dirty_names,
    server_id,
)

SERVERS = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]


@pytest.fixture
def bucket_dir(tmp_path: Path) -> Path:
    return bucket_folder(tmp_path / "cache", "bkt", SERVERS)


@pytest.fixture
def spool_dir(bucket_dir: Path) -> Iterator[SpoolDir]:
    spool_dir = SpoolDir.open(bucket_dir, mountpoint="/mnt/here")
    try:
        yield spool_dir
    finally:
        spool_dir.close()


def is_locked(folder: Path) -> bool:
    """Whether someone holds ``folder``'s lock (tried from a new open file description)."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # EWOULDBLOCK: held elsewhere
        return True
    finally:
        os.close(fd)
    return False


def dead_mount(
    bucket_dir: Path,
    files: dict[str, tuple[bytes | None, bytes | None]],
    *,
    name: str = "4242-deadbeef",
    lock: bool = True,
    mountpoint: str = "/mnt/gone",
) -> Path:
    """An instance folder of a mount that is gone: ``{number: (data, record)}``."""
    folder = bucket_dir / name
    folder.mkdir(parents=True)
    if lock:
        (folder / LOCK_NAME).write_bytes(b"")
    (folder / OWNER_NAME).write_text(json.dumps({"mountpoint": mountpoint, "pid": 4242}))
    for number, (data, record) in files.items():
        if data is not None:
            (folder / f"{number}.data").write_bytes(data)
        if record is not None:
            (folder / f"{number}.meta").write_bytes(record)
    return folder


def meta(name: str, **metadata: str) -> ObjectMeta:
    return ObjectMeta(name=name, metadata=metadata)


# SpoolFile ------------------------------------------------------------------------------------


def test_a_spool_file_reads_back_what_was_written(spool_dir: SpoolDir) -> None:
    spool = spool_dir.create()
    assert spool.size == 0
    assert spool.pread(0, 10) == b""
    assert spool.pwrite(0, b"hello world") == 11
    assert spool.size == 11
    assert spool.pwrite(6, b"WORLD") == 5
    assert spool.size == 11
    assert spool.pread(0, 100) == b"hello WORLD"
    assert spool.pread(3, 4) == b"lo W"
    assert spool.pread(11, 4) == b""
    assert spool.path.read_bytes() == b"hello WORLD"


def test_a_write_past_the_end_leaves_a_hole_of_zeros(spool_dir: SpoolDir) -> None:
    spool = spool_dir.create()
    spool.pwrite(0, b"ab")
    spool.pwrite(10, memoryview(b"xyz").tobytes())
    assert spool.size == 13
    assert spool.pread(0, 13) == b"ab" + bytes(8) + b"xyz"


def test_a_big_write_is_written_whole(spool_dir: SpoolDir) -> None:
    spool = spool_dir.create()
    data = os.urandom(3 << 20)
    assert spool.pwrite(5, data) == len(data)
    assert spool.size == len(data) + 5
    assert spool.pread(5, len(data)) == data


def test_truncate_cuts_and_extends_with_zeros(spool_dir: SpoolDir) -> None:
    spool = spool_dir.create()
    spool.pwrite(0, b"0123456789")
    spool.truncate(4)
    assert spool.size == 4
    assert spool.pread(0, 100) == b"0123"
    spool.truncate(8)
    assert spool.size == 8
    assert spool.pread(0, 100) == b"0123" + bytes(4)
    assert os.stat(spool.path).st_size == 8
    spool.truncate(0)
    assert spool.size == 0
    assert spool.pread(0, 100) == b""


def test_mark_dirty_writes_the_record_and_mark_clean_drops_it(spool_dir: SpoolDir) -> None:
    spool = spool_dir.create()
    assert spool.record_path == spool.path.with_suffix(".meta")
    assert not spool.record_path.exists()
    spool.mark_dirty(meta("a/b", k="1"))
    assert decode_record(spool.record_path.read_bytes()) == meta("a/b", k="1")
    spool.mark_dirty(meta("a/c", k="2"))  # rewritten in place
    assert decode_record(spool.record_path.read_bytes()) == meta("a/c", k="2")
    assert sorted(p.name for p in spool_dir.folder.iterdir()) == [
        "1.data",
        "1.meta",
        LOCK_NAME,
        OWNER_NAME,
    ]  # no temporary left behind
    assert spool_dir.dirty_records() == [spool.record_path]
    spool.mark_clean()
    assert not spool.record_path.exists()
    spool.mark_clean()  # twice is fine
    assert spool_dir.dirty_records() == []
    assert spool.path.exists()


def test_remove_deletes_data_and_record_once(spool_dir: SpoolDir) -> None:
    spool = spool_dir.create()
    spool.pwrite(0, b"x")
    spool.mark_dirty(meta("a"))
    spool.remove()
    assert not spool.path.exists()
    assert not spool.record_path.exists()
    spool.remove()  # already closed: nothing happens (and no EBADF)
    other = spool_dir.create()  # the descriptor number may be reused meanwhile
    other.pwrite(0, b"still here")
    spool.remove()
    assert other.pread(0, 100) == b"still here"


def test_create_skips_numbers_that_are_taken(spool_dir: SpoolDir) -> None:
    (spool_dir.folder / "1.data").write_bytes(b"taken")
    (spool_dir.folder / "2.data").write_bytes(b"taken")
    spool = spool_dir.create()
    assert spool.path.name == "3.data"
    assert (spool_dir.folder / "1.data").read_bytes() == b"taken"
    assert spool_dir.create().path.name == "4.data"


# SpoolDir: instance folders -------------------------------------------------------------------


def test_open_makes_a_private_locked_instance_folder(bucket_dir: Path) -> None:
    spool_dir = SpoolDir.open(bucket_dir, mountpoint="/mnt/x")
    try:
        folder = spool_dir.folder
        assert folder.parent == bucket_dir
        assert folder.name.startswith(f"{os.getpid()}-")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert is_locked(folder)
        owner = json.loads((folder / OWNER_NAME).read_text())
        assert owner == {"mountpoint": "/mnt/x", "pid": os.getpid()}
    finally:
        spool_dir.close()
    assert not folder.exists()


def test_two_mounts_of_one_bucket_coexist(bucket_dir: Path) -> None:
    first = SpoolDir.open(bucket_dir, mountpoint="/mnt/one")
    second = SpoolDir.open(bucket_dir, mountpoint="/mnt/two")
    try:
        assert first.folder != second.folder
        mine = first.create()
        mine.pwrite(0, b"first's")
        mine.mark_dirty(meta("f"))
        theirs = second.create()
        theirs.mark_dirty(meta("s"))
        # Each sees the other alive: nobody adopts anything.
        assert first.adopt() == []
        assert second.adopt() == []
        assert mine.path.read_bytes() == b"first's"
        assert first.dirty_records() == [mine.record_path]
        assert second.dirty_records() == [theirs.record_path]
        assert is_locked(first.folder)
        assert is_locked(second.folder)
    finally:
        first.close()
        second.close()


def test_close_removes_a_clean_folder(bucket_dir: Path) -> None:
    spool_dir = SpoolDir.open(bucket_dir, mountpoint="/mnt/x")
    spool = spool_dir.create()
    spool.pwrite(0, b"stored already")
    spool.mark_dirty(meta("a"))
    spool.mark_clean()
    spool_dir.close()
    assert not spool_dir.folder.exists()


def test_close_keeps_a_folder_with_dirty_files_and_frees_its_lock(bucket_dir: Path) -> None:
    spool_dir = SpoolDir.open(bucket_dir, mountpoint="/mnt/x")
    spool = spool_dir.create()
    spool.pwrite(0, b"not stored")
    spool.mark_dirty(meta("a"))
    spool_dir.close()
    assert spool.path.read_bytes() == b"not stored"
    assert spool.record_path.exists()
    assert not is_locked(spool_dir.folder)


# SpoolDir.adopt -------------------------------------------------------------------------------


def test_adopt_takes_the_dirty_files_of_a_mount_that_is_gone(
    bucket_dir: Path, spool_dir: SpoolDir
) -> None:
    dead = dead_mount(
        bucket_dir,
        {
            "1": (b"dirty one", encode_record(meta("a/one", m="1"))),
            "2": (b"clean two", None),
            "7": (b"", encode_record(meta("empty"))),
        },
    )
    mine = spool_dir.create()  # takes number 1 here: adopted files get other numbers
    adopted = spool_dir.adopt()
    assert [item.meta for item in adopted] == [meta("a/one", m="1"), meta("empty")]
    one, empty = (item.spool for item in adopted)
    assert one.path.parent == spool_dir.folder
    assert one.path != mine.path
    assert one.size == len(b"dirty one")
    assert one.pread(0, 100) == b"dirty one"
    assert one.path.read_bytes() == b"dirty one"
    assert decode_record(one.record_path.read_bytes()) == meta("a/one", m="1")
    assert empty.size == 0
    assert empty.record_path.exists()
    # The adopted spool is an ordinary one: it takes writes and goes with remove().
    one.pwrite(9, b"!")
    assert one.path.read_bytes() == b"dirty one!"
    assert not dead.exists()
    one.remove()
    assert not one.path.exists()
    assert sorted(spool_dir.dirty_records()) == [empty.record_path]


def test_adopt_takes_a_folder_that_never_got_its_lock_file(
    bucket_dir: Path, spool_dir: SpoolDir
) -> None:
    dead = dead_mount(bucket_dir, {"1": (b"data", encode_record(meta("n")))}, lock=False)
    assert [item.meta.name for item in spool_dir.adopt()] == ["n"]
    assert not dead.exists()


def test_adopt_leaves_a_live_mount_alone(bucket_dir: Path, spool_dir: SpoolDir) -> None:
    live = SpoolDir.open(bucket_dir, mountpoint="/mnt/live")
    try:
        spool = live.create()
        spool.pwrite(0, b"live data")
        spool.mark_dirty(meta("live"))
        assert spool_dir.adopt() == []
        assert spool.path.read_bytes() == b"live data"
        assert spool.record_path.exists()
        assert is_locked(live.folder)
    finally:
        live.close()
    # Once that mount is gone, its dirty file is the next one's.
    adopted = spool_dir.adopt()
    assert [item.meta.name for item in adopted] == ["live"]
    assert adopted[0].spool.pread(0, 100) == b"live data"
    assert not live.folder.exists()


def test_unreadable_records_are_set_aside_and_their_folder_kept(
    bucket_dir: Path, spool_dir: SpoolDir
) -> None:
    dead = dead_mount(
        bucket_dir,
        {
            "1": (b"mystery", b"\x00garbage"),
            "2": (b"good", encode_record(meta("good"))),
            "3": (b"future", json.dumps({"osfs-spool": 2, "name": "f"}).encode()),
        },
    )
    adopted = spool_dir.adopt()
    assert [item.meta.name for item in adopted] == ["good"]
    assert dead.exists()
    assert sorted(p.name for p in dead.iterdir()) == [
        "1.data",
        "1.meta-unreadable",
        "3.data",
        "3.meta-unreadable",
        LOCK_NAME,
        OWNER_NAME,
    ]
    assert (dead / "1.data").read_bytes() == b"mystery"
    assert (dead / "1.meta-unreadable").read_bytes() == b"\x00garbage"
    # Adopting again finds nothing more and still keeps the folder for a human.
    assert spool_dir.adopt() == []
    assert (dead / "1.data").exists()


def test_a_record_without_its_data_is_dropped(bucket_dir: Path, spool_dir: SpoolDir) -> None:
    dead = dead_mount(bucket_dir, {"1": (None, encode_record(meta("lost")))})
    assert spool_dir.adopt() == []
    assert not dead.exists()
    assert spool_dir.dirty_records() == []


def test_adopt_ignores_stray_files_in_the_bucket_folder(
    bucket_dir: Path, spool_dir: SpoolDir
) -> None:
    stray = bucket_dir / "notes.txt"
    stray.write_text("not a folder")
    assert spool_dir.adopt() == []
    assert stray.read_text() == "not a folder"
    assert spool_dir.folder.exists()


def test_adoption_survives_a_restart_cycle(bucket_dir: Path) -> None:
    """Crash-free version of the whole story: a mount leaves a dirty file, the next takes it."""
    first = SpoolDir.open(bucket_dir, mountpoint="/mnt/m")
    spool = first.create()
    spool.pwrite(0, b"payload")
    spool.mark_dirty(meta("x/y", mode="100600"))
    first.close()
    second = SpoolDir.open(bucket_dir, mountpoint="/mnt/m")
    try:
        (item,) = second.adopt()
        assert item.meta == meta("x/y", mode="100600")
        assert item.spool.pread(0, 100) == b"payload"
        item.spool.mark_clean()
        item.spool.remove()
    finally:
        second.close()
    assert list(bucket_dir.iterdir()) == []


# dirty_names ------------------------------------------------------------------------------------


def test_dirty_names_lists_the_running_mounts_unstored_names(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    here = SpoolDir.open(bucket_folder(cache, "one", SERVERS), mountpoint="/mnt/a")
    there = SpoolDir.open(bucket_folder(cache, "two", SERVERS), mountpoint="/mnt/b")
    try:
        assert dirty_names(cache, "/mnt/a") == []
        first = here.create()
        first.mark_dirty(meta("dir/first"))
        second = here.create()
        second.mark_dirty(meta("second"))
        clean = here.create()
        clean.mark_dirty(meta("clean"))
        clean.mark_clean()
        other = there.create()
        other.mark_dirty(meta("theirs"))
        (here.folder / "9.meta").write_bytes(b"garbage")
        assert dirty_names(cache, "/mnt/a") == ["dir/first", "second", "<unreadable record 9.meta>"]
        assert dirty_names(cache, "/mnt/b") == ["theirs"]
        assert dirty_names(cache, "/mnt/c") is None
    finally:
        here.close()
        there.close()
    # Both are gone now (their folders stay with the dirty records): no running mount.
    assert dirty_names(cache, "/mnt/a") is None
    assert dirty_names(cache, "/mnt/b") is None


def test_dirty_names_skips_dead_folders_of_the_same_mountpoint(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    bucket_dir = bucket_folder(cache, "bkt", SERVERS)
    dead_mount(
        bucket_dir,
        {"1": (b"old", encode_record(meta("old")))},
        name="0000-dead",  # sorts first
        mountpoint="/mnt/m",
    )
    (bucket_dir / "0001-broken").mkdir()
    (bucket_dir / "0001-broken" / OWNER_NAME).write_text("{not json")
    running = SpoolDir.open(bucket_dir, mountpoint="/mnt/m")
    try:
        spool = running.create()
        spool.mark_dirty(meta("new"))
        assert dirty_names(cache, "/mnt/m") == ["new"]
    finally:
        running.close()
    assert dirty_names(cache, "/mnt/m") is None
    assert dirty_names(tmp_path / "nowhere", "/mnt/m") is None


# Where the spool lives --------------------------------------------------------------------------


def test_server_id_is_stable_short_and_order_independent() -> None:
    one = server_id(["nats://a:4222", "nats://b:4222"])
    assert one == server_id(["nats://b:4222", "nats://a:4222"])
    assert one == server_id(("nats://a:4222", "nats://b:4222"))
    assert len(one) == 12
    assert all(c in "0123456789abcdef" for c in one)
    # Fixed by the hash, not by the process: a spool survives restarts and upgrades.
    assert server_id(["nats://127.0.0.1:4222"]) == "083f1b6f64b7"
    assert server_id(["nats://a:4222"]) != one
    assert server_id(["nats://a:4222", "nats://c:4222"]) != one


def test_bucket_folder_is_per_bucket_and_servers(tmp_path: Path) -> None:
    folder = bucket_folder(tmp_path, "bkt", ["nats://b:1", "nats://a:1"])
    assert folder == tmp_path / f"bkt@{server_id(['nats://a:1', 'nats://b:1'])}"
    assert folder == bucket_folder(tmp_path, "bkt", ["nats://a:1", "nats://b:1"])
    assert folder != bucket_folder(tmp_path, "other", ["nats://a:1", "nats://b:1"])
    assert folder != bucket_folder(tmp_path, "bkt", ["nats://a:1"])


def test_a_spool_file_made_by_hand_knows_its_size(tmp_path: Path) -> None:
    path = tmp_path / "5.data"
    path.write_bytes(b"12345")
    fd = os.open(path, os.O_RDWR)
    spool = SpoolFile(path, fd, size=5)
    spool.pwrite(5, b"6")
    assert spool.size == 6
    assert spool.pread(0, 10) == b"123456"
    spool.remove()
    assert not path.exists()
