"""The inode table: the bucket as the mount shows it, fed by object infos from the watcher.

Rules:
1. The tree follows the names (DESIGN §3, ``osfs.core.names``). A directory is *implicit*
   (objects exist under it), *marked* (a marker object ``a/b/`` exists), or both. An implicit
   directory goes away with the last object under it; a marked one stays, empty. The root
   always stays. Hidden names (``names.map_name``) never enter the tree; :meth:`hidden` lists
   them with their reasons.
2. The directory wins. When an object ``a`` and an object under ``a/`` both exist, ``a`` is a
   directory and the object ``a`` is *shadowed*: hidden, but remembered on the directory's node,
   so it comes back (as a new inode) when the directory goes away.
3. Inode numbers are never reused within a table's life. An entry keeps its inode while it
   exists with the same kind: a new version of a file (new nuid) keeps the inode and bumps
   ``Node.version``, so the kernel sees the same file with new content. A change of kind (file
   to directory, file to symlink) is a new inode in the same directory entry, because the
   kernel must never see an inode change its type. Generations can therefore stay 0. A move
   (:meth:`InodeTable.move`: rename(2) through the mount) keeps the numbers of the moved entry
   and of everything below it, as the kernel keeps its inodes when it moves a dentry.
   *Renewal*: with FUSE's writeback cache the kernel trusts its own size and mtime of a regular
   file it knows and ignores the filesystem's, so a change made elsewhere that alters either
   must reach the kernel as a new file: :meth:`InodeTable.apply_many` with ``renew`` gives such
   a file a new inode in the same entry (its old inode stays for open handles, which read the
   version they opened anyway). The mount's own changes are applied without renewal: the
   kernel made them.
4. Lookup counts are the kernel's, exactly as pyfuse3 documents: :meth:`remember` after every
   successful ``lookup``/``create``/``mkdir``/``symlink``/``link`` and every ``readdir_reply``
   that returned True (never for ``.``/``..``); :meth:`forget` subtracts. A removed entry is
   *detached*: out of its directory, still resolvable by inode while its count is above 0
   (open handles, pending forgets), freed when the count reaches 0. An attached entry is kept
   whatever its count (the policy: stable numbers while an entry exists).
5. Readdir offsets are stable under concurrent changes: each directory hands out monotonically
   increasing *entry ids* (from 3: NFS and some kernels treat offsets 0, 1 and 2 specially) when
   a name first appears, and :meth:`InodeTable.readdir` yields entries in id order after the
   given offset. A replaced entry (same name, new inode) keeps its id, so it is neither repeated
   nor skipped; a name removed and added again gets a new id. List positions are never offsets.
6. Every change is returned as data (:class:`Changes`) for the watcher to turn into kernel
   invalidations; the table itself never calls out.
7. Cost: an apply is O(depth of the name) with dict operations only, so a snapshot of 100,000
   objects loads in well under a second.
Concurrency: every method is synchronous, so no state is ever split by an ``await``. Nodes are
live objects the table updates in place: read what you need from one without awaiting in
between, and never mutate one. A ``readdir`` iterator survives changes made while it is
suspended (it resumes after the last id it yielded).
Pure: no I/O.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NewType

from osfs.core.meta import ObjectInfo, ObjectLink
from osfs.core.names import Hidden, Mapped, map_name, symlink_target
from osfs.core.posix import MTIME_KEY, is_symlink, stored_symlink

Inode = NewType("Inode", int)

#: The mount's root directory (FUSE's ``FUSE_ROOT_ID``).
ROOT = Inode(1)

#: The reason :meth:`InodeTable.hidden` gives for a shadowed object (rule 2).
SHADOWED_REASON = "a directory of the same name exists"

#: The first readdir offset an entry gets (rule 5).
FIRST_ENTRY_ID = 3

#: Dead ids a directory's id list may hold (beyond half its length) before it is compacted.
_COMPACT_SLACK = 32


class Kind(enum.Enum):
    """What an entry is to the kernel."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"


class _Entries:
    """The entries of one directory, by name and by entry id (rule 5)."""

    __slots__ = ("by_id", "by_name", "epoch", "ids", "next_id", "objects", "subdirs")

    def __init__(self) -> None:
        self.by_name: dict[str, Node] = {}
        # Insertion order is id order: ids only grow, and a replacement keeps its slot.
        self.by_id: dict[int, Node] = {}
        # Every id handed out and maybe still alive, ascending, for bisecting an offset; ids of
        # removed entries linger until a compaction (which bumps ``epoch``).
        self.ids: list[int] = []
        self.next_id = FIRST_ENTRY_ID
        self.epoch = 0
        # Live objects (files, shadowed files, markers) anywhere strictly below: the directory
        # has children exactly when this is above 0.
        self.objects = 0
        self.subdirs = 0


class Node:
    """One inode: a file, a symlink or a directory. Owned by the table: read, never write.

    Attributes:
        ino: the inode number.
        kind: FILE, DIR or SYMLINK (never changes for an inode).
        name: the entry's name in its directory ("" for the root; the last name once detached).
        info: the current object of a FILE or SYMLINK; None for a DIR.
        marker_info: the marker object (``a/b/``) of a marked DIR, else None.
        shadowed: the object a DIR shadows (rule 2), else None.
        lookups: the kernel's lookup count.
        version: bumped whenever the content changes (new nuid or new symlink target).
        attached: False once the entry left the tree (rule 4).
        entry_id: the entry's readdir offset in its directory (rule 5; 0 for the root).
    """

    __slots__ = (
        "_entries",
        "_parent",
        "attached",
        "entry_id",
        "info",
        "ino",
        "kind",
        "lookups",
        "marker_info",
        "name",
        "shadowed",
        "version",
    )

    def __init__(self, ino: Inode, kind: Kind, info: ObjectInfo | None) -> None:
        self.ino = ino
        self.kind = kind
        self.info = info
        self.name = ""
        self.marker_info: ObjectInfo | None = None
        self.shadowed: ObjectInfo | None = None
        self.lookups = 0
        self.version = 0
        self.attached = True
        self.entry_id = 0
        self._parent: Node | None = None
        self._entries = _Entries() if kind is Kind.DIR else None

    @property
    def parent(self) -> Inode | None:
        """The directory holding the entry; None for the root and for detached nodes."""
        return None if self._parent is None else self._parent.ino

    @property
    def nlink(self) -> int:
        """``st_nlink``: 2 + subdirectories for a directory, 1 for others, 0 once detached."""
        if not self.attached:
            return 0
        if self._entries is not None:
            return 2 + self._entries.subdirs
        return 1

    @property
    def is_marked(self) -> bool:
        """True for a directory with a marker object (it persists while empty)."""
        return self.marker_info is not None

    def __repr__(self) -> str:
        return f"<Node {self.ino} {self.kind.value} {self.name!r}>"


@dataclass(frozen=True, slots=True)
class Changes:
    """What the kernel must be told after an :meth:`InodeTable.apply`.

    Attributes:
        entries: ``(parent, name)`` of every directory entry added, removed or pointed at a new
            inode (for ``invalidate_entry``; the kernel also drops ``parent``'s cached
            attributes and listing when it handles one).
        deleted: ``(parent, name, old_ino)`` for the entries in ``entries`` whose node left the
            tree with its object: removed outright, or (:meth:`InodeTable.move`) overwritten by
            the moved entry. For ``invalidate_entry(..., deleted=old_ino)`` so inotify watchers
            see a delete. An entry pointed at a new inode by a change of kind is not listed
            (its object lives on), nor is the source entry of a move (its node lives on).
        contents: inodes whose data changed (new nuid, new symlink target): invalidate data and
            attributes.
        attrs: inodes whose attributes alone changed (disjoint from ``contents``).
        hidden: ``(name, reason)`` of names hidden by this change (to log once).
    """

    entries: tuple[tuple[Inode, str], ...] = ()
    deleted: tuple[tuple[Inode, str, Inode], ...] = ()
    contents: tuple[Inode, ...] = ()
    attrs: tuple[Inode, ...] = ()
    hidden: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries or self.contents or self.attrs or self.hidden)


@dataclass(frozen=True, slots=True)
class TableStatistics:
    """How big the table is.

    Attributes:
        entries: visible entries (the root not counted).
        detached: removed entries the kernel still holds.
        hidden: hidden names (unmappable or shadowed).
    """

    entries: int
    detached: int
    hidden: int


class _Recorder:
    """Collects the changes of one apply (or a batch of them)."""

    __slots__ = ("attrs", "contents", "deleted", "entries", "hidden", "renew")

    def __init__(self) -> None:
        self.renew: Callable[[ObjectInfo], bool] | None = None
        self.entries: dict[tuple[Inode, str], None] = {}
        self.deleted: dict[tuple[Inode, str, Inode], None] = {}
        self.contents: dict[Inode, None] = {}
        self.attrs: dict[Inode, None] = {}
        self.hidden: list[tuple[str, str]] = []

    def changes(self, known: Mapping[Inode, Node]) -> Changes:
        # Within a batch an inode may change and then be freed; telling the kernel about it
        # would only earn an ENOENT.
        contents = tuple(ino for ino in self.contents if ino in known)
        attrs = tuple(ino for ino in self.attrs if ino in known and ino not in self.contents)
        return Changes(
            entries=tuple(self.entries),
            deleted=tuple(self.deleted),
            contents=contents,
            attrs=attrs,
            hidden=tuple(self.hidden),
        )


class InodeTable:
    """The mounted bucket's tree: inode numbers, lookup counts and readdir offsets."""

    def __init__(self) -> None:
        self._root = Node(ROOT, Kind.DIR, None)
        self._nodes: dict[Inode, Node] = {ROOT: self._root}
        self._next_ino = ROOT + 1
        self._hidden: dict[str, str] = {}
        self._entry_count = 0

    # ----------------------------------------------------------------------------- updates

    def apply(self, info: ObjectInfo) -> Changes:
        """Take in one object update: a new or replaced object, or (``info.deleted``) a delete.

        Deleting a name the table does not hold is a no-op.
        """
        recorder = _Recorder()
        self._apply(info, recorder)
        return recorder.changes(self._nodes)

    def apply_many(
        self, infos: Iterable[ObjectInfo], *, renew: Callable[[ObjectInfo], bool] | None = None
    ) -> Changes:
        """:meth:`apply` each info in order; one merged :class:`Changes` for the batch.

        Args:
            infos: the updates.
            renew: for changes made elsewhere: a file whose size or mtime changes gets a new
                inode (rule 3) when this returns True for its new info.
        """
        recorder = _Recorder()
        recorder.renew = renew
        for info in infos:
            self._apply(info, recorder)
        return recorder.changes(self._nodes)

    def move(
        self,
        src_parent: Inode,
        src_name: str,
        dst_parent: Inode,
        dst_name: str,
        renamed: Mapping[str, ObjectInfo],
    ) -> Changes:
        """Move entry ``src_name`` of ``src_parent`` to ``dst_name`` in ``dst_parent`` (rename(2)).

        The moved entry and everything below it keep their inode numbers, lookup counts and
        versions (rule 3); the store has already renamed the objects. The entry gets a fresh
        entry id in the destination, or the id of the entry it replaces (rule 5). An existing
        destination must be a FILE or SYMLINK: it is replaced, its object counted as gone (the
        rename overwrote it, or the caller deleted it), its node detached as a delete would
        (kept while the kernel holds it). Implicit directories left empty at the source go
        (rule 1); the destination's directories exist already. A move onto itself (same parent
        and name) is a no-op and ``renamed`` is not examined.

        Args:
            renamed: the old name of every object the entry holds (see :meth:`objects_below`)
                to its info under the new name: the old name with the entry's path swapped for
                the destination's. Infos below are updated in place; a leaf's version is bumped
                (and reported in ``contents``) only when its content changes, which for a
                symlink includes a new ``readlink`` answer (an object link's relative target
                depends on where the link is).

        Returns:
            The entries of both names (and of source directories that went), ``deleted`` for
            a replaced destination node, ``attrs``/``contents`` for nodes whose object or
            marker changed, ``hidden`` for shadowed objects under their new names.

        Raises:
            KeyError: an unknown or detached parent, or no entry ``src_name``.
            NotADirectoryError: a parent is not a directory.
            ValueError: a name is not a valid path component, the destination is a directory,
                a directory would move into itself or below itself, or ``renamed`` does not map
                exactly the entry's objects to infos of the right names and kinds. Checked
                before any change: a failed move changes nothing.
        """
        source = self._directory(src_parent)
        target = self._directory(dst_parent)
        if not target.attached:
            raise KeyError(f"inode {dst_parent} is no longer in the tree")
        for name in (src_name, dst_name):
            if not _is_component(name):
                raise ValueError(f"{name!r} is not a valid name in a directory")
        node = _entries_of(source).by_name.get(src_name)
        if node is None:
            raise KeyError(f"no entry {src_name!r} in directory {src_parent}")
        if source is target and src_name == dst_name:
            return Changes()
        existing = _entries_of(target).by_name.get(dst_name)
        if existing is not None and existing.kind is Kind.DIR:
            raise ValueError(f"the destination {dst_name!r} is a directory")
        if node.kind is Kind.DIR:
            above: Node | None = target
            while above is not None:
                if above is node:
                    raise ValueError(f"cannot move directory {node.ino} below itself")
                above = above._parent
        old_parts = self.parts_of(node.ino)
        new_parts = (*self.parts_of(target.ino), dst_name)
        updates = self._plan_move(node, old_parts, new_parts, renamed)

        # Nothing below can fail: the move happens.
        rec = _Recorder()
        count = _objects_held(node)
        self._count_objects(target, count - (existing is not None))
        self._take_out(node, rec)
        if existing is None:
            self._link(target, dst_name, node, rec)
        else:
            self._replace(existing, node, rec)
            rec.deleted[target.ino, dst_name, existing.ino] = None
        for holder, slot, _, _ in updates:
            if slot is _Slot.SHADOWED:
                del self._hidden[_known(holder.shadowed).name]
        for holder, slot, rel, info in updates:
            if slot is _Slot.LEAF:
                old = _known(holder.info)
                holder.info = info
                if _content_key(old) != _content_key(info) or (
                    holder.kind is Kind.SYMLINK
                    and _target(old_parts + rel, old) != _target(new_parts + rel, info)
                ):
                    holder.version += 1
                    rec.contents[holder.ino] = None
                else:
                    rec.attrs[holder.ino] = None  # the name (and revision) changed
            elif slot is _Slot.MARKER:
                holder.marker_info = info
                rec.attrs[holder.ino] = None
            else:
                holder.shadowed = info
                self._hide_shadowed(info.name, rec)
        self._release(source, rec, count)
        return rec.changes(self._nodes)

    # ----------------------------------------------------------------------------- queries

    def node(self, ino: Inode) -> Node:
        """The node of an inode, attached or detached.

        Raises:
            KeyError: no such inode (never handed out, or freed after its last forget).
        """
        return self._nodes[ino]

    def lookup(self, parent: Inode, name: str) -> Node | None:
        """The entry ``name`` in directory ``parent`` (``.`` and ``..`` included), or None.

        Raises:
            KeyError: ``parent`` is unknown.
            NotADirectoryError: ``parent`` is not a directory.
        """
        directory = self._nodes[parent]
        entries = directory._entries
        if entries is None:
            raise NotADirectoryError(f"inode {parent} is not a directory")
        if name == ".":
            return directory
        if name == "..":
            return self._root if directory is self._root else directory._parent
        return entries.by_name.get(name)

    def readdir(self, ino: Inode, offset: int) -> Iterator[tuple[int, str, Node]]:
        """The entries of a directory after ``offset``, as ``(next_offset, name, node)``.

        Start with offset 0; continue with the ``next_offset`` of the last entry the kernel
        accepted. Entries present throughout are never repeated or skipped (rule 5), even when
        the directory changes between calls or while the iterator is suspended. ``.`` and
        ``..`` are not included. A detached directory is empty.

        Raises:
            KeyError: ``ino`` is unknown.
            NotADirectoryError: ``ino`` is not a directory.
        """
        entries = self._nodes[ino]._entries
        if entries is None:
            raise NotADirectoryError(f"inode {ino} is not a directory")
        return self._iter_entries(entries, offset)

    @staticmethod
    def _iter_entries(entries: _Entries, offset: int) -> Iterator[tuple[int, str, Node]]:
        last = offset
        epoch = entries.epoch
        position = bisect_right(entries.ids, last)
        while True:
            if entries.epoch != epoch:
                epoch = entries.epoch
                position = bisect_right(entries.ids, last)
            if position >= len(entries.ids):
                return
            entry_id = entries.ids[position]
            position += 1
            node = entries.by_id.get(entry_id)
            if node is None:
                continue
            last = entry_id
            yield entry_id, node.name, node

    def objects_below(self, ino: Inode) -> list[ObjectInfo]:
        """Every object an attached entry holds, as a path walk (what a rename must rename).

        A leaf holds its object. A directory holds the object it shadows (``a``), its marker
        (``a/``), then what its entries hold, by name. The root holds the whole tree.

        Raises:
            KeyError: ``ino`` is unknown or detached.
        """
        node = self._nodes[ino]
        if not node.attached:
            raise KeyError(f"inode {ino} is no longer in the tree")
        return [info for _, _, _, info in _held(node, ())]

    def parts_of(self, ino: Inode) -> tuple[str, ...]:
        """The path of an attached entry as components (``()`` for the root).

        Raises:
            KeyError: ``ino`` is unknown or detached (it has no path any more).
        """
        node = self._nodes[ino]
        if not node.attached:
            raise KeyError(f"inode {ino} is no longer in the tree")
        parts: list[str] = []
        while node._parent is not None:
            parts.append(node.name)
            node = node._parent
        parts.reverse()
        return tuple(parts)

    def path_of(self, ino: Inode) -> str:
        """The path of an attached entry in object-name style (``a/b``; "" for the root).

        Raises:
            KeyError: ``ino`` is unknown or detached.
        """
        return "/".join(self.parts_of(ino))

    def node_for_name(self, name: str) -> Node | None:
        """The visible node at the path an object name stands for ("" is the root).

        A file name (``a/b``) finds whatever is at ``a/b``, so check ``node.kind`` (a shadowed
        file's name finds the directory); a marker name (``a/b/``) finds only a directory.
        None for hidden names and empty paths.
        """
        if not name:
            return self._root
        mapped = map_name(name)
        if isinstance(mapped, Hidden):
            return None
        node = self._walk(mapped.parts)
        if node is not None and mapped.is_dir_marker and node.kind is not Kind.DIR:
            return None
        return node

    def readlink(self, ino: Inode) -> str:
        """The target ``readlink`` answers for a symlink (see ``names.symlink_target``).

        Raises:
            KeyError: ``ino`` is unknown or detached.
            ValueError: ``ino`` is not a symlink.
        """
        node = self._nodes[ino]
        info = node.info
        if node.kind is not Kind.SYMLINK or info is None:
            raise ValueError(f"inode {ino} is not a symlink")
        target = _target(self.parts_of(ino), info)
        if target is None:  # the kind says it has one
            raise ValueError(f"inode {ino} has no symlink target")
        return target

    def hidden(self) -> dict[str, str]:
        """Every live object name the mount does not show, with the reason (a copy)."""
        return dict(self._hidden)

    def entries(self) -> int:
        """How many entries the tree shows (the root not counted)."""
        return self._entry_count

    def statistics(self) -> TableStatistics:
        """Sizes, for logs and ``statistics()`` of the mount."""
        return TableStatistics(
            entries=self._entry_count,
            detached=len(self._nodes) - self._entry_count - 1,
            hidden=len(self._hidden),
        )

    # ----------------------------------------------------------------------- lookup counts

    def remember(self, ino: Inode) -> None:
        """Count one kernel reference (rule 4).

        Raises:
            KeyError: ``ino`` is unknown.
        """
        self._nodes[ino].lookups += 1

    def forget(self, ino: Inode, n: int) -> None:
        """Drop ``n`` kernel references; a detached node is freed at 0.

        Never raises (pyfuse3 discards ``forget``'s errors): an unknown inode is ignored and
        the count never goes below 0.
        """
        node = self._nodes.get(ino)
        if node is None:
            return
        node.lookups = max(0, node.lookups - n)
        if node.lookups == 0 and not node.attached:
            del self._nodes[ino]

    def forget_all(self) -> None:
        """Drop every kernel reference, as at unmount (pyfuse3's ``forget`` docstring)."""
        for ino, node in list(self._nodes.items()):
            node.lookups = 0
            if not node.attached:
                del self._nodes[ino]

    # ----------------------------------------------------------------------------- checks

    def check_invariants(self) -> None:
        """Verify every structural invariant; O(entries), for tests.

        Raises:
            AssertionError: an invariant does not hold (the message says which).
        """
        root = self._root
        _require(self._nodes.get(ROOT) is root, "the root is registered")
        _require(root.kind is Kind.DIR and root.attached, "the root is an attached directory")
        _require(root._parent is None and root.info is None, "the root has no parent or object")
        _require(root.marker_info is None and root.shadowed is None, "the root has no objects")
        order: list[Node] = []
        stack = [root]
        while stack:
            node = stack.pop()
            order.append(node)
            if node._entries is not None:
                stack.extend(node._entries.by_name.values())
        reachable = {node.ino for node in order}
        _require(len(reachable) == len(order), "every inode appears once in the tree")
        _require(len(order) == self._entry_count + 1, "the entry count is exact")
        for ino, node in self._nodes.items():
            _require(node.ino == ino, f"inode {ino} is registered under its number")
            _require(0 < ino < self._next_ino, f"inode {ino} was handed out")
            _require(node.lookups >= 0, f"inode {ino} has a lookup count >= 0")
            if ino not in reachable:
                _require(not node.attached, f"unreachable inode {ino} is detached")
                _require(node.lookups > 0, f"detached inode {ino} is still looked up")
                _require(node._parent is None, f"detached inode {ino} has no parent")
                _require(
                    node._entries is None or not node._entries.by_name,
                    f"detached directory {ino} is empty",
                )
        parts_of: dict[Inode, tuple[str, ...]] = {ROOT: ()}
        for node in order:
            _require(self._nodes.get(node.ino) is node, f"inode {node.ino} is registered")
            _require(node.attached, f"inode {node.ino} in the tree is attached")
            if node is not root:
                parent = node._parent
                _require(parent is not None, f"inode {node.ino} has a parent")
                assert parent is not None
                parts_of[node.ino] = (*parts_of[parent.ino], node.name)
            self._check_node(node, parts_of[node.ino])
        # Object counts bottom-up: children come after their parent in ``order``.
        below: dict[Inode, int] = {}
        for node in reversed(order):
            entries = node._entries
            if entries is None:
                continue
            count = 0
            for child in entries.by_name.values():
                if child._entries is None:
                    count += 1
                else:
                    count += below[child.ino] + (child.marker_info is not None)
                    count += child.shadowed is not None
            below[node.ino] = count
            _require(entries.objects == count, f"directory {node.ino} counts its objects")
            _require(
                node is root or count > 0 or node.marker_info is not None,
                f"implicit directory {node.ino} is not empty",
            )
        for name, reason in self._hidden.items():
            mapped = map_name(name)
            if reason == SHADOWED_REASON:
                _require(not isinstance(mapped, Hidden), f"shadowed {name!r} is mappable")
                holder = self.node_for_name(name)
                _require(
                    holder is not None
                    and holder.shadowed is not None
                    and holder.shadowed.name == name,
                    f"shadowed {name!r} is held by its directory",
                )
            else:
                _require(
                    isinstance(mapped, Hidden) and mapped.reason == reason,
                    f"hidden {name!r} is unmappable for the reason given",
                )

    def _check_node(self, node: Node, parts: tuple[str, ...]) -> None:
        ino = node.ino
        entries = node._entries
        if node.kind is Kind.DIR:
            _require(entries is not None and node.info is None, f"directory {ino} has entries")
            assert entries is not None
            if node.marker_info is not None:
                _require(
                    node.marker_info.name == "/".join(parts) + "/" and not node.marker_info.deleted,
                    f"directory {ino} holds its own live marker",
                )
            if node.shadowed is not None:
                _require(
                    node.shadowed.name == "/".join(parts) and not node.shadowed.deleted,
                    f"directory {ino} shadows the object of its own path",
                )
                _require(
                    self._hidden.get(node.shadowed.name) == SHADOWED_REASON,
                    f"the object directory {ino} shadows is listed as hidden",
                )
            self._check_entries(node, entries)
        else:
            info = node.info
            _require(entries is None and info is not None, f"leaf {ino} holds an object")
            assert info is not None
            _require(node.marker_info is None and node.shadowed is None, f"leaf {ino} is plain")
            _require(not info.deleted, f"leaf {ino} is not a delete marker")
            _require(info.name == "/".join(parts), f"leaf {ino} sits at its object's path")
            _require(node.kind is _kind_of(info), f"leaf {ino} has its object's kind")
            _require(info.name not in self._hidden, f"visible {info.name!r} is not hidden")

    @staticmethod
    def _check_entries(node: Node, entries: _Entries) -> None:
        ino = node.ino
        _require(len(entries.by_name) == len(entries.by_id), f"directory {ino}: maps agree")
        for name, child in entries.by_name.items():
            _require(child.name == name, f"directory {ino}: {name!r} knows its name")
            _require(child._parent is node, f"directory {ino}: {name!r} knows its parent")
            _require(entries.by_id.get(child.entry_id) is child, f"{name!r} is listed by id")
        ids = list(entries.by_id)
        _require(ids == sorted(ids), f"directory {ino}: ids are in order")
        _require(
            all(FIRST_ENTRY_ID <= i < entries.next_id for i in entries.ids),
            f"directory {ino}: ids were handed out",
        )
        _require(
            all(a < b for a, b in zip(entries.ids, entries.ids[1:], strict=False)),
            f"directory {ino}: the id list ascends",
        )
        _require(set(ids) <= set(entries.ids), f"directory {ino}: every live id is listed")
        subdirs = sum(child.kind is Kind.DIR for child in entries.by_name.values())
        _require(entries.subdirs == subdirs, f"directory {ino} counts its subdirectories")

    # ------------------------------------------------------------------------ the mutators

    def _apply(self, info: ObjectInfo, recorder: _Recorder) -> None:
        name = info.name
        mapped = map_name(name)
        if isinstance(mapped, Hidden):
            if info.deleted:
                self._hidden.pop(name, None)
            elif name not in self._hidden:
                self._hidden[name] = mapped.reason
                recorder.hidden.append((name, mapped.reason))
            return
        if mapped.is_dir_marker:
            self._apply_marker(mapped.parts, info, recorder)
        else:
            self._apply_object(mapped.parts, info, recorder)

    def _apply_object(self, parts: tuple[str, ...], info: ObjectInfo, rec: _Recorder) -> None:
        """A file or symlink object (not a marker) changed."""
        node = self._walk(parts)
        old: ObjectInfo | None = None
        if node is not None:
            old = node.shadowed if node.kind is Kind.DIR else node.info
        if node is None or old is None:
            if not info.deleted:
                self._add(parts, info, rec, marker=False)
            return
        parent = node._parent
        assert parent is not None  # parts is never empty, so node is not the root
        if info.deleted:
            if node.kind is Kind.DIR:
                node.shadowed = None
                del self._hidden[old.name]
            else:
                self._unlink(node, rec)
            self._release(parent, rec)
        elif node.kind is Kind.DIR:
            node.shadowed = info
        else:
            self._replace_leaf(node, info, rec)

    def _apply_marker(self, parts: tuple[str, ...], info: ObjectInfo, rec: _Recorder) -> None:
        """A directory marker object changed."""
        node = self._walk(parts)
        if node is None or node.marker_info is None:
            if not info.deleted:
                self._add(parts, info, rec, marker=True)
            return
        parent = node._parent
        assert parent is not None  # parts is never empty, so node is not the root
        if info.deleted:
            node.marker_info = None
            if _entries_of(node).objects == 0:
                self._vacate(node, rec)
            else:
                rec.attrs[node.ino] = None  # its mode and times fall back to the defaults
            self._release(parent, rec)
        elif node.marker_info != info:
            node.marker_info = info
            rec.attrs[node.ino] = None

    def _add(
        self, parts: tuple[str, ...], info: ObjectInfo, rec: _Recorder, *, marker: bool
    ) -> None:
        """A new object (not present before) at ``parts``: make its directories, then its entry."""
        directory = self._root
        entries = _entries_of(directory)
        entries.objects += 1
        for part in parts[:-1]:
            child = entries.by_name.get(part)
            if child is None:
                child = self._new_node(Kind.DIR, None)
                self._link(directory, part, child, rec)
            elif child.kind is not Kind.DIR:
                child = self._shadow(child, rec)
            directory = child
            entries = _entries_of(directory)
            entries.objects += 1
        last = parts[-1]
        existing = entries.by_name.get(last)
        if marker:
            if existing is None:
                existing = self._new_node(Kind.DIR, None)
                self._link(directory, last, existing, rec)
            elif existing.kind is Kind.DIR:
                rec.attrs[existing.ino] = None  # its mode and times now come from the marker
            else:
                existing = self._shadow(existing, rec)
            existing.marker_info = info
        elif existing is None:
            self._link(directory, last, self._new_node(_kind_of(info), info), rec)
        else:
            # Only a directory can be there, or the object would not be new.
            existing.shadowed = info
            self._hide_shadowed(info.name, rec)

    def _replace_leaf(self, node: Node, info: ObjectInfo, rec: _Recorder) -> None:
        """A new version of the object a FILE or SYMLINK node shows."""
        old = node.info
        assert old is not None
        kind = _kind_of(info)
        if kind is not node.kind:
            self._replace(node, self._new_node(kind, info), rec)
            return
        renew = rec.renew
        if (
            renew is not None
            and kind is Kind.FILE
            and _kernel_cached(old) != _kernel_cached(info)
            and renew(info)
        ):
            self._replace(node, self._new_node(kind, info), rec)
            return
        node.info = info
        if _content_key(old) != _content_key(info):
            node.version += 1
            rec.contents[node.ino] = None
        elif old != info:
            rec.attrs[node.ino] = None

    def _release(self, directory: Node | None, rec: _Recorder, count: int = 1) -> None:
        """``count`` objects under ``directory`` (and so under each ancestor) went away.

        Directories left with nothing below them and no marker go, deepest first.
        """
        while directory is not None:
            entries = _entries_of(directory)
            above = directory._parent
            entries.objects -= count
            if entries.objects == 0 and directory.marker_info is None and above is not None:
                self._vacate(directory, rec)
            directory = above

    @staticmethod
    def _count_objects(directory: Node | None, count: int) -> None:
        """``count`` objects arrived under ``directory`` (and so under each ancestor)."""
        while directory is not None:
            _entries_of(directory).objects += count
            directory = directory._parent

    @staticmethod
    def _plan_move(
        node: Node,
        old_parts: tuple[str, ...],
        new_parts: tuple[str, ...],
        renamed: Mapping[str, ObjectInfo],
    ) -> list[tuple[Node, _Slot, tuple[str, ...], ObjectInfo]]:
        """The new info of every object ``node`` holds, after checking ``renamed`` covers them.

        Raises:
            ValueError: ``renamed`` misses an object, has one too many, or gives an info of the
                wrong name or kind (or a delete marker).
        """
        old_prefix = "/".join(old_parts)
        new_prefix = "/".join(new_parts)
        updates: list[tuple[Node, _Slot, tuple[str, ...], ObjectInfo]] = []
        for holder, slot, rel, old in _held(node, ()):
            info = renamed.get(old.name)
            if info is None:
                raise ValueError(f"renamed lacks {old.name!r}")
            expected = new_prefix + old.name[len(old_prefix) :]
            if info.name != expected or info.deleted:
                raise ValueError(f"{old.name!r} must be renamed to a live {expected!r}")
            if slot is _Slot.LEAF and _kind_of(info) is not holder.kind:
                raise ValueError(f"{old.name!r} would change its kind")
            updates.append((holder, slot, rel, info))
        if len(renamed) != len(updates):
            held = {old.name for _, _, _, old in _held(node, ())}
            extra = sorted(name for name in renamed if name not in held)
            raise ValueError(f"renamed names objects the entry does not hold: {extra!r}")
        return updates

    def _take_out(self, node: Node, rec: _Recorder) -> None:
        """Remove ``node``'s entry from its directory, keeping the node (it moves)."""
        directory = node._parent
        assert directory is not None
        entries = _entries_of(directory)
        del entries.by_name[node.name]
        del entries.by_id[node.entry_id]
        if node.kind is Kind.DIR:
            entries.subdirs -= 1
        if len(entries.ids) > 2 * len(entries.by_id) + _COMPACT_SLACK:
            entries.ids = list(entries.by_id)
            entries.epoch += 1
        self._entry_count -= 1
        node._parent = None
        rec.entries[directory.ino, node.name] = None

    def _vacate(self, directory: Node, rec: _Recorder) -> None:
        """An empty directory goes; the object it shadowed, if any, shows again."""
        shadowed = directory.shadowed
        if shadowed is None:
            self._unlink(directory, rec)
            return
        del self._hidden[shadowed.name]
        self._replace(directory, self._new_node(_kind_of(shadowed), shadowed), rec)

    def _shadow(self, leaf: Node, rec: _Recorder) -> Node:
        """A directory takes the place of a file or symlink (rule 2); returns the directory."""
        info = leaf.info
        assert info is not None
        directory = self._new_node(Kind.DIR, None)
        directory.shadowed = info
        self._replace(leaf, directory, rec)
        self._hide_shadowed(info.name, rec)
        return directory

    def _hide_shadowed(self, name: str, rec: _Recorder) -> None:
        self._hidden[name] = SHADOWED_REASON
        rec.hidden.append((name, SHADOWED_REASON))

    # -------------------------------------------------------------- entries and inode numbers

    def _directory(self, ino: Inode) -> Node:
        """The node of a directory inode.

        Raises:
            KeyError: ``ino`` is unknown.
            NotADirectoryError: ``ino`` is not a directory.
        """
        node = self._nodes[ino]
        if node._entries is None:
            raise NotADirectoryError(f"inode {ino} is not a directory")
        return node

    def _walk(self, parts: tuple[str, ...]) -> Node | None:
        node = self._root
        for part in parts:
            entries = node._entries
            if entries is None:
                return None
            child = entries.by_name.get(part)
            if child is None:
                return None
            node = child
        return node

    def _new_node(self, kind: Kind, info: ObjectInfo | None) -> Node:
        ino = Inode(self._next_ino)
        self._next_ino += 1
        node = Node(ino, kind, info)
        self._nodes[ino] = node
        return node

    def _link(self, directory: Node, name: str, node: Node, rec: _Recorder) -> None:
        """Add a new entry at the end of ``directory`` (a fresh entry id)."""
        entries = _entries_of(directory)
        entry_id = entries.next_id
        entries.next_id += 1
        entries.by_name[name] = node
        entries.by_id[entry_id] = node
        entries.ids.append(entry_id)
        if node.kind is Kind.DIR:
            entries.subdirs += 1
        node.name = name
        node.entry_id = entry_id
        node._parent = directory
        self._entry_count += 1
        rec.entries[directory.ino, name] = None

    def _replace(self, old: Node, new: Node, rec: _Recorder) -> None:
        """Point ``old``'s entry at ``new``, keeping the entry id (rule 5); detach ``old``."""
        directory = old._parent
        assert directory is not None
        entries = _entries_of(directory)
        entries.by_name[old.name] = new
        entries.by_id[old.entry_id] = new
        entries.subdirs += (new.kind is Kind.DIR) - (old.kind is Kind.DIR)
        new.name = old.name
        new.entry_id = old.entry_id
        new._parent = directory
        self._detach(old)
        rec.entries[directory.ino, old.name] = None

    def _unlink(self, node: Node, rec: _Recorder) -> None:
        """Remove ``node``'s entry from its directory and detach it."""
        directory = node._parent
        assert directory is not None
        self._take_out(node, rec)
        self._detach(node)
        rec.deleted[directory.ino, node.name, node.ino] = None

    def _detach(self, node: Node) -> None:
        node._parent = None
        node.attached = False
        if node.lookups == 0:
            del self._nodes[node.ino]


class _Slot(enum.Enum):
    """Where a node holds an object."""

    LEAF = enum.auto()  # Node.info
    MARKER = enum.auto()  # Node.marker_info
    SHADOWED = enum.auto()  # Node.shadowed


def _held(
    node: Node, rel: tuple[str, ...]
) -> Iterator[tuple[Node, _Slot, tuple[str, ...], ObjectInfo]]:
    """Every object ``node`` holds, as ``(holder, slot, path below node, info)``: a path walk.

    Iterative (names may nest deeper than Python's recursion limit).
    """
    pending = [(node, rel)]
    while pending:
        node, rel = pending.pop()
        entries = node._entries
        if entries is None:
            yield node, _Slot.LEAF, rel, _known(node.info)
            continue
        if node.shadowed is not None:
            yield node, _Slot.SHADOWED, rel, node.shadowed
        if node.marker_info is not None:
            yield node, _Slot.MARKER, rel, node.marker_info
        by_name = entries.by_name
        pending.extend((by_name[name], (*rel, name)) for name in sorted(by_name, reverse=True))


def _objects_held(node: Node) -> int:
    """How many objects an entry holds (what it counts for in its ancestors' ``objects``)."""
    entries = node._entries
    if entries is None:
        return 1
    return entries.objects + (node.marker_info is not None) + (node.shadowed is not None)


def _is_component(name: str) -> bool:
    """True for a name that can be one entry of a directory (``names.map_name`` rules)."""
    mapped = map_name(name)
    return isinstance(mapped, Mapped) and not mapped.is_dir_marker and mapped.parts == (name,)


def _known(info: ObjectInfo | None) -> ObjectInfo:
    """An info known to be there."""
    assert info is not None
    return info


def _target(parts: tuple[str, ...], info: ObjectInfo) -> str | None:
    """What ``readlink`` answers for a symlink object at ``parts`` (see ``readlink``)."""
    if info.link is not None:
        return symlink_target(parts, info.link, bucket=info.bucket)
    return stored_symlink(info)


def _kind_of(info: ObjectInfo) -> Kind:
    """FILE or SYMLINK for a (non-marker) object."""
    return Kind.SYMLINK if is_symlink(info) else Kind.FILE


def _entries_of(directory: Node) -> _Entries:
    """The entries of a node known to be a directory."""
    entries = directory._entries
    assert entries is not None, f"{directory!r} is a directory"
    return entries


def _content_key(info: ObjectInfo) -> tuple[str, ObjectLink | None, str | None]:
    """What decides whether the data (or symlink target) changed: a new put is a new nuid."""
    return info.nuid, info.link, stored_symlink(info)


def _kernel_cached(info: ObjectInfo) -> tuple[int, str | int]:
    """What the kernel keeps of a regular file under the writeback cache: size and mtime."""
    return info.size, info.metadata.get(MTIME_KEY) or info.mtime_ns


def _require(condition: bool, invariant: str) -> None:
    """Raise unless ``condition`` (unlike ``assert``, survives ``python -O``)."""
    if not condition:
        raise AssertionError(f"inode table invariant broken: {invariant}")
