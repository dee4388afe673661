"""Interop with nats.js (``@nats-io/obj`` 3.4), both ways, on a real nats-server.

nats.js runs as ``node tests/support/natsjs/objtool.mjs`` (one process per call, through
``tests.support.natsjs.NatsJs``); osfs runs in this process. Test bodies are synchronous: each
osfs step runs in ``tests.support.aio.run`` and each nats.js step is a bounded subprocess call;
the watch tests run nats.js in a thread while osfs's watcher is live.

nats.js's deviations (wire.md §15) are asserted as what actually happens: its object links have no
nuid and no rollup, its ``update`` drops options/metadata it is not given, and it encodes
non-ASCII names as Latin-1, so such names are not shared with osfs (or nats.go / nats-py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from osfs.core import errors
from osfs.core.config import ObjectStoreConfig
from osfs.core.meta import DEFAULT_CHUNK_SIZE, ObjectInfo, ObjectLink, ObjectMeta
from osfs.store import ConnectOptions, ObjectStore, ObjectStoreManager, open_connection
from tests.support import natspy_peer as peer
from tests.support.aio import run
from tests.support.data import payload
from tests.support.natsjs import JsonDict, NatsJs, NatsJsError, NatsJsSetupError

pytestmark = [pytest.mark.integration, pytest.mark.interop]

MiB = 1024 * 1024
T = TypeVar("T")


def sha256_digest(data: bytes) -> str:
    """The digest string every official client writes (wire.md §3.3)."""
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode("ascii")


def chunk_count(size: int, chunk_size: int) -> int:
    return -(-size // (chunk_size or DEFAULT_CHUNK_SIZE))


@pytest.fixture(scope="module")
def natsjs(nats_url: str) -> NatsJs:
    """nats.js on the shared server; missing node/node_modules fails (never skips)."""
    try:
        return NatsJs(nats_url)
    except NatsJsSetupError as exc:
        pytest.fail(str(exc), pytrace=False)


@asynccontextmanager
async def osfs_manager(url: str) -> AsyncIterator[ObjectStoreManager]:
    conn = await open_connection(ConnectOptions(servers=(url,)))
    async with conn:
        yield conn.manager


def with_store(url: str, bucket: str, step: Callable[[ObjectStore], Coroutine[Any, Any, T]]) -> T:
    """Run one osfs step against ``bucket`` on its own connection and return its result."""

    async def body() -> T:
        async with osfs_manager(url) as mgr:
            return await step(await mgr.object_store(bucket))

    return run(body())


def osfs_create(url: str, bucket: str, **config: Any) -> None:
    async def body() -> None:
        async with osfs_manager(url) as mgr:
            await mgr.create_object_store(ObjectStoreConfig(bucket=bucket, **config))

    run(body())


def raw_meta(url: str, bucket: str, name: str) -> peer.RawMeta:
    """The stored meta message under nats.go's subject for ``name`` (read with nats-py)."""

    async def body() -> peer.RawMeta:
        async with peer.connect(url) as js:
            return await peer.raw_meta(js, bucket, name)

    return run(body())


def meta_subjects(url: str, bucket: str) -> dict[str, int]:
    async def body() -> dict[str, int]:
        async with peer.connect(url) as js:
            return await peer.subject_counts(js, bucket, f"$O.{bucket}.M.>")

    return run(body())


def js_meta_subject(bucket: str, name: str) -> str:
    """nats.js's meta subject: btoa() of the UTF-16 code units, i.e. Latin-1 (wire.md §2.1)."""
    encoded = base64.urlsafe_b64encode(name.encode("latin-1")).decode("ascii")
    return f"$O.{bucket}.M.{encoded}"


@dataclass(frozen=True)
class Case:
    name: str
    size: int
    chunk_size: int  # 0 = the client default (128 KiB)

    @property
    def id(self) -> str:
        return f"{self.size}b-chunk{self.chunk_size}"


# ASCII names only: those are shared with nats.js (see test_non_ascii_names_not_shared).
CASES = [
    Case("empty", 0, 0),
    Case("dir/sub/file.bin", 10, 4),  # 3 chunks: 4 + 4 + 2
    Case("with space.txt", 16, 4),  # exact multiple: 4 chunks
    Case("a<b>&c.txt", 1000, 0),
    Case("odd/sizes", 100, 7),
    Case("dir/x y/z.bin", 300_000, 65536),
    Case("big", 3 * MiB + 13, 0),  # ~3 MiB, 25 default-size chunks
]


def assert_js_info_matches(js_info: JsonDict, info: ObjectInfo) -> None:
    assert js_info["name"] == info.name
    assert js_info["bucket"] == info.bucket
    assert js_info["nuid"] == info.nuid
    assert js_info["size"] == info.size
    assert js_info["chunks"] == info.chunks
    assert js_info["digest"] == info.digest
    assert js_info["deleted"] == info.deleted


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_osfs_put_natsjs_get(nats_url: str, bucket_name: str, natsjs: NatsJs, case: Case) -> None:
    data = payload(case.size)
    osfs_create(nats_url, bucket_name)
    meta = ObjectMeta(
        name=case.name,
        description="written by osfs",
        headers={"X-Osfs": ("1", "2")},
        metadata={"mode": "0644", "owner": "me"},
        chunk_size=case.chunk_size,
    )
    info = with_store(nats_url, bucket_name, lambda s: s.put(meta, data))
    assert info.digest == sha256_digest(data)
    assert info.chunks == chunk_count(case.size, case.chunk_size)

    got, js_info = natsjs.get(bucket_name, case.name)
    assert got == data
    assert_js_info_matches(js_info, info)
    assert js_info["description"] == "written by osfs"
    assert js_info["headers"] == {"X-Osfs": ["1", "2"]}
    assert js_info["metadata"] == {"mode": "0644", "owner": "me"}
    assert js_info["options"] == {"max_chunk_size": case.chunk_size or DEFAULT_CHUNK_SIZE}
    assert js_info["mtime"]  # nats.js shows the stored string; osfs never writes ""


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_natsjs_put_osfs_get(nats_url: str, bucket_name: str, natsjs: NatsJs, case: Case) -> None:
    data = payload(case.size, seed=9)
    natsjs.create(bucket_name)
    js_info = natsjs.put(
        bucket_name,
        case.name,
        data,
        description="written by nats.js",
        headers={"X-Js": ["a", "b"]},
        metadata={"k": "v"},
        chunk_size=case.chunk_size or None,
    )
    assert js_info["digest"] == sha256_digest(data)
    assert js_info["chunks"] == chunk_count(case.size, case.chunk_size)

    async def read(store: ObjectStore) -> tuple[ObjectInfo, bytes, bytes, bytes]:
        info = await store.get_info(case.name)
        result = await store.get(case.name)
        async with result:
            streamed = b"".join([chunk async for chunk in result])
        whole = await store.get_bytes(case.name)
        part = b""
        if case.size > 2:
            mid = case.size // 3
            length = min(case.size - mid, 2 * (case.chunk_size or DEFAULT_CHUNK_SIZE) + 3)
            part = await store.read_range(info, mid, length)
        return info, streamed, whole, part

    info, streamed, whole, part = with_store(nats_url, bucket_name, read)
    assert streamed == whole == data
    if case.size > 2:
        mid = case.size // 3
        assert part == data[mid : mid + len(part)]
        assert part
    assert_js_info_matches(js_info, info)
    assert info.description == "written by nats.js"
    assert dict(info.headers) == {"X-Js": ("a", "b")}
    assert dict(info.metadata) == {"k": "v"}
    assert info.max_chunk_size == (case.chunk_size or DEFAULT_CHUNK_SIZE)
    assert info.mtime_ns > 0


def test_non_ascii_names_not_shared(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    """nats.js puts ``é`` on a Latin-1-encoded subject (``6Q==``), nats.go/nats-py/osfs on UTF-8
    (``w6k=``): the same name is two different objects. Names above U+00FF make nats.js throw.
    """
    natsjs.create(bucket_name)

    # osfs -> nats.js: nats.js looks under its own subject and finds nothing ...
    with_store(nats_url, bucket_name, lambda s: s.put_bytes("dir/é.txt", b"from osfs"))
    assert natsjs.info(bucket_name, "dir/é.txt") is None
    assert natsjs.try_get(bucket_name, "dir/é.txt") is None
    # ... but its list() reads the documents, so the name shows up there.
    assert [e["name"] for e in natsjs.list(bucket_name)] == ["dir/é.txt"]

    # nats.js -> osfs: the document is on the Latin-1 subject, invisible to a name lookup.
    natsjs.put(bucket_name, "é-js.txt", b"from nats.js")
    assert js_meta_subject(bucket_name, "é-js.txt") in meta_subjects(nats_url, bucket_name)
    with pytest.raises(errors.ObjectNotFoundError):
        with_store(nats_url, bucket_name, lambda s: s.get_info("é-js.txt", show_deleted=True))
    listed = with_store(nats_url, bucket_name, lambda s: s.list())
    assert sorted(i.name for i in listed) == ["dir/é.txt", "é-js.txt"]

    # Both now exist side by side under the two encodings of "dir/é.txt".
    natsjs.put(bucket_name, "dir/é.txt", b"from nats.js too")
    assert natsjs.get(bucket_name, "dir/é.txt")[0] == b"from nats.js too"
    assert with_store(nats_url, bucket_name, lambda s: s.get_bytes("dir/é.txt")) == b"from osfs"

    with pytest.raises(NatsJsError, match="Invalid character"):
        natsjs.put(bucket_name, "日本.txt", b"x")


def test_osfs_links_followed_by_natsjs(
    nats_url: str, bucket_name: str, make_bucket_name: Callable[[], str], natsjs: NatsJs
) -> None:
    other = make_bucket_name()
    osfs_create(nats_url, bucket_name)
    osfs_create(nats_url, other)
    data = payload(5000)

    async def make_links(store: ObjectStore) -> None:
        target = await store.put(ObjectMeta(name="dir/target.bin", chunk_size=1000), data)
        await store.add_link("link to target", target)
        await store.add_bucket_link("whole-bucket", other)

    with_store(nats_url, bucket_name, make_links)
    remote = with_store(nats_url, other, lambda s: s.put_bytes("remote.txt", b"remote"))
    with_store(nats_url, bucket_name, lambda s: s.add_link("remote-link", remote))

    got, js_info = natsjs.get(bucket_name, "link to target")
    assert got == data
    assert js_info["name"] == "dir/target.bin"  # nats.js returns the target's info
    link_info = natsjs.info(bucket_name, "link to target")
    assert link_info is not None
    assert link_info["options"]["link"] == {"bucket": bucket_name, "name": "dir/target.bin"}

    assert natsjs.get(bucket_name, "remote-link")[0] == b"remote"

    with pytest.raises(NatsJsError, match="link is a bucket"):
        natsjs.get(bucket_name, "whole-bucket")
    bucket_link = natsjs.info(bucket_name, "whole-bucket")
    assert bucket_link is not None
    assert bucket_link["options"]["link"] == {"bucket": other}


def test_natsjs_links_read_by_osfs(
    nats_url: str, bucket_name: str, make_bucket_name: Callable[[], str], natsjs: NatsJs
) -> None:
    """nats.js ``link()`` writes a document without nuid/size/chunks and without rollup."""
    other = make_bucket_name()
    natsjs.create(bucket_name)
    natsjs.create(other)
    data = payload(3000, seed=1)
    natsjs.put(bucket_name, "target.bin", data, chunk_size=1024)
    natsjs.put(other, "remote.txt", b"remote")
    natsjs.link(bucket_name, "js-link", "target.bin")
    natsjs.link(bucket_name, "js-remote-link", "remote.txt", target_bucket=other)
    natsjs.link_store(bucket_name, "js-bucket-link", other)

    raw = raw_meta(nats_url, bucket_name, "js-link")
    assert "nuid" not in raw.doc
    assert "Nats-Rollup" not in raw.headers

    async def read(store: ObjectStore) -> None:
        info = await store.get_info("js-link")
        assert info.is_link
        assert info.link == ObjectLink(bucket=bucket_name, name="target.bin")
        assert info.nuid == ""
        assert await store.get_bytes("js-link") == data

        remote = await store.get_info("js-remote-link")
        assert remote.link == ObjectLink(bucket=other, name="remote.txt")
        assert await store.get_bytes("js-remote-link") == b"remote"

        bucket_link = await store.get_info("js-bucket-link")
        assert bucket_link.link == ObjectLink(bucket=other)
        assert bucket_link.link.is_bucket_link
        with pytest.raises(errors.LinkIsABucketError):
            await store.get_bytes("js-bucket-link")

        names = sorted(i.name for i in await store.list())
        assert names == ["js-bucket-link", "js-link", "js-remote-link", "target.bin"]

    with_store(nats_url, bucket_name, read)


def test_osfs_delete_seen_by_natsjs(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    osfs_create(nats_url, bucket_name)

    async def put_and_delete(store: ObjectStore) -> ObjectInfo:
        await store.put(ObjectMeta(name="gone.bin", chunk_size=100), payload(1000))
        await store.put_bytes("kept.txt", b"kept")
        return await store.delete("gone.bin")

    marker = with_store(nats_url, bucket_name, put_and_delete)
    assert marker.deleted

    assert natsjs.try_get(bucket_name, "gone.bin") is None
    js_marker = natsjs.info(bucket_name, "gone.bin")
    assert js_marker is not None
    assert js_marker["deleted"] is True
    assert js_marker["size"] == 0
    assert [e["name"] for e in natsjs.list(bucket_name)] == ["kept.txt"]


def test_natsjs_delete_read_and_overwritten_by_osfs(
    nats_url: str, bucket_name: str, natsjs: NatsJs
) -> None:
    natsjs.create(bucket_name)
    natsjs.put(bucket_name, "doomed.txt", b"old content", metadata={"k": "v"})
    assert natsjs.delete(bucket_name, "doomed.txt")["success"] is True
    raw = raw_meta(nats_url, bucket_name, "doomed.txt")
    assert raw.doc["deleted"] is True
    assert raw.doc["digest"] == ""
    assert "revision" in raw.doc  # nats.js leaks it into re-published documents

    async def check(store: ObjectStore) -> ObjectInfo:
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("doomed.txt")
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get("doomed.txt")
        marker = await store.get_info("doomed.txt", show_deleted=True)
        assert marker.deleted
        assert marker.size == 0
        assert dict(marker.metadata) == {"k": "v"}  # nats.js keeps metadata in its marker
        with pytest.raises(errors.NoObjectsFoundError):
            await store.list()
        return await store.put_bytes("doomed.txt", b"new content")

    info = with_store(nats_url, bucket_name, check)
    got, js_info = natsjs.get(bucket_name, "doomed.txt")
    assert got == b"new content"
    assert js_info["nuid"] == info.nuid


def test_osfs_rename_seen_by_natsjs(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    osfs_create(nats_url, bucket_name)
    data = payload(50_000)

    async def put_and_rename(store: ObjectStore) -> ObjectInfo:
        await store.put(
            ObjectMeta(name="old name.txt", metadata={"k": "v"}, chunk_size=16384), data
        )
        return await store.update_meta(
            "old name.txt",
            ObjectMeta(name="new/name.txt", description="renamed", metadata={"k": "v2"}),
        )

    renamed = with_store(nats_url, bucket_name, put_and_rename)
    assert natsjs.info(bucket_name, "old name.txt") is None
    got, js_info = natsjs.get(bucket_name, "new/name.txt")
    assert got == data
    assert js_info["nuid"] == renamed.nuid
    assert js_info["description"] == "renamed"
    assert js_info["metadata"] == {"k": "v2"}
    assert js_info["options"] == {"max_chunk_size": 16384}
    assert [e["name"] for e in natsjs.list(bucket_name)] == ["new/name.txt"]


def test_natsjs_update_seen_by_osfs(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    """nats.js ``update`` publishes without rollup and drops options/metadata it is not given."""
    natsjs.create(bucket_name)
    data = payload(20_000)
    put = natsjs.put(bucket_name, "js name.txt", data, metadata={"k": "v"}, chunk_size=4096)

    natsjs.update(bucket_name, "js name.txt", description="first")
    natsjs.update(bucket_name, "js name.txt", new_name="js/renamed.txt", description="second")
    assert meta_subjects(nats_url, bucket_name) == {
        peer.meta_subject(bucket_name, "js/renamed.txt"): 1
    }

    async def check_rename(store: ObjectStore) -> None:
        with pytest.raises(errors.ObjectNotFoundError):
            await store.get_info("js name.txt", show_deleted=True)
        info = await store.get_info("js/renamed.txt")
        assert info.description == "second"
        assert info.nuid == put["nuid"]
        assert dict(info.metadata) == {}  # dropped by nats.js's update
        assert info.max_chunk_size == 0  # options dropped too
        assert await store.get_bytes("js/renamed.txt") == data

    with_store(nats_url, bucket_name, check_rename)

    # Updates without rollup pile up documents on the subject; osfs reads the last one.
    natsjs.update(bucket_name, "js/renamed.txt", description="third")
    natsjs.update(bucket_name, "js/renamed.txt", description="fourth")
    assert meta_subjects(nats_url, bucket_name) == {
        peer.meta_subject(bucket_name, "js/renamed.txt"): 3
    }
    info = with_store(nats_url, bucket_name, lambda s: s.get_info("js/renamed.txt"))
    assert info.description == "fourth"

    # osfs's update_meta publishes with Nats-Rollup: sub, collapsing that history.
    with_store(
        nats_url,
        bucket_name,
        lambda s: s.update_meta("js/renamed.txt", ObjectMeta(name="js/renamed.txt")),
    )
    assert meta_subjects(nats_url, bucket_name) == {
        peer.meta_subject(bucket_name, "js/renamed.txt"): 1
    }
    assert natsjs.get(bucket_name, "js/renamed.txt")[0] == data


def test_natsjs_seal_blocks_osfs_writes(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    natsjs.create(bucket_name)
    natsjs.put(bucket_name, "before.txt", b"before")
    assert natsjs.seal(bucket_name)["sealed"] is True

    async def check(store: ObjectStore) -> None:
        with pytest.raises(errors.BucketSealedError):
            await store.put_bytes("after.txt", b"after")
        with pytest.raises(errors.BucketSealedError):
            await store.delete("before.txt")
        assert await store.get_bytes("before.txt") == b"before"
        assert (await store.status()).sealed

    with_store(nats_url, bucket_name, check)


def test_osfs_seal_blocks_natsjs_writes(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    osfs_create(nats_url, bucket_name)
    with_store(nats_url, bucket_name, lambda s: s.put_bytes("before.txt", b"before"))
    with_store(nats_url, bucket_name, lambda s: s.seal())
    assert natsjs.status(bucket_name)["sealed"] is True
    with pytest.raises(NatsJsError, match="sealed"):
        natsjs.put(bucket_name, "after.txt", b"after")
    assert natsjs.get(bucket_name, "before.txt")[0] == b"before"


def test_natsjs_put_seen_by_osfs_watch(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    natsjs.create(bucket_name)
    natsjs.put(bucket_name, "existing.txt", b"existing")

    async def body() -> None:
        async with osfs_manager(nats_url) as mgr:
            store = await mgr.object_store(bucket_name)
            async with store.watch() as watcher:
                stream = aiter(watcher)
                first = await anext(stream)
                assert first is not None
                assert first.name == "existing.txt"
                assert await anext(stream) is None  # end of the initial values

                js_info = await asyncio.to_thread(
                    natsjs.put, bucket_name, "watched/js.txt", b"from nats.js", metadata={"a": "b"}
                )
                entry = await anext(stream)
                assert entry is not None
                assert entry.name == "watched/js.txt"
                assert entry.nuid == js_info["nuid"]
                assert entry.digest == js_info["digest"]
                assert dict(entry.metadata) == {"a": "b"}

                await asyncio.to_thread(natsjs.delete, bucket_name, "watched/js.txt")
                entry = await anext(stream)
                assert entry is not None
                assert entry.name == "watched/js.txt"
                assert entry.deleted

    run(body())


def test_osfs_put_seen_by_natsjs_watch(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    osfs_create(nats_url, bucket_name)
    with_store(nats_url, bucket_name, lambda s: s.put_bytes("existing.txt", b"existing"))

    # includeHistory: the latest value of every object, then updates.
    with natsjs.watch(bucket_name, include_history=True, count=2) as history:
        put = with_store(
            nats_url,
            bucket_name,
            lambda s: s.put(ObjectMeta(name="watched/osfs.txt", metadata={"k": "v"}), b"osfs"),
        )
        entries, timed_out = history.result()
    assert not timed_out
    # (nats.js's is_update is already true on the last initial entry, so it is not checked.)
    assert [e["name"] for e in entries] == ["existing.txt", "watched/osfs.txt"]
    assert entries[1]["digest"] == put.digest
    assert entries[1]["nuid"] == put.nuid
    assert entries[1]["metadata"] == {"k": "v"}

    # nats.js's default watch: updates only (deliver policy "new").
    with natsjs.watch(bucket_name, count=1) as updates:
        with_store(nats_url, bucket_name, lambda s: s.delete("watched/osfs.txt"))
        entries, timed_out = updates.result()
    assert not timed_out
    assert [(e["name"], e["deleted"]) for e in entries] == [("watched/osfs.txt", True)]

    # includeHistory, initial values only: the latest document of each name, markers included.
    with natsjs.watch(bucket_name, include_history=True, initial_only=True, count=None) as snap:
        entries, timed_out = snap.result()
    assert not timed_out
    assert [(e["name"], e["deleted"]) for e in entries] == [
        ("existing.txt", False),
        ("watched/osfs.txt", True),
    ]


def test_list_agrees(nats_url: str, bucket_name: str, natsjs: NatsJs) -> None:
    osfs_create(nats_url, bucket_name)
    assert natsjs.list(bucket_name) == []

    async def osfs_side(store: ObjectStore) -> None:
        await store.put_bytes("a/1.txt", b"1")
        await store.put_bytes("a/2 two.txt", b"22")

    with_store(nats_url, bucket_name, osfs_side)
    natsjs.put(bucket_name, "b/3.txt", b"333")
    natsjs.put(bucket_name, "c.txt", b"4444")
    with_store(nats_url, bucket_name, lambda s: s.delete("a/1.txt"))
    natsjs.delete(bucket_name, "c.txt")

    live = {"a/2 two.txt", "b/3.txt"}
    osfs_live = {i.name: i for i in with_store(nats_url, bucket_name, lambda s: s.list())}
    js_live = {e["name"]: e for e in natsjs.list(bucket_name)}
    assert set(osfs_live) == set(js_live) == live
    for name in live:
        assert js_live[name]["digest"] == osfs_live[name].digest
        assert js_live[name]["nuid"] == osfs_live[name].nuid
        assert js_live[name]["size"] == osfs_live[name].size
    shown = with_store(nats_url, bucket_name, lambda s: s.list(show_deleted=True))
    assert {i.name: i.deleted for i in shown} == {
        "a/1.txt": True,
        "a/2 two.txt": False,
        "b/3.txt": False,
        "c.txt": True,
    }


def test_buckets_shared(
    nats_url: str, bucket_name: str, make_bucket_name: Callable[[], str], natsjs: NatsJs
) -> None:
    other = make_bucket_name()
    natsjs.create(bucket_name, description="made by nats.js", metadata={"team": "js"})
    osfs_create(nats_url, other, description="made by osfs", metadata={"team": "osfs"})

    async def check(mgr_url: str) -> None:
        async with osfs_manager(mgr_url) as mgr:
            status = await (await mgr.object_store(bucket_name)).status()
            assert status.bucket == bucket_name
            assert status.description == "made by nats.js"
            assert dict(status.metadata) == {"team": "js"}
            assert not status.sealed
            names = [name async for name in mgr.object_store_names()]
            assert bucket_name in names
            assert other in names

    run(check(nats_url))
    js_status = natsjs.status(other)
    assert js_status["description"] == "made by osfs"
    assert js_status["metadata"]["team"] == "osfs"
    assert js_status["storage"] == "file"
    assert js_status["replicas"] == 1
    assert js_status["compression"] is False
    assert {bucket_name, other} <= {b["bucket"] for b in natsjs.buckets()}


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = payload(3 * MiB + 4321, seed=42)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


def test_files_both_ways(
    nats_url: str, bucket_name: str, natsjs: NatsJs, tmp_path: Path, big_file: tuple[Path, bytes]
) -> None:
    """Streaming put/get of a ~3 MiB file (the benchmark's code path)."""
    path, data = big_file
    natsjs.create(bucket_name)

    put = natsjs.put_file(bucket_name, "from-js.bin", path)
    assert put["info"]["size"] == len(data)
    out = tmp_path / "osfs-got.bin"
    info = with_store(nats_url, bucket_name, lambda s: s.get_file("from-js.bin", out))
    assert info.digest == sha256_digest(data)
    assert out.read_bytes() == data

    with_store(nats_url, bucket_name, lambda s: s.put_file(path, name="from-osfs.bin"))
    js_out = tmp_path / "js-got.bin"
    got = natsjs.get_file(bucket_name, "from-osfs.bin", js_out)
    assert got["found"] is True
    assert got["size"] == len(data)
    assert got["info"]["digest"] == sha256_digest(data)
    assert js_out.read_bytes() == data
