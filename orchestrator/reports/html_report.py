"""`cost --output html`: the cost report as one self-contained page with charts.

The page is rendered from `templates/report/cost.html.j2`; its charts are SVG drawn by pygal
and inlined, with pygal's tooltip script left out, so the page loads no script, font or
stylesheet from anywhere: it can be mailed, attached to a ticket, or opened offline.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from orchestrator.declared.spec import HOURS_PER_DAY
from orchestrator.iac.templating import environment
from orchestrator.planning.plan import Plan
from orchestrator.pricing.hosted import load_hosted
from orchestrator.reports.cost_report import hosted_comparison
from orchestrator.reports.report import HOSTED_HEADERS, headline, hosted_caption, hosted_cells, money, month_label, row_cells, total_month_label
from orchestrator.sizing.gpus import gpu_memory_gib, gpu_specs
from orchestrator.sizing.throughput import (
    DEFAULT_OUTPUT_TOKENS,
    DEFAULT_PROMPT_TOKENS,
    ENGINE_EFFICIENCY,
)

if TYPE_CHECKING:
    from orchestrator.reports.cost_report import CostReport, Row

CHART_SIZE = {"width": 760, "height": 340}


def html_page(report: CostReport, title: str) -> str:
    complete = [t for t in report.totals if t.complete]
    deployments = [
        {
            "name": name,
            "rows": [_row(row) for row in rows],
            "replicas_chart": _replicas_chart(name, rows),
            "sizing": _sizing(rows),
            "hosted": hosted_comparison(rows, load_hosted()),
        }
        for name, rows in report.deployments.items()
    ]
    sources = sorted(
        {
            (r.result.cloud, r.result.offer.instance_type, r.result.region, r.result.offer.source, r.result.offer.as_of or "undated")
            for rows in report.deployments.values()
            for r in rows
            if isinstance(r.result, Plan)
        }
    )
    return (
        environment()
        .get_template("report/cost.html.j2")
        .render(
            title=title,
            headline=headline(report),
            report=report,
            deployments=deployments,
            totals=report.totals,
            money=lambda value, low=False: _unbroken(money(value, low)),
            source_link=source_link,
            hosted_caption=hosted_caption,
            hosted_cells=lambda comparison: [[_unbroken(cell) for cell in cells] for cells in hosted_cells(comparison)],
            hosted_headers=HOSTED_HEADERS,
            hosted_prices=load_hosted(),
            month_label=month_label(report),
            total_month_label=total_month_label(report),
            cost_chart=_cost_chart(complete, report.has_load) if complete else None,
            sources=sources,
            efficiency=ENGINE_EFFICIENCY,
            default_prompt_tokens=DEFAULT_PROMPT_TOKENS,
            default_output_tokens=DEFAULT_OUTPUT_TOKENS,
            gpus=sorted(gpu_specs().values(), key=lambda g: -g.memory_bandwidth_gbps),
        )
    )


def _row(row: Row) -> dict[str, Any]:
    result = row.result
    if not isinstance(result, Plan):
        return {"feasible": False, "cloud": result.cloud, "region": result.region or "–", "reason": result.reason}
    unmet = row.projection.unmet_hours if row.projection else ()
    return {
        "feasible": True,
        "cloud": result.cloud,
        "region": result.region,
        "cells": [_unbroken(c) for c in row_cells(row)],
        "unmet": [f"{h:02d}h" for h in unmet],
    }


def _unbroken(text: str) -> str:
    """A lower bound's `≥` held to its number: a table cell never wraps between them."""
    return text.replace("≥ ", "≥\u00a0")


def _sizing(rows: list[Row]) -> list[dict[str, Any]]:
    """The arithmetic behind each feasible cloud's choice: memory, then throughput."""
    found = []
    for row in rows:
        result = row.result
        if not isinstance(result, Plan) or row.projection is None:
            continue
        req, rate = result.requirements, row.projection.throughput
        gpus = result.layout.tensor_parallel * result.layout.nodes
        found.append(
            {
                "cloud": result.cloud,
                "gpu": result.offer.gpu,
                "weights_gib": req.weights_gib,
                "kv_cache_gib": req.kv_cache_gib,
                "tensor_parallel": result.layout.tensor_parallel,
                "nodes": result.layout.nodes,
                "per_gpu_gib": req.per_gpu_gib(gpus),
                "gpu_memory_gib": gpu_memory_gib(result.offer),
                "rate": rate,
            }
        )
    return found


def _cost_chart(totals: list[Any], under_load: bool) -> str:
    import pygal

    chart = pygal.Bar(_config(title="Monthly cost per cloud" + (" under the load profile" if under_load else " at min replicas"), y_title="US$ per month"))
    chart.value_formatter = lambda value: f"${value:,.0f}"
    for total in totals:
        month = round(total.usd_per_month, 2)
        if total.price_is_lower_bound:  # marked in the chart too: the bar is a floor, the real bill is higher
            chart.add(
                f"{total.cloud} (≥, a lower bound)",
                [{"value": month, "formatter": lambda value: f"≥\u00a0${value:,.0f}", "label": "VM price; the service adds a markup"}],
            )
        else:
            chart.add(total.cloud, [month])
    return Markup(chart.render(is_unicode=True))


def _replicas_chart(name: str, rows: list[Row]) -> str | None:
    import pygal

    series = [(r.result.cloud, r.projection.hourly_replicas) for r in rows if r.projection and r.projection.hourly_replicas is not None]
    if not series:
        return None
    # Clouds that need the same replicas draw the same line: each is drawn thinner and dashed
    # differently than the one before it, so none hides another. pygal's own `.reactive` rule sets
    # every line's width directly (its per-series stroke_style only reaches the group), hence the
    # !important.
    config = _config(title=f"{name}: replicas over the day (UTC)", y_title="replicas")
    config.print_values = False
    config.css = [*config.css, "inline:" + "".join(_line_style(position, len(series)) for position in range(len(series)))]
    chart = pygal.Line(config)
    chart.x_labels = [f"{hour:02d}" for hour in range(HOURS_PER_DAY)]
    chart.y_labels = list(range(0, max(max(hourly) for _, hourly in series) + 1))  # replicas come whole
    for cloud, hourly in series:
        chart.add(cloud, list(hourly))
    return Markup(chart.render(is_unicode=True))


def _line_style(position: int, count: int) -> str:
    dashes = "none" if position == 0 else f"{2 + 3 * position},{2 + position}"
    return f".serie-{position} .line{{stroke-width:{2 + 2 * (count - position)}px !important;stroke-dasharray:{dashes} !important}}"


def source_link(source: str) -> str | None:
    """Where a price source can be read, as a link: a URL in it, or a GitHub file named
    `owner/repo:path@commit` (the catalog's form for a file read at a commit)."""
    found = re.search(r"https?://[^\s,;)]+", source)
    if found:
        return found.group(0)
    pinned = re.fullmatch(r"([\w.-]+/[\w.-]+):([^@\s]+)@([0-9a-f]{7,40})", source.strip())
    if pinned:
        repo, path, commit = pinned.groups()
        return f"https://github.com/{repo}/blob/{commit}/{path}"
    return None


def _config(title: str, y_title: str) -> Any:
    import pygal

    # js=[]: pygal would otherwise link its tooltip script from a CDN.
    return pygal.Config(
        title=title,
        y_title=y_title,
        js=[],
        disable_xml_declaration=True,
        explicit_size=True,
        print_values=True,
        legend_at_bottom=True,
        show_y_guides=True,
        **CHART_SIZE,
    )
