"""Wait for a condition under an absolute deadline: the only way tests wait.

Rules:
1. No fixed sleeps in tests: a sleep is either too short on a busy 2-core machine (flaky) or too
   long everywhere else (slow). Poll a condition instead, and fail with a message that says which
   condition did not come true.
2. The deadline is absolute (``time.monotonic()``), so a slow predicate cannot stretch it.
3. A predicate may raise one of the ``ignore`` exceptions while the system is coming up (a refused
   connection, say); that counts as "not yet", and the last such error is shown on timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

Message = str | Callable[[], str]


def _describe(message: Message, timeout: float, last_error: BaseException | None) -> str:
    text = message() if callable(message) else message
    text = f"timed out after {timeout:g} s waiting for: {text}"
    if last_error is not None:
        text += f" (last error: {last_error!r})"
    return text


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.02,
    message: Message = "the condition",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that (never None).

    Args:
        predicate: checked at once, then every ``interval`` seconds.
        timeout: seconds from now after which the wait fails.
        interval: seconds between checks.
        message: what is being waited for (or a callable building it, evaluated on timeout so it
            can show the last observed state).
        ignore: exception types that count as "not yet" instead of failing the wait.

    Raises:
        AssertionError: the predicate stayed falsy until the deadline.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            raise AssertionError(_describe(message, timeout, last_error))
        time.sleep(interval)


# The timeout is a parameter on purpose (ASYNC109): the helper mirrors `wait_until`, and callers
# state their deadline at the call site, where the condition being waited for is named.
@overload
async def async_wait_until(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float,  # noqa: ASYNC109
    interval: float = ...,
    message: Message = ...,
    *,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def async_wait_until(
    predicate: Callable[[], T | None],
    timeout: float,  # noqa: ASYNC109
    interval: float = ...,
    message: Message = ...,
    *,
    ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def async_wait_until(
    predicate: Callable[[], Any],
    timeout: float,  # noqa: ASYNC109
    interval: float = 0.02,
    message: Message = "the condition",
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """The asyncio twin of `wait_until`: the predicate may be a plain or an ``async`` function.

    Waiting yields to the event loop between checks, so the tasks being waited on can run.

    Raises:
        AssertionError: the predicate stayed falsy until the deadline.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
        except ignore as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            raise AssertionError(_describe(message, timeout, last_error))
        await asyncio.sleep(interval)
