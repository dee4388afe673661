"""The ``osfs`` command: the Object Store from a shell, with ``nats object``'s subcommand names.

Rules:
1. A failure is one line on stderr, ``osfs: error: <what> (<hint>)``, and an exit code from
   ``osfs.cli.failures.EXIT_CODES``; never a traceback (``OSFS_DEBUG=1`` adds one).
2. With no server named (flag, environment or nats context), commands use the embedded server,
   and only then do ``put`` and ``mount`` create a missing bucket.
3. Arguments are checked before connecting, so a usage error never waits for a server.
4. Secrets never reach the output: URLs are printed without credentials, options never printed.

Layout: ``parser`` declares the commands, ``values`` and ``options`` their arguments,
``session`` where and how a command connects (``context`` reads nats contexts), ``output``
how results look, ``failures`` what errors look like; one module per group of commands
(``buckets``, ``listing``, ``transfer``, ``objects``, ``watching``, ``status``, ``server``,
``mounting`` with ``logs``). This module only runs one command.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

from osfs.cli.failures import (
    DEBUG_ENV,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    error_line,
    exit_code_for,
)
from osfs.cli.output import Output
from osfs.cli.parser import build_parser
from osfs.cli.values import check_names

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``osfs`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    args.argv = arguments  # for 'osfs mount', whose background child re-runs them
    out = Output(json=args.json, quiet=args.quiet, stdout=sys.stdout, stderr=sys.stderr)
    try:
        check_names(args)
        code: int = args.handler(args, out)
        return code
    except KeyboardInterrupt:
        return EXIT_OK if args.command == "watch" else EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        print(error_line(exc, bucket=getattr(args, "bucket", None)), file=sys.stderr)
        if os.environ.get(DEBUG_ENV):
            traceback.print_exception(exc, file=sys.stderr)
        return exit_code_for(exc)


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
