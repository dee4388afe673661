"""Telling systemd (``Type=notify``) that the mount is ready or stopping: sd_notify by hand.

Why by hand: the protocol is one datagram on ``$NOTIFY_SOCKET``, not worth a dependency. An
abstract socket is written ``@name`` in the variable and ``\\0name`` on the wire.
"""

from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd; False when not run under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True
