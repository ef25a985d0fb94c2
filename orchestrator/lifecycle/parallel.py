"""Several deployments at once: each in a thread of its own, their progress in one display, and
every failure reported, not only the first.

A stack's deployments are independent of one another (each has its own lock, record and cloud
resources), and most of an `up` or `down` is waiting on the cloud, which threads do well: four
deployments take about as long as the slowest of them instead of the sum. Each works with its own
engine context, whose events carry the deployment's name, its own connection to the state file
(`State` keeps one per thread) and its own SDK clients (`Provider.client` keeps them per thread).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
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
    every failure; a failure never stops the others, which would leave them half-made."""
    if len(names) == 1:
        done(names[0], work(ctx, names[0]))
        return
    failures: list[tuple[str, LlamadeployError]] = []
    with ThreadPoolExecutor(max_workers=min(len(names), MAX_PARALLEL), thread_name_prefix="llamadeploy") as pool:
        futures = {pool.submit(work, _tagged(ctx, name), name): name for name in names}
        for future in as_completed(futures):
            name = futures[future]
            try:
                result = future.result()
            except LlamadeployError as exc:
                failures.append((name, exc))
                continue
            done(name, result)
    if failures:
        listed = "\n".join(f"  {name}: {str(exc).replace(chr(10), chr(10) + '    ')}" for name, exc in sorted(failures, key=lambda f: f[0]))
        raise SomeFailedError(f"{len(failures)} of {len(names)} deployments failed (the others finished):\n{listed}")


def _tagged(ctx: Context, name: str) -> Context:
    """`ctx` for one of several deployments: each event says which deployment it is about."""
    report = ctx.report

    def tagged(kind: EventKind, **fields: Any) -> None:
        report(kind, **{"deployment": name, **fields})

    return replace(ctx, report=tagged)
