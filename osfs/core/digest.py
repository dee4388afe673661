"""The ``SHA-256=`` digest of an object, written as nats.go writes it and read leniently.

Rules (wire.md §3.3):
1. Written: ``SHA-256=`` + padded base64url of the SHA-256 of all payload bytes in order.
2. Read: the label before the first ``=`` must be ``SHA-256`` (any case); the value may be
   base64 (url or standard alphabet, padded or not) or hex, as nats.js accepts.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from osfs.core.errors import InvalidDigestFormatError

PREFIX = "SHA-256="
#: The digest of zero bytes, as every client writes it for an empty object.
EMPTY_DIGEST = PREFIX + base64.urlsafe_b64encode(hashlib.sha256(b"").digest()).decode()

_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")


def format_digest(raw: bytes) -> str:
    """The stored form of a 32-byte SHA-256 value."""
    if len(raw) != 32:
        raise ValueError(f"a SHA-256 digest is 32 bytes, got {len(raw)}")
    return PREFIX + base64.urlsafe_b64encode(raw).decode("ascii")


def digest_of(data: bytes) -> str:
    """The stored form of the digest of ``data``."""
    return format_digest(hashlib.sha256(data).digest())


def parse_digest(text: str) -> bytes:
    """The 32 raw bytes a stored digest names.

    Raises:
        InvalidDigestFormatError: no ``=`` separator, or a value that is neither 64 hex digits
            nor base64 of 32 bytes.
    """
    label, sep, value = text.partition("=")
    if not sep or not label:
        raise InvalidDigestFormatError(f"digest {text!r} is not 'SHA-256=<value>'")
    if label.upper() != "SHA-256":
        raise InvalidDigestFormatError(f"digest {text!r} is not a SHA-256 digest")
    if _HEX_RE.fullmatch(value):
        return bytes.fromhex(value)
    stripped = value.rstrip("=")
    normal = stripped.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDigestFormatError(f"digest {text!r} is not valid base64") from exc
    if len(raw) != 32:
        raise InvalidDigestFormatError(f"digest {text!r} does not hold 32 bytes")
    return raw
