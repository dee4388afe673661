"""Who may see a mount and its secrets: credentials stay out of ``ps`` and the log, other users
meet FUSE's and the kernel's permission checks.

Rules (beside the conftest's):
1. Secrets are distinctive random strings, searched for verbatim in every process's command line
   on the machine, in the mount's log at ``--log-level debug``, and in the CLI's output.
2. "Another user" is ``nobody`` (uid/gid 65534): a small Python program run under that uid does
   the file operations, so the kernel sees a real foreign user, not root.
3. Mountpoints another user must reach live in a world-traversable temporary directory (pytest's
   ``tmp_path`` is 0700), removed at the end.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import RUN_TIMEOUT, Result, run_osfs
from tests.support.mounting import (
    clean_env,
    end_background_mount,
    mounted,
    processes_with_argument,
    read_file,
    require_fuse,
    write_file,
)
from tests.support.nats_server import NatsServer, start_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fuse]

NOBODY = 65534
"""uid and gid of the user ``nobody``."""

SYSTEM_PYTHON = "/usr/bin/python3"
"""The Python that runs as ``nobody``: Debian's (scripts/setup installs it), which every user may
execute; the venv's interpreter may live under a private home."""

PASSWORD = f"pw-{secrets.token_hex(12)}"
URL_PASSWORD = f"urlpw-{secrets.token_hex(12)}"
TOKEN = f"tk-{secrets.token_hex(12)}"


def osfs(*argv: str, env: dict[str, str] | None = None) -> Result:
    """Run ``python -m osfs ARGV`` to completion (under a deadline), with no ``NATS_*`` set."""
    return run_osfs(*argv, env=clean_env(env))


@pytest.fixture(scope="module")
def users_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server that knows two users by password."""
    users = json.dumps(
        [{"user": "alice", "password": PASSWORD}, {"user": "bob", "password": URL_PASSWORD}]
    )
    config = f"authorization {{\n  users: {users}\n}}\n"
    with start_server(tmp_path_factory.mktemp("users-server"), config_extra=config) as server:
        yield server


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server that admits whoever has its token."""
    config = f"authorization {{\n  token: {json.dumps(TOKEN)}\n}}\n"
    with start_server(tmp_path_factory.mktemp("token-server"), config_extra=config) as server:
        yield server


def _every_command_line() -> list[bytes]:
    """The command lines of every process on the machine, as ``ps`` shows them to anyone."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" "))
            except OSError:
                continue
    return lines


@pytest.fixture
def background_mounts() -> Iterator[list[Path]]:
    """Mountpoints a test mounted in the background, ended after it (``end_background_mount``)."""
    mountpoints: list[Path] = []
    yield mountpoints
    for path in mountpoints:
        end_background_mount(path)


@pytest.mark.parametrize("how", ["password flag", "URL credentials", "token flag"])
def test_secrets_given_as_flags_stay_out_of_ps_and_the_log(
    how: str,
    users_server: NatsServer,
    token_server: NatsServer,
    tmp_path: Path,
    background_mounts: list[Path],
) -> None:
    """The background mount's child lives on; its command line is world-readable, so the
    password, token or credentialed URL the user typed reaches it through its environment."""
    require_fuse()
    host = users_server.url.removeprefix("nats://")
    connection = {
        "password flag": ["--server", users_server.url, "--user", "alice", "--password", PASSWORD],
        "URL credentials": ["--server", f"nats://bob:{URL_PASSWORD}@{host}"],
        "token flag": ["--server", token_server.url, "--token", TOKEN],
    }[how]
    secret = {"password flag": PASSWORD, "URL credentials": URL_PASSWORD, "token flag": TOKEN}[how]
    bucket = f"sec_{uuid.uuid4().hex[:10]}"
    assert osfs(*connection, "add", bucket).code == 0
    mountpoint, log = tmp_path / "mnt", tmp_path / "mount.log"
    mountpoint.mkdir()
    background_mounts.append(mountpoint)
    started = osfs(
        *connection,
        "mount",
        bucket,
        str(mountpoint),
        "--log-file",
        str(log),
        "--log-level",
        "debug",
    )
    assert started.code == 0, started.stderr
    assert secret not in started.output
    [child] = processes_with_argument(str(mountpoint))
    assert secret.encode() not in Path(f"/proc/{child}/cmdline").read_bytes()
    assert not [line for line in _every_command_line() if secret.encode() in line]
    # The child did authenticate with the moved secret: a write lands in the bucket.
    assert write_file(mountpoint / "note.txt", b"written with a secret\n") is None
    fetched = osfs(*connection, "get", bucket, "note.txt")
    assert (fetched.code, fetched.text) == (0, "written with a secret\n"), fetched.stderr
    assert osfs("umount", str(mountpoint)).code == 0
    wait_until(lambda: not processes_with_argument(str(mountpoint)), 20, 0.05, "the mount to end")
    text = log.read_text()
    assert "DEBUG" in text  # the log did record the connection in detail
    assert secret not in text


def test_a_refused_secret_is_not_printed(users_server: NatsServer, tmp_path: Path) -> None:
    """The error names the server without the credentials it was given."""
    host = users_server.url.removeprefix("nats://")
    wrong = f"wrong-{secrets.token_hex(8)}"
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    result = osfs("--server", f"nats://alice:{wrong}@{host}", "mount", "any", str(mountpoint))
    assert result.code == 8, result.stderr
    assert result.stderr.startswith(f"osfs: error: NATS at nats://{host} refused")
    assert wrong not in result.output
    assert not os.path.ismount(mountpoint)


# Other users ------------------------------------------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A temporary directory every user can traverse (rule 3)."""
    path = Path(tempfile.mkdtemp(prefix="osfs-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


_AS_NOBODY = """
import errno, json, os, sys
results = {}
for op, path in json.loads(sys.argv[1]):
    try:
        if op == "read":
            with open(path, "rb") as f:
                f.read()
        elif op == "list":
            os.listdir(path)
        elif op == "stat":
            os.stat(path)
        elif op == "create":
            with open(path, "wb") as f:
                f.write(b"from nobody")
        elif op == "unlink":
            os.unlink(path)
        elif op == "chmod":
            os.chmod(path, 0o777)
        results[op + " " + os.path.basename(path)] = 0
    except OSError as exc:
        results[op + " " + os.path.basename(path)] = exc.errno
print(json.dumps(results))
"""


def as_nobody(*operations: tuple[str, Path]) -> dict[str, int]:
    """Run ``operations`` as the user ``nobody``: ``{"<op> <file name>": errno or 0}``."""
    plan = json.dumps([(op, str(path)) for op, path in operations])
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-S", "-c", _AS_NOBODY, plan],
        capture_output=True,
        text=True,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        timeout=RUN_TIMEOUT,
        check=True,
    )
    results: dict[str, int] = json.loads(done.stdout)
    return results


def test_without_allow_other_no_other_user_gets_in(nats_url: str, shared_dir: Path) -> None:
    """FUSE's default: only the user who mounted sees the files, whatever their modes."""
    bucket = _new_bucket(nats_url)
    mountpoint = shared_dir / "mnt"
    with mounted(nats_url, bucket, mountpoint, "--file-mode", "0644", "--dir-mode", "0755"):
        assert write_file(mountpoint / "open.txt", b"for everyone?") is None
        assert as_nobody(("stat", mountpoint / "open.txt"), ("list", mountpoint)) == {
            "stat open.txt": errno.EACCES,
            "list mnt": errno.EACCES,
        }
        assert read_file(mountpoint / "open.txt") == b"for everyone?"  # the owner still can


def test_with_allow_other_the_kernel_enforces_the_modes(nats_url: str, shared_dir: Path) -> None:
    """``default_permissions`` is on: the kernel checks each file's mode, owner and group
    against the caller, so a 0600 file is private even with ``allow_other``."""
    bucket = _new_bucket(nats_url)
    mountpoint = shared_dir / "mnt"
    with mounted(nats_url, bucket, mountpoint, "--allow-other") as mount:
        options = _mount_options(mountpoint)
        assert {"allow_other", "default_permissions"} <= set(options), options
        root = mountpoint
        for name, mode in (("private.txt", 0o600), ("shared.txt", 0o644)):
            assert write_file(root / name, name.encode()) is None
            os.chmod(root / name, mode)
        (root / "closed").mkdir(mode=0o700)
        assert write_file(root / "closed" / "inner.txt", b"inner") is None
        (root / "open").mkdir()
        os.chmod(root / "open", 0o777)
        os.chmod(root, 0o755)
        results = as_nobody(
            ("read", root / "shared.txt"),
            ("read", root / "private.txt"),
            ("list", root / "closed"),
            ("create", root / "mine.txt"),
            ("unlink", root / "shared.txt"),
            ("chmod", root / "shared.txt"),
            ("create", root / "open" / "theirs.txt"),
        )
        assert results == {
            "read shared.txt": 0,
            "read private.txt": errno.EACCES,
            "list closed": errno.EACCES,
            "create mine.txt": errno.EACCES,
            "unlink shared.txt": errno.EACCES,
            "chmod shared.txt": errno.EPERM,
            "create theirs.txt": 0,
        }
        made = os.stat(root / "open" / "theirs.txt")
        assert (made.st_uid, made.st_gid) == (NOBODY, NOBODY)  # owned by who created it
        assert read_file(root / "open" / "theirs.txt") == b"from nobody"
        assert read_file(root / "shared.txt") == b"shared.txt"  # not removed, not changed
        assert os.stat(root / "shared.txt").st_mode & 0o777 == 0o644
        mount.check_log()


def _new_bucket(url: str) -> str:
    bucket = f"perm_{uuid.uuid4().hex[:10]}"
    added = osfs("--server", url, "add", bucket)
    assert added.code == 0, added.stderr
    return bucket


def _mount_options(path: Path) -> list[str]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if fields[1] == str(path):
            return fields[3].split(",")
    raise AssertionError(f"{path} is not in /proc/self/mounts")
