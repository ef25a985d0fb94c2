"""What every state backend shares: the records' journal types, the lock's claim, where a store
is (`Location`), and the interface (`StateStore`) with the lock rules written once. The backends
are the modules beside this one; `orchestrator.lifecycle.state` picks one by URL."""

from __future__ import annotations

import os
import socket
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.errors import LlamadeployError
from orchestrator.lifecycle.record import Record

STATE_ENV = "LLAMADEPLOY_STATE"
DEFAULT_PATH = Path(".llamadeploy") / "state.db"
LOCK_SECONDS = 3600


class StateError(LlamadeployError):
    """The state store cannot be used."""


class LockedError(StateError):
    """Another command holds the deployment's lock."""


class OperationKind(StrEnum):
    UP = "up"
    DOWN = "down"
    MOVE = "move"
    ROLLBACK = "rollback"  # undoing a move or a replace a crash interrupted
    SCALE = "scale"  # replica bounds changed in place by `scale`
    UPDATE = "update"  # replica bounds or tags changed in place by `up` of a changed stack
    REPLACE = "replace"  # new machines brought up blue/green on the same endpoint by `up` of a changed stack


class OperationStatus(StrEnum):
    RUNNING = "running"  # still running, or its command died: the next command takes over
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"  # failed, and what it created was deleted
    INTERRUPTED = "interrupted"  # its command died; a later one took over


@dataclass(frozen=True)
class Operation:
    """One journal entry: an `up`, `down` or `move` of a deployment, and what it created."""

    id: int
    deployment: str
    kind: OperationKind
    cloud: str
    status: OperationStatus
    holder: str
    started_at: str
    finished_at: str | None
    created: list[dict[str, Any]]
    detail: str
    waiting: dict[str, str]  # cloud operations under way on its resources, by resource


@dataclass(frozen=True)
class Claim:
    """A deployment's lock as stored: who holds it, from where, and until when."""

    holder: str
    token: str  # this taking of the lock, so a holder releases only its own
    host: str
    pid: int
    acquired_at: str
    expires_at: float  # seconds since the epoch

    @classmethod
    def new(cls, holder: str) -> Claim:
        return cls(holder, uuid.uuid4().hex, socket.gethostname(), os.getpid(), now(), time.time() + LOCK_SECONDS)

    @property
    def stale(self) -> bool:
        """Past its expiry, or held by a process of this host that no longer runs."""
        if self.expires_at <= time.time():
            return True
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def holder_name() -> str:
    """Who holds a lock, in words a person can trace: user, host and process."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


@dataclass(frozen=True)
class Location:
    """Where the state lives, parsed from a path or URL; `shown` is safe to print (no password)."""

    scheme: str  # sqlite, postgresql, s3 or az
    shown: str
    path: Path | None = None  # sqlite: the file
    url: str = ""  # the URL as given (postgresql: with its password reference, never a password)
    bucket: str = ""  # s3: the bucket; az: the container
    prefix: str = ""  # s3, az: the key prefix, without a trailing slash
    options: Mapping[str, str] = field(default_factory=dict)  # the URL's query

    def exists(self) -> bool:
        """Whether there is anything to read: a local file must exist; a shared store is always asked."""
        return self.path.exists() if self.path is not None else True

    @property
    def local_dir(self) -> Path:
        """Where llamadeploy keeps its other local files (`--engine pulumi`'s projects)."""
        return self.path.parent if self.path is not None else DEFAULT_PATH.parent

    def __str__(self) -> str:
        return self.shown


class StateStore(ABC):
    """The state, wherever it is kept: each backend implements the primitives, the rules around
    them (how a lock is taken, who is told what) are here, once."""

    def __init__(self, location: Location) -> None:
        self.location = location

    # Locks

    @contextmanager
    def lock(self, deployment: str, wait_seconds: float = 0.0) -> Iterator[str]:
        """Hold `deployment`'s lock for the block; wait up to `wait_seconds` for another holder."""
        claim = Claim.new(holder_name())
        deadline = time.monotonic() + wait_seconds
        while not self._take(deployment, claim):
            if time.monotonic() >= deadline:
                held = self._claim(deployment)
                who, since = (held.holder, held.acquired_at) if held else ("another command", "moments ago")
                raise LockedError(
                    f"deployment {deployment!r} is locked by {who} since {since} (state at {self.location}); wait for it to finish, "
                    f"or if that process is gone, the lock expires {LOCK_SECONDS // 60} minutes after it was taken"
                )
            time.sleep(0.2)
        try:
            yield claim.holder
        finally:
            self._release(deployment, claim)

    def _stale(self, claim: Claim) -> bool:
        """Whether a stored lock may be taken over; a backend that knows more (a server session) says more."""
        return claim.stale

    @abstractmethod
    def _take(self, deployment: str, claim: Claim) -> bool:
        """Store `claim` unless a live one is stored: atomically, so two takers never both win."""

    @abstractmethod
    def _claim(self, deployment: str) -> Claim | None:
        """The stored lock, if any."""

    @abstractmethod
    def _release(self, deployment: str, claim: Claim) -> None:
        """Remove the lock if it is still `claim` (an expired one may have been taken over)."""

    @abstractmethod
    def held_locks(self) -> list[str]:
        """The deployments whose lock a live command holds."""

    # Records

    @abstractmethod
    def get(self, name: str) -> Record | None: ...

    @abstractmethod
    def records(self) -> list[Record]: ...

    @abstractmethod
    def put(self, record: Record) -> None:
        """Store the record as it is now, whole or not at all."""

    @abstractmethod
    def drop(self, name: str) -> None: ...

    # Journal

    @abstractmethod
    def begin(self, deployment: str, kind: OperationKind, cloud: str, holder: str) -> int:
        """Journal an operation as running; its id."""

    @abstractmethod
    def note_created(self, operation: int, resource: dict[str, Any]) -> None:
        """Add a resource to what the operation created, as soon as the cloud has it."""

    @abstractmethod
    def note_waiting(self, operation: int, resource: str, cloud_operation: str) -> None:
        """The cloud's long-running `cloud_operation` on `resource` is under way; kept until settled."""

    @abstractmethod
    def note_settled(self, deployment: str, resource: str) -> None:
        """The cloud's operation on `resource` ended: no entry of the deployment's journal waits on it now."""

    @abstractmethod
    def finish(self, operation: int, status: OperationStatus, detail: str = "") -> None: ...

    @abstractmethod
    def history(self, deployment: str) -> list[Operation]:
        """The deployment's journal entries, oldest first."""

    @abstractmethod
    def journal(self) -> list[Operation]:
        """Every journal entry, oldest first (what `state migrate` copies)."""

    @abstractmethod
    def copy_in(self, records: list[Record], journal: list[Operation]) -> None:
        """Write records and journal entries (ids and waiting operations included) read from another store."""

    def snapshot(self) -> tuple[list[Record], list[Operation]]:
        """Every record and journal entry (what `state migrate` copies); a backend that can read
        both at one point in time does."""
        return self.records(), self.journal()

    def waiting(self, deployment: str) -> dict[str, str]:
        """The cloud operations on `deployment`'s resources that commands started and never saw end."""
        return {resource: operation for op in self.history(deployment) for resource, operation in op.waiting.items()}

    def interrupted(self, deployment: str) -> list[Operation]:
        """Operations on `deployment` still marked running: their command died before finishing."""
        return [op for op in self.history(deployment) if op.status is OperationStatus.RUNNING]

    def notes(self) -> list[str]:
        """What the user should know about this store (object versioning off, say)."""
        return []

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
