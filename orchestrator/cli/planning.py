"""The commands that read a stack and the catalog without touching a cloud: plan, cost, gpus, models, providers."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import click

from orchestrator.cli.output import Output, emit_json, output_option, write_file
from orchestrator.cli.session import DETAILED_EXITCODE, EXIT_CHANGES, DetailedExitCommand, cloud_list, cloud_names
from orchestrator.errors import LlamadeployError, UsageError


def _plan_summary(console, plans, changes, quotas, failed: dict[str, str], catalog) -> None:
    """A large stack's plan: one table row per deployment, then only what needs a reader's eye: the
    fields each changed deployment would change, and each distinct quota verdict once with its count."""
    from collections import Counter

    from orchestrator.reports import render
    from orchestrator.reports.report import quota_words

    render.plan_summary(console, plans, [change.action.value for change in changes], catalog)
    for change in changes:
        if change.fields or change.deployment in failed:
            console.print(f"{change.deployment}: {change.detail}", markup=False)
            if change.deployment in failed:
                console.print(f"  not refreshed from the cloud ({failed[change.deployment]})", markup=False)
            for field in change.fields:
                console.print(f"  {field}", markup=False)
    for words, count in Counter(quota_words(quota) for quota in quotas).items():
        console.print(f"{words}: {count} deployment{'s' if count != 1 else ''}", markup=False)


@click.command(cls=DetailedExitCommand)
@click.argument("stack", type=click.Path())
@click.option("--cloud", help="Cloud to plan on (aws, azure, gcp, oci); default: the one the placement names.", callback=cloud_names)
@click.option("--region", help="Region to plan in, overriding the placement.")
@click.option("--deployment", "only", metavar="NAME", help="Plan only this deployment of the stack.")
@output_option()
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when `up` would change nothing, 2 when it would, 1 on error (as terraform plan).")
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Where the cloud's credentials are configured, read its quota for the planned machines and the deployments' own weights (weights:); --no-refresh plans offline.",
)
@click.pass_context
def plan(ctx: click.Context, stack: str, cloud: str | None, region: str | None, only: str | None, out: Output, detailed_exitcode: bool, refresh: bool) -> None:
    """Size a stack's deployments and choose instances and prices on one cloud; no credentials needed (with them, it shows the quota too)."""
    from orchestrator.planning.changes import ChangeAction, pending, summary

    ctx.meta[DETAILED_EXITCODE] = detailed_exitcode
    from orchestrator.bulk import paused_gc
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.planning.planner import plan_stack

    catalog = ctx.obj.catalog()
    with paused_gc(freeze=True):  # one command, then exit: nothing built here needs the collector
        plans = plan_stack(load_stack(stack, catalog), cloud, catalog, region, only, offline=not refresh)
    # Only read the state: planning never creates a state file.
    recorded = ctx.obj.state().get if ctx.obj.state_location().exists() else lambda _: None
    records = {p.deployment.name: recorded(p.deployment.name) for p in plans}
    refreshed = _refreshed(records) if refresh else {}
    failed = {name: r.failed for name, r in refreshed.items() if r.failed}
    if failed and detailed_exitcode:  # as Terraform's: a refresh that fails is an error, never "no changes"
        raise LlamadeployError(
            "cannot refresh from the cloud: " + "; ".join(f"{name}: {why}" for name, why in failed.items()) + " (--no-refresh plans from the state alone)"
        )
    changes = pending(records.get, plans, {name: r.live for name, r in refreshed.items() if r.live is not None})
    quotas = _quotas(plans) if refresh else [None] * len(plans)
    if out.json:
        from dataclasses import asdict

        from orchestrator.reports.report import catalog_dict, plan_dict, quota_dict

        emit_json(
            {
                "catalog": catalog_dict(catalog),
                "plans": [plan_dict(p) for p in plans],
                "changes": [asdict(c) for c in changes],
                "summary": summary(changes),
                "quotas": [quota_dict(p, q) for p, q in zip(plans, quotas, strict=True)],
            }
        )
    else:
        from orchestrator.reports import render
        from orchestrator.reports.report import quota_words

        console = render.console()
        if len(plans) > render.MAX_TABLES:
            _plan_summary(console, plans, changes, quotas, failed, catalog)
        else:
            for planned, change, quota in zip(plans, changes, quotas, strict=True):
                render.plan(console, planned, catalog)
                console.print(f"{change.deployment}: {quota_words(quota)}", markup=False)
                if change.deployment in failed:
                    console.print(f"{change.deployment}: not refreshed from the cloud ({failed[change.deployment]})", markup=False)
                console.print(f"{change.deployment}: {change.detail}", markup=False)
                for field in change.fields:
                    console.print(f"  {field}", markup=False)
        console.print(summary(changes), markup=False)
    if detailed_exitcode and any(c.action is not ChangeAction.NONE for c in changes):
        ctx.exit(EXIT_CHANGES)


def _refreshed(records: dict) -> dict:
    """What each recorded deployment's cloud reports now, where its credentials are configured (several at once)."""
    recorded = {name: record for name, record in records.items() if record is not None}
    if not recorded:  # nothing deployed: nothing to ask a cloud, and the engine stays unimported
        return {}
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.lifecycle.engine import refreshed
    from orchestrator.lifecycle.parallel import MAX_PARALLEL

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(recorded) or 1)) as pool:
        return dict(zip(recorded, pool.map(refreshed, recorded.values()), strict=True))


def _quotas(plans: list) -> list:
    """Each plan's quota, read where credentials are configured: once per cloud, region, machine and
    need (a stack of thousands of deployments shares a handful), several at once."""
    from concurrent.futures import ThreadPoolExecutor

    from providers import registry

    if not any(getattr(registry.get(cloud), "credentials_configured", lambda: False)() for cloud in {p.cloud for p in plans}):
        from providers.base import QuotaView  # no credentials anywhere: nothing to read, and the engine stays unimported

        return [QuotaView(None, f"no {p.cloud} credentials configured") for p in plans]
    from orchestrator.lifecycle.engine import read_quota
    from orchestrator.lifecycle.parallel import MAX_PARALLEL

    def key(planned):  # what a quota's reading depends on: the account (placement), region, machine and need
        placed = planned.deployment.placement.of(planned.cloud)
        account = placed.model_dump_json() if placed is not None else ""
        return (planned.cloud, account, planned.region, planned.offer.instance_type, planned.deployment.autoscaling.min_replicas, planned.layout.nodes)

    unique = {key(p): p for p in plans}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(unique) or 1)) as pool:
        read = dict(zip(unique, pool.map(read_quota, unique.values()), strict=True))
    return [read[key(p)] for p in plans]


@click.command()
@click.argument("stack", type=click.Path())
@click.option("--clouds", help="Comma-separated clouds to compare; default: every known cloud.", callback=cloud_names)
@click.option("--deployment", "only", metavar="NAME", help="Compare only this deployment of the stack.")
@click.option("--output", type=click.Choice(["table", "json", "csv", "markdown", "html"]), default="table", show_default=True)
@click.option("--to", "to_file", type=click.Path(dir_okay=False), help="Write the report to this file instead of stdout (html needs it).")
@click.option("--wide", is_flag=True, help="Show every column, however narrow the terminal (it may wrap).")
@click.pass_context
def cost(ctx: click.Context, stack: str, clouds: str | None, only: str | None, output: str, to_file: str | None, wide: bool) -> None:
    """Price the same deployment on every cloud side by side, cheapest first: $/h, $/month, $ per million tokens."""
    from orchestrator.bulk import paused_gc
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.planning.planner import compare_stack
    from orchestrator.reports import report
    from orchestrator.reports.cost_report import cost_report

    if output == "html" and not to_file:
        raise UsageError("--output html writes a page: say where with --to report.html")
    catalog = ctx.obj.catalog()
    chosen = cloud_list(clouds)
    with paused_gc(freeze=True):  # one command, then exit: nothing built here needs the collector
        built = cost_report(compare_stack(load_stack(stack, catalog), chosen, catalog, only), catalog)
    if output == "table":
        from orchestrator.reports import render

        render.cost(render.console(), built, wide=wide)
        _nowhere(built)
        return
    if output == "html":
        from orchestrator.reports.html_report import html_page

        chunks: Iterable[str] = [html_page(built, title=Path(stack).stem)]
    elif output == "json":  # indented for a person at a terminal, compact for a pipeline
        chunks = report.cost_json(built, indent=2 if not to_file and sys.stdout.isatty() else None)
    else:
        chunks = [report.cost_csv(built) if output == "csv" else report.cost_markdown(built)]
    if to_file:
        write_file(Path(to_file), chunks)
        click.echo(f"Wrote the {output} cost report to {to_file}", err=True)
    else:
        for chunk in chunks:
            click.echo(chunk, nl=False)
    _nowhere(built)


def _nowhere(built) -> None:
    """A deployment no compared cloud can host is an error (exit 1) once the report is out, with the
    changes to its spec that would fit somewhere, gathered from every cloud's answer."""
    from orchestrator.planning.plan import Plan

    hopeless = {name: rows for name, rows in built.deployments.items() if rows and not any(isinstance(row.result, Plan) for row in rows)}
    if not hopeless:
        return
    lines = []
    for name, rows in hopeless.items():
        where: dict[str, list[str]] = {}  # a change to the spec -> the clouds (and machines) it would fit on
        for row in rows:
            for idea in row.result.ideas:
                change, _, detail = idea.partition(" (")
                where.setdefault(change, []).append(f"{row.result.cloud}: {detail.rstrip(')').removeprefix('on ')}" if detail else row.result.cloud)
        clouds = ", ".join(row.result.cloud for row in rows)
        lines.append(f"no cloud compared ({clouds}) can host {name!r} as declared; what would fit:")
        lines += [f"  {change} ({'; '.join(places)})" for change, places in where.items()] or [
            "  a smaller model, or a price catalog with bigger GPUs (--catalog)"
        ]
    raise LlamadeployError("\n".join(lines))


@click.command()
@click.option("--cloud", help="Only this cloud's offers.", callback=cloud_names)
@click.option("--gpu", help="Only offers of this GPU type (e.g. H100).")
@click.option("--region", help="Only offers in this region.")
@click.option("--all", "every", is_flag=True, help="List every offer rather than one line per GPU.")
@click.option("--wide", is_flag=True, help="Show every column, however narrow the terminal (it may wrap).")
@output_option()
@click.pass_context
def gpus(ctx: click.Context, cloud: str | None, gpu: str | None, region: str | None, every: bool, wide: bool, out: Output) -> None:
    """The GPUs in the price catalog: one line per GPU type (clouds, cheapest $/GPU-hour); with a
    filter (--gpu, --cloud, --region) or --all, the offers themselves, cheapest first."""
    from orchestrator.pricing.catalog import list_offers

    catalog = ctx.obj.catalog()
    listed = list_offers(catalog, cloud, gpu, region)
    from orchestrator.reports import render, report

    detail = every or any((cloud, gpu, region))
    out.show(
        lambda: {"catalog": report.catalog_dict(catalog), "offers": [report.offer_dict(o) for o in listed]},
        lambda console: render.offers(console, listed, catalog, wide=wide) if detail else render.gpu_summary(console, listed, catalog),
    )


@click.command()
@click.option("--wide", is_flag=True, help="Show every column, however narrow the terminal (it may wrap).")
@output_option()
def models(wide: bool, out: Output) -> None:
    """List the Llama models llamadeploy can size and serve."""
    from orchestrator.reports import render
    from orchestrator.sizing.models import known_models

    listed = known_models()
    fields = ("name", "hf_repo", "parameters", "max_context", "n_layers", "n_heads", "n_kv_heads", "dim")
    out.show(lambda: {"models": [{f: getattr(m, f) for f in fields} for m in listed]}, lambda console: render.models(console, listed, wide=wide))


@click.command("providers")
@output_option()
def providers_command(out: Output) -> None:
    """List the clouds llamadeploy knows, built in or plugged in, and what each can do here."""
    from orchestrator.reports import render
    from providers import registry

    listed = [registry.describe(name) for name in registry.names()]
    out.show(lambda: {"providers": listed}, lambda console: render.providers(console, listed))
