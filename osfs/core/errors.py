"""The osfs error hierarchy: one exception per condition the Object Store API can report.

Rules:
1. Every error a caller can act on has its own class; the class names follow nats.go's
   ``Err*`` values (``jetstream/errors.go``) so users of other clients recognise them.
2. No nats-py type ever escapes ``osfs.store``: adapters raise these ``from`` the original.
3. Pure: this module imports nothing but the standard library.
"""

from __future__ import annotations


class OsfsError(Exception):
    """Base class of every error osfs raises on purpose."""


class InvalidBucketNameError(OsfsError, ValueError):
    """The bucket name is not 1+ of ``A-Z a-z 0-9 _ -`` (nats.go ``ErrInvalidStoreName``)."""


class InvalidObjectNameError(OsfsError, ValueError):
    """The object name is empty or cannot be encoded (nats.go ``ErrNameRequired``)."""


class InvalidOptionError(OsfsError, ValueError):
    """Options that contradict each other (nats.go ``ErrInvalidOption``)."""


class BucketNotFoundError(OsfsError):
    """No Object Store bucket of that name (nats.go ``ErrBucketNotFound``)."""


class BucketExistsError(OsfsError):
    """A bucket of that name exists with another configuration (nats.go ``ErrBucketExists``)."""


class ObjectNotFoundError(OsfsError):
    """No live object of that name (nats.go ``ErrObjectNotFound``)."""


class StaleVersionError(ObjectNotFoundError):
    """The version an open file pinned is gone: the object was replaced or deleted meanwhile.

    The name may still exist with other content; the filesystem answers ESTALE, like NFS.
    """


class NoObjectsFoundError(ObjectNotFoundError):
    """A listing found nothing (nats.go ``ErrNoObjectsFound``)."""


class ObjectAlreadyExistsError(OsfsError):
    """The target name is taken (rename onto a live object, link onto an object)."""


class BadObjectMetaError(OsfsError):
    """A meta document that cannot be used (unparsable, or no nuid where one is needed)."""


class DigestMismatchError(OsfsError):
    """The bytes read do not hash to the stored SHA-256 digest: the object is corrupt."""


class InvalidDigestFormatError(OsfsError):
    """The stored digest is not ``SHA-256=<base64 or hex>``."""


class LinkNotAllowedError(OsfsError):
    """A put carried link options; links are made with ``add_link`` / ``add_bucket_link``."""


class NoLinkToDeletedError(OsfsError):
    """``add_link`` to a deleted object."""


class NoLinkToLinkError(OsfsError):
    """``add_link`` to an object that is itself a link."""


class ObjectRequiredError(OsfsError):
    """``add_link`` without a target object."""


class BucketRequiredError(OsfsError):
    """``add_bucket_link`` without a target bucket."""


class LinkIsABucketError(OsfsError):
    """The object is a link to a whole bucket; it has no content (nats.go ``ErrCantGetBucket``)."""


class UpdateMetaDeletedError(OsfsError):
    """``update_meta`` on a deleted or missing object (nats.go ``ErrUpdateMetaDeleted``)."""


class BucketSealedError(OsfsError):
    """The bucket is sealed: reads work, every change is refused (server error 10109)."""


class BucketFullError(OsfsError):
    """The bucket's ``max_bytes`` (or the account's storage) is exhausted."""


class StoreUnavailableError(OsfsError):
    """No NATS server answered (down, unreachable, or JetStream not enabled)."""


class TlsHandshakeError(StoreUnavailableError):
    """The TLS handshake failed: the server's certificate is not trusted, or ours refused."""


class StoreTimeoutError(OsfsError):
    """A request got no answer in time."""


class AuthorizationError(OsfsError):
    """The server refused the credentials, or the user may not use that subject."""


class ApiError(OsfsError):
    """A JetStream API error with no more specific class.

    Attributes:
        code: the HTTP-like status code (400, 404, 503, ...).
        err_code: the JetStream error code (10037, 10077, ...), 0 when unknown.
        description: the server's text.
    """

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(f"{description} (status {code}, error {err_code})")
        self.code = code
        self.err_code = err_code
        self.description = description


class MountError(OsfsError):
    """The mount cannot start: bad mountpoint, already mounted, FUSE unavailable."""
