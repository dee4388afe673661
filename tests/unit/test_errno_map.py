"""The one errno table and the guard every FUSE handler runs under (osfs/fs/errno_map.py)."""

from __future__ import annotations

import errno
import logging

import pyfuse3
import pytest

from osfs.core import errors
from osfs.fs.errno_map import ERRNO_TABLE, errno_of, fuse_errors


@pytest.mark.parametrize(
    ("error", "number"),
    [
        (errors.StaleVersionError("gone"), errno.ESTALE),
        (errors.ObjectNotFoundError("gone"), errno.ENOENT),
        (errors.BucketSealedError("sealed"), errno.EROFS),
        (errors.BucketFullError("full"), errno.ENOSPC),
        (errors.DigestMismatchError("corrupt"), errno.EIO),
        (errors.StoreUnavailableError("down"), errno.EIO),
        (errors.AuthorizationError("no"), errno.EACCES),
        (errors.OsfsError("anything else"), errno.EIO),
    ],
)
def test_errno_of(error: errors.OsfsError, number: int) -> None:
    assert errno_of(error) == number


def test_subclasses_come_before_their_bases() -> None:
    kinds = [kind for kind, _ in ERRNO_TABLE]
    for position, kind in enumerate(kinds):
        for later in kinds[position + 1 :]:
            assert not issubclass(later, kind), f"{later.__name__} is shadowed by {kind.__name__}"


async def test_domain_errors_become_their_errno() -> None:
    @fuse_errors
    async def handler() -> None:
        raise errors.StaleVersionError("the version is gone")

    with pytest.raises(pyfuse3.FUSEError) as raised:
        await handler()
    assert raised.value.errno == errno.ESTALE


async def test_fuse_errors_pass_through() -> None:
    @fuse_errors
    async def handler() -> None:
        raise pyfuse3.FUSEError(errno.ENOTDIR)

    with pytest.raises(pyfuse3.FUSEError) as raised:
        await handler()
    assert raised.value.errno == errno.ENOTDIR


async def test_an_unexpected_exception_is_logged_and_answered_eio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table: dict[str, int] = {}

    @fuse_errors
    async def getattr_handler() -> int:
        return table["missing"]  # a bug in a handler: KeyError

    with caplog.at_level(logging.ERROR), pytest.raises(pyfuse3.FUSEError) as raised:
        await getattr_handler()
    assert raised.value.errno == errno.EIO
    [record] = caplog.records
    assert "getattr_handler failed unexpectedly" in record.getMessage()
    assert record.exc_info is not None  # the traceback is in the log


async def test_results_pass_unchanged() -> None:
    @fuse_errors
    async def handler(value: int) -> int:
        return value * 2

    assert await handler(21) == 42
