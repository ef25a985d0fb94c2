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


def _sentence(kind: str, fields: dict[str, Any]) -> str:
    if kind in ("created", "adopted"):
        return f"{kind} {fields['type']} {fields['resource']}"
    if kind == "waiting":
        return f"{fields['what']}: {fields['status']} ({fields['elapsed_s']:.0f} s)"
    if kind == "throttled":
        return f"the cloud is throttling requests; retry {fields['attempt']} in {fields['retry_in_s']} s"
    if kind == "interrupted":
        return f"an earlier {fields['operation']} by {fields['holder']} since {fields['since']} did not finish; taking over"
    if kind == "moving":
        return f"moving {fields['deployment']} from {fields['source']} to {fields['target']} ({fields['region']}): up there first"
    if kind == "switched":
        return f"{fields['deployment']} serves on {fields['cloud']} now; deleting it from the source"
    if kind == "failed_over":
        return f"{fields['cloud']} ({fields['region']}) cannot host it now ({fields['reason']}); trying the next candidate"
    if kind == "skipped":
        return f"{fields['cloud']}: {fields['reason']}"
    if kind == "unchanged":
        return f"{fields['deployment']} is already serving as declared; nothing to change"
    return f"{kind} " + " ".join(f"{k}={v}" for k, v in fields.items())


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
