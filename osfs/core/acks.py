"""What a JetStream delivery's reply subject says: stream sequence, timestamp, pending count.

Both layouts exist in the wild (wire.md §16.4): v1 ``$JS.ACK.<stream>.<consumer>.<delivered>.
<sseq>.<dseq>.<ts>.<pending>`` (9 tokens) and v2 ``$JS.ACK.<domain>.<hash>.<stream>.<consumer>.
<delivered>.<sseq>.<dseq>.<ts>.<pending>[.<token>...]`` (11+ tokens). nats.py reads only v1;
osfs reads both. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """The metadata of one consumer delivery."""

    stream: str
    consumer: str
    delivered: int
    stream_seq: int
    consumer_seq: int
    timestamp_ns: int
    pending: int


def parse_ack_subject(subject: str) -> Delivery:
    """Parse a ``$JS.ACK...`` reply subject.

    Raises:
        ValueError: not a JetStream ack subject of a known layout.
    """
    tokens = subject.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise ValueError(f"not a JetStream ack subject: {subject!r}")
    if len(tokens) == 9:
        fields = tokens[2:9]
    elif len(tokens) >= 11:
        fields = tokens[4:11]
    else:
        raise ValueError(f"ack subject of unknown layout: {subject!r}")
    stream, consumer, delivered, sseq, dseq, stamp, pending = fields
    return Delivery(
        stream=stream,
        consumer=consumer,
        delivered=int(delivered),
        stream_seq=int(sseq),
        consumer_seq=int(dseq),
        timestamp_ns=int(stamp),
        pending=int(pending),
    )
