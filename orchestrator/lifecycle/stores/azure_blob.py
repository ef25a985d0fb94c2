"""The state in Azure Blob Storage (azure-storage-blob).

`az://container/prefix` reaches the storage account from `AZURE_STORAGE_CONNECTION_STRING` (an
account key or SAS, as Azurite's is), or from `?account=NAME` (or `AZURE_STORAGE_ACCOUNT`) with the
same credentials as the Azure provider (DefaultAzureCredential: a service principal, workload or
managed identity, `az login`), which need the Storage Blob Data Contributor role on the container.
Conditional writes are the Blob service's `If-None-Match: *` (upload without overwrite) and
`If-Match: <etag>`; blob versioning, when on, shows as a version id on every write.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.lifecycle.stores.base import Location, StateError
from orchestrator.lifecycle.stores.objects import ObjectStore


class AzureBlobContainer:
    def __init__(self, location: Location) -> None:
        try:
            from azure.storage.blob import BlobServiceClient, LinearRetry
        except ImportError as exc:
            raise StateError(
                f"the state at {location} is in Azure Blob Storage, which needs azure-storage-blob: pip install 'llamadeploy[azure-blob]'"
            ) from exc
        self._location, self._prefix = location, f"{location.prefix}/" if location.prefix else ""
        self._versioned: bool | None = None
        # The Blob SDK's default retry waits 15 s and more between tries; a state call retries briefly, then says why.
        retry = LinearRetry(backoff=1, random_jitter_range=1, retry_total=2)
        connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        account = location.options.get("account") or os.environ.get("AZURE_STORAGE_ACCOUNT")
        with self._translated():
            if connection:
                service = BlobServiceClient.from_connection_string(connection, retry_policy=retry)
            elif account:
                from azure.identity import DefaultAzureCredential

                service = BlobServiceClient(f"https://{account}.blob.core.windows.net", credential=DefaultAzureCredential(), retry_policy=retry)
            else:
                raise StateError(
                    f"the state at {location} is in Azure Blob Storage: name the storage account with ?account=NAME or AZURE_STORAGE_ACCOUNT, "
                    "or set AZURE_STORAGE_CONNECTION_STRING"
                )
        self._container = service.get_container_client(location.bucket)
        self.where = f"container {location.bucket} of storage account {service.account_name}"

    @contextmanager
    def _translated(self) -> Iterator[None]:
        from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError

        try:
            yield
        except StateError:
            raise
        except ServiceRequestError as exc:
            raise StateError(f"cannot reach the Azure Blob state at {self._location}: {exc} (nothing was changed in any cloud)") from exc
        except HttpResponseError as exc:
            if exc.error_code == "ContainerNotFound":
                raise StateError(
                    f"the state's container {self._location.bucket} does not exist: create it (az storage container create --name {self._location.bucket}) "
                    "and turn blob versioning on"
                ) from exc
            raise StateError(f"the Azure Blob state at {self._location} refused a request ({exc.error_code or exc.status_code}: {exc.reason})") from exc
        except AzureError as exc:
            raise StateError(f"the Azure Blob state at {self._location} failed: {exc}") from exc

    def read(self, key: str) -> tuple[bytes, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._translated():
            try:
                download = self._container.download_blob(self._prefix + key)
            except ResourceNotFoundError as exc:
                if exc.error_code == "ContainerNotFound":
                    raise
                return None
            return download.readall(), download.properties.etag

    def create(self, key: str, data: bytes) -> str | None:
        from azure.core.exceptions import ResourceExistsError

        with self._translated():
            try:
                written = self._container.get_blob_client(self._prefix + key).upload_blob(data, overwrite=False)
            except ResourceExistsError:
                return None
        self._versioned = bool(written.get("version_id"))
        return str(written["etag"])

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        with self._translated():
            try:
                blob = self._container.get_blob_client(self._prefix + key)
                written = blob.upload_blob(data, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceNotFoundError):
                return None
        self._versioned = bool(written.get("version_id"))
        return str(written["etag"])

    def delete(self, key: str, etag: str | None = None) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        with self._translated():
            try:
                self._container.delete_blob(self._prefix + key, **condition)
            except (ResourceNotFoundError, ResourceModifiedError):
                return False
        return True

    def keys(self, prefix: str) -> list[str]:
        with self._translated():
            return [blob.name.removeprefix(self._prefix) for blob in self._container.list_blobs(name_starts_with=self._prefix + prefix)]

    def versioned(self) -> bool | None:
        """Known once something was written: a versioned container gives every write a version id."""
        return self._versioned


def azure_blob_store(location: Location) -> ObjectStore:
    return ObjectStore(location, AzureBlobContainer(location))
