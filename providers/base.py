"""The one interface every cloud implements, and the types and errors that cross it.

A provider maps a Plan onto one cloud's managed serving service. It has two layers:
`CloudService` is what is known without credentials (the service, default region, what it can
do, the resources a plan turns into), so `plan`, `cost` and `export` use it without importing
any cloud SDK; `Provider` adds the live operations, and imports its SDK inside them. A cloud
whose live operations are not written yet is a `CloudService` only: it can be planned and
priced, and `up` says plainly that it cannot deploy there yet.

Capabilities are an allow-list: a provider lists the `Feature`s it supports, so a feature
added later stays off for every cloud until that cloud opts in, and the reason a cloud lacks
one is data the planner prints.
"""

from __future__ import annotations

import enum
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from orchestrator.declared.spec import Deployment, PlacementBase
from orchestrator.errors import LlamadeployError, UsageError
from orchestrator.planning.plan import Resource as Resource
from orchestrator.planning.plan import ScalingSignal as ScalingSignal
from orchestrator.planning.plan import ServingContract as ServingContract

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from orchestrator.pricing.catalog import Offer

T = TypeVar("T")
DEPLOYMENT_TAG = "llamadeploy-deployment"
# The built-in providers' Pulumi templates (a plugin names a file of its own package).
BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "pulumi"


class GetJson(Protocol):
    """GETs a price API's URL and parses its JSON, raising CatalogError; `headers` carry what an
    API takes besides the URL (a key that must not appear in a URL that a message or a row shows)."""

    def __call__(self, url: str, headers: Mapping[str, str] | None = None) -> Any: ...


class Feature(enum.Enum):
    """What some managed services can do and others cannot."""

    MULTI_NODE = "multi-node"  # one replica spread over several instances
    REPLACE_LIVE = "replace-live"  # new machines brought up beside the old on the same endpoint, then traffic switched


# Why a service lacks a feature, unless its provider says something more particular.
_DEFAULT_REASONS = {
    Feature.MULTI_NODE: "{service} runs each replica on one instance; a replica cannot span instances",
    Feature.REPLACE_LIVE: "{service} has no way, in its provider, to bring new machines up beside the serving ones",
}


class ProviderError(LlamadeployError):
    """A cloud refused or failed a request; the subclass tells the engine what to do next."""


class CapacityError(ProviderError):
    """The cloud has no capacity for the instance type in the region now: try elsewhere."""


class QuotaError(ProviderError):
    """The account's quota does not allow it: ask for more, or try elsewhere."""


class ThrottledError(ProviderError):
    """Too many requests: retry after `retry_after` seconds (when the cloud said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(ProviderError):
    """Credentials are missing, wrong or lack a permission."""


class NotFoundError(ProviderError):
    """The resource does not exist."""


class InvalidRequestError(ProviderError):
    """The cloud rejected the request as invalid."""


class TransientError(ProviderError):
    """The cloud failed in a way that usually passes (a 5xx answer, a dropped connection): the engine
    retries the call with backoff. SDKs are configured not to retry on their own, so one policy
    (the engine's) decides how often and how long, on every cloud."""


class UnreachableError(TransientError):
    """A call that did not reach the service at all (a refused connection, a name that does not
    resolve, a timeout): passing for a public endpoint, but all a caller outside a private
    endpoint's network ever gets, which is why the engine tells it from an answer."""


@dataclass(frozen=True)
class ErrorWords:
    """How one cloud words its failures: the codes and phrases `classify` reads, and the advice the
    user gets. A provider declares one; the rules that turn a failed call into a typed error are
    the same for every cloud."""

    service: str  # as messages name it: "SageMaker", "Azure ML"
    throttle_codes: frozenset[str] = frozenset()
    auth_codes: frozenset[str] = frozenset()
    not_found_codes: frozenset[str] = frozenset()
    quota_codes: frozenset[str] = frozenset()
    quota_words: tuple[str, ...] = ("quota",)
    capacity_words: tuple[str, ...] = ("capacity",)
    quota_advice: str = "request more quota, or plan another instance type or cloud"
    capacity_advice: str = "try another region or cloud"
    auth_advice: str = ""


# Environment that sends a Hugging Face download elsewhere than straight out (a proxy, a mirror),
# along routes a network check cannot judge.
HUB_THROUGH = frozenset({"HF_ENDPOINT", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"})


@contextmanager
def optional_read(what: str, permission: str) -> Iterator[None]:
    """A read `up` can go without (a network check): a refusal names what was read and the
    permission it takes, and a read that did not get an answer, or found nothing, is said at once
    rather than retried, as the service has the last word (the engine reports it and goes on)."""
    try:
        yield
    except AuthError as exc:
        raise AuthError(f"{what} was refused ({permission}): {str(exc).splitlines()[0]}") from exc
    except (TransientError, NotFoundError) as exc:
        raise ProviderError(f"{what} failed: {str(exc).splitlines()[0]}") from exc


def classify(words: ErrorWords, status: int | None, code: str, message: str, retry_after: str | None = None) -> ProviderError:
    """A failed call (HTTP `status`, None if no answer came; the cloud's error `code` and `message`)
    as the typed error the engine acts on: fail over on quota or capacity, retry on throttling or a
    transient failure, stop on anything else. Credentials and existence are decided by status and
    code first (a message may quote a resource named after anything); then quota and capacity by
    their words, before throttling, since some clouds answer an exhausted quota with 429."""
    text = f"{code}: {message}" if code and code not in message else message
    lowered = f"{code} {message}".lower()
    if status in (401, 403) or code in words.auth_codes:
        return AuthError(f"{words.service} refused the credentials ({text})" + (f"; {words.auth_advice}" if words.auth_advice else ""))
    if status == 404 or code in words.not_found_codes:
        return NotFoundError(text)
    if code in words.quota_codes or any(word in lowered for word in words.quota_words):
        return QuotaError(f"{words.service} quota exceeded ({text}); {words.quota_advice}")
    if any(word in lowered for word in words.capacity_words):
        return CapacityError(f"{words.service} has no capacity for this now ({text}); {words.capacity_advice}")
    if status == 429 or code in words.throttle_codes:
        return ThrottledError(f"{words.service} is throttling requests ({text})", _seconds(retry_after))
    # 408 (timed out) and 424 (SageMaker's ModelError: the container answered 5xx, as one warming up does) pass.
    if status is None or status >= 500 or status in (408, 424):
        return TransientError(f"{words.service} failed ({text})")
    return InvalidRequestError(f"{words.service} rejected the request ({text})")


def _seconds(retry_after: str | None) -> float | None:
    """A Retry-After header's delay in seconds (the HTTP-date form is left to the backoff)."""
    try:
        return max(0.0, float(retry_after)) if retry_after else None
    except ValueError:
        return None


def failed_because(words: ErrorWords, reason: str) -> ProviderError:
    """A resource the cloud reports as failed, by its failure reason: out of capacity, over a limit, or broken."""
    lowered = reason.lower()
    if any(word in lowered for word in words.capacity_words):
        return CapacityError(f"{words.service} could not provision the instances ({reason}); {words.capacity_advice}")
    if any(word in lowered for word in (*words.quota_words, "quota", "limit")):
        return QuotaError(f"{words.service} quota exceeded ({reason}); {words.quota_advice}")
    return ProviderError(f"{words.service} failed: {reason}")


@dataclass(frozen=True)
class Deployed:
    """What a deployment is on its cloud: the resources to find again and the URL it serves at."""

    deployment: str
    cloud: str
    region: str
    resources: tuple[Resource, ...]
    url: str
    # How to reach the cloud again without the stack file (e.g. a VPC endpoint URL); no secrets.
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployed:
        resources = tuple(Resource(r["type"], r["name"], r.get("properties", {})) for r in data["resources"])
        return cls(data["deployment"], data["cloud"], data["region"], resources, data["url"], data.get("settings", {}))


@dataclass(frozen=True)
class Staged:
    """A new variant brought up next to the one that serves, on the same endpoint (`Provider.stage`)."""

    deployed: Deployed  # what the deployment is once traffic has moved: the endpoint's resources and the new variant's
    # How to call the new variant alone before traffic moves (the service's own way of addressing
    # one deployment of an endpoint); None where the service offers none: it is called after the switch.
    probe: Deployed | None = None


@dataclass(frozen=True)
class Program:
    """What an exported Pulumi program declares for one plan, from the values `apply` sends.

    The template `templates/pulumi/<cloud>.py.j2` turns `values` into typed resources. Stack
    configuration holds what the user may change without re-exporting (region, role, project);
    secrets are only named here: the user sets them with `pulumi config set --secret`.
    """

    requirements: tuple[str, ...]
    values: Mapping[str, Any]
    config: Mapping[str, str] = field(default_factory=dict)
    required_config: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    files: Mapping[str, bytes] = field(default_factory=dict)


class LiveState(enum.Enum):
    """A deployment's state as the core knows it; each provider maps its cloud's own words into it
    (as Libcloud's NODE_STATE_MAP does), so no cloud's vocabulary reaches the engine."""

    SERVING = "serving"
    PROVISIONING = "provisioning"  # being created, updated or scaled: not serving yet, or not as declared
    INACTIVE = "inactive"  # exists but takes no traffic
    DELETING = "deleting"
    FAILED = "failed"
    MISSING = "missing"  # the endpoint is not there
    UNKNOWN = "unknown"  # a state the provider does not know; LiveStatus.detail has the cloud's word


@dataclass(frozen=True)
class LiveStatus:
    """What really exists now, as the cloud reports it."""

    state: LiveState
    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    instance_type: str | None = None
    missing: tuple[str, ...] = ()
    detail: str = ""

    @property
    def serving(self) -> bool:
        return self.state is LiveState.SERVING and not self.missing


@dataclass(frozen=True)
class Quota:
    """An account limit that decides whether a plan's machines can be had in its region: a GPU
    quota of 0 is the most common first failure on every managed service, and cheaper to learn
    before anything is created than from a failed deployment."""

    name: str  # as the cloud names it, so the user can find it
    limit: float
    used: float | None  # None where the service does not report what is in use
    needed: float  # what the plan needs at its minimum replicas, in `unit`
    unit: str  # "instances", "cores", "GPUs"
    request: str  # how to ask for more

    @property
    def enough(self) -> bool:
        return self.limit - (self.used or 0) >= self.needed

    def describe(self) -> str:
        free = f"{_amount(self.limit - self.used)} of {_amount(self.limit)}" if self.used is not None else f"{_amount(self.limit)}"
        return f"quota {self.name!r}: {free} {self.unit} free, {_amount(self.needed)} needed"


@dataclass(frozen=True)
class QuotaView:
    """A plan's quota as `plan` shows it: what was read, or why nothing was."""

    quota: Quota | None
    unchecked: str = ""  # why it was not read; empty when it was (or the provider checks none)


def _amount(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Endpoint:
    """Where a deployment answers and how a client authenticates."""

    url: str
    auth: str
    example: str


class Pace(enum.Enum):
    """How long a service usually takes over what a wait waits for: the engine polls a step of
    seconds often and a step of minutes (GPU machines starting, a model loading) at most every
    few seconds, so a long wait ends soon after the cloud is done without thousands of polls."""

    SECONDS = "seconds"
    MINUTES = "minutes"


class Presence(enum.Enum):
    """Whether a resource is there, as a re-run must see it: one an earlier command is deleting is
    neither adopted (it is going away) nor created again (the name is still taken)."""

    ABSENT = "absent"
    PRESENT = "present"
    DELETING = "deleting"


class Events(Protocol):
    """What a provider reports to the engine while it works, and how it waits."""

    def created(self, resource: Resource) -> None:
        """The cloud now has `resource`, created by this run (rolled back if the run fails)."""

    def adopted(self, resource: Resource) -> None:
        """`resource` already existed and is taken over as it is."""

    def wait(self, what: str, check: Callable[[], tuple[bool, str]], pace: Pace = Pace.SECONDS) -> None:
        """Poll `check` (done?, cloud status) until done; the engine owns the timing, `pace` says how
        long the service usually takes (a GPU endpoint's minutes are polled less often)."""

    def started(self, resource: Resource, operation: str) -> None:
        """The cloud accepted a long-running `operation` (its id or name) on `resource`; journaled
        before it is waited on, so a command that dies waiting leaves it for the next one to find."""

    def settled(self, resource: Resource) -> None:
        """The operation on `resource` that `started` named has ended (whatever its outcome)."""

    def pending(self, resource: Resource) -> str | None:
        """An operation on `resource` that an earlier command started and did not see end: the next
        command waits for it (or adopts what it made) rather than start another."""


class CloudService(ABC):
    """One cloud's managed endpoint service, as far as it is known without credentials."""

    name: ClassVar[str]
    service: ClassVar[str]
    default_region: ClassVar[str]
    # What `placement.<name>` may hold; the stack file is validated with it (file, line, field).
    placement_model: ClassVar[type[PlacementBase]] = PlacementBase
    # The Jinja2 macros (imports, preamble, deployment) `export` renders `program()`'s values with.
    pulumi_template: ClassVar[Path | None] = None
    supports: ClassVar[frozenset[Feature]] = frozenset()
    # Why the service lacks a feature, where the default reason says too little.
    lacks: ClassVar[Mapping[Feature, str]] = {}
    # With MULTI_NODE: the GPUs whose instances have the interconnect to split a replica.
    multi_node_gpus: ClassVar[frozenset[str]] = frozenset()
    # Serving the user's own weights from object storage: the URI scheme the service reads
    # (`weights.<cloud>` in the spec) and where the container finds the files; None where
    # llamadeploy cannot serve them on this cloud yet.
    weights_scheme: ClassVar[str | None] = None
    weights_mount: ClassVar[str | None] = None

    def weights_path(self, plan: Plan) -> str | None:
        """Where the container finds the plan's own weights: the service's mount; None where the
        image fetches them from their location itself."""
        return self.weights_mount

    # What keeps an endpoint off the internet on this cloud: `plan` warns with it that an endpoint will be public.
    private_advice: ClassVar[str] = "llamadeploy cannot declare a private endpoint on this cloud yet"

    def public_warning(self, deployment: Deployment) -> str | None:
        """`plan`'s warning that the deployment's endpoint will answer on the internet (behind the
        cloud's authentication), with what keeps it private; None where it will not."""
        if self.private_only(deployment):
            return None
        return f"its endpoint will be public, behind {self.service}'s authentication: {self.private_advice}"

    def replace_problem(self, live: Deployment, plan: Plan) -> str | None:
        """Why this service cannot replace the serving deployment (`live`, as recorded) with `plan`
        on the same endpoint; None where it can. Asked before a replace is journaled or anything is
        made; the core says what to do instead (`down`, then `up`)."""
        return None

    def private_only(self, deployment: Deployment) -> str | None:
        """Why the deployment's endpoint answers only inside its own network (so `up` cannot call it
        from here to verify it); None where it answers from anywhere."""
        return None

    def unverifiable(self, deployment: Deployment) -> str | None:
        """Why llamadeploy can call the deployment's endpoint from nowhere (it does not know the
        address it answers at), or None. `up` then says it is unchecked without calling it, and what
        would delete a serving deployment on the strength of a call (a move to it, a replace on it)
        is refused before anything is made."""
        return None

    def reach(self, deployment: Deployment) -> str:
        """How the deployment is reached, and what its container can reach, in words (`plan`, `status`)."""
        return "a public endpoint, behind the cloud's authentication; the container has internet access"

    def deployment_problem(self, deployment: Deployment, own_weights: bool) -> tuple[tuple[str, ...], str] | None:
        """A spec that cannot work on this cloud (the field's path, and why), checked by `plan`,
        `up` and `export` before anything is made."""
        return None

    def weights_problem(self, uri: str) -> str | None:
        """What is wrong with `weights.<cloud>: uri` for this service, or None."""
        if self.weights_scheme is None:
            return f"llamadeploy cannot serve weights from object storage on {self.name} yet; deploy this deployment to a cloud that can, or remove weights.{self.name}"
        if not uri.startswith(self.weights_scheme):
            return f"must be a {self.weights_scheme} location of a Hugging Face-format checkpoint, e.g. {self.weights_scheme}bucket/llama-ft/"
        return None

    def unsupported(self, needed: set[Feature]) -> list[str]:
        """The reasons this cloud cannot provide the `needed` features (empty when it can)."""
        missing = sorted(needed - self.supports, key=lambda f: f.value)
        return [self.lacks.get(f) or _DEFAULT_REASONS[f].format(service=self.service) for f in missing]

    @abstractmethod
    def resources(self, plan: Plan) -> list[Resource]:
        """The resources `apply` would create for `plan`; pure, no cloud call."""

    def program(self, plan: Plan) -> Program | None:
        """The values of an exported Pulumi program for `plan`; None where export is not written."""
        return None

    def contract(self, plan: Plan) -> ServingContract | None:
        """How this cloud starts, routes and scales vLLM for `plan`; None where not declared."""
        return None

    def read_prices(self, offers: Sequence[Offer], get_json: GetJson) -> list[Offer] | None:
        """`offers` (this cloud's rows of the catalog) as the cloud's public price API prices them
        today, each naming the URL it was read from and the date; an offer the API does not price
        is left out. None where the cloud has no price API that needs no account (`catalog refresh`
        keeps its rows); PriceApiUnavailable where it has one that cannot be read as things are.
        `get_json(url)` GETs and parses, raising CatalogError."""
        return None


class Provider(CloudService):
    """A cloud service llamadeploy can deploy to: the live operations behind `up`, `status`, `down`."""

    # Placement fields `up` cannot do without on this cloud (checked before any cloud call), and
    # those it needs besides when the deployment serves its own weights there.
    required_placement: ClassVar[tuple[str, ...]] = ()
    weights_placement: ClassVar[tuple[str, ...]] = ()
    # Those it needs besides when the weights come from the Hugging Face Hub (a route out, say).
    hub_placement: ClassVar[tuple[str, ...]] = ()
    # The SDK modules the live operations import; checked, not imported, before any cloud call.
    sdk_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._client_cache: dict[Hashable, Any] = {}
        self._clients_lock = threading.Lock()

    def client(self, key: Hashable, make: Callable[[], T]) -> T:
        """The SDK client(s) for `key` (region, endpoint, credentials source), made once per provider
        instance and thread: making one is costly (boto3 parses its service model, MLClient reads
        workspace metadata), and not every SDK documents its clients as safe to share between
        threads (requests' Session, under several of them, is not), so deployments brought up in
        parallel each get their own. Every provider makes its clients through here; the registry
        keeps one instance per process and drops it in a fork's child, so a child never shares a
        parent's open connections."""
        key = (key, threading.get_ident())  # only this thread makes or reads this key: no lock held while making
        with self._clients_lock:
            found = self._client_cache.get(key)
        if found is None:
            found = make()
            with self._clients_lock:
                self._client_cache[key] = found
        return found

    def checkpoint_listing(self, uri: str, placement: Any, region: str) -> tuple[dict[str, int], Callable[[str], bytes]]:
        """The files under `uri` in this cloud's object storage (name relative to it -> bytes) and
        a reader of one of them by name, for a deployment in `region`; with the credentials `up`
        uses. Only a provider with a `weights_scheme` is asked. By default what `weights_store`
        finds there, for a cloud whose storage is read the same from every region."""
        store = self.weights_store(uri, placement)
        return {name: size for name, (size, _) in store.existing().items()}, store.read

    def weights_store(self, uri: str, placement: Any) -> Any:
        """The location `uri` in this cloud's object storage, to stage a checkpoint into (a
        `orchestrator.lifecycle.staging.WeightsStore`); only a provider with a `weights_scheme` is asked."""
        raise UsageError(f"llamadeploy cannot stage weights into {self.name}'s object storage yet; copy the checkpoint folder there with the cloud's own tools")

    def settings(self, plan: Plan) -> dict[str, Any]:
        """What `describe` and `destroy` need later to reach the cloud again, kept in state."""
        return {}

    def network_problem(self, plan: Plan) -> str | None:
        """What the plan's network, as the cloud has it now, lacks for the service or the container
        to reach what they need (the weights, the Hugging Face Hub), and how to add it; None where
        nothing is surely missing. Read before anything is made, so a deployment that could not
        start is not made and billed first; a read the cloud refuses (a ProviderError) is said and
        does not stop the run, as the service has the last word."""
        return None

    def quota(self, plan: Plan) -> Quota | None:
        """The account's quota for the plan's machines in its region, read from the cloud's quota
        API before anything is created; None where this provider does not check one."""
        return None

    def credentials_configured(self) -> bool:
        """Whether the usual credential chain has something to find, judged from the environment and
        config files alone (no SDK import, no network): `plan` reads quotas only then, so planning
        without credentials stays offline and fast."""
        return False

    @abstractmethod
    def apply(self, plan: Plan, events: Events) -> Deployed:
        """Create what is missing and adopt what exists (by name and tag); return once it serves."""

    @abstractmethod
    def describe(self, deployed: Deployed) -> LiveStatus:
        """What exists now, including resources deleted by hand (`missing`)."""

    @abstractmethod
    def scale(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """Set the plan's autoscaling (replica bounds and target) on the live deployment in place;
        return once the service applied it. Nothing else of `plan` may differ from what serves."""

    def retag(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """Set the plan's tags (`resource_tags`) on the live resources of `deployed` that carry
        tags, in place, removing tags the plan no longer declares. A provider written before this
        existed says plainly that it cannot."""
        raise ProviderError(f"the {self.name} provider cannot change tags in place; keep the tags, or `llamadeploy down` and `up` the deployment")

    def stage(self, deployed: Deployed, plan: Plan, events: Events) -> Staged:
        """With REPLACE_LIVE: bring `plan`'s variant (plan.variant names its resources) up next to
        what serves as `deployed`, on the same endpoint, taking no traffic where the service allows;
        adopt what an earlier run staged. Return once it is ready to take traffic."""
        raise NotImplementedError(f"{self.service} cannot replace a live deployment")

    def switch(self, deployed: Deployed, plan: Plan, events: Events) -> None:
        """With REPLACE_LIVE: send all of the endpoint's traffic to the variant `deployed` and `plan`
        describe (staged, or the old one when a replace is undone) and return once it serves all of
        it. Doing it twice does no harm: a switch already made is not made again."""
        raise NotImplementedError(f"{self.service} cannot replace a live deployment")

    @abstractmethod
    def destroy(self, deployed: Deployed, events: Events) -> None:
        """Delete every resource of `deployed`; fine if some or all are already gone. Only what is
        listed goes: the resources of one variant, without its endpoint, leave the endpoint serving."""

    @abstractmethod
    def remaining(self, deployed: Deployed) -> list[Resource]:
        """Resources still tagged with the deployment, which `down` checks is empty."""

    @abstractmethod
    def endpoint(self, deployed: Deployed) -> Endpoint:
        """The URL, how to authenticate, and an example call that works as printed."""

    @abstractmethod
    def invoke(self, deployed: Deployed, request: Mapping[str, Any]) -> Any:
        """Send one OpenAI chat completion `request` through the cloud's own authentication and
        return the decoded answer (what the cloud said, unchecked)."""


# A provider's context manager that turns its SDK's exceptions into the typed errors above.
Translator = Callable[[], AbstractContextManager[None]]


def if_exists(call: Callable[[], T], translated: Translator) -> T | None:
    """`call()`'s result, or None when the cloud says the resource does not exist."""
    try:
        with translated():
            return call()
    except NotFoundError:
        return None


def exists(call: Callable[[], object], translated: Translator) -> bool:
    return if_exists(call, translated) is not None


def any_configured(variables: tuple[str, ...], files: tuple[str | Path, ...]) -> bool:
    """Whether one of the environment `variables` is set or one of the config `files` exists."""
    return any(os.environ.get(v) for v in variables) or any(Path(os.path.expanduser(str(f))).is_file() for f in files if f and str(f) != os.devnull)


def create_or_adopt(
    resource: Resource,
    exists: Callable[[], bool | Presence],
    create: Callable[[], T],
    events: Events,
    then: Callable[[T], object] | None = None,
) -> bool:
    """Create `resource` unless it exists; either way tell the engine, which journals creations.
    What `create` returns (an operation, a poller) goes to `then` once the creation is journaled,
    so a command that dies waiting on it leaves the resource known. One that an earlier `down`
    is still deleting is waited out first, then made anew. True if this call created it."""
    found = exists()
    if found is Presence.DELETING:
        gone_after_delete(resource, exists, events)
        found = Presence.ABSENT
    if found in (True, Presence.PRESENT):
        events.adopted(resource)
        return False
    started = create()
    events.created(resource)
    if then is not None:
        then(started)
    return True


def gone_after_delete(resource: Resource, exists: Callable[[], bool | Presence], events: Events, pace: Pace = Pace.MINUTES) -> None:
    """Wait until a resource being deleted (by this command or one before it) is gone; the services'
    deletes of serving machines take minutes."""

    def check() -> tuple[bool, str]:
        found = exists()
        return found in (False, Presence.ABSENT), "deleting" if found is Presence.DELETING else "present"

    events.wait(f"{resource.name} to finish deleting", check, pace)


def secrets_exposed(plan: Plan, where: str, shown_by: str, why: str) -> tuple[str, ...]:
    """What `plan` tells the user of the secrets a cloud with no secret reference in its container
    spec sends as plain environment (`where`, which the read call `shown_by` returns to whoever may
    make it), and, where the hub token is among them, the way to send none: the checkpoint staged
    in the cloud's own storage."""
    if not plan.secrets:
        return ()
    names = ", ".join(sorted(plan.secrets))
    told = f"{names} {'travels' if len(plan.secrets) == 1 else 'travel'} in {where}, which {shown_by} shows to whoever may call it{why}"
    if "HF_TOKEN" in plan.secrets and not plan.weights:
        told += (
            f"; `llamadeploy weights stage STACK --cloud {plan.cloud}` and weights.{plan.cloud} serve the checkpoint from your own storage, with no hub token"
        )
    return (told,)


def resource_tags(plan: Plan) -> dict[str, str]:
    """The user's tags plus the deployment tag that lets a re-run find what it created."""
    return {**plan.deployment.tags, DEPLOYMENT_TAG: plan.deployment.name}


# How long an inference call waits to connect: a call that cannot connect in that time will not,
# and from outside a private network it would otherwise wait out the whole (minutes-long) read timeout.
CONNECT_TIMEOUT_S = 10


def answer_of(send: Callable[[], Any], what: str) -> Any:
    """The JSON answer of an inference call made with `requests` (`send` makes it), or its failure as
    the typed error the engine acts on."""
    import requests

    try:
        response = send()
    except requests.ConnectionError as exc:  # no route, no name, refused, or no connection in CONNECT_TIMEOUT_S
        raise UnreachableError(f"cannot reach {what}: {exc}") from exc
    except requests.RequestException as exc:  # it got there: a read timed out, an answer was cut short
        raise TransientError(f"{what} did not answer whole: {exc}") from exc
    if response.status_code >= 400:
        # An inference call's error text is the model server's, not the control plane's: no quota or capacity words apply.
        words = ErrorWords(what, quota_words=(), capacity_words=())
        raise classify(words, response.status_code, str(response.status_code), response.text[:300], response.headers.get("Retry-After"))
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderError(f"{what} answered with something other than JSON: {response.text[:300]}") from exc
