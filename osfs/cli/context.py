"""Where osfs connects: flags, then ``NATS_*`` environment variables, then a nats CLI context.

People who already use the ``nats`` CLI keep their servers and credentials in *contexts*: JSON files
at ``$XDG_CONFIG_HOME/nats/context/<name>.json`` (default ``~/.config/nats/context/``), with the
selected name in ``$XDG_CONFIG_HOME/nats/context.txt``. Reading the same files lets osfs talk to the
same server without repeating anything.

Rules:
1. Each setting is taken from the first source that has it: flag > environment > context.
2. A server is *named* when any source gives a URL; otherwise the caller uses the embedded server
   (``ConnectionPlan.embedded``), still with whatever credentials were given.
3. Secrets never leave this module in printable form: :func:`display_url` strips credentials,
   :class:`ConnectionPlan` describes its source without them, and :func:`secrets_moved_to_env`
   keeps them off the background mount's command line.
Only the standard library and ``ConnectOptions``; the one I/O is reading the context files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from osfs.core.errors import InvalidOptionError
from osfs.store.connection import ConnectOptions

#: Context names the nats CLI accepts; anything else could escape the context directory.
_CONTEXT_NAME_RE = re.compile(r"[A-Za-z0-9_.@-]+")

#: Environment variables read for each setting (the names the nats CLI reads).
ENV_VARS: Mapping[str, str] = {
    "servers": "NATS_URL",
    "user": "NATS_USER",
    "password": "NATS_PASSWORD",
    "token": "NATS_TOKEN",
    "creds": "NATS_CREDS",
    "nkey": "NATS_NKEY",
    "tls_ca": "NATS_CA",
    "tls_cert": "NATS_CERT",
    "tls_key": "NATS_KEY",
}
CONTEXT_ENV = "NATS_CONTEXT"

#: Context file keys for each setting (natscontext's JSON field names).
_CONTEXT_KEYS: Mapping[str, str] = {
    "servers": "url",
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey",
    "tls_ca": "ca",
    "tls_cert": "cert",
    "tls_key": "key",
}
_PATH_SETTINGS = frozenset({"creds", "nkey", "tls_ca", "tls_cert", "tls_key"})


@dataclass(frozen=True, slots=True)
class ConnectFlags:
    """The connection settings given on the command line (None: not given)."""

    servers: tuple[str, ...] = ()
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    context: str | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class NatsContext:
    """One nats CLI context file, reduced to the settings osfs uses."""

    name: str
    path: Path
    settings: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    """Where and how to connect, and where that came from (for ``osfs status``).

    Attributes:
        options: what to pass to ``open_connection`` (servers empty when ``embedded``).
        embedded: no server was named: start or reuse the embedded server.
        source: a printable description of where the URL came from.
        context: the nats context that was read, if any.
    """

    options: ConnectOptions
    embedded: bool
    source: str
    context: str | None = None


def config_home(env: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME`` or ``~/.config``, as the nats CLI resolves it."""
    configured = env.get("XDG_CONFIG_HOME", "")
    if configured:
        return Path(configured)
    return Path(env.get("HOME") or Path.home()) / ".config"


def selected_context_name(env: Mapping[str, str]) -> str | None:
    """The context ``nats context select`` chose, or None when none is selected."""
    marker = config_home(env) / "nats" / "context.txt"
    try:
        name = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidOptionError(f"cannot read {marker}: {exc.strerror}") from exc
    return name or None


def load_context(name: str, env: Mapping[str, str]) -> NatsContext:
    """Read the context file called ``name``.

    Raises:
        InvalidOptionError: a bad name, a missing or unreadable file, or a file that is not a
            JSON object.
    """
    if not _CONTEXT_NAME_RE.fullmatch(name) or name in (".", ".."):
        raise InvalidOptionError(f"invalid nats context name {name!r}")
    path = config_home(env) / "nats" / "context" / f"{name}.json"
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidOptionError(f"nats context {name!r} not found at {path}") from exc
    except OSError as exc:
        raise InvalidOptionError(f"cannot read nats context {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InvalidOptionError(f"nats context {path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidOptionError(f"nats context {path} is not a JSON object")
    settings: dict[str, str] = {}
    for setting, key in _CONTEXT_KEYS.items():
        value = document.get(key)
        if isinstance(value, str) and value.strip():
            settings[setting] = value.strip()
    return NatsContext(name=name, path=path, settings=settings)


def resolve(flags: ConnectFlags, env: Mapping[str, str]) -> ConnectionPlan:
    """Merge flags, environment and the nats context into one plan (flag > env > context).

    Raises:
        InvalidOptionError: the chosen context cannot be read.
    """
    context_name = flags.context or env.get(CONTEXT_ENV) or selected_context_name(env)
    context = load_context(context_name, env) if context_name else None
    from_flags: dict[str, str | None] = {
        "servers": ",".join(flags.servers) or None,
        "user": flags.user,
        "password": flags.password,
        "token": flags.token,
        "creds": flags.creds,
        "nkey": flags.nkey,
        "tls_ca": flags.tls_ca,
        "tls_cert": flags.tls_cert,
        "tls_key": flags.tls_key,
    }
    chosen: dict[str, str] = {}
    origin: dict[str, str] = {}
    for setting, flag_value in from_flags.items():
        env_value = env.get(ENV_VARS[setting]) or None
        context_value = context.settings.get(setting) if context else None
        for value, where in (
            (flag_value, "flag"),
            (env_value, f"environment ({ENV_VARS[setting]})"),
            (context_value, f"nats context {context_name!r}"),
        ):
            if value:
                chosen[setting] = value
                origin[setting] = where
                break
    for setting in _PATH_SETTINGS & chosen.keys():
        chosen[setting] = os.path.expanduser(chosen[setting])
    servers = split_servers(chosen.pop("servers", ""))
    options = ConnectOptions(
        servers=servers,
        user=chosen.get("user"),
        password=chosen.get("password"),
        token=chosen.get("token"),
        creds=chosen.get("creds"),
        nkey=chosen.get("nkey"),
        tls_ca=chosen.get("tls_ca"),
        tls_cert=chosen.get("tls_cert"),
        tls_key=chosen.get("tls_key"),
        connect_timeout=flags.timeout,
        request_timeout=flags.timeout,
    )
    return ConnectionPlan(
        options=options,
        embedded=not servers,
        source=origin.get("servers", "embedded server (no server named)"),
        context=context.name if context else None,
    )


def split_servers(text: str) -> tuple[str, ...]:
    """``"a, b,c"`` -> ``("a", "b", "c")``: the nats CLI's comma-separated URL list."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def display_url(url: str) -> str:
    """``url`` without user, password or token, safe to print."""
    try:
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _has_credentials(url: str) -> bool:
    """Whether ``url`` carries a user, password or token (``nats://user:pass@host``)."""
    return "@" in url.partition("://")[2].partition("/")[0]


#: Options whose values are secrets, and the variable that carries each to a child process.
_SECRET_OPTIONS: Mapping[str, str] = {"--password": "NATS_PASSWORD", "--token": "NATS_TOKEN"}
_SERVER_OPTIONS = ("--server", "-s")


def secrets_moved_to_env(
    argv: Sequence[str], flags: ConnectFlags
) -> tuple[list[str], dict[str, str]]:
    """``argv`` without the secrets given as flags, and the environment that carries them instead.

    The background mount re-runs its own arguments in a long-lived child, and any user can read a
    process's arguments (``ps``), while its environment is readable only by its owner and root.
    Flags win over the environment (rule 1), so a flag moved into its variable means the same.
    Server URLs move only when one of them holds credentials; then they all move, since one
    ``--server`` left behind would hide ``NATS_URL``. Needs exact option names: the parser
    allows no abbreviations.
    """
    moving = dict(_SECRET_OPTIONS)
    env: dict[str, str] = {}
    if flags.password is not None:
        env["NATS_PASSWORD"] = flags.password
    if flags.token is not None:
        env["NATS_TOKEN"] = flags.token
    if any(_has_credentials(url) for url in flags.servers):
        env["NATS_URL"] = ",".join(flags.servers)
        moving.update(dict.fromkeys(_SERVER_OPTIONS, "NATS_URL"))
    kept: list[str] = []
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            kept.append(token)
            kept.extend(tokens)
            break
        name = token.partition("=")[0]
        if token in moving:
            next(tokens, None)  # and its value
        elif name in moving and name.startswith("--"):
            pass  # --password=VALUE
        elif "-s" in moving and token.startswith("-s") and not token.startswith("--"):
            pass  # -sURL
        else:
            kept.append(token)
    return kept, env
