"""One benchmark case in its own Python process: ``python scripts/bench/pyworker.py '<json>'``.

The request is a JSON object with ``op`` and ``url`` and the op's fields; the answer is one JSON
line on stdout: ``{"ok": true, "elapsed": s, "bytes": n, "ops": k, "hwm_kib": ..., "base_kib":
...}`` or ``{"ok": false, "error": "..."}``. Only the operation itself is timed: interpreter start,
imports, connecting and creating buckets are not. ``hwm_kib`` is the process's peak resident set
(``VmHWM``) at the end, ``base_kib`` its resident set just before the timed operation, ``cpu_s``
the CPU time (user + system, all threads) the process spent during it.

Ops (``bucket`` is created by the op that writes it; the parent deletes buckets):
    raw_put      path, bucket, chunk         pipelined JetStream publish of the file's bytes
    raw_get      bucket, nuid, size          ordered push consumer read into a bytearray
    osfs_prepare path, bucket, name          osfs put, untimed use: returns the nuid for raw_get
    osfs_put     path, bucket, name          ``store.put(ObjectMeta(name), file)``
    osfs_get     bucket, name, sink          ``async for chunk in await store.get(name)``
    natspy_put   path, bucket, name          nats-py ``ObjectStore.put(name, file)``
    natspy_get   bucket, name, sink          nats-py ``ObjectStore.get(name, writeinto=file)``
    natspy_get_bytes bucket, name, limit     nats-py ``ObjectStore.get(name)`` (bytes, default)
    osfs_small / natspy_small  bucket, count, size   ``count`` puts, then ``count`` gets
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

# Run as a script from anywhere: make the project importable.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
import nats.aio.client  # noqa: E402
from nats.aio.client import Client  # noqa: E402
from nats.aio.msg import Msg  # noqa: E402

from osfs.core.config import ObjectStoreConfig  # noqa: E402
from osfs.core.meta import ObjectMeta  # noqa: E402
from osfs.store import ConnectOptions, open_connection  # noqa: E402
from osfs.store.connection import READ_BUFFER_SIZE  # noqa: E402

Request = dict[str, Any]
Answer = dict[str, Any]

#: Like osfs's connection (osfs.store.connection): the raw paths get the same client settings.
PENDING_SIZE = 8 * 1024 * 1024
ACK_WINDOW = 32


def _proc_status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmHWM, VmRSS), 0 where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _sink(request: Request) -> io.BufferedWriter:
    """Where a get writes: /dev/null (``null``, the default) or the file ``out``."""
    if request.get("sink", "null") == "file":
        return open(request["out"], "wb")
    return open(os.devnull, "wb")


async def _timed(work: Callable[[], Awaitable[int]], *, ops: int = 1, name: str = "") -> Answer:
    base = _proc_status_kib("VmRSS")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    done = await work()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ok": True,
        "elapsed": elapsed,
        "bytes": done,
        "ops": ops,
        "base_kib": base,
        "hwm_kib": _proc_status_kib("VmHWM"),
        "cpu_s": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
        "case": name,
    }


# Raw JetStream paths -----------------------------------------------------------------------


async def _raw_connect(url: str) -> Client:
    nats.aio.client.DEFAULT_BUFFER_SIZE = READ_BUFFER_SIZE  # osfs's socket reads, as PENDING_SIZE
    nc: Client = await nats.connect(url, pending_size=PENDING_SIZE, allow_reconnect=False)
    return nc


async def _request(nc: Client, subject: str, body: dict[str, Any] | None) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    msg = await nc.request(subject, payload, timeout=10.0)
    answer: dict[str, Any] = json.loads(msg.data)
    if "error" in answer:
        raise RuntimeError(f"{subject}: {answer['error']}")
    return answer


async def raw_put(request: Request) -> Answer:
    """Publish the file's bytes in ``chunk``-sized messages, 32 acks outstanding.

    The acks are counted by one wildcard subscription's callback; a failed ack fails the case.
    No hashing and no meta document: the ceiling an Object Store put can approach.
    """
    url, bucket, path = request["url"], request["bucket"], request["path"]
    chunk_size = int(request.get("chunk", 128 * 1024))
    async with await open_connection(ConnectOptions(servers=(url,))) as conn:
        await conn.manager.create_object_store(ObjectStoreConfig(bucket=bucket))
    nc = await _raw_connect(url)
    try:
        inbox = nc.new_inbox()
        subject = f"$O.{bucket}.C.rawpublish"
        acked = 0
        failures: list[bytes] = []
        progress = asyncio.Event()

        async def on_ack(msg: Msg) -> None:
            nonlocal acked
            acked += 1
            if msg.data.startswith(b'{"error"') or (msg.headers or {}).get("Status"):
                failures.append(msg.data or b"no responders")
            progress.set()

        sub = await nc.subscribe(inbox + ".*", cb=on_ack)

        async def work() -> int:
            sent = total = 0
            with open(path, "rb") as source:  # noqa: ASYNC230 - page cache, like osfs's put
                while True:
                    payload = source.read(chunk_size)
                    if not payload:
                        break
                    while sent - acked >= ACK_WINDOW:
                        progress.clear()
                        await asyncio.wait_for(progress.wait(), 10.0)
                    sent += 1
                    total += len(payload)
                    await nc.publish(subject, payload, reply=f"{inbox}.{sent}")
            while acked < sent:
                progress.clear()
                await asyncio.wait_for(progress.wait(), 10.0)
            if failures:
                raise RuntimeError(f"publish failed: {failures[0]!r}")
            return total

        answer = await _timed(work, name="raw_put")
        await sub.unsubscribe()
        return answer
    finally:
        await nc.close()


async def raw_get(request: Request) -> Answer:
    """Read an object's chunks with an ordered push consumer into a bytearray.

    The ephemeral consumer is created with ``$JS.API.CONSUMER.CREATE`` (deliver all, no acks,
    flow control, memory storage); flow-control requests are answered at once from the
    subscription callback; the read ends at the message whose ``pending`` is 0. Creating the
    consumer is part of the timed read, as it is for the clients' gets.
    """
    url, bucket, nuid, size = request["url"], request["bucket"], request["nuid"], request["size"]
    stream = f"OBJ_{bucket}"
    nc = await _raw_connect(url)
    try:
        deliver = nc.new_inbox()
        data = bytearray()
        finished = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            headers = msg.headers or {}
            if headers.get("Status") == "100":
                if msg.reply:  # flow control: answer immediately
                    await nc.publish(msg.reply, b"")
                stalled = headers.get("Nats-Consumer-Stalled")
                if stalled:
                    await nc.publish(stalled, b"")
                return
            data.extend(msg.data)
            if msg.reply.rpartition(".")[2] == "0":
                finished.set()

        sub = await nc.subscribe(deliver, cb=on_msg)
        config = {
            "stream_name": stream,
            "config": {
                "deliver_subject": deliver,
                "deliver_policy": "all",
                "ack_policy": "none",
                "replay_policy": "instant",
                "filter_subject": f"$O.{bucket}.C.{nuid}",
                "flow_control": True,
                "idle_heartbeat": 5_000_000_000,
                "mem_storage": True,
                "num_replicas": 1,
                "inactive_threshold": 5_000_000_000,
            },
        }
        consumer = ""

        async def work() -> int:
            nonlocal consumer
            created = await _request(nc, f"$JS.API.CONSUMER.CREATE.{stream}", config)
            consumer = str(created["name"])
            await asyncio.wait_for(finished.wait(), 300.0)
            return len(data)

        answer = await _timed(work, name="raw_get")
        await sub.unsubscribe()
        if consumer:
            await _request(nc, f"$JS.API.CONSUMER.DELETE.{stream}.{consumer}", None)
        if len(data) != size:
            raise RuntimeError(f"raw read got {len(data)} bytes, expected {size}")
        return answer
    finally:
        await nc.close()


# osfs ---------------------------------------------------------------------------------------


async def osfs_put(request: Request) -> Answer:
    """``store.put(ObjectMeta(name), file)`` from the data file (digest computed by osfs)."""
    url, bucket, name, path = request["url"], request["bucket"], request["name"], request["path"]
    async with await open_connection(ConnectOptions(servers=(url,))) as conn:
        store = await conn.manager.create_object_store(ObjectStoreConfig(bucket=bucket))
        nuid = ""

        async def work() -> int:
            nonlocal nuid
            with open(path, "rb") as source:  # noqa: ASYNC230 - what put_file does
                info = await store.put(ObjectMeta(name=name), source)
            nuid = info.nuid
            return info.size

        answer = await _timed(work, name="osfs_put")
        answer["nuid"] = nuid
        await store.aclose()
        return answer


async def osfs_get(request: Request) -> Answer:
    """``async for chunk in await store.get(name)``; osfs checks size and digest at the end."""
    url, bucket, name = request["url"], request["bucket"], request["name"]
    async with await open_connection(ConnectOptions(servers=(url,))) as conn:
        store = await conn.manager.object_store(bucket)
        sink = _sink(request)
        write = request.get("sink", "null") == "file"

        async def work() -> int:
            total = 0
            async with await store.get(name) as result:
                async for chunk in result:
                    if write:
                        sink.write(chunk)
                    total += len(chunk)
            return total

        try:
            answer = await _timed(work, name="osfs_get")
        finally:
            sink.close()
        await store.aclose()
        return answer


async def osfs_small(request: Request) -> Answer:
    """``count`` puts of ``size``-byte objects, then a get of each (sequential, one at a time)."""
    url, bucket = request["url"], request["bucket"]
    count, size = int(request["count"]), int(request["size"])
    blob = os.urandom(count * size)
    payloads = [blob[i * size : (i + 1) * size] for i in range(count)]
    async with await open_connection(ConnectOptions(servers=(url,))) as conn:
        store = await conn.manager.create_object_store(ObjectStoreConfig(bucket=bucket))
        got: list[bytes] = []

        async def puts() -> int:
            for i, payload in enumerate(payloads):
                await store.put(ObjectMeta(name=f"small/{i}"), payload)
            return count * size

        async def gets() -> int:
            for i in range(count):
                got.append(await store.get_bytes(f"small/{i}"))  # noqa: PERF401
            return count * size

        put = await _timed(puts, ops=count, name="osfs_small_put")
        get = await _timed(gets, ops=count, name="osfs_small_get")
        await store.aclose()
    if got != payloads:
        raise RuntimeError("osfs small gets returned other bytes than were put")
    return {"ok": True, "put": put, "get": get}


# nats-py's ObjectStore ----------------------------------------------------------------------


async def _natspy_connect(url: str) -> Client:
    nc: Client = await nats.connect(url, allow_reconnect=False)
    return nc


async def natspy_put(request: Request) -> Answer:
    """nats-py ``ObjectStore.put(name, file)`` (it reads the file with ``readinto``)."""
    url, bucket, name, path = request["url"], request["bucket"], request["name"], request["path"]
    nc = await _natspy_connect(url)
    try:
        js = nc.jetstream()
        obs = await js.create_object_store(bucket)

        async def work() -> int:
            with open(path, "rb") as source:  # noqa: ASYNC230 - nats-py reads it in a thread
                info = await obs.put(name, source)
            return int(info.size or 0)

        return await _timed(work, name="natspy_put")
    finally:
        await nc.close()


async def natspy_get(request: Request) -> Answer:
    """nats-py ``ObjectStore.get(name, writeinto=sink)``: its fast configuration."""
    url, bucket, name, size = request["url"], request["bucket"], request["name"], request["size"]
    nc = await _natspy_connect(url)
    sink = _sink(request)
    try:
        js = nc.jetstream()
        obs = await js.object_store(bucket)

        async def work() -> int:
            await obs.get(name, writeinto=sink)
            return int(size)

        return await _timed(work, name="natspy_get")
    finally:
        sink.close()
        await nc.close()


async def natspy_get_bytes(request: Request) -> Answer:
    """nats-py ``ObjectStore.get(name)`` into bytes (its default), given ``limit`` seconds."""
    url, bucket, name = request["url"], request["bucket"], request["name"]
    limit = float(request.get("limit", 60.0))
    nc = await _natspy_connect(url)
    try:
        js = nc.jetstream()
        obs = await js.object_store(bucket)

        async def work() -> int:
            result = await asyncio.wait_for(obs.get(name), limit)
            return len(result.data or b"")

        try:
            return await _timed(work, name="natspy_get_bytes")
        except TimeoutError:
            return {"ok": False, "error": f"timed out after {limit:.0f}s", "timeout": limit}
    finally:
        await nc.close()


async def natspy_small(request: Request) -> Answer:
    """``count`` nats-py puts of ``size``-byte objects, then a get of each."""
    url, bucket = request["url"], request["bucket"]
    count, size = int(request["count"]), int(request["size"])
    blob = os.urandom(count * size)
    payloads = [blob[i * size : (i + 1) * size] for i in range(count)]
    nc = await _natspy_connect(url)
    try:
        js = nc.jetstream()
        obs = await js.create_object_store(bucket)
        got: list[bytes] = []

        async def puts() -> int:
            for i, payload in enumerate(payloads):
                await obs.put(f"small/{i}", payload)
            return count * size

        async def gets() -> int:
            for i in range(count):
                result = await obs.get(f"small/{i}")
                got.append(bytes(result.data or b""))
            return count * size

        put = await _timed(puts, ops=count, name="natspy_small_put")
        get = await _timed(gets, ops=count, name="natspy_small_get")
    finally:
        await nc.close()
    if got != payloads:
        raise RuntimeError("nats-py small gets returned other bytes than were put")
    return {"ok": True, "put": put, "get": get}


OPS: dict[str, Callable[[Request], Coroutine[Any, Any, Answer]]] = {
    "raw_put": raw_put,
    "raw_get": raw_get,
    "osfs_prepare": osfs_put,
    "osfs_put": osfs_put,
    "osfs_get": osfs_get,
    "osfs_small": osfs_small,
    "natspy_put": natspy_put,
    "natspy_get": natspy_get,
    "natspy_get_bytes": natspy_get_bytes,
    "natspy_small": natspy_small,
}


def main(argv: list[str]) -> int:
    request: Request = json.loads(argv[1] if len(argv) > 1 else sys.stdin.read())
    answer: Answer
    try:
        answer = asyncio.run(OPS[request["op"]](request))
    except Exception as exc:  # report, so the parent can print the cause and carry on
        traceback.print_exc()
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(answer), flush=True)
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
