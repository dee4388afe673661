"""The ``osfs`` command line: every command, its arguments, help text and examples.

Rules:
1. Every command's ``--help`` teaches by example (an ``examples:`` block), and ``osfs --help``
   lists the exit statuses.
2. A usage error is one line, ``osfs: error: <what> (see 'osfs CMD --help')``, exit status 2.
3. Parsing only: each command's namespace carries ``handler``, the function that runs it,
   called by ``main`` as ``handler(args, out)`` (``main`` adds ``args.argv``, the arguments as
   given, which ``osfs mount`` re-runs in its background child).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from osfs import __version__
from osfs.cli import (
    buckets,
    checking,
    listing,
    mounting,
    objects,
    server,
    status,
    transfer,
    watching,
)
from osfs.cli.failures import EXIT_CODES, EXIT_USAGE
from osfs.cli.logs import LEVELS
from osfs.cli.options import add_global_options
from osfs.cli.output import Output
from osfs.cli.values import (
    parse_duration,
    parse_fuse_options,
    parse_header,
    parse_id,
    parse_key_value,
    parse_mode,
    parse_positive_size,
    parse_readahead,
    parse_replicas,
    parse_size,
)

#: What runs a command: its parsed arguments and where to write -> the exit status.
Handler = Callable[[argparse.Namespace, Output], int]

_Formatter = argparse.RawDescriptionHelpFormatter


class _Parser(argparse.ArgumentParser):
    """argparse with osfs's one-line error format and exit status 2, and no abbreviations.

    Abbreviated options (``--pass``) would be one more spelling for scripts to depend on, and
    the background mount must find ``--password`` and ``--token`` exactly to keep them out of
    its child's command line (``osfs.cli.context.secrets_moved_to_env``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"osfs: error: {message} (see '{self.prog} --help')\n")


def _epilog(*examples: str, note: str = "") -> str:
    lines = ["examples:", *(f"  {example}" for example in examples)]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def _main_epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    return f"""\
With no server named (--server, NATS_URL or a nats context), osfs starts and uses its own
embedded nats-server, keeping data in $OSFS_DATA_DIR; there 'put' and 'mount' create missing
buckets.
Connection settings are taken from flags, then NATS_URL, NATS_USER, NATS_PASSWORD, NATS_TOKEN,
NATS_CREDS, NATS_NKEY, NATS_CA, NATS_CERT, NATS_KEY, then the nats CLI context (--context,
NATS_CONTEXT, or the one 'nats context select' chose).

{
        _epilog(
            "osfs put photos ./cat.jpg --name pets/cat.jpg",
            "osfs ls photos",
            "osfs get photos pets/cat.jpg -o cat.jpg",
            "osfs --server nats://demo.nats.io:4222 ls",
        )
    }

exit status:
{codes}"""


def build_parser() -> argparse.ArgumentParser:
    """The whole ``osfs`` command line."""
    parser = _Parser(
        prog="osfs",
        description="Files in a NATS JetStream Object Store: put, get, list, link, watch.",
        epilog=_main_epilog(),
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"osfs {__version__}")
    add_global_options(parser, in_subcommand=False)
    commands = _Commands(parser)
    command = commands.add

    add = command(
        "add",
        "Create a bucket.",
        buckets.add,
        "osfs add photos",
        "osfs add logs --ttl 7d --max-bytes 10GiB --compress --metadata team=ops",
        note="Creating a bucket that exists with the same settings succeeds; other settings "
        "fail with exit status 4.",
    )
    add.add_argument("bucket", metavar="BUCKET")
    add.add_argument(
        "--ttl", type=parse_duration, default=0.0, metavar="DURATION", help="expire objects"
    )
    add.add_argument(
        "--max-bytes", type=parse_size, default=-1, metavar="SIZE", help="bucket size limit"
    )
    add.add_argument("--replicas", type=parse_replicas, default=1, metavar="N", help="1 to 5")
    add.add_argument("--storage", choices=("file", "memory"), default="file")
    add.add_argument("--description", default="", metavar="TEXT")
    add.add_argument("--compress", action="store_true", help="S2-compress the data on disk")
    add.add_argument("--cluster", default="", help="place the bucket in this cluster")
    add.add_argument(
        "--tag", action="append", default=[], help="place on servers with this tag (repeat)"
    )
    add.add_argument(
        "--metadata",
        action="append",
        type=parse_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="bucket metadata (repeat)",
    )

    rm = command(
        "rm",
        "Delete an object, or a whole bucket.",
        buckets.rm,
        "osfs rm photos pets/cat.jpg",
        "osfs rm photos --force",
        note="Deleting a bucket asks first on a terminal; elsewhere it needs --force.",
    )
    rm.add_argument("bucket", metavar="BUCKET")
    rm.add_argument("name", metavar="NAME", nargs="?", help="the object (omit: the bucket)")
    rm.add_argument("-f", "--force", action="store_true", help="do not ask")

    ls = command(
        "ls",
        "List buckets, or the objects in a bucket.",
        listing.ls,
        "osfs ls",
        "osfs ls photos --deleted",
    )
    ls.add_argument("bucket", metavar="BUCKET", nargs="?")
    ls.add_argument("--deleted", action="store_true", help="include deleted objects")
    ls.add_argument("-n", "--names", action="store_true", help="names only, one a line")

    put = command(
        "put",
        "Store a file (or stdin) as an object.",
        transfer.put,
        "osfs put photos ./cat.jpg --name pets/cat.jpg",
        "tar c src | osfs put backups - --name src.tar --meta host=$(hostname)",
        note="The object name defaults to FILE as given, normalised like the nats CLI does "
        "('./a//b' -> 'a/b'); --name is used exactly as written. An existing object is "
        "replaced.",
    )
    put.add_argument("bucket", metavar="BUCKET")
    put.add_argument("file", metavar="FILE", help="the file to store; '-' reads stdin")
    put.add_argument("--name", help="object name (required with '-')")
    put.add_argument("--description", default="", metavar="TEXT")
    put.add_argument(
        "--meta",
        action="append",
        type=parse_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="object metadata (repeat)",
    )
    put.add_argument(
        "-H",
        "--header",
        action="append",
        type=parse_header,
        default=[],
        metavar="NAME=VALUE",
        help="object header (repeat; a name may repeat)",
    )
    put.add_argument(
        "--chunk-size",
        type=parse_positive_size,
        default=0,
        metavar="SIZE",
        help="bytes per chunk (default 128KiB)",
    )

    get = command(
        "get",
        "Fetch an object to stdout or a file.",
        transfer.get,
        "osfs get photos pets/cat.jpg -o cat.jpg",
        "osfs get backups src.tar | tar x",
        note="Links are followed. With -o the file appears only once the whole object has "
        "arrived and its digest matched; a directory keeps the object's base name.",
    )
    get.add_argument("bucket", metavar="BUCKET")
    get.add_argument("name", metavar="NAME")
    get.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")

    info = command(
        "info",
        "Show a bucket's settings and usage, or an object's details.",
        listing.info,
        "osfs info photos",
        "osfs info photos pets/cat.jpg",
    )
    info.add_argument("bucket", metavar="BUCKET")
    info.add_argument("name", metavar="NAME", nargs="?")
    info.add_argument("--deleted", action="store_true", help="show a deleted object's marker")

    mv = command(
        "mv",
        "Rename an object (its data is not copied).",
        objects.mv,
        "osfs mv photos cat.jpg pets/cat.jpg",
    )
    mv.add_argument("bucket", metavar="BUCKET")
    mv.add_argument("old", metavar="OLD")
    mv.add_argument("new", metavar="NEW")

    link = command(
        "link",
        "Make an object that links to another object or to a whole bucket.",
        objects.link,
        "osfs link photos latest.jpg pets/cat.jpg",
        "osfs link photos shared.jpg cat.jpg --target-bucket archive",
        "osfs link photos archive --to-bucket archive",
        note="Reading a link reads its target; 'osfs info' shows where it points.",
    )
    link.add_argument("bucket", metavar="BUCKET")
    link.add_argument("name", metavar="NAME", help="the link to create")
    link.add_argument("target", metavar="TARGET", nargs="?", help="the object linked to")
    link.add_argument("--target-bucket", metavar="B", help="TARGET is in bucket B")
    link.add_argument("--to-bucket", metavar="B", help="link to the whole bucket B (no TARGET)")

    seal = command(
        "seal",
        "Make a bucket read-only for good.",
        buckets.seal,
        "osfs seal photos --force",
        note="Sealing asks first on a terminal; elsewhere it needs --force. It cannot be undone.",
    )
    seal.add_argument("bucket", metavar="BUCKET")
    seal.add_argument("-f", "--force", action="store_true", help="do not ask")

    watch = command(
        "watch",
        "Print a line for every change in a bucket until Ctrl-C.",
        watching.watch,
        "osfs watch photos",
        "osfs watch photos --updates-only --json | jq .name",
        note="By default the current objects are printed first, then changes.",
    )
    watch.add_argument("bucket", metavar="BUCKET")
    history = watch.add_mutually_exclusive_group()
    history.add_argument("--history", action="store_true", help="replay every past change first")
    history.add_argument("--updates-only", action="store_true", help="only changes from now on")
    watch.add_argument("--ignore-deletes", action="store_true", help="skip deletions")

    _add_mount_commands(commands)

    fsck = command(
        "fsck",
        "Check a bucket: orphan chunks, objects with missing chunks, bad digests.",
        checking.fsck,
        "osfs fsck photos",
        "osfs fsck photos --verify",
        "osfs fsck photos --repair",
        note="Orphan chunks are left by puts that failed before their meta document (any\n"
        "client). --repair purges those older than --grace; a younger one may be a put in\n"
        "progress. Damaged objects are reported, never deleted. Exit status 0 when nothing\n"
        "is wrong, 7 when problems remain.",
    )
    fsck.add_argument("bucket", metavar="BUCKET")
    fsck.add_argument("--repair", action="store_true", help="purge orphan chunks")
    fsck.add_argument(
        "--verify", action="store_true", help="read every object and check its SHA-256 digest"
    )
    fsck.add_argument(
        "--grace",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="leave orphans younger than this alone (default: 600)",
    )

    command(
        "status",
        "Show where osfs connects: server, version, JetStream usage.",
        status.status,
        "osfs status",
        "osfs --context prod status --json",
    )

    server_command = command(
        "server",
        "Run the embedded nats-server in the foreground, or stop the background one.",
        server.server,
        "osfs server",
        "osfs server --stop",
        note="Commands start the embedded server in the background when no server is named; "
        "'osfs server --stop' stops it.",
    )
    server_command.add_argument("--stop", action="store_true", help="stop the background server")
    return parser


class _Commands:
    """The ``osfs COMMAND`` subparsers, each with the global options and its examples."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._subparsers = parser.add_subparsers(
            dest="command", metavar="COMMAND", title="commands"
        )

    def add(
        self, name: str, summary: str, handler: Handler, *examples: str, note: str = ""
    ) -> argparse.ArgumentParser:
        """A new command running ``handler``; its help ends with ``examples`` and ``note``."""
        sub = self._subparsers.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=_epilog(*examples, note=note),
            formatter_class=_Formatter,
        )
        add_global_options(sub, in_subcommand=True)
        sub.set_defaults(handler=handler)
        return sub


def _add_mount_commands(commands: _Commands) -> None:
    command = commands.add
    mount = command(
        "mount",
        "Mount a bucket as a directory (FUSE).",
        mounting.mount,
        "osfs mount photos ~/photos",
        "osfs mount photos /mnt/photos -o allow_other --read-only",
        "osfs umount ~/photos",
        note="Without -f the mount runs in the background: osfs returns once the directory is\n"
        "mounted, or says why it is not. A background mount logs to --log-file, by default\n"
        "$XDG_STATE_HOME/osfs/mount-BUCKET.log (~/.local/state/osfs/mount-BUCKET.log); in the\n"
        "foreground it logs to stderr. With no server named, a missing bucket is created on\n"
        "the embedded server. Unmount with 'osfs umount' (or 'fusermount3 -u').\n\n"
        "Written files wait in --cache-dir on local disk and are stored when closed (close\n"
        "and fsync report a failed upload); what cannot be stored is kept there, retried,\n"
        "and uploaded by the next mount of the bucket if osfs stops first.",
    )
    mount.add_argument("bucket", metavar="BUCKET")
    mount.add_argument("mountpoint", metavar="MOUNTPOINT", help="an empty directory")
    mount.add_argument(
        "-f", "--foreground", action="store_true", help="serve in this process until unmounted"
    )
    mount.add_argument("--read-only", action="store_true", help="refuse every change")
    mount.add_argument(
        "--allow-other", action="store_true", help="let other users see the files (FUSE)"
    )
    mount.add_argument(
        "-o",
        dest="fuse_options",
        action="append",
        type=parse_fuse_options,
        default=[],
        metavar="OPTS",
        help="comma-separated FUSE options (repeat); ro and allow_other as the flags above",
    )
    mount.add_argument(
        "--file-mode",
        type=parse_mode,
        default="0644",
        metavar="OCTAL",
        help="permissions of files with none stored (default: 0644)",
    )
    mount.add_argument(
        "--dir-mode",
        type=parse_mode,
        default="0755",
        metavar="OCTAL",
        help="permissions of directories with none stored (default: 0755)",
    )
    mount.add_argument(
        "--uid", type=parse_id, metavar="N", help="owner of files with none stored (default: you)"
    )
    mount.add_argument(
        "--gid",
        type=parse_id,
        metavar="N",
        help="group of files with none stored (default: yours)",
    )
    mount.add_argument(
        "--cache-size",
        type=parse_positive_size,
        default="256MiB",
        metavar="SIZE",
        help="memory for cached file data (default: 256MiB)",
    )
    mount.add_argument(
        "--readahead",
        type=parse_readahead,
        default="4MiB",
        metavar="SIZE",
        help="how far the kernel reads ahead of a file read in order; larger means fewer, "
        "larger requests (default: 4MiB; only root can set it, others get the kernel's 128KiB)",
    )
    mount.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="local disk for files being written (default: $XDG_CACHE_HOME/osfs, ~/.cache/osfs)",
    )
    mount.add_argument(
        "--log-level", choices=LEVELS, default="info", help="least severe to log (default: info)"
    )
    mount.add_argument(
        "--log-file",
        metavar="FILE",
        help="log here (default: stderr in the foreground; in the background "
        "$XDG_STATE_HOME/osfs/mount-BUCKET.log)",
    )
    mount.add_argument(
        "--systemd", action="store_true", help="tell systemd when ready (Type=notify, sd_notify)"
    )
    mount.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)

    umount = command(
        "umount",
        "Unmount a mounted bucket.",
        mounting.umount,
        "osfs umount ~/photos",
        "osfs umount --lazy /mnt/photos",
        note="A directory still in use cannot be unmounted; --lazy detaches it now and\n"
        "finishes once the last program lets go. While files written through the mount are\n"
        "not stored yet (the server is away), umount waits up to --wait seconds, then refuses\n"
        "and names them; --force unmounts anyway and the next mount of the bucket stores them.",
    )
    umount.add_argument("mountpoint", metavar="MOUNTPOINT")
    umount.add_argument(
        "-l", "--lazy", action="store_true", help="detach now even if busy (fusermount3 -z)"
    )
    umount.add_argument(
        "--force",
        action="store_true",
        help="unmount even with files not yet stored (they stay in the cache dir)",
    )
    umount.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for files being stored (default: 10)",
    )
    umount.add_argument(
        "--cache-dir", metavar="DIR", help="the mount's --cache-dir, if it was given one"
    )
