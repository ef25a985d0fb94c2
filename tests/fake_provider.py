"""A third-party provider as a plugin author would write one: in memory, no core change.

It is registered through the `llamadeploy.providers` entry point by the test that uses it,
which proves the registry finds plugins; it runs the same engine as the built-in clouds. Like
them it owns its placement schema (`placement.fake`, validated with file and line) and its
Pulumi template (beside this file), so it can be placed, deployed and exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from orchestrator.spec import PlacementBase
from providers.base import (
    CloudService,
    Deployed,
    Endpoint,
    Events,
    LiveState,
    LiveStatus,
    NotFoundError,
    Program,
    Provider,
    Resource,
    resource_tags,
)

if TYPE_CHECKING:
    from orchestrator.planner import Plan


class FakePlacement(PlacementBase):
    zone: str | None = Field(default=None, pattern=r"^crater-\d+$", description="use a crater, such as crater-7")


class FakeProvider(Provider):
    name = "fake"
    service = "Fake serving"
    placement_model = FakePlacement
    pulumi_template = Path(__file__).with_name("fake_provider.py.j2")
    required_placement = ("zone",)
    default_region = "moon-1"
    live: ClassVar[dict[str, Resource]] = {}

    def resources(self, plan: Plan) -> list[Resource]:
        return [
            Resource(
                "fake::Endpoint",
                f"{plan.deployment.name}-{plan.region}",
                {"tags": resource_tags(plan), "instance_type": plan.offer.instance_type, "model": plan.hf_repo},
            )
        ]

    def program(self, plan: Plan) -> Program:
        (endpoint,) = self.resources(plan)
        return Program(requirements=(), values={"name": endpoint.name, "zone": plan.deployment.placement.of("fake").zone, **endpoint.properties})

    def apply(self, plan: Plan, events: Events) -> Deployed:
        for resource in self.resources(plan):
            if resource.name in self.live:
                events.adopted(resource)
            else:
                self.live[resource.name] = resource
                events.created(resource)
        events.wait("fake endpoint", lambda: (True, "ready"))
        return Deployed(plan.deployment.name, self.name, plan.region, tuple(self.resources(plan)), f"fake://{plan.deployment.name}")

    def describe(self, deployed: Deployed) -> LiveStatus:
        missing = tuple(f"{r.type} {r.name}" for r in deployed.resources if r.name not in self.live)
        return LiveStatus(LiveState.MISSING if missing else LiveState.SERVING, replicas=1, min_replicas=1, max_replicas=1, missing=missing)

    def scale(self, deployed: Deployed, min_replicas: int, max_replicas: int) -> None:
        if deployed.deployment not in self.live:
            raise NotFoundError(deployed.deployment)

    def destroy(self, deployed: Deployed, events: Events) -> None:
        for resource in deployed.resources:
            self.live.pop(resource.name, None)

    def remaining(self, deployed: Deployed) -> list[Resource]:
        """What is tagged with the deployment in its region (a region is a cloud's unit, as for the real ones)."""
        return [
            r
            for r in self.live.values()
            if r.properties["tags"].get("llamadeploy-deployment") == deployed.deployment and r.name.endswith(f"-{deployed.region}")
        ]

    def endpoint(self, deployed: Deployed) -> Endpoint:
        return Endpoint(deployed.url, "none", f"curl {deployed.url}")

    def invoke(self, deployed: Deployed, request: Mapping[str, Any]) -> Any:
        served = self.live.get(deployed.resources[0].name)
        if served is None:
            raise NotFoundError(deployed.resources[0].name)
        return {"model": served.properties["model"], "choices": [{"message": {"role": "assistant", "content": "Paris."}}]}


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


class OtherFakeProvider(FakeProvider):
    """A second plugin cloud, so moves between two clouds run through plugins alone."""

    name = "fake2"
    default_region = "mars-1"
