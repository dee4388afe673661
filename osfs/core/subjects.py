"""Bucket names, object-name encoding and the subjects of an Object Store bucket.

Rules (wire.md §1.1, §2):
1. A bucket name is 1+ of ``A-Z a-z 0-9 _ -``; its stream is ``OBJ_<bucket>``.
2. An object name is any non-empty string; its meta subject token is the *padded* base64url of
   its UTF-8 bytes, exactly as nats.go and nats.py write it (nats.js differs for non-ASCII names).
3. The chunk subject is named by the nuid stored in the meta document, never derived.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re

from osfs.core.errors import InvalidBucketNameError, InvalidObjectNameError

_BUCKET_RE = re.compile(r"[A-Za-z0-9_-]+")
#: The server limits stream names to 255 characters, and the stream name adds ``OBJ_``.
MAX_BUCKET_NAME = 251
#: The server's default ``max_control_line`` is 4 KiB; the Direct Get subject of a meta adds
#: ``$JS.API.DIRECT.GET.OBJ_<bucket>.$O.<bucket>.M.`` in front of the encoded name, and base64
#: grows the name by 4/3. 2,048 bytes of UTF-8 keeps every request line well inside the limit.
MAX_OBJECT_NAME_BYTES = 2048


def validate_bucket(bucket: str) -> str:
    """Return ``bucket`` if it is a valid bucket name.

    Raises:
        InvalidBucketNameError: empty, too long, or a character outside ``A-Z a-z 0-9 _ -``.
    """
    if not isinstance(bucket, str) or not _BUCKET_RE.fullmatch(bucket):
        raise InvalidBucketNameError(
            f"invalid bucket name {bucket!r}: use letters, digits, '-' and '_'"
        )
    if len(bucket) > MAX_BUCKET_NAME:
        raise InvalidBucketNameError(
            f"invalid bucket name: {len(bucket)} characters, at most {MAX_BUCKET_NAME}"
        )
    return bucket


def validate_object_name(name: str) -> str:
    """Return ``name`` if it can be stored as an object name.

    Raises:
        InvalidObjectNameError: empty, or longer than :data:`MAX_OBJECT_NAME_BYTES` in UTF-8,
            or not encodable as UTF-8 (lone surrogates).
    """
    if not isinstance(name, str) or name == "":
        raise InvalidObjectNameError("object name is required")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidObjectNameError(f"object name {name!r} is not valid Unicode") from exc
    if size > MAX_OBJECT_NAME_BYTES:
        raise InvalidObjectNameError(
            f"object name is {size} bytes of UTF-8, at most {MAX_OBJECT_NAME_BYTES}"
        )
    return name


def stream_name(bucket: str) -> str:
    """The JetStream stream that holds ``bucket``."""
    return f"OBJ_{bucket}"


def bucket_of_stream(stream: str) -> str | None:
    """The bucket a stream name stands for, or None if it is not an Object Store stream."""
    if stream.startswith("OBJ_") and _BUCKET_RE.fullmatch(stream[4:]):
        return stream[4:]
    return None


def encode_name(name: str) -> str:
    """The meta-subject token of an object name: padded base64url of its UTF-8 bytes."""
    return base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii")


def decode_name_token(token: str) -> str | None:
    """The object name a meta-subject token encodes, or None if it is not one osfs would write.

    Tokens written by nats.js for non-ASCII names are Latin-1 bytes, not UTF-8; they decode to
    None here, and callers fall back to the ``name`` in the document.
    """
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        name = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    # The decoder is lenient (standard alphabet, stray characters, non-zero pad bits): accept
    # only the canonical token, so no other subject can alias an object's name.
    return name if name and encode_name(name) == token else None


def chunk_subject(bucket: str, nuid: str) -> str:
    """The subject that holds the chunks of one object version."""
    return f"$O.{bucket}.C.{nuid}"


def meta_subject(bucket: str, name: str) -> str:
    """The subject that holds the meta document of object ``name``."""
    return f"$O.{bucket}.M.{encode_name(name)}"


def all_chunks_subject(bucket: str) -> str:
    """The wildcard over every chunk subject of a bucket."""
    return f"$O.{bucket}.C.>"


def all_meta_subject(bucket: str) -> str:
    """The wildcard over every meta subject of a bucket (what a watch filters on)."""
    return f"$O.{bucket}.M.>"


def meta_prefix(bucket: str) -> str:
    """``$O.<bucket>.M.``: strip it from a meta subject to get the name token."""
    return f"$O.{bucket}.M."


def chunk_prefix(bucket: str) -> str:
    """``$O.<bucket>.C.``: strip it from a chunk subject to get the nuid."""
    return f"$O.{bucket}.C."
