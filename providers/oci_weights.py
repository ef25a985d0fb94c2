"""A checkpoint in OCI Object Storage: read for a model by reference, or staged by
`weights stage --cloud oci`.

A model by reference names each object at a version, so the bucket must keep versions (Oracle's
ADS refuses an unversioned one: BucketNotVersionedError in ads/model/datascience_model.py); the
description pairs each object with its version by ETag, as ADS's
_prepare_file_description_artifact does. Each staged object carries the SHA-256 of its file in
its metadata (`opc-meta-sha256`), which a later run compares to skip what is already there, and is
sent with a Content-MD5 that Object Storage checks on arrival (PutObject). PutObject takes up to
50 GiB, more than any safetensors shard, so no multipart upload is left behind by a killed run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from orchestrator.lifecycle.staging import SHA256_KEY, DiscardsNothing
from providers.base import NotFoundError, ProviderError


class ObjectStorageWeightsStore(DiscardsNothing):
    def __init__(self, uri: str, client: Any, namespace: str, bucket: str, prefix: str, translated: Callable[[], AbstractContextManager[None]]) -> None:
        """`translated` turns the SDK's errors into the provider's (passed in so this module does
        not import the provider's)."""
        self.uri = uri
        self._client, self._namespace, self._bucket, self._prefix = client, namespace, bucket, prefix
        self._translated = translated

    def require_versioning(self, region: str) -> None:
        try:
            with self._translated():
                versioning = self._client.get_bucket(self._namespace, self._bucket).data.versioning
        except NotFoundError as exc:  # buckets are regional: one elsewhere is not found here
            raise NotFoundError(f"{self.uri}: no bucket {self._bucket} in namespace {self._namespace} in {region} ({exc})") from exc
        if versioning != "Enabled":
            raise ProviderError(
                f"{self.uri}: bucket {self._bucket} does not keep object versions, which an OCI model by reference names; "
                f"turn versioning on (oci os bucket update --bucket-name {self._bucket} --versioning Enabled) and upload again"
            )

    def _listed(self) -> list[Any]:
        """Every object under the prefix (ListObjects, every page), with its size and ETag."""
        found: list[Any] = []
        start = None
        with self._translated():
            while True:
                page = self._client.list_objects(self._namespace, self._bucket, prefix=self._prefix, fields="name,size,etag", start=start).data
                found += [o for o in page.objects if not o.name.endswith("/")]
                start = page.next_start_with
                if not start:
                    return found

    def description(self) -> dict[str, Any]:
        """The objects under the prefix, each at its current version, as a model by reference lists them."""
        versions: dict[str, str] = {}
        page = None
        with self._translated():
            while True:
                response = self._client.list_object_versions(self._namespace, self._bucket, prefix=self._prefix, fields="name,etag", page=page)
                versions.update({v.etag: v.version_id for v in response.data.items if v.etag})
                page = response.next_page
                if not page:
                    break
        listed = self._listed()
        unversioned = [o.name for o in listed if o.etag not in versions]
        if unversioned:  # written between the two listings, or by a writer that keeps no version: a model missing it would not load
            raise ProviderError(f"{self.uri}: no version of {', '.join(unversioned[:3])} could be found; run the command again once nothing writes there")
        objects = [{"name": o.name, "version": versions[o.etag], "sizeInBytes": o.size} for o in listed]
        return {"namespace": self._namespace, "bucketName": self._bucket, "prefix": self._prefix, "objects": objects}

    def sizes(self) -> dict[str, int]:
        return {o.name[len(self._prefix) :]: int(o.size) for o in self._listed()}

    def existing(self) -> dict[str, tuple[int, str | None]]:
        """Each object's size and SHA-256 (its metadata, which ListObjects does not return: HeadObject)."""
        return {name: self.stat(name) or (size, None) for name, size in self.sizes().items()}

    def stat(self, name: str) -> tuple[int, str | None] | None:
        import oci

        with self._translated():
            try:
                head = self._client.head_object(self._namespace, self._bucket, self._prefix + name)
            except oci.exceptions.ServiceError as exc:
                if exc.status == 404:
                    return None
                raise
        return int(head.headers["content-length"]), head.headers.get(f"opc-meta-{SHA256_KEY}")

    def upload(self, name: str, path: Path, sha256: str) -> None:
        md5 = hashlib.md5()
        with path.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                md5.update(block)
        with self._translated(), path.open("rb") as data:
            self._client.put_object(
                self._namespace,
                self._bucket,
                self._prefix + name,
                data,
                content_md5=base64.b64encode(md5.digest()).decode(),
                content_type="application/octet-stream",
                opc_meta={SHA256_KEY: sha256},
            )

    def delete(self, name: str) -> None:
        with self._translated():
            self._client.delete_object(self._namespace, self._bucket, self._prefix + name)

    def read(self, name: str) -> bytes:
        with self._translated():
            return bytes(self._client.get_object(self._namespace, self._bucket, self._prefix + name).data.content)
