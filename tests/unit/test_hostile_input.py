"""Hostile meta documents, from the decoder to what the kernel is told: properties.

The decoder's own properties (tests/unit/test_meta.py) stop at ``decode_meta``, the name
mapping's at ``map_name`` (test_names.py) and the inode table's model test feeds the table benign
documents (test_inodes_model.py). What a hostile document does *between* them was not covered:
a ``"size": 2**63`` decoded fine and then made ``entry_attributes`` raise ``OverflowError`` for
every listing of its directory, and a ``"nuid": ">"`` decoded fine and named the chunks of every
object in the bucket. Rules for these tests:
1. Documents come from a strategy that over-represents what breaks things: integers at and past
   the 64-bit edges, wildcards and separators in tokens, lone surrogates (legal JSON escapes,
   no UTF-8), NUL, hostile names and metadata values.
2. Whatever ``decode_meta`` accepts must go through the inode table and come out as attributes
   the kernel can carry (``off_t``, ``uid_t``, nanosecond times in 64 bits), as text FUSE can
   send (UTF-8), and with a nuid that names exactly one chunk subject.
3. A document it refuses raises ``BadObjectMetaError`` only (the watcher skips those).
"""

from __future__ import annotations

import json
import stat
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.errors import BadObjectMetaError
from osfs.core.inodes import ROOT, InodeTable, Kind, Node
from osfs.core.meta import ObjectInfo, decode_meta
from osfs.core.names import Mapped, map_name
from osfs.core.posix import MountDefaults
from osfs.core.subjects import chunk_subject
from osfs.fs.attributes import entry_attributes

BUCKET = "B"
INT64_MAX = 2**63 - 1
DEFAULTS = MountDefaults(uid=1000, gid=1000, file_mode=0o644, dir_mode=0o755)
STARTED_NS = 1_700_000_000 * 10**9

#: Integers at the edges that matter (off_t, uint32 chunk counts, uint64 sizes) and past them.
counts = st.one_of(
    st.sampled_from([0, 1, 2**31 - 1, 2**32 - 1, 2**32, INT64_MAX, 2**63, 2**64 - 1, 10**30]),
    st.integers(0, 2**70),
)
edge_ints = counts | st.integers(-(2**70), -1)
#: Text that breaks naive code: separators, wildcards, whitespace, NUL, lone surrogates.
nasty_text = st.one_of(
    st.sampled_from(
        ["", ">", "*", "a.b", "a b", "\t", "\x00", "\ud800", "x\udfffy", "é", "🙂", "N" * 300]
    ),
    st.text(alphabet=st.sampled_from("aZ9._-*> \t\x00\ud800é/"), max_size=12),
    st.text(max_size=12),
)
good_names = st.sampled_from(["a", "b", "a/b", "a/c", "a/", "d/e/f.txt", "é/🙂"])
nasty_names = st.one_of(
    good_names,
    good_names,
    st.sampled_from(["../x", "/abs", "a//b", ".", "n\x00", "s\ud800"]),
    nasty_text,
)
json_scalars = st.none() | st.booleans() | edge_ints | nasty_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(nasty_text, inner, max_size=3),
    max_leaves=8,
)


def mostly(right: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values of the right type three times in four, anything JSON otherwise: a document must
    usually decode for the later stages to be reached at all."""
    return st.one_of(right, right, right, json_values)


metadata_values = st.one_of(
    st.sampled_from(
        [
            *("100644", "7777777", "177777", "40755", "-1", "99999999999", "4294967295"),
            *("9223372036854775807", "-9223372036854775808", "9223372036854775808", "１２３"),
        ]
    ),
    nasty_text,
)
metadata = st.dictionaries(
    st.sampled_from(["osfs.mode", "osfs.uid", "osfs.gid", "osfs.mtime", "osfs.symlink", "k"])
    | nasty_text,
    mostly(metadata_values),
    max_size=5,
)
links = st.fixed_dictionaries(
    {"bucket": mostly(st.sampled_from([BUCKET, "other"]) | nasty_text)},
    optional={"name": mostly(nasty_names)},
)
documents = st.fixed_dictionaries(
    {"name": nasty_names},
    optional={
        "bucket": mostly(nasty_text),
        "nuid": mostly(st.sampled_from(["ISxZHH8K92ogsSWsnQg8yc", "N1", "N2"]) | nasty_text),
        "size": mostly(counts),
        "chunks": mostly(counts),
        "digest": mostly(nasty_text),
        "deleted": mostly(st.sampled_from([False, False, True])),
        "description": mostly(nasty_text),
        "headers": mostly(
            st.dictionaries(nasty_text, st.lists(nasty_text, max_size=2), max_size=2)
        ),
        "metadata": mostly(metadata),
        "options": mostly(
            st.fixed_dictionaries({}, optional={"link": mostly(links), "max_chunk_size": counts})
        ),
        "mtime": nasty_text | edge_ints,
    },
)
server_times = st.integers(0, INT64_MAX)


def _decoded(doc: dict[str, Any], mtime_ns: int) -> ObjectInfo | None:
    """The document as the watcher decodes it, or None when it is skipped (rule 3)."""
    payload = json.dumps(doc).encode()  # lone surrogates become \\uXXXX escapes, as in JSON
    try:
        return decode_meta(payload, bucket=BUCKET, mtime_ns=mtime_ns, revision=7)
    except BadObjectMetaError:
        return None


def _nodes(table: InodeTable) -> list[Node]:
    """Every node reachable from the root, through ``readdir`` as the kernel walks it."""
    found: list[Node] = []
    pending = [ROOT]
    while pending:
        ino = pending.pop()
        for _, name, node in table.readdir(ino, 0):
            name.encode("utf-8")  # readdir sends it
            found.append(node)
            if node.kind is Kind.DIR:
                pending.append(node.ino)
    return found


def _check_attributes(table: InodeTable, node: Node) -> None:
    """The attributes of ``node`` are made without an error and fit the kernel's types."""
    target = table.readlink(node.ino) if node.kind is Kind.SYMLINK else ""
    raw = target.encode("utf-8")
    assert b"\x00" not in raw
    attrs = entry_attributes(node, DEFAULTS, started_ns=STARTED_NS, link_target=target)
    assert 0 <= attrs.st_size <= INT64_MAX
    assert 0 <= attrs.st_blocks <= INT64_MAX
    assert 0 <= attrs.st_uid < 2**32
    assert 0 <= attrs.st_gid < 2**32
    expected = {Kind.FILE: stat.S_IFREG, Kind.DIR: stat.S_IFDIR, Kind.SYMLINK: stat.S_IFLNK}
    assert stat.S_IFMT(attrs.st_mode) == expected[node.kind]
    for ns in (attrs.st_mtime_ns, attrs.st_atime_ns, attrs.st_ctime_ns):
        assert -(2**63) <= ns <= INT64_MAX


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(documents, server_times), min_size=1, max_size=6))
def test_every_document_the_decoder_accepts_can_be_shown(
    docs: list[tuple[dict[str, Any], int]],
) -> None:
    """Rule 2: decoded documents, applied in order as the watcher applies them, leave a table
    whose every entry has attributes the kernel can hold."""
    table = InodeTable()
    for doc, mtime_ns in docs:
        info = _decoded(doc, mtime_ns)
        if info is not None:
            table.apply(info)
    for node in _nodes(table):
        _check_attributes(table, node)


@settings(max_examples=400, deadline=None)
@given(documents, server_times)
def test_a_decoded_document_is_text_fuse_and_nats_can_carry(
    doc: dict[str, Any], mtime_ns: int
) -> None:
    """Rule 2: every text field but the name is UTF-8 (xattrs send them); the name is UTF-8
    or hidden; the nuid is empty or names exactly one chunk subject, never a wildcard."""
    info = _decoded(doc, mtime_ns)
    if info is None:
        return
    for text in (info.bucket, info.nuid, info.digest, info.description):
        text.encode("utf-8")
    for key, values in info.headers.items():
        key.encode("utf-8")
        for value in values:
            value.encode("utf-8")
    for key, value in info.metadata.items():
        (key + value).encode("utf-8")
    if isinstance(map_name(info.name), Mapped):
        info.name.encode("utf-8")
    if info.nuid:
        tokens = chunk_subject(BUCKET, info.nuid).split(".")
        assert len(tokens) == 4
        assert tokens[3] == info.nuid
        assert tokens[3] not in ("*", ">")
        assert not any(char.isspace() or ord(char) < 0x20 for char in info.nuid)
    assert 0 <= info.mtime_ns <= INT64_MAX  # the server's time, never the document's


@settings(max_examples=200, deadline=None)
@given(nasty_text)
def test_a_nuid_that_is_no_subject_token_is_refused(nuid: str) -> None:
    """Rule 2, from the other side: a nuid is refused exactly when it is not one literal
    subject token (or is longer than any client writes)."""
    doc = {"name": "x", "nuid": nuid, "size": 1, "chunks": 1}
    info = _decoded(doc, 0)
    plain = (
        len(nuid) <= 256
        and all(char not in ".*>" and not char.isspace() for char in nuid)
        and all(ord(char) >= 0x20 and ord(char) != 0x7F for char in nuid)
        and not any(0xD800 <= ord(char) <= 0xDFFF for char in nuid)
    )
    if info is None:
        assert not plain, f"{nuid!r} was refused"
    else:
        assert plain or nuid == "", f"{nuid!r} was accepted"
        assert info.nuid == nuid
