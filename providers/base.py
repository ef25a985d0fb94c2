"""The one interface every cloud implements, and the types that cross it.

A provider maps a Plan onto one cloud's managed serving service. Everything a provider knows
without credentials (its service, default region, what it can do, the resources a plan turns
into) is plain class data or a pure method, so `plan` and `cost` use providers without
importing any cloud SDK; SDKs are imported inside the methods that talk to the cloud.

Capabilities are an allow-list: a provider lists the `Feature`s it supports, so a feature
added later stays off for every cloud until that cloud opts in, and the reason a cloud lacks
one is data the planner prints.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from orchestrator.planner import Plan

DEPLOYMENT_TAG = "llamadeploy-deployment"


class Feature(enum.Enum):
    """What some managed services can do and others cannot."""

    MULTI_NODE = "multi-node"  # one replica spread over several instances


# Why a service lacks a feature, unless its provider says something more particular.
_DEFAULT_REASONS = {
    Feature.MULTI_NODE: "{service} runs each replica on one instance; a replica cannot span instances",
}


@dataclass(frozen=True)
class Resource:
    """One cloud resource a plan creates, named as the cloud names its type."""

    type: str
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)


class Provider(ABC):
    """One cloud's managed endpoint service behind llamadeploy's single interface."""

    name: ClassVar[str]
    service: ClassVar[str]
    default_region: ClassVar[str]
    supports: ClassVar[frozenset[Feature]] = frozenset()
    # Why the service lacks a feature, where the default reason says too little.
    lacks: ClassVar[Mapping[Feature, str]] = {}
    # With MULTI_NODE: the GPUs whose instances have the interconnect to split a replica.
    multi_node_gpus: ClassVar[frozenset[str]] = frozenset()

    def unsupported(self, needed: set[Feature]) -> list[str]:
        """The reasons this cloud cannot provide the `needed` features (empty when it can)."""
        missing = sorted(needed - self.supports, key=lambda f: f.value)
        return [self.lacks.get(f) or _DEFAULT_REASONS[f].format(service=self.service) for f in missing]

    @abstractmethod
    def resources(self, plan: Plan) -> list[Resource]:
        """The resources `apply` would create for `plan`; pure, no cloud call."""


def resource_tags(plan: Plan) -> dict[str, str]:
    """The user's tags plus the deployment tag that lets a re-run find what it created."""
    return {**plan.deployment.tags, DEPLOYMENT_TAG: plan.deployment.name}
