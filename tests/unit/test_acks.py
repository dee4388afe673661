"""JetStream ack reply subjects, v1 and v2 layouts (wire.md §16.4).

Rules for these tests: every field gets a distinct value so a swapped index is caught; the
layouts are spelled out token by token, not built with the parser's own slicing.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from osfs.core.acks import Delivery, parse_ack_subject
from osfs.core.timefmt import format_rfc3339_ns


def test_v1_sample_from_a_headers_only_delivery() -> None:
    # wire.md §16.4 [verified].
    delivery = parse_ack_subject("$JS.ACK.OBJ_GOB.hlHtm2RR.1.1.1.1795424024088336779.2")
    assert delivery == Delivery(
        stream="OBJ_GOB",
        consumer="hlHtm2RR",
        delivered=1,
        stream_seq=1,
        consumer_seq=1,
        timestamp_ns=1795424024088336779,
        pending=2,
    )
    assert format_rfc3339_ns(delivery.timestamp_ns) == "2026-11-23T08:53:44.088336779Z"


def test_v1_fields_in_order() -> None:
    delivery = parse_ack_subject("$JS.ACK.S.C.2.15.7.1795424024088336779.0")
    assert delivery == Delivery("S", "C", 2, 15, 7, 1795424024088336779, 0)


def test_v2_with_token() -> None:
    subject = "$JS.ACK.hub.ACCHASH.OBJ_GOB.cons.3.18.11.1795424024088336779.4.xK9zQ"
    assert len(subject.split(".")) == 12
    assert parse_ack_subject(subject) == Delivery(
        "OBJ_GOB", "cons", 3, 18, 11, 1795424024088336779, 4
    )


def test_v2_without_token_and_with_empty_domain() -> None:
    subject = "$JS.ACK._.ACCHASH.OBJ_GOB.cons.3.18.11.1795424024088336779.0"
    assert len(subject.split(".")) == 11
    assert parse_ack_subject(subject) == Delivery(
        "OBJ_GOB", "cons", 3, 18, 11, 1795424024088336779, 0
    )


def test_v2_with_more_trailing_tokens() -> None:
    subject = "$JS.ACK._.H.S.C.1.2.3.4.5.tok.extra"
    assert parse_ack_subject(subject) == Delivery("S", "C", 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "$JS.ACK",
        "$JS.ACK.S.C.1.2.3.4",  # 8 tokens
        "$JS.ACK.D.H.S.C.1.2.3.4",  # 10 tokens: neither layout
        "$JS.API.S.C.1.2.3.4.5",
        "$KV.ACK.S.C.1.2.3.4.5",
        "JS.ACK.S.C.1.2.3.4.5",
        "$js.ack.S.C.1.2.3.4.5",
        "$JS.ACK.S.C.x.2.3.4.5",  # not a number
        "$JS.ACK.S.C.1.2.3.4.",  # empty pending
        "$JS.ACK.D.H.S.C.1.2.3.four.5.tok",
    ],
)
def test_rejects_subjects_that_are_not_ack_subjects(subject: str) -> None:
    with pytest.raises(ValueError):
        parse_ack_subject(subject)


names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1
)
counts = st.integers(0, 2**64 - 1)


@settings(max_examples=200)
@given(names, names, counts, counts, counts, counts, counts, names, names, st.booleans())
def test_both_layouts_parse_to_the_same_delivery(
    stream: str,
    consumer: str,
    delivered: int,
    sseq: int,
    dseq: int,
    stamp: int,
    pending: int,
    domain: str,
    acc_hash: str,
    with_token: bool,
) -> None:
    expected = Delivery(stream, consumer, delivered, sseq, dseq, stamp, pending)
    tail = f"{stream}.{consumer}.{delivered}.{sseq}.{dseq}.{stamp}.{pending}"
    assert parse_ack_subject(f"$JS.ACK.{tail}") == expected
    v2 = f"$JS.ACK.{domain}.{acc_hash}.{tail}" + (".tok" if with_token else "")
    assert parse_ack_subject(v2) == expected
