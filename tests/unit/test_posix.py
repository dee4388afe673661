"""POSIX attributes in the ``metadata`` map (DESIGN §3).

Rules for these tests:
1. The stored keys and their formats are the documented ones, spelled out here by hand.
2. Reading never raises: every malformed value falls back to the default of its own field only.
3. The type bits come from the object, never from the stored mode.
"""

from __future__ import annotations

import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.meta import ObjectInfo, ObjectLink
from osfs.core.posix import (
    GID_KEY,
    MODE_KEY,
    MTIME_KEY,
    SYMLINK_KEY,
    UID_KEY,
    MountDefaults,
    PosixAttrs,
    attrs_of,
    file_type,
    implicit_dir_attrs,
    is_symlink,
    metadata_with,
    stored_symlink,
)

DEFAULTS = MountDefaults(uid=1000, gid=100)
SERVER_NS = 1_700_000_000_123_456_789


def info(name: str = "a/f", **metadata: str) -> ObjectInfo:
    return ObjectInfo(name=name, bucket="B", nuid="N", mtime_ns=SERVER_NS, metadata=metadata)


def test_keys_are_the_documented_ones() -> None:
    assert (MODE_KEY, UID_KEY, GID_KEY, MTIME_KEY, SYMLINK_KEY) == (
        "osfs.mode",
        "osfs.uid",
        "osfs.gid",
        "osfs.mtime",
        "osfs.symlink",
    )


def test_mount_defaults() -> None:
    assert (DEFAULTS.file_mode, DEFAULTS.dir_mode) == (0o644, 0o755)


def test_foreign_object_gets_defaults_and_the_server_time() -> None:
    assert attrs_of(info(), DEFAULTS) == PosixAttrs(0o100644, 1000, 100, SERVER_NS)


def test_foreign_marker_is_a_directory_with_the_dir_mode() -> None:
    assert attrs_of(info("a/d/"), DEFAULTS) == PosixAttrs(0o40755, 1000, 100, SERVER_NS)


def test_foreign_links_are_symlinks_with_all_permissions() -> None:
    link = ObjectInfo(name="ln", bucket="B", link=ObjectLink("B", "a"), mtime_ns=5)
    assert attrs_of(link, DEFAULTS) == PosixAttrs(0o120777, 1000, 100, 5)
    bucket_link = ObjectInfo(name="ln", bucket="B", link=ObjectLink("C"))
    assert stat.S_ISLNK(attrs_of(bucket_link, DEFAULTS).mode)


def test_stored_attributes_win() -> None:
    stored = info(
        **{MODE_KEY: "100755", UID_KEY: "0", GID_KEY: "4294967294", MTIME_KEY: "-1000000000"}
    )
    assert attrs_of(stored, DEFAULTS) == PosixAttrs(0o100755, 0, 4294967294, -1_000_000_000)


@pytest.mark.parametrize(
    ("stored", "mode"),
    [
        ("100600", 0o100600),
        ("600", 0o100600),  # permission bits alone
        ("0600", 0o100600),
        ("4755", 0o104755),  # setuid survives
        ("40700", 0o100700),  # a directory type on a file object: the object's type wins
        ("120777", 0o100777),
        ("10644", 0o100644),  # a FIFO type: ignored
        ("0", 0o100000),
    ],
)
def test_mode_takes_permission_bits_and_the_objects_type(stored: str, mode: int) -> None:
    assert attrs_of(info(**{MODE_KEY: stored}), DEFAULTS).mode == mode


def test_mode_of_a_marker_and_of_a_symlink_keep_their_type() -> None:
    assert attrs_of(info("d/", **{MODE_KEY: "100700"}), DEFAULTS).mode == 0o40700
    made = info("ln", **{MODE_KEY: "644", SYMLINK_KEY: "t"})
    assert attrs_of(made, DEFAULTS).mode == 0o120644


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (MODE_KEY, ""),
        (MODE_KEY, "rwxr-xr-x"),
        (MODE_KEY, "0o644"),
        (MODE_KEY, "800"),
        (MODE_KEY, "1234567"),  # over 0o177777
        (MODE_KEY, "77777777"),
        (MODE_KEY, " 644"),
        (MODE_KEY, "644\n"),
        (MODE_KEY, "-644"),
        (UID_KEY, "-1"),
        (UID_KEY, "4294967295"),  # (uid_t)-1 means "no change"
        (UID_KEY, "99999999999"),
        (UID_KEY, "1_000"),
        (UID_KEY, "１０００"),  # full-width digits, which int() would take
        (UID_KEY, "1e3"),
        (GID_KEY, "abc"),
        (GID_KEY, ""),
        (MTIME_KEY, "1.5"),
        (MTIME_KEY, "2024-01-01T00:00:00Z"),
        (MTIME_KEY, "9223372036854775808"),  # one past int64
        (MTIME_KEY, "--1"),
        (MTIME_KEY, "9" * 5000),  # beyond int()'s digit limit
    ],
)
def test_malformed_value_falls_back_to_that_fields_default(key: str, value: str) -> None:
    good = {MODE_KEY: "100600", UID_KEY: "7", GID_KEY: "8", MTIME_KEY: "42"}
    expected = PosixAttrs(0o100600, 7, 8, 42)
    defaults = {
        MODE_KEY: {"mode": 0o100644},
        UID_KEY: {"uid": 1000},
        GID_KEY: {"gid": 100},
        MTIME_KEY: {"mtime_ns": SERVER_NS},
    }[key]
    attrs = attrs_of(info(**{**good, key: value}), DEFAULTS)
    assert attrs == PosixAttrs(**{**_fields(expected), **defaults})


def _fields(attrs: PosixAttrs) -> dict[str, int]:
    return {"mode": attrs.mode, "uid": attrs.uid, "gid": attrs.gid, "mtime_ns": attrs.mtime_ns}


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([MODE_KEY, UID_KEY, GID_KEY, MTIME_KEY, SYMLINK_KEY, "other"]),
        st.text(max_size=12),
    ),
    st.sampled_from(["f", "d/", "x/y"]),
)
def test_attrs_of_never_raises(metadata: dict[str, str], name: str) -> None:
    attrs = attrs_of(info(name, **metadata), DEFAULTS)
    assert stat.S_IFMT(attrs.mode) == file_type(info(name, **metadata))
    assert 0 <= attrs.uid < 2**32 - 1
    assert 0 <= attrs.gid < 2**32 - 1


def test_implicit_dir_attrs() -> None:
    assert implicit_dir_attrs(DEFAULTS, mtime_ns=9) == PosixAttrs(0o40755, 1000, 100, 9)
    odd = MountDefaults(uid=1, gid=2, file_mode=0o600, dir_mode=0o100700)
    assert implicit_dir_attrs(odd, mtime_ns=0).mode == 0o40700


def test_metadata_with_writes_every_key_and_keeps_the_rest() -> None:
    attrs = PosixAttrs(0o100640, 1000, 100, -5)
    base = {"color": "blue", MODE_KEY: "100644", SYMLINK_KEY: "keep"}
    assert metadata_with(attrs, base) == {
        "color": "blue",
        MODE_KEY: "100640",
        UID_KEY: "1000",
        GID_KEY: "100",
        MTIME_KEY: "-5",
        SYMLINK_KEY: "keep",
    }
    assert base[MODE_KEY] == "100644"  # the base is not touched


def test_metadata_with_symlink() -> None:
    attrs = PosixAttrs(0o120777, 1, 2, 3)
    metadata = metadata_with(attrs, {}, symlink="../a b/ü")
    assert metadata[SYMLINK_KEY] == "../a b/ü"
    assert metadata[MODE_KEY] == "120777"


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 0o7777),
    st.integers(0, 2**32 - 2),
    st.integers(0, 2**32 - 2),
    st.integers(-(2**63), 2**63 - 1),
)
def test_metadata_round_trips(perms: int, uid: int, gid: int, mtime_ns: int) -> None:
    attrs = PosixAttrs(stat.S_IFREG | perms, uid, gid, mtime_ns)
    stored = ObjectInfo(name="f", bucket="B", metadata=metadata_with(attrs, {"x": "y"}))
    assert attrs_of(stored, MountDefaults(uid=5, gid=5)) == attrs
    assert attrs.permissions == perms


def test_stored_symlink_round_trips_exactly() -> None:
    target = "../../some where/ü/./x//"
    made = info("ln", **{SYMLINK_KEY: target})
    assert stored_symlink(made) == target
    assert is_symlink(made)
    assert file_type(made) == stat.S_IFLNK


@pytest.mark.parametrize("value", ["", "a\x00b"])
def test_invalid_stored_symlink_leaves_a_regular_file(value: str) -> None:
    odd = info("f", **{SYMLINK_KEY: value})
    assert stored_symlink(odd) is None
    assert not is_symlink(odd)
    assert file_type(odd) == stat.S_IFREG


def test_plain_object_is_not_a_symlink() -> None:
    assert stored_symlink(info()) is None
    assert not is_symlink(info())
