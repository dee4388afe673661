"""Drive the official nats.js Object Store client (``@nats-io/obj``) from Python tests.

Every call runs ``node tests/support/natsjs/objtool.mjs`` once with a JSON request on stdin and
parses the one JSON result it prints. The node program uses only the public ``@nats-io/obj`` API
(``Objm``, ``ObjectStore``), so what it writes and reads is exactly what nats.js users get.

A missing ``node`` or a missing ``node_modules`` is an error that names ``scripts/setup``:
interop tests fail, they never skip.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

#: The directory holding package.json, package-lock.json and objtool.mjs.
NATSJS_DIR = Path(__file__).resolve().parent / "natsjs"
OBJTOOL = NATSJS_DIR / "objtool.mjs"
#: Seconds one node call may take unless the caller says otherwise.
DEFAULT_TIMEOUT = 30.0

JsonDict = dict[str, Any]


class NatsJsSetupError(RuntimeError):
    """node or the npm packages are not installed."""


class NatsJsError(RuntimeError):
    """nats.js reported an error (the ``error`` field of objtool's answer)."""

    def __init__(self, cmd: str, message: str) -> None:
        super().__init__(f"nats.js {cmd}: {message}")
        self.cmd = cmd
        self.message = message


class NatsJsObjectNotFound(NatsJsError):
    """nats.js ``get`` returned ``null``: the object is missing or deleted."""


def node_executable() -> str:
    """The path of ``node``, after checking that objtool's packages are installed.

    Raises:
        NatsJsSetupError: node is not on PATH, or ``npm install`` has not been run.
    """
    node = shutil.which("node")
    if node is None:
        raise NatsJsSetupError(
            "node is not on PATH: the nats.js interop tests need Node.js >= 20 "
            "(run scripts/setup, which also installs tests/support/natsjs/node_modules)"
        )
    marker = NATSJS_DIR / "node_modules" / "@nats-io" / "obj" / "package.json"
    if not marker.is_file():
        raise NatsJsSetupError(
            f"{NATSJS_DIR / 'node_modules'} is missing @nats-io/obj: run scripts/setup "
            f"(or `npm ci --no-audit --no-fund` in {NATSJS_DIR})"
        )
    return node


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _without_none(fields: Mapping[str, Any]) -> JsonDict:
    return {key: value for key, value in fields.items() if value is not None}


class NatsJsWatch:
    """A running ``objtool watch``: started by :meth:`NatsJs.watch`, finished by :meth:`result`.

    The watcher is live (its consumer exists) once the constructor returns, so changes made
    afterwards are delivered.
    """

    def __init__(self, node: str, request: JsonDict, timeout: float) -> None:
        self._timeout = timeout
        self._proc = subprocess.Popen(
            [node, str(OBJTOOL)],
            cwd=NATSJS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request).encode("utf-8"))
        self._proc.stdin.close()
        self._proc.stdin = None  # so communicate() does not flush the closed pipe
        self._stderr = b""
        self._wait_ready(deadline=time.monotonic() + timeout)

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc.stderr is not None
        fd = self._proc.stderr.fileno()
        while b"READY\n" not in self._stderr:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise TimeoutError(f"nats.js watch did not start in time: {self._stderr!r}")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:  # the process ended before it was ready: report its error
                self._finish()
                raise NatsJsError("watch", f"exited before it was ready: {self._stderr!r}")
            self._stderr += chunk

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def _finish(self) -> JsonDict:
        try:
            out, err = self._proc.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise
        self._stderr += err
        return _parse_answer("watch", out, self._stderr, self._proc.returncode)

    def result(self) -> tuple[list[JsonDict], bool]:
        """Wait for the watcher to finish: (entries, timed_out).

        It finishes after ``count`` entries or after ``timeout_ms`` without them.
        """
        answer = self._finish()
        entries: list[JsonDict] = answer["entries"]
        return entries, bool(answer["timed_out"])

    def __enter__(self) -> NatsJsWatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._kill()


def _parse_answer(cmd: str, stdout: bytes, stderr: bytes, returncode: int) -> JsonDict:
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    if not lines:
        raise NatsJsError(
            cmd,
            f"no answer (exit status {returncode}); stderr: {stderr.decode('utf-8', 'replace')}",
        )
    try:
        answer = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise NatsJsError(cmd, f"unparsable answer {lines[-1]!r}") from exc
    if not isinstance(answer, dict):
        raise NatsJsError(cmd, f"answer is not an object: {answer!r}")
    if "error" in answer:
        raise NatsJsError(cmd, str(answer["error"]))
    if returncode != 0:
        raise NatsJsError(cmd, f"exit status {returncode} with answer {answer!r}")
    return answer


class NatsJs:
    """The nats.js Object Store client, one node process per call.

    Object info dicts have the keys ``name, description, headers, metadata, options, bucket,
    nuid, size, chunks, digest, deleted, mtime, revision`` (null where the document has none),
    plus ``is_update`` for watch entries.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self._node = node_executable()

    def call(self, cmd: str, *, timeout: float | None = None, **fields: Any) -> JsonDict:
        """Run one objtool command and return its answer.

        Raises:
            NatsJsError: nats.js failed (its message is kept).
            subprocess.TimeoutExpired: node did not finish in time (it is killed).
        """
        request = {"cmd": cmd, "url": self.url, **_without_none(fields)}
        proc = subprocess.run(
            [self._node, str(OBJTOOL)],
            cwd=NATSJS_DIR,
            input=json.dumps(request).encode("utf-8"),
            capture_output=True,
            timeout=self.timeout if timeout is None else timeout,
            check=False,
        )
        return _parse_answer(cmd, proc.stdout, proc.stderr, proc.returncode)

    # --- buckets ---------------------------------------------------------------------------

    def create(
        self,
        bucket: str,
        *,
        description: str | None = None,
        ttl_ns: int | None = None,
        storage: str | None = None,
        replicas: int | None = None,
        max_bytes: int | None = None,
        metadata: Mapping[str, str] | None = None,
        compression: bool | None = None,
    ) -> JsonDict:
        """``new Objm(nc).create(bucket, opts)``; returns the bucket status."""
        opts = _without_none(
            {
                "description": description,
                "ttl": ttl_ns,
                "storage": storage,
                "replicas": replicas,
                "max_bytes": max_bytes,
                "metadata": dict(metadata) if metadata is not None else None,
                "compression": compression,
            }
        )
        status: JsonDict = self.call("create", bucket=bucket, opts=opts)["status"]
        return status

    def status(self, bucket: str) -> JsonDict:
        """``ObjectStore.status()``."""
        status: JsonDict = self.call("status", bucket=bucket)["status"]
        return status

    def seal(self, bucket: str) -> JsonDict:
        """``ObjectStore.seal()``; returns the new status."""
        status: JsonDict = self.call("seal", bucket=bucket)["status"]
        return status

    def buckets(self) -> list[JsonDict]:
        """``Objm.list()``: the status of every ``OBJ_*`` stream."""
        buckets: list[JsonDict] = self.call("buckets")["buckets"]
        return buckets

    # --- objects ---------------------------------------------------------------------------

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        *,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, list[str]] | None = None,
        chunk_size: int | None = None,
        timeout: float | None = None,
    ) -> JsonDict:
        """``ObjectStore.putBlob(meta, data)``; returns the object info."""
        info: JsonDict = self.call(
            "put",
            timeout=timeout,
            bucket=bucket,
            name=name,
            data=_b64(data),
            description=description,
            metadata=dict(metadata) if metadata is not None else None,
            headers={k: list(v) for k, v in headers.items()} if headers is not None else None,
            chunk_size=chunk_size,
        )["info"]
        return info

    def put_file(
        self,
        bucket: str,
        name: str,
        path: Path,
        *,
        chunk_size: int | None = None,
        timeout: float | None = None,
    ) -> JsonDict:
        """``ObjectStore.put(meta, ReadableStream)`` streaming a file.

        Returns ``{"info": ..., "elapsed_ms": ...}`` (time of the put alone, without node start).
        """
        return self.call(
            "put",
            timeout=timeout,
            bucket=bucket,
            name=name,
            file=str(path),
            chunk_size=chunk_size,
        )

    def try_get(self, bucket: str, name: str) -> tuple[bytes, JsonDict] | None:
        """``ObjectStore.get(name)`` read to the end; None when nats.js returns null."""
        answer = self.call("get", bucket=bucket, name=name)
        if not answer["found"]:
            return None
        info: JsonDict = answer["info"]
        return base64.b64decode(answer["data"]), info

    def get(self, bucket: str, name: str) -> tuple[bytes, JsonDict]:
        """Like :meth:`try_get` but a missing/deleted object raises NatsJsObjectNotFound."""
        found = self.try_get(bucket, name)
        if found is None:
            raise NatsJsObjectNotFound("get", f"{bucket}/{name} not found (get returned null)")
        return found

    def get_file(
        self, bucket: str, name: str, path: Path, *, timeout: float | None = None
    ) -> JsonDict:
        """``ObjectStore.get(name)`` streamed into ``path``.

        Returns ``{"found", "info", "size", "elapsed_ms"}``.
        """
        return self.call("get", timeout=timeout, bucket=bucket, name=name, file=str(path))

    def info(self, bucket: str, name: str) -> JsonDict | None:
        """``ObjectStore.info(name)``: deleted objects included, None when missing."""
        info: JsonDict | None = self.call("info", bucket=bucket, name=name)["info"]
        return info

    def delete(self, bucket: str, name: str) -> JsonDict:
        """``ObjectStore.delete(name)``; returns ``{"success", "purged"}``."""
        return self.call("delete", bucket=bucket, name=name)

    def update(
        self,
        bucket: str,
        name: str,
        *,
        new_name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, list[str]] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> JsonDict:
        """``ObjectStore.update(name, meta)`` with only the given fields; returns the PubAck."""
        meta = _without_none(
            {
                "name": new_name,
                "description": description,
                "metadata": dict(metadata) if metadata is not None else None,
                "headers": {k: list(v) for k, v in headers.items()} if headers else None,
                "options": dict(options) if options is not None else None,
            }
        )
        return self.call("update", bucket=bucket, name=name, meta=meta)

    def link(
        self, bucket: str, name: str, target: str, *, target_bucket: str | None = None
    ) -> JsonDict:
        """``ObjectStore.link(name, await targetStore.info(target))``; returns the link info."""
        info: JsonDict = self.call(
            "link", bucket=bucket, name=name, target=target, target_bucket=target_bucket
        )["info"]
        return info

    def link_store(self, bucket: str, name: str, target_bucket: str) -> JsonDict:
        """``ObjectStore.linkStore(name, await objm.open(target_bucket))``."""
        info: JsonDict = self.call(
            "link_store", bucket=bucket, name=name, target_bucket=target_bucket
        )["info"]
        return info

    def list(self, bucket: str) -> list[JsonDict]:
        """``ObjectStore.list()``: live objects (deletes ignored)."""
        entries: list[JsonDict] = self.call("list", bucket=bucket)["entries"]
        return entries

    def watch(
        self,
        bucket: str,
        *,
        count: int | None = 1,
        include_history: bool = False,
        ignore_deletes: bool = False,
        initial_only: bool = False,
        timeout: float = 10.0,
    ) -> NatsJsWatch:
        """Start ``ObjectStore.watch(...)`` in the background; ``.result()`` gives the entries.

        Returns once the watcher is live. It collects ``count`` entries (None: no limit), or
        with ``initial_only`` (use with ``include_history``) the initial values, or whatever
        came within ``timeout`` seconds. nats.js's default (``include_history=False``) delivers
        only changes made after the start; its ``is_update`` flag is already true on the last
        initial entry (which is how ``initial_only`` knows where the initial values end).
        """
        request = {
            "cmd": "watch",
            "url": self.url,
            "bucket": bucket,
            "count": count,
            "include_history": include_history,
            "ignore_deletes": ignore_deletes,
            "initial": initial_only,
            "timeout_ms": int(timeout * 1000),
        }
        return NatsJsWatch(self._node, request, timeout=timeout + self.timeout)
