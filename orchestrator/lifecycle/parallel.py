"""Several deployments at once: each in a thread of its own, their progress in one display, and
every failure reported, not only the first.

A stack's deployments are independent of one another (each has its own lock, record and cloud
resources), and most of an `up` or `down` is waiting on the cloud, which threads do well: four
deployments take about as long as the slowest of them instead of the sum. Each works with its own
engine context, whose events carry the deployment's name, its own connection to the state file
(a SQL state store keeps one per thread) and its own SDK clients (`Provider.client` keeps them per thread).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from orchestrator.errors import LlamadeployError
from orchestrator.lifecycle.context import Context
from orchestrator.lifecycle.progress import EventKind

R = TypeVar("R")
# More at once would mostly wait on the same cloud's rate limits (and on two cores, on the CPU).
MAX_PARALLEL = 8


class SomeFailedError(LlamadeployError):
    """Some of the deployments failed; the others finished. The message names each failure."""


def for_each(ctx: Context, names: Sequence[str], work: Callable[[Context, str], R], done: Callable[[str, R], None]) -> None:
    """`work(ctx, name)` for every name at once; `done` hears of each success as it comes, in the
    calling thread (so what it prints never interleaves). Once all have ended, one error names
    every failure; a failure never stops the others, which would leave them half-made.

    The workers are daemon threads: Ctrl-C stops the command at once, as it stops one deployment's
    `up`, and the next command takes over what each was doing from the journal (a pool's threads
    would keep the process alive until every wait on the cloud had ended)."""
    if len(names) == 1:
        done(names[0], work(ctx, names[0]))
        return
    outcomes: queue.Queue[tuple[str, object]] = queue.Queue()

    def run(name: str) -> None:
        try:
            outcomes.put((name, work(_tagged(ctx, name), name)))
        except BaseException as exc:  # handed to the calling thread, which decides
            outcomes.put((name, exc))

    waiting = list(names)
    for name in waiting[:MAX_PARALLEL]:
        threading.Thread(target=run, args=(name,), name=f"llamadeploy-{name}", daemon=True).start()
    del waiting[:MAX_PARALLEL]
    failures: list[tuple[str, LlamadeployError]] = []
    unexpected: BaseException | None = None
    for _ in names:
        name, outcome = outcomes.get()
        if waiting:
            threading.Thread(target=run, args=(waiting[0],), name=f"llamadeploy-{waiting[0]}", daemon=True).start()
            del waiting[0]
        if isinstance(outcome, LlamadeployError):
            failures.append((name, outcome))
        elif isinstance(outcome, BaseException):
            unexpected = unexpected or outcome
        else:
            done(name, outcome)  # type: ignore[arg-type]
    if unexpected is not None:
        raise unexpected
    if failures:
        listed = "\n".join(f"  {name}: {str(exc).replace(chr(10), chr(10) + '    ')}" for name, exc in sorted(failures, key=lambda f: f[0]))
        raise SomeFailedError(f"{len(failures)} of {len(names)} deployments failed (the others finished):\n{listed}")


def _tagged(ctx: Context, name: str) -> Context:
    """`ctx` for one of several deployments: each event says which deployment it is about."""
    report = ctx.report

    def tagged(kind: EventKind, **fields: Any) -> None:
        report(kind, **{"deployment": name, **fields})

    return replace(ctx, report=tagged)
