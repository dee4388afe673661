"""Secrets given as flags stay off the background mount's command line (``secrets_moved_to_env``).

Each case is the argv ``osfs`` was called with; the child re-runs what is kept, with the secrets
in its environment, and must resolve the same connection as the parent did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osfs.cli.context import ConnectFlags, resolve, secrets_moved_to_env
from osfs.cli.options import connect_flags
from osfs.cli.parser import build_parser


def _parse(argv: list[str]) -> ConnectFlags:
    return connect_flags(build_parser().parse_args(argv))


def _moved(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    return secrets_moved_to_env(argv, _parse(argv))


def test_password_and_token_flags_move_to_their_variables() -> None:
    argv = ["--user", "alice", "--password", "pw1", "mount", "b", "/mnt", "--token=tk1"]
    kept, env = _moved(argv)
    assert kept == ["--user", "alice", "mount", "b", "/mnt"]
    assert env == {"NATS_PASSWORD": "pw1", "NATS_TOKEN": "tk1"}


def test_plain_server_urls_stay_on_the_command_line() -> None:
    argv = ["-s", "nats://a:4222", "mount", "b", "/mnt", "--server=nats://c:4222"]
    assert _moved(argv) == (argv, {})


def test_one_credentialed_url_moves_every_server() -> None:
    argv = ["-snats://a:4222", "--server", "nats://u:secret@c:4222", "mount", "b", "/mnt"]
    kept, env = _moved(argv)
    assert kept == ["mount", "b", "/mnt"]
    assert env == {"NATS_URL": "nats://a:4222,nats://u:secret@c:4222"}


def test_arguments_after_a_double_dash_are_kept_as_they_are() -> None:
    argv = ["--password", "pw", "mount", "--", "--token", "/mnt"]
    kept, env = secrets_moved_to_env(argv, ConnectFlags(password="pw"))
    assert kept == ["mount", "--", "--token", "/mnt"]
    assert env == {"NATS_PASSWORD": "pw"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--user", "u", "--password", "p", "mount", "b", "/m"],
        ["--token=t", "-s", "nats://h:1", "mount", "b", "/m"],
        ["-s", "nats://x:y@h:1,nats://g:2", "mount", "b", "/m", "--password", "p"],
        ["--context", "ops", "mount", "b", "/m", "--token", "t"],
        ["-s", "nats://a:1", "mount", "b", "/m", "--server", "nats://u:p@c:2"],
    ],
)
def test_the_child_resolves_the_same_connection(argv: list[str], tmp_path: Path) -> None:
    """Flags beat the environment, so a flag moved into its variable means the same; a variable
    the caller had set is overridden by the moved flag, as the flag overrode it."""
    contexts = tmp_path / "nats" / "context"
    contexts.mkdir(parents=True)
    (contexts / "ops.json").write_text(json.dumps({"url": "nats://ctx:1", "password": "ctx"}))
    caller_env = {
        "NATS_PASSWORD": "stale",
        "NATS_TOKEN": "stale",
        "NATS_URL": "nats://old:1",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    parent = resolve(_parse(argv), caller_env)
    kept, moved = secrets_moved_to_env(argv, _parse(argv))
    child = resolve(_parse(kept), {**caller_env, **moved})
    assert child.options == parent.options


def test_abbreviated_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Otherwise ``--pass SECRET`` would slip past the move and land in ``ps``."""
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["ls", "--pass", "pw"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --pass " in capsys.readouterr().err
