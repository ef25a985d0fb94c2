"""A checkpoint staged in S3 for SageMaker: `weights stage --cloud aws`.

Each object carries the SHA-256 of its file in its user metadata (`x-amz-meta-sha256`), which a
later run compares to skip what is already there, and is sent with S3's own SHA-256 checksum
(`ChecksumAlgorithm`), which S3 checks the bytes against on arrival, part by part for a multipart
upload (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).
boto3's transfer manager uploads a large shard in parts; a part upload a killed run left is
aborted on the next (ListMultipartUploads, AbortMultipartUpload), since S3 bills stored parts.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from orchestrator.lifecycle.staging import SHA256_KEY
from providers.base import ProviderError


class S3WeightsStore:
    def __init__(self, uri: str, s3: Any, translated: Callable[[], AbstractContextManager[None]]) -> None:
        """`translated` turns the SDK's errors into the provider's (the provider's own, passed in so
        this module does not import the provider's)."""
        self.uri = uri
        self._bucket, _, self._prefix = uri.removeprefix("s3://").partition("/")
        self._s3 = s3
        self._translated = translated

    def existing(self) -> dict[str, tuple[int, str | None]]:
        found: dict[str, tuple[int, str | None]] = {}
        with self._translated():
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=self._prefix):
                for item in page.get("Contents", []):
                    name = item["Key"][len(self._prefix) :]
                    found[name] = self.stat(name) or (item["Size"], None)
        return found

    def stat(self, name: str) -> tuple[int, str | None] | None:
        from botocore.exceptions import ClientError

        with self._translated():
            try:
                head = self._s3.head_object(Bucket=self._bucket, Key=self._prefix + name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):  # HEAD answers a bare 404
                    return None
                raise
        return head["ContentLength"], head.get("Metadata", {}).get(SHA256_KEY)

    def upload(self, name: str, path: Path, sha256: str) -> None:
        from boto3.exceptions import S3UploadFailedError

        try:
            with self._translated():
                self._s3.upload_file(str(path), self._bucket, self._prefix + name, ExtraArgs={"Metadata": {SHA256_KEY: sha256}, "ChecksumAlgorithm": "SHA256"})
        except S3UploadFailedError as exc:  # the transfer manager's wrapper of a failed part or PUT: a ClientError inside
            raise ProviderError(f"uploading {path} to {self.uri}{name} failed: {exc}") from exc

    def discard_partial_uploads(self) -> int:
        dropped = 0
        with self._translated():
            for page in self._s3.get_paginator("list_multipart_uploads").paginate(Bucket=self._bucket, Prefix=self._prefix):
                for upload in page.get("Uploads", []):
                    self._s3.abort_multipart_upload(Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    dropped += 1
        return dropped

    def delete(self, name: str) -> None:
        with self._translated():
            self._s3.delete_object(Bucket=self._bucket, Key=self._prefix + name)

    def read(self, name: str) -> bytes:
        with self._translated():
            return self._s3.get_object(Bucket=self._bucket, Key=self._prefix + name)["Body"].read()
