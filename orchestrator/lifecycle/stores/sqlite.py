"""The state in a SQLite file on this machine: the default, needing no server.

SQLite (stdlib, WAL) survives crashes: every change is one transaction, so the file never holds
half a record, and `BEGIN IMMEDIATE` makes writers take turns. The file is created 0600 in a
0700 directory. Its format version is SQLite's `user_version`: a file written by an older
release is migrated in one transaction when opened, and one from a newer release is refused
rather than misread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.lifecycle.record import LegacyRow, Record, RecordError, from_json, migrate_v1
from orchestrator.lifecycle.stores.base import Location, OperationKind, OperationStatus, StateError
from orchestrator.lifecycle.stores.sql import Row, SqlStore, statements

# The file's format: 2 added typed records (record.SCHEMA_VERSION), 3 the journal's `waiting`
# column, 4 the locks' `backend` column (shared with PostgreSQL's schema).
FILE_FORMAT = 4

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
    expires_at REAL NOT NULL,
    backend INTEGER NOT NULL DEFAULT 0
);
"""


class SqliteStore(SqlStore):
    """The SQLite state store at one path."""

    def __init__(self, location: Location) -> None:
        super().__init__(location)
        assert location.path is not None
        self.path = location.path
        if self.path.is_dir():
            raise StateError(f"state path {self.path} is a directory; pass a file path such as {self.path / 'state.db'}")
        try:
            if not self.path.parent.exists():  # the directory holds only llamadeploy's files: 0700, whatever the umask
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.parent.chmod(0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._prepare()
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"the state file {self.path} is not a llamadeploy state database ({exc}); restore it from a backup "
                "(nothing was changed in any cloud, and a deployment's resources keep their names and tags)"
            ) from exc
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state file {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)  # closed by `close`, from any thread
        connection.row_factory = sqlite3.Row
        return connection

    @contextmanager
    def _transaction(self, consistent: bool = False) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")  # writers take turns: every transaction is consistent
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

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
                    for statement in statements(_SCHEMA):
                        db.execute(statement)
                    if version < FILE_FORMAT:
                        self._migrate(db)
                        db.execute(f"PRAGMA user_version = {FILE_FORMAT}")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1)

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring an older file to the current format inside the opening transaction: the journal and
        the locks gain their later columns, and each record of the first format is rewritten as the
        current one."""
        for table, column, declaration in (("operations", "waiting", "TEXT NOT NULL DEFAULT '{}'"), ("locks", "backend", "INTEGER NOT NULL DEFAULT 0")):
            if column not in {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        for row in db.execute("SELECT * FROM deployments").fetchall():
            data = self._json_of(row)
            if "version" not in data:
                migrated = self._migrated(db, row, data)
                db.execute("UPDATE deployments SET record = ?, status = ? WHERE name = ?", (json.dumps(migrated), migrated["phase"], row["name"]))

    def _record_of(self, row: Row) -> Record:
        """A stored row as a Record; a row of the first format (an older release may still write one
        into a migrated file) is migrated as it is read."""
        data = self._json_of(row)
        try:
            if "version" not in data:
                data = self._migrated(self._db, row, data)
            return from_json(row["name"], row["updated_at"], data)
        except RecordError as exc:
            raise StateError(f"{exc} (state file {self.path})") from exc

    def _migrated(self, db: Any, row: Row, data: dict[str, Any]) -> dict[str, Any]:
        """One first-format record as the current format. The first format knew a move cut short
        before its switch only from the journal, so that is read too."""
        move = db.execute(
            "SELECT cloud FROM operations WHERE deployment = ? AND kind = ? AND status = ? ORDER BY id DESC LIMIT 1",
            (row["name"], OperationKind.MOVE.value, OperationStatus.RUNNING.value),
        ).fetchone()
        legacy = LegacyRow(row["name"], row["cloud"], row["region"], row["spec_hash"], row["status"], data, move["cloud"] if move else None)
        try:
            return migrate_v1(legacy)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(
                f"cannot migrate the record of {row['name']!r} in {self.path} from the first format ({type(exc).__name__}: {exc}); it is kept unchanged"
            ) from exc
