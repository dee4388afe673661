"""One command's connection: where it goes, opening it on first use, closing it at the end.

Rules:
1. Where to connect is decided once per command (:func:`plan_for`): flags > environment >
   nats context; with no server named, the embedded server, started on first use.
2. Only against the embedded server does a command create a missing bucket: against a real
   deployment a typo in a bucket name must fail, not quietly make a new bucket.
3. A client command runs on asyncio (:func:`session_command`), opens its connection lazily (a
   command that fails before needing the server never waits for one) and always closes it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace

from osfs import embedded
from osfs.cli.context import ConnectionPlan, resolve
from osfs.cli.failures import first_line
from osfs.cli.options import connect_flags
from osfs.cli.output import Output
from osfs.core import errors
from osfs.core.config import ObjectStoreConfig
from osfs.store import Connection, ConnectOptions, ObjectStore, ObjectStoreManager, open_connection


def plan_for(args: argparse.Namespace) -> ConnectionPlan:
    """Where the command connects, from its flags and this process's environment.

    Raises:
        InvalidOptionError: the chosen nats context cannot be read.
    """
    return resolve(connect_flags(args), os.environ)


def connect_options(plan: ConnectionPlan) -> ConnectOptions:
    """The plan's options, with the embedded server started first when that is where it points.

    Blocks while the embedded server starts (up to its start timeout).

    Raises:
        StoreUnavailableError: the embedded server could not be started.
    """
    if not plan.embedded:
        return plan.options
    server = start_embedded()
    return replace(plan.options, servers=(server.url,))


def start_embedded() -> embedded.EmbeddedServer:
    """The running embedded server, started now if need be.

    Raises:
        StoreUnavailableError: no binary, or it would not start.
    """
    try:
        return embedded.ensure_running()
    except errors.OsfsError:
        raise
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise errors.StoreUnavailableError(
            f"could not start the embedded nats-server: {first_line(exc)}"
        ) from exc


class Session:
    """One command's connection: opened on first use (starting the embedded server if that is
    where osfs connects), closed when the command ends."""

    def __init__(self, plan: ConnectionPlan, out: Output) -> None:
        self.plan = plan
        self.out = out
        self._connection: Connection | None = None
        self._stores: list[ObjectStore] = []

    async def connection(self) -> Connection:
        """The connection, opened now if need be."""
        if self._connection is None:
            options = await asyncio.to_thread(connect_options, self.plan)
            self._connection = await open_connection(options, reconnect=False)
        return self._connection

    async def manager(self) -> ObjectStoreManager:
        """The bucket manager of the connection."""
        return (await self.connection()).manager

    async def store(self, bucket: str, *, create_missing: bool = False) -> ObjectStore:
        """Bind ``bucket``; with ``create_missing`` and the embedded server, create it.

        Raises:
            BucketNotFoundError: no such bucket (and not created).
        """
        manager = await self.manager()
        try:
            store = await manager.object_store(bucket)
        except errors.BucketNotFoundError as exc:
            if not (create_missing and self.plan.embedded):
                raise errors.BucketNotFoundError(f"bucket {bucket!r} not found") from exc
            store = await manager.create_object_store(ObjectStoreConfig(bucket=bucket))
            self.out.note(f"created bucket {bucket} on the embedded server")
        self._stores.append(store)
        return store

    async def aclose(self) -> None:
        """Release stores and close the connection.

        Errors while closing are dropped: every result was acknowledged by the server before
        the command printed it, and the command's own outcome is what the user needs to see.
        """
        for store in self._stores:
            with contextlib.suppress(Exception):
                await store.aclose()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()


SessionHandler = Callable[[Session, argparse.Namespace], Awaitable[int]]


def session_command(
    handler: SessionHandler,
) -> Callable[[argparse.Namespace, Output], int]:
    """Turn an asyncio command over a :class:`Session` into a plain command.

    The command resolves where to connect, runs ``handler`` in a fresh event loop, and closes
    the session whatever happens; its exceptions propagate to ``main``.
    """

    @functools.wraps(handler)
    def command(args: argparse.Namespace, out: Output) -> int:
        return asyncio.run(_run(handler, plan_for(args), args, out))

    return command


async def _run(
    handler: SessionHandler, plan: ConnectionPlan, args: argparse.Namespace, out: Output
) -> int:
    session = Session(plan, out)
    try:
        return await handler(session, args)
    finally:
        await session.aclose()
