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
import hashlib
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import Field

from orchestrator.declared.secrets import resolve_secrets
from orchestrator.declared.spec import Deployment, PlacementBase
from orchestrator.errors import UsageError
from orchestrator.planning.serving import (
    CHAT_ROUTE,
    SCALE_IN_SHARE,
    VLLM_IMAGE,
    example_body,
    startup,
    vllm_arguments,
)
from orchestrator.sizing.memory import GIB
from orchestrator.sizing.throughput import target_requests_per_minute
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
    NotFoundError,
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
    answer_of,
    any_configured,
    classify,
    exists,
    failed_because,
    gone_after_delete,
    if_exists,
    optional_read,
    resource_tags,
    secrets_exposed,
)

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from orchestrator.pricing.catalog import Offer

MODEL = "oci:DataScience/Model"
MODEL_DEPLOYMENT = "oci:DataScience/ModelDeployment"
# Oracle's vLLM bring-your-own-container samples (oracle-samples/oci-data-science-ai-samples,
# LLM/deploy-llm-byoc.md, LLM/deploy-llama3.1.md, LLM/deploy-openai-llm-byoc.md): no entrypoint, so
# `cmd` holds only vLLM's options, appended to the image's ENTRYPOINT (the SDK's
# OcirModelDeploymentEnvironmentConfigurationDetails.cmd: "Use CMD as arguments to the ENTRYPOINT");
# server and health ports 8080; /predict forwarded to MODEL_DEPLOY_PREDICT_ENDPOINT; SHM_SIZE 10g.
SERVING_PORT = 8080
SERVICE_ENVIRONMENT = {"MODEL_DEPLOY_PREDICT_ENDPOINT": CHAT_ROUTE, "SHM_SIZE": "10g"}
# The boot volume holds what the container downloads; the service sizes it unless told
# (STORAGE_SIZE_IN_GB, llm/llama2/README.md: "model will be downloaded at runtime").
STORAGE_HEADROOM_GB = 50
# The deployment workflow's timeout, at most 240 minutes (DEPLOYMENT_TIMEOUT_IN_MINUTES,
# model-deployment/containers/llm/llama2/README.md, "Troubleshooting": "Max value allowed is 240").
MAX_DEPLOYMENT_MINUTES = 240
# OCI's predefined autoscaling metrics are CPU and memory only; a GPU server's CPU says little
# about its load. A custom MQL rule on the model deployment's own metrics scales on requests:
# PredictRequestCount per instance per minute (oci_datascience_modeldeploy namespace, docs
# "Model Deployment Metrics" and "Custom Scaling Metric Type to Configure Autoscaling", whose
# example this follows; with no traffic no metric is emitted, so scale-in also fires on absence).
REQUESTS_METRIC = 'PredictRequestCount[1m]{{resourceId = "MODEL_DEPLOYMENT_OCID"}}.grouping()'
SCALE_OUT_QUERY = REQUESTS_METRIC + ".mean() > {target}"
SCALE_IN_QUERY = REQUESTS_METRIC + ".absent() == 1 || " + REQUESTS_METRIC + ".mean() < {low}"
PENDING_DURATION = "PT5M"
_NEEDS_IMAGE = (
    "OCI Data Science runs containers from OCIR only: push vLLM's image ({image}) to {region}.ocir.io/<namespace>/vllm-openai and set placement.oci.image"
)
_NEEDS_SUBNET = (
    "an OCI model deployment downloads the weights from the Hugging Face Hub only with custom networking: set "
    "placement.oci.subnet_id to a subnet whose VCN has a NAT gateway (docs: model-dep-create-cus-net.htm)"
)
COOL_DOWN_S = 600
ARTIFACT = "artifact.zip"
# The user's own weights, by reference: a model whose custom metadata says `modelDescription: true`
# and whose artifact is a JSON description of the Object Storage objects (each at a version, so the
# bucket must be versioned), which the service copies under /opt/ds/model/deployed_model/<object
# name> (Oracle's ADS: ads/model/datascience_model.py, `model_by_reference` and
# _prepare_file_description_artifact; oracle-samples oci-data-science-ai-samples LLM/deploy-llm-byoc.md,
# which starts vLLM with `--model /opt/ds/model/deployed_model/<prefix>`). The location is
# oci://<bucket>@<namespace>/<prefix>/, as ADS writes it.
DEPLOYED_MODEL_DIR = "/opt/ds/model/deployed_model"
# The artifact's file name as Oracle's model-by-reference sample uploads it (oracle-samples
# oci-data-science-ai-samples, model_description tool: create_model_artifact(..., content_disposition=
# 'attachment; filename="modelDescription.json"')); ADS names its copy model_description.json.
DESCRIPTION = "modelDescription.json"
_WEIGHTS_URI = re.compile(r"^oci://(?P<bucket>[A-Za-z0-9_.-]+)@(?P<namespace>[A-Za-z0-9_-]+)/(?P<prefix>(?:[^/]+/)+)$")
_STATES: dict[str, LiveState] = {
    "ACTIVE": LiveState.SERVING,
    "CREATING": LiveState.PROVISIONING,
    "UPDATING": LiveState.PROVISIONING,
    "DELETING": LiveState.DELETING,
    "DELETED": LiveState.MISSING,
    "FAILED": LiveState.FAILED,
    "INACTIVE": LiveState.INACTIVE,
    "NEEDS_ATTENTION": LiveState.FAILED,
}


class OciPlacement(PlacementBase):
    compartment_id: str | None = Field(
        default=None, pattern=r"^ocid1\.compartment\.", description="use the compartment's OCID, which starts with ocid1.compartment."
    )
    project_id: str | None = Field(
        default=None, pattern=r"^ocid1\.datascienceproject\.", description="use the Data Science project's OCID, which starts with ocid1.datascienceproject."
    )
    # A subnet whose VCN has a NAT gateway: a model deployment reaches the internet only through one.
    subnet_id: str | None = Field(default=None, pattern=r"^ocid1\.subnet\.", description="use the subnet's OCID, which starts with ocid1.subnet.")
    # A Data Science private endpoint the deployment answers through, inside its VCN only
    # (InstanceConfiguration.private_endpoint_id in the oci SDK). Its OCID's resource type, as in
    # OCI's identifier format ocid1.<resource type>.<realm>.[region].<id>
    # (docs.oracle.com/iaas/Content/General/Concepts/identifiers.htm), is the one Oracle's examples
    # give: ocid1.datascienceprivateendpoint.oc1.iad.… (oracle-samples AI Quick Actions deployment docs).
    private_endpoint_id: str | None = Field(
        default=None,
        pattern=r"^ocid1\.datascienceprivateendpoint\.",
        description="use the Data Science private endpoint's OCID, which starts with ocid1.datascienceprivateendpoint.",
    )
    # The vLLM image in OCIR: OCI Data Science runs images from the OCI Registry only.
    image: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]+\.ocir\.io/.+", description="use an image in the OCI Registry, such as iad.ocir.io/<namespace>/vllm-openai:v0.11.0"
    )
    profile: str | None = None
    endpoint: str | None = None


class OciProvider(Provider):
    name = "oci"
    placement_model = OciPlacement
    pulumi_template = BUILTIN_TEMPLATES / "oci.py.j2"
    service = "OCI Data Science model deployment"
    default_region = "us-ashburn-1"
    # image: OCI runs images from OCIR only (_NEEDS_IMAGE); subnet_id: the Hugging Face download at
    # start needs custom networking (_NEEDS_SUBNET). Own weights need no route out: the service copies
    # a model by reference itself, so default networking (no internet) serves them.
    required_placement = ("compartment_id", "project_id", "image")
    hub_placement = ("subnet_id",)
    sdk_modules = ("oci",)
    # The model deployment updated in place, which OCI does with zero downtime (see `switch`).
    supports = frozenset({Feature.REPLACE_LIVE})
    weights_scheme = "oci://"
    private_advice = (
        "placement.oci.private_endpoint_id, a Data Science private endpoint, makes it answer only inside your VCN "
        "(oci.data_science.models.InstanceConfiguration.private_endpoint_id)"
    )

    def weights_problem(self, uri: str) -> str | None:
        if not _WEIGHTS_URI.match(uri):
            return "must be a folder in Object Storage, as oci://<bucket>@<namespace>/<prefix>/ (ending in /), e.g. oci://my-models@mytenancy/llama-ft/"
        return None

    def weights_path(self, plan: Plan) -> str | None:
        """Where the service copies the referenced objects: under their own names."""
        located = _WEIGHTS_URI.match(plan.weights or "")
        return f"{DEPLOYED_MODEL_DIR}/{located['prefix'].rstrip('/')}" if located else None

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        model_name = f"{name}-weights-{hashlib.sha256(plan.weights.encode()).hexdigest()[:8]}" if plan.weights else f"{name}-model"
        return [
            Resource(MODEL, model_name, {"freeform_tags": tags, **({"weights": plan.weights} if plan.weights else {})}),
            Resource(
                MODEL_DEPLOYMENT,
                name,
                {
                    "shape": plan.offer.instance_type,
                    "instance_count": scaling.min_replicas,
                    "autoscaling": {"minimum": scaling.min_replicas, "maximum": scaling.max_replicas},
                    "freeform_tags": tags,
                },
            ),
        ]

    def program(self, plan: Plan) -> Program:
        if plan.weights:
            # A model by reference names each object's version, which only a read of the bucket at `up` knows.
            raise UsageError(
                f"export cannot declare weights.oci ({plan.weights}) yet: a model by reference lists every object's version, "
                "read from the bucket when it is made; deploy it with `llamadeploy up`, or export it to another cloud"
            )
        model, online = self.resources(plan)
        placed = plan.deployment.placement.of("oci")
        if not (placed and placed.image):
            raise InvalidRequestError(_NEEDS_IMAGE.format(image=VLLM_IMAGE, region=plan.region))
        artifact = _empty_artifact()
        known = {f"llamadeploy:{key}": getattr(placed, key) for key in ("compartment_id", "project_id", "subnet_id") if placed and getattr(placed, key)}
        return Program(
            requirements=("pulumi-oci>=5.0,<6",),
            config={"oci:region": plan.region, **known},
            required_config=("llamadeploy:compartment_id", "llamadeploy:project_id", "llamadeploy:subnet_id"),
            secrets=tuple(plan.secrets),
            values={
                "model": model.name,
                "model_deployment": online.name,
                "artifact": ARTIFACT,
                "artifact_length": len(artifact),
                "shape": online.properties["shape"],
                "scaling": _scaling(plan),
                "image": placed.image,
                "private_endpoint_id": placed.private_endpoint_id,
                "cmd": _vllm_command(plan),
                "port": SERVING_PORT,
                "environment": _environment(plan),
                "tags": online.properties["freeform_tags"],
            },
            files={ARTIFACT: artifact},
        )

    def settings(self, plan: Plan) -> dict[str, Any]:
        placed = plan.deployment.placement.of("oci")
        assert placed is not None
        chosen = {"compartment_id": placed.compartment_id, "project_id": placed.project_id}
        return {**chosen, **{k: v for k, v in (("profile", placed.profile), ("endpoint", placed.endpoint)) if v}}

    def _client(self, region: str, settings: Mapping[str, Any]) -> Any:
        """The region's DataScienceClient; how credentials are found (the environment) is part of the key."""
        return self._service("datascience", region, settings)

    def _service(self, service: str, region: str, settings: Mapping[str, Any]) -> Any:
        """The region's client of one OCI service (_SERVICES), made once; how credentials are found is part of its key."""
        return self.client(_credentials_key(service, region, settings), lambda: _make_client(service, region, settings))

    def checkpoint_listing(self, uri: str, placement: Any, region: str) -> tuple[dict[str, int], Callable[[str], bytes]]:
        """The objects under the prefix (names relative to it), as the model by reference copies them;
        the bucket must keep versions, since the reference names each object's."""
        store = self._bucket(uri, placement, region)
        return store.sizes(), store.read

    def weights_store(self, uri: str, placement: Any) -> Any:
        return self._bucket(uri, placement, placement.region if placement and placement.region else self.default_region)

    def _bucket(self, uri: str, placement: Any, region: str) -> Any:
        from providers.oci_weights import ObjectStorageWeightsStore

        located = _WEIGHTS_URI.match(uri)
        if located is None:
            raise UsageError(f"weights.oci {uri}: {self.weights_problem(uri)}")
        settings = {"profile": placement.profile} if placement is not None and placement.profile else {}
        client = self._service("objectstorage", region, settings)
        store = ObjectStorageWeightsStore(uri, client, located["namespace"], located["bucket"], located["prefix"], _translated)
        store.require_versioning(region)
        return store

    def credentials_configured(self) -> bool:
        """Resource principals inside OCI, else the SDK config file (`oci setup config`)."""
        return any_configured(("OCI_RESOURCE_PRINCIPAL_VERSION",), (os.environ.get("OCI_CONFIG_FILE", "~/.oci/config"),))

    def network_problem(self, plan: Plan) -> str | None:
        """A subnet that surely gives the container no way to the Hugging Face Hub: its route table
        (GetSubnet, then GetRouteTable) has no 0.0.0.0/0 rule. Oracle's custom networking goes out
        "through a NAT/Internet gateway" (model-dep-create-cus-net.htm), and a rule to anything else
        (a DRG, a private IP) may lead out too: any default rule is trusted. With weights.oci the
        service copies the model itself, and a proxy or mirror in serving.env is reached by routes
        this cannot judge."""
        placed = plan.deployment.placement.of("oci")
        if placed is None or not placed.subnet_id or plan.weights or HUB_THROUGH.intersection(plan.deployment.serving.env):
            return None
        settings = self.settings(plan)
        network = self._service("vcn", plan.region, settings)
        with optional_read(f"reading subnet {placed.subnet_id} and its route table from OCI Networking", "read virtual-network-family"), _translated():
            table = network.get_subnet(placed.subnet_id).data.route_table_id
            rules = network.get_route_table(table).data.route_rules or []
        if any((rule.destination or rule.cidr_block) == "0.0.0.0/0" for rule in rules):
            return None
        return (
            f"the container downloads {plan.hf_repo} from the Hugging Face Hub through {placed.subnet_id}, and its route table {table} "
            "has no route out (0.0.0.0/0 to a NAT or internet gateway; docs.oracle.com/iaas/data-science/using/model-dep-create-cus-net.htm): "
            "add one, or use weights.oci, which the service copies itself"
        )

    def quota(self, plan: Plan) -> Quota | None:
        """The Data Science service limit for the shape's GPUs in the region, as the Limits API's
        resource availability reports it for the deployment's compartment. It counts GPUs, as
        Oracle's ADS compares it (oracle/accelerated-data-science ads/aqua/ui.py); shapes whose
        limit name no public source gives are not checked (their create still reports LimitExceeded)."""
        limit_name = next((name for prefix, name in LIMIT_NAMES.items() if plan.offer.instance_type.startswith(prefix)), None)
        if limit_name is None:
            return None
        settings = self.settings(plan)
        limits = self._service("limits", plan.region, settings)
        with _translated():
            availability = limits.get_resource_availability("data-science", limit_name, settings["compartment_id"]).data
        if availability.available is None:  # the API could not say: not a reason to refuse
            return None
        return Quota(
            name=f"data-science {limit_name}",
            limit=(availability.used or 0) + availability.available,
            used=availability.used or 0,
            needed=plan.deployment.autoscaling.min_replicas * plan.offer.gpu_count,
            unit="GPUs",
            request="request a service limit increase in the OCI Console: Governance & Administration > Limits, Quotas and Usage > "
            f"service Data Science, {limit_name} (docs.oracle.com/en-us/iaas/Content/General/Concepts/servicelimits.htm)",
        )

    def apply(self, plan: Plan, events: Events) -> Deployed:
        from oci.data_science import models as ds

        deployment, settings = plan.deployment, self.settings(plan)
        placed = deployment.placement.of("oci")
        assert placed is not None and placed.image and (placed.subnet_id or plan.weights)  # required placement, checked before apply
        secrets = resolve_secrets(deployment, bool(plan.weights))
        client = self._client(plan.region, settings)
        model, online = self.resources(plan)
        tags = model.properties["freeform_tags"]
        # A model by reference describes the objects as they are now, before anything is made.
        artifact, filename = (self._description(plan), DESCRIPTION) if plan.weights else (_empty_artifact(), ARTIFACT)
        by_reference = [ds.Metadata(key="modelDescription", value="true", category="Other", description="model by reference flag")] if plan.weights else None
        with _translated():
            model_id = _find(client.list_models, settings, model.name)
            if model_id is None:
                model_id = client.create_model(
                    ds.CreateModelDetails(
                        compartment_id=settings["compartment_id"],
                        project_id=settings["project_id"],
                        display_name=model.name,
                        freeform_tags=tags,
                        custom_metadata_list=by_reference,
                    )
                ).data.id
                events.created(_with_id(model, model_id))  # journaled at once: the artifact upload may still fail
            else:
                events.adopted(_with_id(model, model_id))
            # A bring-your-own-container deployment still needs a model with an artifact; a model an
            # earlier run made may have lost its upload, so an adopted one is finished, not trusted.
            if not _exists(lambda: client.head_model_artifact(model_id)):
                client.create_model_artifact(model_id, artifact, content_disposition=f'attachment; filename="{filename}"')
            for going in (i for i in _named(client.list_model_deployments, settings, online.name) if i.lifecycle_state == "DELETING"):
                # An earlier `down` is deleting it: wait it out rather than bill a second one beside it. Done here,
                # not through create_or_adopt's DELETING case: display names are not unique in OCI, so
                # one being deleted and a live one of the same name can both exist, each with its own OCID.
                gone_after_delete(online, lambda i=going.id: _deployment_presence(client, i), events)
            deployment_id = _find(client.list_model_deployments, settings, online.name)
            if deployment_id is None:
                created = client.create_model_deployment(
                    ds.CreateModelDeploymentDetails(
                        display_name=online.name,
                        compartment_id=settings["compartment_id"],
                        project_id=settings["project_id"],
                        freeform_tags=tags,
                        model_deployment_configuration_details=ds.SingleModelDeploymentConfigurationDetails(
                            deployment_type="SINGLE_MODEL",
                            model_configuration_details=ds.ModelConfigurationDetails(
                                model_id=model_id,
                                instance_configuration=_instance_configuration(plan, placed),
                                scaling_policy=_scaling_policy(plan),
                            ),
                            environment_configuration_details=ds.OcirModelDeploymentEnvironmentConfigurationDetails(
                                environment_configuration_type="OCIR_CONTAINER",
                                image=placed.image,
                                cmd=_vllm_command(plan),
                                server_port=SERVING_PORT,
                                health_check_port=SERVING_PORT,
                                environment_variables={**_environment(plan), **secrets},
                            ),
                        ),
                    )
                )
                deployment_id = created.data.id
                events.created(_with_id(online, deployment_id))
                work = created.headers["opc-work-request-id"]
                events.wait(f"OCI work request for {online.name}", lambda: _work_done(client, work), Pace.MINUTES)
            else:
                events.adopted(_with_id(online, deployment_id))
            events.wait(f"OCI model deployment {online.name}", lambda: _active(client, deployment_id), Pace.MINUTES)
            url = self._url(client, deployment_id, placed)
        return Deployed(deployment.name, self.name, plan.region, (_with_id(model, model_id), _with_id(online, deployment_id)), f"{url}/predict", settings)

    def _url(self, client: Any, deployment_id: str, placed: Any) -> str:
        """Where the deployment is called: its model_deployment_url, or, made with a private endpoint,
        that endpoint's FQDN, which is what a call from inside the VCN goes to ("the
        model_deployment_url should be a FQDN ... defined in private endpoint information page",
        oracle-samples/oci-data-science-ai-samples, the AI Quick Actions sample on model deployment
        private endpoints)."""
        if placed is not None and placed.private_endpoint_id:
            fqdn = client.get_data_science_private_endpoint(placed.private_endpoint_id).data.fqdn
            if not fqdn:
                raise ProviderError(f"Data Science private endpoint {placed.private_endpoint_id} has no FQDN yet; run `up` again once it is ACTIVE")
            return f"https://{fqdn}/{deployment_id}"
        return client.get_model_deployment(deployment_id).data.model_deployment_url

    def _description(self, plan: Plan) -> bytes:
        """The model-by-reference artifact: each object under the prefix at its current version."""
        placement = plan.deployment.placement.of("oci")
        store = self._bucket(plan.weights or "", placement, plan.region)
        return json.dumps({"version": "1.0", "type": "modelOSSReferenceDescription", "models": [store.description()]}).encode()

    def describe(self, deployed: Deployed) -> LiveStatus:
        client = self._client(deployed.region, deployed.settings)
        with _translated():
            found = {r.type: self._locate(client, deployed, r) for r in deployed.resources}
            missing = tuple(f"{r.type} {r.name}" for r in deployed.resources if found[r.type] is None)
            if found.get(MODEL_DEPLOYMENT) is None:
                return LiveStatus(LiveState.MISSING, missing=missing)
            data = client.get_model_deployment(found[MODEL_DEPLOYMENT]).data
        configuration = data.model_deployment_configuration_details.model_configuration_details
        policy = configuration.scaling_policy
        bounds = (
            (policy.instance_count, policy.instance_count)
            if policy.policy_type == "FIXED_SIZE"
            else (policy.auto_scaling_policies[0].minimum_instance_count, policy.auto_scaling_policies[0].maximum_instance_count)
        )
        return LiveStatus(
            state=_STATES.get(data.lifecycle_state, LiveState.UNKNOWN),
            min_replicas=bounds[0],
            max_replicas=bounds[1],
            instance_type=configuration.instance_configuration.instance_shape_name,
            missing=missing,
            detail=data.lifecycle_details or "",
        )

    def scale(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """UpdateModelDeployment with the plan's scaling policy (a fixed size, or autoscaling with its
        bounds and queries), applied to an ACTIVE deployment in place
        (oci.data_science UpdateModelConfigurationDetails.scaling_policy, with the model named again)."""
        from oci.data_science import models as ds

        client = self._client(deployed.region, deployed.settings)
        (resource,) = [r for r in deployed.resources if r.type == MODEL_DEPLOYMENT]
        with _translated():
            ocid = self._locate(client, deployed, resource)
            if ocid is None:
                raise NotFoundError(f"OCI model deployment {resource.name} does not exist")
            configuration = client.get_model_deployment(ocid).data.model_deployment_configuration_details.model_configuration_details
            policy = _scaling_policy(plan)
            update = ds.UpdateModelDeploymentDetails(
                model_deployment_configuration_details=ds.UpdateSingleModelDeploymentConfigurationDetails(
                    deployment_type="SINGLE_MODEL",
                    model_configuration_details=ds.UpdateModelConfigurationDetails(model_id=configuration.model_id, scaling_policy=policy),
                )
            )
            work = client.update_model_deployment(ocid, update).headers["opc-work-request-id"]
        events.wait(f"scaling OCI model deployment {resource.name}", lambda: _work_done(client, work))

    def retag(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """The freeform tags of the model deployment (UpdateModelDeployment with freeform_tags alone,
        waited for through its work request) and of the model (UpdateModel)."""
        from oci.data_science import models as ds

        client, tags = self._client(deployed.region, deployed.settings), resource_tags(plan)
        with _translated():
            for resource in deployed.resources:
                ocid = self._locate(client, deployed, resource)
                if ocid is None:
                    raise NotFoundError(f"OCI {resource.type} {resource.name} does not exist")
                if resource.type == MODEL:
                    client.update_model(ocid, ds.UpdateModelDetails(freeform_tags=tags))
                    continue
                work = client.update_model_deployment(ocid, ds.UpdateModelDeploymentDetails(freeform_tags=tags)).headers["opc-work-request-id"]
                events.wait(f"OCI tags on {resource.name}", lambda w=work: _work_done(client, w))

    def stage(self, deployed: Deployed, plan: Plan, events: Events) -> Staged:
        """Nothing to make beforehand: OCI Data Science updates an ACTIVE model deployment's compute
        and container in place with zero downtime (docs.oracle.com/en-us/iaas/data-science/using/
        model-dep-edit.htm), so the new variant is the same deployment, updated by `switch`."""
        ids = {r.type: r.properties.get("id") for r in deployed.resources}
        return Staged(replace(deployed, resources=tuple(_with_id(r, ids[r.type]) if ids.get(r.type) else r for r in self.resources(plan))))

    def switch(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """UpdateModelDeployment, one group of settings at a time, as OCI edits an ACTIVE deployment
        (model-dep-edit.htm: compute and container are changed one at a time; all at once only
        while INACTIVE): the compute shape first when the new one has at least the old one's GPUs,
        else the container first, so that what serves in between fits its machines. Each update
        is waited for; a failed one leaves the deployment serving what it served before."""
        from oci.data_science import models as ds

        placed = plan.deployment.placement.of("oci")
        assert placed is not None and placed.image and (placed.subnet_id or plan.weights)  # required placement, checked before apply
        client = self._client(deployed.region, deployed.settings)
        (resource,) = [r for r in deployed.resources if r.type == MODEL_DEPLOYMENT]
        with _translated():
            ocid = self._locate(client, deployed, resource)
            if ocid is None:
                raise NotFoundError(f"OCI model deployment {resource.name} does not exist")
        # An update a dead run began ends first; one that failed may leave the deployment NEEDS_ATTENTION, still serving.
        events.wait(f"OCI model deployment {resource.name} to settle", lambda: _settled(client, ocid), Pace.MINUTES)
        with _translated():
            current = client.get_model_deployment(ocid).data.model_deployment_configuration_details
        model, container = current.model_configuration_details, current.environment_configuration_details
        compute = ds.UpdateModelConfigurationDetails(
            model_id=model.model_id,
            instance_configuration=_instance_configuration(plan, placed),
            scaling_policy=_scaling_policy(plan),
        )
        wanted = {
            "image": placed.image,
            "cmd": _vllm_command(plan),
            "environment_variables": {**_environment(plan), **resolve_secrets(plan.deployment, bool(plan.weights))},
        }
        steps = []
        if model.instance_configuration.instance_shape_name != plan.offer.instance_type:
            steps.append(
                ("compute shape", ds.UpdateSingleModelDeploymentConfigurationDetails(deployment_type="SINGLE_MODEL", model_configuration_details=compute))
            )
        if any(getattr(container, key) != value for key, value in wanted.items()):
            environment = ds.UpdateOcirModelDeploymentEnvironmentConfigurationDetails(
                environment_configuration_type="OCIR_CONTAINER", server_port=SERVING_PORT, health_check_port=SERVING_PORT, **wanted
            )
            steps.append(
                (
                    "container",
                    ds.UpdateSingleModelDeploymentConfigurationDetails(
                        deployment_type="SINGLE_MODEL",
                        model_configuration_details=ds.UpdateModelConfigurationDetails(model_id=model.model_id, scaling_policy=_scaling_policy(plan)),
                        environment_configuration_details=environment,
                    ),
                )
            )
        if plan.offer.gpu_count < _gpus(model.instance_configuration.instance_shape_name):
            steps.reverse()
        for what, details in steps:
            with _translated():
                work = client.update_model_deployment(ocid, ds.UpdateModelDeploymentDetails(model_deployment_configuration_details=details))
            events.wait(f"OCI model deployment {resource.name}: new {what}", lambda w=work.headers["opc-work-request-id"]: _work_done(client, w), Pace.MINUTES)
            events.wait(f"OCI model deployment {resource.name}", lambda: _active(client, ocid), Pace.MINUTES)

    def destroy(self, deployed: Deployed, events: Events) -> None:
        client = self._client(deployed.region, deployed.settings)
        with _translated():
            for resource in sorted(deployed.resources, key=lambda r: r.type != MODEL_DEPLOYMENT):
                ocid = self._locate(client, deployed, resource)
                if ocid is None:
                    continue
                if resource.type == MODEL_DEPLOYMENT:
                    if _deployment_presence(client, ocid) is Presence.DELETING:  # an earlier `down` began it: wait, do not delete twice
                        gone_after_delete(resource, lambda o=ocid: _deployment_presence(client, o), events)
                        continue
                    response = _optional(lambda o=ocid: client.delete_model_deployment(o))
                    if response is not None:
                        work = response.headers["opc-work-request-id"]
                        events.wait(f"deleting OCI model deployment {resource.name}", lambda w=work: _work_done(client, w), Pace.MINUTES)
                else:
                    _optional(lambda o=ocid: client.delete_model(o))

    def _locate(self, client: Any, deployed: Deployed, resource: Resource) -> str | None:
        """The resource's OCID if it still exists: from the record, else by display name and tag."""
        get, listing = {MODEL: (client.get_model, client.list_models), MODEL_DEPLOYMENT: (client.get_model_deployment, client.list_model_deployments)}[
            resource.type
        ]
        ocid = resource.properties.get("id")
        if ocid:
            found = _optional(lambda: get(ocid))
            return ocid if found is not None and found.data.lifecycle_state != "DELETED" else None
        return _find(listing, deployed.settings, resource.name)

    def remaining(self, deployed: Deployed) -> list[Resource]:
        client = self._client(deployed.region, deployed.settings)
        with _translated():
            return [r for r in deployed.resources if self._locate(client, deployed, r) is not None]

    def endpoint(self, deployed: Deployed) -> Endpoint:
        profile = f" --profile {deployed.settings['profile']}" if deployed.settings.get("profile") else ""
        return Endpoint(
            url=deployed.url,
            auth="OCI request signing (an API key or a security token); the caller needs the model deployment's predict permission",
            example=f"oci raw-request{profile} --http-method POST --target-uri {deployed.url} --request-body '{example_body()}'",
        )

    def invoke(self, deployed: Deployed, request: Mapping[str, Any]) -> Any:
        """POST the chat completion to the deployment's /predict, signed as Oracle's samples sign it
        (`requests.post(endpoint, json=body, auth=signer)`, ai-quick-actions/model-deployment-tips.md)."""
        import requests

        # Made once, as a client is: a signer reads and parses the API key file when made.
        signer = self.client(_credentials_key("signer", deployed.region, deployed.settings), lambda: _signer(deployed.region, deployed.settings))
        return answer_of(
            lambda: requests.post(deployed.url, json=dict(request), auth=signer, timeout=(CONNECT_TIMEOUT_S, 300)),
            f"OCI model deployment {deployed.deployment}",
        )

    def read_prices(self, offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
        from providers.oci_prices import read_prices

        return read_prices(offers, get_json)

    def reach(self, deployment: Deployment) -> str:
        placed = deployment.placement.of("oci")
        if placed and placed.subnet_id:
            outbound = f"the container runs in {placed.subnet_id} and reaches out only through its routes (a NAT gateway)"
        elif deployment.weights.get("oci"):
            outbound = "the container has default networking, with no internet access (placement.oci.subnet_id gives it a route out)"
        else:
            outbound = "the container runs in placement.oci.subnet_id and reaches out only through its routes (a NAT gateway)"
        if placed and placed.private_endpoint_id:
            return f"only through Data Science private endpoint {placed.private_endpoint_id}, inside its VCN (OCI request signing); {outbound}"
        return f"a public predict URL (OCI request signing); {outbound}"

    def replace_problem(self, live: Deployment, plan: Plan) -> str | None:
        # An update names the deployed model again (UpdateModelConfigurationDetails.model_id); whether
        # OCI lets an update serve another model could not be confirmed offline.
        if live.weights.get("oci") != plan.weights:
            return "its weights changed: llamadeploy does not swap the model an OCI model deployment serves in place yet"
        return None

    def private_only(self, deployment: Deployment) -> str | None:
        placed = deployment.placement.of("oci")
        return f"it answers only through private endpoint {placed.private_endpoint_id}" if placed and placed.private_endpoint_id else None

    def contract(self, plan: Plan) -> ServingContract:
        placed = plan.deployment.placement.of("oci")
        image = placed.image if placed else None
        target = target_requests_per_minute(plan)
        needs = [] if image else [_NEEDS_IMAGE.format(image=VLLM_IMAGE, region=plan.region)]
        if not (placed and placed.subnet_id) and not plan.weights:
            needs.append(_NEEDS_SUBNET)
        return ServingContract(
            image=image or f"your OCIR copy of {VLLM_IMAGE}",
            started="the image's ENTRYPOINT with vLLM's options as its arguments (cmd), no entrypoint override",
            route=(
                f"POST https://<private endpoint {placed.private_endpoint_id}'s FQDN>/<ocid>/predict"
                if placed and placed.private_endpoint_id
                else f"POST https://modeldeployment.{plan.region}.oci.customer-oci.com/<ocid>/predict"
            )
            + f" (OCI signature) -> {CHAT_ROUTE} on port {SERVING_PORT}",
            scaling=ScalingSignal(
                "PredictRequestCount (per instance, custom MQL rule)",
                round(target, 1),
                "requests per minute per instance",
                f"OCI's predefined metrics are CPU and memory only; {plan.deployment.target_concurrent_requests} in flight "
                "at the throughput model's request time",
            ),
            startup_limit_s=MAX_DEPLOYMENT_MINUTES * 60,
            startup_setting="DEPLOYMENT_TIMEOUT_IN_MINUTES (at most 240)",
            needs=(
                *needs,
                # Oracle's model-by-reference samples ask to "allow the Data Science service to read and write the
                # model artifact to the Object Storage bucket" (oracle-samples/oci-data-science-ai-samples:
                # LLM/deploy-llm-byoc.md; ADS docs/source/user_guide/model_registration/large_model_artifact.rst
                # gives `Allow service datascience to manage object-family ...`), and the AI Quick Actions policies
                # grant the bucket to a dynamic group of model deployments (ai-quick-actions/policies/README.md).
                # Which identity copies the objects is documented nowhere, so both grants are named.
                *(
                    (
                        f"the Data Science service must read the objects in {plan.weights} (Oracle's samples: "
                        f"`Allow service datascience to manage object-family in compartment <compartment> where target.bucket.name='{_bucket_of(plan.weights)}'`, "
                        "and the same for a dynamic group of resource.type='datasciencemodeldeployment', as AI Quick Actions grants it)",
                    )
                    if plan.weights
                    else ()
                ),
                *secrets_exposed(
                    plan,
                    "the deployment's environment",
                    "GetModelDeployment (environment_configuration_details.environment_variables)",
                    " (the environment configuration has no secret reference)",
                ),
            ),
        )


def _instance_configuration(plan: Plan, placed: OciPlacement) -> Any:
    """The shape, the subnet the container runs in, and the private endpoint it answers through, if any."""
    from oci.data_science import models as ds

    return ds.InstanceConfiguration(instance_shape_name=plan.offer.instance_type, subnet_id=placed.subnet_id, private_endpoint_id=placed.private_endpoint_id)


def _gpus(shape: str) -> int:
    """A shape's GPUs, as its name's last number says (VM.GPU.A10.2: 2; BM.GPU4.8: 8), as Oracle's ADS reads them."""
    return int(shape.rsplit(".", 1)[-1])


def _with_id(resource: Resource, ocid: str) -> Resource:
    return Resource(resource.type, resource.name, {**resource.properties, "id": ocid})


def _find(listing: Callable[..., Any], settings: dict[str, Any], display_name: str) -> str | None:
    """The OCID of the live resource with this display name and llamadeploy's tag, if any."""
    live = [i for i in _named(listing, settings, display_name) if i.lifecycle_state not in ("DELETED", "DELETING")]
    return live[0].id if live else None


def _named(listing: Callable[..., Any], settings: dict[str, Any], display_name: str) -> Iterator[Any]:
    """The resources with this display name and llamadeploy's tag, in any state.

    Pages by hand: oci.pagination wraps every call in the SDK's default retry strategy, and
    retrying belongs to the engine alone.
    """
    page = None
    while True:
        response = listing(
            compartment_id=settings["compartment_id"], project_id=settings["project_id"], display_name=display_name, **({"page": page} if page else {})
        )
        yield from (i for i in response.data if (i.freeform_tags or {}).get(DEPLOYMENT_TAG))
        page = response.next_page
        if not page:
            return


def _scaling(plan: Plan) -> dict[str, Any]:
    """The scaling policy's values, as both `apply` and an exported program declare it."""
    scaling = plan.deployment.autoscaling
    if scaling.min_replicas == scaling.max_replicas:
        return {"policy_type": "FIXED_SIZE", "instance_count": scaling.min_replicas}
    target = round(target_requests_per_minute(plan), 1)
    return {
        "policy_type": "AUTOSCALING",
        "cool_down_in_seconds": COOL_DOWN_S,
        "minimum": scaling.min_replicas,
        "maximum": scaling.max_replicas,
        "initial": scaling.min_replicas,
        "scale_out_query": SCALE_OUT_QUERY.format(target=target),
        "scale_in_query": SCALE_IN_QUERY.format(low=round(target * SCALE_IN_SHARE, 1)),
        "pending_duration": PENDING_DURATION,
    }


def _scaling_policy(plan: Plan) -> Any:
    from oci.data_science import models as ds

    values = _scaling(plan)
    if values["policy_type"] == "FIXED_SIZE":
        return ds.FixedSizeScalingPolicy(policy_type="FIXED_SIZE", instance_count=values["instance_count"])

    def query(text: str) -> Any:
        return ds.CustomExpressionQueryScalingConfiguration(
            scaling_configuration_type="QUERY", query=text, instance_count_adjustment=1, pending_duration=values["pending_duration"]
        )

    rule = ds.CustomMetricExpressionRule(
        metric_expression_rule_type="CUSTOM_EXPRESSION",
        scale_out_configuration=query(values["scale_out_query"]),
        scale_in_configuration=query(values["scale_in_query"]),
    )
    return ds.AutoScalingPolicy(
        policy_type="AUTOSCALING",
        cool_down_in_seconds=values["cool_down_in_seconds"],
        is_enabled=True,
        auto_scaling_policies=[
            ds.ThresholdBasedAutoScalingPolicyDetails(
                auto_scaling_policy_type="THRESHOLD",
                minimum_instance_count=values["minimum"],
                maximum_instance_count=values["maximum"],
                initial_instance_count=values["initial"],
                rules=[rule],
            ),
        ],
    )


def _vllm_command(plan: Plan) -> list[str]:
    """vLLM's options only: OCI appends `cmd` to the image's ENTRYPOINT, which starts vLLM's server."""
    return [*vllm_arguments(plan), "--host", "0.0.0.0", "--port", str(SERVING_PORT)]


def _environment(plan: Plan) -> dict[str, str]:
    """The service's routing and sizing settings; the user's `serving.env` wins where they overlap."""
    start = startup(plan)
    sizing = {
        "STORAGE_SIZE_IN_GB": str(math.ceil(start.download_gib * GIB / 1e9) + STORAGE_HEADROOM_GB),
        "DEPLOYMENT_TIMEOUT_IN_MINUTES": str(min(MAX_DEPLOYMENT_MINUTES, math.ceil(start.timeout(None) / 60))),
    }
    return {**SERVICE_ENVIRONMENT, **sizing, **plan.deployment.serving.env}


def _empty_artifact() -> bytes:
    """The smallest artifact a model deployment accepts; dated 1980 so every export is the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("runtime.yaml", date_time=(1980, 1, 1, 0, 0, 0)), "MODEL_ARTIFACT_VERSION: '3.0'\nMODEL_DEPLOYMENT:\n  INFERENCE_CONDA_ENV: {}\n"
        )
    return buffer.getvalue()


def _work_done(client: Any, work_request: str) -> tuple[bool, str]:
    with _translated():
        status = client.get_work_request(work_request).data.status
        if status == "FAILED":
            errors = client.list_work_request_errors(work_request).data
            raise failed_because(WORDS, "; ".join(e.message for e in errors) or f"work request {work_request} failed")
    return status in ("SUCCEEDED", "CANCELED"), status


def _deployment_presence(client: Any, deployment_id: str) -> Presence:
    """A model deployment by lifecycle state (ModelDeployment.lifecycle_state in the OCI SDK):
    DELETING is on its way out, DELETED is gone."""
    with _translated():
        found = _optional(lambda: client.get_model_deployment(deployment_id))
    state = found.data.lifecycle_state if found is not None else "DELETED"
    return {"DELETED": Presence.ABSENT, "DELETING": Presence.DELETING}.get(state, Presence.PRESENT)


def _settled(client: Any, deployment_id: str) -> tuple[bool, str]:
    """Whether no work runs on the deployment: ACTIVE, or NEEDS_ATTENTION (ModelDeployment.lifecycle_state),
    which an update that failed may leave while the deployment still serves."""
    with _translated():
        state = client.get_model_deployment(deployment_id).data.lifecycle_state
    if state in ("FAILED", "DELETED", "DELETING"):
        raise failed_because(WORDS, f"model deployment is {state}")
    return state in ("ACTIVE", "NEEDS_ATTENTION"), state


def _active(client: Any, deployment_id: str) -> tuple[bool, str]:
    with _translated():
        data = client.get_model_deployment(deployment_id).data
    if data.lifecycle_state in ("FAILED", "NEEDS_ATTENTION", "DELETED"):
        raise failed_because(WORDS, data.lifecycle_details or f"model deployment is {data.lifecycle_state}")
    return data.lifecycle_state == "ACTIVE", data.lifecycle_state


# The services llamadeploy calls, by the key its clients are kept under: the SDK's package and client
# class (Data Science for the deployment, Object Storage for weights, Networking for the subnet's
# routes, Limits for the quota). Only Data Science's endpoint is replaced by placement.oci.endpoint.
_SERVICES = {
    "datascience": ("data_science", "DataScienceClient"),
    "objectstorage": ("object_storage", "ObjectStorageClient"),
    "vcn": ("core", "VirtualNetworkClient"),
    "limits": ("limits", "LimitsClient"),
}


def _make_client(service: str, region: str, settings: Mapping[str, Any]) -> Any:
    """The region's client of one service (https://<service>.<region>.oraclecloud.com), with the
    deployment's credentials and no SDK retries (the engine retries)."""
    import oci

    package, client = _SERVICES[service]
    kwargs: dict[str, Any] = {"retry_strategy": oci.retry.NoneRetryStrategy()}
    if service == "datascience" and settings.get("endpoint"):
        kwargs["service_endpoint"] = settings["endpoint"]
    config, signer = _credentials(region, dict(settings))
    return getattr(getattr(oci, package), client)(config, **({"signer": signer} if signer else {}), **kwargs)


def _bucket_of(uri: str) -> str:
    """The bucket of an `oci://<bucket>@<namespace>/<prefix>/` location."""
    located = _WEIGHTS_URI.match(uri)
    return located["bucket"] if located else "<bucket>"


def _credentials_key(what: str, region: str, settings: Mapping[str, Any]) -> tuple[str, ...]:
    """What a client or signer is made once for: its kind, region and settings, and how the
    environment says credentials are found."""
    return (what, region, repr(sorted(settings.items())), os.environ.get("OCI_RESOURCE_PRINCIPAL_VERSION", ""), os.environ.get("OCI_CONFIG_FILE", ""))


def _credentials(region: str, settings: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The SDK config and, inside OCI, a resource principals signer (else None: the config's API key signs)."""
    import oci

    with _translated():
        if os.environ.get("OCI_RESOURCE_PRINCIPAL_VERSION"):
            return {"region": region}, oci.auth.signers.get_resource_principals_signer()
        location = os.environ.get("OCI_CONFIG_FILE", oci.config.DEFAULT_LOCATION)
        config = {**oci.config.from_file(location, settings.get("profile", "DEFAULT")), "region": region}
        oci.config.validate_config(config)
        return config, None


def _signer(region: str, settings: dict[str, Any]) -> Any:
    """A request signer for calls outside the SDK's clients (the deployment's /predict)."""
    import oci

    config, signer = _credentials(region, settings)
    if signer is not None:
        return signer
    try:
        return oci.signer.Signer(config["tenancy"], config["user"], config["fingerprint"], config["key_file"], config.get("pass_phrase"))
    except (OSError, ValueError) as exc:
        raise AuthError(f"cannot read the OCI API key {config.get('key_file')!r} named in the config file: {exc}") from exc


# Data Science service limits by shape prefix: the names Oracle's ADS uses (ads/aqua/ui.py and its tests);
# the A100, H100, H200 and L40S shapes' names appear in no public source, so those are not checked.
LIMIT_NAMES = {"VM.GPU.A10.": "ds-gpu-a10-count", "BM.GPU.A10.": "ds-gpu-a10-count", "BM.GPU4.": "ds-gpu4-count"}

WORDS = ErrorWords(
    "OCI Data Science",
    quota_codes=frozenset({"LimitExceeded", "QuotaExceeded"}),
    capacity_words=("capacity",),
    quota_words=(),  # OCI names its limit errors by code
    quota_advice="request a service limit increase, or plan another shape or cloud",
    auth_advice="check the config file's key and fingerprint (`oci setup config`) and the IAM policies for Data Science in the compartment",
)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn the oci SDK's exceptions into llamadeploy's typed provider errors."""
    import oci

    try:
        yield
    except ProviderError:
        raise
    except oci.exceptions.ServiceError as exc:
        raise classify(WORDS, exc.status, exc.code or "", str(exc.message), (exc.headers or {}).get("retry-after")) from exc
    except (oci.exceptions.ConfigFileNotFound, oci.exceptions.ProfileNotFound, oci.exceptions.InvalidConfig, oci.exceptions.InvalidPrivateKey) as exc:
        raise AuthError(f"OCI configuration problem: {exc}; run `oci setup config` or set OCI_CONFIG_FILE") from exc
    except oci.exceptions.RequestException as exc:
        raise TransientError(f"cannot reach OCI: {exc}") from exc


_optional = partial(if_exists, translated=_translated)
_exists = partial(exists, translated=_translated)
