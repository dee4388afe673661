"""Creating, binding, listing and deleting buckets: the seed's ``ObjectStoreManager``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from osfs.core import errors
from osfs.core.config import ObjectStoreConfig, ObjectStoreStatus
from osfs.core.subjects import bucket_of_stream, stream_name, validate_bucket
from osfs.store.bucket import ObjectStore
from osfs.store.jsapi import JetStreamApi

#: Matches the chunk subjects of every bucket: how nats.go finds Object Store streams.
ALL_BUCKETS_FILTER = "$O.*.C.>"


class ObjectStoreManager:
    """Buckets on one connection.

    Args:
        api: the JetStream API of the connection.
    """

    def __init__(self, api: JetStreamApi) -> None:
        self._api = api

    async def object_store(self, bucket: str) -> ObjectStore:
        """Bind to an existing bucket.

        Raises:
            InvalidBucketNameError, BucketNotFoundError.
        """
        validate_bucket(bucket)
        try:
            info = await self._api.stream_info(stream_name(bucket))
        except errors.BucketNotFoundError as exc:
            raise errors.BucketNotFoundError(f"bucket {bucket!r} not found") from exc
        return self._bound(bucket, info)

    def _bound(self, bucket: str, info: Mapping[str, Any]) -> ObjectStore:
        replicas = int((info.get("config") or {}).get("num_replicas") or 1)
        return ObjectStore(self, self._api, bucket, replicas=replicas)

    async def create_object_store(self, config: ObjectStoreConfig) -> ObjectStore:
        """Create a bucket (idempotent when an identical one exists).

        Raises:
            BucketExistsError: a bucket of that name exists with another configuration.
        """
        info = await self._api.stream_create(config.stream_config())
        return self._bound(config.bucket, info)

    async def update_object_store(self, config: ObjectStoreConfig) -> ObjectStore:
        """Change an existing bucket's configuration.

        Raises:
            BucketNotFoundError.
        """
        info = await self._api.stream_update(config.stream_config())
        return self._bound(config.bucket, info)

    async def create_or_update_object_store(self, config: ObjectStoreConfig) -> ObjectStore:
        """Create the bucket, or update it if it exists."""
        try:
            return await self.create_object_store(config)
        except errors.BucketExistsError:
            return await self.update_object_store(config)

    async def delete_object_store(self, bucket: str) -> None:
        """Delete a bucket and everything in it.

        Raises:
            InvalidBucketNameError, BucketNotFoundError.
        """
        validate_bucket(bucket)
        try:
            await self._api.stream_delete(stream_name(bucket))
        except errors.BucketNotFoundError as exc:
            raise errors.BucketNotFoundError(f"bucket {bucket!r} not found") from exc

    async def object_store_names(self) -> AsyncIterator[str]:
        """The names of every bucket."""
        for name in await self._api.stream_names(ALL_BUCKETS_FILTER):
            bucket = bucket_of_stream(name)
            if bucket is not None:
                yield bucket

    async def object_stores(self) -> AsyncIterator[ObjectStoreStatus]:
        """The status of every bucket."""
        for info in await self._api.stream_list(ALL_BUCKETS_FILTER):
            if bucket_of_stream(str(info.get("config", {}).get("name", ""))) is not None:
                yield ObjectStoreStatus.from_stream_info(info)
