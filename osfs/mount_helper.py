"""``mount.osfs``: the helper mount(8) runs for ``mount -t osfs`` and for fstab lines of type osfs.

mount(8) calls ``/sbin/mount.osfs SPEC DIR [-sfnv] [-o OPTIONS] [-t TYPE]``; this module turns
that into ``osfs mount`` arguments and runs :func:`osfs.cli.main` in the background mode, so
``mount`` returns once the directory is mounted (or says why not). An fstab line::

    photos  /mnt/photos  osfs  server=nats://10.0.0.5:4222,_netdev,allow_other  0  0

Options (comma-separated, as mount(8) passes them):

============================  ================================================================
``server=URL``                ``--server URL``; repeat it, or separate a cluster's URLs with
                              ``|`` (mount(8) takes the commas)
``creds=FILE``                ``--creds FILE``
``context=NAME``              ``--context NAME`` (a nats CLI context)
``ro``                        ``--read-only``
``allow_other``               ``--allow-other``
``file_mode=``, ``dir_mode=``  ``--file-mode``, ``--dir-mode`` (octal)
``uid=``, ``gid=``            ``--uid``, ``--gid``
``cache_size=``               ``--cache-size`` (``256MiB``, ...)
``cache_dir=``                ``--cache-dir`` (where files being written wait)
``readahead=``                ``--readahead`` (``4MiB``, ...: the kernel's readahead)
``log_file=``, ``log_level=``  ``--log-file``, ``--log-level``
``nosuid``, ``noatime``, ...  kernel mount flags, passed on to FUSE (``-o``)
============================  ================================================================

mount(8)'s own options (``_netdev``, ``nofail``, ``noauto``, ``auto``, ``user``, ``users``,
``defaults``, ``rw``, ``x-systemd.*`` and other ``x-*``, ``comment=``) are ignored. Any other
option is an error, unless ``-s`` (sloppy) is given, which ignores it with a warning.

Exit status as mount(8) expects from helpers: 0 mounted, 1 bad invocation, 32 mount failure
(``osfs`` printed the reason on stderr).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

__all__ = ["HelperError", "main", "osfs_arguments"]

#: mount(8)'s exit statuses.
EXIT_OK = 0
EXIT_USAGE = 1
EXIT_MOUNT_FAILED = 32

#: Options that are mount(8)'s business, not the filesystem's.
IGNORED = frozenset(
    {"_netdev", "nofail", "noauto", "auto", "user", "users", "nouser", "defaults", "rw"}
)
IGNORED_PREFIXES = ("x-", "comment=")
#: Kernel mount flags FUSE applies itself.
KERNEL_FLAGS = frozenset(
    {
        "nosuid",
        "suid",
        "nodev",
        "dev",
        "noexec",
        "exec",
        "noatime",
        "atime",
        "relatime",
        "norelatime",
        "strictatime",
        "nodiratime",
        "diratime",
        "sync",
        "async",
        "dirsync",
    }
)
#: ``key=value`` options and the ``osfs`` flag each becomes; connection flags come first.
CONNECTION_FLAGS = {"creds": "--creds", "context": "--context"}
MOUNT_FLAGS = {
    "file_mode": "--file-mode",
    "dir_mode": "--dir-mode",
    "uid": "--uid",
    "gid": "--gid",
    "cache_size": "--cache-size",
    "cache_dir": "--cache-dir",
    "readahead": "--readahead",
    "log_file": "--log-file",
    "log_level": "--log-level",
}


class HelperError(Exception):
    """An option mount.osfs does not understand (or one without its value)."""


def osfs_arguments(
    bucket: str, mountpoint: str, options: Sequence[str], *, sloppy: bool = False
) -> list[str]:
    """The ``osfs`` arguments for mounting ``bucket`` at ``mountpoint`` with mount(8)'s options.

    Args:
        bucket: mount(8)'s SPEC (the fstab's first field).
        mountpoint: mount(8)'s DIR.
        options: the ``-o`` lists, each comma-separated.
        sloppy: ignore unknown options (``-s``) instead of refusing them.

    Raises:
        HelperError: an unknown option (without ``sloppy``), or a ``key=`` without a value.
    """
    connection: list[str] = []
    mount: list[str] = []
    kernel: list[str] = []
    for option in (part.strip() for text in options for part in text.split(",")):
        key, has_value, value = option.partition("=")
        if not option or option in IGNORED or option.startswith(IGNORED_PREFIXES):
            continue
        if has_value and not value:
            raise HelperError(f"option {key}= needs a value")
        if key == "server" and has_value:
            for url in filter(None, (url.strip() for url in value.split("|"))):
                connection += ["--server", url]
        elif key in CONNECTION_FLAGS and has_value:
            connection += [CONNECTION_FLAGS[key], value]
        elif key in MOUNT_FLAGS and has_value:
            mount += [MOUNT_FLAGS[key], value]
        elif option == "ro":
            mount.append("--read-only")
        elif option == "allow_other":
            mount.append("--allow-other")
        elif option in KERNEL_FLAGS:
            kernel.append(option)
        elif sloppy:
            print(f"mount.osfs: ignoring unknown option {option!r}", file=sys.stderr)
        else:
            raise HelperError(f"unknown option {option!r} (-s ignores unknown options)")
    fuse = ["-o", ",".join(kernel)] if kernel else []
    return [*connection, "mount", bucket, mountpoint, *mount, *fuse]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mount.osfs",
        description="Mount a NATS Object Store bucket; run by mount(8) for type osfs.",
        epilog="example: mount -t osfs photos /mnt/photos -o server=nats://10.0.0.5:4222",
    )
    parser.add_argument("bucket", metavar="BUCKET")
    parser.add_argument("mountpoint", metavar="MOUNTPOINT")
    parser.add_argument("-o", dest="options", action="append", default=[], metavar="OPTIONS")
    parser.add_argument("-s", dest="sloppy", action="store_true", help="ignore unknown options")
    parser.add_argument("-n", dest="no_mtab", action="store_true", help="accepted, no effect")
    parser.add_argument("-v", dest="verbose", action="store_true", help="print the osfs command")
    parser.add_argument("-f", dest="fake", action="store_true", help="do everything but mount")
    parser.add_argument("-t", dest="type", metavar="TYPE", help="accepted, no effect")
    return parser


def _printable(arguments: Sequence[str]) -> str:
    """The command line for ``-v``, with credentials taken out of server URLs."""
    from osfs.cli.context import display_url

    shown = [
        display_url(value) if previous == "--server" else value
        for previous, value in zip(["", *arguments], arguments, strict=False)
    ]
    return "osfs " + shlex.join(shown)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mount.osfs`` with ``argv`` (default: ``sys.argv[1:]``); mount(8)'s exit status."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # --help, or a usage error argparse printed
        return EXIT_OK if exc.code == 0 else EXIT_USAGE
    try:
        arguments = osfs_arguments(args.bucket, args.mountpoint, args.options, sloppy=args.sloppy)
    except HelperError as exc:
        print(f"mount.osfs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.verbose:
        arguments.insert(0, "--quiet")
    else:
        print(f"mount.osfs: {_printable(arguments)}", file=sys.stderr)
    if args.fake:
        return EXIT_OK
    from osfs.cli import main as osfs_main

    return EXIT_OK if osfs_main(arguments) == 0 else EXIT_MOUNT_FAILED


if __name__ == "__main__":
    sys.exit(main())
