"""The test servers themselves: every other integration test stands on these guarantees.

Rules: the conftest's (real nats-server on 127.0.0.1, never skip, absolute deadlines, no fixed
sleeps). Clients here are nats-py directly, so a failure points at the fixture, not at osfs.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nats
import pytest

from tests.support.aio import asyncio_test, run
from tests.support.nats_server import Cluster, NatsServer, server_binary, start_server
from tests.support.waiting import async_wait_until, wait_until

pytestmark = pytest.mark.integration


def _info_line(port: int) -> dict[str, object]:
    """Connect with a plain socket and decode the server's greeting (``INFO {...}``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        greeting = b""
        while not greeting.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            assert chunk, "server closed the connection before sending INFO"
            greeting += chunk
    assert greeting.startswith(b"INFO ")
    info: dict[str, object] = json.loads(greeting[5:])
    return info


def test_shared_server_speaks_nats_on_loopback(nats_server: NatsServer, nats_url: str) -> None:
    assert nats_url == f"nats://127.0.0.1:{nats_server.port}"
    info = _info_line(nats_server.port)
    assert info["jetstream"] is True
    assert info["port"] == nats_server.port
    assert nats_server.running


@asyncio_test
async def test_jetstream_api_answers(nats_url: str) -> None:
    nc = await nats.connect(servers=[nats_url], connect_timeout=5)
    try:
        reply = await nc.request("$JS.API.INFO", b"", timeout=5)
    finally:
        await nc.close()
    info = json.loads(reply.data)
    assert "error" not in info
    assert info["type"] == "io.nats.jetstream.api.v1.account_info_response"


def test_restart_keeps_port_and_data(fresh_nats_server: NatsServer) -> None:
    server = fresh_nats_server
    url, port = server.url, server.port

    async def write() -> None:
        nc = await nats.connect(servers=[url])
        try:
            js = nc.jetstream()
            await js.add_stream(name="KEEP", subjects=["keep.>"])
            await js.publish("keep.one", b"survives a restart")
        finally:
            await nc.close()

    async def read() -> bytes:
        nc = await nats.connect(servers=[url])
        try:
            msg = await nc.jetstream().get_last_msg("KEEP", "keep.one")
            assert msg.data is not None
            return msg.data
        finally:
            await nc.close()

    run(write())
    server.restart()
    assert (server.url, server.port) == (url, port)
    assert run(read()) == b"survives a restart"

    server.kill()
    assert not server.running
    server.restart()
    assert run(read()) == b"survives a restart"


def test_stop_is_clean_and_idempotent(tmp_path: Path) -> None:
    with start_server(tmp_path / "s", jetstream=False) as server:
        assert "JetStream" not in server.log_text()
    assert not server.running
    assert server.process.returncode is not None
    server.stop()  # a second stop is a no-op
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2.0).close()


def test_config_extra_is_applied(tmp_path: Path) -> None:
    with start_server(tmp_path / "s", config_extra="max_payload: 65536") as server:
        assert _info_line(server.port)["max_payload"] == 65536


def test_a_bad_config_fails_with_the_servers_complaint(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"exited with code") as caught:
        start_server(tmp_path / "s", config_extra="no_such_option_here: {")
    assert "Parse error" in str(caught.value)
    assert "nats.log" in str(caught.value)


def test_a_taken_port_fails_with_the_fatal_line(nats_server: NatsServer, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match=r"\[FTL\].*address already in use"):
        start_server(tmp_path / "s", port=nats_server.port)


def test_missing_binary_fails_and_never_skips(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AssertionError, match="no nats-server binary"):
        server_binary()


@pytest.mark.cluster
def test_cluster_places_an_r3_stream_and_survives_a_node_loss(nats_cluster: Cluster) -> None:
    cluster = nats_cluster
    assert len(cluster.urls) == 3
    assert all(url.startswith("nats://127.0.0.1:") for url in cluster.urls)

    async def create_r3() -> list[str]:
        nc = await nats.connect(servers=list(cluster.urls))
        try:
            js = nc.jetstream()
            await js.add_stream(name="R3", subjects=["r3.>"], num_replicas=3)
            await js.publish("r3.a", b"one")
            placement = (await js.stream_info("R3")).cluster
            assert placement is not None
            assert placement.leader is not None
            return [placement.leader, *(str(peer.name) for peer in placement.replicas or [])]
        finally:
            await nc.close()

    members = run(create_r3())
    assert sorted(members) == ["n1", "n2", "n3"]

    # Lose one node that is not the meta leader: two of three still make a quorum.
    leader = cluster.wait_for_meta_leader()
    victim = next(i for i, node in enumerate(cluster.nodes) if node.server_name != leader)
    survivors = [node.url for i, node in enumerate(cluster.nodes) if i != victim]
    cluster.kill_node(victim)
    try:

        async def write_with_one_node_down() -> bytes:
            nc = await nats.connect(servers=survivors)
            try:
                js = nc.jetstream()

                async def published() -> bool:
                    try:
                        await js.publish("r3.b", b"two", timeout=2)
                    except nats.errors.Error:
                        return False  # the stream may be electing a new leader
                    return True

                await async_wait_until(published, 20.0, interval=0.2, message="an R3 publish")
                msg = await js.get_last_msg("R3", "r3.b")
                assert msg.data is not None
                return msg.data
            finally:
                await nc.close()

        assert run(write_with_one_node_down()) == b"two"
    finally:
        cluster.restart_node(victim)

    async def cleanup() -> None:
        nc = await nats.connect(servers=list(cluster.urls))
        try:
            await nc.jetstream().delete_stream("R3")
        finally:
            await nc.close()

    run(cleanup())


def test_bucket_names_are_valid_and_unique(
    bucket_name: str, make_bucket_name: Callable[[], str]
) -> None:
    others = {make_bucket_name() for _ in range(5)}
    for name in {bucket_name, *others}:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,60}", name), name
    assert len(others | {bucket_name}) == 6
    assert bucket_name.startswith("test_bucket_names_are_valid_and_unique")


@pytest.mark.parametrize("case", ["a/b [x]", "y" * 200])
def test_bucket_names_from_odd_test_ids(bucket_name: str, case: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,60}", bucket_name), bucket_name


def test_wait_until_returns_the_value_or_fails_with_the_message() -> None:
    start = time.monotonic()
    assert wait_until(lambda: time.monotonic() - start > 0.05 and "done", 5.0) == "done"

    def refused() -> bool:
        raise ConnectionRefusedError("not yet")

    with pytest.raises(AssertionError, match=r"the moon.*ConnectionRefusedError"):
        wait_until(refused, 0.1, message="the moon", ignore=(ConnectionRefusedError,))
