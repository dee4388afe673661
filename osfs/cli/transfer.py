"""``osfs put`` and ``osfs get``: bytes between local files (or pipes) and objects.

Rules:
1. A get to a file is atomic: the data goes to a hidden file beside the target, renamed into
   place only once the whole object arrived and its digest matched. A failed get leaves no
   partial file; an existing file is replaced only by a complete one.
2. Transfers over :data:`PROGRESS_THRESHOLD` show a progress bar, on a terminal only.
3. Object names from file paths are cleaned the way the nats CLI cleans them, so osfs and
   ``nats object put`` name the same file the same object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import stat
import sys
from collections.abc import AsyncIterable, Callable
from pathlib import Path
from typing import IO

from osfs.cli.failures import EXIT_OK, EXIT_USAGE, CommandError
from osfs.cli.output import digest_hex, format_size, object_dict, plural
from osfs.cli.session import Session, session_command
from osfs.cli.values import collect_headers
from osfs.core.meta import ObjectMeta
from osfs.core.subjects import validate_object_name

#: Transfers larger than this get a progress bar (on a terminal, without --quiet/--json).
PROGRESS_THRESHOLD = 8 * 1024 * 1024


@session_command
async def put(session: Session, args: argparse.Namespace) -> int:
    """Store a file, or stdin, as an object (creating the bucket on the embedded server)."""
    with contextlib.ExitStack() as stack:
        if args.file == "-":
            if not args.name:
                raise CommandError(
                    "--name is required when reading stdin",
                    code=EXIT_USAGE,
                    hint=f"osfs put {args.bucket} - --name NAME",
                )
            name: str = args.name
            source: IO[bytes] = sys.stdin.buffer
        else:
            name = args.name or default_object_name(args.file)
            source = stack.enter_context(_open_input(args.file))
        meta = ObjectMeta(
            name=name,
            description=args.description,
            headers=collect_headers(args.header),
            metadata=dict(args.meta),
            chunk_size=args.chunk_size,
        )
        total = _regular_size(source)
        store = await session.store(args.bucket, create_missing=True)
        bar = session.out.progress(f"put {name}", total, PROGRESS_THRESHOLD)
        try:
            info = await store.put(meta, source, progress=bar)
        finally:
            if bar is not None:
                bar.close()
    session.out.confirm(
        object_dict(info),
        lambda: (
            f"stored {info.name} in {info.bucket}: {format_size(info.size)} in "
            f"{plural(info.chunks, 'chunk')}, SHA-256 {digest_hex(info.digest)}"
        ),
    )
    return EXIT_OK


@session_command
async def get(session: Session, args: argparse.Namespace) -> int:
    """Fetch an object to stdout, or atomically to a file (rule 1)."""
    store = await session.store(args.bucket)
    async with await store.get(args.name) as result:
        info = result.info
        target = None if args.output in (None, "-") else _output_path(args.output, info.name)
        bar = session.out.progress(f"get {info.name}", info.size, PROGRESS_THRESHOLD)
        try:
            if target is None:
                await _stream(result, sys.stdout.buffer, bar)
                sys.stdout.buffer.flush()
            else:
                await _stream_to_file(result, target, bar)
        finally:
            if bar is not None:
                bar.close()
    if target is not None:
        session.out.confirm(object_dict(info), lambda: f"wrote {target} ({format_size(info.size)})")
    return EXIT_OK


def default_object_name(path: str) -> str:
    """The object name for a file put without ``--name``: the path as given, cleaned like the
    nats CLI cleans it (Go's ``filepath.Clean``), so ``./a//b`` and ``a/b`` are one object."""
    return validate_object_name(os.path.normpath(path))


def _open_input(path: str) -> IO[bytes]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    except IsADirectoryError as exc:
        raise CommandError(f"{path} is a directory", hint="put stores one file") from exc
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    return handle


def _regular_size(handle: IO[bytes]) -> int | None:
    """The size of a regular file (None for pipes and devices, whose size is unknown)."""
    info = os.fstat(handle.fileno())
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _output_path(output: str, name: str) -> Path:
    """``-o`` as given, or the object's base name inside it when it is a directory."""
    target = Path(output)
    if target.is_dir():
        base = name.rstrip("/").rsplit("/", 1)[-1]
        if base in ("", ".", ".."):
            raise CommandError(f"object {name!r} has no usable file name", hint="name a file")
        target = target / base
    return target


async def _stream(
    result: AsyncIterable[bytes], sink: IO[bytes], progress: Callable[[int], None] | None
) -> None:
    done = 0
    async for chunk in result:
        sink.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done)


async def _stream_to_file(
    result: AsyncIterable[bytes], target: Path, progress: Callable[[int], None] | None
) -> None:
    """Write to a hidden file beside ``target`` and rename it into place only when complete.

    The file is created with the usual permissions (umask), unlike ``mkstemp``'s 0600.
    """
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.osfs-partial")
    try:
        with open(partial, "xb") as sink:  # noqa: ASYNC230 - local file, written chunk by chunk
            await _stream(result, sink, progress)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
