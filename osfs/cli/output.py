"""How the ``osfs`` command shows things: tables and sizes for people, JSON for programs.

Rules:
1. Every result has a JSON form (``--json``): plain dicts with stable keys, times as RFC 3339 UTC,
   sizes in bytes. Human forms use binary units (``1.2 MiB``) and local ISO times.
2. Results go to stdout; notes, prompts and the progress bar go to stderr, so pipes get data only.
3. ``--quiet`` silences confirmations and notes, never the data a command was asked for.
No connection and no event loop here: only formatting and writing to the given streams.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from osfs.core.config import ObjectStoreStatus
from osfs.core.digest import parse_digest
from osfs.core.errors import InvalidDigestFormatError
from osfs.core.meta import ObjectInfo
from osfs.core.timefmt import format_rfc3339_ns, ns_to_datetime

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_DURATION_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def format_size(size: int) -> str:
    """``1288490`` -> ``"1.2 MiB"``: one decimal below 10 units, none above, like ``ls -h``."""
    value = float(size)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if abs(value) < 10 else f"{value:.0f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(count: int, noun: str) -> str:
    """``"1 chunk"``, ``"3 chunks"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def format_duration(seconds: float) -> str:
    """``93784`` -> ``"1d2h3m4s"``; 0 (no limit) -> ``"forever"``."""
    if seconds <= 0:
        return "forever"
    whole = int(seconds)
    if whole == 0:
        return f"{seconds * 1000:.0f}ms"
    parts = []
    for unit, length in _DURATION_UNITS:
        count, whole = divmod(whole, length)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def local_time(ns: int) -> str:
    """A server timestamp as local ISO 8601 to the second, ``-`` when unknown."""
    if ns <= 0:
        return "-"
    return ns_to_datetime(ns).astimezone().isoformat(timespec="seconds")


def utc_time(ns: int) -> str | None:
    """A server timestamp as RFC 3339 UTC with nanoseconds, None when unknown."""
    return format_rfc3339_ns(ns) if ns > 0 else None


def digest_hex(digest: str) -> str:
    """The digest as hex (what ``sha256sum`` prints), or the stored text if it cannot be read."""
    if not digest:
        return ""
    try:
        return parse_digest(digest).hex()
    except InvalidDigestFormatError:
        return digest


def link_target(info: ObjectInfo) -> str:
    """``bucket/name`` for an object link, ``bucket/`` for a bucket link, "" otherwise."""
    if info.link is None:
        return ""
    return f"{info.link.bucket}/{info.link.name}"


def object_dict(info: ObjectInfo) -> dict[str, Any]:
    """The ``--json`` form of an object."""
    return {
        "name": info.name,
        "bucket": info.bucket,
        "size": info.size,
        "chunks": info.chunks,
        "digest": info.digest,
        "mtime": utc_time(info.mtime_ns),
        "nuid": info.nuid,
        "revision": info.revision,
        "deleted": info.deleted,
        "description": info.description,
        "headers": {key: list(values) for key, values in info.headers.items()},
        "metadata": dict(info.metadata),
        "link": (
            None
            if info.link is None
            else {"bucket": info.link.bucket, "name": info.link.name or None}
        ),
    }


def status_dict(status: ObjectStoreStatus) -> dict[str, Any]:
    """The ``--json`` form of a bucket's status (without the raw stream info)."""
    return {
        "bucket": status.bucket,
        "description": status.description,
        "ttl": status.ttl,
        "storage": status.storage,
        "replicas": status.replicas,
        "sealed": status.sealed,
        "size": status.size,
        "max_bytes": status.max_bytes,
        "compressed": status.compressed,
        "metadata": dict(status.metadata),
        "messages": status.messages,
        "backing_store": status.backing_store,
    }


def render_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, right: Iterable[int] = ()
) -> str:
    """Columns padded to their widest cell; the ``right`` columns (numbers) right-aligned."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[col]) for row in table) for col in range(len(headers))]
    align_right = set(right)
    lines = []
    for row in table:
        cells = [
            cell.rjust(width) if col in align_right else cell.ljust(width)
            for col, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_fields(title: str, fields: Iterable[tuple[str, str | Sequence[str]]]) -> str:
    """A titled block of ``Label: value`` lines; a list value continues on indented lines."""
    rows = [(label, [value] if isinstance(value, str) else list(value)) for label, value in fields]
    rows = [(label, values) for label, values in rows if values and any(values)]
    width = max((len(label) for label, _ in rows), default=0) + 1
    lines = [title]
    for label, values in rows:
        lines.append(f"  {label + ':':<{width}} {values[0]}")
        lines.extend(f"  {'':<{width}} {value}" for value in values[1:])
    return "\n".join(lines)


class ProgressBar:
    """A one-line transfer bar on a terminal: a long put or get visibly makes progress.

    Called with the bytes done so far (the ``progress`` callback of put and get); redraws at most
    ten times a second so it never slows the transfer down, and stays invisible until
    ``min_bytes`` are done (a small stream of unknown length never flashes a bar).
    """

    def __init__(
        self,
        stream: TextIO,
        label: str,
        total: int | None,
        *,
        min_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._label = label
        self._total = total
        self._min_bytes = min_bytes
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._done = 0

    def __call__(self, done: int) -> None:
        self._done = done
        if done <= self._min_bytes:
            return
        now = self._clock()
        if self._drawn_at is None or now - self._drawn_at >= 0.1:
            self._drawn_at = now
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line, if the bar was ever shown."""
        if self._drawn_at is None:
            return
        self._draw(self._clock())
        self._stream.write("\n")
        self._stream.flush()

    def render(self, now: float, width: int) -> str:
        """The bar's text for a terminal ``width`` columns wide."""
        elapsed = max(now - self._started, 1e-6)
        rate = f"{format_size(int(self._done / elapsed))}/s"
        if not self._total:
            return f"{self._label} {format_size(self._done)} {rate}"[:width]
        fraction = min(self._done / self._total, 1.0)
        sizes = f"{format_size(self._done)} / {format_size(self._total)}"
        tail = f" {fraction:4.0%} {sizes} {rate}"
        room = width - len(self._label) - len(tail) - 3
        if room < 10:
            return f"{self._label}{tail}"[:width]
        filled = int(room * fraction)
        return f"{self._label} [{'#' * filled}{'.' * (room - filled)}]{tail}"

    def _draw(self, now: float) -> None:
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self._stream.write("\r" + self.render(now, width).ljust(width))
        self._stream.flush()


@dataclass(slots=True)
class Output:
    """Where one CLI run writes, and in which form.

    Attributes:
        json: print JSON instead of text.
        quiet: no confirmations, notes or progress.
        stdout, stderr: the streams (text mode).
    """

    json: bool
    quiet: bool
    stdout: TextIO
    stderr: TextIO

    def show(self, value: Any, human: Callable[[], str]) -> None:
        """Print the data a command was asked for (even with ``--quiet``)."""
        if self.json:
            self.json_line(value)
        else:
            text = human()
            if text:
                print(text, file=self.stdout, flush=True)

    def confirm(self, value: Any, human: Callable[[], str]) -> None:
        """Print what a command did; ``--quiet`` silences the human form."""
        if self.json or not self.quiet:
            self.show(value, human)

    def note(self, text: str) -> None:
        """A message for the person at the terminal, on stderr."""
        if not self.quiet:
            print(text, file=self.stderr, flush=True)

    def json_line(self, value: Any) -> None:
        """One JSON document on one line (JSON Lines, so ``watch`` output streams)."""
        print(json.dumps(value, ensure_ascii=False, sort_keys=False), file=self.stdout, flush=True)

    def progress(self, label: str, total: int | None, threshold: int) -> ProgressBar | None:
        """A progress bar when a person watches stderr and the transfer is large enough."""
        if self.quiet or self.json or not self.stderr.isatty():
            return None
        if total is not None and total <= threshold:
            return None
        # A known size over the threshold shows at once; an unknown one once it passes it.
        return ProgressBar(self.stderr, label, total, min_bytes=threshold if total is None else 0)


def headers_lines(headers: Mapping[str, Sequence[str]]) -> list[str]:
    """``Name: value`` for every value of every header."""
    return [f"{key}: {value}" for key, values in headers.items() for value in values]
