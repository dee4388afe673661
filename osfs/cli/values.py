"""Argument values: durations, sizes, ``KEY=VALUE`` pairs, headers, modes, ids, FUSE options.

Rules:
1. Each parser turns one command-line string into a value or raises
   ``argparse.ArgumentTypeError`` with a message that shows a valid example, so argparse prints
   it as a one-line usage error (exit status 2).
2. Units follow the nats CLI: sizes are powers of 1024 however they are written.
3. Names are checked here too (:func:`check_names`), before any connection is made, so a typo
   never waits for a server.
Pure: no I/O.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Sequence

from osfs.core.subjects import validate_bucket, validate_object_name

_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d|w|y)")
_DURATION_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3_600,
    "d": 86_400,
    "w": 7 * 86_400,
    "y": 365 * 86_400,
}
_SIZE_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgtpe]?)(i?b?)", re.IGNORECASE)
_SIZE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_MODE_RE = re.compile(r"(?:0o)?([0-7]+)", re.IGNORECASE)
_PERMISSION_BITS = 0o7777
#: ``(uid_t)-1`` means "no change" to chown(2), so it is never a real owner.
_MAX_ID = 2**32 - 2


def parse_duration(text: str) -> float:
    """``"30s"``, ``"2h"``, ``"7d"``, ``"1h30m"``, ``"500ms"`` -> seconds; a bare number is seconds.

    Units: ``ms s m h d w y`` (lower case; a year is 365 days). ``0`` means "no limit".

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    compact = text.strip().replace(" ", "")
    with contextlib.suppress(ValueError):
        seconds = float(compact)
        if seconds >= 0 and seconds != float("inf"):
            return seconds
    total = 0.0
    position = 0
    for match in _DURATION_PART_RE.finditer(compact):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_SECONDS[match.group(2)]
        position = match.end()
    if position == 0 or position != len(compact):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use e.g. 30s, 15m, 2h, 7d or 1h30m"
        )
    return total


def parse_size(text: str) -> int:
    """``"10MiB"``, ``"1G"``, ``"512k"``, ``"4096"`` -> bytes.

    Units are powers of 1024 whether written ``K``, ``KB`` or ``KiB`` (as the nats CLI and
    nats-server read them), case-insensitive.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    match = _SIZE_RE.fullmatch(text.strip())
    if match is None or (match.group(3).lower() == "i"):
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}: use bytes or e.g. 512KiB, 10MiB, 1G"
        )
    number, prefix, _ = match.groups()
    return int(float(number) * 1024 ** _SIZE_POWERS[prefix.lower()])


def parse_positive_size(text: str) -> int:
    """A :func:`parse_size` that must be at least one byte (chunk sizes)."""
    size = parse_size(text)
    if size <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be at least 1 byte")
    return size


#: The largest ``--readahead`` taken: more only holds pages nobody may read.
MAX_READAHEAD = 1024**3


def parse_readahead(text: str) -> int:
    """A :func:`parse_size` for the kernel's readahead: whole KiB (its unit), 0 to 1GiB.

    0 turns the kernel's readahead off: each read asks for just its own bytes.
    """
    size = parse_size(text)
    if size % 1024 or not 0 <= size <= MAX_READAHEAD:
        raise argparse.ArgumentTypeError(
            f"invalid readahead {text!r}: use whole KiB from 0 to 1GiB, e.g. 512KiB or 4MiB"
        )
    return size


def parse_key_value(text: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``("KEY", "VALUE")``; the value may be empty or contain ``=``.

    Raises:
        argparse.ArgumentTypeError: no ``=``, or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"invalid {text!r}: use KEY=VALUE")
    return key.strip(), value


def parse_header(text: str) -> tuple[str, str]:
    """``"Name=value"`` or ``"Name: value"`` (the nats CLI's form) -> ``("Name", "value")``.

    The name ends at the first ``=`` or ``:`` (neither may appear in a header name).

    Raises:
        argparse.ArgumentTypeError: no separator, or not a valid header name.
    """
    match = re.search(r"[=:]", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid header {text!r}: use NAME=VALUE")
    name, value = text[: match.start()].strip(), text[match.end() :].strip()
    if not _HEADER_NAME_RE.fullmatch(name):
        raise argparse.ArgumentTypeError(f"invalid header name {name!r} in {text!r}")
    return name, value


def parse_timeout(text: str) -> float:
    """``--timeout``: seconds (or a duration such as ``1m``), more than zero."""
    seconds = parse_duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid timeout {text!r}: must be more than 0")
    return seconds


def parse_replicas(text: str) -> int:
    """``--replicas``: 1 to 5, the range JetStream allows."""
    try:
        replicas = int(text)
    except ValueError:
        replicas = 0
    if not 1 <= replicas <= 5:
        raise argparse.ArgumentTypeError(f"invalid replicas {text!r}: use 1 to 5")
    return replicas


def parse_mode(text: str) -> int:
    """``--file-mode``/``--dir-mode``: permission bits in octal, as chmod takes them.

    ``"0644"``, ``"644"`` and ``"0o644"`` are all ``0o644``; setuid, setgid and sticky bits
    (``"1777"``) are allowed, file type bits are not.

    Raises:
        argparse.ArgumentTypeError: not octal, or more than ``7777``.
    """
    match = _MODE_RE.fullmatch(text.strip())
    mode = int(match.group(1), 8) if match else -1
    if not 0 <= mode <= _PERMISSION_BITS:
        raise argparse.ArgumentTypeError(
            f"invalid mode {text!r}: use octal permission bits, e.g. 0644 or 0755"
        )
    return mode


def parse_id(text: str) -> int:
    """``--uid``/``--gid``: a numeric user or group id (names are not looked up).

    Raises:
        argparse.ArgumentTypeError: not a number from 0 to 4294967294.
    """
    digits = text.strip()
    value = int(digits) if digits.isascii() and digits.isdigit() else -1
    if not 0 <= value <= _MAX_ID:
        raise argparse.ArgumentTypeError(f"invalid id {text!r}: use a number such as 1000")
    return value


def parse_fuse_options(text: str) -> tuple[str, ...]:
    """``-o allow_other,ro`` -> ``("allow_other", "ro")``, as mount(8) splits its ``-o``.

    Blanks around a name and empty entries (``"a,,b"``) are dropped.

    Raises:
        argparse.ArgumentTypeError: no option at all.
    """
    options = tuple(part.strip() for part in text.split(",") if part.strip())
    if not options:
        raise argparse.ArgumentTypeError(
            f"invalid -o {text!r}: name FUSE options, e.g. allow_other,ro"
        )
    return options


def collect_headers(pairs: Sequence[tuple[str, str]] | None) -> dict[str, tuple[str, ...]]:
    """Repeated ``--header`` options -> each name with all its values, in order given."""
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in pairs or ():
        headers[name] = (*headers.get(name, ()), value)
    return headers


def check_names(args: argparse.Namespace) -> None:
    """Reject invalid bucket and object names before any connection is made.

    Raises:
        InvalidBucketNameError: a bucket argument is not a valid bucket name.
        InvalidObjectNameError: an object argument is not a valid object name.
    """
    for attr in ("bucket", "target_bucket", "to_bucket"):
        value = getattr(args, attr, None)
        if value is not None:
            validate_bucket(value)
    for attr in ("name", "old", "new", "target"):
        value = getattr(args, attr, None)
        if value is not None:
            validate_object_name(value)
