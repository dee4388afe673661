"""The inode table by example: the namespace rules, inode stability, lookup counts, readdir.

Rules for these tests:
1. Every test gets its table from the ``table`` fixture, which checks every structural
   invariant after the test (and the tests check it in between where a state is subtle).
2. Changes are compared exactly, so a missing or a needless invalidation both fail.
3. The model-based test (``test_inodes_model.py``) covers the combinations; these pin down
   each rule with a readable story.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from osfs.core.inodes import (
    FIRST_ENTRY_ID,
    ROOT,
    SHADOWED_REASON,
    Changes,
    Inode,
    InodeTable,
    Kind,
    Node,
)
from osfs.core.meta import ObjectInfo, ObjectLink
from osfs.core.names import REASON_DOT, REASON_EMPTY_COMPONENT, REASON_NUL
from osfs.core.posix import SYMLINK_KEY


@pytest.fixture
def table() -> Iterator[InodeTable]:
    table = InodeTable()
    yield table
    table.check_invariants()


def put(name: str, nuid: str = "N1", **metadata: str) -> ObjectInfo:
    return ObjectInfo(name=name, bucket="B", nuid=nuid, size=3, metadata=metadata)


def link(name: str, target: str, bucket: str = "B") -> ObjectInfo:
    return ObjectInfo(name=name, bucket="B", link=ObjectLink(bucket, target))


def gone(name: str) -> ObjectInfo:
    return ObjectInfo(name=name, bucket="B", deleted=True)


def at(table: InodeTable, name: str) -> Node:
    node = table.node_for_name(name)
    assert node is not None, name
    return node


def tree(table: InodeTable) -> dict[str, Kind]:
    """The visible tree, walked through readdir: path -> kind."""
    found: dict[str, Kind] = {}
    pending = [(ROOT, "")]
    while pending:
        ino, path = pending.pop()
        for _, name, node in table.readdir(ino, 0):
            child = f"{path}/{name}" if path else name
            found[child] = node.kind
            if node.kind is Kind.DIR:
                pending.append((node.ino, child))
    return found


def names(table: InodeTable, ino: Inode, offset: int = 0) -> list[str]:
    return [name for _, name, _ in table.readdir(ino, offset)]


# ------------------------------------------------------------------------------ the root


def test_empty_table_has_only_the_root(table: InodeTable) -> None:
    root = table.node(ROOT)
    assert root.kind is Kind.DIR
    assert (root.parent, root.name, root.info, root.marker_info) == (None, "", None, None)
    assert root.nlink == 2
    assert table.path_of(ROOT) == ""
    assert table.parts_of(ROOT) == ()
    assert table.node_for_name("") is root
    assert table.entries() == 0
    assert names(table, ROOT) == []
    assert table.lookup(ROOT, ".") is root
    assert table.lookup(ROOT, "..") is root


# ------------------------------------------------------------------------ implicit dirs


def test_nested_object_creates_implicit_dirs(table: InodeTable) -> None:
    changes = table.apply(put("a/b/c.txt"))
    a, b, c = at(table, "a"), at(table, "a/b"), at(table, "a/b/c.txt")
    assert changes == Changes(entries=((ROOT, "a"), (a.ino, "b"), (b.ino, "c.txt")))
    assert (a.kind, b.kind, c.kind) == (Kind.DIR, Kind.DIR, Kind.FILE)
    assert (a.marker_info, b.marker_info) == (None, None)
    assert c.info == put("a/b/c.txt")
    assert (c.parent, c.name) == (b.ino, "c.txt")
    assert table.lookup(ROOT, "a") is a
    assert table.lookup(a.ino, "b") is b
    assert table.lookup(b.ino, "c.txt") is c
    assert table.lookup(b.ino, "..") is a
    assert table.lookup(b.ino, "nope") is None
    assert table.path_of(c.ino) == "a/b/c.txt"
    assert table.parts_of(b.ino) == ("a", "b")
    assert table.entries() == 3
    assert len({ROOT, a.ino, b.ino, c.ino}) == 4


def test_implicit_dirs_disappear_with_their_last_object(table: InodeTable) -> None:
    table.apply(put("a/b/c.txt"))
    table.apply(put("a/d"))
    a, b, c = at(table, "a"), at(table, "a/b"), at(table, "a/b/c.txt")
    changes = table.apply(gone("a/b/c.txt"))
    assert changes == Changes(
        entries=((b.ino, "c.txt"), (a.ino, "b")),
        deleted=((b.ino, "c.txt", c.ino), (a.ino, "b", b.ino)),
    )
    assert tree(table) == {"a": Kind.DIR, "a/d": Kind.FILE}
    d = at(table, "a/d")
    changes = table.apply(gone("a/d"))
    assert changes == Changes(
        entries=((a.ino, "d"), (ROOT, "a")),
        deleted=((a.ino, "d", d.ino), (ROOT, "a", a.ino)),
    )
    assert tree(table) == {}
    assert table.entries() == 0
    for ino in (a.ino, b.ino, c.ino, d.ino):
        with pytest.raises(KeyError):
            table.node(ino)


def test_deleting_an_unknown_name_changes_nothing(table: InodeTable) -> None:
    table.apply(put("a/b"))
    assert not table.apply(gone("a/c"))
    assert not table.apply(gone("a"))  # the directory, not an object
    assert not table.apply(gone("a/b/"))  # no such marker
    assert not table.apply(gone("x/y/z"))
    assert tree(table) == {"a": Kind.DIR, "a/b": Kind.FILE}


# ---------------------------------------------------------------------------- markers


def test_marked_dir_persists_when_empty(table: InodeTable) -> None:
    changes = table.apply(put("a/b/"))
    a, b = at(table, "a"), at(table, "a/b")
    assert changes == Changes(entries=((ROOT, "a"), (a.ino, "b")))
    assert b.kind is Kind.DIR
    assert b.is_marked
    assert b.marker_info == put("a/b/")
    assert not a.is_marked
    table.apply(put("a/b/c"))
    table.apply(gone("a/b/c"))
    assert tree(table) == {"a": Kind.DIR, "a/b": Kind.DIR}
    assert at(table, "a/b") is b
    changes = table.apply(gone("a/b/"))
    assert changes == Changes(
        entries=((a.ino, "b"), (ROOT, "a")),
        deleted=((a.ino, "b", b.ino), (ROOT, "a", a.ino)),
    )
    assert tree(table) == {}


def test_marker_on_an_implicit_dir_changes_only_its_attributes(table: InodeTable) -> None:
    table.apply(put("a/f"))
    a = at(table, "a")
    assert table.apply(put("a/", mode="x")) == Changes(attrs=(a.ino,))
    assert a.marker_info == put("a/", mode="x")
    assert table.apply(put("a/", mode="y")) == Changes(attrs=(a.ino,))
    assert not table.apply(put("a/", mode="y"))  # the same document again
    assert table.apply(gone("a/")) == Changes(attrs=(a.ino,))
    assert at(table, "a") is a
    assert not a.is_marked
    assert tree(table) == {"a": Kind.DIR, "a/f": Kind.FILE}


def test_marker_name_finds_only_directories(table: InodeTable) -> None:
    table.apply(put("a/f"))
    assert table.node_for_name("a/") is at(table, "a")
    assert table.node_for_name("a/f/") is None
    assert table.node_for_name("a/f").kind is Kind.FILE  # type: ignore[union-attr]
    assert table.node_for_name("a/g") is None
    assert table.node_for_name("../a") is None


# -------------------------------------------------------------------- directory wins


def test_directory_shadows_a_file_of_the_same_name(table: InodeTable) -> None:
    table.apply(put("a", nuid="F"))
    file_ = at(table, "a")
    table.remember(file_.ino)
    changes = table.apply(put("a/x"))
    directory = at(table, "a")
    assert directory.kind is Kind.DIR
    assert directory.ino != file_.ino
    assert directory.shadowed == put("a", nuid="F")
    assert changes == Changes(
        entries=((ROOT, "a"), (directory.ino, "x")),
        hidden=(("a", SHADOWED_REASON),),
    )
    assert table.hidden() == {"a": SHADOWED_REASON}
    # The kernel still holds the file's inode: it stays resolvable, out of the tree.
    assert table.node(file_.ino) is file_
    assert not file_.attached
    assert file_.nlink == 0
    assert tree(table) == {"a": Kind.DIR, "a/x": Kind.FILE}


def test_file_reappears_when_the_directory_goes(table: InodeTable) -> None:
    table.apply(put("a", nuid="F1"))
    old_file = at(table, "a").ino
    table.apply(put("a/x"))
    directory, x = at(table, "a"), at(table, "a/x")
    table.apply(put("a", nuid="F2"))  # a new version while shadowed: nothing to tell
    assert table.hidden() == {"a": SHADOWED_REASON}
    changes = table.apply(gone("a/x"))
    file_ = at(table, "a")
    assert changes == Changes(
        entries=((directory.ino, "x"), (ROOT, "a")),
        deleted=((directory.ino, "x", x.ino),),  # the entry "a" was replaced, not deleted
    )
    assert file_.kind is Kind.FILE
    assert file_.info == put("a", nuid="F2")
    assert file_.ino not in (old_file, directory.ino, x.ino)
    assert table.hidden() == {}
    assert tree(table) == {"a": Kind.FILE}


def test_object_under_an_existing_directory_is_shadowed_at_once(table: InodeTable) -> None:
    table.apply(put("a/x"))
    directory = at(table, "a")
    assert table.apply(put("a")) == Changes(hidden=(("a", SHADOWED_REASON),))
    assert at(table, "a") is directory
    assert not table.apply(put("a", nuid="N2"))
    assert not table.apply(gone("a"))  # the shadowed object goes quietly
    assert table.hidden() == {}
    table.apply(gone("a/x"))
    assert tree(table) == {}


def test_deep_shadowing_and_unshadowing(table: InodeTable) -> None:
    table.apply(put("a"))
    table.apply(put("a/b"))
    table.apply(put("a/b/c"))
    assert table.hidden() == {"a": SHADOWED_REASON, "a/b": SHADOWED_REASON}
    assert tree(table) == {"a": Kind.DIR, "a/b": Kind.DIR, "a/b/c": Kind.FILE}
    table.apply(gone("a/b/c"))
    assert tree(table) == {"a": Kind.DIR, "a/b": Kind.FILE}
    assert table.hidden() == {"a": SHADOWED_REASON}
    table.check_invariants()
    table.apply(gone("a/b"))
    assert tree(table) == {"a": Kind.FILE}
    assert table.hidden() == {}


def test_marker_shadows_a_file_and_a_symlink(table: InodeTable) -> None:
    table.apply(put("f"))
    table.apply(link("s", "f"))
    table.apply(put("f/"))
    table.apply(put("s/"))
    assert tree(table) == {"f": Kind.DIR, "s": Kind.DIR}
    assert table.hidden() == {"f": SHADOWED_REASON, "s": SHADOWED_REASON}
    table.apply(gone("f/"))
    table.apply(gone("s/"))
    assert tree(table) == {"f": Kind.FILE, "s": Kind.SYMLINK}


def test_marked_directory_keeps_shadowing_when_emptied(table: InodeTable) -> None:
    table.apply(put("a"))
    table.apply(put("a/"))
    table.apply(put("a/x"))
    table.apply(gone("a/x"))
    assert tree(table) == {"a": Kind.DIR}
    assert table.hidden() == {"a": SHADOWED_REASON}
    table.apply(gone("a/"))
    assert tree(table) == {"a": Kind.FILE}


# ------------------------------------------------------------------- replace and kinds


def test_replace_keeps_the_inode_and_reports_new_content(table: InodeTable) -> None:
    table.apply(put("d/f", nuid="N1"))
    node = at(table, "d/f")
    table.remember(node.ino)
    assert node.version == 0
    changes = table.apply(put("d/f", nuid="N2"))
    assert changes == Changes(contents=(node.ino,))
    assert at(table, "d/f") is node
    assert node.info == put("d/f", nuid="N2")
    assert node.version == 1
    assert node.lookups == 1


def test_metadata_change_reports_attributes_only(table: InodeTable) -> None:
    table.apply(put("f", nuid="N1"))
    node = at(table, "f")
    assert table.apply(put("f", nuid="N1", mode="600")) == Changes(attrs=(node.ino,))
    assert node.version == 0
    assert table.apply(replace(put("f", nuid="N1", mode="600"), revision=9)) == Changes(
        attrs=(node.ino,)
    )


def test_same_document_again_changes_nothing(table: InodeTable) -> None:
    table.apply(put("f"))
    assert table.apply(put("f")) == Changes()
    assert not table.apply(put("f"))


def test_file_becoming_a_symlink_gets_a_new_inode_in_the_same_entry(table: InodeTable) -> None:
    table.apply(put("x"))
    table.apply(put("f"))
    table.apply(put("y"))
    file_ = at(table, "f")
    offsets = {name: offset for offset, name, _ in table.readdir(ROOT, 0)}
    changes = table.apply(link("f", "x"))
    symlink = at(table, "f")
    assert changes == Changes(entries=((ROOT, "f"),))
    assert symlink.kind is Kind.SYMLINK
    assert symlink.ino != file_.ino
    assert {name: offset for offset, name, _ in table.readdir(ROOT, 0)} == offsets
    with pytest.raises(KeyError):
        table.node(file_.ino)  # nobody held it


def test_symlink_target_change_is_a_content_change(table: InodeTable) -> None:
    table.apply(link("s", "a"))
    node = at(table, "s")
    assert table.apply(link("s", "b")) == Changes(contents=(node.ino,))
    assert table.readlink(node.ino) == "b"
    assert node.version == 1
    made = put("t", nuid="", **{SYMLINK_KEY: "one"})
    table.apply(made)
    t = at(table, "t")
    assert t.kind is Kind.SYMLINK
    changed = put("t", nuid="", **{SYMLINK_KEY: "two"})
    assert table.apply(changed) == Changes(contents=(t.ino,))


# --------------------------------------------------------------------------- readlink


def test_readlink(table: InodeTable) -> None:
    table.apply(link("x/y/ln", "a/b"))
    table.apply(link("x/other", "c/d", bucket="C"))
    table.apply(ObjectInfo(name="x/bucket", bucket="B", link=ObjectLink("C")))
    table.apply(put("x/made", nuid="", **{SYMLINK_KEY: "/abs/path"}))
    table.apply(put("x/plain"))
    assert table.readlink(at(table, "x/y/ln").ino) == "../../a/b"
    assert table.readlink(at(table, "x/other").ino) == "../../C/c/d"
    assert table.readlink(at(table, "x/bucket").ino) == "../../C"
    assert table.readlink(at(table, "x/made").ino) == "/abs/path"
    with pytest.raises(ValueError):
        table.readlink(at(table, "x/plain").ino)
    with pytest.raises(ValueError):
        table.readlink(at(table, "x").ino)


# ---------------------------------------------------------------------- lookup counts


def test_deleted_entry_with_lookups_stays_until_forgotten(table: InodeTable) -> None:
    table.apply(put("d/f"))
    d, f = at(table, "d"), at(table, "d/f")
    table.remember(f.ino)
    table.remember(f.ino)
    table.apply(gone("d/f"))
    table.check_invariants()
    assert table.node(f.ino) is f
    assert (f.attached, f.parent, f.nlink, f.lookups) == (False, None, 0, 2)
    assert f.info == put("d/f")
    assert table.lookup(ROOT, "d") is None
    with pytest.raises(KeyError):
        table.path_of(f.ino)
    with pytest.raises(KeyError):
        table.node(d.ino)  # the directory was not held
    table.forget(f.ino, 1)
    assert table.node(f.ino) is f
    table.forget(f.ino, 1)
    with pytest.raises(KeyError):
        table.node(f.ino)


def test_attached_entry_survives_forget(table: InodeTable) -> None:
    table.apply(put("f"))
    f = at(table, "f")
    table.remember(f.ino)
    table.forget(f.ino, 1)
    assert table.node(f.ino) is f
    assert f.lookups == 0


def test_detached_directory_is_empty_and_has_no_parent(table: InodeTable) -> None:
    table.apply(put("d/f"))
    d = at(table, "d")
    table.remember(d.ino)
    table.apply(gone("d/f"))
    assert table.node(d.ino) is d
    assert names(table, d.ino) == []
    assert table.lookup(d.ino, "..") is None
    assert table.lookup(d.ino, ".") is d
    assert d.nlink == 0
    table.apply(put("d/f"))  # the name comes back as a new directory
    assert at(table, "d").ino != d.ino
    table.forget(d.ino, 1)
    with pytest.raises(KeyError):
        table.node(d.ino)


def test_forget_never_raises(table: InodeTable) -> None:
    table.apply(put("f"))
    f = at(table, "f")
    table.forget(Inode(999), 1)
    table.remember(f.ino)
    table.forget(f.ino, 5)
    assert f.lookups == 0
    with pytest.raises(KeyError):
        table.remember(Inode(999))


def test_forget_all_frees_detached_nodes(table: InodeTable) -> None:
    table.apply(put("f"))
    table.apply(put("g"))
    f, g = at(table, "f"), at(table, "g")
    table.remember(f.ino)
    table.remember(g.ino)
    table.remember(ROOT)
    table.apply(gone("f"))
    assert table.statistics().detached == 1
    table.forget_all()
    assert table.statistics().detached == 0
    assert g.lookups == 0
    assert table.node(ROOT).lookups == 0
    with pytest.raises(KeyError):
        table.node(f.ino)


def test_inode_numbers_are_never_reused(table: InodeTable) -> None:
    seen: set[Inode] = {ROOT}
    for round_ in range(20):
        table.apply(put("a/b/c", nuid=f"N{round_}"))
        table.apply(put("a"))
        new = {at(table, name).ino for name in ("a", "a/b", "a/b/c")}
        assert not new & seen
        seen |= new
        table.apply(gone("a/b/c"))
        seen.add(at(table, "a").ino)
        table.apply(gone("a"))


# ----------------------------------------------------------------------------- readdir


def test_readdir_offsets_start_above_the_special_ones(table: InodeTable) -> None:
    for name in ("c", "a", "b"):
        table.apply(put(name))
    listing = list(table.readdir(ROOT, 0))
    assert [(offset, name) for offset, name, _ in listing] == [
        (FIRST_ENTRY_ID, "c"),
        (FIRST_ENTRY_ID + 1, "a"),
        (FIRST_ENTRY_ID + 2, "b"),
    ]
    assert FIRST_ENTRY_ID == 3
    assert [node for _, _, node in listing] == [at(table, n) for n in ("c", "a", "b")]
    assert names(table, ROOT, FIRST_ENTRY_ID) == ["a", "b"]
    assert names(table, ROOT, FIRST_ENTRY_ID + 2) == []


def test_readdir_offsets_survive_changes_between_calls(table: InodeTable) -> None:
    for i in range(10):
        table.apply(put(f"d/f{i}"))
    d = at(table, "d").ino
    first = list(table.readdir(d, 0))[:4]
    assert [name for _, name, _ in first] == ["f0", "f1", "f2", "f3"]
    resume = first[-1][0]
    table.apply(gone("d/f1"))  # already listed
    table.apply(gone("d/f5"))  # not yet listed
    table.apply(put("d/new"))
    table.apply(put("d/f2/inner"))  # an entry already listed is replaced by a directory
    table.apply(put("d/f6/inner"))  # one not yet listed is replaced too
    rest = names(table, d, resume)
    assert rest == ["f4", "f6", "f7", "f8", "f9", "new"]


def test_readdir_iterator_survives_compaction(table: InodeTable) -> None:
    for i in range(300):
        table.apply(put(f"f{i:03}"))
    listing = table.readdir(ROOT, 0)
    head = [next(listing)[1] for _ in range(100)]
    # Enough removals that the directory compacts its id list (several times) meanwhile, to
    # fewer ids than the iterator had already passed.
    for i in range(290):
        table.apply(gone(f"f{i:03}"))
    table.apply(put("late"))
    rest = [name for _, name, _ in listing]
    assert head == [f"f{i:03}" for i in range(100)]
    assert rest == [f"f{i:03}" for i in range(290, 300)] + ["late"]
    assert names(table, ROOT, FIRST_ENTRY_ID + 5) == rest  # a fresh call from an old offset


def test_readdir_and_lookup_need_a_directory(table: InodeTable) -> None:
    table.apply(put("f"))
    f = at(table, "f").ino
    with pytest.raises(NotADirectoryError):
        table.readdir(f, 0)
    with pytest.raises(NotADirectoryError):
        table.lookup(f, "x")
    with pytest.raises(KeyError):
        table.readdir(Inode(999), 0)
    with pytest.raises(KeyError):
        table.lookup(Inode(999), "x")


# ---------------------------------------------------------------------------- hidden


@pytest.mark.parametrize(
    ("name", "reason"),
    [("../x", REASON_DOT), ("a//b", REASON_EMPTY_COMPONENT), ("a/\x00", REASON_NUL)],
)
def test_hidden_names_never_enter_the_tree(table: InodeTable, name: str, reason: str) -> None:
    assert table.apply(put(name)) == Changes(hidden=((name, reason),))
    assert table.hidden() == {name: reason}
    assert tree(table) == {}
    assert table.node_for_name(name) is None
    assert not table.apply(put(name, nuid="N2"))  # logged once
    assert not table.apply(gone(name))
    assert table.hidden() == {}


def test_hidden_list_is_a_copy(table: InodeTable) -> None:
    table.apply(put("/abs"))
    table.hidden().clear()
    assert table.hidden() == {"/abs": REASON_EMPTY_COMPONENT}


# ----------------------------------------------------------------------- odds and ends


def test_nlink_counts_subdirectories(table: InodeTable) -> None:
    table.apply(put("a/x"))
    table.apply(put("b/"))
    table.apply(put("f"))
    assert table.node(ROOT).nlink == 4
    assert at(table, "a").nlink == 2
    assert at(table, "f").nlink == 1
    table.apply(put("a"))  # shadowed: no change in kind
    table.apply(put("f/"))  # f becomes a directory
    assert table.node(ROOT).nlink == 5
    table.apply(gone("b/"))
    assert table.node(ROOT).nlink == 4


def test_apply_many_merges_changes(table: InodeTable) -> None:
    table.apply(put("f", nuid="N1"))
    f = at(table, "f")
    changes = table.apply_many(
        [put("f", nuid="N1", mode="1"), put("f", nuid="N2"), put("g"), put("../h")]
    )
    assert changes == Changes(
        entries=((ROOT, "g"),), contents=(f.ino,), hidden=(("../h", REASON_DOT),)
    )
    g = at(table, "g")
    changes = table.apply_many([put("g", nuid="N9"), gone("g")])
    assert changes == Changes(entries=((ROOT, "g"),), deleted=((ROOT, "g", g.ino),))


def test_statistics(table: InodeTable) -> None:
    table.apply_many([put("a/b"), put("a"), put("c"), put("//")])
    stats = table.statistics()
    assert (stats.entries, stats.detached, stats.hidden) == (3, 0, 2)
    assert table.entries() == 3


def test_large_flat_and_deep_loads_keep_invariants(table: InodeTable) -> None:
    table.apply_many(put(f"dir{i % 50}/sub{i % 7}/f{i}") for i in range(5000))
    assert table.entries() == 5000 + 50 + 50 * 7
    table.check_invariants()
    table.apply_many(gone(f"dir{i % 50}/sub{i % 7}/f{i}") for i in range(5000))
    assert table.entries() == 0
