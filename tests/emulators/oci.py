"""OCI Data Science (API 20190101) models, model deployments and work requests, on 127.0.0.1.

Enough for the `oci` SDK's DataScienceClient to run unmodified over real HTTP with a real
request signer (the stand-in insists on a `Signature` authorization header): models with an
artifact, model deployments whose work request and lifecycle advance over N polls, work
request errors, and the lists the SDK pages through. Deleted resources stay listed as DELETED
for a while, as in OCI.

It rejects what OCI rejects that matters here (an unknown shape, a deployment of a missing
model, an image outside OCIR, environment variables or a command outside the documented limits),
injects faults (LimitExceeded at create, out of host capacity in the work request, 429), records
requests and keeps an inventory. `write_config()` writes an SDK config file with a freshly
generated RSA key, which the SDK's validate_config accepts.

It also runs what a deployment deploys, as the service does: the image's ENTRYPOINT with `cmd` as
its arguments (or `entrypoint` + `cmd`), the environment variables, the shape's GPUs; the Hugging
Face Hub is reachable only with custom networking (a subnet); the container must answer GET
/health (or MODEL_DEPLOY_HEALTH_ENDPOINT) on the health check port and listen on the server port,
or the work request fails. The deployment's host (`modeldeployment.<region>.oci.customer-oci.com`)
takes signed requests to `/<ocid>/predict` and forwards them to MODEL_DEPLOY_PREDICT_ENDPOINT
(default /predict), as Oracle's BYOC contract says (model-deployment/containers/llama2/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.emulators import containers
from tests.emulators.http import DROP, Answer, Call, JsonStandIn
from tests.emulators.internet import Internet
from tests.emulators.vllm import ContainerFailed

COMPARTMENT = "ocid1.compartment.oc1..llamadeploytest"
PROJECT = "ocid1.datascienceproject.oc1.iad.llamadeploytest"
SHAPES = {"VM.GPU.A10.1", "VM.GPU.A10.2", "BM.GPU.A10.4", "BM.GPU4.8", "BM.GPU.A100-v2.8", "BM.GPU.L40S.4", "BM.GPU.H100.8", "BM.GPU.H200.8"}
DEPLOYMENT_HOST = "modeldeployment.us-ashburn-1.oci.customer-oci.com"
LIMITS_HOST = "limits.us-ashburn-1.oci.oraclecloud.com"
VCN_HOST = "iaas.us-ashburn-1.oraclecloud.com"  # the Networking API (core services)
SUBNET = "ocid1.subnet.oc1.iad.llamadeploytest"  # a subnet whose route table leads to a NAT gateway, there after every reset
_VCN_PATH = re.compile(r"^/20160918/(?P<kind>subnets|routeTables)/(?P<id>[^/?]+)$")
OBJECT_STORAGE_HOST = "objectstorage.us-ashburn-1.oraclecloud.com"
NAMESPACE = "llamadeploytest"
# Object Storage API (20160918): a bucket, its objects, its object versions, one object.
_BUCKET = re.compile(r"^/n/(?P<namespace>[^/]+)/b/(?P<bucket>[^/]+)(?P<rest>/o|/o/(?P<name>.+)|/objectversions)?$")
# Where a model deployment finds a model's artifact; a model by reference is copied there object by
# object under each object's own name (oracle-samples oci-data-science-ai-samples LLM/deploy-llm-byoc.md:
# `--model /opt/ds/model/deployed_model/<prefix>`).
DEPLOYED_MODEL_DIR = "/opt/ds/model/deployed_model"
_AVAILABILITY = re.compile(r"^/20190729/services/(?P<service>[^/]+)/limits/(?P<limit>[^/]+)/resourceAvailability$")
# Data Science GPU limits by shape prefix, as Oracle's ADS names them (ads/aqua/ui.py); they count GPUs.
GPU_LIMITS = {"VM.GPU.A10.": "ds-gpu-a10-count", "BM.GPU.A10.": "ds-gpu-a10-count", "BM.GPU4.": "ds-gpu4-count"}
DEFAULT_GPU_LIMIT = 16  # per limit in the region, in the stand-in's tenancy
# OcirModelDeploymentEnvironmentConfigurationDetails (oci SDK docstrings): environment variables
# under 2048 bytes in all, keys of 2-31 letters, digits and '_' starting with a letter and not
# ending with '_'; cmd and entrypoint under 2048 bytes together; ports 1024-65535 but 24224, 8446, 8447.
_ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,29}[A-Za-z0-9]$")
MAX_CONFIG_BYTES = 2048
_FORBIDDEN_PORTS = {24224, 8446, 8447}
_OCIR_IMAGE = re.compile(r"^[a-z0-9-]+\.ocir\.io/")
_PREDICT = re.compile(r"^/(?P<id>[^/]+)/predict$")
_ROUTES = [
    ("models", re.compile(r"^/20190101/models$")),
    ("artifact", re.compile(r"^/20190101/models/(?P<id>[^/]+)/artifact$")),
    ("artifact_content", re.compile(r"^/20190101/models/(?P<id>[^/]+)/artifact/content$")),
    ("model", re.compile(r"^/20190101/models/(?P<id>[^/]+)$")),
    ("deployments", re.compile(r"^/20190101/modelDeployments$")),
    ("deployment", re.compile(r"^/20190101/modelDeployments/(?P<id>[^/]+)$")),
    ("errors", re.compile(r"^/20190101/workRequests/(?P<id>[^/]+)/errors$")),
    ("work_request", re.compile(r"^/20190101/workRequests/(?P<id>[^/]+)$")),
    ("private_endpoint", re.compile(r"^/20190101/dataSciencePrivateEndpoints/(?P<id>[^/]+)$")),
]


@dataclass
class Request:
    method: str
    kind: str
    body: dict[str, Any]


@dataclass
class Faults:
    polls: int = 0
    quota_for: set[str] = field(default_factory=set)  # shapes whose deployment fails on service limits
    capacity_for: set[str] = field(default_factory=set)  # shapes whose work request fails: out of host capacity
    gpu_limit: dict[str, int] = field(default_factory=dict)  # Data Science limit name -> GPUs allowed in the region
    throttle_next: int = 0
    drop_next: int = 0  # connections closed without an answer
    server_error_next: int = 0
    artifact_failures: int = 0  # model artifact uploads that fail after the model was created
    inside_network: bool = False  # calls come from inside the VCN (a private endpoint answers them)
    serving_error_next: int = 0  # predict calls answered 503, as a replica that is not yet taking requests
    storage_error_next: int = 0  # Object Storage calls answered 503
    network_unreadable: bool = False  # the caller's policy lets it use the subnet but not read the Networking API


@dataclass
class _WorkRequest:
    id: str
    operation: str
    resource_id: str
    polls_left: int
    on_done: Any
    error: str | None = None
    status: str = "IN_PROGRESS"


_NAT_ROUTE = {"destination": "0.0.0.0/0", "networkEntityId": "ocid1.natgateway.oc1.iad.test"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OciStandIn(JsonStandIn):
    """The Data Science stand-in; point DataScienceClient's service_endpoint at `url`."""

    def __init__(self, internet: Internet) -> None:
        super().__init__()
        internet.serve(re.escape(DEPLOYMENT_HOST), self.predict)
        internet.serve(re.escape(LIMITS_HOST), self.limits)
        internet.serve(re.escape(OBJECT_STORAGE_HOST), self.object_storage)
        internet.serve(re.escape(VCN_HOST), self.vcn)
        self._internet = internet
        # subnet -> its route table's rules ({"destination", "networkEntityId"}): where its traffic may go
        self.subnets: dict[str, list[dict[str, str]]] = {SUBNET: [_NAT_ROUTE]}
        # (namespace, bucket) -> versioning ("Enabled" or "Disabled") and each object's versions, oldest first
        self.buckets: dict[tuple[str, str], dict[str, Any]] = {}
        self.private_endpoints: dict[str, str] = {}  # Data Science private endpoints that exist (ACTIVE) -> their FQDN
        self.faults = Faults()
        self.requests: list[Request] = []
        self.models: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.creations: list[tuple[str, str]] = []
        self.containers: dict[str, containers.Container] = {}
        self._work: dict[str, _WorkRequest] = {}
        self._ids = itertools.count(1)
        self._dir = tempfile.TemporaryDirectory(prefix="oci-stand-in-")

    def stop(self) -> None:
        super().stop()
        self._dir.cleanup()

    def write_config(self) -> Path:
        """An OCI SDK config file (profile DEFAULT) with an RSA key, as `oci setup config` writes; the
        key is made once per stand-in (70 ms each) and the file written anew each time."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key_file = Path(self._dir.name) / "key.pem"
        if not key_file.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        config = Path(self._dir.name) / "config"
        config.write_text(
            "[DEFAULT]\nuser=ocid1.user.oc1..llamadeploytest\nfingerprint=12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0\n"
            f"key_file={key_file}\ntenancy=ocid1.tenancy.oc1..llamadeploytest\nregion=us-ashburn-1\n"
        )
        return config

    def reset(self) -> None:
        with self._lock:
            self.faults = Faults()
            self.requests.clear()
            self.models.clear()
            self.deployments.clear()
            self.buckets.clear()
            self.private_endpoints.clear()
            self.subnets = {SUBNET: [_NAT_ROUTE]}
            self.creations.clear()
            self.containers.clear()
            self._work.clear()

    def inventory(self) -> dict[str, list[str]]:
        with self._lock:
            return {
                "models": sorted(m["displayName"] for m in self.models.values() if m["lifecycleState"] != "DELETED"),
                "model_deployments": sorted(d["displayName"] for d in self.deployments.values() if d["lifecycleState"] != "DELETED"),
            }

    def received(self, method: str, kind: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == method and r.kind == kind]

    def updating_in_place(self) -> int:
        """Model deployments being updated: the new instances start beside the old ones (billed both)."""
        with self._lock:
            return sum(1 for d in self.deployments.values() if d["lifecycleState"] == "UPDATING")

    def finish_operations(self, polls: int = 0) -> None:
        """Every work request in flight ends after `polls` more polls (at once with 0)."""
        with self._lock:
            self.faults.polls = polls
            for work in self._work.values():
                work.polls_left = min(work.polls_left, polls)
                if polls == 0:
                    self._advance(work)

    def delete_deployment_by_hand(self, name: str) -> None:
        with self._lock:
            for deployment in self.deployments.values():
                if deployment["displayName"] == name:
                    deployment["lifecycleState"] = "DELETED"

    def limits(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """The Limits API's resource availability (GET /20190729/services/{service}/limits/{limit}/
        resourceAvailability, oci.limits.models.ResourceAvailability): GPUs in use by the live
        deployments of shapes under the limit, and what is left of it."""
        self.requests.append(Request(method, "resource_availability", {}))
        if not headers.get("authorization", "").startswith("Signature "):
            return 401, _error("NotAuthenticated", "The required information to complete authentication was not provided."), {}
        match = _AVAILABILITY.match(path.split("?", 1)[0])
        if method != "GET" or match is None or match["service"] != "data-science" or match["limit"] not in GPU_LIMITS.values():
            return 404, _error("NotAuthorizedOrNotFound", f"limit not found: {path}"), {}
        with self._lock:
            live = [_shape_of(d) for d in self.deployments.values() if d["lifecycleState"] not in ("DELETED", "FAILED")]
            used = sum(_gpus(shape) for shape in live if gpu_limit_of(shape) == match["limit"])
            limit = self.faults.gpu_limit.get(match["limit"], DEFAULT_GPU_LIMIT)
        available = max(0, limit - used)
        return 200, {"used": used, "available": available, "fractionalUsage": float(used), "fractionalAvailability": float(available)}, {}

    def vcn(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """The Networking API's GetSubnet and GetRouteTable (docs.oracle.com/iaas/api/#/en/iaas/20160918/;
        oci.core.models.Subnet, RouteTable, RouteRule): a subnet names its route table, whose rules
        name a destination and the gateway it goes through."""
        match = _VCN_PATH.match(path.split("?", 1)[0])
        self.requests.append(Request(method, match["kind"] if match else "vcn", {}))
        if not headers.get("authorization", "").startswith("Signature "):
            return 401, _error("NotAuthenticated", "The required information to complete authentication was not provided."), {}
        subnet = match["id"] if match and match["kind"] == "subnets" else (match["id"].removeprefix("ocid1.routetable.") if match else "")
        with self._lock:
            rules = self.subnets.get(subnet)
        if method != "GET" or rules is None or self.faults.network_unreadable:
            return 404, _error("NotAuthorizedOrNotFound", f"Authorization failed or requested resource not found: {path}"), {}
        table = f"ocid1.routetable.{subnet}"
        if match["kind"] == "subnets":
            return (
                200,
                {"id": subnet, "routeTableId": table, "lifecycleState": "AVAILABLE", "compartmentId": COMPARTMENT, "vcnId": "ocid1.vcn.oc1.iad.test"},
                {},
            )
        routes = [{**rule, "destinationType": "CIDR_BLOCK", "routeType": "STATIC"} for rule in rules]
        return 200, {"id": table, "routeRules": routes, "lifecycleState": "AVAILABLE", "compartmentId": COMPARTMENT, "vcnId": "ocid1.vcn.oc1.iad.test"}, {}

    def routes_out(self, subnet: str) -> bool:
        """Whether the subnet's route table sends 0.0.0.0/0 to a NAT or internet gateway: the ways out
        Oracle's docs give custom networking ("egress to the public internet through a NAT/Internet
        gateway", model-dep-create-cus-net.htm). Other ways (a DRG to a proxy) are not modelled."""
        with self._lock:
            rules = self.subnets.get(subnet, [])
        gateways = ("ocid1.natgateway.", "ocid1.internetgateway.")
        return any(r["destination"] == "0.0.0.0/0" and r["networkEntityId"].startswith(gateways) for r in rules)

    def make_private_endpoint(self) -> str:
        """A Data Science private endpoint for model deployments, as a user makes one beforehand, with
        the FQDN a private deployment is called at (Oracle's sample: on the private endpoint's page;
        the stand-in's naming is its own)."""
        with self._lock:
            number = next(self._ids)
            endpoint = f"ocid1.datascienceprivateendpoint.oc1.iad.{number}"
            fqdn = self.private_endpoints[endpoint] = f"md-{number}.datascience.us-ashburn-1.oci.private"
        # A name inside the VCN: no route from outside, and none once the private endpoint is gone.
        self._internet.serve(re.escape(fqdn), self.predict, reachable=lambda: self.faults.inside_network and endpoint in self.private_endpoints)
        return endpoint

    def make_bucket(self, bucket: str, versioning: bool = True) -> None:
        with self._lock:
            self.buckets.setdefault((NAMESPACE, bucket), {"versioning": "Enabled" if versioning else "Disabled", "objects": {}})

    def put_object(self, bucket: str, name: str, data: bytes, metadata: dict[str, str] | None = None) -> str:
        """Store an object (a new version of it in a versioned bucket); its version id."""
        held = self.buckets[(NAMESPACE, bucket)]
        version = {"versionId": f"v{next(self._ids)}", "data": data, "etag": f"etag-{next(self._ids)}", "metadata": dict(metadata or {}), "time": _now()}
        versions = held["objects"].setdefault(name, [])
        if held["versioning"] != "Enabled":
            versions.clear()
        versions.append(version)
        return str(version["versionId"])

    def objects_under(self, bucket: str, prefix: str) -> dict[str, bytes]:
        """The latest version of each object under `prefix`, by full name."""
        with self._lock:
            held = self.buckets.get((NAMESPACE, bucket), {"objects": {}})
            return {name: v[-1]["data"] for name, v in held["objects"].items() if v and not v[-1].get("deleteMarker") and name.startswith(prefix)}

    def object_storage(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Object Storage (docs.oracle.com/iaas/api/#/en/objectstorage/20160918/): GetBucket (with
        its versioning), ListObjects and ListObjectVersions (one page, `fields` honoured loosely),
        and PutObject (checking a Content-MD5 sent with it; opc-meta-* kept), HeadObject, GetObject
        and DeleteObject of the latest version; signed requests only."""
        from urllib.parse import parse_qs, unquote, urlsplit

        self.requests.append(Request(method, "object_storage", {}))
        if not headers.get("authorization", "").startswith("Signature "):
            return 401, _error("NotAuthenticated", "The required information to complete authentication was not provided."), {}
        url = urlsplit(path)
        match = _BUCKET.match(unquote(url.path))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            if self.faults.storage_error_next > 0:
                self.faults.storage_error_next -= 1
                return 503, _error("ServiceUnavailable", "The service is currently unavailable."), {}
            held = self.buckets.get((match["namespace"], match["bucket"])) if match else None
            if match is None or held is None:
                return (
                    404,
                    _error(
                        "BucketNotFound",
                        f"Either the bucket named '{match['bucket'] if match else path}' does not exist in the namespace or you are not authorized to access it",
                    ),
                    {},
                )
            objects: dict[str, list[dict[str, Any]]] = held["objects"]
            prefix = query.get("prefix", "")
            if match["rest"] is None:
                return (
                    200,
                    {"namespace": match["namespace"], "name": match["bucket"], "compartmentId": COMPARTMENT, "versioning": held["versioning"], "etag": "b1"},
                    {"etag": "b1"},
                )
            if match["rest"] == "/o":
                listed = [
                    {"name": n, "size": len(v[-1]["data"]), "etag": v[-1]["etag"], "timeModified": v[-1]["time"]}
                    for n, v in sorted(objects.items())
                    if v and not v[-1].get("deleteMarker") and n.startswith(prefix)
                ]
                return 200, {"objects": listed, "prefixes": []}, {}
            if match["rest"] == "/objectversions":
                items = [
                    {
                        "name": n,
                        "size": len(one["data"]),
                        "etag": one["etag"],
                        "versionId": one["versionId"],
                        "isDeleteMarker": bool(one.get("deleteMarker")),
                        "timeModified": one["time"],
                    }
                    for n, versions in sorted(objects.items())
                    if n.startswith(prefix)
                    for one in reversed(versions)
                ]
                return 200, {"items": items, "prefixes": []}, {}
            name = match["name"]
            if method == "PUT":
                data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
                if "content-md5" in headers and base64.b64encode(hashlib.md5(data).digest()).decode() != headers["content-md5"]:
                    return 400, _error("InvalidContentMD5", "The computed MD5 of the request body does not match the Content-MD5 header"), {}
                version = self.put_object(match["bucket"], name, data, {k[len("opc-meta-") :]: v for k, v in headers.items() if k.startswith("opc-meta-")})
                return 200, None, {"etag": objects[name][-1]["etag"], "version-id": version}
            latest = objects.get(name, [])
            if not latest or latest[-1].get("deleteMarker"):
                return 404, _error("ObjectNotFound", f"The object '{name}' was not found in the bucket '{match['bucket']}'"), {}
            if method == "DELETE":  # a versioned bucket keeps the earlier versions behind a delete marker (Object Storage versioning)
                if held["versioning"] == "Enabled":
                    latest.append({"versionId": f"v{next(self._ids)}", "data": b"", "etag": "", "metadata": {}, "time": _now(), "deleteMarker": True})
                else:
                    del objects[name]
                return 204, None, {}
            one = latest[-1]
            described = {
                "etag": one["etag"],
                "version-id": one["versionId"],
                "content-type": "application/octet-stream",
                **{f"opc-meta-{k}": v for k, v in one["metadata"].items()},
            }
            if method == "HEAD":
                return 200, None, {**described, "Content-Length": str(len(one["data"]))}
            return 200, one["data"], described

    def predict(self, method: str, path: str, body: Any, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """The deployment host, or a private endpoint's FQDN for a deployment made with it: a signed
        POST to /<ocid>/predict reaches the container's predict route. A private deployment answers
        on its private endpoint's FQDN only, and that only from inside the VCN."""
        host = headers.get("host", "").split(":")[0]
        match = _PREDICT.match(path)
        if match is None or method != "POST":
            return 404, _error("NotFound", f"no route for {method} {path}"), {}
        if not headers.get("authorization", "").startswith("Signature "):
            return 401, _error("NotAuthenticated", "The required information to complete authentication was not provided."), {}
        with self._lock:
            deployment = self.deployments.get(match["id"])
            container = self.containers.get(match["id"])
        if deployment is None or deployment["lifecycleState"] not in ("ACTIVE", "UPDATING") or container is None:
            return 404, _error("NotAuthorizedOrNotFound", f"model deployment {match['id']} not found or not active"), {}
        private = _instance(deployment).get("privateEndpointId")
        with self._lock:
            if (self.private_endpoints.get(private) if private else DEPLOYMENT_HOST) != host:  # the refusal's wording is not published
                return 404, _error("NotAuthorizedOrNotFound", f"model deployment {match['id']} is not reached at {host}"), {}
            if self.faults.serving_error_next:
                self.faults.serving_error_next -= 1
                return 503, _error("ServiceUnavailable", "The model deployment is not yet taking requests."), {}
        environment = deployment["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"].get("environmentVariables") or {}
        status, answer = container.handle("POST", environment.get("MODEL_DEPLOY_PREDICT_ENDPOINT", "/predict"), body)
        return status, answer, {}

    def serving(self, host: str, path: str) -> bool | None:
        """A model deployment's /predict URL answers while the deployment is ACTIVE."""
        match = _PREDICT.match(path) if host == DEPLOYMENT_HOST else None
        if match is None:
            return None
        with self._lock:
            return self.deployments.get(match["id"], {}).get("lifecycleState") in ("ACTIVE", "UPDATING")

    def answer(self, call: Call) -> Answer:
        method, path, query, body = call.method, call.path, call.query, call.body
        signed = call.headers.get("authorization", "").startswith("Signature ")
        kind, match = next(((k, m) for k, pattern in _ROUTES if (m := pattern.search(path))), ("unknown", None))
        self.requests.append(Request(method, kind, body if isinstance(body, dict) else {}))
        with self._lock:
            if not signed:
                return 401, _error("NotAuthenticated", "The required information to complete authentication was not provided."), {}
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                return DROP
            if self.faults.throttle_next > 0:
                self.faults.throttle_next -= 1
                return 429, _error("TooManyRequests", "Too many requests for the tenancy"), {}
            if self.faults.server_error_next > 0:
                self.faults.server_error_next -= 1
                return 500, _error("InternalServerError", "Internal server error"), {}
            if match is None:
                return 404, _error("NotAuthorizedOrNotFound", f"no route for {method} {path}"), {}
            return getattr(self, f"_{kind}")(method, query, body, **match.groupdict())

    def _private_endpoint(self, method: str, query: dict[str, list[str]], body: Any, id: str) -> tuple[int, Any, dict[str, str]]:
        """GetDataSciencePrivateEndpoint, as far as a model deployment needs it: its FQDN."""
        fqdn = self.private_endpoints.get(id)
        if method != "GET" or fqdn is None:
            return 404, _error("NotAuthorizedOrNotFound", f"Data Science private endpoint {id} not found"), {}
        return 200, {"id": id, "fqdn": fqdn, "lifecycleState": "ACTIVE", "dataScienceResourceType": "MODEL_DEPLOYMENT", "compartmentId": "c"}, {}

    def _models(self, method: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            return 200, _matching(self.models.values(), query), {}
        model_id = f"ocid1.datasciencemodel.oc1.iad.{next(self._ids)}"
        model = {**body, "id": model_id, "lifecycleState": "ACTIVE", "timeCreated": _now(), "createdBy": "test"}
        self.models[model_id] = model
        self.creations.append(("model", body.get("displayName", "")))
        return 200, model, {"etag": "1"}

    def _artifact(self, method: str, query: dict[str, list[str]], body: Any, id: str) -> tuple[int, Any, dict[str, str]]:
        if id not in self.models:
            return 404, _error("NotAuthorizedOrNotFound", f"model {id} not found"), {}
        if self.faults.artifact_failures > 0:  # the upload is lost after the model exists
            self.faults.artifact_failures -= 1
            return 503, _error("ServiceUnavailable", "the artifact upload failed; retry"), {}
        self.models[id]["hasArtifact"] = True
        self.models[id]["artifact"] = body
        return 200, None, {}

    def _artifact_content(self, method: str, query: dict[str, list[str]], body: Any, id: str) -> tuple[int, Any, dict[str, str]]:
        """HeadModelArtifact (GET downloads it): 404 until an artifact was uploaded."""
        model = self.models.get(id)
        if model is None or not model.get("hasArtifact"):
            return 404, _error("NotAuthorizedOrNotFound", f"model {id} has no artifact"), {}
        return 200, None, {"content-disposition": "attachment; filename=artifact.zip"}

    def _model(self, method: str, query: dict[str, list[str]], body: Any, id: str) -> tuple[int, Any, dict[str, str]]:
        model = self.models.get(id)
        if model is None or model["lifecycleState"] == "DELETED":
            return 404, _error("NotAuthorizedOrNotFound", f"Authorization failed or requested resource not found: model {id}"), {}
        if method == "DELETE":
            if any(
                d["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["modelId"] == id
                for d in self.deployments.values()
                if d["lifecycleState"] != "DELETED"
            ):
                return 409, _error("IncorrectState", f"model {id} is used by a model deployment"), {}
            model["lifecycleState"] = "DELETED"
            return 204, None, {}
        if method == "PUT":  # UpdateModel: its tags (or name)
            model.update({k: body[k] for k in ("freeformTags", "displayName", "description") if k in body})
        return 200, model, {"etag": "1"}

    def _deployments(self, method: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        if method == "GET":
            return 200, _matching(self.deployments.values(), query), {}
        configuration = body["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
        model = self.models.get(configuration["modelId"])
        if model is None or model["lifecycleState"] == "DELETED":
            return 404, _error("NotAuthorizedOrNotFound", f"model {configuration['modelId']} not found"), {}
        if not model.get("hasArtifact"):  # bring-your-own-container too: a deployment serves a model with an artifact
            return 400, _error("InvalidParameter", f"model {configuration['modelId']} has no model artifact; upload one before deploying it"), {}
        shape = configuration["instanceConfiguration"]["instanceShapeName"]
        private = configuration["instanceConfiguration"].get("privateEndpointId")
        if private and private not in self.private_endpoints:
            return 400, _error("InvalidParameter", f"Data Science private endpoint {private} does not exist or is not ACTIVE"), {}
        subnet = configuration["instanceConfiguration"].get("subnetId")
        if subnet and subnet not in self.subnets:  # custom networking names a subnet that exists (the wording is unconfirmed offline)
            return 400, _error("InvalidParameter", f"subnet {subnet} does not exist or is not authorized"), {}
        if shape not in SHAPES:
            return 400, _error("InvalidParameter", f"Invalid shape {shape} for model deployment"), {}
        problem = _environment_problem(body["modelDeploymentConfigurationDetails"].get("environmentConfigurationDetails") or {})
        if problem:
            return 400, _error("InvalidParameter", problem), {}
        if shape in self.faults.quota_for:
            return (
                400,
                _error("LimitExceeded", f"The following service limits were exceeded: ds-gpu-{shape.lower()}-count. Request a service limit increase"),
                {},
            )
        deployment_id = f"ocid1.datasciencemodeldeployment.oc1.iad.{next(self._ids)}"
        deployment = {
            **body,
            "id": deployment_id,
            "lifecycleState": "CREATING",
            "timeCreated": _now(),
            "createdBy": "test",
            "modelDeploymentUrl": f"https://{DEPLOYMENT_HOST}/{deployment_id}",
        }
        self.deployments[deployment_id] = deployment
        self.creations.append(("model_deployment", body.get("displayName", "")))
        failure = f"Out of host capacity for shape {shape}. Try again later or use another shape." if shape in self.faults.capacity_for else None

        def done(failed: bool) -> str | None:
            problem = None if failed else self._start_container(deployment_id, deployment)
            deployment["lifecycleState"] = "FAILED" if failed or problem else "ACTIVE"
            return problem

        return 200, deployment, {"opc-work-request-id": self._start("CREATE_MODEL_DEPLOYMENT", deployment_id, done, failure), "etag": "1"}

    def _start_container(self, deployment_id: str, deployment: dict[str, Any]) -> str | None:
        """Pull the image and start it as the service does; the work request's error, or None."""
        configuration = deployment["modelDeploymentConfigurationDetails"]
        environment = configuration["environmentConfigurationDetails"]
        instance = configuration["modelConfigurationDetails"]["instanceConfiguration"]
        env = dict(environment.get("environmentVariables") or {})
        mounts = self._referenced(configuration["modelConfigurationDetails"]["modelId"])
        if isinstance(mounts, str):
            return mounts
        if not instance.get("subnetId") or not self.routes_out(instance["subnetId"]):
            # Default networking gives the container no internet, nor does a subnet without a route out:
            # the Hugging Face Hub is out of reach.
            env = {**env, "HF_HUB_OFFLINE": "1"}
        try:
            image = containers.lookup(environment.get("image", ""))
            container = containers.start(
                image,
                env,
                instance["instanceShapeName"],
                entrypoint=environment.get("entrypoint") or None,
                args=environment.get("cmd") or None,
                mounts=mounts,
            )
            health, _ = container.handle("GET", env.get("MODEL_DEPLOY_HEALTH_ENDPOINT", "/health"), None)
            if container.port != environment.get("serverPort") or container.port != environment.get("healthCheckPort") or health != 200:
                raise ContainerFailed(
                    0,
                    f"the server listens on port {container.port}; the deployment expects {environment.get('serverPort')} "
                    f"(health check on {environment.get('healthCheckPort')})",
                )
        except containers.UnknownImage as exc:
            return f"Failed to pull the container image: {exc}"
        except ContainerFailed as failed:
            return f"Errors occurred while bootstrapping the Model Deployment: the container exited or failed its health check ({failed.log})"
        self.containers[deployment_id] = container
        return None

    def _referenced(self, model_id: str) -> dict[str, dict[str, bytes]] | str:
        """What a model by reference puts under /opt/ds/model/deployed_model: each object its
        artifact describes (a `modelOSSReferenceDescription`, flagged by the custom metadata
        `modelDescription: true`, as Oracle's ADS writes them: ads/model/datascience_model.py,
        _prepare_file_description_artifact), at the version named, under its own name; or the work
        request's error when one is missing. A model with a zip artifact mounts nothing here."""
        model = self.models.get(model_id, {})
        flagged = any(m.get("key") == "modelDescription" and m.get("value") == "true" for m in model.get("customMetadataList") or [])
        if not flagged:
            return {}
        description = model.get("artifact")
        if not isinstance(description, dict) or description.get("type") != "modelOSSReferenceDescription":
            return "Failed to download the model artifact: a model by reference needs a modelOSSReferenceDescription JSON artifact"
        mounts: dict[str, dict[str, bytes]] = {}
        for described in description.get("models", []):
            held = self.buckets.get((described["namespace"], described["bucketName"]))
            prefix = described.get("prefix", "")
            folder = mounts.setdefault(f"{DEPLOYED_MODEL_DIR}/{prefix}".rstrip("/"), {})
            for item in described.get("objects", []):
                versions = held["objects"].get(item["name"], []) if held else []
                found = next((v for v in versions if v["versionId"] == item["version"] and not v.get("deleteMarker")), None)
                if found is None:
                    return (
                        f"Failed to download the model artifact: object {item['name']} version {item['version']} not found in bucket {described['bucketName']}"
                    )
                folder[item["name"][len(prefix) :].lstrip("/")] = found["data"]
        return mounts

    def _deployment(self, method: str, query: dict[str, list[str]], body: Any, id: str) -> tuple[int, Any, dict[str, str]]:
        deployment = self.deployments.get(id)
        if deployment is None:
            return 404, _error("NotAuthorizedOrNotFound", f"Authorization failed or requested resource not found: model deployment {id}"), {}
        if method == "DELETE":
            if deployment["lifecycleState"] == "DELETED":
                return 404, _error("NotAuthorizedOrNotFound", f"model deployment {id} not found"), {}
            if deployment["lifecycleState"] == "DELETING":  # the API's 409 IncorrectState: the resource's state forbids it now
                return 409, _error("IncorrectState", f"model deployment {id} is being deleted"), {}
            deployment["lifecycleState"] = "DELETING"
            return 202, None, {"opc-work-request-id": self._start("DELETE_MODEL_DEPLOYMENT", id, lambda failed: self._deleted(id))}
        if method == "PUT":
            return self._update(deployment, body)
        for work in [w for w in self._work.values() if w.resource_id == id]:  # the service works on whether or not its work request is polled
            self._advance(work)
        return 200, deployment, {"etag": "1"}

    def _update(self, deployment: dict[str, Any], body: Any) -> tuple[int, Any, dict[str, str]]:
        """UpdateModelDeployment of an ACTIVE deployment, with the model it serves named again
        (UpdateModelConfigurationDetails.model_id is required in the SDK): its scaling policy, and
        either its compute shape or its container (image, command, environment), one group at a
        time, as OCI's guide says an active deployment is edited with zero downtime (model-dep-edit.htm).
        The old container takes every call while the new one starts; one that fails leaves the old
        one serving and the deployment ACTIVE with its `lifecycleDetails` (this stand-in's reading;
        OCI documents neither this nor the refusals' wording)."""
        if deployment["lifecycleState"] != "ACTIVE":
            return (
                409,
                _error("IncorrectState", f"model deployment {deployment['id']} is {deployment['lifecycleState']}; only an ACTIVE one can be updated"),
                {},
            )
        if "modelDeploymentConfigurationDetails" not in body:  # its tags (or name) alone: nothing restarts
            deployment.update({k: body[k] for k in ("freeformTags", "displayName", "description") if k in body})
            return 202, None, {"opc-work-request-id": self._start("UPDATE_MODEL_DEPLOYMENT", deployment["id"], lambda failed: None)}
        details = body.get("modelDeploymentConfigurationDetails") or {}
        sent, environment = details.get("modelConfigurationDetails") or {}, details.get("environmentConfigurationDetails")
        current = deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]
        if sent.get("modelId") != current["modelId"]:
            return 400, _error("InvalidParameter", "modelConfigurationDetails.modelId is required and must name the deployed model"), {}
        policy = sent.get("scalingPolicy")
        shape = (sent.get("instanceConfiguration") or {}).get("instanceShapeName")
        problem = (
            (_scaling_problem(policy) if policy else None)
            or (f"Invalid shape {shape} for model deployment" if shape and shape not in SHAPES else None)
            or (_environment_problem(environment) if environment else None)
        )
        if shape and shape != current["instanceConfiguration"]["instanceShapeName"] and environment:
            problem = "An active model deployment's compute and container cannot be updated at once; update one, then the other"
        if problem:
            return 400, _error("InvalidParameter", problem), {}
        configuration = {
            "modelConfigurationDetails": {
                **current,
                **({"instanceConfiguration": {**current["instanceConfiguration"], "instanceShapeName": shape}} if shape else {}),
                **({"scalingPolicy": policy} if policy else {}),
            },
            "environmentConfigurationDetails": {
                **deployment["modelDeploymentConfigurationDetails"]["environmentConfigurationDetails"],
                **{k: v for k, v in (environment or {}).items() if v is not None},
            },
        }
        restart = bool(environment) or (shape is not None and shape != current["instanceConfiguration"]["instanceShapeName"])
        failure = f"Out of host capacity for shape {shape}. Try again later or use another shape." if shape in self.faults.capacity_for else None
        deployment["lifecycleState"] = "UPDATING"

        def done(failed: bool) -> str | None:
            problem = None
            if restart and not failed:
                problem = self._start_container(deployment["id"], {**deployment, "modelDeploymentConfigurationDetails": configuration})
            deployment["lifecycleState"] = "ACTIVE"
            deployment["lifecycleDetails"] = failure or problem or ""
            if not (failed or problem):
                deployment["modelDeploymentConfigurationDetails"].update(configuration)
            return problem

        return 202, None, {"opc-work-request-id": self._start("UPDATE_MODEL_DEPLOYMENT", deployment["id"], done, failure)}

    def _deleted(self, deployment_id: str) -> None:
        self.deployments[deployment_id]["lifecycleState"] = "DELETED"
        self.containers.pop(deployment_id, None)

    def _work_request(self, method: str, query: dict[str, list[str]], body: Any, id: str) -> tuple[int, Any, dict[str, str]]:
        work = self._work.get(id)
        if work is None:
            return 404, _error("NotAuthorizedOrNotFound", f"work request {id} not found"), {}
        self._advance(work)
        return (
            200,
            {
                "id": work.id,
                "operationType": work.operation,
                "status": work.status,
                "compartmentId": COMPARTMENT,
                "percentComplete": 100.0 if work.status != "IN_PROGRESS" else 50.0,
                "timeAccepted": _now(),
                "resources": [{"entityType": "modelDeployment", "actionType": "IN_PROGRESS", "identifier": work.resource_id}],
            },
            {},
        )

    def _errors(self, method: str, query: dict[str, list[str]], body: Any, id: str) -> tuple[int, Any, dict[str, str]]:
        work = self._work.get(id)
        errors = [{"code": "InternalError", "message": work.error, "timestamp": _now()}] if work and work.error else []
        return 200, errors, {}

    def _start(self, operation: str, resource_id: str, on_done: Any, error: str | None = None) -> str:
        work = _WorkRequest(f"ocid1.datascienceworkrequest.oc1.iad.{next(self._ids)}", operation, resource_id, self.faults.polls, on_done, error)
        self._work[work.id] = work
        return work.id

    def _advance(self, work: _WorkRequest) -> None:
        if work.status != "IN_PROGRESS":
            return
        if work.polls_left > 0:
            work.polls_left -= 1
            return
        work.error = work.on_done(work.error is not None) or work.error
        work.status = "FAILED" if work.error else "SUCCEEDED"


def gpu_limit_of(shape: str) -> str | None:
    return next((name for prefix, name in GPU_LIMITS.items() if shape.startswith(prefix)), None)


def _instance(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["instanceConfiguration"]


def _shape_of(deployment: dict[str, Any]) -> str:
    return deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["instanceConfiguration"]["instanceShapeName"]


def _gpus(shape: str) -> int:
    """GPUs in a shape, as its name's last number says (VM.GPU.A10.2: 2), as Oracle's ADS reads it."""
    return int(shape.rsplit(".", 1)[-1])


def _environment_problem(environment: dict[str, Any]) -> str | None:
    """What OCI refuses in a container environment configuration (the SDK's documented limits)."""
    image = environment.get("image", "")
    if not _OCIR_IMAGE.match(image):
        return f"image {image!r}: model deployments run container images from the OCI Registry (<region>.ocir.io/...) only"
    variables = environment.get("environmentVariables") or {}
    bad = [key for key in variables if not _ENV_KEY.match(key)]
    if bad:
        return f"environment variable keys {bad} must be 2-31 letters, digits and '_', start with a letter and not end with '_'"
    if len(json.dumps(variables)) >= MAX_CONFIG_BYTES:
        return f"environment variables take {len(json.dumps(variables))} bytes; the limit is {MAX_CONFIG_BYTES}"
    if len(json.dumps([*(environment.get("cmd") or []), *(environment.get("entrypoint") or [])])) >= MAX_CONFIG_BYTES:
        return f"cmd and entrypoint must be under {MAX_CONFIG_BYTES} bytes together"
    for port in (environment.get("serverPort"), environment.get("healthCheckPort")):
        if port is not None and (not 1024 <= port <= 65535 or port in _FORBIDDEN_PORTS):
            return f"port {port} is not allowed: use 1024-65535 except 24224, 8446, 8447"
    return None


def _matching(items: Any, query: dict[str, list[str]]) -> list[dict[str, Any]]:
    """A list call's answer: filtered by compartment, project, display name and lifecycle state."""
    wanted = {"compartmentId": "compartmentId", "projectId": "projectId", "displayName": "displayName", "lifecycleState": "lifecycleState"}
    return [item for item in items if all(item.get(field) == query[key][0] for key, field in wanted.items() if key in query)]


def _error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def _scaling_problem(policy: dict[str, Any]) -> str | None:
    """What OCI refuses in a scaling policy (oci.data_science FixedSizeScalingPolicy, AutoScalingPolicy,
    ThresholdBasedAutoScalingPolicyDetails): counts below one, or out of order."""
    if policy.get("policyType") == "FIXED_SIZE":
        return None if int(policy.get("instanceCount") or 0) >= 1 else "scalingPolicy.instanceCount must be at least 1"
    if policy.get("policyType") != "AUTOSCALING":
        return f"scalingPolicy.policyType must be FIXED_SIZE or AUTOSCALING, not {policy.get('policyType')!r}"
    (details,) = policy.get("autoScalingPolicies") or [{}]
    low, high = int(details.get("minimumInstanceCount") or 0), int(details.get("maximumInstanceCount") or 0)
    initial = int(details.get("initialInstanceCount") or low)
    if not 1 <= low <= initial <= high:
        return "autoScalingPolicies[0] must satisfy 1 <= minimumInstanceCount <= initialInstanceCount <= maximumInstanceCount"
    if not details.get("rules"):
        return "autoScalingPolicies[0].rules must hold at least one rule"
    return None
