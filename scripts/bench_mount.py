"""Benchmark the osfs mount (FUSE) against the osfs client on the same server, in one run.

Usage::

    python scripts/bench_mount.py [--quick] [--size 1G] [--random-size 256M] [--objects 100000]
                                  [--changes 100] [--reads 500] [--repeat N]
                                  [--cache-size 256MiB] [--daemon-cpus LIST] [--json out.json] [-v]

It starts its own nats-server (``scripts/bench_store.py``'s: file storage in a temporary
directory, 127.0.0.1, a port the server picks) and mounts buckets on mountpoints in that
directory with ``.venv/bin/osfs`` (the only mounts it unmounts). The client side of every
comparison runs in a child process (``scripts/bench/mount_worker.py``) that times only the
operation. Measured, in this order:

* **cold sequential read**: a fresh foreground mount (``osfs mount -f``, a child of this script,
  so its PID is known) — the kernel page cache of a file belongs to the mount's superblock, so a
  new mount starts cold — then ``dd if=FILE of=/dev/null bs=1M``; against the client's streaming
  ``store.get`` of the same object (repeats interleaved: get, mount read, get, ...; one
  warm-up turn of both first, not recorded);
* **warm re-read**: ``dd`` of the same file again on the same mount (kernel page cache);
* **daemon RSS**: ``VmHWM`` of the mount process after both reads, against ``--cache-size``;
* **random 4 KiB reads**: a fresh mount, ``--reads`` ``os.pread``s of 4 KiB at random aligned
  offsets in distinct chunks of the ``--random-size`` object (``POSIX_FADV_RANDOM``, so that
  the kernel does not read ahead), against single-chunk Direct Gets by the client
  (``store.read_chunks(index, [i])``) of as many random chunks;
* **remote change -> visible**: ``--changes`` puts of new tiny objects by another client; after
  each put is acknowledged the worker polls ``os.lstat`` of its path in the mount (every 0.2 ms);
* **many objects**: a bucket of ``--objects`` 16-byte objects in 100 directories created by raw
  pipelined publishes (chunk + ``encode_meta`` document); the client's walk of it
  (``store.watch()`` until the None marker), then ``osfs mount`` in the background timed from
  start to return, then ``ls -lR`` of the mount timed.

Before each timed read of either peer (the large object and the random-read one), the server's
stream files are read once, untimed (``bench_store.warm_stream``): this machine pages out page
cache left unused for a few seconds, and every peer must start from the same place.

The ratios the issue names are printed with their targets and PASS/FAIL. See docs/benchmarks.md
("The mount"). Needs root or FUSE access (``/dev/fuse``, ``fusermount3``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

HERE = Path(__file__).resolve().parent
# Run as a script from anywhere: make the project (and scripts/bench_store.py) importable.
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from scripts.bench_store import (  # noqa: E402
    GiB,
    KiB,
    MiB,
    Server,
    machine,
    parse_size,
    size_label,
    warm_stream,
    write_data,
)

WORKER = HERE / "bench" / "mount_worker.py"
OSFS = Path(sys.executable).parent / "osfs"

Json = dict[str, Any]

#: The issue's targets.
COLD_RATIO = 0.70
WARM_MB_S = 1000.0  # 1 GB/s, in MB/s (10^6 bytes)
RANDOM_RATIO = 2.0
READY_RATIO = 2.0
CHANGE_P99_MS = 500.0
RSS_MARGIN_MIB = 100.0


# Helpers ------------------------------------------------------------------------------------


def worker(request: Json, limit: float) -> Json:
    """Run one client op in a child process; its JSON answer (``ok`` false on any failure)."""
    try:
        proc = subprocess.run(
            [sys.executable, str(WORKER), json.dumps(request)],
            capture_output=True,
            timeout=limit,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"{request['op']}: no answer within {limit:.0f}s (killed)"}
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        answer: Json = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if not answer:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        answer = {"ok": False, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
    return answer


def vm_kib(pid: int, key: str) -> int:
    """A ``kB`` field (VmHWM, VmRSS) of /proc/PID/status; 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


def timed_output(
    command: Sequence[str], limit: float, **kwargs: Any
) -> tuple[float, int, str, str]:
    """Run ``command``: (seconds, exit status, stdout, stderr tail). Status -9 when killed at
    ``limit``."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, timeout=limit, check=False, **kwargs)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, -9, "", f"killed after {limit:.0f}s"
    elapsed = time.perf_counter() - start
    return (
        elapsed,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace").strip()[-400:],
    )


def timed_run(command: Sequence[str], limit: float, **kwargs: Any) -> tuple[float, int, str]:
    """Run ``command``: (seconds, exit status, stderr tail). Status -9 when killed at ``limit``."""
    elapsed, code, _, err = timed_output(command, limit, **kwargs)
    return elapsed, code, err


def unmount(mountpoint: Path, cache_dir: Path | None = None) -> None:
    """``osfs umount`` our own mountpoint; lazily with fusermount3 if that fails.

    ``cache_dir`` is the mount's ``--cache-dir``, if it was given one (umount waits for the files
    written through the mount to be stored).
    """
    if not os.path.ismount(mountpoint):
        return
    spool = ["--cache-dir", str(cache_dir)] if cache_dir is not None else []
    _, code, _ = timed_run([str(OSFS), "umount", *spool, str(mountpoint)], 30.0)
    if code != 0 and os.path.ismount(mountpoint):
        timed_run(["fusermount3", "-u", "-z", str(mountpoint)], 30.0)


@dataclass
class Mount:
    """A foreground ``osfs mount -f`` child of this script (so that its PID is known).

    ``cache_dir``: the mount's ``--cache-dir`` (where written files are spooled), if not the
    default. ``cpus``: run the daemon under ``taskset -c cpus`` (``--daemon-cpus``), if set.
    """

    url: str
    bucket: str
    mountpoint: Path
    cache_size: str
    log: Path
    cache_dir: Path | None = None
    cpus: str = ""
    proc: subprocess.Popen[bytes] | None = None

    def start(self, probe: str, limit: float = 60.0) -> float:
        """Mount and wait until ``probe`` (a path inside) is visible: seconds it took."""
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *pinned(self.cpus),
                    str(OSFS),
                    "--server",
                    self.url,
                    "mount",
                    self.bucket,
                    str(self.mountpoint),
                    "-f",
                    "--cache-size",
                    self.cache_size,
                    *(["--cache-dir", str(self.cache_dir)] if self.cache_dir else []),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        target = self.mountpoint / probe
        while time.perf_counter() - start < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"osfs mount exited {self.proc.returncode}; see {self.log}")
            if os.path.ismount(self.mountpoint) and os.path.lexists(target):
                return time.perf_counter() - start
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"mount of {self.bucket} not ready within {limit:.0f}s; see {self.log}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None:
            return
        unmount(self.mountpoint, self.cache_dir)
        try:
            self.proc.wait(30.0)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def pinned(cpus: str) -> list[str]:
    """The command prefix that runs a daemon on ``cpus`` only (none when empty)."""
    return ["taskset", "-c", cpus] if cpus else []


@contextlib.contextmanager
def mounted(mount: Mount, probe: str) -> Iterator[Mount]:
    mount.start(probe)
    try:
        yield mount
    finally:
        mount.stop()


def dd(path: Path, limit: float) -> tuple[float, str]:
    """``dd if=path of=/dev/null bs=1M``: seconds, and an error text ('' if it worked)."""
    elapsed, code, err = timed_run(
        ["dd", f"if={path}", "of=/dev/null", "bs=1M"], limit, env={**os.environ, "LC_ALL": "C"}
    )
    return elapsed, "" if code == 0 else f"dd exit {code}: {err}"


# The benchmark ------------------------------------------------------------------------------


@dataclass
class Settings:
    size: int
    random_size: int
    objects: int
    changes: int
    reads: int
    repeat: int
    cache_size: str
    verbose: bool
    daemon_cpus: str = ""


@dataclass
class Results:
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str, error: object) -> None:
        message = f"{what}: {error}"
        self.failures.append(message)
        print(f"  ! {message}", flush=True)


class Verbosity(Protocol):
    verbose: bool


def log(settings: Verbosity, text: str) -> None:
    if settings.verbose:
        print(f"  {text}", flush=True)


def bench_large(
    url: str, work: Path, settings: Settings, res: Results, mounts: list[Mount]
) -> None:
    """Cold and warm sequential reads of the large object, the daemon's RSS, the client's get."""
    size = settings.size
    limit = 60.0 + size / (5 * MiB)
    data = work / "big.bin"
    write_data(data, size)
    put = worker(
        {"op": "put", "url": url, "bucket": "big", "name": "big.bin", "path": str(data)}, limit
    )
    data.unlink()
    if not put.get("ok"):
        res.fail("putting the large object", put.get("error"))
        return
    mount = Mount(
        url,
        "big",
        work / "mnt-big",
        settings.cache_size,
        work / "mount-big.log",
        cpus=settings.daemon_cpus,
    )
    mounts.append(mount)
    gets: list[float] = []
    colds: list[float] = []
    warms: list[float] = []
    hwms: list[int] = []
    # Turn -1 is a warm-up of both peers, not recorded: a server that has just started and
    # taken the object in reads its first gigabyte slower (seen: 133 MB/s and 4.7 s of server
    # CPU for a first mount read, 270-300 MB/s and 2.2-2.4 s after), and a user's server has
    # been up for a while.
    for turn in range(-1, settings.repeat):
        timed = turn >= 0
        what = f"repeat {turn + 1}/{settings.repeat}" if timed else "warm-up (not recorded)"
        print(f"{size_label(size)} sequential: {what}", flush=True)
        os.sync()
        warm_stream(work, "big")
        get = worker({"op": "get", "url": url, "bucket": "big", "name": "big.bin"}, limit)
        if not (get.get("ok") and get["bytes"] == size):
            res.fail("client get", get.get("error", f"{get.get('bytes')} bytes"))
        elif timed:
            gets.append(size / MiB / get["elapsed"])
            log(settings, f"client get {gets[-1]:.0f} MiB/s")
        try:
            with mounted(mount, "big.bin"):
                path = mount.mountpoint / "big.bin"
                warm_stream(work, "big")
                cold, error = dd(path, limit)
                if error:
                    res.fail("cold dd", error)
                    continue
                warm, error = dd(path, limit)
                if error:
                    res.fail("warm dd", error)
                    continue
                if not timed:
                    continue
                colds.append(size / MiB / cold)
                warms.append(size / 1e6 / warm)
                hwms.append(vm_kib(mount.pid, "VmHWM"))
                log(
                    settings,
                    f"cold {colds[-1]:.0f} MiB/s, warm {warms[-1]:.0f} MB/s, "
                    f"VmHWM {hwms[-1] / 1024:.0f} MiB",
                )
        except RuntimeError as exc:
            res.fail("mount", exc)
    res.figures["large"] = {
        "size": size,
        "client_get_mib_s": gets,
        "cold_dd_mib_s": colds,
        "warm_dd_mb_s": warms,
        "daemon_vmhwm_kib": hwms,
    }


def bench_random(
    url: str, work: Path, settings: Settings, res: Results, mounts: list[Mount]
) -> None:
    """Random 4 KiB preads in a fresh mount against single-chunk Direct Gets; then changes."""
    size = settings.random_size
    limit = 60.0 + size / (5 * MiB)
    data = work / "rand.bin"
    write_data(data, size)
    put = worker(
        {"op": "put", "url": url, "bucket": "rnd", "name": "rand.bin", "path": str(data)}, limit
    )
    data.unlink()
    if not put.get("ok"):
        res.fail("putting the random-read object", put.get("error"))
        return
    chunks = size // (128 * KiB)
    reads = min(settings.reads, chunks)
    print(f"random 4 KiB reads: {reads} over {size_label(size)}", flush=True)
    warm_stream(work, "rnd")
    direct = worker(
        {
            "op": "chunks",
            "url": url,
            "bucket": "rnd",
            "name": "rand.bin",
            "count": reads,
            "seed": 7,
        },
        120.0,
    )
    if not direct.get("ok"):
        res.fail("client Direct Gets", direct.get("error"))
    mount = Mount(
        url,
        "rnd",
        work / "mnt-rnd",
        settings.cache_size,
        work / "mount-rnd.log",
        cpus=settings.daemon_cpus,
    )
    mounts.append(mount)
    preads: list[float] = []
    changes: Json = {}
    try:
        with mounted(mount, "rand.bin"):
            warm_stream(work, "rnd")
            picks = random.Random(11).sample(range(chunks), reads)
            fd = os.open(mount.mountpoint / "rand.bin", os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                rng = random.Random(13)
                for chunk in picks:
                    offset = chunk * 128 * KiB + rng.randrange(32) * 4 * KiB
                    start = time.perf_counter()
                    got = os.pread(fd, 4 * KiB, offset)
                    preads.append(time.perf_counter() - start)
                    if len(got) != 4 * KiB:
                        raise RuntimeError(f"short read at {offset}: {len(got)} bytes")
            finally:
                os.close(fd)
            print(f"remote changes: {settings.changes} puts", flush=True)
            changes = worker(
                {
                    "op": "changes",
                    "url": url,
                    "bucket": "rnd",
                    "mountpoint": str(mount.mountpoint),
                    "count": settings.changes,
                    "gap": 0.02,
                    "limit": 10.0,
                },
                60.0 + settings.changes * 11.0,
            )
            if not changes.get("ok"):
                res.fail("remote changes", changes.get("error"))
    except (RuntimeError, OSError) as exc:
        res.fail("random reads", exc)
    res.figures["random"] = {
        "size": size,
        "reads": reads,
        "pread_s": preads,
        "direct_get_s": direct.get("latencies", []),
    }
    res.figures["changes"] = {
        "count": settings.changes,
        "latency_s": changes.get("latencies", []),
        "missed": changes.get("missed", 0),
    }


def bench_many(url: str, work: Path, settings: Settings, res: Results) -> None:
    """A bucket of many tiny objects: creation, client walk, mount ready time, ``ls -lR``."""
    count = settings.objects
    print(f"many objects: creating {count}", flush=True)
    made = worker(
        {"op": "populate", "url": url, "bucket": "many", "count": count, "dirs": 100}, 300.0
    )
    figures: Json = {"objects": count}
    res.figures["many"] = figures
    if not made.get("ok"):
        res.fail("creating the objects", made.get("error"))
        return
    figures["create_s"] = made["elapsed"]
    log(settings, f"created in {made['elapsed']:.1f}s")
    os.sync()
    walks: list[float] = []
    walk_process: list[float] = []
    lists: list[float] = []
    readies: list[float] = []
    ls_times: list[float] = []
    mountpoint = work / "mnt-many"
    mountpoint.mkdir()
    for turn in range(settings.repeat):
        print(f"many objects: repeat {turn + 1}/{settings.repeat}", flush=True)
        walk = worker({"op": "walk", "url": url, "bucket": "many"}, 300.0)
        if walk.get("ok") and walk["ops"] == count:
            walks.append(walk["elapsed"])
            walk_process.append(walk["walk_process_s"])
            lists.append(walk["list_s"])
            log(settings, f"walk {walk['elapsed']:.2f}s, list {walk['list_s']:.2f}s")
        else:
            res.fail("client walk", walk.get("error", f"{walk.get('ops')} objects"))
        ready, code, err = timed_run(
            [
                *pinned(settings.daemon_cpus),
                str(OSFS),
                "--server",
                url,
                "mount",
                "many",
                str(mountpoint),
                "--cache-size",
                settings.cache_size,
                "--log-file",
                str(work / "mount-many.log"),
            ],
            300.0,
        )
        if code != 0:
            res.fail("background mount", f"exit {code}: {err}")
            unmount(mountpoint)
            continue
        readies.append(ready)
        try:
            elapsed, code, err = timed_run(
                ["ls", "-lR", str(mountpoint)], 600.0, env={**os.environ, "LC_ALL": "C"}
            )
            if code == 0:
                ls_times.append(elapsed)
                log(settings, f"ready {ready:.2f}s, ls -lR {elapsed:.1f}s")
            else:
                res.fail("ls -lR", f"exit {code}: {err}")
        finally:
            unmount(mountpoint)
    figures.update(
        walk_s=walks, walk_process_s=walk_process, list_s=lists, ready_s=readies, ls_lr_s=ls_times
    )


# Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    name: str
    value: float | None
    target: float
    higher_is_better: bool
    unit: str = ""
    note: str = ""

    @property
    def status(self) -> str:
        if self.value is None:
            return "N/A"
        ok = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "PASS" if ok else "FAIL"

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.2f}"
        sign = "≥" if self.higher_is_better else "≤"
        note = f"  [{self.note}]" if self.note else ""
        return (
            f"{self.name:<46} = {value}{self.unit} (target {sign} {self.target:.2f}{self.unit}) "
            f"{self.status}{note}"
        )

    def as_json(self) -> Json:
        return {
            "name": self.name,
            "value": self.value,
            "target": self.target,
            "comparison": ">=" if self.higher_is_better else "<=",
            "unit": self.unit.strip(),
            "status": self.status,
            "note": self.note,
        }


def med(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def div(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def fmt(value: float | None, spec: str = ".0f", scale: float = 1.0) -> str:
    return "—" if value is None else format(value * scale, spec)


def p99_ms(values: Sequence[float]) -> str:
    return fmt(percentile(values, 0.99) if values else None, ".2f", 1e3)


def report(res: Results, settings: Settings) -> list[Verdict]:
    """Print the table and the verdicts; return the verdicts."""
    fig = res.figures
    large = fig.get("large", {})
    rnd = fig.get("random", {})
    chg = fig.get("changes", {})
    many = fig.get("many", {})
    get = med(large.get("client_get_mib_s", []))
    cold = med(large.get("cold_dd_mib_s", []))
    warm = med(large.get("warm_dd_mb_s", []))
    hwm_kib = max(large.get("daemon_vmhwm_kib", []), default=None)
    hwm = None if hwm_kib is None else hwm_kib / 1024
    pread = med(rnd.get("pread_s", []))
    direct = med(rnd.get("direct_get_s", []))
    lat = chg.get("latency_s", [])
    lat_med = med(lat)
    lat_p99 = percentile(lat, 0.99) if lat else None
    walk = med(many.get("walk_s", []))
    ready = med(many.get("ready_s", []))
    ls_lr = med(many.get("ls_lr_s", []))
    budget = parse_size(settings.cache_size) / MiB
    runs = len(large.get("cold_dd_mib_s", []))
    big = size_label(settings.size)
    small = size_label(settings.random_size)
    count = many.get("objects", settings.objects)

    print(f"\nmount vs client (medians of {runs} where repeated; MiB = 2^20 bytes, MB = 10^6)")
    rows = [
        (f"client streaming get, {big}", f"{fmt(get)} MiB/s"),
        (f"mount cold dd bs=1M, {big} (fresh mount)", f"{fmt(cold)} MiB/s"),
        (f"mount warm dd bs=1M, {big} (page cache)", f"{fmt(warm)} MB/s"),
        ("mount daemon VmHWM after both reads", f"{fmt(hwm)} MiB (cache {budget:.0f} MiB)"),
        (
            f"client Direct Get of one chunk ({rnd.get('reads', 0)} random)",
            f"median {fmt(direct, '.2f', 1e3)} ms, p99 {p99_ms(rnd.get('direct_get_s', []))} ms",
        ),
        (
            f"mount pread 4 KiB, random, {small} (fresh mount)",
            f"median {fmt(pread, '.2f', 1e3)} ms, p99 {p99_ms(rnd.get('pread_s', []))} ms",
        ),
        (
            f"remote put -> lstat in mount ({len(lat)} of {chg.get('count', 0)})",
            f"median {fmt(lat_med, '.1f', 1e3)} ms, p99 {fmt(lat_p99, '.1f', 1e3)} ms, "
            f"max {fmt(max(lat) if lat else None, '.1f', 1e3)} ms",
        ),
        (f"create {count} objects (raw publishes)", f"{fmt(many.get('create_s'), '.1f')} s"),
        (f"client walk (watch to None), {count}", f"{fmt(walk, '.2f')} s"),
        (
            "client process: imports, connect, walk",
            f"{fmt(med(many.get('walk_process_s', [])), '.2f')} s",
        ),
        (f"client store.list(), {count}", f"{fmt(med(many.get('list_s', [])), '.2f')} s"),
        ("osfs mount (background) start to return", f"{fmt(ready, '.2f')} s"),
        (f"ls -lR of the mount, {count} files", f"{fmt(ls_lr, '.1f')} s"),
    ]
    for label, value in rows:
        print(f"  {label:<52} {value}")

    verdicts = [
        Verdict(f"cold read / client get [{big}]", div(cold, get), COLD_RATIO, True),
        Verdict(f"warm re-read [{big}]", warm, WARM_MB_S, True, " MB/s"),
        Verdict(
            "random 4 KiB pread / Direct Get (medians)", div(pread, direct), RANDOM_RATIO, False
        ),
        Verdict(f"mount ready / client walk [{count}]", div(ready, walk), READY_RATIO, False),
        Verdict(
            "remote change visible, p99",
            None if lat_p99 is None else lat_p99 * 1e3,
            CHANGE_P99_MS,
            False,
            " ms",
        ),
        rss_verdict(f"daemon VmHWM reading {big}", hwm, budget),
    ]
    return print_verdicts(verdicts)


def rss_verdict(label: str, hwm: float | None, budget: float) -> Verdict:
    """The daemon's peak memory against its chunk-cache budget plus the margin."""
    return Verdict(
        label,
        hwm,
        budget + RSS_MARGIN_MIB,
        False,
        " MiB",
        note=f"cache {budget:.0f} MiB + {RSS_MARGIN_MIB:.0f}",
    )


def print_verdicts(verdicts: list[Verdict]) -> list[Verdict]:
    """Print the ratios with their targets; return them."""
    print("\nratios (medians) and targets:")
    for verdict in verdicts:
        print(f"  {verdict.line()}")
    return verdicts


# Main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="64 MiB files, 10,000 objects, 50 changes, 1 repeat"
    )
    parser.add_argument("--size", type=parse_size, help="sequential-read object (default 1G)")
    parser.add_argument("--random-size", type=parse_size, help="random-read object (default 256M)")
    parser.add_argument("--objects", type=int, help="objects in the big bucket (default 100000)")
    parser.add_argument("--changes", type=int, help="remote puts to time (default 100)")
    parser.add_argument("--reads", type=int, default=500, help="random preads (default 500)")
    parser.add_argument("--repeat", type=int, help="repeats of the reads and walks (default 2)")
    parser.add_argument("--cache-size", default="256MiB", help="the mount's --cache-size")
    parser.add_argument(
        "--daemon-cpus", default="", help="run the mount daemons under taskset -c LIST (e.g. 1)"
    )
    parser.add_argument("--json", type=Path, help="write every figure and verdict here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    return parser.parse_args(argv)


def settings_of(args: argparse.Namespace) -> Settings:
    quick = args.quick
    return Settings(
        size=args.size or (64 * MiB if quick else GiB),
        random_size=args.random_size or (64 * MiB if quick else 256 * MiB),
        objects=args.objects or (10_000 if quick else 100_000),
        changes=args.changes or (50 if quick else 100),
        reads=args.reads,
        repeat=args.repeat or (1 if quick else 2),
        cache_size=args.cache_size,
        verbose=args.verbose,
        daemon_cpus=args.daemon_cpus,
    )


#: The steps of a benchmark: ``(server url, work dir, results, mounts to stop at the end)``.
Steps = Callable[[str, Path, Results, list[Mount]], None]


def run_benchmark(
    prefix: str,
    settings: object,
    steps: Steps,
    report: Callable[[Results], list[Verdict]],
    json_path: Path | None,
) -> int:
    """One benchmark run: a temp work dir named ``prefix...`` with its own nats-server, the
    ``steps``, then the cleanup (the mounts, every ``mnt-*`` mountpoint in the work dir, the
    server, the dir), the ``report`` and the footer; the JSON document if asked. The exit
    status: 1 when a step failed (not when a target is missed).
    """
    if not OSFS.exists():
        sys.exit(f"no osfs entry point at {OSFS}")
    started = time.time()
    load_before = os.getloadavg()
    res = Results()
    mounts: list[Mount] = []
    work = Path(tempfile.mkdtemp(prefix=prefix))
    server = Server(work)
    try:
        server.start()
        print(f"nats-server {server.version} at {server.url}; work dir {work}", flush=True)
        steps(server.url, work, res, mounts)
    except KeyboardInterrupt:
        res.fail("run", "interrupted")
    finally:
        for mount in mounts:
            mount.stop()
        for mountpoint in work.glob("mnt-*"):
            unmount(mountpoint)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    verdicts = report(res)
    wall = time.time() - started
    print(
        f"\n{wall:.0f} s; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{len(res.failures)} failure(s)"
    )
    if json_path is not None:
        doc = {
            "date": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
            "seconds": wall,
            "machine": machine(),
            "server": server.version,
            "load_before": load_before,
            "load_after": load_after,
            "settings": vars(settings),
            "figures": res.figures,
            "verdicts": [v.as_json() for v in verdicts],
            "failures": res.failures,
        }
        json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 1 if res.failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_of(args)

    def steps(url: str, work: Path, res: Results, mounts: list[Mount]) -> None:
        bench_large(url, work, settings, res, mounts)
        bench_random(url, work, settings, res, mounts)
        bench_many(url, work, settings, res)

    return run_benchmark(
        "osfs-bench-mount-", settings, steps, lambda res: report(res, settings), args.json
    )


if __name__ == "__main__":
    sys.exit(main())
