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


# ------------------------------------------------------------------------------- move


def renamed_for(table: InodeTable, ino: Inode, new_path: str) -> dict[str, ObjectInfo]:
    """What the store's rename made of the objects ``ino`` holds: new names, new revisions."""
    old_path = table.path_of(ino)
    return {
        info.name: replace(info, name=new_path + info.name[len(old_path) :], revision=7)
        for info in table.objects_below(ino)
    }


def move(table: InodeTable, src: str, dst: str) -> Changes:
    """Move the entry at path ``src`` to path ``dst`` (whose directory exists)."""
    node = at(table, src)
    src_parent = table.node_for_name(src.rpartition("/")[0])
    dst_parent = table.node_for_name(dst.rpartition("/")[0])
    assert src_parent is not None
    assert dst_parent is not None
    renamed = renamed_for(table, node.ino, dst)
    changes = table.move(src_parent.ino, node.name, dst_parent.ino, dst.rpartition("/")[2], renamed)
    table.check_invariants()
    return changes


def state(table: InodeTable) -> object:
    """Everything a failed move must leave as it was."""
    seen = []
    pending = [(ROOT, "")]
    while pending:
        ino, path = pending.pop()
        for offset, name, node in table.readdir(ino, 0):
            child = f"{path}/{name}"
            seen.append(
                (child, offset, node.ino, node.info, node.marker_info, node.shadowed, node.nlink)
            )
            if node.kind is Kind.DIR:
                pending.append((node.ino, child))
    return seen, table.hidden(), table.statistics()


def test_objects_below_walks_the_paths(table: InodeTable) -> None:
    table.apply_many(
        [put("a/z"), put("a/b/y"), put("a"), put("a/"), put("a/b/"), link("a/c", "x"), put("q")]
    )
    assert [info.name for info in table.objects_below(at(table, "a").ino)] == [
        "a",
        "a/",
        "a/b/",
        "a/b/y",
        "a/c",
        "a/z",
    ]
    assert table.objects_below(at(table, "a/c").ino) == [link("a/c", "x")]
    assert len(table.objects_below(ROOT)) == 7
    table.apply(put("q/x"))
    q = at(table, "q")
    table.remember(q.ino)
    table.apply(gone("q/x"))  # q/x goes, and so does directory q: the file q shows again
    with pytest.raises(KeyError):
        table.objects_below(q.ino)
    with pytest.raises(KeyError):
        table.objects_below(Inode(999))


def test_move_renames_a_file_within_its_directory(table: InodeTable) -> None:
    table.apply_many([put("d/f"), put("d/g")])
    d, f = at(table, "d"), at(table, "d/f")
    old_id = f.entry_id
    changes = move(table, "d/f", "d/h")
    assert changes == Changes(entries=((d.ino, "f"), (d.ino, "h")), attrs=(f.ino,))
    assert at(table, "d/h") is f
    assert table.lookup(d.ino, "f") is None
    assert (f.name, f.parent, f.version) == ("h", d.ino, 0)
    assert f.info == replace(put("d/h"), revision=7)
    assert f.entry_id > at(table, "d/g").entry_id > old_id  # a fresh id, at the end
    assert names(table, d.ino) == ["g", "h"]
    assert tree(table) == {"d": Kind.DIR, "d/g": Kind.FILE, "d/h": Kind.FILE}


def test_move_across_directories_counts_objects_on_both_sides(table: InodeTable) -> None:
    table.apply_many([put("a/x/f"), put("a/x/keep"), put("b/y/other")])
    a, x, b, y, f = (at(table, p) for p in ("a", "a/x", "b", "b/y", "a/x/f"))
    changes = move(table, "a/x/f", "b/y/g")
    assert changes == Changes(entries=((x.ino, "f"), (y.ino, "g")), attrs=(f.ino,))
    assert at(table, "b/y/g") is f
    assert table.path_of(f.ino) == "b/y/g"
    assert table.node_for_name("b/y/g") is f
    # The counts moved with it: removing what is left empties each side exactly.
    table.apply(gone("a/x/keep"))
    assert table.lookup(ROOT, "a") is None
    assert at(table, "b") is b
    table.apply(gone("b/y/other"))
    table.apply(gone("b/y/g"))
    assert tree(table) == {}
    for ino in (a.ino, x.ino, b.ino, y.ino, f.ino):
        with pytest.raises(KeyError):
            table.node(ino)


def test_move_onto_a_file_takes_its_entry_id_and_detaches_it(table: InodeTable) -> None:
    table.apply_many([put("src/f", nuid="S"), put("e/f1"), put("e/f2", nuid="D"), put("e/f3")])
    src, e, f, victim = at(table, "src"), at(table, "e"), at(table, "src/f"), at(table, "e/f2")
    table.remember(victim.ino)
    offsets = {name: offset for offset, name, _ in table.readdir(e.ino, 0)}
    changes = move(table, "src/f", "e/f2")
    assert changes == Changes(
        entries=((src.ino, "f"), (e.ino, "f2"), (ROOT, "src")),
        deleted=((e.ino, "f2", victim.ino), (ROOT, "src", src.ino)),
        attrs=(f.ino,),
    )
    assert at(table, "e/f2") is f
    assert f.info == replace(put("e/f2", nuid="S"), revision=7)
    assert {name: offset for offset, name, _ in table.readdir(e.ino, 0)} == offsets
    assert f.entry_id == offsets["f2"]
    # The replaced file is detached like a deleted one: kept while the kernel holds it.
    assert table.node(victim.ino) is victim
    assert (victim.attached, victim.nlink) == (False, 0)
    table.forget(victim.ino, 1)
    with pytest.raises(KeyError):
        table.node(victim.ino)
    assert table.entries() == 4  # e, e/f1, e/f2, e/f3


def test_move_onto_an_unheld_file_frees_it(table: InodeTable) -> None:
    table.apply_many([put("f"), put("g")])
    victim = at(table, "g")
    move(table, "f", "g")
    with pytest.raises(KeyError):
        table.node(victim.ino)
    assert tree(table) == {"g": Kind.FILE}


def test_move_of_a_directory_keeps_every_inode_below(table: InodeTable) -> None:
    table.apply_many(
        [put("a/b/c"), put("a/b/d/"), put("a/e"), link("a/s", "a/e"), put("a/"), put("x/k")]
    )
    paths = ["a", "a/b", "a/b/c", "a/b/d", "a/e", "a/s"]
    before = {path: at(table, path) for path in paths}
    for node in before.values():
        table.remember(node.ino)
    x = at(table, "x")
    changes = move(table, "a", "x/z")
    after = {path: at(table, "x/z" + path[1:]) for path in paths}
    assert after == before
    moved = before["a"]
    assert changes.entries == ((ROOT, "a"), (x.ino, "z"))
    assert changes.deleted == ()
    # The object link now sits one level deeper: its readlink answer changed.
    assert changes.contents == (before["a/s"].ino,)
    assert before["a/s"].version == 1
    assert table.readlink(before["a/s"].ino) == "../../a/e"
    assert set(changes.attrs) == {
        before[p].ino for p in ("a", "a/b/c", "a/b/d", "a/e")
    }  # the marked directories and the files
    assert moved.marker_info == replace(put("x/z/"), revision=7)
    assert before["a/b/d"].marker_info == replace(put("x/z/b/d/"), revision=7)
    assert before["a/b/c"].info == replace(put("x/z/b/c"), revision=7)
    assert before["a/b/c"].version == 0
    assert all(node.lookups == 1 for node in before.values())
    assert (moved.parent, moved.name, table.node(ROOT).nlink, x.nlink) == (x.ino, "z", 3, 3)
    assert tree(table) == {
        "x": Kind.DIR,
        "x/k": Kind.FILE,
        "x/z": Kind.DIR,
        "x/z/b": Kind.DIR,
        "x/z/b/c": Kind.FILE,
        "x/z/b/d": Kind.DIR,
        "x/z/e": Kind.FILE,
        "x/z/s": Kind.SYMLINK,
    }
    assert table.entries() == 8
    # Counts are right below too: emptying the moved tree removes it, markers aside.
    table.apply_many([gone("x/z/b/c"), gone("x/z/e"), gone("x/z/s"), gone("x/z/b/d/")])
    assert tree(table) == {"x": Kind.DIR, "x/k": Kind.FILE, "x/z": Kind.DIR}


def test_move_empties_implicit_source_directories(table: InodeTable) -> None:
    table.apply(put("a/b/f"))
    a, b, f = at(table, "a"), at(table, "a/b"), at(table, "a/b/f")
    changes = move(table, "a/b/f", "g")
    assert changes == Changes(
        entries=((b.ino, "f"), (ROOT, "g"), (a.ino, "b"), (ROOT, "a")),
        deleted=((a.ino, "b", b.ino), (ROOT, "a", a.ino)),
        attrs=(f.ino,),
    )
    assert tree(table) == {"g": Kind.FILE}
    assert table.entries() == 1


def test_move_within_an_ancestor_keeps_it(table: InodeTable) -> None:
    table.apply(put("a/b/f"))
    a, b = at(table, "a"), at(table, "a/b")
    changes = move(table, "a/b/f", "a/g")
    assert changes.deleted == ((a.ino, "b", b.ino),)
    assert at(table, "a") is a
    assert tree(table) == {"a": Kind.DIR, "a/g": Kind.FILE}


def test_move_leaves_a_marked_source_directory(table: InodeTable) -> None:
    table.apply_many([put("a/"), put("a/f")])
    a, f = at(table, "a"), at(table, "a/f")
    changes = move(table, "a/f", "g")
    assert changes == Changes(entries=((a.ino, "f"), (ROOT, "g")), attrs=(f.ino,))
    assert tree(table) == {"a": Kind.DIR, "g": Kind.FILE}
    assert at(table, "a") is a


def test_move_out_of_a_shadowing_directory_shows_the_file_again(table: InodeTable) -> None:
    table.apply_many([put("a", nuid="F"), put("a/f")])
    directory, f = at(table, "a"), at(table, "a/f")
    changes = move(table, "a/f", "g")
    file_ = at(table, "a")
    assert changes == Changes(
        entries=((directory.ino, "f"), (ROOT, "g"), (ROOT, "a")), attrs=(f.ino,)
    )
    assert file_.kind is Kind.FILE
    assert file_.info == put("a", nuid="F")
    assert table.hidden() == {}


def test_move_takes_the_shadowed_object_along(table: InodeTable) -> None:
    table.apply_many([put("s/a", nuid="F"), put("s/a/f"), put("s/keep"), put("t/q", nuid="Q")])
    directory = at(table, "s/a")
    # Across directories, over a file: the shadowed object's new name is the replaced file's.
    changes = move(table, "s/a", "t/q")
    assert changes.hidden == (("t/q", SHADOWED_REASON),)
    assert at(table, "t/q") is directory
    assert directory.shadowed == replace(put("t/q", nuid="F"), revision=7)
    assert table.hidden() == {"t/q": SHADOWED_REASON}
    assert table.node_for_name("s/a") is None
    assert [info.name for info in table.objects_below(at(table, "t").ino)] == ["t/q", "t/q/f"]
    table.apply(gone("t/q/f"))  # the directory goes: its shadowed object shows
    assert at(table, "t/q").info == replace(put("t/q", nuid="F"), revision=7)
    assert table.hidden() == {}
    table.apply(gone("s/keep"))
    assert tree(table) == {"t": Kind.DIR, "t/q": Kind.FILE}


def test_move_onto_itself_is_a_no_op(table: InodeTable) -> None:
    table.apply(put("d/f"))
    d = at(table, "d")
    before = state(table)
    assert table.move(d.ino, "f", d.ino, "f", {}) == Changes()
    assert state(table) == before


def test_move_of_a_symlink_made_in_the_mount_keeps_its_target(table: InodeTable) -> None:
    table.apply(put("d/s", nuid="", **{SYMLINK_KEY: "../t"}))
    s = at(table, "d/s")
    changes = move(table, "d/s", "s")
    assert changes.attrs == (s.ino,)
    assert changes.contents == ()
    assert (table.readlink(s.ino), s.version) == ("../t", 0)


def test_move_refusals_change_nothing(table: InodeTable) -> None:
    table.apply_many([put("a/b/c"), put("a/"), put("f"), put("d/"), put("t/x")])
    a, b, d, f, t = (at(table, p) for p in ("a", "a/b", "d", "f", "t"))
    table.remember(t.ino)
    table.apply(gone("t/x"))  # t is detached, still held
    good = renamed_for(table, a.ino, "z")
    before = state(table)
    refusals: list[tuple[type[Exception], tuple[Inode, str, Inode, str], dict[str, ObjectInfo]]]
    refusals = [
        (KeyError, (Inode(999), "a", ROOT, "z"), good),
        (KeyError, (ROOT, "a", Inode(999), "z"), good),
        (KeyError, (ROOT, "nope", ROOT, "z"), {}),
        (KeyError, (ROOT, "f", t.ino, "g"), renamed_for(table, f.ino, "t/g")),
        (KeyError, (t.ino, "x", ROOT, "g"), {}),
        (NotADirectoryError, (f.ino, "a", ROOT, "z"), good),
        (NotADirectoryError, (ROOT, "a", f.ino, "z"), good),
        (ValueError, (ROOT, "a", ROOT, "d"), renamed_for(table, a.ino, "d")),  # a directory
        (ValueError, (ROOT, "a", a.ino, "z"), renamed_for(table, a.ino, "a/z")),  # into itself
        (ValueError, (ROOT, "a", b.ino, "z"), renamed_for(table, a.ino, "a/b/z")),  # below
        (ValueError, (ROOT, "a", ROOT, "y/z"), renamed_for(table, a.ino, "y/z")),
        (ValueError, (ROOT, "a", ROOT, ".."), good),
        (ValueError, (ROOT, "a", ROOT, ""), good),
        (ValueError, (ROOT, "a", ROOT, "n\x00"), good),
        (ValueError, (ROOT, "a", ROOT, "L" * 256), good),
        (ValueError, (ROOT, "a/b", ROOT, "z"), {}),
        # renamed does not cover exactly the subtree's objects:
        (ValueError, (ROOT, "a", ROOT, "z"), {k: v for k, v in good.items() if k != "a/b/c"}),
        (ValueError, (ROOT, "a", ROOT, "z"), {**good, "f": put("z2")}),
        (ValueError, (ROOT, "a", ROOT, "z"), {**good, "a/b/c": put("z/b/x")}),
        (ValueError, (ROOT, "a", ROOT, "z"), {**good, "a/b/c": gone("z/b/c")}),
        (ValueError, (ROOT, "a", ROOT, "z"), {**good, "a/b/c": link("z/b/c", "f")}),
        (ValueError, (ROOT, "a", ROOT, "z"), renamed_for(table, a.ino, "y")),
        (ValueError, (ROOT, "f", d.ino, "g"), {}),
    ]
    for error, (src_parent, src_name, dst_parent, dst_name), renamed in refusals:
        with pytest.raises(error):
            table.move(src_parent, src_name, dst_parent, dst_name, renamed)
        table.check_invariants()
        assert state(table) == before, (error, src_name, dst_name)
    move(table, "a", "z")  # the good mapping still works
    assert tree(table)["z/b/c"] is Kind.FILE


def test_move_of_a_directory_over_a_file(table: InodeTable) -> None:
    table.apply_many([put("a/f"), put("x")])
    a, x = at(table, "a"), at(table, "x")
    changes = move(table, "a", "x")
    assert changes.deleted == ((ROOT, "x", x.ino),)
    assert at(table, "x") is a
    assert tree(table) == {"x": Kind.DIR, "x/f": Kind.FILE}
    assert table.node(ROOT).nlink == 3


def test_move_keeps_lookup_counts(table: InodeTable) -> None:
    table.apply_many([put("a/b/c"), put("a/d")])
    nodes = [at(table, p) for p in ("a", "a/b", "a/b/c", "a/d")]
    for count, node in enumerate(nodes, start=1):
        for _ in range(count):
            table.remember(node.ino)
    move(table, "a", "z")
    move(table, "z/b/c", "z/c")
    assert [node.lookups for node in nodes] == [1, 2, 3, 4]
    assert table.lookup(at(table, "z").ino, "b") is None  # a/b emptied and went
    assert not nodes[1].attached
    table.forget(nodes[1].ino, 2)
    with pytest.raises(KeyError):
        table.node(nodes[1].ino)
    assert table.node(nodes[2].ino) is nodes[2]


def test_readdir_across_moves_neither_repeats_nor_skips(table: InodeTable) -> None:
    table.apply_many([put(f"d/f{i}") for i in range(10)] + [put("o/x"), put("o/y")])
    d = at(table, "d").ino
    first = list(table.readdir(d, 0))[:4]
    assert [name for _, name, _ in first] == ["f0", "f1", "f2", "f3"]
    resume = first[-1][0]
    f8 = at(table, "d/f8")
    move(table, "d/f1", "o/f1")  # listed already: gone
    move(table, "d/f5", "o/f5")  # not yet listed: gone
    move(table, "d/f6", "d/f8")  # f8 is replaced in place: listed once, at its place
    move(table, "d/f2", "d/f0")  # both listed already
    move(table, "o/x", "d/new")  # arrives: listed at the end
    move(table, "d/f3", "d/f9")  # f9 not yet listed: replaced in place
    assert names(table, d, resume) == ["f4", "f7", "f8", "f9", "new"]
    assert at(table, "d/f8").ino != f8.ino
    assert names(table, d) == ["f0", "f4", "f7", "f8", "f9", "new"]
