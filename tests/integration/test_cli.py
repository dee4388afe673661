"""The ``osfs`` command end to end: the real CLI in a subprocess against a real nats-server.

Rules: the conftest's, and
1. Every run goes through ``python -m osfs`` with a clean environment: no ``NATS_*`` variables,
   ``XDG_CONFIG_HOME`` and ``OSFS_DATA_DIR`` under ``tmp_path``, so neither the developer's nats
   contexts nor their embedded server can leak in.
2. Failures are checked as users see them: the exit status, and exactly one ``osfs: error:``
   line on stderr with no traceback.
3. A test that lets osfs start its embedded server stops it in teardown (``osfs server --stop``).
4. Waits have deadlines (``wait_until``, subprocess timeouts), never fixed sleeps.
"""

from __future__ import annotations

import hashlib
import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import nats
import pytest

from osfs.core.subjects import chunk_subject
from tests.support.aio import run
from tests.support.cli import RUN_TIMEOUT, Osfs, Result, isolated_env, run_osfs

pytestmark = pytest.mark.integration

COMMANDS = (
    "add",
    "rm",
    "ls",
    "put",
    "get",
    "info",
    "mv",
    "link",
    "seal",
    "watch",
    "status",
    "server",
)


def _runner(tmp_path: Path, **extra: str) -> Osfs:
    """Run the CLI in ``tmp_path`` with :func:`isolated_env` plus ``extra``."""
    return partial(run_osfs, env=isolated_env(tmp_path, extra), cwd=tmp_path)


@pytest.fixture
def osfs(nats_url: str, tmp_path: Path) -> Osfs:
    """Run the CLI against the shared test server (named through ``NATS_URL``)."""
    return _runner(tmp_path, NATS_URL=nats_url)


@pytest.fixture
def embedded_osfs(tmp_path: Path) -> Iterator[Osfs]:
    """Run the CLI with no server named: it starts its embedded server, stopped afterwards."""
    osfs = _runner(tmp_path)
    try:
        yield osfs
    finally:
        stopped = osfs("server", "--stop")
        assert stopped.code == 0, stopped.stderr


@pytest.fixture
def bucket(osfs: Osfs, bucket_name: str) -> str:
    """A fresh, empty bucket."""
    result = osfs("add", bucket_name)
    assert result.code == 0, result.stderr
    return bucket_name


def _ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}: {result.stderr}"
    return result


# Round trips ------------------------------------------------------------------------------------


def test_put_ls_get_round_trip_of_a_file(osfs: Osfs, bucket: str, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1200  # 300 KiB: several chunks at 64 KiB
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    _ok(osfs("put", bucket, str(source), "--name", "dir/blob.bin", "--chunk-size", "64KiB"))

    listing = _ok(osfs("ls", bucket)).text
    assert "dir/blob.bin" in listing
    assert hashlib.sha256(data).hexdigest()[:12] in listing

    target = tmp_path / "out" / "copy.bin"
    target.parent.mkdir()
    _ok(osfs("get", bucket, "dir/blob.bin", "-o", str(target)))
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.bin"]  # no leftovers

    assert _ok(osfs("get", bucket, "dir/blob.bin")).stdout == data


def test_put_from_stdin_and_get_to_stdout(osfs: Osfs, bucket: str) -> None:
    data = b"line one\nline two\n\x00binary\xff"
    _ok(osfs("put", bucket, "-", "--name", "piped.txt", stdin=data))
    assert _ok(osfs("get", bucket, "piped.txt")).stdout == data
    assert _ok(osfs("get", bucket, "piped.txt", "-o", "-")).stdout == data


def test_stdin_needs_a_name(osfs: Osfs, bucket: str) -> None:
    result = osfs("put", bucket, "-", stdin=b"x")
    assert result.code == 2
    assert "--name is required" in result.one_error_line()


def test_default_name_is_the_cleaned_path(osfs: Osfs, bucket: str, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.txt").write_bytes(b"f")
    info = _ok(osfs("--json", "put", bucket, "./sub//f.txt")).json()
    assert info["name"] == "sub/f.txt"


def test_get_into_a_directory_keeps_the_base_name(osfs: Osfs, bucket: str, tmp_path: Path) -> None:
    _ok(osfs("put", bucket, "-", "--name", "a/b/c.txt", stdin=b"c"))
    out = tmp_path / "dest"
    out.mkdir()
    _ok(osfs("get", bucket, "a/b/c.txt", "-o", str(out)))
    assert (out / "c.txt").read_bytes() == b"c"


def test_put_of_a_missing_file_is_one_line(osfs: Osfs, bucket: str) -> None:
    result = osfs("put", bucket, "no-such-file")
    assert result.code == 1
    assert "no-such-file" in result.one_error_line()


# JSON ---------------------------------------------------------------------------------------------


def test_json_everywhere(osfs: Osfs, bucket: str) -> None:
    put = _ok(
        osfs(
            "put",
            bucket,
            "-",
            "--name",
            "doc.txt",
            "--description",
            "a doc",
            "--meta",
            "owner=ann",
            "--header",
            "X-Tag=1",
            "-H",
            "X-Tag: 2",
            "--json",
            stdin=b"hello",
        )
    ).json()
    assert put["name"] == "doc.txt"
    assert put["bucket"] == bucket
    assert put["size"] == 5
    assert put["chunks"] == 1
    assert put["digest"].startswith("SHA-256=")
    assert put["mtime"].endswith("Z")
    assert put["nuid"]
    assert put["deleted"] is False
    assert put["description"] == "a doc"
    assert put["metadata"] == {"owner": "ann"}
    assert put["headers"] == {"X-Tag": ["1", "2"]}
    assert put["link"] is None

    listing = _ok(osfs("--json", "ls", bucket)).json()
    assert [entry["name"] for entry in listing] == ["doc.txt"]
    assert listing[0]["digest"] == put["digest"]

    info = _ok(osfs("info", bucket, "doc.txt", "--json")).json()
    # put reports the client's clock (as nats.go does); info reads the server's timestamp.
    assert info == {**put, "revision": info["revision"], "mtime": info["mtime"]}

    status = _ok(osfs("info", bucket, "--json")).json()
    assert status["bucket"] == bucket
    assert status["objects"] == 1
    assert status["sealed"] is False

    buckets = _ok(osfs("ls", "--json")).json()
    mine = [entry for entry in buckets if entry["bucket"] == bucket]
    assert len(mine) == 1
    assert mine[0]["objects"] == 1
    assert mine[0]["size"] > 0


def test_add_with_settings(osfs: Osfs, bucket_name: str) -> None:
    created = _ok(
        osfs(
            "add",
            bucket_name,
            "--ttl",
            "2h",
            "--max-bytes",
            "10MiB",
            "--storage",
            "memory",
            "--description",
            "scratch",
            "--compress",
            "--metadata",
            "team=ops",
            "--json",
        )
    ).json()
    assert created["ttl"] == 7200
    assert created["max_bytes"] == 10 * 1024 * 1024
    assert created["storage"] == "memory"
    assert created["description"] == "scratch"
    assert created["compressed"] is True
    assert created["metadata"] == {"team": "ops"}

    again = osfs("add", bucket_name, "--ttl", "3h")
    assert again.code == 4
    again.one_error_line()


def test_info_shows_headers_metadata_and_hex_digest(osfs: Osfs, bucket: str) -> None:
    _ok(osfs("put", bucket, "-", "--name", "x", "--meta", "k=v", "-H", "X-A=1", stdin=b"abc"))
    text = _ok(osfs("info", bucket, "x")).text
    assert "X-A: 1" in text
    assert "k=v" in text
    assert hashlib.sha256(b"abc").hexdigest() in text


# Changing objects -------------------------------------------------------------------------------


def test_mv_renames(osfs: Osfs, bucket: str) -> None:
    _ok(osfs("put", bucket, "-", "--name", "old.txt", "--meta", "k=v", stdin=b"data"))
    moved = _ok(osfs("--json", "mv", bucket, "old.txt", "new/name.txt")).json()
    assert moved["name"] == "new/name.txt"
    assert moved["metadata"] == {"k": "v"}
    assert _ok(osfs("get", bucket, "new/name.txt")).stdout == b"data"
    gone = osfs("get", bucket, "old.txt")
    assert gone.code == 3
    gone.one_error_line()


def test_mv_onto_an_existing_object_is_exit_4(osfs: Osfs, bucket: str) -> None:
    _ok(osfs("put", bucket, "-", "--name", "a", stdin=b"a"))
    _ok(osfs("put", bucket, "-", "--name", "b", stdin=b"b"))
    result = osfs("mv", bucket, "a", "b")
    assert result.code == 4
    result.one_error_line()


def test_object_link_and_bucket_link(osfs: Osfs, bucket: str, make_bucket_name: Any) -> None:
    other = make_bucket_name()
    _ok(osfs("add", other))
    _ok(osfs("put", bucket, "-", "--name", "target.txt", stdin=b"target"))
    _ok(osfs("put", other, "-", "--name", "far.txt", stdin=b"far"))

    _ok(osfs("link", bucket, "near", "target.txt"))
    assert _ok(osfs("get", bucket, "near")).stdout == b"target"
    info = _ok(osfs("--json", "info", bucket, "near")).json()
    assert info["link"] == {"bucket": bucket, "name": "target.txt"}

    _ok(osfs("link", bucket, "across", "far.txt", "--target-bucket", other))
    assert _ok(osfs("get", bucket, "across")).stdout == b"far"

    whole = _ok(osfs("--json", "link", bucket, "everything", "--to-bucket", other)).json()
    assert whole["link"] == {"bucket": other, "name": None}
    assert f"bucket {other}" in _ok(osfs("info", bucket, "everything")).text
    assert osfs("get", bucket, "everything").code == 1

    both = osfs("link", bucket, "bad", "target.txt", "--to-bucket", other)
    assert both.code == 2
    both.one_error_line()
    neither = osfs("link", bucket, "bad")
    assert neither.code == 2
    neither.one_error_line()


def test_rm_object(osfs: Osfs, bucket: str) -> None:
    _ok(osfs("put", bucket, "-", "--name", "doomed", stdin=b"x"))
    _ok(osfs("rm", bucket, "doomed"))
    missing = osfs("get", bucket, "doomed")
    assert missing.code == 3
    missing.one_error_line()
    deleted = _ok(osfs("--json", "ls", bucket, "--deleted")).json()
    assert [(entry["name"], entry["deleted"]) for entry in deleted] == [("doomed", True)]
    assert _ok(osfs("--json", "ls", bucket)).json() == []


def test_rm_bucket_needs_force_without_a_terminal(osfs: Osfs, bucket: str) -> None:
    refused = osfs("rm", bucket)
    assert refused.code == 2
    assert "--force" in refused.one_error_line()
    _ok(osfs("ls", bucket))  # still there

    _ok(osfs("rm", bucket, "--force"))
    gone = osfs("ls", bucket)
    assert gone.code == 3
    assert bucket in gone.one_error_line()


def test_seal_then_put_fails_with_exit_6(osfs: Osfs, bucket: str) -> None:
    _ok(osfs("put", bucket, "-", "--name", "kept", stdin=b"kept"))
    assert osfs("seal", bucket).code == 2  # no terminal, no --force
    _ok(osfs("seal", bucket, "-f"))
    refused = osfs("put", bucket, "-", "--name", "new", stdin=b"new")
    assert refused.code == 6
    assert "sealed" in refused.one_error_line()
    assert _ok(osfs("get", bucket, "kept")).stdout == b"kept"  # reads still work
    assert _ok(osfs("--json", "info", bucket)).json()["sealed"] is True


# Failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("ls", "{b}"),
        ("get", "{b}", "x"),
        ("info", "{b}"),
        ("put", "{b}", "-", "--name", "x"),
    ],
)
def test_missing_bucket_is_exit_3_and_never_created(
    osfs: Osfs, bucket_name: str, argv: tuple[str, ...]
) -> None:
    result = osfs(*(arg.format(b=bucket_name) for arg in argv), stdin=b"x")
    assert result.code == 3
    assert bucket_name in result.one_error_line()
    names = _ok(osfs("ls", "--names")).text.split()
    assert bucket_name not in names


def test_missing_object_is_exit_3(osfs: Osfs, bucket: str, tmp_path: Path) -> None:
    target = tmp_path / "never"
    result = osfs("get", bucket, "nope", "-o", str(target))
    assert result.code == 3
    result.one_error_line()
    assert not target.exists()


def test_invalid_bucket_name_is_a_usage_error(osfs: Osfs) -> None:
    result = osfs("add", "not.valid")
    assert result.code == 2
    assert "invalid bucket name" in result.one_error_line()


def test_server_down_is_exit_5(tmp_path: Path) -> None:
    osfs = _runner(tmp_path)
    result = osfs("--server", "nats://127.0.0.1:1", "--password", "hunter2", "--user", "u", "ls")
    assert result.code == 5
    line = result.one_error_line()
    assert "127.0.0.1:1" in line
    assert "hunter2" not in line


def test_corrupt_object_is_exit_7_and_leaves_no_file(
    osfs: Osfs, bucket: str, nats_url: str, tmp_path: Path
) -> None:
    info = _ok(osfs("--json", "put", bucket, "-", "--name", "c", stdin=b"A" * 1000)).json()

    async def corrupt() -> None:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            subject = chunk_subject(bucket, info["nuid"])
            await js.purge_stream(f"OBJ_{bucket}", subject=subject)
            await js.publish(subject, b"B" * 1000)
        finally:
            await nc.close()

    run(corrupt())
    target = tmp_path / "c.out"
    result = osfs("get", bucket, "c", "-o", str(target))
    assert result.code == 7
    result.one_error_line()
    assert list(tmp_path.glob("*c.out*")) == []


def test_secrets_stay_out_of_status(nats_url: str, tmp_path: Path) -> None:
    host = nats_url.removeprefix("nats://")
    osfs = _runner(tmp_path, NATS_PASSWORD="hunter2", NATS_TOKEN="t0ken")
    for argv in (("status",), ("status", "--json")):
        result = _ok(osfs("--server", f"nats://u:hunter2@{host}", *argv))
        assert "hunter2" not in result.text + result.stderr
        assert "t0ken" not in result.text + result.stderr
        assert host in result.text


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command_teaches_by_example(osfs: Osfs, command: str) -> None:
    result = _ok(osfs(command, "--help"))
    assert "examples:" in result.text
    assert f"osfs {command}" in result.text


def test_main_help_lists_commands_and_exit_codes(osfs: Osfs) -> None:
    text = _ok(osfs("--help")).text
    for command in COMMANDS:
        assert command in text
    assert "exit status:" in text


def test_quiet_put_prints_nothing(osfs: Osfs, bucket: str) -> None:
    result = _ok(osfs("-q", "put", bucket, "-", "--name", "q", stdin=b"q"))
    assert result.stdout == b""
    assert result.stderr == ""


# Where osfs connects ----------------------------------------------------------------------------


def test_nats_context_names_the_server(nats_url: str, bucket_name: str, tmp_path: Path) -> None:
    contexts = tmp_path / "config" / "nats" / "context"
    contexts.mkdir(parents=True)
    (contexts / "test.json").write_text(json.dumps({"url": nats_url}))
    (tmp_path / "config" / "nats" / "context.txt").write_text("test")
    osfs = _runner(tmp_path)
    _ok(osfs("add", bucket_name))
    status = _ok(osfs("status", "--json")).json()
    assert status["embedded"] is False
    assert status["context"] == "test"
    assert status["connected_url"] == nats_url


def test_embedded_default_put_then_ls(embedded_osfs: Osfs, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# demo\n")
    before = _ok(embedded_osfs("status", "--json")).json()
    assert before["embedded"] is True

    put = _ok(embedded_osfs("put", "demo", "README.md"))
    assert "created bucket demo" in put.stderr
    assert "README.md" in _ok(embedded_osfs("ls", "demo")).text
    assert _ok(embedded_osfs("get", "demo", "README.md")).stdout == b"# demo\n"

    status = _ok(embedded_osfs("status", "--json")).json()
    assert status["embedded"] is True
    assert status["running"] is True
    assert status["jetstream"]["streams"] >= 1

    missing = embedded_osfs("get", "nothing-here", "x")  # only put creates buckets
    assert missing.code == 3
    missing.one_error_line()


# watch ------------------------------------------------------------------------------------------


def test_watch_prints_json_lines_and_ctrl_c_exits_0(
    osfs: Osfs, bucket: str, nats_url: str, tmp_path: Path
) -> None:
    _ok(osfs("put", bucket, "-", "--name", "before", stdin=b"1"))
    watcher = subprocess.Popen(
        [sys.executable, "-m", "osfs", "watch", bucket, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=isolated_env(tmp_path, {"NATS_URL": nats_url}),
    )
    lines: queue.Queue[bytes] = queue.Queue()

    def read_lines() -> None:
        for line in watcher.stdout or ():
            lines.put(line)

    reader = threading.Thread(target=read_lines)
    reader.start()
    try:
        first = json.loads(lines.get(timeout=RUN_TIMEOUT))
        assert (first["op"], first["name"]) == ("put", "before")
        _ok(osfs("put", bucket, "-", "--name", "after", stdin=b"2"))
        second = json.loads(lines.get(timeout=RUN_TIMEOUT))
        assert (second["op"], second["name"]) == ("put", "after")
        _ok(osfs("rm", bucket, "after"))
        third = json.loads(lines.get(timeout=RUN_TIMEOUT))
        assert (third["op"], third["name"], third["deleted"]) == ("del", "after", True)
    finally:
        watcher.send_signal(signal.SIGINT)
        code = watcher.wait(timeout=RUN_TIMEOUT)
        reader.join(timeout=RUN_TIMEOUT)
    assert watcher.stderr is not None
    stderr = watcher.stderr.read().decode()
    assert code == 0, stderr
    assert "Traceback" not in stderr
