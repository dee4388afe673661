"""The files a connection is made with: TLS certificates, JWT creds, nkey seeds.

nats-py reads these only while connecting, and a bad one surfaced as a hang (a creds file
without a JWT looped for ever), a ``TypeError``, or "cannot connect": each is checked here
first, so the user gets one line naming the file.

Rules:
1. A message names the file and what is wrong with it, never its content (a seed is a secret).
2. Only the layout nats-py reads is checked (the JWT on the line after its BEGIN marker, the
   seed after its own); the server judges whether the credentials are any good.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import nkeys

from osfs.core import errors

if TYPE_CHECKING:
    from osfs.store.connection import ConnectOptions


def tls_context(options: ConnectOptions) -> ssl.SSLContext | None:
    """The TLS context the files in ``options`` make, or None when none is named.

    Raises:
        InvalidOptionError: a file is missing, unreadable, or not PEM (named in the message).
    """
    if not (options.tls_ca or options.tls_cert or options.tls_key):
        return None
    if options.tls_key and not options.tls_cert:
        raise errors.InvalidOptionError("a TLS key (--tlskey) needs its certificate (--tlscert)")
    try:
        context = ssl.create_default_context(cafile=options.tls_ca)
    except OSError as exc:  # ssl.SSLError is one
        raise errors.InvalidOptionError(
            f"cannot use the TLS CA file {options.tls_ca}: {_file_problem(exc)}"
        ) from None
    if options.tls_cert:
        try:
            context.load_cert_chain(options.tls_cert, options.tls_key)
        except OSError as exc:
            files = options.tls_cert + (f" (key {options.tls_key})" if options.tls_key else "")
            raise errors.InvalidOptionError(
                f"cannot use the TLS client certificate {files}: {_file_problem(exc)}"
            ) from None
    return context


def _file_problem(exc: OSError) -> str:
    """Why a local file could not be used, never quoting its content."""
    if isinstance(exc, ssl.SSLError):
        return describe_error(exc)
    return exc.strerror or type(exc).__name__


def check_credential_files(options: ConnectOptions) -> None:
    """Check the ``--creds`` and ``--nkey`` files before nats-py reads them.

    nats-py reads them only while connecting: a missing one looked like an unreachable server,
    a malformed one failed with a ``TypeError`` or an nkeys error, and a creds file with no JWT
    block made it loop for ever. Check the layout nats-py reads instead: the JWT on the line
    right after ``BEGIN NATS USER JWT``, the seed right after ``BEGIN USER NKEY SEED``.

    Raises:
        InvalidOptionError: the file named in the message is missing, unreadable or malformed
            (its content is never quoted).
    """
    if options.creds is not None:
        lines = _read_lines(options.creds, "credentials file")
        jwt = _line_after(lines, "BEGIN NATS USER JWT")
        if not jwt or jwt.count(".") != 2:
            raise errors.InvalidOptionError(
                f"the credentials file {options.creds} holds no user JWT "
                "(a -----BEGIN NATS USER JWT----- block)"
            )
        if not _is_seed(_line_after(lines, "BEGIN USER NKEY SEED")):
            raise errors.InvalidOptionError(
                f"the credentials file {options.creds} holds no valid nkey seed "
                "(a -----BEGIN USER NKEY SEED----- block)"
            )
    if options.nkey is not None:
        lines = [line.strip() for line in _read_lines(options.nkey, "nkey seed file")]
        if not _is_seed("".join(lines)):
            raise errors.InvalidOptionError(
                f"the nkey seed file {options.nkey} holds no valid nkey seed"
            )


def _read_lines(path: str, what: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().splitlines()
    except OSError as exc:
        raise errors.InvalidOptionError(
            f"cannot read the {what} {path}: {_file_problem(exc)}"
        ) from None
    except UnicodeDecodeError:
        raise errors.InvalidOptionError(f"the {what} {path} is not a text file") from None


def _line_after(lines: list[str], marker: str) -> str | None:
    """The stripped line right after the first line holding ``marker`` (None: no such line)."""
    for index, line in enumerate(lines):
        if marker in line:
            return lines[index + 1].strip() if index + 1 < len(lines) else ""
    return None


def _is_seed(text: str | None) -> bool:
    if not text:
        return False
    try:
        nkeys.from_seed(bytearray(text.encode()))
    except (nkeys.NkeysError, ValueError):
        return False
    return True


def describe_error(exc: BaseException) -> str:
    """A short reason for ``exc``: its text, or its class name when it has none."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"TLS: {exc.reason.replace('_', ' ').lower()}"
    return str(exc) or type(exc).__name__
