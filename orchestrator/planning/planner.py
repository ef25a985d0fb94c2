"""Choose, for a deployment on a cloud, the cheapest offer that can host it.

For each offer in the region (of the asked GPU type, or any with `gpu: auto`) the sizing
decides whether one replica fits and how it is laid out; the cheapest that fits wins, an
offer with an unknown price only when nothing priced fits. When nothing fits, the error says
what was needed, what the biggest offer had, and which change to the spec would fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.declared.spec import QUANTIZATIONS, Deployment, Stack
from orchestrator.errors import (
    GpuNotOfferedError,
    InfeasibleError,
    LlamadeployError,
    NoCheckpointError,
    SpecError,
    UsageError,
)
from orchestrator.lifecycle.pacing import Unattended, retrying
from orchestrator.planning.plan import Plan, RunnerUp
from orchestrator.pricing.catalog import Catalog, Offer
from orchestrator.sizing.checkpoint_files import CONFIG, INDEX, QUANT_METHODS, SINGLE, CheckpointError, CheckpointFiles, read_checkpoint
from orchestrator.sizing.gpus import gpu_memory_gib
from orchestrator.sizing.memory import (
    GPUS_PER_NODE,
    RUNTIME_OVERHEAD_GIB_PER_GPU,
    GpuLayout,
    Requirements,
    layout,
    requirements,
    usable_gib,
    valid_tensor_parallel,
    weight_format,
)
from providers import registry
from providers.base import CloudService, Feature, Provider

# Sizing and offer choices already made, by deployment shape, cloud and region.
Memo = dict[tuple[object, ...], object]
OFFLINE = ("offline",)  # in a memo: read nothing from a cloud (`plan --no-refresh`)


@dataclass(frozen=True)
class Infeasible:
    """Why a cloud cannot host a deployment, shown in its row of a comparison."""

    deployment: Deployment
    cloud: str
    region: str | None
    reason: str
    ideas: tuple[str, ...] = ()  # changes to the spec that would fit on this cloud


def plan(stack: Stack, deployment: Deployment, cloud: str, catalog: Catalog, region: str | None = None, memo: Memo | None = None) -> Plan:
    """The plan for `deployment` on `cloud`; `region` (from --region) overrides the placement.
    `memo` shares sizing and offer choices between deployments of the same shape."""
    provider = registry.get(cloud)
    chosen, source = _region(stack, deployment, provider, catalog, region)
    return _plan_in_region(deployment, provider, catalog, chosen, source, memo)


def compare(stack: Stack, deployment: Deployment, clouds: list[str], catalog: Catalog, memo: Memo | None = None) -> list[Plan | Infeasible]:
    """The deployment on each cloud, cheapest first, then the clouds that cannot host it.

    A cloud whose placement names a region is priced there; otherwise in its cheapest region.
    `memo` shares sizing and offer choices between deployments of the same shape.
    """
    memo = {} if memo is None else memo
    results: list[Plan | Infeasible] = []
    for cloud in clouds:
        provider = registry.get(cloud)
        if deployment.placement.region(cloud):
            region = _region(stack, deployment, provider, catalog, None)[0]
            try:
                results.append(_plan_in_region(deployment, provider, catalog, region, "placement", memo))
            except InfeasibleError as exc:
                results.append(_most_telling(deployment, provider, [(region, exc)]))
            continue
        cheapest = _cheapest_region(deployment, provider, catalog, memo)
        if isinstance(cheapest, str):
            results.append(_plan_in_region(deployment, provider, catalog, cheapest, "cheapest", memo))
        else:
            results.append(cheapest)
    return sorted(results, key=_comparison_key)


def _cheapest_region(deployment: Deployment, provider: CloudService, catalog: Catalog, memo: Memo) -> str | Infeasible:
    """The region where the deployment's shape is cheapest on this cloud, or why there is none."""
    key = ("cheapest", *shape_of(deployment), provider.name)
    if key not in memo:
        regions = catalog.regions(provider.name)
        choices, failures = [], []
        for region in regions:
            try:
                choices.append((region, _choose(deployment, provider, catalog, region, memo)))
            except InfeasibleError as exc:
                failures.append((region, exc))
        if choices:
            memo[key] = min(choices, key=lambda c: (_value(_candidate(deployment, provider, c[0], c[1][:3])), c[0] != provider.default_region))[0]
        elif not regions:
            memo[key] = Infeasible(deployment, provider.name, None, f"the price catalog has no offers for {provider.name}")
        else:
            memo[key] = _most_telling(deployment, provider, failures)
    found = memo[key]
    return found if isinstance(found, str) else replace(found, deployment=deployment)  # type: ignore[return-value]


def _most_telling(deployment: Deployment, provider: CloudService, failures: list[tuple[str, InfeasibleError]]) -> Infeasible:
    """Of the regions' reasons, a memory shortfall (the default region's first) says most."""
    sized = [(region, exc) for region, exc in failures if not isinstance(exc, GpuNotOfferedError)]
    if not sized:
        where = ", ".join(region for region, _ in failures)
        return Infeasible(
            deployment, provider.name, None, f"no {deployment.gpu} offers on {provider.name} in any priced region ({where}); use gpu: auto or another GPU"
        )
    region, exc = min(sized, key=lambda f: f[0] != provider.default_region)
    return Infeasible(deployment, provider.name, region, str(exc), exc.ideas)


def _comparison_key(result: Plan | Infeasible) -> tuple[int, float, str]:
    if isinstance(result, Infeasible):
        return (2, 0.0, result.cloud)
    price = result.usd_per_hour(result.deployment.autoscaling.min_replicas)
    return (1, 0.0, result.cloud) if price is None else (0, price, result.cloud)


def _region(stack: Stack, deployment: Deployment, provider: CloudService, catalog: Catalog, override: str | None) -> tuple[str, str]:
    """The region to plan in and where it came from; an unknown region lists the known ones."""
    known = catalog.regions(provider.name)
    placed = deployment.placement.region(provider.name)
    region, source = (override, "--region") if override else (placed, "placement") if placed else (provider.default_region, "default")
    if region in known:
        return region, source
    listing = ", ".join(known) if known else "none"
    message = f"{provider.name} has no offers in region {region!r} in the price catalog; regions with offers: {listing}"
    if source == "placement":
        raise SpecError([stack.locate(deployment, ("placement", provider.name, "region"), message)])
    raise UsageError(message) if source == "--region" else InfeasibleError(message)


def _plan_in_region(deployment: Deployment, provider: CloudService, catalog: Catalog, region: str, source: str, memo: Memo | None = None) -> Plan:
    offer, gpu_layout, req, runner_up = _choose(deployment, provider, catalog, region, {} if memo is None else memo)
    return Plan(deployment, provider.name, provider.service, region, source, offer, gpu_layout, req, provider, runner_up=runner_up)


def _choose(
    deployment: Deployment, provider: CloudService, catalog: Catalog, region: str, memo: Memo
) -> tuple[Offer, GpuLayout, Requirements, RunnerUp | None]:
    """The offer that serves the deployment cheapest (`_value`) among those one replica fits on, and
    the runner-up; decided once per shape (what sizing and the month read) and region."""
    key = (*shape_of(deployment), provider.name, region)
    if key not in memo:
        try:
            files = _checkpoint(deployment, provider, region, memo)
            req = _requirements(deployment, files)
            offers = _offers(deployment, provider, catalog, region)
            fitting = _fitting(req, offers, provider)
            if not fitting:
                raise InfeasibleError(*_why_nothing_fits(deployment, req, offers, provider, catalog, region, files))
            ranked = sorted((_value(candidate), candidate) for candidate in (_candidate(deployment, provider, region, (o, f, req)) for o, f in fitting))
            (best, chosen), runner_up = ranked[0], None
            if len(ranked) > 1 and best[0] == ranked[1][0][0] < 2:  # both priced, alike in meeting the load: what the second would cost
                second = ranked[1][1]
                runner_up = RunnerUp(second.offer.instance_type, second.gpus_per_replica, _measure(deployment), ranked[1][0][1], best[1])
            memo[key] = (chosen.offer, chosen.layout, req, runner_up)
        except InfeasibleError as exc:
            memo[key] = exc
    found = memo[key]
    if isinstance(found, InfeasibleError):
        raise type(found)(str(found), found.ideas)
    return found  # type: ignore[return-value]


def shape_of(deployment: Deployment) -> tuple[object, ...]:
    """What the choice of an offer depends on: what sizing reads, and what the month under load reads."""
    scaling = deployment.autoscaling
    return (
        deployment.model,
        deployment.quantization,
        deployment.max_context,
        deployment.concurrency,
        deployment.gpu,
        deployment.serving.engine,
        deployment.load.model_dump_json() if deployment.load else None,
        tuple(sorted(deployment.weights.items())),
        scaling.min_replicas,
        scaling.max_replicas,
        scaling.target_concurrent_requests,
    )


def _candidate(deployment: Deployment, provider: CloudService, region: str, chosen: tuple[Offer, GpuLayout, Requirements]) -> Plan:
    offer, gpu_layout, req = chosen
    return Plan(deployment, provider.name, provider.service, region, "", offer, gpu_layout, req, provider)


def _measure(deployment: Deployment) -> str:
    return "$/month under load" if deployment.load else "$/h per replica"


def _value(candidate: Plan) -> tuple[int, float, int, str]:
    """What serving the deployment on a candidate offer costs: with a load profile, the month under
    it (replicas each hour from the throughput model: a bigger GPU that serves the day on fewer
    replicas can be the cheaper month); without one, the hourly price of a replica, which is what
    an idle deployment bills. ($ per token at full load would put a 1B chat on an H100: it assumes
    a load the spec does not declare.) Unknown prices last; then fewer GPUs."""
    from orchestrator.planning.projection import project

    tie = (candidate.gpus_per_replica, candidate.offer.instance_type)
    price = candidate.usd_per_replica_hour
    if price is None:
        return (2, 0.0, *tie)
    if candidate.deployment.load is None:
        return (0, price, *tie)
    projection = project(candidate)
    # An offer whose max_replicas cannot serve every hour's load bills a capped month: it comes after
    # every offer that can.
    return (1 if projection.unmet_hours else 0, projection.usd_per_month or 0.0, *tie)


def _checkpoint(deployment: Deployment, provider: CloudService, region: str, memo: Memo) -> CheckpointFiles | str | None:
    """The user's own checkpoint on this cloud, read once per command (through the engine's retries)
    where the cloud's credentials are configured; a string says why it was not read (sizing then uses the catalog's architecture).
    It is read as from the region the deployment is placed in, once: `cost` weighing every region
    of a cloud sizes them all from that one read (whether the service there may read the bucket is
    `up`'s check, in the region it deploys to)."""
    uri = deployment.weights.get(provider.name)
    if not uri:
        return None
    placement = deployment.placement.of(provider.name)
    region = placement.region if placement is not None and placement.region else provider.default_region
    key = ("checkpoint", provider.name, uri, placement.model_dump_json() if placement is not None else None)
    if key not in memo:
        if memo.get(OFFLINE):
            memo[key] = f"the catalog's {deployment.model}: {uri} not read (--no-refresh plans offline)"
        elif not isinstance(provider, Provider) or not provider.credentials_configured():
            memo[key] = f"the catalog's {deployment.model}: {uri} not read (no {provider.name} credentials configured)"
        else:
            try:
                memo[key] = retrying(lambda: read_checkpoint(uri, *provider.checkpoint_listing(uri, placement, region)), Unattended())
            except LlamadeployError as exc:
                memo[key] = f"the catalog's {deployment.model}: {uri} could not be read ({str(exc).splitlines()[0]})"
    return memo[key]  # type: ignore[return-value]


def _requirements(deployment: Deployment, files: CheckpointFiles | str | None = None, **changes: object) -> Requirements:
    """What a replica of `deployment` (with `changes`) needs, its weights as the checkpoint served
    holds them: the user's own checkpoint as its config and index describe it, where it was read."""
    values: dict[str, Any] = {"quantization": deployment.quantization, "max_context": deployment.max_context, "concurrency": deployment.concurrency, **changes}
    if isinstance(files, CheckpointFiles) and files.config is not None:
        model = files.architecture(f"{deployment.model} (fine-tuned)")
        declared, method = values["quantization"], files.quant_method
        if method is None and declared == "int4":
            raise CheckpointError(
                f"{files.uri} is not quantized (its config has no quantization_config), so vLLM cannot serve it as int4: quantize it ahead of time (AWQ or GPTQ), or declare bf16 or fp8"
            )
        if method is not None and method not in QUANT_METHODS.get(declared, ()):
            raise CheckpointError(f"{files.uri} is quantized with {method}, which is not {declared}: declare the quantization the checkpoint holds")
        sized = requirements(model, declared, values["max_context"], values["concurrency"])
        # An unquantized checkpoint served as fp8 is quantized at load time; otherwise vLLM holds it as `held_bytes` says.
        held = sized.weights_bytes if declared == "fp8" and method is None else files.held_bytes()
        where = f"{files.uri} ({CONFIG}, {INDEX if files.index is not None else SINGLE})"
        return replace(sized, weights_bytes=held, sized_from=where, stored_bytes=float(files.weights_bytes), checkpoint_quantized=method is not None)
    try:
        checkpoint = deployment.model_ref.checkpoint(values["quantization"])
        values["weights"] = weight_format(checkpoint.stored_as, checkpoint.load_quantization)
    except NoCheckpointError:
        pass  # no checkpoint serves it: sized as if one did, and `checkpoint` says why not where it matters
    sized = requirements(deployment.model_ref.model, **values)
    return replace(sized, sized_from=files) if isinstance(files, str) else sized


def _offers(deployment: Deployment, provider: CloudService, catalog: Catalog, region: str) -> list[Offer]:
    in_region = catalog.select(cloud=provider.name, region=region)
    if deployment.gpu == "auto":
        return in_region
    matching = [o for o in in_region if o.gpu == deployment.gpu]
    if not matching:
        there = ", ".join(sorted({o.gpu for o in in_region})) or "none"
        raise GpuNotOfferedError(f"no {deployment.gpu} offers on {provider.name} in {region}; GPUs there: {there} (or use gpu: auto)")
    return matching


def _fitting(req: Requirements, offers: list[Offer], provider: CloudService) -> list[tuple[Offer, GpuLayout]]:
    """The offers one replica fits on; spanning instances only when no single instance fits."""
    laid_out = [(offer, layout(req, gpu_memory_gib(offer), offer.gpu_count)) for offer in offers]
    single = [(offer, found) for offer, found in laid_out if found is not None and found.nodes == 1]
    if single or provider.unsupported({Feature.MULTI_NODE}):
        return single
    return [(o, found) for o, found in laid_out if found is not None and o.gpu in provider.multi_node_gpus]


def _price_key(offer: Offer, gpu_layout: GpuLayout) -> tuple[bool, float, int, str]:
    price = offer.usd_per_hour
    return (price is None, (price or 0.0) * gpu_layout.nodes, offer.gpu_count * gpu_layout.nodes, offer.instance_type)


def _why_nothing_fits(
    deployment: Deployment,
    req: Requirements,
    offers: list[Offer],
    provider: CloudService,
    catalog: Catalog,
    region: str,
    files: CheckpointFiles | str | None = None,
) -> tuple[str, tuple[str, ...]]:
    """What one replica needs, the most the region's biggest offer gives, and what would fit (in
    words, and as the changes to the spec that would fit here)."""
    model = req.model
    biggest = max(offers, key=lambda o: (usable_gib(gpu_memory_gib(o)) * o.gpu_count, o.instance_type))
    degree = max(d for d in (1, 2, 4, 8) if d <= biggest.gpu_count and valid_tensor_parallel(model, d))
    needed = req.total_gib(degree)
    has = usable_gib(gpu_memory_gib(biggest)) * degree
    lines = [
        f"{model.name} at {deployment.quantization} with {deployment.max_context} tokens x {deployment.concurrency} sequences "
        f"needs {needed:.0f} GiB per replica on {degree} GPU{'s' if degree > 1 else ''} (weights {req.weights_gib:.0f} GiB + KV cache "
        f"{req.kv_cache_gib:.0f} GiB + {RUNTIME_OVERHEAD_GIB_PER_GPU:.0f} GiB runtime per GPU); the biggest offer on "
        f"{provider.name} in {region}, {biggest.instance_type} ({biggest.gpu_count}x {biggest.gpu} {gpu_memory_gib(biggest):.0f} GiB), "
        f"gives {has:.0f} GiB usable"
    ]
    if layout(req, gpu_memory_gib(biggest), biggest.gpu_count) is not None:
        lines += provider.unsupported({Feature.MULTI_NODE})
    ideas = _what_would_fit(deployment, req, offers, provider, catalog, region, biggest, degree, files)
    others = [name for name in registry.names() if name != provider.name]
    elsewhere = not ideas or (biggest.gpu_count == GPUS_PER_NODE and layout(req, gpu_memory_gib(biggest), GPUS_PER_NODE))
    shown = [*ideas, f"another cloud (`llamadeploy cost` compares {', '.join(others)})"] if elsewhere else ideas
    lines.append("what would fit: " + "; ".join(shown))
    return "\n  ".join(lines), tuple(ideas)


def _what_would_fit(
    deployment: Deployment,
    req: Requirements,
    offers: list[Offer],
    provider: CloudService,
    catalog: Catalog,
    region: str,
    biggest: Offer,
    degree: int,
    files: CheckpointFiles | str | None = None,
) -> list[str]:
    """Changes to the spec that would fit, each sized as it would be served: a user's own
    checkpoint (`files`) as read, so one stored in 16 bits suggests fp8 (quantized at load) but
    not int4, which needs a checkpoint quantized ahead of time."""
    ideas = []
    for quantization in QUANTIZATIONS[QUANTIZATIONS.index(deployment.quantization) + 1 :]:
        try:
            smaller = _requirements(deployment, files, quantization=quantization)
        except CheckpointError:
            continue
        fit = _fitting(smaller, offers, provider)
        if fit:
            ideas.append(f"quantization: {quantization} (on {min(fit, key=lambda f: _price_key(*f))[0].instance_type})")
    if deployment.gpu != "auto":
        others = [o for o in catalog.select(cloud=provider.name, region=region) if o.gpu != deployment.gpu]
        fit = _fitting(req, others, provider)
        if fit:
            offer = min(fit, key=lambda f: _price_key(*f))[0]
            ideas.append(f"gpu: {offer.gpu} (on {offer.instance_type})")
    room = (usable_gib(gpu_memory_gib(biggest)) - RUNTIME_OVERHEAD_GIB_PER_GPU) * degree - req.weights_gib
    per_token = req.model.kv_bytes_per_token(2) / 1024**3
    if room > 0:
        context = _round_down(room / (per_token * deployment.concurrency))
        concurrency = math.floor(room / (per_token * deployment.max_context))
        if context >= 1024:
            ideas.append(f"max_context: {context} (at concurrency {deployment.concurrency})")
        if concurrency >= 1:
            ideas.append(f"concurrency: {concurrency} (at max_context {deployment.max_context})")
    return ideas


def _round_down(tokens: float) -> int:
    """Round a context length down to a multiple of 1024, as context windows are usually set."""
    return int(tokens // 1024) * 1024


def plan_stack(stack: Stack, cloud: str | None, catalog: Catalog, region: str | None = None, only: str | None = None, offline: bool = False) -> list[Plan]:
    """Plans for every deployment of the stack (or the one named `only`) on one cloud.

    Without `cloud`, a deployment whose placement names a single cloud goes there. `offline`
    reads nothing from a cloud: a deployment's own weights are then sized as the catalog's model.
    """
    deployments = [stack.get(only)] if only else list(stack.deployments)
    memo: Memo = {OFFLINE: offline}
    plans = [plan(stack, d, default_cloud(d, cloud), catalog, region, memo) for d in deployments]
    # A spec its cloud cannot run (network isolation with a hub download, say), named before `up`
    # or `export` makes or declares anything.
    problems = [(p, problem) for p in plans if (problem := p.described_by.deployment_problem(p.deployment, bool(p.weights)))]
    if problems:
        raise SpecError([stack.locate(p.deployment, path, message) for p, (path, message) in problems])
    return plans


def compare_stack(stack: Stack, clouds: list[str] | None, catalog: Catalog, only: str | None = None) -> dict[str, list[Plan | Infeasible]]:
    """Each deployment (or the one named `only`) compared across `clouds`.

    By default: the built-in clouds and any other cloud the catalog prices (a plugin's), which
    spares scanning installed distributions for plugins that could not be priced anyway.
    """
    chosen = clouds or list(dict.fromkeys([*registry.BUILTIN, *catalog.clouds()]))
    deployments = [stack.get(only)] if only else list(stack.deployments)
    memo: Memo = {}
    return {d.name: compare(stack, d, chosen, catalog, memo) for d in deployments}


def default_cloud(deployment: Deployment, cloud: str | None) -> str:
    """`cloud` if given, else the one cloud the deployment's placement names."""
    if cloud:
        return cloud
    placed = deployment.placement.clouds()
    if len(placed) == 1:
        return placed[0]
    which = f"its placement names {', '.join(placed)}" if placed else "it has no placement"
    raise UsageError(f"say which cloud to plan {deployment.name!r} on with --cloud ({which}); known clouds: {', '.join(registry.names())}")
