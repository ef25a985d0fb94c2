"""The state in SQL tables, as SQLite and PostgreSQL both keep it: one statement set, two drivers.

A record is a row whose `record` column holds its JSON (the other columns repeat what a listing
needs without reading it); the journal is a row per operation; a lock is a row per deployment.
Every change is one transaction, so a record is never half written. The statements are written
once, in the SQL both engines speak (`ON CONFLICT`, `RETURNING`, `?` placeholders that the
PostgreSQL driver's are put in for); a subclass says how to connect, how a transaction begins,
how a row is locked for update, and how its schema is created and migrated.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

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

Row = Mapping[str, Any]


class SqlStore(StateStore):
    """The statements; subclasses supply the connection and the dialect's few differences."""

    for_update = ""  # how a SELECT locks the rows it reads until the transaction ends

    def __init__(self, location: Location) -> None:
        super().__init__(location)
        self._local = threading.local()
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()

    # What a dialect supplies

    @abstractmethod
    def _connect(self) -> Any:
        """A new connection (autocommit: transactions are explicit), rows readable by column name."""

    @abstractmethod
    def _transaction(self, consistent: bool = False) -> AbstractContextManager[Any]:
        """A block run as one transaction on this thread's connection, which it yields; `consistent`:
        every read in it sees the same moment (what a copy of the whole store needs)."""

    def _prepare_sql(self, statement: str) -> str:
        return statement

    def _record_of(self, row: Row) -> Record:
        """A stored row as a Record."""
        try:
            return from_json(row["name"], row["updated_at"], self._json_of(row))
        except RecordError as exc:
            raise StateError(f"{exc} (state at {self.location})") from exc

    def _json_of(self, row: Row) -> dict[str, Any]:
        try:
            data = json.loads(row["record"])
        except ValueError as exc:
            raise StateError(f"the record of {row['name']!r} in {self.location} is not valid JSON ({exc}); restore it from a backup") from exc
        if not isinstance(data, dict):
            raise StateError(f"the record of {row['name']!r} in {self.location} is not a JSON object; restore it from a backup")
        return data

    # Plumbing

    @property
    def _db(self) -> Any:
        """This thread's connection: deployments brought up in parallel each work in a thread of
        their own, and neither driver lets threads share a connection mid-transaction."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def _run(self, db: Any, statement: str, parameters: tuple[Any, ...] = ()) -> Any:
        return db.execute(self._prepare_sql(statement), parameters)

    def _rows(self, statement: str, parameters: tuple[Any, ...] = ()) -> list[Row]:
        return list(self._run(self._db, statement, parameters).fetchall())

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    # Locks

    def _take(self, deployment: str, claim: Claim) -> bool:
        insert = "INSERT INTO locks (deployment, holder, token, host, pid, acquired_at, expires_at, backend) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        with self._transaction() as db:
            values = (deployment, claim.holder, claim.token, claim.host, claim.pid, claim.acquired_at, claim.expires_at, self._backend(db))
            if self._run(db, f"{insert} ON CONFLICT (deployment) DO NOTHING", values).rowcount == 1:
                return True
            row = self._run(db, f"SELECT * FROM locks WHERE deployment = ?{self.for_update}", (deployment,)).fetchone()
            if row is None or not self._stale_row(row):  # gone meanwhile (another taker may be inserting): try again
                return False
            # Only the stale claim read here is replaced: a taker that got in first has replaced it already.
            if self._run(db, "DELETE FROM locks WHERE deployment = ? AND token = ?", (deployment, row["token"])).rowcount != 1:
                return False
            self._run(db, insert, values)
            return True

    def _backend(self, db: Any) -> int:
        """The server process serving this connection, whose end frees the lock (0: none)."""
        return 0

    def _stale_row(self, row: Row) -> bool:
        return self._stale(_claim_of(row))

    def _claim(self, deployment: str) -> Claim | None:
        rows = self._rows("SELECT * FROM locks WHERE deployment = ?", (deployment,))
        return _claim_of(rows[0]) if rows else None

    def _release(self, deployment: str, claim: Claim) -> None:
        with self._transaction() as db:
            self._run(db, "DELETE FROM locks WHERE deployment = ? AND token = ?", (deployment, claim.token))

    def held_locks(self) -> list[str]:
        return [row["deployment"] for row in self._rows("SELECT * FROM locks ORDER BY deployment") if not self._stale_row(row)]

    # Records

    def get(self, name: str) -> Record | None:
        rows = self._rows("SELECT * FROM deployments WHERE name = ?", (name,))
        return self._record_of(rows[0]) if rows else None

    def records(self) -> list[Record]:
        return [self._record_of(row) for row in self._rows("SELECT * FROM deployments ORDER BY name")]

    def put(self, record: Record) -> None:
        with self._transaction() as db:
            self._write(db, record, now())

    def _write(self, db: Any, record: Record, updated_at: str) -> None:
        self._run(
            db,
            "INSERT INTO deployments (name, cloud, region, spec_hash, record, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET cloud = excluded.cloud, region = excluded.region, spec_hash = excluded.spec_hash, "
            "record = excluded.record, status = excluded.status, updated_at = excluded.updated_at",
            (record.name, record.cloud, record.region, record.spec_hash, json.dumps(to_json(record)), record.phase.value, updated_at),
        )

    def drop(self, name: str) -> None:
        with self._transaction() as db:
            self._run(db, "DELETE FROM deployments WHERE name = ?", (name,))

    # Journal

    def begin(self, deployment: str, kind: OperationKind, cloud: str, holder: str) -> int:
        with self._transaction() as db:
            row = self._run(
                db,
                "INSERT INTO operations (deployment, kind, cloud, status, holder, started_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (deployment, kind.value, cloud, OperationStatus.RUNNING.value, holder, now()),
            ).fetchone()
            return int(row["id"])

    def note_created(self, operation: int, resource: dict[str, Any]) -> None:
        with self._transaction() as db:
            row = self._run(db, f"SELECT created FROM operations WHERE id = ?{self.for_update}", (operation,)).fetchone()
            created = json.loads(row["created"])
            if resource not in created:
                created.append(resource)
            self._run(db, "UPDATE operations SET created = ? WHERE id = ?", (json.dumps(created), operation))

    def note_waiting(self, operation: int, resource: str, cloud_operation: str) -> None:
        with self._transaction() as db:
            row = self._run(db, f"SELECT waiting FROM operations WHERE id = ?{self.for_update}", (operation,)).fetchone()
            waiting = {**json.loads(row["waiting"]), resource: cloud_operation}
            self._run(db, "UPDATE operations SET waiting = ? WHERE id = ?", (json.dumps(waiting), operation))

    def note_settled(self, deployment: str, resource: str) -> None:
        with self._transaction() as db:
            rows = self._run(db, f"SELECT id, waiting FROM operations WHERE deployment = ? AND waiting != '{{}}'{self.for_update}", (deployment,)).fetchall()
            for row in rows:
                waiting = json.loads(row["waiting"])
                if waiting.pop(resource, None) is not None:
                    self._run(db, "UPDATE operations SET waiting = ? WHERE id = ?", (json.dumps(waiting), row["id"]))

    def finish(self, operation: int, status: OperationStatus, detail: str = "") -> None:
        with self._transaction() as db:
            self._run(db, "UPDATE operations SET status = ?, finished_at = ?, detail = ? WHERE id = ?", (status.value, now(), detail, operation))

    def history(self, deployment: str) -> list[Operation]:
        return [_operation(row) for row in self._rows("SELECT * FROM operations WHERE deployment = ? ORDER BY id", (deployment,))]

    def journal(self) -> list[Operation]:
        return [_operation(row) for row in self._rows("SELECT * FROM operations ORDER BY id")]

    def snapshot(self) -> tuple[list[Record], list[Operation]]:
        with self._transaction(consistent=True):
            return self.records(), self.journal()

    def copy_in(self, records: list[Record], journal: list[Operation]) -> None:
        """In one transaction: a copy is either whole or not there."""
        with self._transaction() as db:
            for record in records:
                self._write(db, record, record.updated_at)
            for op in journal:
                self._run(
                    db,
                    "INSERT INTO operations (id, deployment, kind, cloud, status, holder, started_at, finished_at, created, detail, waiting) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        op.id,
                        op.deployment,
                        op.kind.value,
                        op.cloud,
                        op.status.value,
                        op.holder,
                        op.started_at,
                        op.finished_at,
                        json.dumps(op.created),
                        op.detail,
                        json.dumps(op.waiting),
                    ),
                )
            self._copied_ids(db)

    def _copied_ids(self, db: Any) -> None:
        """After ids were written explicitly: the next operation's id follows the highest (a PostgreSQL sequence must be told)."""


def _claim_of(row: Row) -> Claim:
    return Claim(row["holder"], row["token"], row["host"], int(row["pid"]), row["acquired_at"], float(row["expires_at"]))


def _operation(row: Row) -> Operation:
    return Operation(
        int(row["id"]),
        row["deployment"],
        OperationKind(row["kind"]),
        row["cloud"],
        OperationStatus(row["status"]),
        row["holder"],
        row["started_at"],
        row["finished_at"],
        json.loads(row["created"]),
        row["detail"],
        json.loads(row["waiting"]),
    )


def statements(script: str) -> Iterator[str]:
    """The statements of a DDL script."""
    return (part for part in script.split(";") if part.strip())
