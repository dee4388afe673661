"""Running asyncio test bodies while pytest-trio's ``trio_mode`` owns every ``async def`` test.

Why this shape: nats-py (and so ``osfs.store``) is asyncio-only, while the FUSE layer is tested on
trio with ``trio_mode = true``, which claims every ``async def`` test and fixture it sees. Rather
than fight that plugin, asyncio tests are plain synchronous functions to pytest: either they call
`run` on a coroutine, or they are written as ``async def`` and wrapped by `asyncio_test`, which
turns them into a synchronous function with the same signature (so fixtures still resolve) that
runs the body in a fresh event loop.

Every run has an absolute timeout, so a hung server conversation fails the test with a clear
message instead of waiting for pytest-timeout's thread dump.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
"""Seconds an asyncio test body may take before it fails."""


def run(coro: Coroutine[Any, Any, T], *, timeout: float = DEFAULT_TIMEOUT) -> T:
    """Run ``coro`` to completion in a new event loop and return its result.

    Raises:
        AssertionError: the coroutine did not finish within ``timeout`` seconds.
    """

    async def bounded() -> T:
        try:
            async with asyncio.timeout(timeout):
                return await coro
        except TimeoutError as exc:
            raise AssertionError(f"asyncio test body did not finish within {timeout:g} s") from exc

    return asyncio.run(bounded())


@overload
def asyncio_test(fn: Callable[P, Coroutine[Any, Any, None]], /) -> Callable[P, None]: ...


@overload
def asyncio_test(
    *, timeout: float = DEFAULT_TIMEOUT
) -> Callable[[Callable[P, Coroutine[Any, Any, None]]], Callable[P, None]]: ...


def asyncio_test(
    fn: Callable[P, Coroutine[Any, Any, None]] | None = None,
    /,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Callable[P, None] | Callable[[Callable[P, Coroutine[Any, Any, None]]], Callable[P, None]]:
    """Decorate an ``async def`` test so that it runs on asyncio (see the module docstring).

    Use as ``@asyncio_test`` or ``@asyncio_test(timeout=120)``. Fixtures are requested as usual;
    they must be synchronous (trio_mode would run an ``async def`` fixture on trio).
    """

    def decorate(body: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
        @functools.wraps(body)
        def test(*args: P.args, **kwargs: P.kwargs) -> None:
            run(body(*args, **kwargs), timeout=timeout)

        return test

    if fn is None:
        return decorate
    return decorate(fn)
