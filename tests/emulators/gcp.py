"""Vertex AI's REST API (v1 and v1beta1) for models and endpoints, on 127.0.0.1.

Enough for google-cloud-aiplatform's GAPIC clients over the REST transport: models:upload,
models get/list/delete, endpoints create/get/list/delete, :deployModel and :undeployModel, all
as long-running operations that finish after N polls, plus the OAuth token route that a
service-account ADC file's `token_uri` points at (the file carries a freshly generated RSA
key), so google-auth's real signing and refresh run over loopback.

It rejects what Vertex rejects that matters here (an accelerator the machine type cannot carry,
deleting a model still deployed or an endpoint with deployed models), injects faults (quota and
stockout inside the deploy operation, 429, 503), records requests and keeps an inventory.

Traffic follows the endpoint's split, as Vertex AI's: deployModel's `trafficSplit` ("0" for the
model being deployed) replaces it when given and leaves it as it is when empty
(DeployModelRequest); an endpoint PATCH with update_mask `traffic_split` sets it; a split names
the endpoint's deployed models and adds up to 100. A deployed model with traffic is undeployed only
by a split that takes it off, and never so as to leave other deployed models with 0 % in all
(UndeployModelRequest; aiplatform's Endpoint.undeploy checks the same before calling).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import re
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tests.emulators import containers
from tests.emulators.http import DROP, Answer, Call, JsonStandIn
from tests.emulators.internet import Internet
from tests.emulators.vllm import ContainerFailed

PROJECT = "llm-prod"
# Vertex AI names every resource it returns with the project NUMBER, whichever form the request used.
PROJECT_NUMBER = "123456789012"
_TYPES = "type.googleapis.com/google.cloud.aiplatform.v1beta1"
# Which accelerators each machine family carries, and how many (as Compute Engine sells them).
MACHINES = {
    "g2-standard-": ("NVIDIA_L4", {4: 1, 8: 1, 12: 1, 16: 1, 24: 2, 32: 1, 48: 4, 96: 8}),
    "a2-highgpu-": ("NVIDIA_TESLA_A100", {1: 1, 2: 2, 4: 4, 8: 8}),
    "a2-ultragpu-": ("NVIDIA_A100_80GB", {1: 1, 2: 2, 4: 4, 8: 8}),
    "a3-highgpu-": ("NVIDIA_H100_80GB", {1: 1, 2: 2, 4: 4, 8: 8}),
    "a3-ultragpu-": ("NVIDIA_H200_141GB", {8: 8}),
}
# The REST transport sends enums as integers; these are AcceleratorType's numbers.
ACCELERATOR_NUMBERS = {
    2: "NVIDIA_TESLA_P100",
    8: "NVIDIA_TESLA_A100",
    9: "NVIDIA_A100_80GB",
    11: "NVIDIA_L4",
    13: "NVIDIA_H100_80GB",
    14: "NVIDIA_H100_MEGA_80GB",
    15: "NVIDIA_H200_141GB",
}
CLOUD_QUOTAS_HOST = "cloudquotas.googleapis.com"
STORAGE_HOST = "storage.googleapis.com"
_QUOTA_INFO = re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/global/services/aiplatform\.googleapis\.com/quotaInfos/(?P<id>[^/]+)$")
# Custom model serving GPU quotas (gcloud's model_garden_utils.py): quota ID and metric per accelerator.
SERVING_QUOTAS = {
    "NVIDIA_L4": ("CustomModelServingL4GPUsPerProjectPerRegion", "custom_model_serving_nvidia_l4_gpus"),
    "NVIDIA_TESLA_A100": ("CustomModelServingA100GPUsPerProjectPerRegion", "custom_model_serving_nvidia_a100_gpus"),
    "NVIDIA_A100_80GB": ("CustomModelServingA10080GBGPUsPerProjectPerRegion", "custom_model_serving_nvidia_a100_80gb_gpus"),
    "NVIDIA_H100_80GB": ("CustomModelServingH100GPUsPerProjectPerRegion", "custom_model_serving_nvidia_h100_gpus"),
}
DEFAULT_SERVING_GPUS = 16  # per accelerator in us-central1, in the stand-in's project
# The REST transport polls operations under /ui/, the first of its HTTP rules for them.
_LOC = r"/(?:v1|v1beta1|ui)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/:]+)"
_PREDICT = re.compile(_LOC + r"/endpoints/(?P<id>[^/:]+):(?:raw)?[pP]redict$")
_PSC_PREDICT = re.compile(r"^(?P<parent>/v1/projects/[^/]+/locations/[^/:]+)/endpoints/(?P<id>[^/:]+):rawPredict$")
REGION = "us-central1"
_ROUTES = [
    ("upload", "POST", re.compile(_LOC + r"/models:upload$")),
    ("models", "GET", re.compile(_LOC + r"/models$")),
    ("model", "*", re.compile(_LOC + r"/models/(?P<id>[^/:]+)$")),
    ("endpoints", "*", re.compile(_LOC + r"/endpoints$")),
    ("deploy", "POST", re.compile(_LOC + r"/endpoints/(?P<id>[^/:]+):deployModel$")),
    ("undeploy", "POST", re.compile(_LOC + r"/endpoints/(?P<id>[^/:]+):undeployModel$")),
    ("mutate", "POST", re.compile(_LOC + r"/endpoints/(?P<id>[^/:]+):mutateDeployedModel$")),
    ("raw_predict", "POST", re.compile(_LOC + r"/endpoints/(?P<id>[^/:]+):rawPredict$")),
    ("endpoint", "*", re.compile(_LOC + r"/endpoints/(?P<id>[^/:]+)$")),
    ("operation", "GET", re.compile(_LOC + r"/(?:.*/)?operations/(?P<id>\d+)$")),
    ("token", "POST", re.compile(r"/token$")),
]


@dataclass
class Request:
    method: str
    kind: str
    path: str
    body: dict[str, Any]


@dataclass
class Faults:
    """What the stand-in does to the next requests; tests set these fields."""

    polls: int = 0
    deploy_polls: int | None = None  # the same for a deployModel operation only, when set
    serving_gpus: dict[str, int] = field(default_factory=dict)  # accelerator -> custom model serving GPU quota in the region
    quota_for: set[str] = field(default_factory=set)  # machine types whose deploy fails on quota
    capacity_for: set[str] = field(default_factory=set)  # machine types whose deploy hits a stockout
    throttle_next: int = 0
    drop_next: int = 0  # connections closed without an answer
    server_error_next: int = 0
    inside_network: bool = False  # calls come from an allowed VPC (a Private Service Connect endpoint answers them)
    serving_error_next: int = 0  # rawPredict calls answered 503, as a replica that is not yet taking requests
    connection_policy_missing: bool = False  # the network has no service connection policy: PSC automation fails
    psc_automation_polls: int = 0  # GetEndpoint calls after a deploy before PSC automation has made its forwarding rule
    storage_error_next: int = 0  # Cloud Storage calls answered 503


@dataclass
class _Operation:
    name: str
    polls_left: int
    on_done: Any
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class GcpStandIn(JsonStandIn):
    """The Vertex AI stand-in; point the GAPIC clients' api_endpoint and the ADC file at it."""

    def __init__(self, internet: Internet) -> None:
        super().__init__()
        self._internet = internet
        self._addresses = itertools.count(2)  # PSC automation's forwarding rule IPs: 10.128.0.2, .3, ...
        self._psc_pending: dict[str, int] = {}  # endpoint name -> reads before its forwarding rule is made
        internet.serve(re.escape(CLOUD_QUOTAS_HOST), self.cloud_quotas)
        internet.serve(re.escape(STORAGE_HOST), self.storage)
        self.buckets: dict[str, dict[str, bytes]] = {}  # Cloud Storage: bucket -> object name -> bytes
        self.object_metadata: dict[tuple[str, str], dict[str, str]] = {}  # (bucket, name) -> its custom metadata
        self.faults = Faults()
        self.requests: list[Request] = []
        self.models: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.creations: list[tuple[str, str]] = []
        self.containers: dict[str, tuple[containers.Container, str]] = {}  # deployed model id -> container, predict route
        self._operations: dict[str, _Operation] = {}
        self._ids = itertools.count(1000)
        self._dir = tempfile.TemporaryDirectory(prefix="gcp-stand-in-")
        self.credentials_file = Path(self._dir.name) / "adc.json"
        self.credentials_file.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": PROJECT,
                    "private_key_id": "test",
                    "private_key": _private_key_pem(),
                    "client_email": f"llamadeploy-test@{PROJECT}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{self.url}/token",
                }
            )
        )

    def stop(self) -> None:
        super().stop()
        self._dir.cleanup()

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.requests.clear()
            self.models.clear()
            self.endpoints.clear()
            self.creations.clear()
            self.containers.clear()
            self._operations.clear()
            self.buckets.clear()
            self.object_metadata.clear()
            self._psc_pending.clear()

    def inventory(self) -> dict[str, list[str]]:
        with self._lock:
            return {
                "models": sorted(self.models),
                "endpoints": sorted(self.endpoints),
                "deployed_models": sorted(f"{e}/{d['id']}" for e, ep in self.endpoints.items() for d in ep["deployedModels"]),
            }

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.kind == kind]

    def updating_in_place(self) -> int:
        """Vertex AI replaces nothing in place: a second deployed model is a serving resource of its own."""
        return 0

    def finish_operations(self, polls: int = 0) -> None:
        """Every operation in flight ends after `polls` more polls of it (at once with 0)."""
        with self._lock:
            self.faults.polls, self.faults.deploy_polls = polls, None
            for operation in self._operations.values():
                operation.polls_left = min(operation.polls_left, polls)
                if polls == 0:
                    self._complete(operation)

    def delete_endpoint_by_hand(self, endpoint_id: str) -> None:
        with self._lock:
            self.endpoints.pop(endpoint_id, None)

    def serving(self, host: str, path: str) -> bool | None:
        """An endpoint's :predict URL answers while a deployed model holds its traffic."""
        match = _PREDICT.search(path)
        if match is None:
            return None
        with self._lock:
            return any(share > 0 for share in self.endpoints.get(match["id"], {}).get("trafficSplit", {}).values())

    def answer(self, call: Call) -> Answer:
        method, path, query, body = call.method, call.path, call.query, call.body
        kind, match = next(((k, m) for k, verb, pattern in _ROUTES if verb in ("*", method) and (m := pattern.search(path))), ("unknown", None))
        self.requests.append(Request(method, kind, path, body))
        with self._lock:
            if kind == "token":
                return 200, {"access_token": "test-token", "expires_in": 3600, "token_type": "Bearer"}, {}
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                return DROP
            if self.faults.throttle_next > 0:
                self.faults.throttle_next -= 1
                return 429, _error(429, "RESOURCE_EXHAUSTED", "Too many requests to aiplatform.googleapis.com; retry later"), {}
            if self.faults.server_error_next > 0:
                self.faults.server_error_next -= 1
                return 503, _error(503, "UNAVAILABLE", "The service is currently unavailable."), {}
            if match is None:
                return 404, _error(404, "NOT_FOUND", f"no route for {method} {path}"), {}
            groups = match.groupdict()
            if groups.get("project") not in (PROJECT, PROJECT_NUMBER):
                return 403, _error(403, "PERMISSION_DENIED", f"Permission denied on project {groups.get('project')}"), {}
            parent = f"projects/{PROJECT_NUMBER}/locations/{groups['location']}"
            return getattr(self, f"_{kind}")(method, parent, query, body, groups.get("id"))

    def storage(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Cloud Storage's JSON API, as far as a checkpoint goes (https://cloud.google.com/storage/docs/json_api/v1/objects):
        objects.list (`items[]`, `size` as a string, custom `metadata`), objects.get (the resource, or
        the bytes with alt=media), objects.delete, and objects.insert as a multipart upload (a JSON
        part, then the media), whose crc32c or md5Hash the service checks against the bytes."""
        self.requests.append(Request(method, "storage", path, {}))
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, _error(401, "UNAUTHENTICATED", "Anonymous caller does not have storage.objects.list access."), {}
        with self._lock:
            if self.faults.storage_error_next > 0:
                self.faults.storage_error_next -= 1
                return 503, _error(503, "UNAVAILABLE", "We encountered an internal error. Please try again."), {}
        route, _, query = path.partition("?")
        params = dict(pair.partition("=")[::2] for pair in query.split("&") if pair)
        upload = re.fullmatch(r"/upload/storage/v1/b/([^/]+)/o", route)
        listing = re.fullmatch(r"/storage/v1/b/([^/]+)/o", route)
        single = re.fullmatch(r"(?:/download)?/storage/v1/b/([^/]+)/o/(.+)", route)
        bucket = next((m[1] for m in (upload, listing, single) if m), None)
        with self._lock:
            objects = self.buckets.get(bucket or "")
            if objects is None:
                return 404, _error(404, "NOT_FOUND", "The specified bucket does not exist."), {}
            if upload and method == "POST":
                return self._insert(bucket, objects, body, headers, params)  # type: ignore[arg-type]
            if listing and method == "GET":
                prefix = urllib.parse.unquote(params.get("prefix", ""))
                items = [self._resource(bucket, name, data) for name, data in sorted(objects.items()) if name.startswith(prefix)]  # type: ignore[arg-type]
                return 200, {"kind": "storage#objects", "items": items}, {}
            if not single:
                return 404, _error(404, "NOT_FOUND", f"no route {method} {route}"), {}
            name = urllib.parse.unquote(single[2])
            if name not in objects:
                return 404, _error(404, "NOT_FOUND", f"No such object: {bucket}/{name}"), {}
            if method == "DELETE":
                del objects[name]
                self.object_metadata.pop((bucket, name), None)  # type: ignore[arg-type]
                return 204, None, {}
            if method == "GET" and params.get("alt") == "media":
                return 200, objects[name], {"content-type": "application/octet-stream"}
            if method == "GET":
                return 200, self._resource(bucket, name, objects[name]), {}  # type: ignore[arg-type]
            return 405, _error(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here"), {}

    def _resource(self, bucket: str, name: str, data: bytes) -> dict[str, Any]:
        found = {
            "kind": "storage#object",
            "name": name,
            "bucket": bucket,
            "size": str(len(data)),
            "md5Hash": base64.b64encode(hashlib.md5(data).digest()).decode(),
        }
        metadata = self.object_metadata.get((bucket, name))
        return {**found, "metadata": metadata} if metadata else found

    def _insert(self, bucket: str, objects: dict[str, bytes], body: Any, headers: dict[str, str], params: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if params.get("uploadType") != "multipart":
            return 400, _error(400, "INVALID_ARGUMENT", "this stand-in takes multipart uploads only (files under the client's 8 MiB multipart limit)"), {}
        boundary = re.search(r'boundary="?([^";]+)"?', headers.get("content-type", ""))
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        parts = [part for part in raw.split(b"--" + boundary[1].encode()) if part.strip(b"-\r\n")] if boundary else []
        if len(parts) != 2:
            return 400, _error(400, "INVALID_ARGUMENT", "a multipart upload is a metadata part and a media part"), {}
        metadata = json.loads(parts[0].split(b"\r\n\r\n", 1)[1])
        data = parts[1].split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
        if "md5Hash" in metadata and metadata["md5Hash"] != base64.b64encode(hashlib.md5(data).digest()).decode():
            return 400, _error(400, "INVALID_ARGUMENT", "Provided MD5 hash does not match calculated MD5 hash."), {}
        if "crc32c" in metadata:
            import google_crc32c

            if metadata["crc32c"] != base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode():
                return 400, _error(400, "INVALID_ARGUMENT", "Provided CRC32C does not match calculated CRC32C."), {}
        name = metadata["name"]
        objects[name] = data
        if metadata.get("metadata"):
            self.object_metadata[(bucket, name)] = dict(metadata["metadata"])
        return 200, self._resource(bucket, name, data), {}

    def gcs_folder(self, uri: str) -> dict[str, bytes]:
        """What the Model Garden image downloads for a gs:// --model: the objects under the folder
        (its prefix stripped of slashes, one added), placeholder "directories" skipped
        (vertex-ai-samples community-content/vertex_model_garden/model_oss/util, download_gcs_dir_to_local)."""
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        folder = prefix.strip("/") + "/"
        with self._lock:
            objects = self.buckets.get(bucket, {})
            return {name[len(folder) :]: data for name, data in objects.items() if name.startswith(folder) and not name.endswith("/")}

    def cloud_quotas(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """The Cloud Quotas API's quotaInfos for aiplatform.googleapis.com (google/api/cloudquotas/v1
        resources.proto): a region's limit in dimensionsInfos, int64 as a string, absent when 0."""
        self.requests.append(Request(method, "quota_info", path, {}))
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, _error(401, "UNAUTHENTICATED", "Request is missing required authentication credential."), {}
        match = _QUOTA_INFO.match(path.split("?", 1)[0])
        if method != "GET" or match is None or match["project"] not in (PROJECT, PROJECT_NUMBER):
            return 404, _error(404, "NOT_FOUND", f"no quota info at {path}"), {}
        accelerator = next((a for a, (quota_id, _) in SERVING_QUOTAS.items() if quota_id == match["id"]), None)
        if accelerator is None:
            return 404, _error(404, "NOT_FOUND", f"quota {match['id']} not found for aiplatform.googleapis.com"), {}
        with self._lock:
            value = self.faults.serving_gpus.get(accelerator, DEFAULT_SERVING_GPUS)
        metric = f"aiplatform.googleapis.com/{SERVING_QUOTAS[accelerator][1]}"
        regional = {"dimensions": {"region": "us-central1"}, "details": {"value": str(value)} if value else {}, "applicableLocations": ["us-central1"]}
        return (
            200,
            {
                "name": f"projects/{PROJECT_NUMBER}/locations/global/services/aiplatform.googleapis.com/quotaInfos/{match['id']}",
                "quotaId": match["id"],
                "metric": metric,
                "service": "aiplatform.googleapis.com",
                "isPrecise": True,
                "containerType": "PROJECT",
                "dimensions": ["region"],
                "dimensionsInfos": [regional, {"details": {}, "applicableLocations": ["europe-west4", "us-east4"]}],
            },
            {},
        )

    def _upload(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], _: Any) -> tuple[int, Any, dict[str, str]]:
        model_id = body.get("modelId") or str(next(self._ids))
        if model_id in self.models:
            return 409, _error(409, "ALREADY_EXISTS", f"Model {model_id} already exists"), {}
        model = {**body["model"], "name": f"{parent}/models/{model_id}", "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"]}
        self.models[model_id] = model
        self.creations.append(("model", model_id))
        return self._start(f"{parent}/models/{model_id}", None, {"@type": f"{_TYPES}.UploadModelResponse", "model": model["name"]})

    def _models(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], _: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, {"models": list(self.models.values())}, {}

    def _model(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], model_id: str) -> tuple[int, Any, dict[str, str]]:
        if model_id not in self.models:
            return 404, _error(404, "NOT_FOUND", f"Model {parent}/models/{model_id} is not found."), {}
        if method == "DELETE":
            name = self.models[model_id]["name"]
            if any(d["model"] == name for e in self.endpoints.values() for d in e["deployedModels"]):
                return 400, _error(400, "FAILED_PRECONDITION", f"The Model {name} is deployed or being deployed; undeploy it first"), {}
            return self._start(f"{parent}/models/{model_id}", lambda: _drop(self.models, model_id), {"@type": "type.googleapis.com/google.protobuf.Empty"})
        if method == "PATCH":  # UpdateModel; llamadeploy changes only the labels
            paths = [_snake(p) for p in query.get("updateMask", [""])[0].split(",") if p]
            if paths != ["labels"]:
                return 400, _error(400, "INVALID_ARGUMENT", f"the stand-in updates a model's labels only, not {paths}"), {}
            self.models[model_id]["labels"] = body.get("labels", {})
        return 200, self.models[model_id], {}

    def _endpoints(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], _: Any) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            return 200, {"endpoints": list(self.endpoints.values())}, {}
        endpoint_id = (query.get("endpointId") or [str(next(self._ids))])[0]
        if endpoint_id in self.endpoints:
            return 409, _error(409, "ALREADY_EXISTS", f"Endpoint {endpoint_id} already exists"), {}
        endpoint = {
            **copy.deepcopy(body),
            "name": f"{parent}/endpoints/{endpoint_id}",
            "deployedModels": [],
            "trafficSplit": {},
        }  # the request as received stays
        self.endpoints[endpoint_id] = endpoint
        self.creations.append(("endpoint", endpoint_id))
        return self._start(f"{parent}/endpoints/{endpoint_id}", None, {"@type": f"{_TYPES}.Endpoint", **endpoint})

    def _endpoint(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], endpoint_id: str) -> tuple[int, Any, dict[str, str]]:
        if endpoint_id not in self.endpoints:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {parent}/endpoints/{endpoint_id} is not found."), {}
        if method == "PATCH":  # UpdateEndpoint; llamadeploy changes the traffic split or the labels
            paths = [_snake(p) for p in query.get("updateMask", [""])[0].split(",") if p]
            if not paths or set(paths) - {"traffic_split", "labels"}:
                return 400, _error(400, "INVALID_ARGUMENT", f"the stand-in updates an endpoint's traffic_split and labels only, not {paths}"), {}
            asked = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
            problem = _split_problem(self.endpoints[endpoint_id], asked, deploying=False) if "traffic_split" in paths and asked else None
            if problem:
                return 400, _error(400, "INVALID_ARGUMENT", problem), {}
            if "traffic_split" in paths:
                self.endpoints[endpoint_id]["trafficSplit"] = {k: v for k, v in asked.items() if v}
            if "labels" in paths:
                self.endpoints[endpoint_id]["labels"] = body.get("labels", {})
            return 200, self.endpoints[endpoint_id], {}
        if method == "GET" and self._psc_pending.get(self.endpoints[endpoint_id]["name"]):
            name = self.endpoints[endpoint_id]["name"]
            self._psc_pending[name] -= 1
            if not self._psc_pending[name]:
                del self._psc_pending[name]
                self.faults.psc_automation_polls = 0
                self._automate(self.endpoints[endpoint_id])
        if method == "DELETE":
            if self.endpoints[endpoint_id]["deployedModels"]:
                return 400, _error(400, "FAILED_PRECONDITION", "The Endpoint has deployed models; undeploy them first"), {}
            return self._start(
                f"{parent}/endpoints/{endpoint_id}", lambda: _drop(self.endpoints, endpoint_id), {"@type": "type.googleapis.com/google.protobuf.Empty"}
            )
        return 200, self.endpoints[endpoint_id], {}

    def _deploy(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], endpoint_id: str) -> tuple[int, Any, dict[str, str]]:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {parent}/endpoints/{endpoint_id} is not found."), {}
        deployed = body["deployedModel"]
        if deployed["model"].rsplit("/", 1)[-1] not in self.models:
            return 404, _error(404, "NOT_FOUND", f"Model {deployed['model']} is not found."), {}
        spec = deployed.get("dedicatedResources", {}).get("machineSpec", {})
        machine = spec.get("machineType", "")
        problem = _accelerator_problem(machine, spec.get("acceleratorType"), spec.get("acceleratorCount", 0))
        if problem:
            return 400, _error(400, "INVALID_ARGUMENT", problem), {}
        asked = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
        problem = _split_problem(endpoint, asked, deploying=True) if asked else None
        if problem:
            return 400, _error(400, "INVALID_ARGUMENT", problem), {}
        # Vertex AI names the model with the project number, whichever form the request used, and
        # reports the replicas up in the deployed model's status.
        replicas = deployed.get("dedicatedResources", {}).get("minReplicaCount", 1)
        record = {
            **deployed,
            "model": f"{parent}/models/{deployed['model'].rsplit('/', 1)[-1]}",
            "id": str(next(self._ids)),
            "status": {"availableReplicaCount": replicas},
        }
        error = None
        if machine in self.faults.quota_for:
            error = {"code": 8, "message": f"The following quota metrics exceed quota limits: aiplatform.googleapis.com/custom_model_serving_{machine}"}
        elif machine in self.faults.capacity_for:
            error = {
                "code": 8,
                "message": f"The zone does not have enough resources available to fulfill the request ({machine} stockout). Try a different zone.",
            }

        def done() -> dict[str, Any] | None:
            if error is not None:
                return None
            failure = self._start_container(endpoint_id, record)
            if failure is not None:
                return failure
            endpoint["deployedModels"].append(record)
            self._automate(endpoint)
            if asked:
                endpoint["trafficSplit"] = {(record["id"] if k == "0" else k): v for k, v in asked.items() if v}
            self.creations.append(("deployed_model", record["id"]))
            return None

        return self._start(
            f"{parent}/endpoints/{endpoint_id}", done, {"@type": f"{_TYPES}.DeployModelResponse", "deployedModel": record}, error, self.faults.deploy_polls
        )

    def _start_container(self, endpoint_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Start the model's serving container on the deployed model's machines, as Vertex AI does:
        `command` replaces the image's entrypoint, `args` its CMD (Kubernetes' rule, ModelContainerSpec
        docs), AIP_* variables set, the health route probed on the first port. An error, or None."""
        model = self.models[record["model"].rsplit("/", 1)[-1]]
        spec = model.get("containerSpec", {})
        machine = record.get("dedicatedResources", {}).get("machineSpec", {})
        port = (spec.get("ports") or [{"containerPort": 8080}])[0].get("containerPort", 8080)
        env = {e["name"]: e.get("value", "") for e in spec.get("env", [])}
        env.update(
            {
                "AIP_HTTP_PORT": str(port),
                "AIP_PREDICT_ROUTE": spec.get("predictRoute", ""),
                "AIP_HEALTH_ROUTE": spec.get("healthRoute", ""),
                "AIP_MODE": "PREDICTION",
                "AIP_DEPLOYED_MODEL_ID": record["id"],
            }
        )
        model_arg = _model_arg(spec.get("args") or [])
        if model_arg and model_arg.startswith("gs://") and not record.get("serviceAccount"):
            # Without DeployedModel.service_account the container runs as Vertex AI's own agent, which
            # cannot read the user's bucket (aiplatform_v1 DeployedModel.service_account); the wording is not published.
            bucket = model_arg.removeprefix("gs://").split("/")[0]
            return {
                "code": 9,
                "message": f"Model server exited unexpectedly. Model server logs: 403 GET https://storage.googleapis.com/storage/v1/b/{bucket}/o: "
                f"custom-online-prediction@{PROJECT_NUMBER}.iam.gserviceaccount.com does not have storage.objects.list access to the Google Cloud Storage bucket.",
            }
        try:
            container = containers.start(
                spec.get("imageUri", ""),
                env,
                machine.get("machineType", ""),
                entrypoint=spec.get("command") or None,
                args=spec.get("args") or None,
                hosts=max(1, int(machine.get("multihostGpuNodeCount") or 1)),
                mounts={model_arg: self.gcs_folder(model_arg)} if model_arg and model_arg.startswith("gs://") else None,
            )
            health, _ = container.handle("GET", spec.get("healthRoute", "/"), None)
            if container.port != port or health != 200:
                return {
                    "code": 9,
                    "message": "Model server never became ready. Please validate that your model file or container configuration are valid. "
                    f"(the server listens on {container.port}; Vertex AI sends requests to {port})",
                }
        except containers.UnknownImage as exc:
            return {"code": 9, "message": f"Failed to pull the serving container image: {exc}"}
        except ContainerFailed as failed:
            return {"code": 9, "message": f"Model server exited unexpectedly. Model server logs: {failed.log}"}
        self.containers[record["id"]] = (container, spec.get("predictRoute", "/"))
        return None

    def _mutate(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], endpoint_id: str) -> tuple[int, Any, dict[str, str]]:
        """`mutateDeployedModel`: only the replica bounds, the autoscaling metrics and container logging
        may change (v1beta1 MutateDeployedModelRequest); anything else in the mask is refused."""
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {parent}/endpoints/{endpoint_id} is not found."), {}
        wanted = body.get("deployedModel", {})
        record = next((d for d in endpoint["deployedModels"] if d["id"] == wanted.get("id")), None)
        if record is None:
            return 404, _error(404, "NOT_FOUND", f"Deployed model {wanted.get('id')} is not found."), {}
        mask = body.get("updateMask")
        paths = [_snake(p.strip()) for p in (mask if isinstance(mask, str) else ",".join((mask or {}).get("paths", []))).split(",") if p.strip()]
        if not paths or set(paths) - _MUTABLE:
            return 400, _error(400, "INVALID_ARGUMENT", f"update_mask {paths} may only name {sorted(_MUTABLE)}"), {}
        sent = wanted.get("dedicatedResources", {})
        named = {"dedicated_resources.min_replica_count": "minReplicaCount", "dedicated_resources.max_replica_count": "maxReplicaCount"}
        named["dedicated_resources.autoscaling_metric_specs"] = "autoscalingMetricSpecs"
        bounds = {**record["dedicatedResources"], **{named[p]: sent[named[p]] for p in paths if p in named and named[p] in sent}}
        if not 1 <= int(bounds.get("minReplicaCount", 1)) <= int(bounds.get("maxReplicaCount", 1)):
            return 400, _error(400, "INVALID_ARGUMENT", "max_replica_count must be at least min_replica_count"), {}

        def done() -> None:
            record["dedicatedResources"] = bounds

        return self._start(
            f"{parent}/endpoints/{endpoint_id}",
            done,
            {"@type": f"{_TYPES}.MutateDeployedModelResponse", "deployedModel": {**record, "dedicatedResources": bounds}},
        )

    def _undeploy(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], endpoint_id: str) -> tuple[int, Any, dict[str, str]]:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {parent}/endpoints/{endpoint_id} is not found."), {}
        wanted = body.get("deployedModelId")
        if not any(d["id"] == wanted for d in endpoint["deployedModels"]):
            return 404, _error(404, "NOT_FOUND", f"Deployed model {wanted} is not found."), {}
        rest = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()} or {k: v for k, v in endpoint["trafficSplit"].items() if k != wanted}
        others = [d["id"] for d in endpoint["deployedModels"] if d["id"] != wanted]
        if rest.get(wanted):
            return 400, _error(400, "FAILED_PRECONDITION", f"Deployed model {wanted} would keep {rest[wanted]}% of the traffic it is undeployed from."), {}
        if others and endpoint["trafficSplit"].get(wanted) and sum(rest.values()) != 100:
            return (
                400,
                _error(
                    400, "FAILED_PRECONDITION", f"Undeploying {wanted} would leave the traffic split of the remaining deployed models at {sum(rest.values())}%."
                ),
                {},
            )

        def done() -> None:
            endpoint["deployedModels"] = [d for d in endpoint["deployedModels"] if d["id"] != wanted]
            endpoint["trafficSplit"] = {k: v for k, v in rest.items() if v and k in others}
            self.containers.pop(wanted, None)
            # The automation's forwarding rule is "purged when no model is deployed" (Google's page on
            # Private Service Connect endpoints, as _automate cites): the next deploy gets a new address.
            if not endpoint["deployedModels"]:
                for config in (endpoint.get("privateServiceConnectConfig") or {}).get("pscAutomationConfigs", []):
                    for field in ("ipAddress", "forwardingRule", "state", "errorMessage"):
                        config.pop(field, None)

        return self._start(f"{parent}/endpoints/{endpoint_id}", done, {"@type": f"{_TYPES}.UndeployModelResponse"})

    def _automate(self, endpoint: dict[str, Any]) -> None:
        """PSC automation, as a model is deployed: a forwarding rule in each configured network, its IP
        reached only from inside that network (cloud.google.com/vertex-ai/docs/predictions/private-service-connect),
        after `psc_automation_polls` reads of the endpoint."""
        if self.faults.psc_automation_polls > 0:
            self._psc_pending[endpoint["name"]] = self.faults.psc_automation_polls
            return
        for config in (endpoint.get("privateServiceConnectConfig") or {}).get("pscAutomationConfigs", []):
            if config.get("state"):  # made already, or failed: "a failed automation does not recover" (same page)
                continue
            if self.faults.connection_policy_missing:
                config.update(state="PSC_AUTOMATION_STATE_FAILED", errorMessage="CONNECTION_POLICY_MISSING")
                continue
            number = next(self._addresses)
            address = f"10.128.0.{number}"
            config.update(
                ipAddress=address,
                forwardingRule=f"projects/{config['projectId']}/regions/{REGION}/forwardingRules/sca-auto-fr-{number}",
                state="PSC_AUTOMATION_STATE_SUCCESSFUL",
            )
            self._internet.serve(re.escape(address), partial(self._psc_call, address), reachable=partial(self._psc_reachable, address))

    def _psc_reachable(self, address: str) -> bool:
        """A forwarding rule's address has a route from inside its network only, and only while it exists."""
        with self._lock:
            configs = [c for e in self.endpoints.values() for c in (e.get("privateServiceConnectConfig") or {}).get("pscAutomationConfigs", [])]
            return self.faults.inside_network and any(config.get("ipAddress") == address for config in configs)

    def _psc_call(self, address: str, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """rawPredict at a forwarding rule's address: the path is the public API's
        (https://<IP>/v1/projects/P/locations/R/endpoints/ID:rawPredict), with a bearer token."""
        match = _PSC_PREDICT.match(path)
        if match is None or method != "POST":
            return 404, _error(404, "NOT_FOUND", f"no route for {method} {path}"), {}
        if match["parent"].split("/")[3] not in (PROJECT, PROJECT_NUMBER):
            return 403, _error(403, "PERMISSION_DENIED", f"Permission denied on resource project {match['parent'].split('/')[3]}."), {}
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, _error(401, "UNAUTHENTICATED", "Request is missing required authentication credential."), {}
        with self._lock:
            endpoint = self.endpoints.get(match["id"])
            configs = ((endpoint or {}).get("privateServiceConnectConfig") or {}).get("pscAutomationConfigs", [])
            if not any(config.get("ipAddress") == address for config in configs):
                return 404, _error(404, "NOT_FOUND", f"Endpoint {match['id']} is not reached at {address}."), {}
            return self._serve_predict(endpoint, f"{match['parent'].removeprefix('/v1/')}/endpoints/{match['id']}", body)

    def _raw_predict(self, method: str, parent: str, query: dict[str, list[str]], body: Any, endpoint_id: str) -> tuple[int, Any, dict[str, str]]:
        """rawPredict on the public host: the body, as sent, to the container's predict route of the
        deployed model the traffic split picks; its answer back as it is, with the deployed model in a
        header. A Private Service Connect endpoint is called at its forwarding rule's address instead."""
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return 404, _error(404, "NOT_FOUND", f"Endpoint {parent}/endpoints/{endpoint_id} is not found."), {}
        psc = (endpoint.get("privateServiceConnectConfig") or {}).get("enablePrivateServiceConnect")
        if psc:  # what the public host answers is not documented; the SDK never sends PSC calls there
            return (
                400,
                _error(
                    400, "FAILED_PRECONDITION", f"Endpoint {parent}/endpoints/{endpoint_id} is a Private Service Connect endpoint: call it from an allowed VPC"
                ),
                {},
            )
        return self._serve_predict(endpoint, f"{parent}/endpoints/{endpoint_id}", body)

    def _serve_predict(self, endpoint: dict[str, Any], name: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if self.faults.serving_error_next:
            self.faults.serving_error_next -= 1
            return 503, _error(503, "UNAVAILABLE", "The service is currently unavailable."), {}
        serving = [deployed for deployed, share in endpoint["trafficSplit"].items() if share > 0 and deployed in self.containers]
        if not serving:
            return 400, _error(400, "FAILED_PRECONDITION", f"Endpoint {name} has no deployed model serving traffic."), {}
        container, route = self.containers[serving[0]]
        status, answer = container.handle("POST", route, body)
        return status, answer, {"X-Vertex-AI-Deployed-Model-Id": serving[0]}

    def _operation(self, method: str, parent: str, query: dict[str, list[str]], body: dict[str, Any], operation_id: str) -> tuple[int, Any, dict[str, str]]:
        operation = self._operations.get(operation_id)
        if operation is None:
            return 404, _error(404, "NOT_FOUND", f"operation {operation_id} not found"), {}
        if operation.polls_left > 0:
            operation.polls_left -= 1
            return 200, {"name": operation.name, "done": False}, {}
        self._complete(operation)
        answer: dict[str, Any] = {"name": operation.name, "done": True}
        answer.update({"error": operation.error} if operation.error else {"response": operation.response})
        return 200, answer, {}

    def _start(
        self, resource: str, on_done: Any, response: dict[str, Any], error: dict[str, Any] | None = None, polls: int | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        """A long-running operation on `resource`, named under it as Vertex AI names them
        (projects/<number>/locations/<region>/endpoints/<id>/operations/<id>)."""
        operation_id = str(next(self._ids))
        operation = _Operation(f"{resource}/operations/{operation_id}", self.faults.polls if polls is None else polls, on_done, response, error)
        self._operations[operation_id] = operation
        if operation.polls_left == 0:
            self._complete(operation)
            return 200, {"name": operation.name, "done": True, **({"error": operation.error} if operation.error else {"response": response})}, {}
        return 200, {"name": operation.name, "done": False}, {}

    def _complete(self, operation: _Operation) -> None:
        if operation.on_done is not None:
            operation.error = operation.on_done() or operation.error
            operation.on_done = None


# What mutateDeployedModel may change (v1beta1 MutateDeployedModelRequest.deployed_model).
_MUTABLE = {
    "dedicated_resources.min_replica_count",
    "dedicated_resources.max_replica_count",
    "dedicated_resources.required_replica_count",
    "dedicated_resources.autoscaling_metric_specs",
    "automatic_resources.min_replica_count",
    "automatic_resources.max_replica_count",
    "enable_container_logging",
}


def _split_problem(endpoint: dict[str, Any], split: dict[str, int], deploying: bool) -> str | None:
    """Why a traffic split cannot be the endpoint's, or None: it names its deployed models (and "0",
    the model being deployed) and adds up to 100 (an empty one, taking no traffic, is checked by no one here)."""
    known = {d["id"] for d in endpoint["deployedModels"]} | ({"0"} if deploying else set())
    unknown = sorted(set(split) - known)
    if unknown:
        return f"traffic_split names deployed models the endpoint does not have: {', '.join(unknown)}"
    if sum(split.values()) != 100:
        return f"traffic_split must add up to 100; it adds up to {sum(split.values())}"
    return None


def _snake(path: str) -> str:
    """A FieldMask path as the API names it (JSON sends lowerCamelCase)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), path)


def _drop(store: dict[str, Any], key: str) -> None:
    """Delete `key` as an operation's last step (which returns an error, or None)."""
    store.pop(key, None)


def _private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def _accelerator_problem(machine: str, accelerator: Any, count: int) -> str | None:
    name = ACCELERATOR_NUMBERS.get(accelerator, accelerator) if isinstance(accelerator, int) else accelerator
    family = next(((prefix, spec) for prefix, spec in MACHINES.items() if machine.startswith(prefix)), None)
    if family is None:
        return f"Machine type {machine} is not supported for online prediction"
    prefix, (carried, counts) = family
    size = int(re.sub(r"\D", "", machine.removeprefix(prefix)) or 0)
    if name != carried:
        return f"Accelerator {name} is not supported for machine type {machine}; it carries {carried}"
    if counts.get(size) != count:
        return f"Machine type {machine} carries {counts.get(size)} {carried}, not {count}"
    return None


def _model_arg(args: list[str]) -> str | None:
    """vLLM's --model in a container's args (`--model=X` or `--model X`)."""
    for index, arg in enumerate(args):
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
        if arg == "--model" and index + 1 < len(args):
            return args[index + 1]
    return None


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}
