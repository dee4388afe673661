"""The ``SHA-256=`` object digest (wire.md §3.3).

Rules for these tests:
1. Known digests are checked against published SHA-256 values and wire.md's captured samples.
2. Every variant a reader must accept is built with the stdlib ``base64``/``hex`` codecs, not
   with the module under test.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.digest import EMPTY_DIGEST, PREFIX, digest_of, format_digest, parse_digest
from osfs.core.errors import InvalidDigestFormatError

# wire.md §3.1: the 10-byte object of every sample put (chunk size 4, 3 chunks).
SAMPLE_DIGEST = "SHA-256=cjmTYdpqd1T-yYbcpbfLrxyBCije1KuvVrIQbQbLeLA="
SAMPLE_RAW = bytes.fromhex("72399361da6a7754fec986dca5b7cbaf1c810a28ded4abaf56b2106d06cb78b0")
# FIPS 180-2 test vector: SHA-256("abc"); its base64 has both '+' and '/' in standard form.
ABC_RAW = bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_empty_digest_is_the_verified_value() -> None:
    assert EMPTY_DIGEST == "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
    assert digest_of(b"") == EMPTY_DIGEST
    assert PREFIX == "SHA-256="


def test_sample_digest_is_of_the_ten_byte_payload() -> None:
    assert digest_of(b"abcdefghij") == SAMPLE_DIGEST
    assert parse_digest(SAMPLE_DIGEST) == SAMPLE_RAW
    assert format_digest(SAMPLE_RAW) == SAMPLE_DIGEST


def test_digest_uses_the_url_alphabet_with_padding() -> None:
    expected = "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0="
    assert digest_of(b"abc") == expected
    assert format_digest(ABC_RAW) == expected
    assert len(expected) == 8 + 44


@pytest.mark.parametrize(
    "text",
    [
        "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",  # url, padded (Go)
        "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0",  # url, unpadded
        "SHA-256=ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",  # standard, padded
        "SHA-256=ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0",  # standard, unpadded
        "SHA-256=" + ABC_RAW.hex(),  # hex, lower case
        "SHA-256=" + ABC_RAW.hex().upper(),  # hex, upper case
        "sha-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",  # label case ignored
    ],
    ids=["url-pad", "url-nopad", "std-pad", "std-nopad", "hex-lower", "hex-upper", "label-lower"],
)
def test_parse_accepts_every_variant_clients_write(text: str) -> None:
    assert parse_digest(text) == ABC_RAW


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SHA-256",  # no '='
        "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0",  # no label, no '='
        "=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",  # empty label
        "MD5=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
        "SHA256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
        "SHA-512=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
        "SHA-256=",  # zero bytes
        "SHA-256=" + base64.urlsafe_b64encode(bytes(31)).decode(),
        "SHA-256=" + base64.urlsafe_b64encode(bytes(33)).decode(),
        "SHA-256=" + base64.urlsafe_b64encode(bytes(64)).decode(),
        "SHA-256=" + ABC_RAW.hex()[:-1],  # 63 hex digits
        "SHA-256=" + ABC_RAW.hex() + "0",  # 65 hex digits
        "SHA-256=" + ABC_RAW.hex()[:-1] + "g",
        "SHA-256=!!!!",
        "SHA-256=ungWv48Bz-pBQUDe Xa4iI7ADYaOWF3qctBD_YfIAFa0=",  # whitespace inside
        "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=\n",
        "SHA-256=éngWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
        "SHA-256==ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0",  # '=' in front of the value
        "SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa",  # 31.5 bytes of base64
    ],
)
def test_parse_rejects_malformed_digests(text: str) -> None:
    with pytest.raises(InvalidDigestFormatError):
        parse_digest(text)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_format_rejects_values_that_are_not_32_bytes(size: int) -> None:
    with pytest.raises(ValueError):
        format_digest(bytes(size))


raw32 = st.binary(min_size=32, max_size=32)


@settings(max_examples=200)
@given(raw32)
def test_format_and_parse_round_trip(raw: bytes) -> None:
    text = format_digest(raw)
    assert text == "SHA-256=" + base64.urlsafe_b64encode(raw).decode()
    assert text.count("=") == 2  # the label separator and exactly one pad character
    assert parse_digest(text) == raw


@settings(max_examples=200)
@given(raw32)
def test_every_accepted_variant_parses_to_the_same_bytes(raw: bytes) -> None:
    url = base64.urlsafe_b64encode(raw).decode()
    std = base64.b64encode(raw).decode()
    for value in (url, url.rstrip("="), std, std.rstrip("="), raw.hex(), raw.hex().upper()):
        assert parse_digest("SHA-256=" + value) == raw


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_digest_of_is_sha256(data: bytes) -> None:
    assert parse_digest(digest_of(data)) == hashlib.sha256(data).digest()


@settings(max_examples=200)
@given(st.text(max_size=80) | st.text(max_size=60).map(lambda s: "SHA-256=" + s))
def test_parse_raises_only_invalid_digest_format(text: str) -> None:
    try:
        raw = parse_digest(text)
    except InvalidDigestFormatError:
        return
    assert len(raw) == 32
