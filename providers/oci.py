"""Oracle Cloud: an OCI Data Science model deployment running a vLLM container on a GPU
shape, with an autoscaling policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import CloudService, Resource, resource_tags

if TYPE_CHECKING:
    from orchestrator.planner import Plan


class OciProvider(CloudService):
    name = "oci"
    service = "OCI Data Science model deployment"
    default_region = "us-ashburn-1"

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        return [
            Resource("oci:DataScience/Model", f"{name}-model", {"freeform_tags": tags}),
            Resource("oci:DataScience/ModelDeployment", name, {"shape": plan.offer.instance_type, "instance_count": scaling.min_replicas, "autoscaling": {"minimum": scaling.min_replicas, "maximum": scaling.max_replicas}, "freeform_tags": tags}),
        ]
