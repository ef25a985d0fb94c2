"""How many times a wait polls the cloud, and how late it ends, for resources ready after 30 s to 30 min.

Runs the engine's own schedule (`Backoff.poll_delay`, jitter included) on a simulated clock, as
`engine._Run.wait` uses it: a poll at once, then one after each delay. For each readiness time
and pace (each run ready up to 10 s before the time named) it reports the polls (worst of 200
runs), the shortest gap between two polls, and how long after the resource was ready the wait ended. Goals for a step of minutes (`Pace.MINUTES`):
at most one poll per 10 s, and an end within 5 % of the readiness time once that is 200 s or more.

    python bench/polls.py
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.lifecycle.pacing import Backoff
from providers.base import Pace

READY_AFTER = (30, 60, 120, 200, 300, 600, 1200, 1800)
RUNS = 200


def simulate(backoff: Backoff, ready_at: float, pace: Pace) -> tuple[int, float, float]:
    """Polls made, the shortest gap between two, and seconds from ready to the poll that saw it."""
    clock, polls, shortest = 0.0, 1, float("inf")
    while clock < ready_at:
        delay = backoff.poll_delay(clock, pace)
        shortest = min(shortest, delay)
        clock += delay
        polls += 1
    return polls, shortest, clock - ready_at


def main() -> None:
    backoff = Backoff(initial=1.0)
    print(
        f"{'pace':8} {'ready s':>8} {'polls':>6} {'s/poll':>7} {'min gap s':>10} {'late s':>7} {'late %':>7}  goals (minutes): gap >= 10 s; late <= 5 % from 200 s"
    )
    for pace in (Pace.MINUTES, Pace.SECONDS):
        for ready in READY_AFTER:
            runs = [simulate(backoff, ready - random.uniform(0, 10), pace) for _ in range(RUNS)]  # not on a 10 s tick
            polls = max(r[0] for r in runs)
            gap = min(r[1] for r in runs)
            late = max(r[2] for r in runs)
            print(f"{pace.value:8} {ready:8d} {polls:6d} {ready / polls:7.1f} {gap:10.1f} {late:7.1f} {100 * late / ready:6.1f}%")


if __name__ == "__main__":
    main()
