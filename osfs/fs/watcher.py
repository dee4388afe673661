"""The watcher: keeps the inode table current with the bucket and tells the kernel what changed.

Rules (DESIGN §6):
1. The initial values (the last document of every name) are applied before the mount answers:
   :meth:`Watcher.run` reports ``started`` only after the end-of-initial-values marker.
2. Every later batch is applied in stream order, then turned into kernel invalidations; the
   table never calls out (``InodeTable`` rule 6), this module does, through an
   :class:`Invalidator` so tests can record instead.
3. A rename on the wire is a new document under the new name carrying the old nuid, and a
   *purge* of the old name's subject, which no watch delivers. So a live nuid seen under a new
   name removes the name it was known by.
4. Outages are the store's business: its watch resumes after reconnects and server restarts.
5. The mount's own changes are applied at once (:meth:`Watcher.apply_local`, or
   :meth:`Watcher.noted_local` after a move the table did itself) and noted in
   ``osfs.core.revisions.LocalRevisions``: their echoes, and older documents of the same names
   still on their way, are dropped instead of undoing them for a moment. While the mount
   changes the bucket and then the table (``async with watcher.held:``), no batch is applied,
   so an operation finds the table as it left it (a rename must move the entry it renamed).
6. Changes made elsewhere give a file whose size or mtime changed a new inode (the kernel's
   writeback cache would keep showing the old ones, ``InodeTable`` rule 3), except for names
   ``ours`` claims: a document of this mount's own that raced ahead of its ``apply_local``.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Protocol

import pyfuse3
import trio

from osfs.core.inodes import Changes, InodeTable
from osfs.core.meta import ObjectInfo
from osfs.core.revisions import LocalRevisions
from osfs.core.store_api import Store

log = logging.getLogger(__name__)


class Invalidator(Protocol):
    """Tells the kernel which cached entries, attributes and data are stale."""

    async def invalidate(self, changes: Changes) -> None:
        """Act on one batch of changes."""
        ...


class KernelInvalidator:
    """The real :class:`Invalidator`: pyfuse3's notifications.

    Entries go through ``invalidate_entry_async`` (a queue served by pyfuse3's own thread: never
    a deadlock with a request in flight); inodes through ``invalidate_inode`` in a worker
    thread, because it may block (pyfuse3 docs).
    """

    async def invalidate(self, changes: Changes) -> None:
        """See :meth:`Invalidator.invalidate`."""
        deleted = {(parent, name): old for parent, name, old in changes.deleted}
        for parent, name in changes.entries:
            pyfuse3.invalidate_entry_async(
                pyfuse3.InodeT(parent),
                pyfuse3.FileNameT(name.encode("utf-8")),
                deleted=pyfuse3.InodeT(deleted.get((parent, name), 0)),
                ignore_enoent=True,
            )
        inodes = [(ino, False) for ino in changes.contents] + [(ino, True) for ino in changes.attrs]
        if inodes:
            await trio.to_thread.run_sync(_invalidate_inodes, inodes)


def _nobody(name: str) -> bool:
    return False


def _invalidate_inodes(inodes: Sequence[tuple[int, bool]]) -> None:
    for ino, attr_only in inodes:
        try:
            pyfuse3.invalidate_inode(pyfuse3.InodeT(ino), attr_only)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOSYS):
                log.warning("could not invalidate inode %d: %s", ino, exc)


class Watcher:
    """Feeds the bucket's changes into the inode table.

    Args:
        store: the bucket.
        table: the table to keep current.
        invalidator: told about every change once the mount is serving.
    """

    def __init__(
        self,
        store: Store,
        table: InodeTable,
        invalidator: Invalidator,
        *,
        ours: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self._table = table
        self._invalidator = invalidator
        self.ours = ours or _nobody
        self._name_of_nuid: dict[str, str] = {}
        self._local = LocalRevisions()
        self.held = trio.Lock()
        self.batches = 0
        self.applied = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply the snapshot, report started, then apply changes until cancelled."""
        started = False
        async with self._store.watch() as batches:
            async for batch in batches:
                infos = [entry for entry in batch if entry is not None]
                async with self.held:
                    if infos:
                        fresh = [info for info in infos if not self._local.is_stale(info)]
                        self._local.passed(max(info.revision for info in infos))
                        infos = fresh
                    changes = self._table.apply_many(self._with_renames(infos), renew=self._renew)
                self.batches += 1
                self.applied += len(infos)
                for name, reason in changes.hidden:
                    log.warning("hiding object %r: %s (osfs ls lists it)", name, reason)
                if started and changes:
                    await self._invalidator.invalidate(changes)
                if not started and len(infos) < len(batch):
                    started = True
                    log.info("snapshot loaded: %d entries", self._table.entries())
                    task_status.started()

    def _renew(self, info: ObjectInfo) -> bool:
        """A changed file gets a new inode (``InodeTable`` rule 3) unless the document may be
        this mount's own, still on its way back (an upload or attribute change in flight)."""
        return not self.ours(info.name)

    def apply_local(self, infos: Sequence[ObjectInfo]) -> Changes:
        """Apply documents this mount just stored (rule 5); the kernel is not told: it made
        the change itself."""
        changes = self._table.apply_many(self._with_renames(infos))
        for info in infos:
            self._local.note(info.name, info.revision)
        return changes

    def noted_local(self, infos: Sequence[ObjectInfo], gone: Sequence[str] = ()) -> None:
        """Note documents this mount stored and the table already shows (a move, rule 5);
        ``gone`` are the names they moved away from."""
        for info in infos:
            if info.nuid:
                self._name_of_nuid[info.nuid] = info.name
            self._local.note(info.name, info.revision)
        revision = max((info.revision for info in infos), default=0)
        for name in gone:
            self._local.note(name, revision)

    def _with_renames(self, infos: Iterable[ObjectInfo]) -> Iterable[ObjectInfo]:
        """The infos, each preceded by the removal of a name its nuid moved away from (rule 3)."""
        for info in infos:
            if info.nuid:
                previous = self._name_of_nuid.get(info.nuid)
                if info.deleted:
                    if previous == info.name:
                        del self._name_of_nuid[info.nuid]
                else:
                    if previous is not None and previous != info.name:
                        old = self._table.node_for_name(previous)
                        known = None if old is None else (old.info or old.marker_info)
                        if known is not None and known.nuid == info.nuid:
                            yield replace(known, deleted=True)
                    self._name_of_nuid[info.nuid] = info.name
            yield info
