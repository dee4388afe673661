"""``osfs mount``: the composition root that wires store, watcher, reader and FUSE together.

Order of start: check the mountpoint -> connect and bind the bucket (across the bridge) -> load
the watcher's snapshot into the inode table -> mount (pyfuse3.init) -> serve; once the kernel
has its answer to FUSE's INIT, set its readahead and tell the waiting parent or systemd we are
ready. Order of stop (SIGTERM, SIGINT, ``osfs umount`` or
``fusermount3 -u``): leave pyfuse3.main -> unmount -> stop the watcher -> close the connection.

Background mode (the default) re-runs the same command in the foreground as a detached child
and returns once the child reports "ready" on a pipe, or its error: the exit status of
``osfs mount`` always tells whether the folder is mounted.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pyfuse3
import trio

from osfs.bridge import BridgedStore
from osfs.core import errors
from osfs.core.posix import MountDefaults
from osfs.fs.kernel_readahead import DEFAULT_KERNEL_READAHEAD, set_kernel_readahead
from osfs.fs.notify import sd_notify
from osfs.fs.ops import OsfsOperations
from osfs.fs.session import open_filesystem
from osfs.fs.spool import SpoolDir, bucket_folder, dirty_names
from osfs.store import ConnectOptions
from osfs.store.connection import NATS_PY_READ_BUFFER_SIZE

log = logging.getLogger(__name__)

#: Seconds the parent waits for a background mount to report.
READY_TIMEOUT = 60.0
DEFAULT_CACHE_SIZE = 256 * 1024 * 1024
#: Seconds a thread may hold the GIL while another waits (Python's default: 5 ms). The mount
#: runs two busy threads, trio (FUSE requests) and asyncio (NATS); with 5 ms every syscall one
#: of them makes can cost it a 5 ms wait to get the GIL back, which dominated small requests.
GIL_SWITCH_INTERVAL = 0.0005
#: A mount reads the socket as nats-py does by default: the client's larger reads
#: (``READ_BUFFER_SIZE``) made no measurable difference to its reads, which are bound by FUSE
#: and the GIL, and raised its peak memory by about 23 MB (docs/benchmarks.md).
MOUNT_READ_BUFFER_SIZE = NATS_PY_READ_BUFFER_SIZE


@dataclass(frozen=True, slots=True)
class MountOptions:
    """Everything ``osfs mount`` was asked to do.

    Attributes:
        bucket: the bucket to mount.
        mountpoint: an empty directory.
        connect: where and how to connect.
        create_bucket: create a missing bucket (the embedded server's mode).
        read_only: refuse every change (EROFS); a sealed bucket is read-only anyway.
        allow_other: let other users see the mount (FUSE ``allow_other``).
        fuse_options: further ``-o`` options passed to FUSE.
        defaults: mode, uid and gid for objects that carry none.
        cache_size: bytes of chunk cache.
        cache_dir: where spool files of written files wait for their upload (local disk).
        kernel_readahead: bytes the kernel reads ahead of a file read in order (root only).
        foreground: serve in this process instead of a detached child.
        ready_fd: (internal) the pipe to report readiness to the parent on.
        systemd: send sd_notify READY/STOPPING.
    """

    bucket: str
    mountpoint: Path
    connect: ConnectOptions
    defaults: MountDefaults
    create_bucket: bool = False
    read_only: bool = False
    allow_other: bool = False
    fuse_options: tuple[str, ...] = ()
    cache_size: int = DEFAULT_CACHE_SIZE
    cache_dir: Path = Path(".cache/osfs")
    kernel_readahead: int = DEFAULT_KERNEL_READAHEAD
    foreground: bool = False
    ready_fd: int | None = None
    systemd: bool = False


def check_mountpoint(path: Path) -> None:
    """Refuse a mountpoint that is missing, not a directory, not empty, or already mounted.

    Raises:
        MountError: with a message that names the problem.
    """
    if not os.path.exists("/dev/fuse"):
        raise errors.MountError("/dev/fuse is missing: load the fuse module (modprobe fuse)")
    if not path.exists():
        raise errors.MountError(f"mountpoint {path} does not exist (create it with mkdir)")
    if not path.is_dir():
        raise errors.MountError(f"mountpoint {path} is not a directory")
    if os.path.ismount(path):
        raise errors.MountError(f"{path} is already a mountpoint (unmount it first)")
    try:
        if any(path.iterdir()):
            raise errors.MountError(f"mountpoint {path} is not empty")
    except PermissionError as exc:
        raise errors.MountError(f"cannot read mountpoint {path}: {exc}") from exc


def fuse_options_for(options: MountOptions) -> set[str]:
    """The FUSE mount options: ours, then the user's ``-o`` list."""
    chosen = set(pyfuse3.default_options)  # default_permissions: the kernel checks modes
    chosen.add(f"fsname=osfs:{options.bucket}")
    chosen.add("subtype=osfs")
    if options.read_only:
        chosen.add("ro")
    if options.allow_other:
        chosen.add("allow_other")
    chosen.update(options.fuse_options)
    return chosen


def run(options: MountOptions, argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Mount and serve (foreground) or start a detached child and wait until it is ready.

    Args:
        options: the parsed mount request.
        argv: the command's own arguments, re-used to start the background child.
        env: variables added to the child's environment (secrets kept off its command line).

    Raises:
        MountError, StoreUnavailableError, BucketNotFoundError, ...: the mount did not happen.
    """
    check_mountpoint(options.mountpoint)
    if not options.foreground:
        return _start_in_background(argv, env or {})
    trio.run(_serve, options)
    return 0


def _start_in_background(argv: Sequence[str], env: Mapping[str, str]) -> int:
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "osfs", *argv, "--foreground", "--ready-fd", str(write_end)]
    child = subprocess.Popen(
        command,
        env={**os.environ, **env},
        pass_fds=(write_end,),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end, "r") as reports:
        report = reports.readline().strip()
    if report == "ready":
        return 0
    child.wait(timeout=READY_TIMEOUT)
    # "error <ErrorClass>: message": raise the same kind, so the exit code says what failed.
    kind, _, message = report.removeprefix("error ").partition(": ")
    error = getattr(errors, kind, None)
    if isinstance(error, type) and issubclass(error, errors.OsfsError) and message:
        raise error(message)
    raise errors.MountError(report or "the mount process exited before it was ready")


def _report(options: MountOptions, message: str) -> None:
    if options.ready_fd is not None:
        try:
            os.write(options.ready_fd, (message + "\n").encode())
            os.close(options.ready_fd)
        except OSError:
            pass
    if options.systemd and message == "ready":
        sd_notify("READY=1")


async def _serve(options: MountOptions) -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    try:
        store = await BridgedStore.open(
            replace(options.connect, read_buffer_size=MOUNT_READ_BUFFER_SIZE),
            options.bucket,
            create=options.create_bucket,
        )
    except errors.OsfsError as exc:
        _report(options, f"error {type(exc).__name__}: {exc}")
        raise
    try:
        spool_dir = _open_spool(options)
    except BaseException:
        await store.aclose()
        raise
    try:
        async with open_filesystem(
            store,
            options.defaults,
            options.cache_size,
            spool_dir,
            read_only=options.read_only,
        ) as filesystem:
            await _mount_and_serve(options, filesystem)
    finally:
        spool_dir.close()
        await store.aclose()


def _open_spool(options: MountOptions) -> SpoolDir:
    """This mount's spool folder under ``--cache-dir``.

    Raises:
        MountError: the folder cannot be made (reported to a waiting parent too).
    """
    folder = bucket_folder(options.cache_dir, options.bucket, options.connect.servers)
    try:
        return SpoolDir.open(folder, mountpoint=str(options.mountpoint))
    except OSError as exc:
        message = f"cannot use cache dir {options.cache_dir}: {exc.strerror or exc}"
        _report(options, f"error MountError: {message}")
        raise errors.MountError(message) from exc


async def _mount_and_serve(options: MountOptions, filesystem: OsfsOperations) -> None:
    if filesystem.sealed:
        log.info("bucket %s is sealed: mounting read-only", options.bucket)
        options = replace(options, read_only=True)
        filesystem.read_only = True
    # Resolved while nothing is mounted there: afterwards a stat of it would wait on the mount.
    resolved = Path(await trio.to_thread.run_sync(os.path.realpath, options.mountpoint))
    try:
        pyfuse3.init(filesystem, str(options.mountpoint), fuse_options_for(options))
    except RuntimeError as exc:
        _report(options, f"error MountError: cannot mount {options.mountpoint}: {exc}")
        raise errors.MountError(f"cannot mount {options.mountpoint}: {exc}") from exc
    log.info("mounted bucket %s at %s", options.bucket, options.mountpoint)
    clean = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_signals)
            nursery.start_soon(_ready_once_serving, options, filesystem, resolved)
            await pyfuse3.main()
            nursery.cancel_scope.cancel()
        clean = True
    finally:
        if options.systemd:
            sd_notify("STOPPING=1")
        pyfuse3.close(unmount=clean)
        log.info("unmounted %s", options.mountpoint)


async def _ready_once_serving(
    options: MountOptions, filesystem: OsfsOperations, mountpoint: Path
) -> None:
    """Once the kernel has had FUSE's INIT answered, set its readahead; then report ready.

    The readahead is written on trio's thread with no checkpoint between the wake-up and the
    write, so in the session loop's first step after the INIT reply. Opening a file takes a
    LOOKUP answer and then an OPEN answer, at least one step later: every file gets it.
    """
    await filesystem.initialized.wait()
    _apply_kernel_readahead(mountpoint, options.kernel_readahead)
    _report(options, "ready")


def _apply_kernel_readahead(mountpoint: Path, size: int) -> None:
    """Ask the kernel for larger reads (``osfs.fs.kernel_readahead``); a user cannot: say so.

    Quick and never waits on the mount (kernel files only): trio's thread may call it.
    """
    try:
        set_kernel_readahead(mountpoint, size)
    except PermissionError:
        log.info("kernel readahead left at its default: only root can set it")
    except OSError as exc:
        log.warning("kernel readahead left at its default: %s", exc)
    else:
        log.debug("kernel readahead set to %d KiB", size // 1024)


async def _stop_on_signals() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("received %s: unmounting", signal.Signals(signum).name)
            pyfuse3.terminate()
            return


def wait_until_stored(mountpoint: Path, cache_dir: Path, timeout: float) -> None:
    """Wait until the mount at ``mountpoint`` has stored every file written through it.

    A mount whose spool folder is not found (another --cache-dir, or not an osfs mount) is not
    waited for.

    Raises:
        MountError: files are still not stored after ``timeout`` seconds; names them.
    """
    deadline = time.monotonic() + timeout
    while True:
        names = dirty_names(cache_dir, str(mountpoint))
        if not names:
            return
        if time.monotonic() >= deadline:
            shown = ", ".join(repr(name) for name in names[:10])
            more = f" and {len(names) - 10} more" if len(names) > 10 else ""
            raise errors.MountError(
                f"{mountpoint} has {len(names)} file(s) not yet stored: {shown}{more} "
                "(is the server reachable?); they are kept on local disk. Retry later, or use "
                "--force to unmount now: the next mount of the bucket stores them"
            )
        time.sleep(0.2)


def unmount(mountpoint: Path, *, lazy: bool = False) -> None:
    """Unmount an osfs mount (``osfs umount``).

    Raises:
        MountError: not mounted, or busy.
    """
    if not os.path.ismount(mountpoint):
        raise errors.MountError(f"{mountpoint} is not mounted")
    command = ["fusermount3", "-u", *(["-z"] if lazy else []), str(mountpoint)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise errors.MountError("fusermount3 is missing (install the fuse3 package)") from exc
    if done.returncode != 0:
        reason = done.stderr.strip() or f"fusermount3 exited with {done.returncode}"
        hint = " (a program still uses it; try --lazy)" if "busy" in reason.lower() else ""
        raise errors.MountError(f"cannot unmount {mountpoint}: {reason}{hint}")
