"""AWS SageMaker and Application Auto Scaling on 127.0.0.1: moto's server behind a fault proxy.

moto answers the real API over real HTTP, but makes endpoints InService at once, never fails
for capacity, and never throttles. The proxy in front of it (what boto3 talks to) adds those:
an endpoint that takes N polls to become ready (or then fails with a reason), a call that
fails with a given error, and throttling for the next K calls. It records every request so
tests can assert on what the cloud received, and `inventory()` counts what is left.

moto has no UpdateEndpoint; the proxy answers it as SageMaker's blue/green update does
(API_UpdateEndpoint.html): refused unless the endpoint is InService, or when it would change the
instance type of a variant registered with Application Auto Scaling (endpoint-scaling-update.html;
the wording of both refusals is not published, the one for an endpoint in progress is the one
SDK users quote). The endpoint is Updating for the fault's polls with the new configuration in
PendingDeploymentSummary while the old container takes every call; then the new container starts,
and either the endpoint moves to the new configuration and container, or it stays InService on the
old one with a FailureReason (as aws-controllers-k8s/sagemaker-controller's test data shows).

It also starts each endpoint's container as SageMaker does (tests/emulators/containers.py): the
model's image with its own entrypoint and the model's environment, no command (SageMaker has no
command override), health-checked with GET /ping on port 8080 (the SageMaker inference container
contract). A container that exits or listens elsewhere fails the endpoint with SageMaker's reason,
and InvokeEndpoint (`POST /endpoints/<name>/invocations`) reaches the container's /invocations.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.emulators import containers
from tests.emulators.http import loopback_server
from tests.emulators.vllm import ContainerFailed

REGION = "us-east-1"
SERVICE_QUOTAS_TARGET = "ServiceQuotasV20190624."
DEFAULT_ENDPOINT_QUOTA = 4  # instances per GPU type in the stand-in's account (new real accounts often have 0)
MODEL_DIR = "/opt/ml/model"  # where SageMaker puts a model's data in its container
SAGEMAKER_PORT = 8080  # "Containers need to implement a web server that responds to /invocations and /ping on port 8080"
PING_FAILED = "The primary container for production variant AllTraffic did not pass the ping health check. Please check CloudWatch logs for this endpoint."
_RUNTIME_HOST = re.compile(r"^runtime\.sagemaker\.[a-z0-9-]+\.amazonaws\.com$")
_INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def _accept_ml_instance_types(self: Any, instance_type: str) -> None:
    """moto 5.2 only knows old instance families; SageMaker accepts any `ml.*` type it sells."""
    if not instance_type.startswith("ml."):
        from moto.sagemaker.exceptions import ValidationError

        raise ValidationError(message=f"Value '{instance_type}' at 'instanceType' failed to satisfy constraint")


@dataclass
class Request:
    action: str
    body: dict[str, Any]


@dataclass
class Faults:
    """What the proxy does to the next requests; tests set these fields."""

    ready_after_polls: int = 0
    ready_after_seconds: float = 0.0
    failure_reason: str | None = None
    fail: dict[str, tuple[str, str]] = field(default_factory=dict)
    throttle_next: int = 0
    drop_next: int = 0  # connections closed without an answer
    server_error_next: int = 0
    deleting_polls: int = 0  # DescribeEndpoint answers Deleting this many times after DeleteEndpoint
    endpoint_quota: dict[str, int] = field(default_factory=dict)  # instance type -> "for endpoint usage" quota
    denied: set[str] = field(default_factory=set)  # EC2 actions the caller's policy does not allow


class AwsStandIn:
    """moto + proxy. Point boto3 at `url`."""

    def __init__(self) -> None:
        # moto and boto3 are imported here, not at module level: conftest imports this module, and a
        # unit test should not pay for them.
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.sagemaker.models import FakeEndpointConfig

        FakeEndpointConfig.validate_instance_type = _accept_ml_instance_types
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        self.moto_host, self.moto_port = self._moto.get_host_and_port()
        self.faults = Faults()
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self.requests: list[Request] = []
        self._polls_left: dict[str, int] = {}
        self._created_at: dict[str, float] = {}
        self._deleting: dict[str, int] = {}
        self._updating: dict[str, tuple[str, int]] = {}  # endpoint -> (configuration it is moving to, polls left)
        self._failed_updates: dict[str, str] = {}  # endpoint -> why its last update failed (its FailureReason)
        self._failing: dict[str, str] = {}  # endpoint -> why its fleet fails to come up (created while failure_reason was set)
        self.containers: dict[str, containers.Container | ContainerFailed] = {}
        self._model_data: dict[str, str] = {}  # model -> the S3 prefix SageMaker copies under /opt/ml/model (moto keeps no ModelDataSource)
        self._isolated: set[str] = set()  # models whose containers have network isolation
        self._vpc_subnets: dict[str, list[str]] = {}  # models whose containers run in these subnets (VpcConfig)
        self._lock = threading.Lock()
        self._proxy, self.url = loopback_server(_handler(self))

    def stop(self) -> None:
        self._proxy.shutdown()
        self._moto.stop()

    def reset(self) -> None:
        """Forget every resource and fault, as a fresh account."""
        connection = http.client.HTTPConnection(self.moto_host, self.moto_port, timeout=10)
        connection.request("POST", "/moto-api/reset")
        connection.getresponse().read()
        self.faults = Faults()
        self.requests.clear()
        self._polls_left.clear()
        self._created_at.clear()
        self._deleting.clear()
        self._updating.clear()
        self._failed_updates.clear()
        self._failing.clear()
        self.containers.clear()
        self._model_data.clear()
        self._isolated.clear()
        self._vpc_subnets.clear()

    def calls(self, action: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.action == action]

    def client(self, service: str) -> Any:
        """A boto3 client straight to moto, bypassing faults: the test's own view of the account.
        Made once per service: a client is costly to make, and boto3's clients are thread-safe
        ("Low-level clients are thread safe", boto3's guide on clients)."""
        import boto3

        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=REGION, endpoint_url=f"http://{self.moto_host}:{self.moto_port}", **_keys())
            return self._clients[service]

    def inventory(self) -> dict[str, list[str]]:
        sagemaker, scaling = self.client("sagemaker"), self.client("application-autoscaling")
        return {
            "models": [m["ModelName"] for m in sagemaker.list_models()["Models"]],
            "endpoint_configs": [c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]],
            "endpoints": [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]],
            "scalable_targets": [t["ResourceId"] for t in scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]],
            "scaling_policies": [p["PolicyName"] for p in scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]],
        }

    def service_quotas(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Service Quotas for SageMaker (service-2.json 2019-06-24): one "<instance type> for endpoint
        usage" quota per instance type, in pages of 2 so a client must follow NextToken. As the API
        reference says, ListServiceQuotas lists applied values only (those `faults.endpoint_quota`
        sets); ListAWSDefaultServiceQuotas lists every quota at its default."""
        if action not in ("ListServiceQuotas", "ListAWSDefaultServiceQuotas") or body.get("ServiceCode") != "sagemaker":
            return 400, {"__type": "NoSuchResourceException", "message": f"the stand-in answers SageMaker's quota listings only, not {action}"}
        known = sorted(t for t in containers.gpus_per_instance() if t.startswith("ml."))
        names = [t for t in known if t in self.faults.endpoint_quota] if action == "ListServiceQuotas" else known
        start = int(body.get("NextToken") or 0)
        page = [
            {
                "ServiceCode": "sagemaker",
                "ServiceName": "Amazon SageMaker",
                "QuotaCode": f"L-{zlib.crc32(name.encode()):08X}",
                "QuotaName": f"{name} for endpoint usage",
                "Value": float(self.faults.endpoint_quota.get(name, DEFAULT_ENDPOINT_QUOTA) if action == "ListServiceQuotas" else DEFAULT_ENDPOINT_QUOTA),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
            for name in names[start : start + 2]
        ]
        return 200, {"Quotas": page, **({"NextToken": str(start + 2)} if start + 2 < len(names) else {})}

    def updating_in_place(self) -> int:
        """Endpoints whose blue/green update has its new fleet up beside the old (billed both)."""
        with self._lock:
            return len(self._updating)

    def finish_in_polls(self, polls: int) -> None:
        """Every endpoint creating or deleting now ends after `polls` more DescribeEndpoint polls (at once with 0)."""
        with self._lock:
            self.faults.ready_after_polls = self.faults.deleting_polls = polls
            for store in (self._polls_left, self._deleting):
                for name in store:
                    store[name] = min(store[name], polls)
            for name, (config, left) in self._updating.items():
                self._updating[name] = (config, min(left, polls))

    def serving(self, host: str, path: str) -> bool | None:
        """An endpoint's runtime URL answers while the endpoint is InService (as the proxy reports it)."""
        match = _INVOCATIONS.match(path) if _RUNTIME_HOST.match(host) else None
        if match is None:
            return None
        name = match["name"]
        if not any(e["EndpointName"] == name for e in self.client("sagemaker").list_endpoints()["Endpoints"]):
            return False
        with self._lock:
            return self._faked_status(name, poll=False) is None

    def _faked_status(self, name: str, poll: bool) -> str | None:
        """Creating or Failed while the faults (or the container) say so, else None (moto's InService
        stands); a poll counts down."""
        left = self._polls_left.get(name, 0)
        if time.monotonic() - self._created_at.get(name, 0.0) < self.faults.ready_after_seconds:
            return "Creating"
        if left > 0:
            if poll:
                self._polls_left[name] = left - 1
            return "Creating"
        if name in self._failing:
            return "Failed"
        return "Failed" if isinstance(self.containers.get(name), ContainerFailed) else None

    def _failure_reason(self, name: str) -> str:
        return self._failing.get(name) or _failed(self.containers.get(name))

    def _start_container(self, endpoint: str, config_name: str) -> None:
        """Start the endpoint's container as SageMaker would: the model's image, entrypoint and environment."""
        self.containers[endpoint] = self._container_of(config_name)

    def _routes(self, subnet: str) -> list[dict[str, Any]]:
        """The routes a subnet's traffic takes: its route table's, else its VPC's main one, as EC2 applies them."""
        ec2 = self.client("ec2")
        tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
        if not tables:
            vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
            tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        return tables[0]["Routes"] if tables else []

    def _outbound(self, model: str) -> bool:
        """Whether the model's container reaches the internet: outside a VPC, yes; in one, only where
        every subnet it runs in routes 0.0.0.0/0 to a NAT gateway (its network interfaces have no
        public address, so an internet gateway alone does not do)."""
        return all(any(_to_nat(route) for route in self._routes(subnet)) for subnet in self._vpc_subnets.get(model, ()))

    def _reaches_s3(self, model: str) -> bool:
        """Whether model data can be copied through the model's subnets: with a VpcConfig, "the download
        [...] of customer data and model artifacts are routed through your VPC subnet", network isolation
        or not (SageMaker developer guide, mkt-algo-model-internet-free.md), and S3 is reached there
        through a gateway endpoint or a NAT gateway (host-vpc.md, "Create an Amazon S3 VPC Endpoint";
        awsdocs/amazon-sagemaker-developer-guide). A gateway endpoint shows in a route table as a
        route to the region's S3 prefix list through the endpoint (vpce-...)."""
        if not self._vpc_subnets.get(model):
            return True
        ec2 = self.client("ec2")
        s3_lists = {p["PrefixListId"] for p in ec2.describe_managed_prefix_lists()["PrefixLists"] if p["PrefixListName"] == f"com.amazonaws.{REGION}.s3"}
        return all(any(_to_nat(route) or _to_s3_gateway(route, s3_lists) for route in self._routes(subnet)) for subnet in self._vpc_subnets[model])

    def _container_of(self, config_name: str) -> containers.Container | ContainerFailed:
        sagemaker = self.client("sagemaker")
        variant = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"][0]
        container = sagemaker.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
        prefix = self._model_data.get(variant["ModelName"])
        if prefix and not self._reaches_s3(variant["ModelName"]):
            return ModelDataUnreachable(prefix)
        mounts = {MODEL_DIR: self.s3_files(prefix)} if prefix else {}
        try:
            started = containers.start(
                container["Image"],
                dict(container.get("Environment", {})),
                variant["InstanceType"],
                mounts=mounts,
                network=variant["ModelName"] not in self._isolated and self._outbound(variant["ModelName"]),
            )
            if started.port != SAGEMAKER_PORT:
                raise ContainerFailed(0, f"the server listens on port {started.port}; SageMaker pings port {SAGEMAKER_PORT}")
            return started
        except ContainerFailed as failed:
            return failed

    def update_endpoint(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """UpdateEndpoint, which moto lacks: checked as SageMaker checks it, then run over the next polls."""
        name, config = body["EndpointName"], body["EndpointConfigName"]
        sagemaker, scaling = self.client("sagemaker"), self.client("application-autoscaling")
        arn = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{name.lower()}"
        endpoint = next((e for e in sagemaker.list_endpoints()["Endpoints"] if e["EndpointName"] == name), None)
        if endpoint is None:
            return 400, {"__type": "ValidationException", "message": f'Could not find endpoint "{arn}".'}
        with self._lock:
            busy = name in self._updating or self._deleting.get(name, 0) > 0 or self._faked_status(name, poll=False) is not None
        if busy:
            return 400, {"__type": "ValidationException", "message": f'Cannot update in-progress endpoint "{arn}".'}
        policy = (body.get("DeploymentConfig") or {}).get("BlueGreenUpdatePolicy")
        problem = _blue_green_problem(policy) if policy else None
        if problem:
            return 400, {"__type": "ValidationException", "message": problem}
        configs = {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}
        if config not in configs:
            return 400, {"__type": "ValidationException", "message": f'Could not find endpoint configuration "{config}".'}
        current = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        old = sagemaker.describe_endpoint_config(EndpointConfigName=current)["ProductionVariants"][0]
        new = sagemaker.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
        target = f"endpoint/{name}/variant/{old['VariantName']}"
        scaled = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[target])["ScalableTargets"]
        if scaled and old["InstanceType"] != new["InstanceType"]:
            return 400, {
                "__type": "ValidationException",
                "message": f"The variant {old['VariantName']} of endpoint {name} is registered with Application Auto Scaling; "
                "deregister it as a scalable target before changing its instance type.",
            }
        with self._lock:
            self._updating[name] = (config, self.faults.ready_after_polls)
        return 200, {"EndpointArn": arn}

    def _progress_update(self, name: str, answer: dict[str, Any]) -> None:
        """An update's poll: Updating with the new configuration pending, then the new fleet takes over
        or fails (the old one serving on). Called with the lock held."""
        config, left = self._updating[name]
        if left > 0:
            self._updating[name] = (config, left - 1)
            answer.update(EndpointStatus="Updating", PendingDeploymentSummary={"EndpointConfigName": config, "StageStatus": []})
            return
        del self._updating[name]
        started = self._container_of(config)
        if self.faults.failure_reason or isinstance(started, ContainerFailed):
            answer["FailureReason"] = self._failed_updates[name] = self.faults.failure_reason or _failed(started)
            return
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends["123456789012"][REGION]
        backend.endpoints[name].endpoint_config_name = config
        backend.endpoints[name].production_variants = backend.endpoints[name]._process_production_variants(
            backend.describe_endpoint_config(config)["ProductionVariants"]
        )
        self._failed_updates.pop(name, None)
        self.containers[name] = started
        answer.update(EndpointConfigName=config)

    def invoke(self, name: str, body: Any) -> tuple[int, dict[str, Any]]:
        """InvokeEndpoint: the body to the container's /invocations, its answer back, as the runtime does."""
        with self._lock:
            container = self.containers.get(name)
            ready = self._faked_status(name, poll=False) is None
        if not isinstance(container, containers.Container) or not ready:
            return 400, {"__type": "ValidationError", "message": f"Endpoint {name} of account 123456789012 not found."}
        status, answer = container.handle("POST", "/invocations", body)
        if status != 200:
            # A container's error answer comes back as ModelError (SageMaker runtime API reference).
            return 424, {
                "__type": "ModelError",
                "Message": f'Received client error ({status}) from primary with message "{json.dumps(answer)}"',
                "OriginalStatusCode": status,
            }
        return 200, answer

    # The proxy's decisions, one request at a time.

    def take_drop(self) -> bool:
        """Whether to close this request's connection without an answer (a `drop_next` fault)."""
        with self._lock:
            if self.faults.drop_next > 0:
                self.faults.drop_next -= 1
                return True
            return False

    def _fault_for(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            if self.faults.throttle_next > 0:
                self.faults.throttle_next -= 1
                return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            if self.faults.server_error_next > 0:
                self.faults.server_error_next -= 1
                return 500, {"__type": "InternalFailure", "message": "We encountered an internal error. Please try again."}
            if action == "DescribeEndpoint" and self._deleting.get(body["EndpointName"], 0) > 0:
                self._deleting[body["EndpointName"]] -= 1
                return 200, {
                    "EndpointName": body["EndpointName"],
                    "EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/x",
                    "EndpointConfigName": "deleting",
                    "EndpointStatus": "Deleting",
                    "CreationTime": 0,
                    "LastModifiedTime": 0,
                }
            if action in self.faults.fail:
                code, message = self.faults.fail[action]
                return 400, {"__type": code, "message": message}
            if action == "DeleteEndpoint" and body["EndpointName"] in self._updating:
                arn = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{body['EndpointName'].lower()}"
                return 400, {"__type": "ValidationException", "message": f'Cannot update in-progress endpoint "{arn}".'}
            if action == "DeleteEndpoint" and self._faked_status(body["EndpointName"], poll=False) == "Creating":
                # SageMaker deletes no endpoint still being created (aws/amazon-sagemaker-examples pull 3188); the wording is not published.
                return 400, {"__type": "ValidationException", "message": f"Cannot delete endpoint {body['EndpointName']} while its status is Creating."}
            if action == "CreateEndpoint" and self._deleting.get(body["EndpointName"], 0) > 0:  # moto forgot it; SageMaker still holds the name
                arn = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{body['EndpointName'].lower()}"
                return 400, {"__type": "ValidationException", "message": f'Cannot create already existing endpoint "{arn}".'}
        if action == "CreateModel":
            image = body.get("PrimaryContainer", {}).get("Image", "")
            try:
                containers.lookup(image)
            except containers.UnknownImage:
                return 400, {"__type": "ValidationException", "message": f"Requested image {image} not found."}
            vpc = body.get("VpcConfig")
            if vpc is not None:
                refused = self._check_vpc(vpc)
                if refused:
                    return refused
            source = body.get("PrimaryContainer", {}).get("ModelDataSource", {}).get("S3DataSource")
            if source is not None:
                return self._check_model_data(source)
        return None

    def _check_vpc(self, vpc: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """Subnets and security groups that exist in the account (moto's EC2), as SageMaker checks them
        at CreateModel (the wording is unconfirmed offline)."""
        ec2 = self.client("ec2")
        subnets = {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
        groups = {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]}
        unknown = [s for s in vpc.get("Subnets", []) if s not in subnets] + [g for g in vpc.get("SecurityGroupIds", []) if g not in groups]
        if unknown:
            return 400, {"__type": "ValidationException", "message": f"The VPC configuration is invalid: {', '.join(unknown)} not found."}
        return None

    def _check_model_data(self, source: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """An uncompressed S3 prefix, as S3ModelDataSource documents it (a prefix ends with /), that
        holds objects: SageMaker checks model data at CreateModel ("Could not find model data at ...",
        its wording for ModelDataUrl; the wording for a prefix is unconfirmed offline)."""
        uri = source.get("S3Uri", "")
        if (source.get("S3DataType"), source.get("CompressionType")) != ("S3Prefix", "None"):
            return 400, {"__type": "ValidationException", "message": "this stand-in serves uncompressed S3Prefix model data only"}
        if not uri.endswith("/"):
            return 400, {"__type": "ValidationException", "message": f"S3Uri {uri} is not a valid key name prefix: it must end with a forward slash (/)."}
        if not self.s3_files(uri):
            return 400, {"__type": "ValidationException", "message": f"Could not find model data at {uri}."}
        bucket = uri.removeprefix("s3://").split("/", 1)[0]
        location = self.client("s3").head_bucket(Bucket=bucket).get("BucketRegion", REGION)
        if location != REGION:  # SageMaker reads model data from its own region's S3 only (the wording is unconfirmed offline)
            return 400, {
                "__type": "ValidationException",
                "message": f"S3 bucket {bucket} is in {location}; model data must be in {REGION}, the model's region.",
            }
        return None

    def s3_files(self, prefix: str) -> dict[str, bytes]:
        """The objects under an S3 prefix, by key relative to it: what SageMaker copies under /opt/ml/model."""
        bucket, _, key_prefix = prefix.removeprefix("s3://").partition("/")
        s3 = self.client("s3")
        files: dict[str, bytes] = {}
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    files[item["Key"][len(key_prefix) :]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        except s3.exceptions.NoSuchBucket:
            return {}
        return files

    def _rewrite(self, action: str, body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if action == "DeleteEndpoint":
                self._deleting[body["EndpointName"]] = self.faults.deleting_polls
                self.containers.pop(body["EndpointName"], None)
                self._failed_updates.pop(body["EndpointName"], None)
                self._failing.pop(body["EndpointName"], None)
            if action == "CreateModel":
                source = body.get("PrimaryContainer", {}).get("ModelDataSource", {}).get("S3DataSource")
                if source is not None:
                    self._model_data[body["ModelName"]] = source["S3Uri"]
                if body.get("EnableNetworkIsolation"):
                    self._isolated.add(body["ModelName"])
                if body.get("VpcConfig"):
                    self._vpc_subnets[body["ModelName"]] = list(body["VpcConfig"]["Subnets"])
            if action == "CreateEndpoint":
                self._start_container(body["EndpointName"], body["EndpointConfigName"])
                self._polls_left[body["EndpointName"]] = self.faults.ready_after_polls
                self._created_at[body["EndpointName"]] = time.monotonic()
                if self.faults.failure_reason:  # this endpoint's fleet will fail to come up
                    self._failing[body["EndpointName"]] = self.faults.failure_reason
            if action == "DescribeEndpoint" and "EndpointStatus" in answer:
                status = self._faked_status(body["EndpointName"], poll=True)
                if status is not None:
                    answer["EndpointStatus"] = status
                if status == "Failed":
                    answer["FailureReason"] = self._failure_reason(body["EndpointName"])
                if body["EndpointName"] in self._failed_updates:
                    answer["FailureReason"] = self._failed_updates[body["EndpointName"]]
                if body["EndpointName"] in self._updating:
                    self._progress_update(body["EndpointName"], answer)
        return answer


class ModelDataUnreachable(ContainerFailed):
    """SageMaker could not copy the model data through the model's subnets, so no container started.
    The reason is SageMaker's wording for model data it cannot download (seen for ModelDataUrl; the
    wording for a prefix is unconfirmed offline)."""

    def __init__(self, prefix: str) -> None:
        super().__init__(
            0,
            f'Failed to download model data for container "container_1" from URL: "{prefix}". Please ensure that there is an object '
            "located at the URL and that the role passed to CreateModel has permissions to download the model.",
        )


def _failed(started: object) -> str:
    """The FailureReason of an endpoint whose fleet did not come up."""
    return started.log if isinstance(started, ModelDataUnreachable) else PING_FAILED


def _to_nat(route: dict[str, Any]) -> bool:
    """A working default route to a NAT gateway: the way out the SageMaker guide names for a model
    in a VPC (host-vpc.md, "Connect to Resources Outside Your VPC"). Other ways a network may reach
    out (a NAT instance, a transit gateway, an S3 interface endpoint) are not modelled: this
    stand-in refuses them, so a test uses the documented ones."""
    return route.get("DestinationCidrBlock") == "0.0.0.0/0" and bool(route.get("NatGatewayId")) and _active(route)


def _to_s3_gateway(route: dict[str, Any], s3_lists: set[str]) -> bool:
    """A working route to the region's S3 prefix list through a gateway endpoint (vpce-...), as EC2
    adds it to each route table the endpoint is given."""
    return route.get("DestinationPrefixListId") in s3_lists and route.get("GatewayId", "").startswith("vpce-") and _active(route)


def _active(route: dict[str, Any]) -> bool:
    """EC2 drops a route whose target is gone (State blackhole)."""
    return route.get("State", "active") == "active"


def _blue_green_problem(policy: dict[str, Any]) -> str | None:
    """What SageMaker refuses in a BlueGreenUpdatePolicy (botocore's SageMaker service model: the
    traffic type, WaitIntervalInSeconds and TerminationWaitInSeconds 0-3600, MaximumExecutionTimeoutInSeconds
    600-28800 and above the waits together)."""
    routing = policy.get("TrafficRoutingConfiguration") or {}
    wait, terminate = int(routing.get("WaitIntervalInSeconds", -1)), int(policy.get("TerminationWaitInSeconds", 0))
    limit = int(policy.get("MaximumExecutionTimeoutInSeconds", 600))
    if routing.get("Type") not in ("ALL_AT_ONCE", "CANARY", "LINEAR") or not 0 <= wait <= 3600:
        return "TrafficRoutingConfiguration needs a Type (ALL_AT_ONCE, CANARY or LINEAR) and a WaitIntervalInSeconds of 0-3600"
    if not 0 <= terminate <= 3600 or not 600 <= limit <= 28800 or limit <= wait + terminate:
        return "MaximumExecutionTimeoutInSeconds must be 600-28800 and above WaitIntervalInSeconds plus TerminationWaitInSeconds (0-3600)"
    return None


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _handler(stand_in: AwsStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            return None

        def do_GET(self) -> None:
            serving = stand_in.serving(self.headers.get("Host", ""), self.path)
            if serving is None:
                return self._answer(404, b'{"message": "no route"}', {"Content-Type": "application/json"})
            return self._answer(
                200 if serving else 503, json.dumps({"status": "healthy" if serving else "unavailable"}).encode(), {"Content-Type": "application/json"}
            )

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                return self._query(raw)
            invocation = _INVOCATIONS.match(self.path)
            if invocation is not None:
                stand_in.requests.append(Request("InvokeEndpoint", {"EndpointName": invocation["name"], "Body": raw.decode(errors="replace")}))
                status, answer = stand_in.invoke(invocation["name"], json.loads(raw) if raw else None)
                return self._answer(status, json.dumps(answer).encode(), {"Content-Type": "application/json"})
            target = self.headers.get("X-Amz-Target", "")
            action = target.rsplit(".", 1)[-1]
            body = json.loads(raw) if raw else {}
            stand_in.requests.append(Request(action, body))
            if stand_in.take_drop():
                self.close_connection = True
                return None
            fault = stand_in._fault_for(action, body)
            if fault is None and target.startswith(SERVICE_QUOTAS_TARGET):
                fault = stand_in.service_quotas(action, body)
            if fault is None and action == "UpdateEndpoint":
                fault = stand_in.update_endpoint(body)
            if fault is not None:
                return self._answer(fault[0], json.dumps(fault[1]).encode(), {"Content-Type": "application/x-amz-json-1.1"})
            connection = http.client.HTTPConnection(stand_in.moto_host, stand_in.moto_port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length",)}
            connection.request("POST", self.path, body=raw, headers=headers)
            response = connection.getresponse()
            data = response.read()
            if response.status == 200:
                data = json.dumps(stand_in._rewrite(action, body, json.loads(data) if data else {})).encode()
            return self._answer(response.status, data, {"Content-Type": response.getheader("Content-Type", "application/x-amz-json-1.1")})

        def _query(self, raw: bytes) -> None:
            """An EC2 (query protocol) call: recorded, refused as EC2 refuses an action the policy does
            not allow (UnauthorizedOperation, 403), else passed to moto as it is."""
            action = parse_qs(raw.decode())["Action"][0]
            stand_in.requests.append(Request(action, {"Service": "ec2"}))  # told apart from SageMaker's
            if action in stand_in.faults.denied:
                refusal = (
                    "<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>UnauthorizedOperation</Code>"
                    "<Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>llamadeploy-test</RequestID></Response>"
                )
                return self._answer(403, refusal.encode(), {"Content-Type": "text/xml"})
            connection = http.client.HTTPConnection(stand_in.moto_host, stand_in.moto_port, timeout=30)
            connection.request("POST", self.path, body=raw, headers={k: v for k, v in self.headers.items() if k.lower() != "content-length"})
            response = connection.getresponse()
            return self._answer(response.status, response.read(), {"Content-Type": response.getheader("Content-Type", "text/xml")})

        def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "llamadeploy-test")
            self.end_headers()
            self.wfile.write(data)

    return Handler
