"""The record beside a dirty spool file (``osfs.core.spool_record``).

Rules for these tests:
1. Round trip: every meta decodes back to itself, minus ``chunk_size`` (never kept), with any
   text in every field, lone surrogates included: the record is ASCII JSON (``ensure_ascii``),
   whose ``\\uXXXX`` escapes carry what UTF-8 cannot.
2. Everything that is not a record of version 1 raises ``ValueError`` and nothing else, so
   recovery can set it aside: garbage bytes, JSON of another shape, a wrong version, wrong
   types, a missing or empty name.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.meta import ObjectMeta
from osfs.core.spool_record import FORMAT_KEY, FORMAT_VERSION, decode_record, encode_record

# Any code point, lone surrogates (category Cs) included.
texts = st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=12)
metas = st.builds(
    ObjectMeta,
    name=texts.filter(bool),
    description=texts,
    headers=st.dictionaries(texts, st.lists(texts, max_size=3).map(tuple), max_size=3),
    metadata=st.dictionaries(texts, texts, max_size=4),
    chunk_size=st.integers(min_value=0, max_value=1 << 24),
)


def record(**fields: Any) -> bytes:
    document: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION, "name": "a/b"}
    document.update(fields)
    return json.dumps(document).encode()


# Round trip -----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(metas)
def test_every_meta_round_trips_except_its_chunk_size(meta: ObjectMeta) -> None:
    data = encode_record(meta)
    assert data.isascii()
    decoded = decode_record(data)
    assert decoded == replace(meta, chunk_size=0)
    assert type(decoded.headers) is dict
    assert all(type(values) is tuple for values in decoded.headers.values())
    assert type(decoded.metadata) is dict
    assert encode_record(decoded) == data  # stable: sorted keys, nothing lost on the way


def test_lone_surrogates_travel_as_escapes() -> None:
    meta = ObjectMeta(name="x\ud800y", metadata={"k\udfff": "\udc80"}, headers={"H": ("\ud83d",)})
    data = encode_record(meta)
    assert b"\\ud800" in data
    assert b"\\udfff" in data
    assert decode_record(data) == meta


def test_the_record_names_its_format_and_version() -> None:
    document = json.loads(encode_record(ObjectMeta(name="n", description="d")))
    assert document[FORMAT_KEY] == 1
    assert document["name"] == "n"
    assert document["description"] == "d"
    assert document["headers"] == {}
    assert document["metadata"] == {}


def test_optional_fields_default_to_empty() -> None:
    assert decode_record(record()) == ObjectMeta(name="a/b")


# Malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\xfd",
        b"\x00\x00\x00",
        b"not json",
        b"{",
        b'{"osfs-spool": 1, "name": "a"',
        b"[" * 100_000,  # deeper than the JSON parser recurses
        b"{" + b'"a":{' * 100_000,
        b"9" * 5000,  # longer than Python converts to an int
        b"null",
        b"1",
        b'"osfs-spool"',
        b"[]",
        b'[{"osfs-spool": 1, "name": "a"}]',
        b"{}",
    ],
    ids=lambda data: repr(data[:20]),
)
def test_what_is_not_json_of_an_object_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_record(data)


@pytest.mark.parametrize("version", [None, 0, 2, -1, "1", True, 1.0, [1], {"v": 1}])
def test_another_version_is_refused(version: Any) -> None:
    with pytest.raises(ValueError):
        decode_record(record(**{FORMAT_KEY: version}))


def test_a_record_without_the_format_key_is_refused() -> None:
    with pytest.raises(ValueError):
        decode_record(json.dumps({"name": "a/b"}).encode())


@pytest.mark.parametrize("name", [None, "", 1, ["a"], {"a": "b"}, False])
def test_a_missing_empty_or_non_text_name_is_refused(name: Any) -> None:
    with pytest.raises(ValueError):
        decode_record(record(name=name))
    document = json.loads(record())
    del document["name"]
    with pytest.raises(ValueError):
        decode_record(json.dumps(document).encode())


@pytest.mark.parametrize(
    "fields",
    [
        {"description": None},
        {"description": 3},
        {"description": ["d"]},
        {"headers": None},
        {"headers": []},
        {"headers": "H: v"},
        {"headers": {"H": "v"}},
        {"headers": {"H": [1]}},
        {"headers": {"H": ["v", None]}},
        {"headers": {"H": {"v": "w"}}},
        {"metadata": None},
        {"metadata": []},
        {"metadata": "k=v"},
        {"metadata": {"k": 1}},
        {"metadata": {"k": None}},
        {"metadata": {"k": ["v"]}},
        {"metadata": {"k": "v", "l": True}},
    ],
    ids=repr,
)
def test_fields_of_the_wrong_type_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        decode_record(record(**fields))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([FORMAT_KEY, "name", "description", "headers", "metadata", "x"]),
        json_values,
    )
)
def test_any_json_object_decodes_to_a_meta_or_raises_value_error(document: dict[str, Any]) -> None:
    try:
        meta = decode_record(json.dumps(document).encode())
    except ValueError:
        return
    assert document[FORMAT_KEY] == 1
    assert meta.name == document["name"]


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_to_a_meta_or_raise_value_error(data: bytes) -> None:
    try:
        decode_record(data)
    except ValueError:
        pass
