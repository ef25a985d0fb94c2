"""Reading a stack file: YAML with line numbers, validated by the spec's models and by each
provider's placement model, every problem reported at once with file, line and field.

It sits above the provider registry (placement.<cloud> is validated by that cloud's provider),
while the models in `spec` sit below every provider, which is why the two are apart.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from orchestrator.bulk import paused_gc
from orchestrator.declared.source import FieldPath, SourceMap, format_path, load_yaml
from orchestrator.declared.spec import FORMATS, PRECISION, Deployment, Stack
from orchestrator.errors import NoCheckpointError, Problem, SpecError, UsageError

if TYPE_CHECKING:
    from orchestrator.pricing.catalog import Catalog


def load_stack(path: str | Path, catalog: Catalog | None = None) -> Stack:
    """Read and validate a stack file; raise SpecError listing every problem in it, in one pass:
    field errors, rules across fields, and (given the price catalog) placement regions that have
    no offers, so a user fixes them all at once."""
    with paused_gc():
        return _load_stack(Path(path), catalog)


def _load_stack(path: Path, catalog: Catalog | None = None) -> Stack:
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
        problems.extend(source.problem(prefix + loc, message) for loc, message in _region_problems(raw, catalog))
        problems.extend(source.problem(prefix + loc, message) for loc, message in _weights_problems(raw))
        try:
            deployment = Deployment.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_problems(exc, prefix, source))
            problems.extend(source.problem(prefix + loc, message) for loc, message in _raw_cross_field_problems(raw, exc))
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


def _weights_problems(raw: Any) -> list[tuple[FieldPath, str]]:
    """Each `weights.<cloud>` checked by that cloud's provider (an unknown cloud names the known
    ones), whatever else is wrong with the deployment: every problem in one pass."""
    from providers import registry

    weights = raw.get("weights") if isinstance(raw, dict) else None
    found: list[tuple[FieldPath, str]] = []
    for cloud, uri in weights.items() if isinstance(weights, dict) else ():
        if not isinstance(uri, str):
            continue  # the spec's own type error says so
        try:
            problem = registry.get(cloud).weights_problem(uri)
        except UsageError as exc:
            problem = str(exc)
        if problem:
            found.append((("weights", cloud), problem))
    return found


def _region_problems(raw: Any, catalog: Catalog | None) -> list[tuple[FieldPath, str]]:
    """Placement regions the price catalog has no offers in (for clouds it prices at all)."""
    placement = raw.get("placement") if isinstance(raw, dict) else None
    if catalog is None or not isinstance(placement, dict):
        return []
    found = []
    for cloud, entry in placement.items():
        region = entry.get("region") if isinstance(entry, dict) else None
        known = catalog.regions(cloud) if isinstance(region, str) else []
        if known and region not in known:
            found.append(
                (("placement", cloud, "region"), f"{cloud} has no offers in region {region!r} in the price catalog; regions with offers: {', '.join(known)}")
            )
    return found


def _raw_cross_field_problems(raw: Any, exc: ValidationError) -> list[tuple[FieldPath, str]]:
    """The rules across fields that can still be judged when other fields are invalid: replica
    bounds the wrong way round (unless either bound is itself one of the field errors)."""
    scaling = raw.get("autoscaling") if isinstance(raw, dict) else None
    if not isinstance(scaling, dict):
        return []
    low, high = scaling.get("min_replicas"), scaling.get("max_replicas")
    flagged = {tuple(e["loc"][:2]) for e in exc.errors()}
    if not (isinstance(low, int) and isinstance(high, int)) or {("autoscaling", "min_replicas"), ("autoscaling", "max_replicas")} & flagged:
        return []
    if low > high:
        return [(("autoscaling", "min_replicas"), f"min_replicas ({low}) is above max_replicas ({high}); lower it or raise max_replicas")]
    return []


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
    if PRECISION[deployment.quantization] > PRECISION[ref.checkpoint_quantization]:
        found.append(
            (
                ("quantization",),
                f"{ref.hf_repo} is a {ref.checkpoint_quantization} checkpoint and cannot be served as {deployment.quantization}; "
                f"set quantization: {ref.checkpoint_quantization}, or use {ref.model.hf_repo}",
            )
        )
    elif not deployment.weights:  # the user's own checkpoint is checked against its config where it is read
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
        hint = FORMATS.get(field) or (declared.description if declared else None) or "see the examples in stacks/"
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
