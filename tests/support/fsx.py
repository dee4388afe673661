"""An fsx-style random file checker for a mount: worker processes, a shared model, file locks.

``tests/integration/test_mount_concurrency.py`` starts several workers (``python -m
tests.support.fsx CONFIG``), each a process of its own, that do random operations on a fixed
set of names on a mount for a bounded time and check every byte they read against the model.

Rules:
1. The model is the expected content of every name: a file mapped into every process
   (:class:`Model`), one slot per name holding its size (or "no such file"), a generation and
   its bytes. It changes by explicit slicing and zero filling here, never by asking a local
   filesystem what the answer should be.
2. One lock per name, ``flock(2)`` on a file of its own (:class:`Locks`): an operation holds the
   locks of every name it touches, taken in slot order (so two workers never wait on each other
   in a cycle), and applies its change to the mount and to the model before letting go. So every
   state a reader sees is one the model holds, while workers run in parallel on other names and
   descriptors stay open across operations (a file written by one process is read by others
   while the writer still holds it open and dirty). A lock dies with its process.
3. A name's generation changes whenever the name stops naming the file it named (unlink,
   rename from or onto it, a new file made under it). A descriptor is kept with the generation
   it was opened at and used again only while that still holds; a stale one is closed (its
   file may be dirty: the close stores it, which changes no content).
4. Workers are stdlib only (they start in a fraction of a second) and log every operation to
   a journal before doing it, so a worker stuck in a FUSE request shows what it was doing.
   Any surprise (an error, a byte that differs from the model) ends the worker with status 1
   and a traceback on stderr; the end of a run prints, as JSON on stdout, the operation counts
   and the longest any operation held its locks (a stall: some request waited for a timeout).
"""

from __future__ import annotations

import fcntl
import json
import mmap
import os
import random
import struct
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

#: The object store's default chunk size: writes and truncates aim at its boundaries.
CHUNK = 128 * 1024
#: The header of a model slot: size (-1 when there is no such file), generation.
_HEADER = struct.Struct("<qq")
#: The journal line of a worker that waits for the go signal.
READY = "ready"
#: Descriptors one worker keeps open across operations, at most.
MAX_HELD = 3
#: Seconds an external reader (``cat``) may take.
CAT_TIMEOUT = 10.0
#: Sizes at or above this, written front to back from empty, are streamed while written
#: (``osfs.fs.streaming.STREAM_STEP``): the rewrite operation goes past it half the time.
STREAM_STEP = 1024 * 1024


class Mismatch(AssertionError):
    """The mount answered something the model does not allow."""


# The model (rule 1) -----------------------------------------------------------------------------


class Model:
    """The expected content of ``slots`` names, each at most ``capacity`` bytes, in ``path``.

    Every method is called with the slot's lock held (the final checks run alone).
    """

    def __init__(self, path: Path, slots: int, capacity: int) -> None:
        self.slots = slots
        self.capacity = capacity
        self._data_start = slots * _HEADER.size
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self._map = mmap.mmap(fd, self._data_start + slots * capacity)
        finally:
            os.close(fd)

    @classmethod
    def create(cls, path: Path, slots: int, capacity: int) -> Model:
        """A new model file in which no name exists."""
        with path.open("wb") as out:
            out.truncate(slots * (_HEADER.size + capacity))
        model = cls(path, slots, capacity)
        for slot in range(slots):
            model._set_header(slot, -1, 0)
        return model

    def close(self) -> None:
        self._map.close()

    def _header(self, slot: int) -> tuple[int, int]:
        size, generation = _HEADER.unpack_from(self._map, slot * _HEADER.size)
        return int(size), int(generation)

    def _set_header(self, slot: int, size: int, generation: int) -> None:
        _HEADER.pack_into(self._map, slot * _HEADER.size, size, generation)

    def _base(self, slot: int) -> int:
        return self._data_start + slot * self.capacity

    def size(self, slot: int) -> int | None:
        """The file's size, or None when the name does not exist."""
        size = self._header(slot)[0]
        return None if size < 0 else size

    def generation(self, slot: int) -> int:
        """Changes whenever the name stops naming the file it named (rule 3)."""
        return self._header(slot)[1]

    def exists(self, slot: int) -> bool:
        return self.size(slot) is not None

    def content(self, slot: int) -> bytes:
        """The whole file (a name that does not exist has none: an error)."""
        size = self.size(slot)
        assert size is not None, f"slot {slot} has no file"
        base = self._base(slot)
        return bytes(self._map[base : base + size])

    def read(self, slot: int, offset: int, length: int) -> bytes:
        """What ``pread(length, offset)`` must return."""
        size = self.size(slot) or 0
        end = min(offset + length, size)
        if offset >= end:
            return b""
        base = self._base(slot)
        return bytes(self._map[base + offset : base + end])

    def _zero(self, slot: int, start: int, end: int) -> None:
        if end > start:
            base = self._base(slot)
            self._map[base + start : base + end] = bytes(end - start)

    def write(self, slot: int, offset: int, data: bytes) -> None:
        """``pwrite``: a gap past the end reads as zeros."""
        size, generation = self._header(slot)
        assert size >= 0
        assert offset + len(data) <= self.capacity
        self._zero(slot, size, offset)
        base = self._base(slot)
        self._map[base + offset : base + offset + len(data)] = data
        self._set_header(slot, max(size, offset + len(data)), generation)

    def truncate(self, slot: int, new_size: int) -> None:
        """``ftruncate``: growing adds zeros."""
        size, generation = self._header(slot)
        assert size >= 0
        assert new_size <= self.capacity
        self._zero(slot, size, new_size)
        self._set_header(slot, new_size, generation)

    def replace(self, slot: int, data: bytes, *, new_file: bool) -> None:
        """The whole content; ``new_file``: the name now names another file (rule 3)."""
        _, generation = self._header(slot)
        assert len(data) <= self.capacity
        base = self._base(slot)
        self._map[base : base + len(data)] = data
        self._set_header(slot, len(data), generation + 1 if new_file else generation)

    def remove(self, slot: int) -> None:
        _, generation = self._header(slot)
        self._set_header(slot, -1, generation + 1)

    def move(self, source: int, target: int) -> None:
        """``rename(source, target)``."""
        data = self.content(source)
        self.replace(target, data, new_file=True)
        self.remove(source)


def tag(data: bytes) -> str:
    """How a journal names written bytes: their first eight, so a wrong read can be traced."""
    return f"data {data[:8].hex()}"


def describe_difference(got: bytes, expected: bytes) -> str | None:
    """None when ``got == expected``, else where they first differ and how."""
    if got == expected:
        return None
    first = next(
        (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
        min(len(got), len(expected)),
    )
    window = slice(max(0, first - 8), first + 8)
    return (
        f"{len(got)} bytes where the model has {len(expected)}; first difference at +{first} "
        f"(chunk {first // CHUNK}, +{first % CHUNK}): got {got[window].hex()}, expected "
        f"{expected[window].hex()}; zeros from there: {not any(got[first : first + 64])}"
    )


# Locks (rule 2) ---------------------------------------------------------------------------------


class Locks:
    """One ``flock`` per slot, on ``<folder>/<slot>.lock`` (made by :meth:`create`)."""

    def __init__(self, folder: Path, slots: int) -> None:
        self._fds = [
            os.open(folder / f"{slot}.lock", os.O_RDWR | os.O_CLOEXEC) for slot in range(slots)
        ]

    @staticmethod
    def create(folder: Path, slots: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for slot in range(slots):
            (folder / f"{slot}.lock").touch()

    @contextmanager
    def hold(self, *slots: int) -> Iterator[None]:
        """Hold the locks of ``slots``, taken in slot order."""
        taken: list[int] = []
        try:
            for slot in sorted(set(slots)):
                fcntl.flock(self._fds[slot], fcntl.LOCK_EX)
                taken.append(slot)
            yield
        finally:
            for slot in reversed(taken):
                fcntl.flock(self._fds[slot], fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


# A worker ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """What one worker does (passed as JSON on its command line)."""

    root: str
    model: str
    locks: str
    journal: str
    names: list[str]
    directories: list[str]
    capacity: int
    worker: int
    seed: int
    seconds: float
    home: list[int]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls(**json.loads(text))


@dataclass
class Held:
    """A descriptor kept open across operations: its slot, generation and access."""

    fd: int
    slot: int
    generation: int
    access: str  # "r", "w", "rw" or "a" (read-write, O_APPEND)


_FLAGS = {
    "r": os.O_RDONLY,
    "w": os.O_WRONLY,
    "rw": os.O_RDWR,
    "a": os.O_RDWR | os.O_APPEND,
}
#: Which accesses serve which need.
_SERVES = {"read": ("r", "rw", "a"), "write": ("w", "rw"), "append": ("a",)}


class Worker:
    """One worker process's state (see the module rules)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = Path(config.root)
        self.names = config.names
        self.rng = random.Random(config.seed)
        self.model = Model(Path(config.model), len(config.names), config.capacity)
        self.locks = Locks(Path(config.locks), len(config.names))
        self.held: list[Held] = []
        self.counts: Counter[str] = Counter()
        self._journal = os.open(
            config.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        self._start = time.monotonic()
        self._op = 0
        self._operation = ""
        #: The longest an operation held its locks: seconds, and which operation.
        self.slowest: tuple[float, str] = (0.0, "")

    # Helpers --------------------------------------------------------------------------------

    def path(self, slot: int) -> Path:
        return self.root / self.names[slot]

    def note(self, text: str) -> None:
        """A journal line (written before the operation runs, rule 4)."""
        line = f"{time.monotonic() - self._start:8.3f} w{self.config.worker} #{self._op} {text}\n"
        os.write(self._journal, line.encode())

    @contextmanager
    def hold(self, *slots: int) -> Iterator[None]:
        """The locks of ``slots`` (noted first: a worker stuck waiting shows what for); how long
        the operation holds them counts towards :attr:`slowest`."""
        held = sorted(set(slots))
        names = "all" if len(held) == len(self.names) else " ".join(self.names[s] for s in held)
        self.note(f"lock {names}")
        with self.locks.hold(*slots):
            start = time.monotonic()
            try:
                yield
            finally:
                took = time.monotonic() - start
                if took > self.slowest[0]:
                    self.slowest = (took, f"{self._operation} #{self._op} ({names})")

    def pick(self) -> int:
        """A slot: one of this worker's own names half the time, else any name."""
        if self.rng.random() < 0.5:
            return self.rng.choice(self.config.home)
        return self.rng.randrange(len(self.names))

    def random_size(self, *, big: bool = False) -> int:
        """A file size: small, around chunk boundaries, or (``big``) past the streaming step."""
        capacity = self.config.capacity
        roll = self.rng.random()
        if big and roll < 0.5:
            return self.rng.randrange(STREAM_STEP + 1, capacity + 1)
        if roll < 0.3:
            return self.rng.randrange(0, 4097)
        if roll < 0.6:
            boundary = self.rng.randrange(1, capacity // CHUNK + 1) * CHUNK
            return min(capacity, max(0, boundary + self.rng.randrange(-2, 3)))
        return self.rng.randrange(0, capacity + 1)

    def random_length(self) -> int:
        roll = self.rng.random()
        if roll < 0.35:
            return self.rng.randrange(1, 513)
        if roll < 0.7:
            return self.rng.randrange(513, 32 * 1024)
        return self.rng.randrange(32 * 1024, 320 * 1024)

    def random_range(self, size: int) -> tuple[int, int]:
        """An (offset, length) to write: across a chunk boundary, at or past the end, or
        anywhere in the file; always within the capacity."""
        capacity = self.config.capacity
        length = self.random_length()
        roll = self.rng.random()
        if roll < 0.35:
            boundary = self.rng.randrange(1, capacity // CHUNK + 1) * CHUNK
            offset = boundary - self.rng.randrange(1, min(length, boundary) + 1)
        elif roll < 0.55:
            offset = size
        elif roll < 0.65:
            offset = size + self.rng.randrange(1, 300 * 1024)
        else:
            offset = self.rng.randrange(0, size + 1)
        offset = min(max(offset, 0), capacity - 1)
        return offset, max(1, min(length, capacity - offset))

    def check(self, what: str, got: bytes, expected: bytes) -> None:
        """Every byte as the model says (:class:`Mismatch` saying where they differ)."""
        difference = describe_difference(got, expected)
        if difference is not None:
            dump = Path(self.config.journal).with_suffix(f".mismatch-{self._op}.bin")
            dump.write_bytes(got)
            raise Mismatch(f"{what}: {difference} (what was read: {dump})")

    def read_all(self, fd: int) -> bytes:
        """The whole file through ``fd`` (one ``pread`` past the end)."""
        return os.pread(fd, self.config.capacity + 1, 0)

    def write_random(self, fd: int, slot: int, size: int, how: str) -> None:
        """Write random bytes at a :meth:`random_range` of ``slot``'s file of ``size`` bytes
        through ``fd``, noted (``how`` says why) and mirrored in the model."""
        offset, length = self.random_range(size)
        data = self.rng.randbytes(length)
        self.note(f"write {self.names[slot]} [{offset}, +{length}) {how} {tag(data)}")
        self.write_all(fd, offset, data)
        self.model.write(slot, offset, data)

    def write_all(self, fd: int, offset: int | None, data: bytes) -> None:
        """``pwrite`` (or ``write`` when ``offset`` is None); a short count is a surprise."""
        done = os.write(fd, data) if offset is None else os.pwrite(fd, data, offset)
        if done != len(data):
            raise Mismatch(f"a write of {len(data)} bytes wrote {done}")

    # Descriptors (rule 3) -------------------------------------------------------------------

    def close_fd(self, fd: int) -> None:
        """Close (the flush stores a file written through it); an error is a surprise."""
        os.close(fd)

    def drop_stale(self) -> None:
        """Close the descriptors whose name no longer names their file."""
        for held in list(self.held):
            if held.generation != self.model.generation(held.slot):
                # Not under that file's lock: its close may store it, which changes no content.
                self.held.remove(held)
                self.note(f"close stale fd of {self.names[held.slot]}")
                self.close_fd(held.fd)
                self.counts["close_stale"] += 1

    def drop_stale_of(self, slot: int) -> None:
        for held in list(self.held):
            if held.slot == slot and held.generation != self.model.generation(slot):
                self.held.remove(held)
                self.close_fd(held.fd)
                self.counts["close_stale"] += 1

    @contextmanager
    def descriptor(self, slot: int, need: str) -> Iterator[int]:
        """A descriptor of ``slot``'s file (the slot's lock held) that serves ``need``: one kept
        from before, or a new one, which is kept afterwards or closed (the close checked)."""
        self.drop_stale_of(slot)
        usable = [h for h in self.held if h.slot == slot and h.access in _SERVES[need]]
        if usable and self.rng.random() < 0.75:
            yield self.rng.choice(usable).fd
            return
        access = self.rng.choice(_SERVES[need])
        fd = os.open(self.path(slot), _FLAGS[access] | os.O_CLOEXEC)
        keep = len(self.held) < MAX_HELD and self.rng.random() < 0.4
        try:
            yield fd
        except BaseException:
            os.close(fd)
            raise
        if keep:
            self.held.append(Held(fd, slot, self.model.generation(slot), access))
        else:
            self.close_fd(fd)

    def forget_held(self, slot: int) -> list[Held]:
        """Take this worker's descriptors of ``slot`` out of :attr:`held` (for a rename)."""
        mine = [h for h in self.held if h.slot == slot]
        for held in mine:
            self.held.remove(held)
        return mine

    # Operations -----------------------------------------------------------------------------

    def on_file(self, act: Callable[[int, int], None]) -> None:
        """``act(slot, size)`` on a random slot, holding it, if it has a file; else make one."""
        slot = self.pick()
        with self.hold(slot):
            size = self.model.size(slot)
            if size is None:
                self.create(slot)
            else:
                act(slot, size)

    def op_write(self) -> None:
        self.on_file(self._write)

    def _write(self, slot: int, size: int) -> None:
        offset, length = self.random_range(size)
        data = self.rng.randbytes(length)
        self.note(f"write {self.names[slot]} [{offset}, +{length}) size {size} {tag(data)}")
        with self.descriptor(slot, "write") as fd:
            self.write_all(fd, offset, data)
            self.model.write(slot, offset, data)
            if self.rng.random() < 0.3:
                self.check(
                    f"read back of a write to {self.names[slot]}",
                    os.pread(fd, length, offset) if self._readable(fd) else data,
                    data,
                )

    @staticmethod
    def _readable(fd: int) -> bool:
        return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_WRONLY

    def op_read(self) -> None:
        self.on_file(self._read)

    def _read(self, slot: int, size: int) -> None:
        roll = self.rng.random()
        if roll < 0.25:
            offset, length = 0, self.config.capacity + 1
        elif roll < 0.35:
            offset, length = size + self.rng.randrange(0, 4096), self.random_length()
        else:
            offset, length = self.random_range(size)
        self.note(f"read {self.names[slot]} [{offset}, +{length}) size {size}")
        with self.descriptor(slot, "read") as fd:
            got = os.pread(fd, length, offset)
            self.check(
                f"pread({length}, {offset}) of {self.names[slot]}",
                got,
                self.model.read(slot, offset, length),
            )

    def op_truncate(self) -> None:
        self.on_file(self._truncate)

    def _truncate(self, slot: int, size: int) -> None:
        roll = self.rng.random()
        if roll < 0.2:
            new_size = 0
        elif roll < 0.5:
            new_size = self.random_size()
        elif roll < 0.75:
            new_size = self.rng.randrange(0, size + 1)
        else:
            new_size = self.rng.randrange(size, self.config.capacity + 1)
        by_path = self.rng.random() < 0.4
        how = "truncate (path)" if by_path else "ftruncate"
        self.note(f"{how} {self.names[slot]} {size} -> {new_size}")
        if by_path:
            os.truncate(self.path(slot), new_size)
        else:
            with self.descriptor(slot, "write") as fd:
                os.ftruncate(fd, new_size)
        self.model.truncate(slot, new_size)
        self.counts[how] += 1

    def op_append(self) -> None:
        self.on_file(self._append)

    def _append(self, slot: int, size: int) -> None:
        room = self.config.capacity - size
        if room <= 0:
            self.note(f"truncate (full) {self.names[slot]} {size} -> 0")
            os.truncate(self.path(slot), 0)
            self.model.truncate(slot, 0)
            return
        data = self.rng.randbytes(min(self.random_length(), room))
        self.note(f"append {self.names[slot]} +{len(data)} at {size} {tag(data)}")
        with self.descriptor(slot, "append") as fd:
            self.write_all(fd, None, data)
            self.model.write(slot, size, data)
            if os.fstat(fd).st_size != size + len(data):
                raise Mismatch(f"fstat after an append to {self.names[slot]}")

    def op_fsync(self) -> None:
        self.on_file(self._fsync)

    def _fsync(self, slot: int, size: int) -> None:
        with self.descriptor(slot, "write") as fd:
            if self.rng.random() < 0.6:
                self.write_random(fd, slot, size, "before fsync")
            datasync = self.rng.random() < 0.3
            self.note(f"{'fdatasync' if datasync else 'fsync'} {self.names[slot]}")
            (os.fdatasync if datasync else os.fsync)(fd)

    def op_reopen(self) -> None:
        """Close a kept descriptor (under its lock), open a new one and read the whole file."""
        self.drop_stale()
        if self.held:
            held = self.rng.choice(self.held)
            with self.hold(held.slot):
                if held in self.held:
                    self.held.remove(held)
                    self.note(f"close {self.names[held.slot]} ({held.access})")
                    self.close_fd(held.fd)
        slot = self.pick()
        with self.hold(slot):
            if not self.model.exists(slot):
                self.create(slot)
                return
            access = self.rng.choice(tuple(_FLAGS))
            self.note(f"open {self.names[slot]} ({access})")
            fd = os.open(self.path(slot), _FLAGS[access] | os.O_CLOEXEC)
            if access != "w":
                whole = self.read_all(fd)
                self.check(f"whole {self.names[slot]} after open", whole, self.model.content(slot))
            if len(self.held) < MAX_HELD:
                self.held.append(Held(fd, slot, self.model.generation(slot), access))
            else:
                self.close_fd(fd)

    def create(self, slot: int) -> None:
        """Make the missing file ``slot`` (O_EXCL), maybe kept open, so still pending."""
        name = self.names[slot]
        data = self.rng.randbytes(self.random_size(big=True))
        self.note(f"create {name} size {len(data)} {tag(data)}")
        fd = os.open(self.path(slot), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            self.write_sequential(fd, data)
        except BaseException:
            os.close(fd)
            raise
        self.model.replace(slot, data, new_file=True)
        if len(self.held) < MAX_HELD and self.rng.random() < 0.4:
            self.held.append(Held(fd, slot, self.model.generation(slot), "rw"))
        else:
            self.close_fd(fd)
        self.counts["create"] += 1

    def write_sequential(self, fd: int, data: bytes) -> None:
        """Front to back in pieces, as ``cp`` writes (a stream past :data:`STREAM_STEP`)."""
        offset = 0
        while offset < len(data):
            piece = data[offset : offset + self.rng.choice((4096, 65536, 131072, 262144))]
            self.write_all(fd, None, piece)
            offset += len(piece)

    def op_rewrite(self) -> None:
        """``O_TRUNC`` and a new content front to back (or a new file if there is none)."""
        slot = self.pick()
        with self.hold(slot):
            if not self.model.exists(slot):
                self.create(slot)
                return
            data = self.rng.randbytes(self.random_size(big=True))
            self.note(f"rewrite {self.names[slot]} size {len(data)} {tag(data)}")
            fd = os.open(self.path(slot), os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            try:
                self.write_sequential(fd, data)
            except BaseException:
                os.close(fd)
                raise
            self.model.replace(slot, data, new_file=False)
            self.close_fd(fd)

    def op_save(self) -> None:
        """An editor's save: a temporary file beside the target, renamed onto it."""
        slot = self.pick()
        name = self.names[slot]
        temporary = self.path(slot).with_name(f".save-w{self.config.worker}")
        with self.hold(slot):
            data = self.rng.randbytes(self.random_size())
            self.note(f"save {name} size {len(data)} via {temporary.name} {tag(data)}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                self.write_sequential(fd, data)
                if self.rng.random() < 0.5:
                    os.fsync(fd)
            finally:
                self.close_fd(fd)
            os.rename(temporary, self.path(slot))
            self.model.replace(slot, data, new_file=True)
            self.drop_stale_of(slot)

    def op_rename(self) -> None:
        """Rename a file onto another name (which may exist), maybe with it open: the open
        descriptor follows the file to its new name."""
        source = self.pick()
        target = self.rng.choice([s for s in range(len(self.names)) if s != source])
        with self.hold(source, target):
            if not self.model.exists(source):
                self.create(source)
                return
            self.drop_stale_of(source)
            self.drop_stale_of(target)
            opened = None
            if self.rng.random() < 0.4:
                opened = os.open(self.path(source), os.O_RDWR | os.O_CLOEXEC)
            replaced = self.model.content(target) if self.model.exists(target) else None
            replacing = " (replacing)" if replaced is not None else ""
            with_fd = " (open)" if opened is not None else ""
            self.note(f"rename {self.names[source]} -> {self.names[target]}{replacing}{with_fd}")
            try:
                os.rename(self.path(source), self.path(target))
            except BaseException:
                if opened is not None:
                    os.close(opened)
                raise
            moving = self.forget_held(source)
            gone = self.forget_held(target)
            self.model.move(source, target)
            for held in moving:  # same file, new name
                self.held.append(Held(held.fd, target, self.model.generation(target), held.access))
            for held in gone:  # the replaced file: its bytes stay readable through these
                if replaced is not None and held.access != "w":
                    self.check(
                        f"replaced {self.names[target]} through a descriptor kept open",
                        self.read_all(held.fd),
                        replaced,
                    )
                self.close_fd(held.fd)
            if os.path.lexists(self.path(source)):
                raise Mismatch(f"{self.names[source]} still exists after its rename")
            if opened is not None:
                self.write_random(opened, target, self.model.size(target) or 0, "via the old fd")
                self.close_fd(opened)
            self.check(
                f"{self.names[target]} after rename",
                self.path(target).read_bytes(),
                self.model.content(target),
            )

    def op_unlink(self) -> None:
        slot = self.pick()
        with self.hold(slot):
            if not self.model.exists(slot):
                self.create(slot)
                return
            self.note(f"unlink {self.names[slot]}")
            os.unlink(self.path(slot))
            self.model.remove(slot)
            self.drop_stale_of(slot)
            if os.path.lexists(self.path(slot)):
                raise Mismatch(f"{self.names[slot]} still exists after unlink")

    def op_unlink_open(self) -> None:
        """Unlink a file while it is open: the descriptor keeps reading and writing its bytes,
        the name is free at once (and maybe made again while the old file is still open)."""
        slot = self.pick()
        name = self.names[slot]
        with self.hold(slot):
            if not self.model.exists(slot):
                self.create(slot)
                return
            fd = os.open(self.path(slot), os.O_RDWR | os.O_CLOEXEC)
            try:
                before = self.model.content(slot)
                mine = bytearray(before)
                self.note(f"unlink {name} with it open (size {len(mine)})")
                os.unlink(self.path(slot))
                self.model.remove(slot)
                self.drop_stale_of(slot)
                if os.path.lexists(self.path(slot)):
                    raise Mismatch(f"{name} still exists after unlink")
                self.check(
                    f"unlinked {name} through its descriptor", self.read_all(fd), bytes(mine)
                )
                if self.rng.random() < 0.5:
                    self.create(slot)
                offset, length = self.random_range(len(mine))
                data = self.rng.randbytes(length)
                self.note(f"write unlinked {name} [{offset}, +{length}) {tag(data)}")
                self.write_all(fd, offset, data)
                if offset > len(mine):
                    mine.extend(bytes(offset - len(mine)))
                mine[offset : offset + length] = data
                self.check(f"unlinked {name} after a write", self.read_all(fd), bytes(mine))
                if self.model.exists(slot):
                    self.check(
                        f"new {name} beside the unlinked one",
                        self.path(slot).read_bytes(),
                        self.model.content(slot),
                    )
            finally:
                self.close_fd(fd)

    def op_stat(self) -> None:
        slot = self.pick()
        with self.hold(slot):
            size = self.model.size(slot)
            self.note(f"stat {self.names[slot]} (model: {size})")
            try:
                found: int | None = os.stat(self.path(slot)).st_size
            except FileNotFoundError:
                found = None
            if found != size:
                raise Mismatch(f"stat of {self.names[slot]}: size {found}, the model has {size}")
            self.drop_stale_of(slot)
            for held in self.held:
                if held.slot == slot and os.fstat(held.fd).st_size != size:
                    raise Mismatch(f"fstat of a kept descriptor of {self.names[slot]}")

    def op_cat(self) -> None:
        """Another program reads the file (a process that opens it for the first time)."""
        slot = self.pick()
        with self.hold(slot):
            self.note(f"cat {self.names[slot]}")
            done = subprocess.run(
                ["cat", str(self.path(slot))],
                capture_output=True,
                timeout=CAT_TIMEOUT,
                check=False,
            )
            if not self.model.exists(slot):
                if done.returncode == 0 or b"No such file" not in done.stderr:
                    raise Mismatch(f"cat of missing {self.names[slot]}: {done!r}")
                return
            if done.returncode != 0:
                raise Mismatch(f"cat {self.names[slot]} failed: {done.stderr!r}")
            self.check(f"cat {self.names[slot]}", done.stdout, self.model.content(slot))

    def op_scan(self) -> None:
        """Every lock: the tree lists exactly the model's files, with their sizes."""
        with self.hold(*range(len(self.names))):
            self.note("scan")
            self.check_tree()

    def check_tree(self) -> None:
        found: dict[str, int] = {}
        directories: set[str] = set()
        for top, subdirs, files in os.walk(self.root):
            relative = Path(top).relative_to(self.root)
            directories.update(str(relative / d) for d in subdirs)
            for file in files:
                found[str(relative / file)] = os.lstat(Path(top) / file).st_size
        expected = {
            name: size
            for slot, name in enumerate(self.names)
            if (size := self.model.size(slot)) is not None
        }
        if found != expected or directories != set(self.config.directories):
            raise Mismatch(
                f"the tree lists {sorted(found.items())} in {sorted(directories)}; the model "
                f"has {sorted(expected.items())} in {sorted(self.config.directories)}"
            )

    # The run --------------------------------------------------------------------------------

    OPERATIONS: tuple[tuple[str, int], ...] = (
        ("write", 22),
        ("read", 18),
        ("truncate", 8),
        ("append", 8),
        ("fsync", 5),
        ("reopen", 8),
        ("rewrite", 4),
        ("save", 3),
        ("rename", 6),
        ("unlink", 3),
        ("unlink_open", 2),
        ("stat", 6),
        ("cat", 2),
        ("scan", 1),
    )

    def run(self) -> Counter[str]:
        names = [name for name, _ in self.OPERATIONS]
        weights = [weight for _, weight in self.OPERATIONS]
        self._start = time.monotonic()
        end = self._start + self.config.seconds
        while time.monotonic() < end:
            self._op += 1
            operation = self._operation = self.rng.choices(names, weights)[0]
            getattr(self, f"op_{operation}")()
            self.counts[operation] += 1
        self.note("closing the kept descriptors")
        for held in self.held:
            self.close_fd(held.fd)
        self.held.clear()
        self.note("done")
        return self.counts


def main(argv: Sequence[str]) -> int:
    """``python -m tests.support.fsx CONFIG_JSON``: say "ready" in the journal, wait for a byte
    on stdin (the go signal: every worker starts at once), run."""
    config = Config.from_json(argv[0])
    worker = Worker(config)
    worker.note(READY)
    sys.stdin.buffer.read(1)
    try:
        counts = worker.run()
    except BaseException:
        worker.note("FAILED")
        print(f"worker {config.worker} (seed {config.seed}) failed:", file=sys.stderr)
        traceback.print_exc()
        return 1
    print(json.dumps({"counts": dict(counts), "slowest": list(worker.slowest)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
