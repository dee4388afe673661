"""Interop with nats-py's own Object Store client, both ways, on a real nats-server.

Every test writes with one client and reads with the other, and checks the wire facts of
``/work/shared/reference/wire.md`` (§3 meta document, §6 get, §7 delete, §8 rename, §9 links,
§10 seal, §11 watch/list, §15 differences). nats-py's known deviations are asserted as what
actually happens, not skipped: it drops per-object metadata, writes ``"mtime": ""`` in delete
markers, includes deleted entries in ``list()``, and fails every rename.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from nats.js import errors as pyerr

from osfs.core import errors
from osfs.core.config import ObjectStoreConfig
from osfs.core.meta import DEFAULT_CHUNK_SIZE, ObjectMeta
from osfs.store import ConnectOptions, ObjectStore, ObjectStoreManager, open_connection
from tests.support import natspy_peer as peer
from tests.support.aio import run
from tests.support.data import payload

pytestmark = [pytest.mark.integration, pytest.mark.interop]

MiB = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    """The digest string every official client writes (wire.md §3.3)."""
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode("ascii")


#: The order nats.go's encoding/json writes the meta document's keys in (wire.md §3).
GO_KEY_ORDER = (
    "name",
    "description",
    "headers",
    "metadata",
    "options",
    "bucket",
    "nuid",
    "size",
    "mtime",
    "chunks",
    "digest",
    "deleted",
)


def assert_go_document(raw: peer.RawMeta) -> None:
    """The stored meta is nats.go's: Go key order, compact, HTML-escaped, a real mtime."""
    keys = list(raw.doc)
    assert keys == [key for key in GO_KEY_ORDER if key in raw.doc], keys
    assert b'":' in raw.payload
    assert b'", "' not in raw.payload
    assert b'": ' not in raw.payload
    for char in "<>&":
        assert char.encode() not in raw.payload, raw.payload
    assert raw.doc["mtime"] != ""
    assert raw.headers.get("Nats-Rollup") == "sub"


def chunk_count(size: int, chunk_size: int) -> int:
    return -(-size // (chunk_size or DEFAULT_CHUNK_SIZE))


@asynccontextmanager
async def osfs_manager(url: str) -> AsyncIterator[ObjectStoreManager]:
    conn = await open_connection(ConnectOptions(servers=(url,)))
    async with conn:
        yield conn.manager


@asynccontextmanager
async def both(
    url: str, bucket: str, *, created_by: str = "osfs"
) -> AsyncIterator[tuple[ObjectStore, peer.ObjectStore, peer.JetStreamContext]]:
    """An osfs store and a nats-py store bound to the same bucket, made by ``created_by``."""
    async with osfs_manager(url) as mgr, peer.connect(url) as js:
        if created_by == "osfs":
            store = await mgr.create_object_store(ObjectStoreConfig(bucket=bucket))
            pystore = await peer.open_bucket(js, bucket)
        else:
            pystore = await peer.create_bucket(js, bucket)
            store = await mgr.object_store(bucket)
        yield store, pystore, js


@dataclass(frozen=True)
class Case:
    name: str
    size: int
    chunk_size: int  # 0 = the client default (128 KiB)

    @property
    def id(self) -> str:
        return f"{self.size}b-chunk{self.chunk_size}"


CASES = [
    Case("empty", 0, 0),
    Case("dir/sub/file.bin", 10, 4),  # 3 chunks: 4 + 4 + 2
    Case("with space.txt", 16, 4),  # exact multiple: 4 chunks, no short one
    Case("a<b>&c.txt", 1000, 0),  # HTML-escaped by Go's encoder, plain for nats-py
    Case("dir/é.txt", 300_000, 65536),  # non-ASCII: nats-py encodes UTF-8 like nats.go
    Case("日本/名前 x.txt", 100, 7),
    Case("big", 3 * MiB + 13, 0),  # ~3 MiB, 25 default-size chunks
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_osfs_put_natspy_get(nats_url: str, bucket_name: str, case: Case) -> None:
    data = payload(case.size)

    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, js):
            info = await store.put(ObjectMeta(name=case.name, chunk_size=case.chunk_size), data)
            assert info.digest == sha256_digest(data)
            assert info.size == len(data)
            assert info.chunks == chunk_count(case.size, case.chunk_size)

            got, pinfo = await peer.get(pystore, case.name)
            assert got == data
            assert pinfo.name == case.name
            assert pinfo.bucket == bucket_name
            assert pinfo.nuid == info.nuid
            assert pinfo.size == len(data)
            assert pinfo.chunks == info.chunks
            assert pinfo.digest == sha256_digest(data)
            assert not pinfo.deleted
            assert pinfo.options is not None
            assert pinfo.options.max_chunk_size == (case.chunk_size or DEFAULT_CHUNK_SIZE)

            raw = await peer.raw_meta(js, bucket_name, case.name)
            assert_go_document(raw)
            assert "deleted" not in raw.doc
            assert raw.doc["name"] == case.name

    run(body())


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_natspy_put_osfs_get(nats_url: str, bucket_name: str, case: Case) -> None:
    data = payload(case.size, seed=11)

    async def body() -> None:
        async with both(nats_url, bucket_name, created_by="natspy") as (store, pystore, _):
            pinfo = await peer.put(pystore, case.name, data, chunk_size=case.chunk_size or None)
            assert pinfo.digest == sha256_digest(data)

            info = await store.get_info(case.name)
            assert info.name == case.name
            assert info.bucket == bucket_name
            assert info.nuid == pinfo.nuid
            assert info.size == len(data)
            assert info.chunks == pinfo.chunks == chunk_count(case.size, case.chunk_size)
            assert info.digest == pinfo.digest
            assert info.max_chunk_size == (case.chunk_size or DEFAULT_CHUNK_SIZE)
            assert not info.deleted
            assert info.mtime_ns > 0  # from the server's timestamp, not nats-py's JSON

            result = await store.get(case.name)
            async with result:
                streamed = b"".join([chunk async for chunk in result])
            assert streamed == data
            assert result.info.digest == pinfo.digest
            assert await store.get_bytes(case.name) == data

            if case.size > 2:
                mid = case.size // 3
                length = min(case.size - mid, 2 * (case.chunk_size or DEFAULT_CHUNK_SIZE) + 3)
                assert await store.read_range(info, mid, length) == data[mid : mid + length]

    run(body())


def test_description_headers_and_metadata(nats_url: str, bucket_name: str) -> None:
    """Description and headers are shared both ways; nats-py drops per-object metadata."""

    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, js):
            meta = ObjectMeta(
                name="described.txt",
                description="a description <&>",
                headers={"X-Multi": ("1", "2"), "Content-Type": ("text/plain",)},
                metadata={"owner": "osfs", "mode": "0644"},
            )
            await store.put(meta, b"payload")
            pinfo = await peer.get_info(pystore, "described.txt")
            assert pinfo.description == "a description <&>"
            assert pinfo.headers == {"X-Multi": ["1", "2"], "Content-Type": ["text/plain"]}
            # nats-py's ObjectInfo has no metadata field at all; the document does carry it.
            assert not hasattr(pinfo, "metadata")
            raw = await peer.raw_meta(js, bucket_name, "described.txt")
            assert_go_document(raw)
            assert raw.doc["metadata"] == {"owner": "osfs", "mode": "0644"}

            await peer.put(
                pystore,
                "from-py.txt",
                b"py",
                description="py description",
                headers={"X-Py": ["a", "b"]},
            )
            info = await store.get_info("from-py.txt")
            assert info.description == "py description"
            assert dict(info.headers) == {"X-Py": ("a", "b")}
            assert dict(info.metadata) == {}

    run(body())


def test_natspy_rewrites_erase_osfs_metadata(nats_url: str, bucket_name: str) -> None:
    """nats-py's update_meta and delete re-publish the document without ``metadata``."""

    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, _):
            await store.put(ObjectMeta(name="m.txt", metadata={"k": "v"}), b"x")
            await store.put(ObjectMeta(name="d.txt", metadata={"k": "v"}), b"y")
            assert dict((await store.get_info("m.txt")).metadata) == {"k": "v"}

            await peer.update_meta(pystore, "m.txt", new_name="m.txt", description="new")
            info = await store.get_info("m.txt")
            assert info.description == "new"
            assert dict(info.metadata) == {}  # erased by nats-py
            assert await store.get_bytes("m.txt") == b"x"

            await peer.delete(pystore, "d.txt")
            marker = await store.get_info("d.txt", show_deleted=True)
            assert marker.deleted
            assert dict(marker.metadata) == {}

    run(body())


def test_osfs_delete_seen_by_natspy(nats_url: str, bucket_name: str) -> None:
    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, js):
            data = payload(5000)
            info = await store.put(ObjectMeta(name="gone.bin", chunk_size=1024), data)
            await store.put_bytes("kept.bin", b"kept")
            marker = await store.delete("gone.bin")
            assert marker.deleted

            with pytest.raises(pyerr.ObjectNotFoundError):
                await peer.get_info(pystore, "gone.bin")
            with pytest.raises(pyerr.ObjectNotFoundError):
                await peer.get(pystore, "gone.bin")
            pmarker = await peer.get_info(pystore, "gone.bin", show_deleted=True)
            assert pmarker.deleted
            assert pmarker.size == 0
            assert pmarker.chunks == 0

            # nats.go's marker (wire.md §7): no digest key, parseable mtime, chunks purged.
            raw = await peer.raw_meta(js, bucket_name, "gone.bin")
            assert_go_document(raw)
            assert raw.doc["deleted"] is True
            assert raw.doc.get("digest", "") == ""
            assert raw.doc["mtime"] != ""
            chunk_subject = f"$O.{bucket_name}.C.{info.nuid}"
            assert chunk_subject not in await peer.subject_counts(
                js, bucket_name, f"$O.{bucket_name}.C.>"
            )

            names = [i.name for i in await peer.list_objects(pystore, ignore_deletes=True)]
            assert names == ["kept.bin"]
            # nats-py's list() includes deleted entries by default (wire.md §7).
            all_entries = await peer.list_objects(pystore)
            assert {(i.name, bool(i.deleted)) for i in all_entries} == {
                ("kept.bin", False),
                ("gone.bin", True),
            }

    run(body())


def test_natspy_delete_marker_read_and_overwritten_by_osfs(nats_url: str, bucket_name: str) -> None:
    """nats-py's marker has ``"mtime": ""`` (nats.go chokes on it); osfs reads and overwrites it."""

    async def body() -> None:
        async with both(nats_url, bucket_name, created_by="natspy") as (store, pystore, js):
            await peer.put(pystore, "doomed.txt", b"old content", chunk_size=4)
            await peer.delete(pystore, "doomed.txt")
            raw = await peer.raw_meta(js, bucket_name, "doomed.txt")
            assert raw.doc["mtime"] == ""
            assert raw.doc["digest"] == ""
            assert raw.doc["deleted"] is True

            with pytest.raises(errors.ObjectNotFoundError):
                await store.get_info("doomed.txt")
            with pytest.raises(errors.ObjectNotFoundError):
                await store.get("doomed.txt")
            with pytest.raises(errors.ObjectNotFoundError):
                await store.get_bytes("doomed.txt")
            marker = await store.get_info("doomed.txt", show_deleted=True)
            assert marker.deleted
            assert marker.size == 0
            assert marker.mtime_ns > 0  # the server's timestamp, since the JSON has none

            assert [i.name for i in await store.list(show_deleted=True)] == ["doomed.txt"]
            with pytest.raises(errors.NoObjectsFoundError):
                await store.list()

            info = await store.put_bytes("doomed.txt", b"new content")
            assert not info.deleted
            raw = await peer.raw_meta(js, bucket_name, "doomed.txt")
            assert raw.doc["mtime"] != ""
            got, pinfo = await peer.get(pystore, "doomed.txt")
            assert got == b"new content"
            assert pinfo.digest == sha256_digest(b"new content")

    run(body())


def test_osfs_overwrite_purges_old_chunks(nats_url: str, bucket_name: str) -> None:
    """Put over a nats-py object: new nuid, old chunks purged, one meta message (rollup)."""

    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, js):
            old = await peer.put(pystore, "over.bin", payload(100), chunk_size=10)
            new_data = payload(50, seed=3)
            new = await store.put(ObjectMeta(name="over.bin", chunk_size=10), new_data)
            assert new.nuid != old.nuid
            chunks = await peer.subject_counts(js, bucket_name, f"$O.{bucket_name}.C.>")
            assert chunks == {f"$O.{bucket_name}.C.{new.nuid}": 5}
            metas = await peer.subject_counts(js, bucket_name, f"$O.{bucket_name}.M.>")
            assert metas == {peer.meta_subject(bucket_name, "over.bin"): 1}
            got, _ = await peer.get(pystore, "over.bin")
            assert got == new_data

    run(body())


def test_osfs_rename_seen_by_natspy(nats_url: str, bucket_name: str) -> None:
    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, js):
            data = payload(70_000)
            put = await store.put(
                ObjectMeta(name="old name.txt", description="d", chunk_size=32768), data
            )
            renamed = await store.update_meta(
                "old name.txt", ObjectMeta(name="new/näme.txt", description="renamed")
            )
            assert renamed.name == "new/näme.txt"
            assert renamed.nuid == put.nuid  # rename rewrites the meta only

            with pytest.raises(pyerr.ObjectNotFoundError):
                await peer.get_info(pystore, "old name.txt", show_deleted=True)
            got, pinfo = await peer.get(pystore, "new/näme.txt")
            assert got == data
            assert pinfo.description == "renamed"
            assert pinfo.nuid == put.nuid
            assert pinfo.options is not None
            assert pinfo.options.max_chunk_size == 32768  # options survive update_meta
            metas = await peer.subject_counts(js, bucket_name, f"$O.{bucket_name}.M.>")
            assert metas == {peer.meta_subject(bucket_name, "new/näme.txt"): 1}

    run(body())


def test_osfs_overwriting_rename_seen_by_natspy(nats_url: str, bucket_name: str) -> None:
    """``ObjectStore.rename(overwrite=True)``: nats-py reads the moved bytes under the new name."""

    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, js):
            data = payload(70_000, seed=1)
            source = await store.put(ObjectMeta(name="spool/.tmp-1", chunk_size=32768), data)
            await store.put(ObjectMeta(name="doc.txt"), payload(5000, seed=2))
            _, before = await peer.get(pystore, "doc.txt")

            moved = await store.rename("spool/.tmp-1", "doc.txt", overwrite=True)
            assert moved.nuid == source.nuid

            got, pinfo = await peer.get(pystore, "doc.txt")
            assert got == data
            assert (pinfo.nuid, pinfo.size, pinfo.digest) == (source.nuid, len(data), source.digest)
            with pytest.raises(pyerr.ObjectNotFoundError):
                await peer.get_info(pystore, "spool/.tmp-1", show_deleted=True)
            chunks = await peer.subject_counts(js, bucket_name, f"$O.{bucket_name}.C.>")
            assert chunks == {f"$O.{bucket_name}.C.{source.nuid}": 3}  # the old doc.txt's: gone
            assert before.nuid != source.nuid
            metas = await peer.subject_counts(js, bucket_name, f"$O.{bucket_name}.M.>")
            assert metas == {peer.meta_subject(bucket_name, "doc.txt"): 1}

    run(body())


def test_natspy_rename_always_fails(nats_url: str, bucket_name: str) -> None:
    """nats-py's update_meta checks the *old* name, so any rename raises (wire.md §8)."""

    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, _):
            await store.put_bytes("stay.txt", b"stay")
            with pytest.raises(pyerr.ObjectAlreadyExists):
                await peer.update_meta(pystore, "stay.txt", new_name="moved.txt")
            assert await store.get_bytes("stay.txt") == b"stay"
            with pytest.raises(errors.ObjectNotFoundError):
                await store.get_info("moved.txt", show_deleted=True)

    run(body())


def test_osfs_links_followed_by_natspy(
    nats_url: str, bucket_name: str, make_bucket_name: Callable[[], str]
) -> None:
    other = make_bucket_name()

    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, js):
            data = payload(3000)
            target = await store.put(ObjectMeta(name="dir/target.bin", chunk_size=1000), data)
            link = await store.add_link("link to target", target)
            assert link.is_link
            # nats.go's link document: a nuid, size 0, chunks 0 (wire.md §9).
            raw = await peer.raw_meta(js, bucket_name, "link to target")
            assert_go_document(raw)
            assert raw.doc["nuid"]
            assert raw.doc["size"] == 0
            assert raw.doc["chunks"] == 0
            assert raw.doc["options"]["link"] == {"bucket": bucket_name, "name": "dir/target.bin"}

            got, pinfo = await peer.get(pystore, "link to target")
            assert got == data
            assert pinfo.name == "dir/target.bin"  # nats-py returns the target's info

            # Cross-bucket link.
            mgr_store2 = await peer.create_bucket(js, other)
            await peer.put(mgr_store2, "remote.txt", b"remote data")
            async with osfs_manager(nats_url) as mgr:
                store2 = await mgr.object_store(other)
                remote = await store2.get_info("remote.txt")
            await store.add_link("remote-link", remote)
            got, _ = await peer.get(pystore, "remote-link")
            assert got == b"remote data"

            # Bucket link: nats-py refuses to get it.
            await store.add_bucket_link("whole-bucket", other)
            with pytest.raises(pyerr.LinkIsABucketError):
                await peer.get(pystore, "whole-bucket")
            braw = await peer.raw_meta(js, bucket_name, "whole-bucket")
            assert braw.doc["options"]["link"] == {"bucket": other}
            assert braw.doc["nuid"]

            await js.delete_object_store(other)

    run(body())


def test_natspy_seal_blocks_osfs_writes(nats_url: str, bucket_name: str) -> None:
    async def body() -> None:
        async with both(nats_url, bucket_name, created_by="natspy") as (store, pystore, _):
            await peer.put(pystore, "before.txt", b"before")
            await peer.seal(pystore)

            with pytest.raises(errors.BucketSealedError):
                await store.put_bytes("after.txt", b"after")
            with pytest.raises(errors.BucketSealedError):
                await store.delete("before.txt")
            assert await store.get_bytes("before.txt") == b"before"
            assert (await store.status()).sealed
            assert (await peer.status(pystore)).sealed

    run(body())


def test_osfs_seal_blocks_natspy_writes(nats_url: str, bucket_name: str) -> None:
    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, _):
            await store.put_bytes("before.txt", b"before")
            await store.seal()
            assert (await peer.status(pystore)).sealed
            with pytest.raises(pyerr.APIError, match="sealed"):
                await peer.put(pystore, "after.txt", b"after")
            got, _ = await peer.get(pystore, "before.txt")
            assert got == b"before"

    run(body())


def test_natspy_put_seen_by_osfs_watch(nats_url: str, bucket_name: str) -> None:
    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, _):
            await store.put_bytes("existing.txt", b"existing")
            async with store.watch() as watcher:
                stream = aiter(watcher)
                first = await anext(stream)
                assert first is not None
                assert first.name == "existing.txt"
                assert await anext(stream) is None  # end of the initial values

                pinfo = await peer.put(pystore, "watched/py.txt", b"from nats-py")
                entry = await anext(stream)
                assert entry is not None
                assert entry.name == "watched/py.txt"
                assert entry.digest == pinfo.digest
                assert entry.nuid == pinfo.nuid
                assert entry.size == len(b"from nats-py")

                await peer.delete(pystore, "watched/py.txt")  # the "mtime": "" marker
                entry = await anext(stream)
                assert entry is not None
                assert entry.name == "watched/py.txt"
                assert entry.deleted

    run(body())


def test_osfs_put_seen_by_natspy_watch(nats_url: str, bucket_name: str) -> None:
    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, _):
            await store.put_bytes("existing.txt", b"existing")
            async with peer.watch(pystore) as watcher:
                initial = await peer.collect_watch(watcher, count=2)
                assert initial[0] is not None
                assert initial[0].name == "existing.txt"
                assert initial[1] is None

                info = await store.put(
                    ObjectMeta(name="watched/osfs.txt", metadata={"k": "v"}), b"from osfs"
                )
                (entry,) = await peer.collect_watch(watcher, count=1)
                assert entry is not None
                assert entry.name == "watched/osfs.txt"
                assert entry.digest == info.digest
                assert entry.nuid == info.nuid

                await store.delete("watched/osfs.txt")
                (entry,) = await peer.collect_watch(watcher, count=1)
                assert entry is not None
                assert entry.name == "watched/osfs.txt"
                assert entry.deleted

    run(body())


def test_list_agrees(nats_url: str, bucket_name: str) -> None:
    async def body() -> None:
        async with both(nats_url, bucket_name) as (store, pystore, _):
            with pytest.raises(errors.NoObjectsFoundError):
                await store.list()
            with pytest.raises(pyerr.NotFoundError):
                await peer.list_objects(pystore)

            await store.put_bytes("a/1.txt", b"1")
            await store.put_bytes("a/2 two.txt", b"22")
            await peer.put(pystore, "b/é.txt", b"333")
            await peer.put(pystore, "c.txt", b"4444")
            await store.delete("a/1.txt")
            await peer.delete(pystore, "c.txt")

            live = {"a/2 two.txt", "b/é.txt"}
            osfs_live = {i.name: i for i in await store.list()}
            py_live = {i.name: i for i in await peer.list_objects(pystore, ignore_deletes=True)}
            assert set(osfs_live) == set(py_live) == live
            for name in live:
                assert osfs_live[name].digest == py_live[name].digest
                assert osfs_live[name].size == py_live[name].size
                assert osfs_live[name].nuid == py_live[name].nuid

            osfs_all = {i.name: i.deleted for i in await store.list(show_deleted=True)}
            py_all = {i.name: bool(i.deleted) for i in await peer.list_objects(pystore)}
            assert (
                osfs_all
                == py_all
                == {
                    "a/1.txt": True,
                    "a/2 two.txt": False,
                    "b/é.txt": False,
                    "c.txt": True,
                }
            )

    run(body())


def test_bucket_made_by_natspy_opens_in_osfs(
    nats_url: str, bucket_name: str, make_bucket_name: Callable[[], str]
) -> None:
    other = make_bucket_name()

    async def body() -> None:
        async with osfs_manager(nats_url) as mgr, peer.connect(nats_url) as js:
            with pytest.raises(errors.BucketNotFoundError):
                await mgr.object_store(bucket_name)
            await peer.create_bucket(js, bucket_name, description="made by nats-py")
            store = await mgr.object_store(bucket_name)
            status = await store.status()
            assert status.bucket == bucket_name
            assert status.description == "made by nats-py"
            assert not status.sealed
            assert bucket_name in [name async for name in mgr.object_store_names()]

            # and an osfs bucket binds in nats-py with the same config facts
            await mgr.create_object_store(ObjectStoreConfig(bucket=other, description="osfs"))
            pystore = await peer.open_bucket(js, other)
            pstatus = await peer.status(pystore)
            assert pstatus.description == "osfs"
            config = pstatus.stream_info.config
            assert config.allow_rollup_hdrs is True
            assert config.allow_direct is True
            assert config.discard == peer.api.DiscardPolicy.NEW
            assert config.subjects == [f"$O.{other}.C.>", f"$O.{other}.M.>"]
            await mgr.delete_object_store(other)

    run(body())
