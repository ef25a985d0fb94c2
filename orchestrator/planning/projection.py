"""A month's bill under the spec's load profile, from the throughput model.

Autoscaling keeps each replica near `target_concurrent_requests` of its `concurrency`, so a
replica takes `requests/s at full batch x target / concurrency` of the load. Each hour of the
day needs enough replicas for its rate, clamped to the autoscaling bounds; an hour whose load
needs more than `max_replicas` is reported as unmet. Without a load profile the month is
priced at min and at max replicas instead (the plan's own figures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.declared.spec import HOURS_PER_DAY
from orchestrator.planning.plan import HOURS_PER_MONTH
from orchestrator.sizing.throughput import (
    Throughput,
    replica_throughput,
    target_requests_per_minute,
    usd_per_million_tokens,
)

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan

DAYS_PER_MONTH = HOURS_PER_MONTH / HOURS_PER_DAY


@dataclass(frozen=True)
class Projection:
    throughput: Throughput
    usd_per_million_tokens: float | None
    # With a load profile: replicas each hour of the day, the hours max_replicas cannot serve, the month.
    hourly_replicas: tuple[int, ...] | None = None
    unmet_hours: tuple[int, ...] = ()
    usd_per_month: float | None = None
    replica_capacity_rps: float | None = None


def project(plan: Plan) -> Projection:
    load = plan.deployment.load
    shape = {"prompt_tokens": load.prompt_tokens, "output_tokens": load.output_tokens} if load else {}
    rate = replica_throughput(plan, **shape)
    per_million = usd_per_million_tokens(plan.usd_per_replica_hour, rate.output_tokens_per_s)
    if load is None:
        return Projection(rate, per_million)
    scaling = plan.deployment.autoscaling
    capacity = target_requests_per_minute(plan) / 60
    needed = [math.ceil(rps / capacity - 1e-9) for rps in load.hourly()]
    hourly = tuple(min(max(n, scaling.min_replicas), scaling.max_replicas) for n in needed)
    unmet = tuple(hour for hour, n in enumerate(needed) if n > scaling.max_replicas)
    price = plan.usd_per_replica_hour
    month = None if price is None else sum(hourly) * price * DAYS_PER_MONTH
    return Projection(rate, per_million, hourly, unmet, month, capacity)
