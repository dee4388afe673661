"""RFC 3339 timestamps as integer nanoseconds since the epoch.

The server stamps every message with nanosecond precision (``Nats-Time-Stamp`` on Direct Get,
``time`` on MSG.GET, the ack subject on consumers); Python's ``datetime`` keeps microseconds only,
so osfs carries time as ``int`` nanoseconds and parses the fraction itself. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RFC3339_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Go's zero ``time.Time``, which nats.go writes as the ``mtime`` of every meta document.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp (any offset, 0-9 fraction digits).

    Raises:
        ValueError: not an RFC 3339 timestamp.
    """
    match = _RFC3339_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    base = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    if not zulu:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        try:
            base -= offset if sign == "+" else -offset
        except OverflowError as exc:
            raise ValueError(f"RFC 3339 timestamp out of range: {text!r}") from exc
    delta = base - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + nanos


def format_rfc3339_ns(ns: int) -> str:
    """An RFC 3339 UTC timestamp with nanoseconds and trailing zeros trimmed, as Go prints it."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    moment = _EPOCH + timedelta(seconds=seconds)
    # Not strftime("%Y"): glibc does not zero-pad years below 1000 (Go's zero time is year 1).
    # Field by field is also faster than strftime, and every put writes one of these.
    stamp = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if nanos:
        stamp += "." + f"{nanos:09d}".rstrip("0")
    return stamp + "Z"


def ns_to_datetime(ns: int) -> datetime:
    """A UTC ``datetime`` (microsecond precision) for nanoseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=ns // 1000)
