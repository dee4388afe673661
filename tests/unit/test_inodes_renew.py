"""Renewal (``InodeTable`` rule 3): a file changed elsewhere in size or mtime becomes a new
inode in the same entry, because the kernel's writeback cache keeps its own size and mtime of
an inode it knows."""

from __future__ import annotations

from osfs.core.inodes import ROOT, InodeTable, Kind
from osfs.core.meta import ObjectInfo
from osfs.core.posix import MODE_KEY, MTIME_KEY, SYMLINK_KEY


def info(
    name: str, nuid: str = "N1", size: int = 5, metadata: dict[str, str] | None = None
) -> ObjectInfo:
    return ObjectInfo(name=name, bucket="B", nuid=nuid, size=size, metadata=metadata or {})


def always(_: ObjectInfo) -> bool:
    return True


def never(_: ObjectInfo) -> bool:
    return False


def test_a_new_size_elsewhere_is_a_new_inode_in_the_same_entry() -> None:
    table = InodeTable()
    table.apply(info("d/f"))
    old = table.node_for_name("d/f")
    assert old is not None
    table.remember(old.ino)  # the kernel holds it (an open handle)
    parent = old.parent
    changes = table.apply_many([info("d/f", nuid="N2", size=9)], renew=always)
    new = table.node_for_name("d/f")
    assert new is not None
    assert new.ino != old.ino
    assert new.kind is Kind.FILE
    assert new.entry_id == old.entry_id  # readdir offsets stay put
    assert not old.attached
    assert table.node(old.ino) is old  # kept for the kernel's reference
    assert old.info is not None
    assert old.info.size == 5  # the version the open handle reads
    assert parent is not None
    assert (parent, "f") in changes.entries
    table.check_invariants()


def test_a_new_mtime_alone_is_a_new_inode_too() -> None:
    table = InodeTable()
    table.apply(info("f", metadata={MTIME_KEY: "100"}))
    old = table.node_for_name("f")
    table.apply_many([info("f", metadata={MTIME_KEY: "200"})], renew=always)
    assert table.node_for_name("f") is not old


def test_a_server_timestamp_counts_when_no_mtime_is_stored() -> None:
    table = InodeTable()
    table.apply(ObjectInfo(name="f", bucket="B", nuid="N1", size=5, mtime_ns=1))
    old = table.node_for_name("f")
    table.apply_many(
        [ObjectInfo(name="f", bucket="B", nuid="N1", size=5, mtime_ns=2)], renew=always
    )
    assert table.node_for_name("f") is not old


def test_same_size_and_mtime_keeps_the_inode_and_invalidates_its_data() -> None:
    table = InodeTable()
    table.apply(info("f", metadata={MTIME_KEY: "100"}))
    old = table.node_for_name("f")
    assert old is not None
    changes = table.apply_many([info("f", nuid="N2", metadata={MTIME_KEY: "100"})], renew=always)
    assert table.node_for_name("f") is old
    assert changes.contents == (old.ino,)


def test_a_mode_change_keeps_the_inode() -> None:
    table = InodeTable()
    table.apply(info("f", metadata={MTIME_KEY: "100", MODE_KEY: "100644"}))
    old = table.node_for_name("f")
    assert old is not None
    changes = table.apply_many(
        [info("f", metadata={MTIME_KEY: "100", MODE_KEY: "100600"})], renew=always
    )
    assert table.node_for_name("f") is old
    assert changes.attrs == (old.ino,)


def test_no_renewal_without_renew_or_when_it_declines() -> None:
    """The mount's own changes (and documents it claims as its own) keep the inode."""
    for renew in (None, never):
        table = InodeTable()
        table.apply(info("f"))
        old = table.node_for_name("f")
        table.apply_many([info("f", nuid="N2", size=9)], renew=renew)
        assert table.node_for_name("f") is old


def test_symlinks_and_directories_are_never_renewed() -> None:
    table = InodeTable()
    table.apply(info("l", nuid="", size=0, metadata={SYMLINK_KEY: "a"}))
    table.apply(info("d/", nuid="", size=0, metadata={MTIME_KEY: "1"}))
    link, directory = table.node_for_name("l"), table.node_for_name("d/")
    table.apply_many(
        [
            info("l", nuid="", size=0, metadata={SYMLINK_KEY: "b", MTIME_KEY: "5"}),
            info("d/", nuid="", size=0, metadata={MTIME_KEY: "2"}),
        ],
        renew=always,
    )
    assert table.node_for_name("l") is link
    assert table.node_for_name("d/") is directory
    assert table.lookup(ROOT, "l") is link
