"""How an operation's events reach the user: JSON lines, a live rich display, or plain lines.

With `--output json` every event is one JSON object on stdout, so a pipeline can follow it.
Otherwise events go to stderr, keeping stdout for results: as a rich live status line in a
terminal, as plain lines in a log. Events carry resource names and cloud states, never secrets.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What an operation reports; the value is the `event` field of `--output json` lines."""

    CREATED = "created"
    ADOPTED = "adopted"
    WAITING = "waiting"
    THROTTLED = "throttled"
    RETRYING = "retrying"
    INTERRUPTED = "interrupted"
    QUOTA = "quota"  # the account's quota for the plan's machines, read before creating anything
    QUOTA_UNCHECKED = "quota_unchecked"
    NETWORK_UNCHECKED = "network_unchecked"  # the network the deployment runs in could not be read before creating anything
    RESUMING = "resuming"  # a cloud operation an earlier command started is waited for, not started again
    UNCHANGED = "unchanged"
    UPDATING = "updating"  # a serving deployment changed in place
    REPLACING = "replacing"  # a serving deployment replaced blue/green: a new variant beside the old
    SHIFTING = "shifting"  # the endpoint's traffic moving to the variant named
    RETIRING = "retiring"  # the new variant serves; the old one is being deleted
    VERIFIED = "verified"
    UNVERIFIED = "unverified"  # the endpoint answers only inside its network and did not answer from here, or llamadeploy cannot call it
    MOVING = "moving"
    SWITCHED = "switched"
    SKIPPED = "skipped"
    FAILED_OVER = "failed_over"
    PULUMI = "pulumi"
    DONE = "done"


Report = Callable[..., None]  # report(kind: EventKind, **fields)


def quiet(*_: Any, **__: Any) -> None:
    """A report that shows nothing."""


# The shape of `--output json` event lines, as Terraform's `-json` carries `@version`: raised when a
# field changes meaning or goes away (adding a field or an event kind does not raise it).
EVENT_SCHEMA_VERSION = 1
# Events that say something went wrong and was dealt with (a retry, a fallback, a skipped check).
_WARNINGS = frozenset(
    {
        EventKind.THROTTLED,
        EventKind.RETRYING,
        EventKind.INTERRUPTED,
        EventKind.QUOTA_UNCHECKED,
        EventKind.NETWORK_UNCHECKED,
        EventKind.FAILED_OVER,
        EventKind.SKIPPED,
        EventKind.UNVERIFIED,
    }
)


def level_of(kind: EventKind) -> str:
    """An event's `@level`: `warn` for what went wrong and was dealt with, else `info`."""
    return "warn" if kind in _WARNINGS else "info"


# How each event reads to a person; an event not listed here reads as its name and fields.
_SENTENCES = {
    EventKind.CREATED: "{kind} {type} {resource}",
    EventKind.ADOPTED: "{kind} {type} {resource}",
    EventKind.WAITING: "{what}: {status} ({elapsed_s:.0f} s)",
    EventKind.THROTTLED: "the cloud is throttling requests; retry {attempt} in {retry_in_s} s",
    EventKind.INTERRUPTED: "an earlier {operation} by {holder} since {since} did not finish; taking over",
    EventKind.QUOTA: "{cloud} ({region}): {quota}",
    EventKind.QUOTA_UNCHECKED: "{cloud} ({region}): quota not checked ({reason})",
    EventKind.NETWORK_UNCHECKED: "{cloud} ({region}): network not checked ({reason})",
    EventKind.RESUMING: "{resource}: an earlier command started {operation} and did not see it end; waiting for it",
    EventKind.MOVING: "moving {deployment} from {source} to {target} ({region}): up there first",
    EventKind.SWITCHED: "{deployment} serves on {cloud} now; deleting it from the source",
    EventKind.FAILED_OVER: "{cloud} ({region}) cannot host it now ({reason}); trying the next candidate",
    EventKind.SKIPPED: "{cloud}: {reason}",
    EventKind.UPDATING: "{deployment}: updating in place ({fields})",
    EventKind.REPLACING: "{deployment}: replacing blue/green ({fields}): the new variant {variant} comes up beside the serving one",
    EventKind.SHIFTING: "{deployment}: moving the endpoint's traffic to variant {variant}",
    EventKind.RETIRING: "{deployment}: variant {variant} serves; deleting the old one",
    EventKind.UNCHANGED: "{deployment} is already serving as declared; nothing to change",
    EventKind.VERIFIED: "{deployment} answers as {model}",
    EventKind.UNVERIFIED: "{deployment} was not checked: {reason}",
    EventKind.RETRYING: "{what} failed ({reason}); retry in {retry_in_s} s",
    EventKind.PULUMI: "pulumi: {line}",
}


def _sentence(kind: EventKind, fields: dict[str, Any]) -> str:
    """An event in words; one about one of several deployments (`parallel`) says which."""
    template = _SENTENCES.get(kind)
    text = f"{kind} " + " ".join(f"{k}={v}" for k, v in fields.items()) if template is None else template.format(kind=kind.value, **fields)
    named = "deployment" in fields and (template is None or "{deployment}" in template)
    return text if named or "deployment" not in fields else f"{fields['deployment']}: {text}"


@contextmanager
def reporter(json_lines: bool) -> Iterator[Report]:
    """A report function for the duration of one command; several deployments' threads may call it at once."""
    # The streams are bound now: a provider may redirect sys.stdout while it works (a cloud SDK
    # may print progress dots there), and events must still reach the real one.
    stdout, stderr = sys.stdout, sys.stderr
    lock = threading.Lock()
    if json_lines:

        def as_json(kind: EventKind, **fields: Any) -> None:
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            line = json.dumps({"@version": EVENT_SCHEMA_VERSION, "@timestamp": stamp, "@level": level_of(kind), "event": kind, **fields})
            with lock:
                print(line, file=stdout, flush=True)

        yield as_json
        return
    if not stderr.isatty():

        def as_line(kind: EventKind, **fields: Any) -> None:
            with lock:
                print(_sentence(kind, fields), file=stderr, flush=True)

        yield as_line
        return
    from rich.console import Console

    console = Console(stderr=True)
    waiting: dict[str, str] = {}  # the live line of each deployment still waiting on its cloud
    with console.status("starting") as live:

        def report(kind: EventKind, **fields: Any) -> None:
            key = str(fields.get("deployment", ""))
            with lock:
                if kind is EventKind.WAITING and not fields.get("done"):
                    waiting[key] = _sentence(kind, fields)
                else:
                    if kind is EventKind.WAITING:
                        waiting.pop(key, None)
                    console.print(_sentence(kind, fields))
                live.update("\n".join(waiting.values()) or "working")

        yield report
