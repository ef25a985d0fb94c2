"""Oracle Cloud: an OCI Data Science model deployment running a vLLM container from OCIR on a
GPU shape, with a fixed size or an autoscaling policy.

The `oci` SDK is imported inside the methods that call Oracle. Credentials come from the SDK
config file (`OCI_CONFIG_FILE` or ~/.oci/config, profile from `placement.oci.profile`), or
from resource principals inside OCI (`OCI_RESOURCE_PRINCIPAL_VERSION` set). OCI names
resources by OCID, so the deterministic identity is the display name plus the deployment tag;
OCIDs found or created travel in each resource's properties. The SDK's own retries are off:
the engine owns retrying, as for every cloud. `placement.oci.endpoint` replaces the service
endpoint.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
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
    if_exists,
    resource_tags,
)

if TYPE_CHECKING:
    from orchestrator.planner import Plan

MODEL = "oci:DataScience/Model"
MODEL_DEPLOYMENT = "oci:DataScience/ModelDeployment"
SERVING_PORT = 8080
# OCI's predefined autoscaling metrics are CPU and memory; vLLM's CPU work (tokenising,
# scheduling, HTTP) rises with requests in flight, so CPU is the available proxy for load.
SCALE_OUT_CPU_PERCENT = 70
SCALE_IN_CPU_PERCENT = 30
PENDING_DURATION = "PT5M"
_NEEDS_IMAGE = ("OCI Data Science runs containers from OCIR only: push a vLLM image (e.g. vllm/vllm-openai) to "
                "{region}.ocir.io/<namespace>/vllm and set serving.image in the stack")  # fmt: skip
COOL_DOWN_S = 600
ARTIFACT = "artifact.zip"
_STATES = {"ACTIVE": "serving", "CREATING": "provisioning", "UPDATING": "provisioning", "DELETING": "deleting",
           "DELETED": "missing", "FAILED": "failed", "INACTIVE": "inactive", "NEEDS_ATTENTION": "failed"}  # fmt: skip


class OciProvider(Provider):
    name = "oci"
    service = "OCI Data Science model deployment"
    default_region = "us-ashburn-1"
    required_placement = ("compartment_id", "project_id")
    sdk_modules = ("oci",)

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        return [
            Resource(MODEL, f"{name}-model", {"freeform_tags": tags}),
            Resource(MODEL_DEPLOYMENT, name, {"shape": plan.offer.instance_type, "instance_count": scaling.min_replicas,
                                              "autoscaling": {"minimum": scaling.min_replicas, "maximum": scaling.max_replicas}, "freeform_tags": tags}),
        ]  # fmt: skip

    def program(self, plan: Plan) -> Program:
        model, online = self.resources(plan)
        placed, deployment = plan.deployment.placement.oci, plan.deployment
        if not deployment.serving.image:
            raise InvalidRequestError(_NEEDS_IMAGE.format(region=plan.region))
        artifact = _empty_artifact()
        known = {f"llamadeploy:{key}": getattr(placed, key) for key in ("compartment_id", "project_id") if placed and getattr(placed, key)}
        return Program(
            requirements=("pulumi-oci>=5.0,<6",),
            config={"oci:region": plan.region, **known},
            required_config=("llamadeploy:compartment_id", "llamadeploy:project_id"),
            secrets=tuple(deployment.serving.secrets),
            values={
                "model": model.name, "model_deployment": online.name, "artifact": ARTIFACT, "artifact_length": len(artifact),
                "shape": online.properties["shape"], "scaling": _scaling(plan), "image": deployment.serving.image, "cmd": _vllm_command(plan),
                "port": SERVING_PORT, "environment": dict(deployment.serving.env), "tags": online.properties["freeform_tags"],
            },
            files={ARTIFACT: artifact},
        )  # fmt: skip

    def settings(self, plan: Plan) -> dict[str, Any]:
        placed = plan.deployment.placement.oci
        assert placed is not None
        chosen = {"compartment_id": placed.compartment_id, "project_id": placed.project_id}
        return {**chosen, **{k: v for k, v in (("profile", placed.profile), ("endpoint", placed.endpoint)) if v}}

    def apply(self, plan: Plan, events: Events) -> Deployed:
        from oci.data_science import models as ds

        deployment, settings = plan.deployment, self.settings(plan)
        if not deployment.serving.image:
            raise InvalidRequestError(_NEEDS_IMAGE.format(region=plan.region))
        secrets = resolve_secrets(deployment)
        client = _client(plan.region, settings)
        model, online = self.resources(plan)
        tags = model.properties["freeform_tags"]
        with _translated():
            model_id = _find(client.list_models, settings, model.name)
            if model_id is None:
                model_id = client.create_model(ds.CreateModelDetails(
                    compartment_id=settings["compartment_id"], project_id=settings["project_id"], display_name=model.name, freeform_tags=tags,
                )).data.id  # fmt: skip
                # A bring-your-own-container deployment still needs a model with an artifact.
                client.create_model_artifact(model_id, _empty_artifact(), content_disposition=f"attachment; filename={ARTIFACT}")
                events.created(_with_id(model, model_id))
            else:
                events.adopted(_with_id(model, model_id))
            deployment_id = _find(client.list_model_deployments, settings, online.name)
            if deployment_id is None:
                created = client.create_model_deployment(ds.CreateModelDeploymentDetails(
                    display_name=online.name, compartment_id=settings["compartment_id"], project_id=settings["project_id"], freeform_tags=tags,
                    model_deployment_configuration_details=ds.SingleModelDeploymentConfigurationDetails(
                        deployment_type="SINGLE_MODEL",
                        model_configuration_details=ds.ModelConfigurationDetails(
                            model_id=model_id,
                            instance_configuration=ds.InstanceConfiguration(instance_shape_name=plan.offer.instance_type),
                            scaling_policy=_scaling_policy(plan),
                        ),
                        environment_configuration_details=ds.OcirModelDeploymentEnvironmentConfigurationDetails(
                            environment_configuration_type="OCIR_CONTAINER", image=deployment.serving.image,
                            cmd=_vllm_command(plan), server_port=SERVING_PORT, health_check_port=SERVING_PORT,
                            environment_variables={**deployment.serving.env, **secrets},
                        ),
                    ),
                ))  # fmt: skip
                deployment_id = created.data.id
                events.created(_with_id(online, deployment_id))
                work = created.headers["opc-work-request-id"]
                events.wait(f"OCI work request for {online.name}", lambda: _work_done(client, work))
            else:
                events.adopted(_with_id(online, deployment_id))
            events.wait(f"OCI model deployment {online.name}", lambda: _active(client, deployment_id))
            url = client.get_model_deployment(deployment_id).data.model_deployment_url
        return Deployed(deployment.name, self.name, plan.region, (_with_id(model, model_id), _with_id(online, deployment_id)), f"{url}/predict", settings)

    def describe(self, deployed: Deployed) -> LiveStatus:
        client = _client(deployed.region, deployed.settings)
        with _translated():
            found = {r.type: self._locate(client, deployed, r) for r in deployed.resources}
            missing = tuple(f"{r.type} {r.name}" for r in deployed.resources if found[r.type] is None)
            if found.get(MODEL_DEPLOYMENT) is None:
                return LiveStatus("missing", missing=missing)
            data = client.get_model_deployment(found[MODEL_DEPLOYMENT]).data
        configuration = data.model_deployment_configuration_details.model_configuration_details
        policy = configuration.scaling_policy
        bounds = (policy.instance_count, policy.instance_count) if policy.policy_type == "FIXED_SIZE" else (
            policy.auto_scaling_policies[0].minimum_instance_count, policy.auto_scaling_policies[0].maximum_instance_count)  # fmt: skip
        return LiveStatus(
            state=_STATES.get(data.lifecycle_state, data.lifecycle_state.lower()),
            min_replicas=bounds[0],
            max_replicas=bounds[1],
            instance_type=configuration.instance_configuration.instance_shape_name,
            missing=missing,
            detail=data.lifecycle_details or "",
        )

    def scale(self, deployed: Deployed, min_replicas: int, max_replicas: int) -> None:
        raise InvalidRequestError("changing an OCI model deployment's scaling needs an update of the deployment: `down` then `up`")

    def destroy(self, deployed: Deployed, events: Events) -> None:
        client = _client(deployed.region, deployed.settings)
        with _translated():
            for resource in sorted(deployed.resources, key=lambda r: r.type != MODEL_DEPLOYMENT):
                ocid = self._locate(client, deployed, resource)
                if ocid is None:
                    continue
                if resource.type == MODEL_DEPLOYMENT:
                    response = _optional(lambda o=ocid: client.delete_model_deployment(o))
                    if response is not None:
                        work = response.headers["opc-work-request-id"]
                        events.wait(f"deleting OCI model deployment {resource.name}", lambda w=work: _work_done(client, w))
                else:
                    _optional(lambda o=ocid: client.delete_model(o))

    def _locate(self, client: Any, deployed: Deployed, resource: Resource) -> str | None:
        """The resource's OCID if it still exists: from the record, else by display name and tag."""
        get, listing = {MODEL: (client.get_model, client.list_models), MODEL_DEPLOYMENT: (client.get_model_deployment, client.list_model_deployments)}[resource.type]
        ocid = resource.properties.get("id")
        if ocid:
            found = _optional(lambda: get(ocid))
            return ocid if found is not None and found.data.lifecycle_state != "DELETED" else None
        return _find(listing, deployed.settings, resource.name)

    def remaining(self, deployed: Deployed) -> list[Resource]:
        client = _client(deployed.region, deployed.settings)
        with _translated():
            return [r for r in deployed.resources if self._locate(client, deployed, r) is not None]

    def endpoint(self, deployed: Deployed) -> Endpoint:
        return Endpoint(
            url=deployed.url,
            auth="OCI request signing (an API key or a security token): `oci raw-request` signs for you",
            example=f"""oci raw-request --http-method POST --target-uri {deployed.url} --request-body '{{"prompt": "What is the capital of France?", "max_tokens": 64}}'""",
        )


def _with_id(resource: Resource, ocid: str) -> Resource:
    return Resource(resource.type, resource.name, {**resource.properties, "id": ocid})


def _find(listing: Callable[..., Any], settings: dict[str, Any], display_name: str) -> str | None:
    """The OCID of the live resource with this display name and llamadeploy's tag, if any.

    Pages by hand: oci.pagination wraps every call in the SDK's default retry strategy, and
    retrying belongs to the engine alone.
    """
    page = None
    while True:
        response = listing(compartment_id=settings["compartment_id"], project_id=settings["project_id"], display_name=display_name,
                           **({"page": page} if page else {}))  # fmt: skip
        live = [i for i in response.data if i.lifecycle_state not in ("DELETED", "DELETING") and (i.freeform_tags or {}).get(DEPLOYMENT_TAG)]
        if live:
            return live[0].id
        page = response.next_page
        if not page:
            return None


def _scaling(plan: Plan) -> dict[str, Any]:
    """The scaling policy's values, as both `apply` and an exported program declare it."""
    scaling = plan.deployment.autoscaling
    if scaling.min_replicas == scaling.max_replicas:
        return {"policy_type": "FIXED_SIZE", "instance_count": scaling.min_replicas}
    return {"policy_type": "AUTOSCALING", "cool_down_in_seconds": COOL_DOWN_S, "minimum": scaling.min_replicas, "maximum": scaling.max_replicas,
            "initial": scaling.min_replicas, "metric": "CPU_UTILIZATION", "scale_out_percent": SCALE_OUT_CPU_PERCENT,
            "scale_in_percent": SCALE_IN_CPU_PERCENT, "pending_duration": PENDING_DURATION}  # fmt: skip


def _scaling_policy(plan: Plan) -> Any:
    from oci.data_science import models as ds

    values = _scaling(plan)
    if values["policy_type"] == "FIXED_SIZE":
        return ds.FixedSizeScalingPolicy(policy_type="FIXED_SIZE", instance_count=values["instance_count"])

    def threshold(percent: int) -> Any:
        return ds.PredefinedExpressionThresholdScalingConfiguration(scaling_configuration_type="THRESHOLD", threshold=percent,
                                                                    instance_count_adjustment=1, pending_duration=values["pending_duration"])  # fmt: skip

    rule = ds.PredefinedMetricExpressionRule(metric_expression_rule_type="PREDEFINED_EXPRESSION", metric_type=values["metric"],
                                             scale_out_configuration=threshold(values["scale_out_percent"]),
                                             scale_in_configuration=threshold(values["scale_in_percent"]))  # fmt: skip
    return ds.AutoScalingPolicy(policy_type="AUTOSCALING", cool_down_in_seconds=values["cool_down_in_seconds"], is_enabled=True, auto_scaling_policies=[
        ds.ThresholdBasedAutoScalingPolicyDetails(auto_scaling_policy_type="THRESHOLD", minimum_instance_count=values["minimum"],
                                                  maximum_instance_count=values["maximum"], initial_instance_count=values["initial"], rules=[rule]),
    ])  # fmt: skip


def _vllm_command(plan: Plan) -> list[str]:
    deployment = plan.deployment
    command = [
        "vllm", "serve", plan.hf_repo, "--host=0.0.0.0", f"--port={SERVING_PORT}",
        f"--tensor-parallel-size={plan.layout.tensor_parallel}", f"--max-model-len={deployment.max_context}", f"--max-num-seqs={deployment.concurrency}",
    ]  # fmt: skip
    if deployment.quantization != deployment.model_ref.checkpoint_quantization:
        command.append("--quantization=" + {"fp8": "fp8", "int4": "awq"}[deployment.quantization])
    return command


def _empty_artifact() -> bytes:
    """The smallest artifact a model deployment accepts; dated 1980 so every export is the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("runtime.yaml", date_time=(1980, 1, 1, 0, 0, 0)), "MODEL_ARTIFACT_VERSION: '3.0'\nMODEL_DEPLOYMENT:\n  INFERENCE_CONDA_ENV: {}\n")
    return buffer.getvalue()


def _work_done(client: Any, work_request: str) -> tuple[bool, str]:
    with _translated():
        status = client.get_work_request(work_request).data.status
        if status == "FAILED":
            errors = client.list_work_request_errors(work_request).data
            raise _failure("; ".join(e.message for e in errors) or f"work request {work_request} failed")
    return status in ("SUCCEEDED", "CANCELED"), status


def _active(client: Any, deployment_id: str) -> tuple[bool, str]:
    with _translated():
        data = client.get_model_deployment(deployment_id).data
    if data.lifecycle_state in ("FAILED", "NEEDS_ATTENTION", "DELETED"):
        raise _failure(data.lifecycle_details or f"model deployment is {data.lifecycle_state}")
    return data.lifecycle_state == "ACTIVE", data.lifecycle_state


_client_cache: dict[tuple[str, ...], Any] = {}


def _client(region: str, settings: dict[str, Any]) -> Any:
    # How credentials are found is part of the key: the environment decides it, not the settings.
    key = (region, repr(sorted(settings.items())), os.environ.get("OCI_RESOURCE_PRINCIPAL_VERSION", ""), os.environ.get("OCI_CONFIG_FILE", ""))
    if key not in _client_cache:
        import oci

        kwargs: dict[str, Any] = {"retry_strategy": oci.retry.NoneRetryStrategy()}
        if settings.get("endpoint"):
            kwargs["service_endpoint"] = settings["endpoint"]
        with _translated():
            if os.environ.get("OCI_RESOURCE_PRINCIPAL_VERSION"):
                _client_cache[key] = oci.data_science.DataScienceClient({"region": region}, signer=oci.auth.signers.get_resource_principals_signer(), **kwargs)
            else:
                location = os.environ.get("OCI_CONFIG_FILE", oci.config.DEFAULT_LOCATION)
                config = {**oci.config.from_file(location, settings.get("profile", "DEFAULT")), "region": region}
                oci.config.validate_config(config)
                _client_cache[key] = oci.data_science.DataScienceClient(config, **kwargs)
    return _client_cache[key]



def _failure(message: str) -> ProviderError:
    lowered = message.lower()
    if "capacity" in lowered:
        return CapacityError(f"OCI is out of host capacity for this shape ({message}); try another region or cloud")
    if "limit" in lowered or "quota" in lowered:
        return QuotaError(f"OCI service limit reached ({message}); request a limit increase, or plan another shape or cloud")
    return ProviderError(f"OCI model deployment failed: {message}")


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn the oci SDK's exceptions into llamadeploy's typed provider errors."""
    import oci

    try:
        yield
    except ProviderError:
        raise
    except oci.exceptions.ServiceError as exc:
        text = f"{exc.code}: {exc.message}"
        if exc.status == 404:
            raise NotFoundError(text) from exc
        if exc.status == 429:
            retry_after = (exc.headers or {}).get("retry-after")
            raise ThrottledError(f"OCI is throttling requests ({text})", float(retry_after) if retry_after else None) from exc
        if exc.status == 401:
            raise AuthError(f"OCI refused the request signature ({text}); check the config file's key and fingerprint") from exc
        if exc.code in ("LimitExceeded", "QuotaExceeded") or "capacity" in str(exc.message).lower():
            raise _failure(text) from exc
        raise InvalidRequestError(f"OCI rejected the request ({text})") from exc
    except (oci.exceptions.ConfigFileNotFound, oci.exceptions.ProfileNotFound, oci.exceptions.InvalidConfig, oci.exceptions.InvalidPrivateKey) as exc:
        raise AuthError(f"OCI configuration problem: {exc}; run `oci setup config` or set OCI_CONFIG_FILE") from exc
    except oci.exceptions.RequestException as exc:
        raise ProviderError(f"cannot reach OCI: {exc}") from exc


_optional = partial(if_exists, translated=_translated)
