"""AWS: a SageMaker real-time endpoint serving vLLM through the LMI container, autoscaled by
Application Auto Scaling on requests in flight per model copy.

boto3 is imported inside the methods that call AWS, never at module import, so `plan` and
`cost` run without it. Credentials come from boto3's own chain (environment, profile, SSO,
instance role); `placement.aws.endpoint_url` or boto3's AWS_ENDPOINT_URL reach a VPC endpoint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from orchestrator.secrets import resolve_secrets
from providers.base import (
    DEPLOYMENT_TAG,
    AuthError,
    CapacityError,
    Deployed,
    Endpoint,
    Events,
    InvalidRequestError,
    LiveStatus,
    NotFoundError,
    Program,
    Provider,
    ProviderError,
    QuotaError,
    Resource,
    ThrottledError,
    create_or_adopt,
    exists,
    if_exists,
    resource_tags,
)

if TYPE_CHECKING:
    from orchestrator.planner import Plan

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
# SageMaker's large-model-inference container with vLLM, published per region by AWS.
LMI_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
# Weights download at roughly 100 MiB/s from the Hugging Face Hub, then load onto the GPUs;
# SageMaker allows at most an hour for each.
SECONDS_PER_WEIGHT_GIB_DOWNLOAD = 10
SECONDS_PER_WEIGHT_GIB_LOAD = 5
MAX_TIMEOUT_SECONDS = 3600
_STATES = {"InService": "serving", "Creating": "provisioning", "Updating": "provisioning", "SystemUpdating": "provisioning",
           "RollingBack": "provisioning", "Deleting": "deleting", "OutOfService": "failed", "Failed": "failed"}  # fmt: skip


class AwsProvider(Provider):
    name = "aws"
    service = "SageMaker real-time inference"
    default_region = "us-east-1"
    required_placement = ("execution_role_arn",)
    sdk_modules = ("boto3",)

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        weights = plan.requirements.weights_gib
        return [
            Resource(MODEL, f"{name}-model", {"hf_model_id": plan.hf_repo, "tensor_parallel_degree": plan.layout.tensor_parallel, "tags": tags}),
            Resource(CONFIG, f"{name}-config", {
                "instance_type": plan.offer.instance_type,
                "initial_instance_count": scaling.min_replicas,
                "model_download_timeout_s": _timeout(weights, SECONDS_PER_WEIGHT_GIB_DOWNLOAD),
                "startup_health_check_timeout_s": _timeout(weights, SECONDS_PER_WEIGHT_GIB_LOAD),
                "tags": tags,
            }),
            Resource(ENDPOINT, name, {"tags": tags}),
            Resource(TARGET, f"endpoint/{name}/variant/{VARIANT}", {"min_capacity": scaling.min_replicas, "max_capacity": scaling.max_replicas}),
            Resource(POLICY, f"{name}-concurrency", {"target_value": plan.deployment.target_concurrent_requests}),
        ]  # fmt: skip

    def program(self, plan: Plan) -> Program:
        model, config, endpoint, target, policy = self.resources(plan)
        placed = plan.deployment.placement.aws
        role = placed.execution_role_arn if placed else None
        return Program(
            requirements=("pulumi-aws>=7.0,<8",),
            config={"aws:region": plan.region, **({"llamadeploy:execution_role_arn": role} if role else {})},
            required_config=("llamadeploy:execution_role_arn",),
            secrets=tuple(plan.deployment.serving.secrets),
            values={
                "model": model.name, "endpoint_config": config.name, "endpoint": endpoint.name, "policy": policy.name,
                "image": _image(plan), "environment": _environment(plan), "variant": VARIANT,
                "instance_type": config.properties["instance_type"], "initial_instance_count": config.properties["initial_instance_count"],
                "model_download_timeout_s": config.properties["model_download_timeout_s"],
                "startup_health_check_timeout_s": config.properties["startup_health_check_timeout_s"],
                "dimension": DIMENSION, "min_capacity": target.properties["min_capacity"], "max_capacity": target.properties["max_capacity"],
                "target_value": float(policy.properties["target_value"]), "metric": CONCURRENCY_METRIC,
                "scale_in_cooldown_s": SCALE_IN_COOLDOWN_S, "scale_out_cooldown_s": SCALE_OUT_COOLDOWN_S, "tags": resource_tags(plan),
            },
        )  # fmt: skip

    def settings(self, plan: Plan) -> dict[str, Any]:
        placed = plan.deployment.placement.aws
        return {"endpoint_url": placed.endpoint_url} if placed and placed.endpoint_url else {}

    def apply(self, plan: Plan, events: Events) -> Deployed:
        deployment = plan.deployment
        placed = deployment.placement.aws
        assert placed is not None and placed.execution_role_arn  # checked by the engine before apply
        secrets = resolve_secrets(deployment)
        by_type = {r.type: r for r in self.resources(plan)}
        tags = [{"Key": k, "Value": v} for k, v in resource_tags(plan).items()]
        sagemaker, scaling = _clients(plan.region, self.settings(plan))
        model, config, endpoint = by_type[MODEL], by_type[CONFIG], by_type[ENDPOINT]

        def create_model() -> None:
            sagemaker.create_model(
                ModelName=model.name,
                ExecutionRoleArn=placed.execution_role_arn,
                PrimaryContainer={"Image": _image(plan), "Environment": {**_environment(plan), **secrets}},
                Tags=tags,
            )

        def create_config() -> None:
            sagemaker.create_endpoint_config(
                EndpointConfigName=config.name,
                ProductionVariants=[{
                    "VariantName": VARIANT,
                    "ModelName": model.name,
                    "InstanceType": plan.offer.instance_type,
                    "InitialInstanceCount": deployment.autoscaling.min_replicas,
                    "ModelDataDownloadTimeoutInSeconds": config.properties["model_download_timeout_s"],
                    "ContainerStartupHealthCheckTimeoutInSeconds": config.properties["startup_health_check_timeout_s"],
                }],
                Tags=tags,
            )  # fmt: skip

        with _translated():
            create_or_adopt(model, lambda: _exists(lambda: sagemaker.describe_model(ModelName=model.name)), create_model, events)
            create_or_adopt(config, lambda: _exists(lambda: sagemaker.describe_endpoint_config(EndpointConfigName=config.name)), create_config, events)
            create_or_adopt(
                endpoint,
                lambda: _exists(lambda: sagemaker.describe_endpoint(EndpointName=endpoint.name)),
                lambda: sagemaker.create_endpoint(EndpointName=endpoint.name, EndpointConfigName=config.name, Tags=tags),
                events,
            )
        events.wait(f"SageMaker endpoint {endpoint.name}", lambda: _endpoint_ready(sagemaker, endpoint.name))
        with _translated():
            self._autoscale(scaling, plan, by_type[TARGET], by_type[POLICY], events)
        url = f"https://runtime.sagemaker.{plan.region}.amazonaws.com/endpoints/{endpoint.name}/invocations"
        return Deployed(deployment.name, self.name, plan.region, tuple(by_type.values()), url, self.settings(plan))

    def _autoscale(self, scaling: Any, plan: Plan, target: Resource, policy: Resource, events: Events) -> None:
        existing = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[target.name])["ScalableTargets"]
        bounds = plan.deployment.autoscaling
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=target.name, ScalableDimension=DIMENSION,
            MinCapacity=bounds.min_replicas, MaxCapacity=bounds.max_replicas,
        )  # fmt: skip
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

    def describe(self, deployed: Deployed) -> LiveStatus:
        sagemaker, scaling = _clients(deployed.region, deployed.settings)
        names = {r.type: r.name for r in deployed.resources}
        missing = [f"{kind} {name}" for kind, name in names.items() if not self._exists(sagemaker, scaling, kind, name)]
        endpoint = _optional(lambda: sagemaker.describe_endpoint(EndpointName=names[ENDPOINT]))
        if endpoint is None:
            return LiveStatus("missing", missing=tuple(missing))
        with _translated():
            variant = (endpoint.get("ProductionVariants") or [{}])[0]
            config = _optional(lambda: sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"]))
            targets = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[names[TARGET]])["ScalableTargets"]
        return LiveStatus(
            state=_STATES.get(endpoint["EndpointStatus"], endpoint["EndpointStatus"].lower()),
            replicas=variant.get("CurrentInstanceCount"),
            min_replicas=targets[0]["MinCapacity"] if targets else None,
            max_replicas=targets[0]["MaxCapacity"] if targets else None,
            instance_type=config["ProductionVariants"][0]["InstanceType"] if config else None,
            missing=tuple(missing),
            detail=endpoint.get("FailureReason", ""),
        )

    def _exists(self, sagemaker: Any, scaling: Any, kind: str, name: str) -> bool:
        with _translated():
            if kind == TARGET:
                return bool(scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[name])["ScalableTargets"])
            if kind == POLICY:
                return bool(scaling.describe_scaling_policies(ServiceNamespace="sagemaker", PolicyNames=[name])["ScalingPolicies"])
            describe = {MODEL: lambda: sagemaker.describe_model(ModelName=name), CONFIG: lambda: sagemaker.describe_endpoint_config(EndpointConfigName=name),
                        ENDPOINT: lambda: sagemaker.describe_endpoint(EndpointName=name)}[kind]  # fmt: skip
            return _exists(describe)

    def scale(self, deployed: Deployed, min_replicas: int, max_replicas: int) -> None:
        _, scaling = _clients(deployed.region, deployed.settings)
        target = next(r.name for r in deployed.resources if r.type == TARGET)
        with _translated():
            scaling.register_scalable_target(
                ServiceNamespace="sagemaker", ResourceId=target, ScalableDimension=DIMENSION, MinCapacity=min_replicas, MaxCapacity=max_replicas
            )

    def destroy(self, deployed: Deployed, events: Events) -> None:
        sagemaker, scaling = _clients(deployed.region, deployed.settings)
        by_type = {r.type: r for r in deployed.resources}
        target = by_type.get(TARGET) or Resource(TARGET, f"endpoint/{deployed.deployment}/variant/{VARIANT}")
        with _translated():
            if POLICY in by_type:
                _optional(lambda: scaling.delete_scaling_policy(
                    PolicyName=by_type[POLICY].name, ServiceNamespace="sagemaker", ResourceId=target.name, ScalableDimension=DIMENSION))  # fmt: skip
            if TARGET in by_type:
                _optional(lambda: scaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=target.name, ScalableDimension=DIMENSION))
            if ENDPOINT in by_type:
                name = by_type[ENDPOINT].name
                _optional(lambda: sagemaker.delete_endpoint(EndpointName=name))
                events.wait(f"deleting SageMaker endpoint {name}", lambda: _endpoint_gone(sagemaker, name))
            if CONFIG in by_type:
                _optional(lambda: sagemaker.delete_endpoint_config(EndpointConfigName=by_type[CONFIG].name))
            if MODEL in by_type:
                _optional(lambda: sagemaker.delete_model(ModelName=by_type[MODEL].name))

    def remaining(self, deployed: Deployed) -> list[Resource]:
        sagemaker, scaling = _clients(deployed.region, deployed.settings)
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
        return Endpoint(
            url=deployed.url,
            auth="AWS Signature V4 (IAM): the caller needs sagemaker:InvokeEndpoint on this endpoint",
            example=(
                f"aws sagemaker-runtime invoke-endpoint --region {deployed.region} --endpoint-name {name} "
                "--content-type application/json --cli-binary-format raw-in-base64-out "
                """--body '{"inputs": "What is the capital of France?", "parameters": {"max_new_tokens": 64}}' /dev/stdout"""
            ),
        )


def _timeout(weights_gib: float, seconds_per_gib: int) -> int:
    return min(MAX_TIMEOUT_SECONDS, 600 + math.ceil(weights_gib * seconds_per_gib))


def _image(plan: Plan) -> str:
    return plan.deployment.serving.image or LMI_IMAGE.format(region=plan.region)


def _environment(plan: Plan) -> dict[str, str]:
    """The LMI container's settings for vLLM; the user's `serving.env` wins where they overlap."""
    deployment = plan.deployment
    env = {
        "HF_MODEL_ID": plan.hf_repo,
        "OPTION_ROLLING_BATCH": "vllm",
        "TENSOR_PARALLEL_DEGREE": str(plan.layout.tensor_parallel),
        "OPTION_MAX_MODEL_LEN": str(deployment.max_context),
        "OPTION_MAX_ROLLING_BATCH_SIZE": str(deployment.concurrency),
    }
    if deployment.quantization != deployment.model_ref.checkpoint_quantization:
        env["OPTION_QUANTIZE"] = {"fp8": "fp8", "int4": "awq"}[deployment.quantization]
    return {**env, **deployment.serving.env}


def _clients(region: str, settings: dict[str, Any] | Any) -> tuple[Any, Any]:
    return _cached_clients(region, settings.get("endpoint_url"))


@cache
def _cached_clients(region: str, endpoint_url: str | None) -> tuple[Any, Any]:
    """One SageMaker and one Auto Scaling client per region and endpoint: building a client parses
    the service's JSON model (~0.13 s), and boto3 clients are safe to share between threads."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, user_agent_extra="llamadeploy")
    session = boto3.session.Session(region_name=region)
    return (
        session.client("sagemaker", endpoint_url=endpoint_url, config=config),
        session.client("application-autoscaling", endpoint_url=endpoint_url, config=config),
    )


def _endpoint_ready(sagemaker: Any, name: str) -> tuple[bool, str]:
    with _translated():
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    status = endpoint["EndpointStatus"]
    if status in ("Failed", "OutOfService"):
        raise _failure(endpoint.get("FailureReason") or f"endpoint {name} is {status}")
    return status == "InService", status


def _endpoint_gone(sagemaker: Any, name: str) -> tuple[bool, str]:
    with _translated():
        endpoint = _optional(lambda: sagemaker.describe_endpoint(EndpointName=name))
    return (True, "deleted") if endpoint is None else (False, endpoint["EndpointStatus"])


def _failure(reason: str) -> ProviderError:
    """A SageMaker failure reason as the typed error the engine acts on."""
    lowered = reason.lower()
    if "capacity" in lowered:
        return CapacityError(f"SageMaker could not provision the instances: {reason}")
    if "limit" in lowered or "quota" in lowered:
        return QuotaError(f"SageMaker quota: {reason}")
    return ProviderError(f"SageMaker endpoint failed: {reason}")





def _pages(listing: Callable[..., dict[str, Any]], key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = listing(**kwargs, **({"NextToken": token} if token else {}))
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


_AUTH_CODES = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidClientTokenId",
               "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidSignatureException"}  # fmt: skip
# SageMaker and Application Auto Scaling report a missing resource as a ValidationException.
_NOT_FOUND = re.compile(r"could not find|does not exist|not found|no [a-z ]+ found", re.IGNORECASE)
_THROTTLE_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}


@contextmanager
def _translated() -> Iterator[None]:
    """Turn botocore's exceptions into llamadeploy's typed provider errors."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    try:
        yield
    except ClientError as exc:
        raise _typed(exc) from exc
    except NoCredentialsError as exc:
        raise AuthError("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`") from exc
    except EndpointConnectionError as exc:
        raise ProviderError(f"cannot reach AWS: {exc}") from exc
    except BotoCoreError as exc:
        raise ProviderError(f"AWS request failed: {exc}") from exc


def _typed(exc: Any) -> ProviderError:
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", str(exc))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    text = f"{code}: {message}" if code else message
    if code in _THROTTLE_CODES or status == 429:
        retry_after = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("retry-after")
        return ThrottledError(f"AWS is throttling requests ({text})", float(retry_after) if retry_after else None)
    if code == "ResourceLimitExceeded":
        return QuotaError(f"SageMaker quota exceeded ({text}); request an increase in Service Quotas, or plan on another instance type or cloud")
    if "capacity" in message.lower() or code in ("InsufficientCapacityError", "InsufficientInstanceCapacity"):
        return CapacityError(f"no SageMaker capacity ({text}); try another region or cloud")
    if code in _AUTH_CODES:
        return AuthError(f"AWS refused the credentials ({text})")
    if code in ("ResourceNotFound", "ObjectNotFoundException", "ResourceNotFoundException") or (
        code == "ValidationException" and _NOT_FOUND.search(message)
    ):
        return NotFoundError(text)
    if code == "ValidationException":
        return InvalidRequestError(f"SageMaker rejected the request ({text})")
    return ProviderError(f"AWS error ({text})")


_optional = partial(if_exists, translated=_translated)
_exists = partial(exists, translated=_translated)
