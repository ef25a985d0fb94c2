"""Azure: an Azure ML managed online endpoint and deployment running a vLLM environment,
autoscaled by an Azure Monitor autoscale setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import CloudService, Resource, resource_tags

if TYPE_CHECKING:
    from orchestrator.planner import Plan

_WORKSPACE = "Microsoft.MachineLearningServices/workspaces"


class AzureProvider(CloudService):
    name = "azure"
    service = "Azure ML managed online endpoint"
    default_region = "eastus"

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        return [
            Resource(f"{_WORKSPACE}/environments/versions", f"{name}-vllm", {"tags": tags}),
            Resource(f"{_WORKSPACE}/onlineEndpoints", name, {"auth_mode": "key", "tags": tags}),
            Resource(f"{_WORKSPACE}/onlineEndpoints/deployments", f"{name}/vllm", {"instance_type": plan.offer.instance_type, "instance_count": scaling.min_replicas, "max_concurrent_requests_per_instance": plan.deployment.concurrency, "tags": tags}),
            Resource("Microsoft.Insights/autoscaleSettings", f"{name}-autoscale", {"minimum": scaling.min_replicas, "maximum": scaling.max_replicas, "tags": tags}),
        ]
