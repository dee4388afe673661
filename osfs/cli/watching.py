"""``osfs watch``: one line (or JSON document) per change in a bucket, until Ctrl-C.

Ctrl-C is how a watch ends, so ``main`` maps it to exit status 0 for this command.
"""

from __future__ import annotations

import argparse
import functools

from osfs.cli.failures import EXIT_OK
from osfs.cli.output import format_size, link_target, local_time, object_dict
from osfs.cli.session import Session, session_command
from osfs.core.meta import ObjectInfo


@session_command
async def watch(session: Session, args: argparse.Namespace) -> int:
    """Print every change; a note on stderr marks the end of the initial values."""
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
