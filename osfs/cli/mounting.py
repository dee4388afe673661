"""``osfs mount`` and ``osfs umount``: from command-line arguments to ``osfs.mount``.

This module only translates: arguments into ``osfs.mount.MountOptions``, then
``osfs.mount.run`` does the mounting (checks, background child, FUSE) and
``osfs.mount.unmount`` the unmounting.

Rules:
1. ``osfs.mount`` is imported inside the commands: it brings in pyfuse3 and trio, which no
   other command needs; they stay out of every other command's start-up, and a broken FUSE
   install breaks only the mount.
2. Where to connect is decided as for every command; with the embedded server the bucket is
   created if missing (as ``osfs put`` does there).
3. The background child re-runs the arguments the command was called with (``args.argv``),
   with ``--foreground --ready-fd N`` appended by ``osfs.mount``; a password, token or
   credentialed URL among them moves into the child's environment, out of ``ps``.
4. ``-o ro`` and ``-o allow_other`` are the same as ``--read-only`` and ``--allow-other``;
   every other ``-o`` option goes to FUSE as given.
5. Logging follows ``osfs.cli.logs``; when the log is a file, a failed mount is logged there
   as well as printed, because a background child's stderr goes nowhere.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

from osfs.cli import logs
from osfs.cli.context import secrets_moved_to_env
from osfs.cli.failures import EXIT_OK
from osfs.cli.options import connect_flags
from osfs.cli.output import Output
from osfs.cli.session import connect_options, plan_for
from osfs.core import errors
from osfs.core.posix import MountDefaults
from osfs.store import ConnectOptions

if TYPE_CHECKING:
    from osfs.mount import MountOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FuseFlags:
    """The FUSE choices of a mount, once ``-o`` and the flags are merged (rule 4).

    Attributes:
        read_only: ``--read-only`` or ``-o ro``.
        allow_other: ``--allow-other`` or ``-o allow_other``.
        passthrough: every other ``-o`` option, in the order given, without repeats.
    """

    read_only: bool
    allow_other: bool
    passthrough: tuple[str, ...]


def fuse_flags(args: argparse.Namespace) -> FuseFlags:
    """Merge the repeated ``-o`` lists with ``--read-only`` and ``--allow-other``."""
    read_only: bool = args.read_only
    allow_other: bool = args.allow_other
    passthrough: list[str] = []
    for option in chain.from_iterable(args.fuse_options):
        if option == "ro":
            read_only = True
        elif option == "allow_other":
            allow_other = True
        elif option not in passthrough:
            passthrough.append(option)
    return FuseFlags(read_only, allow_other, tuple(passthrough))


def mount_defaults(args: argparse.Namespace) -> MountDefaults:
    """Owner and modes of objects that carry none: the options, else the calling user's ids."""
    return MountDefaults(
        uid=os.getuid() if args.uid is None else args.uid,
        gid=os.getgid() if args.gid is None else args.gid,
        file_mode=args.file_mode,
        dir_mode=args.dir_mode,
    )


def cache_dir_of(args: argparse.Namespace, env: Mapping[str, str]) -> Path:
    """``--cache-dir``, else ``$XDG_CACHE_HOME/osfs`` (when absolute), else ``~/.cache/osfs``."""
    if args.cache_dir:
        return Path(os.path.abspath(os.path.expanduser(args.cache_dir)))
    xdg = env.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return root / "osfs"


def mountpoint_path(text: str) -> Path:
    """The mountpoint as an absolute path (``~`` expanded), for messages and the mount table."""
    return Path(os.path.abspath(os.path.expanduser(text)))


def mount_options(
    args: argparse.Namespace, connect: ConnectOptions, *, create_bucket: bool
) -> MountOptions:
    """What ``osfs mount`` asks of ``osfs.mount.run``, connecting with ``connect``."""
    from osfs.mount import MountOptions  # rule 1

    flags = fuse_flags(args)
    return MountOptions(
        bucket=args.bucket,
        mountpoint=mountpoint_path(args.mountpoint),
        connect=connect,
        create_bucket=create_bucket,
        read_only=flags.read_only,
        allow_other=flags.allow_other,
        fuse_options=flags.passthrough,
        defaults=mount_defaults(args),
        cache_size=args.cache_size,
        cache_dir=cache_dir_of(args, os.environ),
        kernel_readahead=args.readahead,
        foreground=args.foreground,
        ready_fd=args.ready_fd,
        systemd=args.systemd,
    )


def mount(args: argparse.Namespace, out: Output) -> int:
    """Mount a bucket; in the background (the default), return once it is mounted.

    Raises:
        MountError: the mountpoint cannot be used, FUSE is unavailable, or the background
            mount reported a failure.
        StoreUnavailableError, BucketNotFoundError, ...: a foreground mount could not start.
    """
    from osfs import mount as fuse_mount  # rule 1

    mountpoint = mountpoint_path(args.mountpoint)
    background = not args.foreground or args.ready_fd is not None
    log_file = logs.log_destination(
        args.log_file, background=background, bucket=args.bucket, env=os.environ
    )
    logs.configure(args.log_level, log_file)
    try:
        plan = plan_for(args)
        options = mount_options(args, connect_options(plan), create_bucket=plan.embedded)
        child_argv, child_env = secrets_moved_to_env(args.argv, connect_flags(args))
        code = fuse_mount.run(options, child_argv, child_env)
    except Exception as exc:
        if log_file is not None:  # rule 5; on stderr, main's error line says it already
            unexpected = not isinstance(exc, errors.OsfsError)
            log.error(
                "cannot mount bucket %s at %s: %s",
                args.bucket,
                mountpoint,
                exc,
                exc_info=unexpected,
            )
        raise
    if code == EXIT_OK and not args.foreground:
        out.confirm(
            {"bucket": args.bucket, "mountpoint": str(mountpoint), "mounted": True},
            lambda: f"mounted bucket {args.bucket} at {mountpoint}",
        )
    return code


def umount(args: argparse.Namespace, out: Output) -> int:
    """Unmount an osfs mount.

    Raises:
        MountError: not mounted, or busy (``--lazy`` detaches it anyway).
    """
    from osfs import mount as fuse_mount  # rule 1

    mountpoint = mountpoint_path(args.mountpoint)
    if not args.force:
        fuse_mount.wait_until_stored(mountpoint, cache_dir_of(args, os.environ), args.wait)
    fuse_mount.unmount(mountpoint, lazy=args.lazy)
    out.confirm(
        {"mountpoint": str(mountpoint), "unmounted": True}, lambda: f"unmounted {mountpoint}"
    )
    return EXIT_OK
