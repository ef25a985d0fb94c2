"""A plan: what `up` would create for one deployment on one cloud, and what it costs.

The value every later stage reads (reports, export, the engine, the providers), kept below all
of them: it names the cloud's service only through the small `Describes` protocol, so the
planner, which builds plans, and the providers, which read them, do not import each other.
The types a plan carries from its provider (resources, the serving contract) live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from orchestrator.declared.spec import Deployment
from orchestrator.pricing.catalog import Offer
from orchestrator.sizing.memory import GpuLayout, Requirements
from orchestrator.sizing.models import Checkpoint


@dataclass(frozen=True)
class Resource:
    """One cloud resource a plan creates, named as the cloud names its type."""

    type: str
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScalingSignal:
    """What a service's autoscaling watches for one deployment, and the value it holds per replica."""

    metric: str  # the service's own name for it
    target: float
    unit: str  # what the target counts, per replica
    why: str  # how it follows from the spec's target_concurrent_requests, or why this signal


@dataclass(frozen=True)
class ServingContract:
    """How a cloud runs vLLM for a plan: what `plan` tells the user before anything is created."""

    image: str
    started: str  # how the service starts the container
    route: str  # the public route a call goes to, and where it lands in the container
    scaling: ScalingSignal
    startup_limit_s: int | None  # how long the service lets a replica start, None if unbounded
    startup_setting: str  # the setting (or rule) that sets that limit
    needs: tuple[str, ...] = ()  # what the user must provide on this cloud (empty: nothing)
    # Whether copying the user's own weights from object storage counts against the startup limit
    # (SageMaker copies ModelDataSource before the container, and its limit, start).
    weights_copy_counts: bool = True


class Describes(Protocol):
    """What a plan asks of its cloud's service: the resources it turns into and how it runs vLLM."""

    def resources(self, plan: Plan) -> list[Resource]: ...

    def contract(self, plan: Plan) -> ServingContract | None: ...

    @property
    def weights_scheme(self) -> str | None: ...

    def weights_path(self, plan: Plan) -> str | None: ...

    def reach(self, deployment: Deployment) -> str: ...

    def public_warning(self, deployment: Deployment) -> str | None: ...

    def private_only(self, deployment: Deployment) -> str | None: ...

    def unverifiable(self, deployment: Deployment) -> str | None: ...

    def replace_problem(self, live: Deployment, plan: Plan) -> str | None: ...

    def deployment_problem(self, deployment: Deployment, own_weights: bool) -> tuple[tuple[str, ...], str] | None: ...


HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class RunnerUp:
    """The offer the planner would have chosen next, and the measure it lost on."""

    instance_type: str
    gpus_per_replica: int
    measure: str  # what offers are compared by: "$/month under load" or "$ per 1M output tokens at full load"
    value: float  # the runner-up's figure, in `measure`
    chosen: float  # the chosen offer's figure

    @property
    def dearer_by(self) -> float:
        """How much more the runner-up costs, as a share of the chosen offer's figure."""
        return self.value / self.chosen - 1 if self.chosen else 0.0


@dataclass(frozen=True)
class Plan:
    """What `up` would create for one deployment on one cloud, and what it costs."""

    deployment: Deployment
    cloud: str
    service: str
    region: str
    region_source: str
    offer: Offer
    layout: GpuLayout
    requirements: Requirements
    described_by: Describes = field(repr=False, compare=False)  # the cloud's service, asked lazily
    # Which variant on the deployment's endpoint this plan makes: "" for the first, and a new one for
    # each blue/green replace, so the new machines (and the resources that hold them) can stand next
    # to the old under their own names until traffic moves. Providers suffix such names with it.
    variant: str = ""
    # The offer that came second when the planner chose this one, and by how much it lost.
    runner_up: RunnerUp | None = field(default=None, compare=False)

    def named(self, base: str, separator: str = "-") -> str:
        """`base` as this plan's variant names it: unchanged for the first variant."""
        return f"{base}{separator}{self.variant}" if self.variant else base

    @cached_property
    def resources(self) -> tuple[Resource, ...]:
        """What `up` would create; asked of the provider only when shown (a cost report of a
        large stack never needs them)."""
        return tuple(self.described_by.resources(self))

    @cached_property
    def contract(self) -> ServingContract | None:
        """How the cloud starts, routes and scales vLLM for this plan (None where its provider does not say)."""
        return self.described_by.contract(self)

    @cached_property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint vLLM loads (the spec checked that one exists): the hub's, or the user's own
        (`weights:`), stored quantized where its config says so, else in 16 bits (quantized to fp8 at
        load when fp8 is declared)."""
        declared = self.deployment.quantization
        if self.weights:
            if self.requirements.checkpoint_quantized:
                return Checkpoint(self.weights, declared, None)
            return Checkpoint(self.weights, "bf16", "fp8" if declared == "fp8" else None)
        return self.deployment.model_ref.checkpoint(declared)

    @property
    def hf_repo(self) -> str:
        """The checkpoint's repository: the hub's, or the user's own location."""
        return self.checkpoint.repo

    @property
    def weights(self) -> str | None:
        """The user's own checkpoint in this cloud's object storage, where the spec names one."""
        return self.deployment.weights.get(self.cloud)

    @property
    def secrets(self) -> dict[str, str]:
        """The secret references this plan sends (no default hub token with the user's own weights)."""
        from orchestrator.declared.secrets import sent_secrets

        return sent_secrets(self.deployment, bool(self.weights))

    @property
    def served_model(self) -> str:
        """The name the endpoint answers as: the checkpoint's repository, or the user's checkpoint's location."""
        return self.hf_repo

    @property
    def model_path(self) -> str:
        """What vLLM loads: the hub repository, or where the service puts the user's weights."""
        if not self.weights:
            return self.checkpoint.repo
        return self.described_by.weights_path(self) or self.weights  # where the service puts them, or an image that fetches them

    @property
    def instances_per_replica(self) -> int:
        return self.layout.nodes

    @property
    def gpus_per_replica(self) -> int:
        return self.offer.gpu_count * self.layout.nodes

    @property
    def usd_per_replica_hour(self) -> float | None:
        price = self.offer.usd_per_hour
        return None if price is None else price * self.layout.nodes

    def usd_per_hour(self, replicas: int) -> float | None:
        price = self.usd_per_replica_hour
        return None if price is None else price * replicas

    @property
    def usd_per_month_max(self) -> float | None:
        hourly = self.usd_per_hour(self.deployment.autoscaling.max_replicas)
        return None if hourly is None else hourly * HOURS_PER_MONTH

    @property
    def usd_per_month_min(self) -> float | None:
        hourly = self.usd_per_hour(self.deployment.autoscaling.min_replicas)
        return None if hourly is None else hourly * HOURS_PER_MONTH
