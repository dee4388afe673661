"""Connecting to NATS as NATS users do: URLs, user/password, token, creds, nkey, TLS, contexts.

``ConnectOptions`` is what the CLI and the mount collect from flags and the environment;
``open_connection`` turns it into a connected nats-py client, mapping failures to osfs errors.
Contexts are the ``nats`` CLI's JSON files under ``$XDG_CONFIG_HOME/nats/context/<name>.json``
(selected by ``--context``, ``NATS_CONTEXT``, or the CLI's ``context.txt``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import nats.aio.client
import nats.errors
from nats.aio.client import Client

from osfs.core import errors
from osfs.store.credentials import check_credential_files, describe_error, tls_context
from osfs.store.jsapi import JetStreamApi
from osfs.store.manager import ObjectStoreManager

log = logging.getLogger(__name__)

#: Bytes nats-py reads from the socket at a time, and its stream buffer's limit. Its default,
#: 32 KiB, cuts every 128 KiB chunk into four reads and four parser passes, and pauses and
#: resumes the socket (two epoll_ctl calls) around each. 256 KiB, asyncio's largest single
#: receive, takes about 12% off the CPU time of a streaming get (measured: docs/benchmarks.md);
#: 1 MiB did no better. nats-py has no option for it, only this module constant, which it reads
#: at connect and at every read (so the last connection opened sets it for the process).
READ_BUFFER_SIZE = 256 * 1024
#: nats-py's own read size, which a mount keeps (see ``osfs.mount``).
NATS_PY_READ_BUFFER_SIZE = 32 * 1024


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How to reach and authenticate to a NATS server.

    Attributes:
        servers: one or more URLs (a cluster); empty means "not named".
        user, password: plain user/password authentication.
        token: token authentication.
        creds: path to a JWT ``.creds`` file.
        nkey: path to an nkey seed file.
        tls_ca, tls_cert, tls_key: TLS files; any of them turns TLS on.
        name: the client name the server shows in its connection list.
        connect_timeout: seconds per connection attempt.
        request_timeout: seconds to wait for each JetStream API answer.
        read_buffer_size: bytes read from the socket at a time (:data:`READ_BUFFER_SIZE`).
    """

    servers: tuple[str, ...] = ()
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    name: str = "osfs"
    connect_timeout: float = 2.0
    request_timeout: float = 5.0
    read_buffer_size: int = READ_BUFFER_SIZE


class Connection:
    """A connected client: the nats-py connection, its JetStream API and bucket manager.

    Use as an async context manager, or call :meth:`close`.
    """

    def __init__(self, nc: Client, options: ConnectOptions) -> None:
        self.nc = nc
        self.options = options
        self.api = JetStreamApi(nc, timeout=options.request_timeout)
        self.manager = ObjectStoreManager(self.api)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected_url(self) -> str:
        """The server URL currently connected to, without credentials."""
        url = self.nc.connected_url
        if url is None:
            return ""
        host = url.hostname or ""
        return f"{url.scheme}://{host}:{url.port}" if url.port else f"{url.scheme}://{host}"

    @property
    def server_version(self) -> str:
        """The version of the server currently connected to ("unknown" before it said)."""
        version = self.nc.connected_server_version
        try:
            text = f"{version.major}.{version.minor}.{version.patch}"
        except ValueError:
            return "unknown"
        return f"{text}-{version.dev}" if version.dev else text

    async def close(self) -> None:
        """Close the connection (pending publishes are flushed first)."""
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            with contextlib.suppress(Exception):
                await self.nc.close()


class _QuietTlsEof(logging.Filter):
    """Drops asyncio's "returning true from eof_received() has no effect when using ssl".

    nats-py upgrades its plain connection with ``loop.start_tls`` under a ``StreamReaderProtocol``
    that does not know it runs over TLS, so asyncio logs that warning whenever the server ends a
    TLS connection. It is harmless (the connection closes all the same), but it was printed after
    every command and put a WARNING in every mount's log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("returning true from eof_received()")


_QUIET_TLS_EOF = _QuietTlsEof()


class _Attempts:
    """nats-py's error callback while connecting: logs each error and keeps the last one.

    nats-py reports a refused password or a failed TLS handshake only to this callback, then
    gives up with a bare ``NoServersError``; the last error is what tells the user why.
    """

    def __init__(self) -> None:
        self.last: Exception | None = None
        self.refusal: Exception | None = None
        self.tls_failure: ssl.SSLError | None = None
        self.tls_failed = asyncio.Event()

    async def record(self, exc: Exception) -> None:
        if _is_refusal(exc):
            self.refusal = exc  # the server closes on a refusal: a reset may follow, and hide it
        elif not isinstance(exc, nats.errors.NoServersError):
            self.last = exc
        if isinstance(exc, ssl.SSLError):
            self.tls_failure = exc
            self.tls_failed.set()
        log.info("nats: %s", describe_error(exc))


async def _connect(nc: Client, kwargs: dict[str, Any], attempts: _Attempts) -> None:
    """``nc.connect(**kwargs)``, given up at the first TLS failure (which is raised then).

    After a failed TLS handshake, nats-py (when it may reconnect) waits for ever for the plain
    transport it handed to ``start_tls`` to close, so a mount with the wrong CA hung. The same
    server presents the same certificate next time: there is nothing to wait for.
    """
    connecting = asyncio.ensure_future(nc.connect(**kwargs))
    tls_failed = asyncio.ensure_future(attempts.tls_failed.wait())
    try:
        await asyncio.wait({connecting, tls_failed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        tls_failed.cancel()
        if not connecting.done():
            connecting.cancel()
            await asyncio.wait({connecting})  # its own outcome no longer matters
    if not connecting.cancelled():
        connecting.result()  # connected, or raise what nats-py raised
    elif attempts.tls_failure is not None:
        raise attempts.tls_failure


def _is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the server refusing the credentials (not a network failure)."""
    text = str(exc).lower()
    return (
        "authorization" in text or "authentication" in text or "auth" in type(exc).__name__.lower()
    )


async def _log_disconnected() -> None:
    log.info("nats: disconnected")


async def _log_reconnected() -> None:
    log.info("nats: reconnected")


async def open_connection(options: ConnectOptions, *, reconnect: bool = True) -> Connection:
    """Connect to the servers in ``options``.

    Args:
        options: where and how to connect.
        reconnect: keep reconnecting for ever after a connection loss (the mount wants this;
            a one-shot command does not care).

    Raises:
        StoreUnavailableError: no server could be reached.
        AuthorizationError: the server refused the credentials.
        InvalidOptionError: a credentials, nkey or TLS file is missing or malformed.
    """
    if not options.servers:
        raise errors.StoreUnavailableError("no NATS server named")
    check_credential_files(options)
    attempts = _Attempts()
    kwargs: dict[str, Any] = {
        "servers": list(options.servers),
        "name": options.name,
        "connect_timeout": options.connect_timeout,
        "allow_reconnect": reconnect,
        # nats-py's first connect cycles through the pool until a server's attempts exceed
        # this number, and 0 or -1 never do: bound it here, then widen it once connected.
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0.5,
        "error_cb": attempts.record,
        "disconnected_cb": _log_disconnected,
        "reconnected_cb": _log_reconnected,
        "pending_size": 8 * 1024 * 1024,
    }
    if options.user is not None:
        kwargs["user"] = options.user
        kwargs["password"] = options.password or ""
    if options.token is not None:
        kwargs["token"] = options.token
    if options.creds is not None:
        kwargs["user_credentials"] = options.creds
    if options.nkey is not None:
        kwargs["nkeys_seed"] = options.nkey
    tls = tls_context(options)
    if tls is not None:
        kwargs["tls"] = tls
        logging.getLogger("asyncio").addFilter(_QUIET_TLS_EOF)  # added once however often called
    nats.aio.client.DEFAULT_BUFFER_SIZE = options.read_buffer_size
    nc = Client()
    where = ", ".join(_without_credentials(url) for url in options.servers)
    try:
        await _connect(nc, kwargs, attempts)
    except nats.errors.NoServersError as exc:
        # Every server failed; why is in what the attempts reported (a refusal, a TLS error).
        if attempts.refusal is not None:
            raise errors.AuthorizationError(
                f"NATS at {where} refused the credentials"
            ) from attempts.refusal
        raise _unreachable(options, tls, where, attempts.last) from exc
    except (nats.errors.Error, OSError, TimeoutError, ssl.SSLError) as exc:
        if _is_refusal(exc):
            raise errors.AuthorizationError(f"NATS at {where} refused the credentials") from exc
        raise _unreachable(options, tls, where, exc) from exc
    if reconnect:
        nc.options["max_reconnect_attempts"] = -1  # from now on, reconnect for ever
    return Connection(nc, options)


def _unreachable(
    options: ConnectOptions, tls: ssl.SSLContext | None, where: str, cause: BaseException | None
) -> errors.StoreUnavailableError:
    """The error for a connect that failed because of ``cause`` (None: no reason is known).

    A TLS failure is a :class:`TlsHandshakeError`, whose hint names the TLS options.
    """
    if cause is None:
        return errors.StoreUnavailableError(f"cannot connect to NATS at {where}")
    reason = _missing_certificate(options, tls, cause)
    if reason is not None:
        return errors.TlsHandshakeError(f"cannot connect to NATS at {where}: {reason}")
    kind = (
        errors.TlsHandshakeError
        if isinstance(cause, ssl.SSLError)
        else errors.StoreUnavailableError
    )
    return kind(f"cannot connect to NATS at {where}: {describe_error(cause)}")


def _missing_certificate(
    options: ConnectOptions, tls: ssl.SSLContext | None, exc: BaseException
) -> str | None:
    """Why a TLS connection without a client certificate failed, if for want of one.

    A server that requires one sends the "certificate required" alert, but nats-py often shows
    only the lost connection (reset or broken pipe, whichever the client was doing).
    """
    if tls is None or options.tls_cert is not None:
        return None
    if isinstance(exc, ssl.SSLError) and "CERTIFICATE_REQUIRED" in (exc.reason or ""):
        return "the server requires a client certificate, and none was given"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return (
            "the server closed the connection after the TLS handshake: it may require a "
            "client certificate, and none was given"
        )
    return None


def _without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed, for messages and logs."""
    scheme, sep, rest = url.rpartition("://")
    host = rest.rpartition("@")[2]
    return f"{scheme}{sep}{host}"
