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
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
)

from orchestrator.bulk import paused_gc
from orchestrator.errors import NoCheckpointError, Problem, SpecError, UnknownModelError, UsageError
from orchestrator.models import ModelRef, resolve
from orchestrator.source import FieldPath, SourceMap, format_path, load_yaml

QUANTIZATIONS = ("bf16", "fp8", "int4")
GPU_TYPES = ("H200", "H100", "A100-80GB", "A100-40GB", "L40S", "L4", "A10G", "A10")
ENGINES = ("vllm",)
_PRECISION = {"bf16": 2, "fp8": 1, "int4": 0}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_REF = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")
# Deployment names prefix every cloud resource name; SageMaker's 63-character limit on
# endpoint names, less the suffixes llamadeploy adds, leaves 40.
_DNS_NAME = r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$"
# What a field with a pattern must look like, said the way a user can act on it.
_FORMATS = {
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


def load_stack(path: str | Path) -> Stack:
    """Read and validate a stack file; raise SpecError listing every problem in it."""
    with paused_gc():
        return _load_stack(Path(path))


def _load_stack(path: Path) -> Stack:
    data, source = load_yaml(path)
    if not isinstance(data, dict):
        raise SpecError([source.problem((), "a stack file must be a mapping: one deployment, or `deployments:` with a list")])
    if "deployments" in data:
        extra = sorted(set(data) - {"deployments"})
        if extra:
            raise SpecError([source.problem((extra[0],), "unknown key beside `deployments:`; put it inside each deployment")])
        items = data["deployments"]
        if not isinstance(items, list) or not items:
            raise SpecError([source.problem(("deployments",), "must be a non-empty list of deployments")])
        prefixes: list[FieldPath] = [("deployments", i) for i in range(len(items))]
    else:
        items, prefixes = [data], [()]

    problems: list[Problem] = []
    deployments: list[Deployment] = []
    seen: set[str] = set()
    for raw, prefix in zip(items, prefixes, strict=True):
        try:
            deployment = Deployment.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_problems(exc, prefix, source))
            continue
        deployment, wrong = _placed(deployment)
        if wrong:
            problems.extend(source.problem(prefix + loc, message) for loc, message in wrong)
            continue
        problems.extend(source.problem(prefix + field, msg) for field, msg in _cross_field_problems(deployment))
        deployments.append(deployment)
        if deployment.name in seen:
            problems.append(source.problem(prefix + ("name",), f"duplicate deployment name {deployment.name!r}; names must be unique in a stack"))
        seen.add(deployment.name)
    if problems:
        raise SpecError(problems)
    return Stack(str(path), tuple(deployments), source, tuple(prefixes))


def parse_deployment(data: Any) -> Deployment:
    """A deployment from data already checked once (a recorded spec); SpecError if it is not valid now."""
    where = "the recorded spec"
    try:
        deployment, wrong = _placed(Deployment.model_validate(data))
    except ValidationError as exc:
        raise SpecError([Problem(where, None, format_path(tuple(e["loc"])), e["msg"]) for e in exc.errors()]) from exc
    if wrong:
        raise SpecError([Problem(where, None, format_path(loc), message) for loc, message in wrong])
    return deployment


def _placed(deployment: Deployment) -> tuple[Deployment, list[tuple[FieldPath, str]]]:
    """The deployment with each `placement.<cloud>` validated by that cloud's provider's model,
    or the problems found (an unknown cloud names the known ones)."""
    from providers import registry

    entries = deployment.placement.model_extra or {}
    if not entries:
        return deployment, []
    validated, wrong = {}, []
    for cloud, raw in entries.items():
        at: FieldPath = ("placement", cloud)
        try:
            model = registry.placement_model(cloud)
        except UsageError as exc:
            wrong.append((at, f"{exc}; or `fallback`"))
            continue
        if isinstance(raw, model):
            validated[cloud] = raw
            continue
        try:
            validated[cloud] = model.model_validate(raw)
        except ValidationError as exc:
            wrong.extend((at + tuple(e["loc"]), _message(e, tuple(e["loc"]), model)) for e in exc.errors())
    if wrong:
        return deployment, wrong
    return deployment.model_copy(update={"placement": deployment.placement.model_copy(update=validated)}), []


def _cross_field_problems(deployment: Deployment) -> list[tuple[FieldPath, str]]:
    """Rules that involve more than one field, each pinned on the field to change."""
    found: list[tuple[FieldPath, str]] = []
    scaling = deployment.autoscaling
    if scaling.min_replicas > scaling.max_replicas:
        found.append(
            (
                ("autoscaling", "min_replicas"),
                f"min_replicas ({scaling.min_replicas}) is above max_replicas ({scaling.max_replicas}); lower it or raise max_replicas",
            )
        )
    ref = deployment.model_ref
    if deployment.max_context > ref.model.max_context:
        found.append(
            (
                ("max_context",),
                f"{deployment.max_context} tokens is over {ref.model.name}'s limit of {ref.model.max_context}; use at most {ref.model.max_context}",
            )
        )
    load = deployment.load
    if load is not None and load.prompt_tokens + load.output_tokens > deployment.max_context:
        found.append(
            (
                ("load", "prompt_tokens"),
                f"prompt_tokens + output_tokens ({load.prompt_tokens + load.output_tokens}) is over max_context "
                f"({deployment.max_context}); a request must fit in one sequence",
            )
        )
    if _PRECISION[deployment.quantization] > _PRECISION[ref.checkpoint_quantization]:
        found.append(
            (
                ("quantization",),
                f"{ref.hf_repo} is a {ref.checkpoint_quantization} checkpoint and cannot be served as {deployment.quantization}; "
                f"set quantization: {ref.checkpoint_quantization}, or use {ref.model.hf_repo}",
            )
        )
    else:
        try:
            ref.checkpoint(deployment.quantization)
        except NoCheckpointError as exc:
            found.append((("quantization",), str(exc)))
    return found


def _problems(exc: ValidationError, prefix: FieldPath, source: SourceMap) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        problems.append(source.problem(prefix + loc, _message(error, loc, Deployment)))
    return problems


def _message(error: dict[str, Any], loc: FieldPath, model: type[BaseModel]) -> str:
    """One pydantic error as a sentence a user can act on; `loc` is relative to `model`."""
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = list(_model_at(model, loc[:-1]).model_fields)
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown key; {hint}valid keys here: {', '.join(valid)}"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        field = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")  # a list item is named by its list
        declared = _model_at(model, loc[:-1]).model_fields.get(field)
        hint = _FORMATS.get(field) or (declared.description if declared else None) or "see the examples in stacks/"
        return f"{error['input']!r} is not valid; {hint}"
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind in ("greater_than", "int_from_float"):
        shown = "" if {"env", "secrets"} & set(map(str, loc)) else f" (got {error['input']!r})"
        message = f"{message}{shown}"
    return message


def _model_at(model: type[BaseModel], loc: FieldPath) -> type[BaseModel]:
    """The model of the mapping at `loc` inside `model` (as deep as models nest)."""
    for part in loc:
        annotation = model.model_fields[str(part)].annotation if str(part) in model.model_fields else None
        nested = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            break
        model = nested[0]
    return model
