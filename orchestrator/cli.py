"""The `llamadeploy` command: thin click commands over the orchestrator.

Each command parses its options, calls one orchestrator function and renders a table or
JSON. Errors a user can fix print one `Error: …` and exit with the code from EXIT_CODES;
anything else is a bug and prints a traceback (with locals under LLAMADEPLOY_DEBUG=1).
Cloud SDKs are never imported here: `--help`, `plan` and `cost` work without them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator import __version__
from orchestrator.errors import LlamadeployError, SpecError, UsageError
from orchestrator.planning.serving import EXAMPLE_PROMPT, startup_of

# Exit codes as terraform's: 1 for any error, 2 for a usage error; `plan --detailed-exitcode`
# exits 2 when `up` would change something (usage errors are still 2 there, as in terraform).
EXIT_CODES: dict[type[LlamadeployError], int] = {UsageError: 2, LlamadeployError: 1}
EXIT_CHANGES = 2
DETAILED_EXITCODE = "llamadeploy.detailed_exitcode"  # ctx.meta flag: every error exits 1, as 2 means "changes"


class _DetailedExitCommand(click.Command):
    """`plan`: under --detailed-exitcode a mistyped option exits 1 too, never the 2 of "changes"."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            if "--detailed-exitcode" in args:
                error.exit_code = 1
            raise


OUTPUTS = click.Choice(["table", "json"])
ENGINES = click.Choice(["native", "pulumi"])


def _exit_code(error: LlamadeployError) -> int:
    return next(code for kind, code in EXIT_CODES.items() if isinstance(error, kind))


def _message(error: LlamadeployError) -> str:
    if isinstance(error, SpecError) and len(error.problems) > 1:
        return f"{len(error.problems)} problems in the stack file:\n  " + "\n  ".join(map(str, error.problems))
    return str(error)


class _Cli(click.Group):
    """Turns known errors into one line on stderr and an exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LlamadeployError as error:
            click.echo(f"Error: {_message(error)}", err=True)
            ctx.exit(1 if ctx.meta.get(DETAILED_EXITCODE) else _exit_code(error))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception:
            from rich.console import Console

            Console(stderr=True).print_exception(show_locals=os.environ.get("LLAMADEPLOY_DEBUG") == "1", suppress=[click])
            click.echo("Error: an unexpected error; please report it with the traceback above.", err=True)
            ctx.exit(1)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _catalog(ctx: click.Context):
    from orchestrator.pricing.catalog import load_catalog

    return load_catalog(ctx.obj["catalog"])


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llamadeploy")
@click.option(
    "--catalog",
    envvar="LLAMADEPLOY_CATALOG",
    type=click.Path(dir_okay=False),
    help="Price catalog CSV to use instead of the shipped one (e.g. with negotiated prices).",
)
@click.option("--state", envvar="LLAMADEPLOY_STATE", type=click.Path(), help="State file [default: .llamadeploy/state.db].")
@click.pass_context
def cli(ctx: click.Context, catalog: str | None, state: str | None) -> None:
    """Deploy Llama models to AWS, Azure, Google Cloud and Oracle Cloud from one declared spec."""
    ctx.obj = {"catalog": catalog, "state": state}


def _state(ctx: click.Context):
    """The state store, closed when the command ends."""
    from contextlib import closing

    from orchestrator.lifecycle.state import State

    return ctx.with_resource(closing(State(ctx.obj["state"])))


def _lifecycle(ctx: click.Context, report: Any = None, catalog: Any = None):
    """The engine's context for this command: its state store, and the catalog and event report it uses."""
    from orchestrator.lifecycle.context import Context, quiet

    return Context(_state(ctx), catalog, report or quiet)


def _state_path(ctx: click.Context) -> Path:
    from orchestrator.lifecycle.state import DEFAULT_PATH, STATE_ENV

    return Path(ctx.obj["state"] or os.environ.get(STATE_ENV) or DEFAULT_PATH)


def _confirm(yes: bool, question: str) -> None:
    """Ask in a terminal; in a pipeline, demand --yes rather than hang on a prompt."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: pass --yes to confirm (stdin is not a terminal, so llamadeploy cannot ask)")
    click.confirm(question, abort=True, err=True)


@cli.command(cls=_DetailedExitCommand)
@click.argument("stack", type=click.Path())
@click.option("--cloud", help="Cloud to plan on (aws, azure, gcp, oci); default: the one the placement names.")
@click.option("--region", help="Region to plan in, overriding the placement.")
@click.option("--deployment", "only", metavar="NAME", help="Plan only this deployment of the stack.")
@click.option("--output", type=OUTPUTS, default="table", show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 when `up` would change nothing, 2 when it would, 1 on error (as terraform plan).")
@click.pass_context
def plan(ctx: click.Context, stack: str, cloud: str | None, region: str | None, only: str | None, output: str, detailed_exitcode: bool) -> None:
    """Size a stack's deployments and choose instances and prices on one cloud; no credentials needed."""
    from orchestrator.planning.changes import ChangeAction, pending

    ctx.meta[DETAILED_EXITCODE] = detailed_exitcode
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.planning.planner import plan_stack

    catalog = _catalog(ctx)
    plans = plan_stack(load_stack(stack), cloud, catalog, region, only)
    # Only read the state: planning never creates a state file.
    changes = pending(_state(ctx).get if _state_path(ctx).exists() else lambda _: None, plans)
    if output == "json":
        from dataclasses import asdict

        from orchestrator.reports.report import catalog_dict, plan_dict

        _emit_json({"catalog": catalog_dict(catalog), "plans": [plan_dict(p) for p in plans], "changes": [asdict(c) for c in changes]})
    else:
        from orchestrator.reports import render

        out = render.console()
        for planned, change in zip(plans, changes, strict=True):
            render.plan(out, planned, catalog)
            out.print(f"{change.deployment}: {change.detail}")
    if detailed_exitcode and any(c.action is not ChangeAction.NONE for c in changes):
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("stack", type=click.Path())
@click.option("--clouds", help="Comma-separated clouds to compare; default: every known cloud.")
@click.option("--deployment", "only", metavar="NAME", help="Compare only this deployment of the stack.")
@click.option("--output", type=click.Choice(["table", "json", "csv", "markdown", "html"]), default="table", show_default=True)
@click.option("--to", "to_file", type=click.Path(dir_okay=False), help="Write the report to this file instead of stdout (html needs it).")
@click.pass_context
def cost(ctx: click.Context, stack: str, clouds: str | None, only: str | None, output: str, to_file: str | None) -> None:
    """Price the same deployment on every cloud side by side, cheapest first: $/h, $/month, $ per million tokens."""
    from orchestrator.bulk import paused_gc
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.planning.planner import compare_stack
    from orchestrator.reports import report
    from orchestrator.reports.cost_report import cost_report

    if output == "html" and not to_file:
        raise UsageError("--output html writes a page: say where with --to report.html")
    catalog = _catalog(ctx)
    chosen = [c.strip() for c in clouds.split(",") if c.strip()] if clouds else None
    with paused_gc(freeze=True):  # one command, then exit: nothing built here needs the collector
        built = cost_report(compare_stack(load_stack(stack), chosen, catalog, only), catalog)
    if output == "table":
        from orchestrator.reports import render

        render.cost(render.console(), built)
        return
    if output == "html":
        from orchestrator.reports.html_report import html_page

        text = html_page(built, title=Path(stack).stem)
    elif output == "json":
        text = json.dumps(report.cost_dict(built), indent=2) + "\n"
    else:
        text = report.cost_csv(built) if output == "csv" else report.cost_markdown(built)
    if to_file:
        _write_file(Path(to_file), text)
        click.echo(f"Wrote the {output} cost report to {to_file}", err=True)
    else:
        click.echo(text, nl=False)


def _write_file(path: Path, text: str) -> None:
    from orchestrator.files import write_whole

    try:
        write_whole(path, text.encode("utf-8"))
    except OSError as exc:
        raise LlamadeployError(f"cannot write {path}: {exc.strerror or exc}; choose another path with --to") from exc


@cli.command()
@click.option("--cloud", help="Only this cloud's offers.")
@click.option("--gpu", help="Only offers of this GPU type (e.g. H100).")
@click.option("--region", help="Only offers in this region.")
@click.option("--output", type=OUTPUTS, default="table", show_default=True)
@click.pass_context
def gpus(ctx: click.Context, cloud: str | None, gpu: str | None, region: str | None, output: str) -> None:
    """List the GPU offers in the price catalog, cheapest first."""
    from orchestrator.pricing.catalog import list_offers

    catalog = _catalog(ctx)
    listed = list_offers(catalog, cloud, gpu, region)
    if output == "json":
        from orchestrator.reports.report import catalog_dict, offer_dict

        _emit_json({"catalog": catalog_dict(catalog), "offers": [offer_dict(o) for o in listed]})
        return
    from orchestrator.reports import render

    render.offers(render.console(), listed, catalog)


@cli.command()
@click.option("--output", type=OUTPUTS, default="table", show_default=True)
def models(output: str) -> None:
    """List the Llama models llamadeploy can size and serve."""
    from orchestrator.sizing.models import known_models

    listed = known_models()
    if output == "json":
        fields = ("name", "hf_repo", "parameters", "max_context", "n_layers", "n_heads", "n_kv_heads", "dim")
        _emit_json({"models": [{f: getattr(m, f) for f in fields} for m in listed]})
        return
    from orchestrator.reports import render

    render.models(render.console(), listed)


@cli.command("providers")
@click.option("--output", type=OUTPUTS, default="table", show_default=True)
def providers_command(output: str) -> None:
    """List the clouds llamadeploy knows, built in or plugged in, and what each can do here."""
    from providers import registry

    listed = [registry.describe(name) for name in registry.names()]
    if output == "json":
        _emit_json({"providers": listed})
        return
    from orchestrator.reports import render

    render.providers(render.console(), listed)


@cli.command()
@click.argument("stack", type=click.Path())
@click.option(
    "--cloud",
    help="Cloud to deploy on; `auto`: the cheapest that can host it, then the next; default: placement.fallback in order, else the one cloud the placement names.",
)
@click.option("--region", help="Region, overriding the placement.")
@click.option("--deployment", "only", metavar="NAME", help="Deploy only this deployment of the stack.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@click.option("--engine", type=ENGINES, default="native", show_default=True, help="pulumi: run the exported program with your own Pulumi CLI and backend.")
@click.option("--no-verify", is_flag=True, help="Skip the chat completion that checks the declared model answers.")
@click.option("--output", type=OUTPUTS, default="table", show_default=True, help="json: events and the result as JSON lines on stdout.")
@click.pass_context
def up(ctx: click.Context, stack: str, cloud: str | None, region: str | None, only: str | None, yes: bool, engine: str, no_verify: bool, output: str) -> None:
    """Create (or adopt and finish) a stack's deployments on a cloud, and wait until they serve."""
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.lifecycle.progress import reporter
    from orchestrator.planning.planner import default_cloud

    if engine == "pulumi":
        _pulumi_up(ctx, stack, cloud, region, only, yes, output)
        return
    from orchestrator.lifecycle import engine as native

    catalog = _catalog(ctx)
    loaded = load_stack(stack)
    chosen = [loaded.get(only)] if only else list(loaded.deployments)
    if cloud == "auto" or (cloud is None and any(d.placement.fallback for d in chosen)):
        _failover(ctx, loaded, chosen, cloud == "auto", catalog, yes, not no_verify, output)
        return
    ready = [native.plan_up(loaded, d, default_cloud(d, cloud), catalog, region) for d in chosen]
    if output == "table":
        from orchestrator.reports import render

        out = render.console(stderr=True)
        for planned, _ in ready:
            render.plan(out, planned, catalog)
    _confirm(yes, f"Create {', '.join(p.deployment.name for p, _ in ready)} on {', '.join(sorted({p.cloud for p, _ in ready}))}?")
    with reporter(output == "json") as report:
        lifecycle = _lifecycle(ctx, report, catalog)
        for planned, provider in ready:
            result = native.up(lifecycle, planned, provider, verify=not no_verify)
            _served(planned.deployment.name, planned.cloud, planned.region, result, output, report)


def _pulumi_up(ctx: click.Context, stack: str, cloud: str | None, region: str | None, only: str | None, yes: bool, output: str) -> None:
    """`up --engine pulumi`: the stack's program, applied by the user's Pulumi."""
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.iac import pulumi_engine
    from orchestrator.lifecycle.progress import EventKind, reporter
    from orchestrator.planning.planner import plan_stack

    pulumi_engine.require_pulumi()
    if cloud == "auto":
        raise UsageError("--cloud auto tries clouds one after another, which only the native engine does; name one cloud with --engine pulumi")
    loaded = load_stack(stack)
    plans = plan_stack(loaded, cloud, _catalog(ctx), region, only)
    for planned in plans:
        verdict, cannot_start = startup_of(planned)
        if cannot_start:
            raise LlamadeployError(f"{planned.deployment.name} on {planned.cloud}: {verdict}")
    _confirm(yes, f"Apply {', '.join(p.deployment.name for p in plans)} on {plans[0].cloud} with Pulumi?")
    with reporter(output == "json") as report:
        outputs = pulumi_engine.up(loaded, plans, Path(stack).stem, _pulumi_dir(ctx), lambda line: report(EventKind.PULUMI, line=line.rstrip()))
        if output == "json":
            report(EventKind.DONE, engine="pulumi", cloud=plans[0].cloud, deployments=[p.deployment.name for p in plans], outputs=outputs)
        else:
            for key, value in outputs.items():
                click.echo(f"{key}: {value}")


def _pulumi_dir(ctx: click.Context) -> Path:
    """Where `--engine pulumi` keeps its rendered projects: beside the state file."""
    return _state_path(ctx).parent / "pulumi"


def _served(name: str, cloud: str, region: str, result, output: str, report, attempts: list | None = None) -> None:
    """What `up` says once a deployment serves: where, how to authenticate, and a call that works as printed."""
    answer = result.answer
    if output == "json":
        extra = {} if attempts is None else {"attempts": [{"cloud": a.cloud, "region": a.region, "outcome": a.outcome} for a in attempts]}
        report(
            "done",
            deployment=name,
            cloud=cloud,
            region=region,
            changed=result.changed,
            url=result.endpoint.url,
            auth=result.endpoint.auth,
            example=result.endpoint.example,
            answered_by=answer.model if answer else None,
            **extra,
        )
        return
    after = "" if attempts is None else f" after {len(attempts)} attempt{'s' if len(attempts) > 1 else ''}"
    click.echo(f"{name} is serving on {cloud} ({region}) at {result.endpoint.url}{after}")
    if answer is not None:
        click.echo(f"  answered by: {answer.model}")
    click.echo(f"  auth: {result.endpoint.auth}")
    click.echo(f"  try:  {result.endpoint.example}")


def _failover(ctx: click.Context, loaded, chosen, cheapest: bool, catalog, yes: bool, verify: bool, output: str) -> None:
    """`up` over candidate clouds: the placement's fallback list, or every cloud cheapest first."""
    from orchestrator.lifecycle import engine
    from orchestrator.lifecycle.progress import reporter

    _confirm(yes, f"Create {', '.join(d.name for d in chosen)} on the first cloud that can host {'them' if len(chosen) > 1 else 'it'}?")
    with reporter(output == "json") as report:
        lifecycle = _lifecycle(ctx, report, catalog)
        for deployment in chosen:
            candidates = engine.cheapest_candidates(loaded, deployment, catalog) if cheapest else deployment.placement.candidates()
            result, attempts = engine.up_with_failover(lifecycle, loaded, deployment, candidates, verify=verify)
            _served(deployment.name, result.plan.cloud, result.plan.region, result, output, report, attempts)


@cli.command()
@click.argument("name", required=False)
@click.option("--output", type=OUTPUTS, default="table", show_default=True)
@click.pass_context
def status(ctx: click.Context, name: str | None, output: str) -> None:
    """Show each deployment as its cloud reports it now, and any drift from what was deployed."""
    from orchestrator.lifecycle import engine

    rows = engine.status(_lifecycle(ctx), name)
    if output == "json":
        from orchestrator.reports.report import status_dict

        _emit_json({"deployments": [status_dict(row) for row in rows]})
        return
    from orchestrator.reports import render

    render.status(render.console(), rows)


@cli.command()
@click.argument("name")
@click.option("--prompt", default=EXAMPLE_PROMPT, show_default=True, help="What to ask.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="Longest answer, in tokens.")
@click.option("--output", type=OUTPUTS, default="table", show_default=True)
@click.pass_context
def call(ctx: click.Context, name: str, prompt: str, max_tokens: int, output: str) -> None:
    """Send one chat completion to a deployment through its cloud's own authentication."""
    from orchestrator.lifecycle import engine

    result = engine.call(_lifecycle(ctx), name, prompt, max_tokens)
    answer, matches = result.answer, result.answer.model == result.declared
    if output == "json":
        _emit_json(
            {
                "deployment": name,
                "cloud": result.record.cloud,
                "url": result.endpoint.url,
                "model": answer.model,
                "declared_model": result.declared,
                "matches_declared": matches,
                "answer": answer.text,
            }
        )
    else:
        click.echo(answer.text)
        click.echo(f"model: {answer.model}" + ("" if matches else f" (declared: {result.declared})"), err=True)
    if not matches:
        raise engine.DeployError(f"{name} answered as {answer.model!r}, not the declared {result.declared!r}")


@cli.command()
@click.argument("name")
@click.option("--to", "to_cloud", help="Cloud to move the deployment to.")
@click.option("--region", help="Region on the target cloud, overriding the recorded placement (with --resume/--rollback: of a move that did not record it).")
@click.option("--resume", is_flag=True, help="Finish a move that a crash interrupted.")
@click.option("--rollback", is_flag=True, help="Undo a move that a crash interrupted: the source serves again.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@click.option("--output", type=OUTPUTS, default="table", show_default=True, help="json: events and the result as JSON lines on stdout.")
@click.pass_context
def move(ctx: click.Context, name: str, to_cloud: str | None, region: str | None, resume: bool, rollback: bool, yes: bool, output: str) -> None:
    """Move a serving deployment to another cloud without downtime: up there first, then down here."""
    from orchestrator.lifecycle import engine
    from orchestrator.lifecycle.progress import EventKind, reporter
    from orchestrator.reports.report import money

    state, catalog = _state(ctx), _catalog(ctx)
    if resume or rollback:
        if (resume and rollback) or to_cloud:
            raise UsageError("pass one of --to CLOUD, --resume or --rollback")
        _confirm(yes, f"{'Finish' if resume else 'Undo'} the interrupted move of {name}?")
        with reporter(output == "json") as report:
            message = (engine.resume_move if resume else engine.rollback_move)(_lifecycle(ctx, report, catalog), name, region)
            report(EventKind.DONE, deployment=name, message=message) if output == "json" else click.echo(message)
        return
    if not to_cloud:
        raise UsageError("say where to move it with --to CLOUD, or pass --resume / --rollback after a crash")
    record = state.get(name)
    if record is None:
        raise engine.DeployError(f"no deployment named {name!r} in the state at {state.path}; `llamadeploy status` lists them")
    planned, _ = engine.plan_move(record, to_cloud, catalog, region)
    before = record.placed.plan
    now_price, then_price = before.usd_per_hour_min, planned.usd_per_hour(planned.deployment.autoscaling.min_replicas)
    delta = "" if now_price is None or then_price is None else f" ({'+' if then_price >= now_price else '-'}{money(abs(then_price - now_price))}/h)"
    click.echo(
        f"{name}: {record.cloud} {before.instance_type} {money(now_price, before.price_is_lower_bound)}/h -> {to_cloud} {planned.offer.instance_type} "
        f"{money(then_price, planned.offer.price_is_lower_bound)}/h{delta} at {planned.deployment.autoscaling.min_replicas} replicas",
        err=True,
    )
    _confirm(yes, f"Move {name} from {record.cloud} to {to_cloud} (up there, then down on {record.cloud})?")
    with reporter(output == "json") as report:
        result = engine.move(_lifecycle(ctx, report, catalog), name, to_cloud, region)
        if output == "json":
            report(EventKind.DONE, deployment=name, cloud=to_cloud, region=result.plan.region, url=result.endpoint.url, moved_from=result.source.cloud)
        else:
            click.echo(f"{name} moved from {result.source.cloud} to {to_cloud} ({result.plan.region}); it serves at {result.endpoint.url}")


@cli.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@click.option("--engine", type=ENGINES, default="native", show_default=True, help="pulumi: destroy the Pulumi stack `up --engine pulumi` created.")
@click.option("--output", type=OUTPUTS, default="table", show_default=True, help="json: events as JSON lines on stdout.")
@click.pass_context
def down(ctx: click.Context, name: str, yes: bool, engine: str, output: str) -> None:
    """Delete a deployment's cloud resources, check none remain, and forget it."""
    from orchestrator.lifecycle.progress import EventKind, reporter

    if engine == "pulumi":
        _pulumi_down(ctx, name, yes, output)
        return
    from orchestrator.lifecycle import engine as native

    _confirm(yes, f"Delete {name} and every cloud resource it has?")
    with reporter(output == "json") as report:
        deployed = native.down(_lifecycle(ctx, report), name)
        if output == "json":
            report(EventKind.DONE, deployment=name, cloud=deployed.cloud, region=deployed.region, deleted=[r.name for r in deployed.resources])
        else:
            click.echo(f"{name} is gone from {deployed.cloud} ({deployed.region}); nothing tagged with it remains")


@cli.command()
@click.argument("stack", type=click.Path())
@click.option("--cloud", help="Cloud to export for (aws, azure, gcp, oci); default: the one the placement names.")
@click.option("--to", "to_dir", required=True, type=click.Path(file_okay=False), help="Directory to write the Pulumi project into.")
@click.option("--region", help="Region, overriding the placement.")
@click.option("--deployment", "only", metavar="NAME", help="Export only this deployment of the stack.")
@click.option("--stack", "stack_name", help="Pulumi stack name [default: the stack file's name].")
@click.option("--output", type=OUTPUTS, default="table", show_default=True)
@click.pass_context
def export(ctx: click.Context, stack: str, cloud: str | None, to_dir: str, region: str | None, only: str | None, stack_name: str | None, output: str) -> None:
    """Write the stack's plan on one cloud as a Pulumi Python project to run with your own Pulumi."""
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.iac.export import render_project
    from orchestrator.planning.planner import plan_stack

    plans = plan_stack(load_stack(stack), cloud, _catalog(ctx), region, only)
    project = render_project(plans, plans[0].cloud, stack_name or Path(stack).stem)
    written = project.write(Path(to_dir))
    if output == "json":
        _emit_json(
            {
                "stack": project.stack,
                "cloud": plans[0].cloud,
                "directory": str(Path(to_dir)),
                "files": [str(p) for p in written],
                "deployments": [p.deployment.name for p in plans],
            }
        )
        return
    click.echo(f"Wrote a Pulumi project for {', '.join(p.deployment.name for p in plans)} on {plans[0].cloud} to {to_dir}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo(f"Next: cd {to_dir} && pulumi stack init {project.stack} && pulumi up")


def _pulumi_down(ctx: click.Context, name: str, yes: bool, output: str) -> None:
    from orchestrator.iac import pulumi_engine
    from orchestrator.lifecycle.progress import EventKind, reporter

    pulumi_engine.require_pulumi()
    directory, described = pulumi_engine.find_project(_pulumi_dir(ctx), name)
    together = [d for d in described["deployments"] if d != name]
    _confirm(yes, f"Destroy the Pulumi stack {described['stack']} ({', '.join(described['deployments'])}) on {described['cloud']}?")
    with reporter(output == "json") as report:
        pulumi_engine.down(directory, described, lambda line: report(EventKind.PULUMI, line=line.rstrip()))
        if output == "json":
            report(EventKind.DONE, engine="pulumi", cloud=described["cloud"], deployments=described["deployments"])
        else:
            click.echo(f"{name} is gone from {described['cloud']}" + (f", with {', '.join(together)} (the same Pulumi stack)" if together else ""))


def main() -> None:
    # pydantic scans every installed distribution for its plugins (~0.1 s) on the first model;
    # llamadeploy uses none, and `plan`/`cost` are meant to answer at once. A user's own
    # setting of the variable wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    cli(prog_name="llamadeploy")


if __name__ == "__main__":
    sys.exit(main())
