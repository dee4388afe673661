"""Bucket names, object-name tokens and subjects (wire.md §1.1, §2).

Rules for these tests:
1. Golden vectors come from wire.md's verified samples, never from the code under test.
2. Properties compare against an independent reference (the stdlib ``base64`` module with the
   standard alphabet, a character set spelled out by hand), not against the implementation.
"""

from __future__ import annotations

import base64
import string
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from osfs.core.errors import InvalidBucketNameError, InvalidObjectNameError
from osfs.core.subjects import (
    MAX_BUCKET_NAME,
    MAX_OBJECT_NAME_BYTES,
    all_chunks_subject,
    all_meta_subject,
    bucket_of_stream,
    chunk_prefix,
    chunk_subject,
    decode_name_token,
    encode_name,
    meta_prefix,
    meta_subject,
    stream_name,
    validate_bucket,
    validate_object_name,
)

BUCKET_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
URL_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_=")
buckets = st.text(alphabet=sorted(BUCKET_CHARS), min_size=1, max_size=40)


# --- bucket names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bucket", ["a", "GOB", "my-bucket_1", "-", "_", "0", "A" * 251, "OBJ_x", "a-B_9"]
)
def test_valid_bucket_names_are_returned_unchanged(bucket: str) -> None:
    assert validate_bucket(bucket) == bucket


@pytest.mark.parametrize(
    "bucket",
    [
        "",
        "a.b",
        "a b",
        " a",
        "a*",
        "a>",
        "a/b",
        "a$",
        "é",
        "日本",
        "\u0661",  # an Arabic-Indic digit: a Unicode digit, not 0-9
        "a\n",  # a regex with `$` would let a trailing newline through
        "\ta",
        "A" * 252,
    ],
)
def test_invalid_bucket_names_are_rejected(bucket: str) -> None:
    with pytest.raises(InvalidBucketNameError):
        validate_bucket(bucket)


def test_bucket_length_limit_is_251_because_the_stream_adds_obj_prefix() -> None:
    assert MAX_BUCKET_NAME == 251
    assert len(stream_name("x" * 251)) == 255  # the server's JSMaxNameLen
    assert validate_bucket("x" * 251) == "x" * 251
    with pytest.raises(InvalidBucketNameError):
        validate_bucket("x" * 252)


def test_non_string_bucket_is_rejected() -> None:
    with pytest.raises(InvalidBucketNameError):
        validate_bucket(cast(str, None))
    with pytest.raises(InvalidBucketNameError):
        validate_bucket(cast(str, b"GOB"))


def test_invalid_bucket_name_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_bucket("a.b")


@given(st.text(max_size=300))
def test_bucket_validation_matches_the_character_set(text: str) -> None:
    expected = 1 <= len(text) <= 251 and set(text) <= BUCKET_CHARS
    try:
        validate_bucket(text)
    except InvalidBucketNameError:
        accepted = False
    else:
        accepted = True
    assert accepted == expected


# --- object names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["a", "dir/é.txt", " ", ".", "*", ">", "a.b.c", "日本", "🙂", "a\x00b", "<>&"]
)
def test_any_nonempty_unicode_is_a_valid_object_name(name: str) -> None:
    assert validate_object_name(name) == name


@pytest.mark.parametrize("name", ["", "\ud800", "a\udfffb", "\udc80\udc80"])
def test_empty_and_lone_surrogate_object_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidObjectNameError):
        validate_object_name(name)


def test_non_string_object_name_is_rejected() -> None:
    with pytest.raises(InvalidObjectNameError):
        validate_object_name(cast(str, None))


@pytest.mark.parametrize(
    ("char", "width"), [("a", 1), ("é", 2), ("日", 3), ("🙂", 4)], ids=["1B", "2B", "3B", "4B"]
)
def test_object_name_limit_counts_utf8_bytes(char: str, width: int) -> None:
    assert MAX_OBJECT_NAME_BYTES == 2048
    fits = char * (2048 // width)
    fits += "a" * (2048 - len(fits.encode()))
    assert len(fits.encode("utf-8")) == 2048
    assert validate_object_name(fits) == fits
    with pytest.raises(InvalidObjectNameError):
        validate_object_name(fits + "a")
    with pytest.raises(InvalidObjectNameError):
        validate_object_name(fits + char)


def test_object_name_limit_is_bytes_not_characters() -> None:
    name = "é" * 1025  # 1,025 characters but 2,050 bytes
    with pytest.raises(InvalidObjectNameError):
        validate_object_name(name)


# --- name tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "token"),
    [
        ("dir/é.txt", "ZGlyL8OpLnR4dA=="),  # wire.md §2.1 [verified]
        ("empty", "ZW1wdHk="),
        ("second", "c2Vjb25k"),
        ("é", "w6k="),  # Go/Python; nats.js writes 6Q==
        ("a", "YQ=="),
        ("~~~", "fn5-"),  # '+' in the standard alphabet
        ("???", "Pz8_"),  # '/' in the standard alphabet
    ],
)
def test_encode_name_golden_vectors(name: str, token: str) -> None:
    assert encode_name(name) == token
    assert decode_name_token(token) == name


@given(st.text())
def test_encode_name_is_padded_base64url_of_utf8(name: str) -> None:
    token = encode_name(name)
    assert len(token) % 4 == 0
    assert set(token) <= URL_ALPHABET
    standard = token.replace("-", "+").replace("_", "/")
    assert base64.b64decode(standard, validate=True) == name.encode("utf-8")


@given(st.text())
def test_token_is_a_single_safe_subject_token(name: str) -> None:
    token = encode_name(name)
    for bad in (".", "*", ">"):
        assert bad not in token
    assert not any(c.isspace() for c in token)


@given(st.text(min_size=1))
def test_decode_name_token_round_trips(name: str) -> None:
    assert decode_name_token(encode_name(name)) == name


@pytest.mark.parametrize(
    "token",
    [
        "6Q==",  # nats.js writes é as Latin-1, not UTF-8 (wire.md §2.1)
        "ZW1wdHk",  # padding stripped, as old nats.js did
        "fn5+",  # standard alphabet: osfs writes fn5-
        "ZW1wdHl=",  # non-zero pad bits: decodes to "empty" but is not its token
        "ZW1w.dHk=",  # stray character a lenient decoder would skip
        "",
        "!!!!",
        "é===",
        "/w==",  # byte 0xff: not UTF-8
    ],
)
def test_decode_name_token_rejects_tokens_osfs_would_not_write(token: str) -> None:
    assert decode_name_token(token) is None


@given(st.text(max_size=24) | st.text(alphabet=sorted(URL_ALPHABET | {"+", "/"}), max_size=24))
def test_decoded_token_is_always_the_canonical_token_of_its_name(token: str) -> None:
    name = decode_name_token(token)
    if name is not None:
        assert name
        assert encode_name(name) == token


# --- subjects -----------------------------------------------------------------------------


def test_subject_formats() -> None:
    assert stream_name("GOB") == "OBJ_GOB"
    assert chunk_subject("GOB", "ISxZHH8K92ogsSWsnQg8yc") == "$O.GOB.C.ISxZHH8K92ogsSWsnQg8yc"
    # The Nats-Subject header of the verified Direct Get reply (wire.md §16.1).
    assert meta_subject("GOB", "dir/é.txt") == "$O.GOB.M.ZGlyL8OpLnR4dA=="
    assert all_chunks_subject("GOB") == "$O.GOB.C.>"
    assert all_meta_subject("GOB") == "$O.GOB.M.>"
    assert meta_prefix("GOB") == "$O.GOB.M."
    assert chunk_prefix("GOB") == "$O.GOB.C."


@given(buckets, st.text(min_size=1))
def test_meta_subject_has_four_tokens_and_the_name_decodes_back(bucket: str, name: str) -> None:
    subject = meta_subject(bucket, name)
    assert subject.split(".") == ["$O", bucket, "M", encode_name(name)]
    assert subject.startswith(meta_prefix(bucket))
    assert decode_name_token(subject.removeprefix(meta_prefix(bucket))) == name


@pytest.mark.parametrize(
    ("stream", "bucket"),
    [
        ("OBJ_GOB", "GOB"),
        ("OBJ_a-b_c", "a-b_c"),
        ("OBJ_OBJ_x", "OBJ_x"),
        ("OBJ_", None),
        ("KV_GOB", None),
        ("obj_GOB", None),
        ("OBJGOB", None),
        ("OBJ_a.b", None),
        ("OBJ_a b", None),
        ("", None),
    ],
)
def test_bucket_of_stream(stream: str, bucket: str | None) -> None:
    assert bucket_of_stream(stream) == bucket


@given(buckets)
def test_bucket_of_stream_inverts_stream_name(bucket: str) -> None:
    assert bucket_of_stream(stream_name(bucket)) == bucket
