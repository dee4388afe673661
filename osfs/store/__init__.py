"""The Object Store client: asyncio on nats-py, byte-compatible with the official clients.

Start with :func:`open_connection`; ``connection.manager`` creates and binds buckets
(:class:`ObjectStoreManager`), each an :class:`ObjectStore`. See ``osfs/store/API.md``.
"""

from osfs.store.bucket import ObjectResult, ObjectStore
from osfs.store.connection import Connection, ConnectOptions, open_connection
from osfs.store.manager import ObjectStoreManager
from osfs.store.watch import ObjectWatcher

__all__ = [
    "ConnectOptions",
    "Connection",
    "ObjectResult",
    "ObjectStore",
    "ObjectStoreManager",
    "ObjectWatcher",
    "open_connection",
]
