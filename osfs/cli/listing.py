"""``osfs ls`` and ``osfs info``: what is in the store, as tables and detail blocks.

Read-only: nothing here changes a bucket. Listings are sorted by name so two runs over the same
bucket print the same lines; ``--json`` prints the same records as JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from osfs.cli.failures import EXIT_OK
from osfs.cli.output import (
    digest_hex,
    format_duration,
    format_size,
    headers_lines,
    link_target,
    local_time,
    object_dict,
    render_fields,
    render_table,
    status_dict,
)
from osfs.cli.session import Session, session_command
from osfs.core import errors
from osfs.core.config import ObjectStoreStatus
from osfs.core.meta import ObjectInfo


@session_command
async def ls(session: Session, args: argparse.Namespace) -> int:
    """List the buckets, or the objects in one bucket."""
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


@session_command
async def info(session: Session, args: argparse.Namespace) -> int:
    """Show a bucket's settings and usage, or one object's details."""
    store = await session.store(args.bucket)
    if args.name is None:
        status = await store.status()
        count = await _count_objects(session, args.bucket)
        session.out.show(
            {**status_dict(status), "objects": count}, lambda: _bucket_text(status, count)
        )
        return EXIT_OK
    found = await store.get_info(args.name, show_deleted=args.deleted)
    session.out.show(object_dict(found), lambda: _object_text(found))
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
