"""The one table from osfs errors to errno, and the guard every FUSE handler runs under.

Rules:
1. Only ``pyfuse3.FUSEError`` may leave a handler (anything else ends ``pyfuse3.main``), so every
   handler is wrapped by :func:`fuse_errors`: domain errors become their errno from
   :data:`ERRNO_TABLE`; an ``OSError`` (the local spool disk) keeps its own; anything
   unexpected is logged with its traceback and answered EIO, and the mount stays up.
2. The non-obvious choices are explained beside them.
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from osfs.core import errors

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: First match wins: subclasses come before their bases.
ERRNO_TABLE: tuple[tuple[type[errors.OsfsError], int], ...] = (
    # An open file whose version was replaced or deleted, once its cached chunks run out: the
    # handle is stale, as NFS says; reopening the name reads the new version.
    (errors.StaleVersionError, errno.ESTALE),
    # A listed name whose object vanished under us (another client deleted it): the kernel's
    # entry is stale. ENOENT makes it drop the entry; the watcher invalidates it too.
    (errors.ObjectNotFoundError, errno.ENOENT),
    (errors.UpdateMetaDeletedError, errno.ENOENT),
    (errors.BucketNotFoundError, errno.ENOENT),
    # Sealed buckets refuse every change: a read-only filesystem, as `mount -o ro` would say.
    (errors.BucketSealedError, errno.EROFS),
    (errors.BucketFullError, errno.ENOSPC),
    # A corrupt object must never read as good bytes: EIO, and the reader logs the details.
    (errors.DigestMismatchError, errno.EIO),
    (errors.BadObjectMetaError, errno.EIO),
    # The server is away: EIO rather than ETIMEDOUT, which programs do not expect from a file.
    (errors.StoreUnavailableError, errno.EIO),
    (errors.StoreTimeoutError, errno.EIO),
    (errors.AuthorizationError, errno.EACCES),
    (errors.ObjectAlreadyExistsError, errno.EEXIST),
    (errors.InvalidObjectNameError, errno.EINVAL),
    (errors.LinkIsABucketError, errno.EISDIR),
)


def errno_of(exc: errors.OsfsError) -> int:
    """The errno a domain error is answered with (EIO when the table has no entry)."""
    for kind, number in ERRNO_TABLE:
        if isinstance(exc, kind):
            return number
    return errno.EIO


def fuse_errors(
    handler: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Run a FUSE handler so that only ``FUSEError`` escapes it (see the module rules)."""

    @functools.wraps(handler)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await handler(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except errors.OsfsError as exc:
            number = errno_of(exc)
            level = logging.WARNING if number == errno.EIO else logging.DEBUG
            log.log(level, "%s: %s (answered %s)", handler.__name__, exc, errno.errorcode[number])
            raise pyfuse3.FUSEError(number) from exc
        except OSError as exc:
            # Local I/O (the spool disk): its own errno, so a full disk is ENOSPC.
            number = exc.errno or errno.EIO
            log.warning("%s: %s (answered %s)", handler.__name__, exc, errno.errorcode[number])
            raise pyfuse3.FUSEError(number) from exc
        except Exception:
            log.exception("%s failed unexpectedly; answered EIO", handler.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return guarded
