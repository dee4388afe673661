"""Writing a mount's kernel readahead, and what a mount does when it may not."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from osfs import mount
from osfs.fs.kernel_readahead import mount_device, readahead_file, set_kernel_readahead


def test_the_readahead_file_is_named_by_the_device_numbers() -> None:
    device = os.makedev(0, 53)
    assert readahead_file(device) == Path("/sys/class/bdi/0:53/read_ahead_kb")


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
90 27 0:53 / /mnt/my\\040bucket rw,nosuid,nodev,relatime - fuse.osfs osfs rw,user_id=0
91 27 0:54 / /mnt/b rw,nosuid,nodev,relatime - fuse.osfs osfs rw,user_id=0
92 91 0:61 / /mnt/b rw,nosuid,nodev,relatime - fuse.osfs osfs rw,user_id=0
"""


@pytest.mark.parametrize(
    ("mountpoint", "device"),
    [
        ("/mnt/my bucket", os.makedev(0, 53)),  # the kernel writes a space as \040
        ("/mnt/b", os.makedev(0, 61)),  # mounted over: the last line is the one in use
        ("/", os.makedev(8, 1)),
        ("/mnt", None),
        ("/mnt/b/", None),  # callers give a resolved path, never with a trailing slash
        ("/mnt/my\\040bucket", None),
    ],
)
def test_the_device_of_a_mountpoint_comes_from_mountinfo(
    mountpoint: str, device: int | None
) -> None:
    assert mount_device(MOUNTINFO, mountpoint) == device


def test_mountinfo_lines_that_do_not_parse_are_skipped() -> None:
    text = "junk\n5 1 x:y / /m rw - t t rw\n6 1 0:7 / /m rw - t t rw\n7 1 0:8 /\n"
    assert mount_device(text, "/m") == os.makedev(0, 7)


def test_the_readahead_is_written_in_kib_for_the_device_mounted_there(tmp_path: Path) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO + f"93 27 0:77 / {mountpoint} rw - fuse.osfs osfs rw\n")
    bdi = tmp_path / "bdi"
    expected = readahead_file(os.makedev(0, 77), bdi_root=bdi)
    expected.parent.mkdir(parents=True)
    set_kernel_readahead(mountpoint, 4 * 1024 * 1024, bdi_root=bdi, mountinfo=mountinfo)
    assert expected.read_text() == "4096\n"


def test_a_mountpoint_with_nothing_mounted_is_an_error(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(MOUNTINFO)
    with pytest.raises(FileNotFoundError, match="not a mountpoint"):
        set_kernel_readahead(tmp_path, 4096, bdi_root=tmp_path / "bdi", mountinfo=mountinfo)


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
        mount._apply_kernel_readahead(Path("/mnt/b"), 4 * 1024 * 1024)
    assert [(record.levelno, message in record.getMessage()) for record in caplog.records] == [
        (level, True)
    ]
