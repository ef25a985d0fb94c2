"""Google Cloud: a Vertex AI model with the vLLM serving container, deployed to a Vertex AI
endpoint on GPU machines with min/max replica counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import CloudService, Feature, Resource, resource_tags

if TYPE_CHECKING:
    from orchestrator.planner import Plan

# Vertex AI's names for the GPUs in the catalog.
ACCELERATOR_TYPES = {
    "H200": "NVIDIA_H200_141GB",
    "H100": "NVIDIA_H100_80GB",
    "A100-80GB": "NVIDIA_A100_80GB",
    "A100-40GB": "NVIDIA_TESLA_A100",
    "L4": "NVIDIA_L4",
}


class GcpProvider(CloudService):
    name = "gcp"
    service = "Vertex AI online prediction"
    default_region = "us-central1"
    # Vertex AI serves one replica over several hosts (multi-host GPU deployment), on A3
    # machines only: their GPUDirect networking is what makes cross-host tensors workable.
    supports = frozenset({Feature.MULTI_NODE})
    multi_node_gpus = frozenset({"H100", "H200"})

    def resources(self, plan: Plan) -> list[Resource]:
        name = plan.deployment.name
        scaling = plan.deployment.autoscaling
        labels = resource_tags(plan)
        return [
            Resource("aiplatform.googleapis.com/Model", name, {"hf_model_id": plan.hf_repo, "labels": labels}),
            Resource("aiplatform.googleapis.com/Endpoint", name, {"labels": labels}),
            Resource("aiplatform.googleapis.com/DeployedModel", f"{name}/{name}", {
                "machine_type": plan.offer.instance_type,
                "accelerator_type": ACCELERATOR_TYPES.get(plan.offer.gpu, plan.offer.gpu),
                "accelerator_count": plan.offer.gpu_count,
                "hosts_per_replica": plan.layout.nodes,
                "min_replica_count": scaling.min_replicas,
                "max_replica_count": scaling.max_replicas,
            }),
        ]
