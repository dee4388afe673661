"""What went wrong, as the user sees it: one ``osfs: error:`` line and an exit status.

Rules:
1. Every exit status ``osfs`` returns is in :data:`EXIT_CODES` (``osfs --help`` prints it, the
   README documents it); a script can tell "not found" from "no server" by the status alone.
2. A failure is one line, ``osfs: error: <what> (<hint>)``, never a traceback; ``OSFS_DEBUG=1``
   adds the traceback for bug reports.
3. Secrets never appear: errors name buckets, objects and files, never credentials.
No I/O here: only classifying exceptions and wording the line.
"""

from __future__ import annotations

from collections.abc import Mapping

from osfs.core import errors

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_EXISTS = 4
EXIT_UNAVAILABLE = 5
EXIT_READ_ONLY = 6
EXIT_CORRUPT = 7
EXIT_AUTH = 8
EXIT_MOUNT = 9
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Every exit status ``osfs`` returns, and what it means (also printed by ``osfs --help``).
EXIT_CODES: Mapping[int, str] = {
    EXIT_OK: "success",
    EXIT_ERROR: "error (anything not listed below)",
    EXIT_USAGE: "usage error: bad arguments, invalid bucket or object name, missing --force",
    EXIT_NOT_FOUND: "bucket or object not found",
    EXIT_EXISTS: "already exists (bucket with another configuration, object name taken)",
    EXIT_UNAVAILABLE: "no server: unreachable, JetStream off, or no answer in time",
    EXIT_READ_ONLY: "the bucket is sealed (read-only)",
    EXIT_CORRUPT: "corrupt object: digest mismatch or unreadable meta document",
    EXIT_AUTH: "authentication or permission refused",
    EXIT_MOUNT: "mount failed: mountpoint missing/not empty/already mounted, FUSE unavailable",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); 'osfs watch' exits 0 instead",
    EXIT_BROKEN_PIPE: "stdout was closed early (e.g. piped into head)",
}

#: Exit status and hint per error class; the first class that matches wins, so subclasses
#: come before their bases. ``{bucket}`` is replaced by the bucket argument.
_ERROR_TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (errors.BucketNotFoundError, EXIT_NOT_FOUND, "list buckets with 'osfs ls'"),
    (errors.NoObjectsFoundError, EXIT_NOT_FOUND, "the bucket is empty"),
    (errors.ObjectNotFoundError, EXIT_NOT_FOUND, "list objects with 'osfs ls {bucket}'"),
    (errors.UpdateMetaDeletedError, EXIT_NOT_FOUND, "list objects with 'osfs ls {bucket}'"),
    (errors.BucketExistsError, EXIT_EXISTS, "'osfs info {bucket}' shows its configuration"),
    (errors.ObjectAlreadyExistsError, EXIT_EXISTS, "remove it first or pick another name"),
    (errors.TlsHandshakeError, EXIT_UNAVAILABLE, "check --tlsca, --tlscert and --tlskey"),
    (errors.StoreUnavailableError, EXIT_UNAVAILABLE, "is the server up? see 'osfs status'"),
    (errors.StoreTimeoutError, EXIT_UNAVAILABLE, "the server is slow or busy; try --timeout"),
    (errors.BucketSealedError, EXIT_READ_ONLY, "a sealed bucket stays read-only"),
    (errors.DigestMismatchError, EXIT_CORRUPT, "the stored object is damaged; put it again"),
    (errors.InvalidDigestFormatError, EXIT_CORRUPT, "the object's meta document is damaged"),
    (errors.BadObjectMetaError, EXIT_CORRUPT, "the object's meta document is damaged"),
    (
        errors.AuthorizationError,
        EXIT_AUTH,
        "check --user/--password, --token, --creds, --nkey or --tlscert",
    ),
    (errors.InvalidBucketNameError, EXIT_USAGE, "see 'osfs --help'"),
    (errors.InvalidObjectNameError, EXIT_USAGE, "see 'osfs --help'"),
    (errors.InvalidOptionError, EXIT_USAGE, "see 'osfs --help'"),
    # A MountError's message already says what to do (mkdir, unmount first, --lazy, ...).
    (errors.MountError, EXIT_MOUNT, ""),
    (errors.BucketFullError, EXIT_ERROR, "delete objects, or use a bucket with more --max-bytes"),
    (errors.LinkIsABucketError, EXIT_ERROR, "list that bucket with 'osfs ls'"),
    (errors.NoLinkToLinkError, EXIT_ERROR, "link to the object the link points at"),
    (errors.NoLinkToDeletedError, EXIT_ERROR, "the target was deleted"),
    (errors.OsfsError, EXIT_ERROR, ""),
)

#: Set to anything to print the traceback after the error line.
DEBUG_ENV = "OSFS_DEBUG"


class CommandError(Exception):
    """A failure the CLI itself detects (local files, confirmations, argument combinations)."""

    def __init__(self, message: str, *, code: int = EXIT_ERROR, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


def exit_code_for(exc: BaseException) -> int:
    """The exit status for an exception (see :data:`EXIT_CODES`)."""
    if isinstance(exc, CommandError):
        return exc.code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for kind, code, _ in _ERROR_TABLE:
        if isinstance(exc, kind):
            return code
    return EXIT_ERROR


def error_line(exc: BaseException, *, bucket: str | None = None) -> str:
    """The one line ``osfs`` prints for ``exc``: ``osfs: error: <what> (<hint>)``."""
    hint = ""
    if isinstance(exc, CommandError):
        what, hint = str(exc), exc.hint
    elif isinstance(exc, errors.OsfsError):
        what = first_line(exc) or type(exc).__name__
        hint = next((text for kind, _, text in _ERROR_TABLE if isinstance(exc, kind)), "")
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        what = f"{where}{exc.strerror or first_line(exc) or type(exc).__name__}"
    else:
        what = f"unexpected {type(exc).__name__}: {first_line(exc)}"
        hint = f"a bug in osfs; {DEBUG_ENV}=1 shows the traceback"
    if "{bucket}" in hint:
        hint = hint.replace("{bucket}", bucket) if bucket else ""
    return f"osfs: error: {what}" + (f" ({hint})" if hint else "")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
