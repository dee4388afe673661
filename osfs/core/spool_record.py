"""The record kept beside a dirty spool file: what to upload it as, should osfs die first.

A spool file holds the bytes of a file written through the mount until they are stored. While
it is *dirty* (changed and not yet stored), a small JSON record beside it names the object and
the metadata to store it with, so the next mount of the bucket can finish the upload after a
crash (DESIGN §5).

Rules:
1. The record is the :class:`~osfs.core.meta.ObjectMeta` of the put that will store the file:
   name, description, headers, metadata (which carry mode, owner and mtime,
   ``osfs.core.posix``). ``chunk_size`` is not kept: uploads use the default.
2. The format is versioned (``"osfs-spool": 1``); a record of another version, or anything
   that is not a record, raises ``ValueError`` when read, so recovery can set it aside with a
   log line instead of guessing.
Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from osfs.core.meta import ObjectMeta

FORMAT_KEY = "osfs-spool"
FORMAT_VERSION = 1


def encode_record(meta: ObjectMeta) -> bytes:
    """The record of a dirty spool file that is to be stored as ``meta``."""
    document = {
        FORMAT_KEY: FORMAT_VERSION,
        "name": meta.name,
        "description": meta.description,
        "headers": {key: list(values) for key, values in meta.headers.items()},
        "metadata": dict(meta.metadata),
    }
    return json.dumps(document, ensure_ascii=True, sort_keys=True).encode("ascii")


def decode_record(data: bytes) -> ObjectMeta:
    """The meta a record says to store its spool file as.

    Raises:
        ValueError: not a record of this format (garbage, another version, wrong types).
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON; nesting too deep
        raise ValueError(f"not a spool record: {exc}") from exc
    if not isinstance(document, dict) or not _is_version(document.get(FORMAT_KEY)):
        raise ValueError("not a spool record of format version 1")
    name = document.get("name")
    description = document.get("description", "")
    if not isinstance(name, str) or not name or not isinstance(description, str):
        raise ValueError("a spool record needs a name and a text description")
    return ObjectMeta(
        name=name,
        description=description,
        headers=_headers(document.get("headers", {})),
        metadata=_strings(document.get("metadata", {})),
    )


def _is_version(value: Any) -> bool:
    """True for exactly the JSON number ``1`` (not ``true``, not ``1.0``)."""
    return type(value) is int and value == FORMAT_VERSION


def _headers(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ValueError("spool record headers must be an object")
    headers: dict[str, tuple[str, ...]] = {}
    for key, values in value.items():
        if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
            raise ValueError(f"spool record header {key!r} must be a list of strings")
        headers[str(key)] = tuple(values)
    return headers


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(item, str) for item in value.values()):
        raise ValueError("spool record metadata must map strings to strings")
    return {str(key): item for key, item in value.items()}
