"""How a command answers (`--output`): tables and sentences for people, JSON for pipelines.

Results go to stdout; progress events go to stderr, or with `--output json` to stdout as JSON
lines (docs/pipelines.md). Every command takes one `Output` and answers through it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from orchestrator.errors import LlamadeployError

if TYPE_CHECKING:
    from rich.console import Console

    from orchestrator.lifecycle.progress import Report

OUTPUTS = click.Choice(["table", "json"])
ENGINES = click.Choice(["native", "pulumi"])


def emit_json(data: Any) -> None:
    """One JSON document on stdout: what `--output json` promises (docs/pipelines.md)."""
    click.echo(json.dumps(data, indent=2))


@dataclass(frozen=True)
class Output:
    format: str  # "table" or "json"
    # Bound when the command starts: while a cloud SDK's chatter is sent to stderr (see the Azure
    # provider), results printed from another thread must still reach the real stdout.
    stdout: TextIO = field(default_factory=lambda: sys.stdout, compare=False, repr=False)

    @property
    def json(self) -> bool:
        return self.format == "json"

    def show(self, document: Callable[[], Any], table: Callable[[Console], None]) -> None:
        """The command's answer: `document()` as one JSON document, or `table` drawn for a person."""
        if self.json:
            emit_json(document())
            return
        from orchestrator.reports import render

        table(render.console())

    @contextmanager
    def events(self) -> Iterator[Report]:
        """Where an operation's progress goes while it runs."""
        from orchestrator.lifecycle.progress import reporter

        with reporter(self.json) as report:
            yield report

    def done(self, report: Report, sentence: str, **fields: Any) -> None:
        """An operation's last word: a `done` event among the JSON lines, else a sentence on stdout."""
        from orchestrator.lifecycle.progress import EventKind

        if self.json:
            report(EventKind.DONE, **fields)
        else:
            self.echo(sentence)

    def echo(self, line: str) -> None:
        """A line of the command's result, on the stdout the command began with."""
        click.echo(line, file=self.stdout)


def output_option(help: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--output table|json`, handed to the command as an `Output` named `out`."""
    return click.option("--output", "out", type=OUTPUTS, default="table", show_default=True, callback=lambda _ctx, _param, value: Output(value), help=help)


def write_file(path: Path, chunks: Iterable[str]) -> None:
    """Write `--to`'s file whole or not at all, as its chunks come."""
    from orchestrator.files import write_whole

    try:
        write_whole(path, (chunk.encode("utf-8") for chunk in chunks))
    except OSError as exc:
        raise LlamadeployError(f"cannot write {path}: {exc.strerror or exc}; choose another path with --to") from exc
