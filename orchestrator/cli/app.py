"""The `llamadeploy` group: its options, error handling and exit codes, and its commands.

Each command (in planning.py, lifecycle.py, iac.py) parses its options, calls one orchestrator
function and renders a table or JSON. Errors a user can fix print one `Error: …` and exit with the code from EXIT_CODES;
anything else is a bug and prints a traceback (with locals under LLAMADEPLOY_DEBUG=1).
Cloud SDKs are never imported here: `--help`, `plan` and `cost` work without them.
"""

from __future__ import annotations

import os
from typing import Any

import click

from orchestrator import __version__
from orchestrator.cli import iac, lifecycle, planning
from orchestrator.cli.catalog import catalog_group
from orchestrator.cli.session import DETAILED_EXITCODE, Session
from orchestrator.cli.state import state_group
from orchestrator.cli.weights import weights_group
from orchestrator.errors import LlamadeployError, SpecError, UsageError

# Exit codes as terraform's: 1 for any error, 2 for a usage error; `plan --detailed-exitcode`
# exits 2 when `up` would change something (usage errors are still 2 there, as in terraform).
EXIT_CODES: dict[type[LlamadeployError], int] = {UsageError: 2, LlamadeployError: 1}


def _exit_code(error: LlamadeployError) -> int:
    return next(code for kind, code in EXIT_CODES.items() if isinstance(error, kind))


def _message(error: LlamadeployError) -> str:
    if isinstance(error, SpecError) and len(error.problems) > 1:
        return f"{len(error.problems)} problems in the stack file:\n  " + "\n  ".join(map(str, error.problems))
    return str(error)


# The group's own options, which a user may also write after the command (`plan x.yaml --catalog c.csv`).
_GLOBAL_OPTIONS = ("--catalog", "--state")


def _globals_first(args: list[str], commands: dict[str, click.Command]) -> list[str]:
    """`args` with the group's options moved before the command wherever they were written; a
    value of the command's own options (`--prompt --state`) and anything after `--` stay as they are."""
    at = next((i for i, arg in enumerate(args) if arg in commands), None)
    if at is None:
        return args
    takes_value = {opt for param in commands[args[at]].params if isinstance(param, click.Option) and not param.is_flag for opt in param.opts}
    moved, rest, index = [], args[: at + 1], at + 1
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if arg in takes_value and index + 1 < len(args):
            rest += args[index : index + 2]
            index += 2
            continue
        if arg in _GLOBAL_OPTIONS and index + 1 < len(args):
            moved += args[index : index + 2]
            index += 2
            continue
        if arg.split("=", 1)[0] in _GLOBAL_OPTIONS and "=" in arg:
            moved.append(arg)
        else:
            rest.append(arg)
        index += 1
    return moved + rest


class _Cli(click.Group):
    """Turns known errors into one line on stderr and an exit code, in one place."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _globals_first(args, self.commands))

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


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llamadeploy")
@click.option(
    "--catalog",
    envvar="LLAMADEPLOY_CATALOG",
    type=click.Path(dir_okay=False),
    help="Price catalog CSV to use instead of the shipped one (e.g. with negotiated prices).",
)
@click.option(
    "--state",
    envvar="LLAMADEPLOY_STATE",
    help="State store: a file path or sqlite:///path, postgresql://user@host/db, s3://bucket/prefix or az://container/prefix [default: .llamadeploy/state.db].",
)
@click.pass_context
def cli(ctx: click.Context, catalog: str | None, state: str | None) -> None:
    """Deploy Llama models to AWS, Azure, Google Cloud and Oracle Cloud from one declared spec."""
    ctx.obj = Session(ctx, catalog, state)


for command in (
    planning.plan,
    planning.cost,
    planning.gpus,
    planning.models,
    planning.providers_command,
    lifecycle.up,
    lifecycle.status,
    lifecycle.call,
    lifecycle.move,
    lifecycle.scale,
    lifecycle.down,
    iac.export,
    state_group,
    catalog_group,
    weights_group,
):
    cli.add_command(command)


def main() -> None:
    # pydantic scans every installed distribution for its plugins (~0.1 s) on the first model;
    # llamadeploy uses none, and `plan`/`cost` are meant to answer at once. A user's own
    # setting of the variable wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    cli(prog_name="llamadeploy")
