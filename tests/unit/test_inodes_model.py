"""The inode table against a naive model: a dict of live objects, from which the visible tree is
recomputed from scratch after every step.

Rules for these tests:
1. The model knows nothing of inodes, implicit directories or shadowing state: it derives the
   expected tree from the names alone (DESIGN §3), so any bookkeeping slip in the table shows
   up as a difference.
2. Every apply is checked for exact changes: the entries whose inode changed, the removals,
   the content and attribute changes, the newly hidden names, computed from snapshots taken
   before and after.
3. Inode numbers: the same path with the same kind keeps its number across a step; a number
   that left the tree never comes back.
4. Lookup counts follow a model counter; readdir listings are paginated across other steps
   and must neither repeat nor skip an entry present throughout.
5. Moves (rename(2) through the mount) rename the model's objects under the moved path; the
   moved entry and everything below keep their inode numbers at their new paths, and a
   refused move leaves the table exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from osfs.core.inodes import ROOT, SHADOWED_REASON, Changes, Inode, InodeTable, Kind
from osfs.core.meta import ObjectInfo, ObjectLink
from osfs.core.names import Hidden, map_name, object_name, symlink_target
from osfs.core.posix import SYMLINK_KEY, is_symlink, stored_symlink

Path = tuple[str, ...]

_GOOD = ["a", "b", "c"]
_HOSTILE = ["", ".", "..", "n\x00", "L" * 256]
_good_names = st.builds(
    lambda parts, marker: "/".join(parts) + ("/" if marker else ""),
    st.lists(st.sampled_from(_GOOD), min_size=1, max_size=3),
    st.booleans(),
)
_hostile_names = st.builds(
    lambda lead, parts, marker: lead + "/".join(parts) + ("/" if marker else ""),
    st.sampled_from(["", "", "/"]),
    st.lists(st.sampled_from(_GOOD + _HOSTILE), min_size=1, max_size=3),
    st.booleans(),
)
_names = st.one_of(_good_names, _good_names, _good_names, _hostile_names)


@st.composite
def _infos(draw: st.DrawFn, name: str) -> ObjectInfo:
    """A version of ``name``: a file, an object link, or a symlink made in a mount."""
    variant = draw(st.sampled_from(["file", "file", "file", "link", "made"]))
    metadata: dict[str, str] = draw(st.sampled_from([{}, {"osfs.mode": "600"}]))
    link = None
    nuid = draw(st.sampled_from(["N1", "N2"]))
    if variant == "link":
        link = ObjectLink("B", draw(st.sampled_from(["a", "b/c"])))
    elif variant == "made":
        metadata = {**metadata, SYMLINK_KEY: draw(st.sampled_from(["t1", "t2"]))}
        nuid = ""
    return ObjectInfo(name=name, bucket="B", nuid=nuid, metadata=metadata, link=link)


@dataclass(frozen=True)
class Seen:
    """One visible entry in a snapshot of the table."""

    ino: Inode
    kind: Kind
    info: ObjectInfo | None
    marker: ObjectInfo | None
    version: int


@dataclass
class Listing:
    """A readdir in progress, continued across other steps."""

    ino: Inode
    offset: int = 0
    yielded: list[str] = field(default_factory=list)
    throughout: set[str] = field(default_factory=set)


def _content(info: ObjectInfo) -> tuple[str, ObjectLink | None, str | None]:
    return info.nuid, info.link, stored_symlink(info)


def _target(path: Path, info: ObjectInfo) -> str | None:
    """What readlink answers for a symlink object at ``path``."""
    if info.link is not None:
        return symlink_target(path, info.link, bucket=info.bucket)
    return stored_symlink(info)


def _below(path: Path, top: Path) -> bool:
    """``path`` is ``top`` or under it."""
    return path[: len(top)] == top


def expected_tree(
    live: dict[str, ObjectInfo],
) -> tuple[dict[Path, tuple[Kind, ObjectInfo | None]], dict[str, str]]:
    """The visible tree (path -> kind and the object or marker shown) and the hidden names."""
    hidden: dict[str, str] = {}
    dirs: dict[Path, ObjectInfo | None] = {}
    files: dict[Path, ObjectInfo] = {}
    for name, info in live.items():
        mapped = map_name(name)
        if isinstance(mapped, Hidden):
            hidden[name] = mapped.reason
            continue
        parts = mapped.parts
        for i in range(1, len(parts)):
            dirs.setdefault(parts[:i], None)
        if mapped.is_dir_marker:
            dirs[parts] = info
        else:
            files[parts] = info
    tree: dict[Path, tuple[Kind, ObjectInfo | None]] = {p: (Kind.DIR, m) for p, m in dirs.items()}
    for path, info in files.items():
        if path in dirs:
            hidden[info.name] = SHADOWED_REASON
        else:
            tree[path] = (Kind.SYMLINK if is_symlink(info) else Kind.FILE, info)
    return tree, hidden


class InodeTableMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = InodeTable()
        self.live: dict[str, ObjectInfo] = {}
        self.counts: dict[Inode, int] = {}
        self.owner: dict[Inode, tuple[Path, Kind]] = {ROOT: ((), Kind.DIR)}
        self.retired: set[Inode] = set()
        self.listings: list[Listing] = []
        self.revision = 0

    # ------------------------------------------------------------------------- snapshots

    def snapshot(self) -> dict[Path, Seen]:
        """The table's visible tree, walked through ``lookup`` and ``readdir``."""
        root = self.table.node(ROOT)
        seen: dict[Path, Seen] = {(): Seen(ROOT, Kind.DIR, None, root.marker_info, root.version)}
        pending: list[tuple[Inode, Path]] = [(ROOT, ())]
        while pending:
            ino, path = pending.pop()
            for _, name, node in self.table.readdir(ino, 0):
                assert self.table.lookup(ino, name) is node
                child = (*path, name)
                seen[child] = Seen(node.ino, node.kind, node.info, node.marker_info, node.version)
                if node.kind is Kind.DIR:
                    pending.append((node.ino, child))
        return seen

    def change(self, info: ObjectInfo) -> None:
        """Apply ``info`` to table and model, and check the reported changes exactly."""
        before, hidden_before = self.snapshot(), self.table.hidden()
        changes = self.table.apply(info)
        if info.deleted:
            self.live.pop(info.name, None)
        else:
            self.live[info.name] = info
        after, hidden_after = self.snapshot(), self.table.hidden()

        def parent_of(path: Path, *, removed: bool) -> Inode:
            # A removed entry was in the directory of before; an added one is in that of after
            # (they differ when a file became the directory the new entry is in).
            return (before if removed else after)[path[:-1]].ino

        entries: set[tuple[Inode, str]] = set()
        deleted: set[tuple[Inode, str, Inode]] = set()
        contents: set[Inode] = set()
        attrs: set[Inode] = set()
        for path in before.keys() | after.keys():
            old, new = before.get(path), after.get(path)
            if old is None or new is None or old.ino != new.ino:
                parent = parent_of(path, removed=new is None)
                entries.add((parent, path[-1]))
                if new is None:
                    assert old is not None
                    deleted.add((parent, path[-1], old.ino))
                if old is not None and new is not None:
                    assert old.kind is not new.kind, "same kind at the same path, new inode"
                continue
            assert old.kind is new.kind
            if old.kind is Kind.DIR:
                if old.marker != new.marker:
                    attrs.add(new.ino)
                continue
            assert old.info is not None
            assert new.info is not None
            if _content(old.info) != _content(new.info):
                contents.add(new.ino)
                assert new.version == old.version + 1
            else:
                assert new.version == old.version
                if old.info != new.info:
                    attrs.add(new.ino)
        assert len(set(changes.entries)) == len(changes.entries)
        assert set(changes.entries) == entries
        assert set(changes.deleted) == deleted
        assert set(changes.contents) == contents
        assert set(changes.attrs) == attrs
        newly_hidden = {(n, r) for n, r in hidden_after.items() if n not in hidden_before}
        assert set(changes.hidden) == newly_hidden
        self.track_inodes(before, after)
        self.narrow_listings(after)

    def track_inodes(self, before: dict[Path, Seen], after: dict[Path, Seen]) -> None:
        for path, seen in after.items():
            assert seen.ino not in self.retired, f"inode {seen.ino} came back at {path}"
            owner = self.owner.setdefault(seen.ino, (path, seen.kind))
            assert owner == (path, seen.kind), f"inode {seen.ino} moved"
        current = {seen.ino for seen in after.values()}
        for seen in before.values():
            if seen.ino not in current:
                self.retired.add(seen.ino)

    def narrow_listings(self, after: dict[Path, Seen]) -> None:
        """An entry counts as present throughout only while its name stays in the directory."""
        for listing in self.listings:
            node = self.table.node(listing.ino)
            if not node.attached:
                listing.throughout.clear()
                continue
            path = self.table.parts_of(listing.ino)
            present = {p[-1] for p in after if len(p) == len(path) + 1 and p[:-1] == path}
            listing.throughout &= present

    # ----------------------------------------------------------------------------- rules

    @rule(name=_names, data=st.data())
    def put(self, name: str, data: st.DataObject) -> None:
        self.change(data.draw(_infos(name)))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def delete_live(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.live)))
        self.change(ObjectInfo(name=name, bucket="B", deleted=True))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), same=st.booleans())
    def put_again(self, data: st.DataObject, same: bool) -> None:
        """A live name again: the very same document (a replay), or a new version."""
        name = data.draw(st.sampled_from(sorted(self.live)))
        self.change(self.live[name] if same else data.draw(_infos(name)))

    @rule(name=_names)
    def delete_any(self, name: str) -> None:
        self.change(ObjectInfo(name=name, bucket="B", deleted=True))

    @rule(data=st.data())
    def lookup_and_remember(self, data: st.DataObject) -> None:
        tree = self.snapshot()
        path = data.draw(st.sampled_from(sorted(tree)))
        seen = tree[path]
        if path:
            parent = tree[path[:-1]].ino
            node = self.table.lookup(parent, path[-1])
            assert node is not None
            assert node.ino == seen.ino
            assert self.table.path_of(seen.ino) == "/".join(path)
        self.table.remember(seen.ino)
        self.counts[seen.ino] = self.counts.get(seen.ino, 0) + 1

    @precondition(lambda self: bool(self.counts))
    @rule(data=st.data())
    def forget(self, data: st.DataObject) -> None:
        held = [ino for ino, count in self.counts.items() if count > 0 and self.is_free(ino)]
        if not held:
            return
        ino = data.draw(st.sampled_from(sorted(held)))
        n = data.draw(st.integers(1, self.counts[ino]))
        self.table.forget(ino, n)
        self.counts[ino] -= n
        if not self.counts[ino]:
            del self.counts[ino]

    def is_free(self, ino: Inode) -> bool:
        """Not held by a listing in progress (the kernel holds an open directory)."""
        return all(listing.ino != ino for listing in self.listings)

    @precondition(lambda self: len(self.listings) < 3)
    @rule(data=st.data())
    def start_listing(self, data: st.DataObject) -> None:
        tree = self.snapshot()
        dirs = sorted(path for path, seen in tree.items() if seen.kind is Kind.DIR)
        path = data.draw(st.sampled_from(dirs))
        ino = tree[path].ino
        self.table.remember(ino)
        self.counts[ino] = self.counts.get(ino, 0) + 1
        present = {p[-1] for p in tree if len(p) == len(path) + 1 and p[:-1] == path}
        self.listings.append(Listing(ino, throughout=present))

    @precondition(lambda self: bool(self.listings))
    @rule(data=st.data(), size=st.integers(1, 2), accept=st.booleans())
    def continue_listing(self, data: st.DataObject, size: int, accept: bool) -> None:
        index = data.draw(st.integers(0, len(self.listings) - 1))
        listing = self.listings[index]
        page = []
        for offset, name, node in self.table.readdir(listing.ino, listing.offset):
            assert offset > listing.offset
            assert self.table.lookup(listing.ino, name) is node
            page.append((offset, name, node))
            if len(page) == size:
                break
        for offset, name, node in page:
            listing.offset = offset
            listing.yielded.append(name)
            if name in listing.throughout:
                assert listing.yielded.count(name) == 1, f"{name!r} repeated: {listing.yielded}"
            if accept:  # the kernel took the entry: one more lookup
                self.table.remember(node.ino)
                self.counts[node.ino] = self.counts.get(node.ino, 0) + 1
        if len(page) < size:
            self.finish(listing)

    def moves(self, tree: dict[Path, Seen]) -> list[tuple[Path, Path]]:
        """Every valid ``(source, destination)``: a visible entry to an existing directory and
        a name of the alphabet, not into its own subtree, onto nothing or a file or symlink (or
        onto itself)."""
        candidates = []
        dirs = sorted(path for path, seen in tree.items() if seen.kind is Kind.DIR)
        for src in sorted(path for path in tree if path):
            for directory in dirs:
                if _below(directory, src):
                    continue
                for name in _GOOD:
                    dst = (*directory, name)
                    if dst not in tree or tree[dst].kind is not Kind.DIR or dst == src:
                        candidates.append((src, dst))
        return candidates

    def renamed(self, src: Path, dst: Path) -> dict[str, ObjectInfo]:
        """The model's live objects under ``src``, as the store's rename makes them."""
        renamed: dict[str, ObjectInfo] = {}
        for name, info in sorted(self.live.items()):
            mapped = map_name(name)
            if isinstance(mapped, Hidden) or not _below(mapped.parts, src):
                continue
            parts = (*dst, *mapped.parts[len(src) :])
            self.revision += 1
            renamed[name] = replace(
                info, name=object_name(parts, is_dir=mapped.is_dir_marker), revision=self.revision
            )
        return renamed

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data())
    def move(self, data: st.DataObject) -> None:
        before, hidden_before = self.snapshot(), self.table.hidden()
        candidates = self.moves(before)
        if not candidates:
            return
        src, dst = data.draw(st.sampled_from(candidates))
        src_parent, dst_parent = before[src[:-1]].ino, before[dst[:-1]].ino
        if src == dst:
            assert self.table.move(src_parent, src[-1], dst_parent, dst[-1], {}) == Changes()
            assert self.snapshot() == before
            return
        renamed = self.renamed(src, dst)
        held = self.table.objects_below(before[src].ino)
        assert [info.name for info in held] == sorted(renamed, key=lambda n: n.split("/"))
        assert all(self.live[info.name] == info for info in held)
        ids = {name: offset for offset, name, _ in self.table.readdir(dst_parent, 0)}
        changes = self.table.move(src_parent, src[-1], dst_parent, dst[-1], renamed)
        # The entry id: the replaced entry's (rule 5), else a fresh one after every other.
        entry_id = self.table.node(before[src].ino).entry_id
        if dst[-1] in ids:
            assert entry_id == ids[dst[-1]]
        else:
            assert all(entry_id > offset for offset in ids.values())
        replaced = before.get(dst)
        if replaced is not None:  # the rename overwrote the destination's object
            assert replaced.info is not None
            del self.live[replaced.info.name]
        for name in renamed:
            del self.live[name]
        self.live.update({info.name: info for info in renamed.values()})
        after = self.snapshot()

        def relocated(path: Path) -> Path:
            return (*dst, *path[len(src) :]) if _below(path, src) else path

        # The moved entry and everything below it keep their numbers at their new paths.
        for path, seen in before.items():
            if _below(path, src):
                there = after[relocated(path)]
                assert (there.ino, there.kind) == (seen.ino, seen.kind), path
                self.owner[seen.ino] = (relocated(path), seen.kind)
        # Before, with the move's own effect applied: what is left to compare is its fallout.
        moved: dict[Path, tuple[Path, Seen | None]] = {
            relocated(path): (path, seen) for path, seen in before.items() if path != dst
        }
        entries = {(src_parent, src[-1]), (dst_parent, dst[-1])}
        deleted = set() if replaced is None else {(dst_parent, dst[-1], replaced.ino)}
        contents: set[Inode] = set()
        attrs: set[Inode] = set()
        for path in moved.keys() | after.keys():
            old_path, old = moved.get(path, (path, None))
            new = after.get(path)
            if old is None or new is None or old.ino != new.ino:
                # Source directories that went (or showed the file they shadowed again).
                parent = before[old_path[:-1]].ino if new is None else after[path[:-1]].ino
                entries.add((parent, path[-1]))
                if new is None:
                    assert old is not None
                    deleted.add((parent, path[-1], old.ino))
                continue
            if old.kind is Kind.DIR:
                if old.marker != new.marker:
                    attrs.add(new.ino)
                continue
            assert old.info is not None
            assert new.info is not None
            if _content(old.info) != _content(new.info) or (
                old.kind is Kind.SYMLINK and _target(old_path, old.info) != _target(path, new.info)
            ):
                contents.add(new.ino)
                assert new.version == old.version + 1
            else:
                assert new.version == old.version
                if old.info != new.info:
                    attrs.add(new.ino)
        assert len(set(changes.entries)) == len(changes.entries)
        assert set(changes.entries) == entries
        assert set(changes.deleted) == deleted
        assert set(changes.contents) == contents
        assert set(changes.attrs) == attrs
        hidden_after = self.table.hidden()
        newly_hidden = {(n, r) for n, r in hidden_after.items() if n not in hidden_before}
        assert set(changes.hidden) == newly_hidden
        self.track_inodes(before, after)
        self.narrow_listings(after)

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), how=st.sampled_from(["below", "onto a directory", "missing", "extra"]))
    def move_refused(self, data: st.DataObject, how: str) -> None:
        """A move the table must refuse, before changing anything."""
        before = self.snapshot()
        state = (self.table.hidden(), self.table.statistics(), self.listing_of(before))
        entries = sorted(path for path in before if path)
        if how == "below":
            candidates = [
                (src, (*directory, name))
                for src in entries
                for directory in entries
                if before[src].kind is Kind.DIR
                and before[directory].kind is Kind.DIR
                and _below(directory, src)
                for name in _GOOD
            ]
        elif how == "onto a directory":
            candidates = [
                (src, dst)
                for src in entries
                for dst in entries
                if before[dst].kind is Kind.DIR and dst != src
            ]
        else:
            candidates = [(src, dst) for src, dst in self.moves(before) if src != dst]
        if not candidates:
            return
        src, dst = data.draw(st.sampled_from(candidates))
        renamed = self.renamed(src, dst)
        if how == "missing":
            del renamed[data.draw(st.sampled_from(sorted(renamed)))]
        elif how == "extra":
            renamed["x"] = ObjectInfo(name="x", bucket="B", nuid="N1")
        src_parent, dst_parent = before[src[:-1]].ino, before[dst[:-1]].ino
        try:
            self.table.move(src_parent, src[-1], dst_parent, dst[-1], renamed)
        except ValueError:
            pass
        else:
            raise AssertionError(f"move {src} -> {dst} ({how}) was not refused")
        assert self.snapshot() == before
        assert (self.table.hidden(), self.table.statistics(), self.listing_of(before)) == state

    def listing_of(self, tree: dict[Path, Seen]) -> list[tuple[Inode, int, str]]:
        """Every directory's readdir, with offsets."""
        return [
            (seen.ino, offset, name)
            for seen in tree.values()
            if seen.kind is Kind.DIR
            for offset, name, _ in self.table.readdir(seen.ino, 0)
        ]

    @precondition(lambda self: any(listing.yielded for listing in self.listings))
    @rule(data=st.data())
    def shadow_a_listed_entry(self, data: st.DataObject) -> None:
        """Turn a file a listing already passed into a directory: a new inode, the same entry."""
        candidates = []
        for listing in self.listings:
            for name in sorted(set(listing.yielded)):
                node = self.table.lookup(listing.ino, name)
                if node is not None and node.kind is not Kind.DIR:
                    candidates.append((*self.table.parts_of(node.ino), "a"))
        if candidates:
            path = data.draw(st.sampled_from(candidates))
            self.change(data.draw(_infos("/".join(path))))

    def teardown(self) -> None:
        """Run every listing still in progress to its end, to check it skipped nothing."""
        for listing in list(self.listings):
            for offset, name, _ in self.table.readdir(listing.ino, listing.offset):
                listing.offset = offset
                listing.yielded.append(name)
            self.finish(listing)
        self.table.check_invariants()

    def finish(self, listing: Listing) -> None:
        for name in listing.throughout:
            assert listing.yielded.count(name) == 1, f"{name!r} listed {listing.yielded}"
        self.listings.remove(listing)
        self.table.forget(listing.ino, 1)
        self.counts[listing.ino] -= 1
        if not self.counts[listing.ino]:
            del self.counts[listing.ino]

    # ------------------------------------------------------------------------ invariants

    @invariant()
    def structure_holds(self) -> None:
        self.table.check_invariants()

    @invariant()
    def tree_matches_the_model(self) -> None:
        tree, hidden = expected_tree(self.live)
        seen = self.snapshot()
        assert {path: (s.kind, s.info or s.marker) for path, s in seen.items() if path} == tree
        assert self.table.hidden() == hidden
        assert self.table.entries() == len(tree)
        for name, info in self.live.items():
            node = self.table.node_for_name(name)
            if not name:
                assert node is self.table.node(ROOT)
            elif name in hidden:
                if hidden[name] == SHADOWED_REASON:
                    assert node is not None
                    assert node.kind is Kind.DIR
                else:
                    assert node is None
            elif name.endswith("/"):
                assert node is not None
                assert node.marker_info == info
            else:
                assert node is not None
                assert node.info == info

    @invariant()
    def lookup_counts_match(self) -> None:
        for ino, count in self.counts.items():
            assert self.table.node(ino).lookups == count
        for ino in self.retired - self.counts.keys():
            try:
                self.table.node(ino)
            except KeyError:
                continue
            raise AssertionError(f"inode {ino} left the tree unheld but was not freed")


InodeTableMachine.TestCase.settings = settings(
    max_examples=250, stateful_step_count=50, deadline=None
)
TestInodeTable = InodeTableMachine.TestCase
