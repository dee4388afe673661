"""The seam's thread hand-off (``osfs.bridge.AsyncioThread.call``): results, errors, cancels."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import CancelledError
from functools import partial

import pytest
import trio

from osfs.bridge import AsyncioThread
from osfs.core import errors


@pytest.fixture
async def loop_thread() -> AsyncIterator[AsyncioThread]:
    thread = AsyncioThread()
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


async def test_a_call_runs_on_the_asyncio_thread_and_returns_its_value(
    loop_thread: AsyncioThread,
) -> None:
    async def where() -> str:
        asyncio.get_running_loop()  # raises outside a loop
        return threading.current_thread().name

    assert await loop_thread.call(where) == "osfs-asyncio"

    async def echo(value: int) -> int:
        await asyncio.sleep(0)
        return value

    results = [await loop_thread.call(partial(echo, i)) for i in range(50)]
    assert results == list(range(50))


async def test_an_error_on_the_asyncio_side_is_raised_in_trio(loop_thread: AsyncioThread) -> None:
    async def missing() -> None:
        raise errors.ObjectNotFoundError("object 'x' not found")

    with pytest.raises(errors.ObjectNotFoundError, match="object 'x' not found"):
        await loop_thread.call(missing)


async def test_calls_from_many_trio_tasks_each_get_their_own_answer(
    loop_thread: AsyncioThread,
) -> None:
    answers: dict[int, int] = {}

    async def ask(i: int) -> None:
        async def square() -> int:
            await asyncio.sleep(0.001 * (i % 5))
            return i * i

        answers[i] = await loop_thread.call(square)

    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(ask, i)
    assert answers == {i: i * i for i in range(40)}


async def test_a_trio_cancel_cancels_the_asyncio_task_and_returns_at_once(
    loop_thread: AsyncioThread,
) -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with trio.move_on_after(0.05) as scope:
        await loop_thread.call(slow)
    assert scope.cancelled_caught
    assert await trio.to_thread.run_sync(cancelled.wait, 5.0)


async def test_an_answer_after_a_cancel_is_dropped_and_the_seam_goes_on(
    loop_thread: AsyncioThread,
) -> None:
    # The asyncio task shrugs the cancel off and answers anyway: the trio task, already gone
    # on, must not be woken a second time (trio would fail the whole run).
    answered = threading.Event()

    async def stubborn() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
        answered.set()
        return "late"

    with trio.move_on_after(0.05):
        await loop_thread.call(stubborn)
    assert await trio.to_thread.run_sync(answered.wait, 5.0)
    await trio.sleep(0.1)  # the late answer's wake-up has run by now
    assert await loop_thread.call(lambda: asyncio.sleep(0, "next")) == "next"


async def test_a_call_in_a_cancelled_scope_never_starts_its_work(
    loop_thread: AsyncioThread,
) -> None:
    started = threading.Event()

    async def work() -> None:
        started.set()

    with trio.CancelScope() as scope:
        scope.cancel()
        await loop_thread.call(work)
    await loop_thread.call(lambda: asyncio.sleep(0))  # every earlier callback has run
    assert not started.is_set()


async def test_a_task_cancelled_by_the_loop_stopping_is_an_error_not_a_hang() -> None:
    thread = AsyncioThread()
    thread.start()
    release = threading.Event()

    async def forever() -> None:
        release.set()
        await asyncio.sleep(30)

    async def stop_when_started() -> None:
        await trio.to_thread.run_sync(release.wait, 5.0)
        await trio.to_thread.run_sync(thread.stop)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stop_when_started)
            with pytest.raises(CancelledError):
                await thread.call(forever)
