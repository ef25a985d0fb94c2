"""The servers the shared state backends are tested against, on loopback: PostgreSQL from the
machine's packages, Azurite (Azure Storage's emulator) from the npm registry; S3 is moto's,
already running for the AWS stand-in.

`.ci/run` starts PostgreSQL and Azurite once and hands their addresses to the tests through the
environment (`LLAMADEPLOY_TEST_POSTGRES`, `LLAMADEPLOY_TEST_AZURITE`); without those, the tests
start their own here. A server that cannot start fails its tests with why, never skips them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POSTGRES_ENV, AZURITE_ENV = "LLAMADEPLOY_TEST_POSTGRES", "LLAMADEPLOY_TEST_AZURITE"
PASSWORD_ENV = "LLAMADEPLOY_TEST_PG_PASSWORD"  # the tests' URLs name it: postgresql://llamadeploy:env:...@
POSTGRES_USER = "llamadeploy"
# Azurite's well-known development account (learn.microsoft.com/azure/storage/common/storage-use-azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_VERSION = "3.35.0"
AZURITE_HOME = Path(os.environ.get("LLAMADEPLOY_AZURITE_HOME", Path.home() / ".cache" / "llamadeploy-tests" / "azurite"))


class ServiceFailed(Exception):
    """A server the tests need could not be started; the message says why and how to fix it."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, what: str, process: subprocess.Popen[bytes] | None, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceFailed(f"{what} exited with {process.returncode}: {log.read_text()[-2000:] if log.exists() else ''}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise ServiceFailed(f"{what} did not listen on 127.0.0.1:{port} within {seconds:.0f} s: {log.read_text()[-2000:] if log.exists() else ''}")


@dataclass
class Postgres:
    """A PostgreSQL server: `url(database)` reaches a database on it, its password in PASSWORD_ENV."""

    host: str
    port: int
    password: str
    root: Path | None = None  # a server the tests started: its directory (data, socket, log)
    bindir: Path | None = None
    as_user: tuple[str, ...] = ()

    @classmethod
    def from_url(cls, url: str) -> Postgres:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432, parts.password or "")

    @property
    def admin_url(self) -> str:
        return f"postgresql://{POSTGRES_USER}:{self.password}@{self.host}:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{POSTGRES_USER}:env:{PASSWORD_ENV}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database for one test."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host=self.host, port=self.port, user=POSTGRES_USER, password=self.password, dbname="postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return name

    def stop(self) -> None:
        """Stop a server the tests started (one they were given is someone else's)."""
        if self.root is None or self.bindir is None:
            return
        subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb into a temporary directory and `pg_ctl start` on a free loopback port, as the
    `postgres` user when running as root (PostgreSQL refuses to run as root)."""
    found = os.environ.get(POSTGRES_ENV)
    if found:
        return Postgres.from_url(found)
    initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    if initdb is None:
        raise ServiceFailed("no PostgreSQL server on this machine (initdb not found): install it (apt-get install postgresql) or set LLAMADEPLOY_TEST_POSTGRES")
    bindir = Path(initdb).resolve().parent
    root = Path(tempfile.mkdtemp(prefix="llamadeploy-pg-"))
    password = uuid.uuid4().hex
    (root / "password").write_text(password)
    as_user: tuple[str, ...] = ()
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise ServiceFailed("running as root, PostgreSQL needs the `postgres` user to run as (apt-get install postgresql makes it)") from exc
        shutil.chown(root, "postgres")
        (root / "password").chmod(0o644)
        as_user = ("runuser", "-u", "postgres", "--")
    server = Postgres("127.0.0.1", free_port(), password, root, bindir, as_user)
    try:
        subprocess.run(
            [
                *as_user,
                str(bindir / "initdb"),
                "-D",
                str(root / "data"),
                "-U",
                POSTGRES_USER,
                "-A",
                "scram-sha-256",
                f"--pwfile={root / 'password'}",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"), "-o", options, "-w", "start"],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        server.stop()
        raise ServiceFailed(f"PostgreSQL did not start: {exc} {detail.decode(errors='replace')[-1000:]}") from exc
    return server


@dataclass
class Azurite:
    port: int
    pid: int | None = None  # a server the tests started
    log_dir: str | None = None  # its log's folder, removed when it stops

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};"
        )

    def stop(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
        if self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)


def install_azurite() -> Path:
    """Azurite's blob server, installed from the npm registry once into AZURITE_HOME."""
    binary = AZURITE_HOME / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    if shutil.which("npm") is None:
        raise ServiceFailed("Azurite needs Node.js and npm (apt-get install nodejs npm), or set LLAMADEPLOY_TEST_AZURITE to a running one's port")
    AZURITE_HOME.mkdir(parents=True, exist_ok=True)
    with (AZURITE_HOME / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test workers starting at once install it once
        if binary.exists():
            return binary
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", f"azurite@{AZURITE_VERSION}"],
            cwd=AZURITE_HOME,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if result.returncode != 0 or not binary.exists():
        raise ServiceFailed(f"npm install azurite@{AZURITE_VERSION} failed: {result.stderr[-1500:]}")
    return binary


def start_azurite() -> Azurite:
    """Azurite's blob service on a free loopback port, in memory, without telemetry."""
    found = os.environ.get(AZURITE_ENV)
    if found:
        return Azurite(int(found))
    binary, port = install_azurite(), free_port()
    log = Path(tempfile.mkdtemp(prefix="llamadeploy-azurite-")) / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(binary),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    _wait_for_port(port, "Azurite", process, log)
    return Azurite(port, process.pid, str(log.parent))


def main() -> None:
    """`python -m tests.services start|stop`: what `.ci/run` starts once for the whole test run.
    `start` prints the environment the tests read; `stop` stops what `start` started."""
    record = Path(os.environ.get("LLAMADEPLOY_SERVICES_FILE", ".ci/services.json"))
    if sys.argv[1:] == ["stop"]:
        if record.exists():
            started = json.loads(record.read_text())
            if "postgres" in started:
                Postgres(**{**started["postgres"], "root": Path(started["postgres"]["root"]), "bindir": Path(started["postgres"]["bindir"])}).stop()
            if "azurite" in started:
                Azurite(**started["azurite"]).stop()
            record.unlink()
        return
    started: dict[str, Any] = {}
    for name, start in (("postgres", start_postgres), ("azurite", start_azurite)):
        try:
            server = start()
        except ServiceFailed as exc:
            print(f"# {name} did not start: {exc}", file=sys.stderr)
            continue
        started[name] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(server).items()}
        if isinstance(server, Postgres):
            print(f"export {POSTGRES_ENV}={shlex.quote(server.admin_url)}")
        else:
            print(f"export {AZURITE_ENV}={server.port}")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(started))


if __name__ == "__main__":
    main()
