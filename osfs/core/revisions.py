"""Revisions of the changes this mount made itself, so that late echoes cannot undo them.

The mount applies its own changes (a put at close, a rename, a delete) to the inode table at
once, from the info the store returns, so ``ls`` after ``mv`` is right immediately. The watcher
delivers the same bucket's documents a moment later, in stream order, and may still hold
*older* documents of the same names: the temporary name a file had before ``rename``, the
version a remote client wrote before ours. Applied after ours, they would bring back what the
mount already changed, until the newer document arrived.

Rules:
1. :meth:`LocalRevisions.note` records, per name, the revision (stream sequence) of the latest
   local change that involved it: its new document, or the document that moved it away (a
   rename purges the old subject, which no watch delivers, so the new name's revision stands
   in for the old name's end).
2. A watched document whose revision is at most the noted one is *stale*: the table already
   holds something at least as new.
3. The watch is in stream order, so once it has delivered revision R, nothing older can follow:
   :meth:`LocalRevisions.passed` forgets every note at or below R and the table stays small.
Pure: no I/O.
"""

from __future__ import annotations

from osfs.core.meta import ObjectInfo


class LocalRevisions:
    """The floors below which watched documents are stale (see the module rules)."""

    __slots__ = ("_floors", "_highest")

    def __init__(self) -> None:
        self._floors: dict[str, int] = {}
        self._highest = 0

    def __len__(self) -> int:
        return len(self._floors)

    def note(self, name: str, revision: int) -> None:
        """A local change involving ``name`` was stored at ``revision`` (rule 1)."""
        if revision <= 0:
            return
        if revision > self._floors.get(name, 0):
            self._floors[name] = revision
        self._highest = max(self._highest, revision)

    def is_stale(self, info: ObjectInfo) -> bool:
        """True when the table already holds a change of ``info.name`` at least as new (rule 2)."""
        floor = self._floors.get(info.name)
        return floor is not None and info.revision <= floor

    def passed(self, revision: int) -> None:
        """The watch has delivered ``revision``: older notes can no longer matter (rule 3)."""
        if not self._floors or revision <= 0:
            return
        if revision >= self._highest:
            self._floors.clear()
            return
        for name in [name for name, floor in self._floors.items() if floor <= revision]:
            del self._floors[name]
