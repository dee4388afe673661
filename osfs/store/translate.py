"""The one place where nats-py exceptions and JetStream API errors become osfs errors.

Every adapter in ``osfs.store`` calls :func:`api_error` for API error bodies and wraps nats-py
calls in :func:`translated`, so no nats-py type escapes the store (always ``raise ... from``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import nats.errors

from osfs.core import errors

# JetStream error codes (nats-server ``server/errors.json``) that osfs treats specially.
STREAM_NOT_FOUND = 10059
STREAM_NAME_IN_USE = 10058
NO_MESSAGE_FOUND = 10037
STREAM_SEALED = 10109
STREAM_STORE_FAILED = 10077  # "maximum bytes exceeded" under discard: new
INSUFFICIENT_RESOURCES = 10023
STORAGE_RESOURCES_EXCEEDED = 10047
JETSTREAM_NOT_ENABLED = 10076
JETSTREAM_NOT_ENABLED_ACCOUNT = 10039
STREAM_WRONG_LAST_SEQUENCE = 10071


def api_error(error: Mapping[str, Any], *, context: str = "") -> errors.OsfsError:
    """The osfs error for a JetStream API ``error`` object."""
    code = int(error.get("code") or 0)
    err_code = int(error.get("err_code") or 0)
    description = str(error.get("description") or "JetStream API error")
    where = f"{context}: " if context else ""
    text = description.lower()
    if err_code == STREAM_NOT_FOUND:
        return errors.BucketNotFoundError(f"{where}bucket not found")
    if err_code == STREAM_NAME_IN_USE:
        return errors.BucketExistsError(f"{where}bucket already exists with another configuration")
    if err_code == STREAM_SEALED or "sealed" in text:
        return errors.BucketSealedError(f"{where}the bucket is sealed (read-only)")
    if (
        err_code in (STORAGE_RESOURCES_EXCEEDED, INSUFFICIENT_RESOURCES)
        or "maximum bytes exceeded" in text
        or "resource limits exceeded" in text
    ):
        return errors.BucketFullError(f"{where}bucket is full ({description})")
    if err_code in (JETSTREAM_NOT_ENABLED, JETSTREAM_NOT_ENABLED_ACCOUNT):
        return errors.StoreUnavailableError(f"{where}JetStream is not enabled ({description})")
    if code in (401, 403) or "authorization" in text or "permission" in text:
        return errors.AuthorizationError(f"{where}{description}")
    return errors.ApiError(code, err_code, f"{where}{description}")


def from_exception(exc: BaseException, *, context: str = "") -> errors.OsfsError:
    """The osfs error for an exception raised by nats-py."""
    where = f"{context}: " if context else ""
    if isinstance(exc, errors.OsfsError):
        return exc
    if isinstance(exc, nats.errors.NoRespondersError):
        return errors.StoreUnavailableError(
            f"{where}no responders: JetStream is not enabled or the stream is not available"
        )
    if isinstance(exc, (nats.errors.TimeoutError, asyncio.TimeoutError, TimeoutError)):
        return errors.StoreTimeoutError(f"{where}the server did not answer in time")
    if isinstance(exc, nats.errors.AuthorizationError):
        return errors.AuthorizationError(f"{where}authorization failed")
    if isinstance(
        exc,
        (
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionDrainingError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.NoServersError,
            nats.errors.StaleConnectionError,
            nats.errors.OutboundBufferLimitError,
            ConnectionError,
            OSError,
        ),
    ):
        return errors.StoreUnavailableError(f"{where}lost the connection to the NATS server")
    if isinstance(exc, nats.errors.Error):
        message = str(exc) or type(exc).__name__
        if "permissions violation" in message.lower():
            return errors.AuthorizationError(f"{where}{message}")
        return errors.OsfsError(f"{where}{message}")
    raise exc


@contextmanager
def translated(context: str = "") -> Iterator[None]:
    """Run a block of nats-py calls, turning their exceptions into osfs errors."""
    try:
        yield
    except errors.OsfsError:
        raise
    except (nats.errors.Error, TimeoutError, ConnectionError, OSError) as exc:
        raise from_exception(exc, context=context) from exc
