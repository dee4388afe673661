"""Many processes at once on one mount: an fsx-style random checker against a model of every file.

:data:`WORKERS` worker processes (``tests.support.fsx``) run random operations for
:data:`SECONDS` on a real ``osfs mount`` of a bucket on the session's nats-server: writes at
random offsets and lengths (across 128 KiB chunk boundaries, at and past the end), reads,
truncates that shrink and grow (through a descriptor and by path), appends (``O_APPEND``),
``fsync``/``fdatasync``, closes and reopens, rewrites (``O_TRUNC``, past the streaming step),
an editor's save (a temporary file renamed onto the name), renames between names (with the file
open, and onto a file someone holds open), unlink (with the file open, and made again while the
old one is still open), ``stat``, ``cat`` in a process of its own, and a scan of the whole tree.
Every read is checked, byte for byte, against the model; at the end every file is checked
through the mount, through a second mount (a new process) and through nats-py.

Rules (beside the conftest's and ``tests.support.mounting``'s):
1. Processes, not threads: each worker has its own descriptor table, so FUSE sees requests from
   several pids, a ``close`` in one process flushes a file others hold open (its page cache is
   the kernel's, shared by all), and nothing in the workers waits for one Python interpreter's
   lock. One file lock per name keeps the model exact (``tests.support.fsx`` rule 2): workers
   run in parallel on different names, and a file one worker holds open and dirty is read and
   written by the others between its operations.
2. Replay: the run is a function of :data:`SEED` (worker ``w`` uses ``SEED * 1000 + w``); a
   failure names the seed and keeps the journals (every operation, in order, per worker) in
   the test's ``tmp_path``. Timing still differs from run to run, so a replay repeats the
   operations, not their interleaving.
3. Nothing may hang: the workers have :data:`FINISH` seconds beyond :data:`SECONDS` to end (a
   worker stuck in a FUSE request is named with its last operation and kernel stack, then
   killed); no operation may hold its files longer than :data:`SLOW_OPERATION` (a stall that
   ends by itself, a request waiting out a timeout, is a bug too); every check after the
   workers runs under a deadline.
4. The mount has its own ``--cache-dir`` under ``tmp_path``: once everything is closed its spool
   must let go of every file, and after the unmount its instance folder must be gone (no dirty
   record left behind). Its log must stay free of WARNING/ERROR lines: none is declared.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from osfs.core.config import ObjectStoreConfig
from tests.support import natspy_peer as peer
from tests.support.aio import run
from tests.support.fsx import CHUNK, READY, Config, Locks, Model, Worker, describe_difference
from tests.support.mounting import MountedProcess, clean_env, mounted, read_file, run_io
from tests.support.store_fixtures import opened
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.fuse, pytest.mark.interop]

#: The seed of the whole run (rule 2).
SEED = 20240611
#: Seconds the workers run operations.
SECONDS = 12.0
#: Worker processes.
WORKERS = 8
#: Seconds beyond :data:`SECONDS` for the workers to finish their last operation and close (3).
FINISH = 20.0
#: Seconds one operation may hold its files' locks (its longest is well under one second:
#: 1.5 MB written and stored, or a scan of the tree); longer is a stall, some request waiting
#: for a timeout (as every abandoned streamed upload once did for 5 s).
SLOW_OPERATION = 4.0
#: Seconds the workers may take to start (a Python interpreter each, on a 2-core machine).
START = 20.0
#: The largest a file may grow: 12 chunks and a bit, past the streaming step.
CAPACITY = 12 * CHUNK + 20_000
#: The names the workers use: two per worker as its own (fsx's ``home``), in three directories,
#: so renames move files between directories too.
NAMES = (
    *(f"f{i:02}" for i in range(6)),
    *(f"d1/f{i:02}" for i in range(6, 11)),
    *(f"d1/d2/f{i:02}" for i in range(11, 16)),
)
#: The directories, made through the mount before the run and never removed.
DIRECTORIES = ("d1", "d1/d2")
#: Seconds the spool may take to let go of every file once all are closed (a truncate by path
#: that lands between a writer's flush and its release is left to the retry task, which stores
#: it within a couple of seconds).
SPOOL_RELEASE = 10.0
#: Seconds ``find`` may take over a mount.
FIND_TIMEOUT = 30.0
#: Where ``python -m tests.support.fsx`` is importable from.
PROJECT = Path(__file__).resolve().parents[2]


@contextmanager
def seed_noted(where: Path) -> Iterator[None]:
    """Name the seed and the journals on any failure (rule 2)."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(
            f"fsx run with SEED = {SEED} (worker w: seed SEED * 1000 + w); "
            f"journals in {where}/journal-*.txt"
        )
        raise


# The bucket and the files before the run ------------------------------------------------------


async def _create_bucket(url: str, bucket: str) -> None:
    async with opened(url) as connection:
        store = await connection.manager.create_object_store(ObjectStoreConfig(bucket=bucket))
        await store.aclose()


async def _natspy_put_all(url: str, bucket: str, objects: dict[str, bytes]) -> None:
    async with peer.connect(url) as js:
        store = await peer.open_bucket(js, bucket)
        for name, data in objects.items():
            await peer.put(store, name, data)


def prepare(url: str, bucket: str, root: Path, model: Model) -> None:
    """The directories (through the mount) and every other name's file, put by nats-py while
    mounted, so the run starts with stored objects that are not spooled yet (the first write
    copies them in) beside names that do not exist."""
    for directory in DIRECTORIES:
        run_io((root / directory).mkdir, what=f"mkdir {directory}")
    rng = random.Random(SEED)
    sizes = [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK - 1, CAPACITY, 5000, 7 * CHUNK]
    slots = range(0, len(NAMES), 2)
    objects = {NAMES[slot]: rng.randbytes(size) for slot, size in zip(slots, sizes, strict=True)}
    run(_natspy_put_all(url, bucket, objects))
    for name, data in objects.items():
        model.replace(NAMES.index(name), data, new_file=True)

        def visible(path: Path = root / name, size: int = len(data)) -> bool:
            try:
                return run_io(lambda: os.stat(path).st_size, what=f"stat {path}") == size
            except FileNotFoundError:
                return False

        wait_until(visible, 10.0, 0.05, f"{name} ({len(data)} bytes) to appear in the mount")


# The workers -----------------------------------------------------------------------------------


@dataclass
class Running:
    """One worker process and its files."""

    number: int
    process: subprocess.Popen[bytes]
    journal: Path
    out: Path
    err: Path

    def journal_tail(self, lines: int) -> str:
        text = self.journal.read_text(errors="replace") if self.journal.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def ready(self) -> bool:
        return self.journal.exists() and f" {READY}\n" in self.journal.read_text(errors="replace")

    def failure(self) -> str:
        """What a failed worker said (its traceback) and its last operations."""
        said = self.err.read_text(errors="replace")[-4000:]
        return (
            f"--- worker {self.number} exited with {self.process.returncode}:\n{said}\n"
            f"its last operations:\n{self.journal_tail(15)}"
        )

    def kernel_state(self) -> str:
        """Where the process waits in the kernel (for a hang's message)."""
        proc = Path(f"/proc/{self.process.pid}")
        found = []
        for name in ("wchan", "stack"):
            try:
                found.append(f"{name}: {(proc / name).read_text().strip()}")
            except OSError as exc:
                found.append(f"{name}: ({exc.strerror})")
        return "\n".join(found)


def start_workers(root: Path, model_path: Path, locks: Path, where: Path) -> list[Running]:
    """Start the workers and wait until each is ready (its model and locks open)."""
    running = []
    for number in range(WORKERS):
        config = Config(
            root=str(root),
            model=str(model_path),
            locks=str(locks),
            journal=str(where / f"journal-{number}.txt"),
            names=list(NAMES),
            directories=list(DIRECTORIES),
            capacity=CAPACITY,
            worker=number,
            seed=SEED * 1000 + number,
            seconds=SECONDS,
            home=[(2 * number) % len(NAMES), (2 * number + 1) % len(NAMES)],
        )
        out, err = where / f"worker-{number}.out", where / f"worker-{number}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.fsx", config.to_json()],
                stdin=subprocess.PIPE,
                stdout=stdout,
                stderr=stderr,
                cwd=PROJECT,
                env=clean_env(),
            )
        running.append(Running(number, process, Path(config.journal), out, err))
    try:
        wait_until(
            lambda: all(w.ready() or w.process.poll() is not None for w in running),
            START,
            0.05,
            "every worker to be ready",
        )
        failed = [w for w in running if w.process.poll() is not None]
        assert not failed, "workers exited before the start:\n" + "\n".join(
            f"worker {w.number}: {w.err.read_text(errors='replace')}" for w in failed
        )
    except BaseException:
        stop(running)
        raise
    return running


def stop(running: list[Running]) -> None:
    """Kill the workers that are still running (only ours, by their Popen)."""
    for worker in running:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)
    for worker in running:
        try:
            worker.process.wait(10)
        except subprocess.TimeoutExpired:
            pass  # stuck in the kernel: the unmount that follows aborts its request
        if worker.process.stdin is not None:
            worker.process.stdin.close()


def run_workers(running: list[Running], mount: MountedProcess) -> Counter[str]:
    """Go, then wait for every worker under the deadline (rule 3); their operation counts."""
    for worker in running:
        assert worker.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died: its exit status says why
            worker.process.stdin.write(b"g")
            worker.process.stdin.close()
    deadline = time.monotonic() + SECONDS + FINISH
    try:
        for worker in running:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stuck = [w for w in running if w.process.poll() is None]
                raise AssertionError(
                    f"{len(stuck)} worker(s) still running {SECONDS + FINISH:g} s after the start "
                    "(a deadlock or a hung FUSE request?):\n"
                    + "\n".join(
                        f"--- worker {w.number}, last operations:\n{w.journal_tail(8)}\n"
                        f"{w.kernel_state()}"
                        for w in stuck
                    )
                    + f"\n--- mount log:\n{mount.tail(30)}"
                ) from None
    finally:
        stop(running)
    failed = [w for w in running if w.process.returncode != 0]
    assert not failed, (
        "\n".join(w.failure() for w in failed)
        + "\n--- the others' last operations:\n"
        + "\n".join(w.journal_tail(3) for w in running if w not in failed)
        + f"\n--- mount log:\n{mount.tail(30)}"
    )
    counts: Counter[str] = Counter()
    slowest: tuple[float, str] = (0.0, "")
    for worker in running:
        report = json.loads(worker.out.read_text())
        counts.update(report["counts"])
        took, what = report["slowest"]
        slowest = max(slowest, (float(took), f"worker {worker.number}: {what}"))
    print(f"the slowest operation held its files {slowest[0]:.2f} s ({slowest[1]})")
    assert slowest[0] < SLOW_OPERATION, (
        f"an operation held its files {slowest[0]:.1f} s, a stall ({slowest[1]}; see its "
        f"journal)\n--- mount log:\n{mount.tail(30)}"
    )
    return counts


# Checks after the run --------------------------------------------------------------------------


def expected_files(model: Model) -> dict[str, int]:
    return {name: size for slot, name in enumerate(NAMES) if (size := model.size(slot)) is not None}


def find_tree(root: Path) -> tuple[set[str], dict[str, int]]:
    """``find``'s directories and files (with sizes) under ``root``; another kind fails."""
    done = subprocess.run(
        ["find", str(root), "-mindepth", "1", "-printf", r"%y %s %P\0"],
        capture_output=True,
        timeout=FIND_TIMEOUT,
        check=False,
        env=clean_env({"LC_ALL": "C"}),
    )
    assert (done.returncode, done.stderr) == (0, b""), f"find {root}: {done!r}"
    directories: set[str] = set()
    files: dict[str, int] = {}
    for entry in done.stdout.decode().split("\0")[:-1]:
        kind, size, name = entry.split(" ", 2)
        if kind == "d":
            directories.add(name)
        else:
            assert kind == "f", f"find lists {name!r} of type {kind!r}"
            files[name] = int(size)
    return directories, files


def check_through(root: Path, model: Model, what: str) -> None:
    """``find`` lists exactly the model's files, with its sizes; each reads as the model."""
    directories, files = find_tree(root)
    assert directories == set(DIRECTORIES), f"{what}: find lists the directories {directories}"
    assert files == expected_files(model), (
        f"{what}: find lists {sorted(files.items())}, "
        f"the model has {sorted(expected_files(model).items())}"
    )
    for slot, name in enumerate(NAMES):
        if model.exists(slot):
            difference = describe_difference(read_file(root / name), model.content(slot))
            assert difference is None, f"{what}: {name}: {difference}"


async def _natspy_everything(url: str, bucket: str) -> dict[str, bytes]:
    async with peer.connect(url) as js:
        store = await peer.open_bucket(js, bucket)
        names = [info.name for info in await peer.list_objects(store, ignore_deletes=True)]
        return {name: (await peer.get(store, name))[0] for name in names}


def check_natspy(url: str, bucket: str, model: Model) -> None:
    """nats-py lists the model's files and the directory markers; each gets as the model."""
    stored = run(_natspy_everything(url, bucket))
    markers = {f"{directory}/" for directory in DIRECTORIES}
    assert set(stored) == set(expected_files(model)) | markers, (
        f"nats-py lists {sorted(stored)}, the model has {sorted(expected_files(model))}"
    )
    for slot, name in enumerate(NAMES):
        if model.exists(slot):
            difference = describe_difference(stored[name], model.content(slot))
            assert difference is None, f"nats-py: {name}: {difference}"


def spool_left(cache: Path) -> list[Path]:
    """Spool data files and dirty records in any instance folder under ``cache``."""
    return sorted([*cache.glob("*/*/*.data"), *cache.glob("*/*/*.meta")])


def instance_folders(cache: Path) -> list[Path]:
    return sorted(path for path in cache.glob("*/*") if path.is_dir())


# The test --------------------------------------------------------------------------------------


def test_random_operations_of_many_processes_match_the_model(
    nats_url: str, bucket_name: str, tmp_path: Path
) -> None:
    """Rules 1-4: every read during the run, and every file at the end through the mount, a
    second mount and nats-py, is what the model says; nothing hangs, leaks or warns."""
    cache, second_cache = tmp_path / "cache", tmp_path / "cache-2"
    model_path, locks = tmp_path / "model.bin", tmp_path / "locks"
    with seed_noted(tmp_path):
        run(_create_bucket(nats_url, bucket_name))
        model = Model.create(model_path, len(NAMES), CAPACITY)
        Locks.create(locks, len(NAMES))
        started = time.monotonic()
        with mounted(nats_url, bucket_name, tmp_path / "mnt", "--cache-dir", str(cache)) as mount:
            prepare(nats_url, bucket_name, mount.path, model)
            running = start_workers(mount.path, model_path, locks, tmp_path)
            counts = run_workers(running, mount)
            kinds = [name for name, _ in Worker.OPERATIONS]
            total = sum(counts[name] for name in kinds)
            print(f"fsx seed {SEED}: {total} operations by {WORKERS} workers: {dict(counts)}")
            missing = [name for name in kinds if not counts[name]]
            assert not missing, f"operations that never ran: {missing} ({dict(counts)})"
            mount.check_log()

            check_through(mount.path, model, "the mount")
            wait_until(
                lambda: not spool_left(cache),
                SPOOL_RELEASE,
                0.05,
                lambda: f"the spool to let go of every file: {spool_left(cache)}",
            )
            with mounted(
                nats_url, bucket_name, tmp_path / "mnt-2", "--cache-dir", str(second_cache)
            ) as second:
                check_through(second.path, model, "a second mount")
            check_natspy(nats_url, bucket_name, model)
        assert instance_folders(cache) == [], "the unmounted mount left its spool folder"
        assert instance_folders(second_cache) == []
        model.close()
        print(f"the whole test took {time.monotonic() - started:.1f} s")
