"""Writing a mount's kernel readahead, and what a mount does when it may not."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from osfs import mount
from osfs.core.posix import MountDefaults
from osfs.fs.kernel_readahead import readahead_file, set_kernel_readahead
from osfs.store import ConnectOptions


def test_the_readahead_file_is_named_by_the_device_numbers() -> None:
    device = os.makedev(0, 53)
    assert readahead_file(device) == Path("/sys/class/bdi/0:53/read_ahead_kb")


def test_the_readahead_is_written_in_kib_for_the_device_of_the_mountpoint(tmp_path: Path) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    bdi = tmp_path / "bdi"
    expected = readahead_file(os.stat(mountpoint).st_dev, bdi_root=bdi)
    expected.parent.mkdir(parents=True)
    set_kernel_readahead(mountpoint, 4 * 1024 * 1024, bdi_root=bdi)
    assert expected.read_text() == "4096\n"


def _options() -> mount.MountOptions:
    return mount.MountOptions(
        bucket="b",
        mountpoint=Path("/mnt/b"),
        connect=ConnectOptions(),
        defaults=MountDefaults(file_mode=0o644, dir_mode=0o755, uid=0, gid=0),
    )


@pytest.mark.parametrize(
    ("error", "level", "message"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), logging.INFO, "only root can set it"),
        (FileNotFoundError(errno.ENOENT, "No such file", "/sys/x"), logging.WARNING, "No such"),
    ],
)
def test_a_readahead_that_cannot_be_set_leaves_the_mount_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: OSError,
    level: int,
    message: str,
) -> None:
    def refuse(mountpoint: Path, size: int) -> None:
        raise error

    monkeypatch.setattr(mount, "set_kernel_readahead", refuse)
    with caplog.at_level(logging.DEBUG, logger="osfs.mount"):
        mount._apply_kernel_readahead(_options())
    assert [(record.levelno, message in record.getMessage()) for record in caplog.records] == [
        (level, True)
    ]
