"""Plans and comparisons as data: the JSON, CSV and markdown that pipelines and people read.

The JSON shapes here are the documented `--output json` schema; field names only grow.
A price that is unknown is `null`, never 0, and a VM price standing in for a managed one is
flagged `price_is_lower_bound`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from orchestrator.errors import LlamadeployError
from orchestrator.planning.plan import Plan
from orchestrator.planning.planner import Infeasible, shape_of
from orchestrator.planning.projection import Projection, project
from orchestrator.planning.serving import startup_of
from orchestrator.pricing.catalog import Catalog, Offer
from orchestrator.pricing.hosted import load_hosted
from orchestrator.reports.cost_report import CloudTotal, CostReport, HostedComparison, Row, hosted_comparison
from orchestrator.sizing.gpus import gpu_memory_gib
from orchestrator.sizing.memory import (
    GPU_MEMORY_UTILIZATION,
    RUNTIME_OVERHEAD_GIB_PER_GPU,
    usable_gib,
)

if TYPE_CHECKING:
    from orchestrator.lifecycle.engine import StatusRow
    from orchestrator.sizing.throughput import Throughput
    from providers.base import QuotaView


def catalog_dict(catalog: Catalog) -> dict[str, Any]:
    return {"path": catalog.path, "dated": catalog.dated}


def offer_dict(offer: Offer) -> dict[str, Any]:
    return {
        "cloud": offer.cloud,
        "service": offer.service,
        "region": offer.region,
        "instance_type": offer.instance_type,
        "gpu": offer.gpu,
        "gpu_count": offer.gpu_count,
        "gpu_memory_gib": round(gpu_memory_gib(offer), 2),
        "vcpus": offer.vcpus,
        "memory_gib": offer.memory_gib,
        "usd_per_hour": offer.usd_per_hour,
        "spot_usd_per_hour": offer.spot_usd_per_hour,
        "price_basis": offer.price_basis,
        "price_is_lower_bound": offer.price_is_lower_bound,
        "source": offer.source,
        "as_of": offer.as_of or None,
    }


def quota_dict(plan: Plan, view: QuotaView | None) -> dict[str, Any]:
    """A plan's quota in `plan --output json`: what was read, or why nothing was (docs/pipelines.md)."""
    quota = view.quota if view is not None else None
    reason = None
    if quota is None:
        reason = "--no-refresh" if view is None else view.unchecked or f"llamadeploy reads no quota on {plan.cloud}"
    read = {
        "name": quota.name if quota else None,
        "limit": quota.limit if quota else None,
        "used": quota.used if quota else None,
        "needed": quota.needed if quota else None,
        "unit": quota.unit if quota else None,
        "enough": quota.enough if quota else None,
        "request": quota.request if quota else None,
    }
    return {"deployment": plan.deployment.name, "cloud": plan.cloud, "region": plan.region, "checked": quota is not None, "reason": reason, **read}


def quota_words(view: QuotaView | None) -> str:
    """A plan's quota in a sentence, for the table."""
    if view is None:
        return "quota not read (--no-refresh)"
    if view.quota is None:
        return f"quota not read ({view.unchecked})" if view.unchecked else "no quota check on this cloud"
    if view.quota.enough:
        return view.quota.describe()
    return f"{view.quota.describe()}: `up` would stop here; {view.quota.request}"


def plan_dict(plan: Plan, projection: Projection | None = None) -> dict[str, Any]:
    deployment, req, offer = plan.deployment, plan.requirements, plan.offer
    projection = projection or project(plan)
    scaling = deployment.autoscaling
    gpus = plan.layout.tensor_parallel * plan.layout.nodes
    return {
        "deployment": deployment.name,
        "feasible": True,
        "cloud": plan.cloud,
        "service": plan.service,
        "region": plan.region,
        "region_source": plan.region_source,
        "model": req.model.name,
        "hf_repo": plan.hf_repo,
        "quantization": deployment.quantization,
        "instance_type": offer.instance_type,
        "gpu": offer.gpu,
        "gpu_memory_gib": round(gpu_memory_gib(offer), 2),
        "gpus_per_replica": plan.gpus_per_replica,
        "tensor_parallel": plan.layout.tensor_parallel,
        "instances_per_replica": plan.instances_per_replica,
        "replicas": {"min": scaling.min_replicas, "max": scaling.max_replicas, "target_concurrent_requests": deployment.target_concurrent_requests},
        "price": {
            "usd_per_hour_min": _rounded(plan.usd_per_hour(scaling.min_replicas), 4),
            "usd_per_hour_max": _rounded(plan.usd_per_hour(scaling.max_replicas), 4),
            "usd_per_month_min": _rounded(plan.usd_per_month_min, 2),
            "usd_per_month_max": _rounded(plan.usd_per_month_max, 2),
            "price_basis": offer.price_basis,
            "price_is_lower_bound": offer.price_is_lower_bound,
            "source": offer.source,
            "as_of": offer.as_of or None,
        },
        "sizing": {
            "parameters": req.model.parameters,
            "weights_gib": round(req.weights_gib, 2),
            "kv_cache_gib": round(req.kv_cache_gib, 2),
            "kv_cache_bytes_per_token": req.model.kv_bytes_per_token(2),
            "runtime_overhead_gib_per_gpu": RUNTIME_OVERHEAD_GIB_PER_GPU,
            "min_gpus": plan.layout.min_gpus,
            "total_gib": round(req.total_gib(gpus), 2),
            "per_gpu_gib": round(req.per_gpu_gib(gpus), 2),
            "usable_per_gpu_gib": round(usable_gib(gpu_memory_gib(offer)), 2),
            "gpu_memory_utilization": GPU_MEMORY_UTILIZATION,
            "sized_from": req.sized_from or None,
        },
        "runner_up": None
        if plan.runner_up is None
        else {
            "instance_type": plan.runner_up.instance_type,
            "gpus_per_replica": plan.runner_up.gpus_per_replica,
            "measure": plan.runner_up.measure,
            "value": _rounded(plan.runner_up.value, 4),
            "chosen": _rounded(plan.runner_up.chosen, 4),
        },
        "serving": serving_dict(plan),
        "throughput": throughput_dict(projection.throughput),
        "usd_per_million_output_tokens": _rounded(projection.usd_per_million_tokens, 4),
        "load": None
        if projection.hourly_replicas is None
        else {
            "hourly_replicas": list(projection.hourly_replicas),
            "unmet_hours": list(projection.unmet_hours),
            "replica_capacity_rps": _rounded(projection.replica_capacity_rps, 4),
            "usd_per_month": _rounded(projection.usd_per_month, 2),
        },
        "resources": [{"type": r.type, "name": r.name} for r in plan.described_by.resources(plan)],  # not plan.resources: not kept per plan
    }


def serving_dict(plan: Plan) -> dict[str, Any] | None:
    """How the cloud runs vLLM for the plan: image, start, route, scaling signal, startup, what the user provides."""
    contract = plan.contract
    if contract is None:
        return None
    verdict, cannot_start = startup_of(plan)
    scaling = contract.scaling
    return {
        "checkpoint": plan.hf_repo,
        "image": contract.image,
        "started": contract.started,
        "route": contract.route,
        "reached": plan.described_by.reach(plan.deployment),
        "public_warning": plan.described_by.public_warning(plan.deployment),
        "scaling": {"metric": scaling.metric, "target": scaling.target, "unit": scaling.unit, "why": scaling.why},
        "startup": {"limit_s": contract.startup_limit_s, "setting": contract.startup_setting, "verdict": verdict, "can_start": not cannot_start},
        "needs": list(contract.needs),
    }


def throughput_dict(rate: Throughput) -> dict[str, Any]:
    return {
        "output_tokens_per_s": round(rate.output_tokens_per_s, 2),
        "requests_per_s": round(rate.requests_per_s, 4),
        "decode_step_ms": round(rate.decode_step_s * 1000, 3),
        "prefill_ms": round(rate.prefill_s * 1000, 3),
        "bound": rate.bound,
        "prompt_tokens": rate.prompt_tokens,
        "output_tokens": rate.output_tokens,
        "efficiency": rate.efficiency,
        "gpus": rate.gpus,
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def row_dict(row: Row) -> dict[str, Any]:
    result = row.result
    if isinstance(result, Plan):
        return plan_dict(result, row.projection)
    return {"deployment": result.deployment.name, "feasible": False, "cloud": result.cloud, "region": result.region, "reason": result.reason}


def total_dict(total: CloudTotal) -> dict[str, Any]:
    return {
        "cloud": total.cloud,
        "complete": total.complete,
        "deployments": total.hosted,
        "missing": total.missing,
        "usd_per_hour_min": round(total.usd_per_hour_min, 4),
        "usd_per_hour_max": round(total.usd_per_hour_max, 4),
        "usd_per_month": round(total.usd_per_month, 2),
        "price_is_lower_bound": total.price_is_lower_bound,
    }


def headline(report: CostReport) -> str:
    """Which cloud, and why, in one sentence: the cheapest billed month of the stack, how much below
    the next cloud, and the machines each needs (a lower bound is said to be one)."""
    priced = [t for t in report.totals if t.complete]
    if not priced:
        return "No cloud compared can host every deployment at a known price; the tables say why."
    best, rest = priced[0], priced[1:]
    where = ""
    if len(report.deployments) == 1:
        rows = {row.result.cloud: row.result for row in next(iter(report.deployments.values())) if isinstance(row.result, Plan)}
        plan = rows[best.cloud]
        where = f" {plan.region}"
    sentence = f"{best.cloud.upper() if best.cloud in ('aws', 'gcp', 'oci') else best.cloud.capitalize()}{where} is cheapest at {money(best.usd_per_month, best.price_is_lower_bound)}/month"
    if rest:
        other = rest[0]
        below = 1 - best.usd_per_month / other.usd_per_month if other.usd_per_month else 0.0
        name = other.cloud.upper() if other.cloud in ("aws", "gcp", "oci") else other.cloud.capitalize()
        sentence += f", {below:.0%} below {name}" + (" (whose price is a lower bound)" if other.price_is_lower_bound else "")
        if len(report.deployments) == 1:
            mine, theirs = rows[best.cloud], rows[other.cloud]
            sentence += f"; it needs {mine.gpus_per_replica}×{mine.offer.gpu} where {name} needs {theirs.gpus_per_replica}×{theirs.offer.gpu}"
    return sentence + "."


def cost_json(report: CostReport, indent: int | None = None) -> Iterator[str]:
    """`cost --output json`, one deployment at a time: a stack of 10,000 deployments is written as it
    is encoded, never held whole as one document (nor as the dicts that make it). Compact unless
    `indent` is given (a person reading it in a terminal)."""
    dump = partial(json.dumps, indent=indent, separators=None if indent else (",", ":"))
    pad = "\n" if indent else ""
    yield f'{{"catalog":{dump(catalog_dict(report.catalog))},{pad}"deployments":['
    rows_json = (lambda rows: dump([row_dict(r) for r in rows])) if indent else _CompactRows().encode
    hosted_json = _HostedJson(dump)
    for position, (name, rows) in enumerate(report.deployments.items()):
        yield ("," if position else "") + pad + f'{{"name":{dump(name)},"clouds":{rows_json(rows)},"hosted_apis":{hosted_json.encode(rows)}}}'
    yield f'{pad}],{pad}"totals":{dump([total_dict(t) for t in report.totals])}}}\n'


class _CompactRows:
    """Rows as compact JSON, each shape's part encoded once.

    A platform team's stack repeats a few dozen shapes (model, sizes, scaling, serving) across
    thousands of deployments; everything in a row but its name and resources follows from the
    shape, the cloud, the region and the offer, so that part is built and encoded once per
    shape and spliced into each row. The text is what `json.dumps(row_dict(row))` writes.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[object, ...], str] = {}
        self._shapes: dict[int, str] = {}

    def encode(self, rows: list[Row]) -> str:
        return "[" + ",".join(self._row(row) for row in rows) + "]"

    def _row(self, row: Row) -> str:
        result = row.result
        if not isinstance(result, Plan):
            return _compact(row_dict(row))
        deployment = result.deployment
        shape = self._shapes.get(id(deployment))
        if shape is None:
            shape = self._shapes[id(deployment)] = deployment.model_dump_json(exclude={"name", "tags"})
        key = (shape, result.cloud, result.region, result.region_source, id(result.offer))
        part = self._parts.get(key)
        if part is None:
            whole = plan_dict(result, row.projection)
            del whole["deployment"], whole["resources"]
            part = self._parts[key] = _compact(whole)[1:-1]
        resources = [{"type": r.type, "name": r.name} for r in result.described_by.resources(result)]
        return f'{{"deployment":{_compact(deployment.name)},{part},"resources":{_compact(resources)}}}'


class _HostedJson:
    """A deployment's hosted-API comparison as JSON, encoded once per shape on the same machines."""

    def __init__(self, dump: Callable[[Any], str]) -> None:
        self._dump = dump
        self._encoded: dict[tuple[object, ...], str] = {}

    def encode(self, rows: list[Row]) -> str:
        chosen = next((row.result for row in rows if isinstance(row.result, Plan) and row.result.usd_per_replica_hour is not None), None)
        if chosen is None:
            return "null"
        key = (*shape_of(chosen.deployment), chosen.cloud, chosen.region, id(chosen.offer), id(chosen.layout))
        if key not in self._encoded:
            comparison = hosted_comparison(rows, load_hosted())
            self._encoded[key] = self._dump(hosted_dict(comparison) if comparison else None)
        return self._encoded[key]


# One encoder for every row: json.dumps would build one per call.
_compact = json.JSONEncoder(separators=(",", ":")).encode


CSV_COLUMNS = (
    "deployment",
    "rank",
    "cloud",
    "service",
    "region",
    "instance_type",
    "gpu",
    "gpus_per_replica",
    "min_replicas",
    "max_replicas",
    "usd_per_hour_min",
    "usd_per_hour_max",
    "usd_per_month_min",
    "usd_per_month_max",
    "price_basis",
    "price_is_lower_bound",
    "feasible",
    "reason",
    "output_tokens_per_s",
    "usd_per_million_output_tokens",
    "usd_per_month",
)


def cost_csv(report: CostReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for name, rows in report.deployments.items():
        for rank, row in enumerate(rows, start=1):
            writer.writerow({key: _csv_value(value) for key, value in _csv_row(name, rank, row).items()})
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    """A cell as spreadsheets and pandas read it: booleans as `true`/`false`, not Python's `True`."""
    return ("true" if value else "false") if isinstance(value, bool) else value


def _csv_row(name: str, rank: int, row: Row) -> dict[str, Any]:
    result = row.result
    if isinstance(result, Infeasible):
        return {"deployment": name, "cloud": result.cloud, "region": result.region or "", "feasible": False, "reason": result.reason.splitlines()[0]}
    data = plan_dict(result, row.projection)
    price = data["price"]
    return {
        "deployment": name,
        "rank": rank,
        "cloud": result.cloud,
        "service": result.service,
        "region": result.region,
        "instance_type": data["instance_type"],
        "gpu": data["gpu"],
        "gpus_per_replica": data["gpus_per_replica"],
        "min_replicas": data["replicas"]["min"],
        "max_replicas": data["replicas"]["max"],
        "usd_per_hour_min": _csv_number(price["usd_per_hour_min"]),
        "usd_per_hour_max": _csv_number(price["usd_per_hour_max"]),
        "usd_per_month_min": _csv_number(price["usd_per_month_min"]),
        "usd_per_month_max": _csv_number(price["usd_per_month_max"]),
        "price_basis": price["price_basis"],
        "price_is_lower_bound": price["price_is_lower_bound"],
        "feasible": True,
        "reason": "",
        "output_tokens_per_s": f"{row.projection.throughput.output_tokens_per_s:.2f}" if row.projection else "",
        "usd_per_million_output_tokens": _csv_number(row.projection.usd_per_million_tokens if row.projection else None),
        "usd_per_month": _csv_number(row.usd_per_month),
    }


def _csv_number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def money(value: float | None, lower_bound: bool = False) -> str:
    """`$1,234.56`; `≥ $…` for a lower bound; `price unknown` rather than a misleading 0."""
    if value is None:
        return "price unknown"
    return f"{'≥ ' if lower_bound else ''}${value:,.2f}"


def cost_markdown(report: CostReport) -> str:
    """The side-by-side tables for a pull-request comment: one per deployment, then totals."""
    month = month_label(report)
    lines = []
    for name, rows in report.deployments.items():
        lines += [
            f"### {name}",
            "",
            f"| # | cloud | region | instance | GPUs/replica | $/h at min | $/h at max | {month} | out tok/s per replica | $/1M out tokens | price basis |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for rank, row in enumerate(rows, start=1):
            result = row.result
            if isinstance(result, Infeasible):
                lines.append(f"| – | {result.cloud} | {result.region or '–'} | cannot host: {_md(result.reason.splitlines()[0])} | | | | | | | |")
                continue
            cells = row_cells(row)
            lines.append(f"| {rank} | {result.cloud} | {result.region} | {' | '.join(cells)} |")
        lines.append("")
        comparison = hosted_comparison(rows, load_hosted())
        if comparison:
            lines += [hosted_caption(comparison) + ":", "", "| " + " | ".join(HOSTED_HEADERS) + " |", "|" + "---|" * len(HOSTED_HEADERS)]
            lines += ["| " + " | ".join(_md(cell) for cell in cells) + " |" for cells in hosted_cells(comparison)]
            lines.append("")
    if len(report.deployments) > 1:
        lines += [
            f"### Total per cloud ({len(report.deployments)} deployments)",
            "",
            "| cloud | $/h at min | $/h at max | " + total_month_label(report) + " | can host |",
            "|---|---|---|---|---|",
        ]
        for total in report.totals:
            low = total.price_is_lower_bound
            hosts = "all" if total.complete else f"not {', '.join(total.missing)}"
            lines.append(
                f"| {total.cloud} | {money(total.usd_per_hour_min, low)} | {money(total.usd_per_hour_max, low)} | {money(total.usd_per_month, low)} | {hosts} |"
            )
        lines.append("")
    lines.append(
        f"Price catalog: {report.catalog.dated}. A price marked ≥ is a VM price under a service that adds an unpublished markup: a lower bound. Tokens/s from the roofline model in `orchestrator/sizing/throughput.py`."
    )
    lines.append("Hosted API prices: " + "; ".join(f"{p.vendor} {p.model}: {p.source}, {p.as_of}" for p in load_hosted()) + ".")
    return "\n".join(lines) + "\n"


HOSTED_HEADERS = (
    "hosted API",
    "$/1M in",
    "$/1M out",
    "$/1M out tokens, this workload",
    "break-even on min replicas",
    "per request at target, vs API",
    "price as of",
)


def hosted_caption(comparison: HostedComparison) -> str:
    plan = comparison.against
    return (
        f"Hosted APIs, price only (the models differ), at {comparison.prompt_tokens:,} prompt + {comparison.output_tokens:,} output tokens per request, "
        f"against {plan.cloud} {plan.offer.instance_type} at {money(plan.usd_per_replica_hour, comparison.lower_bound)}/h per replica"
    )


def hosted_cells(comparison: HostedComparison) -> list[list[str]]:
    """Each hosted API as a table row: its list prices, this workload's cost per 1M output tokens,
    and the load from which the deployment's cheapest cloud costs less (≥ where its price is a lower bound)."""
    return [
        [
            f"{alternative.price.vendor} {alternative.price.model}",
            money(alternative.price.usd_per_million_input),
            money(alternative.price.usd_per_million_output),
            money(alternative.usd_per_million_output_tokens),
            break_even_words(alternative.break_even_rps, alternative.break_even_up_to_rps, comparison.lower_bound),
            f"{'≥ ' if comparison.lower_bound else ''}{alternative.cost_ratio:.0%}",
            alternative.price.as_of,
        ]
        for alternative in comparison.alternatives
    ]


def break_even_words(rps: float | None, up_to: float, lower_bound: bool) -> str:
    if rps is None:
        return "never: a replica at the autoscaling target costs more per request"
    return f"{'≥ ' if lower_bound else ''}{rps:,.2f} req/s ({rps * 86400:,.0f} requests/day), cheaper up to {up_to:,.2f} req/s"


def hosted_dict(comparison: HostedComparison) -> dict[str, Any]:
    plan = comparison.against
    return {
        "against": {"cloud": plan.cloud, "region": plan.region, "instance_type": plan.offer.instance_type, "price_is_lower_bound": comparison.lower_bound},
        "prompt_tokens": comparison.prompt_tokens,
        "output_tokens": comparison.output_tokens,
        "apis": [
            {
                "vendor": a.price.vendor,
                "model": a.price.model,
                "usd_per_million_input": a.price.usd_per_million_input,
                "usd_per_million_output": a.price.usd_per_million_output,
                "usd_per_million_output_tokens_this_workload": round(a.usd_per_million_output_tokens, 4),
                "break_even_requests_per_s": _rounded(a.break_even_rps, 4),
                "break_even_up_to_requests_per_s": round(a.break_even_up_to_rps, 4),
                "cost_ratio_at_target": round(a.cost_ratio, 4),
                "source": a.price.source,
                "as_of": a.price.as_of,
            }
            for a in comparison.alternatives
        ],
    }


def row_cells(row: Row) -> list[str]:
    """A feasible row's cells from the instance on, as every table shows them."""
    result = row.result
    assert isinstance(result, Plan) and row.projection is not None
    low, scaling = result.offer.price_is_lower_bound, result.deployment.autoscaling
    instance = result.offer.instance_type + (f" x {result.layout.nodes}" if result.layout.nodes > 1 else "")
    return [
        instance,
        f"{result.gpus_per_replica}× {result.offer.gpu}",
        money(result.usd_per_hour(scaling.min_replicas), low),
        money(result.usd_per_hour(scaling.max_replicas), low),
        _month(row, low),
        f"{row.projection.throughput.output_tokens_per_s:,.0f}",
        money(row.projection.usd_per_million_tokens, low),
        result.offer.basis_label,
    ]


def _month(row: Row, low: bool) -> str:
    """The month under load; without a load profile, at min and at max replicas."""
    result = row.result
    assert isinstance(result, Plan) and row.projection is not None
    if row.projection.hourly_replicas is not None or result.usd_per_month_max == result.usd_per_month_min:
        return money(row.usd_per_month, low)
    return f"{money(result.usd_per_month_min, low)} – {money(result.usd_per_month_max, low)}"


def month_label(report: CostReport) -> str:
    return "$/month under load" if report.has_load else "$/month at min – max replicas"


def total_month_label(report: CostReport) -> str:
    """A total adds each deployment's month under its load profile, or at min replicas."""
    return "$/month (under load, else at min replicas)" if report.has_load else "$/month at min replicas"


def plural(count: int, noun: str) -> str:
    """`1 GPU`, `2 GPUs`: a count with its noun, as a sentence says it."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def reach_of(record: Any) -> str | None:
    """How a recorded deployment is reached, from its recorded spec and its cloud's provider."""
    from providers import registry

    try:
        return registry.get(record.cloud).reach(record.declared())
    except LlamadeployError:  # a plugin no longer installed, or a spec this version no longer reads
        return None


def status_dict(row: StatusRow) -> dict[str, Any]:
    record, live = row.record, row.live
    return {
        "deployment": record.name,
        "cloud": record.cloud,
        "region": record.region,
        "recorded_status": record.phase.value,
        "since": record.updated_at,
        "url": None if record.deployed is None else record.deployed.url,
        "reached": reach_of(record),
        "live": None
        if live is None
        else {
            "state": live.state.value,
            "replicas": live.replicas,
            "min_replicas": live.min_replicas,
            "max_replicas": live.max_replicas,
            "instance_type": live.instance_type,
            "missing": list(live.missing),
            "detail": live.detail,
        },
        "drift": list(row.drift),
        "moves": [
            {"from": m.source_cloud, "from_region": m.source_region, "to": m.target_cloud, "to_region": m.target_region, "at": m.at} for m in record.moves
        ],
        "draining": None if record.draining is None else record.draining.cloud,
        "error": row.error or None,
        "history": [
            {"operation": op.kind.value, "cloud": op.cloud, "status": op.status.value, "started_at": op.started_at, "finished_at": op.finished_at}
            for op in row.history
        ],
    }
