"""The state as objects in a bucket: how Terraform teams keep theirs (S3, Azure Blob Storage).

Under the URL's prefix, each deployment has three objects:

- `deployments/<name>.json`: its record;
- `journal/<name>.json`: its journal entries;
- `locks/<name>.json`: its lock, while a command holds it;

and `format.json` says which layout the objects follow. Every write is conditional (create only
if absent, replace only if unchanged since read: `If-None-Match: *` / `If-Match: <etag>`), so two
writers can never both win: a journal update that loses is read again and redone, never written
over the other; a lock is taken by creating its object, or by replacing one whose holder is gone;
a record changes only under its deployment's lock. An object is written whole or not at all, so a
record is never half written. Versioning on the bucket keeps every earlier state: recommended, and
`notes()` says when it is off.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from orchestrator.lifecycle.record import Record, RecordError, from_json, to_json
from orchestrator.lifecycle.stores.base import (
    Claim,
    Location,
    Operation,
    OperationKind,
    OperationStatus,
    StateError,
    StateStore,
    now,
)

LAYOUT = 1
# A conditional write that loses is redone after a short, random wait, this many times at most.
WRITE_ATTEMPTS = 20
# Objects read at once when listing every record or journal (a listing of 1,000 deployments).
READERS = 16


class Bucket(Protocol):
    """One bucket (or container) under one prefix, with conditional writes; keys are relative to the prefix."""

    where: str  # as messages name it

    def read(self, key: str) -> tuple[bytes, str] | None:
        """The object and its ETag, or None if there is none."""

    def create(self, key: str, data: bytes) -> str | None:
        """Write the object only if none exists (If-None-Match: *): its new ETag, or None if one does."""

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        """Write the object only if it is still `etag` (If-Match): its new ETag, or None if it changed or went."""

    def delete(self, key: str, etag: str | None = None) -> bool:
        """Remove the object (only if it is still `etag`, when given); True unless it changed meanwhile."""

    def keys(self, prefix: str) -> list[str]:
        """The keys under `prefix`."""

    def versioned(self) -> bool | None:
        """Whether the bucket keeps earlier versions of an object (None: cannot tell)."""


class ObjectStore(StateStore):
    """The state in a bucket, over any `Bucket`."""

    def __init__(self, location: Location, bucket: Bucket) -> None:
        super().__init__(location)
        self.bucket = bucket
        self._deployment_of: dict[int, str] = {}  # operation id -> its deployment, for the journal object to update
        self._ids_lock = threading.Lock()
        # The ETag of each record as this command last read or wrote it: a write is made only over
        # that, so a command whose lock was taken over cannot overwrite the new holder's record.
        self._seen: dict[str, str | None] = {}
        found = bucket.read("format.json")
        if found is None:
            bucket.create("format.json", _dumps({"layout": LAYOUT}))
        elif json.loads(found[0]).get("layout", LAYOUT) > LAYOUT:
            raise StateError(f"the state at {location} was written by a newer llamadeploy (layout {json.loads(found[0])['layout']}); upgrade llamadeploy")

    def close(self) -> None:
        """Nothing held open: each request is its own."""

    def notes(self) -> list[str]:
        if self.bucket.versioned() is False:
            return [f"versioning is off on {self.bucket.where}: turn it on, so an overwritten or deleted state can be recovered"]
        return []

    # Locks

    def _take(self, deployment: str, claim: Claim) -> bool:
        key = f"locks/{deployment}.json"
        if self.bucket.create(key, _dumps(vars(claim))):
            return True
        found = self.bucket.read(key)
        if found is None:  # released meanwhile: try again at once
            return self.bucket.create(key, _dumps(vars(claim))) is not None
        data, etag = found
        if not self._stale(Claim(**json.loads(data))):
            return False
        return self.bucket.replace(key, _dumps(vars(claim)), etag) is not None  # only one taker of a stale lock wins

    def _claim(self, deployment: str) -> Claim | None:
        found = self.bucket.read(f"locks/{deployment}.json")
        return Claim(**json.loads(found[0])) if found else None

    def _release(self, deployment: str, claim: Claim) -> None:
        found = self.bucket.read(f"locks/{deployment}.json")
        if found is not None and Claim(**json.loads(found[0])).token == claim.token:
            self.bucket.delete(f"locks/{deployment}.json", found[1])  # only this claim: not one taken over meanwhile

    def held_locks(self) -> list[str]:
        names = [key.removeprefix("locks/").removesuffix(".json") for key in self.bucket.keys("locks/")]
        return [name for name in names if (claim := self._claim(name)) is not None and not self._stale(claim)]

    # Records

    def get(self, name: str) -> Record | None:
        found = self.bucket.read(f"deployments/{name}.json")
        self._seen[name] = None if found is None else found[1]
        return None if found is None else self._record(name, found[0])

    def _record(self, name: str, data: bytes) -> Record:
        try:
            stored = json.loads(data)
            return from_json(name, stored["updated_at"], stored["record"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"the record of {name!r} in {self.location} is damaged ({exc}); restore it from an earlier version of the object") from exc
        except RecordError as exc:
            raise StateError(f"{exc} (state at {self.location})") from exc

    def records(self) -> list[Record]:
        names = sorted(key.removeprefix("deployments/").removesuffix(".json") for key in self.bucket.keys("deployments/"))
        with ThreadPoolExecutor(READERS) as pool:
            found = list(pool.map(self.get, names))
        return [record for record in found if record is not None]

    def put(self, record: Record) -> None:
        """Replace the record if it is as last stored (or create it): it changes only under its
        deployment's lock, so losing here means another command took the lock over."""
        self._write_record(record, now())

    def _write_record(self, record: Record, updated_at: str) -> None:
        key = f"deployments/{record.name}.json"
        data = _dumps({"updated_at": updated_at, "record": to_json(record)})
        if record.name not in self._seen:  # never read by this command: written over what is there now
            found = self.bucket.read(key)
            self._seen[record.name] = None if found is None else found[1]
        etag = self._seen[record.name]
        written = self.bucket.create(key, data) if etag is None else self.bucket.replace(key, data, etag)
        if written:  # the ETag the write returned: another writer's, read back later, could never pass for ours
            self._seen[record.name] = written
        else:
            raise StateError(
                f"the record of {record.name!r} in {self.location} changed while this command wrote it: another command took its lock over "
                "(this one's looked dead or expired); run `llamadeploy status` to see where it stands"
            )

    def drop(self, name: str) -> None:
        self.bucket.delete(f"deployments/{name}.json", self._seen.get(name))
        self._seen[name] = None

    # Journal: one object per deployment, updated by conditional read-modify-write

    def begin(self, deployment: str, kind: OperationKind, cloud: str, holder: str) -> int:
        # Ids order the journal and are unique across it: the time in milliseconds, then 22 random bits
        # (two commands beginning in the same millisecond collide once in four million; under 2^63).
        operation = (time.time_ns() // 1_000_000) << 22 | random.getrandbits(22)
        entry = Operation(operation, deployment, kind, cloud, OperationStatus.RUNNING, holder, now(), None, [], "", {})
        self._update(deployment, lambda ops: ops.append(_entry(entry)))
        with self._ids_lock:
            self._deployment_of[operation] = deployment
        return operation

    def note_created(self, operation: int, resource: dict[str, Any]) -> None:
        def add(op: dict[str, Any]) -> None:
            if resource not in op["created"]:
                op["created"].append(resource)

        self._change(operation, add)

    def note_waiting(self, operation: int, resource: str, cloud_operation: str) -> None:
        self._change(operation, lambda op: op["waiting"].update({resource: cloud_operation}))

    def note_settled(self, deployment: str, resource: str) -> None:
        def settle(ops: list[dict[str, Any]]) -> None:
            for op in ops:
                op["waiting"].pop(resource, None)

        self._update(deployment, settle)

    def finish(self, operation: int, status: OperationStatus, detail: str = "") -> None:
        self._change(operation, lambda op: op.update(status=status.value, finished_at=now(), detail=detail))

    def history(self, deployment: str) -> list[Operation]:
        found = self.bucket.read(f"journal/{deployment}.json")
        return [] if found is None else self._operations(found[0])

    def journal(self) -> list[Operation]:
        names = [key.removeprefix("journal/").removesuffix(".json") for key in self.bucket.keys("journal/")]
        with ThreadPoolExecutor(READERS) as pool:
            return sorted((op for ops in pool.map(self.history, names) for op in ops), key=lambda op: op.id)

    def copy_in(self, records: list[Record], journal: list[Operation]) -> None:
        """Object by object (an object store has no transaction): `state migrate` reads the copy back."""
        for record in records:
            if not self.bucket.create(f"deployments/{record.name}.json", _dumps({"updated_at": record.updated_at, "record": to_json(record)})):
                raise StateError(f"the record of {record.name!r} already exists in {self.location}")
        by_deployment: dict[str, list[dict[str, Any]]] = {}
        for op in journal:
            by_deployment.setdefault(op.deployment, []).append(_entry(op))
        for deployment, ops in by_deployment.items():
            if not self.bucket.create(f"journal/{deployment}.json", _dumps({"operations": ops})):
                raise StateError(f"the journal of {deployment!r} already exists in {self.location}")

    def _operations(self, data: bytes) -> list[Operation]:
        try:
            ops = [_operation(op) for op in json.loads(data)["operations"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"a journal object in {self.location} is damaged ({exc}); restore it from an earlier version of the object") from exc
        with self._ids_lock:
            self._deployment_of.update((op.id, op.deployment) for op in ops)
        return ops

    def _change(self, operation: int, change: Callable[[dict[str, Any]], object]) -> None:
        with self._ids_lock:
            deployment = self._deployment_of[operation]

        def apply(ops: list[dict[str, Any]]) -> None:
            for op in ops:
                if op["id"] == operation:
                    change(op)

        self._update(deployment, apply)

    def _update(self, deployment: str, change: Callable[[list[dict[str, Any]]], object]) -> None:
        """Read the deployment's journal, change it, write it back only if no one wrote it meanwhile;
        else read it again and redo the change (never writing over another's)."""
        key = f"journal/{deployment}.json"
        for _ in range(WRITE_ATTEMPTS):
            found = self.bucket.read(key)
            ops = [] if found is None else json.loads(found[0])["operations"]
            change(ops)
            data = _dumps({"operations": ops})
            if self.bucket.create(key, data) if found is None else self.bucket.replace(key, data, found[1]):
                return
            time.sleep(random.uniform(0.01, 0.1))
        raise StateError(f"the journal of {deployment!r} in {self.location} kept changing under {WRITE_ATTEMPTS} writes; try again")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _entry(op: Operation) -> dict[str, Any]:
    return {**vars(op), "kind": op.kind.value, "status": op.status.value}


def _operation(entry: dict[str, Any]) -> Operation:
    return Operation(**{**entry, "kind": OperationKind(entry["kind"]), "status": OperationStatus(entry["status"])})
