"""The embedded server: started once, found again, never doubled, stale state replaced.

Rules: the conftest's. Each test has its own ``OSFS_DATA_DIR`` under ``tmp_path`` and stops what it
started in a ``finally`` (the ``data_dir`` fixture), so no server outlives its test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from osfs import embedded
from osfs.core.errors import StoreUnavailableError
from tests.support.aio import run
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own embedded-server directory; whatever runs there is stopped afterwards."""
    monkeypatch.setenv(embedded.DATA_DIR_ENV, str(tmp_path / "osfs"))
    try:
        yield embedded.data_dir()
    finally:
        embedded.stop_running()


def _servers_on(directory: Path) -> list[int]:
    """Pids of live processes whose command line names this directory's config."""
    config = str(directory / "nats.conf").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if config in argv and state != "Z":
            pids.append(int(entry.name))
    return pids


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_data_dir_comes_from_the_environment(data_dir: Path, tmp_path: Path) -> None:
    assert data_dir == (tmp_path / "osfs" / "server").resolve()


def test_ensure_running_starts_once_then_reuses(data_dir: Path) -> None:
    assert embedded.find_running() is None
    server = embedded.ensure_running()
    assert server.url == f"nats://127.0.0.1:{server.port}"
    assert server.store_dir == data_dir / "jetstream"
    assert _servers_on(data_dir) == [server.pid]

    state = json.loads((data_dir / "server.json").read_text())
    assert state == {
        "pid": server.pid,
        "port": server.port,
        "url": server.url,
        "store_dir": str(server.store_dir),
    }
    assert embedded.find_running() == server
    assert embedded.ensure_running() == server
    assert _servers_on(data_dir) == [server.pid]


def test_the_server_runs_jetstream_on_loopback(data_dir: Path) -> None:
    server = embedded.ensure_running()

    async def account_info() -> dict[str, object]:
        nc = await nats.connect(servers=[server.url], connect_timeout=5)
        try:
            reply = await nc.request("$JS.API.INFO", b"", timeout=5)
        finally:
            await nc.close()
        info: dict[str, object] = json.loads(reply.data)
        return info

    assert "error" not in run(account_info())
    assert server.store_dir.is_dir()
    assert 'listen: "127.0.0.1:' in (data_dir / "nats.conf").read_text()


def test_concurrent_starts_from_threads_and_processes_yield_one_server(data_dir: Path) -> None:
    pids: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            pids.append(embedded.ensure_running().pid)
        except BaseException as exc:
            errors.append(exc)

    children = [
        subprocess.Popen(
            _python("from osfs.embedded import ensure_running; print(ensure_running().pid)"),
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for child in children:
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 0
        pids.append(int(out))

    assert errors == []
    assert len(pids) == 5
    assert len(set(pids)) == 1
    assert _servers_on(data_dir) == pids[:1]


def test_stale_state_after_a_crash_is_replaced(data_dir: Path) -> None:
    first = embedded.ensure_running()
    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: _gone(first.pid), 10.0, message=f"killed server {first.pid} to exit")

    assert (data_dir / "server.json").exists()
    assert embedded.find_running() is None
    second = embedded.ensure_running()
    assert second.pid != first.pid
    assert json.loads((data_dir / "server.json").read_text())["pid"] == second.pid
    assert _servers_on(data_dir) == [second.pid]


def test_a_reused_pid_is_not_mistaken_for_the_server(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    # This very pytest process is alive and listening nowhere: a pid reused by another program.
    (data_dir / "server.json").write_text(
        json.dumps({"pid": os.getpid(), "port": 1, "url": "nats://127.0.0.1:1", "store_dir": "x"})
    )
    assert embedded.find_running() is None
    server = embedded.ensure_running()
    assert server.pid != os.getpid()


@pytest.mark.parametrize("content", ["", "{", '{"pid": "x"}', "[]", '{"pid": 1}'])
def test_an_unreadable_state_file_counts_as_none(data_dir: Path, content: str) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "server.json").write_text(content)
    assert embedded.find_running() is None
    assert embedded.stop_running() is False
    assert not (data_dir / "server.json").exists()


def test_stop_running_stops_and_forgets(data_dir: Path) -> None:
    assert embedded.stop_running() is False
    server = embedded.ensure_running()
    assert embedded.stop_running() is True
    assert _gone(server.pid)
    assert not (data_dir / "server.json").exists()
    assert embedded.find_running() is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2.0).close()
    assert embedded.stop_running() is False


def test_a_busy_default_port_falls_back_to_a_free_one(data_dir: Path) -> None:
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            holder.bind(("127.0.0.1", embedded.DEFAULT_PORT))
            holder.listen()
        except OSError:
            pass  # already busy: just as good for this test
        server = embedded.ensure_running()
        assert server.port != embedded.DEFAULT_PORT
    finally:
        holder.close()


def test_an_unrecorded_server_on_the_same_store_is_never_doubled(data_dir: Path) -> None:
    server = embedded.ensure_running()
    (data_dir / "server.json").unlink()
    with pytest.raises(StoreUnavailableError, match=str(server.pid)):
        embedded.ensure_running(timeout=5.0)
    assert _servers_on(data_dir) == [server.pid]
    assert embedded.stop_running() is True
    assert _gone(server.pid)


@pytest.fixture
def failing_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A "nats-server" beside the (pretend) python that logs a fatal line and exits 3."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "nats-server"
    fake.write_text("#!/bin/sh\necho '[1] [FTL] the disk is on fire' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_bin / "python"))


@pytest.mark.usefixtures("failing_binary")
def test_a_server_that_fails_to_start_reports_its_fatal_line(data_dir: Path) -> None:
    with pytest.raises(StoreUnavailableError, match="the disk is on fire"):
        embedded.ensure_running(timeout=10.0)
    assert not (data_dir / "server.json").exists()


@pytest.mark.usefixtures("failing_binary")
def test_a_foreground_server_that_fails_returns_its_status(data_dir: Path) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert embedded.run_foreground() == 3
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert not (data_dir / "server.json").exists()


def test_run_foreground_serves_until_signalled(data_dir: Path) -> None:
    env = {**os.environ, embedded.DATA_DIR_ENV: str(data_dir.parent)}
    code = "from osfs.embedded import run_foreground; raise SystemExit(run_foreground())"
    foreground = subprocess.Popen(
        _python(code), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        server = wait_until(embedded.find_running, 15.0, message="the foreground server")
        assert server.pid != foreground.pid
        assert embedded.ensure_running() == server

        second = subprocess.run(
            _python(code), env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert second.returncode == 1
        assert "already runs" in second.stderr

        foreground.send_signal(signal.SIGTERM)
        _, err = foreground.communicate(timeout=30)
        assert foreground.returncode == 0, err
        assert b"Server Exiting" in err
        assert _gone(server.pid)
        assert not (data_dir / "server.json").exists()
    finally:
        if foreground.poll() is None:
            foreground.kill()
            foreground.wait()
