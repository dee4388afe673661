"""Authentication material for real nats-servers: nkeys, decentralized JWTs, creds files, TLS.

Each helper returns both sides: what the server's config needs (a config block for
``start_server(config_extra=...)``) and what a client passes (a password, a seed file, a
``.creds`` file, certificates). Everything is made fresh in the test, so no key or certificate
is checked in and none outlives the run.

Rules:
1. JWTs are made as nats-io/jwt (v2) makes them: base64url (no padding) of the header, the
   claims and the ed25519 signature of ``header.claims`` by the issuer's nkey; ``jti`` is the
   base32 (no padding) SHA-512/256 of the base claims (``iat iss name sub``) without ``jti``.
2. The account JWT enables JetStream (unlimited ``mem_storage``/``disk_storage``), or the user
   could connect but not create a bucket.
3. Certificates come from ``trustme``: a CA of the test's own, a server certificate for
   ``127.0.0.1`` and ``localhost``, and a client certificate for mutual TLS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys
import trustme

#: Account limits meaning "no limit" (-1), for plain messaging and for JetStream (rule 2).
#: ``wildcards`` is a boolean in jwt v2: a -1 there makes the server reject the account JWT.
_UNLIMITED_ACCOUNT: dict[str, int | bool] = {
    **dict.fromkeys(
        (
            "subs",
            "data",
            "payload",
            "imports",
            "exports",
            "conn",
            "leaf",
            "mem_storage",
            "disk_storage",
            "streams",
            "consumer",
        ),
        -1,
    ),
    "wildcards": True,
}


def _quote(value: str | Path) -> str:
    """A nats-server config string literal (JSON strings are accepted)."""
    return json.dumps(str(value))


# Nkeys ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NKey:
    """One ed25519 nkey: its seed (``S...``, secret) and public key (``O...``/``A...``/``U...``)."""

    seed: str
    public_key: str

    def sign(self, data: bytes) -> bytes:
        """The raw ed25519 signature of ``data``."""
        signature: bytes = nkeys.from_seed(bytearray(self.seed.encode())).sign(data)
        return signature

    def write_seed(self, path: Path) -> Path:
        """Write the seed alone to ``path`` (mode 0600), as ``--nkey`` expects; return it."""
        path.write_text(self.seed + "\n")
        path.chmod(0o600)
        return path


def new_nkey(prefix: int) -> NKey:
    """A fresh nkey of a role (``nkeys.PREFIX_BYTE_OPERATOR``, ``_ACCOUNT`` or ``_USER``)."""
    seed = nkeys.encode_seed(os.urandom(32), prefix).decode()
    public_key = nkeys.from_seed(bytearray(seed.encode())).public_key.decode()
    return NKey(seed=seed, public_key=public_key)


def nkey_config(public_key: str) -> str:
    """Server config admitting one user by its nkey (it signs the server's nonce)."""
    return f"authorization {{\n  users = [ {{ nkey: {_quote(public_key)} }} ]\n}}\n"


def user_password_config(user: str, password: str) -> str:
    """Server config admitting one user/password pair."""
    return f"authorization {{\n  user: {_quote(user)}\n  password: {_quote(password)}\n}}\n"


def token_config(token: str) -> str:
    """Server config admitting one token."""
    return f"authorization {{\n  token: {_quote(token)}\n}}\n"


# Decentralized JWT auth -------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode_jwt(issuer: NKey, subject: str, name: str, nats: dict[str, Any]) -> str:
    """A v2 NATS JWT about ``subject``, issued and signed by ``issuer`` (see rule 1)."""
    header = {"typ": "JWT", "alg": "ed25519-nkey"}
    base = {"iat": int(time.time()), "iss": issuer.public_key, "name": name, "sub": subject}
    compact = json.dumps(base, separators=(",", ":")).encode()
    jti = base64.b32encode(hashlib.new("sha512_256", compact).digest()).rstrip(b"=").decode()
    claims = {"jti": jti, **base, "nats": nats}
    signed = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    return f"{signed}.{_b64url(issuer.sign(signed.encode()))}"


def creds_text(user_jwt: str, user_seed: str) -> str:
    """A ``.creds`` file in the layout ``nsc`` writes (nats-py reads the line after each
    BEGIN marker)."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n"
        "\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n"
        "\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user_seed}\n"
        "------END USER NKEY SEED------\n"
        "\n"
        "*************************************************************\n"
    )


def account_jwt(operator: NKey, account: NKey, name: str) -> str:
    """An account JWT with JetStream enabled and no limits (rule 2)."""
    nats = {
        "limits": dict(_UNLIMITED_ACCOUNT),
        "default_permissions": {"pub": {}, "sub": {}},
        "type": "account",
        "version": 2,
    }
    return encode_jwt(operator, account.public_key, name, nats)


def user_jwt(account: NKey, user: NKey, name: str) -> str:
    """A user JWT of ``account`` with no limits and no permission restrictions."""
    nats = {
        "pub": {},
        "sub": {},
        "subs": -1,
        "data": -1,
        "payload": -1,
        "type": "user",
        "version": 2,
    }
    return encode_jwt(account, user.public_key, name, nats)


@dataclass(frozen=True)
class Decentralized:
    """An operator trusted by a server, one JetStream account, and a user of that account.

    Attributes:
        operator, account, user: the nkeys.
        operator_jwt, account_jwt, system_account_jwt, user_jwt: the signed JWTs.
        system_account: the system account the operator names (preloaded like the other).
    """

    operator: NKey
    account: NKey
    system_account: NKey
    user: NKey
    operator_jwt: str
    account_jwt: str
    system_account_jwt: str
    user_jwt: str

    def server_config(self) -> str:
        """Trust the operator; preload both accounts into the memory resolver."""
        return (
            f"operator: {_quote(self.operator_jwt)}\n"
            f"system_account: {_quote(self.system_account.public_key)}\n"
            "resolver: MEMORY\n"
            "resolver_preload: {\n"
            f"  {self.account.public_key}: {_quote(self.account_jwt)}\n"
            f"  {self.system_account.public_key}: {_quote(self.system_account_jwt)}\n"
            "}\n"
        )

    def creds(self) -> str:
        """The user's ``.creds`` text (JWT and seed)."""
        return creds_text(self.user_jwt, self.user.seed)

    def write_creds(self, path: Path) -> Path:
        """Write the user's ``.creds`` file (mode 0600); return its path."""
        path.write_text(self.creds())
        path.chmod(0o600)
        return path


def make_decentralized(name: str = "osfs-test") -> Decentralized:
    """A fresh operator, system account, JetStream account and user, all signed."""
    operator = new_nkey(nkeys.PREFIX_BYTE_OPERATOR)
    account = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    system_account = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    user = new_nkey(nkeys.PREFIX_BYTE_USER)
    operator_claims = {
        "type": "operator",
        "version": 2,
        "system_account": system_account.public_key,
    }
    system_claims = {
        "limits": dict.fromkeys(("subs", "data", "payload", "imports", "exports", "conn"), -1)
        | {"wildcards": True},
        "type": "account",
        "version": 2,
    }
    return Decentralized(
        operator=operator,
        account=account,
        system_account=system_account,
        user=user,
        operator_jwt=encode_jwt(operator, operator.public_key, name, operator_claims),
        account_jwt=account_jwt(operator, account, f"{name}-account"),
        system_account_jwt=encode_jwt(operator, system_account.public_key, "SYS", system_claims),
        user_jwt=user_jwt(account, user, f"{name}-user"),
    )


def stranger_creds(name: str = "stranger") -> str:
    """``.creds`` text of a user whose account and operator no test server trusts."""
    account = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)  # never signed by any operator
    user = new_nkey(nkeys.PREFIX_BYTE_USER)
    return creds_text(user_jwt(account, user, name), user.seed)


# TLS --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate signed by it, and a client certificate signed by it (PEM).

    Attributes:
        ca: the CA certificate (``--tlsca``, the server's ``ca_file``).
        server_cert, server_key: the server's chain and key, for ``127.0.0.1``/``localhost``.
        client_cert, client_key: the client's chain and key (``--tlscert``/``--tlskey``).
    """

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_config(self, *, verify: bool) -> str:
        """A ``tls`` block; with ``verify`` the server demands a client certificate (mTLS).

        The handshake timeout is 5 s, not the default fraction of a second: a busy test machine
        must not turn a slow handshake into a refusal.
        """
        lines = [
            f"  cert_file: {_quote(self.server_cert)}",
            f"  key_file: {_quote(self.server_key)}",
            f"  ca_file: {_quote(self.ca)}",
        ]
        if verify:
            lines.append("  verify: true")
        return "tls {\n" + "\n".join(lines) + "\n  timeout: 5\n}\n"


def make_tls(directory: Path) -> TlsFiles:
    """Make a fresh CA and its server and client certificates as files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("osfs-client.test")
    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server-cert.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client-cert.pem",
        client_key=directory / "client-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    server.private_key_pem.write_to_path(str(files.server_key))
    client.private_key_pem.write_to_path(str(files.client_key))
    for path, leaf in ((files.server_cert, server), (files.client_cert, client)):
        path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return files


def make_other_ca(path: Path) -> Path:
    """A CA certificate (file) that signed nothing a test server uses: the wrong ``--tlsca``."""
    trustme.CA().cert_pem.write_to_path(str(path))
    return path
