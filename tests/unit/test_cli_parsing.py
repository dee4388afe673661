"""The ``osfs`` command line without a server: argument values, where it connects, exit codes.

Rules for these tests: pure, no server and no network. Connection settings are resolved from an
explicit environment mapping and a temporary ``XDG_CONFIG_HOME``, never from the real home
directory; ``main`` is called in-process only for paths that stop before connecting.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from osfs import cli
from osfs.cli import failures, logs, mounting, options, parser, transfer, values
from osfs.cli.context import ConnectFlags, display_url, resolve
from osfs.cli.output import ProgressBar, format_duration, format_size, render_table
from osfs.core import errors
from osfs.core.posix import MountDefaults
from osfs.store import ConnectOptions

# Argument values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("7d", 604_800.0),
        ("1w", 604_800.0),
        ("1y", 365 * 86_400.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("90", 90.0),
        ("0", 0.0),
        (" 2h ", 7200.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert values.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "3x", "1H", "1M", "-5s", "h2", "2h x", "1h-1m", "inf"])
def test_bad_durations_say_what_is_allowed(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        values.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("4096", 4096),
        ("10B", 10),
        ("512k", 512 * 1024),
        ("1K", 1024),
        ("1KB", 1024),
        ("1KiB", 1024),
        ("10MiB", 10 * 1024**2),
        ("10mib", 10 * 1024**2),
        ("1G", 1024**3),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("2 TB", 2 * 1024**4),
    ],
)
def test_sizes_are_binary_like_the_nats_cli(text: str, size: int) -> None:
    assert values.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "10Ki", "10 XB", "-1", "1e3", "ten"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid size"):
        values.parse_size(text)


@pytest.mark.parametrize(
    ("text", "size"), [("0", 0), ("512KiB", 512 * 1024), ("4M", 4 * 1024**2), ("1GiB", 1024**3)]
)
def test_readahead_is_whole_kib_up_to_one_gib(text: str, size: int) -> None:
    assert values.parse_readahead(text) == size


@pytest.mark.parametrize("text", ["1000", "1.5K", "2GiB", "-4K", "lots"])
def test_bad_readahead(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid"):
        values.parse_readahead(text)


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1 byte"):
        values.parse_positive_size("0")


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("k=v", ("k", "v")),
        ("k=", ("k", "")),
        ("k=a=b", ("k", "a=b")),
        (" k =v ", ("k", "v ")),
    ],
)
def test_key_value(text: str, pair: tuple[str, str]) -> None:
    assert values.parse_key_value(text) == pair


@pytest.mark.parametrize("text", ["k", "=v", " =v", ""])
def test_bad_key_value(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        values.parse_key_value(text)


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("X-Trace=abc", ("X-Trace", "abc")),
        ("X-Trace: abc", ("X-Trace", "abc")),
        ("X-Url=http://h/a?b=c", ("X-Url", "http://h/a?b=c")),
        ("X-Url: http://h/a", ("X-Url", "http://h/a")),
        ("Empty=", ("Empty", "")),
    ],
)
def test_headers_in_either_form(text: str, pair: tuple[str, str]) -> None:
    assert values.parse_header(text) == pair


@pytest.mark.parametrize("text", ["NoSeparator", "=v", "Bad Name=v", "Bad\tName: v"])
def test_bad_headers(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid header"):
        values.parse_header(text)


def test_repeated_headers_keep_every_value_in_order() -> None:
    pairs = [("A", "1"), ("B", "x"), ("A", "2")]
    assert values.collect_headers(pairs) == {"A": ("1", "2"), "B": ("x",)}


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("cat.jpg", "cat.jpg"),
        ("./a//b/./c.txt", "a/b/c.txt"),
        ("a/../b.txt", "b.txt"),
        ("/abs/path.txt", "/abs/path.txt"),
    ],
)
def test_default_object_name_is_cleaned_like_the_nats_cli(path: str, name: str) -> None:
    assert transfer.default_object_name(path) == name


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "-s", "nats://a:4222", "ls"],
        ["ls", "--json", "-s", "nats://a:4222"],
        ["--json", "ls", "-s", "nats://a:4222"],
    ],
)
def test_global_options_go_before_or_after_the_command(argv: list[str]) -> None:
    args = parser.build_parser().parse_args(argv)
    assert args.json is True
    assert args.server == ["nats://a:4222"]


def test_global_option_before_the_command_is_not_reset_by_its_default() -> None:
    args = parser.build_parser().parse_args(["--timeout", "9", "-q", "ls"])
    assert args.timeout == 9.0
    assert args.quiet is True


def test_repeated_and_comma_separated_servers_are_one_list() -> None:
    args = parser.build_parser().parse_args(
        ["-s", "nats://a:1,nats://b:2", "-s", "nats://c:3", "ls"]
    )
    assert options.connect_flags(args).servers == ("nats://a:1", "nats://b:2", "nats://c:3")


# Where osfs connects ----------------------------------------------------------------------------


def _context(config_home: Path, name: str, **fields: str) -> None:
    directory = config_home / "nats" / "context"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps({"description": "", **fields}))


def _select(config_home: Path, name: str) -> None:
    (config_home / "nats" / "context.txt").write_text(name + "\n")


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    home = tmp_path / "config"
    home.mkdir()
    return home


def test_nothing_named_means_the_embedded_server(config_home: Path) -> None:
    plan = resolve(ConnectFlags(), {"XDG_CONFIG_HOME": str(config_home)})
    assert plan.embedded
    assert plan.options.servers == ()
    assert plan.context is None


def test_selected_context_is_used(config_home: Path) -> None:
    _context(config_home, "prod", url="nats://ctx:4222", user="u", password="p")
    _select(config_home, "prod")
    plan = resolve(ConnectFlags(), {"XDG_CONFIG_HOME": str(config_home)})
    assert not plan.embedded
    assert plan.options.servers == ("nats://ctx:4222",)
    assert (plan.options.user, plan.options.password) == ("u", "p")
    assert plan.context == "prod"
    assert plan.source == "nats context 'prod'"


def test_env_beats_context_and_flag_beats_env(config_home: Path) -> None:
    _context(config_home, "prod", url="nats://ctx:4222", token="ctx-token", creds="/ctx.creds")
    _select(config_home, "prod")
    env = {
        "XDG_CONFIG_HOME": str(config_home),
        "NATS_URL": "nats://env:4222",
        "NATS_TOKEN": "env-token",
    }
    plan = resolve(ConnectFlags(), env)
    assert plan.options.servers == ("nats://env:4222",)
    assert plan.options.token == "env-token"
    assert plan.options.creds == "/ctx.creds"  # only the context has it
    assert plan.source == "environment (NATS_URL)"

    flags = ConnectFlags(servers=("nats://flag:4222",), token="flag-token")
    plan = resolve(flags, env)
    assert plan.options.servers == ("nats://flag:4222",)
    assert plan.options.token == "flag-token"
    assert plan.source == "flag"


def test_context_choice_flag_beats_env_beats_selection(config_home: Path) -> None:
    for name in ("selected", "from-env", "from-flag"):
        _context(config_home, name, url=f"nats://{name}:4222")
    _select(config_home, "selected")
    env = {"XDG_CONFIG_HOME": str(config_home)}
    assert resolve(ConnectFlags(), env).context == "selected"
    env["NATS_CONTEXT"] = "from-env"
    assert resolve(ConnectFlags(), env).context == "from-env"
    assert resolve(ConnectFlags(context="from-flag"), env).options.servers == (
        "nats://from-flag:4222",
    )


def test_context_url_list_and_tls_files(
    config_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    _context(
        config_home,
        "tls",
        url="nats://a:4222, nats://b:4222",
        ca="~/ca.pem",
        cert="/c.pem",
        key="/k.pem",
        nkey="~/user.nk",
    )
    plan = resolve(ConnectFlags(context="tls"), {"XDG_CONFIG_HOME": str(config_home)})
    assert plan.options.servers == ("nats://a:4222", "nats://b:4222")
    assert plan.options.tls_ca == str(tmp_path / "ca.pem")
    assert (plan.options.tls_cert, plan.options.tls_key) == ("/c.pem", "/k.pem")
    assert plan.options.nkey == str(tmp_path / "user.nk")


def test_context_without_url_still_means_embedded(config_home: Path) -> None:
    _context(config_home, "creds-only", url="", user="me")
    plan = resolve(ConnectFlags(context="creds-only"), {"XDG_CONFIG_HOME": str(config_home)})
    assert plan.embedded
    assert plan.options.user == "me"


def test_default_config_home_is_dot_config(tmp_path: Path) -> None:
    _context(tmp_path / ".config", "home", url="nats://home:4222")
    plan = resolve(ConnectFlags(context="home"), {"HOME": str(tmp_path)})
    assert plan.options.servers == ("nats://home:4222",)


@pytest.mark.parametrize("name", ["missing", "../escape", "a/b", ".."])
def test_bad_or_missing_context_is_a_usage_error(config_home: Path, name: str) -> None:
    with pytest.raises(errors.InvalidOptionError, match="nats context"):
        resolve(ConnectFlags(context=name), {"XDG_CONFIG_HOME": str(config_home)})


def test_context_that_is_not_json(config_home: Path) -> None:
    (config_home / "nats" / "context").mkdir(parents=True)
    (config_home / "nats" / "context" / "broken.json").write_text("{nope")
    with pytest.raises(errors.InvalidOptionError, match="not valid JSON"):
        resolve(ConnectFlags(context="broken"), {"XDG_CONFIG_HOME": str(config_home)})


def test_timeout_flag_reaches_the_options(config_home: Path) -> None:
    plan = resolve(ConnectFlags(timeout=12.5), {"XDG_CONFIG_HOME": str(config_home)})
    assert plan.options.request_timeout == 12.5


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://user:hunter2@host:4222", "nats://host:4222"),
        ("tls://s3cr3t-token@host", "tls://host"),
        ("host:4222", "nats://host:4222"),
        ("nats://[::1]:4222", "nats://[::1]:4222"),
    ],
)
def test_display_url_drops_credentials(url: str, shown: str) -> None:
    assert display_url(url) == shown


# Exit codes and error lines -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.BucketNotFoundError("x"), 3),
        (errors.ObjectNotFoundError("x"), 3),
        (errors.NoObjectsFoundError("x"), 3),
        (errors.UpdateMetaDeletedError("x"), 3),
        (errors.BucketExistsError("x"), 4),
        (errors.ObjectAlreadyExistsError("x"), 4),
        (errors.StoreUnavailableError("x"), 5),
        (errors.StoreTimeoutError("x"), 5),
        (errors.BucketSealedError("x"), 6),
        (errors.DigestMismatchError("x"), 7),
        (errors.BadObjectMetaError("x"), 7),
        (errors.AuthorizationError("x"), 8),
        (errors.InvalidBucketNameError("x"), 2),
        (errors.InvalidObjectNameError("x"), 2),
        (errors.InvalidOptionError("x"), 2),
        (errors.BucketFullError("x"), 1),
        (errors.ApiError(500, 1, "x"), 1),
        (errors.OsfsError("x"), 1),
        (FileNotFoundError(2, "No such file"), 1),
        (RuntimeError("bug"), 1),
        (KeyboardInterrupt(), 130),
        (failures.CommandError("x", code=2), 2),
    ],
)
def test_exit_codes(exc: BaseException, code: int) -> None:
    assert failures.exit_code_for(exc) == code
    assert code in failures.EXIT_CODES


def test_every_documented_code_is_in_the_main_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for code, meaning in failures.EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in text


def test_error_line_is_one_line_with_a_hint() -> None:
    line = failures.error_line(errors.ObjectNotFoundError("object 'a' not found"), bucket="photos")
    assert line == "osfs: error: object 'a' not found (list objects with 'osfs ls photos')"
    assert "\n" not in failures.error_line(errors.OsfsError("two\nlines"))


def test_error_line_for_an_unexpected_exception_points_at_debugging() -> None:
    line = failures.error_line(KeyError("k"))
    assert line.startswith("osfs: error: unexpected KeyError")
    assert "OSFS_DEBUG=1" in line


def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["put"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("osfs: error: ")
    assert "osfs put --help" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["ls", "bad.name"],
        ["put", "b", "f", "--name", ""],
        ["link", "b", "n", "--to-bucket", "no/slash"],
    ],
)
def test_invalid_names_fail_before_connecting(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # No server is named and none is reachable: reaching the network would fail with 5, not 2.
    assert cli.main(["--server", "nats://127.0.0.1:1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("osfs: error: ")
    assert err.count("\n") == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith("osfs ")


# osfs mount and osfs umount ---------------------------------------------------------------------


def _mount_args(*extra: str) -> argparse.Namespace:
    return parser.build_parser().parse_args(["mount", "photos", "/mnt/photos", *extra])


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("0644", 0o644),
        ("644", 0o644),
        ("0o755", 0o755),
        (" 600 ", 0o600),
        ("0", 0),
        ("1777", 0o1777),
        ("07777", 0o7777),
    ],
)
def test_modes_are_octal_like_chmod(text: str, mode: int) -> None:
    assert values.parse_mode(text) == mode


@pytest.mark.parametrize("text", ["", "9", "0o", "0x1ff", "rw-r--r--", "-644", "17777", "6 44"])
def test_bad_modes(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid mode"):
        values.parse_mode(text)


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("allow_other", ("allow_other",)),
        ("allow_other,ro", ("allow_other", "ro")),
        (" ro , noatime ,", ("ro", "noatime")),
        ("a,,max_read=131072", ("a", "max_read=131072")),
    ],
)
def test_fuse_options_split_on_commas(text: str, options: tuple[str, ...]) -> None:
    assert values.parse_fuse_options(text) == options


@pytest.mark.parametrize("text", ["", ",", " , "])
def test_empty_fuse_options_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid -o"):
        values.parse_fuse_options(text)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("1000", 1000), ("4294967294", 2**32 - 2)])
def test_ids(text: str, value: int) -> None:
    assert values.parse_id(text) == value


@pytest.mark.parametrize("text", ["", "-1", "root", "4294967295", "1e3", "١"])
def test_bad_ids(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid id"):
        values.parse_id(text)


def test_mount_defaults() -> None:
    args = _mount_args()
    assert (args.bucket, args.mountpoint) == ("photos", "/mnt/photos")
    flags = (args.foreground, args.read_only, args.allow_other, args.systemd)
    assert flags == (False, False, False, False)
    assert args.fuse_options == []
    assert (args.file_mode, args.dir_mode) == (0o644, 0o755)
    assert (args.uid, args.gid) == (None, None)
    assert args.cache_size == 256 * 1024**2
    assert (args.log_level, args.log_file, args.ready_fd) == ("info", None, None)


def test_mount_options_from_the_defaults() -> None:
    connect = ConnectOptions(servers=("nats://127.0.0.1:4222",))
    options = mounting.mount_options(_mount_args(), connect, create_bucket=True)
    assert (options.bucket, options.mountpoint) == ("photos", Path("/mnt/photos"))
    assert options.connect is connect
    assert options.create_bucket
    assert (options.read_only, options.allow_other) == (False, False)
    assert options.fuse_options == ()
    assert options.defaults == MountDefaults(
        uid=os.getuid(), gid=os.getgid(), file_mode=0o644, dir_mode=0o755
    )
    assert options.cache_size == 256 * 1024**2
    assert (options.foreground, options.systemd) == (False, False)
    assert options.ready_fd is None


def test_mount_options_as_given() -> None:
    args = _mount_args(
        *("-f", "--read-only", "--file-mode", "600", "--dir-mode", "0o700"),
        *("--uid", "1234", "--gid", "99", "--cache-size", "1GiB", "--systemd"),
        *("--log-level", "debug", "--log-file", "/tmp/m.log", "--ready-fd", "7"),
    )
    options = mounting.mount_options(args, ConnectOptions(), create_bucket=False)
    assert options.defaults == MountDefaults(uid=1234, gid=99, file_mode=0o600, dir_mode=0o700)
    assert (options.foreground, options.read_only, options.systemd) == (True, True, True)
    assert (options.cache_size, options.ready_fd) == (1024**3, 7)
    assert not options.create_bucket
    assert (args.log_level, args.log_file) == ("debug", "/tmp/m.log")


def test_o_ro_and_allow_other_are_the_flags_and_the_rest_passes_through() -> None:
    args = _mount_args("-o", "allow_other,noatime", "-o", "ro", "-o", "noatime,max_read=131072")
    assert args.fuse_options == [
        ("allow_other", "noatime"),
        ("ro",),
        ("noatime", "max_read=131072"),
    ]
    assert mounting.fuse_flags(args) == mounting.FuseFlags(
        read_only=True, allow_other=True, passthrough=("noatime", "max_read=131072")
    )


def test_read_only_and_allow_other_flags_without_o() -> None:
    assert mounting.fuse_flags(_mount_args()) == mounting.FuseFlags(False, False, ())
    flags = mounting.fuse_flags(_mount_args("--read-only", "--allow-other"))
    assert flags == mounting.FuseFlags(True, True, ())


def test_mountpoint_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mounting.mountpoint_path("mnt/../photos") == tmp_path / "photos"
    assert mounting.mountpoint_path("~/photos") == tmp_path / "home" / "photos"


def test_mount_help_hides_ready_fd_and_teaches_by_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["mount", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--ready-fd" not in text
    assert "osfs mount photos ~/photos" in text
    assert "osfs mount photos /mnt/photos -o allow_other --read-only" in text
    assert "osfs umount ~/photos" in text
    assert "$XDG_STATE_HOME/osfs/mount-BUCKET.log" in text


def test_the_cache_dir_is_the_option_else_xdg_cache_home_else_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    given = _mount_args("--cache-dir", "~/spool")
    assert mounting.cache_dir_of(given, {}) == tmp_path / "spool"
    assert mounting.cache_dir_of(_mount_args(), {"XDG_CACHE_HOME": "/var/c"}) == Path("/var/c/osfs")
    relative = {"XDG_CACHE_HOME": "relative/c"}  # the XDG spec: only absolute paths count
    assert mounting.cache_dir_of(_mount_args(), relative) == tmp_path / ".cache" / "osfs"
    assert mounting.cache_dir_of(_mount_args(), {}) == tmp_path / ".cache" / "osfs"
    options = mounting.mount_options(given, ConnectOptions(), create_bucket=False)
    assert options.cache_dir == tmp_path / "spool"


def test_umount_waits_for_dirty_files_unless_forced() -> None:
    args = parser.build_parser().parse_args(["umount", "/mnt/photos"])
    assert (args.force, args.wait, args.cache_dir) == (False, 10.0, None)
    args = parser.build_parser().parse_args(
        ["umount", "/mnt/photos", "--force", "--wait", "2.5", "--cache-dir", "/c"]
    )
    assert (args.force, args.wait, args.cache_dir) == (True, 2.5, "/c")


def test_umount_options() -> None:
    assert not parser.build_parser().parse_args(["umount", "/mnt/photos"]).lazy
    assert parser.build_parser().parse_args(["umount", "-l", "/mnt/photos"]).lazy
    assert parser.build_parser().parse_args(["umount", "/mnt/photos", "--lazy"]).lazy


@pytest.mark.parametrize(
    "argv",
    [
        ["mount", "photos"],
        ["mount", "photos", "/m", "--file-mode", "8"],
        ["mount", "photos", "/m", "--dir-mode", "rwx"],
        ["mount", "photos", "/m", "--uid", "me"],
        ["mount", "photos", "/m", "-o", ""],
        ["mount", "photos", "/m", "--log-level", "trace"],
        ["mount", "photos", "/m", "--cache-size", "0"],
        ["mount", "bad.name", "/m"],
        ["umount"],
    ],
)
def test_bad_mount_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # An unreachable server: a mount that got past its arguments would fail otherwise.
    assert cli.main(["--server", "nats://127.0.0.1:1", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("osfs: error: ")
    assert err.count("\n") == 1


def test_mount_failures_have_their_own_exit_status() -> None:
    assert failures.exit_code_for(errors.MountError("mountpoint /m does not exist")) == 9
    assert failures.EXIT_CODES[9].startswith("mount failed")
    line = failures.error_line(errors.MountError("mountpoint /m is not empty"), bucket="photos")
    assert line == "osfs: error: mountpoint /m is not empty"


def test_background_mounts_log_under_xdg_state_home(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path)}
    expected = tmp_path / ".local" / "state" / "osfs" / "mount-photos.log"
    assert logs.default_log_file("photos", home) == expected
    assert logs.default_log_file("photos", {**home, "XDG_STATE_HOME": "relative"}) == expected
    state = {**home, "XDG_STATE_HOME": str(tmp_path / "state")}
    assert logs.default_log_file("photos", state) == tmp_path / "state/osfs/mount-photos.log"


def test_log_goes_to_the_file_given_else_stderr_in_the_foreground(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    default = logs.default_log_file("b", env)
    assert logs.log_destination(None, background=False, bucket="b", env=env) is None
    assert logs.log_destination(None, background=True, bucket="b", env=env) == default
    for background in (False, True):
        chosen = logs.log_destination("/l/m.log", background=background, bucket="b", env=env)
        assert chosen == Path("/l/m.log")


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, with the handlers and level a test adds taken away again."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def test_log_file_and_its_directory_are_created(
    root_logger: logging.Logger, tmp_path: Path
) -> None:
    destination = tmp_path / "state" / "osfs" / "mount-b.log"
    logs.configure("warning", destination)
    logging.getLogger("osfs.test").info("not at warning")
    logging.getLogger("osfs.test").warning("mounted")
    text = destination.read_text()
    assert "WARNING osfs.test: mounted" in text
    assert "not at warning" not in text


def test_unwritable_log_file_is_one_error(root_logger: logging.Logger, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(failures.CommandError, match="cannot write the log file"):
        logs.configure("info", tmp_path / "file" / "m.log")


# The formatting the parsers mirror ------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1_288_490, "1.2 MiB"),
        (12 * 1024**2, "12 MiB"),
        (5 * 1024**4, "5.0 TiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_format_duration_round_trips_through_parse() -> None:
    for text in ("30s", "2h", "7d", "1d2h3m4s"):
        assert format_duration(values.parse_duration(text)) == text
    assert format_duration(0) == "forever"


def test_tables_align_numbers_right() -> None:
    table = render_table(["NAME", "SIZE"], [["a", "1 B"], ["long-name", "10 KiB"]], right=[1])
    assert table.splitlines() == ["NAME         SIZE", "a             1 B", "long-name  10 KiB"]


def test_progress_bar_draws_at_most_ten_times_a_second() -> None:
    now = [0.0]
    stream = io.StringIO()
    bar = ProgressBar(stream, "put x", 100, clock=lambda: now[0])
    bar(10)
    bar(20)  # same instant: not drawn
    now[0] = 0.5
    bar(100)
    bar.close()
    frames = stream.getvalue().split("\r")[1:]
    assert len(frames) == 3
    assert "100%" in frames[-1]
    assert stream.getvalue().endswith("\n")


def test_progress_bar_of_unknown_length_stays_hidden_while_small() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, "put -", None, min_bytes=1000)
    bar(999)
    bar.close()
    assert stream.getvalue() == ""
