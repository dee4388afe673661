"""The meta document: byte-exact nats.go encoding and lenient decoding (wire.md §3, §9, §15).

Rules for these tests:
1. Every sample document is copied from wire.md, where it was captured from a real client.
2. Expected byte strings are written by hand from Go's ``encoding/json`` rules (struct field
   order, ``omitempty``, sorted map keys, HTML escaping), never produced by the code under test.
3. Decoding must fail only with :class:`BadObjectMetaError`, whatever the input.
"""

from __future__ import annotations

import calendar
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.errors import BadObjectMetaError
from osfs.core.meta import (
    DEFAULT_CHUNK_SIZE,
    ObjectInfo,
    ObjectLink,
    ObjectMeta,
    decode_meta,
    encode_meta,
    go_json,
)
from osfs.core.timefmt import GO_ZERO_TIME, parse_rfc3339_ns

GO_ZERO_NS = parse_rfc3339_ns(GO_ZERO_TIME)
MAX_NS = parse_rfc3339_ns("9999-12-31T23:59:59.999999999Z")
DIGEST = "SHA-256=cjmTYdpqd1T-yYbcpbfLrxyBCije1KuvVrIQbQbLeLA="


def utc_ns(year: int, month: int, day: int, h: int, m: int, s: int, nanos: int = 0) -> int:
    """Nanoseconds since the epoch, computed without the module under test."""
    return calendar.timegm((year, month, day, h, m, s, 0, 0, 0)) * 1_000_000_000 + nanos


# --- samples from wire.md ---------------------------------------------------------------

GO_PUT = (
    '{"name":"dir/é.txt","description":"d","headers":{"X-A":["1"]},'
    '"options":{"max_chunk_size":4},"bucket":"GOB","nuid":"ISxZHH8K92ogsSWsnQg8yc",'
    '"size":10,"mtime":"0001-01-01T00:00:00Z","chunks":3,'
    '"digest":"SHA-256=cjmTYdpqd1T-yYbcpbfLrxyBCije1KuvVrIQbQbLeLA="}'
).encode()
GO_DELETE = (
    b'{"name":"empty","options":{"max_chunk_size":131072},"bucket":"GOB",'
    b'"nuid":"ISxZHH8K92ogsSWsnQg8zu","size":0,"mtime":"0001-01-01T00:00:00Z",'
    b'"chunks":0,"deleted":true}'
)
GO_LINK = (
    b'{"name":"lnk","options":{"link":{"bucket":"GOB","name":"second"}},"bucket":"GOB",'
    b'"nuid":"ISxZHH8K92ogsSWsnQg92U","size":0,"mtime":"0001-01-01T00:00:00Z","chunks":0}'
)
PY_PUT = (
    b'{"name": "dir/\\u00e9.txt", "bucket": "PYB", "nuid": "ygiEScPx71i12hx8gXD3TB", '
    b'"size": 10, "mtime": "2026-11-23T08:52:38.404342+00:00", "chunks": 3, '
    b'"digest": "SHA-256=cjmTYdpqd1T-yYbcpbfLrxyBCije1KuvVrIQbQbLeLA=", "deleted": false, '
    b'"description": "d", "headers": {"X-A": ["1"]}, "options": {"max_chunk_size": 4}}'
)
JS_PUT = (
    b'{"bucket":"JSB","nuid":"Ktq1UK5uj6Z5oEmRtCX0gT","size":10,"chunks":3,'
    b'"name":"dir/x.txt","description":"d","options":{"max_chunk_size":4},'
    b'"metadata":{"k":"v"},"headers":{"X-A":["1"]},"mtime":"2026-11-23T08:52:45.799Z",'
    b'"digest":"SHA-256=cjmTYdpqd1T-yYbcpbfLrxyBCije1KuvVrIQbQbLeLA=","deleted":false}'
)
# nats.js link(name, info): no nuid, size, chunks, digest or mtime; bucket is the target's (§9).
JS_LINK = b'{"name":"lnk","bucket":"JSB","options":{"link":{"bucket":"JSB","name":"dir/x.txt"}}}'
# nats.py delete(): "mtime": "" and "digest": "" (§3.2, §7), metadata dropped.
PY_DELETE = (
    b'{"name": "dir/\\u00e9.txt", "bucket": "PYB", "nuid": "ygiEScPx71i12hx8gXD3TB", '
    b'"size": 0, "mtime": "", "chunks": 0, "digest": "", "deleted": true, '
    b'"description": "d", "headers": {"X-A": ["1"]}, "options": {"max_chunk_size": 4}}'
)
# nats.js delete(): keeps the stored mtime, "digest": "", leaks "revision" (§3.5).
JS_DELETE = (
    b'{"bucket":"JSB","nuid":"Ktq1UK5uj6Z5oEmRtCX0gT","size":0,"chunks":0,'
    b'"name":"dir/x.txt","description":"d","options":{"max_chunk_size":4},'
    b'"metadata":{"k":"v"},"headers":{"X-A":["1"]},"mtime":"2026-11-23T08:52:45.799Z",'
    b'"digest":"","deleted":true,"revision":7}'
)

GO_PUT_INFO = ObjectInfo(
    name="dir/é.txt",
    bucket="GOB",
    nuid="ISxZHH8K92ogsSWsnQg8yc",
    size=10,
    chunks=3,
    digest=DIGEST,
    description="d",
    headers={"X-A": ("1",)},
    max_chunk_size=4,
    mtime_ns=GO_ZERO_NS,
)


# --- encoding -----------------------------------------------------------------------------


def test_encode_go_put_sample_byte_for_byte() -> None:
    assert encode_meta(GO_PUT_INFO) == GO_PUT


def test_encode_go_delete_marker_byte_for_byte() -> None:
    info = ObjectInfo(
        name="empty",
        bucket="GOB",
        nuid="ISxZHH8K92ogsSWsnQg8zu",
        deleted=True,
        max_chunk_size=131072,
        mtime_ns=GO_ZERO_NS,
    )
    assert encode_meta(info) == GO_DELETE


def test_encode_go_link_byte_for_byte() -> None:
    info = ObjectInfo(
        name="lnk",
        bucket="GOB",
        nuid="ISxZHH8K92ogsSWsnQg92U",
        link=ObjectLink(bucket="GOB", name="second"),
        mtime_ns=GO_ZERO_NS,
    )
    assert encode_meta(info) == GO_LINK


def test_encode_bucket_link_omits_the_link_name() -> None:
    info = ObjectInfo(
        name="bl", bucket="GOB", nuid="N", link=ObjectLink(bucket="OTHER"), mtime_ns=GO_ZERO_NS
    )
    assert encode_meta(info) == (
        b'{"name":"bl","options":{"link":{"bucket":"OTHER"}},"bucket":"GOB","nuid":"N",'
        b'"size":0,"mtime":"0001-01-01T00:00:00Z","chunks":0}'
    )


def test_encode_minimal_document_keeps_only_the_never_omitted_keys() -> None:
    assert encode_meta(ObjectInfo(name="x", bucket="B")) == (
        b'{"name":"x","bucket":"B","nuid":"","size":0,"mtime":"1970-01-01T00:00:00Z","chunks":0}'
    )


def test_encode_every_field_in_go_struct_order() -> None:
    info = ObjectInfo(
        name="n",
        bucket="B",
        nuid="U",
        size=5,
        chunks=2,
        digest="SHA-256=x",
        deleted=True,
        description="d",
        headers={"H": ("v",)},
        metadata={"k": "v"},
        link=ObjectLink(bucket="T", name="t"),
        max_chunk_size=4,
        mtime_ns=utc_ns(2026, 11, 23, 8, 53, 44, 88_400_057),
        revision=99,  # not part of the document
    )
    assert encode_meta(info) == (
        b'{"name":"n","description":"d","headers":{"H":["v"]},"metadata":{"k":"v"},'
        b'"options":{"link":{"bucket":"T","name":"t"},"max_chunk_size":4},"bucket":"B",'
        b'"nuid":"U","size":5,"mtime":"2026-11-23T08:53:44.088400057Z","chunks":2,'
        b'"digest":"SHA-256=x","deleted":true}'
    )


def test_encode_sorts_header_and_metadata_keys_like_go_maps() -> None:
    info = ObjectInfo(
        name="n",
        bucket="B",
        headers={"X-B": ("2",), "X-A": ("1", "3")},
        metadata={"z": "1", "é": "4", "a": "2", "B": "3"},
    )
    raw = encode_meta(info)
    assert b'"headers":{"X-A":["1","3"],"X-B":["2"]}' in raw
    # Byte order: uppercase before lowercase, multi-byte UTF-8 after ASCII.
    assert '"metadata":{"B":"3","a":"2","z":"1","é":"4"}'.encode() in raw


def test_encode_escapes_html_characters_like_go() -> None:
    info = ObjectInfo(
        name="a<b>&c\u2028d\u2029e",
        bucket="B",
        description="<&>",
        headers={"<k>": ("&",)},
        metadata={"&": "\u2028"},
    )
    raw = encode_meta(info)
    assert raw.startswith(
        b'{"name":"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029e","description":"\\u003c\\u0026\\u003e",'
        b'"headers":{"\\u003ck\\u003e":["\\u0026"]},"metadata":{"\\u0026":"\\u2028"},'
    )
    for char in ("<", ">", "&", "\u2028", "\u2029"):
        assert char.encode() not in raw


def test_encode_writes_non_ascii_as_raw_utf8() -> None:
    raw = encode_meta(ObjectInfo(name="日本/é🙂", bucket="B", description="ü"))
    assert raw.startswith('{"name":"日本/é🙂","description":"ü",'.encode())
    assert b"\\u" not in raw


def test_encode_escapes_quotes_backslashes_and_control_characters() -> None:
    raw = encode_meta(ObjectInfo(name='q"b\\n\nt\tr\rc\x01', bucket="B"))
    assert raw.startswith(b'{"name":"q\\"b\\\\n\\nt\\tr\\rc\\u0001",')


def test_go_json_is_compact_and_rejects_nan() -> None:
    assert go_json({"a": [1, "<"], "b": None}) == b'{"a":[1,"\\u003c"],"b":null}'
    with pytest.raises(ValueError):
        go_json({"a": float("nan")})


def test_default_chunk_size_is_128_kib() -> None:
    assert DEFAULT_CHUNK_SIZE == 131072


# --- decoding the samples -----------------------------------------------------------------


def test_decode_go_put_with_server_time() -> None:
    stamp = utc_ns(2026, 11, 23, 8, 53, 44, 88_400_057)
    info = decode_meta(GO_PUT, bucket="GOB", mtime_ns=stamp, revision=4)
    assert info == ObjectInfo(
        name="dir/é.txt",
        bucket="GOB",
        nuid="ISxZHH8K92ogsSWsnQg8yc",
        size=10,
        chunks=3,
        digest=DIGEST,
        description="d",
        headers={"X-A": ("1",)},
        max_chunk_size=4,
        mtime_ns=stamp,
        revision=4,
    )
    assert not info.is_link
    assert not info.deleted


def test_decode_without_server_time_falls_back_to_the_document() -> None:
    assert decode_meta(GO_PUT, bucket="GOB").mtime_ns == GO_ZERO_NS
    assert decode_meta(GO_PUT, bucket="GOB") == GO_PUT_INFO


def test_server_time_wins_over_the_document() -> None:
    assert decode_meta(JS_PUT, bucket="JSB", mtime_ns=42).mtime_ns == 42
    assert decode_meta(JS_PUT, bucket="JSB", mtime_ns=0).mtime_ns == 0


def test_decode_go_delete_marker() -> None:
    info = decode_meta(GO_DELETE, bucket="GOB", revision=9)
    assert info == ObjectInfo(
        name="empty",
        bucket="GOB",
        nuid="ISxZHH8K92ogsSWsnQg8zu",
        deleted=True,
        max_chunk_size=131072,
        mtime_ns=GO_ZERO_NS,
        revision=9,
    )


def test_decode_go_link() -> None:
    info = decode_meta(GO_LINK, bucket="GOB")
    assert info.link == ObjectLink(bucket="GOB", name="second")
    assert info.is_link
    assert info.link is not None
    assert not info.link.is_bucket_link
    assert info.nuid == "ISxZHH8K92ogsSWsnQg92U"
    assert (info.size, info.chunks, info.digest) == (0, 0, "")


def test_decode_python_put_with_spaces_and_ascii_escapes() -> None:
    info = decode_meta(PY_PUT, bucket="PYB")
    assert info == ObjectInfo(
        name="dir/é.txt",
        bucket="PYB",
        nuid="ygiEScPx71i12hx8gXD3TB",
        size=10,
        chunks=3,
        digest=DIGEST,
        description="d",
        headers={"X-A": ("1",)},
        max_chunk_size=4,
        mtime_ns=utc_ns(2026, 11, 23, 8, 52, 38, 404_342_000),
    )


def test_decode_js_put_with_deleted_false_and_metadata() -> None:
    info = decode_meta(JS_PUT, bucket="JSB")
    assert info == ObjectInfo(
        name="dir/x.txt",
        bucket="JSB",
        nuid="Ktq1UK5uj6Z5oEmRtCX0gT",
        size=10,
        chunks=3,
        digest=DIGEST,
        description="d",
        headers={"X-A": ("1",)},
        metadata={"k": "v"},
        max_chunk_size=4,
        mtime_ns=utc_ns(2026, 11, 23, 8, 52, 45, 799_000_000),
    )


def test_decode_js_link_without_nuid_size_or_chunks() -> None:
    info = decode_meta(JS_LINK, bucket="OTHER")
    assert info == ObjectInfo(
        name="lnk", bucket="JSB", link=ObjectLink(bucket="JSB", name="dir/x.txt")
    )


def test_decode_python_delete_marker_with_empty_mtime_and_digest() -> None:
    info = decode_meta(PY_DELETE, bucket="PYB")
    assert info.deleted
    assert info.mtime_ns == 0
    assert info.digest == ""
    assert info.name == "dir/é.txt"
    assert (info.size, info.chunks) == (0, 0)


def test_decode_js_delete_with_extra_revision_key() -> None:
    info = decode_meta(JS_DELETE, bucket="JSB", revision=12)
    assert info.deleted
    assert info.digest == ""
    assert info.revision == 12  # the stream sequence, not the leaked JSON value
    assert info.metadata == {"k": "v"}


def test_document_bucket_wins_and_the_argument_fills_a_missing_one() -> None:
    assert decode_meta(GO_PUT, bucket="ELSEWHERE").bucket == "GOB"
    assert decode_meta(b'{"name":"x"}', bucket="HERE").bucket == "HERE"
    assert decode_meta(b'{"name":"x","bucket":""}', bucket="HERE").bucket == "HERE"


def test_headers_given_as_a_bare_string_are_accepted() -> None:
    info = decode_meta(b'{"name":"x","headers":{"X-A":"1","X-B":["2","3"]}}', bucket="B")
    assert info.headers == {"X-A": ("1",), "X-B": ("2", "3")}


def test_bucket_link_decodes_with_empty_link_name() -> None:
    info = decode_meta(b'{"name":"x","nuid":"n","options":{"link":{"bucket":"O"}}}', bucket="B")
    assert info.link == ObjectLink(bucket="O")
    assert info.link is not None
    assert info.link.is_bucket_link


def test_null_fields_read_as_absent() -> None:
    doc = (
        b'{"name":"x","description":null,"headers":null,"metadata":null,"options":null,'
        b'"nuid":null,"size":null,"chunks":null,"digest":null,"deleted":null,"mtime":null}'
    )
    assert decode_meta(doc, bucket="B") == ObjectInfo(name="x", bucket="B")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b'["name"]',
        b'"x"',
        b"null",
        b"42",
        b"{}",
        b'{"name":""}',
        b'{"name":null}',
        b'{"name":5}',
        b'{"name":["x"]}',
        b'{"name":"x","size":"10"}',
        b'{"name":"x","size":-1}',
        b'{"name":"x","size":true}',
        b'{"name":"x","size":1.5}',
        b'{"name":"x","size":NaN}',
        b'{"name":"x","size":Infinity}',
        b'{"name":"x","size":-Infinity}',
        b'{"name":"x","chunks":-3}',
        b'{"name":"x","chunks":false}',
        b'{"name":"x","nuid":5}',
        b'{"name":"x","bucket":["B"]}',
        b'{"name":"x","digest":32}',
        b'{"name":"x","description":{}}',
        b'{"name":"x","deleted":"yes"}',
        b'{"name":"x","deleted":1}',
        b'{"name":"x","options":[]}',
        b'{"name":"x","options":{"max_chunk_size":"4"}}',
        b'{"name":"x","options":{"max_chunk_size":-4}}',
        b'{"name":"x","options":{"link":"GOB"}}',
        b'{"name":"x","options":{"link":{"name":"y"}}}',
        b'{"name":"x","options":{"link":{"bucket":"","name":"y"}}}',
        b'{"name":"x","options":{"link":{"bucket":7}}}',
        b'{"name":"x","options":{"link":{"bucket":"B","name":7}}}',
        b'{"name":"\xff"}',
        b"\xff\xfe\x00",
    ],
)
def test_bad_documents_raise_bad_object_meta(payload: bytes) -> None:
    with pytest.raises(BadObjectMetaError):
        decode_meta(payload, bucket="B")


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name":"x","headers":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001,
        b"[" * 1_000_000,
        b'{"name":"x","size":' + b"9" * 10_000 + b"}",  # past int's max str digits
    ],
    ids=["deep-array", "deep-headers", "unclosed", "huge-int"],
)
def test_hostile_input_raises_only_bad_object_meta(payload: bytes) -> None:
    with pytest.raises(BadObjectMetaError):
        decode_meta(payload, bucket="B")


def test_a_large_valid_document_decodes() -> None:
    name = "n" * 100_000
    info = decode_meta(json.dumps({"name": name, "size": 2**63}).encode(), bucket="B")
    assert info.name == name
    assert info.size == 2**63


# --- ObjectInfo / ObjectMeta helpers -----------------------------------------------------


def test_meta_view_and_with_meta() -> None:
    meta = GO_PUT_INFO.meta
    assert meta == ObjectMeta(
        name="dir/é.txt", description="d", headers={"X-A": ("1",)}, chunk_size=4
    )
    renamed = GO_PUT_INFO.with_meta(
        ObjectMeta(name="new", description="", headers={}, metadata={"k": "v"}, chunk_size=99)
    )
    assert renamed.name == "new"
    assert renamed.description == ""
    assert renamed.headers == {}
    assert renamed.metadata == {"k": "v"}
    # Options and the version are not updatable (wire.md §8).
    assert renamed.max_chunk_size == 4
    assert (renamed.nuid, renamed.size, renamed.digest) == (GO_PUT_INFO.nuid, 10, DIGEST)


# --- properties ---------------------------------------------------------------------------

buckets = st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True)
tricky_text = st.text() | st.sampled_from(["<>&", "\u2028\u2029", "🙂", "dir/é.txt", '"\\'])
object_infos = st.builds(
    ObjectInfo,
    name=tricky_text.filter(bool),
    bucket=buckets,
    nuid=st.text(alphabet="0123456789ABCDEFabcdef", max_size=22),
    size=st.integers(0, 2**64 - 1),
    chunks=st.integers(0, 2**32 - 1),
    digest=st.text(max_size=60),
    deleted=st.booleans(),
    description=tricky_text,
    headers=st.dictionaries(tricky_text, st.lists(tricky_text, max_size=3).map(tuple), max_size=4),
    metadata=st.dictionaries(tricky_text, tricky_text, max_size=4),
    link=st.none() | st.builds(ObjectLink, bucket=buckets, name=tricky_text),
    max_chunk_size=st.integers(0, 2**32 - 1),
    mtime_ns=st.integers(GO_ZERO_NS, MAX_NS),
    revision=st.integers(0, 2**63),
)

GO_KEY_ORDER = [
    "name",
    "description",
    "headers",
    "metadata",
    "options",
    "bucket",
    "nuid",
    "size",
    "mtime",
    "chunks",
    "digest",
    "deleted",
]


@settings(max_examples=200)
@given(object_infos)
def test_decode_inverts_encode(info: ObjectInfo) -> None:
    raw = encode_meta(info)
    assert decode_meta(raw, bucket="ELSEWHERE", revision=info.revision) == info


@settings(max_examples=200)
@given(object_infos)
def test_encoded_document_is_valid_json_in_go_key_order(info: ObjectInfo) -> None:
    raw = encode_meta(info)
    doc = json.loads(raw.decode("utf-8"))
    keys = list(doc)
    assert keys == [key for key in GO_KEY_ORDER if key in doc]
    for key in ("name", "bucket", "nuid", "size", "mtime", "chunks"):
        assert key in doc
    assert doc["name"] == info.name
    for char in ("<", ">", "&", "\u2028", "\u2029"):
        assert char.encode() not in raw
    assert list(doc.get("headers", {})) == sorted(doc.get("headers", {}))
    assert list(doc.get("metadata", {})) == sorted(doc.get("metadata", {}))


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
mtimes = st.sampled_from(
    [
        GO_ZERO_TIME,
        "",
        "2026-11-23T08:52:38.404342+00:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "garbage",
    ]
)
doc_like = st.fixed_dictionaries(
    {"name": st.text(max_size=8) | json_values},
    optional={
        "description": json_values,
        "headers": st.dictionaries(st.text(max_size=4), json_values, max_size=3) | json_values,
        "metadata": st.dictionaries(st.text(max_size=4), json_values, max_size=3) | json_values,
        "options": st.fixed_dictionaries(
            {},
            optional={
                "link": st.fixed_dictionaries(
                    {}, optional={"bucket": json_values, "name": json_values}
                )
                | json_values,
                "max_chunk_size": st.integers(-2, 2**40) | json_values,
            },
        )
        | json_values,
        "bucket": st.text(max_size=8) | json_values,
        "nuid": st.text(max_size=8) | json_values,
        "size": st.integers(-2, 2**70) | json_values,
        "chunks": st.integers(-2, 2**40) | json_values,
        "mtime": mtimes | json_values,
        "digest": st.text(max_size=8) | json_values,
        "deleted": st.booleans() | json_values,
        "revision": json_values,
    },
)


def _decode_or_none(payload: bytes) -> ObjectInfo | None:
    try:
        return decode_meta(payload, bucket="B", revision=3)
    except BadObjectMetaError:
        return None


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_decode_raises_only_bad_object_meta_on_arbitrary_bytes(payload: bytes) -> None:
    _decode_or_none(payload)


@settings(max_examples=200)
@given(json_values | doc_like)
def test_decode_raises_only_bad_object_meta_on_arbitrary_json(value: Any) -> None:
    info = _decode_or_none(json.dumps(value).encode())
    if info is None:
        return
    assert isinstance(value, dict)
    assert isinstance(info.name, str)
    assert info.name
    assert min(info.size, info.chunks, info.max_chunk_size) >= 0
    # Whatever decodes can be written again, and then reads back unchanged.
    assert decode_meta(encode_meta(info), bucket="B", revision=3) == info


def test_lone_surrogates_in_a_name_survive_and_other_text_reads_as_replacement() -> None:
    info = decode_meta(
        b'{"name":"a\\ud800b","description":"\\udfff","metadata":{"k\\ud800":"v"}}', bucket="B"
    )
    assert info.name == "a\ud800b"  # kept: the mount hides it instead of folding names
    assert info.description == "\ufffd"
    assert dict(info.metadata) == {"k\ufffd": "v"}
    written = encode_meta(info)
    assert b"\\ud800" in written  # escaped, so the document is valid UTF-8
    assert decode_meta(written, bucket="B").name == "a\ud800b"
