"""`export`: the stack's plan as a Pulumi project the user runs with their own Pulumi."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.output import Output, emit_json, output_option
from orchestrator.cli.session import cloud_names


@click.command()
@click.argument("stack", type=click.Path())
@click.option("--cloud", help="Cloud to export for (aws, azure, gcp, oci); default: the one the placement names.", callback=cloud_names)
@click.option("--to", "to_dir", required=True, type=click.Path(file_okay=False), help="Directory to write the Pulumi project into.")
@click.option("--region", help="Region, overriding the placement.")
@click.option("--deployment", "only", metavar="NAME", help="Export only this deployment of the stack.")
@click.option("--stack", "stack_name", help="Pulumi stack name [default: the stack file's name].")
@output_option()
@click.pass_context
def export(ctx: click.Context, stack: str, cloud: str | None, to_dir: str, region: str | None, only: str | None, stack_name: str | None, out: Output) -> None:
    """Write the stack's plan on one cloud as a Pulumi Python project to run with your own Pulumi."""
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.iac.export import render_project
    from orchestrator.planning.planner import plan_stack

    plans = plan_stack(load_stack(stack, ctx.obj.catalog()), cloud, ctx.obj.catalog(), region, only)
    for unread in [p for p in plans if p.weights and p.checkpoint.load_quantization and not p.requirements.sized_from.startswith(p.weights)]:
        click.echo(
            f"warning: {unread.deployment.name}: {unread.requirements.sized_from or f'no checkpoint was read from {unread.weights}'}, "
            f"so the program passes --quantization "
            f"{unread.checkpoint.load_quantization}, which is right for a 16-bit checkpoint; one already stored quantized must not get it "
            "(vLLM refuses a method that differs from its config): export where the cloud's credentials can read the checkpoint",
            err=True,
        )
    project = render_project(plans, plans[0].cloud, stack_name or Path(stack).stem)
    written = project.write(Path(to_dir))
    if out.json:
        emit_json(
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
