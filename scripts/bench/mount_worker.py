"""The client side of the mount benchmarks (``scripts/bench_mount.py``, ``scripts/bench_write.py``),
one op per process: ``python mount_worker.py '<json>'``.

The request is a JSON object with ``op``, ``url`` and the op's fields; the answer is one JSON line
on stdout (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``). Only the operation is
timed: interpreter start, imports and connecting are not (``process_s`` is the whole life of the
process up to the answer, for comparison with the mount's ready time, which includes all that).

Ops:
    put       bucket, name, path      create the bucket if missing, ``store.put`` the file (untimed)
    get       bucket, name            ``async for chunk in await store.get(name)``: elapsed, bytes
    chunks    bucket, name, count, seed
                                      ``store.read_chunks(index, [i])`` one at a time for ``count``
                                      distinct random chunks: every latency in seconds
    populate  bucket, count, dirs     ``count`` one-chunk objects by raw pipelined publishes of a
                                      chunk and an ``encode_meta`` document each: elapsed
    walk      bucket                  ``store.watch()`` until the None marker, then ``store.list()``
                                      (``walk_process_s``: process start to the walk's end)
    changes   bucket, count, mountpoint, gap, limit
                                      ``count`` puts of new tiny objects; after each put is
                                      acknowledged, ``os.lstat`` of its path in the mount is polled
                                      until it succeeds: every latency in seconds
    create    bucket                  create the bucket (untimed)
    delete    bucket                  delete the bucket and everything in it (untimed)
    puts      bucket, count, size, prefix
                                      ``count`` sequential ``store.put``s of distinct random
                                      ``size``-byte objects ``prefix/f<i>``: elapsed, ops, bytes
    verify    bucket, name, path      object ``name`` holds the bytes of local file ``path``: its
                                      size and digest as stored, and the SHA-256 of a streaming
                                      get of it, against the file's (fails on any difference)
    count     bucket, prefix          the live objects under ``prefix``: files (names not ending
                                      in '/'), directory markers, total bytes of the files
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

START = time.perf_counter()

# Run as a script from anywhere: make the project importable.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nats.aio.msg import Msg  # noqa: E402

from osfs.core.config import ObjectStoreConfig  # noqa: E402
from osfs.core.digest import digest_of, format_digest  # noqa: E402
from osfs.core.errors import BucketNotFoundError, NoObjectsFoundError  # noqa: E402
from osfs.core.meta import DEFAULT_CHUNK_SIZE, ObjectInfo, ObjectMeta, encode_meta  # noqa: E402
from osfs.core.subjects import chunk_subject, meta_subject  # noqa: E402
from osfs.store import Connection, ConnectOptions, ObjectStore, open_connection  # noqa: E402

Request = dict[str, Any]
Answer = dict[str, Any]

#: Raw publishes outstanding at once while populating a bucket.
WINDOW = 512


async def _store(conn: Connection, bucket: str, *, create: bool = False) -> ObjectStore:
    try:
        return await conn.manager.object_store(bucket)
    except BucketNotFoundError:
        if not create:
            raise
        return await conn.manager.create_object_store(ObjectStoreConfig(bucket=bucket))


async def op_put(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"], create=True)
    start = time.perf_counter()
    info = await store.put_file(req["path"], name=req["name"])
    return {"elapsed": time.perf_counter() - start, "bytes": info.size}


async def op_get(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"])
    total = 0
    start = time.perf_counter()
    async with await store.get(req["name"]) as result:
        async for chunk in result:
            total += len(chunk)
    return {"elapsed": time.perf_counter() - start, "bytes": total}


async def op_chunks(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"])
    info = await store.get_info(req["name"])
    index = await store.chunk_index(info)
    picks = random.Random(req.get("seed", 1)).sample(range(info.chunks), req["count"])
    latencies: list[float] = []
    for position in picks:
        start = time.perf_counter()
        (payload,) = await store.read_chunks(index, [position])
        latencies.append(time.perf_counter() - start)
        if not payload:
            raise RuntimeError(f"chunk {position} is empty")
    return {"latencies": latencies}


async def op_populate(conn: Connection, req: Request) -> Answer:
    """Objects ``d<k>/f<i>`` of 16 bytes: one chunk and one meta document each, pipelined."""
    bucket: str = req["bucket"]
    await _store(conn, bucket, create=True)
    nc = conn.nc
    count: int = req["count"]
    dirs: int = req["dirs"]
    inbox = nc.new_inbox()
    acked = 0
    errors: list[str] = []
    window = asyncio.Semaphore(WINDOW)
    all_acked = asyncio.Event()
    expected = 2 * count

    async def on_ack(msg: Msg) -> None:
        nonlocal acked
        if b'"error"' in msg.data:
            errors.append(msg.data.decode("utf-8", "replace"))
        acked += 1
        window.release()
        if acked >= expected:
            all_acked.set()

    sub = await nc.subscribe(inbox + ".*", cb=on_ack)
    now_ns = time.time_ns()
    start = time.perf_counter()
    for i in range(count):
        name = f"d{i % dirs:03d}/f{i:07d}"
        payload = f"object {i:09d}\n".encode()[:16]
        nuid = f"benchnuid{i:013d}"
        info = ObjectInfo(
            name=name,
            bucket=bucket,
            nuid=nuid,
            size=len(payload),
            chunks=1,
            digest=digest_of(payload),
            max_chunk_size=DEFAULT_CHUNK_SIZE,
            mtime_ns=now_ns,
        )
        await window.acquire()
        await nc.publish(chunk_subject(bucket, nuid), payload, reply=f"{inbox}.c{i}")
        await window.acquire()
        await nc.publish(
            meta_subject(bucket, name),
            encode_meta(info),
            reply=f"{inbox}.m{i}",
            headers={"Nats-Rollup": "sub"},
        )
    await asyncio.wait_for(all_acked.wait(), 120.0)
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    if errors:
        raise RuntimeError(f"{len(errors)} publishes refused, e.g. {errors[0]}")
    return {"elapsed": elapsed, "ops": count}


async def op_walk(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"])
    seen = 0
    start = time.perf_counter()
    async with store.watch() as watcher:
        async for entry in watcher:
            if entry is None:
                break
            seen += 1
    watch_s = time.perf_counter() - start
    walk_process_s = time.perf_counter() - START
    start = time.perf_counter()
    try:
        listed = len(await store.list())
    except NoObjectsFoundError:
        listed = 0
    return {
        "elapsed": watch_s,
        "ops": seen,
        "list_s": time.perf_counter() - start,
        "listed": listed,
        "walk_process_s": walk_process_s,
    }


def wait_visible(path: Path, deadline: float) -> float | None:
    """Poll ``os.lstat(path)`` every 0.2 ms: when it first succeeded, or None at ``deadline``.

    Blocking on purpose: nothing else runs in the process meanwhile, and the event loop would
    only add its own latency to the polling.
    """
    while True:
        try:
            os.lstat(path)
        except FileNotFoundError:
            now = time.perf_counter()
            if now > deadline:
                return None
            time.sleep(0.0002)
            continue
        return time.perf_counter()


async def op_changes(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"])
    mountpoint = Path(req["mountpoint"])
    limit: float = req.get("limit", 10.0)
    tag = f"{os.getpid()}-{time.time_ns()}"
    latencies: list[float] = []
    missed = 0
    for i in range(req["count"]):
        name = f"change-{tag}-{i:04d}"
        await store.put_bytes(name, b"changed\n")
        acked = time.perf_counter()
        seen = wait_visible(mountpoint / name, acked + limit)
        if seen is None:
            missed += 1
        else:
            latencies.append(seen - acked)
        await asyncio.sleep(req.get("gap", 0.02))
    return {"latencies": latencies, "missed": missed}


async def op_create(conn: Connection, req: Request) -> Answer:
    await _store(conn, req["bucket"], create=True)
    return {}


async def op_delete(conn: Connection, req: Request) -> Answer:
    await conn.manager.delete_object_store(req["bucket"])
    return {}


async def op_puts(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"], create=True)
    count: int = req["count"]
    size: int = req["size"]
    prefix: str = req.get("prefix", "small")
    blob = os.urandom(count * size)
    payloads = [blob[i * size : (i + 1) * size] for i in range(count)]
    start = time.perf_counter()
    for i, payload in enumerate(payloads):
        await store.put(ObjectMeta(name=f"{prefix}/f{i:05d}"), payload)
    return {"elapsed": time.perf_counter() - start, "ops": count, "bytes": count * size}


async def op_verify(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"])
    local = hashlib.sha256()
    size = 0
    with open(req["path"], "rb") as source:  # noqa: ASYNC230 - local file, untimed
        while piece := source.read(8 * 1024 * 1024):
            local.update(piece)
            size += len(piece)
    expected = format_digest(local.digest())
    info = await store.get_info(req["name"])
    read = hashlib.sha256()
    got = 0
    async with await store.get(req["name"]) as result:
        async for chunk in result:
            read.update(chunk)
            got += len(chunk)
    answer = {
        "size": size,
        "stored_size": info.size,
        "read_size": got,
        "digest": expected,
        "stored_digest": info.digest,
        "read_digest": format_digest(read.digest()),
        "chunks": info.chunks,
    }
    if not size == info.size == got or not expected == info.digest == answer["read_digest"]:
        raise RuntimeError(f"stored object differs from the file: {answer}")
    return answer


async def op_count(conn: Connection, req: Request) -> Answer:
    store = await _store(conn, req["bucket"])
    prefix: str = req.get("prefix", "")
    try:
        infos = [info for info in await store.list() if info.name.startswith(prefix)]
    except NoObjectsFoundError:
        infos = []
    files = [info for info in infos if not info.name.endswith("/")]
    return {
        "files": len(files),
        "markers": len(infos) - len(files),
        "bytes": sum(info.size for info in files),
    }


OPS: dict[str, Callable[[Connection, Request], Awaitable[Answer]]] = {
    "put": op_put,
    "get": op_get,
    "chunks": op_chunks,
    "populate": op_populate,
    "walk": op_walk,
    "changes": op_changes,
    "create": op_create,
    "delete": op_delete,
    "puts": op_puts,
    "verify": op_verify,
    "count": op_count,
}


async def run(req: Request) -> Answer:
    conn = await open_connection(ConnectOptions(servers=(req["url"],)))
    try:
        answer = await OPS[req["op"]](conn, req)
    finally:
        await conn.close()
    return answer


def main(argv: list[str]) -> int:
    req: Request = json.loads(argv[1])
    try:
        answer = asyncio.run(run(req))
        answer["ok"] = True
    except Exception as exc:  # report, so the parent can print the cause and carry on
        traceback.print_exc()
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    answer["process_s"] = time.perf_counter() - START
    print(json.dumps(answer), flush=True)
    return 0 if answer["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
