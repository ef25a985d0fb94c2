"""Plans, comparisons and offers as rich tables for a person at a terminal.

rich is imported here only, so commands asked for JSON never pay for it.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestrator.planning.plan import HOURS_PER_MONTH, Plan
from orchestrator.planning.planner import Infeasible
from orchestrator.planning.serving import startup_of
from orchestrator.pricing.catalog import Catalog, Offer
from orchestrator.reports.cost_report import CostReport
from orchestrator.reports.report import money, month_label, plural, row_cells, total_month_label
from orchestrator.sizing.gpus import gpu_memory_gib
from orchestrator.sizing.memory import (
    AWQ_BYTES_PER_LINEAR_PARAMETER,
    BYTES_PER_PARAMETER,
    GPU_MEMORY_UTILIZATION,
    RUNTIME_OVERHEAD_GIB_PER_GPU,
    usable_gib,
)
from orchestrator.sizing.models import LlamaModel

if TYPE_CHECKING:
    from orchestrator.lifecycle.engine import StatusRow


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr); off a terminal it is wide enough that tables do not wrap in logs."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", "160"))
    return Console(width=width, highlight=False, soft_wrap=False, stderr=stderr)


def plan(out: Console, planned: Plan, catalog: Catalog) -> None:
    deployment, req, offer = planned.deployment, planned.requirements, planned.offer
    scaling = deployment.autoscaling
    low = offer.price_is_lower_bound
    gpus = planned.layout.tensor_parallel * planned.layout.nodes
    out.print(f"[bold]{deployment.name}[/] on [bold]{planned.cloud}[/] ({planned.service}), region {planned.region} ({planned.region_source})")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("model", f"{req.model.name} ({planned.hf_repo}), {req.model.parameters / 1e9:.2f} B parameters, {deployment.quantization}")
    nodes = f" x {planned.layout.nodes} instances" if planned.layout.nodes > 1 else ""
    grid.add_row(
        "instance",
        f"{offer.instance_type}{nodes}: {offer.gpu_count}x {offer.gpu} {gpu_memory_gib(offer):.1f} GiB, tensor parallel {planned.layout.tensor_parallel}",
    )
    runner_up = planned.runner_up
    if runner_up is not None:
        grid.add_row(
            "runner-up",
            f"{runner_up.instance_type} ({plural(runner_up.gpus_per_replica, 'GPU')}): {money(runner_up.value)}{runner_up.measure.removeprefix('$')}, "
            f"{runner_up.dearer_by:.0%} more than {money(runner_up.chosen)}",
        )
    contract = planned.contract
    grid.add_row(
        "replicas", f"{scaling.min_replicas} to {scaling.max_replicas}, aiming at {deployment.target_concurrent_requests} requests in flight per replica"
    )
    if contract is not None:
        signal = contract.scaling
        grid.add_row("scales on", escape(f"{signal.metric} at {signal.target:g} {signal.unit} ({signal.why})"))
        grid.add_row("serves", escape(f"{planned.hf_repo} with vLLM; {contract.image}"))
        grid.add_row("started", escape(contract.started))
        grid.add_row("route", escape(contract.route))
        verdict, cannot = startup_of(planned)
        grid.add_row("startup", f"[red]{escape(verdict)}[/]" if cannot else escape(verdict))
        for index, need in enumerate(contract.needs):
            grid.add_row("you provide" if index == 0 else "", f"[yellow]{escape(need)}[/]")
    grid.add_row(
        "price",
        f"{money(planned.usd_per_hour(scaling.min_replicas), low)}/h at {scaling.min_replicas}, "
        f"{money(planned.usd_per_hour(scaling.max_replicas), low)}/h at {scaling.max_replicas}; "
        f"{money(planned.usd_per_month_min, low)}/month at {scaling.min_replicas} ({HOURS_PER_MONTH} h)",
    )
    grid.add_row("", f"{offer.basis_label}; {offer.source}" + (f", {offer.as_of}" if offer.as_of else ", undated"))
    if deployment.quantization == "int4":
        linear, rest = req.model.linear_parameters / 1e9, (req.model.parameters - req.model.linear_parameters) / 1e9
        weights = f"{linear:.2f} B linear parameters x {AWQ_BYTES_PER_LINEAR_PARAMETER:.3f} B (int4 AWQ) + {rest:.2f} B x 2 B (embeddings, norms in bf16)"
    else:
        weights = f"{req.model.parameters / 1e9:.2f} B parameters x {BYTES_PER_PARAMETER[deployment.quantization]:g} B ({deployment.quantization})"
    grid.add_row("weights", f"{req.weights_gib:8.1f} GiB  {weights}")
    grid.add_row(
        "KV cache",
        f"{req.kv_cache_gib:8.1f} GiB  {req.model.kv_bytes_per_token(2) / 1024:g} KiB/token x {deployment.max_context} tokens x {deployment.concurrency} sequences",
    )
    grid.add_row("runtime", f"{RUNTIME_OVERHEAD_GIB_PER_GPU * gpus:8.1f} GiB  {RUNTIME_OVERHEAD_GIB_PER_GPU:g} GiB per GPU x {plural(gpus, 'GPU')}")
    grid.add_row(
        "total",
        f"{req.total_gib(gpus):8.1f} GiB  {req.per_gpu_gib(gpus):.1f} GiB per GPU of {usable_gib(gpu_memory_gib(offer)):.1f} usable "
        f"({gpu_memory_gib(offer):.1f} GiB x {GPU_MEMORY_UTILIZATION}); fits on {plural(planned.layout.min_gpus, 'GPU')} at least",
    )
    for index, resource in enumerate(planned.resources):
        grid.add_row("resources" if index == 0 else "", f"{resource.type}  [bold]{resource.name}[/]")
    out.print(grid)
    out.print(f"[dim]Price catalog: {catalog.dated}.[/]")


MAX_TABLES = 50


def cost(out: Console, report: CostReport) -> None:
    """Each deployment's clouds side by side, cheapest first, then the stack's total per cloud.

    A stack of more than MAX_TABLES deployments gets its totals only: thousands of tables help
    no one in a terminal, and the other outputs carry every row.
    """
    month = month_label(report)
    shown = report.deployments if len(report.deployments) <= MAX_TABLES else {}
    if not shown:
        out.print(f"{len(report.deployments)} deployments: the total per cloud below; every deployment's rows with --output csv, json, markdown or html.")
    for name, rows in shown.items():
        table = Table(title=f"{name}: cheapest first", title_justify="left")
        for column in (
            "#",
            "cloud",
            "region",
            "instance",
            "GPUs/replica",
            "$/h at min",
            "$/h at max",
            month,
            "out tok/s",
            "$/1M out tok",
            "price basis / why not",
        ):
            table.add_column(column, justify="right" if column.startswith(("$", "#", "GPUs", "out")) else "left")
        for rank, row in enumerate(rows, start=1):
            result = row.result
            if isinstance(result, Infeasible):
                table.add_row("–", result.cloud, result.region or "–", "[red]cannot host[/]", "", "", "", "", "", "", result.reason)
                continue
            region = result.region + (" (cheapest)" if result.region_source == "cheapest" else "")
            table.add_row(str(rank), result.cloud, region, *row_cells(row))
            if row.projection and row.projection.unmet_hours:
                hours = ", ".join(f"{h:02d}h" for h in row.projection.unmet_hours)
                table.add_row("", "", "", f"[yellow]max_replicas cannot serve the load at {hours} UTC[/]", *[""] * 7)
        out.print(table)
    if len(report.deployments) > 1:
        totals = Table(title=f"Total per cloud ({len(report.deployments)} deployments)", title_justify="left")
        for column in ("cloud", "$/h at min", "$/h at max", total_month_label(report), "can host"):
            totals.add_column(column, justify="right" if column.startswith("$") else "left")
        for total in report.totals:
            low = total.price_is_lower_bound
            hosts = "all" if total.complete else f"[red]not {', '.join(total.missing)}[/]"
            totals.add_row(total.cloud, money(total.usd_per_hour_min, low), money(total.usd_per_hour_max, low), money(total.usd_per_month, low), hosts)
        out.print(totals)
    out.print(
        f"[dim]Price catalog: {report.catalog.dated}. A price marked ≥ is a VM price under a service that adds an unpublished markup: a lower bound. "
        "Tokens/s: a roofline model (orchestrator/sizing/throughput.py), a planning figure, not a benchmark.[/]"
    )


def offers(out: Console, listed: list[Offer], catalog: Catalog) -> None:
    table = Table()
    for column in ("cloud", "region", "instance", "GPUs", "GPU GiB", "$/h", "spot $/h", "price basis", "as of"):
        table.add_column(column, justify="right" if column.startswith(("$", "spot", "GPU")) else "left")
    for offer in listed:
        table.add_row(
            offer.cloud,
            offer.region,
            offer.instance_type,
            f"{offer.gpu_count}x {offer.gpu}",
            f"{gpu_memory_gib(offer):.1f}",
            money(offer.usd_per_hour, offer.price_is_lower_bound),
            "" if offer.spot_usd_per_hour is None else money(offer.spot_usd_per_hour),
            offer.basis_label,
            offer.as_of or "undated",
        )
    out.print(table)
    out.print(f"[dim]{len(listed)} offers. Price catalog: {catalog.dated}.[/]")


def models(out: Console, listed: list[LlamaModel]) -> None:
    table = Table()
    for column in ("model", "Hugging Face repo", "parameters", "max context", "layers", "heads", "KV heads"):
        table.add_column(column, justify="left" if column in ("model", "Hugging Face repo") else "right")
    for model in listed:
        table.add_row(
            model.name, model.hf_repo, f"{model.parameters / 1e9:.2f} B", str(model.max_context), str(model.n_layers), str(model.n_heads), str(model.n_kv_heads)
        )
    out.print(table)


def status(out: Console, rows: list[StatusRow]) -> None:
    if not rows:
        out.print("No deployments recorded in this state file.")
        return
    table = Table()
    for column in ("deployment", "cloud", "region", "state", "replicas", "instance", "since", "drift / notes"):
        table.add_column(column)
    for row in rows:
        live = row.live
        replicas = "" if live is None or live.replicas is None else f"{live.replicas} ({live.min_replicas}-{live.max_replicas})"
        moves = row.record.moves
        moved = f"; moved from {moves[-1].source_cloud} at {moves[-1].at}" if moves else ""
        notes = ("; ".join(row.drift) or row.error or "as deployed") + moved
        state = row.record.phase.value if live is None else live.state.value
        table.add_row(
            row.record.name,
            row.record.cloud,
            row.record.region,
            state,
            replicas,
            (live.instance_type or "") if live else "",
            ago(row.record.updated_at),
            f"[red]{notes}[/]" if row.drift or row.error else notes,
        )
    out.print(table)


def ago(timestamp: str, now: datetime | None = None) -> str:
    """An ISO timestamp as a table shows it: `12 min ago`, `3 h ago`, `2 d ago` (JSON keeps the ISO form)."""
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    seconds = max(0.0, ((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def providers(out: Console, listed: list[dict[str, Any]]) -> None:
    table = Table("cloud", "service", "deploy", "export", "SDK", "source", box=None)
    for row in listed:
        sdk = "missing: " + row["install"] if row["install"] else ("missing: " + ", ".join(row["sdk_missing"]) if row["sdk_missing"] else "installed")
        cells = (
            row["name"],
            row["service"],
            "yes" if row["deploy"] else "plan and cost only",
            "yes" if row["export"] else "no",
            sdk if row["deploy"] else "-",
            row["source"],
        )
        table.add_row(*(Text(cell) for cell in cells))  # as text: `llamadeploy[aws]` is not markup
    out.print(table)
