"""A checkpoint staged on an Azure ML datastore's blob container: `weights stage --cloud azure`.

Each blob carries the SHA-256 of its file in its metadata (`x-ms-meta-sha256`), which a later run
compares to skip what is already there, and is sent with azure-storage-blob's `validate_content`,
a transactional MD5 of each request's body that Blob storage checks on arrival
(https://learn.microsoft.com/rest/api/storageservices/put-blob, Content-MD5). A large file goes
as blocks; blocks a killed run left uncommitted hold no blob and are discarded by Blob storage
after a week ("Put Block": uncommitted blocks are garbage collected), so none is listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from orchestrator.lifecycle.staging import SHA256_KEY, DiscardsNothing


class BlobWeightsStore(DiscardsNothing):
    def __init__(self, uri: str, container: Any, folder: str, translated: Callable[[], AbstractContextManager[None]]) -> None:
        """`container` is the datastore's ContainerClient and `folder` the blob name prefix;
        `translated` turns the SDK's errors into the provider's (passed in so this module does
        not import the provider's)."""
        self.uri = uri
        self._container = container
        self._folder = folder
        self._translated = translated

    def existing(self) -> dict[str, tuple[int, str | None]]:
        with self._translated():
            return {
                blob.name[len(self._folder) :]: (int(blob.size), (blob.metadata or {}).get(SHA256_KEY))
                for blob in self._container.list_blobs(name_starts_with=self._folder, include=["metadata"])
            }

    def stat(self, name: str) -> tuple[int, str | None] | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._translated():
            try:
                properties = self._container.get_blob_client(self._folder + name).get_blob_properties()
            except ResourceNotFoundError:
                return None
        return int(properties.size), (properties.metadata or {}).get(SHA256_KEY)

    def upload(self, name: str, path: Path, sha256: str) -> None:
        with self._translated(), path.open("rb") as data:
            self._container.upload_blob(self._folder + name, data, overwrite=True, metadata={SHA256_KEY: sha256}, validate_content=True)

    def delete(self, name: str) -> None:
        with self._translated():
            self._container.delete_blob(self._folder + name)

    def read(self, name: str) -> bytes:
        with self._translated():
            return bytes(self._container.download_blob(self._folder + name).readall())
