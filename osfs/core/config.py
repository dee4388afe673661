"""Bucket configuration and status, and the JetStream stream config they map to.

Rules (wire.md §1.2, §12): the stream config is the one nats.go sends (``discard: new``,
``allow_rollup_hdrs``, ``allow_direct``, ``max_bytes`` 0 -> -1, replicas 0 -> 1); status is
read from ``STREAM.INFO``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from osfs.core.subjects import (
    all_chunks_subject,
    all_meta_subject,
    bucket_of_stream,
    stream_name,
    validate_bucket,
)

Storage = Literal["file", "memory"]
#: Keys the server adds to stream metadata; hidden from users like the nats CLI hides them.
SERVER_METADATA_PREFIX = "_nats."


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a replicated bucket may live."""

    cluster: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ObjectStoreConfig:
    """What a bucket is created or updated with.

    Attributes:
        bucket: the bucket name.
        description: free text.
        ttl: seconds after which objects expire; 0 keeps them forever.
        max_bytes: the bucket's size limit in bytes; 0 or negative means unlimited.
        storage: ``"file"`` or ``"memory"``.
        replicas: copies kept in a cluster (1..5).
        compression: S2-compress the stream on disk (server >= 2.10).
        placement: cluster and tags for a clustered bucket.
        metadata: string key/value pairs on the stream.
    """

    bucket: str
    description: str = ""
    ttl: float = 0.0
    max_bytes: int = -1
    storage: Storage = "file"
    replicas: int = 1
    compression: bool = False
    placement: Placement | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def stream_config(self) -> dict[str, Any]:
        """The ``StreamConfig`` JSON, field for field as nats.go's ``CreateObjectStore``."""
        validate_bucket(self.bucket)
        if self.ttl < 0:
            raise ValueError("ttl must not be negative")
        if not 1 <= (self.replicas or 1) <= 5:
            raise ValueError("replicas must be between 1 and 5")
        if self.storage not in ("file", "memory"):
            raise ValueError("storage must be 'file' or 'memory'")
        config: dict[str, Any] = {
            "name": stream_name(self.bucket),
            "subjects": [all_chunks_subject(self.bucket), all_meta_subject(self.bucket)],
            "max_age": round(self.ttl * 1_000_000_000),
            "max_bytes": self.max_bytes if self.max_bytes > 0 else -1,
            "storage": self.storage,
            "num_replicas": self.replicas or 1,
            "discard": "new",
            "allow_rollup_hdrs": True,
            "allow_direct": True,
            "compression": "s2" if self.compression else "none",
        }
        if self.description:
            config["description"] = self.description
        if self.placement is not None:
            placement: dict[str, Any] = {}
            if self.placement.cluster:
                placement["cluster"] = self.placement.cluster
            if self.placement.tags:
                placement["tags"] = list(self.placement.tags)
            config["placement"] = placement
        if self.metadata:
            config["metadata"] = dict(self.metadata)
        return config


@dataclass(frozen=True, slots=True)
class ObjectStoreStatus:
    """A bucket's configuration and usage, from ``STREAM.INFO``.

    Attributes:
        bucket: the bucket name.
        description: free text.
        ttl: seconds objects live (0 = forever).
        storage: ``"file"`` or ``"memory"``.
        replicas: number of copies.
        sealed: True once sealed (read-only for ever).
        size: bytes the stream stores (chunks plus meta messages plus overhead).
        max_bytes: the size limit, -1 for none.
        compressed: S2 compression on.
        metadata: stream metadata without the server's ``_nats.*`` keys.
        messages: messages in the stream.
        stream_info: the raw ``STREAM.INFO`` response, for callers that want more.
    """

    bucket: str
    description: str
    ttl: float
    storage: str
    replicas: int
    sealed: bool
    size: int
    max_bytes: int
    compressed: bool
    metadata: Mapping[str, str]
    messages: int
    stream_info: Mapping[str, Any]
    backing_store: str = "JetStream"

    @classmethod
    def from_stream_info(cls, info: Mapping[str, Any]) -> ObjectStoreStatus:
        """Build from a ``STREAM.INFO`` response body."""
        config = info.get("config") or {}
        state = info.get("state") or {}
        name = str(config.get("name", ""))
        metadata = {
            key: value
            for key, value in (config.get("metadata") or {}).items()
            if not key.startswith(SERVER_METADATA_PREFIX)
        }
        return cls(
            bucket=bucket_of_stream(name) or name,
            description=str(config.get("description") or ""),
            ttl=int(config.get("max_age") or 0) / 1_000_000_000,
            storage=str(config.get("storage") or "file"),
            replicas=int(config.get("num_replicas") or 1),
            sealed=bool(config.get("sealed", False)),
            size=int(state.get("bytes") or 0),
            max_bytes=int(config.get("max_bytes") or -1),
            compressed=(config.get("compression") or "none") != "none",
            metadata=metadata,
            messages=int(state.get("messages") or 0),
            stream_info=info,
        )
