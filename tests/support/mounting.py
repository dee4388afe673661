"""Real ``osfs mount`` processes for tests, and file I/O on a mount that can never hang a test.

Rules (beside the conftest's):
1. The real CLI. :func:`mounted` runs ``python -m osfs ... mount BUCKET MNT -f`` in a subprocess,
   exactly as a user would, and waits (under a deadline) until the directory is a mountpoint; a
   process that exits first fails the test at once with the tail of its log.
2. No FUSE, no test: a missing ``/dev/fuse`` or ``fusermount3`` FAILS with a message saying what
   to install (:func:`require_fuse`); it never skips.
3. Clean ends are asserted. Leaving :func:`mounted` unmounts with ``fusermount3 -u`` (retrying
   while the mount is busy), waits for the process under a deadline, and asserts exit status 0
   and a log free of tracebacks and of WARNING/ERROR/CRITICAL lines that the test did not
   declare with :meth:`MountedProcess.expect_log`. A mount that will not go is detached
   (``fusermount3 -u -z``) and its process killed, so one broken test never leaves a mount behind.
4. I/O on a mount runs under a deadline: :func:`read_file`, :func:`run_io` and friends run the
   blocking call in a daemon thread and fail the test if it has not returned in time, so a hung
   FUSE request fails one test instead of hanging the run.
5. Only what a test started is stopped: processes by their own Popen, mounts by their path.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from tests.support.waiting import wait_until

T = TypeVar("T")

MOUNT_TIMEOUT = 20.0
"""Seconds from exec until the directory must be a mountpoint."""

UNMOUNT_TIMEOUT = 15.0
"""Seconds ``fusermount3 -u`` may keep failing with "busy" before the mount is detached."""

EXIT_TIMEOUT = 20.0
"""Seconds the mount process may take to exit once unmounted."""

IO_TIMEOUT = 10.0
"""Seconds one file operation on a mount may take."""

#: Log lines that are problems unless a test says it expects them.
_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")


def require_fuse() -> str:
    """The path of ``fusermount3``, after checking that FUSE is usable here (rule 2).

    Raises:
        AssertionError: ``/dev/fuse`` or ``fusermount3`` is missing.
    """
    if not os.path.exists("/dev/fuse"):
        raise AssertionError(
            "/dev/fuse is missing: the mount tests need FUSE (load the module with "
            "'modprobe fuse', or run the container with --device /dev/fuse)"
        )
    fusermount = shutil.which("fusermount3")
    if fusermount is None:
        raise AssertionError(
            "fusermount3 is missing: install the fuse3 package (apt-get install fuse3)"
        )
    return fusermount


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``NATS_*`` and ``OSFS_DEBUG``, plus ``extra``.

    A developer's ``NATS_URL`` or ``NATS_CONTEXT`` must not change where a test's CLI connects.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("NATS_") and key != "OSFS_DEBUG"
    }
    env.update(extra or {})
    return env


@dataclass
class MountedProcess:
    """A running foreground ``osfs mount`` (see :func:`mounted`).

    Attributes:
        path: the mountpoint.
        process: the ``python -m osfs ... mount -f`` process.
        log_path: its ``--log-file``.
        stderr_path: where its stderr goes (should stay empty).
    """

    path: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    stderr_path: Path
    _expected: list[re.Pattern[str]] = field(default_factory=list)
    _checked_up_to: int = 0

    def log_text(self) -> str:
        """The log so far, with anything the process printed on stderr after it."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return text + (f"\n--- stderr ---\n{stderr}" if stderr else "")

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of :meth:`log_text`, for failure messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def expect_log(self, pattern: str) -> None:
        """Declare that log lines matching ``pattern`` (a regex, searched) are not problems."""
        self._expected.append(re.compile(pattern))

    def _lines(self) -> tuple[list[str], list[str]]:
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return log.splitlines(), [f"stderr: {line}" for line in stderr.splitlines()]

    def _unexpected(self, lines: list[str]) -> list[str]:
        return [
            line
            for line in lines
            if _PROBLEM.search(line) and not any(p.search(line) for p in self._expected)
        ]

    def unexpected_log_lines(self) -> list[str]:
        """Problem lines (rule 3) no :meth:`expect_log` pattern allows, in the whole log and on
        stderr (which a mount with a log file keeps empty)."""
        log, stderr = self._lines()
        return self._unexpected(log + stderr)

    def check_log(self) -> None:
        """Assert that no unexpected problem line was logged since the last check.

        Module-scoped mounts call this after every test, so a problem is blamed on its test.
        """
        log, stderr = self._lines()
        new = self._unexpected(log[self._checked_up_to :] + stderr)
        self._checked_up_to = len(log)
        assert not new, "unexpected lines in the mount's log:\n" + "\n".join(new)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> str:
        """Wait until a log line matches ``pattern``; return that line."""
        compiled = re.compile(pattern)

        def found() -> str | None:
            return next((ln for ln in self.log_text().splitlines() if compiled.search(ln)), None)

        return wait_until(
            found, timeout, 0.05, lambda: f"a log line matching {pattern!r}:\n{self.tail()}"
        )

    @property
    def mounted(self) -> bool:
        """Whether the mountpoint is (still) mounted."""
        return os.path.ismount(self.path)


def mount_command(
    url: str | None, bucket: str, mountpoint: Path, *extra_args: str, log_path: Path
) -> list[str]:
    """The foreground mount command :func:`mounted` runs (no ``--server`` when ``url`` is None)."""
    server = ["--server", url] if url is not None else []
    return [
        sys.executable,
        "-m",
        "osfs",
        *server,
        "mount",
        bucket,
        str(mountpoint),
        "-f",
        "--log-file",
        str(log_path),
        *extra_args,
    ]


@contextmanager
def mounted(
    url: str | None,
    bucket: str,
    mountpoint: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    expect_exit: int = 0,
) -> Iterator[MountedProcess]:
    """Mount ``bucket`` at ``mountpoint`` with the real CLI in the foreground (rules 1 and 3).

    Args:
        url: the server (``--server``); None names none (the embedded server, or ``env``'s).
        bucket: the bucket.
        mountpoint: an empty directory (created if missing).
        extra_args: more ``osfs mount`` arguments (``--read-only``, ``--file-mode 0600``, ...).
        env: extra environment variables (on top of :func:`clean_env`).
        log_path: the ``--log-file`` (default: ``<mountpoint>.log`` beside the mountpoint).
        expect_exit: the exit status the process must end with.
    """
    fusermount = require_fuse()
    mountpoint.mkdir(parents=True, exist_ok=True)
    log = log_path or mountpoint.with_name(mountpoint.name + ".log")
    stderr_path = log.with_name(log.name + ".stderr")
    command = mount_command(url, bucket, mountpoint, *extra_args, log_path=log)
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            env=clean_env(env),
            cwd=mountpoint.parent,
        )
    handle = MountedProcess(mountpoint, process, log, stderr_path)
    try:
        _wait_mounted(handle)
    except BaseException:
        _force_down(handle, fusermount)
        raise
    try:
        yield handle
    except BaseException as failure:
        try:
            _tear_down(handle, fusermount, expect_exit)
        except AssertionError as teardown:  # keep the test's own failure in front
            failure.add_note(f"and the mount did not end cleanly: {teardown}")
        raise
    _tear_down(handle, fusermount, expect_exit)


def _wait_mounted(handle: MountedProcess) -> None:
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while not os.path.ismount(handle.path):
        code = handle.process.poll()
        if code is not None:
            raise AssertionError(
                f"osfs mount exited with {code} before {handle.path} was mounted:\n{handle.tail()}"
            )
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{handle.path} was not mounted within {MOUNT_TIMEOUT:g} s:\n{handle.tail()}"
            )
        time.sleep(0.02)


def unmount(path: Path, timeout: float = UNMOUNT_TIMEOUT) -> None:
    """``fusermount3 -u path``, retried while the mount is busy (a closing file, say).

    Raises:
        AssertionError: still mounted at the deadline (the last error is shown).
    """
    fusermount = require_fuse()
    last = ""

    def try_once() -> bool:
        nonlocal last
        if not os.path.ismount(path):
            return True
        done = subprocess.run(
            [fusermount, "-u", str(path)], capture_output=True, text=True, timeout=10, check=False
        )
        last = done.stderr.strip()
        return done.returncode == 0 or not os.path.ismount(path)

    wait_until(try_once, timeout, 0.1, lambda: f"fusermount3 -u {path} to succeed ({last})")


def _tear_down(handle: MountedProcess, fusermount: str, expect_exit: int) -> None:
    try:
        unmount(handle.path)
    except AssertionError:
        _force_down(handle, fusermount)
        raise
    try:
        code = handle.process.wait(EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        _force_down(handle, fusermount)
        raise AssertionError(
            f"osfs mount did not exit within {EXIT_TIMEOUT:g} s of the unmount:\n{handle.tail()}"
        ) from None
    assert code == expect_exit, f"osfs mount exited with {code}:\n{handle.tail()}"
    stray = handle.unexpected_log_lines()
    assert not stray, "unexpected lines in the mount's log:\n" + "\n".join(stray)


def _force_down(handle: MountedProcess, fusermount: str) -> None:
    """Get rid of a mount that would not go: detach it lazily, kill its process."""
    if os.path.ismount(handle.path):
        subprocess.run(
            [fusermount, "-u", "-z", str(handle.path)], capture_output=True, timeout=10, check=False
        )
    if handle.process.poll() is None:
        handle.process.send_signal(signal.SIGKILL)
        handle.process.wait(EXIT_TIMEOUT)


# I/O under a deadline (rule 4) ------------------------------------------------------------------


def run_io(call: Callable[[], T], timeout: float = IO_TIMEOUT, what: str = "file I/O") -> T:
    """Run a blocking call in a daemon thread; its result, or its exception re-raised.

    Raises:
        AssertionError: the call has not returned within ``timeout`` seconds (a hung FUSE
            request; the thread is left blocked, the test goes on to fail and unmount).
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=body, name=f"io: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise AssertionError(f"{what} did not return within {timeout:g} s (a hung FUSE request?)")
    if failure:
        raise failure[0]
    return outcome[0]


def read_file(path: Path, timeout: float = IO_TIMEOUT) -> bytes:
    """The whole content of ``path``, read under a deadline."""
    return run_io(path.read_bytes, timeout, f"reading {path}")


def pread(path: Path, offsets: list[tuple[int, int]], timeout: float = IO_TIMEOUT) -> list[bytes]:
    """``os.pread`` of each ``(offset, length)`` through one open file, under one deadline."""

    def read_all() -> list[bytes]:
        fd = os.open(path, os.O_RDONLY)
        try:
            return [os.pread(fd, length, offset) for offset, length in offsets]
        finally:
            os.close(fd)

    return run_io(read_all, timeout, f"pread of {path}")


def wait_until_path(
    path: Path, exists: bool = True, timeout: float = 5.0, interval: float = 0.01
) -> float:
    """Wait until ``path`` exists (or, with ``exists=False``, is gone); the seconds it took.

    Each check is an ``lstat`` under :data:`IO_TIMEOUT`, so a hung mount fails the wait too.
    """
    start = time.monotonic()

    def check() -> bool:
        return run_io(lambda: os.path.lexists(path), what=f"lstat {path}") == exists

    wait_until(check, timeout, interval, f"{path} to {'appear' if exists else 'disappear'}")
    return time.monotonic() - start


def io_errno(call: Callable[[], object], timeout: float = IO_TIMEOUT) -> int:
    """The errno ``call`` fails with (under a deadline); an AssertionError if it succeeds."""
    try:
        result = run_io(call, timeout, "an operation expected to fail")
    except OSError as exc:
        return exc.errno or 0
    raise AssertionError(f"expected an OSError, the call returned {_short(result)}")


def _short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def end_background_mount(path: Path) -> None:
    """Get rid of a background mount a test started at ``path``: detach it, kill its child.

    The detached child is found by its own mountpoint (a unique temporary path) in its command
    line, so only the test's own processes are ever signalled.
    """
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], timeout=10, check=False)
    for pid in processes_with_argument(str(path)):
        os.kill(pid, signal.SIGKILL)


def processes_with_argument(argument: str) -> list[int]:
    """PIDs of this machine's processes whose command line has ``argument`` as one argument.

    Tests find the detached child of a background mount by its (unique, temporary) mountpoint.
    """
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and argument.encode() in raw.split(b"\0"):
            found.append(int(entry.name))
    return found


# Writing under a deadline -----------------------------------------------------------------

MiB = 1024 * 1024
"""Bytes in a mebibyte."""


def big_payload(size: int, seed: int) -> bytes:
    """``size`` deterministic random bytes, fast enough for tens of MiB."""
    return random.Random(seed).randbytes(size)


@dataclass(frozen=True)
class Failure:
    """Which call of :func:`write_file` failed (``open``, ``write`` or ``close``), and how."""

    call: str
    errno: int


def write_file(path: Path, data: bytes, piece: int = MiB) -> Failure | None:
    """Create or truncate ``path``, write ``data``, close it; the first call that failed, or
    None. (With the writeback cache the writes land in the kernel's page cache, and close
    reports the upload.)"""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        return Failure("open", exc.errno or 0)
    try:
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.write(fd, view[done : done + piece])
    except OSError as exc:
        os.close(fd)
        return Failure("write", exc.errno or 0)
    try:
        os.close(fd)
    except OSError as exc:
        return Failure("close", exc.errno or 0)
    return None


class Background(Generic[T]):
    """A blocking call on a mount, started now in a daemon thread and joined under a deadline
    (``run_io`` for calls the test must watch while they run)."""

    def __init__(self, call: Callable[[], T], what: str) -> None:
        self.what = what
        self._outcome: list[T] = []
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._body, args=(call,), name=what, daemon=True)
        self._thread.start()

    def _body(self, call: Callable[[], T]) -> None:
        try:
            self._outcome.append(call())
        except BaseException as exc:
            self._failure.append(exc)

    def done(self) -> bool:
        """Whether the call has returned or raised (a method: a property would be narrowed
        by type checkers after one test)."""
        return not self._thread.is_alive()

    def result(self, timeout: float) -> T:
        """The call's result, or its exception re-raised.

        Raises:
            AssertionError: it has not returned within ``timeout`` seconds.
        """
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"{self.what} did not return within {timeout:g} s")
        if self._failure:
            raise self._failure[0]
        return self._outcome[0]
