"""What `up` would change, from the plan and the state file alone: `plan --detailed-exitcode`.

Like `terraform plan -detailed-exitcode`, the answer comes without touching the cloud: a
deployment recorded as serving with the same spec hash is "no change". Drift made by hand in
the cloud is `status`'s job, which does call the cloud.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.planner import Plan
    from orchestrator.state import Record

# What `up` would do, and what the user reads for it.
ACTIONS = {
    "none": "no changes: serving on {cloud} as declared",
    "create": "will be created on {cloud} ({region})",
    "finish": "will be finished on {cloud}: an earlier up left it {status}",
    "replace": "serving on {cloud} with a different spec: `llamadeploy down {name}` then `up` (changing a live deployment is not supported yet)",
    "move": "runs on {recorded_cloud}: `llamadeploy move {name} --to {cloud}` moves it without downtime",
}


@dataclass(frozen=True)
class Change:
    deployment: str
    action: str
    cloud: str
    region: str
    detail: str


def pending(recorded: Callable[[str], Record | None], plans: list[Plan]) -> list[Change]:
    """Each plan against its deployment's record (`recorded(name)`, None if there is none)."""
    return [_change(recorded(planned.deployment.name), planned) for planned in plans]


def _change(record: Record | None, planned: Plan) -> Change:
    name = planned.deployment.name
    if record is None:
        action = "create"
    elif record.cloud != planned.cloud:
        action = "move"
    elif record.status != "serving":
        action = "finish"
    else:
        from orchestrator.engine import (
            spec_hash,  # only with a record: the engine's imports are not free
        )

        action = "none" if record.spec_hash == spec_hash(planned) else "replace"
    detail = ACTIONS[action].format(
        name=name, cloud=planned.cloud, region=planned.region, status=record.status if record else "", recorded_cloud=record.cloud if record else ""
    )
    return Change(name, action, planned.cloud, planned.region, detail)
