"""The kernel's readahead for a mount: ``/sys/class/bdi/MAJOR:MINOR/read_ahead_kb``.

Why: the kernel asks a FUSE filesystem for a file read in order in pieces no larger than its
readahead, 128 KiB by default, so a cold 1 GiB read is 8,192 requests, each a wake-up of the
daemon and a pass through Python. With 4 MiB the kernel sends 1 MiB requests (FUSE's largest)
and keeps several in flight: a cold ``dd bs=1M`` of 1 GiB went from about 200 to about
300 MB/s (docs/benchmarks.md).

When: only after FUSE's INIT reply. The kernel lowers the setting to what that reply allows
(libfuse answers with the kernel's own default) when it arrives, so a value written earlier is
undone. So the mount waits for ``OsfsOperations.initialized``, set while INIT is handled (a
``stat`` would wait for INIT too, but only because the kernel's first root attributes are
expired: not a promise to build on), then calls :func:`set_kernel_readahead` in a thread: it
stats the mountpoint, which the daemon answers, so never on the thread that serves. The mount
reports ready (to ``osfs mount``'s caller, or systemd) only after that.

Only root may write the setting (it is a sysfs file); an unprivileged mount keeps the kernel's
default, and says so in its log.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The kernel readahead a mount asks for, by default.
DEFAULT_KERNEL_READAHEAD = 4 * 1024 * 1024
BDI_ROOT = Path("/sys/class/bdi")


def readahead_file(device: int, *, bdi_root: Path = BDI_ROOT) -> Path:
    """The sysfs file holding the readahead, in KiB, of the filesystem on ``device``."""
    return bdi_root / f"{os.major(device)}:{os.minor(device)}" / "read_ahead_kb"


def set_kernel_readahead(mountpoint: Path, size: int, *, bdi_root: Path = BDI_ROOT) -> None:
    """Set the kernel readahead of the mount at ``mountpoint`` to ``size`` bytes (whole KiB).

    Blocks until the mount answers a ``stat``: call it from a thread, once INIT is answered.

    Raises:
        OSError: the setting cannot be written (EACCES for a user other than root, ...).
    """
    device = os.stat(mountpoint).st_dev
    readahead_file(device, bdi_root=bdi_root).write_text(f"{size // 1024}\n")
