"""`up`, `status` and `down`: the cloud-agnostic lifecycle, written once for every provider.

Providers only create, describe and delete. The engine decides everything around that: it
holds the deployment's lock, journals each operation before touching the cloud and each
resource as soon as the cloud has it, retries throttled calls, paces every wait with
exponential backoff and jitter, and on a failed `up` deletes what that run created (never
what existed before). Because resource names are deterministic and providers adopt what
exists, an `up` after a crash picks up where the dead one stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.declared.secrets import resolve_secrets
from orchestrator.declared.source import SourceMap
from orchestrator.declared.spec import Deployment, Stack
from orchestrator.errors import LlamadeployError, SpecError, UsageError
from orchestrator.lifecycle.context import Context
from orchestrator.lifecycle.pacing import WAIT_TIMEOUT_ENV, Unattended, retrying
from orchestrator.lifecycle.progress import EventKind
from orchestrator.lifecycle.record import Destination, Move, Phase, Placed, PlanSnapshot, Record
from orchestrator.lifecycle.state import Operation, OperationKind, OperationStatus, StateStore, now
from orchestrator.planning.changes import ChangeAction, change_of, in_place, is_tags, replace_problem
from orchestrator.planning.plan import Plan
from orchestrator.planning.planner import compare, plan
from orchestrator.planning.serving import EXAMPLE_PROMPT, Answer, chat_request, read_answer, startup_of
from orchestrator.pricing.catalog import Catalog
from orchestrator.sizing.checkpoint_files import check_checkpoint, read_checkpoint
from providers import registry
from providers.base import (
    AuthError,
    CapacityError,
    Deployed,
    Endpoint,
    Feature,
    InvalidRequestError,
    LiveState,
    LiveStatus,
    Pace,
    Provider,
    ProviderError,
    QuotaError,
    QuotaView,
    Resource,
    UnreachableError,
)


class WaitTimeoutError(ProviderError):
    """A wait on the cloud outlasted its timeout."""


class DeployError(LlamadeployError):
    """An `up` or `down` failed; the message says what the cloud said and what was cleaned up."""


@dataclass
class _Run:
    """The `Events` a provider reports to during one operation: journal, progress and waits."""

    ctx: Context
    operation: int
    deployment: str
    made: list[Resource] = field(default_factory=list)

    def created(self, resource: Resource) -> None:
        self.made.append(resource)
        self.ctx.state.note_created(self.operation, {"type": resource.type, "name": resource.name})
        self.ctx.report(EventKind.CREATED, resource=resource.name, type=resource.type)

    def adopted(self, resource: Resource) -> None:
        self.ctx.report(EventKind.ADOPTED, resource=resource.name, type=resource.type)

    def started(self, resource: Resource, operation: str) -> None:
        self.ctx.state.note_waiting(self.operation, _key(resource), operation)

    def settled(self, resource: Resource) -> None:
        self.ctx.state.note_settled(self.deployment, _key(resource))

    def pending(self, resource: Resource) -> str | None:
        operation = self.ctx.state.waiting(self.deployment).get(_key(resource))
        if operation is not None:
            self.ctx.report(EventKind.RESUMING, resource=resource.name, operation=operation)
        return operation

    def wait(self, what: str, check: Callable[[], tuple[bool, str]], pace: Pace = Pace.SECONDS) -> None:
        start, backoff = time.monotonic(), self.ctx.backoff
        while True:
            done, status = retrying(check, self.ctx)
            elapsed = time.monotonic() - start
            self.ctx.report(EventKind.WAITING, what=what, status=status, elapsed_s=round(elapsed, 1), done=done)
            if done:
                return
            delay = backoff.poll_delay(elapsed, pace)
            if elapsed + delay > backoff.timeout:
                raise WaitTimeoutError(f"{what} was still {status!r} after {elapsed:.0f} s (${WAIT_TIMEOUT_ENV} allows {backoff.timeout:g} s)")
            time.sleep(delay)


def _key(resource: Resource) -> str:
    """A resource as the journal names it; resource types name their cloud, so keys never clash in a move."""
    return f"{resource.type} {resource.name}"


def spec_hash(planned: Plan) -> str:
    """What, if changed, makes a deployment different: the spec plus the chosen cloud and offer."""
    return _digest(planned.deployment.model_dump(mode="json"), planned.cloud, planned.region, planned.offer.instance_type)


def _digest(spec: Mapping[str, Any], cloud: str, region: str, instance_type: str) -> str:
    """`spec_hash` of a spec as data (a record's): the load profile is left out, as it changes no resource."""
    basis = {"spec": {k: v for k, v in spec.items() if k != "load"}, "cloud": cloud, "region": region, "instance": instance_type}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class UpResult:
    plan: Plan
    deployed: Deployed
    endpoint: Endpoint
    changed: bool
    answer: Answer | None = None  # the verifying call's answer; None when skipped


VERIFY_MAX_TOKENS = 16
# A replace's variant is named by the start of its spec hash: the same spec stages the same
# variant, so an `up` after a crash adopts what the dead one staged.
VARIANT_LENGTH = 8
# A call right after the cloud reports ready may still meet a warming proxy or a traffic switch in
# flight: the verifying call is retried this many times before the deployment counts as broken.
VERIFY_ATTEMPTS = 5


def ask(ctx: Context, provider: Provider, deployed: Deployed, prompt: str, max_tokens: int, private: bool = False) -> Answer:
    """One chat completion through the cloud's own route and authentication, read as an Answer. A
    `private` endpoint's call that does not get there is not retried: from outside its network
    none would."""
    response = retrying(lambda: provider.invoke(deployed, chat_request(prompt, max_tokens)), ctx, reached_only=private)
    try:
        return read_answer(response)
    except ValueError as exc:
        raise DeployError(f"{deployed.deployment} on {deployed.cloud} answered, but {exc}") from exc


def _verify(ctx: Context, planned: Plan, provider: Provider, deployed: Deployed, replacing: bool = False) -> Answer | None:
    """Call the deployment: done means the declared model answers, not that the cloud says ready.

    An endpoint that answers only inside its own network is checked as any other from inside that
    network, where it answers: an answer of any kind, a 503 or a 404 from a replica not yet taking
    requests included, means the call got there, so it is retried as every call is. A call that
    does not get there (no route, no name) or is refused as from outside (401/403) is not
    retried: from outside, a first deployment is said to be unchecked (the service's own
    readiness probe passed) and None returned; but what would delete a serving deployment on the
    strength of the call (`replacing`: a move's source, a replaced variant) stops instead, so
    nothing serving is lost unchecked."""
    delays, report = ctx.backoff.delays(), ctx.report
    uncallable = provider.unverifiable(planned.deployment)
    if uncallable:  # a replace or a move to it is refused before anything is made (replace_problem, plan_move)
        report(EventKind.UNVERIFIED, deployment=planned.deployment.name, reason=uncallable)
        return None
    private = provider.private_only(planned.deployment)
    for attempt in range(1, VERIFY_ATTEMPTS + 1):
        try:
            answer = ask(ctx, provider, deployed, EXAMPLE_PROMPT, VERIFY_MAX_TOKENS, private=private is not None)
            break
        except ProviderError as exc:
            if private and isinstance(exc, (UnreachableError, AuthError)):
                unreached = f"it could not be called from here: {private} ({str(exc).splitlines()[0]})"
                if replacing:
                    raise DeployError(f"{planned.deployment.name} was not checked: {unreached}; run the command from inside that network") from exc
                report(
                    EventKind.UNVERIFIED,
                    deployment=planned.deployment.name,
                    reason=f"{unreached}; `llamadeploy call {planned.deployment.name}` from inside that network checks it",
                )
                return None
            if isinstance(exc, (AuthError, InvalidRequestError)) or attempt == VERIFY_ATTEMPTS:
                raise
            delay = next(delays)
            report(EventKind.RETRYING, what=f"the call to {deployed.deployment}", reason=str(exc).splitlines()[0], retry_in_s=round(delay, 2))
            time.sleep(delay)
    return _answered_as_declared(ctx, planned, answer)


def _answered_as_declared(ctx: Context, planned: Plan, answer: Answer) -> Answer:
    if answer.model != planned.served_model:
        raise DeployError(
            f"the endpoint answers as model {answer.model!r}, not the declared {planned.served_model!r}: the container did not load the declared model"
        )
    ctx.report(EventKind.VERIFIED, deployment=planned.deployment.name, model=answer.model)
    return answer


def plan_up(stack: Stack, deployment: Deployment, cloud: str, catalog: Catalog, region: str | None = None) -> tuple[Plan, Provider]:
    """The plan `up` would apply and the provider to apply it; fails before any cloud call."""
    provider = registry.provider(cloud)
    planned = plan(stack, deployment, cloud, catalog, region)
    required = provider.required_placement + (provider.weights_placement if planned.weights else provider.hub_placement)
    missing = [f for f in required if not getattr(getattr(deployment.placement, cloud, None), f, None)]
    unworkable = provider.deployment_problem(deployment, bool(planned.weights))
    if unworkable:
        raise SpecError([stack.locate(deployment, unworkable[0], unworkable[1])])
    if missing:
        raise SpecError(
            [
                stack.locate(
                    deployment, ("placement", cloud), f"`up` on {cloud} needs placement.{cloud}.{', '.join(missing)}; see stacks/ and the README's cloud table"
                )
            ]
        )
    verdict, cannot_start = startup_of(planned)
    if cannot_start:
        raise DeployError(f"{deployment.name} on {cloud}: {verdict}")
    return planned, provider


def up(ctx: Context, planned: Plan, provider: Provider, verify: bool = True) -> UpResult:
    """Create or adopt the deployment, check the declared model answers, and record it; on failure,
    delete what this run created."""
    state, report = ctx.state, ctx.report
    name = planned.deployment.name
    with state.lock(name) as holder:
        record = state.get(name)
        if record is not None and record.unfinished_move:
            raise DeployError(_unfinished_hint(name))
        _take_over_interrupted(ctx, name)
        if record is not None and record.cloud != planned.cloud:
            raise DeployError(f"{name!r} runs on {record.cloud} ({record.region}); `down` it first to deploy it on {planned.cloud}")
        digest = spec_hash(planned)
        if record is not None and record.unfinished_replace:
            finished = _finish_replace(ctx, holder, record, provider, planned, verify)
            if finished is not None:
                return finished
            record = state.get(name)
            assert record is not None
        if record is not None:  # the names it has in the cloud are its variant's
            planned = replace(planned, variant=record.placed.plan.variant)
        if record is not None and record.phase is Phase.DELETING and record.spec_hash != digest:
            raise DeployError(f"a `down` of {name!r} did not finish; run `llamadeploy down {name}` to finish it before deploying a different spec")
        if record is not None and record.phase is Phase.SERVING and record.deployed is not None:
            deployed = record.deployed
            live = retrying(lambda: provider.describe(deployed), ctx)
            change = change_of(record, planned, live)
            if change.action is ChangeAction.MOVE or (change.action is ChangeAction.REPLACE and live.missing):
                raise DeployError(f"{name!r} {change.detail}")
            if change.action is ChangeAction.REPLACE:
                if Feature.REPLACE_LIVE not in provider.supports:
                    needs = ", ".join(f.field for f in change.fields if not in_place(f.field))
                    raise DeployError(
                        f"{name!r} serves on {record.cloud}, and the new spec needs new machines ({needs}); "
                        f"{provider.unsupported({Feature.REPLACE_LIVE})[0]}: `llamadeploy down {name}`, then `up`"
                    )
                if provider.settings(planned) != dict(record.placed.settings):
                    raise DeployError(
                        f"{name!r} serves on {record.cloud} in {dict(record.placed.settings)}, and the new placement puts it in {provider.settings(planned)}: "
                        f"a replace stays on the same endpoint; `llamadeploy down {name}`, then `up`, or keep the placement"
                    )
                problem = replace_problem(record, planned)
                if problem:
                    raise DeployError(f"{name!r} serves on {record.cloud}, and {problem}")
                resolve_secrets(planned.deployment, bool(planned.weights))  # checked before anything is journaled or made
                _check_weights(ctx, planned, provider)
                _check_network(ctx, planned, provider)
                _check_quota(ctx, planned, provider)  # the new machines run next to the old ones until traffic moves
                variant = replace(planned, variant=digest[:VARIANT_LENGTH])
                report(EventKind.REPLACING, deployment=name, fields="; ".join(str(f) for f in change.fields), variant=variant.variant)
                return _replace(ctx, holder, record, provider, variant, verify)
            # The declared spec as it is now, so a `move` reads it (another cloud's placement, say).
            declared = replace(
                record, spec=planned.deployment.model_dump(mode="json"), placed=replace(record.placed, plan=PlanSnapshot.of(planned), spec_hash=digest)
            )
            if change.action is ChangeAction.NONE:
                if record.spec_hash != digest:
                    state.put(declared)  # nothing to change in the cloud; only the record learns the new spec
                report(EventKind.UNCHANGED, deployment=name)
                return UpResult(planned, deployed, provider.endpoint(deployed), changed=False)
            if change.action is ChangeAction.UPDATE:
                # New replica bounds or tags, or bounds changed by hand in the cloud: set in place, nothing made anew.
                report(EventKind.UPDATING, deployment=name, fields="; ".join(str(f) for f in change.fields))
                retag = any(is_tags(f.field) for f in change.fields)
                rescale = not all(is_tags(f.field) for f in change.fields)
                _update_in_place(ctx, holder, record, provider, planned, OperationKind.UPDATE, declared, rescale=rescale, retag=retag)
                return UpResult(planned, deployed, provider.endpoint(deployed), changed=True)
            # Deleted by hand (CREATE): apply below makes what is missing and adopts the rest.
        resolve_secrets(planned.deployment, bool(planned.weights))  # a secret not set stops `up` here: nothing journaled, nothing made
        _check_weights(ctx, planned, provider)  # so does a checkpoint vLLM could not load
        _check_network(ctx, planned, provider)  # and a network that keeps it from its weights
        if record is None:  # a re-run's own machines would count against the quota it reads
            _check_quota(ctx, planned, provider)
        operation = state.begin(name, OperationKind.UP, planned.cloud, holder)
        placed = Placed(planned.cloud, planned.region, digest, PlanSnapshot.of(planned), provider.settings(planned))
        spec = planned.deployment.model_dump(mode="json")  # references to secrets only, never values
        creating = Record(name, Phase.CREATING, spec, placed, record.moves if record is not None else ())
        state.put(creating)
        run = _Run(ctx, operation, name)
        try:
            deployed = retrying(lambda: provider.apply(planned, run), ctx)
            answer = _verify(ctx, planned, provider, deployed) if verify else None
        except WaitTimeoutError as exc:
            # The cloud is still making it: deleting now is refused by some services (a Creating
            # SageMaker endpoint) and would race the operation on others. The record stays.
            state.finish(operation, OperationStatus.FAILED, str(exc))
            raise DeployError(
                f"up of {name!r} on {planned.cloud}: {exc}; the cloud is still working on it: run `up` again to go on waiting, or `down` to delete it"
            ) from exc
        except Exception as exc:
            cleaned, complete = _roll_back(planned, provider, run, existed=record is not None)
            state.finish(operation, OperationStatus.ROLLED_BACK if complete else OperationStatus.FAILED, str(exc))
            if record is None and complete:  # else the record stays, so `down` can finish the clean-up
                state.drop(name)
            raise DeployError(f"up of {name!r} on {planned.cloud} failed: {exc}\n  {cleaned}") from exc
        state.put(creating.to(Phase.SERVING, placed=replace(placed, deployed=deployed)))
        state.finish(operation, OperationStatus.SUCCEEDED)
        return UpResult(planned, deployed, provider.endpoint(deployed), changed=True, answer=answer)


def read_quota(planned: Plan) -> QuotaView:
    """The quota for `planned` where credentials are configured (no secret prompt, no network
    otherwise), with the engine's retries; a failure to read it is a reason, not an error."""
    service = registry.get(planned.cloud)
    if not isinstance(service, Provider):
        return QuotaView(None, f"{planned.cloud} cannot be deployed to yet")
    if not service.credentials_configured():
        return QuotaView(None, f"no {planned.cloud} credentials configured")
    try:
        provider = registry.provider(planned.cloud)
        return QuotaView(retrying(lambda: provider.quota(planned), Unattended()))
    except LlamadeployError as exc:
        return QuotaView(None, str(exc).splitlines()[0])


@dataclass(frozen=True)
class Refreshed:
    """A recorded deployment as its cloud reports it, for `plan` (which refreshes as Terraform does)."""

    live: LiveStatus | None
    unasked: str = ""  # why the cloud was not asked (no credentials configured, not deployed yet)
    failed: str = ""  # why asking failed


def refreshed(record: Record) -> Refreshed:
    """What the cloud reports for a recorded deployment, where its credentials are configured."""
    deployed = record.deployed
    if deployed is None:
        return Refreshed(None, unasked="not deployed yet")
    service = registry.get(record.cloud)
    if not isinstance(service, Provider) or not service.credentials_configured():
        return Refreshed(None, unasked=f"no {record.cloud} credentials configured")
    try:
        provider = registry.provider(record.cloud)
        return Refreshed(retrying(lambda: provider.describe(deployed), Unattended()))
    except LlamadeployError as exc:
        return Refreshed(None, failed=str(exc).splitlines()[0])


def _check_weights(ctx: Context, planned: Plan, provider: Provider) -> None:
    """The declared weights, listed in the cloud's storage (with the engine's retries, as every
    cloud call): a checkpoint vLLM could not load stops `up` before the service makes (and bills)
    an endpoint whose container would fail its start."""
    if planned.weights:
        uri, placement = planned.weights, planned.deployment.placement.of(planned.cloud)

        check_checkpoint(retrying(lambda: read_checkpoint(uri, *provider.checkpoint_listing(uri, placement, planned.region)), ctx), f"weights.{planned.cloud}")


def _check_network(ctx: Context, planned: Plan, provider: Provider) -> None:
    """Stop before creating anything when the network the deployment runs in surely keeps it from
    what it needs (the service copying the weights, the container reaching the Hub); a network that
    cannot be read (no permission, say) is reported and does not stop the run."""
    try:
        problem = retrying(lambda: provider.network_problem(planned), ctx)
    except ProviderError as exc:
        ctx.report(EventKind.NETWORK_UNCHECKED, cloud=planned.cloud, region=planned.region, reason=str(exc).splitlines()[0])
        return
    if problem:
        raise DeployError(f"{planned.deployment.name!r} on {planned.cloud} ({planned.region}): stopped before creating anything: {problem}")


def _check_quota(ctx: Context, planned: Plan, provider: Provider) -> None:
    """Stop before creating anything when the account's quota cannot hold the plan's machines
    (failover then tries the next candidate). A quota that cannot be read (no permission to read
    quotas, say) is reported and does not stop the run: the service still has the last word."""
    where = {"cloud": planned.cloud, "region": planned.region}
    try:
        quota = retrying(lambda: provider.quota(planned), ctx)
    except ProviderError as exc:
        ctx.report(EventKind.QUOTA_UNCHECKED, **where, reason=str(exc).splitlines()[0])
        return
    if quota is None:
        return
    ctx.report(EventKind.QUOTA, **where, quota=quota.describe(), enough=quota.enough)
    if not quota.enough:
        cause = QuotaError(f"{provider.service} {quota.describe()} in {planned.region}; {quota.request}")
        raise DeployError(f"up of {planned.deployment.name!r} on {planned.cloud} stopped before creating anything: {cause}") from cause


def _take_over_interrupted(ctx: Context, name: str) -> None:
    """Close the journal entries of commands that died before finishing; this one takes over."""
    for stale in ctx.state.interrupted(name):
        ctx.report(EventKind.INTERRUPTED, operation=stale.kind.value, since=stale.started_at, holder=stale.holder)
        ctx.state.finish(stale.id, OperationStatus.INTERRUPTED, "the command running it stopped; a later run took over")


def plan_move(record: Record, to_cloud: str, catalog: Catalog, region: str | None = None) -> tuple[Plan, Provider]:
    """The recorded spec planned on `to_cloud`: sizing and offer chosen afresh for that cloud."""
    return _plan_recorded(record, record.declared(), to_cloud, catalog, region)


def callable_target(planned: Plan, provider: Provider) -> None:
    """Refuse, before anything is made, a move to a deployment llamadeploy could not call: a move
    calls the target before it deletes the source."""
    uncallable = provider.unverifiable(planned.deployment)
    if uncallable:
        raise DeployError(
            f"cannot move {planned.deployment.name} to {planned.cloud}: there {uncallable}, and a move calls the target before it deletes the source"
        )


def _plan_recorded(record: Record, deployment: Deployment, cloud: str, catalog: Catalog, region: str | None) -> tuple[Plan, Provider]:
    """`deployment` (the record's spec, or it changed) planned as if from a stack holding only it."""
    where = f"the recorded spec of {record.name!r} (add placement.{cloud} to the stack and run `up` to record it)"
    recorded = Stack(where, (deployment,), SourceMap(where), ((),))
    return plan_up(recorded, deployment, cloud, catalog, region)


@dataclass(frozen=True)
class MoveResult:
    plan: Plan
    deployed: Deployed
    endpoint: Endpoint
    source: Deployed


def move(ctx: Context, name: str, to_cloud: str, region: str | None = None) -> MoveResult:
    """Make before break: bring the deployment up on `to_cloud`, record it there, then delete the source.

    A failure on the target deletes what the target run created and leaves the source serving
    and recorded as it was. A crash is finished by `resume_move` or undone by `rollback_move`.
    """
    with ctx.state.lock(name) as holder:
        record = _serving_record(ctx.state, name)
        if record.unfinished_move:
            raise DeployError(_unfinished_hint(name))
        if record.unfinished_replace:
            raise DeployError(_unfinished_replace_hint(record))
        if record.cloud == to_cloud and region in (None, record.region):
            raise UsageError(f"{name!r} already runs on {to_cloud} ({record.region}); pass another cloud or --region")
        return _move(ctx, holder, record, Destination(to_cloud, region))


def _move(ctx: Context, holder: str, record: Record, destination: Destination) -> MoveResult:
    state, report = ctx.state, ctx.report
    name, source_deployed = record.name, _deployed(record)
    planned, target = _plan_destination(record, destination, ctx.prices())
    callable_target(planned, target)
    resolve_secrets(planned.deployment, bool(planned.weights))  # as `up`: checked before anything is journaled or made
    _check_weights(ctx, planned, target)
    _check_network(ctx, planned, target)
    operation = state.begin(name, OperationKind.MOVE, destination.cloud, holder)
    state.put(record.to(Phase.MOVING, moving_to=Destination(planned.cloud, planned.region)))  # the region as resolved now, not re-chosen later
    run = _Run(ctx, operation, name)
    report(EventKind.MOVING, deployment=name, source=record.cloud, target=destination.cloud, region=planned.region)
    try:
        deployed = retrying(lambda: target.apply(planned, run), ctx)
        _verify(ctx, planned, target, deployed, replacing=True)
    except WaitTimeoutError as exc:  # the target is still being made: left as it is, as `up` leaves it
        state.finish(operation, OperationStatus.FAILED, str(exc))
        raise DeployError(
            f"move of {name!r} to {destination.cloud}: {exc}; the target is still being made: `llamadeploy move {name} --resume` goes on waiting, "
            f"`--rollback` deletes it; {name!r} still serves on {record.cloud} ({record.region})"
        ) from exc
    except Exception as exc:
        cleaned, complete = _roll_back(planned, target, run, existed=False, moving=True)
        state.finish(operation, OperationStatus.ROLLED_BACK if complete else OperationStatus.FAILED, str(exc))
        state.put(record.to(Phase.SERVING))
        raise DeployError(
            f"move of {name!r} to {destination.cloud} failed: {exc}\n  {cleaned}; {name!r} still serves on {record.cloud} ({record.region})"
        ) from exc
    # Both clouds serve now. Record the target first, keeping the whole source side, so a crash
    # from here on leaves a record that says where it serves and what is left to drain or restore.
    placed = Placed(planned.cloud, planned.region, spec_hash(planned), PlanSnapshot.of(planned), target.settings(planned), deployed)
    moved = Move(record.cloud, record.region, planned.cloud, planned.region, now())
    draining = record.to(Phase.DRAINING, placed=placed, moves=(*record.moves, moved), draining=record.placed)
    state.put(draining)
    report(EventKind.SWITCHED, deployment=name, cloud=destination.cloud, url=deployed.url)
    _drain(run, draining)
    state.put(draining.to(Phase.SERVING))
    state.finish(operation, OperationStatus.SUCCEEDED)
    return MoveResult(planned, deployed, target.endpoint(deployed), source_deployed)


def _plan_destination(record: Record, destination: Destination, catalog: Catalog) -> tuple[Plan, Provider]:
    """The plan for a move's target; never the place the deployment serves now, which a move
    recorded without its region (by releases before the typed record) could otherwise resolve to."""
    planned, target = plan_move(record, destination.cloud, catalog, destination.region)
    if (planned.cloud, planned.region) == (record.cloud, record.region):
        raise UsageError(
            f"the unfinished move of {record.name!r} to {destination.cloud} did not record its region, and the default is where it serves now "
            f"({record.region}); pass the region it was moving to with --region"
        )
    return planned, target


def _destination(record: Record, region: str | None) -> Destination:
    """Where an unfinished move was going; `region` fills in a region an older release did not record."""
    assert record.moving_to is not None
    return replace(record.moving_to, region=record.moving_to.region or region)


def _drain(run: _Run, record: Record) -> None:
    """Delete the source a move left behind and check nothing of it remains."""
    assert record.draining is not None
    state, operation = run.ctx.state, run.operation
    name, cloud = record.name, record.draining.cloud
    source = registry.provider(cloud)
    source_deployed = record.draining.target(name)
    try:
        retrying(lambda: source.destroy(source_deployed, run), run.ctx)
        left = retrying(lambda: source.remaining(source_deployed), run.ctx)
    except Exception as exc:
        state.finish(operation, OperationStatus.FAILED, f"source not drained: {exc}")
        raise DeployError(f"{name!r} serves on its new cloud, but deleting it from {cloud} failed: {exc}; run `llamadeploy move {name} --resume`") from exc
    if left:
        names = ", ".join(f"{r.type} {r.name}" for r in left)
        state.finish(operation, OperationStatus.FAILED, f"source not drained: {names}")
        raise DeployError(f"{name!r} serves on its new cloud, but these remain on {cloud}: {names}; run `llamadeploy move {name} --resume`")


def resume_move(ctx: Context, name: str, region: str | None = None) -> str:
    """Finish a move a crash interrupted: drain the source, or bring the target up and then drain."""
    state = ctx.state
    with state.lock(name) as holder:
        record = _take_over_unfinished_move(state, name, "resume", "--resume")
        if record.draining is not None:
            operation = state.begin(name, OperationKind.MOVE, record.cloud, holder)
            _drain(_Run(ctx, operation, name), record)
            state.put(record.to(Phase.SERVING))
            state.finish(operation, OperationStatus.SUCCEEDED, "resumed: source drained")
            return f"{name} finished moving to {record.cloud}: nothing remains on {record.draining.cloud}"
        result = _move(ctx, holder, record, _destination(record, region))
        return f"{name} finished moving from {result.source.cloud} to {result.plan.cloud}"


def rollback_move(ctx: Context, name: str, region: str | None = None) -> str:
    """Undo a move a crash interrupted: the source serves again (re-applied, adopting what is left)
    and the target is deleted."""
    state, catalog = ctx.state, ctx.prices()
    with state.lock(name) as holder:
        record = _take_over_unfinished_move(state, name, "roll back", "--rollback")
        if record.draining is not None:
            target_deployed = _deployed(record)
            # From here the source is what serves and the target what a move would bring up: a crash
            # mid-rollback leaves a MOVING record that --resume or --rollback finishes either way.
            record = record.to(Phase.MOVING, placed=record.draining, moves=record.moves[:-1], moving_to=Destination(record.cloud, record.region))
            state.put(record)
            source_record = record.to(Phase.SERVING)
            restore = True
        else:
            source_record, restore = record.to(Phase.SERVING), False
            planned, target = _plan_destination(record, _destination(record, region), catalog)
            target_deployed = Deployed(name, planned.cloud, planned.region, planned.resources, "", target.settings(planned))
        operation = state.begin(name, OperationKind.ROLLBACK, source_record.cloud, holder)
        run = _Run(ctx, operation, name)
        if restore:  # the drain had begun: bring the source back, adopting what is left of it
            planned_source, source = plan_move(source_record, source_record.cloud, catalog, source_record.region)
            restored = retrying(lambda: source.apply(planned_source, run), ctx)
            source_record = replace(source_record, placed=replace(source_record.placed, deployed=restored))
        target_provider = registry.provider(target_deployed.cloud)
        retrying(lambda: target_provider.destroy(target_deployed, run), ctx)
        left = retrying(lambda: target_provider.remaining(target_deployed), ctx)
        if left:
            state.finish(operation, OperationStatus.FAILED, "target not deleted")
            raise DeployError(
                f"rolling back {name!r}: these remain on {target_deployed.cloud}: {', '.join(r.name for r in left)}; run `move {name} --rollback` again"
            )
        state.put(source_record)
        state.finish(operation, OperationStatus.SUCCEEDED, f"move to {target_deployed.cloud} undone")
        return f"{name} serves on {source_record.cloud} ({source_record.region}) again; nothing remains on {target_deployed.cloud}"


def scale(ctx: Context, name: str, min_replicas: int, max_replicas: int) -> Record:
    """Change a serving deployment's replica bounds in place, through its service's own autoscaling,
    and record them as the declared ones (the record's spec and hash follow)."""
    if not 1 <= min_replicas <= max_replicas:
        raise UsageError(f"replica bounds must satisfy 1 <= min <= max; got {min_replicas}-{max_replicas}")
    state = ctx.state
    with state.lock(name) as holder:
        record = _serving_record(state, name)
        if record.unfinished_move:
            raise DeployError(_unfinished_hint(name))
        if record.unfinished_replace:
            raise DeployError(_unfinished_replace_hint(record))
        declared = record.declared()
        bounds = declared.autoscaling.model_copy(update={"min_replicas": min_replicas, "max_replicas": max_replicas})
        rescaled = declared.model_copy(update={"autoscaling": bounds})
        planned, provider = _plan_recorded(record, rescaled, record.cloud, ctx.prices(), record.region)
        planned = replace(planned, variant=record.placed.plan.variant)  # the names it has in the cloud
        if planned.offer.instance_type != record.placed.plan.instance_type:
            raise DeployError(
                f"{name!r} runs on {record.placed.plan.instance_type}, but the price catalog now chooses {planned.offer.instance_type} for its spec; "
                "`scale` changes nothing else: set the bounds in the stack file and run `up`, which shows the whole change"
            )
        then = replace(
            record, spec=rescaled.model_dump(mode="json"), placed=replace(record.placed, plan=PlanSnapshot.of(planned), spec_hash=spec_hash(planned))
        )
        return _update_in_place(ctx, holder, record, provider, planned, OperationKind.SCALE, then)


def _update_in_place(
    ctx: Context, holder: str, record: Record, provider: Provider, planned: Plan, kind: OperationKind, then: Record, rescale: bool = True, retag: bool = False
) -> Record:
    """Set the plan's autoscaling through the service's own (`rescale`) and its tags through the
    cloud's tagging calls (`retag`), then record `then`; on failure the record is left as it was."""
    state, deployed, before = ctx.state, _deployed(record), record.placed.plan
    bounds = planned.deployment.autoscaling
    operation = state.begin(record.name, kind, record.cloud, holder)
    try:
        run = _Run(ctx, operation, record.name)
        if rescale:
            retrying(lambda: provider.scale(deployed, planned, run), ctx)
        if retag:
            retrying(lambda: provider.retag(deployed, planned, run), ctx)
    except Exception as exc:
        state.finish(operation, OperationStatus.FAILED, str(exc))
        raise DeployError(
            f"updating {record.name!r} on {record.cloud} in place failed: {exc}; the record keeps what it had, and `status` shows the cloud's bounds"
        ) from exc
    state.put(then)
    said = []
    if rescale:
        said.append(
            f"{before.min_replicas}-{before.max_replicas} -> {bounds.min_replicas}-{bounds.max_replicas} replicas, target {bounds.target_concurrent_requests} in flight"
        )
    if retag:
        said.append("tags set")
    state.finish(operation, OperationStatus.SUCCEEDED, "; ".join(said))
    return then


def _replace(ctx: Context, holder: str, record: Record, provider: Provider, planned: Plan, verify: bool) -> UpResult:
    """Blue/green on the same endpoint: stage `planned`'s variant beside the one that serves, call
    it where the service can address it alone, move the traffic, call the endpoint, then delete
    the old variant. Until traffic moves the old variant serves untouched; a failure before the
    new one answered through the endpoint puts everything back as it was.

    The record says how far it got (REPLACING with the staged side, then RETIRING with the old
    side to delete), so a crash is finished by the next `up` or undone by `up --rollback`."""
    state, report = ctx.state, ctx.report
    name, old = record.name, _deployed(record)
    digest = spec_hash(planned)
    operation = state.begin(name, OperationKind.REPLACE, record.cloud, holder)
    side = record.staged if record.staged is not None and record.staged.spec_hash == digest else None
    side = side or Placed(planned.cloud, planned.region, digest, PlanSnapshot.of(planned), provider.settings(planned))
    replacing = record.to(Phase.REPLACING, staged=side)
    state.put(replacing)
    run = _Run(ctx, operation, name)
    try:
        staged = retrying(lambda: provider.stage(old, planned, run), ctx)
        replacing = replace(replacing, staged=replace(side, deployed=staged.deployed))
        state.put(replacing)
        if verify and staged.probe is not None:
            _verify(ctx, planned, provider, staged.probe, replacing=True)  # the new variant alone, before any traffic reaches it
        replacing = replace(replacing, switching=True)  # from here an undo moves the traffic back first
        state.put(replacing)
        report(EventKind.SHIFTING, deployment=name, variant=planned.variant)
        retrying(lambda: provider.switch(staged.deployed, planned, run), ctx)
        answer = _verify(ctx, planned, provider, staged.deployed, replacing=True) if verify else None
        # Tags the two variants share (the endpoint's) were adopted as they were: set the declared ones.
        retrying(lambda: provider.retag(staged.deployed, planned, run), ctx)
    except WaitTimeoutError as exc:  # the cloud is still working on it: left as it is, for `up` or `up --rollback`
        state.finish(operation, OperationStatus.FAILED, str(exc))
        raise DeployError(
            f"replacing {name!r} on {record.cloud}: {exc}; the cloud is still working on it: run `up` again to go on waiting, "
            f"or `up --rollback` to go back to the variant that served before"
        ) from exc
    except Exception as exc:
        undone, complete = _undo_replace(ctx, run, replacing, provider)
        state.finish(operation, OperationStatus.ROLLED_BACK if complete else OperationStatus.FAILED, str(exc))
        raise DeployError(f"replacing {name!r} on {record.cloud} failed: {exc}\n  {undone}") from exc
    new_side = replace(side, deployed=staged.deployed)
    retiring = replacing.to(Phase.RETIRING, spec=planned.deployment.model_dump(mode="json"), placed=new_side, draining=record.placed)
    state.put(retiring)
    _retire(run, provider, retiring)
    state.finish(operation, OperationStatus.SUCCEEDED, f"replaced blue/green by variant {planned.variant or '(first)'}")
    return UpResult(planned, staged.deployed, provider.endpoint(staged.deployed), changed=True, answer=answer)


def _finish_replace(ctx: Context, holder: str, record: Record, provider: Provider, planned: Plan, verify: bool) -> UpResult | None:
    """`up` of a deployment whose replace a crash interrupted: a staged variant of the same spec is
    taken up where it was (adopted, switched, verified); an old variant left to delete is deleted,
    and the `up` goes on (None) with the record serving."""
    name = record.name
    if record.phase is Phase.RETIRING:
        operation = ctx.state.begin(name, OperationKind.REPLACE, record.cloud, holder)
        _retire(_Run(ctx, operation, name), provider, record)
        ctx.state.finish(operation, OperationStatus.SUCCEEDED, "resumed: the old variant deleted")
        return None
    assert record.staged is not None
    if record.staged.spec_hash != spec_hash(planned):
        raise DeployError(
            f"a replace of {name!r} by another spec did not finish; run `llamadeploy up STACK --rollback` to go back to the variant that serves, "
            "then `up` this one"
        )
    return _replace(ctx, holder, record, provider, replace(planned, variant=record.staged.plan.variant), verify)


def _undo_replace(ctx: Context, run: _Run, record: Record, provider: Provider) -> tuple[str, bool]:
    """Put a REPLACING record's deployment back as it was: traffic on the old variant (when the
    record says it may have moved), the staged variant's own resources deleted, the record SERVING
    the old variant. Says what was done, and whether it is all done (else the record stays for
    `up --rollback`)."""
    assert record.staged is not None
    name, old = record.name, _deployed(record)
    staged = record.staged.target(name)
    try:
        if record.switching:
            before, _ = _plan_recorded(record, record.declared(), record.cloud, ctx.prices(), record.region)
            if before.offer.instance_type != record.placed.plan.instance_type:
                raise DeployError(
                    f"the price catalog now chooses {before.offer.instance_type} for the old spec, which ran on {record.placed.plan.instance_type}; "
                    "pass the catalog it was deployed with (--catalog)"
                )
            before = replace(before, variant=record.placed.plan.variant)
            retrying(lambda: provider.switch(old, before, run), ctx)
        retrying(lambda: provider.destroy(_without_shared(staged, old), run), ctx)
    except Exception as exc:
        return f"undoing it failed too ({exc}); run `llamadeploy up STACK --rollback` to finish going back", False
    ctx.state.put(record.to(Phase.SERVING))
    back = "serves again (the traffic was moved back to it)" if record.switching else "serves as it did (no traffic had moved)"
    return f"the variant that served before {back}; the new one was deleted ({record.cloud}, {record.region})", True


def _retire(run: _Run, provider: Provider, record: Record) -> None:
    """Delete the old variant a RETIRING record names (what it has that the new one does not), then
    record the new one as serving; a failure keeps the record, for the next `up`."""
    assert record.draining is not None
    state, name = run.ctx.state, record.name
    new, old = _deployed(record), record.draining.target(name)
    run.ctx.report(EventKind.RETIRING, deployment=name, variant=record.placed.plan.variant)
    try:
        retrying(lambda: provider.destroy(_without_shared(old, new), run), run.ctx)
    except Exception as exc:
        state.finish(run.operation, OperationStatus.FAILED, f"old variant not deleted: {exc}")
        raise DeployError(f"{name!r} serves its new variant, but deleting the old one failed: {exc}; run `up` again to finish") from exc
    state.put(record.to(Phase.SERVING))


def _without_shared(side: Deployed, other: Deployed) -> Deployed:
    """`side` less the resources `other` shares with it (the endpoint, what both variants use)."""
    shared = {(r.type, r.name) for r in other.resources}
    return replace(side, resources=tuple(r for r in side.resources if (r.type, r.name) not in shared))


def rollback_replace(ctx: Context, name: str) -> str:
    """Undo a replace a crash interrupted before the new variant answered through the endpoint."""
    state = ctx.state
    with state.lock(name) as holder:
        record = _serving_record(state, name)
        if record.phase is Phase.RETIRING:
            raise DeployError(
                f"the new variant of {name!r} already serves and answered; only deleting the old one is left: run `up` to finish it "
                "(to go back, declare the old spec and `up` again)"
            )
        if record.phase is not Phase.REPLACING:
            raise DeployError(f"{name!r} has no unfinished replace to roll back")
        for stale in state.interrupted(name):
            state.finish(stale.id, OperationStatus.INTERRUPTED, "taken over by a later `up --rollback`")
        provider = registry.provider(record.cloud)
        operation = state.begin(name, OperationKind.ROLLBACK, record.cloud, holder)
        said, complete = _undo_replace(ctx, _Run(ctx, operation, name), record, provider)
        state.finish(operation, OperationStatus.SUCCEEDED if complete else OperationStatus.FAILED, said)
        if not complete:
            raise DeployError(f"rolling back the replace of {name!r}: {said}")
        return f"{name}: {said}"


@dataclass(frozen=True)
class Attempt:
    cloud: str
    region: str | None
    outcome: str


def up_with_failover(
    ctx: Context, stack: Stack, deployment: Deployment, candidates: list[tuple[str, str | None]], verify: bool = True
) -> tuple[UpResult, list[Attempt]]:
    """`up` on each candidate in turn until one serves. A cloud out of capacity or quota is
    cleaned up (as any failed `up` is) and the next tried; any other failure stops the run."""
    catalog, report = ctx.prices(), ctx.report
    attempts: list[Attempt] = []
    for cloud, region in candidates:
        try:
            planned, provider = plan_up(stack, deployment, cloud, catalog, region)
        except LlamadeployError as exc:
            attempts.append(Attempt(cloud, region, f"not tried: {str(exc).splitlines()[0]}"))
            report(EventKind.SKIPPED, cloud=cloud, region=region, reason=attempts[-1].outcome)
            continue
        try:
            result = up(ctx, planned, provider, verify)
        except DeployError as exc:
            if not isinstance(exc.__cause__, (CapacityError, QuotaError)) or ctx.state.get(deployment.name) is not None:
                raise  # not a cloud that cannot host it, or one whose clean-up left something behind (the message says what)
            attempts.append(Attempt(cloud, planned.region, str(exc.__cause__)))
            report(EventKind.FAILED_OVER, cloud=cloud, region=planned.region, reason=str(exc.__cause__))
            continue
        attempts.append(Attempt(cloud, planned.region, "serving"))
        return result, attempts
    tried = "\n  ".join(f"{a.cloud}{':' + a.region if a.region else ''}: {a.outcome}" for a in attempts) or "no candidates"
    raise DeployError(f"no candidate could host {deployment.name!r}; tried, in order:\n  {tried}")


def cheapest_candidates(stack: Stack, deployment: Deployment, catalog: Catalog) -> list[tuple[str, str | None]]:
    """`--cloud auto`: every cloud that can host the deployment, cheapest first, in the region it is cheapest."""
    return [(result.cloud, result.region) for result in compare(stack, deployment, registry.names(), catalog) if isinstance(result, Plan)]


def _roll_back(planned: Plan, provider: Provider, run: _Run, existed: bool, moving: bool = False) -> tuple[str, bool]:
    """Delete what this run created; say what was deleted, or what is left for the user (in a move,
    `down` would delete the source that still serves: the leftovers are named for deleting by hand),
    and whether nothing this run made is left."""
    if not run.made:
        return "nothing was created, nothing to clean up", True
    partial = Deployed(planned.deployment.name, planned.cloud, planned.region, tuple(run.made), "", provider.settings(planned))
    try:
        retrying(lambda: provider.destroy(partial, run), run.ctx)
    except Exception as exc:
        names = ", ".join(f"{r.type} {r.name}" for r in run.made)
        then = f"delete them in {planned.cloud} ({planned.region})" if moving else f"run `llamadeploy down {planned.deployment.name}`"
        return f"cleaning up failed too ({exc}); these may remain on {planned.cloud}: {names}; {then}", False
    kept = "; what existed before was kept" if existed else ""
    return f"rolled back: deleted the {len(run.made)} resources this run created ({', '.join(r.name for r in run.made)}){kept}", True


def _take_over_unfinished_move(state: StateStore, name: str, verb: str, flag: str) -> Record:
    """The record of the unfinished move to act on; the dead command's operations are closed."""
    record = _serving_record(state, name)
    if not record.unfinished_move:
        raise DeployError(f"{name!r} has no unfinished move to {verb}")
    for operation in state.interrupted(name):
        state.finish(operation.id, OperationStatus.INTERRUPTED, f"taken over by a later `move {flag}`")
    return record


def _serving_record(state: StateStore, name: str) -> Record:
    """The record of a deployment that serves somewhere (a move in any phase included)."""
    record = _recorded(state, name)
    if record.phase not in (Phase.SERVING, Phase.MOVING, Phase.DRAINING, Phase.REPLACING, Phase.RETIRING) or record.deployed is None:
        raise DeployError(f"{name!r} is not serving (its record says {record.phase.value!r}); finish it with `up` first")
    return record


def _recorded(state: StateStore, name: str) -> Record:
    record = state.get(name)
    if record is None:
        raise DeployError(f"no deployment named {name!r} in the state at {state.path}; `llamadeploy status` lists them")
    return record


def _deployed(record: Record) -> Deployed:
    """What a serving record's cloud holds (`_serving_record` checked there is something)."""
    assert record.deployed is not None
    return record.deployed


def _unfinished_hint(name: str) -> str:
    return f"{name!r} has an unfinished move; run `llamadeploy move {name} --resume` to finish it or `--rollback` to undo it"


def _unfinished_replace_hint(record: Record) -> str:
    if record.phase is Phase.RETIRING:
        return f"{record.name!r} serves its new variant, and deleting the old one did not finish; run `llamadeploy up STACK` to finish it"
    return f"{record.name!r} has an unfinished replace; run `llamadeploy up STACK` to finish it or `up STACK --rollback` to undo it"


@dataclass(frozen=True)
class StatusRow:
    record: Record
    live: LiveStatus | None
    drift: tuple[str, ...]
    history: tuple[Operation, ...]
    error: str = ""


# What a record says when the command that wrote it did not finish, and what to run about it.
_UNFINISHED = {
    Phase.CREATING: "an `up` did not finish; run `up` again to finish it, or `down` to remove it",
    Phase.DELETING: "a `down` did not finish; run `down` again to finish it",
}


def status(ctx: Context, name: str | None = None) -> list[StatusRow]:
    """Each recorded deployment refreshed from its cloud, with any drift from what was recorded."""
    state = ctx.state
    records = state.records() if name is None else [_recorded(state, name)]
    # Every deployment's journal in one read when all are listed (one query, or the journal objects
    # read at once), not one read per deployment: 1,000 deployments on an object store are 1,000 round trips.
    histories: dict[str, list[Operation]] = {}
    for op in state.journal() if name is None else state.history(name):
        histories.setdefault(op.deployment, []).append(op)
    rows = []
    for record in records:
        history = tuple(histories.get(record.name, ()))
        if record.phase in _UNFINISHED or record.deployed is None:
            rows.append(StatusRow(record, None, (_UNFINISHED.get(record.phase, _UNFINISHED[Phase.CREATING]),), history))
            continue
        deployed = record.deployed
        provider = registry.provider(record.cloud)
        try:
            live = retrying(lambda p=provider, d=deployed: p.describe(d), ctx)
        except ProviderError as exc:
            rows.append(StatusRow(record, None, (), history, error=str(exc)))
            continue
        rows.append(StatusRow(record, live, _drift(record, live) + _unfinished_note(record), history))
    return rows


def _unfinished_note(record: Record) -> tuple[str, ...]:
    """What `status` says of a move or replace a command did not finish, and what to run about it."""
    if record.unfinished_move:
        return (f"an unfinished move: run `llamadeploy move {record.name} --resume` or `--rollback`",)
    if record.phase is Phase.REPLACING:
        return ("an unfinished replace: run `llamadeploy up STACK` to finish it or `up STACK --rollback` to undo it",)
    if record.phase is Phase.RETIRING:
        return ("the new variant serves; deleting the old one did not finish: run `llamadeploy up STACK` to finish it",)
    return ()


def _drift(record: Record, live: LiveStatus) -> tuple[str, ...]:
    planned = record.placed.plan
    found = [f"{missing} was deleted outside llamadeploy" for missing in live.missing]
    expected = (planned.min_replicas, planned.max_replicas)
    if live.min_replicas is not None and (live.min_replicas, live.max_replicas) != expected:
        found.append(f"autoscaling is {live.min_replicas}-{live.max_replicas} replicas, recorded {expected[0]}-{expected[1]}")
    if live.instance_type and live.instance_type != planned.instance_type:
        found.append(f"instance type is {live.instance_type}, recorded {planned.instance_type}")
    if live.state not in (LiveState.SERVING, LiveState.MISSING) and not live.missing:
        found.append(f"the endpoint is {live.state.value}" + (f": {live.detail}" if live.detail else ""))
    return tuple(found)


def down(ctx: Context, name: str) -> Deployed:
    """Delete the deployment, check nothing tagged with it remains, then forget it."""
    state = ctx.state
    with state.lock(name) as holder:
        record = _recorded(state, name)
        if record.unfinished_move:
            raise DeployError(_unfinished_hint(name))
        if record.unfinished_replace:
            raise DeployError(_unfinished_replace_hint(record))
        _take_over_interrupted(ctx, name)
        provider = registry.provider(record.cloud)
        deployed = record.placed.target(name)
        operation = state.begin(name, OperationKind.DOWN, record.cloud, holder)
        state.put(record.to(Phase.DELETING))
        run = _Run(ctx, operation, name)
        try:
            retrying(lambda: provider.destroy(deployed, run), ctx)
            left = retrying(lambda: provider.remaining(deployed), ctx)
        except Exception as exc:
            state.finish(operation, OperationStatus.FAILED, str(exc))
            raise DeployError(f"down of {name!r} on {record.cloud} failed: {exc}; run `down` again to retry") from exc
        if left:
            names = ", ".join(f"{r.type} {r.name}" for r in left)
            state.finish(operation, OperationStatus.FAILED, f"still present: {names}")
            raise DeployError(f"down of {name!r}: these resources are still tagged with it: {names}; run `down` again")
        state.finish(operation, OperationStatus.SUCCEEDED)
        state.drop(name)
        return deployed


@dataclass(frozen=True)
class CallResult:
    record: Record
    endpoint: Endpoint
    answer: Answer
    declared: str  # the model the deployment was planned to serve


def call(ctx: Context, name: str, prompt: str, max_tokens: int) -> CallResult:
    """One chat completion to a recorded deployment, as a user's client would send it."""
    record = _serving_record(ctx.state, name)
    deployed = _deployed(record)
    provider = registry.provider(record.cloud)
    uncallable = provider.unverifiable(record.declared())
    if uncallable:
        raise DeployError(f"{name} cannot be called by llamadeploy: {uncallable}")
    private = provider.private_only(record.declared())
    try:
        answer = ask(ctx, provider, deployed, prompt, max_tokens, private=private is not None)
    except ProviderError as exc:
        if private is None or not isinstance(exc, (UnreachableError, AuthError)):
            raise
        raise DeployError(f"{exc}\n  {name}: {private}; call it from inside that network") from exc
    return CallResult(record, provider.endpoint(deployed), answer, record.placed.plan.model)
