"""`llamadeploy catalog`: the price catalog itself, refreshed from the clouds' public price APIs."""

from __future__ import annotations

import os
from pathlib import Path

import click

from orchestrator.cli.output import write_file
from orchestrator.cli.session import cloud_list, cloud_names
from orchestrator.errors import UsageError

SHOWN_CHANGES = 20


@click.group("catalog")
def catalog_group() -> None:
    """The price catalog: refresh it from the clouds' public price APIs."""


@catalog_group.command("refresh")
@click.option("--to", "to_file", required=True, metavar="FILE", help="Where to write the refreshed catalog (CSV); pass it with --catalog FILE.")
@click.option("--cloud", "clouds", help="Only these clouds, comma-separated (default: every cloud in the catalog).", callback=cloud_names)
@click.pass_context
def refresh_command(ctx: click.Context, to_file: str, clouds: str | None) -> None:
    """Read current list prices from the clouds' public price APIs (those that need no account, or
    only a key; the output says which clouds were read, and how to read the others) for every
    offer of the catalog, and write a catalog whose every refreshed row names its URL and today's
    date. Rows no API prices are kept as they are."""
    from orchestrator.pricing.refresh import catalog_csv, refresh
    from providers import registry

    catalog = ctx.obj.catalog()
    chosen = cloud_list(clouds) or catalog.clouds()
    unknown = [c for c in chosen if c not in catalog.clouds()]
    if unknown:
        raise UsageError(f"the price catalog has no offers for {', '.join(unknown)}; choose from {', '.join(catalog.clouds())}")
    target = Path(to_file)
    if target.resolve() == Path(catalog.path).resolve():
        raise UsageError(f"--to {to_file} is the catalog being read; write the refreshed one elsewhere and pass it with --catalog")
    if not target.parent.is_dir() or not os.access(target.parent, os.W_OK):  # found before minutes of price files are read
        raise UsageError(f"--to {to_file}: {target.parent} is not a folder this user can write to; choose another path")
    result = refresh(catalog, [registry.get(cloud) for cloud in chosen])
    write_file(target, catalog_csv(result.offers))
    for cloud in result.clouds:
        if cloud.skipped:
            click.echo(f"{cloud.cloud}: kept; {cloud.skipped}")
            continue
        click.echo(f"{cloud.cloud}: {cloud.read} offers priced, {len(cloud.changed)} changed, {len(cloud.unpriced)} not priced by the API (kept as they were)")
        for before, after in cloud.changed[:SHOWN_CHANGES]:
            click.echo(f"  {after.region} {after.instance_type}: {_price(before.usd_per_hour)} -> {_price(after.usd_per_hour)}/h")
        if len(cloud.changed) > SHOWN_CHANGES:
            click.echo(f"  and {len(cloud.changed) - SHOWN_CHANGES} more")
    click.echo(f"Wrote {len(result.offers)} offers to {to_file}; use it with: llamadeploy --catalog {to_file} cost STACK")


def _price(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:,.4g}"
