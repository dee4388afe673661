"""The ``osfs`` command: the Object Store from a shell, with ``nats object``'s subcommand names.

Rules:
1. A failure is one line on stderr, ``osfs: error: <what> (<hint>)``, and an exit code from
   :data:`EXIT_CODES`; never a traceback (``OSFS_DEBUG=1`` adds one, for bug reports).
2. With no server named (flag, environment or nats context), commands use the embedded server,
   and only then does ``put`` create a missing bucket: against a real deployment a typo in a
   bucket name must fail, not quietly make a new bucket.
3. Arguments are checked before connecting, so a usage error never waits for a server.
4. Secrets never reach the output: URLs are printed without credentials, options never printed.
Client commands are plain asyncio over ``osfs.store``; the FUSE mount lives elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import secrets
import stat
import sys
import traceback
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, NoReturn

from osfs import __version__, embedded
from osfs.cli_output import (
    Output,
    digest_hex,
    format_duration,
    format_size,
    headers_lines,
    link_target,
    local_time,
    object_dict,
    plural,
    render_fields,
    render_table,
    status_dict,
)
from osfs.core import errors
from osfs.core.config import ObjectStoreConfig, ObjectStoreStatus, Placement
from osfs.core.meta import ObjectInfo, ObjectMeta
from osfs.core.subjects import validate_bucket, validate_object_name
from osfs.nats_context import ConnectFlags, ConnectionPlan, display_url, resolve, split_servers
from osfs.store import Connection, ObjectStore, ObjectStoreManager, open_connection

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_EXISTS = 4
EXIT_UNAVAILABLE = 5
EXIT_READ_ONLY = 6
EXIT_CORRUPT = 7
EXIT_AUTH = 8
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Every exit status ``osfs`` returns, and what it means (also printed by ``osfs --help``).
EXIT_CODES: Mapping[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "error (anything not listed below)",
    EXIT_USAGE: "usage error: bad arguments, invalid bucket or object name, missing --force",
    EXIT_NOT_FOUND: "bucket or object not found",
    EXIT_EXISTS: "already exists (bucket with another configuration, object name taken)",
    EXIT_UNAVAILABLE: "no server: unreachable, JetStream off, or no answer in time",
    EXIT_READ_ONLY: "the bucket is sealed (read-only)",
    EXIT_CORRUPT: "corrupt object: digest mismatch or unreadable meta document",
    EXIT_AUTH: "authentication or permission refused",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); 'osfs watch' exits 0 instead",
    EXIT_BROKEN_PIPE: "stdout was closed early (e.g. piped into head)",
}

#: Exit status and hint per error class; the first class that matches wins, so subclasses
#: come before their bases. ``{bucket}`` is replaced by the bucket argument.
_ERROR_TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (errors.BucketNotFoundError, EXIT_NOT_FOUND, "list buckets with 'osfs ls'"),
    (errors.NoObjectsFoundError, EXIT_NOT_FOUND, "the bucket is empty"),
    (errors.ObjectNotFoundError, EXIT_NOT_FOUND, "list objects with 'osfs ls {bucket}'"),
    (errors.UpdateMetaDeletedError, EXIT_NOT_FOUND, "list objects with 'osfs ls {bucket}'"),
    (errors.BucketExistsError, EXIT_EXISTS, "'osfs info {bucket}' shows its configuration"),
    (errors.ObjectAlreadyExistsError, EXIT_EXISTS, "remove it first or pick another name"),
    (errors.StoreUnavailableError, EXIT_UNAVAILABLE, "is the server up? see 'osfs status'"),
    (errors.StoreTimeoutError, EXIT_UNAVAILABLE, "the server is slow or busy; try --timeout"),
    (errors.BucketSealedError, EXIT_READ_ONLY, "a sealed bucket stays read-only"),
    (errors.DigestMismatchError, EXIT_CORRUPT, "the stored object is damaged; put it again"),
    (errors.InvalidDigestFormatError, EXIT_CORRUPT, "the object's meta document is damaged"),
    (errors.BadObjectMetaError, EXIT_CORRUPT, "the object's meta document is damaged"),
    (errors.AuthorizationError, EXIT_AUTH, "check --user/--password, --token, --creds or --nkey"),
    (errors.InvalidBucketNameError, EXIT_USAGE, "see 'osfs --help'"),
    (errors.InvalidObjectNameError, EXIT_USAGE, "see 'osfs --help'"),
    (errors.InvalidOptionError, EXIT_USAGE, "see 'osfs --help'"),
    (errors.BucketFullError, EXIT_ERROR, "delete objects, or use a bucket with more --max-bytes"),
    (errors.LinkIsABucketError, EXIT_ERROR, "list that bucket with 'osfs ls'"),
    (errors.NoLinkToLinkError, EXIT_ERROR, "link to the object the link points at"),
    (errors.NoLinkToDeletedError, EXIT_ERROR, "the target was deleted"),
    (errors.OsfsError, EXIT_ERROR, ""),
)

#: Transfers larger than this get a progress bar (on a terminal, without --quiet/--json).
PROGRESS_THRESHOLD = 8 * 1024 * 1024
_DEBUG_ENV = "OSFS_DEBUG"


class CommandError(Exception):
    """A failure the CLI itself detects (local files, confirmations, argument combinations)."""

    def __init__(self, message: str, *, code: int = EXIT_ERROR, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


# Argument values ------------------------------------------------------------------------------

_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3_600,
    "d": 86_400,
    "w": 7 * 86_400,
    "y": 365 * 86_400,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtpe]?)(i?b?)", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_duration(text: str) -> float:
    """``"30s"``, ``"2h"``, ``"7d"``, ``"1h30m"``, ``"500ms"`` -> seconds; a bare number is seconds.

    Units: ``ms s m h d w y`` (lower case; a year is 365 days). ``0`` means "no limit".

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    compact = text.strip().replace(" ", "")
    with contextlib.suppress(ValueError):
        seconds = float(compact)
        if seconds >= 0 and seconds != float("inf"):
            return seconds
    total = 0.0
    position = 0
    for match in _DURATION_PART_RE.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(compact):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use e.g. 30s, 15m, 2h, 7d or 1h30m"
        )
    return total


def parse_size(text: str) -> int:
    """``"10MiB"``, ``"1G"``, ``"512k"``, ``"4096"`` -> bytes.

    Units are powers of 1024 whether written ``K``, ``KB`` or ``KiB`` (as the nats CLI and
    nats-server read them), case-insensitive.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None or (match.group(3).lower() == "i"):
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use bytes or e.g. 512KiB, 10MiB, 1G"
        )
    number, prefix, _ = match.groups()
    return int(float(number) * 1024 ** _SIZE_POWERS[prefix.lower()])


def parse_positive_size(text: str) -> int:
    """A :func:`parse_size` that must be at least one byte (chunk sizes)."""
    size = parse_size(text)
    if size <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be at least 1 byte")
    return size


def parse_key_value(text: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``("KEY", "VALUE")``; the value may be empty or contain ``=``.

    Raises:
        argparse.ArgumentTypeError: no ``=``, or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"invalid {text!r}: use KEY=VALUE")
    return key.strip(), value


def parse_header(text: str) -> tuple[str, str]:
    """``"Name=value"`` or ``"Name: value"`` (the nats CLI's form) -> ``("Name", "value")``.

    The name ends at the first ``=`` or ``:`` (neither may appear in a header name).

    Raises:
        argparse.ArgumentTypeError: no separator, or not a valid header name.
    """
    match = re.search(r"[=:]", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: use NAME=VALUE")
    name, value = text[: match.start()].strip(), text[match.end() :].strip()
    if not _HEADER_NAME_RE.fullmatch(name):
        raise argparse.ArgumentTypeError(f"invalid header name {name!r} in {text!r}")
    return name, value


def parse_timeout(text: str) -> float:
    """``--timeout``: seconds (or a duration such as ``1m``), more than zero."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: must be more than 0")
    return seconds


def parse_replicas(text: str) -> int:
    """``--replicas``: 1 to 5, the range JetStream allows."""
    try:
        replicas = int(text)
    except ValueError:
        replicas = 0
    if not 1 <= replicas <= 5:
        raise argparse.ArgumentTypeError(f"invalid replicas {text!r}: use 1 to 5")
    return replicas


def collect_headers(pairs: Sequence[tuple[str, str]] | None) -> dict[str, tuple[str, ...]]:
    """Repeated ``--header`` options -> each name with all its values, in order given."""
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in pairs or ():
        headers[name] = (*headers.get(name, ()), value)
    return headers


# Errors ---------------------------------------------------------------------------------------


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an exception (see :data:`EXIT_CODES`)."""
    if isinstance(exc, CommandError):
        return exc.code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for kind, code, _ in _ERROR_TABLE:
        if isinstance(exc, kind):
            return code
    return EXIT_ERROR


def error_line(exc: BaseException, *, bucket: str | None = None) -> str:
    """The one line ``osfs`` prints for ``exc``: ``osfs: error: <what> (<hint>)``."""
    hint = ""
    if isinstance(exc, CommandError):
        what, hint = str(exc), exc.hint
    elif isinstance(exc, errors.OsfsError):
        what = _first_line(exc) or type(exc).__name__
        hint = next((text for kind, _, text in _ERROR_TABLE if isinstance(exc, kind)), "")
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        what = f"{where}{exc.strerror or _first_line(exc) or type(exc).__name__}"
    else:
        what = f"unexpected {type(exc).__name__}: {_first_line(exc)}"
        hint = f"a bug in osfs; {_DEBUG_ENV}=1 shows the traceback"
    if "{bucket}" in hint:
        hint = hint.replace("{bucket}", bucket) if bucket else ""
    return f"osfs: error: {what}" + (f" ({hint})" if hint else "")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


# The parser -----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with osfs's one-line error format and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"osfs: error: {message} (see '{self.prog} --help')\n")


_Formatter = argparse.RawDescriptionHelpFormatter


def _epilog(*examples: str, note: str = "") -> str:
    lines = ["examples:", *(f"  {example}" for example in examples)]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def _main_epilog() -> str:
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    return f"""\
With no server named (--server, NATS_URL or a nats context), osfs starts and uses its own
embedded nats-server, keeping data in $OSFS_DATA_DIR; there 'put' creates missing buckets.
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


def _add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """The options every command takes, before or after the command name.

    In a subcommand the defaults are SUPPRESS, so an option given before the command name is
    not overwritten by the subcommand's default; connection options are listed only in
    ``osfs --help`` to keep each command's help short.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if in_subcommand else value

    def connection_help(text: str) -> str:
        return argparse.SUPPRESS if in_subcommand else text

    output = parser.add_argument_group("output options")
    output.add_argument(
        "--json", action="store_true", default=default(False), help="print JSON (JSON Lines)"
    )
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no confirmations, notes or progress bars",
    )
    output.add_argument(
        "--timeout",
        type=parse_timeout,
        default=default(5.0),
        metavar="SECONDS",
        help="how long to wait for each server answer (default: 5)",
    )
    conn = parser.add_argument_group("connection options")
    conn.add_argument(
        "-s",
        "--server",
        action="append",
        default=default(None),
        metavar="URL",
        help=connection_help("NATS server URL; repeat or comma-separate for a cluster [NATS_URL]"),
    )
    conn.add_argument(
        "--context",
        default=default(None),
        metavar="NAME",
        help=connection_help("use the nats CLI context NAME [NATS_CONTEXT]"),
    )
    conn.add_argument("--user", default=default(None), help=connection_help("user [NATS_USER]"))
    conn.add_argument(
        "--password",
        default=default(None),
        help=connection_help("password; prefer NATS_PASSWORD, flags show up in 'ps'"),
    )
    conn.add_argument(
        "--token",
        default=default(None),
        help=connection_help("token; prefer NATS_TOKEN, flags show up in 'ps'"),
    )
    conn.add_argument(
        "--creds",
        default=default(None),
        metavar="FILE",
        help=connection_help("JWT credentials file [NATS_CREDS]"),
    )
    conn.add_argument(
        "--nkey",
        default=default(None),
        metavar="FILE",
        help=connection_help("nkey seed file [NATS_NKEY]"),
    )
    conn.add_argument(
        "--tlsca",
        default=default(None),
        metavar="FILE",
        help=connection_help("CA certificate to verify the server [NATS_CA]"),
    )
    conn.add_argument(
        "--tlscert",
        default=default(None),
        metavar="FILE",
        help=connection_help("client certificate [NATS_CERT]"),
    )
    conn.add_argument(
        "--tlskey",
        default=default(None),
        metavar="FILE",
        help=connection_help("client certificate key [NATS_KEY]"),
    )


Handler = Callable[["Session", argparse.Namespace], Awaitable[int]]


def build_parser() -> argparse.ArgumentParser:
    """The whole ``osfs`` command line."""
    parser = _Parser(
        prog="osfs",
        description="Files in a NATS JetStream Object Store: put, get, list, link, watch.",
        epilog=_main_epilog(),
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"osfs {__version__}")
    _add_global_options(parser, in_subcommand=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    def command(
        name: str, summary: str, handler: Handler | None, *examples: str, note: str = ""
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=_epilog(*examples, note=note),
            formatter_class=_Formatter,
        )
        _add_global_options(sub, in_subcommand=True)
        sub.set_defaults(handler=handler)
        return sub

    add = command(
        "add",
        "Create a bucket.",
        _add,
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
        _rm,
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
        _ls,
        "osfs ls",
        "osfs ls photos --deleted",
    )
    ls.add_argument("bucket", metavar="BUCKET", nargs="?")
    ls.add_argument("--deleted", action="store_true", help="include deleted objects")
    ls.add_argument("-n", "--names", action="store_true", help="names only, one a line")

    put = command(
        "put",
        "Store a file (or stdin) as an object.",
        _put,
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
        _get,
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
        _info,
        "osfs info photos",
        "osfs info photos pets/cat.jpg",
    )
    info.add_argument("bucket", metavar="BUCKET")
    info.add_argument("name", metavar="NAME", nargs="?")
    info.add_argument("--deleted", action="store_true", help="show a deleted object's marker")

    mv = command(
        "mv",
        "Rename an object (its data is not copied).",
        _mv,
        "osfs mv photos cat.jpg pets/cat.jpg",
    )
    mv.add_argument("bucket", metavar="BUCKET")
    mv.add_argument("old", metavar="OLD")
    mv.add_argument("new", metavar="NEW")

    link = command(
        "link",
        "Make an object that links to another object or to a whole bucket.",
        _link,
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
        _seal,
        "osfs seal photos --force",
        note="Sealing asks first on a terminal; elsewhere it needs --force. It cannot be undone.",
    )
    seal.add_argument("bucket", metavar="BUCKET")
    seal.add_argument("-f", "--force", action="store_true", help="do not ask")

    watch = command(
        "watch",
        "Print a line for every change in a bucket until Ctrl-C.",
        _watch,
        "osfs watch photos",
        "osfs watch photos --updates-only --json | jq .name",
        note="By default the current objects are printed first, then changes.",
    )
    watch.add_argument("bucket", metavar="BUCKET")
    history = watch.add_mutually_exclusive_group()
    history.add_argument("--history", action="store_true", help="replay every past change first")
    history.add_argument("--updates-only", action="store_true", help="only changes from now on")
    watch.add_argument("--ignore-deletes", action="store_true", help="skip deletions")

    command(
        "status",
        "Show where osfs connects: server, version, JetStream usage.",
        _status,
        "osfs status",
        "osfs --context prod status --json",
    )

    server = command(
        "server",
        "Run the embedded nats-server in the foreground, or stop the background one.",
        None,
        "osfs server",
        "osfs server --stop",
        note="Commands start the embedded server in the background when no server is named; "
        "'osfs server --stop' stops it.",
    )
    server.add_argument("--stop", action="store_true", help="stop the background server")
    return parser


# A run ----------------------------------------------------------------------------------------


class Session:
    """One command's connection: opened on first use (starting the embedded server if that is
    where osfs connects), closed when the command ends."""

    def __init__(self, plan: ConnectionPlan, out: Output) -> None:
        self.plan = plan
        self.out = out
        self._connection: Connection | None = None
        self._stores: list[ObjectStore] = []

    async def connection(self) -> Connection:
        """The connection, opened now if need be."""
        if self._connection is None:
            options = self.plan.options
            if self.plan.embedded:
                server = await _start_embedded()
                options = replace(options, servers=(server.url,))
            self._connection = await open_connection(options, reconnect=False)
        return self._connection

    async def manager(self) -> ObjectStoreManager:
        """The bucket manager of the connection."""
        return (await self.connection()).manager

    async def store(self, bucket: str, *, create_missing: bool = False) -> ObjectStore:
        """Bind ``bucket``; with ``create_missing`` and the embedded server, create it.

        Raises:
            BucketNotFoundError: no such bucket (and not created).
        """
        manager = await self.manager()
        try:
            store = await manager.object_store(bucket)
        except errors.BucketNotFoundError as exc:
            if not (create_missing and self.plan.embedded):
                raise errors.BucketNotFoundError(f"bucket {bucket!r} not found") from exc
            store = await manager.create_object_store(ObjectStoreConfig(bucket=bucket))
            self.out.note(f"created bucket {bucket} on the embedded server")
        self._stores.append(store)
        return store

    async def aclose(self) -> None:
        """Release stores and close the connection.

        Errors while closing are dropped: every result was acknowledged by the server before
        the command printed it, and the command's own outcome is what the user needs to see.
        """
        for store in self._stores:
            with contextlib.suppress(Exception):
                await store.aclose()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()


async def _start_embedded() -> embedded.EmbeddedServer:
    try:
        return await asyncio.to_thread(embedded.ensure_running)
    except errors.OsfsError:
        raise
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise errors.StoreUnavailableError(
            f"could not start the embedded nats-server: {_first_line(exc)}"
        ) from exc


def _check_names(args: argparse.Namespace) -> None:
    """Reject invalid bucket and object names before any connection is made."""
    for attr in ("bucket", "target_bucket", "to_bucket"):
        value = getattr(args, attr, None)
        if value is not None:
            validate_bucket(value)
    for attr in ("name", "old", "new", "target"):
        value = getattr(args, attr, None)
        if value is not None:
            validate_object_name(value)


def connect_flags(args: argparse.Namespace) -> ConnectFlags:
    """The connection settings given on the command line."""
    return ConnectFlags(
        servers=split_servers(",".join(args.server or ())),
        user=args.user,
        password=args.password,
        token=args.token,
        creds=args.creds,
        nkey=args.nkey,
        tls_ca=args.tlsca,
        tls_cert=args.tlscert,
        tls_key=args.tlskey,
        context=args.context,
        timeout=args.timeout,
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``osfs`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    out = Output(json=args.json, quiet=args.quiet, stdout=sys.stdout, stderr=sys.stderr)
    try:
        if args.command == "server":
            return _server(args, out)
        _check_names(args)
        plan = resolve(connect_flags(args), os.environ)
        return asyncio.run(_run(args.handler, plan, args, out))
    except KeyboardInterrupt:
        return EXIT_OK if args.command == "watch" else EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        print(error_line(exc, bucket=getattr(args, "bucket", None)), file=sys.stderr)
        if os.environ.get(_DEBUG_ENV):
            traceback.print_exception(exc, file=sys.stderr)
        return exit_code_for(exc)


async def _run(
    handler: Handler, plan: ConnectionPlan, args: argparse.Namespace, out: Output
) -> int:
    session = Session(plan, out)
    try:
        return await handler(session, args)
    finally:
        await session.aclose()


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _require_force_or_terminal(force: bool, action: str) -> None:
    """A destructive command asks first; where it cannot ask, it needs ``--force``.

    Raises:
        CommandError: stdin is not a terminal and ``force`` is not set (exit status 2).
    """
    if not force and not sys.stdin.isatty():
        raise CommandError(
            f"refusing to {action} without --force",
            code=EXIT_USAGE,
            hint="stdin is not a terminal, so osfs cannot ask; add --force",
        )


async def _ask(question: str) -> bool:
    """Ask a yes/no question on the terminal; anything but yes is no."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = await asyncio.to_thread(sys.stdin.readline)
    return answer.strip().lower() in ("y", "yes")


# Commands -------------------------------------------------------------------------------------


async def _add(session: Session, args: argparse.Namespace) -> int:
    placement = None
    if args.cluster or args.tag:
        placement = Placement(cluster=args.cluster, tags=tuple(args.tag))
    config = ObjectStoreConfig(
        bucket=args.bucket,
        description=args.description,
        ttl=args.ttl,
        max_bytes=args.max_bytes,
        storage=args.storage,
        replicas=args.replicas,
        compression=args.compress,
        placement=placement,
        metadata=dict(args.metadata),
    )
    manager = await session.manager()
    store = await manager.create_object_store(config)
    status = await store.status()
    session.out.confirm(status_dict(status), lambda: f"created bucket {status.bucket}")
    return EXIT_OK


async def _rm(session: Session, args: argparse.Namespace) -> int:
    if args.name is not None:
        store = await session.store(args.bucket)
        marker = await store.delete(args.name)
        session.out.confirm(object_dict(marker), lambda: f"deleted {args.name} from {args.bucket}")
        return EXIT_OK
    _require_force_or_terminal(args.force, f"delete bucket {args.bucket}")
    store = await session.store(args.bucket)
    status = await store.status()
    question = f"Delete bucket {args.bucket} and everything in it ({format_size(status.size)})?"
    if not args.force and not await _ask(question):
        session.out.note(f"kept bucket {args.bucket}")
        return EXIT_ERROR
    await (await session.manager()).delete_object_store(args.bucket)
    session.out.confirm(
        {"bucket": args.bucket, "deleted": True}, lambda: f"deleted bucket {args.bucket}"
    )
    return EXIT_OK


async def _ls(session: Session, args: argparse.Namespace) -> int:
    if args.bucket is None:
        return await _ls_buckets(session, args)
    store = await session.store(args.bucket)
    try:
        infos = await store.list(show_deleted=args.deleted)
    except errors.NoObjectsFoundError:
        infos = []
    infos.sort(key=lambda info: info.name)
    if args.names and not session.out.json:
        session.out.show(None, lambda: "\n".join(info.name for info in infos))
        return EXIT_OK
    if not infos:
        session.out.note(f"no objects in bucket {args.bucket}")
    session.out.show([object_dict(info) for info in infos], lambda: _objects_table(infos))
    return EXIT_OK


def _objects_table(infos: Sequence[ObjectInfo]) -> str:
    if not infos:
        return ""
    rows = []
    for info in infos:
        name = info.name
        if info.link is not None:
            name += f" -> {link_target(info)}"
        if info.deleted:
            name += " (deleted)"
        size = "-" if info.is_link or info.deleted else format_size(info.size)
        rows.append([name, size, local_time(info.mtime_ns), digest_hex(info.digest)[:12]])
    return render_table(["NAME", "SIZE", "MODIFIED", "SHA-256"], rows, right=[1])


async def _ls_buckets(session: Session, args: argparse.Namespace) -> int:
    manager = await session.manager()
    if args.names and not session.out.json:
        names = sorted([name async for name in manager.object_store_names()])
        session.out.show(None, lambda: "\n".join(names))
        return EXIT_OK
    statuses = sorted([status async for status in manager.object_stores()], key=_bucket_key)
    counts = [await _count_objects(session, status.bucket) for status in statuses]
    if not statuses:
        session.out.note("no buckets")
    session.out.show(
        [{**status_dict(s), "objects": n} for s, n in zip(statuses, counts, strict=True)],
        lambda: _buckets_table(statuses, counts),
    )
    return EXIT_OK


def _bucket_key(status: ObjectStoreStatus) -> str:
    return status.bucket


async def _count_objects(session: Session, bucket: str) -> int:
    store = await session.store(bucket)
    try:
        return len(await store.list())
    except errors.NoObjectsFoundError:
        return 0


def _buckets_table(statuses: Sequence[ObjectStoreStatus], counts: Sequence[int]) -> str:
    if not statuses:
        return ""
    rows = [
        [
            status.bucket,
            str(count),
            format_size(status.size),
            "sealed" if status.sealed else "",
            status.description,
        ]
        for status, count in zip(statuses, counts, strict=True)
    ]
    return render_table(["BUCKET", "OBJECTS", "SIZE", "", "DESCRIPTION"], rows, right=[1, 2])


async def _put(session: Session, args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        if args.file == "-":
            if not args.name:
                raise CommandError(
                    "--name is required when reading stdin",
                    code=EXIT_USAGE,
                    hint=f"osfs put {args.bucket} - --name NAME",
                )
            name: str = args.name
            source: IO[bytes] = sys.stdin.buffer
        else:
            name = args.name or default_object_name(args.file)
            source = stack.enter_context(_open_input(args.file))
        meta = ObjectMeta(
            name=name,
            description=args.description,
            headers=collect_headers(args.header),
            metadata=dict(args.meta),
            chunk_size=args.chunk_size,
        )
        total = _regular_size(source)
        store = await session.store(args.bucket, create_missing=True)
        bar = session.out.progress(f"put {name}", total, PROGRESS_THRESHOLD)
        try:
            info = await store.put(meta, source, progress=bar)
        finally:
            if bar is not None:
                bar.close()
    session.out.confirm(
        object_dict(info),
        lambda: (
            f"stored {info.name} in {info.bucket}: {format_size(info.size)} in "
            f"{plural(info.chunks, 'chunk')}, SHA-256 {digest_hex(info.digest)}"
        ),
    )
    return EXIT_OK


def default_object_name(path: str) -> str:
    """The object name for a file put without ``--name``: the path as given, cleaned like the
    nats CLI cleans it (Go's ``filepath.Clean``), so ``./a//b`` and ``a/b`` are one object."""
    return validate_object_name(os.path.normpath(path))


def _open_input(path: str) -> IO[bytes]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    except IsADirectoryError as exc:
        raise CommandError(f"{path} is a directory", hint="put stores one file") from exc
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    return handle


def _regular_size(handle: IO[bytes]) -> int | None:
    """The size of a regular file (None for pipes and devices, whose size is unknown)."""
    info = os.fstat(handle.fileno())
    return info.st_size if stat.S_ISREG(info.st_mode) else None


async def _get(session: Session, args: argparse.Namespace) -> int:
    store = await session.store(args.bucket)
    async with await store.get(args.name) as result:
        info = result.info
        target = None if args.output in (None, "-") else _output_path(args.output, info.name)
        bar = session.out.progress(f"get {info.name}", info.size, PROGRESS_THRESHOLD)
        try:
            if target is None:
                await _stream(result, sys.stdout.buffer, bar)
                sys.stdout.buffer.flush()
            else:
                await _stream_to_file(result, target, bar)
        finally:
            if bar is not None:
                bar.close()
    if target is not None:
        session.out.confirm(object_dict(info), lambda: f"wrote {target} ({format_size(info.size)})")
    return EXIT_OK


def _output_path(output: str, name: str) -> Path:
    """``-o`` as given, or the object's base name inside it when it is a directory."""
    target = Path(output)
    if target.is_dir():
        base = name.rstrip("/").rsplit("/", 1)[-1]
        if base in ("", ".", ".."):
            raise CommandError(f"object {name!r} has no usable file name", hint="name a file")
        target = target / base
    return target


async def _stream(
    result: AsyncIterable[bytes], sink: IO[bytes], progress: Callable[[int], None] | None
) -> None:
    done = 0
    async for chunk in result:
        sink.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done)


async def _stream_to_file(
    result: AsyncIterable[bytes], target: Path, progress: Callable[[int], None] | None
) -> None:
    """Write to a hidden file beside ``target`` and rename it into place only when complete.

    The file is created with the usual permissions (umask), unlike ``mkstemp``'s 0600.
    """
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.osfs-partial")
    try:
        with open(partial, "xb") as sink:  # noqa: ASYNC230 - local file, written chunk by chunk
            await _stream(result, sink, progress)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


async def _info(session: Session, args: argparse.Namespace) -> int:
    store = await session.store(args.bucket)
    if args.name is None:
        status = await store.status()
        count = await _count_objects(session, args.bucket)
        session.out.show(
            {**status_dict(status), "objects": count}, lambda: _bucket_text(status, count)
        )
        return EXIT_OK
    info = await store.get_info(args.name, show_deleted=args.deleted)
    session.out.show(object_dict(info), lambda: _object_text(info))
    return EXIT_OK


def _bucket_text(status: ObjectStoreStatus, count: int) -> str:
    limit = "unlimited" if status.max_bytes <= 0 else format_size(status.max_bytes)
    return render_fields(
        f"Bucket {status.bucket}",
        [
            ("Description", status.description),
            ("Objects", str(count)),
            ("Size", f"{format_size(status.size)} of {limit}"),
            ("TTL", format_duration(status.ttl)),
            ("Storage", f"{status.storage}, {status.replicas} replica(s)"),
            ("Compressed", "yes" if status.compressed else "no"),
            ("Sealed", "yes" if status.sealed else "no"),
            ("Stream", f"OBJ_{status.bucket}"),
            ("Metadata", [f"{key}={value}" for key, value in sorted(status.metadata.items())]),
        ],
    )


def _object_text(info: ObjectInfo) -> str:
    if info.link is None:
        link = ""
    elif info.link.is_bucket_link:
        link = f"bucket {info.link.bucket}"
    else:
        link = f"{info.link.name} in bucket {info.link.bucket}"
    return render_fields(
        f"Object {info.name} in bucket {info.bucket}",
        [
            ("Deleted", "yes" if info.deleted else ""),
            ("Link to", link),
            ("Description", info.description),
            ("Size", "" if info.is_link else f"{format_size(info.size)} ({info.size} bytes)"),
            ("Chunks", "" if info.is_link else str(info.chunks)),
            ("Modified", local_time(info.mtime_ns)),
            ("SHA-256", digest_hex(info.digest)),
            ("Revision", str(info.revision) if info.revision else ""),
            ("NUID", info.nuid),
            ("Headers", headers_lines(info.headers)),
            ("Metadata", [f"{key}={value}" for key, value in sorted(info.metadata.items())]),
        ],
    )


async def _mv(session: Session, args: argparse.Namespace) -> int:
    store = await session.store(args.bucket)
    current = await store.get_info(args.old)
    moved = await store.update_meta(args.old, replace(current.meta, name=args.new))
    session.out.confirm(
        object_dict(moved), lambda: f"renamed {args.old} to {args.new} in {args.bucket}"
    )
    return EXIT_OK


async def _link(session: Session, args: argparse.Namespace) -> int:
    target_name: str | None = args.target
    if args.to_bucket is not None:
        if target_name is not None or args.target_bucket is not None:
            raise CommandError(
                "--to-bucket links a whole bucket: give no TARGET and no --target-bucket",
                code=EXIT_USAGE,
                hint="see 'osfs link --help'",
            )
    elif target_name is None:
        raise CommandError(
            "link needs a TARGET object, or --to-bucket B for a bucket link",
            code=EXIT_USAGE,
            hint="see 'osfs link --help'",
        )
    store = await session.store(args.bucket)
    if target_name is None:
        target_store = await session.store(args.to_bucket)
        info = await store.add_bucket_link(args.name, target_store)
    else:
        target_bucket = args.target_bucket or args.bucket
        target_store = store if target_bucket == args.bucket else await session.store(target_bucket)
        target = await target_store.get_info(target_name)
        info = await store.add_link(args.name, target)
    session.out.confirm(
        object_dict(info), lambda: f"linked {info.name} -> {link_target(info)} in {info.bucket}"
    )
    return EXIT_OK


async def _seal(session: Session, args: argparse.Namespace) -> int:
    _require_force_or_terminal(args.force, f"seal bucket {args.bucket}")
    store = await session.store(args.bucket)
    question = f"Seal bucket {args.bucket}? It can never be changed again."
    if not args.force and not await _ask(question):
        session.out.note(f"bucket {args.bucket} not sealed")
        return EXIT_ERROR
    await store.seal()
    status = await store.status()
    session.out.confirm(status_dict(status), lambda: f"sealed bucket {args.bucket}")
    return EXIT_OK


async def _watch(session: Session, args: argparse.Namespace) -> int:
    store = await session.store(args.bucket)
    watcher = store.watch(
        include_history=args.history,
        ignore_deletes=args.ignore_deletes,
        updates_only=args.updates_only,
    )
    async with watcher:
        async for entry in watcher:
            if entry is None:
                session.out.note(f"watching {args.bucket} for changes (Ctrl-C to stop)")
                continue
            op = "DEL" if entry.deleted else "LINK" if entry.is_link else "PUT"
            session.out.show(
                {"op": op.lower(), **object_dict(entry)}, functools.partial(_watch_line, entry, op)
            )
    return EXIT_OK


def _watch_line(info: ObjectInfo, op: str) -> str:
    detail = ""
    if op == "PUT":
        detail = f"  {format_size(info.size)}"
    elif op == "LINK":
        detail = f" -> {link_target(info)}"
    return f"{local_time(info.mtime_ns)} {op:<4} {info.name}{detail}"


async def _status(session: Session, args: argparse.Namespace) -> int:
    plan = session.plan
    report: dict[str, Any] = {
        "source": plan.source,
        "context": plan.context,
        "embedded": plan.embedded,
        "servers": [display_url(url) for url in plan.options.servers],
    }
    if plan.embedded:
        running = await asyncio.to_thread(embedded.find_running)
        report["running"] = running is not None
        report["data_dir"] = str(embedded.data_dir())
        if running is None:
            session.out.show(report, lambda: _status_text(report))
            return EXIT_OK
        report["servers"] = [display_url(running.url)]
    connection = await session.connection()
    report["connected_url"] = connection.connected_url
    report["server_version"] = connection.server_version
    report["jetstream"] = await _jetstream_usage(connection)
    session.out.show(report, lambda: _status_text(report))
    return EXIT_OK


async def _jetstream_usage(connection: Connection) -> dict[str, Any]:
    """The account's JetStream usage (``$JS.API.INFO``); an error is reported, not raised:
    a server without JetStream is still a status worth showing."""
    try:
        body = await connection.api.request("INFO")
    except errors.OsfsError as exc:
        return {"error": _first_line(exc) or type(exc).__name__}
    keys = ("memory", "storage", "streams", "consumers", "limits", "domain")
    return {key: body[key] for key in keys if key in body}


def _status_text(report: Mapping[str, Any]) -> str:
    if report["embedded"] and not report.get("running"):
        where = "embedded server (not running; it starts on first use)"
    else:
        where = report.get("connected_url") or ", ".join(report["servers"])
    jetstream = report.get("jetstream") or {}
    fields: list[tuple[str, str | Sequence[str]]] = [
        ("Server", where),
        ("Chosen by", report["source"]),
        ("Data", report.get("data_dir", "")),
        ("Version", report.get("server_version", "")),
    ]
    if "error" in jetstream:
        fields.append(("JetStream", f"unavailable: {jetstream['error']}"))
    elif jetstream:
        limits = jetstream.get("limits") or {}
        fields += [
            ("Storage", _usage(jetstream.get("storage", 0), limits.get("max_storage", -1))),
            ("Memory", _usage(jetstream.get("memory", 0), limits.get("max_memory", -1))),
            ("Streams", str(jetstream.get("streams", 0))),
            ("Consumers", str(jetstream.get("consumers", 0))),
        ]
    return render_fields("osfs connection", fields)


def _usage(used: int, limit: int) -> str:
    return f"{format_size(used)} of {format_size(limit) if limit > 0 else 'unlimited'}"


def _server(args: argparse.Namespace, out: Output) -> int:
    if not args.stop:
        return embedded.run_foreground()
    if embedded.stop_running():
        out.confirm({"stopped": True}, lambda: "stopped the embedded nats-server")
    else:
        out.confirm({"stopped": False}, lambda: "no embedded nats-server was running")
    return EXIT_OK
