"""Amazon S3 in the simulated account: buckets, their policies and objects.

The objects live here (``objects``: bucket -> key -> bytes); handler code that needs a boto3 S3
client (``packaging_logic.on_event``) gets one from ``session()``: moto's S3, seeded with these
objects and read back when the session ends, so the handlers' own calls (``head_object``,
``download_file``, ``copy``, ``put_object``) run against a real S3 request model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from device_sim.cloud.env import Env
from device_sim.cloud.errors import ServiceError
from device_sim.iam import Policy


class S3Backend:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.objects: dict[str, dict[str, bytes]] = {}
        self.bucket_regions: dict[str, str] = {}
        self.bucket_policies: dict[str, Policy] = {}
        self.metadata: dict[tuple[str, str], dict[str, str]] = {}  # user metadata (x-amz-meta-)
        self._client: Any = None

    # -- buckets
    def create_bucket(self, name: str) -> None:
        """botocore s3 ``CreateBucket`` errors: ``BucketAlreadyOwnedByYou`` ("The bucket you
        tried to create already exists, and you own it") — a bucket name is global, so a
        retained bucket blocks a stack that creates it again by name."""
        if name in self.bucket_regions:
            raise ServiceError(
                "CreateBucket",
                "BucketAlreadyOwnedByYou",
                f"The bucket you tried to create already exists, and you own it: {name}",
                409,
            )
        self.bucket_regions[name] = self.env.region
        self.objects.setdefault(name, {})
        if self._client is not None:
            _moto_bucket(self._client, name, self.env.region)

    def ensure_bucket(self, name: str) -> None:
        """A bucket outside any stack (the CDK bootstrap bucket, a brought model's bucket)."""
        if name not in self.bucket_regions:
            self.create_bucket(name)

    def delete_bucket(self, name: str) -> None:
        """botocore s3 ``DeleteBucket``: "All objects (including all object versions and delete
        markers) in the bucket must be deleted before the bucket itself can be deleted"; S3
        answers ``BucketNotEmpty`` (409)."""
        if name not in self.bucket_regions:
            raise ServiceError("DeleteBucket", "NoSuchBucket", f"bucket {name} does not exist", 404)
        if self.objects.get(name):
            raise ServiceError(
                "DeleteBucket",
                "BucketNotEmpty",
                f"The bucket you tried to delete is not empty: {name}",
                409,
            )
        del self.bucket_regions[name]
        self.objects.pop(name, None)
        self.bucket_policies.pop(name, None)

    def put_bucket_policy(self, bucket: str, document: Any) -> None:
        if bucket not in self.bucket_regions:
            raise ServiceError("PutBucketPolicy", "NoSuchBucket", f"bucket {bucket}", 404)
        self.bucket_policies[bucket] = Policy(f"{bucket} bucket policy", document)

    def delete_bucket_policy(self, bucket: str) -> None:
        self.bucket_policies.pop(bucket, None)

    # -- objects
    def put(self, bucket: str, key: str, data: bytes) -> None:
        if self._client is not None:
            self._client.put_object(Bucket=bucket, Key=key, Body=data)
        self.objects.setdefault(bucket, {})[key] = data

    def get(self, bucket: str, key: str) -> bytes | None:
        return self.objects.get(bucket, {}).get(key)

    def exists(self, bucket: str, key: str) -> bool:
        return key in self.objects.get(bucket, {})

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects.get(bucket, {}) if k.startswith(prefix))

    # -- a boto3 client for handler code
    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """A moto S3 client holding this account's objects; changes come back on exit."""
        if self._client is not None:
            yield self._client
            return
        import boto3
        from moto import mock_aws

        with mock_aws():
            client = boto3.client(
                "s3",
                region_name=self.env.region,
                aws_access_key_id="sim",
                aws_secret_access_key="sim",  # noqa: S106 - moto, no AWS call
            )
            for bucket, region in self.bucket_regions.items():
                _moto_bucket(client, bucket, region)
                for key, data in self.objects.get(bucket, {}).items():
                    meta = self.metadata.get((bucket, key), {})
                    client.put_object(Bucket=bucket, Key=key, Body=data, Metadata=meta)
            self._client = client
            try:
                yield client
            finally:
                self._client = None
                for bucket in list(self.bucket_regions):
                    objects: dict[str, bytes] = {}
                    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                    for page in pages:
                        for item in page.get("Contents", []):
                            got = client.get_object(Bucket=bucket, Key=item["Key"])
                            objects[item["Key"]] = got["Body"].read()
                            if got.get("Metadata"):
                                self.metadata[(bucket, item["Key"])] = dict(got["Metadata"])
                    self.objects[bucket] = objects


def _moto_bucket(client: Any, bucket: str, region: str) -> None:
    if region == "us-east-1":
        client.create_bucket(Bucket=bucket)
    else:
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
        )


class ObjectReader:
    """The ``GetObject`` a Lambda makes to read a small object, answered from the backend:
    ``NoSuchBucket`` / ``NoSuchKey`` as botocore's s3 model names them (the caller's role is
    assumed to hold s3:ListBucket, without which S3 answers 403 for a missing key)."""

    def __init__(self, backend: S3Backend) -> None:
        self.backend = backend

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        import io

        if Bucket not in self.backend.objects:
            raise ServiceError(
                "GetObject", "NoSuchBucket", "The specified bucket does not exist", 404
            )
        data = self.backend.get(Bucket, Key)
        if data is None:
            raise ServiceError("GetObject", "NoSuchKey", "The specified key does not exist.", 404)
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}
