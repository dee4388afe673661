"""What ``osfs fsck`` concludes from a bucket's documents and its chunk subjects.

Rules:
1. A chunk subject belongs to an object when a live object's document names its nuid. Chunks
   of any other nuid are *orphans*: left by a put that failed before its meta document (any
   client: nats.go and nats.js leave them when interrupted), or by a delete or an overwrite that
   died before its purge. A put in progress looks the same, so the caller holds back orphans
   whose newest chunk is younger than a grace period.
2. A live object is *damaged* when its chunk subject holds another number of messages than its
   document says (chunks lost or never written), or when it is a link to an object of this
   bucket that does not exist.
3. Names the mount cannot show (``osfs.core.names``) are listed, not counted as damage.
4. Meta documents that could not be decoded are listed by subject (the watch skipped and logged
   each), so that somebody can look at them; their names, if any, are in the subjects.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from osfs.core.meta import ObjectInfo
from osfs.core.names import Hidden, map_name


@dataclass(frozen=True, slots=True)
class Damaged:
    """A live object that cannot be read as its document says."""

    name: str
    problem: str


@dataclass(frozen=True, slots=True)
class Findings:
    """The classification of one bucket (see the module rules).

    Attributes:
        objects: live objects (links included).
        orphans: nuid -> chunk messages, for chunk subjects no live object names.
        damaged: damaged live objects.
        hidden: ``(name, reason)`` of live names the mount hides.
        unreadable: the meta subjects whose document could not be decoded.
    """

    objects: int
    orphans: Mapping[str, int]
    damaged: tuple[Damaged, ...]
    hidden: tuple[tuple[str, str], ...]
    unreadable: tuple[str, ...]


def classify(
    infos: Sequence[ObjectInfo],
    chunk_counts: Mapping[str, int],
    *,
    bucket: str,
    unreadable: Sequence[str] = (),
) -> Findings:
    """Classify a bucket.

    Args:
        infos: the latest document of every name (delete markers included).
        chunk_counts: nuid -> messages on its chunk subject.
        bucket: the bucket checked. A link points into it when its target bucket is this one;
            a document's own ``bucket`` field cannot tell (nats.js links carry the *target*
            bucket there, wire.md §9).
        unreadable: the meta subjects whose document could not be decoded.
    """
    live = [info for info in infos if not info.deleted]
    live_names = {info.name for info in live}
    owned = {info.nuid for info in live if info.nuid and info.link is None}
    damaged: list[Damaged] = []
    hidden: list[tuple[str, str]] = []
    for info in live:
        mapped = map_name(info.name)
        if isinstance(mapped, Hidden):
            hidden.append((info.name, mapped.reason))
        if info.link is not None:
            link = info.link
            if link.name and link.bucket == bucket and link.name not in live_names:
                damaged.append(Damaged(info.name, f"link to missing object {link.name!r}"))
            continue
        found = chunk_counts.get(info.nuid, 0) if info.nuid else 0
        if found != info.chunks:
            damaged.append(
                Damaged(info.name, f"{found} of {info.chunks} chunks stored (nuid {info.nuid})")
            )
    orphans = {nuid: n for nuid, n in chunk_counts.items() if nuid not in owned and n > 0}
    return Findings(
        objects=len(live),
        orphans=orphans,
        damaged=tuple(damaged),
        hidden=tuple(hidden),
        unreadable=tuple(unreadable),
    )
