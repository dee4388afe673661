"""``osfs fsck``: check a bucket against its own documents, and purge orphan chunks.

The classification is pure (``osfs.core.fsck``); this module gathers what it needs from the
server (every document, the message count of every chunk subject, the age of orphan chunks),
optionally reads every object through (``verify``: digests), and purges orphans on request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from osfs.core import errors
from osfs.core.fsck import Damaged, Findings, classify
from osfs.core.meta import ObjectInfo
from osfs.core.subjects import all_chunks_subject, chunk_prefix
from osfs.store.bucket import ObjectStore
from osfs.store.jsapi import NotFound

log = logging.getLogger(__name__)

#: Orphan chunks younger than this may belong to a put in progress: reported, not purged.
DEFAULT_GRACE = 600.0


@dataclass(frozen=True, slots=True)
class Orphan:
    """Chunks no live object names."""

    nuid: str
    messages: int
    newest_ns: int


@dataclass(frozen=True, slots=True)
class Report:
    """What ``fsck`` found.

    Attributes:
        bucket: the bucket checked.
        findings: the pure classification.
        orphans: orphans older than the grace period (purged by ``repair``).
        recent: orphans younger than it (maybe a put in progress): left alone.
        corrupt: objects whose bytes do not match their digest (only with ``verify``).
        purged: orphan chunk messages purged (only by ``repair``).
        repaired: ``repair`` ran: no orphan of ``orphans`` is left, even one another client
            purged first (then ``purged`` does not count it).
    """

    bucket: str
    findings: Findings
    orphans: tuple[Orphan, ...]
    recent: tuple[Orphan, ...]
    corrupt: tuple[Damaged, ...]
    purged: int = 0
    repaired: bool = False

    @property
    def problems(self) -> int:
        """Damaged, corrupt or unreadable objects, and orphans not purged."""
        findings = self.findings
        left = 0 if self.repaired else len(self.orphans)
        return len(findings.damaged) + len(self.corrupt) + len(findings.unreadable) + left


async def check(
    store: ObjectStore,
    *,
    verify: bool = False,
    grace: float = DEFAULT_GRACE,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check ``store``'s bucket (read only).

    Raises:
        StoreUnavailableError, BucketNotFoundError, ...
    """
    infos: list[ObjectInfo] = []
    async with store.watch() as watcher:  # the latest document of every name, deletes too
        async for entry in watcher:
            if entry is None:
                break
            infos.append(entry)
        unreadable = tuple(watcher.unreadable)
    api, stream = store.api, store.stream
    prefix = chunk_prefix(store.bucket)
    chunk_counts = {
        subject.removeprefix(prefix): count
        for subject, count in (
            await api.subject_counts(stream, all_chunks_subject(store.bucket))
        ).items()
    }
    findings = classify(infos, chunk_counts, bucket=store.bucket, unreadable=unreadable)
    old: list[Orphan] = []
    recent: list[Orphan] = []
    now = time.time_ns()
    for nuid, messages in sorted(findings.orphans.items()):
        try:
            newest = (await api.direct_get_last(stream, prefix + nuid)).time_ns
        except NotFound:
            continue  # purged since it was counted (an overwrite or a failed put cleaning up)
        orphan = Orphan(nuid, messages, newest)
        (recent if now - newest < grace * 1e9 else old).append(orphan)
    corrupt: list[Damaged] = []
    if verify:
        broken = {damaged.name for damaged in findings.damaged}
        for info in infos:
            if info.deleted or info.link is not None or info.name in broken:
                continue
            if progress is not None:
                progress(info.name)
            try:
                async with await store.get(info.name) as result:
                    async for _ in result:
                        pass
            except errors.DigestMismatchError as exc:
                corrupt.append(Damaged(info.name, str(exc)))
            except errors.BadObjectMetaError as exc:
                corrupt.append(Damaged(info.name, str(exc)))
            except errors.ObjectNotFoundError as exc:
                # Deleted or replaced while fsck ran (or a name whose subject another client
                # encodes differently): nothing to say about its bytes.
                log.info("not verified: %r (%s)", info.name, exc)
    return Report(store.bucket, findings, tuple(old), tuple(recent), tuple(corrupt))


async def repair(store: ObjectStore, report: Report) -> Report:
    """Purge the orphans ``report`` found (never the recent ones); returns the report with
    the number of messages purged."""
    purged = 0
    for orphan in report.orphans:
        removed = await store.api.purge(store.stream, chunk_prefix(store.bucket) + orphan.nuid)
        purged += removed
        log.info("purged %d orphan chunk message(s) of nuid %s", removed, orphan.nuid)
    return replace(report, purged=purged, repaired=True)
