"""The meta document of an object: encoded as nats.go writes it, decoded as leniently as nats.js.

Rules (wire.md §3, §9, §15):
1. Encoding is byte-compatible with nats.go: compact JSON, Go's key order, Go's ``omitempty``
   set, raw UTF-8, and Go's HTML escaping of ``<``, ``>``, ``&``, U+2028 and U+2029.
2. ``mtime`` is always a parseable RFC 3339 time, never ``""`` (nats.go rejects the whole
   document otherwise and then cannot even overwrite the object).
3. Decoding accepts every variant the official clients write: links without ``nuid`` (nats.js),
   ``"digest": ""`` or none, ``"deleted"`` absent, extra keys, ``mtime`` in any form; the
   modification time comes from the server's message timestamp, not from the JSON.
4. Anything that is not an object document raises :class:`BadObjectMetaError`, and so does a
   ``nuid`` that is not one literal subject token (:data:`MAX_NUID_CHARS` at most): the chunk
   subject is named by it, so ``>`` would read, and a delete or overwrite purge, the chunks of
   every object in the bucket.
Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from osfs.core.errors import BadObjectMetaError
from osfs.core.timefmt import format_rfc3339_ns, parse_rfc3339_ns

#: The chunk size every official client uses by default.
DEFAULT_CHUNK_SIZE = 128 * 1024
#: The longest ``nuid`` read (the clients write 22 characters; a subject line has 4 KiB).
MAX_NUID_CHARS = 256

#: One literal subject token: no separator, no wildcard, no whitespace or control character, no
#: lone surrogate (it could not be sent).
_TOKEN_RE = re.compile(r"[^\s.*>\x00-\x1f\x7f\ud800-\udfff]+")

Headers = Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class ObjectLink:
    """Where a link points: an object (``name`` set) or a whole bucket (``name`` empty)."""

    bucket: str
    name: str = ""

    @property
    def is_bucket_link(self) -> bool:
        """True for a link to a whole bucket."""
        return self.name == ""


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What a caller says about an object when putting it or updating its meta.

    Attributes:
        name: the object name (any non-empty string).
        description: free text.
        headers: NATS-style headers, each name mapped to its values.
        metadata: string key/value pairs (nats.py drops these; nats.go and nats.js keep them).
        chunk_size: bytes per chunk for a put; 0 means the default of 128 KiB.
    """

    name: str
    description: str = ""
    headers: Headers = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    chunk_size: int = 0


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One version of an object, as its meta document and the server describe it.

    Attributes:
        name: the object name.
        bucket: the bucket whose meta subject holds the document.
        nuid: names the chunk subject of this version ("" for nats.js object links).
        size: payload bytes.
        chunks: number of chunk messages.
        digest: ``SHA-256=...`` or "" (links, delete markers).
        deleted: a delete marker.
        mtime_ns: the server's timestamp of the meta message, in ns since the epoch.
        revision: the stream sequence of the meta message (0 when not known).
        link: set when the object is a link.
        max_chunk_size: the writer's chunk size (informational: chunks may be smaller).
    """

    name: str
    bucket: str
    nuid: str = ""
    size: int = 0
    chunks: int = 0
    digest: str = ""
    deleted: bool = False
    description: str = ""
    headers: Headers = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    link: ObjectLink | None = None
    max_chunk_size: int = 0
    mtime_ns: int = 0
    revision: int = 0

    @property
    def is_link(self) -> bool:
        """True when the object is a link to another object or a bucket."""
        return self.link is not None

    @property
    def meta(self) -> ObjectMeta:
        """The caller-settable part, e.g. to pass back to ``update_meta``."""
        return ObjectMeta(
            name=self.name,
            description=self.description,
            headers=self.headers,
            metadata=self.metadata,
            chunk_size=self.max_chunk_size,
        )

    def with_meta(self, meta: ObjectMeta) -> ObjectInfo:
        """A copy with name, description, headers and metadata taken from ``meta``."""
        return replace(
            self,
            name=meta.name,
            description=meta.description,
            headers=dict(meta.headers),
            metadata=dict(meta.metadata),
        )


_SURROGATE_RE = re.compile("[\ud800-\udfff]")

_GO_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_TABLE = str.maketrans(_GO_HTML_ESCAPES)


def go_json(value: Any) -> bytes:
    """``value`` as Go's ``encoding/json`` would marshal it (compact, HTML-escaped, UTF-8).

    A string with a lone surrogate (legal in JSON, not in UTF-8) cannot be written raw; such a
    document is written with ``\\uXXXX`` escapes instead, which read back to the same value.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # The escaped characters never occur in JSON syntax, only inside strings, so a plain
    # translation is exact.
    try:
        return text.translate(_GO_ESCAPE_TABLE).encode("utf-8")
    except UnicodeEncodeError:
        ascii_text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
        return ascii_text.translate(_GO_ESCAPE_TABLE).encode("ascii")


def encode_meta(info: ObjectInfo) -> bytes:
    """The meta document for ``info``, byte for byte as nats.go would write it.

    ``mtime`` is the time in ``info.mtime_ns`` (readers take the server's timestamp anyway).
    """
    doc: dict[str, Any] = {"name": info.name}
    if info.description:
        doc["description"] = info.description
    # Go's encoding/json writes map keys sorted (by UTF-8 bytes, which is code point order).
    if info.headers:
        doc["headers"] = {key: list(values) for key, values in sorted(info.headers.items())}
    if info.metadata:
        doc["metadata"] = dict(sorted(info.metadata.items()))
    options: dict[str, Any] = {}
    if info.link is not None:
        link: dict[str, str] = {"bucket": info.link.bucket}
        if info.link.name:
            link["name"] = info.link.name
        options["link"] = link
    if info.max_chunk_size:
        options["max_chunk_size"] = info.max_chunk_size
    if options:
        doc["options"] = options
    doc["bucket"] = info.bucket
    doc["nuid"] = info.nuid
    doc["size"] = info.size
    doc["mtime"] = format_rfc3339_ns(info.mtime_ns)
    doc["chunks"] = info.chunks
    if info.digest:
        doc["digest"] = info.digest
    if info.deleted:
        doc["deleted"] = True
    return go_json(doc)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_meta(
    payload: bytes,
    *,
    bucket: str,
    mtime_ns: int | None = None,
    revision: int = 0,
) -> ObjectInfo:
    """Parse a meta document written by any client.

    Args:
        payload: the message body.
        bucket: the bucket the document was read from (used when the document has none).
        mtime_ns: the server's timestamp of the message; None falls back to the document's
            ``mtime`` (0 when that is missing or unparseable).
        revision: the message's stream sequence.

    Raises:
        BadObjectMetaError: not JSON, not an object, a field of the wrong type, or a ``nuid``
            that is no subject token (rule 4).
    """
    try:
        doc = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadObjectMetaError(f"meta document is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise BadObjectMetaError("meta document is not a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise BadObjectMetaError("meta document has no name")
    # The name stays as written, lone surrogates included: folding them into U+FFFD could put
    # two objects at one path. Such a name is unmappable (osfs.core.names hides it).
    options = _optional(doc, "options", dict) or {}
    link = _decode_link(options.get("link"))
    if mtime_ns is None:
        mtime_ns = _lenient_time(doc.get("mtime"))
    return ObjectInfo(
        name=name,
        bucket=_utf8(_optional(doc, "bucket", str) or bucket),
        nuid=_nuid(doc),
        size=_count(doc, "size"),
        chunks=_count(doc, "chunks"),
        digest=_utf8(_optional(doc, "digest", str) or ""),
        deleted=_optional(doc, "deleted", bool) or False,
        description=_utf8(_optional(doc, "description", str) or ""),
        headers=_decode_headers(doc.get("headers")),
        metadata=_decode_metadata(doc.get("metadata")),
        link=link,
        max_chunk_size=_count(options, "max_chunk_size"),
        mtime_ns=mtime_ns,
        revision=revision,
    )


def _utf8(text: str) -> str:
    """``text`` with lone surrogates (legal in JSON escapes) replaced by U+FFFD, as Go reads them.

    Without this a document another client wrote could be read but never written back.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)
    return text


def _optional(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BadObjectMetaError(f"meta field {key!r} is not a {kind.__name__}")
    return value


def _nuid(doc: dict[str, Any]) -> str:
    nuid: str = _optional(doc, "nuid", str) or ""
    if nuid and (len(nuid) > MAX_NUID_CHARS or not _TOKEN_RE.fullmatch(nuid)):
        raise BadObjectMetaError("meta field 'nuid' is not a subject token")
    return nuid


def _count(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadObjectMetaError(f"meta field {key!r} is not a non-negative integer")
    return value


def _decode_link(value: Any) -> ObjectLink | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadObjectMetaError("meta field 'options.link' is not an object")
    bucket = value.get("bucket")
    name = value.get("name") or ""
    if not isinstance(bucket, str) or not bucket or not isinstance(name, str):
        raise BadObjectMetaError("meta field 'options.link' has no bucket")
    return ObjectLink(bucket=bucket, name=name)


def _decode_headers(value: Any) -> dict[str, tuple[str, ...]]:
    """Headers as Go's ``map[string][]string``; a bare string value is taken as one value."""
    if not isinstance(value, dict):
        return {}
    headers: dict[str, tuple[str, ...]] = {}
    for key, values in value.items():
        if isinstance(values, str):
            headers[_utf8(key)] = (_utf8(values),)
        elif isinstance(values, list):
            headers[_utf8(key)] = tuple(_utf8(v) for v in values if isinstance(v, str))
    return headers


def _decode_metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {_utf8(key): _utf8(item) for key, item in value.items() if isinstance(item, str)}


def _lenient_time(value: Any) -> int:
    if not isinstance(value, str) or not value:
        return 0
    try:
        return parse_rfc3339_ns(value)
    except (ValueError, OverflowError):
        return 0
