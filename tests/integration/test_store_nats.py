"""The osfs Object Store client against a real nats-server: semantics, wire format, failures.

Each test gets its own bucket on the session's server (``bucket_name``); tests that stop the
server use their own (``fresh_nats_server``). What is asserted about the wire is read back with a
plain nats-py connection (``raw``), never through osfs's own reader.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from osfs.core import errors
from osfs.core.config import ObjectStoreConfig
from osfs.core.digest import EMPTY_DIGEST, digest_of
from osfs.core.meta import ObjectMeta, encode_meta
from osfs.core.subjects import chunk_subject, meta_subject, stream_name
from osfs.store import ConnectOptions, open_connection
from osfs.store.connection import NATS_PY_READ_BUFFER_SIZE, READ_BUFFER_SIZE
from osfs.store.jsapi import JetStreamApi
from tests.support.aio import asyncio_test
from tests.support.data import payload
from tests.support.nats_server import NatsServer
from tests.support.store_fixtures import (
    api,
    bucket,
    message_count,
    opened,
    put_raw,
    raw,
    stored_messages,
)
from tests.support.waiting import async_wait_until

pytestmark = pytest.mark.integration


# Put and get -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096])
@asyncio_test
async def test_round_trip_sizes_and_digest(nats_url: str, bucket_name: str, size: int) -> None:
    data = payload(size)
    async with bucket(nats_url, bucket_name) as store:
        info = await store.put(ObjectMeta(name="obj", chunk_size=4096), data)
        assert info.size == size
        assert info.chunks == -(-size // 4096)
        assert info.digest == digest_of(data)
        assert await store.get_bytes("obj") == data
        fetched = await store.get_info("obj")
        assert (fetched.nuid, fetched.size, fetched.digest) == (info.nuid, size, info.digest)
    if size == 0:
        assert info.digest == EMPTY_DIGEST


@asyncio_test
async def test_wire_format_is_what_nats_go_writes(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        info = await store.put(
            ObjectMeta(name="dir/é <&>.txt", description="d", headers={"X-A": ("1",)}),
            b"0123456789",
        )
        stream = stream_name(bucket_name)
        config = (await api(nc, f"STREAM.INFO.{stream}"))["config"]
        assert config["subjects"] == [f"$O.{bucket_name}.C.>", f"$O.{bucket_name}.M.>"]
        assert (config["discard"], config["allow_rollup_hdrs"], config["allow_direct"]) == (
            "new",
            True,
            True,
        )
        assert (config["max_bytes"], config["num_replicas"]) == (-1, 1)

        [meta] = await stored_messages(nc, stream, meta_subject(bucket_name, info.name))
        assert meta["subject"] == f"$O.{bucket_name}.M.ZGlyL8OpIDwmPi50eHQ="
        assert "Nats-Rollup: sub" in meta["hdrs"]
        document = json.loads(meta["data"])
        assert list(document) == [
            "name",
            "description",
            "headers",
            "options",
            "bucket",
            "nuid",
            "size",
            "mtime",
            "chunks",
            "digest",
        ]
        assert b"\\u003c\\u0026\\u003e" in meta["data"]  # Go's HTML escaping
        assert document["digest"] == digest_of(b"0123456789")
        assert document["mtime"] != ""
        assert meta["data"] == encode_meta(info)  # byte for byte what put returned

        [chunk] = await stored_messages(nc, stream, chunk_subject(bucket_name, info.nuid))
        assert chunk["hdrs"] == ""  # chunks carry no headers
        assert chunk["data"] == b"0123456789"


@asyncio_test
async def test_put_sources_file_iterable_async_iterable(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    data = payload(300_000)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 7_777):
            yield data[start : start + 7_777]

    path = tmp_path / "file.bin"
    path.write_bytes(data)
    async with bucket(nats_url, bucket_name) as store:
        await store.put(ObjectMeta(name="file"), io.BytesIO(data))
        await store.put(ObjectMeta(name="iter"), [data[:1000], data[1000:]])
        await store.put(ObjectMeta(name="aiter"), pieces())
        by_path = await store.put_file(path)
        assert by_path.name == str(path)
        for name in ("file", "iter", "aiter", str(path)):
            assert await store.get_bytes(name) == data, name
        await store.put_string("text", "héllo")
        assert await store.get_string("text") == "héllo"
        seen: list[int] = []
        out = tmp_path / "out.bin"
        await store.get_file("file", out, progress=seen.append)
        assert out.read_bytes() == data
        assert seen[-1] == len(data)


@asyncio_test
async def test_begin_put_cuts_pieces_of_any_size_into_uniform_chunks(
    nats_url: str, bucket_name: str
) -> None:
    """A put fed in pieces (a file streamed while written) stores the layout a whole put does:
    every chunk 128 KiB but the last, whatever the pieces' sizes; the meta given at commit
    wins, and nothing is visible before it."""
    chunk = 128 * 1024
    data = payload(5 * chunk + 777, seed=4)
    sizes = [1, chunk - 1, chunk, 3 * chunk + 5, 1, 0, 700, 71]
    assert sum(sizes) == len(data)
    async with bucket(nats_url, bucket_name) as store:
        upload = await store.begin_put(ObjectMeta(name="pieces"))
        start = 0
        for size in sizes:
            await upload.add(data[start : start + size])
            start += size
            assert upload.size == start // chunk * chunk  # whole chunks only go out
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("pieces")  # chunks out, no document yet
        info = await upload.commit(ObjectMeta(name="pieces", metadata={"k": "v"}))
        assert (info.size, info.chunks, info.digest) == (len(data), 6, digest_of(data))
        assert info.metadata == {"k": "v"}
        index = await store.chunk_index(info)
        assert [index.bounds(i)[1] - index.bounds(i)[0] for i in range(6)] == [chunk] * 5 + [777]
        assert await store.get_bytes("pieces") == data
        other = await store.begin_put(ObjectMeta(name="a"))
        try:
            with pytest.raises(ValueError, match="cannot commit"):
                await other.commit(ObjectMeta(name="b"))
        finally:
            await other.abandon()


@asyncio_test
async def test_update_meta_with_the_current_document_is_conditional(
    nats_url: str, bucket_name: str
) -> None:
    """``current`` saves the lookup only while it is the latest document: after another
    client's change the update still lands on the latest version (the server refused the
    conditional publish), keeping that version's nuid and data."""
    async with bucket(nats_url, bucket_name) as store:
        first = await store.put(ObjectMeta(name="o"), b"one")
        fast = await store.update_meta(
            "o", ObjectMeta(name="o", metadata={"a": "1"}), current=first
        )
        assert (fast.nuid, fast.metadata, fast.revision > first.revision) == (
            first.nuid,
            {"a": "1"},
            True,
        )
        newer = await store.put(ObjectMeta(name="o"), b"two, newer")  # another client's change
        stale = await store.update_meta(
            "o", ObjectMeta(name="o", metadata={"b": "2"}), current=fast
        )
        assert stale.nuid == newer.nuid
        assert stale.size == len(b"two, newer")
        assert (await store.get_info("o")).metadata == {"b": "2"}
        assert await store.get_bytes("o") == b"two, newer"


@asyncio_test
async def test_overwrite_purges_the_previous_chunks(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        first = await store.put(ObjectMeta(name="o", chunk_size=1000), payload(5000))
        second = await store.put(ObjectMeta(name="o", chunk_size=1000), payload(3000, seed=2))
        stream = stream_name(bucket_name)
        assert await message_count(nc, stream, chunk_subject(bucket_name, first.nuid)) == 0
        assert await message_count(nc, stream, chunk_subject(bucket_name, second.nuid)) == 3
        assert await message_count(nc, stream, meta_subject(bucket_name, "o")) == 1
        assert await store.get_bytes("o") == payload(3000, seed=2)


@asyncio_test
async def test_failed_source_leaves_old_version_and_purges_new_chunks(
    nats_url: str, bucket_name: str
) -> None:
    class Boom(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        yield payload(5000)
        raise Boom

    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        await store.put(ObjectMeta(name="o", chunk_size=1000), b"old version")
        before = await message_count(nc, stream_name(bucket_name), f"$O.{bucket_name}.C.>")
        with pytest.raises(Boom):
            await store.put(ObjectMeta(name="o", chunk_size=1000), failing())
        assert await store.get_bytes("o") == b"old version"
        after = await message_count(nc, stream_name(bucket_name), f"$O.{bucket_name}.C.>")
        assert after == before


@asyncio_test(timeout=90)
async def test_server_killed_mid_put_leaves_nothing_visible_and_purges(
    fresh_nats_server: NatsServer,
) -> None:
    """SIGKILL the server a fifth into a put; it returns while the put is failing."""
    server = fresh_nats_server
    data = payload(40 * 1024 * 1024)
    comeback: list[threading.Thread] = []
    async with bucket(server.url, "midput") as store:
        await store.put_bytes("keep", b"survivor")

        def on_progress(done: int) -> None:
            if done >= 8 * 1024 * 1024 and not comeback:
                server.kill()
                comeback.append(threading.Thread(target=server.restart))
                comeback[0].start()

        with pytest.raises((errors.StoreUnavailableError, errors.StoreTimeoutError)):
            await store.put(ObjectMeta(name="big"), data, progress=on_progress)
        await asyncio.to_thread(comeback[0].join)
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("big")
        assert await store.get_bytes("keep") == b"survivor"
    async with opened(server.url) as connection, raw(server.url) as nc:
        store = await connection.manager.object_store("midput")
        assert [info.name for info in await store.list(show_deleted=True)] == ["keep"]
        assert await message_count(nc, "OBJ_midput", "$O.midput.M.>") == 1
        assert await message_count(nc, "OBJ_midput", "$O.midput.C.>") == 1  # only "keep"


# Reading: corruption, uneven chunks, interleaving, random access -------------------------------


async def _republish_chunks(url: str, bucket_name: str, nuid: str, chunks: list[bytes]) -> None:
    async with raw(url) as nc:
        js = nc.jetstream()
        await js.purge_stream(stream_name(bucket_name), subject=chunk_subject(bucket_name, nuid))
        for chunk in chunks:
            await js.publish(chunk_subject(bucket_name, nuid), chunk)


@asyncio_test
async def test_corrupt_chunk_is_a_digest_mismatch(nats_url: str, bucket_name: str) -> None:
    data = payload(10_000)
    async with bucket(nats_url, bucket_name) as store:
        info = await store.put(ObjectMeta(name="o", chunk_size=4000), data)
        bad = bytearray(data)
        bad[5000] ^= 0xFF
        chunks = [bytes(bad[i : i + 4000]) for i in range(0, len(bad), 4000)]
        await _republish_chunks(nats_url, bucket_name, info.nuid, chunks)
        with pytest.raises(errors.DigestMismatchError):
            await store.get_bytes("o")
        result = await store.get("o")
        received = bytearray()

        async def drain() -> None:
            async for chunk in result:
                received.extend(chunk)

        with pytest.raises(errors.DigestMismatchError):
            await drain()
        assert bytes(received) == bytes(bad)  # every byte was delivered before the verdict


@asyncio_test
async def test_an_unreadable_document_can_be_deleted_and_put_over(
    nats_url: str, bucket_name: str
) -> None:
    """Another client's garbage on a name must not pin it for ever: it reads as BadObjectMeta,
    and delete and put replace it like any version (the hidden chunks are fsck's business)."""
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        js = nc.jetstream()
        await js.publish(meta_subject(bucket_name, "junk"), b"{not json")
        await js.publish(meta_subject(bucket_name, "junk2"), b'{"name": 7}')
        with pytest.raises(errors.BadObjectMetaError):
            await store.get_info("junk")
        marker = await store.delete("junk")
        assert marker.deleted
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("junk")
        assert (await store.get_info("junk", show_deleted=True)).deleted
        await store.put_bytes("junk2", b"fresh")
        assert await store.get_bytes("junk2") == b"fresh"
        assert sorted(info.name for info in await store.list()) == ["junk2"]


@asyncio_test
async def test_uneven_chunks_stream_and_random_access(nats_url: str, bucket_name: str) -> None:
    sizes = [4096, 4096, 3000, 17, 4096, 1, 2500]
    data = payload(sum(sizes))
    chunks, start = [], 0
    for size in sizes:
        chunks.append(data[start : start + size])
        start += size
    async with bucket(nats_url, bucket_name) as store:
        nuid = "UNEVEN" + hashlib.sha1(b"uneven").hexdigest()[:16]
        await put_raw(nats_url, bucket_name, "uneven", chunks, nuid=nuid, max_chunk_size=4096)
        assert await store.get_bytes("uneven") == data
        info = await store.get_info("uneven")
        index = await store.chunk_index(info)
        assert index.count == len(sizes)
        assert [b - a for a, b in zip(index.offsets, index.offsets[1:], strict=False)] == sizes
        for offset in range(0, len(data), 611):
            for length in (1, 100, 4097, 10_000):
                got = await store.read_range(info, offset, length)
                assert got == data[offset : offset + length], (offset, length)


@asyncio_test
async def test_interleaved_puts_and_renamed_objects_still_read(
    nats_url: str, bucket_name: str
) -> None:
    one, two = payload(200_000, seed=1), payload(150_000, seed=2)
    async with bucket(nats_url, bucket_name) as store:
        await asyncio.gather(
            store.put(ObjectMeta(name="one", chunk_size=1000), one),
            store.put(ObjectMeta(name="two", chunk_size=1000), two),
        )
        assert await store.get_bytes("one") == one
        assert await store.get_bytes("two") == two
        await store.update_meta("one", ObjectMeta(name="renamed"))
        info = await store.get_info("renamed")
        assert await store.get_bytes("renamed") == one
        assert await store.read_range(info, 123_456, 5000) == one[123_456:128_456]


@asyncio_test
async def test_read_range_fetches_only_the_chunks_it_touches(
    nats_url: str, bucket_name: str
) -> None:
    data = payload(64 * 4096)
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as spy:
        info = await store.put(ObjectMeta(name="o", chunk_size=4096), data)
        index = await store.chunk_index(info)
        requests: list[bytes] = []

        async def record(msg: object) -> None:
            requests.append(msg.data)  # type: ignore[attr-defined]

        await spy.subscribe(f"$JS.API.DIRECT.GET.{stream_name(bucket_name)}", cb=record)
        await spy.flush()
        got = await store.read_range(info, 50 * 4096 + 10, 4096)
        assert got == data[50 * 4096 + 10 : 51 * 4096 + 10]
        await async_wait_until(lambda: requests, 5, message="the spy saw the gets")
        await spy.flush()
        asked: list[int] = []
        for body in requests:  # single gets, or one batch for consecutive chunks
            request = json.loads(body)
            asked.extend(range(request["seq"], request["seq"] + request.get("batch", 1)))
        assert sorted(asked) == [index.seqs[50], index.seqs[51]]


@asyncio_test
async def test_chunk_gets_nobody_answers_are_store_unavailable(
    nats_url: str, bucket_name: str
) -> None:
    """No replica answers (503, as while a replicated stream elects a leader): the batch
    Direct Get of a run of chunks says so as the single gets do, in one line, not as an API
    error carrying the reply's raw header block."""
    data = payload(4 * 4096)
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        info = await store.put(ObjectMeta(name="o", chunk_size=4096), data)
        index = await store.chunk_index(info)
        await api(nc, f"STREAM.DELETE.{stream_name(bucket_name)}")
        for positions in ([0, 1, 2], [3]):  # a batch, and a single get
            with pytest.raises(errors.StoreUnavailableError, match="no responders") as caught:
                await store.read_chunks(index, positions)
            assert "\n" not in str(caught.value)


@asyncio_test
async def test_gets_leave_no_consumer_behind(nats_url: str, bucket_name: str) -> None:
    """Small objects use Direct Gets; large ones one consumer, deleted when the read ends."""
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        await store.put(ObjectMeta(name="small", chunk_size=1000), payload(10_000))
        await store.put(ObjectMeta(name="large", chunk_size=1000), payload(150_000))
        for _ in range(50):
            assert await store.get_bytes("small") == payload(10_000)
        for _ in range(5):
            assert await store.get_bytes("large") == payload(150_000)
        info = await api(nc, f"STREAM.INFO.{stream_name(bucket_name)}")
        assert info["state"]["consumer_count"] == 0


@pytest.mark.parametrize(
    ("chosen", "read_size"),
    [(None, READ_BUFFER_SIZE), (NATS_PY_READ_BUFFER_SIZE, NATS_PY_READ_BUFFER_SIZE)],
)
@asyncio_test
async def test_a_connection_reads_the_socket_in_pieces_of_its_read_buffer_size(
    nats_url: str,
    bucket_name: str,
    monkeypatch: pytest.MonkeyPatch,
    chosen: int | None,
    read_size: int,
) -> None:
    """The default is larger than nats-py's own 32 KiB, which cuts every 128 KiB chunk into
    four reads and parser passes; a mount asks for nats-py's (osfs.mount)."""
    asked: list[int] = []
    received: list[int] = []
    options = ConnectOptions(servers=(nats_url,))
    if chosen is not None:
        options = replace(options, read_buffer_size=chosen)
    async with await open_connection(options) as connection:
        store = await connection.manager.create_object_store(ObjectStoreConfig(bucket=bucket_name))
        transport = connection.nc._transport
        assert transport is not None
        read = transport.read

        async def recording(size: int) -> bytes:
            data: bytes = await read(size)
            asked.append(size)
            received.append(len(data))
            return data

        monkeypatch.setattr(transport, "read", recording)
        data = payload(4 * 1024 * 1024)
        await store.put_bytes("big", data)
        assert await store.get_bytes("big") == data
        await store.aclose()
    assert set(asked) == {read_size}
    assert max(received) <= read_size
    if read_size > NATS_PY_READ_BUFFER_SIZE:
        assert max(received) > NATS_PY_READ_BUFFER_SIZE


@asyncio_test
async def test_requests_share_one_reply_subscription_and_get_their_own_replies(
    nats_url: str, bucket_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JetStream requests do not go through nats-py's ``request`` (a random token each)."""
    async with opened(nats_url) as connection:
        store = await connection.manager.create_object_store(ObjectStoreConfig(bucket=bucket_name))
        names = [f"o{i}" for i in range(20)]
        for i, name in enumerate(names):
            await store.put_bytes(name, payload(100 + i, seed=i))

        async def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("nats-py's request was used")

        monkeypatch.setattr(connection.nc, "request", refuse)
        infos = await asyncio.gather(*(store.get_info(name) for name in names))
        datas = await asyncio.gather(*(store.get_bytes(name) for name in names))
        assert [info.name for info in infos] == names
        assert datas == [payload(100 + i, seed=i) for i in range(len(names))]
        await store.aclose()


@asyncio_test
async def test_a_request_nobody_answers_times_out_and_is_forgotten(nats_url: str) -> None:
    async with raw(nats_url) as nc:
        await nc.subscribe("silent.api.>", cb=_ignore)  # a responder that never answers
        api = JetStreamApi(nc, prefix="silent.api", timeout=0.3)
        with pytest.raises(errors.StoreTimeoutError):
            await api.request("STREAM.INFO.X")
        assert not api._replies._waiting


async def _ignore(msg: object) -> None:
    pass


# Meta operations ------------------------------------------------------------------------------


@asyncio_test
async def test_update_meta_rename_and_errors(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        original = await store.put(ObjectMeta(name="a"), b"content")
        await store.put_bytes("taken", b"x")
        with pytest.raises(errors.ObjectAlreadyExistsError):
            await store.update_meta("a", ObjectMeta(name="taken"))
        with pytest.raises(errors.UpdateMetaDeletedError):
            await store.update_meta("missing", ObjectMeta(name="missing"))
        moved = await store.update_meta(
            "a",
            ObjectMeta(name="b", description="new", headers={"H": ("1", "2")}, metadata={"k": "v"}),
        )
        assert (moved.nuid, moved.digest) == (original.nuid, original.digest)
        assert (
            await message_count(nc, stream_name(bucket_name), meta_subject(bucket_name, "a")) == 0
        )
        info = await store.get_info("b")
        assert (info.description, dict(info.headers), dict(info.metadata)) == (
            "new",
            {"H": ("1", "2")},
            {"k": "v"},
        )
        assert await store.get_bytes("b") == b"content"
        await store.delete("taken")
        await store.update_meta("b", ObjectMeta(name="taken"))  # a deleted name may be reused
        assert await store.get_bytes("taken") == b"content"


@asyncio_test
async def test_rename_moves_the_document_and_purges_what_it_replaced(
    nats_url: str, bucket_name: str
) -> None:
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        stream = stream_name(bucket_name)
        source = await store.put(ObjectMeta(name="src", chunk_size=1000), payload(2500, seed=1))
        target = await store.put(ObjectMeta(name="dst", chunk_size=1000), payload(3500, seed=2))
        with pytest.raises(errors.ObjectAlreadyExistsError):
            await store.rename("src", "dst")
        with pytest.raises(errors.ObjectNotFoundError):
            await store.rename("missing", "dst", overwrite=True)
        with pytest.raises(errors.InvalidObjectNameError):
            await store.rename("src", "")
        same = await store.rename("src", "src")  # a no-op: the stored document is returned
        assert (same.nuid, same.revision) == (source.nuid, source.revision)

        moved = await store.rename("src", "dst", overwrite=True)
        assert (moved.name, moved.nuid, moved.digest) == ("dst", source.nuid, source.digest)
        [document] = await stored_messages(nc, stream, meta_subject(bucket_name, "dst"))
        assert document["seq"] == moved.revision
        assert "Nats-Rollup: sub" in document["hdrs"]
        assert await message_count(nc, stream, meta_subject(bucket_name, "src")) == 0
        assert await message_count(nc, stream, chunk_subject(bucket_name, target.nuid)) == 0
        assert await message_count(nc, stream, chunk_subject(bucket_name, source.nuid)) == 3
        assert await store.get_bytes("dst") == payload(2500, seed=1)

        await store.delete("dst")
        await store.put_bytes("back", b"back")
        revived = await store.rename("back", "dst")  # a deleted name is free without overwrite
        assert await store.get_bytes("dst") == b"back"
        assert revived.revision > moved.revision
        await store.seal()
        with pytest.raises(errors.BucketSealedError):
            await store.rename("dst", "elsewhere")


@asyncio_test
async def test_delete_marker_and_double_delete(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        info = await store.put(
            ObjectMeta(name="o", chunk_size=100, metadata={"k": "v"}), b"x" * 450
        )
        await store.delete("o")
        await store.delete("o")  # deleting a deleted object is not an error
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("o")
        with pytest.raises(errors.ObjectNotFoundError):
            await store.delete("never-was")
        marker = await store.get_info("o", show_deleted=True)
        assert (marker.deleted, marker.size, marker.chunks, marker.digest) == (True, 0, 0, "")
        assert marker.metadata == {"k": "v"}
        stream = stream_name(bucket_name)
        assert await message_count(nc, stream, chunk_subject(bucket_name, info.nuid)) == 0
        [doc] = await stored_messages(nc, stream, meta_subject(bucket_name, "o"))
        document = json.loads(doc["data"])
        assert document["deleted"] is True
        assert "digest" not in document  # as nats.go writes markers
        assert document["mtime"]
        assert document["mtime"] != ""
        assert await store.get_bytes("o", show_deleted=True) == b""
        await store.put_bytes("o", b"back")
        assert await store.get_bytes("o") == b"back"


@asyncio_test
async def test_links(nats_url: str, bucket_name: str) -> None:
    other = bucket_name[:50] + "-other"
    async with bucket(nats_url, bucket_name) as store, bucket(nats_url, other) as elsewhere:
        target = await store.put_bytes("target", b"linked bytes")
        far = await elsewhere.put_bytes("far", b"far bytes")
        link = await store.add_link("ln", target)
        assert link.link is not None
        assert (link.link.bucket, link.link.name) == (
            bucket_name,
            "target",
        )
        assert link.nuid
        assert link.size == 0
        assert await store.get_bytes("ln") == b"linked bytes"
        await store.add_link("ln-far", far)
        assert await store.get_bytes("ln-far") == b"far bytes"
        await store.add_bucket_link("ln-bucket", elsewhere)
        with pytest.raises(errors.LinkIsABucketError):
            await store.get_bytes("ln-bucket")
        with pytest.raises(errors.NoLinkToLinkError):
            await store.add_link("ln2", link)
        with pytest.raises(errors.ObjectAlreadyExistsError):
            await store.add_link("target", far)
        await store.add_link("ln", far)  # a link may be replaced
        assert await store.get_bytes("ln") == b"far bytes"
        deleted = await store.delete("target")
        with pytest.raises(errors.NoLinkToDeletedError):
            await store.add_link("ln3", deleted)


# Bucket-wide ----------------------------------------------------------------------------------


@asyncio_test
async def test_seal_refuses_changes_and_keeps_reads(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store:
        await store.put_bytes("o", b"frozen")
        await store.seal()
        assert (await store.status()).sealed
        with pytest.raises(errors.BucketSealedError):
            await store.put_bytes("new", b"x")
        with pytest.raises(errors.BucketSealedError):
            await store.delete("o")
        with pytest.raises(errors.BucketSealedError):
            await store.update_meta("o", ObjectMeta(name="o", description="d"))
        assert await store.get_bytes("o") == b"frozen"


@asyncio_test
async def test_full_bucket_refuses_put_and_keeps_old_version(
    nats_url: str, bucket_name: str
) -> None:
    async with bucket(nats_url, bucket_name, max_bytes=200_000) as store:
        await store.put(ObjectMeta(name="o", chunk_size=10_000), payload(50_000))
        with pytest.raises(errors.BucketFullError):
            await store.put(ObjectMeta(name="o", chunk_size=10_000), payload(400_000, seed=3))
        assert await store.get_bytes("o") == payload(50_000)
        status = await store.status()
        assert status.max_bytes == 200_000
        assert status.size < 200_000


@asyncio_test
async def test_watch_initial_values_marker_and_updates(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store, raw(nats_url) as nc:
        async with store.watch() as empty:
            assert await anext(aiter(empty)) is None  # empty bucket: the marker comes first
        await store.put_bytes("a", b"1")
        await store.put_bytes("a", b"22")
        await store.put_bytes("b", b"3")
        await store.delete("b")
        await nc.publish(f"$O.{bucket_name}.M.Z2FyYmFnZQ==", b"{not json")  # another client's junk
        await nc.flush()
        async with store.watch() as watcher:
            it = aiter(watcher)
            first = [await anext(it) for _ in range(3)]
            assert [(e.name, e.size, e.deleted) for e in first if e] == [
                ("a", 2, False),
                ("b", 0, True),
            ]
            assert first[-1] is None
            await store.put_bytes("c", b"live")
            live = await anext(it)
            assert live is not None
            assert (live.name, live.size) == ("c", 4)
            assert live.mtime_ns > 0
            assert live.revision > 0
        async with store.watch(ignore_deletes=True, include_history=True) as history:
            it = aiter(history)
            seen = []
            while (entry := await anext(it)) is not None:
                seen.append((entry.name, entry.size))
            # Rollup keeps one document per name; the delete marker of "b" is ignored.
            assert seen == [("a", 2), ("c", 4)]
        async with store.watch(updates_only=True) as updates:
            it = aiter(updates)
            await store.put_bytes("d", b"only")
            entry = await anext(it)
            assert entry is not None
            assert entry.name == "d"
        with pytest.raises(errors.InvalidOptionError):
            store.watch(include_history=True, updates_only=True)


@asyncio_test
async def test_list(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store:
        with pytest.raises(errors.NoObjectsFoundError):
            await store.list()
        await store.put_bytes("x", b"1")
        await store.put_bytes("y", b"2")
        await store.delete("y")
        assert [i.name for i in await store.list()] == ["x"]
        assert sorted(i.name for i in await store.list(show_deleted=True)) == ["x", "y"]


@asyncio_test
async def test_manager(nats_url: str, bucket_name: str) -> None:
    async with opened(nats_url) as connection:
        manager = connection.manager
        with pytest.raises(errors.BucketNotFoundError):
            await manager.object_store(bucket_name)
        config = ObjectStoreConfig(bucket=bucket_name, description="first", ttl=3600)
        await manager.create_object_store(config)
        await manager.create_object_store(config)  # identical: idempotent
        with pytest.raises(errors.BucketExistsError):
            await manager.create_object_store(ObjectStoreConfig(bucket=bucket_name, ttl=60))
        await manager.update_object_store(ObjectStoreConfig(bucket=bucket_name, description="2nd"))
        store = await manager.create_or_update_object_store(
            ObjectStoreConfig(bucket=bucket_name, description="third")
        )
        status = await store.status()
        assert (status.bucket, status.description) == (bucket_name, "third")
        assert bucket_name in [name async for name in manager.object_store_names()]
        assert bucket_name in [s.bucket async for s in manager.object_stores()]
        await manager.delete_object_store(bucket_name)
        with pytest.raises(errors.BucketNotFoundError):
            await manager.delete_object_store(bucket_name)
        with pytest.raises(errors.BucketNotFoundError):
            await manager.update_object_store(ObjectStoreConfig(bucket=bucket_name))


@asyncio_test
async def test_bad_input(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store:
        manager_errors = [
            (errors.InvalidBucketNameError, "has space"),
            (errors.InvalidBucketNameError, ""),
            (errors.InvalidBucketNameError, "a.b"),
        ]
        async with opened(nats_url) as connection:
            for error, name in manager_errors:
                with pytest.raises(error):
                    await connection.manager.object_store(name)
        with pytest.raises(errors.InvalidObjectNameError):
            await store.put_bytes("", b"x")
        with pytest.raises(errors.InvalidObjectNameError):
            await store.get_info("")
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_bytes("missing")


@asyncio_test
async def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(errors.StoreUnavailableError, match=r"127\.0\.0\.1:1"):
        await open_connection(ConnectOptions(servers=("nats://127.0.0.1:1",)), reconnect=False)
