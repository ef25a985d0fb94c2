"""Google Cloud: a Vertex AI model with Model Garden's vLLM serving container, deployed to a Vertex
AI endpoint on GPU machines with min/max replica counts, scaled on requests per replica.

The container follows Google's own samples: Model Garden's `pytorch-vllm-serve` image at a dated
tag, its command line given as `args` that the image's entrypoint runs (GoogleCloudPlatform/
vertex-ai-samples notebooks/community/model_garden/model_garden_pytorch_llama3_1_deployment.ipynb
and model_garden_huggingface_vllm_deployment.ipynb), port 8080, 16 GiB of shared memory and the
longest deployment timeout. The server is vLLM's OpenAI one with the predict route on its chat
completions path, as Google's bring-your-own-vLLM sample routes predict to an OpenAI path
(notebooks/official/prediction/vertexai_serving_vllm/vertexai_serving_vllm_gpu_llama3_2_3B.ipynb),
so `:rawPredict` takes and returns OpenAI chat completions. A replica spanning hosts starts
through the image's Ray launcher (model_garden_pytorch_deepseek_deployment.ipynb,
`/vllm-workspace/ray_launcher.sh`; cloud.google.com/vertex-ai/docs/predictions/use-multihost-gpu).

google-cloud-aiplatform's GAPIC clients are imported inside the methods that call Google, and
used over REST. Its v1beta1 API is used because only it carries `multihost_gpu_node_count`,
which a replica spanning several A3 hosts needs. The engine paces every wait: each check of a
long-running operation is one GET. Credentials come from Application Default Credentials;
`placement.gcp.endpoint` replaces the regional API endpoint (Private Service Connect).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from orchestrator.declared.secrets import resolve_secrets
from orchestrator.declared.spec import Deployment, PlacementBase
from orchestrator.errors import UsageError
from orchestrator.planning.serving import (
    CHAT_ROUTE,
    HEALTH_ROUTE,
    OPENAI_SERVER,
    example_body,
    startup,
    vllm_arguments,
)
from orchestrator.sizing.throughput import target_requests_per_minute
from providers.base import (
    BUILTIN_TEMPLATES,
    CONNECT_TIMEOUT_S,
    DEPLOYMENT_TAG,
    AuthError,
    Deployed,
    Endpoint,
    ErrorWords,
    Events,
    Feature,
    GetJson,
    LiveState,
    LiveStatus,
    NotFoundError,
    Pace,
    Program,
    Provider,
    ProviderError,
    Quota,
    Resource,
    ScalingSignal,
    ServingContract,
    Staged,
    TransientError,
    UnreachableError,
    answer_of,
    any_configured,
    classify,
    create_or_adopt,
    exists,
    failed_because,
    if_exists,
    resource_tags,
    secrets_exposed,
)

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from orchestrator.pricing.catalog import Offer

MODEL = "aiplatform.googleapis.com/Model"
ENDPOINT = "aiplatform.googleapis.com/Endpoint"
DEPLOYED_MODEL = "aiplatform.googleapis.com/DeployedModel"
# Vertex AI's names for the GPUs in the catalog.
ACCELERATOR_TYPES = {
    "H200": "NVIDIA_H200_141GB",
    "H100": "NVIDIA_H100_80GB",
    "A100-80GB": "NVIDIA_A100_80GB",
    "A100-40GB": "NVIDIA_TESLA_A100",
    "L4": "NVIDIA_L4",
}
# Cloud Quotas' quota IDs for custom model serving GPUs, per project per region (gcloud's
# model_garden_utils.py and vertex-ai-samples' notebook_util/common_util.py); H200's is not published.
SERVING_QUOTAS = {
    "NVIDIA_L4": "CustomModelServingL4GPUsPerProjectPerRegion",
    "NVIDIA_TESLA_A100": "CustomModelServingA100GPUsPerProjectPerRegion",
    "NVIDIA_A100_80GB": "CustomModelServingA10080GBGPUsPerProjectPerRegion",
    "NVIDIA_H100_80GB": "CustomModelServingH100GPUsPerProjectPerRegion",
}
CLOUD_QUOTAS = "https://cloudquotas.googleapis.com"
# The newest Model Garden vLLM tag in Google's samples (model_garden_huggingface_vllm_deployment.ipynb).
MODEL_GARDEN_VLLM_IMAGE = "us-docker.pkg.dev/vertex-ai/vertex-vision-model-garden-dockers/pytorch-vllm-serve:20251205_0916_RC01"
RAY_LAUNCHER = "/vllm-workspace/ray_launcher.sh"
SERVING_PORT = 8080
SHARED_MEMORY_MB = 16 * 1024
# ModelContainerSpec.deployment_timeout: "Limit for deployment timeout is 2 hours" (v1beta1 types/model.py).
MAX_DEPLOYMENT_SECONDS = 7200
# Requests per minute per replica (AutoscalingMetricSpec.metric_name, v1beta1 types/machine_resources.py;
# "requests per minute per replica" in Vertex AI's autoscaling docs).
REQUESTS_METRIC = "aiplatform.googleapis.com/prediction/online/request_count"
_LABEL_INVALID = re.compile(r"[^a-z0-9_-]")
_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class GcpPlacement(PlacementBase):
    project: str | None = None
    endpoint: str | None = None
    # The service account the serving container runs as (DeployedModel.service_account); it must
    # read the deployment's own weights in Cloud Storage, which Vertex AI's default agent cannot.
    # A user-managed account is <id>@<project>.iam.gserviceaccount.com, its id 6-30 characters of
    # [a-z]([-a-z0-9]*[a-z0-9]) (IAM CreateServiceAccountRequest.account_id); Compute Engine's
    # default one is <project number>-compute@developer.gserviceaccount.com.
    service_account: str | None = Field(
        default=None,
        pattern=r"^([a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+|[0-9]+-compute@developer)\.gserviceaccount\.com$",
        description="use a service account email such as llama-serving@my-project.iam.gserviceaccount.com",
    )
    # The projects whose VPCs may reach the endpoint through Private Service Connect; the endpoint then
    # answers only there (Endpoint.private_service_connect_config: enable_private_service_connect, project_allowlist).
    private_service_connect: list[str] | None = Field(default=None, min_length=1)
    # The VPC network where Vertex AI makes the endpoint's forwarding rule itself (PSC automation,
    # PrivateServiceConnectConfig.psc_automation_configs: project_id + network), so that its address
    # is known: a client inside the network calls https://<that IP>/v1/<endpoint>:rawPredict
    # (cloud.google.com/vertex-ai/docs/predictions/private-service-connect, "Get online inferences").
    # The network needs a service connection policy for the service class gcp-vertexai; without one
    # the automation fails with CONNECTION_POLICY_MISSING (same page).
    private_service_connect_network: str | None = Field(
        default=None,
        pattern=r"^projects/[a-z0-9-]+/global/networks/[a-z0-9-]+$",
        description="use the network's full name, projects/<project>/global/networks/<network>",
    )

    @model_validator(mode="after")
    def _automation_allowed(self) -> GcpPlacement:
        if self.private_service_connect_network:
            project = self.private_service_connect_network.split("/")[1]
            if project not in (self.private_service_connect or ()):
                raise ValueError(
                    f"private_service_connect_network's project {project!r} must be one of private_service_connect, the projects allowed to reach the endpoint"
                )
        return self


class GcpProvider(Provider):
    name = "gcp"
    placement_model = GcpPlacement
    pulumi_template = BUILTIN_TEMPLATES / "gcp.py.j2"
    service = "Vertex AI online prediction"
    default_region = "us-central1"
    # Vertex AI serves one replica over several hosts (multi-host GPU deployment), on A3
    # machines only: their GPUDirect networking is what makes cross-host tensors workable.
    # REPLACE_LIVE: a second model deployed to the same endpoint with no traffic, then the split moved to it.
    supports = frozenset({Feature.MULTI_NODE, Feature.REPLACE_LIVE})
    multi_node_gpus = frozenset({"H100", "H200"})
    required_placement = ("project",)
    sdk_modules = ("google.cloud.aiplatform_v1beta1", "google.auth")
    # The Model Garden vLLM image downloads a gs:// folder given as --model before loading it
    # (Google's fine-tuning notebooks deploy the user's bucket that way: vertex-ai-samples
    # notebooks/community/model_garden/model_garden_gemma2_finetuning_on_vertex.ipynb; the image's
    # patched vLLM: community-content/vertex_model_garden/model_oss/vllm/vllm.patch, download_gcs_dir_to_local).
    weights_scheme = "gs://"
    private_advice = (
        "placement.gcp.private_service_connect: [<project>] makes it a Private Service Connect endpoint that answers only "
        "inside those projects' VPCs (Endpoint.private_service_connect_config)"
    )

    def reach(self, deployment: Deployment) -> str:
        placed = deployment.placement.of("gcp")
        if placed and placed.private_service_connect:
            where = (
                f"the forwarding rule Vertex AI makes in {placed.private_service_connect_network}"
                if placed.private_service_connect_network
                else "a forwarding rule you make in your VPC to the endpoint's service attachment (placement.gcp.private_service_connect_network "
                "has Vertex AI make it, so that llamadeploy can call it)"
            )
            return (
                f"only through Private Service Connect from {', '.join(placed.private_service_connect)}, at {where}, with a Google OAuth2 token; "
                "the container has internet access"
            )
        return super().reach(deployment)

    def replace_problem(self, live: Deployment, plan: Plan) -> str | None:
        # A blue/green replace keeps the endpoint, and its Private Service Connect configuration is given
        # at CreateEndpoint (Endpoint.private_service_connect_config).
        # Google's page on Private Service Connect endpoints: the project allowlist cannot be changed
        # once the endpoint exists (cloud.google.com/vertex-ai/docs/predictions/private-service-connect).
        before, after = live.placement.of("gcp"), plan.deployment.placement.of("gcp")
        if set((before.private_service_connect if before else None) or ()) != set((after.private_service_connect if after else None) or ()):
            return "its Private Service Connect projects changed, and Vertex AI takes them only when it makes the endpoint"
        if (before.private_service_connect_network if before else None) != (after.private_service_connect_network if after else None):
            return "its Private Service Connect network changed, which Vertex AI takes only when it makes the endpoint"
        return None

    def unverifiable(self, deployment: Deployment) -> str | None:
        placed = deployment.placement.of("gcp")
        if placed and placed.private_service_connect and not placed.private_service_connect_network:
            return (
                "it is reached only through a forwarding rule you make to its service attachment, at an address llamadeploy does not know "
                "(placement.gcp.private_service_connect_network has Vertex AI make one whose address llamadeploy reads)"
            )
        return None

    def private_only(self, deployment: Deployment) -> str | None:
        placed = deployment.placement.of("gcp")
        if placed and placed.private_service_connect:
            return f"it is a Private Service Connect endpoint, reached only from {', '.join(placed.private_service_connect)}"
        return None

    weights_placement = ("service_account",)

    def weights_problem(self, uri: str) -> str | None:
        problem = super().weights_problem(uri)
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        if problem is None and (not prefix.strip("/") or not uri.endswith("/")):
            # The image downloads the objects under `<prefix>/` (download_gcs_dir_to_local strips the
            # prefix's slashes and adds one); a bucket root or a prefix without its slash reads differently.
            return f"must be a folder in the bucket, ending in /, e.g. gs://{bucket or 'bucket'}/llama-ft/"
        return problem

    def deployment_problem(self, deployment: Deployment, own_weights: bool) -> tuple[tuple[str, ...], str] | None:
        if own_weights and deployment.serving.image and deployment.serving.image != MODEL_GARDEN_VLLM_IMAGE:
            # Only Google's Model Garden build downloads a gs:// --model; stock vLLM takes it for a hub id.
            return (
                ("serving", "image"),
                f"weights.gcp needs the Model Garden vLLM image, which downloads a gs:// folder; {deployment.serving.image} would not: drop serving.image",
            )
        return None

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        labels = _labels(resource_tags(plan))
        return [
            Resource(MODEL, plan.named(name), {"hf_model_id": plan.hf_repo, "labels": labels}),
            Resource(ENDPOINT, name, {"labels": labels}),
            Resource(
                DEPLOYED_MODEL,
                f"{name}/{plan.named(name)}",
                {
                    "machine_type": plan.offer.instance_type,
                    "accelerator_type": ACCELERATOR_TYPES.get(plan.offer.gpu, plan.offer.gpu),
                    "accelerator_count": plan.offer.gpu_count,
                    "hosts_per_replica": plan.layout.nodes,
                    "min_replica_count": scaling.min_replicas,
                    "max_replica_count": scaling.max_replicas,
                },
            ),
        ]

    def program(self, plan: Plan) -> Program:
        if plan.weights:
            # pulumi-gcp's AiEndpointWithModelGardenDeployment deploys a hub or Model Garden model
            # (hugging_face_model_id / publisher_model_name); a gs:// checkpoint has no field there.
            raise UsageError(
                f"export cannot declare weights.gcp ({plan.weights}) yet: pulumi-gcp's Model Garden deployment serves hub models only; "
                "deploy it with `llamadeploy up`, or export it to another cloud"
            )
        model, endpoint, deployed = self.resources(plan)
        placed = plan.deployment.placement.of("gcp")
        return Program(
            requirements=("pulumi-gcp>=10.0,<11",),
            config={"gcp:region": plan.region, **({"gcp:project": placed.project} if placed and placed.project else {})},
            required_config=("gcp:project",),
            secrets=tuple(plan.secrets),
            values={
                "endpoint": endpoint.name,
                "model": model.name,
                "hf_model_id": plan.hf_repo,
                "location": plan.region,
                "container": _container(plan),
                "machine_type": deployed.properties["machine_type"],
                "accelerator_type": deployed.properties["accelerator_type"],
                "accelerator_count": deployed.properties["accelerator_count"],
                "multihost_gpu_node_count": plan.layout.nodes if plan.layout.nodes > 1 else 0,
                "min_replica_count": deployed.properties["min_replica_count"],
                "max_replica_count": deployed.properties["max_replica_count"],
                "metric": REQUESTS_METRIC,
                "target": _requests_target(plan),
                "labels": model.properties["labels"],
                "private_service_connect": placed.private_service_connect if placed else None,
                "private_service_connect_network": placed.private_service_connect_network if placed else None,
            },
        )

    def settings(self, plan: Plan) -> dict[str, Any]:
        placed = plan.deployment.placement.of("gcp")
        assert placed is not None
        return {"project": placed.project, **({"endpoint": placed.endpoint} if placed.endpoint else {})}

    def _clients(self, region: str, settings: Mapping[str, Any]) -> tuple[Any, Any, Any]:
        """The region's model and endpoint service clients and a prediction session."""
        endpoint = settings.get("endpoint") or f"https://{region}-aiplatform.googleapis.com"
        return self.client(endpoint, lambda: _make_clients(endpoint))

    def apply(self, plan: Plan, events: Events) -> Deployed:
        return self._made(plan, events, {"0": 100})

    def stage(self, deployed: Deployed, plan: Plan, events: Events) -> Staged:
        """The new variant's model uploaded and deployed to the same endpoint beside the serving one,
        with no traffic: deployModel with an empty traffic split leaves the endpoint's split as it
        is (DeployModelRequest.traffic_split, aiplatform_v1beta1). Vertex AI has no route to one
        deployed model of a shared public endpoint (rawPredict goes by the split; a per-model
        `invoke` is for dedicated endpoints only, aiplatform/models.py Endpoint.invoke), so the
        engine calls the new variant through the endpoint once traffic has moved."""
        return Staged(self._made(plan, events, {}))

    def switch(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """The endpoint's traffic split set to {the variant's deployed model: 100} (UpdateEndpoint with
        update_mask traffic_split, as aiplatform's Endpoint.update(traffic_split=...) sends it)."""
        from google.cloud import aiplatform_v1beta1 as vertex

        _, endpoints, _ = self._clients(deployed.region, deployed.settings)
        parent = f"projects/{deployed.settings['project']}/locations/{deployed.region}"
        model = next(r for r in deployed.resources if r.type == MODEL)
        with _translated():
            endpoint = endpoints.get_endpoint(name=f"{parent}/endpoints/{deployed.deployment}")
            serving = _deployed_model_id(endpoint, model.name)
            if serving is None:
                raise NotFoundError(f"Vertex AI model {model.name} is not deployed to endpoint {deployed.deployment}")
            if {k: v for k, v in endpoint.traffic_split.items() if v} != {serving: 100}:
                endpoints.update_endpoint(endpoint=vertex.Endpoint(name=endpoint.name, traffic_split={serving: 100}), update_mask={"paths": ["traffic_split"]})

    def _made(self, plan: Plan, events: Events, traffic_split: dict[str, int]) -> Deployed:
        """The plan's model uploaded, the endpoint made, the model deployed to it with `traffic_split`
        ("0" names the model being deployed); each adopted where it exists."""
        from google.cloud import aiplatform_v1beta1 as vertex

        deployment, settings = plan.deployment, self.settings(plan)
        models, endpoints, _ = self._clients(plan.region, settings)
        parent = f"projects/{settings['project']}/locations/{plan.region}"
        model, endpoint, deployed = self.resources(plan)
        labels = model.properties["labels"]
        model_name, endpoint_name = f"{parent}/models/{model.name}", f"{parent}/endpoints/{endpoint.name}"
        shape = _container(plan)
        container = vertex.ModelContainerSpec(
            image_uri=shape["image"],
            args=shape["args"],
            env=[vertex.EnvVar(name=k, value=v) for k, v in {**shape["env"], **resolve_secrets(deployment, bool(plan.weights))}.items()],
            ports=[vertex.Port(container_port=shape["port"])],
            predict_route=shape["predict_route"],
            health_route=shape["health_route"],
            shared_memory_size_mb=shape["shared_memory_size_mb"],
            deployment_timeout=datetime.timedelta(seconds=shape["deployment_timeout_s"]),
        )
        with _translated():
            self._settle(events, endpoints, model)
            create_or_adopt(
                model,
                lambda: _exists(lambda: models.get_model(name=model_name)),
                lambda: models.upload_model(
                    request=vertex.UploadModelRequest(
                        parent=parent, model_id=model.name, model=vertex.Model(display_name=model.name, labels=labels, container_spec=container)
                    )
                ),
                events,
                lambda operation: self._wait(events, model, f"Vertex AI model upload {model.name}", operation),
            )
            self._settle(events, endpoints, endpoint)
            create_or_adopt(
                endpoint,
                lambda: _exists(lambda: endpoints.get_endpoint(name=endpoint_name)),
                lambda: endpoints.create_endpoint(
                    parent=parent,
                    endpoint_id=endpoint.name,
                    endpoint=vertex.Endpoint(display_name=endpoint.name, labels=labels, private_service_connect_config=_private_service_connect(plan)),
                ),
                events,
                lambda operation: self._wait(events, endpoint, f"Vertex AI endpoint {endpoint.name}", operation),
            )
            spec = vertex.MachineSpec(
                machine_type=plan.offer.instance_type,
                accelerator_type=vertex.AcceleratorType[deployed.properties["accelerator_type"]],
                accelerator_count=plan.offer.gpu_count,
                multihost_gpu_node_count=plan.layout.nodes if plan.layout.nodes > 1 else 0,
            )
            resources = vertex.DedicatedResources(
                machine_spec=spec,
                min_replica_count=deployment.autoscaling.min_replicas,
                max_replica_count=deployment.autoscaling.max_replicas,
                autoscaling_metric_specs=[vertex.AutoscalingMetricSpec(metric_name=REQUESTS_METRIC, target=_requests_target(plan))],
            )
            # A deployModel (or undeployModel) still running shows nowhere on the endpoint: only the
            # journaled operation tells a re-run to wait for it rather than deploy a second copy.
            self._settle(events, endpoints, deployed, Pace.MINUTES)
            create_or_adopt(
                deployed,
                lambda: _deployed_model_id(endpoints.get_endpoint(name=endpoint_name), model.name) is not None,
                lambda: endpoints.deploy_model(
                    endpoint=endpoint_name,
                    traffic_split=traffic_split,
                    deployed_model=vertex.DeployedModel(
                        model=model_name,
                        display_name=deployed.name.split("/")[-1],
                        dedicated_resources=resources,
                        service_account=_service_account(plan) or "",
                    ),
                ),
                events,
                lambda operation: self._wait(events, deployed, f"Vertex AI deployment of {model.name} to {endpoint.name}", operation, Pace.MINUTES),
            )
            address = self._psc_address(events, endpoints, endpoint_name) if _psc_network(plan) else None
        host = f"https://{address}" if address else settings.get("endpoint") or f"https://{plan.region}-aiplatform.googleapis.com"
        # A Private Service Connect endpoint is called at its forwarding rule's address, which is "" where
        # llamadeploy does not know it (no automation): invoke then says so without a call.
        called = {**settings, "psc_address": address or ""} if self.private_only(deployment) else settings
        return Deployed(deployment.name, self.name, plan.region, (model, endpoint, deployed), f"{host}/v1/{endpoint_name}:rawPredict", called)

    @staticmethod
    def _psc_address(events: Events, endpoints: Any, endpoint_name: str) -> str:
        """The IP of the forwarding rule Vertex AI made in the user's network (PSC automation), once it
        has one: the automation runs as a model is deployed (its state is UNSPECIFIED until then),
        and a failed one names why. An endpoint made without automation has no config to wait for."""
        name = endpoint_name.rsplit("/", 1)[-1]
        found: dict[str, Any] = {}

        def check() -> tuple[bool, str]:
            with _translated():
                configs = endpoints.get_endpoint(name=endpoint_name).private_service_connect_config.psc_automation_configs
            if not configs:
                raise ProviderError(
                    f"Vertex AI endpoint {name} was made without Private Service Connect automation, so it has no forwarding rule llamadeploy "
                    f"knows: `llamadeploy down {name}` then `up` makes it anew with placement.gcp.private_service_connect_network"
                )
            found["config"] = config = configs[0]
            return config.state.name != "PSC_AUTOMATION_STATE_UNSPECIFIED", config.state.name

        events.wait(f"Vertex AI's forwarding rule for {name}", check)
        config = found["config"]
        if config.state.name != "PSC_AUTOMATION_STATE_SUCCESSFUL" or not config.ip_address:
            raise ProviderError(
                f"Vertex AI could not make the endpoint's forwarding rule in {config.network} ({config.error_message or config.state.name}); "
                "the network needs a service connection policy for the service class gcp-vertexai "
                "(cloud.google.com/vertex-ai/docs/predictions/private-service-connect); a failed automation does not recover: "
                f"make the policy, then `llamadeploy down {name}` and `up`"
            )
        return str(config.ip_address)

    @staticmethod
    def _wait(events: Events, resource: Resource, what: str, operation: Any, pace: Pace = Pace.SECONDS) -> None:
        """Wait on a long-running operation at the engine's pace; a failed one raises, translated.
        The operation is journaled first, so a command killed while waiting leaves its name."""
        from google.api_core.exceptions import GoogleAPICallError

        events.started(resource, operation.operation.name)

        def check() -> tuple[bool, str]:
            with _translated():
                if not operation.done(retry=_no_retry()):
                    return False, "running"
            events.settled(resource)
            try:
                operation.result()
            except GoogleAPICallError as exc:  # the operation failed: the deployment's failure, not a call's to retry
                raise failed_because(WORDS, str(exc.message)) from exc
            return True, "done"

        events.wait(what, check, pace)

    @staticmethod
    def _settle(events: Events, endpoints: Any, resource: Resource, pace: Pace = Pace.SECONDS) -> None:
        """Wait for an operation on `resource` that an earlier command started and did not see end
        (whatever its outcome: what exists afterwards is then adopted, or made)."""
        name = events.pending(resource)
        if name is None:
            return

        def check() -> tuple[bool, str]:
            with _translated():
                operation = _optional(lambda: endpoints.get_operation(request={"name": name}, retry=_no_retry()))
            if operation is not None and not operation.done:
                return False, "running"
            events.settled(resource)
            return True, "ended" if operation is not None else "gone"

        events.wait(f"Vertex AI operation {name.rsplit('/', 1)[-1]} on {resource.name}, started by an earlier command", check, pace)

    def read_prices(self, offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
        from providers.gcp_prices import read_prices

        return read_prices(offers, get_json)

    def credentials_configured(self) -> bool:
        """Application Default Credentials: the file GOOGLE_APPLICATION_CREDENTIALS names, or the one
        `gcloud auth application-default login` writes."""
        return any_configured(
            ("GOOGLE_APPLICATION_CREDENTIALS",),
            (Path(os.environ.get("CLOUDSDK_CONFIG", "~/.config/gcloud")) / "application_default_credentials.json",),
        )

    def quota(self, plan: Plan) -> Quota | None:
        """Vertex AI's custom model serving GPU quota for the accelerator in the region, read from the
        Cloud Quotas API (google/api/cloudquotas/v1: quotaInfos, a region's value in dimensionsInfos).
        It counts GPUs (accelerator count x replicas), as gcloud's Model Garden check does
        (googlecloudsdk/command_lib/ai/model_garden_utils.py); the API reports no usage."""
        quota_id = SERVING_QUOTAS.get(ACCELERATOR_TYPES.get(plan.offer.gpu, ""))
        if quota_id is None:
            return None
        settings = self.settings(plan)
        _, _, session = self._clients(plan.region, settings)
        url = f"{CLOUD_QUOTAS}/v1/projects/{settings['project']}/locations/global/services/aiplatform.googleapis.com/quotaInfos/{quota_id}"
        with _translated():
            info = answer_of(lambda: session.get(url, timeout=60), "the Cloud Quotas API")
        infos = info.get("dimensionsInfos", [])
        regional = next((d for d in infos if d.get("dimensions", {}).get("region") == plan.region), None)
        chosen = regional or next((d for d in infos if plan.region in d.get("applicableLocations", []) or not d.get("dimensions")), None)
        if chosen is None:
            return None
        metric = info.get("metric", quota_id)
        return Quota(
            name=metric,
            limit=float(chosen.get("details", {}).get("value") or 0),  # int64 as a string, absent when 0
            used=None,
            needed=plan.deployment.autoscaling.min_replicas * plan.offer.gpu_count * plan.layout.nodes,
            unit="GPUs",
            request=f"request more at https://console.cloud.google.com/iam-admin/quotas?metric={metric} (region {plan.region}), "
            "see https://cloud.google.com/vertex-ai/docs/quotas#requesting_additional_quota",
        )

    def describe(self, deployed: Deployed) -> LiveStatus:
        models, endpoints, _ = self._clients(deployed.region, deployed.settings)
        parent = f"projects/{deployed.settings['project']}/locations/{deployed.region}"
        names = {r.type: r.name for r in deployed.resources}
        model_name, endpoint_name = f"{parent}/models/{names[MODEL]}", f"{parent}/endpoints/{deployed.deployment}"
        with _translated():
            model = _optional(lambda: models.get_model(name=model_name))
            endpoint = _optional(lambda: endpoints.get_endpoint(name=endpoint_name))
        serving = next((d for d in endpoint.deployed_models if _same_resource(d.model, model_name)), None) if endpoint else None
        missing = [
            f"{kind} {names[kind]}" for kind, present in ((MODEL, model), (ENDPOINT, endpoint), (DEPLOYED_MODEL, serving)) if kind in names and not present
        ]
        if serving is None:
            return LiveStatus(LiveState.MISSING, missing=tuple(missing))
        dedicated = serving.dedicated_resources
        share = endpoint.traffic_split.get(serving.id, 0)
        # DeployedModel.status.available_replica_count: replicas up now (set once Vertex reports it).
        available = serving.status.available_replica_count if type(serving).pb(serving).HasField("status") else None
        state = LiveState.INACTIVE if share == 0 else LiveState.PROVISIONING if available == 0 else LiveState.SERVING
        return LiveStatus(
            state=state,
            replicas=available,
            min_replicas=dedicated.min_replica_count,
            max_replicas=dedicated.max_replica_count,
            instance_type=dedicated.machine_spec.machine_type,
            missing=tuple(missing),
        )

    def scale(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """`mutateDeployedModel`, which changes a deployed model's replica bounds and autoscaling
        target in place; the mask names only fields it may mutate (v1beta1 MutateDeployedModelRequest)."""
        from google.cloud import aiplatform_v1beta1 as vertex

        _, endpoints, _ = self._clients(deployed.region, deployed.settings)
        parent = f"projects/{deployed.settings['project']}/locations/{deployed.region}"
        mask = {"paths": ["dedicated_resources.min_replica_count", "dedicated_resources.max_replica_count", "dedicated_resources.autoscaling_metric_specs"]}
        bounds = plan.deployment.autoscaling
        specs = [vertex.AutoscalingMetricSpec(metric_name=REQUESTS_METRIC, target=_requests_target(plan))]
        deployed_model = next(r for r in deployed.resources if r.type == DEPLOYED_MODEL)
        model_id = next(r.name for r in deployed.resources if r.type == MODEL)
        with _translated():
            self._settle(events, endpoints, deployed_model, Pace.MINUTES)  # a mutate an earlier command left running ends first
            endpoint = endpoints.get_endpoint(name=f"{parent}/endpoints/{deployed.deployment}")
            for model in (m for m in endpoint.deployed_models if m.model.rsplit("/", 1)[-1] == model_id):
                model.dedicated_resources.min_replica_count, model.dedicated_resources.max_replica_count = bounds.min_replicas, bounds.max_replicas
                model.dedicated_resources.autoscaling_metric_specs = specs
                operation = endpoints.mutate_deployed_model(endpoint=endpoint.name, deployed_model=model, update_mask=mask)
                self._wait(events, deployed_model, f"scaling Vertex AI deployed model {model.id}", operation)

    def retag(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """The labels of the endpoint and the model, with UpdateEndpoint and UpdateModel and an
        update mask of `labels` (a deployed model carries no labels of its own)."""
        from google.cloud import aiplatform_v1beta1 as vertex

        models, endpoints, _ = self._clients(deployed.region, deployed.settings)
        parent = f"projects/{deployed.settings['project']}/locations/{deployed.region}"
        labels, mask = _labels(resource_tags(plan)), {"paths": ["labels"]}
        with _translated():
            for resource in deployed.resources:
                if resource.type == ENDPOINT:
                    endpoints.update_endpoint(endpoint=vertex.Endpoint(name=f"{parent}/endpoints/{resource.name}", labels=labels), update_mask=mask)
                elif resource.type == MODEL:
                    models.update_model(model=vertex.Model(name=f"{parent}/models/{resource.name}", labels=labels), update_mask=mask)

    def destroy(self, deployed: Deployed, events: Events) -> None:
        """Undeploy what is listed (with its endpoint: every model deployed to it; alone: the one
        deployed model), then delete the endpoint and the models listed."""
        models, endpoints, _ = self._clients(deployed.region, deployed.settings)
        parent = f"projects/{deployed.settings['project']}/locations/{deployed.region}"
        by_type = {r.type: r for r in deployed.resources}
        endpoint_name = f"{parent}/endpoints/{deployed.deployment}"
        with _translated():
            for resource in deployed.resources:  # an undeploy or delete an earlier `down` left running ends first
                self._settle(events, endpoints, resource, Pace.MINUTES if resource.type == DEPLOYED_MODEL else Pace.SECONDS)
            endpoint = _optional(lambda: endpoints.get_endpoint(name=endpoint_name))
            if endpoint is not None and by_type.keys() & {ENDPOINT, DEPLOYED_MODEL}:
                served = by_type.get(DEPLOYED_MODEL) or Resource(DEPLOYED_MODEL, f"{deployed.deployment}/{deployed.deployment}")
                going = [m for m in endpoint.deployed_models if ENDPOINT in by_type or m.model.rsplit("/", 1)[-1] == served.name.split("/")[1]]
                split = dict(endpoint.traffic_split)
                for model in sorted(going, key=lambda m: split.get(m.id, 0)):  # those without traffic first
                    # A deployed model with traffic is undeployed only by a split that takes it off
                    # (UndeployModelRequest.traffic_split): the rest, as aiplatform's Endpoint._undeploy sends it.
                    split.pop(model.id, None)
                    operation = _optional(
                        lambda m=model, rest=dict(split): endpoints.undeploy_model(endpoint=endpoint_name, deployed_model_id=m.id, traffic_split=rest)
                    )
                    if operation is not None:
                        self._wait(events, served, f"undeploying {model.display_name} from Vertex AI endpoint {deployed.deployment}", operation, Pace.MINUTES)
                if ENDPOINT in by_type:
                    self._wait_if_any(
                        events, by_type[ENDPOINT], f"deleting Vertex AI endpoint {deployed.deployment}", lambda: endpoints.delete_endpoint(name=endpoint_name)
                    )
            if MODEL in by_type:
                model = by_type[MODEL]
                self._wait_if_any(events, model, f"deleting Vertex AI model {model.name}", lambda: models.delete_model(name=f"{parent}/models/{model.name}"))

    def _wait_if_any(self, events: Events, resource: Resource, what: str, start: Callable[[], Any]) -> None:
        operation = _optional(start)
        if operation is not None:
            self._wait(events, resource, what, operation)

    def remaining(self, deployed: Deployed) -> list[Resource]:
        from google.cloud import aiplatform_v1beta1 as vertex

        models, endpoints, _ = self._clients(deployed.region, deployed.settings)
        parent = f"projects/{deployed.settings['project']}/locations/{deployed.region}"
        label = f"labels.{DEPLOYMENT_TAG}={deployed.deployment}"
        with _translated():
            left = [
                Resource(MODEL, m.name.rsplit("/", 1)[-1])
                for m in models.list_models(request=vertex.ListModelsRequest(parent=parent, filter=label))
                if m.labels.get(DEPLOYMENT_TAG) == deployed.deployment
            ]
            left += [
                Resource(ENDPOINT, e.name.rsplit("/", 1)[-1])
                for e in endpoints.list_endpoints(request=vertex.ListEndpointsRequest(parent=parent, filter=label))
                if e.labels.get(DEPLOYMENT_TAG) == deployed.deployment
            ]
        return left

    def endpoint(self, deployed: Deployed) -> Endpoint:
        insecure = " -k" if deployed.settings.get("psc_address") else ""  # a forwarding rule's self-signed certificate
        return Endpoint(
            url=deployed.url,
            auth="Google OAuth2 access token with aiplatform.endpoints.predict (gcloud auth print-access-token)",
            example=(
                f'curl -sS{insecure} -X POST {deployed.url} -H "Authorization: Bearer $(gcloud auth print-access-token)" '
                f"-H 'Content-Type: application/json' -d '{example_body()}'"
            ),
        )

    def invoke(self, deployed: Deployed, request: Mapping[str, Any]) -> Any:
        """`rawPredict`: the body reaches the container's predict route (vLLM's chat completions) as
        sent, and its answer comes back as it is. Sent as google-cloud-aiplatform's own
        `Endpoint.raw_predict` sends it (aiplatform/models.py): a POST of the raw body through an
        AuthorizedSession, since the GAPIC REST transport wraps both bodies in an HttpBody message."""
        _, _, session = self._clients(deployed.region, deployed.settings)
        body, headers = json.dumps(dict(request)), {"Content-Type": "application/json"}
        # A Private Service Connect address serves a self-signed certificate: the SDK's own
        # PrivateEndpoint.raw_predict posts there with verify=False (aiplatform/models.py), and so
        # does this, without urllib3's warning on every call.
        if "psc_address" in deployed.settings and not deployed.settings["psc_address"]:
            raise UnreachableError(
                f"Vertex AI endpoint {deployed.deployment} is reached only through a forwarding rule you made to its service attachment, at an address "
                "llamadeploy does not know (placement.gcp.private_service_connect_network has Vertex AI make one whose address it reads)"
            )
        verify = not deployed.settings.get("psc_address")
        with _translated(), warnings.catch_warnings():
            if not verify:
                from urllib3.exceptions import InsecureRequestWarning

                warnings.simplefilter("ignore", InsecureRequestWarning)
            return answer_of(
                lambda: session.post(deployed.url, data=body, headers=headers, timeout=(CONNECT_TIMEOUT_S, 600), verify=verify),
                f"Vertex AI endpoint {deployed.deployment}",
            )

    def contract(self, plan: Plan) -> ServingContract:
        multi = " through the image's Ray launcher (one replica over several hosts)" if plan.layout.nodes > 1 else ""
        return ServingContract(
            image=plan.deployment.serving.image or MODEL_GARDEN_VLLM_IMAGE,
            started=f"the image's entrypoint runs the command line given as the model's args{multi}: vLLM's OpenAI server on port {SERVING_PORT}",
            route=f"POST {_route_host(plan)}/v1/projects/<project>/locations/{plan.region}/endpoints/<id>:rawPredict "
            f"(Google OAuth2) -> {CHAT_ROUTE} on port {SERVING_PORT}",
            scaling=ScalingSignal(
                REQUESTS_METRIC,
                _requests_target(plan),
                "requests per minute per replica",
                f"{plan.deployment.target_concurrent_requests} in flight at the throughput model's request time",
            ),
            startup_limit_s=MAX_DEPLOYMENT_SECONDS,
            startup_setting="ModelContainerSpec.deployment_timeout (at most 2 hours)",
            needs=(
                *(
                    (f"placement.gcp.service_account, which the container runs as, must read {plan.weights} (roles/storage.objectViewer on the bucket)",)
                    if plan.weights
                    else ()
                ),
                # A model's container has no secret reference: ModelContainerSpec.env takes EnvVar
                # (name, value) only; SecretEnvVar (a Secret Manager reference) is for Reasoning Engine
                # (aiplatform_v1beta1 types env_var.py). Google's own custom vLLM deployment passes
                # HF_TOKEN in the container environment (GoogleCloudPlatform/vertex-ai-samples:
                # notebooks/community/model_garden/model_garden_huggingface_vllm_deployment.ipynb,
                # "Deploy with customized configs"). Model Garden's Deploy API takes a token apart
                # (DeployRequest.ModelConfig.hugging_face_access_token), but every Deploy makes a new
                # endpoint (its EndpointConfig names no existing one), which the blue/green replace on
                # the same endpoint cannot use, and no vendor sample pairs it with a custom container.
                *secrets_exposed(
                    plan,
                    "the model's container environment",
                    "GetModel (containerSpec.env)",
                    " (ModelContainerSpec has no secret reference; Model Garden's Deploy takes a token apart but makes a new endpoint each time)",
                ),
            ),
        )

    def weights_store(self, uri: str, placement: Any) -> Any:
        from providers.gcp_weights import GcsWeightsStore

        project = placement.project if placement else None
        with _translated():
            client = self.client(("storage", project), lambda: _storage_client(project))
        return GcsWeightsStore(uri, client, _translated)


def _service_account(plan: Plan) -> str | None:
    placed = plan.deployment.placement.of("gcp")
    return placed.service_account if placed else None


def _storage_client(project: str | None) -> Any:
    """A Cloud Storage client, for reading the user's own weights."""
    from google.cloud import storage

    return storage.Client(project=project)


def _route_host(plan: Plan) -> str:
    """Where a call goes: the regional host, or a Private Service Connect endpoint's forwarding rule."""
    placed = plan.deployment.placement.of("gcp")
    if placed and placed.private_service_connect:
        made = (
            f"the forwarding rule Vertex AI makes in {placed.private_service_connect_network}"
            if placed.private_service_connect_network
            else "your forwarding rule"
        )
        return f"https://<{made}'s address>"
    return f"https://{plan.region}-aiplatform.googleapis.com"


def _psc_network(plan: Plan) -> str | None:
    placed = plan.deployment.placement.of("gcp")
    return placed.private_service_connect_network if placed else None


def _private_service_connect(plan: Plan) -> Any:
    """The endpoint's Private Service Connect configuration, where the placement asks for one."""
    from google.cloud import aiplatform_v1beta1 as vertex

    placed = plan.deployment.placement.of("gcp")
    if not (placed and placed.private_service_connect):
        return None
    network = placed.private_service_connect_network
    automation = [vertex.PSCAutomationConfig(project_id=network.split("/")[1], network=network)] if network else []
    return vertex.PrivateServiceConnectConfig(
        enable_private_service_connect=True, project_allowlist=list(placed.private_service_connect), psc_automation_configs=automation
    )


def _container(plan: Plan) -> dict[str, Any]:
    """The serving container, as both `apply` and an exported program declare it (secrets apart)."""
    command = ["python", *OPENAI_SERVER[1:], "--host=0.0.0.0", f"--port={SERVING_PORT}", *_vllm_arguments(plan)]
    return {
        "image": plan.deployment.serving.image or MODEL_GARDEN_VLLM_IMAGE,
        "args": [RAY_LAUNCHER, *command] if plan.layout.nodes > 1 else command,
        "env": dict(plan.deployment.serving.env),
        "port": SERVING_PORT,
        "predict_route": CHAT_ROUTE,
        "health_route": HEALTH_ROUTE,
        "shared_memory_size_mb": SHARED_MEMORY_MB,
        "deployment_timeout_s": startup(plan).timeout(MAX_DEPLOYMENT_SECONDS),
    }


def _vllm_arguments(plan: Plan) -> list[str]:
    """vLLM's options; a replica over several hosts splits its GPUs into pipeline stages, one per
    host, with tensor parallelism inside each (the DeepSeek multi-host recipe: TP = GPUs x hosts / PP)."""
    arguments = vllm_arguments(plan)
    if plan.layout.nodes > 1:
        arguments += ["--pipeline-parallel-size", str(plan.layout.nodes)]
    return arguments


def _requests_target(plan: Plan) -> int:
    """Vertex AI's request_count target is a whole number of requests per minute per replica."""
    return max(1, round(target_requests_per_minute(plan)))


def _same_resource(name: str, wanted: str) -> bool:
    """Whether two resource names are the same resource: Vertex AI answers with the project NUMBER
    in names whichever form the request used, so compare all but the project."""
    return name.split("/")[2:] == wanted.split("/")[2:]


def _labels(tags: dict[str, str]) -> dict[str, str]:
    """GCP labels allow lowercase letters, digits, '_' and '-', up to 63 characters."""
    return {_LABEL_INVALID.sub("_", k.lower())[:63]: _LABEL_INVALID.sub("_", v.lower())[:63] for k, v in tags.items()}


def _deployed_model_id(endpoint: Any, model_id: str) -> str | None:
    return next((d.id for d in endpoint.deployed_models if d.model.rsplit("/", 1)[-1] == model_id), None)


def _no_retry() -> Any:
    """A Retry that retries nothing: an operation's refresh otherwise goes through the operations
    client's default retry (UNAVAILABLE retried for minutes, google-api-core operations_v1), and the
    engine alone retries, at its own pace, on every cloud."""
    from google.api_core.retry import Retry

    return Retry(predicate=lambda _: False)


def _make_clients(endpoint: str) -> tuple[Any, Any, Any]:
    """A ModelServiceClient and an EndpointServiceClient for the region, over REST, and an
    AuthorizedSession for prediction calls, all on one set of credentials."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import aiplatform_v1beta1 as vertex

    with _translated():
        credentials, _ = google.auth.default(scopes=_SCOPES)
    options = {"api_endpoint": endpoint}
    return (
        vertex.ModelServiceClient(credentials=credentials, transport="rest", client_options=options),
        vertex.EndpointServiceClient(credentials=credentials, transport="rest", client_options=options),
        AuthorizedSession(credentials),
    )


WORDS = ErrorWords(
    "Vertex AI",
    capacity_words=("enough resources", "stockout", "capacity"),
    quota_advice="request more in IAM & Admin > Quotas, or plan another machine or cloud",
)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn google-api-core's and google-auth's exceptions into llamadeploy's typed provider errors."""
    import requests
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    try:
        yield
    except ProviderError:
        raise
    except (requests.ConnectionError, requests.Timeout, auth.TransportError) as exc:  # the REST transport does not wrap these
        raise TransientError(f"cannot reach Vertex AI: {exc}") from exc
    except api.NotFound as exc:
        raise NotFoundError(exc.message) from exc
    except (api.Unauthenticated, api.PermissionDenied, api.Unauthorized, api.Forbidden) as exc:  # gRPC-style and HTTP-style
        raise AuthError(f"Google denied the request ({exc.message}); check `gcloud auth application-default login` and roles/aiplatform.user") from exc
    except api.GoogleAPICallError as exc:
        raise classify(WORDS, exc.code, "", str(exc.message)) from exc
    except auth.DefaultCredentialsError as exc:
        raise AuthError(f"no Google credentials found: run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS ({exc})") from exc
    except auth.GoogleAuthError as exc:
        raise AuthError(f"Google refused the credentials: {exc}") from exc


_optional = partial(if_exists, translated=_translated)
_exists = partial(exists, translated=_translated)
