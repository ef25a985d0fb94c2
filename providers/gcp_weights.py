"""A checkpoint staged in Cloud Storage for Vertex AI: `weights stage --cloud gcp`.

Each object carries the SHA-256 of its file in its custom metadata (`metadata.sha256`), which a
later run compares to skip what is already there, and is uploaded with google-cloud-storage's
own checksum (`checksum="auto"`: a CRC32C, else an MD5, that Cloud Storage checks the bytes
against on arrival, https://cloud.google.com/storage/docs/data-validation). A resumable upload a
killed run left cannot be listed in Cloud Storage: its session expires by itself after a week
and holds no object until finished. Every call is made with `retry=None`: google-cloud-storage
retries reads on its own by default, and retrying is the engine's alone.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from orchestrator.lifecycle.staging import SHA256_KEY, DiscardsNothing


class GcsWeightsStore(DiscardsNothing):
    def __init__(self, uri: str, client: Any, translated: Callable[[], AbstractContextManager[None]]) -> None:
        """`translated` turns the SDK's errors into the provider's (the provider's own, passed in so
        this module does not import the provider's)."""
        self.uri = uri
        self._translated = translated
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        self._prefix = prefix.strip("/") + "/"  # as the Model Garden image reads the folder
        self._client = client
        with self._translated():
            self._bucket = client.bucket(bucket)

    def existing(self) -> dict[str, tuple[int, str | None]]:
        with self._translated():
            blobs = self._client.list_blobs(self._bucket, prefix=self._prefix, retry=None)
            return {
                blob.name[len(self._prefix) :]: (int(blob.size or 0), (blob.metadata or {}).get(SHA256_KEY)) for blob in blobs if not blob.name.endswith("/")
            }

    def stat(self, name: str) -> tuple[int, str | None] | None:
        with self._translated():
            blob = self._bucket.get_blob(self._prefix + name, retry=None)
        return None if blob is None else (int(blob.size or 0), (blob.metadata or {}).get(SHA256_KEY))

    def upload(self, name: str, path: Path, sha256: str) -> None:
        with self._translated():
            blob = self._bucket.blob(self._prefix + name)
            blob.metadata = {SHA256_KEY: sha256}
            blob.upload_from_filename(str(path), checksum="auto", retry=None)

    def delete(self, name: str) -> None:
        with self._translated():
            self._bucket.blob(self._prefix + name).delete(retry=None)

    def read(self, name: str) -> bytes:
        with self._translated():
            return self._bucket.blob(self._prefix + name).download_as_bytes(retry=None)
