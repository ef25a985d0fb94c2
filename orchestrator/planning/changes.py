"""What `up` would change, from the plan and the state file alone: `plan --detailed-exitcode`.

Like `terraform plan -detailed-exitcode`, the answer comes without touching the cloud: a
deployment recorded as serving with the same spec hash is "no change". Drift made by hand in
the cloud is `status`'s job, which does call the cloud.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from orchestrator.lifecycle.record import Phase

if TYPE_CHECKING:
    from orchestrator.lifecycle.record import Record
    from orchestrator.planning.plan import Plan


class ChangeAction(StrEnum):
    """What `up` would do to one deployment; the value is the `action` field of `plan --output json`."""

    NONE = "none"
    CREATE = "create"
    FINISH = "finish"
    REPLACE = "replace"
    MOVE = "move"


# What the user reads for each action.
_DETAILS = {
    ChangeAction.NONE: "no changes: serving on {cloud} as declared",
    ChangeAction.CREATE: "will be created on {cloud} ({region})",
    ChangeAction.FINISH: "will be finished on {cloud}: an earlier command left it {phase}",
    ChangeAction.REPLACE: "serving on {cloud} with a different spec: `llamadeploy down {name}` then `up` (changing a live deployment is not supported yet)",
    ChangeAction.MOVE: "runs on {recorded_cloud}: `llamadeploy move {name} --to {cloud}` moves it without downtime",
}


@dataclass(frozen=True)
class Change:
    deployment: str
    action: ChangeAction
    cloud: str
    region: str
    detail: str


def pending(recorded: Callable[[str], Record | None], plans: list[Plan]) -> list[Change]:
    """Each plan against its deployment's record (`recorded(name)`, None if there is none)."""
    return [_change(recorded(planned.deployment.name), planned) for planned in plans]


def _change(record: Record | None, planned: Plan) -> Change:
    name = planned.deployment.name
    if record is None:
        action = ChangeAction.CREATE
    elif record.cloud != planned.cloud:
        action = ChangeAction.MOVE
    elif record.phase is not Phase.SERVING:
        action = ChangeAction.FINISH
    else:
        from orchestrator.lifecycle.engine import (
            spec_hash,  # only with a record: the engine's imports are not free
        )

        action = ChangeAction.NONE if record.spec_hash == spec_hash(planned) else ChangeAction.REPLACE
    detail = _DETAILS[action].format(
        name=name, cloud=planned.cloud, region=planned.region, phase=record.phase.value if record else "", recorded_cloud=record.cloud if record else ""
    )
    return Change(name, action, planned.cloud, planned.region, detail)
