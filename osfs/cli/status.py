"""``osfs status``: where osfs connects, who chose it, the server's version and JetStream usage.

Rules:
1. It does not start the embedded server: a status that changed what it reports would mislead.
2. URLs are printed without credentials; a server without JetStream is a status worth showing,
   not an error.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from osfs import embedded
from osfs.cli.context import display_url
from osfs.cli.failures import EXIT_OK, first_line
from osfs.cli.output import format_size, render_fields
from osfs.cli.session import Session, session_command
from osfs.core import errors
from osfs.store import Connection


@session_command
async def status(session: Session, args: argparse.Namespace) -> int:
    """Report the connection plan, and what the server says when one is reachable."""
    plan = session.plan
    report: dict[str, Any] = {
        "source": plan.source,
        "context": plan.context,
        "embedded": plan.embedded,
        "servers": [display_url(url) for url in plan.options.servers],
    }
    if plan.embedded:
        running = await asyncio.to_thread(embedded.find_running)
        report["running"] = running is not None
        report["data_dir"] = str(embedded.data_dir())
        if running is None:
            session.out.show(report, lambda: _status_text(report))
            return EXIT_OK
        report["servers"] = [display_url(running.url)]
    connection = await session.connection()
    report["connected_url"] = connection.connected_url
    report["server_version"] = connection.server_version
    report["jetstream"] = await _jetstream_usage(connection)
    session.out.show(report, lambda: _status_text(report))
    return EXIT_OK


async def _jetstream_usage(connection: Connection) -> dict[str, Any]:
    """The account's JetStream usage (``$JS.API.INFO``); an error is reported, not raised:
    a server without JetStream is still a status worth showing."""
    try:
        body = await connection.api.request("INFO")
    except errors.OsfsError as exc:
        return {"error": first_line(exc) or type(exc).__name__}
    keys = ("memory", "storage", "streams", "consumers", "limits", "domain")
    return {key: body[key] for key in keys if key in body}


def _status_text(report: Mapping[str, Any]) -> str:
    if report["embedded"] and not report.get("running"):
        where = "embedded server (not running; it starts on first use)"
    else:
        where = report.get("connected_url") or ", ".join(report["servers"])
    jetstream = report.get("jetstream") or {}
    fields: list[tuple[str, str | Sequence[str]]] = [
        ("Server", where),
        ("Chosen by", report["source"]),
        ("Data", report.get("data_dir", "")),
        ("Version", report.get("server_version", "")),
    ]
    if "error" in jetstream:
        fields.append(("JetStream", f"unavailable: {jetstream['error']}"))
    elif jetstream:
        limits = jetstream.get("limits") or {}
        fields += [
            ("Storage", _usage(jetstream.get("storage", 0), limits.get("max_storage", -1))),
            ("Memory", _usage(jetstream.get("memory", 0), limits.get("max_memory", -1))),
            ("Streams", str(jetstream.get("streams", 0))),
            ("Consumers", str(jetstream.get("consumers", 0))),
        ]
    return render_fields("osfs connection", fields)


def _usage(used: int, limit: int) -> str:
    return f"{format_size(used)} of {format_size(limit) if limit > 0 else 'unlimited'}"
