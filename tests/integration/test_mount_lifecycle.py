"""How a mount starts and ends: background and foreground, signals, refusals, sealed and read-only
buckets, the embedded server, ``mount -t osfs`` through ``mount.osfs``, and systemd's sd_notify.

Every run is the real CLI in a subprocess with a clean environment (no ``NATS_*``); mountpoints
are temporary directories, unmounted by path; processes are stopped by their own PID only.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from osfs.core.config import ObjectStoreConfig
from osfs.mount_helper import EXIT_MOUNT_FAILED, EXIT_USAGE, HelperError, osfs_arguments
from osfs.store import ConnectOptions, open_connection
from tests.support.aio import run
from tests.support.cli import RUN_TIMEOUT, Result, run_osfs
from tests.support.mounting import (
    clean_env,
    end_background_mount,
    io_errno,
    mount_command,
    mounted,
    processes_with_argument,
    read_file,
    require_fuse,
    unmount,
)
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fuse]

EXIT_TIMEOUT = 20.0
"""Seconds a mount process may take to go once unmounted."""


def osfs(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    """Run ``python -m osfs ARGV`` to completion (under a deadline)."""
    return run_osfs(*argv, env=env if env is not None else clean_env(), cwd=cwd)


async def _make_bucket(url: str, bucket: str, *, sealed: bool = False) -> None:
    async with asyncio.timeout(30):
        connection = await open_connection(ConnectOptions(servers=(url,)))
        try:
            store = await connection.manager.create_object_store(ObjectStoreConfig(bucket=bucket))
            await store.put_bytes("hello.txt", b"hello\n")
            await store.put_bytes("dir/inner.txt", b"inner\n")
            if sealed:
                await store.seal()
            await store.aclose()
        finally:
            await connection.close()


@pytest.fixture(scope="module")
def bucket(nats_url: str) -> str:
    """One bucket with two files, shared by the tests that only mount and read it."""
    name = f"mlife_{uuid.uuid4().hex[:10]}"
    run(_make_bucket(nats_url, name))
    return name


@pytest.fixture
def mountpoint(tmp_path: Path) -> Path:
    path = tmp_path / "mnt"
    path.mkdir()
    return path


def _wait_gone(pids: list[int], what: str) -> None:
    wait_until(
        lambda: not any(Path(f"/proc/{pid}/cmdline").exists() and _alive(pid) for pid in pids),
        EXIT_TIMEOUT,
        0.05,
        what,
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def background_cleanup(tmp_path: Path) -> Iterator[list[Path]]:
    """Mountpoints a test mounted in the background, ended after it (``end_background_mount``)."""
    mountpoints: list[Path] = []
    yield mountpoints
    for path in mountpoints:
        end_background_mount(path)


# Background and foreground ----------------------------------------------------------------------


def test_background_mount_returns_once_mounted_and_umount_ends_it(
    nats_url: str, bucket: str, mountpoint: Path, tmp_path: Path, background_cleanup: list[Path]
) -> None:
    require_fuse()
    background_cleanup.append(mountpoint)
    log = tmp_path / "background.log"
    result = osfs("--server", nats_url, "mount", bucket, str(mountpoint), "--log-file", str(log))
    assert result.code == 0, result.stderr
    assert result.text.strip() == f"mounted bucket {bucket} at {mountpoint}"
    assert os.path.ismount(mountpoint)  # mounted when the command returns, not later
    children = processes_with_argument(str(mountpoint))
    assert len(children) == 1, children
    assert read_file(mountpoint / "hello.txt") == b"hello\n"
    done = osfs("umount", str(mountpoint))
    assert done.code == 0, done.stderr
    assert done.text.strip() == f"unmounted {mountpoint}"
    assert not os.path.ismount(mountpoint)
    _wait_gone(children, "the background mount process to exit")
    text = log.read_text()
    assert "Traceback" not in text
    assert " ERROR " not in text, text
    assert " WARNING " not in text, text
    assert f"unmounted {mountpoint}" in text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_unmounts_cleanly(
    nats_url: str, bucket: str, mountpoint: Path, signum: signal.Signals
) -> None:
    with mounted(nats_url, bucket, mountpoint) as mount:
        assert read_file(mountpoint / "dir/inner.txt") == b"inner\n"
        mount.process.send_signal(signum)
        assert mount.process.wait(EXIT_TIMEOUT) == 0, mount.tail()
        assert not os.path.ismount(mountpoint)
        assert f"received {signum.name}: unmounting" in mount.log_text()
    assert os.listdir(mountpoint) == []  # the empty directory is back


def test_fusermount_unmount_ends_the_foreground_process(
    nats_url: str, bucket: str, mountpoint: Path
) -> None:
    with mounted(nats_url, bucket, mountpoint) as mount:
        unmount(mountpoint)
        assert mount.process.wait(EXIT_TIMEOUT) == 0, mount.tail()
        assert f"unmounted {mountpoint}" in mount.log_text()


# Refusals: one line, a non-zero status, nothing mounted -----------------------------------------


@pytest.mark.parametrize("foreground", [False, True], ids=["background", "foreground"])
def test_a_missing_bucket_is_refused(
    nats_url: str, mountpoint: Path, tmp_path: Path, foreground: bool
) -> None:
    require_fuse()
    missing = f"missing_{uuid.uuid4().hex[:8]}"
    flags = ["-f", "--log-file", str(tmp_path / "fg.log")] if foreground else []
    result = osfs("--server", nats_url, "mount", missing, str(mountpoint), *flags)
    assert result.code != 0
    assert f"bucket '{missing}' not found" in result.one_error_line()
    assert not os.path.ismount(mountpoint)
    assert processes_with_argument(str(mountpoint)) == []


@pytest.mark.parametrize("foreground", [False, True], ids=["background", "foreground"])
def test_an_unreachable_server_is_refused(
    mountpoint: Path, tmp_path: Path, foreground: bool
) -> None:
    require_fuse()
    flags = ["-f", "--log-file", str(tmp_path / "fg.log")] if foreground else []
    started = time.monotonic()
    result = osfs("--server", "nats://127.0.0.1:1", "mount", "photos", str(mountpoint), *flags)
    assert result.code != 0
    assert "cannot connect to NATS at nats://127.0.0.1:1" in result.one_error_line()
    assert time.monotonic() - started < 15
    assert not os.path.ismount(mountpoint)
    assert processes_with_argument(str(mountpoint)) == []


def test_bad_mountpoints_are_refused(nats_url: str, bucket: str, tmp_path: Path) -> None:
    require_fuse()
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("mine")
    file = tmp_path / "file.txt"
    file.write_text("")
    for path, reason in ((full, "not empty"), (file, "not a directory")):
        result = osfs("--server", nats_url, "mount", bucket, str(path))
        assert result.code != 0
        line = result.one_error_line()
        assert str(path) in line, line
        assert reason in line, line
        assert not os.path.ismount(path)
    assert (full / "mine.txt").read_text() == "mine"


def test_an_already_mounted_directory_is_refused(
    nats_url: str, bucket: str, mountpoint: Path
) -> None:
    with mounted(nats_url, bucket, mountpoint):
        for flags in ([], ["-f"]):
            result = osfs("--server", nats_url, "mount", bucket, str(mountpoint), *flags)
            assert result.code != 0
            assert "already a mountpoint" in result.one_error_line()
        assert read_file(mountpoint / "hello.txt") == b"hello\n"  # the first mount is unharmed


# Read-only mounts -------------------------------------------------------------------------------


def _writes_are_refused(root: Path) -> None:
    """Every kind of change the (writable) mount makes is EROFS here, and nothing changed."""
    file = root / "hello.txt"
    for what, attempt in {
        "create": lambda: os.close(os.open(root / "new.txt", os.O_CREAT | os.O_WRONLY, 0o644)),
        "write": lambda: os.close(os.open(file, os.O_WRONLY)),
        "append": lambda: os.close(os.open(file, os.O_WRONLY | os.O_APPEND)),
        "open with O_TRUNC": lambda: os.close(os.open(file, os.O_RDONLY | os.O_TRUNC)),
        "truncate": lambda: os.truncate(file, 0),
        "mkdir": lambda: os.mkdir(root / "newdir"),
        "rmdir": lambda: os.rmdir(root / "dir"),
        "unlink": lambda: os.unlink(file),
        "rename": lambda: os.rename(file, root / "moved.txt"),
        "rename a directory": lambda: os.rename(root / "dir", root / "dir2"),
        "chmod": lambda: os.chmod(file, 0o600),
        "chown": lambda: os.chown(file, 1, 1),
        "utime": lambda: os.utime(file, (0, 0)),
        "symlink": lambda: os.symlink("hello.txt", root / "link"),
        "hard link": lambda: os.link(file, root / "hard"),
        "mknod (fifo)": lambda: os.mkfifo(root / "fifo"),
        "setxattr": lambda: os.setxattr(file, "user.x", b"1"),
    }.items():
        assert io_errno(attempt) == errno.EROFS, what
    assert read_file(file) == b"hello\n"
    assert sorted(os.listdir(root)) == ["dir", "hello.txt"]


def _mount_options(path: Path) -> list[str]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(path):
            return fields[3].split(",")
    raise AssertionError(f"{path} is not in /proc/self/mounts")


def test_a_sealed_bucket_mounts_read_only(nats_url: str, mountpoint: Path) -> None:
    sealed = f"msealed_{uuid.uuid4().hex[:10]}"
    run(_make_bucket(nats_url, sealed, sealed=True))
    with mounted(nats_url, sealed, mountpoint):
        assert "ro" in _mount_options(mountpoint)  # mounted read-only, as if --read-only
        assert read_file(mountpoint / "hello.txt") == b"hello\n"
        _writes_are_refused(mountpoint)
        vfs = os.statvfs(mountpoint)
        assert vfs.f_bavail == 0  # no room for anything (f_favail: FUSE cannot set it)


def test_read_only_flag(nats_url: str, bucket: str, mountpoint: Path) -> None:
    with mounted(nats_url, bucket, mountpoint, "--read-only"):
        assert "ro" in _mount_options(mountpoint)  # the kernel refuses, too
        assert read_file(mountpoint / "dir/inner.txt") == b"inner\n"
        _writes_are_refused(mountpoint)


def test_file_and_dir_modes_and_owner_options(nats_url: str, bucket: str, mountpoint: Path) -> None:
    options = ("--file-mode", "0600", "--dir-mode", "0700", "--uid", "123", "--gid", "456")
    with mounted(nats_url, bucket, mountpoint, *options):
        file, directory = os.stat(mountpoint / "hello.txt"), os.stat(mountpoint / "dir")
        assert (file.st_mode, file.st_uid, file.st_gid) == (stat.S_IFREG | 0o600, 123, 456)
        assert (directory.st_mode, directory.st_uid) == (stat.S_IFDIR | 0o700, 123)


def _kernel_readahead_kib(path: Path) -> int:
    device = os.stat(path).st_dev
    bdi = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
    return int(bdi.read_text())


def test_the_kernel_is_asked_for_large_reads(
    nats_url: str, bucket: str, mountpoint: Path, tmp_path: Path, background_cleanup: list[Path]
) -> None:
    # Default: 4 MiB of kernel readahead (128 KiB without osfs's setting) and a 1 MiB st_blksize,
    # the size cp and cat take for their buffers (FUSE's largest request). A background mount
    # returns once ready, and ready means the readahead is set: checked at once, no waiting.
    require_fuse()
    background_cleanup.append(mountpoint)
    for extra, expected_kib in (((), 4096), (("--readahead", "512KiB"), 512)):
        log = tmp_path / f"readahead-{expected_kib}.log"
        command = ("--server", nats_url, "mount", bucket, str(mountpoint), "--log-file", str(log))
        result = osfs(*command, *extra)
        assert result.code == 0, result.stderr
        assert _kernel_readahead_kib(mountpoint) == expected_kib
        assert os.stat(mountpoint / "hello.txt").st_blksize == 1024 * 1024
        assert read_file(mountpoint / "hello.txt") == b"hello\n"
        assert osfs("umount", str(mountpoint)).code == 0
        assert " WARNING " not in log.read_text()


def test_a_file_opened_as_soon_as_the_mount_answers_gets_the_large_readahead(
    nats_url: str, bucket: str, mountpoint: Path
) -> None:
    # A foreground mount, opened the moment it is mounted: the readahead is in place before the
    # first OPEN is answered (a file keeps the readahead it was opened with).
    with mounted(nats_url, bucket, mountpoint), (mountpoint / "hello.txt").open("rb") as opened:
        assert _kernel_readahead_kib(mountpoint) == 4096
        assert opened.read() == b"hello\n"


# The embedded server ----------------------------------------------------------------------------


def test_with_no_server_named_the_embedded_server_is_used(
    tmp_path: Path, mountpoint: Path, background_cleanup: list[Path]
) -> None:
    require_fuse()
    background_cleanup.append(mountpoint)
    env = clean_env(
        {
            "OSFS_DATA_DIR": str(tmp_path / "data"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
    )
    try:
        result = osfs("mount", "demo", str(mountpoint), env=env)
        assert result.code == 0, result.stderr
        assert os.path.ismount(mountpoint)
        assert os.listdir(mountpoint) == []  # a new, empty bucket
        listed = osfs("ls", env=env)
        assert listed.code == 0, listed
        assert "demo" in listed.text, listed
        children = processes_with_argument(str(mountpoint))
        assert osfs("umount", str(mountpoint), env=env).code == 0
        _wait_gone(children, "the background mount process to exit")
        log = (tmp_path / "state" / "osfs" / "mount-demo.log").read_text()
        assert "mounted bucket demo" in log, log
        assert "Traceback" not in log, log
    finally:
        stopped = osfs("server", "--stop", env=env)
    assert stopped.code == 0, stopped.stderr
    assert "stopped the embedded nats-server" in stopped.text


# mount -t osfs ----------------------------------------------------------------------------------


def test_mount_helper_translates_mount_options() -> None:
    assert osfs_arguments(
        "photos",
        "/mnt/photos",
        [
            "rw,server=nats://10.0.0.5:4222|nats://10.0.0.6:4222,_netdev,allow_other",
            "creds=/etc/osfs/photos.creds,context=ops,ro,file_mode=0640,dir_mode=0750",
            "uid=1000,gid=100,cache_size=1GiB,cache_dir=/var/cache/osfs,readahead=8MiB",
            "log_file=/var/log/osfs.log,nosuid,noatime",
            "nofail,noauto,user,users,defaults,auto,x-systemd.automount,comment=hi,server=n3",
        ],
    ) == [
        "--server",
        "nats://10.0.0.5:4222",
        "--server",
        "nats://10.0.0.6:4222",
        "--creds",
        "/etc/osfs/photos.creds",
        "--context",
        "ops",
        "--server",
        "n3",
        "mount",
        "photos",
        "/mnt/photos",
        "--allow-other",
        "--read-only",
        "--file-mode",
        "0640",
        "--dir-mode",
        "0750",
        "--uid",
        "1000",
        "--gid",
        "100",
        "--cache-size",
        "1GiB",
        "--cache-dir",
        "/var/cache/osfs",
        "--readahead",
        "8MiB",
        "--log-file",
        "/var/log/osfs.log",
        "-o",
        "nosuid,noatime",
    ]
    with pytest.raises(HelperError, match="unknown option 'bogus'"):
        osfs_arguments("b", "/m", ["server=nats://h:4222,bogus"])
    with pytest.raises(HelperError, match="uid= needs a value"):
        osfs_arguments("b", "/m", ["uid="])
    assert osfs_arguments("b", "/m", ["bogus"], sloppy=True) == ["mount", "b", "/m"]


def test_mount_helper_exit_statuses(tmp_path: Path) -> None:
    helper = Path(sys.executable).with_name("mount.osfs")
    assert helper.is_file(), f"{helper} is missing: run .venv/bin/pip install -e . --no-deps"
    usage = subprocess.run(
        [str(helper), "b", str(tmp_path), "-o", "bogus"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        env=clean_env(),
    )
    assert usage.returncode == EXIT_USAGE
    assert usage.stderr.strip() == "mount.osfs: unknown option 'bogus' (-s ignores unknown options)"
    missing = tmp_path / "missing"
    failed = subprocess.run(
        [str(helper), "b", str(missing), "-o", "server=nats://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        env=clean_env(),
    )
    assert failed.returncode == EXIT_MOUNT_FAILED
    assert "does not exist" in failed.stderr


@pytest.fixture
def mount_helper_installed() -> Iterator[Path]:
    """``/usr/sbin/mount.osfs`` (what mount(8) runs for type osfs), linked to the venv's script.

    Created only if missing, and then removed again; an existing one is used as it is.
    """
    helper = Path(sys.executable).with_name("mount.osfs")
    assert helper.is_file(), f"{helper} is missing: run .venv/bin/pip install -e . --no-deps"
    link = Path("/usr/sbin/mount.osfs")
    created = False
    if not os.path.lexists(link):
        link.symlink_to(helper)
        created = True
    try:
        yield link
    finally:
        if created:
            link.unlink()


def test_mount_t_osfs_uses_the_helper(
    nats_url: str,
    bucket: str,
    mountpoint: Path,
    tmp_path: Path,
    mount_helper_installed: Path,
    background_cleanup: list[Path],
) -> None:
    require_fuse()
    background_cleanup.append(mountpoint)
    log = tmp_path / "helper.log"
    options = f"server={nats_url},log_file={log},ro,_netdev,nofail"
    done = subprocess.run(
        ["mount", "-t", "osfs", bucket, str(mountpoint), "-o", options],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")  # quiet, as mount(8) is
    assert os.path.ismount(mountpoint)
    assert "ro" in _mount_options(mountpoint)
    assert read_file(mountpoint / "hello.txt") == b"hello\n"
    children = processes_with_argument(str(mountpoint))
    assert len(children) == 1, children
    done = subprocess.run(
        ["umount", str(mountpoint)], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert not os.path.ismount(mountpoint)
    _wait_gone(children, "the mount process to exit after umount(8)")
    text = log.read_text()
    assert "Traceback" not in text, text
    assert " ERROR " not in text, text


# systemd (Type=notify) --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_systemd_notify_ready_and_stopping(
    nats_url: str, bucket: str, mountpoint: Path, tmp_path: Path, kind: str
) -> None:
    """What ``osfs@.service`` relies on: READY=1 once mounted, STOPPING=1 on SIGTERM."""
    fusermount = require_fuse()
    name = f"osfs-test-{uuid.uuid4().hex}"
    address, variable = (
        ("\0" + name, "@" + name) if kind == "abstract" else (str(tmp_path / "n.sock"),) * 2
    )
    log = tmp_path / "systemd.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(20)
        command = mount_command(nats_url, bucket, mountpoint, "--systemd", log_path=log)
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env({"NOTIFY_SOCKET": variable}),
        )
        try:
            assert sock.recv(4096) == b"READY=1"
            assert os.path.ismount(mountpoint)  # ready means mounted, already
            assert read_file(mountpoint / "hello.txt") == b"hello\n"
            process.send_signal(signal.SIGTERM)
            assert sock.recv(4096) == b"STOPPING=1"
            assert process.wait(EXIT_TIMEOUT) == 0
            assert not os.path.ismount(mountpoint)
        finally:
            if os.path.ismount(mountpoint):
                subprocess.run([fusermount, "-u", "-z", str(mountpoint)], timeout=10, check=False)
            if process.poll() is None:
                process.kill()
                process.wait(EXIT_TIMEOUT)
    text = log.read_text()
    for problem in ("Traceback", " ERROR ", " WARNING "):
        assert problem not in text, text
