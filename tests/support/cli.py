"""Run the real ``osfs`` CLI in a subprocess and look at what it printed, as a user would.

Several integration test files drive ``python -m osfs``; they share this one :class:`Result` and
:func:`run_osfs` so that "one error line, no traceback" means the same everywhere. Each file still
chooses its own environment (:func:`tests.support.mounting.clean_env` or :func:`isolated_env`),
working directory and deadline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.mounting import clean_env

RUN_TIMEOUT = 60.0
"""Seconds one CLI run may take, unless the caller says otherwise."""


@dataclass(frozen=True)
class Result:
    """One finished CLI run."""

    code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        """stdout as text."""
        return self.stdout.decode()

    @property
    def output(self) -> str:
        """Everything printed (stdout, then stderr), to search for secrets."""
        return self.stdout.decode(errors="replace") + self.stderr

    def json(self) -> Any:
        """stdout parsed as one JSON document."""
        return json.loads(self.stdout)

    def one_error_line(self) -> str:
        """The single ``osfs: error:`` line a failure must print, and nothing else on stderr."""
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.splitlines()
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("osfs: error: "), self.stderr
        return lines[0]


Osfs = Callable[..., Result]
"""A test's way of running the CLI: ``osfs(*argv, ...) -> Result``."""


def isolated_env(tmp_path: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """:func:`clean_env` with ``XDG_CONFIG_HOME`` and ``OSFS_DATA_DIR`` under ``tmp_path``, plus
    ``extra``: neither the developer's nats contexts nor their embedded server can leak in."""
    env = clean_env()
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["OSFS_DATA_DIR"] = str(tmp_path / "osfs-data")
    env.update(extra or {})
    return env


def run_osfs(
    *argv: str,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stdin: bytes = b"",
    timeout: float = RUN_TIMEOUT,
) -> Result:
    """Run ``python -m osfs ARGV`` to completion under ``timeout``, with exactly ``env``.

    Raises:
        subprocess.TimeoutExpired: the run took longer than ``timeout``.
    """
    done = subprocess.run(
        [sys.executable, "-m", "osfs", *argv],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr.decode(errors="replace"))
