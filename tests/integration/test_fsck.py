"""``osfs fsck`` on a real nats-server: the real CLI, and ``osfs.store.fsck`` under it.

Rules: the conftest's, and
1. Every kind of damage is made the way it happens in the field, with a plain nats-py
   connection next to osfs's: chunks published with no meta document (a put interrupted in any
   client), a chunk message deleted, a chunk rewritten, a garbage document, a name put by
   nats-py that the mount hides.
2. The CLI runs as ``python -m osfs --server URL`` with a clean environment (as in
   ``test_cli.py``); what it reports is checked against what the stream holds afterwards.
3. A bucket per test (``bucket_name``); no fixed sleeps (``--grace 0`` makes an orphan old).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nats.nuid import NUID

from osfs.core import errors
from osfs.core.config import ObjectStoreConfig
from osfs.core.meta import ObjectMeta
from osfs.core.names import REASON_EMPTY_COMPONENT
from osfs.core.subjects import chunk_subject, stream_name
from osfs.store.fsck import DEFAULT_GRACE, check, repair
from tests.support import natspy_peer as peer
from tests.support.aio import asyncio_test, run
from tests.support.cli import Result, isolated_env, run_osfs
from tests.support.data import payload
from tests.support.natsjs import NatsJs, NatsJsSetupError
from tests.support.store_fixtures import bucket, message_count, opened, raw, stored_messages

pytestmark = pytest.mark.integration

Fsck = Callable[..., Result]


@pytest.fixture
def fsck(nats_url: str, tmp_path: Path) -> Fsck:
    """Run ``osfs --server URL fsck ARGS...`` in a clean environment."""
    env = isolated_env(tmp_path)

    def run_fsck(*argv: str) -> Result:
        result = run_osfs("--server", nats_url, "fsck", *argv, env=env, cwd=tmp_path)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run_fsck


def _new_nuid() -> str:
    return NUID().next().decode()


async def _chunk_count(url: str, bucket_name: str, nuid: str) -> int:
    async with raw(url) as nc:
        return await message_count(nc, stream_name(bucket_name), chunk_subject(bucket_name, nuid))


async def _interrupted_put(url: str, bucket_name: str, chunks: int) -> str:
    """Chunks on a fresh nuid and no meta document, as any client interrupted mid-put leaves."""
    nuid = _new_nuid()
    async with raw(url) as nc:
        js = nc.jetstream()
        for i in range(chunks):
            await js.publish(chunk_subject(bucket_name, nuid), payload(100, seed=i))
    return nuid


async def _put(url: str, bucket_name: str, name: str, data: bytes, chunk_size: int = 0) -> str:
    """Create the bucket if need be, put ``name`` through osfs; return its nuid."""
    async with opened(url) as connection:
        try:
            store = await connection.manager.object_store(bucket_name)
        except errors.BucketNotFoundError:
            store = await connection.manager.create_object_store(
                ObjectStoreConfig(bucket=bucket_name)
            )
        try:
            info = await store.put(ObjectMeta(name=name, chunk_size=chunk_size), data)
        finally:
            await store.aclose()
    return info.nuid


# A clean bucket ------------------------------------------------------------------------------


def test_a_clean_bucket_is_exit_0(fsck: Fsck, nats_url: str, bucket_name: str) -> None:
    async def fill() -> None:
        async with bucket(nats_url, bucket_name) as store:
            big = await store.put(ObjectMeta(name="dir/big", chunk_size=1000), payload(3500))
            await store.put(ObjectMeta(name="empty"), b"")
            await store.put(ObjectMeta(name="gone"), b"bye")
            await store.delete("gone")
            await store.add_link("dir/ln", big)

    run(fill())
    for argv in ((bucket_name,), (bucket_name, "--verify", "--grace", "0")):
        result = fsck(*argv)
        assert result.code == 0, (result.text, result.stderr)
        lines = result.text.splitlines()
        assert lines[0] == f"bucket {bucket_name}: 3 objects checked"
        assert lines[-1] == "no problems"
        assert len(lines) == 2, result.text


def test_an_empty_bucket_is_exit_0(fsck: Fsck, nats_url: str, bucket_name: str) -> None:
    async def create() -> None:
        async with bucket(nats_url, bucket_name):
            pass

    run(create())
    result = fsck(bucket_name, "--verify")
    assert result.code == 0, result.stderr
    assert result.text.splitlines() == [f"bucket {bucket_name}: 0 objects checked", "no problems"]


def test_a_missing_bucket_is_exit_3(fsck: Fsck, bucket_name: str) -> None:
    result = fsck(bucket_name)
    assert result.code == 3
    assert result.stderr.startswith("osfs: error: "), result.stderr


# Orphans: an interrupted put -------------------------------------------------------------------


def test_interrupted_put_is_recent_then_orphan_then_purged(
    fsck: Fsck, nats_url: str, bucket_name: str
) -> None:
    run(_put(nats_url, bucket_name, "keep", payload(2000), chunk_size=1000))
    nuid = run(_interrupted_put(nats_url, bucket_name, 3))

    # Within the default grace it may be a put in progress: reported, not a problem.
    recent = fsck(bucket_name)
    assert recent.code == 0, (recent.text, recent.stderr)
    assert f"chunks of nuid {nuid}: 3 messages, recent" in recent.text
    assert recent.text.splitlines()[-1] == "no problems"
    # --repair never purges a recent orphan.
    assert fsck(bucket_name, "--repair").code == 0
    assert run(_chunk_count(nats_url, bucket_name, nuid)) == 3

    # Past the grace it is an orphan: a problem until repaired.
    old = fsck(bucket_name, "--grace", "0")
    assert old.code == 7, (old.text, old.stderr)
    assert f"chunks of nuid {nuid}: 3 messages, orphan (--repair purges it)" in old.text
    assert not any("recent" in line for line in old.text.splitlines()[1:])
    assert old.text.splitlines()[-1] == "1 problem left"
    assert run(_chunk_count(nats_url, bucket_name, nuid)) == 3  # checking changes nothing

    repaired = fsck(bucket_name, "--repair", "--grace", "0")
    assert repaired.code == 0, (repaired.text, repaired.stderr)
    assert f"chunks of nuid {nuid}: 3 messages, purged" in repaired.text
    assert repaired.text.splitlines()[-1] == "no problems"
    assert run(_chunk_count(nats_url, bucket_name, nuid)) == 0

    again = fsck(bucket_name, "--grace", "0", "--verify")
    assert again.code == 0, again.text
    assert nuid not in again.text
    assert again.text.splitlines() == [f"bucket {bucket_name}: 1 object checked", "no problems"]


@asyncio_test
async def test_check_and_repair_over_a_real_connection(nats_url: str, bucket_name: str) -> None:
    async with bucket(nats_url, bucket_name) as store:
        kept = await store.put(ObjectMeta(name="keep", chunk_size=1000), payload(2500))
        nuid = await _interrupted_put(nats_url, bucket_name, 2)

        report = await check(store)  # the default grace: recent
        [recent] = report.recent
        assert (recent.nuid, recent.messages, report.orphans, report.problems) == (nuid, 2, (), 0)
        assert report.findings.orphans == {nuid: 2}
        assert DEFAULT_GRACE == 600.0
        assert (await repair(store, report)).purged == 0  # recent ones are never purged
        assert await _chunk_count(nats_url, bucket_name, nuid) == 2

        seen: list[str] = []
        report = await check(store, grace=0, verify=True, progress=seen.append)
        assert seen == ["keep"]
        [orphan] = report.orphans
        assert (orphan.nuid, orphan.messages, report.recent, report.problems) == (nuid, 2, (), 1)
        assert orphan.newest_ns > 0
        repaired = await repair(store, report)
        assert (repaired.purged, repaired.problems) == (2, 0)
        assert await _chunk_count(nats_url, bucket_name, nuid) == 0
        assert await _chunk_count(nats_url, bucket_name, kept.nuid) == 3  # the live object's

        clean = await check(store, grace=0, verify=True)
        assert (clean.findings.orphans, clean.orphans, clean.problems) == ({}, (), 0)


@asyncio_test
async def test_an_orphan_purged_while_checking_is_dropped(
    nats_url: str, bucket_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between counting chunk subjects and asking for an orphan's age, another client may purge
    it (an overwrite purging its previous version, a failed put cleaning up, another repair):
    fsck must not fail on that, and the orphan is gone, so it is not reported."""
    async with bucket(nats_url, bucket_name) as store:
        await store.put(ObjectMeta(name="keep"), b"keep")
        vanishing = await _interrupted_put(nats_url, bucket_name, 2)
        staying = await _interrupted_put(nats_url, bucket_name, 1)
        api = store.api
        original = api.direct_get_last

        async def purged_first(stream: str, subject: str) -> Any:
            if subject == chunk_subject(bucket_name, vanishing):
                await api.purge(stream, subject)  # the other client, just in time
            return await original(stream, subject)

        monkeypatch.setattr(api, "direct_get_last", purged_first)
        report = await check(store, grace=0)
        assert [orphan.nuid for orphan in report.orphans] == [staying]
        assert report.problems == 1
        assert (await repair(store, report)).purged == 1


@asyncio_test
async def test_repair_of_orphans_another_client_purged_first_leaves_no_problem(
    nats_url: str, bucket_name: str
) -> None:
    """The report may be minutes old (``--verify`` of a big bucket) when ``repair`` runs; an
    orphan another client purged meanwhile is gone all the same, so no problem is left."""
    async with bucket(nats_url, bucket_name) as store:
        nuid = await _interrupted_put(nats_url, bucket_name, 2)
        report = await check(store, grace=0)
        assert [orphan.nuid for orphan in report.orphans] == [nuid]
        await store.api.purge(store.stream, chunk_subject(bucket_name, nuid))

        repaired = await repair(store, report)
        assert (repaired.purged, repaired.repaired, repaired.problems) == (0, True, 0)
        assert (await check(store, grace=0)).problems == 0


# Damaged: a chunk message lost -----------------------------------------------------------------


def test_a_lost_chunk_is_damage_that_repair_leaves_alone(
    fsck: Fsck, nats_url: str, bucket_name: str
) -> None:
    nuid = run(_put(nats_url, bucket_name, "obj", payload(3000), chunk_size=1000))

    async def lose_the_middle_chunk() -> None:
        async with raw(nats_url) as nc:
            stream = stream_name(bucket_name)
            chunks = await stored_messages(nc, stream, chunk_subject(bucket_name, nuid))
            assert len(chunks) == 3
            await nc.jetstream().delete_msg(stream, int(chunks[1]["seq"]))

    run(lose_the_middle_chunk())
    damaged = f"  damaged 'obj': 2 of 3 chunks stored (nuid {nuid})"
    for argv in ((bucket_name,), (bucket_name, "--repair", "--grace", "0")):
        result = fsck(*argv)
        assert result.code == 7, (result.text, result.stderr)
        assert damaged in result.text.splitlines()
        assert result.text.splitlines()[-1] == "1 problem left"
        assert not any("purged" in line for line in result.text.splitlines()[1:])
    assert run(_chunk_count(nats_url, bucket_name, nuid)) == 2  # nothing was deleted

    async def still_listed() -> None:
        async with bucket(nats_url, bucket_name) as store:
            assert (await store.get_info("obj")).nuid == nuid

    run(still_listed())


# Corrupt: a chunk rewritten --------------------------------------------------------------------


def test_a_corrupt_chunk_is_found_only_by_verify(
    fsck: Fsck, nats_url: str, bucket_name: str
) -> None:
    data = payload(3000)
    nuid = run(_put(nats_url, bucket_name, "c", data, chunk_size=1000))
    run(_put(nats_url, bucket_name, "fine", b"fine"))

    async def corrupt() -> None:
        bad = bytearray(data)
        bad[1500] ^= 0xFF
        async with raw(nats_url) as nc:
            js = nc.jetstream()
            subject = chunk_subject(bucket_name, nuid)
            await js.purge_stream(stream_name(bucket_name), subject=subject)
            for start in range(0, len(bad), 1000):
                await js.publish(subject, bytes(bad[start : start + 1000]))

    run(corrupt())
    plain = fsck(bucket_name)
    assert plain.code == 0, plain.text  # the chunk count is right: only the digest knows
    assert not any("corrupt" in line for line in plain.text.splitlines()[1:])

    verified = fsck(bucket_name, "--verify")
    assert verified.code == 7, (verified.text, verified.stderr)
    [line] = [line for line in verified.text.splitlines()[1:] if "corrupt" in line]
    assert line.startswith("  corrupt 'c': ")
    assert not any("fine" in line for line in verified.text.splitlines()[1:])
    assert verified.text.splitlines()[-1] == "1 problem left"

    as_json = fsck(bucket_name, "--verify", "--json").json()
    assert [entry["name"] for entry in as_json["corrupt"]] == ["c"]
    assert as_json["damaged"] == []
    assert as_json["problems"] == 1


# Unreadable: a garbage document ----------------------------------------------------------------


def test_a_garbage_document_is_named_unreadable(
    fsck: Fsck, nats_url: str, bucket_name: str
) -> None:
    run(_put(nats_url, bucket_name, "fine", b"fine"))
    garbage = peer.meta_subject(bucket_name, "garbage")

    nameless = f"$O.{bucket_name}.M.not-base64!"

    async def publish_garbage() -> None:
        async with raw(nats_url) as nc:
            await nc.jetstream().publish(garbage, b"{not json")
            await nc.jetstream().publish(nameless, b"")

    run(publish_garbage())
    result = fsck(bucket_name)
    assert result.code == 7, (result.text, result.stderr)
    lines = result.text.splitlines()
    assert lines[0] == f"bucket {bucket_name}: 1 object checked"
    assert f"  unreadable meta document of 'garbage' on {garbage}" in lines
    assert f"  unreadable meta document (its name cannot be decoded) on {nameless}" in lines
    assert lines[-1] == "2 problems left"
    doc = fsck(bucket_name, "--json").json()
    assert doc["unreadable_documents"] == 2
    named = {entry["subject"]: entry["name"] for entry in doc["unreadable"]}
    assert named == {garbage: "garbage", nameless: None}


# Hidden: a name the mount cannot show ----------------------------------------------------------


def test_a_hidden_name_put_by_nats_py_is_listed_not_a_problem(
    fsck: Fsck, nats_url: str, bucket_name: str
) -> None:
    async def put_with_nats_py() -> None:
        async with peer.connect(nats_url) as js:
            store = await peer.create_bucket(js, bucket_name)
            await peer.put(store, "a//b", payload(5000), chunk_size=2000)
            await peer.put(store, "ok", b"ok")

    run(put_with_nats_py())
    result = fsck(bucket_name, "--verify", "--grace", "0")
    assert result.code == 0, (result.text, result.stderr)
    lines = result.text.splitlines()
    assert f"  hidden by the mount: 'a//b' ({REASON_EMPTY_COMPONENT})" in lines
    assert lines[0] == f"bucket {bucket_name}: 2 objects checked"
    assert lines[-1] == "no problems"


# JSON ------------------------------------------------------------------------------------------


def test_json_carries_the_same_facts_as_the_text(
    fsck: Fsck, nats_url: str, bucket_name: str
) -> None:
    lost = run(_put(nats_url, bucket_name, "lost", payload(2000), chunk_size=1000))
    run(_put(nats_url, bucket_name, "../up", b"hidden"))
    orphan = run(_interrupted_put(nats_url, bucket_name, 2))

    async def damage() -> None:
        async with raw(nats_url) as nc:
            stream = stream_name(bucket_name)
            js = nc.jetstream()
            first = (await stored_messages(nc, stream, chunk_subject(bucket_name, lost)))[0]
            await js.delete_msg(stream, int(first["seq"]))
            await js.publish(peer.meta_subject(bucket_name, "junk"), b"\xff\xfe")

    run(damage())

    recent = fsck(bucket_name, "--json")
    assert recent.code == 7  # the damage and the garbage; the orphan is still recent
    doc = recent.json()
    assert doc["recent_orphans"] == [{"nuid": orphan, "messages": 2}]
    assert doc["orphans"] == []
    assert doc["problems"] == 2

    text = fsck(bucket_name, "--grace", "0")
    result = fsck(bucket_name, "--grace", "0", "--json")
    assert (result.code, text.code) == (7, 7)
    doc = result.json()
    assert set(doc) == {
        "bucket",
        "objects",
        "orphans",
        "recent_orphans",
        "purged_messages",
        "damaged",
        "corrupt",
        "unreadable_documents",
        "unreadable",
        "hidden",
        "problems",
    }
    assert doc["bucket"] == bucket_name
    assert doc["objects"] == 2
    [entry] = doc["orphans"]
    assert (entry["nuid"], entry["messages"]) == (orphan, 2)
    assert isinstance(entry["newest_ns"], int)
    assert entry["newest_ns"] > 0
    assert doc["recent_orphans"] == []
    assert doc["purged_messages"] == 0
    assert doc["damaged"] == [{"name": "lost", "problem": f"1 of 2 chunks stored (nuid {lost})"}]
    assert doc["corrupt"] == []
    assert doc["unreadable_documents"] == 1
    junk = peer.meta_subject(bucket_name, "junk")
    assert doc["unreadable"] == [{"subject": junk, "name": "junk"}]
    assert doc["hidden"] == [{"name": "../up", "reason": "'.' or '..' path component"}]
    assert doc["problems"] == 3
    # The same facts, as text.
    lines = text.text.splitlines()
    assert f"  chunks of nuid {orphan}: 2 messages, orphan (--repair purges it)" in lines
    assert f"  damaged 'lost': 1 of 2 chunks stored (nuid {lost})" in lines
    assert f"  unreadable meta document of 'junk' on {junk}" in lines
    assert "  hidden by the mount: '../up' ('.' or '..' path component)" in lines
    assert lines[-1] == "3 problems left"

    repaired = fsck(bucket_name, "--repair", "--grace", "0", "--json")
    assert repaired.code == 7  # the orphan is gone; the damage and the garbage stay
    doc = repaired.json()
    assert (doc["purged_messages"], doc["problems"]) == (2, 2)
    assert run(_chunk_count(nats_url, bucket_name, orphan)) == 0
    assert run(_chunk_count(nats_url, bucket_name, lost)) == 1


# Links written by nats.js ----------------------------------------------------------------------


@pytest.mark.interop
def test_links_written_by_nats_js_are_not_damage(
    fsck: Fsck, nats_url: str, bucket_name: str, make_bucket_name: Callable[[], str]
) -> None:
    """nats.js puts the *target* bucket into a link document's own ``bucket`` field and writes
    no nuid (wire.md §9): a link into another bucket must not be checked against this one."""
    try:
        natsjs = NatsJs(nats_url)
    except NatsJsSetupError as exc:
        pytest.fail(str(exc), pytrace=False)
    other = make_bucket_name()
    run(_put(nats_url, bucket_name, "target", b"here"))
    run(_put(nats_url, other, "remote", b"there"))
    natsjs.link(bucket_name, "js-link", "target")
    natsjs.link(bucket_name, "js-remote-link", "remote", target_bucket=other)
    natsjs.link_store(bucket_name, "js-bucket-link", other)

    result = fsck(bucket_name, "--verify", "--grace", "0")
    assert result.code == 0, (result.text, result.stderr)
    assert result.text.splitlines() == [f"bucket {bucket_name}: 4 objects checked", "no problems"]

    async def delete_targets() -> None:
        for name, where in (("target", bucket_name), ("remote", other)):
            async with opened(nats_url) as connection:
                store = await connection.manager.object_store(where)
                await store.delete(name)
                await store.aclose()

    run(delete_targets())
    dangling = fsck(bucket_name, "--json")
    assert dangling.code == 7
    # Only the link into this bucket is checked; the other bucket is not this fsck's business.
    assert dangling.json()["damaged"] == [
        {"name": "js-link", "problem": "link to missing object 'target'"}
    ]
