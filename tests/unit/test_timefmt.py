"""RFC 3339 timestamps as integer nanoseconds (wire.md §3.2, §16.1).

Rules for these tests:
1. Expected instants are computed with ``calendar.timegm`` and integer arithmetic, never with
   the module under test.
2. Every timestamp form a client or the server writes is covered: the server's trimmed
   nanoseconds, nats.js milliseconds, nats.py ``+00:00`` microseconds, Go's zero time.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.timefmt import GO_ZERO_TIME, format_rfc3339_ns, ns_to_datetime, parse_rfc3339_ns

S = 1_000_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_ns(year: int, month: int, day: int, h: int, m: int, s: int, nanos: int = 0) -> int:
    return calendar.timegm((year, month, day, h, m, s, 0, 0, 0)) * S + nanos


SERVER_STAMP_NS = utc_ns(2026, 11, 23, 8, 53, 44, 88_400_057)
GO_ZERO_NS = -62_135_596_800 * S
MAX_NS = utc_ns(9999, 12, 31, 23, 59, 59, 999_999_999)
GO_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z")


def test_server_stamp_parses_to_exact_nanoseconds() -> None:
    assert parse_rfc3339_ns("2026-11-23T08:53:44.088400057Z") == SERVER_STAMP_NS
    assert format_rfc3339_ns(SERVER_STAMP_NS) == "2026-11-23T08:53:44.088400057Z"


@pytest.mark.parametrize(
    ("fraction", "nanos"),
    [
        ("", 0),
        (".1", 100_000_000),
        (".12", 120_000_000),
        (".123", 123_000_000),
        (".1234", 123_400_000),
        (".12345", 123_450_000),
        (".123456", 123_456_000),
        (".1234567", 123_456_700),
        (".12345678", 123_456_780),
        (".123456789", 123_456_789),
        (".000000001", 1),
        (".0", 0),
        (".000000000", 0),
    ],
)
def test_zero_to_nine_fraction_digits(fraction: str, nanos: int) -> None:
    base = utc_ns(2026, 11, 23, 8, 53, 44)
    assert parse_rfc3339_ns(f"2026-11-23T08:53:44{fraction}Z") == base + nanos


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T08:53:44Z",
        "2026-11-23T08:53:44z",
        "2026-11-23t08:53:44Z",
        "2026-11-23T08:53:44+00:00",
        "2026-11-23T08:53:44-00:00",
        "2026-11-23T10:53:44+02:00",
        "2026-11-23T03:23:44-05:30",
        "2026-11-24T00:23:44+15:30",
        "2026-11-22T23:53:44-09:00",
    ],
)
def test_offsets_are_applied(text: str) -> None:
    assert parse_rfc3339_ns(text) == utc_ns(2026, 11, 23, 8, 53, 44)


def test_client_written_forms() -> None:
    # nats.js: ISO milliseconds; nats.py: isoformat() microseconds with +00:00 (wire.md §3.1).
    assert parse_rfc3339_ns("2026-11-23T08:52:45.799Z") == utc_ns(
        2026, 11, 23, 8, 52, 45, 799_000_000
    )
    assert parse_rfc3339_ns("2026-11-23T08:52:38.404342+00:00") == utc_ns(
        2026, 11, 23, 8, 52, 38, 404_342_000
    )


def test_go_zero_time() -> None:
    assert GO_ZERO_TIME == "0001-01-01T00:00:00Z"
    assert parse_rfc3339_ns(GO_ZERO_TIME) == GO_ZERO_NS
    assert format_rfc3339_ns(GO_ZERO_NS) == GO_ZERO_TIME


def test_epoch_and_negative_times() -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:00Z") == 0
    assert format_rfc3339_ns(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339_ns(-1) == "1969-12-31T23:59:59.999999999Z"
    assert parse_rfc3339_ns("1969-12-31T23:59:59.999999999Z") == -1
    assert format_rfc3339_ns(-S) == "1969-12-31T23:59:59Z"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (500_000_000, "1970-01-01T00:00:00.5Z"),
        (10_000, "1970-01-01T00:00:00.00001Z"),
        (S + 1, "1970-01-01T00:00:01.000000001Z"),
        (123_456_780, "1970-01-01T00:00:00.12345678Z"),
        (utc_ns(999, 5, 1, 0, 0, 0), "0999-05-01T00:00:00Z"),
        (utc_ns(42, 1, 2, 3, 4, 5, 60), "0042-01-02T03:04:05.00000006Z"),
        (MAX_NS, "9999-12-31T23:59:59.999999999Z"),
    ],
)
def test_format_trims_trailing_zeros_and_pads_the_year(ns: int, text: str) -> None:
    assert format_rfc3339_ns(ns) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "2026-11-23",
        "2026-11-23T08:53:44",  # no offset
        "2026-11-23T08:53Z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T08:60:00Z",
        "2026-11-23T08:53:44.Z",  # empty fraction
        "2026-11-23T08:53:44,5Z",
        "2026-11-23T08:53:44+2:00",
        "2026-11-23T08:53:44+02",
        "2026-11-23T08:53:44Zjunk",
        "26-11-23T08:53:44Z",
        "1-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
def test_garbage_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ns(text)


ns_values = st.integers(GO_ZERO_NS, MAX_NS)


@settings(max_examples=200)
@given(ns_values)
def test_format_then_parse_round_trips(ns: int) -> None:
    text = format_rfc3339_ns(ns)
    assert GO_FORMAT.fullmatch(text), text
    assert parse_rfc3339_ns(text) == ns


@settings(max_examples=200)
@given(st.integers(GO_ZERO_NS // S, MAX_NS // S).map(lambda s: s * S))
def test_whole_seconds_have_no_fraction(ns: int) -> None:
    text = format_rfc3339_ns(ns)
    assert "." not in text
    assert parse_rfc3339_ns(text) == ns


@settings(max_examples=200)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_parse_agrees_with_datetime_isoformat(moment: datetime, offset_minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    expected = (moment - EPOCH) // timedelta(microseconds=1) * 1000
    assert parse_rfc3339_ns(local.isoformat()) == expected


def test_ns_to_datetime_truncates_to_microseconds() -> None:
    assert ns_to_datetime(SERVER_STAMP_NS) == datetime(2026, 11, 23, 8, 53, 44, 88_400, tzinfo=UTC)
    assert ns_to_datetime(0) == EPOCH
    assert ns_to_datetime(-1) == EPOCH - timedelta(microseconds=1)
