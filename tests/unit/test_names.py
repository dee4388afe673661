"""Object names <-> paths, and where links point (DESIGN §3).

Rules for these tests:
1. Every hostile name a client can write is listed by hand with the reason it is hidden; none
   may raise, and none may produce a path component the kernel would treat specially.
2. Mappable names round-trip exactly (property-based, with ``/`` and ``.`` over-represented).
3. Symlink targets are checked by resolving them the way the kernel would, from the link's
   directory in a tree of side-by-side bucket mounts.
"""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.errors import InvalidObjectNameError
from osfs.core.meta import ObjectLink
from osfs.core.names import (
    MAX_COMPONENT_BYTES,
    REASON_DOT,
    REASON_EMPTY,
    REASON_EMPTY_COMPONENT,
    REASON_NOT_UTF8,
    REASON_NUL,
    REASON_ROOT,
    REASON_TOO_LONG,
    Hidden,
    Mapped,
    component_from_fuse,
    component_to_fuse,
    map_name,
    object_name,
    symlink_target,
)


@pytest.mark.parametrize(
    ("name", "parts", "is_marker"),
    [
        ("a", ("a",), False),
        ("a/b/c.txt", ("a", "b", "c.txt"), False),
        ("a/", ("a",), True),
        ("a/b/", ("a", "b"), True),
        ("...", ("...",), False),
        ("a/.hidden/..x", ("a", ".hidden", "..x"), False),
        (" a /\tb", (" a ", "\tb"), False),
        ("naïve/日本語/😀.txt", ("naïve", "日本語", "😀.txt"), False),
        ("a\\b", ("a\\b",), False),
        ("x" * 255, ("x" * 255,), False),
        ("é" * 127 + "x", ("é" * 127 + "x",), False),  # exactly 255 bytes
        ("d/" + "😀" * 63 + "abc", ("d", "😀" * 63 + "abc"), False),  # 255 bytes
        ("a" * 200 + "/" + "b" * 200, ("a" * 200, "b" * 200), False),  # long name, short parts
    ],
)
def test_map_name_mappable(name: str, parts: tuple[str, ...], is_marker: bool) -> None:
    assert map_name(name) == Mapped(parts, is_marker)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", REASON_EMPTY),
        ("/", REASON_ROOT),
        ("//", REASON_EMPTY_COMPONENT),
        ("/abs", REASON_EMPTY_COMPONENT),
        ("a//b", REASON_EMPTY_COMPONENT),
        ("a/b//", REASON_EMPTY_COMPONENT),
        ("a/b/ /", None),  # a blank component is a real name: mapped, see below
        (".", REASON_DOT),
        ("..", REASON_DOT),
        ("./", REASON_DOT),
        ("../", REASON_DOT),
        ("../x", REASON_DOT),
        ("a/../../etc/passwd", REASON_DOT),
        ("a/./b", REASON_DOT),
        ("a/b/.", REASON_DOT),
        ("a/b/..", REASON_DOT),
        ("a\x00b", REASON_NUL),
        ("\x00", REASON_NUL),
        ("a/\x00/", REASON_NUL),
        ("x" * 256, REASON_TOO_LONG),
        ("a/" + "x" * 300 + "/b", REASON_TOO_LONG),
        ("é" * 128, REASON_TOO_LONG),  # 128 characters, 256 bytes
        ("d/" + "😀" * 64, REASON_TOO_LONG),  # 64 characters, 256 bytes
        ("bad\udc80surrogate", REASON_NOT_UTF8),
        ("\ud800", REASON_NOT_UTF8),
    ],
)
def test_map_name_hides_names_that_cannot_be_paths(name: str, reason: str | None) -> None:
    mapped = map_name(name)
    if reason is None:
        assert isinstance(mapped, Mapped)
    else:
        assert mapped == Hidden(name, reason)


def test_hidden_reasons_are_short_human_strings() -> None:
    reasons = {
        REASON_DOT,
        REASON_EMPTY,
        REASON_EMPTY_COMPONENT,
        REASON_NOT_UTF8,
        REASON_NUL,
        REASON_ROOT,
        REASON_TOO_LONG,
    }
    assert len(reasons) == 7
    assert all(0 < len(reason) <= 60 and reason.isprintable() for reason in reasons)


@pytest.mark.parametrize(
    ("parts", "is_dir", "name"),
    [
        (("a",), False, "a"),
        (("a", "b", "c.txt"), False, "a/b/c.txt"),
        (("a", "b"), True, "a/b/"),
        (["x", "y"], False, "x/y"),
    ],
)
def test_object_name(parts: tuple[str, ...], is_dir: bool, name: str) -> None:
    assert object_name(parts, is_dir=is_dir) == name


def test_object_name_of_the_root_is_an_error() -> None:
    with pytest.raises(ValueError):
        object_name(())


# Components over-representing the characters that matter: separators, dots, NUL, long runs.
_component = st.one_of(
    st.sampled_from(["", ".", "..", "...", "a", "b", " ", "\x00", "é" * 128, "x" * 255]),
    st.text(min_size=1, max_size=8),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
)
_names = st.one_of(
    st.lists(_component, min_size=1, max_size=5).map("/".join),
    st.text(alphabet=st.sampled_from("ab./\x00é"), max_size=12),
    st.text(max_size=30),
)


@settings(max_examples=400, deadline=None)
@given(_names)
def test_map_name_round_trips_mappable_names(name: str) -> None:
    mapped = map_name(name)
    if isinstance(mapped, Hidden):
        assert mapped.name == name
        assert mapped.reason
        return
    assert object_name(mapped.parts, is_dir=mapped.is_dir_marker) == name
    for part in mapped.parts:
        assert part not in ("", ".", "..")
        assert "/" not in part
        assert "\x00" not in part
        assert len(part.encode("utf-8")) <= MAX_COMPONENT_BYTES


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, categories=None), max_size=40))
def test_map_name_never_raises(name: str) -> None:
    assert isinstance(map_name(name), Mapped | Hidden)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(exclude_characters="/"), min_size=1, max_size=20),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_object_name_inverts_map_name(parts: list[str], is_dir: bool) -> None:
    name = object_name(parts, is_dir=is_dir)
    mapped = map_name(name)
    if isinstance(mapped, Mapped):
        assert mapped == Mapped(tuple(parts), is_dir)


@pytest.mark.parametrize(
    ("raw", "part"),
    [(b"a", "a"), (b"...", "..."), ("日本".encode(), "日本"), (b"x" * 255, "x" * 255)],
)
def test_component_from_fuse(raw: bytes, part: str) -> None:
    assert component_from_fuse(raw) == part
    assert component_to_fuse(part) == raw


@pytest.mark.parametrize(
    "raw", [b"", b".", b"..", b"a/b", b"a\x00", b"\xff\xfe", b"x" * 256, "é".encode() * 128]
)
def test_component_from_fuse_rejects_what_cannot_be_a_name(raw: bytes) -> None:
    with pytest.raises(InvalidObjectNameError):
        component_from_fuse(raw)


# --------------------------------------------------------------------------------- symlinks


def resolve(bucket: str, link_parts: tuple[str, ...], target: str) -> str:
    """Where the kernel ends up following ``target`` from a link in ``/mnt/<bucket>``."""
    link_dir = posixpath.join("/mnt", bucket, *link_parts[:-1])
    return posixpath.normpath(posixpath.join(link_dir, target))


@pytest.mark.parametrize(
    ("link_parts", "target_name", "expected"),
    [
        (("x", "y", "ln"), "a/b", "../../a/b"),
        (("x", "y", "ln"), "x/y/b", "b"),
        (("x", "y", "ln"), "x/b", "../b"),
        (("x", "y", "ln"), "x/y/z/b", "z/b"),
        (("x", "y", "ln"), "x", "../../x"),  # an ancestor: still ends in its name
        (("x", "y", "ln"), "x/y", "../y"),
        (("ln",), "a/b", "a/b"),
        (("ln",), "b", "b"),
        (("x", "ln"), "y", "../y"),
        (("x", "ln"), "x/ln", "ln"),  # a link to itself resolves to itself
    ],
)
def test_symlink_target_same_bucket(
    link_parts: tuple[str, ...], target_name: str, expected: str
) -> None:
    target = symlink_target(link_parts, ObjectLink("B", target_name), bucket="B")
    assert target == expected
    assert resolve("B", link_parts, target) == f"/mnt/B/{target_name}"


@pytest.mark.parametrize(
    ("link_parts", "expected"),
    [
        (("ln",), "../C/a/b"),
        (("x", "ln"), "../../C/a/b"),
        (("x", "y", "ln"), "../../../C/a/b"),
    ],
)
def test_symlink_target_other_bucket_climbs_to_a_sibling_mount(
    link_parts: tuple[str, ...], expected: str
) -> None:
    target = symlink_target(link_parts, ObjectLink("C", "a/b"), bucket="B")
    assert target == expected
    assert resolve("B", link_parts, target) == "/mnt/C/a/b"


@pytest.mark.parametrize(
    ("link_parts", "link_bucket", "expected"),
    [
        (("ln",), "C", "../C"),
        (("x", "y", "ln"), "C", "../../../C"),
        (("x", "ln"), "B", "../../B"),  # a bucket link to its own bucket: the mount itself
    ],
)
def test_symlink_target_bucket_link(
    link_parts: tuple[str, ...], link_bucket: str, expected: str
) -> None:
    target = symlink_target(link_parts, ObjectLink(link_bucket), bucket="B")
    assert target == expected
    assert resolve("B", link_parts, target) == f"/mnt/{link_bucket}"


@pytest.mark.parametrize(
    ("target_name", "expected"),
    [
        ("../../etc/passwd", "../../../etc/passwd"),  # relative string, no escape attempt made
        ("a//b", "../a//b"),
        ("dir/", "../dir/"),
        ("a\x00b", "../a\ufffdb"),
        ("a\udc80", "../a\ufffd"),
    ],
)
def test_symlink_target_to_a_hidden_name_is_still_a_string(target_name: str, expected: str) -> None:
    target = symlink_target(("x", "ln"), ObjectLink("B", target_name), bucket="B")
    assert target == expected
    target.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4),
)
def test_symlink_target_resolves_to_the_target(link: list[str], target: list[str]) -> None:
    name = "/".join(target)
    answer = symlink_target(link, ObjectLink("B", name), bucket="B")
    assert not answer.startswith("/")
    assert resolve("B", tuple(link), answer) == f"/mnt/B/{name}"
    assert answer.endswith(target[-1])
