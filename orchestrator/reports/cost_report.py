"""A stack priced on every cloud: rows per deployment, totals per cloud, and the HTML page.

Every output of `cost` (table, JSON, CSV, markdown, HTML) reads one `CostReport`, so the
numbers agree wherever they are shown. A deployment's month is its load-profile projection
when the spec has one, else its cost at min replicas; a cloud's total is complete only when
it can host every deployment of the stack at a known price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from orchestrator.planning.plan import Plan
from orchestrator.planning.planner import Infeasible, shape_of
from orchestrator.planning.projection import Projection, project
from orchestrator.pricing.hosted import HostedPrice, break_even_rps
from orchestrator.sizing.throughput import DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS, SECONDS_PER_HOUR, target_requests_per_minute

if TYPE_CHECKING:
    from orchestrator.pricing.catalog import Catalog

Result = Plan | Infeasible


@dataclass(frozen=True)
class Row:
    result: Result
    projection: Projection | None  # None where the cloud cannot host the deployment
    # The projected month under load, or the month at min replicas without a profile.
    usd_per_month: float | None


def _row(result: Result, projections: dict[tuple[object, ...], Projection]) -> Row:
    """The row of one result; `projections` shares the projection between deployments of the same
    shape on the same machines (a stack of thousands repeats a few dozen shapes)."""
    if not isinstance(result, Plan):
        return Row(result, None, None)
    key = (*shape_of(result.deployment), id(result.offer), id(result.layout), id(result.requirements))
    projection = projections.get(key)
    if projection is None:
        projection = projections[key] = project(result)
    month = projection.usd_per_month if projection.hourly_replicas is not None else result.usd_per_month_min
    return Row(result, projection, month)


@dataclass
class CloudTotal:
    cloud: str
    usd_per_hour_min: float = 0.0
    usd_per_hour_max: float = 0.0
    usd_per_month: float = 0.0
    price_is_lower_bound: bool = False
    hosted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # deployments it cannot host, or prices unknown

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class CostReport:
    catalog: Catalog
    deployments: dict[str, list[Row]]
    totals: list[CloudTotal]  # cheapest complete total first

    @property
    def has_load(self) -> bool:
        return any(row.projection and row.projection.hourly_replicas is not None for rows in self.deployments.values() for row in rows)


def cost_report(comparisons: dict[str, list[Result]], catalog: Catalog) -> CostReport:
    projections: dict[tuple[object, ...], Projection] = {}
    deployments = {name: sorted((_row(r, projections) for r in results), key=_cheapest_month) for name, results in comparisons.items()}
    return CostReport(catalog, deployments, _totals(deployments))


def _cheapest_month(row: Row) -> tuple[int, float, str]:
    """Billed prices first, by the month shown (under load where the spec has a profile); then the
    lower bounds (a VM price under a service that adds an unknown markup), which may end up dearer
    than any billed price; then unknown prices; then the clouds that cannot host it."""
    month, result = row.usd_per_month, row.result
    if not isinstance(result, Plan):
        return (3, 0.0, result.cloud)
    if month is None:
        return (2, 0.0, result.cloud)
    return (1 if result.offer.price_is_lower_bound else 0, month, result.cloud)


def _totals(deployments: dict[str, list[Row]]) -> list[CloudTotal]:
    totals: dict[str, CloudTotal] = {}
    for name, rows in deployments.items():
        for row in rows:
            total = totals.setdefault(row.result.cloud, CloudTotal(row.result.cloud))
            result = row.result
            month = row.usd_per_month
            if not isinstance(result, Plan) or month is None:
                total.missing.append(name)
                continue
            scaling = result.deployment.autoscaling
            total.hosted.append(name)
            total.usd_per_hour_min += result.usd_per_hour(scaling.min_replicas) or 0.0
            total.usd_per_hour_max += result.usd_per_hour(scaling.max_replicas) or 0.0
            total.usd_per_month += month
            total.price_is_lower_bound |= result.offer.price_is_lower_bound
    return sorted(totals.values(), key=lambda t: (not t.complete, t.price_is_lower_bound, t.usd_per_month, t.cloud))


@dataclass(frozen=True)
class HostedAlternative:
    """A hosted API's price for a deployment's workload, and where the deployment costs less.

    Self-hosting is billed by the replica, so it is cheaper than the API from the break-even load
    until its min replicas are full (`break_even_up_to_rps`); past that each added replica is a step
    up, below which the API is cheaper again for a while. At the autoscaling target every replica
    runs at `cost_ratio` of the API's price per request: the long-run comparison.
    """

    price: HostedPrice
    usd_per_million_output_tokens: float  # the request's input and output tokens, per 1M output tokens
    break_even_rps: float | None  # at min replicas; None: at the autoscaling target a replica costs more per request
    break_even_up_to_rps: float  # min replicas x a replica's requests/s at the autoscaling target
    cost_ratio: float  # a request's cost on a replica at the autoscaling target / on the API


@dataclass(frozen=True)
class HostedComparison:
    against: Plan  # the deployment's cheapest priced cloud
    prompt_tokens: int
    output_tokens: int
    alternatives: tuple[HostedAlternative, ...]

    @property
    def lower_bound(self) -> bool:
        """The cloud's price is a lower bound, so is the break-even load."""
        return self.against.offer.price_is_lower_bound


def hosted_comparison(rows: list[Row], hosted: tuple[HostedPrice, ...]) -> HostedComparison | None:
    """The hosted APIs against the deployment's first priced row (the cheapest), at its workload's
    tokens per request (the load profile's, or the throughput model's defaults)."""
    chosen = next((row.result for row in rows if isinstance(row.result, Plan) and row.result.usd_per_replica_hour is not None), None)
    if chosen is None or not hosted:
        return None
    load = chosen.deployment.load
    prompt, output = (load.prompt_tokens, load.output_tokens) if load else (DEFAULT_PROMPT_TOKENS, DEFAULT_OUTPUT_TOKENS)
    capacity = target_requests_per_minute(chosen) / 60
    price = chosen.usd_per_replica_hour
    assert price is not None
    minimum = chosen.deployment.autoscaling.min_replicas
    per_request_here = price / (capacity * SECONDS_PER_HOUR)
    alternatives = tuple(
        HostedAlternative(
            api,
            api.usd_per_million_output_tokens(prompt, output),
            break_even_rps(price, capacity, minimum, api.usd_per_request(prompt, output)),
            minimum * capacity,
            per_request_here / api.usd_per_request(prompt, output),
        )
        for api in hosted
    )
    return HostedComparison(chosen, prompt, output, alternatives)
