"""A deployment as llamadeploy last left it: a typed, versioned value with an explicit phase.

The record is what every later command starts from (`status`, `down`, `move --resume`), so it
keeps only what those need: the declared spec, a small snapshot of the plan (not the public
JSON output, which may change shape between releases), the provider's settings, what the cloud
holds, the move history, and the phase. It is stored as JSON with a `version`; a record written
by an older release is migrated when read (`from_json`), so upgrading never strands a deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from orchestrator.errors import LlamadeployError
from providers.base import Deployed, Resource

if TYPE_CHECKING:
    from orchestrator.declared.spec import Deployment
    from orchestrator.planning.plan import Plan

# 3 added the blue/green replace: its phases, the staged side, and the plan's variant.
SCHEMA_VERSION = 3


class Phase(StrEnum):
    """Where a deployment is in its life; a phase other than SERVING means a command did not finish."""

    CREATING = "creating"  # an `up` recorded its plan and is creating (or died creating)
    SERVING = "serving"
    MOVING = "moving"  # a move is bringing the deployment up on its target; the source still serves
    DRAINING = "draining"  # the target serves; the source a move left behind is still to delete
    DELETING = "deleting"  # a `down` is deleting (or died deleting)
    REPLACING = "replacing"  # an `up` is bringing a new variant up on the same endpoint; the old one serves
    RETIRING = "retiring"  # the new variant serves and answered; the old one is still to delete


class RecordError(LlamadeployError):
    """A stored record cannot be read."""


@dataclass(frozen=True)
class PlanSnapshot:
    """What later commands need of the plan a deployment was made from: what to expect and what it costs."""

    model: str  # the checkpoint vLLM serves, which a verifying call must name
    instance_type: str
    min_replicas: int
    max_replicas: int
    usd_per_hour_min: float | None
    price_is_lower_bound: bool
    resources: tuple[Resource, ...]
    variant: str = ""  # the plan's variant on its endpoint ("" for the first; see Plan.variant)

    @classmethod
    def of(cls, plan: Plan) -> PlanSnapshot:
        scaling = plan.deployment.autoscaling
        return cls(
            plan.served_model,
            plan.offer.instance_type,
            scaling.min_replicas,
            scaling.max_replicas,
            plan.usd_per_hour(scaling.min_replicas),
            plan.offer.price_is_lower_bound,
            tuple(Resource(r.type, r.name) for r in plan.resources),
            plan.variant,
        )


@dataclass(frozen=True)
class Placed:
    """One cloud's side of a deployment: where, from which plan, and (once created) what it is there."""

    cloud: str
    region: str
    spec_hash: str
    plan: PlanSnapshot
    settings: Mapping[str, Any]  # how to reach the cloud again without the stack file; no secrets
    deployed: Deployed | None = None

    def target(self, deployment: str) -> Deployed:
        """What to delete: what was deployed, or for an `up` that never finished, what was planned."""
        if self.deployed is not None:
            return self.deployed
        return Deployed(deployment, self.cloud, self.region, self.plan.resources, "", self.settings)


@dataclass(frozen=True)
class Move:
    """One finished move between clouds or regions."""

    source_cloud: str
    source_region: str
    target_cloud: str
    target_region: str
    at: str


@dataclass(frozen=True)
class Destination:
    """Where an unfinished move was taking a deployment (region None: the cheapest one there)."""

    cloud: str
    region: str | None


@dataclass(frozen=True)
class Record:
    """A deployment as llamadeploy last left it.

    `spec` is the deployment as declared (secret references only), kept as data: it is parsed
    (`declared()`) only by commands that plan again, so a record stays readable even when the
    provider that validates its placement is not installed.
    """

    name: str
    phase: Phase
    spec: Mapping[str, Any]
    placed: Placed
    moves: tuple[Move, ...] = ()
    draining: Placed | None = None  # DRAINING: the source to delete; RETIRING: the old variant to delete
    moving_to: Destination | None = None  # MOVING: the target being brought up
    staged: Placed | None = None  # REPLACING: the new variant being brought up beside the one that serves
    switching: bool = False  # REPLACING: traffic may have begun to move to the staged variant
    updated_at: str = ""

    @property
    def cloud(self) -> str:
        return self.placed.cloud

    @property
    def region(self) -> str:
        return self.placed.region

    @property
    def spec_hash(self) -> str:
        return self.placed.spec_hash

    @property
    def deployed(self) -> Deployed | None:
        return self.placed.deployed

    @property
    def unfinished_move(self) -> bool:
        return self.phase in (Phase.MOVING, Phase.DRAINING)

    @property
    def unfinished_replace(self) -> bool:
        return self.phase in (Phase.REPLACING, Phase.RETIRING)

    def declared(self) -> Deployment:
        from orchestrator.declared.stackfile import parse_deployment

        return parse_deployment(self.spec)

    def to(self, phase: Phase, **changes: Any) -> Record:
        """This record in another phase. What a move or a replace holds (`moving_to`, `draining`,
        `staged`) is cleared unless restated, so no phase carries another phase's leftovers."""
        return replace(self, phase=phase, **{"moving_to": None, "draining": None, "staged": None, "switching": False, **changes})


def to_json(record: Record) -> dict[str, Any]:
    """The stored form of a record, with its schema version."""
    return {
        "version": SCHEMA_VERSION,
        "phase": record.phase.value,
        "spec": dict(record.spec),
        "placed": _placed_json(record.placed),
        "moves": [vars(move) for move in record.moves],
        "draining": None if record.draining is None else _placed_json(record.draining),
        "moving_to": None if record.moving_to is None else vars(record.moving_to),
        "staged": None if record.staged is None else _placed_json(record.staged),
        "switching": record.switching,
    }


def from_json(name: str, updated_at: str, data: Mapping[str, Any]) -> Record:
    """A stored record, migrated from the version that wrote it."""
    version = data.get("version", 1)
    if version > SCHEMA_VERSION:
        raise RecordError(f"the record of {name!r} has format version {version}, newer than this llamadeploy reads ({SCHEMA_VERSION}); upgrade llamadeploy")
    if version == 2:  # no replace yet: nothing staged, and every plan the first variant
        data = {**data, "staged": None, "switching": False}
    try:
        return Record(
            name,
            Phase(data["phase"]),
            data["spec"],
            _placed_of(data["placed"]),
            tuple(Move(**move) for move in data["moves"]),
            None if data["draining"] is None else _placed_of(data["draining"]),
            None if data["moving_to"] is None else Destination(**data["moving_to"]),
            None if data["staged"] is None else _placed_of(data["staged"]),
            data["switching"],
            updated_at,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"the record of {name!r} is damaged ({type(exc).__name__}: {exc}); `llamadeploy state show {name}` prints it") from exc


def _placed_json(placed: Placed) -> dict[str, Any]:
    snapshot = placed.plan
    return {
        "cloud": placed.cloud,
        "region": placed.region,
        "spec_hash": placed.spec_hash,
        "plan": {**vars(snapshot), "resources": [{"type": r.type, "name": r.name} for r in snapshot.resources]},
        "settings": dict(placed.settings),
        "deployed": None if placed.deployed is None else placed.deployed.to_dict(),
    }


def _placed_of(data: Mapping[str, Any]) -> Placed:
    plan = data["plan"]
    snapshot = PlanSnapshot(**{**plan, "resources": tuple(Resource(r["type"], r["name"]) for r in plan["resources"])})
    deployed = None if data["deployed"] is None else Deployed.from_dict(data["deployed"])
    return Placed(data["cloud"], data["region"], data["spec_hash"], snapshot, data["settings"], deployed)


@dataclass(frozen=True)
class LegacyRow:
    """A record as the first format stored it: columns plus a dict read by key, phase inferred."""

    name: str
    cloud: str
    region: str
    spec_hash: str
    status: str
    data: Mapping[str, Any]
    running_move_to: str | None = None  # the target cloud of a move the journal shows running


def migrate_v1(row: LegacyRow) -> dict[str, Any]:
    """The first format (the public `plan --output json` object stored as the plan, phases
    inferred from which keys exist, an unfinished move known only from the journal) as version 2."""
    data = row.data
    placed = _legacy_placed(row.cloud, row.region, row.spec_hash, data)
    draining = data.get("draining")
    if draining is not None:
        phase, moving_to = Phase.DRAINING, None
    elif row.running_move_to is not None and "deployed" in data:
        phase, moving_to = Phase.MOVING, Destination(row.running_move_to, None)
    else:
        phase, moving_to = (Phase.SERVING if row.status == "serving" and "deployed" in data else Phase.CREATING), None
    record = Record(
        row.name,
        phase,
        data["spec"],
        placed,
        tuple(Move(m["from"], m["from_region"], m["to"], m["to_region"], m["at"]) for m in data.get("moves", [])),
        None if draining is None else _legacy_placed(draining["cloud"], draining["region"], draining["spec_hash"], draining["data"]),
        moving_to,
    )
    return to_json(record)


def _legacy_placed(cloud: str, region: str, spec_hash: str, data: Mapping[str, Any]) -> Placed:
    plan = data["plan"]
    snapshot = PlanSnapshot(
        plan["hf_repo"],
        plan["instance_type"],
        plan["replicas"]["min"],
        plan["replicas"]["max"],
        plan["price"]["usd_per_hour_min"],
        bool(plan["price"].get("price_is_lower_bound", False)),
        tuple(Resource(r["type"], r["name"]) for r in plan["resources"]),
    )
    deployed = Deployed.from_dict(data["deployed"]) if "deployed" in data else None
    return Placed(cloud, region, spec_hash, snapshot, data.get("settings", {}), deployed)
