"""Azure Resource Manager for Azure ML online endpoints and Monitor autoscale, on 127.0.0.1.

Just enough ARM for azure-ai-ml and azure-mgmt-monitor to run unmodified over real HTTP:
the workspace (with its location), online endpoints and deployments as long-running
operations (`Azure-AsyncOperation` + `Location`, done after N polls), environment versions,
workspace connections (the secret store), autoscale settings, endpoint keys, and the App
Service managed-identity token endpoint that azure-identity's DefaultAzureCredential calls.

It rejects what Azure rejects that matters here (an instance type the region does not offer,
a deployment for a missing endpoint, a deployment without `scaleSettings.scaleType`, an endpoint
name outside Azure's rules or taken in the region by another customer, a secret reference on an
endpoint created without access to the default secret stores), injects faults (quota at PUT,
capacity in the operation, 429 with Retry-After, 500), records every request and keeps an
inventory for the tests.

It also runs what a deployment deploys, as Azure ML does: the workspace's default datastore and
its blob container (on the test internet, `<account>.blob.core.windows.net`) receive the
environment's build context; the environment is built from its Dockerfile
(tests/emulators/containers.py); a deployment's container starts from that image with the
deployment's environment variables, `${{azureml://connections/...}}` references resolved, and
must answer the environment's readiness route on its port, or the deployment fails. The scoring
host (`<endpoint>.<region>.inference.ml.azure.com`) checks the endpoint key and routes to the
deployment holding the traffic, or to the one the `azureml-model-deployment` header names
(how-to-safely-rollout-online-endpoints): `/score` to the scoring route, any other path through.
An endpoint's traffic must name its own deployments and add up to 0 or 100, and a deployment that
still has traffic is not deleted (the same page; the wording of both refusals is not published).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from tests.emulators import containers
from tests.emulators.http import DROP, Answer, Call, JsonStandIn
from tests.emulators.internet import Internet
from tests.emulators.vllm import ContainerFailed

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
# How soon a client should poll an operation again, in Azure's millisecond header (azure-core
# reads it; a `Retry-After: 0` would mean "use your 30 s default", and the SDK parses that one as an int).
OPERATION_RETRY_AFTER_MS = "50"
RESOURCE_GROUP = "llm"
WORKSPACE = "llm-prod"
LOCATION = "eastus"
STORAGE_ACCOUNT = "llmprodstore"
BLOB_CONTAINER = "azureml-blobstore-00000000-0000-0000-0000-000000000001"
PRIMARY_KEY = "primary-key"
# Endpoint names are unique per region across every customer; these are already taken in eastus.
TAKEN_ENDPOINT_NAMES = {"chat", "llama", "test", "demo"}
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
# A model asset's path on a datastore, in azure-ai-ml's short or long form (constants/_common.py,
# SHORT_URI_FORMAT and LONG_URI_FORMAT).
_MODEL_URI = re.compile(r"^azureml://(?:subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/)?datastores/(?P<datastore>[^/]+)/paths/(?P<path>.+)$")
DATASTORE = "workspaceblobstore"
MODEL_DIR = "/var/azureml-app/azureml-models"  # AZUREML_MODEL_DIR is <this>/<model name>/<version>
_SECRET_REFERENCE = re.compile(r"^\$\{\{azureml://connections/(?P<name>[^/]+)/credentials/(?P<key>[^}]+)\}\}$")
INSTANCE_TYPES = {
    "eastus": {
        "Standard_NC24ads_A100_v4",
        "Standard_NC48ads_A100_v4",
        "Standard_NC96ads_A100_v4",
        "Standard_NC40ads_H100_v5",
        "Standard_NC80adis_H100_v5",
        "Standard_ND96amsr_A100_v4",
        "Standard_ND96isr_H100_v5",
        "Standard_NV36ads_A10_v5",
    }
}
# Each size's Azure ML VM family, as its usage rows name it (reference-managed-online-endpoints-vm-sku-list.md).
FAMILIES = {
    "Standard_NC24ads_A100_v4": "standardNCADSA100v4Family",
    "Standard_NC48ads_A100_v4": "standardNCADSA100v4Family",
    "Standard_NC96ads_A100_v4": "standardNCADSA100v4Family",
    "Standard_NC40ads_H100_v5": "standardNCADSH100v5Family",
    "Standard_NC80adis_H100_v5": "standardNCADSH100v5Family",
    "Standard_ND96amsr_A100_v4": "standard NDAMSv4_A100Family",
    "Standard_ND96isr_H100_v5": "standardNDv5H100Family",
    "Standard_NV36ads_A10_v5": "standardNVADSA10v5Family",
}
DEFAULT_FAMILY_CORES = 960  # dedicated cores per family in the stand-in's subscription (real GPU families start at 0)
_WS = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
_SCORING_HOST = re.compile(rf"^(?P<endpoint>[^.]+)\.{LOCATION}\.inference\.ml\.azure\.com$")
SCORING_HOSTS = rf"[a-z0-9-]+\.{LOCATION}\.inference\.ml\.azure\.com"
BLOB_HOST = rf"{STORAGE_ACCOUNT}\.blob\.core\.windows\.net"
_ROUTES = [
    ("workspace", re.compile(_WS + r"$")),
    ("endpoints", re.compile(_WS + r"/onlineEndpoints$")),
    ("deployments", re.compile(_WS + r"/onlineEndpoints/(?P<endpoint>[^/]+)/deployments$")),
    ("deployment", re.compile(_WS + r"/onlineEndpoints/(?P<endpoint>[^/]+)/deployments/(?P<name>[^/]+)$")),
    ("keys", re.compile(_WS + r"/onlineEndpoints/(?P<endpoint>[^/]+)/listKeys$")),
    ("endpoint", re.compile(_WS + r"/onlineEndpoints/(?P<endpoint>[^/]+)$")),
    ("environment", re.compile(_WS + r"/environments/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")),
    ("model_version", re.compile(_WS + r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$")),
    ("model", re.compile(_WS + r"/models/(?P<name>[^/]+)$")),
    ("connection", re.compile(_WS + r"/connections/(?P<name>[^/]+)$")),
    ("secrets", re.compile(_WS + r"/datastores/(?P<name>[^/]+)/listSecrets$")),
    ("datastore", re.compile(_WS + r"/datastores/(?P<name>[^/]+)$")),
    ("autoscale", re.compile(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/microsoft\.insights/autoscalesettings/(?P<name>[^/]+)$", re.IGNORECASE)),
    ("usages", re.compile(r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices/locations/(?P<location>[^/]+)/usages$")),
    ("vm_sizes", re.compile(r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices/locations/(?P<location>[^/]+)/vmSizes$")),
    ("operation", re.compile(r"/operations/(?P<id>\d+)$")),
    ("token", re.compile(r"/msi/token$")),
]


@dataclass
class Request:
    method: str
    kind: str
    path: str
    body: dict[str, Any]
    at: float


@dataclass
class Faults:
    """What the stand-in does to the next requests; tests set these fields."""

    polls: int = 0  # operation polls before an LRO finishes
    deployment_polls: int | None = None  # the same for an online deployment's LRO only, when set
    family_cores: dict[str, int] = field(default_factory=dict)  # VM family -> dedicated cores limit
    quota_for: set[str] = field(default_factory=set)  # instance types whose PUT fails on quota
    capacity_for: set[str] = field(default_factory=set)  # instance types whose operation fails for capacity
    throttle_next: int = 0
    drop_next: int = 0  # connections closed without an answer
    retry_after: int = 1
    server_error_next: int = 0
    token_refused: bool = False
    inside_network: bool = False  # calls come from inside the endpoint's network (a private endpoint answers them)
    serving_error_next: int = 0  # scoring calls answered 503, as a replica that is not yet taking requests
    storage_error_next: int = 0  # blob calls answered 503 ServerBusy


@dataclass
class _Operation:
    polls_left: int
    on_done: Any  # called when the operation ends; may return an error that fails it
    error: dict[str, str] | None = None
    path: str = ""  # the resource it works on


class AzureStandIn(JsonStandIn):
    """The ARM stand-in; point MLClient's resource manager and the identity endpoint at `url`."""

    def __init__(self, internet: Internet) -> None:
        super().__init__()
        _quicker_experimental_check()
        internet.serve(SCORING_HOSTS, self.scoring)
        internet.serve(BLOB_HOST, self.blob)
        self.faults = Faults()
        self.requests: list[Request] = []
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.environments: dict[tuple[str, str], dict[str, Any]] = {}
        self.models: dict[tuple[str, str], dict[str, Any]] = {}
        self.connections: dict[str, dict[str, Any]] = {}
        self.autoscale: dict[str, dict[str, Any]] = {}
        self.creations: list[tuple[str, str]] = []  # (kind, name) each time a resource came into being
        self.blobs: dict[str, tuple[bytes, dict[str, str]]] = {}  # path in the account -> content, metadata
        self.containers: dict[tuple[str, str], containers.Container] = {}
        self._operations: dict[str, _Operation] = {}
        self._ids = itertools.count(1)

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.requests.clear()
            for store in (
                self.endpoints,
                self.deployments,
                self.environments,
                self.models,
                self.connections,
                self.autoscale,
                self._operations,
                self.blobs,
                self.containers,
            ):
                store.clear()
            self.creations.clear()

    def updating_in_place(self) -> int:
        """Azure ML replaces nothing in place: a second deployment is a serving resource of its own."""
        return 0

    def finish_operations(self, polls: int = 0) -> None:
        """Every operation in flight ends after `polls` more polls of it (at once with 0), as Azure's would eventually."""
        with self._lock:
            self.faults.polls, self.faults.deployment_polls = polls, None
            for operation in self._operations.values():
                operation.polls_left = min(operation.polls_left, polls)
                if polls == 0:
                    self._complete(operation)

    def _complete(self, operation: _Operation) -> None:
        if operation.on_done is not None:
            operation.error = operation.on_done() or operation.error
            operation.on_done = None

    def inventory(self) -> dict[str, list[str]]:
        with self._lock:
            return {
                "endpoints": sorted(self.endpoints),
                "deployments": sorted(f"{e}/{d}" for e, d in self.deployments),
                "environments": sorted(f"{n}:{v}" for n, v in self.environments),
                "models": sorted(f"{n}:{v}" for n, v in self.models),
                "connections": sorted(self.connections),
                "autoscale_settings": sorted(self.autoscale),
            }

    def received(self, method: str, kind: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == method and r.kind == kind]

    def delete_endpoint_by_hand(self, name: str) -> None:
        with self._lock:
            self.endpoints.pop(name, None)
            for key in [k for k in self.deployments if k[0] == name]:
                del self.deployments[key]
                self.containers.pop(key, None)

    def endpoint_named(self, deployment: str) -> str:
        """The endpoint llamadeploy made for a deployment (found by its tag, as a user would)."""
        with self._lock:
            return next(name for name, e in self.endpoints.items() if e.get("tags", {}).get("llamadeploy-deployment") == deployment)

    def scoring(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """The scoring host: key auth, then the deployment holding the traffic, as Azure ML routes."""
        endpoint_name = _SCORING_HOST.match(headers.get("host", "")).group("endpoint")  # type: ignore[union-attr]
        with self._lock:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is None:
                return 404, {"message": f"endpoint {endpoint_name} not found"}, {}
            if headers.get("authorization") != f"Bearer {PRIMARY_KEY}":
                return 401, {"message": "key_auth_access_denied"}, {}
            if str(endpoint["properties"].get("publicNetworkAccess", "")).lower() == "disabled" and not self.faults.inside_network:
                return 403, {"message": "Public network access is disabled for this endpoint; call it through the workspace's private endpoint"}, {}
            if self.faults.serving_error_next:
                self.faults.serving_error_next -= 1
                return 503, {"message": "upstream request timeout"}, {}
            pinned = headers.get("azureml-model-deployment")
            serving = [pinned] if pinned else [name for name, share in (endpoint["properties"].get("traffic") or {}).items() if share]
            container = next((self.containers[(endpoint_name, name)] for name in serving if (endpoint_name, name) in self.containers), None)
            environment = self._environment_of(endpoint_name, serving[0]) if serving else None
        if container is None or environment is None:
            return 424, {"message": "no deployment of this endpoint is serving: no healthy upstream"}, {}
        scoring_route = environment["properties"].get("inferenceConfig", {}).get("scoringRoute", {}).get("path", "/score")
        forwarded = scoring_route if path == "/score" else path
        status, answer = container.handle(method, forwarded, body)
        return status, answer, {}

    def blob(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Blob storage for the workspace's account (SharedKey auth): put (checking a Content-MD5
        sent with it), properties, metadata, a ranged get, delete, and the container's listing
        (List Blobs: learn.microsoft.com/rest/api/storageservices/list-blobs)."""
        if not headers.get("authorization", "").startswith(f"SharedKey {STORAGE_ACCOUNT}:"):
            return 403, {"message": "AuthenticationFailed"}, {"x-ms-error-code": "AuthenticationFailed"}
        with self._lock:
            if self.faults.storage_error_next > 0:
                self.faults.storage_error_next -= 1
                return 503, {"message": "The server is busy."}, {"x-ms-error-code": "ServerBusy"}
        url = urlsplit(path)
        name = unquote(url.path).lstrip("/")
        query = parse_qs(url.query)
        with self._lock:
            if method == "GET" and query.get("comp") == ["list"] and query.get("restype") == ["container"]:
                return 200, self._blob_listing(name, query.get("prefix", [""])[0]), {"Content-Type": "application/xml"}
            if method == "DELETE":
                if self.blobs.pop(name, None) is None:
                    return 404, None, {"x-ms-error-code": "BlobNotFound"}
                return 202, None, {}
            if method == "PUT" and "content-md5" in headers and "comp=" not in url.query:
                sent = body if isinstance(body, bytes) else b""
                if base64.b64encode(hashlib.md5(sent).digest()).decode() != headers["content-md5"]:
                    return 400, None, {"x-ms-error-code": "Md5Mismatch"}
            if method == "PUT" and "comp=metadata" in url.query:
                if name not in self.blobs:
                    return 404, None, {"x-ms-error-code": "BlobNotFound"}
                self.blobs[name] = (self.blobs[name][0], {k[len("x-ms-meta-") :]: v for k, v in headers.items() if k.startswith("x-ms-meta-")})
                return 200, None, {"ETag": '"1"'}
            if method == "PUT":
                content = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
                self.blobs[name] = (content, {k[len("x-ms-meta-") :]: v for k, v in headers.items() if k.startswith("x-ms-meta-")})
                return 201, None, {"ETag": '"1"', "Content-MD5": ""}
            if method in ("HEAD", "GET") and name in self.blobs:
                content, metadata = self.blobs[name]
                meta_headers = {f"x-ms-meta-{k}": v for k, v in metadata.items()}
                described = {"x-ms-blob-type": "BlockBlob", "ETag": '"1"', "Last-Modified": "Tue, 01 Dec 2026 00:00:00 GMT", **meta_headers}
                ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("x-ms-range") or headers.get("range") or "")
                if method == "GET" and ranged and content:
                    start, end = int(ranged[1]), min(int(ranged[2] or len(content) - 1), len(content) - 1)
                    return 206, content[start : end + 1], {**described, "Content-Range": f"bytes {start}-{end}/{len(content)}"}
                return 200, None if method == "HEAD" else content, {**described, "Content-Length": str(len(content))} if method == "HEAD" else described
            return 404, None, {"x-ms-error-code": "BlobNotFound"}

    def _blob_listing(self, container: str, prefix: str) -> bytes:
        """List Blobs' EnumerationResults for the blobs of `container` under `prefix`, in one page."""
        entries = []
        for full, (content, metadata) in sorted(self.blobs.items()):
            held_in, _, blob = full.partition("/")
            if held_in != container or not blob.startswith(prefix):
                continue
            meta = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in metadata.items())
            entries.append(
                f"<Blob><Name>{escape(blob)}</Name><Properties><Last-Modified>Tue, 01 Dec 2026 00:00:00 GMT</Last-Modified><Etag>0x1</Etag>"
                f"<Content-Length>{len(content)}</Content-Length><Content-Type>application/octet-stream</Content-Type>"
                f"<BlobType>BlockBlob</BlobType></Properties><Metadata>{meta}</Metadata></Blob>"
            )
        service = f"https://{STORAGE_ACCOUNT}.blob.core.windows.net/"
        return (
            f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="{service}" ContainerName="{escape(container)}">'
            f"<Prefix>{escape(prefix)}</Prefix><Blobs>{''.join(entries)}</Blobs><NextMarker /></EnumerationResults>"
        ).encode()

    def _environment_of(self, endpoint: str, deployment: str) -> dict[str, Any] | None:
        reference = self.deployments[(endpoint, deployment)]["properties"].get("environmentId", "")
        match = re.search(r"environments/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", reference)
        return self.environments.get((match["name"], match["version"])) if match else None

    def _start_container(self, endpoint: str, name: str) -> dict[str, str] | None:
        """Build the deployment's environment and start its container, as Azure ML does when the
        deployment provisions; an error that fails the deployment, or None."""
        deployment = self.deployments[(endpoint, name)]
        properties = deployment["properties"]
        environment = self._environment_of(endpoint, name)
        if environment is None:
            return {"code": "BadArgument", "message": f"environment {properties.get('environmentId')} not found"}
        try:
            image = self._image(environment)
        except containers.UnknownImage as exc:
            return {"code": "ImageBuildFailure", "message": f"the environment image failed to build: {exc}"}
        env = {key: self._resolved(value) for key, value in (properties.get("environmentVariables") or {}).items()}
        mounts: dict[str, dict[str, bytes]] = {}
        if properties.get("model"):
            located = self.model_files(properties["model"])
            if located is None:
                return {"code": "UserError", "message": f"model {properties['model']} was deleted"}
            model_dir, files = located
            env["AZUREML_MODEL_DIR"] = model_dir
            folders: dict[str, dict[str, bytes]] = {}
            for relative, data in files.items():
                folder, _, rest = relative.partition("/")
                folders.setdefault(f"{model_dir}/{folder}", {})[rest] = data
            mounts.update(folders)
        readiness = environment["properties"].get("inferenceConfig", {}).get("readinessRoute", {})
        try:
            container = containers.start(image, env, properties.get("instanceType", ""), mounts=mounts)
            status, _ = container.handle("GET", readiness.get("path", "/"), None)
            if container.port != readiness.get("port") or status != 200:
                raise ContainerFailed(
                    0, f"readiness probe GET {readiness.get('path')} on port {readiness.get('port')} failed; the server listens on {container.port}"
                )
        except ContainerFailed as failed:
            return {"code": "ResourceNotReady", "message": f"User container has crashed or terminated: {failed.log}"}
        self.containers[(endpoint, name)] = container
        return None

    def _image(self, environment: dict[str, Any]) -> containers.Image:
        properties = environment["properties"]
        if properties.get("image"):
            return containers.lookup(properties["image"])
        context = urlsplit(properties.get("build", {}).get("contextUri", ""))
        prefix = unquote(context.path).lstrip("/")
        dockerfile = self.blobs.get(prefix + properties["build"].get("dockerfilePath", "Dockerfile"))
        if context.netloc != f"{STORAGE_ACCOUNT}.blob.core.windows.net" or dockerfile is None:
            raise containers.UnknownImage(f"no Dockerfile at {properties.get('build', {}).get('contextUri')}")
        return containers.build(dockerfile[0].decode(), environment["name"])

    def _resolved(self, value: str) -> str:
        """A `${{azureml://connections/<name>/credentials/<key>}}` reference as the deployment sees it."""
        match = _SECRET_REFERENCE.match(value)
        if match is None:
            return value
        connection = self.connections.get(match["name"], {})
        return str(connection.get("properties", {}).get("credentials", {}).get(match["key"], ""))

    def serving(self, host: str, path: str) -> bool | None:
        """An endpoint's scoring URL answers while a deployment holding its traffic has succeeded."""
        match = _SCORING_HOST.match(host)
        if match is None:
            return None
        with self._lock:
            endpoint = self.endpoints.get(match["endpoint"], {}).get("properties", {})
            deployments = [
                self.deployments.get((match["endpoint"], name), {}).get("properties", {}) for name, share in (endpoint.get("traffic") or {}).items() if share
            ]
            return endpoint.get("provisioningState") not in (None, "Deleting") and any(d.get("provisioningState") == "Succeeded" for d in deployments)

    def answer(self, call: Call) -> Answer:
        method, path, body = call.method, call.path, call.body
        kind, match = next(((k, m) for k, pattern in _ROUTES if (m := pattern.search(path))), ("unknown", None))
        self.requests.append(Request(method, kind, path, body, time.monotonic()))
        with self._lock:
            if kind != "token":
                if self.faults.drop_next > 0:
                    self.faults.drop_next -= 1
                    return DROP
                if self.faults.throttle_next > 0:
                    self.faults.throttle_next -= 1
                    return 429, _error("TooManyRequests", "Rate limit exceeded, retry later"), {"Retry-After": str(self.faults.retry_after)}
                if self.faults.server_error_next > 0:
                    self.faults.server_error_next -= 1
                    return 500, _error("InternalServerError", "Something went wrong"), {}
            if match is None:
                return 404, _error("NotFound", f"no route for {method} {path}"), {}
            groups = match.groupdict()
            if kind in ("workspace", "endpoints", "deployments", "deployment", "keys", "endpoint", "environment", "model", "model_version", "connection") and (
                groups["sub"],
                groups["rg"],
                groups["ws"],
            ) != (SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE):
                return 404, _error("ResourceNotFound", f"workspace {groups['ws']} not found in resource group {groups['rg']}"), {}
            if method == "GET" and kind in ("endpoint", "deployment"):
                self._advance_on(path)
            return getattr(self, f"_{kind}")(method, path, body, **groups)

    def _advance_on(self, path: str) -> None:
        """The service works on a resource whether or not its operation is polled: a GET of the
        resource counts as a poll of the operations on it (and on what it holds)."""
        for operation in self._operations.values():
            if operation.on_done is not None and operation.path.lower().startswith(path.lower()):
                if operation.polls_left > 0:
                    operation.polls_left -= 1
                else:
                    self._complete(operation)

    def _usages(self, method: str, path: str, body: dict[str, Any], sub: str, location: str) -> tuple[int, Any, dict[str, str]]:
        """Azure ML's usages for a region (GET .../locations/{location}/usages): per VM family a
        dedicated-cores row and a low-priority one, in use counted from the live deployments."""
        if sub != SUBSCRIPTION:
            return 404, _error("SubscriptionNotFound", f"subscription {sub} not found"), {}
        rows = []
        for family in sorted(set(FAMILIES.values())):
            used = sum(
                vcpus(d["properties"].get("instanceType", "")) * int((d.get("sku") or {}).get("capacity") or d["properties"].get("instanceCount") or 1)
                for d in self.deployments.values()
                if FAMILIES.get(d["properties"].get("instanceType", "")) == family
            )
            limit = self.faults.family_cores.get(family.replace(" ", ""), DEFAULT_FAMILY_CORES)
            for kind, localized, count in (
                ("dedicatedCores", f"{family} Cluster Dedicated vCPUs", used),
                ("lowPriorityCores", f"{family} Cluster LowPriority vCPUs", 0),
            ):
                rows.append(
                    {
                        "id": f"/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{location}/usages/{family}",
                        "type": f"Microsoft.MachineLearningServices/{kind}/usages",
                        "unit": "Count",
                        "currentValue": count,
                        "limit": limit if kind == "dedicatedCores" else -1,
                        "name": {"value": family, "localizedValue": localized},
                    }
                )
        return 200, {"value": rows}, {}

    def _vm_sizes(self, method: str, path: str, body: dict[str, Any], sub: str, location: str) -> tuple[int, Any, dict[str, str]]:
        """The sizes Azure ML offers in a region (GET .../locations/{location}/vmSizes), with family and vCPUs."""
        sizes = [
            {"name": size, "family": FAMILIES[size], "vCPUs": vcpus(size), "gpus": 0, "supportedComputeTypes": ["AmlCompute", "ComputeInstance"]}
            for size in sorted(INSTANCE_TYPES.get(location, set()))
        ]
        return 200, {"value": sizes}, {}

    def _token(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if self.faults.token_refused:
            return 400, {"error": "invalid_request", "error_description": "Identity not found"}, {}
        return (
            200,
            {"access_token": "test-token", "expires_on": str(int(time.time()) + 3600), "resource": "https://management.azure.com", "token_type": "Bearer"},
            {},
        )

    def _workspace(self, method: str, path: str, body: dict[str, Any], **_: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"id": path, "name": WORKSPACE, "location": LOCATION, "properties": {"friendlyName": WORKSPACE}}, {}

    def _endpoint(self, method: str, path: str, body: dict[str, Any], endpoint: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            return (
                (200, self.endpoints[endpoint], {})
                if endpoint in self.endpoints
                else (404, _error("ResourceNotFound", f"online endpoint {endpoint} not found"), {})
            )
        deleting = self.endpoints.get(endpoint, {}).get("properties", {}).get("provisioningState") == "Deleting"
        if method == "DELETE":
            if endpoint not in self.endpoints:
                return 204, None, {}
            if deleting:
                return 409, _error("Conflict", f"Endpoint {endpoint} is being deleted; another operation is in progress"), {}
            self.endpoints[endpoint]["properties"]["provisioningState"] = "Deleting"
            return self._start(path, lambda: self.delete_endpoint_by_hand(endpoint), accepted=True)
        if deleting:
            return 409, _error("Conflict", f"Endpoint {endpoint} is being deleted; wait until it is gone to create it again"), {}
        traffic = body.get("properties", {}).get("traffic") or {}
        unknown = sorted(name for name in traffic if (endpoint, name) not in self.deployments)
        if unknown:
            return 400, _error("BadArgument", f"Traffic names deployments that endpoint {endpoint} does not have: {', '.join(unknown)}"), {}
        if sum(traffic.values()) not in (0, 100):
            return 400, _error("BadArgument", f"Traffic of endpoint {endpoint} adds up to {sum(traffic.values())}; it must add up to 0 or 100"), {}
        if endpoint not in self.endpoints:
            if not _ENDPOINT_NAME.match(endpoint):
                return (
                    400,
                    _error(
                        "BadArgument",
                        f"Endpoint name {endpoint!r} must be 3-32 characters: a letter, then letters, digits and single dashes, ending with a letter or digit",
                    ),
                    {},
                )
            if endpoint.lower() in TAKEN_ENDPOINT_NAMES:
                return 409, _error("Conflict", f"Endpoint name {endpoint!r} is already in use in region {LOCATION}; endpoint names are unique per region"), {}
        existed = endpoint in self.endpoints
        resource = {
            "id": path,
            "name": endpoint,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": body.get("location"),
            "tags": body.get("tags", {}),
            "identity": body.get("identity"),
            "properties": {
                **body.get("properties", {}),
                "provisioningState": "Updating" if existed else "Creating",
                "scoringUri": f"https://{endpoint}.{LOCATION}.inference.ml.azure.com/score",
            },
        }
        if not existed:
            self.creations.append(("endpoint", endpoint))
        self.endpoints[endpoint] = resource
        return self._start(path, lambda: resource["properties"].update(provisioningState="Succeeded"), body=resource, status=200 if existed else 201)

    def _deployment(self, method: str, path: str, body: dict[str, Any], endpoint: str, name: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        key = (endpoint, name)
        if method == "GET":
            return (200, self.deployments[key], {}) if key in self.deployments else (404, _error("ResourceNotFound", f"deployment {name} not found"), {})
        if method == "PATCH":  # OnlineDeployments_Update: tags (and sku) only; no instance is touched
            if key not in self.deployments:
                return 404, _error("ResourceNotFound", f"deployment {name} not found"), {}
            unknown = sorted(set(body) - {"tags", "sku"})
            if unknown:
                return 400, _error("BadArgument", f"A deployment PATCH takes tags and sku only, not {', '.join(unknown)}"), {}
            resource = self.deployments[key]
            tags = body.get("tags", resource["tags"])
            resource["properties"]["provisioningState"] = "Updating"

            def patched() -> None:
                resource["tags"] = tags
                resource["properties"]["provisioningState"] = "Succeeded"

            return self._start(path, patched, accepted=True)  # a long-running operation, as ARM's OnlineDeployments_Update is
        if method == "DELETE":
            if key not in self.deployments:
                return 204, None, {}
            if (self.endpoints.get(endpoint, {}).get("properties", {}).get("traffic") or {}).get(name):
                return 400, _error("BadArgument", f"Deployment {name} has traffic allocated; set its traffic to 0% before deleting it"), {}

            def delete() -> None:
                self.deployments.pop(key, None)
                self.containers.pop(key, None)

            return self._start(path, delete, accepted=True)
        if endpoint not in self.endpoints:
            return 404, _error("ResourceNotFound", f"online endpoint {endpoint} does not exist; create it before its deployments"), {}
        if not _ENDPOINT_NAME.match(name):  # deployment names follow the endpoint's rules (how-to-manage-quotas)
            return 400, _error("BadArgument", f"Deployment name {name!r} must be 3-32 characters: a letter, then letters, digits and single dashes"), {}
        properties = body.get("properties", {})
        if not properties.get("scaleSettings", {}).get("scaleType"):
            return 400, _error("BadArgument", "properties.scaleSettings.scaleType is required"), {}
        # The endpoint's property bag is `properties.properties` in ARM (the YAML's `properties:`).
        secret_access = (self.endpoints[endpoint]["properties"].get("properties") or {}).get("enforce_access_to_default_secret_stores") == "enabled"
        references = [v for v in (properties.get("environmentVariables") or {}).values() if _SECRET_REFERENCE.match(str(v))]
        if references and not secret_access:
            return (
                400,
                _error(
                    "SecretsInjectionError",
                    f"The deployment references secrets ({', '.join(references)}) but endpoint {endpoint} was not created with "
                    "properties.enforce_access_to_default_secret_stores: enabled",
                ),
                {},
            )
        model = properties.get("model")
        if model and self.model_files(model) is None:
            return 400, _error("BadArgument", f"Model {model} was not found in workspace {WORKSPACE}"), {}
        instance = properties.get("instanceType")
        if instance not in INSTANCE_TYPES.get(LOCATION, set()):
            return 400, _error("BadArgument", f"Instance type {instance} is not supported in region {LOCATION}"), {}
        if instance in self.faults.quota_for:
            return (
                400,
                _error(
                    "QuotaExceeded",
                    f"Not enough quota available for {instance} in SubscriptionId {SUBSCRIPTION}. Current usage/limit: 0/0. Additional needed: 24",
                ),
                {},
            )
        resource = {
            "id": path,
            "name": name,
            "location": body.get("location"),
            "tags": body.get("tags", {}),
            "sku": body.get("sku"),
            "properties": {**properties, "provisioningState": "Creating"},
        }
        if key not in self.deployments:
            self.creations.append(("deployment", f"{endpoint}/{name}"))
        self.deployments[key] = resource
        if instance in self.faults.capacity_for:
            error = {"code": "OutOfCapacity", "message": f"Not enough capacity for {instance} in {LOCATION}; try another region or instance type"}
            return self._start(path, lambda: resource["properties"].update(provisioningState="Failed"), body=resource, status=201, error=error)

        def provision() -> dict[str, str] | None:
            if key not in self.deployments:  # its endpoint was deleted while it provisioned
                return {"code": "Canceled", "message": f"The deployment {name} was deleted with endpoint {endpoint} before it finished"}
            failure = self._start_container(endpoint, name)
            resource["properties"]["provisioningState"] = "Failed" if failure else "Succeeded"
            return failure

        return self._start(path, provision, body=resource, status=201, polls=self.faults.deployment_polls)

    def _endpoints(self, method: str, path: str, body: dict[str, Any], **_: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": list(self.endpoints.values())}, {}

    def _deployments(self, method: str, path: str, body: dict[str, Any], endpoint: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"value": [d for (e, _), d in self.deployments.items() if e == endpoint]}, {}

    def _keys(self, method: str, path: str, body: dict[str, Any], endpoint: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"primaryKey": PRIMARY_KEY, "secondaryKey": "secondary-key"}, {}

    def _datastore(self, method: str, path: str, body: dict[str, Any], name: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        if name != "workspaceblobstore":
            return 404, _error("UserError", f"datastore {name} not found"), {}
        return (
            200,
            {
                "id": path,
                "name": name,
                "properties": {
                    "datastoreType": "AzureBlob",
                    "accountName": STORAGE_ACCOUNT,
                    "containerName": BLOB_CONTAINER,
                    "endpoint": "core.windows.net",
                    "protocol": "https",
                    "isDefault": True,
                    "credentials": {"credentialsType": "AccountKey"},
                },
            },
            {},
        )

    def _secrets(self, method: str, path: str, body: dict[str, Any], name: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        return 200, {"secretsType": "AccountKey", "key": "dGVzdC1zdG9yYWdlLWtleQ=="}, {}

    def _environment(self, method: str, path: str, body: dict[str, Any], name: str, version: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        return self._simple(self.environments, (name, version), method, path, body, name, "environment")

    def _model(self, method: str, path: str, body: dict[str, Any], name: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        """A model container: its latest version (what azure-ai-ml reads before registering a version)."""
        versions = sorted(v for n, v in self.models if n == name)
        if not versions:
            return 404, _error("UserError", f"model container {name} not found"), {}
        return 200, {"id": path, "name": name, "properties": {"latestVersion": versions[-1]}}, {}

    def _model_version(self, method: str, path: str, body: dict[str, Any], name: str, version: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        """A model asset version. Its path must be a folder on a datastore of the workspace (or a
        storage URL); the service does not look inside it when it registers it. A version's path
        never changes ("changed asset path" is azure-ai-ml's ASSET_PATH_ERROR)."""
        if method == "PUT":
            uri = (body.get("properties") or {}).get("modelUri", "")
            located = _MODEL_URI.match(uri)
            if located is None or located["datastore"] != DATASTORE:
                return 400, _error("UserError", f"modelUri {uri!r} is not a path on a datastore of workspace {WORKSPACE}"), {}
            known = self.models.get((name, version))
            if known is not None and known["properties"].get("modelUri") != uri:
                return 409, _error("UserError", "Could not update the asset path: the path of a registered asset version cannot change"), {}
            # The service answers with its defaults filled in; azure-ai-ml reads `flavors` as a mapping.
            body = {**body, "properties": {"flavors": {}, "isArchived": False, **body["properties"]}}
        return self._simple(self.models, (name, version), method, path, body, f"{name}:{version}", "model")

    def model_files(self, model_id: str) -> tuple[str, dict[str, bytes]] | None:
        """What a deployment of the model `model_id` (an ARM id) mounts: the model's directory
        under /var/azureml-app/azureml-models and the registered folder's blobs under its own name."""
        match = re.search(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", model_id)
        model = self.models.get((match["name"], match["version"])) if match else None
        if model is None:
            return None
        located = _MODEL_URI.match(model["properties"]["modelUri"])
        assert located is not None and match is not None  # checked when it was registered
        folder = located["path"].rstrip("/")
        prefix = f"{BLOB_CONTAINER}/{folder}/"
        mounted = f"{MODEL_DIR}/{match['name']}/{match['version']}"
        return mounted, {f"{folder.rsplit('/', 1)[-1]}/{name[len(prefix) :]}": data for name, (data, _) in self.blobs.items() if name.startswith(prefix)}

    def _connection(self, method: str, path: str, body: dict[str, Any], name: str, **_: str) -> tuple[int, Any, dict[str, str]]:
        status, answer, headers = self._simple(self.connections, name, method, path, body, name, "connection")
        if method == "PUT":  # ARM answers a connection PUT with 200, created or not
            status = 200
        if method == "GET" and status == 200:  # ARM never returns a connection's secrets on GET
            answer = {**answer, "properties": {k: v for k, v in answer["properties"].items() if k != "credentials"}}
        return status, answer, headers

    def _autoscale(self, method: str, path: str, body: dict[str, Any], name: str) -> tuple[int, Any, dict[str, str]]:
        return self._simple(self.autoscale, name, method, path, body, name, "autoscale")

    def _simple(self, store: dict[Any, Any], key: Any, method: str, path: str, body: dict[str, Any], name: str, kind: str) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            return (200, store[key], {}) if key in store else (404, _error("ResourceNotFound", f"{name} not found"), {})
        if method == "DELETE":
            return (200 if store.pop(key, None) is not None else 204), None, {}
        if method == "PATCH":  # an update of the fields sent (tags, say); the rest stays
            if key not in store:
                return 404, _error("ResourceNotFound", f"{name} not found"), {}
            store[key] = _merged(store[key], body)
            return 200, store[key], {}
        existed = key in store
        if not existed:
            self.creations.append((kind, name))
        store[key] = {**body, "id": path, "name": name}
        return (200 if existed else 201), store[key], {}

    def _operation(self, method: str, path: str, body: dict[str, Any], id: str) -> tuple[int, Any, dict[str, str]]:
        operation = self._operations.get(id)
        if operation is None:
            return 404, _error("NotFound", f"operation {id} not found"), {}
        if operation.polls_left > 0:
            operation.polls_left -= 1
            return 200, {"status": "InProgress"}, {"retry-after-ms": OPERATION_RETRY_AFTER_MS}
        self._complete(operation)
        if operation.error:
            return 200, {"status": "Failed", "error": operation.error}, {}
        return 200, {"status": "Succeeded"}, {}

    def _start(
        self,
        path: str,
        on_done: Any,
        body: Any = None,
        status: int = 201,
        accepted: bool = False,
        error: dict[str, str] | None = None,
        polls: int | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        operation_id = str(next(self._ids))
        self._operations[operation_id] = _Operation(self.faults.polls if polls is None else polls, on_done, error, path)
        location = f"{self.url}/operations/{operation_id}?api-version=2023-04-01"
        headers = {"Azure-AsyncOperation": location, "Location": location, "retry-after-ms": OPERATION_RETRY_AFTER_MS}
        return (202, None, headers) if accepted else (status, body, headers)


def _merged(resource: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`resource` with what a PATCH sent: objects merged key by key, anything else (and `tags`, which
    ARM replaces whole) replaced."""
    merged = dict(resource)
    for key, value in patch.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "tags"
        merged[key] = _merged(merged[key], value) if nested else value
    return merged


def vcpus(size: str) -> int:
    """A size's vCPUs, as its name says them (Standard_NC24ads_A100_v4: 24)."""
    match = re.match(r"Standard_[A-Z]+(\d+)", size)
    return int(match[1]) if match else 0


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _quicker_experimental_check() -> None:
    """azure-ai-ml decides whether to warn that an experimental class (a workspace connection, its
    credentials) is made by walking inspect.stack(), which reads the source of every frame: about
    0.1 s a call under pytest's deep stacks, many times a command. The same test, on the frames
    alone: no warning where a caller is a `_from_rest_object` (azure/ai/ml/_utils/_experimental.py,
    _should_skip_warning). What the SDK sends is unchanged."""
    import sys

    from azure.ai.ml._utils import _experimental

    def should_skip_warning() -> bool:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "_from_rest_object":
                return True
            frame = frame.f_back
        return False

    _experimental._should_skip_warning = should_skip_warning
