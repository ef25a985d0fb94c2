"""How the engine paces itself: the delays between polls of a slow cloud, and the one retry policy
every cloud call goes through (an operation's, and `plan`'s and `cost`'s reads)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from orchestrator.errors import LlamadeployError
from orchestrator.lifecycle.progress import EventKind, Report, quiet
from providers.base import Pace, ThrottledError, TransientError, UnreachableError

POLL_ENV = "LLAMADEPLOY_POLL_SECONDS"
WAIT_TIMEOUT_ENV = "LLAMADEPLOY_WAIT_TIMEOUT"


@dataclass(frozen=True)
class Backoff:
    """How long to wait between polls and between throttled retries, always with jitter.

    Polls grow with the time already waited: the next one comes after `overshoot` (5 %) of the
    elapsed time, at most `maximum` apart, so a wait never ends more than 5 % after the cloud is
    ready. A step of seconds is polled from `initial` apart; a step of minutes (`Pace.MINUTES`:
    GPU machines starting, a model loading) never more often than `steady` (10 x `initial`, so
    10 s), which for a wait of 200 s or more keeps both bounds: at most one poll per 10 s and an
    end within 5 % (a 10-minute endpoint costs 36 polls, not 90). Throttled retries back off
    exponentially from `initial`. Jitter only shortens a delay and never below the step's floor,
    so clients never synchronise and both bounds still hold.
    """

    initial: float = field(default_factory=lambda: _seconds_from_env(POLL_ENV, 1.0))
    overshoot: float = 0.05
    maximum: float = 60.0
    jitter: float = 0.2
    timeout: float = field(default_factory=lambda: _seconds_from_env(WAIT_TIMEOUT_ENV, 3 * 3600.0))

    @property
    def steady(self) -> float:
        return 10 * self.initial

    def poll_delay(self, elapsed: float, pace: Pace = Pace.SECONDS) -> float:
        floor = self.steady if pace is Pace.MINUTES else self.initial
        ceiling = min(self.maximum, max(floor, self.overshoot * elapsed))
        return max(floor if pace is Pace.MINUTES else 0.0, ceiling * random.uniform(1 - self.jitter, 1))

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * random.uniform(1 - self.jitter, 1)
            delay = min(delay * 2, self.maximum)


RETRY_ATTEMPTS = 6
T = TypeVar("T")


class Paced(Protocol):
    """What a retried call needs: how to pace itself and where to say so (a Context has both)."""

    @property
    def backoff(self) -> Backoff: ...

    @property
    def report(self) -> Report: ...


@dataclass(frozen=True)
class Unattended:
    """The pace of a call made outside any deployment's operation (`plan` reading a quota or the
    user's checkpoint): the usual backoff, reported nowhere."""

    backoff: Backoff = field(default_factory=Backoff)
    report: Report = quiet


def retrying(call: Callable[[], T], ctx: Paced, reached_only: bool = False) -> T:
    """Run `call`, retrying when the cloud throttles (after its Retry-After, else a backoff delay) or
    fails transiently (a 5xx, a dropped connection; with `reached_only`, only once the call got
    there). This is the one retry policy: the providers' SDKs are configured not to retry on their own."""
    delays, report = ctx.backoff.delays(), ctx.report
    for attempt in range(1, RETRY_ATTEMPTS + 1):
        try:
            return call()
        except (ThrottledError, TransientError) as exc:
            if attempt == RETRY_ATTEMPTS or (reached_only and isinstance(exc, UnreachableError)):
                raise
            throttled = isinstance(exc, ThrottledError)
            delay = exc.retry_after if throttled and exc.retry_after is not None else next(delays)
            if throttled:
                report(EventKind.THROTTLED, attempt=attempt, retry_in_s=round(delay, 2))
            else:
                report(EventKind.RETRYING, what="a call to the cloud", reason=str(exc).splitlines()[0], retry_in_s=round(delay, 2))
            time.sleep(delay)
    raise AssertionError("unreachable")


def _seconds_from_env(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise LlamadeployError(f"${variable} must be a positive number of seconds, not {text!r}")
    return value
