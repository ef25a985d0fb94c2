"""What `up` would change: `plan`, `plan --detailed-exitcode`, and `up` itself.

Like `terraform plan`, each deployment's declared spec is compared with what was recorded, field
by field (old -> new), and, when the cloud could be asked (`plan` refreshes where credentials
are configured), with what the cloud reports: a deployment deleted or rescaled by hand is a change
too. A change of replica bounds or of the autoscaling target is applied in place, through the
service's own autoscaling, and a change of tags through its tagging call;
anything that needs new machines (instance, image, model, quantization, context, concurrency,
environment) means replacing the deployment blue/green on the same endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from orchestrator.lifecycle.record import Phase

if TYPE_CHECKING:
    from orchestrator.lifecycle.record import Record
    from orchestrator.planning.plan import Plan
    from providers.base import LiveStatus


class ChangeAction(StrEnum):
    """What `up` would do to one deployment; the value is the `action` field of `plan --output json`."""

    NONE = "none"
    CREATE = "create"
    FINISH = "finish"
    UPDATE = "update"  # in place: the same machines, new replica bounds or autoscaling target
    REPLACE = "replace"  # new machines
    MOVE = "move"


# The declared fields a service changes on a live deployment without new machines: the
# autoscaling (through the service's own autoscaling) and the tags (each cloud's tagging call).
SCALING = frozenset({"autoscaling.min_replicas", "autoscaling.max_replicas", "autoscaling.target_concurrent_requests"})


def is_tags(field: str) -> bool:
    """A field of the declared tags (`tags.team`, or `tags` itself when emptied)."""
    return field == "tags" or field.startswith("tags.")


def in_place(field: str) -> bool:
    return field.split(" ", 1)[0] in SCALING or is_tags(field)


# Declared fields that change nothing in the cloud: the load profile only prices the month.
_IGNORED = ("load",)


@dataclass(frozen=True)
class FieldChange:
    """One declared field, as recorded and as declared now (or as the cloud has it, for drift)."""

    field: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return f"{self.field}: {_shown(self.old)} -> {_shown(self.new)}"


@dataclass(frozen=True)
class Change:
    deployment: str
    action: ChangeAction
    cloud: str
    region: str
    detail: str
    fields: tuple[FieldChange, ...] = ()


def pending(recorded: Callable[[str], Record | None], plans: list[Plan], live: Mapping[str, LiveStatus] | None = None) -> list[Change]:
    """Each plan against its deployment's record (`recorded(name)`, None if there is none) and, where
    the cloud was asked, what it reports (`live`, by deployment name)."""
    live = live or {}
    return [change_of(recorded(planned.deployment.name), planned, live.get(planned.deployment.name)) for planned in plans]


def change_of(record: Record | None, planned: Plan, live: LiveStatus | None = None) -> Change:
    """What `up` of `planned` would do, given the record and (when known) the cloud's report."""
    name = planned.deployment.name
    where = {"cloud": planned.cloud, "region": planned.region}
    if record is None:
        return Change(name, ChangeAction.CREATE, **where, detail=f"will be created on {planned.cloud} ({planned.region})")
    if record.cloud != planned.cloud:
        return Change(
            name, ChangeAction.MOVE, **where, detail=f"runs on {record.cloud}: `llamadeploy move {name} --to {planned.cloud}` moves it without downtime"
        )
    if record.phase is not Phase.SERVING:
        return Change(name, ChangeAction.FINISH, **where, detail=f"will be finished on {planned.cloud}: an earlier command left it {record.phase.value}")
    fields = declared_changes(record, planned)
    if record.region != planned.region:
        detail = f"runs in {record.region}: `llamadeploy move {name} --to {planned.cloud} --region {planned.region}` moves it without downtime"
        return Change(name, ChangeAction.MOVE, **where, detail=detail, fields=fields)
    if not all(in_place(f.field) for f in fields):
        needs = ", ".join(f.field for f in fields if not in_place(f.field))
        if live is not None and live.missing:
            gone = "; ".join(live.missing)
            detail = (
                f"was deleted outside llamadeploy ({gone}), and its spec needs new machines ({needs}): `llamadeploy down {name}` clears what is left, then `up`"
            )
        elif problem := replace_problem(record, planned):
            detail = f"needs new machines ({needs}), and {problem}"
        else:
            detail = f"needs new machines ({needs}): `up` replaces it blue/green on the same endpoint (the new variant serves before the old one goes)"
        return Change(name, ChangeAction.REPLACE, **where, detail=detail, fields=fields)
    if live is not None and live.missing:
        gone = "; ".join(live.missing)
        return Change(name, ChangeAction.CREATE, **where, detail=f"was deleted outside llamadeploy ({gone}): `up` creates it again", fields=fields)
    if live is not None and not live.serving:
        said = live.state.value + (f": {live.detail}" if live.detail else "")
        return Change(name, ChangeAction.FINISH, **where, detail=f"the cloud reports it {said}: `up` waits for it, or finishes it", fields=fields)
    drift = _drift(record, planned, live) if live is not None else ()
    if fields or drift:
        said = "; ".join(str(f) for f in (*fields, *drift))
        return Change(name, ChangeAction.UPDATE, **where, detail=f"will be updated in place ({said})", fields=(*fields, *drift))
    return Change(name, ChangeAction.NONE, **where, detail=f"no changes: serving on {planned.cloud} as declared")


def replace_problem(record: Record, planned: Plan) -> str | None:
    """Why the cloud cannot replace the recorded deployment with `planned` on its endpoint, and
    what to do instead, or None. A record an earlier version wrote in a form this one no longer
    reads is not asked about: the replace then goes as it did before the check existed."""
    from orchestrator.errors import SpecError

    try:
        live = record.declared()
    except SpecError:
        return None
    problem = planned.described_by.replace_problem(live, planned)
    uncallable = planned.described_by.unverifiable(planned.deployment)
    if problem is None and uncallable:  # the new variant must answer before the old one goes
        problem = f"{uncallable}, so a new variant cannot be checked before the old one is deleted"
    name = planned.deployment.name
    return f"{problem}: `llamadeploy down {name}` then `up`, or deploy it under a new name" if problem else None


def declared_changes(record: Record, planned: Plan) -> tuple[FieldChange, ...]:
    """The declared fields that differ between the record and the plan, the machine chosen included;
    placement is compared for the recorded cloud only (another cloud's placement changes nothing here)."""
    before, after = _comparable(_current_form(record.spec), record.cloud), _comparable(planned.deployment.model_dump(mode="json"), planned.cloud)
    before["instance_type"], after["instance_type"] = record.placed.plan.instance_type, planned.offer.instance_type
    before["region"], after["region"] = record.region, planned.region
    keys = sorted(before.keys() | after.keys())
    return tuple(FieldChange(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k))


def summary(changes: list[Change]) -> str:
    """The closing line of `plan`, as Terraform's: what `up` would do, by kind."""
    count = {action: sum(1 for c in changes if c.action is action) for action in ChangeAction}
    line = f"{count[ChangeAction.CREATE]} to add, {count[ChangeAction.UPDATE]} to change in place, {count[ChangeAction.REPLACE]} to replace, 0 to destroy"
    extra = [f"{count[a]} {words}" for a, words in ((ChangeAction.FINISH, "to finish"), (ChangeAction.MOVE, "to move (with `move`)")) if count[a]]
    return "Plan: " + ", ".join([line, *extra]) + "."


def _drift(record: Record, planned: Plan, live: LiveStatus) -> tuple[FieldChange, ...]:
    """Replica bounds changed in the cloud by hand (they differ from what was recorded), which `up`
    sets back to the declared ones in place."""
    recorded, scaling = record.placed.plan, planned.deployment.autoscaling
    found = []
    for field, in_cloud, was, declared in (
        ("min_replicas", live.min_replicas, recorded.min_replicas, scaling.min_replicas),
        ("max_replicas", live.max_replicas, recorded.max_replicas, scaling.max_replicas),
    ):
        if in_cloud is not None and in_cloud != was and in_cloud != declared:
            found.append(FieldChange(f"autoscaling.{field} (in the cloud)", in_cloud, declared))
    return tuple(found)


def _current_form(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """A recorded spec as this version writes it: a field added since (with its default) is no
    change of the deployment's, only of the record's form."""
    from orchestrator.declared.stackfile import parse_deployment
    from orchestrator.errors import SpecError

    try:
        return parse_deployment(spec).model_dump(mode="json")
    except SpecError:  # a spec this version no longer reads: compared as written
        return spec


def _comparable(spec: Mapping[str, Any], cloud: str) -> dict[str, Any]:
    """A spec as dotted fields, without what changes nothing in the cloud: the load profile, and
    another cloud's placement or weights."""
    trimmed = {k: v for k, v in spec.items() if k not in _IGNORED}
    for per_cloud in ("placement", "weights"):
        entries = dict(trimmed.pop(per_cloud, None) or {})
        trimmed[per_cloud] = {cloud: entries.get(cloud)}
    return _flat(trimmed)


def _flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(_flat(item, f"{path}."))
        else:
            flat[path] = item
    return flat


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)
