"""Plans, comparisons and offers as rich tables for a person at a terminal.

rich is imported here only, so commands asked for JSON never pay for it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from orchestrator.planning.plan import HOURS_PER_MONTH, Plan
from orchestrator.planning.planner import Infeasible
from orchestrator.planning.serving import startup_of
from orchestrator.pricing.catalog import Catalog, Offer
from orchestrator.pricing.hosted import load_hosted
from orchestrator.reports.cost_report import CostReport, hosted_comparison
from orchestrator.reports.report import HOSTED_HEADERS, hosted_caption, hosted_cells, money, month_label, plural, row_cells, total_month_label
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
        grid.add_row("reached", escape(planned.described_by.reach(deployment)))
        warning = planned.described_by.public_warning(deployment)
        if warning:
            grid.add_row("warning", f"[yellow]{escape(warning)}[/]")
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
    if req.sized_from.startswith(planned.weights or "\0"):
        weights = f"as stored in {req.sized_from}"
    elif req.sized_from:
        weights += f"; sized as {req.sized_from}"
    grid.add_row("weights", escape(f"{req.weights_gib:8.1f} GiB  {weights}"))
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


def plan_summary(out: Console, plans: list[Plan], actions: list[str], catalog: Catalog) -> None:
    """One line per deployment, for a stack of more than MAX_TABLES: what each block of `plan`
    says in thirty lines, a platform team reads across thousands as one table."""
    columns = [
        Column("deployment", ESSENTIAL),
        Column("cloud", 40),
        Column("region", 50),
        Column("instance", ESSENTIAL),
        Column("GPUs/replica", ESSENTIAL, right=True),
        Column("replicas", 60, right=True),
        Column("$/month at min", ESSENTIAL, right=True),
        Column("action", ESSENTIAL),
    ]
    rows = [
        [
            p.deployment.name,
            p.cloud,
            p.region,
            p.offer.instance_type + (f" x {p.layout.nodes}" if p.layout.nodes > 1 else ""),
            f"{p.gpus_per_replica}x {p.offer.gpu}",
            f"{p.deployment.autoscaling.min_replicas}-{p.deployment.autoscaling.max_replicas}",
            money(p.usd_per_month_min, p.offer.price_is_lower_bound),
            action,
        ]
        for p, action in zip(plans, actions, strict=True)
    ]
    fitted(out, columns, rows, title=f"{len(plans)} deployments; `--deployment NAME` shows one in full")
    out.print(f"[dim]Price catalog: {catalog.dated}. ≥: a VM price under a service that adds an unpublished markup.[/]")


MAX_TABLES = 50
PLAIN_ROWS = 200  # a table longer than this whose cells fit on one line is written without rich's layout


@dataclass(frozen=True)
class Column:
    """A column of a terminal table: its header, its alignment, how much it is needed (a narrow
    terminal drops the least needed first), and whether its text may wrap between words. A column
    that may not wrap (a price, a name) is never cut: it is shown whole or not at all."""

    header: str
    keep: int  # higher is kept longer; ESSENTIAL columns are never dropped
    right: bool = False
    wraps: bool = False


ESSENTIAL = 100


def fitted(out: Console, columns: list[Column], rows: list[list[str]], title: str | None = None, wide: bool = False) -> None:
    """Print `rows` as a table that fits the terminal with no cell cut short: the least needed
    columns are left out until it fits, and named below it (`--wide` keeps them all); when even the
    essential ones do not fit, each row is printed as a block of `header: value` lines."""
    shown = list(range(len(columns)))
    measured = {index: _column_widths(column, {_plain(row[index]) for row in rows}) for index, column in enumerate(columns)}
    while not wide and sum(measured[index][0] for index in shown) + 3 * len(shown) + 1 > out.width:
        droppable = [index for index in shown if columns[index].keep < ESSENTIAL]
        if not droppable:
            _blocks(out, columns, rows, title)
            return
        shown.remove(min(droppable, key=lambda index: columns[index].keep))
    least, natural = [measured[index][0] for index in shown], [measured[index][1] for index in shown]
    if len(rows) > PLAIN_ROWS and (wide or sum(natural) + 2 * len(shown) <= out.width):
        _plain_table(out, columns, rows, shown, natural, title)
        _left_out(out, columns, shown)
        return
    first = [not columns[index].wraps for index in shown]  # headers of whole-cell columns unwrap first, then the text columns widen
    widths = None if wide else _spread(least, natural, out.width - 3 * len(shown) - 1, first)
    table = Table(title=title, title_justify="left")
    for position, index in enumerate(shown):
        column = columns[index]
        # Widths are set here, each at least its widest unbreakable cell: rich never narrows a column
        # below them (it would cut a price), and headers wrap between words.
        table.add_column(column.header, justify="right" if column.right else "left", width=widths[position] if widths else None, overflow="fold")
    for row in rows:
        table.add_row(*(row[index] for index in shown))
    out.print(table)
    _left_out(out, columns, shown)


def _left_out(out: Console, columns: list[Column], shown: list[int]) -> None:
    left_out = [column.header for index, column in enumerate(columns) if index not in shown]
    if left_out:
        out.print(f"[dim]Left out to fit {out.width} columns: {', '.join(left_out)} (--wide shows them; --output json has every field).[/]")


def _column_widths(column: Column, texts: set[str]) -> tuple[int, int]:
    """A column's least width (its widest cell if it may not wrap, else its longest word; a header
    wraps between words) and its natural width (its widest line), from its distinct cells (a long
    table repeats its cells: each is measured once)."""
    widest = max((cell_len(text) for text in texts), default=0)
    words = max((cell_len(word) for text in texts | {column.header} for word in text.split()), default=1)
    return (words if column.wraps else max(words, widest)), max(widest, cell_len(column.header), words)


def _plain(cell: str) -> str:
    return Text.from_markup(cell).plain if "[" in cell else cell


def _plain_table(out: Console, columns: list[Column], rows: list[list[str]], shown: list[int], widths: list[int], title: str | None) -> None:
    """A long table whose cells all fit on one line, written a line at a time: rich measures and
    lays out every cell of a table before printing any, seconds for thousands of rows."""
    if title:
        out.print(title, markup=False)

    def line(cells: list[str]) -> str:
        return "  ".join(_pad(cell, width, columns[index].right) for index, cell, width in zip(shown, cells, widths, strict=True)).rstrip()

    out.print(line([columns[index].header for index in shown]), style="bold", markup=False)
    write = out.file.write
    for start in range(0, len(rows), 1000):
        write("".join(line([_plain(row[index]) for index in shown]) + "\n" for row in rows[start : start + 1000]))
    out.file.flush()


def _pad(cell: str, width: int, right: bool) -> str:
    spaces = " " * (width - (len(cell) if cell.isascii() else cell_len(cell)))
    return spaces + cell if right else cell + spaces


def _spread(least: list[int], natural: list[int], room: int, first: list[bool]) -> list[int]:
    """Widths from `least` toward `natural`, sharing out the room there is one cell at a time, to
    the `first` columns before the others."""
    widths = list(least)
    spare = room - sum(widths)
    for turn in (True, False):
        while spare > 0 and any(f is turn and w < n for f, w, n in zip(first, widths, natural, strict=True)):
            for position, (ahead, width, wanted) in enumerate(zip(first, widths, natural, strict=True)):
                if spare > 0 and ahead is turn and width < wanted:
                    widths[position] += 1
                    spare -= 1
    return widths


def _blocks(out: Console, columns: list[Column], rows: list[list[str]], title: str | None) -> None:
    """One record per block, for a terminal too narrow for even the essential columns."""
    if title:
        out.print(title)
    for row in rows:
        for column, cell in zip(columns, row, strict=True):
            if cell:
                out.print(f"  {column.header}: {cell}")
        out.print("")


def cost(out: Console, report: CostReport, wide: bool = False) -> None:
    """Each deployment's clouds side by side, cheapest first, then the stack's total per cloud.

    A stack of more than MAX_TABLES deployments gets its totals only: thousands of tables help
    no one in a terminal, and the other outputs carry every row.
    """
    month = month_label(report)
    shown = report.deployments if len(report.deployments) <= MAX_TABLES else {}
    if not shown:
        out.print(f"{len(report.deployments)} deployments: the total per cloud below; every deployment's rows with --output csv, json, markdown or html.")
    columns = [
        Column("#", 5, right=True),
        Column("cloud", ESSENTIAL),
        Column("region", 40, wraps=True),
        Column("instance", ESSENTIAL),
        Column("GPUs/replica", ESSENTIAL, right=True),
        Column("$/h at min", 30, right=True),
        Column("$/h at max", 20, right=True),
        Column(month, ESSENTIAL, right=True),
        Column("out tok/s", 50, right=True),
        Column("$/1M out tok", ESSENTIAL, right=True),
        Column("price basis / why not", 60, wraps=True),
    ]
    for name, rows in shown.items():
        cells: list[list[str]] = []
        unmet: list[str] = []
        for rank, row in enumerate(rows, start=1):
            result = row.result
            if isinstance(result, Infeasible):
                cells.append(["–", result.cloud, result.region or "–", "[red]cannot host[/]", "", "", "", "", "", "", result.reason])
                continue
            region = result.region + (" (cheapest)" if result.region_source == "cheapest" else "")
            cells.append([str(rank), result.cloud, region, *row_cells(row)])
            if row.projection and row.projection.unmet_hours:
                hours = ", ".join(f"{h:02d}h" for h in row.projection.unmet_hours)
                unmet.append(f"[yellow]{result.cloud}: max_replicas cannot serve the load at {hours} UTC[/]")
        # A cloud that cannot host it says why in the last column: kept, however narrow the terminal.
        infeasible = any(isinstance(row.result, Infeasible) for row in rows)
        shown_columns = [*columns[:-1], Column(columns[-1].header, ESSENTIAL if infeasible else columns[-1].keep, wraps=True)]
        fitted(out, shown_columns, cells, title=f"{name}: cheapest first", wide=wide)
        for line in unmet:
            out.print(line)
        comparison = hosted_comparison(rows, load_hosted())
        if comparison:
            hosted_columns = [
                Column(HOSTED_HEADERS[0], ESSENTIAL),
                Column(HOSTED_HEADERS[1], 30, right=True),
                Column(HOSTED_HEADERS[2], 30, right=True),
                Column(HOSTED_HEADERS[3], ESSENTIAL, right=True, wraps=True),
                Column(HOSTED_HEADERS[4], ESSENTIAL, wraps=True),
                Column(HOSTED_HEADERS[5], ESSENTIAL, right=True, wraps=True),
                Column(HOSTED_HEADERS[6], 20),
            ]
            fitted(out, hosted_columns, hosted_cells(comparison), title=hosted_caption(comparison), wide=wide)
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


def offers(out: Console, listed: list[Offer], catalog: Catalog, wide: bool = False) -> None:
    columns = [
        Column("cloud", ESSENTIAL),
        Column("region", ESSENTIAL),
        Column("instance", ESSENTIAL),
        Column("GPUs", ESSENTIAL, right=True),
        Column("GPU GiB", 40, right=True),
        Column("$/h", ESSENTIAL, right=True),
        Column("spot $/h", 30, right=True),
        Column("price basis", 20, wraps=True),
        Column("as of", 10),
    ]
    rows = [
        [
            offer.cloud,
            offer.region,
            offer.instance_type,
            f"{offer.gpu_count}x {offer.gpu}",
            f"{gpu_memory_gib(offer):.1f}",
            money(offer.usd_per_hour, offer.price_is_lower_bound),
            "" if offer.spot_usd_per_hour is None else money(offer.spot_usd_per_hour),
            offer.basis_label,
            offer.as_of or "undated",
        ]
        for offer in listed
    ]
    fitted(out, columns, rows, wide=wide)
    out.print(f"[dim]{len(listed)} offers. Price catalog: {catalog.dated}.[/]")


def gpu_summary(out: Console, listed: list[Offer], catalog: Catalog) -> None:
    """Per GPU type: the clouds that offer it and the cheapest $/GPU-hour, as `sky show-gpus` and
    `dstack offer` start; `gpus --gpu X` (or --cloud, --region) lists the offers themselves."""
    by_gpu: dict[str, list[Offer]] = {}
    for offer in listed:
        by_gpu.setdefault(offer.gpu, []).append(offer)
    rows = []
    for gpu, offers_of in sorted(by_gpu.items(), key=lambda item: -max(gpu_memory_gib(o) for o in item[1])):
        priced = [o for o in offers_of if o.usd_per_hour is not None]
        cheapest = min(priced, key=lambda o: o.usd_per_hour / o.gpu_count) if priced else None  # type: ignore[operator]
        per_gpu = money(cheapest.usd_per_hour / cheapest.gpu_count, cheapest.price_is_lower_bound) if cheapest and cheapest.usd_per_hour else "price unknown"
        rows.append(
            [
                gpu,
                f"{gpu_memory_gib(offers_of[0]):.1f}",
                ", ".join(sorted({o.cloud for o in offers_of})),
                per_gpu,
                f"{cheapest.cloud} {cheapest.instance_type}" if cheapest else "",
                str(len(offers_of)),
            ]
        )
    columns = [
        Column("GPU", ESSENTIAL),
        Column("GiB", ESSENTIAL, right=True),
        Column("clouds", ESSENTIAL, wraps=True),
        Column("cheapest $/GPU-h", ESSENTIAL, right=True),
        Column("on", 50),
        Column("offers", 40, right=True),
    ]
    fitted(out, columns, rows, title=f"{len(listed)} offers by GPU; `llamadeploy gpus --gpu H100` lists one GPU's offers")
    out.print(f"[dim]Price catalog: {catalog.dated}. ≥: a VM price under a service that adds an unpublished markup.[/]")


def models(out: Console, listed: list[LlamaModel], wide: bool = False) -> None:
    columns = [
        Column("model", ESSENTIAL),
        Column("Hugging Face repo", 60),
        Column("parameters", ESSENTIAL, right=True),
        Column("max context", ESSENTIAL, right=True),
        Column("layers", 30, right=True),
        Column("heads", 20, right=True),
        Column("KV heads", 25, right=True),
    ]
    rows = [
        [model.name, model.hf_repo, f"{model.parameters / 1e9:.2f} B", str(model.max_context), str(model.n_layers), str(model.n_heads), str(model.n_kv_heads)]
        for model in listed
    ]
    fitted(out, columns, rows, wide=wide)


def status(out: Console, rows: list[StatusRow], wide: bool = False) -> None:
    if not rows:
        out.print("No deployments recorded in this state file.")
        return
    columns = [
        Column("deployment", ESSENTIAL),
        Column("cloud", ESSENTIAL),
        Column("region", 40),
        Column("state", ESSENTIAL),
        Column("replicas", 50),
        Column("instance", 30),
        Column("since", 20),
        Column("drift / notes", 60, wraps=True),
    ]
    cells = []
    for row in rows:
        live = row.live
        replicas = "" if live is None or live.replicas is None else f"{live.replicas} ({live.min_replicas}-{live.max_replicas})"
        moves = row.record.moves
        moved = f"; moved from {moves[-1].source_cloud} {ago(moves[-1].at)}" if moves else ""
        notes = ("; ".join(row.drift) or row.error or "as deployed") + moved
        state = row.record.phase.value if live is None else live.state.value
        cells.append(
            [
                row.record.name,
                row.record.cloud,
                row.record.region,
                state,
                replicas,
                (live.instance_type or "") if live else "",
                ago(row.record.updated_at),
                f"[red]{escape(notes)}[/]" if row.drift or row.error else escape(notes),
            ]
        )
    fitted(out, columns, cells, wide=wide)


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
