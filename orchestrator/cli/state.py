"""`llamadeploy state`: read the state store, and copy it to another one."""

from __future__ import annotations

import click

from orchestrator.cli.output import Output, emit_json, output_option
from orchestrator.cli.session import confirm
from orchestrator.errors import LlamadeployError, UsageError


@click.group("state")
def state_group() -> None:
    """Inspect the state store (what llamadeploy remembers) or copy it to another one."""


@state_group.command("list")
@output_option()
@click.pass_context
def list_command(ctx: click.Context, out: Output) -> None:
    """Every recorded deployment: cloud, region, phase, when it last changed. Reads only: never creates a state file."""
    path = ctx.obj.state_location()
    state = ctx.obj.state() if path.exists() else None
    records = state.records() if state else []
    notes = state.notes() if state else []
    rows = [
        {"deployment": r.name, "cloud": r.cloud, "region": r.region, "phase": r.phase.value, "moves": len(r.moves), "updated_at": r.updated_at} for r in records
    ]

    def table(console) -> None:
        from rich.table import Table

        shown = Table("deployment", "cloud", "region", "phase", "moves", "updated", title=f"state at {path}")
        for row in rows:
            shown.add_row(*(str(row[k]) for k in ("deployment", "cloud", "region", "phase", "moves", "updated_at")))
        console.print(shown if rows else f"no deployments recorded in the state at {path}")
        for note in notes:
            console.print(f"note: {note}", markup=False)

    out.show(lambda: {"state": str(path), "deployments": rows, "notes": notes}, table)


@state_group.command("show")
@click.argument("name")
@click.pass_context
def show_command(ctx: click.Context, name: str) -> None:
    """One deployment's record as stored (JSON), with its journal: for inspection and support."""
    from dataclasses import asdict

    from orchestrator.lifecycle.record import to_json

    path = ctx.obj.state_location()
    state = ctx.obj.state() if path.exists() else None
    record = state.get(name) if state else None
    if record is None or state is None:
        raise LlamadeployError(f"no deployment named {name!r} in the state at {path}; `llamadeploy state list` lists them")
    emit_json({"deployment": name, "record": to_json(record), "updated_at": record.updated_at, "journal": [asdict(op) for op in state.history(name)]})


@state_group.command("migrate")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="Where to copy the state: a file path or sqlite:///path, postgresql://user@host/db, s3://bucket/prefix or az://container/prefix.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (pipelines).")
@click.pass_context
def migrate_command(ctx: click.Context, target: str, yes: bool) -> None:
    """Copy every record and journal entry to another state store, check the copy, and say how to switch.
    The current store is left as it was."""
    from orchestrator.lifecycle.record import to_json
    from orchestrator.lifecycle.state import open_state, state_location

    source_location, target_location = ctx.obj.state_location(), state_location(target)
    if not source_location.exists():
        raise UsageError(f"there is no state at {source_location} to migrate")
    if _same(source_location, target_location):
        raise UsageError(f"--to names the state in use ({source_location}); name another store")
    source = ctx.obj.state()
    held = source.held_locks()
    if held:
        raise LlamadeployError(f"a command is working on {', '.join(held)} (it holds the lock); migrate once it has finished")
    records, journal = source.snapshot()
    confirm(yes, f"Copy {len(records)} records and {len(journal)} journal entries from {source_location} to {target_location}?")
    copy = open_state(target_location)
    try:
        if copy.records() or copy.journal():
            raise LlamadeployError(f"the state at {target_location} is not empty; migrate into a new store")
        copy.copy_in(records, journal)
        same = [to_json(r) for r in copy.records()] == [to_json(r) for r in records] and copy.journal() == journal
        notes = copy.notes()
    finally:
        copy.close()
    if not same:
        raise LlamadeployError(
            f"the copy at {target_location} does not read back as the original; it is left for inspection, and {source_location} is unchanged"
        )
    click.echo(
        f"copied {len(records)} records and {len(journal)} journal entries to {target_location} and read them back; to use it, pass "
        f"--state {target} or set LLAMADEPLOY_STATE={target}. The state at {source_location} is unchanged: remove it once every user has switched."
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)


def _same(one, other) -> bool:
    """Whether two locations are the same store (a file by its resolved path, a shared store by its URL)."""
    if one.path is not None and other.path is not None:
        return one.path.resolve() == other.path.resolve()
    return (one.scheme, one.url, one.bucket, one.prefix) == (other.scheme, other.url, other.bucket, other.prefix)
