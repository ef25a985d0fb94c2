"""`llamadeploy weights stage`: copy a checkpoint folder into a cloud's object storage for `weights:`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli.session import cloud_names
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.declared.spec import Deployment
    from orchestrator.lifecycle.staging import SourceFile


@click.group("weights")
def weights_group() -> None:
    """Your own checkpoint in a cloud's object storage, for a stack's `weights:`."""


@weights_group.command("stage")
@click.argument("stack", type=click.Path())
@click.option("--cloud", required=True, help="The cloud whose object storage receives it.", callback=cloud_names)
@click.option(
    "--from",
    "source",
    help="The checkpoint: a folder (config.json, tokenizer, *.safetensors + index), or hf://<org>/<repo>[@<revision>] "
    "(default: the deployment's checkpoint on the Hugging Face Hub, fetched a file at a time).",
)
@click.option("--to", "target", help="Where it goes (default: the deployment's weights.<cloud>), e.g. s3://bucket/llama-ft/.")
@click.option("--deployment", "only", metavar="NAME", help="The stack's deployment it is for (needed when the stack has several).")
@click.option("--replace", is_flag=True, help="Delete another checkpoint's files at the location first (default: refuse).")
@click.pass_context
def stage_command(ctx: click.Context, stack: str, cloud: str, source: str | None, target: str | None, only: str | None, replace: bool) -> None:
    """Copy a checkpoint into the cloud's object storage once, resumably: every file is hashed
    (SHA-256), sent with its hash, and read back before the next; a run after a kill sends only
    what is missing or different. The config goes last, so `up` refuses a copy cut short. A Hub
    checkpoint is fetched a file at a time (each shard removed once staged, so the disk holds one),
    with HF_TOKEN for a gated one."""
    from orchestrator.declared.stackfile import load_stack
    from orchestrator.lifecycle.pacing import retrying
    from orchestrator.lifecycle.staging import said_pace, stage
    from orchestrator.reports.report import plural
    from providers import registry

    loaded = load_stack(stack, ctx.obj.catalog())
    if only is None and len(loaded.deployments) > 1:
        raise UsageError(f"{stack} has {len(loaded.deployments)} deployments; say which with --deployment ({', '.join(d.name for d in loaded.deployments)})")
    deployment = loaded.get(only) if only else loaded.deployments[0]
    provider = registry.provider(cloud)
    uri = target or deployment.weights.get(cloud)
    if uri is None:
        raise UsageError(f"say where with --to (e.g. {provider.weights_scheme or '<scheme>://'}bucket/{deployment.name}/), or set weights.{cloud} in {stack}")
    problem = provider.weights_problem(uri)
    if problem:
        raise UsageError(f"--to {uri}: {problem}")
    for name in _served_from(ctx, cloud, uri):
        click.echo(
            f"warning: {name} serves from {uri} on {cloud}; a replica that starts while files change loads a half-copied checkpoint "
            "(stage a new fine-tune to a new location, then point weights: at it: `up` replaces the deployment blue/green)",
            err=True,
        )
    said = partial(click.echo, err=True)
    with _checkpoint_files(source, deployment, said) as files:
        store = retrying(lambda: provider.weights_store(uri, deployment.placement.of(cloud)), said_pace(said))
        done = stage(files, store, said, replace=replace)
    click.echo(
        f"Staged {source or 'the Hub checkpoint'} at {uri}: {plural(len(done.uploaded), 'file')} uploaded ({done.bytes_sent:,} bytes), {len(done.kept)} already there; all verified."
    )
    if deployment.weights.get(cloud) != uri:
        click.echo(f"Serve it with, in {stack}:\n  weights:\n    {cloud}: {uri}")


def _served_from(ctx: click.Context, cloud: str, uri: str) -> list[str]:
    """The recorded deployments on `cloud` that load their weights from `uri` (none where no state exists: a read never writes)."""
    if not ctx.obj.state_location().exists():
        return []
    return sorted(r.name for r in ctx.obj.state().records() if r.cloud == cloud and r.deployed is not None and (r.spec.get("weights") or {}).get(cloud) == uri)


@contextmanager
def _checkpoint_files(source: str | None, deployment: Deployment, said: Callable[[str], None]) -> Iterator[list[SourceFile]]:
    """The files to stage: `--from`'s folder, or a Hub repository's (the deployment's own checkpoint
    when `--from` is left out) fetched a file at a time with the deployment's HF_TOKEN, held in use
    (so no other run removes its folder) while they are staged; checked whole before anything is sent."""
    from orchestrator.declared.secrets import hub_token
    from orchestrator.lifecycle import hub
    from orchestrator.lifecycle.staging import folder_files

    if source is not None and not source.startswith(hub.HUB_PREFIX):
        yield folder_files(Path(source))
        return
    repo, revision = hub.hub_source(source) if source else (deployment.model_ref.checkpoint(deployment.quantization).repo, None)
    with hub.hub_files(repo, revision, hub_token(deployment), said) as files:
        yield files
