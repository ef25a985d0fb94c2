"""Azure: an Azure ML managed online endpoint and deployment running a vLLM environment,
autoscaled by an Azure Monitor autoscale setting.

An online deployment cannot override its container's command, and the stock vLLM image reads no
environment variable naming the model (its ENTRYPOINT starts vLLM's default model). So, as
the vLLM walkthrough for Azure ML managed online endpoints does, the environment is built by Azure
ML from a Dockerfile `FROM vllm/vllm-openai` whose shell-form ENTRYPOINT passes
`--model $MODEL_NAME $VLLM_ARGS`, and the deployment sets those two variables ("Deploying vLLM
models on Azure Machine Learning with Managed Online Endpoints", Clemens Siebler, the walkthrough
Microsoft's community blog carries, by the issue's account; its code in csiebler/csiebler.github.io;
that it is Microsoft's own could not be confirmed offline). azure-ai-ml uploads the build context to the workspace's
default datastore (azure/ai/ml/_artifacts/_artifact_utilities.py, _check_and_upload_env_build_context).

azure-ai-ml, azure-mgmt-monitor and azure-identity are imported inside the methods that call
Azure. Credentials come from DefaultAzureCredential (environment, workload identity, managed
identity, Azure CLI, ...). `placement.azure.endpoint` replaces the resource-manager URL, for
sovereign clouds and private endpoints. Secrets go into one workspace connection each, and
the deployment references them (`${{azureml://connections/...}}`), so no deployment
property, log or state file ever holds them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import os
import re
import shlex
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from orchestrator.declared.secrets import resolve_secrets
from orchestrator.declared.spec import Deployment, PlacementBase
from orchestrator.planning.serving import (
    CHAT_ROUTE,
    HEALTH_ROUTE,
    SCALE_IN_SHARE,
    VLLM_IMAGE,
    VLLM_PORT,
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
    create_or_adopt,
    exists,
    gone_after_delete,
    if_exists,
    resource_tags,
)

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from orchestrator.pricing.catalog import Offer

_WORKSPACE = "Microsoft.MachineLearningServices/workspaces"
ENVIRONMENT = f"{_WORKSPACE}/environments/versions"
CONNECTION = f"{_WORKSPACE}/connections"
ENDPOINT = f"{_WORKSPACE}/onlineEndpoints"
DEPLOYMENT = f"{_WORKSPACE}/onlineEndpoints/deployments"
MODEL = f"{_WORKSPACE}/models/versions"
# The user's own weights: a folder on a workspace datastore, registered as a custom model asset
# (azureml://datastores/<datastore>/paths/<folder>/ is a model path Azure ML takes: "Supported
# paths" in how-to-manage-models; a plain blob URL is not one). The deployment names the asset;
# Azure ML mounts it read-only at AZUREML_MODEL_DIR = /var/azureml-app/azureml-models/<name>/<version>,
# a registered folder under its own name there (concept-online-deployment-model-specification;
# how-to-deploy-custom-container's TF Serving example serves .../tfserving-mounted/1/half_plus_two;
# a datastore folder the same way: Azure/azureml-examples cli/deploy-rest.sh registers
# azureml://datastores/<datastore>/paths/model and its score.py loads AZUREML_MODEL_DIR/model/...).
MODEL_DIR = "/var/azureml-app/azureml-models"
MODEL_VERSION = "1"  # one asset per location: a new location is a new asset name
_DATASTORE_PATH = re.compile(r"^azureml://datastores/(?P<datastore>[A-Za-z0-9_]+)/paths/(?P<folder>(?:[^/]+/)+)$")
AUTOSCALE = "Microsoft.Insights/autoscaleSettings"
DEPLOYMENT_NAME = "vllm"
PUBLIC_RESOURCE_MANAGER = "https://management.azure.com"
# The walkthrough's environment routes: health on vLLM's /health, scoring on "/", so the scoring
# host passes vLLM's OpenAI paths through (it calls <scoring host>/v1/completions).
ROUTES = {"liveness_route": HEALTH_ROUTE, "readiness_route": HEALTH_ROUTE, "scoring_route": "/"}
DOCKERFILE = "FROM {image}\nENTRYPOINT python3 -m vllm.entrypoints.openai.api_server --model $MODEL_NAME $VLLM_ARGS\n"
# Weights download and load before the probes may fail: the startup estimate, with a margin.
PROBE = {"period_s": 10, "timeout_s": 5, "failure_threshold": 30}
ASSET_API_VERSION = "2023-04-01"
DEPLOYMENT_API_VERSION = "2024-04-01"  # a GA version of Microsoft.MachineLearningServices with OnlineDeployments_Update (PATCH)
# An online endpoint's name is 3-32 letters, digits and single dashes, starting with a letter, and
# unique within the Azure region (its scoring host is <name>.<region>.inference.ml.azure.com):
# learn.microsoft.com/azure/machine-learning/how-to-manage-quotas, "Azure Machine Learning online endpoints".
ENDPOINT_NAME_MAX = 32
REQUEST_TIMEOUT_MS = 180_000  # the most Azure ML allows (request_settings.request_timeout_ms)
SECRET_TARGET = "https://huggingface.co"  # what a workspace connection holding a serving secret is for
# Secret injection (${{azureml://connections/...}} in a deployment's environment) needs the endpoint
# created with this property ("Secret injection in online endpoints", how-to-deploy-online-endpoint-with-secret-injection).
SECRET_STORE_ACCESS = {"enforce_access_to_default_secret_stores": "enabled"}
# Azure Monitor has no requests-in-flight metric for online deployments; the closest load signal
# is the deployment's RequestsPerMinute, divided per instance (a count metric, which
# divide_per_instance suits). Its target is the spec's concurrency target turned into a rate by
# Little's law with the throughput model's request time. Scale in below half of it.
SCALE_METRIC = "RequestsPerMinute"
SCALE_COOLDOWNS = {"Increase": "PT5M", "Decrease": "PT10M"}
_STATES: dict[str, LiveState] = {
    "Succeeded": LiveState.SERVING,
    "Creating": LiveState.PROVISIONING,
    "Updating": LiveState.PROVISIONING,
    "Scaling": LiveState.PROVISIONING,
    "Deleting": LiveState.DELETING,
    "Failed": LiveState.FAILED,
    "Canceled": LiveState.FAILED,
}


class AzurePlacement(PlacementBase):
    subscription_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
        description="use the subscription GUID, such as 00000000-0000-0000-0000-000000000000",
    )
    resource_group: str | None = None
    workspace: str | None = None
    endpoint: str | None = None
    # "disabled": the endpoint answers only through the workspace's private endpoint
    # (ManagedOnlineEndpoint.public_network_access; concept-secure-online-endpoint, "Secure inbound scoring requests").
    public_network_access: Literal["enabled", "disabled"] | None = None


class AzureProvider(Provider):
    name = "azure"
    placement_model = AzurePlacement
    pulumi_template = BUILTIN_TEMPLATES / "azure.py.j2"
    service = "Azure ML managed online endpoint"
    default_region = "eastus"
    required_placement = ("subscription_id", "resource_group", "workspace")
    sdk_modules = ("azure.ai.ml", "azure.identity", "azure.mgmt.monitor")
    # A second deployment on the endpoint, called alone, then the endpoint's traffic moved to it
    # (learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints).
    supports = frozenset({Feature.REPLACE_LIVE})
    weights_scheme = "azureml://datastores/"
    private_advice = (
        "placement.azure.public_network_access: disabled makes it answer only through the workspace's private endpoint "
        "(learn.microsoft.com/azure/machine-learning/concept-secure-online-endpoint)"
    )

    def reach(self, deployment: Deployment) -> str:
        # A managed online deployment's outbound goes through the workspace's managed virtual network
        # where it has one: to the internet in allow_internet_outbound mode, only to the rules approved
        # in allow_only_approved_outbound mode (learn.microsoft.com/azure/machine-learning/how-to-managed-network).
        outbound = "the container reaches out as the workspace's managed network allows (the internet, unless its mode is allow_only_approved_outbound)"
        if self.private_only(deployment):
            return f"only through the workspace's private endpoint (public_network_access disabled), with the endpoint key; {outbound}"
        return f"a public endpoint, behind the endpoint key; {outbound}"

    def private_only(self, deployment: Deployment) -> str | None:
        placed = deployment.placement.of("azure")
        disabled = placed is not None and placed.public_network_access == "disabled"
        return "public_network_access is disabled: it answers only through the workspace's private endpoint" if disabled else None

    def weights_problem(self, uri: str) -> str | None:
        if not _DATASTORE_PATH.match(uri):
            return "must be a folder on a workspace datastore, as azureml://datastores/<datastore>/paths/<folder>/ (ending in /), e.g. azureml://datastores/workspaceblobstore/paths/llama-ft/"
        return None

    def weights_path(self, plan: Plan) -> str | None:
        """The registered folder, under its own name in the model asset's mount."""
        if not plan.weights:
            return None
        folder = plan.weights.rstrip("/").rsplit("/", 1)[1]
        return f"{MODEL_DIR}/{_model_name(plan)}/{MODEL_VERSION}/{folder}"

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        dockerfile = _dockerfile(plan)
        endpoint = endpoint_name(plan)
        return [
            *(Resource(CONNECTION, _connection_name(name, secret), {"tags": tags}) for secret in plan.secrets),
            Resource(ENVIRONMENT, f"{name}-vllm:{_short_hash(dockerfile)}", {"dockerfile": dockerfile, "tags": tags}),
            *([Resource(MODEL, f"{_model_name(plan)}:{MODEL_VERSION}", {"path": plan.weights, "tags": tags})] if plan.weights else []),
            Resource(ENDPOINT, endpoint, {"auth_mode": "key", "tags": tags}),
            Resource(
                DEPLOYMENT,
                f"{endpoint}/{plan.named(DEPLOYMENT_NAME)}",
                {
                    "instance_type": plan.offer.instance_type,
                    "instance_count": scaling.min_replicas,
                    "max_concurrent_requests_per_instance": plan.deployment.concurrency,
                    "probe_initial_delay_s": startup(plan).timeout(None),
                    "tags": tags,
                },
            ),
            Resource(AUTOSCALE, plan.named(f"{name}-autoscale"), {"minimum": scaling.min_replicas, "maximum": scaling.max_replicas, "tags": tags}),
        ]

    def program(self, plan: Plan) -> Program:
        by_type = {r.type: r for r in self.resources(plan)}
        environment, endpoint, online, autoscale = by_type[ENVIRONMENT], by_type[ENDPOINT], by_type[DEPLOYMENT], by_type[AUTOSCALE]
        name, secrets = plan.deployment.name, tuple(plan.secrets)
        placed = plan.deployment.placement.of("azure")
        known = {key: getattr(placed, key) for key in ("subscription_id", "resource_group", "workspace")} if placed else {}
        env_name, env_version = environment.name.split(":")
        return Program(
            requirements=("pulumi-azure-native>=3.0,<4",),
            config={
                **({"azure-native:subscriptionId": known["subscription_id"]} if known else {}),
                **{f"llamadeploy:{key}": value for key, value in known.items() if key != "subscription_id"},
            },
            required_config=("azure-native:subscriptionId", "llamadeploy:resource_group", "llamadeploy:workspace"),
            secrets=secrets,
            values={
                "location": plan.region,
                "endpoint": endpoint.name,
                "deployment": online.name.split("/")[1],
                "environment": env_name,
                "environment_version": env_version,
                "dockerfile": environment.properties["dockerfile"],
                "model": _model_values(by_type.get(MODEL)),
                "port": VLLM_PORT,
                "routes": ROUTES,
                "connections": {secret: _connection_name(name, secret) for secret in secrets},
                "secret_target": SECRET_TARGET,
                "endpoint_properties": SECRET_STORE_ACCESS if secrets else {},
                "public_network_access": "Disabled" if self.private_only(plan.deployment) else None,
                "instance_type": online.properties["instance_type"],
                "instance_count": online.properties["instance_count"],
                "environment_variables": {**_environment(plan), **{s: _secret_reference(name, s) for s in secrets}},
                "max_concurrent_requests_per_instance": online.properties["max_concurrent_requests_per_instance"],
                "request_timeout": f"PT{REQUEST_TIMEOUT_MS // 1000}S",
                "probe_initial_delay": f"PT{online.properties['probe_initial_delay_s']}S",
                "probe_period": f"PT{PROBE['period_s']}S",
                "probe_timeout": f"PT{PROBE['timeout_s']}S",
                "probe_failure_threshold": PROBE["failure_threshold"],
                "autoscale": autoscale.name,
                "minimum": str(autoscale.properties["minimum"]),
                "maximum": str(autoscale.properties["maximum"]),
                "scale_rules": _scale_rules(plan),
                "tags": resource_tags(plan),
            },
        )

    def read_prices(self, offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
        from providers.azure_prices import read_prices

        return read_prices(offers, get_json)

    def contract(self, plan: Plan) -> ServingContract:
        target = target_requests_per_minute(plan)
        return ServingContract(
            image=f"built by Azure ML from the Dockerfile: {' | '.join(_dockerfile(plan).strip().splitlines())}",
            started="the built image's shell-form ENTRYPOINT runs vLLM with --model $MODEL_NAME $VLLM_ARGS, which the deployment sets",
            route=f"POST https://<endpoint>.{plan.region}.inference.ml.azure.com{CHAT_ROUTE} (endpoint key) -> the same path on port {VLLM_PORT} (scoring route /)",
            scaling=ScalingSignal(
                f"{SCALE_METRIC} (per instance)",
                round(target, 1),
                "requests per minute per instance",
                f"Azure Monitor has no requests-in-flight metric; {plan.deployment.target_concurrent_requests} in flight "
                "at the throughput model's request time",
            ),
            startup_limit_s=None,
            startup_setting="readiness probe initial delay (Azure ML documents no maximum)",
            # The endpoint's system-assigned identity mounts the model asset: Azure ML grants it Storage
            # Blob Data Reader on the workspace's default storage only (concept-endpoints-online-auth,
            # "Automatic role assignment for endpoint identity").
            needs=(
                (
                    f"the endpoint's identity must read {plan.weights}: Azure ML grants it Storage Blob Data Reader on the workspace's "
                    "default storage (workspaceblobstore); a datastore on another storage account needs that role granted there",
                )
                if plan.weights
                else (
                    f"a workspace whose managed network, if any, lets the container download {plan.hf_repo} from the Hugging Face Hub: in "
                    "allow_only_approved_outbound mode, FQDN outbound rules for the Hub (learn.microsoft.com/azure/machine-learning/how-to-managed-network), "
                    "or weights.azure, which the service mounts itself (no Hub rule)",
                )
            ),
        )

    def settings(self, plan: Plan) -> dict[str, Any]:
        placed = plan.deployment.placement.of("azure")
        assert placed is not None
        return _settings_of(placed)

    def weights_store(self, uri: str, placement: Any) -> Any:
        from providers.azure_weights import BlobWeightsStore

        folder, container = self._datastore_folder(uri, placement)
        return BlobWeightsStore(uri, container, folder, _translated)

    def _datastore_folder(self, uri: str, placement: Any) -> tuple[str, Any]:
        """The folder's blob name prefix and a client of the datastore's blob container: with the
        datastore's account key where it keeps one (what azure-ai-ml itself uploads with), else
        with the caller's own Azure credential (an identity-based datastore)."""
        from azure.ai.ml.entities import AzureBlobDatastore

        match = _DATASTORE_PATH.match(uri)
        if match is None or placement is None or not all(getattr(placement, key) for key in self.required_placement):
            raise ProviderError(f"weights.azure {uri}: placement.azure needs subscription_id, resource_group and workspace to read the datastore")
        settings = _settings_of(placement)
        ml, _, _ = self._clients(settings)
        with _translated(), _quiet_stdout():
            datastore = ml.datastores.get(match["datastore"], include_secrets=True)
        if not isinstance(datastore, AzureBlobDatastore):
            raise ProviderError(f"weights.azure {uri}: datastore {match['datastore']} is not on Azure Blob storage; put the checkpoint on a blob datastore")
        return match["folder"], self.client(("blob", repr(sorted(settings.items())), match["datastore"]), lambda: _container_client(datastore))

    def _clients(self, settings: Mapping[str, Any]) -> tuple[Any, Any, Any]:
        """The workspace's MLClient, MonitorManagementClient and ARM client."""
        reach = {k: v for k, v in settings.items() if k != "deployment"}  # a probe's pinned deployment reaches the same workspace
        return self.client(repr(sorted(reach.items())), lambda: _make_clients(reach))

    def apply(self, plan: Plan, events: Events) -> Deployed:
        deployed = self._made(plan, events)
        self.switch(deployed, plan, events)
        return deployed

    def stage(self, deployed: Deployed, plan: Plan, events: Events) -> Staged:
        """A second deployment (`vllm-<variant>`) on the same endpoint, with its own autoscale
        setting; Azure ML gives a new deployment no traffic. The probe calls it alone with the
        `azureml-model-deployment` header, as the safe-rollout walkthrough tests green before
        moving traffic (azure/ai/ml/constants/_endpoint.py, EndpointInvokeFields.MODEL_DEPLOYMENT)."""
        staged = self._made(plan, events)
        name = _deployment_of(staged)
        return Staged(staged, probe=replace(staged, settings={**staged.settings, "deployment": name}))

    def switch(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """All of the endpoint's traffic to the deployment `deployed` holds (the endpoint PUT with
        `traffic: {name: 100}`, as the walkthrough's `endpoint.traffic = {"green": 100}`), and the
        endpoint's public network access as `plan` declares it: Azure ML toggles it on a live
        endpoint (concept-secure-online-endpoint, "Secure inbound scoring requests"). Set here, with
        the traffic, so a replace changes it only once its new variant answered, and going back
        (`switch` to the old variant with the old plan) sets it back."""
        ml, _, _ = self._clients(deployed.settings)
        endpoint, name = next(r.name for r in deployed.resources if r.type == ENDPOINT), _deployment_of(deployed)
        placed = plan.deployment.placement.of("azure")
        access = (placed.public_network_access if placed else None) or "enabled"
        events.wait(f"Azure ML endpoint {endpoint} to settle", lambda: _provisioned(ml.online_endpoints.get(endpoint)))  # an update a dead run began
        with _translated(), _quiet_stdout():
            live = ml.online_endpoints.get(endpoint)
            routed = {k: v for k, v in (live.traffic or {}).items() if v} == {name: 100}
            if not routed or (live.public_network_access or "enabled").lower() != access:
                live.traffic, live.public_network_access = {name: 100}, access
                events.wait(f"Azure ML traffic to {endpoint}/{name}", _poller_check(ml.online_endpoints.begin_create_or_update(live)))

    def _made(self, plan: Plan, events: Events) -> Deployed:
        """Everything `plan` has, made or adopted and provisioned, but no traffic moved."""
        from azure.ai.ml.entities import (
            ApiKeyConfiguration,
            BuildContext,
            DefaultScaleSettings,
            Environment,
            IdentityConfiguration,
            ManagedOnlineDeployment,
            ManagedOnlineEndpoint,
            Model,
            OnlineRequestSettings,
            ProbeSettings,
            WorkspaceConnection,
        )

        deployment, settings = plan.deployment, self.settings(plan)
        ml, monitor, _arm = self._clients(settings)
        placed = deployment.placement.of("azure")
        access = placed.public_network_access if placed else None
        by_type = {(r.type, r.name): r for r in self.resources(plan)}
        tags = resource_tags(plan)
        name = deployment.name
        secrets = resolve_secrets(deployment, bool(plan.weights))
        environment = next(r for (t, _), r in by_type.items() if t == ENVIRONMENT)
        env_name, env_version = environment.name.split(":")
        endpoint = next(r for (t, _), r in by_type.items() if t == ENDPOINT)
        online = next(r for (t, _), r in by_type.items() if t == DEPLOYMENT)
        deployment_name = online.name.split("/")[1]
        probe = ProbeSettings(
            initial_delay=online.properties["probe_initial_delay_s"],
            period=PROBE["period_s"],
            timeout=PROBE["timeout_s"],
            failure_threshold=PROBE["failure_threshold"],
        )

        with _translated(), _quiet_stdout(), tempfile.TemporaryDirectory(prefix="llamadeploy-azure-") as context:
            for secret, value in secrets.items():
                connection = by_type[(CONNECTION, _connection_name(name, secret))]
                existed = _exists(lambda c=connection: ml.connections.get(c.name))
                # Written either way, so a rotated secret reaches the deployment; one that existed
                # is adopted, so a failed run never deletes the secret a live deployment reads.
                ml.connections.create_or_update(
                    WorkspaceConnection(name=connection.name, type="custom", target=SECRET_TARGET, credentials=ApiKeyConfiguration(key=value), metadata=tags)
                )
                (events.adopted if existed else events.created)(connection)
            (Path(context) / "Dockerfile").write_text(environment.properties["dockerfile"])
            create_or_adopt(
                environment,
                lambda: _exists(lambda: ml.environments.get(env_name, version=env_version)),
                lambda: ml.environments.create_or_update(
                    Environment(
                        name=env_name,
                        version=env_version,
                        build=BuildContext(path=context),
                        tags=tags,
                        inference_config={route: {"port": VLLM_PORT, "path": path} for route, path in ROUTES.items()},
                    )
                ),
                events,
            )
            model = next((r for (t, _), r in by_type.items() if t == MODEL), None)
            if model is not None:
                model_name, model_version = model.name.split(":")
                create_or_adopt(
                    model,
                    lambda: _exists(lambda: ml.models.get(model_name, version=model_version)),
                    lambda: ml.models.create_or_update(
                        Model(name=model_name, version=model_version, path=model.properties["path"], type="custom_model", tags=tags)
                    ),
                    events,
                )
            self._create_and_wait(
                endpoint,
                events,
                lambda: ml.online_endpoints.get(endpoint.name),
                lambda: ml.online_endpoints.begin_create_or_update(
                    ManagedOnlineEndpoint(
                        name=endpoint.name,
                        auth_mode="key",
                        tags=tags,
                        identity=IdentityConfiguration(type="system_assigned"),
                        properties=SECRET_STORE_ACCESS if secrets else None,
                        public_network_access=access,
                    )
                ),
            )
            self._create_and_wait(
                online,
                events,
                lambda: ml.online_deployments.get(deployment_name, endpoint_name=endpoint.name),
                lambda: ml.online_deployments.begin_create_or_update(
                    ManagedOnlineDeployment(
                        name=deployment_name,
                        endpoint_name=endpoint.name,
                        environment=f"azureml:{env_name}:{env_version}",
                        model=f"azureml:{model.name}" if model else None,
                        instance_type=plan.offer.instance_type,
                        instance_count=deployment.autoscaling.min_replicas,
                        environment_variables={**_environment(plan), **{s: _secret_reference(name, s) for s in secrets}},
                        request_settings=OnlineRequestSettings(
                            max_concurrent_requests_per_instance=deployment.concurrency, request_timeout_ms=REQUEST_TIMEOUT_MS
                        ),
                        liveness_probe=probe,
                        readiness_probe=probe,
                        scale_settings=DefaultScaleSettings(),
                        tags=tags,
                    )
                ),
                Pace.MINUTES,
            )
            live = ml.online_endpoints.get(endpoint.name)
            deployed_id = ml.online_deployments.get(deployment_name, endpoint_name=endpoint.name).id
            autoscale = next(r for (t, _), r in by_type.items() if t == AUTOSCALE)
            create_or_adopt(
                autoscale,
                lambda: _exists(lambda: monitor.autoscale_settings.get(settings["resource_group"], autoscale.name)),
                lambda: monitor.autoscale_settings.create_or_update(
                    settings["resource_group"], autoscale.name, _autoscale_setting(plan, deployed_id, live.location, tags)
                ),
                events,
            )
            scoring_uri = live.scoring_uri
        if not scoring_uri:
            raise ProviderError(f"Azure ML endpoint {endpoint.name} serves but reports no scoring URI")
        scoring = urlsplit(scoring_uri)
        url = f"{scoring.scheme}://{scoring.netloc}{CHAT_ROUTE}"
        return Deployed(name, self.name, plan.region, tuple(by_type.values()), url, settings)

    def _create_and_wait(self, resource: Resource, events: Events, get: Callable[[], Any], begin: Callable[[], Any], pace: Pace = Pace.SECONDS) -> None:
        """Create through an SDK poller, or adopt one that exists, and wait until it is provisioned;
        one an earlier `down` is still deleting is waited out and made anew."""
        what = f"Azure ML {resource.name}"
        created = create_or_adopt(resource, lambda: _presence(_optional(get)), begin, events, lambda poller: events.wait(what, _poller_check(poller), pace))
        if not created:
            events.wait(what, lambda: _provisioned(get()), pace)

    def credentials_configured(self) -> bool:
        """DefaultAzureCredential's chain: a service principal or workload identity in the
        environment, a managed identity endpoint, or an `az login` profile."""
        return any_configured(
            ("AZURE_CLIENT_ID", "AZURE_USERNAME", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"),
            (Path(os.environ.get("AZURE_CONFIG_DIR", "~/.azure")) / "azureProfile.json",),
        )

    def quota(self, plan: Plan) -> Quota | None:
        """Azure ML's dedicated cores for the instance's VM family in the region, which managed online
        deployments draw on, with the 20 % Azure ML reserves for upgrades on most sizes
        (learn.microsoft.com/azure/machine-learning/how-to-manage-quotas). The family and cores come
        from the service's own size list and the usage row is matched to it, as Microsoft's SDK does
        (azure-sdk-for-python sdk/ai/azure-ai-resources/.../_deployment_operations.py)."""
        ml, _, _ = self._clients(self.settings(plan))
        wanted = plan.offer.instance_type.lower()
        with _translated(), _quiet_stdout():
            size = next((s for s in ml.compute.list_sizes(location=plan.region) if (s.name or "").lower() == wanted), None)
            if size is None or not size.family:
                return None
            family = _family_key(size.family)
            usage = next((u for u in ml.compute.list_usage(location=plan.region) if _family_key(_usage_name(u, "value")) == family and _dedicated(u)), None)
        if usage is None:
            return None
        instances = plan.deployment.autoscaling.min_replicas
        reserved = instances if family in NO_UPGRADE_RESERVE else math.ceil(1.2 * instances)
        return Quota(
            name=f"{_usage_name(usage, 'value')} (dedicated cores)",
            limit=usage.limit,
            used=_field(usage, "current_value", "currentValue") or 0,
            needed=reserved * (_field(size, "v_cp_us", "vCPUs") or 0),
            unit="cores",
            request=f"request more in the Azure portal: the workspace's Usage + quotas, VM family {size.family} in {plan.region} (https://ml.azure.com/quota)",
        )

    def describe(self, deployed: Deployed) -> LiveStatus:
        ml, monitor, _ = self._clients(deployed.settings)
        names = {r.type: r.name for r in deployed.resources}
        endpoint_name = names[ENDPOINT]
        missing = [f"{kind} {name}" for kind, name in names.items() if not self._exists(ml, monitor, deployed, kind, name)]
        with _translated(), _quiet_stdout():
            endpoint = _optional(lambda: ml.online_endpoints.get(endpoint_name))
            if endpoint is None:
                return LiveStatus(LiveState.MISSING, missing=tuple(missing))
            online = _optional(lambda: ml.online_deployments.get(_deployment_of(deployed), endpoint_name=endpoint_name))
            autoscale = _optional(lambda: monitor.autoscale_settings.get(deployed.settings["resource_group"], names[AUTOSCALE]))
        capacity = autoscale.profiles[0].capacity if autoscale else None
        state = online.provisioning_state if online else endpoint.provisioning_state
        return LiveStatus(
            state=_STATES.get(state, LiveState.UNKNOWN),  # azure-ai-ml's states are str enums: they look up as their words
            detail="" if state in _STATES else f"provisioning state {state}",
            replicas=online.instance_count if online else None,
            min_replicas=int(capacity.minimum) if capacity else None,
            max_replicas=int(capacity.maximum) if capacity else None,
            instance_type=online.instance_type if online else None,
            missing=tuple(missing),
        )

    def _exists(self, ml: Any, monitor: Any, deployed: Deployed, kind: str, name: str) -> bool:
        with _translated(), _quiet_stdout():
            if kind in (ENVIRONMENT, MODEL):
                asset, version = name.split(":")
                assets = ml.environments if kind == ENVIRONMENT else ml.models
                return _exists(lambda: assets.get(asset, version=version))
            check = {
                CONNECTION: lambda: ml.connections.get(name),
                ENDPOINT: lambda: ml.online_endpoints.get(name),
                DEPLOYMENT: lambda: ml.online_deployments.get(name.rsplit("/", 1)[1], endpoint_name=name.rsplit("/", 1)[0]),
                AUTOSCALE: lambda: monitor.autoscale_settings.get(deployed.settings["resource_group"], name),
            }[kind]
            return _exists(check)

    def scale(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """The Azure Monitor autoscale setting written again from the plan (bounds and rule
        thresholds), on the deployment it already targets."""
        _, monitor, _ = self._clients(deployed.settings)
        name = next(r.name for r in deployed.resources if r.type == AUTOSCALE)
        group = deployed.settings["resource_group"]
        with _translated():
            setting = monitor.autoscale_settings.get(group, name)
            monitor.autoscale_settings.create_or_update(
                group, name, _autoscale_setting(plan, setting.target_resource_uri, setting.location, setting.tags or {})
            )

    def retag(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """The endpoint written again with the tags, each deployment PATCHed with them (ARM's
        OnlineDeployments_Update takes tags alone, so no instance is touched), and each autoscale
        setting PATCHed (AutoscaleSettings_Update). Workspace connections take the tags as their
        metadata on every `up`; environment versions are immutable assets and keep theirs."""
        from azure.core.rest import HttpRequest
        from azure.mgmt.monitor.models import AutoscaleSettingResourcePatch

        ml, monitor, arm = self._clients(deployed.settings)
        group, tags = deployed.settings["resource_group"], resource_tags(plan)
        with _translated(), _quiet_stdout():
            for resource in deployed.resources:
                if resource.type == ENDPOINT:
                    live = ml.online_endpoints.get(resource.name)
                    live.tags = tags
                    events.wait(f"Azure ML tags on {resource.name}", _poller_check(ml.online_endpoints.begin_create_or_update(live)))
                elif resource.type == DEPLOYMENT:
                    endpoint_name, name = resource.name.split("/")
                    path = f"{_workspace_path(deployed.settings)}/onlineEndpoints/{endpoint_name}/deployments/{name}?api-version={DEPLOYMENT_API_VERSION}"
                    arm.send_request(HttpRequest("PATCH", arm.format_url(path), json={"tags": tags})).raise_for_status()
                    get = partial(ml.online_deployments.get, name, endpoint_name=endpoint_name)
                    events.wait(f"Azure ML tags on {resource.name}", lambda g=get: _provisioned(g()))
                elif resource.type == AUTOSCALE:
                    monitor.autoscale_settings.update(group, resource.name, AutoscaleSettingResourcePatch(tags=tags))

    def destroy(self, deployed: Deployed, events: Events) -> None:
        ml, monitor, arm = self._clients(deployed.settings)
        group = deployed.settings["resource_group"]
        endpoints = {r.name for r in deployed.resources if r.type == ENDPOINT}
        with _translated(), _quiet_stdout():
            for resource in deployed.resources:
                if resource.type == AUTOSCALE:
                    _optional(lambda r=resource: monitor.autoscale_settings.delete(group, r.name))
            for resource in deployed.resources:  # a deployment alone (one variant of an endpoint that stays)
                if resource.type == DEPLOYMENT and resource.name.split("/")[0] not in endpoints:
                    self._delete_deployment(ml, resource, events)
            for endpoint in sorted(endpoints):
                get = partial(_optional, lambda e=endpoint: ml.online_endpoints.get(e))
                found = _presence(get())
                if found is Presence.PRESENT:  # deleting the endpoint deletes its deployments with it
                    events.wait(f"deleting Azure ML endpoint {endpoint}", _poller_check(ml.online_endpoints.begin_delete(endpoint)), Pace.MINUTES)
                elif found is Presence.DELETING:  # an earlier `down` began it: wait, do not delete twice
                    gone_after_delete(Resource(ENDPOINT, endpoint), lambda g=get: _presence(g()), events)
            for resource in deployed.resources:
                if resource.type in (ENVIRONMENT, MODEL):
                    _delete_asset_version(arm, deployed.settings, resource)
                elif resource.type == CONNECTION:
                    _optional(lambda r=resource: ml.connections.delete(r.name))

    @staticmethod
    def _delete_deployment(ml: Any, resource: Resource, events: Events) -> None:
        """Delete one deployment of an endpoint that stays. Azure ML deletes no deployment that still
        has traffic (how-to-safely-rollout-online-endpoints): its share, if any, is taken off first."""
        endpoint_name, name = resource.name.split("/")
        endpoint = _optional(lambda: ml.online_endpoints.get(endpoint_name))
        if endpoint is None or _optional(lambda: ml.online_deployments.get(name, endpoint_name=endpoint_name)) is None:
            return
        if (endpoint.traffic or {}).get(name):
            rest = {k: v for k, v in endpoint.traffic.items() if k != name and v}
            if sum(rest.values()) != 100:
                raise ProviderError(
                    f"Azure ML deployment {resource.name} takes {endpoint.traffic[name]}% of the endpoint's traffic; "
                    "move the traffic to another deployment before deleting it, or delete the endpoint"
                )
            endpoint.traffic = rest
            events.wait(f"Azure ML traffic off {resource.name}", _poller_check(ml.online_endpoints.begin_create_or_update(endpoint)))
        events.wait(
            f"deleting Azure ML deployment {resource.name}", _poller_check(ml.online_deployments.begin_delete(name, endpoint_name=endpoint_name)), Pace.MINUTES
        )

    def remaining(self, deployed: Deployed) -> list[Resource]:
        ml, monitor, _ = self._clients(deployed.settings)
        left = [r for r in deployed.resources if self._exists(ml, monitor, deployed, r.type, r.name)]
        with _translated(), _quiet_stdout():
            tagged = [e for e in ml.online_endpoints.list() if (e.tags or {}).get(DEPLOYMENT_TAG) == deployed.deployment]
        known = {(r.type, r.name) for r in left}
        return left + [Resource(ENDPOINT, e.name) for e in tagged if (ENDPOINT, e.name) not in known]

    def endpoint(self, deployed: Deployed) -> Endpoint:
        group, workspace = deployed.settings["resource_group"], deployed.settings["workspace"]
        name = next(r.name for r in deployed.resources if r.type == ENDPOINT)
        keys = f"az ml online-endpoint get-credentials --name {name} --resource-group {group} --workspace-name {workspace}"
        return Endpoint(
            url=deployed.url,
            auth=f"endpoint key, as a bearer token: {keys}",
            example=(
                f'KEY=$({keys} --query primaryKey --output tsv) && curl -sS {deployed.url} -H "Authorization: Bearer $KEY" '
                f"-H 'Content-Type: application/json' -d '{example_body()}'"
            ),
        )

    def invoke(self, deployed: Deployed, request: Mapping[str, Any]) -> Any:
        """POST the chat completion to the scoring host with the endpoint's primary key as a bearer
        token (the walkthrough's call, which the endpoint's key auth mode takes)."""
        import requests

        ml, _, _ = self._clients(deployed.settings)
        name = next(r.name for r in deployed.resources if r.type == ENDPOINT)
        with _translated(), _quiet_stdout():
            key = ml.online_endpoints.get_keys(name).primary_key
        headers = {"Authorization": f"Bearer {key}"}
        if deployed.settings.get("deployment"):  # one deployment alone, whatever the traffic (a staged variant's probe)
            headers["azureml-model-deployment"] = deployed.settings["deployment"]
        return answer_of(
            lambda: requests.post(deployed.url, json=dict(request), headers=headers, timeout=(CONNECT_TIMEOUT_S, REQUEST_TIMEOUT_MS / 1000)),
            f"Azure ML endpoint {name}",
        )


def _settings_of(placed: AzurePlacement) -> dict[str, Any]:
    """Where the workspace is: what `describe` and `destroy` need later, kept in state."""
    chosen = {"subscription_id": placed.subscription_id, "resource_group": placed.resource_group, "workspace": placed.workspace}
    return {**chosen, "endpoint": placed.endpoint} if placed.endpoint else chosen


def _model_values(model: Resource | None) -> dict[str, str] | None:
    """The exported program's model asset: its name, version, datastore and folder."""
    if model is None:
        return None
    located = _DATASTORE_PATH.match(model.properties["path"])
    assert located is not None  # checked when the stack was read
    name, version = model.name.split(":")
    return {"name": name, "version": version, "datastore": located["datastore"], "folder": located["folder"]}


def _model_name(plan: Plan) -> str:
    """The model asset registering the plan's own weights: one per deployment and location."""
    return f"{plan.deployment.name}-weights-{_short_hash(plan.weights or '')[:8]}"


def _container_client(datastore: Any) -> Any:
    """A client of a blob datastore's container, at the datastore's own endpoint and protocol."""
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import ContainerClient

    key = getattr(datastore.credentials, "account_key", None)
    account_url = f"{datastore.protocol}://{datastore.account_name}.blob.{datastore.endpoint}"
    credential = {"account_name": datastore.account_name, "account_key": key} if key else DefaultAzureCredential()
    return ContainerClient(account_url, datastore.container_name, credential=credential, retry_total=0)  # the engine retries


def _deployment_of(deployed: Deployed) -> str:
    """The online deployment `deployed` holds, by its name on the endpoint."""
    return next(r.name for r in deployed.resources if r.type == DEPLOYMENT).split("/")[1]


def endpoint_name(plan: Plan) -> str:
    """The deployment's endpoint name, unique in the Azure region: its name, cut to leave room, and a
    hash of where it is placed (subscription, resource group, workspace) and its name."""
    placed = plan.deployment.placement.of("azure")
    where = "/".join(filter(None, (placed.subscription_id, placed.resource_group, placed.workspace))) if placed else ""
    digest = _short_hash(f"{where}/{plan.deployment.name}")[:8]
    return f"{plan.deployment.name[: ENDPOINT_NAME_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def _dockerfile(plan: Plan) -> str:
    return DOCKERFILE.format(image=plan.deployment.serving.image or VLLM_IMAGE)


def _connection_name(deployment: str, secret: str) -> str:
    return f"{deployment}-{secret.lower().replace('_', '-')}"


def _secret_reference(deployment: str, secret: str) -> str:
    return f"${{{{azureml://connections/{_connection_name(deployment, secret)}/credentials/key}}}}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _environment(plan: Plan) -> dict[str, str]:
    """The two variables the environment's entrypoint reads; the user's `serving.env` wins where they overlap."""
    flag, model, *rest = vllm_arguments(plan)
    assert flag == "--model"  # vllm_arguments names the model first
    return {"MODEL_NAME": model, "VLLM_ARGS": shlex.join([*rest, "--port", str(VLLM_PORT)]), **plan.deployment.serving.env}


def _scale_rules(plan: Plan) -> list[dict[str, Any]]:
    """Scale out by one above the rate that holds the concurrency target, in by one below half of it."""
    target = round(target_requests_per_minute(plan), 1)
    return [
        {"operator": "GreaterThan", "threshold": target, "direction": "Increase", "cooldown": SCALE_COOLDOWNS["Increase"]},
        {"operator": "LessThan", "threshold": round(target * SCALE_IN_SHARE, 1), "direction": "Decrease", "cooldown": SCALE_COOLDOWNS["Decrease"]},
    ]


def _autoscale_setting(plan: Plan, deployment_id: str, location: str, tags: dict[str, str]) -> Any:
    from azure.mgmt.monitor.models import (
        AutoscaleProfile,
        AutoscaleSettingResource,
        MetricTrigger,
        ScaleAction,
        ScaleCapacity,
        ScaleRule,
    )

    scaling = plan.deployment.autoscaling

    def rule(operator: str, threshold: float, direction: str, cooldown: str) -> Any:
        trigger = MetricTrigger(
            metric_name=SCALE_METRIC,
            metric_resource_uri=deployment_id,
            time_grain="PT1M",
            statistic="Sum",
            time_window="PT5M",
            time_aggregation="Average",
            operator=operator,
            threshold=threshold,
            divide_per_instance=True,
        )
        return ScaleRule(metric_trigger=trigger, scale_action=ScaleAction(direction=direction, type="ChangeCount", value="1", cooldown=cooldown))

    return AutoscaleSettingResource(
        location=location,
        tags=tags,
        enabled=True,
        target_resource_uri=deployment_id,
        profiles=[
            AutoscaleProfile(
                name="llamadeploy",
                capacity=ScaleCapacity(minimum=str(scaling.min_replicas), maximum=str(scaling.max_replicas), default=str(scaling.min_replicas)),
                rules=[rule(r["operator"], r["threshold"], r["direction"], r["cooldown"]) for r in _scale_rules(plan)],
            )
        ],
    )


def _workspace_path(settings: Mapping[str, Any]) -> str:
    """The workspace's ARM resource path."""
    return f"/subscriptions/{settings['subscription_id']}/resourceGroups/{settings['resource_group']}/providers/{_WORKSPACE}/{settings['workspace']}"


def _delete_asset_version(arm: Any, settings: dict[str, Any], asset: Resource) -> None:
    """azure-ai-ml can only archive environments and models; ARM's REST API deletes a version
    (Environment Versions - Delete, Model Versions - Delete)."""
    from azure.core.rest import HttpRequest

    name, version = asset.name.split(":")
    kind = "environments" if asset.type == ENVIRONMENT else "models"
    path = f"{_workspace_path(settings)}/{kind}/{name}/versions/{version}?api-version={ASSET_API_VERSION}"
    response = arm.send_request(HttpRequest("DELETE", arm.format_url(path)))
    if response.status_code not in (200, 202, 204, 404):
        response.raise_for_status()


def _poller_check(poller: Any) -> Callable[[], tuple[bool, str]]:
    """Let the engine pace waits on an SDK poller: the SDK polls Azure, honouring Retry-After."""

    def check() -> tuple[bool, str]:
        if not poller.done():
            return False, poller.status()
        with _translated():
            poller.result()
        return True, poller.status()

    return check


# VM families exempt from Azure ML's 20 % upgrade reservation ("Skip 20% Reservation" in
# articles/machine-learning/reference-managed-online-endpoints-vm-sku-list.md), as `_family_key` spells them.
NO_UPGRADE_RESERVE = frozenset(
    {"standardncadsa100v4family", "standardncadsh100v5family", "standardndamsv4_a100family", "standardndasv4_a100family", "standardndv5h100family"}
)


def _family_key(name: str | None) -> str:
    """A VM family as usage rows and size lists both spell it: their case and spaces vary."""
    return (name or "").replace(" ", "").lower()


def _field(entity: Any, name: str, wire: str) -> Any:
    """A field of azure-ai-ml's Usage or VmSize: `_from_rest_object` copies the REST model's
    `as_dict()`, whose keys are the wire names (currentValue, vCPUs), over the snake_case ones."""
    value = getattr(entity, wire, None)
    return getattr(entity, name, None) if value is None else value


def _usage_name(usage: Any, key: str) -> str:
    """One of a usage row's names ("value" or "localizedValue"), a dict as the REST object had it."""
    name = usage.name if isinstance(usage.name, dict) else vars(usage.name)
    return str(name.get(key) or name.get(re.sub(r"_(\w)", lambda m: m[1].upper(), key)) or "")


def _dedicated(usage: Any) -> bool:
    """The family's dedicated-cores row (the same family also has a low-priority one)."""
    return "dedicated" in _usage_name(usage, "localized_value").lower()


def _presence(resource: Any) -> Presence:
    """An endpoint or deployment as a re-run sees it: provisioning state "Deleting" (azure-ai-ml's
    ProvisioningState / EndpointProvisioningState) is one on its way out."""
    if resource is None:
        return Presence.ABSENT
    return Presence.DELETING if resource.provisioning_state == "Deleting" else Presence.PRESENT


def _provisioned(resource: Any) -> tuple[bool, str]:
    state = resource.provisioning_state
    if state in ("Failed", "Canceled"):
        raise ProviderError(f"Azure ML {resource.name} is {state}; see its logs with `az ml online-deployment get-logs`")
    return state == "Succeeded", state


def _make_clients(settings: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """An MLClient for the workspace, a MonitorManagementClient, and a plain ARM client for the
    one call neither SDK offers; all share one credential."""
    from azure.ai.ml import MLClient
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.monitor import MonitorManagementClient

    # azure-ai-ml logs every call that ends in 404 as an ERROR "activity"; existence checks end
    # that way by design, and the errors that matter reach the user through _translated.
    logging.getLogger("azure.ai.ml").setLevel(logging.CRITICAL)
    credential = DefaultAzureCredential()
    endpoint = (settings.get("endpoint") or PUBLIC_RESOURCE_MANAGER).rstrip("/")
    scope = f"{endpoint}/.default"
    policy = _plain_http_bearer(credential, scope) if endpoint.startswith("http://") else BearerTokenCredentialPolicy(credential, scope)
    arm = ARMPipelineClient(base_url=endpoint, policies=[RetryPolicy(retry_total=0), policy])
    extra: dict[str, Any] = {"retry_total": 0}  # the engine retries (azure-core's RetryPolicy reads it from the client's kwargs)
    if endpoint != PUBLIC_RESOURCE_MANAGER:
        if endpoint.startswith("http://"):
            extra["authentication_policy"] = policy
        cloud = f"llamadeploy-{_short_hash(endpoint)}"
        metadata = {
            "azure_portal": endpoint,
            "resource_manager": f"{endpoint}/",
            "active_directory": endpoint,
            "aml_resource_id": endpoint,
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": endpoint,
        }
        with _translated(), _environment_kept("AZUREML_CURRENT_CLOUD"):
            try:
                ml = MLClient(
                    credential,
                    settings["subscription_id"],
                    settings["resource_group"],
                    settings["workspace"],
                    cloud=cloud,
                    cloud_metadata=metadata,
                    show_progress=False,
                    **extra,
                )
            except AttributeError:  # this cloud name was registered by an earlier client in this process
                ml = MLClient(
                    credential, settings["subscription_id"], settings["resource_group"], settings["workspace"], cloud=cloud, show_progress=False, **extra
                )
        monitor = MonitorManagementClient(credential, settings["subscription_id"], base_url=endpoint, credential_scopes=[scope], **extra)
        return ml, monitor, arm
    ml = MLClient(credential, settings["subscription_id"], settings["resource_group"], settings["workspace"], show_progress=False, **extra)
    return ml, MonitorManagementClient(credential, settings["subscription_id"], **extra), arm


def _plain_http_bearer(credential: Any, scope: str) -> Any:
    """A bearer-token policy that also works over plain http (a local resource manager):
    azure-core refuses to send tokens to non-TLS URLs unless `enforce_https` is off."""
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy

    class PlainHttpBearer(BearerTokenCredentialPolicy):
        def on_request(self, request: Any) -> None:
            request.context.options["enforce_https"] = False
            super().on_request(request)

    return PlainHttpBearer(credential, scope)


@contextlib.contextmanager
def _environment_kept(variable: str) -> Iterator[None]:
    """azure-ai-ml records the cloud it resolved in os.environ (_azure_environments.py), which
    would point every later MLClient of this process, and its children, at our custom cloud."""
    before = os.environ.get(variable)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """azure-ai-ml's AzureMLPolling prints progress dots to stdout from its poller thread
    (azure/ai/ml/_utils/_azureml_polling.py): on stdout they break llamadeploy's results and JSON,
    on stderr they run into its progress lines, so they are dropped; the waits say what the cloud
    is doing instead. Deployments brought up in parallel overlap here, so the first one in swaps
    stdout out and the last one out restores it (nested redirect_stdout calls, unwound out of
    order, would leave it swapped); llamadeploy's own results go to the stdout bound when the
    command began."""
    global _stdout_saved, _stdout_users
    with _stdout_lock:
        if _stdout_users == 0:
            _stdout_saved, sys.stdout = sys.stdout, io.StringIO()
        _stdout_users += 1
    try:
        yield
    finally:
        with _stdout_lock:
            _stdout_users -= 1
            if _stdout_users == 0:
                sys.stdout = _stdout_saved


_stdout_lock = threading.Lock()
_stdout_users = 0
_stdout_saved: Any = None


WORDS = ErrorWords(
    "Azure ML",
    throttle_codes=frozenset({"TooManyRequests"}),
    auth_codes=frozenset({"AuthorizationFailed"}),
    capacity_words=("capacity", "skunotavailable", "not supported in region"),
    quota_advice="request more in the Azure portal (Quotas), or plan another instance type or cloud",
    auth_advice="sign in with `az login` or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, and check the role assignments in the README",
)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Turn azure-core's and azure-ai-ml's exceptions into llamadeploy's typed provider errors."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except ProviderError:
        raise
    except ResourceNotFoundError as exc:
        raise NotFoundError(str(exc.message or exc)) from exc
    except ClientAuthenticationError as exc:
        raise AuthError(
            f"Azure refused the credentials ({exc.message}); sign in with `az login` or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET"
        ) from exc
    except HttpResponseError as exc:
        code = getattr(getattr(exc, "error", None), "code", None) or ""
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        raise classify(WORDS, exc.status_code, code, str(exc.message or exc), headers.get("Retry-After")) from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientError(f"cannot reach Azure: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("azure.ai.ml"):
            raise InvalidRequestError(f"azure-ai-ml rejected the request: {exc}") from exc
        if type(exc).__name__ == "CredentialUnavailableError":
            raise AuthError(f"no Azure credentials found: {exc}") from exc
        raise


_optional = partial(if_exists, translated=_translated)
_exists = partial(exists, translated=_translated)
