"""Connecting to NATS as NATS users do: URLs, user/password, token, creds, nkey, TLS, contexts.

``ConnectOptions`` is what the CLI and the mount collect from flags and the environment;
``open_connection`` turns it into a connected nats-py client, mapping failures to osfs errors.
Contexts are the ``nats`` CLI's JSON files under ``$XDG_CONFIG_HOME/nats/context/<name>.json``
(selected by ``--context``, ``NATS_CONTEXT``, or the CLI's ``context.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    extra: dict[str, str] = field(default_factory=dict)
