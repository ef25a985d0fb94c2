"""The commands that change or ask a cloud: up, status, call, move, down."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.output import ENGINES, Output, emit_json, output_option
from orchestrator.cli.session import cloud_names, confirm
from orchestrator.errors import LlamadeployError, UsageError
from orchestrator.lifecycle.progress import EventKind
from orchestrator.planning.serving import EXAMPLE_PROMPT, startup_of


@click.command()
@click.argument("stack", type=click.Path())
@click.option(
    "--cloud",
    help="Cloud to deploy on; `auto`: the cheapest that can host it, then the next; default: placement.fallback in order, else the one cloud the placement names.",
    callback=cloud_names,
)
@click.option("--region", help="Region, overriding the placement.")
@click.option("--deployment", "only", metavar="NAME", help="Deploy only this deployment of the stack.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@click.option("--engine", type=ENGINES, default="native", show_default=True, help="pulumi: run the exported program with your own Pulumi CLI and backend.")
@click.option("--no-verify", is_flag=True, help="Skip the chat completion that checks the declared model answers.")
@click.option("--rollback", is_flag=True, help="Undo a blue/green replace an earlier `up` did not finish: the variant that served before serves alone again.")
@output_option("json: events and the result as JSON lines on stdout.")
@click.pass_context
def up(
    ctx: click.Context,
    stack: str,
    cloud: str | None,
    region: str | None,
    only: str | None,
    yes: bool,
    engine: str,
    no_verify: bool,
    rollback: bool,
    out: Output,
) -> None:
    """Create (or adopt and finish) a stack's deployments on a cloud, and wait until they serve; a
    changed deployment is updated in place, or replaced blue/green on the same endpoint."""
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.planning.planner import default_cloud

    if engine == "pulumi":
        if rollback:
            raise UsageError("--rollback undoes a replace of the native engine; with --engine pulumi, Pulumi's own state decides")
        _pulumi_up(ctx, stack, cloud, region, only, yes, out)
        return
    from orchestrator.lifecycle import engine as native
    from orchestrator.lifecycle.parallel import for_each

    catalog = ctx.obj.catalog()
    loaded = load_stack(stack, catalog)
    chosen = [loaded.get(only)] if only else list(loaded.deployments)
    if rollback:
        from orchestrator.lifecycle.record import Phase

        state = ctx.obj.state()
        names = [d.name for d in chosen if (r := state.get(d.name)) is not None and r.phase is Phase.REPLACING]
        if not names:
            raise UsageError(f"no deployment of {stack} has an unfinished replace to roll back; `llamadeploy status` shows each one's phase")
        confirm(yes, f"Undo the unfinished replace of {', '.join(names)}?")
        with out.events() as report:
            for_each(
                ctx.obj.lifecycle(report, catalog), names, native.rollback_replace, lambda name, said: out.done(report, said, deployment=name, message=said)
            )
        return
    if cloud == "auto" or (cloud is None and any(d.placement.fallback for d in chosen)):
        _failover(ctx, loaded, chosen, cloud == "auto", catalog, yes, not no_verify, out)
        return
    ready = [native.plan_up(loaded, d, default_cloud(d, cloud), catalog, region) for d in chosen]
    if not out.json:
        from orchestrator.planning.changes import pending
        from orchestrator.reports import render

        console = render.console(stderr=True)
        state = ctx.obj.state()
        for (planned, _), change in zip(ready, pending(state.get, [p for p, _ in ready]), strict=True):
            render.plan(console, planned, catalog)
            console.print(f"{change.deployment}: {change.detail}", markup=False)
            for field in change.fields:
                console.print(f"  {field}", markup=False)
    confirm(yes, f"Apply {', '.join(p.deployment.name for p, _ in ready)} on {', '.join(sorted({p.cloud for p, _ in ready}))}?")
    by_name = {planned.deployment.name: (planned, provider) for planned, provider in ready}
    with out.events() as report:
        for_each(
            ctx.obj.lifecycle(report, catalog),
            list(by_name),
            lambda lifecycle, name: native.up(lifecycle, *by_name[name], verify=not no_verify),
            lambda name, result: _served(name, result.plan.cloud, result.plan.region, result, out, report),
        )


def _pulumi_up(ctx: click.Context, stack: str, cloud: str | None, region: str | None, only: str | None, yes: bool, out: Output) -> None:
    """`up --engine pulumi`: the stack's program, applied by the user's Pulumi."""
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.iac import pulumi_engine
    from orchestrator.lifecycle.progress import EventKind
    from orchestrator.planning.planner import plan_stack

    pulumi_engine.require_pulumi()
    if cloud == "auto":
        raise UsageError("--cloud auto tries clouds one after another, which only the native engine does; name one cloud with --engine pulumi")
    loaded = load_stack(stack, ctx.obj.catalog())
    plans = plan_stack(loaded, cloud, ctx.obj.catalog(), region, only)
    for planned in plans:
        verdict, cannot_start = startup_of(planned)
        if cannot_start:
            raise LlamadeployError(f"{planned.deployment.name} on {planned.cloud}: {verdict}")
    confirm(yes, f"Apply {', '.join(p.deployment.name for p in plans)} on {plans[0].cloud} with Pulumi?")
    with out.events() as report:
        outputs = pulumi_engine.up(loaded, plans, Path(stack).stem, ctx.obj.pulumi_dir(), lambda line: report(EventKind.PULUMI, line=line.rstrip()))
        if out.json:
            report(EventKind.DONE, engine="pulumi", cloud=plans[0].cloud, deployments=[p.deployment.name for p in plans], outputs=outputs)
        else:
            for key, value in outputs.items():
                click.echo(f"{key}: {value}")


def _served(name: str, cloud: str, region: str, result, out: Output, report, attempts: list | None = None) -> None:
    """What `up` says once a deployment serves: where, how to authenticate, and a call that works as printed."""
    answer = result.answer
    if out.json:
        extra = {} if attempts is None else {"attempts": [{"cloud": a.cloud, "region": a.region, "outcome": a.outcome} for a in attempts]}
        report(
            EventKind.DONE,
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
    out.echo(f"{name} is serving on {cloud} ({region}) at {result.endpoint.url}{after}")
    if answer is not None:
        out.echo(f"  answered by: {answer.model}")
    out.echo(f"  auth: {result.endpoint.auth}")
    out.echo(f"  try:  {result.endpoint.example}")


def _failover(ctx: click.Context, loaded, chosen, cheapest: bool, catalog, yes: bool, verify: bool, out: Output) -> None:
    """`up` over candidate clouds: the placement's fallback list, or every cloud cheapest first."""
    from orchestrator.lifecycle import engine
    from orchestrator.lifecycle.parallel import for_each

    confirm(yes, f"Create {', '.join(d.name for d in chosen)} on the first cloud that can host {'them' if len(chosen) > 1 else 'it'}?")
    by_name = {deployment.name: deployment for deployment in chosen}

    def each(lifecycle, name: str):
        """One deployment's candidates in turn: a candidate is tried only once the one before it is cleaned up."""
        deployment = by_name[name]
        candidates = engine.cheapest_candidates(loaded, deployment, catalog) if cheapest else deployment.placement.candidates()
        return engine.up_with_failover(lifecycle, loaded, deployment, candidates, verify=verify)

    with out.events() as report:
        for_each(
            ctx.obj.lifecycle(report, catalog),
            list(by_name),
            each,
            lambda name, outcome: _served(name, outcome[0].plan.cloud, outcome[0].plan.region, outcome[0], out, report, outcome[1]),
        )


@click.command()
@click.argument("name", required=False)
@click.option("--wide", is_flag=True, help="Show every column, however narrow the terminal (it may wrap).")
@output_option()
@click.pass_context
def status(ctx: click.Context, name: str | None, wide: bool, out: Output) -> None:
    """Show each deployment as its cloud reports it now, and any drift from what was deployed."""
    from orchestrator.lifecycle import engine

    if not ctx.obj.state_location().exists():  # a read never writes: no state file is made to say nothing is deployed
        if name is not None:
            raise engine.DeployError(f"no deployment named {name!r} in the state at {ctx.obj.state_location()}; `llamadeploy status` lists them")
        rows = []
    else:
        rows = engine.status(ctx.obj.lifecycle(), name)
    from orchestrator.reports import render
    from orchestrator.reports.report import status_dict

    out.show(lambda: {"deployments": [status_dict(row) for row in rows]}, lambda console: render.status(console, rows, wide=wide))


@click.command()
@click.argument("name")
@click.option("--prompt", default=EXAMPLE_PROMPT, show_default=True, help="What to ask.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="Longest answer, in tokens.")
@output_option()
@click.pass_context
def call(ctx: click.Context, name: str, prompt: str, max_tokens: int, out: Output) -> None:
    """Send one chat completion to a deployment through its cloud's own authentication."""
    from orchestrator.lifecycle import engine
    from orchestrator.reports.report import reach_of

    result = engine.call(ctx.obj.lifecycle(), name, prompt, max_tokens)
    answer, matches = result.answer, result.answer.model == result.declared
    if out.json:
        emit_json(
            {
                "deployment": name,
                "cloud": result.record.cloud,
                "url": result.endpoint.url,
                "reached": reach_of(result.record),
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


@click.command()
@click.argument("name")
@click.option("--to", "to_cloud", help="Cloud to move the deployment to.", callback=cloud_names)
@click.option("--region", help="Region on the target cloud, overriding the recorded placement (with --resume/--rollback: of a move that did not record it).")
@click.option("--resume", is_flag=True, help="Finish a move that a crash interrupted.")
@click.option("--rollback", is_flag=True, help="Undo a move that a crash interrupted: the source serves again.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@output_option("json: events and the result as JSON lines on stdout.")
@click.pass_context
def move(ctx: click.Context, name: str, to_cloud: str | None, region: str | None, resume: bool, rollback: bool, yes: bool, out: Output) -> None:
    """Move a serving deployment to another cloud without downtime: up there first, then down here."""
    from orchestrator.lifecycle import engine
    from orchestrator.reports.report import money, plural

    state, catalog = ctx.obj.state(), ctx.obj.catalog()
    if resume or rollback:
        if (resume and rollback) or to_cloud:
            raise UsageError("pass one of --to CLOUD, --resume or --rollback")
        confirm(yes, f"{'Finish' if resume else 'Undo'} the interrupted move of {name}?")
        with out.events() as report:
            message = (engine.resume_move if resume else engine.rollback_move)(ctx.obj.lifecycle(report, catalog), name, region)
            out.done(report, message, deployment=name, message=message)
        return
    if not to_cloud:
        raise UsageError("say where to move it with --to CLOUD, or pass --resume / --rollback after a crash")
    record = state.get(name)
    if record is None:
        raise engine.DeployError(f"no deployment named {name!r} in the state at {state.path}; `llamadeploy status` lists them")
    planned, target = engine.plan_move(record, to_cloud, catalog, region)
    engine.callable_target(planned, target)
    before = record.placed.plan
    now_price, then_price = before.usd_per_hour_min, planned.usd_per_hour(planned.deployment.autoscaling.min_replicas)
    delta = "" if now_price is None or then_price is None else f" ({'+' if then_price >= now_price else '-'}{money(abs(then_price - now_price))}/h)"
    click.echo(
        f"{name}: {record.cloud} {before.instance_type} {money(now_price, before.price_is_lower_bound)}/h -> {to_cloud} {planned.offer.instance_type} "
        f"{money(then_price, planned.offer.price_is_lower_bound)}/h{delta} at {plural(planned.deployment.autoscaling.min_replicas, 'replica')}",
        err=True,
    )
    private = planned.described_by.private_only(planned.deployment)
    if private:  # said before anything is made: from outside, the target would be built, fail its call and be deleted
        click.echo(
            f"warning: on {to_cloud}, {private}: the move calls it before deleting the source, so run it from inside that network "
            "(from outside, the target is built, its call fails and it is deleted again, the source serving throughout)",
            err=True,
        )
    confirm(yes, f"Move {name} from {record.cloud} to {to_cloud} (up there, then down on {record.cloud})?")
    with out.events() as report:
        result = engine.move(ctx.obj.lifecycle(report, catalog), name, to_cloud, region)
        out.done(
            report,
            f"{name} moved from {result.source.cloud} to {to_cloud} ({result.plan.region}); it serves at {result.endpoint.url}",
            deployment=name,
            cloud=to_cloud,
            region=result.plan.region,
            url=result.endpoint.url,
            moved_from=result.source.cloud,
        )


@click.command()
@click.argument("name")
@click.option("--min", "min_replicas", type=click.IntRange(min=1), required=True, help="Fewest replicas to keep.")
@click.option("--max", "max_replicas", type=click.IntRange(min=1), required=True, help="Most replicas to scale out to.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@output_option("json: the result as a JSON line on stdout.")
@click.pass_context
def scale(ctx: click.Context, name: str, min_replicas: int, max_replicas: int, yes: bool, out: Output) -> None:
    """Change a deployment's replica bounds in place, through its cloud's own autoscaling."""
    from orchestrator.lifecycle import engine

    confirm(yes, f"Scale {name} to {min_replicas}-{max_replicas} replicas?")
    with out.events() as report:
        record = engine.scale(ctx.obj.lifecycle(report, ctx.obj.catalog()), name, min_replicas, max_replicas)
        out.done(
            report,
            f"{name} now scales between {min_replicas} and {max_replicas} replicas on {record.cloud} ({record.region}); "
            "set the same bounds in the stack file, or its next `plan` shows a change",
            deployment=name,
            cloud=record.cloud,
            region=record.region,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
        )


@click.command()
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@click.option("--engine", type=ENGINES, default="native", show_default=True, help="pulumi: destroy the Pulumi stack `up --engine pulumi` created.")
@output_option("json: events as JSON lines on stdout.")
@click.pass_context
def down(ctx: click.Context, names: tuple[str, ...], yes: bool, engine: str, out: Output) -> None:
    """Delete deployments' cloud resources (several at once), check none remain, and forget them."""

    if engine == "pulumi":
        if len(names) > 1:
            raise UsageError("--engine pulumi destroys one deployment's Pulumi stack at a time; name one")
        _pulumi_down(ctx, names[0], yes, out)
        return
    from orchestrator.lifecycle import engine as native
    from orchestrator.lifecycle.parallel import for_each

    unique = list(dict.fromkeys(names))
    confirm(yes, f"Delete {', '.join(unique)} and every cloud resource {'they have' if len(unique) > 1 else 'it has'}?")
    with out.events() as report:
        for_each(
            ctx.obj.lifecycle(report),
            unique,
            native.down,
            lambda name, deployed: out.done(
                report,
                f"{name} is gone from {deployed.cloud} ({deployed.region}); nothing tagged with it remains",
                deployment=name,
                cloud=deployed.cloud,
                region=deployed.region,
                deleted=[r.name for r in deployed.resources],
            ),
        )


def _pulumi_down(ctx: click.Context, name: str, yes: bool, out: Output) -> None:
    from orchestrator.iac import pulumi_engine
    from orchestrator.lifecycle.progress import EventKind

    pulumi_engine.require_pulumi()
    directory, described = pulumi_engine.find_project(ctx.obj.pulumi_dir(), name)
    together = [d for d in described["deployments"] if d != name]
    confirm(yes, f"Destroy the Pulumi stack {described['stack']} ({', '.join(described['deployments'])}) on {described['cloud']}?")
    with out.events() as report:
        pulumi_engine.down(directory, described, lambda line: report(EventKind.PULUMI, line=line.rstrip()))
        with_others = f", with {', '.join(together)} (the same Pulumi stack)" if together else ""
        out.done(
            report, f"{name} is gone from {described['cloud']}{with_others}", engine="pulumi", cloud=described["cloud"], deployments=described["deployments"]
        )
