"""Turning what a caller hands to ``put`` into chunks of a fixed size.

Accepted: ``bytes``-like, a binary file object (``readinto``/``read``), an iterable or an async
iterable of bytes. Regular files are read directly (the page cache answers at memory speed);
pipes, terminals and sockets are read in a worker thread so a slow producer never stalls the
event loop that is also receiving publish acks.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import BinaryIO, Protocol, runtime_checkable

Source = bytes | bytearray | memoryview | BinaryIO | Iterable[bytes] | AsyncIterable[bytes]


@runtime_checkable
class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _is_regular_file(handle: _Readable) -> bool:
    try:
        fileno = handle.fileno()  # type: ignore[attr-defined]
        return stat.S_ISREG(os.fstat(fileno).st_mode)
    except (AttributeError, OSError, ValueError):
        return True  # BytesIO and friends: in memory, never block


async def chunks_of(source: Source, chunk_size: int) -> AsyncIterator[bytes]:
    """Yield ``source`` as chunks of exactly ``chunk_size`` bytes, the last one shorter.

    Chunks are never empty; an empty source yields nothing.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    if isinstance(source, _Readable):
        async for chunk in _chunks_of_file(source, chunk_size):
            yield chunk
        return
    buffer = bytearray()
    if isinstance(source, AsyncIterable):
        async for piece in source:
            buffer += piece
            while len(buffer) >= chunk_size:
                yield bytes(buffer[:chunk_size])
                del buffer[:chunk_size]
    else:
        for piece in source:
            buffer += piece
            while len(buffer) >= chunk_size:
                yield bytes(buffer[:chunk_size])
                del buffer[:chunk_size]
    if buffer:
        yield bytes(buffer)


async def _chunks_of_file(handle: _Readable, chunk_size: int) -> AsyncIterator[bytes]:
    blocking = not _is_regular_file(handle)
    loop = asyncio.get_running_loop()
    buffer = bytearray()
    while True:
        want = chunk_size - len(buffer)
        if blocking:
            piece = await loop.run_in_executor(None, handle.read, max(want, 1 << 20))
        else:
            piece = handle.read(want)
        if not piece:
            break
        if not buffer and len(piece) == chunk_size:
            yield bytes(piece)
            continue
        buffer += piece
        while len(buffer) >= chunk_size:
            yield bytes(buffer[:chunk_size])
            del buffer[:chunk_size]
    if buffer:
        yield bytes(buffer)
