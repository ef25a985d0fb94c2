"""What every command shares, as click's context object: where the catalog and the state are,
opened on first use and closed when the command ends, and how a command asks for confirmation."""

from __future__ import annotations

import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.lifecycle.context import Context
    from orchestrator.lifecycle.state import Location, StateStore
    from orchestrator.pricing.catalog import Catalog

EXIT_CHANGES = 2
DETAILED_EXITCODE = "llamadeploy.detailed_exitcode"  # ctx.meta flag: every error exits 1, as 2 means "changes"


def cloud_names(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """`--cloud AWS` as `--cloud aws`: cloud names are matched in any letter case, as GPU names are."""
    return value.lower() if value else value


def cloud_list(value: str | None) -> list[str] | None:
    """`--clouds aws,gcp` as its names (None when not given)."""
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


class DetailedExitCommand(click.Command):
    """`plan`: under --detailed-exitcode a mistyped option exits 1 too, never the 2 of "changes"."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any) -> click.Context:
        given = list(args)  # click's parser consumes `args` as it goes: an option before the typo would be gone
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            if "--detailed-exitcode" in given:
                error.exit_code = 1
            raise


@dataclass
class Session:
    """The options of `llamadeploy` itself (--catalog, --state) and what they open."""

    ctx: click.Context
    catalog_path: str | None
    state_option: str | None
    _catalog: Catalog | None = field(default=None, repr=False)
    _state: StateStore | None = field(default=None, repr=False)

    def catalog(self) -> Catalog:
        from orchestrator.pricing.catalog import load_catalog

        if self._catalog is None:
            self._catalog = load_catalog(self.catalog_path)
        return self._catalog

    def state(self) -> StateStore:
        """The state store, closed when the command ends."""
        from orchestrator.lifecycle.state import open_state

        if self._state is None:
            self._state = self.ctx.with_resource(closing(open_state(self.state_option)))
        return self._state

    def state_location(self) -> Location:
        from orchestrator.lifecycle.state import state_location

        return state_location(self.state_option)

    def lifecycle(self, report: Any = None, catalog: Catalog | None = None) -> Context:
        """The engine's context for this command: the state store, and the catalog and event report it uses."""
        from orchestrator.lifecycle.context import Context
        from orchestrator.lifecycle.progress import quiet

        return Context(self.state(), catalog, report or quiet)

    def pulumi_dir(self) -> Path:
        """Where `--engine pulumi` keeps its rendered projects: beside the state file."""
        return self.state_location().local_dir / "pulumi"


def confirm(yes: bool, question: str) -> None:
    """Ask in a terminal; in a pipeline, demand --yes rather than hang on a prompt."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: pass --yes to confirm (stdin is not a terminal, so llamadeploy cannot ask)")
    click.confirm(question, abort=True, err=True)
