"""``osfs server``: run the embedded nats-server in the foreground, or stop the background one.

No connection and no event loop: ``osfs.embedded`` does the work; this only reports it.
"""

from __future__ import annotations

import argparse

from osfs import embedded
from osfs.cli.failures import EXIT_OK
from osfs.cli.output import Output


def server(args: argparse.Namespace, out: Output) -> int:
    """Serve until Ctrl-C (the server's own exit status), or stop the background server."""
    if not args.stop:
        return embedded.run_foreground()
    if embedded.stop_running():
        out.confirm({"stopped": True}, lambda: "stopped the embedded nats-server")
    else:
        out.confirm({"stopped": False}, lambda: "no embedded nats-server was running")
    return EXIT_OK
