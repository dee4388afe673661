"""The kernel's readahead for a mount: ``/sys/class/bdi/MAJOR:MINOR/read_ahead_kb``.

Why: the kernel asks a FUSE filesystem for a file read in order in pieces no larger than its
readahead, 128 KiB by default, so a cold 1 GiB read is 8,192 requests, each a wake-up of the
daemon and a pass through Python. With 4 MiB the kernel sends 1 MiB requests (FUSE's largest)
and keeps several in flight: a cold ``dd bs=1M`` of 1 GiB went from about 200 to about
300 MB/s (docs/benchmarks.md).

When: after FUSE's INIT reply, and before any file is opened. The kernel lowers the setting to
what that reply allows (libfuse answers with the kernel's own default) when it arrives, so a
value written earlier is undone; and a file takes the readahead it will use when it is opened,
so a file opened earlier keeps 128 KiB for good. So the mount writes it on trio's thread as soon
as ``OsfsOperations.initialized`` is set, before any file can be opened. Nothing here asks
the mount itself (the device comes from ``/proc/self/mountinfo``, not a ``stat``), so the thread
that serves the mount can do it without waiting on itself.

Only root may write the setting (it is a sysfs file); an unprivileged mount keeps the kernel's
default, and says so in its log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: The kernel readahead a mount asks for, by default.
DEFAULT_KERNEL_READAHEAD = 4 * 1024 * 1024
BDI_ROOT = Path("/sys/class/bdi")
MOUNTINFO = Path("/proc/self/mountinfo")

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def readahead_file(device: int, *, bdi_root: Path = BDI_ROOT) -> Path:
    """The sysfs file holding the readahead, in KiB, of the filesystem on ``device``."""
    return bdi_root / f"{os.major(device)}:{os.minor(device)}" / "read_ahead_kb"


def _unescape(field: str) -> str:
    """A mountinfo path: the kernel writes space, tab, newline and backslash as ``\\ooo``."""
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def mount_device(mountinfo: str, mountpoint: str) -> int | None:
    """The device of the filesystem mounted last at ``mountpoint``, from mountinfo's text.

    ``mountpoint`` is an absolute path without symlinks. None when nothing is mounted there.
    Each line reads ``ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ...`` (proc(5)).
    """
    device = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 5 or _unescape(fields[4]) != mountpoint:
            continue
        major, sep, minor = fields[2].partition(":")
        if sep and major.isdigit() and minor.isdigit():
            device = os.makedev(int(major), int(minor))
    return device


def set_kernel_readahead(
    mountpoint: Path,
    size: int,
    *,
    bdi_root: Path = BDI_ROOT,
    mountinfo: Path = MOUNTINFO,
) -> None:
    """Set the kernel readahead of the mount at ``mountpoint`` to ``size`` bytes (whole KiB).

    ``mountpoint`` must be resolved (``os.path.realpath``) before it is mounted: resolving it
    afterwards stats the mount, which on the thread that serves it waits for ever.

    Reads a few small kernel files and writes one; never touches the mount itself.

    Raises:
        OSError: the setting cannot be written (EACCES for a user other than root, ...), or
            nothing is mounted at ``mountpoint`` (ENOENT).
    """
    device = mount_device(mountinfo.read_text(), str(mountpoint))
    if device is None:
        raise FileNotFoundError(2, "not a mountpoint in /proc/self/mountinfo", str(mountpoint))
    readahead_file(device, bdi_root=bdi_root).write_text(f"{size // 1024}\n")
