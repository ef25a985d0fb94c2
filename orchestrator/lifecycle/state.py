"""Where llamadeploy remembers what it deployed: one record per deployment, a journal, and locks.

Every command starts from the record (`status`, `down`, `move --resume`), and the journal records
each operation before it touches a cloud and what it created as it goes, so the next command can
see an operation a crash cut short. A lock per deployment, with holder, host, pid and expiry,
keeps two commands from changing the same deployment at once; a lock whose holder died or whose
time ran out is taken over. The journal also holds the cloud's own long-running operations while
a command waits on them, so the next command waits for them rather than start a second one.

The store is chosen by `--state URL` / `$LLAMADEPLOY_STATE` and loaded lazily (no driver is
imported unless its scheme is used):

- a path or `sqlite:///path`: a SQLite file on this machine (the default, `.llamadeploy/state.db`);
- `postgresql://user@host/db`: a PostgreSQL database a team shares (psycopg 3);
- `s3://bucket/prefix`: S3, or any S3-compatible store through `?endpoint_url=` (boto3);
- `az://container/prefix`: Azure Blob Storage (azure-storage-blob).

Each backend is in `orchestrator/lifecycle/stores/`; they hold resource names, never secrets.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from orchestrator.lifecycle.stores.base import DEFAULT_PATH as DEFAULT_PATH
from orchestrator.lifecycle.stores.base import LOCK_SECONDS as LOCK_SECONDS
from orchestrator.lifecycle.stores.base import STATE_ENV as STATE_ENV
from orchestrator.lifecycle.stores.base import Claim as Claim
from orchestrator.lifecycle.stores.base import Location as Location
from orchestrator.lifecycle.stores.base import LockedError as LockedError
from orchestrator.lifecycle.stores.base import Operation as Operation
from orchestrator.lifecycle.stores.base import OperationKind as OperationKind
from orchestrator.lifecycle.stores.base import OperationStatus as OperationStatus
from orchestrator.lifecycle.stores.base import StateError as StateError
from orchestrator.lifecycle.stores.base import StateStore as StateStore
from orchestrator.lifecycle.stores.base import holder_name as holder_name
from orchestrator.lifecycle.stores.base import now as now

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "s3": "s3", "az": "az"}


def _redacted(text: str) -> str:
    """A URL as messages show it: a password written into it replaced by ***."""
    parts = urlsplit(text)
    if not parts.password or parts.password.startswith("env:"):
        return text
    return text.replace(f":{parts.password}@", ":***@", 1)


def state_location(value: str | os.PathLike[str] | None = None) -> Location:
    """Where the state lives, from `--state`/`$LLAMADEPLOY_STATE`: a file path, `sqlite:///path`
    (SQLAlchemy's form: three slashes then the path, four for an absolute one), `postgresql://`,
    `s3://` or `az://`. Any other URL is refused with what is supported, never taken for a file name."""
    text = os.fspath(value) if value else os.environ.get(STATE_ENV) or str(DEFAULT_PATH)
    match = _SCHEME.match(text)
    if match is None:
        return Location("sqlite", text, path=Path(text))
    scheme, rest = _SCHEMES.get(match["scheme"].lower()), match["rest"]
    if scheme is None:
        raise StateError(
            f"state URL {_redacted(text)!r}: unknown scheme {match['scheme']!r}; use a file path, sqlite:///path, postgresql://, s3://bucket/prefix or az://container/prefix"
        )
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) == 1:
            raise StateError(f"state URL {text!r}: write sqlite:///relative/path or sqlite:////absolute/path")
        return Location("sqlite", text, path=Path(rest[1:]))
    parts = urlsplit(text)
    options = dict(parse_qsl(parts.query))
    if scheme == "postgresql":
        from orchestrator.lifecycle.stores.postgres import location as postgres_location

        return postgres_location(text, parts, options)
    if not parts.hostname:
        raise StateError(f"state URL {text!r}: name the {'bucket' if scheme == 's3' else 'container'}, as {scheme}://NAME/prefix")
    return Location(scheme, text, url=text, bucket=parts.netloc, prefix=parts.path.strip("/"), options=options)


def open_state(value: str | os.PathLike[str] | Location | None = None) -> StateStore:
    """The state store `value` (a path, a URL, or `$LLAMADEPLOY_STATE`) names, its driver imported now."""
    location = value if isinstance(value, Location) else state_location(value)
    if location.scheme == "sqlite":
        from orchestrator.lifecycle.stores.sqlite import SqliteStore

        return SqliteStore(location)
    if location.scheme == "postgresql":
        from orchestrator.lifecycle.stores.postgres import PostgresStore

        return PostgresStore(location)
    if location.scheme == "s3":
        from orchestrator.lifecycle.stores.s3 import s3_store

        return s3_store(location)
    from orchestrator.lifecycle.stores.azure_blob import azure_blob_store

    return azure_blob_store(location)
