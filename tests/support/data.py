"""Test payloads: deterministic bytes that do not compress, so sizes and digests mean something."""

from __future__ import annotations

import hashlib


def payload(size: int, seed: int = 1) -> bytes:
    """``size`` deterministic, incompressible-looking bytes; another ``seed`` gives others."""
    out = bytearray()
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest()
    while len(out) < size:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:size])
