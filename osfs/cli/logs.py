"""Where a mount's log goes: stderr in the foreground, a file in the background.

Rules:
1. ``--log-file`` wins.
2. A mount in the foreground (``-f``, started by a person or by systemd) logs to stderr, which
   systemd sends to the journal.
3. A background mount logs to :func:`default_log_file`: the detached child's stderr is
   /dev/null, so anything it said there would be lost. The parent that starts it opens the same
   file first, so a log file that cannot be written fails on the terminal, not in the child.
4. Files are appended to, and reopened when moved away (logrotate).
Only the standard library's logging; the one I/O is creating the log file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from osfs.cli.failures import CommandError

#: The ``--log-level`` choices, quietest last.
LEVELS = ("debug", "info", "warning", "error")

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def state_home(env: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME`` when absolute (as the XDG spec asks), else ``~/.local/state``."""
    configured = env.get("XDG_STATE_HOME", "")
    if os.path.isabs(configured):
        return Path(configured)
    return Path(env.get("HOME") or Path.home()) / ".local" / "state"


def default_log_file(bucket: str, env: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/osfs/mount-<bucket>.log``: the log of a background mount of ``bucket``."""
    return state_home(env) / "osfs" / f"mount-{bucket}.log"


def log_destination(
    log_file: str | None, *, background: bool, bucket: str, env: Mapping[str, str]
) -> Path | None:
    """The file to log to, or None for stderr (rules 1 to 3)."""
    if log_file:
        return Path(log_file).expanduser()
    return default_log_file(bucket, env) if background else None


def configure(level: str, destination: Path | None) -> None:
    """Send the root logger's records at ``level`` and above to ``destination`` (None: stderr).

    Raises:
        CommandError: the log file's directory cannot be created or the file cannot be opened.
    """
    handler: logging.Handler
    if destination is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.WatchedFileHandler(destination, encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                f"cannot write the log file {destination}: {exc.strerror}",
                hint="choose another with --log-file",
            ) from exc
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.setLevel(level.upper())
    root.addHandler(handler)
