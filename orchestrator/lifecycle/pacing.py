"""How the engine paces itself: the delays between polls of a slow cloud and between retries."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from orchestrator.errors import LlamadeployError

POLL_ENV = "LLAMADEPLOY_POLL_SECONDS"
WAIT_TIMEOUT_ENV = "LLAMADEPLOY_WAIT_TIMEOUT"


@dataclass(frozen=True)
class Backoff:
    """How long to wait between polls and between throttled retries, always with jitter.

    Polls grow with the time already waited: the next one comes after `overshoot` (4 %) of
    the elapsed time, at least `initial` and at most `maximum` apart, so a wait never ends
    more than ~4 % after the cloud is ready, while a long wait makes few calls (a 30-minute
    endpoint costs about 150). Throttled retries back off exponentially from `initial`.
    Jitter only shortens a delay, so clients never synchronise and the bound still holds.
    """

    initial: float = field(default_factory=lambda: _seconds_from_env(POLL_ENV, 1.0))
    overshoot: float = 0.04
    maximum: float = 60.0
    jitter: float = 0.2
    timeout: float = field(default_factory=lambda: _seconds_from_env(WAIT_TIMEOUT_ENV, 3 * 3600.0))

    def poll_delay(self, elapsed: float) -> float:
        return min(self.maximum, max(self.initial, self.overshoot * elapsed)) * random.uniform(1 - self.jitter, 1)

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * random.uniform(1 - self.jitter, 1)
            delay = min(delay * 2, self.maximum)


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
