"""FlakyStore on the write methods: each is faultable by its name, and otherwise passes through.

MemoryStore's semantics are checked against the real bucket in ``tests/contract``; this only
checks the fault-injection wrapper and the call counting the filesystem's tests rely on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from osfs.core import errors
from osfs.core.meta import ObjectInfo, ObjectMeta
from tests.support.memory_store import Fault, FlakyStore, MemoryStore

Write = Callable[[FlakyStore], Awaitable[ObjectInfo]]


def writes(source: Path) -> dict[str, Write]:
    """One call of each write method, by the method's name, on a bucket holding ``a``."""
    return {
        "put_path": lambda s: s.put_path(ObjectMeta(name="p"), str(source)),
        "put_data": lambda s: s.put_data(ObjectMeta(name="d"), b"data"),
        "update_meta": lambda s: s.update_meta("a", ObjectMeta(name="a", description="x")),
        "rename": lambda s: s.rename("a", "b", overwrite=True),
        "delete": lambda s: s.delete("a"),
    }


@pytest.mark.parametrize("method", ["put_path", "put_data", "update_meta", "rename", "delete"])
async def test_each_write_fails_on_its_fault_and_then_passes(method: str, tmp_path: Path) -> None:
    source = tmp_path / "file"
    source.write_bytes(b"file")
    memory = MemoryStore()
    before = await memory.put("a", b"a")
    flaky = FlakyStore(memory, {(method, 1): errors.StoreTimeoutError("lost")})
    call = writes(source)[method]
    with pytest.raises(errors.StoreTimeoutError):
        await call(flaky)
    assert memory.calls[method] == 0  # the fault stood in for the call
    assert (await memory.get_info("a")).revision == before.revision
    info = await call(flaky)
    assert info.revision > before.revision
    assert (flaky.calls[method], memory.calls[method]) == (2, 1)


async def test_a_gate_holds_a_write_until_it_opens(autojump_clock: trio.testing.MockClock) -> None:
    memory = MemoryStore()
    gate = trio.Event()
    flaky = FlakyStore(memory, {("put_data", None): Fault(gate=gate, delay=5.0)})
    done: list[ObjectInfo] = []

    async def write() -> None:
        done.append(await flaky.put_data(ObjectMeta(name="o"), b"x"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        await trio.sleep(10)
        assert not done
        with pytest.raises(errors.ObjectNotFoundError):
            await memory.get_info("o")
        gate.set()
    [info] = done
    assert (await memory.get_info("o")).revision == info.revision
