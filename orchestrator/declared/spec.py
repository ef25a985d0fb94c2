"""The declared deployment: what a stack file may say, and every way it can be wrong.

A stack file holds one deployment, or `deployments: [...]`. The models are strict (no
unknown keys, no silent type coercion) because a typo in infrastructure code must fail at
plan time, not surface as a wrong deployment. Every problem is reported with file, line and
field path, all at once, so a user fixes a file in one pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    field_validator,
)

from orchestrator.declared.source import FieldPath, SourceMap
from orchestrator.errors import Problem, SpecError, UnknownModelError
from orchestrator.sizing.models import ModelRef, resolve

QUANTIZATIONS = ("bf16", "fp8", "int4")
GPU_TYPES = ("H200", "H100", "A100-80GB", "A100-40GB", "L40S", "L4", "A10G", "A10")
ENGINES = ("vllm",)
PRECISION = {"bf16": 2, "fp8": 1, "int4": 0}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")
# Deployment names prefix every cloud resource name; the strictest service's 63-character limit
# on endpoint names, less the suffixes providers add, leaves 40.
_DNS_NAME = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"
# What a field with a pattern must look like, said the way a user can act on it.
FORMATS = {
    "name": "use lowercase letters, digits and '-', starting with a letter, at most 40 characters",
    "fallback": "use cloud or cloud:region, such as azure:eastus",
}


def _choice(options: tuple[str, ...], what: str) -> BeforeValidator:
    """Accept one of `options` in any letter case, and suggest the nearest on a typo."""
    by_folded = {o.lower(): o for o in options}

    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in by_folded:
            return by_folded[value.strip().lower()]
        close = difflib.get_close_matches(str(value).lower(), list(by_folded), n=1, cutoff=0.5)
        hint = f"did you mean {by_folded[close[0]]!r}? " if close else ""
        raise ValueError(f"unknown {what} {value!r}; {hint}choose one of {', '.join(options)}")

    return BeforeValidator(check)


def _names(pattern: re.Pattern[str], what: str) -> Callable[[dict[str, str]], dict[str, str]]:
    def check(values: dict[str, str]) -> dict[str, str]:
        bad = [k for k in values if not pattern.match(k)]
        if bad:
            raise ValueError(f"{what} {', '.join(map(repr, bad))} must be letters, digits and '_' and not start with a digit")
        return values

    return check


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Autoscaling(_Strict):
    min_replicas: PositiveInt = 1
    max_replicas: PositiveInt = 1
    # Requests in flight per replica that autoscaling aims for; defaults to `concurrency`.
    target_concurrent_requests: PositiveInt | None = None


HOURS_PER_DAY = 24


def _rates(value: Any) -> float | list[float]:
    """A flat rate or one per hour of the day, every one a number of requests per second >= 0."""

    def rate(item: Any) -> float:
        if isinstance(item, bool) or not isinstance(item, int | float) or item < 0:
            raise ValueError(f"{item!r} is not a rate; use a number of requests per second, 0 or more")
        return float(item)

    if isinstance(value, list):
        if len(value) != HOURS_PER_DAY:
            raise ValueError(f"give one value per hour of the day (24, hour 0 first, UTC), or one number for a flat average; got {len(value)}")
        return [rate(item) for item in value]
    return rate(value)


class Load(_Strict):
    """The traffic a deployment expects, for the month's projection in cost reports.

    `requests_per_second` is a flat average, or 24 values: one per hour of the day (UTC).
    """

    requests_per_second: Annotated[float | list[float], BeforeValidator(_rates)]
    prompt_tokens: PositiveInt = 1000
    output_tokens: PositiveInt = 250

    def hourly(self) -> list[float]:
        """Requests per second for each hour of the day."""
        value = self.requests_per_second
        return list(value) if isinstance(value, list) else [value] * HOURS_PER_DAY


class Serving(_Strict):
    engine: Annotated[str, _choice(ENGINES, "serving engine")] = "vllm"
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # Llama weights are gated on Hugging Face, so a token is needed unless the user says otherwise.
    secrets: dict[str, str] = Field(default_factory=lambda: {"HF_TOKEN": "env:HF_TOKEN"})

    _env_names = field_validator("env")(_names(_ENV_NAME, "environment variable names"))
    _secret_names = field_validator("secrets")(_names(_ENV_NAME, "secret names"))

    @field_validator("secrets")
    @classmethod
    def _references_only(cls, secrets: dict[str, str]) -> dict[str, str]:
        literal = [name for name, ref in secrets.items() if not _SECRET_REF.match(ref)]
        if literal:
            raise ValueError(
                f"secret {', '.join(literal)} must be a reference such as env:{literal[0]} (read from the environment at deploy time), never the secret itself"
            )
        return secrets


class PlacementBase(_Strict):
    """Where a deployment goes on one cloud. Each provider extends it with the fields its cloud
    needs (its `placement_model`), so the stack file is checked against that cloud's own schema.
    A field's `description` is the hint shown when its value does not match its pattern."""

    region: str | None = None


class Placement(BaseModel):
    """`placement:`: one entry per cloud, validated by that cloud's provider, and the fallback list.

    The clouds are the providers' (built in or plugged in), so the core names none: an entry is
    kept as written here and replaced by its provider's model when the stack is loaded.
    """

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    # Where `up` goes, in order, when a cloud has no capacity or quota: "cloud" or "cloud:region".
    fallback: list[Annotated[str, Field(pattern=r"^[a-z0-9-]+(:[a-z0-9-]+)?$")]] = Field(default_factory=list)

    def of(self, cloud: str) -> Any:
        """The cloud's placement (its provider's model), or None where the stack does not place it."""
        return (self.model_extra or {}).get(cloud)

    def candidates(self) -> list[tuple[str, str | None]]:
        return [(cloud, region or None) for cloud, _, region in (entry.partition(":") for entry in self.fallback)]

    def clouds(self) -> list[str]:
        return list(self.model_extra or {})

    def region(self, cloud: str) -> str | None:
        placed = self.of(cloud)
        return placed.region if placed is not None else None


class Deployment(_Strict):
    name: Annotated[str, Field(pattern=_DNS_NAME)]
    model: str
    quantization: Annotated[str, _choice(QUANTIZATIONS, "quantization")] = "bf16"
    max_context: PositiveInt = 8192
    concurrency: PositiveInt = 16
    gpu: Annotated[str, _choice(("auto",) + GPU_TYPES, "GPU type")] = "auto"
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    serving: Serving = Field(default_factory=Serving)
    placement: Placement = Field(default_factory=Placement)
    tags: dict[str, str] = Field(default_factory=dict)
    # Expected traffic; only cost reports read it, so it is no part of what `up` deploys.
    load: Load | None = None
    # The user's own checkpoint (Hugging Face format: config, tokenizer, safetensors) in each
    # cloud's object storage, by cloud; `model` names its architecture. Its provider checks the form.
    weights: dict[str, str] = Field(default_factory=dict)

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        try:
            resolve(name)
        except UnknownModelError as exc:
            raise ValueError(str(exc)) from None
        return name

    @property
    def model_ref(self) -> ModelRef:
        return resolve(self.model)

    @property
    def target_concurrent_requests(self) -> int:
        return self.autoscaling.target_concurrent_requests or self.concurrency


@dataclass(frozen=True)
class Stack:
    """The deployments of one stack file, and where each of their fields was written."""

    path: str
    deployments: tuple[Deployment, ...]
    source: SourceMap
    prefixes: tuple[FieldPath, ...]

    def locate(self, deployment: Deployment, field: FieldPath, message: str) -> Problem:
        """A problem about `field` of `deployment`, with its line in the file."""
        prefix = self.prefixes[self.deployments.index(deployment)]
        return self.source.problem(prefix + field, message)

    def get(self, name: str) -> Deployment:
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        known = ", ".join(d.name for d in self.deployments)
        raise SpecError([Problem(self.path, None, "", f"no deployment named {name!r}; this stack has {known}")])
