"""Benchmark writing through the osfs mount (FUSE) against the osfs client's put, in one run.

Usage::

    python scripts/bench_write.py [--quick] [--size 1G] [--small 1000] [--tree 5000] [--dirs 5]
                                  [--repeat 3] [--cache-size 256MiB] [--daemon-cpus LIST]
                                  [--json out.json] [-v]

The write side's counterpart of ``scripts/bench_mount.py``, on its helpers: its own nats-server
(``scripts/bench_store.py``'s), foreground mounts (``osfs mount -f``, children of this script,
so that their PIDs are known) on mountpoints in a temporary directory, with ``--cache-dir`` in
that directory too (the only mounts it unmounts and the only spool it uses). The client side of
every comparison runs in a child process (``scripts/bench/mount_worker.py``) that times only the
operation. Every measurement writes into a bucket of its own, made just before it (nothing is a
no-op by accident), and the two sides of a comparison take turns leading, repeat by repeat.
Measured, in this order:

* **large file**: ``cp FILE MOUNT/big.bin`` of a ``--size`` local file (random bytes, read once
  before so that it is in the page cache), timed from the start of ``cp`` to its exit (``close``
  returns once the file is stored); against the client's ``store.put`` of the same file
  (``put_file``: a put of the open file, timed alone). The first copy is verified through the
  client while still mounted: the stored size and digest, and the SHA-256 of a streaming get,
  against the local file's;
* **daemon RSS**: ``VmHWM`` of the mount process after that ``cp`` (and just after mounting, for
  comparison), against ``--cache-size`` + 100 MiB;
* **small files**: ``cp -r`` of a local directory of ``--small`` files of 4 KiB into the mount
  (files per second; every file is counted as stored, with its bytes, right after ``cp``
  exits); against as many sequential ``store.put``s of 4 KiB objects by the client;
* **rsync**: ``rsync -a`` of a tree of ``--tree`` small files (512 B to 8 KiB) in ``--dirs``
  directories with a subdirectory each, into the mount, then the same ``rsync -a`` again (a
  no-op: nothing to transfer), both timed; next to ``rsync -a`` of the tree to a new local
  directory (and its no-op second run). No target: the local copy is the yardstick.

The ratios with targets are printed with PASS/FAIL. See docs/benchmarks.md ("Writing through the
mount"). Needs root or FUSE access (``/dev/fuse``, ``fusermount3``), ``cp`` and ``rsync``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# Run as a script from anywhere: make the project (and scripts/bench_*.py) importable.
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from scripts.bench_mount import (  # noqa: E402
    Json,
    Mount,
    Results,
    Verdict,
    dd,
    div,
    fmt,
    log,
    med,
    mounted,
    print_verdicts,
    rss_verdict,
    run_benchmark,
    timed_output,
    timed_run,
    vm_kib,
    worker,
)
from scripts.bench_store import (  # noqa: E402
    GiB,
    KiB,
    MiB,
    parse_size,
    rotated,
    size_label,
    write_data,
)

#: The issue's targets.
CP_RATIO = 0.70
SMALL_RATIO = 0.50
#: Bytes of each file of the small-files step.
SMALL_SIZE = 4 * KiB
#: The smallest and largest file of the rsync tree.
TREE_MIN, TREE_MAX = 512, 8 * KiB
#: The environment of the commands timed (C locale: rsync's --stats as parsed below).
C_ENV = {**os.environ, "LC_ALL": "C"}


@dataclass
class Settings:
    size: int
    small: int
    tree: int
    dirs: int
    repeat: int
    cache_size: str
    verbose: bool
    daemon_cpus: str = ""


# Helpers ------------------------------------------------------------------------------------


def write_small(root: Path, count: int) -> None:
    """``count`` files ``f00000``... of 4 KiB of random bytes in ``root`` (a new directory)."""
    root.mkdir()
    blob = os.urandom(count * SMALL_SIZE)
    for i in range(count):
        (root / f"f{i:05d}").write_bytes(blob[i * SMALL_SIZE : (i + 1) * SMALL_SIZE])


def write_tree(root: Path, count: int, dirs: int) -> tuple[int, int]:
    """``count`` small files in ``dirs`` directories ``dNN``, every other file of each in its
    subdirectory ``dNN/sub``: (total bytes, directories)."""
    rng = random.Random(5)
    total = 0
    for d in range(dirs):
        (root / f"d{d:02d}" / "sub").mkdir(parents=True)
    for i in range(count):
        folder = root / f"d{i % dirs:02d}"
        if (i // dirs) % 2:
            folder = folder / "sub"
        size = rng.randrange(TREE_MIN, TREE_MAX + 1)
        (folder / f"f{i:05d}.dat").write_bytes(rng.randbytes(size))
        total += size
    return total, 2 * dirs


def warm(root: Path) -> None:
    """Read every file under ``root`` once (untimed), so that the copies read the page cache."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            path.read_bytes()


def transferred(stats: str) -> int | None:
    """The "Number of regular files transferred" of rsync's ``--stats`` (None if absent)."""
    match = re.search(r"Number of regular files transferred: ([\d,]+)", stats)
    return None if match is None else int(match.group(1).replace(",", ""))


def fresh_mount(
    url: str, work: Path, bucket: str, settings: Settings, mounts: list[Mount]
) -> Mount:
    """A new bucket, and a mount of it to start (``mounted``); it spools in the work dir."""
    made = worker({"op": "create", "url": url, "bucket": bucket}, 60.0)
    if not made.get("ok"):
        raise RuntimeError(f"creating bucket {bucket}: {made.get('error')}")
    mount = Mount(
        url,
        bucket,
        work / f"mnt-{bucket}",
        settings.cache_size,
        work / f"mount-{bucket}.log",
        cache_dir=work / "spool",
        cpus=settings.daemon_cpus,
    )
    mounts.append(mount)
    return mount


def in_fresh_mount(
    url: str,
    work: Path,
    bucket: str,
    settings: Settings,
    mounts: list[Mount],
    res: Results,
    body: Callable[[Mount], None],
) -> None:
    """Run ``body`` on a :func:`fresh_mount` of a new ``bucket``; stop it and drop the bucket."""
    mount = fresh_mount(url, work, bucket, settings, mounts)
    try:
        body(mount)
    finally:
        mount.stop()
        drop_bucket(url, bucket, res)


def log_tail(mount: Mount) -> str:
    """The last lines of a mount's log (the work dir and the log go at the end of the run)."""
    try:
        lines = mount.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(lines[-3:])


def drop_bucket(url: str, bucket: str, res: Results) -> None:
    """Delete a bucket that was measured (its bytes would only fill the disk)."""
    gone = worker({"op": "delete", "url": url, "bucket": bucket}, 120.0)
    if not gone.get("ok"):
        res.fail(f"deleting bucket {bucket}", gone.get("error"))


# The benchmark ------------------------------------------------------------------------------


def bench_large(
    url: str, work: Path, settings: Settings, res: Results, mounts: list[Mount]
) -> None:
    """``cp`` of the large file into a fresh mount against the client's put; the daemon's RSS."""
    size = settings.size
    limit = 60.0 + size / (5 * MiB)
    data = work / "big.bin"
    write_data(data, size)
    figures: Json = {
        "size": size,
        "client_put_mib_s": [],
        "cp_mib_s": [],
        "cp_s": [],
        "mounted_vmhwm_kib": [],
        "daemon_vmhwm_kib": [],
        "verified": None,
    }
    res.figures["large"] = figures

    def client(turn: int) -> None:
        bucket = f"put{turn}"
        os.sync()
        dd(data, limit)  # page-cached, as for the cp
        put = worker(
            {"op": "put", "url": url, "bucket": bucket, "name": "big.bin", "path": str(data)},
            limit,
        )
        if put.get("ok") and put["bytes"] == size:
            figures["client_put_mib_s"].append(size / MiB / put["elapsed"])
            log(settings, f"client put {figures['client_put_mib_s'][-1]:.0f} MiB/s")
        else:
            res.fail("client put", put.get("error", f"{put.get('bytes')} bytes"))
        drop_bucket(url, bucket, res)

    def mount_side(turn: int) -> None:
        in_fresh_mount(url, work, f"cp{turn}", settings, mounts, res, copy)

    def copy(mount: Mount) -> None:
        bucket = mount.bucket
        with mounted(mount, ""):
            target = mount.mountpoint / "big.bin"
            os.sync()
            dd(data, limit)
            figures["mounted_vmhwm_kib"].append(vm_kib(mount.pid, "VmHWM"))
            elapsed, code, err = timed_run(["cp", str(data), str(target)], limit)
            if code != 0:
                res.fail("cp into the mount", f"exit {code}: {err} [{log_tail(mount)}]")
                return
            hwm = vm_kib(mount.pid, "VmHWM")
            figures["cp_s"].append(elapsed)
            figures["cp_mib_s"].append(size / MiB / elapsed)
            figures["daemon_vmhwm_kib"].append(hwm)
            log(settings, f"mount cp {size / MiB / elapsed:.0f} MiB/s, VmHWM {hwm / 1024:.0f} MiB")
            if figures["verified"] is None:
                # While still mounted: the bytes were stored by the time cp exited.
                check = worker(
                    {
                        "op": "verify",
                        "url": url,
                        "bucket": bucket,
                        "name": "big.bin",
                        "path": str(data),
                    },
                    2 * limit,
                )
                figures["verified"] = bool(check.get("ok"))
                figures["verify"] = check
                if check.get("ok"):
                    log(settings, f"verified: {check['size']} bytes, {check['stored_digest']}")
                else:
                    res.fail("verifying the copy", check.get("error"))

    sides = {"client": client, "mount": mount_side}
    for turn in range(settings.repeat):
        print(f"{size_label(size)} file: repeat {turn + 1}/{settings.repeat}", flush=True)
        for side in rotated(tuple(sides), turn):
            try:
                sides[side](turn)
            except (RuntimeError, OSError) as exc:
                res.fail(f"large file, {side}", exc)
    data.unlink()


def bench_small(
    url: str, work: Path, settings: Settings, res: Results, mounts: list[Mount]
) -> None:
    """``cp -r`` of a directory of small files into a fresh mount against sequential puts."""
    count = settings.small
    limit = 60.0 + count * 0.2
    source = work / "small"
    write_small(source, count)
    figures: Json = {
        "count": count,
        "size": SMALL_SIZE,
        "client_puts_s": [],
        "cp_r_files_s": [],
        "cp_r_s": [],
    }
    res.figures["small"] = figures

    def client(turn: int) -> None:
        bucket = f"puts{turn}"
        os.sync()
        puts = worker(
            {
                "op": "puts",
                "url": url,
                "bucket": bucket,
                "count": count,
                "size": SMALL_SIZE,
                "prefix": "small",
            },
            limit,
        )
        if puts.get("ok"):
            figures["client_puts_s"].append(puts["ops"] / puts["elapsed"])
            log(settings, f"client puts {figures['client_puts_s'][-1]:.0f}/s")
        else:
            res.fail("client puts", puts.get("error"))
        drop_bucket(url, bucket, res)

    def mount_side(turn: int) -> None:
        in_fresh_mount(url, work, f"small{turn}", settings, mounts, res, copy)

    def copy(mount: Mount) -> None:
        bucket = mount.bucket
        with mounted(mount, ""):
            warm(source)
            os.sync()
            elapsed, code, err = timed_run(["cp", "-r", str(source), str(mount.mountpoint)], limit)
            if code != 0:
                res.fail("cp -r into the mount", f"exit {code}: {err} [{log_tail(mount)}]")
                return
            stored = worker({"op": "count", "url": url, "bucket": bucket, "prefix": "small/"}, 60.0)
        if stored.get("files") != count or stored.get("bytes") != count * SMALL_SIZE:
            res.fail("cp -r: stored when cp exited", stored.get("error", stored))
        else:
            figures["cp_r_s"].append(elapsed)
            figures["cp_r_files_s"].append(count / elapsed)
            log(settings, f"mount cp -r {count / elapsed:.0f} files/s ({elapsed:.2f} s)")

    sides = {"client": client, "mount": mount_side}
    for turn in range(settings.repeat):
        print(f"{count} x 4 KiB: repeat {turn + 1}/{settings.repeat}", flush=True)
        for side in rotated(tuple(sides), turn):
            try:
                sides[side](turn)
            except (RuntimeError, OSError) as exc:
                res.fail(f"small files, {side}", exc)


def bench_rsync(
    url: str, work: Path, settings: Settings, res: Results, mounts: list[Mount]
) -> None:
    """``rsync -a`` of a tree into a fresh mount and again (no-op), next to a local copy."""
    count = settings.tree
    limit = 60.0 + count * 0.2
    tree = work / "tree"
    total, dirs = write_tree(tree, count, settings.dirs)
    figures: Json = {
        "files": count,
        "bytes": total,
        "dirs": dirs,
        "local_s": [],
        "local_noop_s": [],
        "mount_s": [],
        "mount_noop_s": [],
        "mount_noop_transferred": [],
        "daemon_vmhwm_kib": [],
    }
    res.figures["rsync"] = figures

    def rsync(destination: Path, what: str) -> tuple[float, int | None] | None:
        """``rsync -a --stats tree/ destination/``: (seconds, files transferred), or None
        when it failed."""
        command = ["rsync", "-a", "--stats", f"{tree}/", f"{destination}/"]
        elapsed, code, out, err = timed_output(command, limit, env=C_ENV)
        if code != 0:
            res.fail(what, f"exit {code}: {err}")
            return None
        return elapsed, transferred(out)

    def local(turn: int) -> None:
        destination = work / f"local{turn}"
        warm(tree)
        os.sync()
        first = rsync(destination, "rsync to a local dir")
        second = rsync(destination, "rsync to a local dir, again") if first else None
        if first and second:
            figures["local_s"].append(first[0])
            figures["local_noop_s"].append(second[0])
            log(settings, f"local rsync {first[0]:.2f} s, again {second[0]:.2f} s")
        shutil.rmtree(destination, ignore_errors=True)

    def mount_side(turn: int) -> None:
        in_fresh_mount(url, work, f"rsync{turn}", settings, mounts, res, copy)

    def copy(mount: Mount) -> None:
        bucket = mount.bucket
        with mounted(mount, ""):
            destination = mount.mountpoint / "tree"
            warm(tree)
            os.sync()
            first = rsync(destination, "rsync into the mount")
            if first is None:
                return
            stored = worker({"op": "count", "url": url, "bucket": bucket, "prefix": "tree/"}, 60.0)
            if stored.get("files") != count or stored.get("bytes") != total:
                res.fail("rsync: stored when rsync exited", stored.get("error", stored))
                return
            second = rsync(destination, "rsync into the mount, again")
            if second is None:
                return
            hwm = vm_kib(mount.pid, "VmHWM")
        figures["mount_s"].append(first[0])
        figures["mount_noop_s"].append(second[0])
        figures["mount_noop_transferred"].append(second[1])
        figures["daemon_vmhwm_kib"].append(hwm)
        log(
            settings,
            f"mount rsync {first[0]:.2f} s, again {second[0]:.2f} s "
            f"({second[1]} transferred), VmHWM {hwm / 1024:.0f} MiB",
        )

    sides = {"local": local, "mount": mount_side}
    for turn in range(settings.repeat):
        print(f"rsync of {count} files: repeat {turn + 1}/{settings.repeat}", flush=True)
        for side in rotated(tuple(sides), turn):
            try:
                sides[side](turn)
            except (RuntimeError, OSError) as exc:
                res.fail(f"rsync, {side}", exc)


# Results ------------------------------------------------------------------------------------


def mib(kib: Sequence[int]) -> float | None:
    """The highest of some ``kB`` figures, in MiB."""
    return max(kib) / 1024 if kib else None


def report(res: Results, settings: Settings) -> list[Verdict]:
    """Print the table and the verdicts; return the verdicts."""
    fig = res.figures
    large: dict[str, Any] = fig.get("large", {})
    small: dict[str, Any] = fig.get("small", {})
    rs: dict[str, Any] = fig.get("rsync", {})
    put = med(large.get("client_put_mib_s", []))
    cp = med(large.get("cp_mib_s", []))
    hwm = mib(large.get("daemon_vmhwm_kib", []))
    puts = med(small.get("client_puts_s", []))
    cp_r = med(small.get("cp_r_files_s", []))
    budget = parse_size(settings.cache_size) / MiB
    big = size_label(settings.size)
    count = small.get("count", settings.small)
    files = rs.get("files", settings.tree)
    verified = large.get("verified")
    noop = rs.get("mount_noop_transferred", [])
    tree = f"{files} files, {rs.get('bytes', 0) / MiB:.1f} MiB in {rs.get('dirs', 0)} dirs"

    print(f"\nwrites: mount vs client (medians of {settings.repeat}; MiB = 2^20 bytes)")
    rows = [
        (f"client store.put of a local file, {big}", f"{fmt(put)} MiB/s"),
        (
            f"mount: cp of a local file, {big} (to exit)",
            f"{fmt(cp)} MiB/s ({fmt(med(large.get('cp_s', [])), '.2f')} s)",
        ),
        (
            "the first copy as stored (size, digest, read back)",
            "—" if verified is None else "verified" if verified else "NOT VERIFIED",
        ),
        (
            "mount daemon VmHWM: mounted / after the cp",
            f"{fmt(mib(large.get('mounted_vmhwm_kib', [])))} / {fmt(hwm)} MiB "
            f"(cache {budget:.0f} MiB)",
        ),
        (f"client: {count} sequential puts of 4 KiB", f"{fmt(puts)} puts/s"),
        (
            f"mount: cp -r of {count} files of 4 KiB",
            f"{fmt(cp_r)} files/s ({fmt(med(small.get('cp_r_s', [])), '.2f')} s)",
        ),
        ("the rsync tree", tree),
        ("rsync -a to a local dir (new dir)", f"{fmt(med(rs.get('local_s', [])), '.2f')} s"),
        ("rsync -a into the mount (new bucket)", f"{fmt(med(rs.get('mount_s', [])), '.2f')} s"),
        (
            "rsync -a into the mount again (no-op)",
            f"{fmt(med(rs.get('mount_noop_s', [])), '.2f')} s "
            f"({'/'.join('?' if n is None else str(n) for n in noop) or '—'} files transferred)",
        ),
        (
            "rsync -a to the local dir again (no-op)",
            f"{fmt(med(rs.get('local_noop_s', [])), '.2f')} s",
        ),
        (
            "mount daemon VmHWM after the rsyncs",
            f"{fmt(mib(rs.get('daemon_vmhwm_kib', [])))} MiB",
        ),
    ]
    for label, value in rows:
        print(f"  {label:<52} {value}")

    verdicts = [
        Verdict(f"cp into the mount / client put [{big}]", div(cp, put), CP_RATIO, True),
        Verdict(
            f"cp -r files/s / client puts/s [{count} x 4 KiB]", div(cp_r, puts), SMALL_RATIO, True
        ),
        rss_verdict(f"daemon VmHWM writing {big}", hwm, budget),
    ]
    return print_verdicts(verdicts)


# Main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a 32 MiB file, 100 small files, a tree of 500, 1 repeat",
    )
    parser.add_argument("--size", type=parse_size, help="the large file (default 1G)")
    parser.add_argument("--small", type=int, help="files of 4 KiB for cp -r (default 1000)")
    parser.add_argument("--tree", type=int, help="files in the rsync tree (default 5000)")
    parser.add_argument(
        "--dirs", type=int, default=5, help="directories of the tree, each with a subdirectory"
    )
    parser.add_argument("--repeat", type=int, help="repeats of every step (default 3)")
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
        size=args.size or (32 * MiB if quick else GiB),
        small=args.small or (100 if quick else 1000),
        tree=args.tree or (500 if quick else 5000),
        dirs=max(1, args.dirs),
        repeat=args.repeat or (1 if quick else 3),
        cache_size=args.cache_size,
        verbose=args.verbose,
        daemon_cpus=args.daemon_cpus,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = settings_of(args)
    for tool in ("cp", "rsync"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH")

    def steps(url: str, work: Path, res: Results, mounts: list[Mount]) -> None:
        bench_large(url, work, settings, res, mounts)
        bench_small(url, work, settings, res, mounts)
        bench_rsync(url, work, settings, res, mounts)

    return run_benchmark(
        "osfs-bench-write-", settings, steps, lambda res: report(res, settings), args.json
    )


if __name__ == "__main__":
    sys.exit(main())
