"""Bucket configuration to stream config, and STREAM.INFO to status (wire.md §1.2, §12).

Rules for these tests: the expected stream config is the one nats.go sends and the server
echoed back for a Go-created bucket (captured in wire.md §1.2), written out by hand.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from osfs.core.config import ObjectStoreConfig, ObjectStoreStatus, Placement, Storage
from osfs.core.errors import InvalidBucketNameError

# wire.md §1.2 [verified]: server-side config of a nats.go-created bucket (the server's own
# defaults such as max_msgs are left out; osfs does not send them either).
CAPTURED_GO_CONFIG: dict[str, Any] = {
    "allow_direct": True,
    "allow_rollup_hdrs": True,
    "compression": "none",
    "discard": "new",
    "max_age": 0,
    "max_bytes": -1,
    "name": "OBJ_GOB",
    "num_replicas": 1,
    "storage": "file",
    "subjects": ["$O.GOB.C.>", "$O.GOB.M.>"],
}

S = 1_000_000_000


def test_default_stream_config_is_what_nats_go_sends() -> None:
    assert ObjectStoreConfig("GOB").stream_config() == CAPTURED_GO_CONFIG


def test_subjects_are_chunks_then_meta() -> None:
    config = ObjectStoreConfig("b-1").stream_config()
    assert config["name"] == "OBJ_b-1"
    assert config["subjects"] == ["$O.b-1.C.>", "$O.b-1.M.>"]


def test_optional_fields_are_omitted_when_unset() -> None:
    config = ObjectStoreConfig("GOB").stream_config()
    for key in ("description", "placement", "metadata"):
        assert key not in config


@pytest.mark.parametrize(
    ("ttl", "max_age"),
    [
        (0, 0),
        (1, S),
        (3600, 3600 * S),
        (1.5, 1_500_000_000),
        (4.1, 4_100_000_000),  # 4.1 * 1e9 is 4099999999.9999995 in binary floating point
        (0.3, 300_000_000),
        (1e-9, 1),
        (86400 * 365, 86400 * 365 * S),
    ],
)
def test_ttl_seconds_become_max_age_nanoseconds(ttl: float, max_age: int) -> None:
    config = ObjectStoreConfig("GOB", ttl=ttl).stream_config()
    assert config["max_age"] == max_age
    assert isinstance(config["max_age"], int)


@pytest.mark.parametrize(
    ("max_bytes", "sent"), [(0, -1), (-1, -1), (-7, -1), (1, 1), (2**40, 2**40)]
)
def test_max_bytes_zero_or_negative_means_unlimited(max_bytes: int, sent: int) -> None:
    assert ObjectStoreConfig("GOB", max_bytes=max_bytes).stream_config()["max_bytes"] == sent


@pytest.mark.parametrize(("replicas", "sent"), [(0, 1), (1, 1), (3, 3), (5, 5)])
def test_replicas_zero_means_one(replicas: int, sent: int) -> None:
    assert ObjectStoreConfig("GOB", replicas=replicas).stream_config()["num_replicas"] == sent


def test_storage_compression_description_placement_metadata() -> None:
    config = ObjectStoreConfig(
        "GOB",
        description="docs",
        storage="memory",
        compression=True,
        placement=Placement(cluster="c1", tags=("ssd", "eu")),
        metadata={"owner": "team"},
    ).stream_config()
    assert config["storage"] == "memory"
    assert config["compression"] == "s2"
    assert config["description"] == "docs"
    assert config["placement"] == {"cluster": "c1", "tags": ["ssd", "eu"]}
    assert config["metadata"] == {"owner": "team"}
    json.dumps(config)  # a plain JSON document


def test_placement_without_tags_or_without_cluster() -> None:
    cluster_only = ObjectStoreConfig("GOB", placement=Placement(cluster="c1")).stream_config()
    assert cluster_only["placement"] == {"cluster": "c1"}
    tags_only = ObjectStoreConfig("GOB", placement=Placement(tags=("ssd",))).stream_config()
    assert tags_only["placement"] == {"tags": ["ssd"]}


@pytest.mark.parametrize("bucket", ["", "a.b", "a b", "é", "x" * 252])
def test_invalid_bucket_is_rejected(bucket: str) -> None:
    with pytest.raises(InvalidBucketNameError):
        ObjectStoreConfig(bucket).stream_config()


@pytest.mark.parametrize(
    "config",
    [
        ObjectStoreConfig("GOB", ttl=-1),
        ObjectStoreConfig("GOB", ttl=-1e-9),
        ObjectStoreConfig("GOB", replicas=6),
        ObjectStoreConfig("GOB", replicas=-1),
        ObjectStoreConfig("GOB", storage=cast(Storage, "disk")),
        ObjectStoreConfig("GOB", storage=cast(Storage, "File")),
    ],
    ids=["ttl-neg", "ttl-tiny-neg", "replicas-6", "replicas-neg", "storage-disk", "storage-case"],
)
def test_invalid_values_raise_value_error(config: ObjectStoreConfig) -> None:
    with pytest.raises(ValueError):
        config.stream_config()


# --- status -------------------------------------------------------------------------------

STREAM_INFO: dict[str, Any] = {
    "type": "io.nats.jetstream.api.v1.stream_info_response",
    "total": 0,
    "offset": 0,
    "limit": 0,
    "config": {
        "name": "OBJ_GOB",
        "description": "docs",
        "subjects": ["$O.GOB.C.>", "$O.GOB.M.>"],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 3600 * S,
        "max_msgs_per_subject": -1,
        "max_msg_size": -1,
        "discard": "new",
        "storage": "file",
        "num_replicas": 1,
        "duplicate_window": 120 * S,
        "compression": "none",
        "allow_direct": True,
        "mirror_direct": False,
        "sealed": False,
        "deny_delete": False,
        "deny_purge": False,
        "allow_rollup_hdrs": True,
        "consumer_limits": {},
        "metadata": {
            "_nats.level": "1",
            "_nats.req.level": "0",
            "_nats.ver": "2.15.1",
            "owner": "team",
        },
    },
    "created": "2026-11-23T08:52:30.123456789Z",
    "state": {
        "messages": 35,
        "bytes": 1_001_234,
        "first_seq": 1,
        "first_ts": "2026-11-23T08:52:30.2Z",
        "last_seq": 35,
        "last_ts": "2026-11-23T08:53:44.088400057Z",
        "num_subjects": 4,
        "consumer_count": 0,
    },
    "cluster": {"leader": "NAUJ4XLJ3VK3OYP6Y4T5SFOKCX7TSMSPRFCQWUJW2JN6GAEVPH4WLQCZ"},
    "ts": "2026-11-23T08:53:45.000000001Z",
}


def test_status_from_a_realistic_stream_info() -> None:
    status = ObjectStoreStatus.from_stream_info(STREAM_INFO)
    assert status.bucket == "GOB"
    assert status.description == "docs"
    assert status.ttl == 3600.0
    assert status.storage == "file"
    assert status.replicas == 1
    assert status.sealed is False
    assert status.size == 1_001_234
    assert status.max_bytes == -1
    assert status.compressed is False
    assert status.metadata == {"owner": "team"}
    assert status.messages == 35
    assert status.stream_info is STREAM_INFO
    assert status.backing_store == "JetStream"


def test_status_of_a_sealed_replicated_compressed_bucket() -> None:
    info = {
        "config": {
            "name": "OBJ_big",
            "max_age": 0,
            "max_bytes": 1 << 20,
            "storage": "memory",
            "num_replicas": 3,
            "sealed": True,
            "compression": "s2",
        },
        "state": {"messages": 0, "bytes": 0},
    }
    status = ObjectStoreStatus.from_stream_info(info)
    assert status.bucket == "big"
    assert status.description == ""
    assert status.ttl == 0
    assert status.storage == "memory"
    assert status.replicas == 3
    assert status.sealed is True
    assert status.max_bytes == 1 << 20
    assert status.compressed is True
    assert status.metadata == {}
    assert (status.size, status.messages) == (0, 0)


def test_status_reads_back_the_config_osfs_sends() -> None:
    config = ObjectStoreConfig(
        "GOB",
        description="d",
        ttl=4.1,
        max_bytes=4096,
        storage="memory",
        replicas=3,
        compression=True,
        metadata={"k": "v"},
    )
    status = ObjectStoreStatus.from_stream_info({"config": config.stream_config(), "state": {}})
    assert status.bucket == config.bucket
    assert status.description == config.description
    assert status.ttl == config.ttl
    assert status.max_bytes == config.max_bytes
    assert status.storage == config.storage
    assert status.replicas == config.replicas
    assert status.compressed is True
    assert status.metadata == {"k": "v"}
