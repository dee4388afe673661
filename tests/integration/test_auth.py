"""NATS authentication end to end: the real CLI and a real mount against servers that demand it.

One real nats-server per method (user/password, token, nkey, decentralized JWT ``.creds``,
server-only TLS, mutual TLS), each started once for the module, with key material made in the
test (``tests.support.nats_auth``). For each method the tests check what a user would: the right
credentials work as flags and as ``NATS_*`` variables, wrong or missing ones are refused with the
right exit status and one ``osfs: error:`` line that never shows the secret, and a mount works.

Exit statuses: a server refusing the credentials is 8 (auth). A TLS failure is 5 (unavailable):
with the wrong CA osfs cannot trust the server, and a mutual-TLS server that gets no client
certificate ends the connection after the handshake, which nats-py reports as the "certificate
required" alert or only as a lost connection: either way osfs says that the server wants a
client certificate. A credentials, nkey or TLS file osfs cannot use is 2 (usage), and the error
names the file.

Rules: the conftest's, and
1. Every run goes through ``python -m osfs`` with a clean environment: no ``NATS_*`` variables
   (unless the test sets them), ``XDG_CONFIG_HOME`` and ``OSFS_DATA_DIR`` under the test's
   ``tmp_path``, so neither the developer's nats contexts nor their embedded server leak in.
   Every run names a server, so no embedded server is ever started.
2. Secrets are random per run and searched for in everything osfs prints and logs.
3. Waits have deadlines (subprocess timeouts, ``mounted``'s), never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nkeys
import pytest

from osfs.cli.failures import EXIT_AUTH, EXIT_UNAVAILABLE, EXIT_USAGE
from tests.support import nats_auth
from tests.support.cli import Osfs, Result, isolated_env, run_osfs
from tests.support.mounting import mounted, read_file, run_io
from tests.support.nats_server import NatsServer, start_server

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 30.0
"""Seconds one CLI run may take (a run that hangs on a bad file fails here, not at pytest's)."""


# Running the CLI --------------------------------------------------------------------------------


@pytest.fixture
def osfs(tmp_path: Path) -> Osfs:
    """Run ``python -m osfs ARGV...`` with a clean environment plus ``env``."""

    def run(*argv: str, env: Mapping[str, str] | None = None, stdin: bytes = b"") -> Result:
        return run_osfs(
            *argv, env=isolated_env(tmp_path, env), cwd=tmp_path, stdin=stdin, timeout=RUN_TIMEOUT
        )

    return run


def _ok(result: Result) -> Result:
    """A successful run: exit 0 and nothing at all on stderr (no warning, no note)."""
    assert result.code == 0, f"exit {result.code}: {result.stderr}"
    assert result.stderr == "", result.stderr
    return result


# Key material and servers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """Every credential the module's servers and clients use, made fresh for this run."""

    user: str
    password: str
    token: str
    nkey: nats_auth.NKey
    nkey_file: Path
    other_nkey: nats_auth.NKey
    other_nkey_file: Path
    jwt: nats_auth.Decentralized
    creds: Path
    stranger_creds: Path
    tls: nats_auth.TlsFiles
    other_ca: Path

    @property
    def client_key_secret(self) -> str:
        """A line of the client's private key (it must never be printed)."""
        return self.tls.client_key.read_text().splitlines()[1]


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    """Keys, JWTs, creds and certificates, made once for the module's servers and clients."""
    directory = tmp_path_factory.mktemp("auth-material")
    nkey = nats_auth.new_nkey(nkeys.PREFIX_BYTE_USER)
    other_nkey = nats_auth.new_nkey(nkeys.PREFIX_BYTE_USER)
    jwt = nats_auth.make_decentralized()
    stranger = directory / "stranger.creds"
    stranger.write_text(nats_auth.stranger_creds())
    return Material(
        user="alice",
        password=f"pw-{secrets.token_hex(12)}",
        token=f"tok-{secrets.token_hex(12)}",
        nkey=nkey,
        nkey_file=nkey.write_seed(directory / "user.nk"),
        other_nkey=other_nkey,
        other_nkey_file=other_nkey.write_seed(directory / "other.nk"),
        jwt=jwt,
        creds=jwt.write_creds(directory / "user.creds"),
        stranger_creds=stranger,
        tls=nats_auth.make_tls(directory / "tls"),
        other_ca=nats_auth.make_other_ca(directory / "other-ca.pem"),
    )


@dataclass(frozen=True)
class Refusal:
    """A run with wrong or missing credentials, and how osfs must answer it."""

    why: str
    flags: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    code: int = EXIT_AUTH
    says: str = "refused the credentials"


@dataclass(frozen=True)
class Method:
    """One way to authenticate: the server's config, and the client's side of it.

    Attributes:
        config: the server config block.
        flags: the right credentials as command-line flags.
        env: the right credentials as ``NATS_*`` variables (``NATS_URL`` is added by the test).
        scheme: the URL scheme to name the server with in ``NATS_URL``.
        refusals: wrong or missing credentials.
        secrets: values that must never be printed or logged.
    """

    config: str
    flags: tuple[str, ...]
    env: Mapping[str, str]
    refusals: tuple[Refusal, ...]
    secrets: tuple[str, ...]
    scheme: str = "nats"


#: What osfs says when the server's certificate is not signed by a CA it trusts.
NOT_TRUSTED = "TLS: certificate verify failed"


def _methods(m: Material) -> dict[str, Method]:
    tls = m.tls
    client_flags = ("--tlscert", str(tls.client_cert), "--tlskey", str(tls.client_key))
    not_trusted = NOT_TRUSTED
    return {
        "user-password": Method(
            config=nats_auth.user_password_config(m.user, m.password),
            flags=("--user", m.user, "--password", m.password),
            env={"NATS_USER": m.user, "NATS_PASSWORD": m.password},
            refusals=(
                Refusal("wrong password", flags=("--user", m.user, "--password", "x" + m.password)),
                Refusal("wrong NATS_PASSWORD", env={"NATS_USER": m.user, "NATS_PASSWORD": "nope"}),
                Refusal("no credentials"),
            ),
            secrets=(m.password,),
        ),
        "token": Method(
            config=nats_auth.token_config(m.token),
            flags=("--token", m.token),
            env={"NATS_TOKEN": m.token},
            refusals=(
                Refusal("wrong token", env={"NATS_TOKEN": "x" + m.token}),
                Refusal("no credentials"),
            ),
            secrets=(m.token,),
        ),
        "nkey": Method(
            config=nats_auth.nkey_config(m.nkey.public_key),
            flags=("--nkey", str(m.nkey_file)),
            env={"NATS_NKEY": str(m.nkey_file)},
            refusals=(
                Refusal("another user's seed", flags=("--nkey", str(m.other_nkey_file))),
                Refusal("no credentials"),
            ),
            secrets=(m.nkey.seed, m.other_nkey.seed),
        ),
        "creds": Method(
            config=m.jwt.server_config(),
            flags=("--creds", str(m.creds)),
            env={"NATS_CREDS": str(m.creds)},
            refusals=(
                Refusal("a user of an unknown account", flags=("--creds", str(m.stranger_creds))),
                Refusal("no credentials"),
            ),
            secrets=(m.jwt.user.seed,),
        ),
        "tls": Method(
            config=tls.server_config(verify=False),
            flags=("--tlsca", str(tls.ca)),
            env={"NATS_CA": str(tls.ca)},
            scheme="tls",
            refusals=(
                Refusal(
                    "another CA",
                    ("--tlsca", str(m.other_ca)),
                    code=EXIT_UNAVAILABLE,
                    says=not_trusted,
                ),
                Refusal("the system CAs only", code=EXIT_UNAVAILABLE, says=not_trusted),
            ),
            secrets=(),
        ),
        "mutual-tls": Method(
            config=tls.server_config(verify=True),
            flags=("--tlsca", str(tls.ca), *client_flags),
            env={
                "NATS_CA": str(tls.ca),
                "NATS_CERT": str(tls.client_cert),
                "NATS_KEY": str(tls.client_key),
            },
            scheme="tls",
            refusals=(
                Refusal(
                    "another CA",
                    ("--tlsca", str(m.other_ca), *client_flags),
                    code=EXIT_UNAVAILABLE,
                    says=not_trusted,
                ),
                # The alert, or only a lost connection (see the module docstring).
                Refusal(
                    "no client certificate",
                    ("--tlsca", str(tls.ca)),
                    code=EXIT_UNAVAILABLE,
                    says="client certificate, and none was given",
                ),
            ),
            secrets=(m.client_key_secret,),
        ),
    }


@dataclass(frozen=True)
class Served:
    """A method and the server that demands it."""

    name: str
    method: Method
    server: NatsServer

    @property
    def url(self) -> str:
        return self.server.url

    def env_url(self) -> str:
        """The server's URL with the method's scheme (``tls://`` for the TLS servers)."""
        return f"{self.method.scheme}://127.0.0.1:{self.server.port}"

    def assert_no_secret(self, text: str) -> None:
        for secret in self.method.secrets:
            assert secret not in text, f"a {self.name} secret was printed:\n{text}"


METHODS = ("user-password", "token", "nkey", "creds", "tls", "mutual-tls")


@pytest.fixture(scope="module", params=METHODS)
def served(
    request: pytest.FixtureRequest, material: Material, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One server per method, started once for the module."""
    name: str = request.param
    method = _methods(material)[name]
    server = start_server(tmp_path_factory.mktemp(f"nats-{name}"), config_extra=method.config)
    try:
        yield Served(name, method, server)
    finally:
        server.stop()


def _round_trip(
    osfs: Osfs, args: tuple[str, ...], env: Mapping[str, str], bucket: str, tmp_path: Path
) -> None:
    """``add``, ``put`` of a file, ``get`` of it: the bytes come back."""
    payload = secrets.token_bytes(3000)
    (tmp_path / "data.bin").write_bytes(payload)
    _ok(osfs(*args, "add", bucket, env=env))
    _ok(osfs(*args, "-q", "put", bucket, "data.bin", env=env))
    assert _ok(osfs(*args, "get", bucket, "data.bin", env=env)).stdout == payload


# The CLI ----------------------------------------------------------------------------------------


def test_flags_round_trip(served: Served, osfs: Osfs, bucket_name: str, tmp_path: Path) -> None:
    _round_trip(osfs, ("--server", served.url, *served.method.flags), {}, bucket_name, tmp_path)


def test_environment_round_trip(
    served: Served, osfs: Osfs, bucket_name: str, tmp_path: Path
) -> None:
    env = {"NATS_URL": served.env_url(), **served.method.env}
    _round_trip(osfs, (), env, bucket_name, tmp_path)
    listing = _ok(osfs("--json", "ls", bucket_name, env=env)).json()
    assert [entry["name"] for entry in listing] == ["data.bin"]


def test_wrong_or_missing_credentials_are_refused(served: Served, osfs: Osfs) -> None:
    for refusal in served.method.refusals:
        result = osfs("--server", served.url, *refusal.flags, "ls", env=refusal.env)
        assert result.code == refusal.code, f"{refusal.why}: exit {result.code}: {result.stderr}"
        line = result.one_error_line()
        assert refusal.says in line, f"{refusal.why}: {line}"
        assert f"127.0.0.1:{served.server.port}" in line, line
        if refusal.says == NOT_TRUSTED:  # the hint points at the TLS files, not the server
            assert line.endswith("(check --tlsca, --tlscert and --tlskey)"), line
        assert result.stdout == b""
        served.assert_no_secret(result.output)


# Mounts -----------------------------------------------------------------------------------------


def test_mount_writes_through_and_the_cli_reads_back(
    served: Served, osfs: Osfs, bucket_name: str, tmp_path: Path
) -> None:
    """Passwords and tokens reach the mount as ``NATS_*`` variables (kept out of ``ps``), files
    as flags."""
    flags = ("--server", served.url, *served.method.flags)
    _ok(osfs(*flags, "add", bucket_name))
    payload = secrets.token_bytes(5000)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    mount_flags = served.method.flags
    if served.name in ("user-password", "token"):
        env |= served.method.env
        mount_flags = ()
    with mounted(served.url, bucket_name, tmp_path / "mnt", *mount_flags, env=env) as mount:
        run_io(lambda: (mount.path / "through-mount.bin").write_bytes(payload))
        assert read_file(mount.path / "through-mount.bin") == payload
    served.assert_no_secret(mount.log_text())
    assert _ok(osfs(*flags, "get", bucket_name, "through-mount.bin")).stdout == payload


def test_mount_with_wrong_credentials_fails_before_mounting(
    served: Served, osfs: Osfs, bucket_name: str, tmp_path: Path
) -> None:
    refusal = served.method.refusals[0]
    _ok(osfs("--server", served.url, *served.method.flags, "add", bucket_name))
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    log = tmp_path / "mount.log"
    result = osfs(
        "--server",
        served.url,
        *refusal.flags,
        "mount",
        bucket_name,
        str(mountpoint),
        "-f",
        "--log-file",
        str(log),
        env=refusal.env,
    )
    assert result.code == refusal.code, result.stderr
    assert refusal.says in result.one_error_line()
    assert not os.path.ismount(mountpoint)
    served.assert_no_secret(result.output + log.read_text())


# A nats context with creds and mutual TLS together ---------------------------------------------


@pytest.fixture(scope="module")
def jwt_tls_server(
    material: Material, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NatsServer]:
    """A server that wants both a trusted client certificate and a JWT user."""
    config = material.jwt.server_config() + material.tls.server_config(verify=True)
    server = start_server(tmp_path_factory.mktemp("nats-jwt-tls"), config_extra=config)
    try:
        yield server
    finally:
        server.stop()


def _write_context(tmp_path: Path, name: str, document: Mapping[str, str]) -> None:
    contexts = tmp_path / "config" / "nats" / "context"
    contexts.mkdir(parents=True, exist_ok=True)
    (contexts / f"{name}.json").write_text(json.dumps(document))


def test_nats_context_with_creds_and_tls(
    jwt_tls_server: NatsServer, material: Material, osfs: Osfs, bucket_name: str, tmp_path: Path
) -> None:
    tls = material.tls
    _write_context(
        tmp_path,
        "secure",
        {
            "url": f"tls://127.0.0.1:{jwt_tls_server.port}",
            "creds": str(material.creds),
            "ca": str(tls.ca),
            "cert": str(tls.client_cert),
            "key": str(tls.client_key),
        },
    )
    _round_trip(osfs, ("--context", "secure"), {}, bucket_name, tmp_path)
    status = _ok(osfs("--context", "secure", "status", "--json")).json()
    assert status["context"] == "secure"
    assert status["embedded"] is False

    payload = secrets.token_bytes(4000)
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    with mounted(None, bucket_name, tmp_path / "mnt", "--context", "secure", env=config) as mount:
        run_io(lambda: (mount.path / "ctx.bin").write_bytes(payload))
    assert material.jwt.user.seed not in mount.log_text()
    assert _ok(osfs("--context", "secure", "get", bucket_name, "ctx.bin")).stdout == payload


def test_a_flag_overrides_the_context(
    jwt_tls_server: NatsServer, material: Material, osfs: Osfs, tmp_path: Path
) -> None:
    """``--creds`` and ``--tlsca`` given on the command line win over the context's."""
    tls = material.tls
    _write_context(
        tmp_path,
        "secure",
        {
            "url": jwt_tls_server.url,
            "creds": str(material.creds),
            "ca": str(tls.ca),
            "cert": str(tls.client_cert),
            "key": str(tls.client_key),
        },
    )
    _ok(osfs("--context", "secure", "ls"))
    result = osfs("--context", "secure", "--creds", str(material.stranger_creds), "ls")
    assert result.code == EXIT_AUTH, result.stderr
    assert "refused the credentials" in result.one_error_line()
    wrong_ca = osfs("--context", "secure", "--tlsca", str(material.other_ca), "ls")
    assert wrong_ca.code == EXIT_UNAVAILABLE, wrong_ca.stderr
    assert "certificate verify failed" in wrong_ca.one_error_line()


# Credential files osfs cannot use -------------------------------------------------------------


def _seed_block(seed: str) -> str:
    return f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"


#: A flag and what its file holds (None: the file does not exist).
MALFORMED: dict[str, tuple[str, Callable[[Material], str | None]]] = {
    "creds-without-jwt": ("--creds", lambda m: _seed_block(m.jwt.user.seed)),
    "creds-without-seed": ("--creds", lambda m: m.jwt.creds().split("\n\n")[0] + "\n"),
    "creds-bad-seed": ("--creds", lambda m: m.jwt.creds().replace(m.jwt.user.seed, "SUBAD")),
    "creds-garbage": ("--creds", lambda m: "not a creds file\n"),
    "creds-missing": ("--creds", lambda m: None),
    "nkey-garbage": ("--nkey", lambda m: "SUNOTASEED\n"),
    "nkey-given-a-creds-file": ("--nkey", lambda m: m.jwt.creds()),
    "nkey-missing": ("--nkey", lambda m: None),
    "ca-garbage": ("--tlsca", lambda m: "not a certificate\n"),
    "ca-missing": ("--tlsca", lambda m: None),
    "cert-missing": ("--tlscert", lambda m: None),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_an_unusable_credentials_file_is_a_usage_error_naming_it(
    case: str, jwt_tls_server: NatsServer, material: Material, osfs: Osfs, tmp_path: Path
) -> None:
    flag, content = MALFORMED[case]
    path = tmp_path / f"{case}.file"
    text = content(material)
    if text is not None:
        path.write_text(text)
    result = osfs("--server", jwt_tls_server.url, flag, str(path), "ls")
    assert result.code == EXIT_USAGE, f"exit {result.code}: {result.stderr}"
    line = result.one_error_line()
    assert str(path) in line, line
    assert material.jwt.user.seed not in result.output
    assert material.jwt.user_jwt not in result.output


def test_a_tls_key_without_its_certificate_is_a_usage_error(
    jwt_tls_server: NatsServer, material: Material, osfs: Osfs
) -> None:
    """Silently connecting without the client certificate would fail later, less clearly."""
    result = osfs("--server", jwt_tls_server.url, "--tlskey", str(material.tls.client_key), "ls")
    assert result.code == EXIT_USAGE, result.stderr
    assert "--tlskey) needs its certificate (--tlscert)" in result.one_error_line()


def test_a_mount_with_an_unusable_creds_file_fails_at_once(
    jwt_tls_server: NatsServer, material: Material, osfs: Osfs, bucket_name: str, tmp_path: Path
) -> None:
    """A creds file without its JWT block made nats-py loop for ever: the mount hung."""
    creds = tmp_path / "seed-only.creds"
    creds.write_text(_seed_block(material.jwt.user.seed))
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    result = osfs(
        "--server",
        jwt_tls_server.url,
        "--creds",
        str(creds),
        "mount",
        bucket_name,
        str(mountpoint),
        "-f",
        "--log-file",
        str(tmp_path / "mount.log"),
    )
    assert result.code == EXIT_USAGE, result.stderr
    assert str(creds) in result.one_error_line()
    assert not os.path.ismount(mountpoint)
