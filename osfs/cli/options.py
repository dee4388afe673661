"""The options every command takes, before or after its name: output and connection.

Rules:
1. ``osfs --json ls`` and ``osfs ls --json`` mean the same: each option is declared on the main
   parser and again on every subcommand, where its default is SUPPRESS so a value given before
   the command name is not overwritten.
2. Connection options are listed only in ``osfs --help``, to keep each command's help short.
3. :func:`connect_flags` is the one place that reads them back; where they lead (flags >
   environment > nats context > embedded server) is decided in ``osfs.cli.context``.
"""

from __future__ import annotations

import argparse
from typing import Any

from osfs.cli.context import ConnectFlags, split_servers
from osfs.cli.values import parse_timeout


def add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """Add the output and connection options to ``parser`` (see the module rules)."""

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
