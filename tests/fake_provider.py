"""A third-party provider as a plugin author would write one: a package of its own, no core change.

It drives "Fake serving", a managed endpoint service whose API and container contract are
documented in its stand-in (`tests/emulators/fake.py`), over HTTP with `requests`, as a
built-in provider drives its cloud's SDK. It is registered through the `llamadeploy.providers`
entry point by the tests that use it, which proves the registry finds plugins. Like the
built-in providers it owns its placement schema (`placement.fake`, validated with file and
line), its Pulumi template (beside this file), its error words and its state map, and it runs
the same engine and the same scenario suite (tests/test_providers.py) as they do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from orchestrator.declared.spec import PlacementBase
from orchestrator.planning.serving import CHAT_ROUTE, example_body, vllm_arguments
from providers.base import (
    CloudService,
    Deployed,
    Endpoint,
    ErrorWords,
    Events,
    Feature,
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
    classify,
    create_or_adopt,
    failed_because,
    gone_after_delete,
    resource_tags,
)

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan

ENDPOINT = "fake::Endpoint"
IMAGE = "vllm/vllm-openai:v0.11.0"
URL_ENV, KEY_ENV = "FAKE_SERVING_URL", "FAKE_SERVING_KEY"
WORDS = ErrorWords("Fake serving", quota_codes=frozenset({"QuotaExceeded"}), quota_words=(), quota_advice="ask the fake cloud for more")
STATES = {
    "CREATING": LiveState.PROVISIONING,
    "READY": LiveState.SERVING,
    "UPDATING": LiveState.PROVISIONING,
    "FAILED": LiveState.FAILED,
    "DELETING": LiveState.DELETING,
}


class FakePlacement(PlacementBase):
    zone: str | None = Field(default=None, pattern=r"^crater-\d+$", description="use a crater, such as crater-7")


class FakeProvider(Provider):
    name = "fake"
    service = "Fake serving"
    placement_model = FakePlacement
    pulumi_template = Path(__file__).with_name("fake_provider.py.j2")
    required_placement = ("zone",)
    default_region = "moon-1"
    sdk_modules = ("requests",)
    # Fake serving replaces an endpoint's replicas blue/green itself, on a PATCH of what runs.
    supports = frozenset({Feature.REPLACE_LIVE})

    def resources(self, plan: Plan) -> list[Resource]:
        return [Resource(ENDPOINT, f"{plan.deployment.name}-{plan.region}", {"instance_type": plan.offer.instance_type, "tags": resource_tags(plan)})]

    def program(self, plan: Plan) -> Program:
        (endpoint,) = self.resources(plan)
        placed = plan.deployment.placement.of(self.name)
        return Program(
            requirements=(),
            secrets=tuple(plan.deployment.serving.secrets),
            values={"name": endpoint.name, "region": plan.region, "zone": placed.zone if placed else None, **_endpoint_body(plan, secrets={})},
        )

    def contract(self, plan: Plan) -> ServingContract:
        return ServingContract(
            image=plan.deployment.serving.image or IMAGE,
            started="the image's entrypoint runs with the endpoint's args as its CMD: vLLM's OpenAI server on port 8000",
            route=f"POST $FAKE_SERVING_URL/serve/{plan.region}/<endpoint>{CHAT_ROUTE} (API key) -> {CHAT_ROUTE} on port 8000",
            scaling=ScalingSignal("concurrent requests", plan.deployment.target_concurrent_requests, "requests in flight per replica", "the declared target"),
            startup_limit_s=None,
            startup_setting="none: Fake serving waits for /health as long as it takes",
        )

    def apply(self, plan: Plan, events: Events) -> Deployed:
        from orchestrator.declared.secrets import resolve_secrets

        (endpoint,) = self.resources(plan)
        path = f"/regions/{plan.region}/endpoints/{endpoint.name}"
        body = _endpoint_body(plan, resolve_secrets(plan.deployment))
        create_or_adopt(endpoint, lambda: self._presence(path), lambda: self._api("PUT", path, body), events)
        events.wait(f"Fake serving endpoint {endpoint.name}", lambda: _ready(self._api("GET", path)), Pace.MINUTES)
        return Deployed(plan.deployment.name, self.name, plan.region, (endpoint,), self._url(f"/serve/{plan.region}/{endpoint.name}"))

    def credentials_configured(self) -> bool:
        return bool(os.environ.get(KEY_ENV))

    def quota(self, plan: Plan) -> Quota | None:
        found = self._api("GET", f"/regions/{plan.region}/quotas/{plan.offer.instance_type}")
        return Quota(
            name=found["name"],
            limit=found["limit"],
            used=found["used"],
            needed=plan.deployment.autoscaling.min_replicas,
            unit="instances",
            request="request more from the fake cloud",
        )

    def describe(self, deployed: Deployed) -> LiveStatus:
        (endpoint,) = deployed.resources
        found = self._found(f"/regions/{deployed.region}/endpoints/{endpoint.name}")
        if found is None:
            return LiveStatus(LiveState.MISSING, missing=(f"{ENDPOINT} {endpoint.name}",))
        state = STATES.get(found["state"], LiveState.UNKNOWN)
        return LiveStatus(
            state,
            replicas=found["min_replicas"] if state is LiveState.SERVING else 0,
            min_replicas=found["min_replicas"],
            max_replicas=found["max_replicas"],
            instance_type=found["instance_type"],
            detail=found["failure"] or ("" if state is not LiveState.UNKNOWN else found["state"]),
        )

    def scale(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        (endpoint,) = deployed.resources
        bounds = plan.deployment.autoscaling
        changed = {"min_replicas": bounds.min_replicas, "max_replicas": bounds.max_replicas, "target": bounds.target_concurrent_requests}
        self._api("PATCH", f"/regions/{deployed.region}/endpoints/{endpoint.name}", changed)

    def retag(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        (endpoint,) = deployed.resources
        self._api("PATCH", f"/regions/{deployed.region}/endpoints/{endpoint.name}", {"tags": resource_tags(plan)})

    def stage(self, deployed: Deployed, plan: Plan, events: Events) -> Staged:
        """Nothing to make beforehand: the service brings the new replicas up itself when `switch` asks."""
        return Staged(replace(deployed, resources=tuple(self.resources(plan))))

    def switch(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """A PATCH of what runs: the service starts the new replicas beside the old and moves the
        calls once they answer; the endpoint's fields say whether they took over."""
        from orchestrator.declared.secrets import resolve_secrets

        (endpoint,) = deployed.resources
        path = f"/regions/{deployed.region}/endpoints/{endpoint.name}"
        events.wait(f"Fake serving endpoint {endpoint.name} to settle", lambda: _settled(self._api("GET", path)))  # one a dead run began
        body = {k: v for k, v in _endpoint_body(plan, resolve_secrets(plan.deployment)).items() if k != "tags"}
        self._api("PATCH", path, body)
        events.wait(f"Fake serving endpoint {endpoint.name} replacing its replicas", lambda: _settled(self._api("GET", path)), Pace.MINUTES)
        found = self._api("GET", path)
        if any(found[k] != body[k] for k in ("instance_type", "image", "args", "env")):
            raise failed_because(WORDS, found["failure"] or f"endpoint {endpoint.name} did not take the new replicas")

    def destroy(self, deployed: Deployed, events: Events) -> None:
        for resource in deployed.resources:
            path = f"/regions/{deployed.region}/endpoints/{resource.name}"
            if self._presence(path) is Presence.PRESENT:  # one an earlier `down` is deleting is only waited out
                self._api("DELETE", path)
            gone_after_delete(resource, lambda p=path: self._presence(p), events)

    def remaining(self, deployed: Deployed) -> list[Resource]:
        listed = self._api("GET", f"/regions/{deployed.region}/endpoints?tag=llamadeploy-deployment={deployed.deployment}")
        return [Resource(ENDPOINT, e["name"]) for e in listed["endpoints"]]

    def endpoint(self, deployed: Deployed) -> Endpoint:
        url = self._serving_url(deployed)
        return Endpoint(
            url,
            f"API key in ${KEY_ENV} (Authorization: Bearer)",
            f"curl -sS -X POST {url}{CHAT_ROUTE} -H \"Authorization: Bearer ${KEY_ENV}\" -H 'Content-Type: application/json' -d '{example_body()}'",
        )

    def invoke(self, deployed: Deployed, request: Mapping[str, Any]) -> Any:
        session, url = self._session(), self._serving_url(deployed)
        return answer_of(lambda: session.post(f"{url}{CHAT_ROUTE}", json=dict(request), timeout=600), f"Fake serving endpoint {deployed.deployment}")

    def _serving_url(self, deployed: Deployed) -> str:
        """Where the endpoint serves, from its region and name (the service's URL scheme), not from a recorded URL."""
        (endpoint,) = deployed.resources
        return self._url(f"/serve/{deployed.region}/{endpoint.name}")

    def _url(self, path: str) -> str:
        base = os.environ.get(URL_ENV)
        if not base:
            raise ProviderError(f"set ${URL_ENV} to Fake serving's API URL")
        return base.rstrip("/") + path

    def _session(self) -> Any:
        import requests

        def make() -> Any:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {os.environ.get(KEY_ENV, '')}"
            return session

        return self.client((os.environ.get(URL_ENV), os.environ.get(KEY_ENV)), make)

    def _api(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One API call; a failure becomes the typed error the engine acts on (the base's rules, this cloud's words)."""
        import requests

        try:
            response = self._session().request(method, self._url(path), json=body, timeout=60)
        except requests.RequestException as exc:
            raise TransientError(f"cannot reach Fake serving: {exc}") from exc
        if response.status_code >= 400:
            error = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
            raise classify(WORDS, response.status_code, error.get("code", ""), error.get("message", response.text[:300]), response.headers.get("Retry-After"))
        return response.json() if response.content else None

    def _presence(self, path: str) -> Presence:
        found = self._found(path)
        return Presence.ABSENT if found is None else Presence.DELETING if found["state"] == "DELETING" else Presence.PRESENT

    def _found(self, path: str) -> dict[str, Any] | None:
        try:
            return self._api("GET", path)
        except NotFoundError:
            return None


def _endpoint_body(plan: Plan, secrets: Mapping[str, str]) -> dict[str, Any]:
    """What an endpoint is made of, as `apply` sends it and an exported program declares it (secrets apart)."""
    scaling = plan.deployment.autoscaling
    return {
        "instance_type": plan.offer.instance_type,
        "image": plan.deployment.serving.image or IMAGE,
        "args": vllm_arguments(plan),
        "env": {**plan.deployment.serving.env, **secrets},
        "min_replicas": scaling.min_replicas,
        "max_replicas": scaling.max_replicas,
        "target": scaling.target_concurrent_requests,
        "tags": resource_tags(plan),
    }


def _settled(endpoint: dict[str, Any]) -> tuple[bool, str]:
    return endpoint["state"] != "UPDATING", endpoint["state"]


def _ready(endpoint: dict[str, Any]) -> tuple[bool, str]:
    if endpoint["state"] == "FAILED":
        raise failed_because(WORDS, endpoint["failure"])
    return endpoint["state"] == "READY", endpoint["state"]


class OtherFakeProvider(FakeProvider):
    """A second plugin cloud, so moves between two clouds run through plugins alone; it has not
    opted in to replacing a live deployment, as a plugin written before that feature has not."""

    name = "fake2"
    default_region = "mars-1"
    supports = frozenset()


class PlanOnlyService(CloudService):
    """A plugin that can be planned and priced but not deployed (no live operations yet)."""

    name = "planonly"
    service = "Plan-only serving"
    default_region = "moon-1"

    def resources(self, plan: Plan) -> list[Resource]:
        return [Resource("planonly::Endpoint", plan.deployment.name)]


class NeedsSdkProvider(FakeProvider):
    """A plugin whose SDK is not installed: it must say so before any cloud call."""

    name = "needsdk"
    sdk_modules = ("llamadeploy_no_such_sdk.client",)
