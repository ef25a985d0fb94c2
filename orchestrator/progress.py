"""How an operation's events reach the user: JSON lines, a live rich display, or plain lines.

With `--output json` every event is one JSON object on stdout, so a pipeline can follow it.
Otherwise events go to stderr, keeping stdout for results: as a rich live status line in a
terminal, as plain lines in a log. Events carry resource names and cloud states, never secrets.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Report = Callable[..., None]


# How each event reads to a person; an event not listed here reads as its name and fields.
_SENTENCES = {
    "created": "{kind} {type} {resource}",
    "adopted": "{kind} {type} {resource}",
    "waiting": "{what}: {status} ({elapsed_s:.0f} s)",
    "throttled": "the cloud is throttling requests; retry {attempt} in {retry_in_s} s",
    "interrupted": "an earlier {operation} by {holder} since {since} did not finish; taking over",
    "moving": "moving {deployment} from {source} to {target} ({region}): up there first",
    "switched": "{deployment} serves on {cloud} now; deleting it from the source",
    "failed_over": "{cloud} ({region}) cannot host it now ({reason}); trying the next candidate",
    "skipped": "{cloud}: {reason}",
    "unchanged": "{deployment} is already serving as declared; nothing to change",
    "verified": "{deployment} answers as {model}",
    "retrying": "{what} failed ({reason}); retry in {retry_in_s} s",
    "pulumi": "pulumi: {line}",
}


def _sentence(kind: str, fields: dict[str, Any]) -> str:
    template = _SENTENCES.get(kind)
    if template is None:
        return f"{kind} " + " ".join(f"{k}={v}" for k, v in fields.items())
    return template.format(kind=kind, **fields)


@contextmanager
def reporter(json_lines: bool) -> Iterator[Report]:
    """A report function for the duration of one command."""
    # The streams are bound now: a provider may redirect sys.stdout while it works (azure-ai-ml
    # prints progress dots there), and events must still reach the real one.
    stdout, stderr = sys.stdout, sys.stderr
    if json_lines:
        yield lambda kind, **fields: print(json.dumps({"event": kind, **fields}), file=stdout, flush=True)
        return
    if not stderr.isatty():
        yield lambda kind, **fields: print(_sentence(kind, fields), file=stderr, flush=True)
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("starting") as live:

        def report(kind: str, **fields: Any) -> None:
            if kind == "waiting" and not fields.get("done"):
                live.update(_sentence(kind, fields))
                return
            console.print(_sentence(kind, fields))
            live.update("working")

        yield report
