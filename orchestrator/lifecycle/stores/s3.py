"""The state in S3, or any store that speaks S3's API with conditional writes (boto3).

`s3://bucket/prefix` takes boto3's usual credentials (environment, profile, SSO, instance role)
and region. Another S3-compatible store is reached with `?endpoint_url=`: Oracle Cloud's Object
Storage S3 compatibility API (`https://<namespace>.compat.objectstorage.<region>.oraclecloud.com`,
with `&region=<region>&addressing_style=path`) or MinIO (`http://minio:9000`). Conditional writes
are PutObject's `If-None-Match: *` and `If-Match: <etag>` (S3 API reference, PutObject): a store
that ignores them cannot keep two writers apart, so use one that supports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.lifecycle.stores.base import Location, StateError
from orchestrator.lifecycle.stores.objects import ObjectStore

# A lost conditional write: 412 Precondition Failed, 409 when another conditional write to the key is in
# flight, or NoSuchKey when an If-Match write finds the object gone.
_LOST = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"}


class S3Bucket:
    def __init__(self, location: Location) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise StateError(f"the state at {location} is in S3, which needs boto3: pip install 'llamadeploy[s3]'") from exc
        options = location.options
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            s3={"addressing_style": options.get("addressing_style", "auto")},
            connect_timeout=10,
            user_agent_extra="llamadeploy-state",
        )
        session = boto3.session.Session(region_name=options.get("region"))
        self._s3 = session.client("s3", endpoint_url=options.get("endpoint_url"), config=config)
        self._name, self._prefix = location.bucket, f"{location.prefix}/" if location.prefix else ""
        self.where = f"bucket {location.bucket}"
        self._location = location

    @contextmanager
    def _translated(self) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise StateError(f"the state's bucket {self._name} does not exist: create it (aws s3 mb s3://{self._name}) and turn versioning on") from exc
            raise StateError(f"the S3 state at {self._location} refused a request ({code}: {exc.response.get('Error', {}).get('Message', exc)})") from exc
        except BotoCoreError as exc:
            raise StateError(f"cannot reach the S3 state at {self._location}: {exc} (nothing was changed in any cloud)") from exc

    def read(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        with self._translated():
            try:
                found = self._s3.get_object(Bucket=self._name, Key=self._prefix + key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return found["Body"].read(), found["ETag"]

    def _put(self, key: str, data: bytes, **condition: Any) -> str | None:
        from botocore.exceptions import ClientError

        with self._translated():
            try:
                written = self._s3.put_object(Bucket=self._name, Key=self._prefix + key, Body=data, ContentType="application/json", **condition)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _LOST:
                    return None
                raise
        return str(written["ETag"])

    def create(self, key: str, data: bytes) -> str | None:
        return self._put(key, data, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        return self._put(key, data, IfMatch=etag)

    def delete(self, key: str, etag: str | None = None) -> bool:
        from botocore.exceptions import ClientError

        with self._translated():
            try:
                self._s3.delete_object(Bucket=self._name, Key=self._prefix + key, **({"IfMatch": etag} if etag else {}))
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _LOST:
                    return False
                raise
        return True

    def keys(self, prefix: str) -> list[str]:
        with self._translated():
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._name, Prefix=self._prefix + prefix)
            return [item["Key"].removeprefix(self._prefix) for page in pages for item in page.get("Contents", [])]

    def versioned(self) -> bool | None:
        with self._translated():
            return self._s3.get_bucket_versioning(Bucket=self._name).get("Status") == "Enabled"


def s3_store(location: Location) -> ObjectStore:
    return ObjectStore(location, S3Bucket(location))
