"""AWS: a SageMaker real-time endpoint serving vLLM through the LMI container, autoscaled by
Application Auto Scaling on requests in flight per instance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import Provider, Resource, resource_tags

if TYPE_CHECKING:
    from orchestrator.planner import Plan


class AwsProvider(Provider):
    name = "aws"
    service = "SageMaker real-time inference"
    default_region = "us-east-1"

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        tags = resource_tags(plan)
        return [
            Resource("AWS::SageMaker::Model", f"{name}-model", {"hf_model_id": plan.hf_repo, "tensor_parallel_degree": plan.layout.tensor_parallel, "tags": tags}),
            Resource("AWS::SageMaker::EndpointConfig", f"{name}-config", {"instance_type": plan.offer.instance_type, "initial_instance_count": scaling.min_replicas, "tags": tags}),
            Resource("AWS::SageMaker::Endpoint", name, {"tags": tags}),
            Resource("AWS::ApplicationAutoScaling::ScalableTarget", f"endpoint/{name}/variant/AllTraffic", {"min_capacity": scaling.min_replicas, "max_capacity": scaling.max_replicas}),
            Resource("AWS::ApplicationAutoScaling::ScalingPolicy", f"{name}-concurrency", {"target_value": plan.deployment.target_concurrent_requests}),
        ]
