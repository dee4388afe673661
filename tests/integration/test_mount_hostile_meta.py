"""Garbage on a bucket's meta subjects, end to end: a real mount skips it, says so, and goes on.

Any client may store anything on ``$O.<bucket>.M.<token>``. What a mount must do with it:
1. A document that is not an object document (not JSON, not an object, a field of the wrong type,
   a nuid that is no subject token, empty, not UTF-8, nested too deep, huge) is skipped with
   exactly one WARNING line naming its subject, before the mount comes up (the initial values)
   as well as while it runs (the watcher); the mount comes up, keeps running, and later changes
   show as usual.
2. A document that *is* one, however odd (a garbage ``mtime``, headers as a list, metadata with
   numbers, a 900 KiB description, lone surrogates, a size no file can have), shows as a file;
   one whose name cannot be a path (``../escape``, ``/abs``, ``a//b``, NUL, a lone surrogate) is
   hidden with a WARNING line. Nothing is ever created outside the mountpoint, and ``ls -laR``
   and ``os.walk`` of the whole mount never fail.
3. A stored message whose publisher gave it a ``Status`` header is a document like any other:
   it is not mistaken for a heartbeat or a consumer status (which wedged the watcher for ever).
4. Garbage published over a good object's document: a running mount keeps showing the last good
   version (readable: its chunks are still there), a new mount does not show the name (its
   document is unreadable), and a put through the mount replaces the garbage and repairs the name
   for everyone.
5. A wildcard nuid (``>``) never reaches the store: removing or overwriting its name through the
   mount leaves every other object whole (it used to purge every chunk of the bucket).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from osfs.core.meta import ObjectMeta
from osfs.core.subjects import meta_subject
from tests.support import natspy_peer as peer
from tests.support.aio import run
from tests.support.data import payload
from tests.support.mounting import (
    IO_TIMEOUT,
    MountedProcess,
    io_errno,
    mounted,
    read_file,
    run_io,
    wait_until_path,
    write_file,
)
from tests.support.store_fixtures import bucket as new_bucket
from tests.support.store_fixtures import opened, put_raw, raw

pytestmark = [pytest.mark.integration, pytest.mark.fuse, pytest.mark.interop]

#: Seconds a change may take to show in the mount (the promise is "within a second").
SHOWS_WITHIN = 2.0
KiB = 1024

#: Messages no client could have written as a document: label -> payload. Each goes on a meta
#: subject of its own, and each must be skipped with one log line.
UNREADABLE: dict[str, bytes] = {
    "invalid-json": b'{"name": "broken", "size": ',
    "json-array": b'["name", "array.txt"]',
    "json-string": b'"just a string"',
    "json-null": b"null",
    "name-number": b'{"name": 42, "size": 0}',
    "name-empty": b'{"name": ""}',
    "size-string": b'{"name": "size-string", "size": "10"}',
    "size-float": b'{"name": "size-float", "size": 1.5}',
    "size-bool": b'{"name": "size-bool", "size": true}',
    "size-nan": b'{"name": "size-nan", "size": NaN}',
    "chunks-negative": b'{"name": "chunks-negative", "chunks": -1}',
    "nuid-number": b'{"name": "nuid-number", "nuid": 7}',
    # A nuid names the chunk subject: a wildcard or a second token would name other objects'.
    "nuid-wildcard": b'{"name": "nuid-wildcard", "nuid": ">", "size": 1, "chunks": 1}',
    "nuid-star": b'{"name": "nuid-star", "nuid": "*", "size": 1, "chunks": 1}',
    "nuid-dots": b'{"name": "nuid-dots", "nuid": "a.b", "size": 1, "chunks": 1}',
    "nuid-space": b'{"name": "nuid-space", "nuid": "a b", "size": 1, "chunks": 1}',
    "nuid-surrogate": b'{"name": "nuid-surrogate", "nuid": "\\ud800", "size": 1, "chunks": 1}',
    "deleted-string": b'{"name": "deleted-string", "deleted": "yes"}',
    "options-string": b'{"name": "options-string", "options": "fast"}',
    "link-string": b'{"name": "link-string", "options": {"link": "elsewhere"}}',
    "empty-payload": b"",
    "invalid-utf8": b'{"name": "\xff\xfe\xfd"}',
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"name": "deep", "headers": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
    "huge-number": b'{"name": "huge-number", "size": ' + b"9" * 10_000 + b"}",
    # Close to the server's 1 MiB max_payload, and still not a document.
    "huge-garbage": b'{"name": "huge-garbage", "size": "' + b"9" * (900 * KiB) + b'"}',
}

#: Odd documents that are documents all the same (read as leniently as nats.js reads them):
#: name -> document. They show as files.
ODD: dict[str, dict[str, object]] = {
    "odd/mtime-garbage.txt": {"mtime": "yesterday"},
    "odd/mtime-number.txt": {"mtime": 12345},
    "odd/headers-list.txt": {"headers": ["X-A", "1"]},
    "odd/metadata-types.txt": {
        "metadata": {"osfs.mode": 600, "osfs.uid": None, "team": "ops", "n": 1, "l": [1]}
    },
    "odd/huge-description.txt": {"description": "d" * (900 * KiB)},
    "odd/surrogates.txt": {"bucket": "b\ud800", "digest": "SHA-256=\udfff"},
    # More than any file can hold (st_size is a signed 64-bit off_t), and no chunk behind it.
    "odd/huge-size.bin": {"nuid": "NOSUCHVERSION", "size": 2**64 - 1, "chunks": 0},
}

#: Names no path can stand for (osfs.core.names): hidden, with a log line each.
HOSTILE = (
    "../escape",
    "/abs",
    "a//b",
    "nul\x00name",
    "x/../../etc/passwd",
    ".",
    "..",
    "lone\ud800surrogate",
)

#: ``Status`` headers a publisher may store with a message, each a server status code the
#: consumer also receives from the server itself (heartbeat, not found, conflict, no responders).
STATUSES = ("100", "404", "409", "503")


# Publishing -------------------------------------------------------------------------------------

Message = tuple[str, bytes, dict[str, str] | None]


def _unreadable(bucket: str, phase: str) -> list[Message]:
    return [
        (meta_subject(bucket, f"{phase}/{label}"), data, None) for label, data in UNREADABLE.items()
    ]


def _odd(bucket: str) -> list[Message]:
    messages: list[Message] = []
    for name, fields in ODD.items():
        doc = {"name": name, "bucket": bucket, "nuid": "", "size": 0, "chunks": 0, **fields}
        messages.append((meta_subject(bucket, name), json.dumps(doc).encode(), None))
    return messages


def _hostile(bucket: str) -> list[Message]:
    messages: list[Message] = []
    for i, name in enumerate(HOSTILE):
        try:
            subject = meta_subject(bucket, name)
        except UnicodeEncodeError:  # a lone surrogate has no UTF-8 bytes to encode
            subject = meta_subject(bucket, f"hostile-{i}")
        doc = json.dumps({"name": name, "bucket": bucket, "nuid": "", "size": 0, "chunks": 0})
        messages.append((subject, doc.encode(), None))
    return messages


def _with_status(bucket: str) -> list[Message]:
    messages: list[Message] = []
    for code in STATUSES:
        name = f"status/{code}.txt"
        doc = json.dumps({"name": name, "bucket": bucket, "nuid": "", "size": 0, "chunks": 0})
        headers = {"Status": code, "Description": "stored by a hostile client"}
        messages.append((meta_subject(bucket, name), doc.encode(), headers))
    return messages


async def _publish(url: str, messages: Iterable[Message]) -> None:
    """Store each message as it is, as a client that checks nothing would (no rollup)."""
    async with raw(url) as nc:
        js = nc.jetstream()
        for subject, data, headers in messages:
            await js.publish(subject, data, headers=headers)


def _chunk_status(position: int) -> dict[str, str]:
    """Chunks stored with a ``Status`` header each (rule 3, for chunks)."""
    return {"Status": ("404", "100", "409", "204")[position % 4]}


async def _create(url: str, bucket: str, objects: dict[str, bytes]) -> None:
    async with new_bucket(url, bucket) as store:
        for name, data in objects.items():
            await store.put_bytes(name, data)


async def _osfs_put(url: str, bucket: str, name: str, data: bytes) -> None:
    async with opened(url) as connection:
        store = await connection.manager.object_store(bucket)
        try:
            await store.put(ObjectMeta(name=name), data)
        finally:
            await store.aclose()


async def _natspy_put(url: str, bucket: str, name: str, data: bytes) -> None:
    async with peer.connect(url) as js:
        await peer.put(await peer.open_bucket(js, bucket), name, data)


# Checking ---------------------------------------------------------------------------------------


def _expect_skips(mount: MountedProcess) -> None:
    mount.expect_log(r"WARNING osfs\.store\.watch: bucket \S+: skipping unreadable meta document ")


def _assert_skipped_once_each(mount: MountedProcess, subjects: Iterable[str]) -> None:
    """One WARNING line per unreadable document, naming its subject (rule 1)."""
    for subject in subjects:
        pattern = (
            rf"WARNING .*skipping unreadable meta document on {re.escape(subject)} \(seq \d+\)"
        )
        mount.wait_for_log(pattern, timeout=SHOWS_WITHIN)
        lines = [ln for ln in mount.log_text().splitlines() if re.search(pattern, ln)]
        assert len(lines) == 1, f"{subject}: {len(lines)} log lines:\n" + "\n".join(lines)


def _expect_hidden(mount: MountedProcess) -> None:
    for name in HOSTILE:
        mount.expect_log(f"WARNING osfs.fs.watcher: hiding object {re.escape(repr(name))}: ")


def _assert_hidden_logged(mount: MountedProcess) -> None:
    for name in HOSTILE:
        mount.wait_for_log(f"hiding object {re.escape(repr(name))}: ", timeout=SHOWS_WITHIN)


def _outside(base: Path, mountpoints: Iterable[Path]) -> set[str]:
    """Every path under ``base`` but the mounts' own contents (what a mount could create)."""
    skip = {str(path) for path in mountpoints}
    found: set[str] = set()
    for top, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
        found.update(os.path.join(top, name) for name in dirs + files)
    return found


#: Absolute paths a hostile name could aim at if a name were ever used as a local path.
_ESCAPES = (Path("/abs"), Path("/escape"))


def _walk_everything(root: Path) -> list[Path]:
    """``ls -laR`` and ``os.walk`` of the whole mount, both without an error; every entry
    lstat-ed. Returns the entries found."""
    listing = subprocess.run(
        ["ls", "-laR", str(root)], capture_output=True, text=True, timeout=IO_TIMEOUT, check=False
    )
    assert listing.returncode == 0, listing.stderr
    assert listing.stderr == ""

    def walk() -> list[Path]:
        def fail(exc: OSError) -> None:
            raise exc

        entries: list[Path] = []
        for top, dirs, files in os.walk(root, onerror=fail):
            for name in dirs + files:
                path = Path(top) / name
                os.lstat(path)
                entries.append(path)
        return entries

    return run_io(walk, what=f"os.walk of {root}")


def _alive(mount: MountedProcess) -> None:
    assert mount.process.poll() is None, f"the mount process exited:\n{mount.tail()}"
    assert mount.mounted


def _later_puts_show(mount: MountedProcess, url: str, bucket: str, tag: str) -> None:
    """A put by osfs and one by nats-py after the garbage show within the usual blink."""
    mine, theirs = payload(200_000, seed=1), payload(300_000, seed=2)
    run(_osfs_put(url, bucket, f"after/{tag}-osfs.bin", mine))
    run(_natspy_put(url, bucket, f"after/{tag}-natspy.bin", theirs))
    for name, data in ((f"after/{tag}-osfs.bin", mine), (f"after/{tag}-natspy.bin", theirs)):
        wait_until_path(mount.path / name, timeout=SHOWS_WITHIN)
        assert read_file(mount.path / name) == data, name


def _check_odd_files(mount: MountedProcess, bucket: str, published_ns: int) -> None:
    """The odd documents show as files with sane attributes (rule 2)."""
    root = mount.path
    assert sorted(os.listdir(root / "odd")) == sorted(name.split("/")[1] for name in ODD)
    for name in ODD:
        if name != "odd/huge-size.bin":
            assert read_file(root / name) == b"", name
    st = os.stat(root / "odd/mtime-garbage.txt")  # the server's timestamp, not the document's
    assert published_ns - 10**10 <= st.st_mtime_ns <= time.time_ns() + 10**10
    assert os.getxattr(root / "odd/mtime-number.txt", "user.nats.bucket") == bucket.encode()
    # Lone surrogates (legal JSON escapes, no UTF-8) read as U+FFFD, as Go reads them.
    odd = root / "odd/surrogates.txt"
    assert os.getxattr(odd, "user.nats.bucket") == "b\ufffd".encode()
    assert os.getxattr(odd, "user.nats.digest") == "SHA-256=\ufffd".encode()
    headers = root / "odd/headers-list.txt"
    assert io_errno(lambda: os.getxattr(headers, "user.nats.headers")) == errno.ENODATA
    typed = root / "odd/metadata-types.txt"
    assert stat.S_IMODE(os.stat(typed).st_mode) == 0o644  # a number is no osfs.mode
    assert os.getxattr(typed, "user.team") == b"ops"
    assert io_errno(lambda: os.getxattr(typed, "user.n")) == errno.ENODATA
    # 900 KiB is more than an xattr may hold: the kernel refuses it, the mount stays up.
    huge = root / "odd/huge-description.txt"
    assert io_errno(lambda: os.getxattr(huge, "user.nats.description")) in (
        errno.E2BIG,
        errno.ERANGE,
    )
    # A size no file can have shows as the largest one; reading it fails with EIO.
    assert os.stat(root / "odd/huge-size.bin").st_size == 2**63 - 1
    assert io_errno(lambda: read_file(root / "odd/huge-size.bin")) == errno.EIO


def _expect_odd(mount: MountedProcess) -> None:
    mount.expect_log(
        r"WARNING osfs\.fs\.errno_map: (open|read): object 'odd/huge-size\.bin': .*\(answered EIO\)"
    )
    mount.expect_log(
        r"WARNING osfs\.fs\.reader: object 'odd/surrogates\.txt': not verifying reads: digest "
    )


@contextmanager
def _mounted_amid_garbage(url: str, bucket: str, base: Path) -> Iterator[MountedProcess]:
    """Mount ``bucket`` at ``base/bucket`` expecting the garbage's log lines; when the body is
    done, the mount must still be up and must have created nothing outside it, nor at the
    absolute paths hostile names aim at."""
    escapes = {path for path in _ESCAPES if path.exists()}
    mountpoint = base / bucket
    with mounted(url, bucket, mountpoint) as mount:
        _expect_skips(mount)
        _expect_hidden(mount)
        _expect_odd(mount)
        before = _outside(base, [mountpoint])
        yield mount
        _alive(mount)
        assert _outside(base, [mountpoint]) == before
    assert {path for path in _ESCAPES if path.exists()} == escapes


# Tests ------------------------------------------------------------------------------------------


def test_garbage_before_mounting_is_skipped_and_the_mount_comes_up(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """The initial values hold every kind of garbage, the last message of the bucket being one
    of them: the mount comes up, shows what is readable, logs one line per skipped document,
    and follows later changes (rules 1 and 2)."""
    good = {"good/before.txt": b"written before the garbage\n"}
    run(_create(nats_url, bucket_name, good))
    unreadable = _unreadable(bucket_name, "before")
    published_ns = time.time_ns()
    run(_publish(nats_url, [*_odd(bucket_name), *_hostile(bucket_name), *unreadable]))
    with _mounted_amid_garbage(nats_url, bucket_name, tmp_path) as mount:
        _assert_skipped_once_each(mount, [subject for subject, _, _ in unreadable])
        _assert_hidden_logged(mount)
        root = mount.path
        assert sorted(os.listdir(root)) == ["good", "odd"]
        assert read_file(root / "good/before.txt") == good["good/before.txt"]
        _check_odd_files(mount, bucket_name, published_ns)
        entries = _walk_everything(root)
        assert len(entries) == 2 + 1 + len(ODD)  # two dirs, one good file, the odd files
        _later_puts_show(mount, nats_url, bucket_name, "before")
        _walk_everything(root)


def test_garbage_while_mounted_is_skipped_and_the_watcher_keeps_running(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """A bucket holding nothing but one garbage message stored with a ``Status: 503`` header
    mounts empty; then every kind of garbage arrives while mounted: the watcher skips each with
    one line, shows what is readable, and keeps following changes (rules 1 to 3)."""
    first = meta_subject(bucket_name, "only/garbage")
    run(_create(nats_url, bucket_name, {}))
    run(_publish(nats_url, [(first, b"{not json", {"Status": "503"})]))
    with _mounted_amid_garbage(nats_url, bucket_name, tmp_path) as mount:
        _assert_skipped_once_each(mount, [first])
        root = mount.path
        assert os.listdir(root) == []
        unreadable = _unreadable(bucket_name, "live")
        published_ns = time.time_ns()
        run(
            _publish(
                nats_url,
                [
                    *unreadable,
                    *_with_status(bucket_name),
                    *_odd(bucket_name),
                    *_hostile(bucket_name),
                ],
            )
        )
        # Stored with Status headers, these are documents like any other (rule 3).
        for code in STATUSES:
            wait_until_path(root / f"status/{code}.txt", timeout=SHOWS_WITHIN)
            assert read_file(root / f"status/{code}.txt") == b""
        # ... and can be overwritten through the mount (a put looks up the previous version
        # with a Direct Get, which must not take the header for the server's status).
        for code in STATUSES:
            data = f"overwritten over Status {code}\n".encode()
            assert write_file(root / f"status/{code}.txt", data) is None, code
            assert read_file(root / f"status/{code}.txt") == data
        # Chunks stored with Status headers read back too (one Direct Get, and batches).
        chunked = {1: payload(3000, seed=3), 10: payload(10 * 4096, seed=4)}
        for count, data in chunked.items():
            pieces = [data[i : i + 4096] for i in range(0, len(data), 4096)]
            name = f"status/chunks-{count}.bin"
            run(
                put_raw(
                    nats_url,
                    bucket_name,
                    name,
                    pieces,
                    nuid=f"STATUSCHUNKS{len(pieces)}",
                    chunk_headers=_chunk_status,
                )
            )
            wait_until_path(root / name, timeout=SHOWS_WITHIN)
            assert read_file(root / name) == data, name
        _assert_skipped_once_each(mount, [subject for subject, _, _ in unreadable])
        _assert_hidden_logged(mount)
        for name in ODD:
            wait_until_path(root / name, timeout=SHOWS_WITHIN)
        _check_odd_files(mount, bucket_name, published_ns)
        assert sorted(os.listdir(root)) == ["odd", "status"]
        _later_puts_show(mount, nats_url, bucket_name, "live")
        assert sorted(os.listdir(root)) == ["after", "odd", "status"]
        entries = _walk_everything(root)
        assert len(entries) == 3 + len(ODD) + len(STATUSES) + 2 + 2


@pytest.fixture
def victim_bucket(nats_url: str, bucket_name: str) -> str:
    run(_create(nats_url, bucket_name, {"victim.txt": b"version one\n", "bystander.txt": b"b\n"}))
    return bucket_name


def test_garbage_over_a_good_object(nats_url: str, victim_bucket: str, tmp_path: Path) -> None:
    """Garbage published on the subject of a good object (rule 4): what each mount shows, and
    how a put through the mount repairs the name."""
    bucket = victim_bucket
    subject = meta_subject(bucket, "victim.txt")
    skip = rf"skipping unreadable meta document on {re.escape(subject)} \(seq \d+\)"
    with mounted(nats_url, bucket, tmp_path / "running") as running:
        _expect_skips(running)
        repaired = r"WARNING osfs\.store\.bucket: put of 'victim\.txt' replaces an unreadable meta "
        running.expect_log(repaired)
        victim = running.path / "victim.txt"
        assert read_file(victim) == b"version one\n"
        run(_publish(nats_url, [(subject, b'{"name": "victim.txt", "size": "lots"}', None)]))
        running.wait_for_log(skip, timeout=SHOWS_WITHIN)
        # The running mount keeps the last good version, and it still reads: its chunks are
        # still stored (the garbage was no put, and purged nothing).
        assert sorted(os.listdir(running.path)) == ["bystander.txt", "victim.txt"]
        assert read_file(victim) == b"version one\n"
        with mounted(nats_url, bucket, tmp_path / "fresh") as fresh:
            _expect_skips(fresh)
            # A new mount has only the garbage for that name: the name is not shown.
            fresh.wait_for_log(skip, timeout=SHOWS_WITHIN)
            assert os.listdir(fresh.path) == ["bystander.txt"]
            # A put through the running mount replaces the garbage (no longer refused because
            # the previous document is unreadable), and both mounts show the new version.
            assert write_file(victim, b"version two, after the garbage\n") is None
            running.wait_for_log(repaired)
            wait_until_path(fresh.path / "victim.txt", timeout=SHOWS_WITHIN)
            assert read_file(fresh.path / "victim.txt") == b"version two, after the garbage\n"
            assert read_file(victim) == b"version two, after the garbage\n"
            # The repaired name behaves as any other: it can be removed.
            run_io(lambda: os.unlink(victim), what="unlink")
            wait_until_path(fresh.path / "victim.txt", exists=False, timeout=SHOWS_WITHIN)
            assert os.listdir(fresh.path) == ["bystander.txt"]
            _alive(fresh)
        _alive(running)
    # Nothing of the garbage survives the repair: a new mount logs no skip at all.
    with mounted(nats_url, bucket, tmp_path / "after") as after:
        assert os.listdir(after.path) == ["bystander.txt"]
        assert not after.unexpected_log_lines()


async def _read_back(url: str, bucket: str, names: Iterable[str]) -> dict[str, bytes]:
    """The objects as the server has them now (not from any mount's cache)."""
    async with opened(url) as connection:
        store = await connection.manager.object_store(bucket)
        try:
            return {name: await store.get_bytes(name) for name in names}
        finally:
            await store.aclose()


def test_a_wildcard_nuid_never_reaches_other_objects(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """A document whose nuid is ``>`` or ``*`` would name the chunks of every object: shown, it
    read another object's bytes, and removing or overwriting it purged every chunk of the
    bucket. It is skipped like any unreadable document, and writing and removing its name
    through the mount leaves the other objects whole."""
    kept = {"keep/small.txt": b"small and precious\n", "keep/big.bin": payload(600_000, seed=5)}
    run(_create(nats_url, bucket_name, kept))
    wild = {"innocent.txt": ">", "harmless.txt": "*"}
    messages: list[Message] = [
        (meta_subject(bucket_name, name), json.dumps(doc).encode(), None)
        for name, nuid in wild.items()
        for doc in [{"name": name, "bucket": bucket_name, "nuid": nuid, "size": 19, "chunks": 1}]
    ]
    run(_publish(nats_url, messages))
    with mounted(nats_url, bucket_name, tmp_path / "mnt") as mount:
        _expect_skips(mount)
        mount.expect_log(r"WARNING osfs\.store\.bucket: put of '\w+\.txt' replaces an unreadable ")
        _assert_skipped_once_each(mount, [subject for subject, _, _ in messages])
        assert sorted(os.listdir(mount.path)) == ["keep"]
        for name in wild:
            path = mount.path / name
            assert write_file(path, b"mine now\n") is None, name
            assert read_file(path) == b"mine now\n"
            run_io(functools.partial(os.unlink, path), what=f"unlink {path}")
        assert run(_read_back(nats_url, bucket_name, kept)) == kept
        for name, data in kept.items():
            assert read_file(mount.path / name) == data, name
        _alive(mount)
