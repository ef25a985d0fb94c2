"""Hosted closed-model APIs' list prices, and the load at which self-hosting costs less.

People choose Llama partly to pay less than for a closed model; `cost` makes that checkable. A
hosted API bills every token, so its month grows with the load; a self-hosted deployment bills
its replicas, whatever they serve. At the break-even load the two months are equal: below it
the API costs less, above it the deployment does (until it needs more replicas, which cost
less per request than the API if at all: see `break_even_rps`). Price only: the models differ.
The prices are in `orchestrator/data/hosted-api-prices.csv`, each with its source and date.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from orchestrator.errors import CatalogError
from orchestrator.sizing.throughput import SECONDS_PER_HOUR


@dataclass(frozen=True)
class HostedPrice:
    vendor: str
    model: str
    usd_per_million_input: float
    usd_per_million_output: float
    source: str
    as_of: str

    def usd_per_request(self, prompt_tokens: int, output_tokens: int) -> float:
        return (prompt_tokens * self.usd_per_million_input + output_tokens * self.usd_per_million_output) / 1e6

    def usd_per_million_output_tokens(self, prompt_tokens: int, output_tokens: int) -> float:
        """What a request's tokens cost, per million of its output tokens: the figure a deployment's
        `$ per 1M output tokens` is compared with (both carry the prompt's cost)."""
        return self.usd_per_request(prompt_tokens, output_tokens) / output_tokens * 1e6


def break_even_rps(usd_per_replica_hour: float, replica_capacity_rps: float, min_replicas: int, api_usd_per_request: float) -> float | None:
    """The requests per second at which the deployment's min replicas cost what the API does, or
    None when they never do: a replica at its capacity (the autoscaling target) then costs more
    per request than the API, and so does every added one.

    With n replicas serving L requests/s (n = max(min_replicas, ceil(L / capacity))), self-hosting
    costs n x price per hour and the API L x 3600 x price per request. On min replicas the
    deployment costs less from min_replicas x price / (3600 x per request) up to min_replicas x
    capacity; past that each added replica is a step up (see HostedAlternative)."""
    api_per_second_of_load = api_usd_per_request * SECONDS_PER_HOUR  # $/h per request/s
    if usd_per_replica_hour / api_per_second_of_load > replica_capacity_rps:
        return None
    return min_replicas * usd_per_replica_hour / api_per_second_of_load


def default_path() -> Path:
    return Path(__file__).parent.parent / "data" / "hosted-api-prices.csv"


@lru_cache(maxsize=2)
def load_hosted(path: Path | None = None) -> tuple[HostedPrice, ...]:
    chosen = path or default_path()
    try:
        with chosen.open(newline="", encoding="utf-8") as handle:
            return tuple(
                HostedPrice(
                    row["vendor"],
                    row["model"],
                    float(row["usd_per_million_input"]),
                    float(row["usd_per_million_output"]),
                    row["source"],
                    row["as_of"],
                )
                for row in csv.DictReader(handle)
            )
    except (OSError, KeyError, ValueError) as exc:
        raise CatalogError(f"cannot read the hosted API prices {chosen}: {exc}") from exc
