"""``osfs add``, ``osfs rm`` and ``osfs seal``: making, deleting and sealing buckets.

``rm`` deletes a single object too: like ``nats object rm``, one command deletes either, and
only the whole-bucket form is destructive enough to ask first.

Rules:
1. A destructive command asks on a terminal; where it cannot ask (stdin is a pipe or a file)
   it needs ``--force``, checked before connecting.
2. Anything but "y" or "yes" is no: the bucket is kept and the exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from osfs.cli.failures import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CommandError
from osfs.cli.output import format_size, object_dict, status_dict
from osfs.cli.session import Session, session_command
from osfs.core.config import ObjectStoreConfig, Placement


@session_command
async def add(session: Session, args: argparse.Namespace) -> int:
    """Create a bucket (succeeds if it exists with the same settings)."""
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


@session_command
async def rm(session: Session, args: argparse.Namespace) -> int:
    """Delete an object, or (confirmed) a whole bucket."""
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


@session_command
async def seal(session: Session, args: argparse.Namespace) -> int:
    """Make a bucket read-only for good (confirmed)."""
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
