"""Where llamadeploy remembers what it deployed: SQLite, one row per deployment, plus a journal.

SQLite (stdlib, WAL) needs no server and survives crashes: every change is one transaction, so
the file never holds half a record. The journal records each operation before it touches a
cloud and what it created as it goes, so the next command can see an operation a crash cut
short. A lock row per deployment, with holder and expiry, keeps two commands from changing
the same deployment at once; an expired lock (its holder died) can be taken over.

The journal also holds the cloud's own long-running operations (an id or name per resource)
while a command waits on them: a command killed mid-wait leaves them, and the next command on
the deployment waits for them rather than start a second one.

The file is created 0600 and holds resource names, never secrets. Its format version is
SQLite's `user_version`: a file written by an older release is migrated in one transaction when
opened, and a file from a newer release is refused rather than misread.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.errors import LlamadeployError
from orchestrator.lifecycle.record import LegacyRow, Record, RecordError, from_json, migrate_v1, to_json

STATE_ENV = "LLAMADEPLOY_STATE"
DEFAULT_PATH = Path(".llamadeploy") / "state.db"
LOCK_SECONDS = 3600
# The file's format: 2 added typed records (record.SCHEMA_VERSION), 3 the journal's `waiting` column.
FILE_FORMAT = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name TEXT PRIMARY KEY,
    cloud TEXT NOT NULL,
    region TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment TEXT NOT NULL,
    kind TEXT NOT NULL,
    cloud TEXT NOT NULL,
    status TEXT NOT NULL,
    holder TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    created TEXT NOT NULL DEFAULT '[]',
    detail TEXT NOT NULL DEFAULT '',
    waiting TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS locks (
    deployment TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class StateError(LlamadeployError):
    """The state file cannot be used."""


class LockedError(StateError):
    """Another command holds the deployment's lock."""


class OperationKind(StrEnum):
    UP = "up"
    DOWN = "down"
    MOVE = "move"
    ROLLBACK = "rollback"  # undoing a move or a replace a crash interrupted
    SCALE = "scale"  # replica bounds changed in place by `scale`
    UPDATE = "update"  # replica bounds changed in place by `up` of a changed stack
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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def holder_name() -> str:
    """Who holds a lock, in words a person can trace: user, host and process."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


# Schemes a team's shared state will be kept under (PostgreSQL, S3 and S3-compatible stores, Azure
# Blob Storage, Google Cloud Storage); until their backends exist, naming one is an error, never a
# local file under a folder called "s3:".
_PLANNED_SCHEMES = {"postgresql", "postgres", "s3", "az", "gs"}
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")


def state_location(value: str | os.PathLike[str] | None = None) -> Path:
    """Where the state lives, from `--state`/`$LLAMADEPLOY_STATE`: a file path, or `sqlite:///path`
    (SQLAlchemy's form: three slashes then the path, four for an absolute one). Any other URL is
    refused with what is supported, rather than taken for a file name."""
    text = os.fspath(value) if value else os.environ.get(STATE_ENV) or str(DEFAULT_PATH)
    match = _SCHEME.match(text)
    if match is None:
        return Path(text)
    scheme, rest = match["scheme"].lower(), match["rest"]
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return Path(rest[1:])
    if scheme == "sqlite":
        raise StateError(f"state URL {text!r}: write sqlite:///relative/path or sqlite:////absolute/path")
    if scheme in _PLANNED_SCHEMES:
        raise StateError(
            f"state URL {text!r}: the {scheme} state backend is not built yet; keep the state in a SQLite file "
            "(a path, or sqlite:///path) for now, and move it later with `llamadeploy state migrate --to URL`"
        )
    raise StateError(f"state URL {text!r}: unknown scheme {scheme!r}; use a file path or sqlite:///path")


class State:
    """The SQLite state store at one path."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = state_location(path)
        if self.path.is_dir():
            raise StateError(f"state path {self.path} is a directory; pass a file path such as {self.path / 'state.db'}")
        try:
            if not self.path.parent.exists():  # the directory holds only llamadeploy's files: 0700, whatever the umask
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.parent.chmod(0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._local = threading.local()
            self._connections: list[sqlite3.Connection] = []
            self._connections_lock = threading.Lock()
            self._prepare()
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"the state file {self.path} is not a llamadeploy state database ({exc}); restore it from a backup "
                "(nothing was changed in any cloud, and a deployment's resources keep their names and tags)"
            ) from exc
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state file {self.path}: {exc}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection: a SQLite connection belongs to the thread that opened it, and
        deployments brought up in parallel each work in a thread of their own."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)  # closed by `close`, from any thread
            connection.row_factory = sqlite3.Row
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def _prepare(self, attempts: int = 50) -> None:
        """Switch to WAL, create the tables and migrate an older file; a second process doing the
        same at that moment gets SQLITE_BUSY without the busy timeout applying, so retry briefly."""
        for attempt in range(attempts):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                with self._transaction() as db:
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    if version > FILE_FORMAT:
                        raise StateError(
                            f"the state file {self.path} was written by a newer llamadeploy (format {version}; this one reads {FILE_FORMAT}); upgrade llamadeploy"
                        )
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        db.execute(statement)
                    if version < FILE_FORMAT:
                        _migrate(db, self.path)
                        db.execute(f"PRAGMA user_version = {FILE_FORMAT}")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # Locks

    @contextmanager
    def lock(self, deployment: str, wait_seconds: float = 0.0) -> Iterator[str]:
        """Hold `deployment`'s lock for the block; wait up to `wait_seconds` for another holder."""
        holder, token = holder_name(), uuid.uuid4().hex
        deadline = time.monotonic() + wait_seconds
        while not self._try_lock(deployment, holder, token):
            if time.monotonic() >= deadline:
                row = self._db.execute("SELECT holder, acquired_at FROM locks WHERE deployment = ?", (deployment,)).fetchone()
                who, since = (row["holder"], row["acquired_at"]) if row else ("another command", "moments ago")
                raise LockedError(
                    f"deployment {deployment!r} is locked by {who} since {since}; wait for it to finish, "
                    f"or if that process is gone, the lock expires {LOCK_SECONDS // 60} minutes after it was taken"
                )
            time.sleep(0.2)
        try:
            yield holder
        finally:
            self._db.execute("DELETE FROM locks WHERE deployment = ? AND token = ?", (deployment, token))

    def held_locks(self) -> list[str]:
        """The deployments whose lock a live command holds (an expired or dead holder's is not held)."""
        return [row["deployment"] for row in self._db.execute("SELECT * FROM locks ORDER BY deployment") if not _stale(row)]

    def _try_lock(self, deployment: str, holder: str, token: str) -> bool:
        with self._transaction() as db:
            row = db.execute("SELECT * FROM locks WHERE deployment = ?", (deployment,)).fetchone()
            if row is not None and not _stale(row):
                return False
            db.execute(
                "INSERT OR REPLACE INTO locks (deployment, holder, token, host, pid, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (deployment, holder, token, socket.gethostname(), os.getpid(), now(), time.time() + LOCK_SECONDS),
            )
            return True

    # Deployment records

    def get(self, name: str) -> Record | None:
        row = self._db.execute("SELECT * FROM deployments WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._record(row)

    def records(self) -> list[Record]:
        return [self._record(row) for row in self._db.execute("SELECT * FROM deployments ORDER BY name")]

    def put(self, record: Record) -> None:
        """Store the record as it is now; the row's columns repeat what `status` lists without reading JSON."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO deployments (name, cloud, region, spec_hash, record, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.name, record.cloud, record.region, record.spec_hash, json.dumps(to_json(record)), record.phase.value, now()),
            )

    def _record(self, row: sqlite3.Row) -> Record:
        """A stored row as a Record; a row of the first format (an older release may still write one
        into a migrated file) is migrated as it is read."""
        data = _json_of(row, self.path)
        try:
            if "version" not in data:
                data = _migrated(self._db, row, data, self.path)
            return from_json(row["name"], row["updated_at"], data)
        except RecordError as exc:
            raise StateError(f"{exc} (state file {self.path})") from exc

    def drop(self, name: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM deployments WHERE name = ?", (name,))

    # Journal

    def begin(self, deployment: str, kind: OperationKind, cloud: str, holder: str) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO operations (deployment, kind, cloud, status, holder, started_at) VALUES (?, ?, ?, ?, ?, ?)",
                (deployment, kind, cloud, OperationStatus.RUNNING, holder, now()),
            )
            return int(cursor.lastrowid or 0)

    def note_created(self, operation: int, resource: dict[str, Any]) -> None:
        """Add a resource to what the operation created, as soon as the cloud has it."""
        with self._transaction() as db:
            row = db.execute("SELECT created FROM operations WHERE id = ?", (operation,)).fetchone()
            created = json.loads(row["created"])
            if resource not in created:
                created.append(resource)
            db.execute("UPDATE operations SET created = ? WHERE id = ?", (json.dumps(created), operation))

    def note_waiting(self, operation: int, resource: str, cloud_operation: str) -> None:
        """The cloud's long-running `cloud_operation` on `resource` is under way; kept until settled."""
        with self._transaction() as db:
            row = db.execute("SELECT waiting FROM operations WHERE id = ?", (operation,)).fetchone()
            waiting = {**json.loads(row["waiting"]), resource: cloud_operation}
            db.execute("UPDATE operations SET waiting = ? WHERE id = ?", (json.dumps(waiting), operation))

    def note_settled(self, deployment: str, resource: str) -> None:
        """The cloud's operation on `resource` ended: no entry of the deployment's journal waits on it now."""
        with self._transaction() as db:
            for row in db.execute("SELECT id, waiting FROM operations WHERE deployment = ? AND waiting != '{}'", (deployment,)).fetchall():
                waiting = json.loads(row["waiting"])
                if waiting.pop(resource, None) is not None:
                    db.execute("UPDATE operations SET waiting = ? WHERE id = ?", (json.dumps(waiting), row["id"]))

    def waiting(self, deployment: str) -> dict[str, str]:
        """The cloud operations on `deployment`'s resources that commands started and never saw end."""
        rows = self._db.execute("SELECT waiting FROM operations WHERE deployment = ? AND waiting != '{}' ORDER BY id", (deployment,))
        return {resource: operation for row in rows for resource, operation in json.loads(row["waiting"]).items()}

    def finish(self, operation: int, status: OperationStatus, detail: str = "") -> None:
        with self._transaction() as db:
            db.execute("UPDATE operations SET status = ?, finished_at = ?, detail = ? WHERE id = ?", (status, now(), detail, operation))

    def interrupted(self, deployment: str) -> list[Operation]:
        """Operations on `deployment` still marked running: their command died before finishing."""
        rows = self._db.execute("SELECT * FROM operations WHERE deployment = ? AND status = ? ORDER BY id", (deployment, OperationStatus.RUNNING))
        return [_operation(row) for row in rows]

    def snapshot(self) -> tuple[list[Record], list[Operation]]:
        """Every record and journal entry, read in one transaction (what `state migrate` copies)."""
        with self._transaction():
            return self.records(), self.journal()

    def journal(self) -> list[Operation]:
        """Every journal entry, oldest first (what `state migrate` copies)."""
        return [_operation(row) for row in self._db.execute("SELECT * FROM operations ORDER BY id")]

    def copy_in(self, records: list[Record], journal: list[Operation]) -> None:
        """Write records and journal entries (ids and waiting operations included) read from another
        store, in one transaction: a copy is either whole or not there."""
        with self._transaction() as db:
            for record in records:
                db.execute(
                    "INSERT INTO deployments (name, cloud, region, spec_hash, record, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (record.name, record.cloud, record.region, record.spec_hash, json.dumps(to_json(record)), record.phase.value, record.updated_at),
                )
            for op in journal:
                db.execute(
                    "INSERT INTO operations (id, deployment, kind, cloud, status, holder, started_at, finished_at, created, detail, waiting) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        op.id,
                        op.deployment,
                        op.kind,
                        op.cloud,
                        op.status,
                        op.holder,
                        op.started_at,
                        op.finished_at,
                        json.dumps(op.created),
                        op.detail,
                        json.dumps(op.waiting),
                    ),
                )

    def history(self, deployment: str) -> list[Operation]:
        rows = self._db.execute("SELECT * FROM operations WHERE deployment = ? ORDER BY id", (deployment,))
        return [_operation(row) for row in rows]


def _stale(lock: sqlite3.Row) -> bool:
    """A lock past its expiry, or held by a process of this host that no longer runs."""
    if lock["expires_at"] <= time.time():
        return True
    if lock["host"] != socket.gethostname():
        return False
    try:
        os.kill(lock["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring an older file to the current format inside the opening transaction: the journal gains
    its `waiting` column, and each record of the first format is rewritten as the current one."""
    columns = {row["name"] for row in db.execute("PRAGMA table_info(operations)")}
    if "waiting" not in columns:
        db.execute("ALTER TABLE operations ADD COLUMN waiting TEXT NOT NULL DEFAULT '{}'")
    for row in db.execute("SELECT * FROM deployments").fetchall():
        data = _json_of(row, path)
        if "version" not in data:
            migrated = _migrated(db, row, data, path)
            db.execute("UPDATE deployments SET record = ?, status = ? WHERE name = ?", (json.dumps(migrated), migrated["phase"], row["name"]))


def _migrated(db: sqlite3.Connection, row: sqlite3.Row, data: dict[str, Any], path: Path) -> dict[str, Any]:
    """One first-format record as the current format. The first format knew a move cut short
    before its switch only from the journal, so that is read too."""
    move = db.execute(
        "SELECT cloud FROM operations WHERE deployment = ? AND kind = ? AND status = ? ORDER BY id DESC LIMIT 1",
        (row["name"], OperationKind.MOVE, OperationStatus.RUNNING),
    ).fetchone()
    legacy = LegacyRow(row["name"], row["cloud"], row["region"], row["spec_hash"], row["status"], data, move["cloud"] if move else None)
    try:
        return migrate_v1(legacy)
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(
            f"cannot migrate the record of {row['name']!r} in {path} from the first format ({type(exc).__name__}: {exc}); it is kept unchanged"
        ) from exc


def _json_of(row: sqlite3.Row, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(row["record"])
    except ValueError as exc:
        raise StateError(f"the record of {row['name']!r} in {path} is not valid JSON ({exc}); restore the file from a backup") from exc
    if not isinstance(data, dict):
        raise StateError(f"the record of {row['name']!r} in {path} is not a JSON object; restore the file from a backup")
    return data


def _operation(row: sqlite3.Row) -> Operation:
    return Operation(
        row["id"],
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
