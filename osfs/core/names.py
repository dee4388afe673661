"""Object names <-> paths in the mount: which names can be files, and where links point.

Rules (DESIGN §3):
1. Object ``a/b/c.txt`` is file ``c.txt`` in directory ``a/b``; a name ending in ``/``
   (``a/b/``) is the *marker* of directory ``a/b``, which keeps an empty directory alive.
2. A name that cannot be a path is *hidden*, never mangled and never an error: the empty name,
   ``/`` alone, an empty component (``a//b``, ``/abs``, ``a/b//``), a ``.`` or ``..`` component,
   a NUL anywhere, a component over 255 bytes of UTF-8 (the FUSE ``NAME_MAX``), or a name that
   is not encodable as UTF-8. So no object can escape the mount or crash it; the CLI lists
   hidden names with their reasons.
3. Mappable names round-trip exactly: ``object_name(m.parts, is_dir=m.is_dir_marker) == name``.
4. Links become relative symlinks: within the bucket they point at the target's path; to
   another bucket (or a whole bucket) they climb out of the mount to ``../<bucket>``, so buckets
   mounted side by side (``/mnt/<bucket>``) resolve each other's links.
5. Path names from FUSE are bytes; object names are str. The conversion happens here only.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from osfs.core.errors import InvalidObjectNameError
from osfs.core.meta import ObjectLink

#: The longest path component in bytes that FUSE (and Linux's ``NAME_MAX``) accepts.
MAX_COMPONENT_BYTES = 255

#: A component of at most this many characters is short enough in any encoding (4 bytes each).
_SAFE_COMPONENT_CHARS = MAX_COMPONENT_BYTES // 4

REASON_EMPTY = "empty name"
REASON_ROOT = "the name is only '/'"
REASON_EMPTY_COMPONENT = "empty path component"
REASON_DOT = "'.' or '..' path component"
REASON_NUL = "contains a NUL character"
REASON_TOO_LONG = f"a path component is longer than {MAX_COMPONENT_BYTES} bytes"
REASON_NOT_UTF8 = "not encodable as UTF-8"

_DOTS = frozenset((".", ".."))
_UNPRINTABLE_RE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Mapped:
    """A name that is a path: its components, and whether it is a directory marker.

    Attributes:
        parts: the path components from the mount's root (never empty).
        is_dir_marker: the name ends in ``/``: it marks directory ``parts``.
    """

    parts: tuple[str, ...]
    is_dir_marker: bool


@dataclass(frozen=True, slots=True)
class Hidden:
    """A name that cannot be a path, and why (a short human string for the CLI)."""

    name: str
    reason: str


def map_name(name: str) -> Mapped | Hidden:
    """The path an object name stands for, or why it has none. Never raises."""
    if not name:
        return Hidden(name, REASON_EMPTY)
    if name == "/":
        return Hidden(name, REASON_ROOT)
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return Hidden(name, REASON_NOT_UTF8)
    if "\x00" in name:
        return Hidden(name, REASON_NUL)
    parts = name.split("/")
    is_marker = parts[-1] == ""
    if is_marker:
        parts.pop()
    for part in parts:
        if not part:
            return Hidden(name, REASON_EMPTY_COMPONENT)
        if part in _DOTS:
            return Hidden(name, REASON_DOT)
    # Fast path: a name of at most 255 bytes cannot have a longer component.
    if len(encoded) > MAX_COMPONENT_BYTES:
        for part in parts:
            if (
                len(part) > _SAFE_COMPONENT_CHARS
                and len(part.encode("utf-8")) > MAX_COMPONENT_BYTES
            ):
                return Hidden(name, REASON_TOO_LONG)
    return Mapped(tuple(parts), is_marker)


def object_name(parts: Sequence[str], *, is_dir: bool = False) -> str:
    """The object name of the path ``parts``: the inverse of :func:`map_name`.

    Args:
        parts: path components from the root (the root itself has no object).
        is_dir: name the directory marker (``a/b/``) rather than the file (``a/b``).

    Raises:
        ValueError: ``parts`` is empty.
    """
    if not parts:
        raise ValueError("the root directory has no object name")
    name = "/".join(parts)
    return name + "/" if is_dir else name


def component_from_fuse(raw: bytes) -> str:
    """A path component as the kernel sent it (``lookup``, ``create``, ...), as an object name part.

    The adapter checks ``len(raw) > MAX_COMPONENT_BYTES`` first when it wants ENAMETOOLONG.

    Raises:
        InvalidObjectNameError: not UTF-8 (object names are JSON strings), or a component
            :func:`map_name` would hide (empty, ``.``, ``..``, NUL, ``/``, over 255 bytes).
    """
    try:
        part = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidObjectNameError(f"name {raw!r} is not UTF-8") from exc
    if "/" in part:
        raise InvalidObjectNameError(f"name {part!r} contains '/'")
    mapped = map_name(part)
    if isinstance(mapped, Hidden):
        raise InvalidObjectNameError(f"name {part!r}: {mapped.reason}")
    return part


def component_to_fuse(part: str) -> bytes:
    """A path component as the kernel wants it (``readdir``); the inverse of the above."""
    return part.encode("utf-8")


def symlink_target(link_name_parts: Sequence[str], link: ObjectLink, *, bucket: str) -> str:
    """What ``readlink`` answers for an object link: a path relative to the link's directory.

    Args:
        link_name_parts: the path of the link itself (its last part is the link's name).
        link: where it points.
        bucket: the bucket the link lives in (the mounted one).

    A target whose name is hidden still gets its relative string (the kernel just will not
    resolve it). The answer never holds NUL or lone surrogates (replaced by U+FFFD), so it can
    always be encoded for ``readlink``.
    """
    link_dir = tuple(link_name_parts[:-1])
    if link.bucket != bucket or link.is_bucket_link:
        # Out of this mount first (one ``..`` per directory, one for the mount), then into the
        # sibling mount of the target bucket.
        up = "../" * (len(link_dir) + 1)
        if link.is_bucket_link:
            return _printable(up + link.bucket)
        return _printable(f"{up}{link.bucket}/{link.name}")
    target = link.name.split("/")
    # Shared leading directories, never the target's own last part, so the answer always ends
    # in the target's name (``../../x`` rather than ``..`` for an ancestor).
    common = 0
    limit = min(len(link_dir), len(target) - 1)
    while common < limit and link_dir[common] == target[common]:
        common += 1
    return _printable("/".join([".."] * (len(link_dir) - common) + target[common:]))


def _printable(text: str) -> str:
    """``text`` with NUL and lone surrogates replaced, so it encodes to a C string."""
    return _UNPRINTABLE_RE.sub("\ufffd", text)
