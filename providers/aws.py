"""AWS: a SageMaker real-time endpoint serving vLLM through the LMI container, autoscaled by
Application Auto Scaling on requests in flight per model copy.

boto3 is imported inside the methods that call AWS, never at module import, so `plan` and
`cost` run without it. Credentials come from boto3's own chain (environment, profile, SSO,
instance role); `placement.aws.endpoint_url` or boto3's AWS_ENDPOINT_URL reach a VPC endpoint.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, partial
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, model_validator

from orchestrator.declared.secrets import resolve_secrets
from orchestrator.declared.spec import Deployment, PlacementBase
from orchestrator.planning.serving import example_body, startup, vllm_arguments
from providers.base import (
    BUILTIN_TEMPLATES,
    CONNECT_TIMEOUT_S,
    DEPLOYMENT_TAG,
    HUB_THROUGH,
    AuthError,
    Deployed,
    Endpoint,
    ErrorWords,
    Events,
    Feature,
    GetJson,
    InvalidRequestError,
    LiveState,
    LiveStatus,
    Pace,
    Presence,
    Program,
    Provider,
    ProviderError,
    Quota,
    Resource,
    ScalingSignal,
    ServingContract,
    Staged,
    TransientError,
    any_configured,
    classify,
    create_or_adopt,
    exists,
    failed_because,
    if_exists,
    optional_read,
    resource_tags,
    secrets_exposed,
)

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from orchestrator.pricing.catalog import Offer

MODEL = "AWS::SageMaker::Model"
CONFIG = "AWS::SageMaker::EndpointConfig"
ENDPOINT = "AWS::SageMaker::Endpoint"
TARGET = "AWS::ApplicationAutoScaling::ScalableTarget"
POLICY = "AWS::ApplicationAutoScaling::ScalingPolicy"
VARIANT = "AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CONCURRENCY_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
SCALE_IN_COOLDOWN_S = 300
SCALE_OUT_COOLDOWN_S = 60
# SageMaker's large-model-inference (LMI) container, LMI 17 = djl-serving 0.35.0 with vLLM 0.11.1,
# the LMI nearest the vLLM 0.11.0 the other clouds run (aws/deep-learning-containers
# docs/src/data/djl-inference; aws/sagemaker-python-sdk sagemaker-core/src/sagemaker/core/
# image_uri_config/djl-lmi.json, "0.35.0": tag_prefix "0.35.0-lmi17.0.0-cu128"). AWS publishes it
# from account 763104351884 except in the regions below (same file).
LMI_IMAGE = "{account}.dkr.ecr.{region}.amazonaws.com/djl-inference:0.35.0-lmi17.0.0-cu128"
LMI_ACCOUNT = "763104351884"
LMI_ACCOUNTS = {
    "af-south-1": "626614931356",
    "il-central-1": "780543022126",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-southeast-3": "907027046896",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-south-1": "692866216735",
    "me-south-1": "217643126080",
    "me-central-1": "914824155844",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "ca-west-1": "204538143572",
    "eu-central-2": "380420809688",
    "ap-south-2": "772153158452",
    "eu-south-2": "503227376785",
    "ap-southeast-7": "590183813437",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "mx-central-1": "637423239942",
}
# LMI is configured by environment only (SageMaker has no command override). vLLM's options map
# onto LMI's names; any other `OPTION_<NAME>` that is a vLLM engine argument passes through
# (djl-serving serving/docs/lmi/user_guides/vllm_user_guide.md, "Pass-Through";
# engines/python/setup/djl_python/properties_manager/vllm_rb_properties.py).
LMI_NAMES = {
    "--model": "HF_MODEL_ID",
    "--tensor-parallel-size": "TENSOR_PARALLEL_DEGREE",
    "--max-num-seqs": "OPTION_MAX_ROLLING_BATCH_SIZE",
    "--quantization": "OPTION_QUANTIZE",
}
# vLLM's async engine behind LMI's OpenAI schema, which answers with the model's name: LMI 15's
# recommended mode, LMI 17's default, set explicitly as the vLLM user guide does.
LMI_ASYNC = {"OPTION_ASYNC_MODE": "true", "OPTION_ROLLING_BATCH": "disable", "OPTION_ENTRYPOINT": "djl_python.lmi_vllm.vllm_async_service"}
# ProductionVariant.ContainerStartupHealthCheckTimeoutInSeconds: 60-3600 (botocore's SageMaker
# service model); a Hugging Face download inside the container counts against it, not against
# ModelDataDownloadTimeoutInSeconds, which covers S3 model data only.
MAX_STARTUP_SECONDS = 3600
# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600-28800 (botocore's SageMaker service
# model); the new fleet's startup limit and a margin for provisioning and the shift.
MIN_UPDATE_SECONDS, MAX_UPDATE_SECONDS, UPDATE_MARGIN_S = 600, 28800, 900
_STATES: dict[str, LiveState] = {
    "InService": LiveState.SERVING,
    "Creating": LiveState.PROVISIONING,
    "Updating": LiveState.PROVISIONING,
    "SystemUpdating": LiveState.PROVISIONING,
    "RollingBack": LiveState.PROVISIONING,
    "Deleting": LiveState.DELETING,
    "OutOfService": LiveState.FAILED,
    "Failed": LiveState.FAILED,
}


class AwsPlacement(PlacementBase):
    execution_role_arn: str | None = Field(
        default=None,
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
        description="use an IAM role ARN such as arn:aws:iam::123456789012:role/SageMakerExecution",
    )
    endpoint_url: str | None = None
    # Private networking, opt-in (CreateModel.VpcConfig and EnableNetworkIsolation): the container
    # runs in your subnets, and with network isolation makes no network call at all. VpcConfig takes
    # 1-16 subnets and 1-5 security groups (botocore's sagemaker service model: Subnets,
    # VpcSecurityGroupIds); their IDs are EC2's, a prefix and 8 or 17 hexadecimal characters
    # (docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html).
    subnets: list[Annotated[str, Field(pattern=r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")]] = Field(default_factory=list, max_length=16)
    security_groups: list[Annotated[str, Field(pattern=r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")]] = Field(default_factory=list, max_length=5)
    network_isolation: bool = False

    @model_validator(mode="after")
    def _vpc_whole(self) -> AwsPlacement:
        if bool(self.subnets) != bool(self.security_groups):
            raise ValueError("subnets and security_groups go together (SageMaker's VpcConfig needs both): give both, or neither")
        return self


class AwsProvider(Provider):
    name = "aws"
    placement_model = AwsPlacement
    pulumi_template = BUILTIN_TEMPLATES / "aws.py.j2"
    service = "SageMaker real-time inference"
    default_region = "us-east-1"
    required_placement = ("execution_role_arn",)
    sdk_modules = ("boto3",)
    # A new model and endpoint configuration, then UpdateEndpoint: SageMaker's own blue/green.
    supports = frozenset({Feature.REPLACE_LIVE})
    # CreateModel's ModelDataSource: an uncompressed S3 prefix whose objects SageMaker copies under
    # /opt/ml/model, keys trimmed by the prefix (botocore's sagemaker service model, S3ModelDataSource).
    weights_scheme = "s3://"
    weights_mount = "/opt/ml/model"

    private_advice = (
        "SageMaker's runtime API answers any IAM principal allowed to invoke the endpoint from anywhere; keep calls private to your VPC "
        "with an interface endpoint for sagemaker.runtime and an aws:SourceVpce condition in the callers' IAM policies "
        "(docs.aws.amazon.com/sagemaker/latest/dg/infrastructure-give-access.html)"
    )

    def reach(self, deployment: Deployment) -> str:
        placed = deployment.placement.of("aws")
        inbound = "the SageMaker runtime API (IAM-signed), public or through your VPC's interface endpoint for sagemaker.runtime"
        if placed and placed.subnets:
            outbound = f"the container runs in {', '.join(placed.subnets)} ({', '.join(placed.security_groups)})"
            if placed.network_isolation:
                outbound += " with network isolation: it makes no outbound call"
            else:
                outbound += ", reaching out only as their routes allow (a NAT gateway, an S3 gateway endpoint)"
            return f"{inbound}; {outbound}"
        if placed and placed.network_isolation:
            return f"{inbound}; the container has network isolation: it makes no outbound call"
        return f"{inbound}; the container has internet access (placement.aws.subnets and network_isolation keep it private)"

    def deployment_problem(self, deployment: Deployment, own_weights: bool) -> tuple[tuple[str, ...], str] | None:
        placed = deployment.placement.of("aws")
        if placed and placed.network_isolation and not own_weights:
            # "the containers can't make any outbound network calls" (SageMaker, network isolation); model data
            # is copied by SageMaker itself, outside the container.
            return (
                ("placement", "aws", "network_isolation"),
                "a container with network isolation cannot download from the Hugging Face Hub: serve your own weights (weights.aws), or drop network_isolation",
            )
        return None

    def weights_problem(self, uri: str) -> str | None:
        problem = super().weights_problem(uri)
        if problem is None and not uri.endswith("/"):
            # "A valid key name prefix identified by S3Uri always ends with a forward slash (/)" (S3ModelDataSource.S3DataType)
            return f"must end with / : SageMaker reads a key name prefix (S3Prefix) of uncompressed files, e.g. {uri}/"
        return problem

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        return [
            Resource(
                MODEL,
                plan.named(f"{name}-model"),
                {"hf_model_id": plan.model_path, "model_data": plan.weights, "tensor_parallel_degree": plan.layout.tensor_parallel, "tags": tags},
            ),
            Resource(
                CONFIG,
                plan.named(f"{name}-config"),
                {
                    "instance_type": plan.offer.instance_type,
                    "initial_instance_count": scaling.min_replicas,
                    "startup_health_check_timeout_s": startup(plan).timeout(MAX_STARTUP_SECONDS),
                    "tags": tags,
                },
            ),
            Resource(ENDPOINT, name, {"tags": tags}),
            Resource(TARGET, f"endpoint/{name}/variant/{VARIANT}", {"min_capacity": scaling.min_replicas, "max_capacity": scaling.max_replicas}),
            Resource(POLICY, f"{name}-concurrency", {"target_value": plan.deployment.target_concurrent_requests}),
        ]

    def program(self, plan: Plan) -> Program:
        model, config, endpoint, target, policy = self.resources(plan)
        placed = plan.deployment.placement.of("aws")
        role = placed.execution_role_arn if placed else None
        return Program(
            requirements=("pulumi-aws>=7.0,<8",),
            config={"aws:region": plan.region, **({"llamadeploy:execution_role_arn": role} if role else {})},
            required_config=("llamadeploy:execution_role_arn",),
            secrets=tuple(plan.secrets),
            values={
                "model": model.name,
                "endpoint_config": config.name,
                "endpoint": endpoint.name,
                "policy": policy.name,
                "image": _image(plan),
                "environment": _environment(plan),
                "model_data": plan.weights,
                "subnets": list(placed.subnets) if placed else [],
                "security_groups": list(placed.security_groups) if placed else [],
                "network_isolation": bool(placed and placed.network_isolation),
                "variant": VARIANT,
                "instance_type": config.properties["instance_type"],
                "initial_instance_count": config.properties["initial_instance_count"],
                "startup_health_check_timeout_s": config.properties["startup_health_check_timeout_s"],
                "dimension": DIMENSION,
                "min_capacity": target.properties["min_capacity"],
                "max_capacity": target.properties["max_capacity"],
                "target_value": float(policy.properties["target_value"]),
                "metric": CONCURRENCY_METRIC,
                "scale_in_cooldown_s": SCALE_IN_COOLDOWN_S,
                "scale_out_cooldown_s": SCALE_OUT_COOLDOWN_S,
                "tags": resource_tags(plan),
            },
        )

    def network_problem(self, plan: Plan) -> str | None:
        """The model's subnets that surely cannot reach what it needs, read from their route tables:
        SageMaker copies the weights through them, and the container downloads from the Hugging Face
        Hub through them (host-vpc.md; see _outbound_needs). Only what is surely missing is named: a
        route llamadeploy cannot follow (another hop, a transit gateway) is trusted, and a subnet
        whose route table it cannot see (one shared from another account) leaves the network
        unchecked. EC2 is reached at its own endpoint (or botocore's AWS_ENDPOINT_URL_EC2), as S3 is."""
        placed = plan.deployment.placement.of("aws")
        if placed is None or not placed.subnets or (placed.network_isolation and not plan.weights):
            return None
        if not plan.weights and HUB_THROUGH.intersection(plan.deployment.serving.env):
            return None
        ec2 = self.client(("ec2", plan.region), lambda: _ec2_client(plan.region))
        with optional_read("reading the model's subnets and routes from EC2", f"ec2:{', '.join(EC2_READS)}"), _translated():
            routes = _subnet_routes(ec2, placed.subnets)
            s3_lists, served = (_s3_prefix_lists(ec2, plan.region), _s3_interface_vpcs(ec2, plan.region)) if plan.weights else (set(), set())

        def reaches(vpc: str, found: list[dict[str, Any]]) -> bool:
            """What the model needs of a subnet: S3 for SageMaker's copy of the weights, else a way out for a Hub download."""
            return vpc in served or _reaches_s3(found, s3_lists) if plan.weights else any(_route_out(route) for route in found)

        cut_off = [(subnet, table) for subnet, (vpc, table, found) in routes.items() if table and not reaches(vpc, found)]
        if not cut_off:
            unseen = [subnet for subnet, (_, table, _) in routes.items() if not table]
            if unseen:
                raise ProviderError(f"the route tables of {', '.join(unseen)} are not visible to this account (subnets shared from another?)")
            return None
        named = ", ".join(f"{subnet} (route table {table})" for subnet, table in cut_off)
        if plan.weights:
            vpc = routes[cut_off[0][0]][0]
            tables = " ".join(sorted({table for _, table in cut_off}))
            return (
                f"SageMaker copies {plan.weights} through the model's subnets, and {named} have no route to S3 and none out "
                f"(docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html): add a gateway endpoint for S3 to their route tables, "
                f"`aws ec2 create-vpc-endpoint --vpc-id {vpc} --service-name com.amazonaws.{plan.region}.s3 --route-table-ids {tables}`"
            )
        return (
            f"the container downloads {plan.hf_repo} from the Hugging Face Hub through the model's subnets, and {named} have no route out "
            "(0.0.0.0/0 to a NAT gateway; an internet gateway does not do, as the container's interfaces have no public address): "
            "add one, or stage the weights in S3 (`llamadeploy weights stage`) and add network_isolation"
        )

    def checkpoint_listing(self, uri: str, placement: Any, region: str) -> tuple[dict[str, int], Callable[[str], bytes]]:
        """The objects under the S3 prefix (ListObjectsV2, every page), as SageMaker copies them under
        /opt/ml/model: keys trimmed by the prefix. S3 is reached at its own endpoint (or botocore's
        AWS_ENDPOINT_URL_S3), not the placement's SageMaker endpoint_url. The bucket must be in the
        endpoint's region: SageMaker reads model data from its own region's S3 only (CreateModel:
        "the S3 bucket ... must be in the same region as the model")."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        s3 = self.client(("s3", region), lambda: _s3_client(region))
        sizes: dict[str, int] = {}
        with _translated():
            # HeadBucket's BucketRegion (x-amz-bucket-region), which s3:ListBucket covers; GetBucketLocation
            # would need its own permission and answers "EU" for old eu-west-1 buckets.
            head = s3.head_bucket(Bucket=bucket)
            location = head.get("BucketRegion") or head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region", region)
            if location != region:
                raise InvalidRequestError(
                    f"{uri} is in {location}, and SageMaker in {region} reads model data from a bucket in its own region only: "
                    f"copy it to a bucket in {region} (llamadeploy weights stage --to), or deploy in {location}"
                )
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                sizes.update({item["Key"][len(prefix) :]: item["Size"] for item in page.get("Contents", [])})

        def read(name: str) -> bytes:
            with _translated():
                return s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()

        return sizes, read

    def weights_store(self, uri: str, placement: Any) -> Any:
        from providers.aws_weights import S3WeightsStore

        region = placement.region if placement else None
        return S3WeightsStore(uri, self.client(("s3", region), lambda: _s3_client(region)), _translated)

    def settings(self, plan: Plan) -> dict[str, Any]:
        placed = plan.deployment.placement.of("aws")
        return {"endpoint_url": placed.endpoint_url} if placed and placed.endpoint_url else {}

    def _control(self, region: str, settings: Mapping[str, Any]) -> tuple[Any, Any]:
        """The SageMaker and Auto Scaling clients for the region and endpoint (parsing a boto3 service model takes ~0.13 s)."""
        endpoint_url = settings.get("endpoint_url")
        return self.client(("control", region, endpoint_url), lambda: _control_clients(region, endpoint_url))

    def apply(self, plan: Plan, events: Events) -> Deployed:
        by_type = {r.type: r for r in self.resources(plan)}
        sagemaker, scaling = self._control(plan.region, self.settings(plan))
        endpoint, config = by_type[ENDPOINT], by_type[CONFIG]
        tags = [{"Key": k, "Value": v} for k, v in resource_tags(plan).items()]
        with _translated():
            self._model_and_config(sagemaker, plan, events)
            create_or_adopt(
                endpoint,
                lambda: _endpoint_presence(sagemaker, endpoint.name),
                lambda: sagemaker.create_endpoint(EndpointName=endpoint.name, EndpointConfigName=config.name, Tags=tags),
                events,
            )
        events.wait(f"SageMaker endpoint {endpoint.name}", lambda: _endpoint_ready(sagemaker, endpoint.name), Pace.MINUTES)
        with _translated():
            self._autoscale(scaling, plan, by_type[TARGET], by_type[POLICY], events)
        return self._deployed(plan)

    def _deployed(self, plan: Plan) -> Deployed:
        url = f"https://runtime.sagemaker.{plan.region}.amazonaws.com/endpoints/{plan.deployment.name}/invocations"
        return Deployed(plan.deployment.name, self.name, plan.region, tuple(self.resources(plan)), url, self.settings(plan))

    def stage(self, deployed: Deployed, plan: Plan, events: Events) -> Staged:
        """The new variant's model and endpoint configuration; SageMaker brings its instances up
        itself when `switch` points the endpoint at them. It offers no way to call them alone
        first: its blue/green update health-checks the new fleet (GET /ping) before any traffic
        moves, and the engine calls the endpoint once it has."""
        sagemaker, _ = self._control(plan.region, self.settings(plan))
        with _translated():
            self._model_and_config(sagemaker, plan, events)
        return Staged(self._deployed(plan))

    def switch(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """UpdateEndpoint to the plan's endpoint configuration with a blue/green, all-at-once traffic
        shift: SageMaker provisions the new fleet, shifts traffic once it passes its health checks,
        then terminates the old one; a new fleet that fails leaves the old one serving, the endpoint
        InService on its old configuration with a FailureReason (API_UpdateEndpoint.html; the
        failed state as aws-controllers-k8s/sagemaker-controller reads it). Application Auto
        Scaling refuses an update that changes a scaled variant's instance type, so the scalable
        target and policy are removed first when the instance type changes, and written again with
        the plan's values after (docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html).
        The new fleet starts at the plan's minimum replicas and autoscaling scales it out after."""
        sagemaker, scaling = self._control(deployed.region, deployed.settings)
        by_type = {r.type: r for r in self.resources(plan)}
        name, config = by_type[ENDPOINT].name, by_type[CONFIG].name
        events.wait(f"SageMaker endpoint {name} to settle", lambda: _endpoint_settled(sagemaker, name), Pace.MINUTES)  # an update a dead run began
        with _translated():
            current = sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"]
            if current != config:
                serving = sagemaker.describe_endpoint_config(EndpointConfigName=current)["ProductionVariants"][0]["InstanceType"]
                if serving != by_type[CONFIG].properties["instance_type"]:  # only then does Application Auto Scaling refuse the update
                    self._unscale(scaling, by_type[TARGET], by_type[POLICY])
                budget = by_type[CONFIG].properties["startup_health_check_timeout_s"] + UPDATE_MARGIN_S
                sagemaker.update_endpoint(
                    EndpointName=name,
                    EndpointConfigName=config,
                    DeploymentConfig={
                        "BlueGreenUpdatePolicy": {
                            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
                            "TerminationWaitInSeconds": 0,
                            "MaximumExecutionTimeoutInSeconds": min(MAX_UPDATE_SECONDS, max(MIN_UPDATE_SECONDS, budget)),
                        }
                    },
                )
        events.wait(f"SageMaker endpoint {name} updating to {config}", lambda: _endpoint_settled(sagemaker, name), Pace.MINUTES)
        with _translated():
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
            if endpoint["EndpointConfigName"] != config:
                raise failed_because(WORDS, endpoint.get("FailureReason") or f"endpoint {name} kept configuration {endpoint['EndpointConfigName']}")
            self._autoscale(scaling, plan, by_type[TARGET], by_type[POLICY], events)

    def _model_and_config(self, sagemaker: Any, plan: Plan, events: Events) -> None:
        """Create (or adopt) the plan's model and endpoint configuration."""
        deployment = plan.deployment
        placed = deployment.placement.of("aws")
        assert placed is not None and placed.execution_role_arn  # checked by the engine before apply
        secrets = resolve_secrets(deployment, bool(plan.weights))
        by_type = {r.type: r for r in self.resources(plan)}
        tags = [{"Key": k, "Value": v} for k, v in resource_tags(plan).items()]
        model, config = by_type[MODEL], by_type[CONFIG]

        def create_model() -> None:
            sagemaker.create_model(
                ModelName=model.name,
                ExecutionRoleArn=placed.execution_role_arn,
                PrimaryContainer={"Image": _image(plan), "Environment": {**_environment(plan), **secrets}, **_model_data(plan)},
                **_network(placed),
                Tags=tags,
            )

        def create_config() -> None:
            sagemaker.create_endpoint_config(
                EndpointConfigName=config.name,
                ProductionVariants=[
                    {
                        "VariantName": VARIANT,
                        "ModelName": model.name,
                        "InstanceType": plan.offer.instance_type,
                        "InitialInstanceCount": deployment.autoscaling.min_replicas,
                        "ContainerStartupHealthCheckTimeoutInSeconds": config.properties["startup_health_check_timeout_s"],
                    }
                ],
                Tags=tags,
            )

        create_or_adopt(model, lambda: _exists(lambda: sagemaker.describe_model(ModelName=model.name)), create_model, events)
        create_or_adopt(config, lambda: _exists(lambda: sagemaker.describe_endpoint_config(EndpointConfigName=config.name)), create_config, events)

    @staticmethod
    def _unscale(scaling: Any, target: Resource, policy: Resource) -> None:
        """Remove the variant's scaling policy and scalable target (either may be gone already)."""
        _optional(
            lambda: scaling.delete_scaling_policy(PolicyName=policy.name, ServiceNamespace="sagemaker", ResourceId=target.name, ScalableDimension=DIMENSION)
        )
        _optional(lambda: scaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=target.name, ScalableDimension=DIMENSION))

    def _autoscale(self, scaling: Any, plan: Plan, target: Resource, policy: Resource, events: Events) -> None:
        existing = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[target.name])["ScalableTargets"]
        bounds = plan.deployment.autoscaling
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=target.name,
            ScalableDimension=DIMENSION,
            MinCapacity=bounds.min_replicas,
            MaxCapacity=bounds.max_replicas,
        )
        (events.adopted if existing else events.created)(target)
        policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=target.name, PolicyNames=[policy.name])
        scaling.put_scaling_policy(
            PolicyName=policy.name,
            ServiceNamespace="sagemaker",
            ResourceId=target.name,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(plan.deployment.target_concurrent_requests),
                "PredefinedMetricSpecification": {"PredefinedMetricType": CONCURRENCY_METRIC},
                "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
                "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
            },
        )
        (events.adopted if policies["ScalingPolicies"] else events.created)(policy)

    def credentials_configured(self) -> bool:
        """boto3's chain: keys or a profile in the environment, web identity, the container
        credentials endpoint, or the shared credentials and config files."""
        return any_configured(
            ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            (os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")),
        )

    def quota(self, plan: Plan) -> Quota | None:
        """Service Quotas' "<instance type> for endpoint usage" for SageMaker: how many instances of
        the type the account's endpoints may run in the region (the quota the ResourceLimitExceeded
        of CreateEndpoint names). Service Quotas reports no usage for it, so only the limit is read."""
        settings = self.settings(plan)
        quotas = self.client(("quotas", plan.region, settings.get("endpoint_url")), lambda: _quotas_client(plan.region, settings.get("endpoint_url")))
        wanted = f"{plan.offer.instance_type} for endpoint usage"
        with _translated():
            # ListServiceQuotas returns applied values only; a quota still at its default is listed by
            # ListAWSDefaultServiceQuotas (Service Quotas API reference).
            found = next((q for q in _pages(quotas.list_service_quotas, "Quotas", ServiceCode="sagemaker") if q["QuotaName"] == wanted), None)
            if found is None:
                listing = _pages(quotas.list_aws_default_service_quotas, "Quotas", ServiceCode="sagemaker")
                found = next((q for q in listing if q["QuotaName"] == wanted), None)
        if found is None:
            return None
        console = f"https://console.aws.amazon.com/servicequotas/home/services/sagemaker/quotas/{found['QuotaCode']}"
        return Quota(
            name=wanted,
            limit=found["Value"],
            used=None,
            needed=plan.deployment.autoscaling.min_replicas,
            unit="instances",
            request=f"request an increase: aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code {found['QuotaCode']} "
            f"--desired-value {plan.deployment.autoscaling.max_replicas} --region {plan.region} (or {console})",
        )

    def describe(self, deployed: Deployed) -> LiveStatus:
        sagemaker, scaling = self._control(deployed.region, deployed.settings)
        names = {r.type: r.name for r in deployed.resources}
        missing = [f"{kind} {name}" for kind, name in names.items() if not self._exists(sagemaker, scaling, kind, name)]
        endpoint = _optional(lambda: sagemaker.describe_endpoint(EndpointName=names[ENDPOINT]))
        if endpoint is None:
            return LiveStatus(LiveState.MISSING, missing=tuple(missing))
        with _translated():
            variant = (endpoint.get("ProductionVariants") or [{}])[0]
            config = _optional(lambda: sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"]))
            targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[names[TARGET]])["ScalableTargets"]
        return LiveStatus(
            state=_STATES.get(endpoint["EndpointStatus"], LiveState.UNKNOWN),
            replicas=variant.get("CurrentInstanceCount"),
            min_replicas=targets[0]["MinCapacity"] if targets else None,
            max_replicas=targets[0]["MaxCapacity"] if targets else None,
            instance_type=config["ProductionVariants"][0]["InstanceType"] if config else None,
            missing=tuple(missing),
            detail=endpoint.get("FailureReason") or ("" if endpoint["EndpointStatus"] in _STATES else endpoint["EndpointStatus"]),
        )

    def _exists(self, sagemaker: Any, scaling: Any, kind: str, name: str) -> bool:
        with _translated():
            if kind == TARGET:
                return bool(scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[name])["ScalableTargets"])
            if kind == POLICY:
                return bool(scaling.describe_scaling_policies(ServiceNamespace="sagemaker", PolicyNames=[name])["ScalingPolicies"])
            describe = {
                MODEL: lambda: sagemaker.describe_model(ModelName=name),
                CONFIG: lambda: sagemaker.describe_endpoint_config(EndpointConfigName=name),
                ENDPOINT: lambda: sagemaker.describe_endpoint(EndpointName=name),
            }[kind]
            return _exists(describe)

    def scale(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """The scalable target's bounds and the target-tracking policy's value, both written again
        (RegisterScalableTarget and PutScalingPolicy update what exists, Application Auto Scaling API)."""
        _, scaling = self._control(deployed.region, deployed.settings)
        by_type = {r.type: r for r in self.resources(plan)}
        with _translated():
            self._autoscale(scaling, plan, by_type[TARGET], by_type[POLICY], events)

    def retag(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """AddTags and DeleteTags on the model, endpoint configuration and endpoint (SageMaker API
        reference: AddTags overwrites a key's value; DeleteTags removes keys)."""
        sagemaker, _ = self._control(deployed.region, deployed.settings)
        tags = resource_tags(plan)
        arns = {
            MODEL: lambda name: sagemaker.describe_model(ModelName=name)["ModelArn"],
            CONFIG: lambda name: sagemaker.describe_endpoint_config(EndpointConfigName=name)["EndpointConfigArn"],
            ENDPOINT: lambda name: sagemaker.describe_endpoint(EndpointName=name)["EndpointArn"],
        }
        with _translated():
            for resource in (r for r in deployed.resources if r.type in arns):
                arn = arns[resource.type](resource.name)
                stale = [t["Key"] for t in sagemaker.list_tags(ResourceArn=arn).get("Tags", []) if t["Key"] not in tags]
                if stale:
                    sagemaker.delete_tags(ResourceArn=arn, TagKeys=stale)
                sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def destroy(self, deployed: Deployed, events: Events) -> None:
        sagemaker, scaling = self._control(deployed.region, deployed.settings)
        by_type = {r.type: r for r in deployed.resources}
        target = by_type.get(TARGET) or Resource(TARGET, f"endpoint/{deployed.deployment}/variant/{VARIANT}")
        with _translated():
            if POLICY in by_type:
                _optional(
                    lambda: scaling.delete_scaling_policy(
                        PolicyName=by_type[POLICY].name, ServiceNamespace="sagemaker", ResourceId=target.name, ScalableDimension=DIMENSION
                    )
                )
            if TARGET in by_type:
                _optional(lambda: scaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=target.name, ScalableDimension=DIMENSION))
            if ENDPOINT in by_type:
                name = by_type[ENDPOINT].name
                # SageMaker refuses to delete an endpoint still Creating or Updating: wait until it settles
                # (aws/amazon-sagemaker-examples pull 3188, "wait for in-service endpoint before deletion").
                events.wait(f"SageMaker endpoint {name} to settle before deleting it", lambda: _endpoint_settled(sagemaker, name), Pace.MINUTES)
                if _endpoint_presence(sagemaker, name) is Presence.PRESENT:  # one an earlier `down` is deleting is only waited out
                    _optional(lambda: sagemaker.delete_endpoint(EndpointName=name))
                events.wait(f"deleting SageMaker endpoint {name}", lambda: _endpoint_gone(sagemaker, name), Pace.MINUTES)
            if CONFIG in by_type:
                _optional(lambda: sagemaker.delete_endpoint_config(EndpointConfigName=by_type[CONFIG].name))
            if MODEL in by_type:
                _optional(lambda: sagemaker.delete_model(ModelName=by_type[MODEL].name))

    def remaining(self, deployed: Deployed) -> list[Resource]:
        sagemaker, scaling = self._control(deployed.region, deployed.settings)
        name = deployed.deployment
        listings = [
            (MODEL, "Models", "ModelName", "ModelArn", sagemaker.list_models),
            (CONFIG, "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn", sagemaker.list_endpoint_configs),
            (ENDPOINT, "Endpoints", "EndpointName", "EndpointArn", sagemaker.list_endpoints),
        ]
        left = []
        with _translated():
            for kind, key, name_key, arn_key, listing in listings:
                for item in _pages(listing, key, NameContains=name):
                    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=item[arn_key]).get("Tags", [])}
                    if tags.get(DEPLOYMENT_TAG) == name:
                        left.append(Resource(kind, item[name_key]))
            target = f"endpoint/{name}/variant/{VARIANT}"
            if scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[target])["ScalableTargets"]:
                left.append(Resource(TARGET, target))
        return left

    def endpoint(self, deployed: Deployed) -> Endpoint:
        name = next(r.name for r in deployed.resources if r.type == ENDPOINT)
        endpoint_url = f" --endpoint-url {deployed.settings['endpoint_url']}" if deployed.settings.get("endpoint_url") else ""
        return Endpoint(
            url=deployed.url,
            auth="AWS Signature V4 (IAM): the caller needs sagemaker:InvokeEndpoint on this endpoint",
            example=(
                # fileb:// takes the body as raw bytes in AWS CLI v1 and v2 alike (v2 reads a plain string as base64).
                f"aws sagemaker-runtime invoke-endpoint --region {deployed.region} --endpoint-name {name}{endpoint_url} "
                f"--content-type application/json --body fileb://<(printf '%s' '{example_body()}') /dev/stdout"
            ),
        )

    def invoke(self, deployed: Deployed, request: Mapping[str, Any]) -> Any:
        """InvokeEndpoint with the OpenAI chat body: LMI answers `messages` in the chat completion schema
        (djl-serving serving/docs/lmi/user_guides/chat_input_output_schema.md)."""
        endpoint_url = deployed.settings.get("endpoint_url")
        runtime = self.client(("runtime", deployed.region, endpoint_url), lambda: _runtime_client(deployed.region, endpoint_url))
        name = next(r.name for r in deployed.resources if r.type == ENDPOINT)
        with _translated():
            response = runtime.invoke_endpoint(EndpointName=name, ContentType="application/json", Accept="application/json", Body=json.dumps(request))
            body = response["Body"].read()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ProviderError(f"SageMaker endpoint {name} answered with something other than JSON: {body[:200]!r}") from exc

    def read_prices(self, offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
        from providers.aws_prices import read_prices

        return read_prices(offers, get_json)

    def contract(self, plan: Plan) -> ServingContract:
        return ServingContract(
            image=_image(plan),
            started="the image's own entrypoint (djl-serving, LMI); vLLM's options as LMI environment variables, as SageMaker passes no command",
            route="POST https://runtime.sagemaker.<region>.amazonaws.com/endpoints/<name>/invocations (SigV4) -> the container's /invocations on port 8080",
            scaling=ScalingSignal(
                CONCURRENCY_METRIC,
                plan.deployment.target_concurrent_requests,
                "requests in flight per instance",
                "Application Auto Scaling target tracking on the spec's target_concurrent_requests",
            ),
            startup_limit_s=MAX_STARTUP_SECONDS,
            startup_setting=(
                "ContainerStartupHealthCheckTimeoutInSeconds (at most 3600 s, from the container's start: SageMaker copies the model data first)"
                if plan.weights
                else "ContainerStartupHealthCheckTimeoutInSeconds (at most 3600 s; the Hugging Face download counts against it)"
            ),
            weights_copy_counts=False,
            needs=(
                "an IAM execution role SageMaker can assume (placement.aws.execution_role_arn)",
                *((f"that role must read {plan.weights} (s3:GetObject, s3:ListBucket)",) if plan.weights else ()),
                *_outbound_needs(plan),
                *secrets_exposed(
                    plan,
                    "the model's container environment",
                    "DescribeModel (PrimaryContainer.Environment)",
                    " (a container definition has no secret reference)",
                ),
            ),
        )


def _outbound_needs(plan: Plan) -> tuple[str, ...]:
    """What the user's subnets must route, where the model runs in them (SageMaker developer guide,
    awsdocs/amazon-sagemaker-developer-guide: host-vpc.md and mkt-algo-model-internet-free.md):
    model data is copied through them, network isolation or not, which needs an S3 gateway endpoint
    (or a NAT gateway); and the container's interfaces have no public address, so a Hugging Face
    download needs a NAT gateway."""
    placed = plan.deployment.placement.of("aws")
    if placed is None or not placed.subnets:
        return ()
    subnets = ", ".join(placed.subnets)
    if plan.weights:
        return (
            f"a route from each of {subnets} to S3: a gateway endpoint for com.amazonaws.{plan.region}.s3 on their route tables "
            f"(or a NAT gateway), as SageMaker copies {plan.weights} through them (docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html)",
        )
    if placed.network_isolation:
        return ()
    return (
        f"a route from each of {subnets} to a NAT gateway (0.0.0.0/0), for the container to download the checkpoint from the "
        "Hugging Face Hub (docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html); or stage the weights in S3 and add network_isolation",
    )


def _network(placed: AwsPlacement) -> dict[str, Any]:
    """CreateModel's private networking: the subnets the container runs in, and network isolation."""
    found: dict[str, Any] = {}
    if placed.subnets:
        found["VpcConfig"] = {"Subnets": list(placed.subnets), "SecurityGroupIds": list(placed.security_groups)}
    if placed.network_isolation:
        found["EnableNetworkIsolation"] = True
    return found


def _model_data(plan: Plan) -> dict[str, Any]:
    """The user's own weights: their S3 prefix, uncompressed, copied under /opt/ml/model before
    the container starts (so LMI loads them from there and no hub token is needed)."""
    if not plan.weights:
        return {}
    return {"ModelDataSource": {"S3DataSource": {"S3Uri": plan.weights, "S3DataType": "S3Prefix", "CompressionType": "None"}}}


def _image(plan: Plan) -> str:
    region = plan.region
    return plan.deployment.serving.image or LMI_IMAGE.format(account=LMI_ACCOUNTS.get(region, LMI_ACCOUNT), region=region)


def _environment(plan: Plan) -> dict[str, str]:
    """LMI's settings: vLLM's options under LMI's names, the served model's name (so answers name
    it), the loading timeout; the user's `serving.env` wins where they overlap."""
    env = {LMI_NAMES.get(option) or "OPTION_" + option[2:].upper().replace("-", "_"): value for option, value in _options(vllm_arguments(plan))}
    env["OPTION_SERVED_MODEL_NAME"] = plan.served_model
    # djl-serving's own limit on loading (download included) is 1200 s in the LMI image
    # (serving/docker/lmi.Dockerfile, MODEL_LOADING_TIMEOUT); give it the endpoint's.
    env["OPTION_MODEL_LOADING_TIMEOUT"] = str(startup(plan).timeout(MAX_STARTUP_SECONDS))
    return {**LMI_ASYNC, **env, **plan.deployment.serving.env}


def _options(arguments: list[str]) -> list[tuple[str, str]]:
    """vLLM's `--option value` pairs; an option with no value is LMI's "true" (vllm_user_guide.md, Pass-Through)."""
    pairs = []
    for index, token in enumerate(arguments):
        if token.startswith("--"):
            following = arguments[index + 1] if index + 1 < len(arguments) else "--"
            pairs.append((token, "true" if following.startswith("--") else following))
    return pairs


_LOADER_LOCK = threading.Lock()
# What `up` reads of EC2 before making a model in the user's subnets.
EC2_READS = ("DescribeManagedPrefixLists", "DescribeRouteTables", "DescribeSubnets", "DescribeVpcEndpoints")


@cache
def _data_loader() -> Any:
    """One botocore data loader for the process. Every session otherwise makes its own, which
    parses endpoints.json and each service's model again (a few hundred ms of CPU a client)."""
    import botocore.session

    return botocore.session.Session().get_component("data_loader")


def _session(region: str | None) -> Any:
    """A boto3 session (credentials and region found afresh, as boto3's chain finds them) on the
    shared loader, put in place of the session's own with botocore's Session.register_component."""
    import boto3
    import botocore.session

    core, loader = botocore.session.Session(), _data_loader()
    core.register_component("data_loader", loader)
    session = boto3.session.Session(botocore_session=core, region_name=region)
    with _LOADER_LOCK:  # each boto3 Session appends its own data folder to the loader's paths again
        loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


def _ec2_client(region: str) -> Any:
    """An EC2 client for reading the model's subnets and their routes (its endpoint from the
    environment's usual chain), giving up connecting soon: the read is optional."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=CONNECT_TIMEOUT_S, user_agent_extra="llamadeploy")
    return _session(region).client("ec2", config=config)


def _subnet_routes(ec2: Any, subnets: Sequence[str]) -> dict[str, tuple[str, str, list[dict[str, Any]]]]:
    """Each subnet's VPC, route table and routes: the table associated with it, else its VPC's main
    one, as EC2 applies them; the table is "" where this account sees none."""
    vpcs = {found["SubnetId"]: found["VpcId"] for found in ec2.describe_subnets(SubnetIds=list(subnets))["Subnets"]}
    pages = ec2.get_paginator("describe_route_tables").paginate(Filters=[{"Name": "vpc-id", "Values": sorted(set(vpcs.values()))}])
    tables = [table for page in pages for table in page["RouteTables"]]
    associated = {a["SubnetId"]: table for table in tables for a in table.get("Associations", []) if a.get("SubnetId")}
    main = {table["VpcId"]: table for table in tables for a in table.get("Associations", []) if a.get("Main")}
    chosen = {subnet: associated.get(subnet) or main.get(vpc) for subnet, vpc in vpcs.items()}
    return {subnet: (vpcs[subnet], table["RouteTableId"] if table else "", table["Routes"] if table else []) for subnet, table in chosen.items()}


def _s3_prefix_lists(ec2: Any, region: str) -> set[str]:
    """The ids of the region's S3 prefix list, which a gateway endpoint's routes lead to."""
    pages = ec2.get_paginator("describe_managed_prefix_lists").paginate()
    return {found["PrefixListId"] for page in pages for found in page["PrefixLists"] if found["PrefixListName"] == f"com.amazonaws.{region}.s3"}


def _s3_interface_vpcs(ec2: Any, region: str) -> set[str]:
    """The VPCs with an interface endpoint for S3 whose private DNS answers S3's names: S3 is reached
    there without a route."""
    pages = ec2.get_paginator("describe_vpc_endpoints").paginate()
    return {
        endpoint["VpcId"]
        for page in pages
        for endpoint in page["VpcEndpoints"]
        if endpoint.get("ServiceName") == f"com.amazonaws.{region}.s3" and endpoint.get("VpcEndpointType") == "Interface" and endpoint.get("PrivateDnsEnabled")
    }


def _reaches_s3(routes: list[dict[str, Any]], s3_lists: set[str]) -> bool:
    """Whether a route table may lead to S3: a route to its prefix list (a gateway endpoint), a way
    out, or a transit gateway or peering (a shared S3 endpoint in another VPC may answer there)."""
    return any(
        _route_out(route)
        or (_active(route) and (route.get("DestinationPrefixListId") in s3_lists or route.get("TransitGatewayId") or route.get("VpcPeeringConnectionId")))
        for route in routes
    )


def _route_out(route: dict[str, Any]) -> bool:
    """An active default route (IPv4 or IPv6) that may lead out: to a NAT gateway, an egress-only
    internet gateway, or through another hop (a NAT instance, a transit gateway, a firewall), which
    llamadeploy cannot follow and so trusts; not to an internet gateway, as the container's
    interfaces have no public address."""
    default = route.get("DestinationCidrBlock") == "0.0.0.0/0" or route.get("DestinationIpv6CidrBlock") == "::/0"
    return default and _active(route) and not route.get("GatewayId", "").startswith("igw-") and route.get("GatewayId") != "local"


def _active(route: dict[str, Any]) -> bool:
    """EC2 drops a route whose target is gone (State blackhole)."""
    return route.get("State", "active") == "active"


def _runtime_client(region: str, endpoint_url: str | None) -> Any:
    """The SageMaker runtime client that sends InvokeEndpoint (SigV4-signed by boto3)."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, user_agent_extra="llamadeploy")  # the engine retries
    return _session(region).client("sagemaker-runtime", endpoint_url=endpoint_url, config=config)


def _quotas_client(region: str, endpoint_url: str | None) -> Any:
    """A Service Quotas client for the region (`endpoint_url` replaces every AWS endpoint llamadeploy calls)."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, user_agent_extra="llamadeploy")  # the engine retries
    return _session(region).client("service-quotas", endpoint_url=endpoint_url, config=config)


def _s3_client(region: str | None) -> Any:
    """An S3 client for reading the user's weights (its endpoint from the environment's usual chain)."""
    from botocore.config import Config

    return _session(region).client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": 3}, user_agent_extra="llamadeploy"))


def _control_clients(region: str, endpoint_url: str | None) -> tuple[Any, Any]:
    """A SageMaker and an Application Auto Scaling client for the region and endpoint."""
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, user_agent_extra="llamadeploy")  # the engine retries
    session = _session(region)
    return (
        session.client("sagemaker", endpoint_url=endpoint_url, config=config),
        session.client("application-autoscaling", endpoint_url=endpoint_url, config=config),
    )


def _endpoint_ready(sagemaker: Any, name: str) -> tuple[bool, str]:
    with _translated():
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    status = endpoint["EndpointStatus"]
    if status in ("Failed", "OutOfService"):
        raise failed_because(WORDS, endpoint.get("FailureReason") or f"endpoint {name} is {status}")
    return status == "InService", status


def _endpoint_presence(sagemaker: Any, name: str) -> Presence:
    """Whether the endpoint is there; EndpointStatus "Deleting" (DescribeEndpoint's EndpointStatus
    enum, SageMaker API reference) is one on its way out, whose name CreateEndpoint still refuses."""
    with _translated():
        endpoint = _optional(lambda: sagemaker.describe_endpoint(EndpointName=name))
    if endpoint is None:
        return Presence.ABSENT
    return Presence.DELETING if endpoint["EndpointStatus"] == "Deleting" else Presence.PRESENT


# DescribeEndpoint's EndpointStatus values during which an endpoint cannot be deleted.
_IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def _endpoint_settled(sagemaker: Any, name: str) -> tuple[bool, str]:
    with _translated():
        endpoint = _optional(lambda: sagemaker.describe_endpoint(EndpointName=name))
    status = "gone" if endpoint is None else endpoint["EndpointStatus"]
    return status not in _IN_PROGRESS, status


def _endpoint_gone(sagemaker: Any, name: str) -> tuple[bool, str]:
    with _translated():
        endpoint = _optional(lambda: sagemaker.describe_endpoint(EndpointName=name))
    return (True, "deleted") if endpoint is None else (False, endpoint["EndpointStatus"])


def _pages(listing: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = listing(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


WORDS = ErrorWords(
    "SageMaker",
    throttle_codes=frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}),
    auth_codes=frozenset(
        {
            "AccessDeniedException",
            "AccessDenied",
            "UnrecognizedClientException",
            "InvalidClientTokenId",
            "ExpiredTokenException",
            "SignatureDoesNotMatch",
            "InvalidSignatureException",
        }
    ),
    not_found_codes=frozenset({"ResourceNotFound", "ObjectNotFoundException", "ResourceNotFoundException"}),
    quota_codes=frozenset({"ResourceLimitExceeded"}),
    capacity_words=("capacity",),
    quota_words=(),  # AWS names its quota errors by code; "limit" also appears in validation messages
    quota_advice="request an increase in Service Quotas, or plan on another instance type or cloud",
    auth_advice="check AWS_PROFILE or the access keys, and the role's SageMaker permissions",
)
# SageMaker and Application Auto Scaling report a missing resource as a ValidationException.
_NOT_FOUND = re.compile(r"could not find|does not exist|not found|no [a-z ]+ found", re.IGNORECASE)


@contextmanager
def _translated() -> Iterator[None]:
    """Turn botocore's exceptions into llamadeploy's typed provider errors."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        HTTPClientError,
        NoCredentialsError,
    )
    from botocore.exceptions import (
        ConnectionError as ConnectionFailed,
    )

    try:
        yield
    except ClientError as exc:
        error, metadata = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {})
        code, message, status = error.get("Code", ""), error.get("Message", str(exc)), metadata.get("HTTPStatusCode")
        if code == "ValidationException" and _NOT_FOUND.search(message):
            status = 404
        raise classify(WORDS, status, code, message, metadata.get("HTTPHeaders", {}).get("retry-after")) from exc
    except NoCredentialsError as exc:
        raise AuthError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`") from exc
    except (ConnectionFailed, HTTPClientError) as exc:
        raise TransientError(f"cannot reach AWS: {exc}") from exc
    except BotoCoreError as exc:
        raise ProviderError(f"AWS request failed: {exc}") from exc


_optional = partial(if_exists, translated=_translated)
_exists = partial(exists, translated=_translated)
