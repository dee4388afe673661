"""``osfs fsck``: check a bucket, and with ``--repair`` purge orphan chunks.

Rules:
1. Without ``--repair`` nothing is changed. With it, only orphan chunks older than ``--grace``
   are purged (a younger one may be a put in progress); damaged objects are reported, never
   deleted: what to do with them is the owner's call.
2. Exit status: 0 when nothing is wrong (after the repair, with ``--repair``), 7 (corrupt)
   when damaged, corrupt or unreadable objects, or orphans not purged, remain. Hidden names
   are listed but are not problems.
"""

from __future__ import annotations

import argparse
from typing import Any

from osfs.cli.failures import EXIT_CORRUPT, EXIT_OK
from osfs.cli.output import plural
from osfs.cli.session import Session, session_command
from osfs.core.subjects import decode_name_token
from osfs.store.fsck import Report, check, repair


@session_command
async def fsck(session: Session, args: argparse.Namespace) -> int:
    """Check a bucket; ``--repair`` purges orphan chunks."""
    store = await session.store(args.bucket)
    report = await check(store, verify=args.verify, grace=args.grace)
    if args.repair and report.orphans:
        report = await repair(store, report)
    session.out.show(_as_dict(report), lambda: _as_text(report, repaired=args.repair))
    return EXIT_CORRUPT if report.problems else EXIT_OK


def _as_dict(report: Report) -> dict[str, Any]:
    findings = report.findings
    return {
        "bucket": report.bucket,
        "objects": findings.objects,
        "orphans": [
            {"nuid": o.nuid, "messages": o.messages, "newest_ns": o.newest_ns}
            for o in report.orphans
        ],
        "recent_orphans": [{"nuid": o.nuid, "messages": o.messages} for o in report.recent],
        "purged_messages": report.purged,
        "damaged": [{"name": d.name, "problem": d.problem} for d in findings.damaged],
        "corrupt": [{"name": d.name, "problem": d.problem} for d in report.corrupt],
        "unreadable_documents": len(findings.unreadable),
        "unreadable": [
            {"subject": subject, "name": name_in(subject)} for subject in findings.unreadable
        ],
        "hidden": [{"name": name, "reason": reason} for name, reason in findings.hidden],
        "problems": report.problems,
    }


def _as_text(report: Report, *, repaired: bool) -> str:
    findings = report.findings
    lines = [f"bucket {report.bucket}: {plural(findings.objects, 'object')} checked"]
    for orphan in report.orphans:
        state = "purged" if report.repaired else "orphan (--repair purges it)"
        lines.append(
            f"  chunks of nuid {orphan.nuid}: {plural(orphan.messages, 'message')}, {state}"
        )
    lines.extend(
        f"  chunks of nuid {orphan.nuid}: {plural(orphan.messages, 'message')}, recent "
        "(maybe a put in progress; left alone)"
        for orphan in report.recent
    )
    lines.extend(f"  damaged {d.name!r}: {d.problem}" for d in findings.damaged)
    lines.extend(f"  corrupt {c.name!r}: {c.problem}" for c in report.corrupt)
    for subject in findings.unreadable:
        name = name_in(subject)
        what = f"of {name!r}" if name is not None else "(its name cannot be decoded)"
        lines.append(f"  unreadable meta document {what} on {subject}")
    lines.extend(f"  hidden by the mount: {n!r} ({reason})" for n, reason in findings.hidden)
    problems = report.problems
    lines.append("no problems" if not problems else f"{plural(problems, 'problem')} left")
    return "\n".join(lines)


def name_in(subject: str) -> str | None:
    """The object name a meta subject encodes, None if osfs cannot decode it."""
    return decode_name_token(subject.rpartition(".")[2])
