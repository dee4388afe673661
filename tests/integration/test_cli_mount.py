"""``osfs mount`` and ``osfs umount`` where they must refuse: the real CLI, no mount made.

Rules: the conftest's, and
1. Every run goes through ``python -m osfs`` with a clean environment: no ``NATS_*`` variables
   but ``NATS_URL`` (the shared test server, so no embedded server starts), and
   ``XDG_CONFIG_HOME``, ``XDG_STATE_HOME`` and ``OSFS_DATA_DIR`` under ``tmp_path``, so neither
   the developer's nats contexts nor their home directory are touched (a background mount logs
   under ``XDG_STATE_HOME``).
2. A refusal is checked as users see it: exit status 9 and exactly one ``osfs: error:`` line
   naming the directory, with no traceback.
3. These tests need /dev/fuse only in that ``osfs mount`` checks for it first; the mounts that
   succeed are tested with the mount itself.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.support.cli import Osfs, isolated_env, run_osfs

pytestmark = pytest.mark.integration

EXIT_MOUNT = 9


@pytest.fixture
def state_home(tmp_path: Path) -> Path:
    """The ``XDG_STATE_HOME`` of the runs: where background mounts log."""
    return tmp_path / "state"


@pytest.fixture
def osfs(nats_url: str, tmp_path: Path, state_home: Path) -> Osfs:
    """Run the CLI against the shared test server (rule 1)."""
    env = isolated_env(tmp_path, {"NATS_URL": nats_url, "XDG_STATE_HOME": str(state_home)})
    return partial(run_osfs, env=env, cwd=tmp_path)


@pytest.mark.parametrize("foreground", [False, True])
def test_missing_mountpoint(osfs: Osfs, tmp_path: Path, foreground: bool) -> None:
    missing = tmp_path / "no-such-dir"
    result = osfs("mount", "photos", str(missing), *(["-f"] if foreground else []))
    assert result.code == EXIT_MOUNT
    line = result.one_error_line()
    assert str(missing) in line
    assert "does not exist" in line
    assert not missing.exists()


def test_mountpoint_that_is_not_empty(osfs: Osfs, tmp_path: Path) -> None:
    mountpoint = tmp_path / "photos"
    mountpoint.mkdir()
    (mountpoint / "keep.txt").write_text("mine")
    result = osfs("mount", "photos", str(mountpoint))
    assert result.code == EXIT_MOUNT
    line = result.one_error_line()
    assert str(mountpoint) in line
    assert "not empty" in line
    assert (mountpoint / "keep.txt").read_text() == "mine"


def test_mountpoint_that_is_a_file(osfs: Osfs, tmp_path: Path) -> None:
    target = tmp_path / "photos.txt"
    target.write_text("")
    result = osfs("mount", "photos", str(target))
    assert result.code == EXIT_MOUNT
    assert "not a directory" in result.one_error_line()


def test_relative_mountpoint_is_named_in_full(osfs: Osfs, tmp_path: Path) -> None:
    result = osfs("mount", "photos", "missing")
    assert result.code == EXIT_MOUNT
    assert str(tmp_path / "missing") in result.one_error_line()


def test_background_refusal_is_logged_too(osfs: Osfs, tmp_path: Path, state_home: Path) -> None:
    missing = tmp_path / "no-such-dir"
    assert osfs("mount", "photos", str(missing)).code == EXIT_MOUNT
    log = (state_home / "osfs" / "mount-photos.log").read_text()
    assert f"ERROR osfs.cli.mounting: cannot mount bucket photos at {missing}" in log


def test_log_file_option_is_used_instead(osfs: Osfs, tmp_path: Path, state_home: Path) -> None:
    log = tmp_path / "logs" / "photos.log"
    assert osfs("mount", "photos", "missing", "--log-file", str(log)).code == EXIT_MOUNT
    assert "does not exist" in log.read_text()
    assert not (state_home / "osfs").exists()


def test_umount_of_a_directory_that_is_not_mounted(osfs: Osfs, tmp_path: Path) -> None:
    directory = tmp_path / "photos"
    directory.mkdir()
    for argv in (["umount", str(directory)], ["umount", "--lazy", str(directory)]):
        result = osfs(*argv)
        assert result.code == EXIT_MOUNT
        line = result.one_error_line()
        assert str(directory) in line
        assert "not mounted" in line


@pytest.mark.parametrize("command", ["mount", "umount"])
def test_help_teaches_by_example(osfs: Osfs, command: str) -> None:
    result = osfs(command, "--help")
    assert result.code == 0
    assert "examples:" in result.text
    assert f"osfs {command} " in result.text


def test_main_help_lists_the_mount_commands_and_exit_status(osfs: Osfs) -> None:
    text = osfs("--help").text
    assert "mount" in text
    assert "umount" in text
    assert "    9  mount failed" in text
