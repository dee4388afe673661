"""``osfs mv`` and ``osfs link``: new names for objects, by meta document only.

Neither copies data: a rename rewrites the object's meta document under the new name, and a
link is a meta document that points at another object or a whole bucket.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from osfs.cli.failures import EXIT_OK, EXIT_USAGE, CommandError
from osfs.cli.output import link_target, object_dict
from osfs.cli.session import Session, session_command


@session_command
async def mv(session: Session, args: argparse.Namespace) -> int:
    """Rename an object within its bucket."""
    store = await session.store(args.bucket)
    current = await store.get_info(args.old)
    moved = await store.update_meta(args.old, replace(current.meta, name=args.new))
    session.out.confirm(
        object_dict(moved), lambda: f"renamed {args.old} to {args.new} in {args.bucket}"
    )
    return EXIT_OK


@session_command
async def link(session: Session, args: argparse.Namespace) -> int:
    """Make a link to an object (TARGET, maybe in --target-bucket) or to a bucket (--to-bucket).

    Raises:
        CommandError: both forms, or neither, were asked for (exit status 2).
    """
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
