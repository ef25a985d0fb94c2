"""One state suite over every backend: SQLite, PostgreSQL, S3 (moto) and Azure Blob Storage (Azurite).

Each test runs against a fresh store of each kind, reached by the URL a user would write, with
credentials from the environment as a user's would be. The clouds are the stand-ins; every
assertion is on what the store holds, what the cloud received, or what the user saw.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.lifecycle.record import Phase, Placed, PlanSnapshot, Record
from orchestrator.lifecycle.state import LockedError, OperationKind, OperationStatus, StateError, holder_name, open_state
from providers.base import Deployed, Resource
from tests import services
from tests.clouds import AwsCloud, CliProcess, FakeCloud, cli_run
from tests.conftest import _harness
from tests.emulators.aws import CREDENTIALS

REPO = Path(__file__).parent.parent
BACKENDS = ["sqlite", "postgresql", "s3", "az"]
BUCKET, CONTAINER = "llamadeploy-state", "state"
ENDPOINT = Resource("AWS::SageMaker::Endpoint", "chat")


@pytest.fixture
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AwsCloud:
    harness = _harness("aws", request, monkeypatch, tmp_path)
    assert isinstance(harness, AwsCloud)
    return harness


def fresh_store(kind: str, request: pytest.FixtureRequest, aws: AwsCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty store of `kind`: its URL, its credentials set in the environment as a user's would be."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    if kind == "postgresql":
        server: services.Postgres = request.getfixturevalue("postgres_server")
        monkeypatch.setenv(services.PASSWORD_ENV, server.password)
        return server.url(server.new_database())
    if kind == "s3":
        for key, value in CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        s3 = aws.stand_in.client("s3")
        if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=BUCKET)
            s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        return f"s3://{BUCKET}/{uuid.uuid4().hex}?endpoint_url=http://{aws.stand_in.moto_host}:{aws.stand_in.moto_port}&region=us-east-1"
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    azurite: services.Azurite = request.getfixturevalue("azurite_server")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    with contextlib.suppress(ResourceExistsError):  # made by an earlier test of this run
        BlobServiceClient.from_connection_string(azurite.connection_string).create_container(CONTAINER)
    return f"az://{CONTAINER}/{uuid.uuid4().hex}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, aws: AwsCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh store of each kind, set as LLAMADEPLOY_STATE."""
    url = fresh_store(request.param, request, aws, tmp_path, monkeypatch)
    monkeypatch.setenv("LLAMADEPLOY_STATE", url)
    return url


def _record(name: str = "chat", detail: str = "") -> Record:
    deployed = Deployed(name, "aws", "us-east-1", (ENDPOINT,), f"https://runtime.example/{name}{detail}", {})
    snapshot = PlanSnapshot("meta-llama/Llama-3.2-1B-Instruct", "ml.g6.xlarge", 1, 3, 0.8, False, (ENDPOINT,))
    return Record(name, Phase.SERVING, {"name": name, "model": "llama3.2-1b-instruct"}, Placed("aws", "us-east-1", "abc", snapshot, {}, deployed))


def test_records_journal_and_locks_round_trip(backend: str) -> None:
    state = open_state(backend)
    try:
        assert state.records() == [] and state.get("chat") is None
        state.put(_record())
        state.put(_record("other"))
        state.put(replace(_record(), phase=Phase.DELETING))
        assert [(r.name, r.phase) for r in state.records()] == [("chat", Phase.DELETING), ("other", Phase.SERVING)]
        operation = state.begin("chat", OperationKind.UP, "aws", holder_name())
        state.note_created(operation, {"type": ENDPOINT.type, "name": "chat"})
        state.note_waiting(operation, "endpoint chat", "operations/7")
        assert state.waiting("chat") == {"endpoint chat": "operations/7"} and [op.id for op in state.interrupted("chat")] == [operation]
        state.note_settled("chat", "endpoint chat")
        state.finish(operation, OperationStatus.SUCCEEDED, "done")
        (entry,) = state.history("chat")
        assert (entry.status, entry.created, entry.waiting, entry.detail) == (OperationStatus.SUCCEEDED, [{"type": ENDPOINT.type, "name": "chat"}], {}, "done")
        assert state.journal() == [entry] and state.waiting("chat") == {} and state.interrupted("chat") == []
        with state.lock("chat") as holder:
            assert holder == holder_name() and state.held_locks() == ["chat"]
            second = open_state(backend)
            with pytest.raises(LockedError, match=r"deployment 'chat' is locked by .* since \d{4}-"), second.lock("chat"):
                pass
            second.close()
        assert state.held_locks() == []
        state.drop("other")
        assert [r.name for r in state.records()] == ["chat"]
        # Versioning is recommended and detected: the tests' bucket has it on, Azurite has none.
        assert [note for note in state.notes() if "versioning is off" in note] == (
            [f"versioning is off on container {CONTAINER} of storage account devstoreaccount1: turn it on, so an overwritten or deleted state can be recovered"]
            if backend.startswith("az://")
            else []
        )
    finally:
        state.close()


def test_journal_writers_racing_never_write_over_each_other(backend: str) -> None:
    """Two commands noting resources on one journal at once: on an object store each conditional
    write that loses reads again and redoes its change, so none is lost."""
    first = open_state(backend)
    operation = first.begin("chat", OperationKind.UP, "aws", holder_name())
    stores = [first, open_state(backend)]
    stores[1].history("chat")  # the second learns the operation's deployment, as a command reading the journal does

    def note(store, side: str) -> None:
        for index in range(8):
            store.note_created(operation, {"type": side, "name": str(index)})

    threads = [threading.Thread(target=note, args=(store, side)) for store, side in zip(stores, "ab", strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    (entry,) = first.history("chat")
    assert sorted((r["type"], r["name"]) for r in entry.created) == sorted((side, str(i)) for side in "ab" for i in range(8))
    for store in stores:
        store.close()


def _child(backend: str, body: str) -> subprocess.Popen[str]:
    """A Python process of its own working on the store (it inherits the credentials' environment)."""
    code = f"from orchestrator.lifecycle.state import open_state\nstate = open_state({backend!r})\n" + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_lock_holder_killed_outright_loses_the_lock_at_once(backend: str) -> None:
    child = _child(backend, "lock = state.lock('chat')\nlock.__enter__()\nprint('locked', flush=True)\nimport time\ntime.sleep(600)\n")
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked", child.stderr.read() if child.stderr else ""
        with pytest.raises(LockedError):  # while it lives, it holds the lock
            open_state(backend).lock("chat").__enter__()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    state = open_state(backend)
    started = time.monotonic()
    with state.lock("chat") as holder:  # taken over without waiting for the hour's expiry
        assert holder == holder_name() and time.monotonic() - started < 10
    state.close()


def test_a_writer_killed_midway_leaves_every_record_whole(backend: str) -> None:
    child = _child(
        backend,
        """
        from tests.test_state_backends import _record
        print('writing', flush=True)
        index = 0
        while True:
            index += 1
            state.put(_record('chat', '/' + 'x' * (index % 5000)))
        """,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "writing"
    time.sleep(1.0)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    state = open_state(backend)
    (record,) = state.records()  # readable and complete, whichever write it was
    assert record.name == "chat" and record.deployed is not None and record.deployed.url.startswith("https://runtime.example/chat")
    state.close()


@pytest.mark.parametrize("kind", ["postgresql", "s3", "az"])
def test_an_unreachable_store_is_a_clear_error_and_no_cloud_is_touched(kind: str, aws: AwsCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = services.free_port()  # nothing listens there
    url = {
        "postgresql": f"postgresql://llamadeploy@127.0.0.1:{port}/llamadeploy",
        "s3": f"s3://{BUCKET}/team?endpoint_url=http://127.0.0.1:{port}&region=us-east-1",
        "az": f"az://{CONTAINER}/team",
    }[kind]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", services.Azurite(port).connection_string)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    stack = tmp_path / "stack.yaml"
    stack.write_text("name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 4\nplacement:\n" + aws.block())
    for command in (("--state", url, "status"), ("--state", url, "up", str(stack), "--cloud", "aws", "--yes")):
        code, _, err = cli_run(*command)
        assert code == 1 and "cannot reach" in err and "Traceback" not in err, err
    assert aws.stand_in.requests == [] and aws.empty()


def test_two_processes_racing_up_create_once_and_the_loser_names_the_holder(backend: str, aws: AwsCloud, tmp_path: Path) -> None:
    stack = tmp_path / "stack.yaml"
    stack.write_text("name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 4\nplacement:\n" + aws.block())
    aws.hold_serving()  # the first `up` waits on the cloud while the second asks for the lock
    racers = [CliProcess("up", str(stack), "--cloud", "aws", "--yes") for _ in range(2)]
    deadline = time.monotonic() + 60
    while all(r.poll() is None for r in racers) and time.monotonic() < deadline:  # the loser ends first
        time.sleep(0.05)
    aws.make_ready()
    outcomes = [r.wait() for r in racers]
    assert sorted(code for code, _ in outcomes) == [0, 1], outcomes
    (lost,) = [err for code, err in outcomes if code == 1]
    assert "is locked by" in lost and " pid " in lost, lost
    assert len(aws.stand_in.calls("CreateEndpoint")) == 1
    assert cli_run("down", "chat", "--yes")[0] == 0 and aws.empty()


def test_the_whole_lifecycle_keeps_its_state_in_the_store(
    backend: str, aws: AwsCloud, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """up, status, move (to the test plugin's cloud) and down, with nothing but the store remembering."""
    fake = _harness("fake", request, monkeypatch, tmp_path)
    assert isinstance(fake, FakeCloud)
    monkeypatch.setenv("LLAMADEPLOY_STATE", backend)  # the fake plugin's fixture set its own
    stack = tmp_path / "stack.yaml"
    stack.write_text("name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 4\nplacement:\n" + aws.block() + fake.block())
    assert cli_run("up", str(stack), "--cloud", "aws", "--yes")[0] == 0
    (row,) = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    assert (row["cloud"], row["live"]["state"], row["history"][-1]["operation"]) == ("aws", "serving", "up")
    code, _, err = cli_run("move", "chat", "--to", "fake", "--yes")
    assert code == 0, err
    assert aws.empty() and fake.serving_copies() == 1
    (row,) = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    assert (row["cloud"], row["moves"][0]["from"], row["moves"][0]["to"]) == ("fake", "aws", "fake")
    assert cli_run("down", "chat", "--yes")[0] == 0 and fake.empty()
    code, out, _ = cli_run("state", "list", "--output", "json")
    assert code == 0 and json.loads(out)["deployments"] == []
    assert [op.kind for op in open_state(backend).history("chat")] == [OperationKind.UP, OperationKind.MOVE, OperationKind.DOWN]


@pytest.mark.parametrize("target", ["postgresql", "s3", "az"])
def test_state_migrate_from_sqlite_round_trips_every_record_and_journal_entry(
    target: str, request: pytest.FixtureRequest, aws: AwsCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = open_state(tmp_path / "old.db")
    for name in ("chat", "batch"):
        source.put(_record(name))
        operation = source.begin(name, OperationKind.UP, "aws", holder_name())
        source.note_created(operation, {"type": ENDPOINT.type, "name": name})
        source.finish(operation, OperationStatus.SUCCEEDED)
    source.note_waiting(source.begin("chat", OperationKind.DOWN, "aws", holder_name()), "endpoint chat", "operations/9")
    records, journal = source.snapshot()
    source.close()
    url = fresh_store(target, request, aws, tmp_path, monkeypatch)
    code, out, err = cli_run("--state", str(tmp_path / "old.db"), "state", "migrate", "--to", url, "--yes")
    assert code == 0 and "copied 2 records and 3 journal entries" in out, err
    copy = open_state(url)
    assert copy.records() == records and copy.journal() == journal
    assert copy.waiting("chat") == {"endpoint chat": "operations/9"}
    operation = copy.begin("chat", OperationKind.UP, "aws", holder_name())  # the copy goes on from there
    assert operation > max(op.id for op in journal)
    copy.close()
    code, _, err = cli_run("--state", str(tmp_path / "old.db"), "state", "migrate", "--to", url, "--yes")
    assert code == 1 and "is not empty" in err  # never merged into, never clobbered


def test_a_password_in_the_url_is_refused_and_one_from_the_environment_is_used(postgres_server: services.Postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    database = postgres_server.new_database()
    with pytest.raises(StateError, match="holds a password"):
        open_state(f"postgresql://llamadeploy:{postgres_server.password}@{postgres_server.host}:{postgres_server.port}/{database}")
    monkeypatch.delenv(services.PASSWORD_ENV, raising=False)
    with pytest.raises(StateError, match=rf"reads the password from \${services.PASSWORD_ENV}, which is not set"):
        open_state(postgres_server.url(database))
    monkeypatch.setenv(services.PASSWORD_ENV, "wrong")
    with pytest.raises(StateError, match="cannot reach the PostgreSQL state") as refused:
        open_state(postgres_server.url(database))
    assert "wrong" not in str(refused.value) and postgres_server.password not in str(refused.value)
    monkeypatch.setenv(services.PASSWORD_ENV, postgres_server.password)
    state = open_state(postgres_server.url(database))
    state.put(_record())
    assert state.get("chat") is not None and postgres_server.password not in str(state.location)
    state.close()


def test_a_postgres_lock_is_freed_when_its_holders_connection_ends_on_any_host(postgres_server: services.Postgres, monkeypatch: pytest.MonkeyPatch) -> None:
    """The holder claims to be on another host, so its dead pid proves nothing here: only the server
    seeing its connection end frees the lock at once."""
    monkeypatch.setenv(services.PASSWORD_ENV, postgres_server.password)
    url = postgres_server.url(postgres_server.new_database())
    child = _child(
        url,
        "import socket\nsocket.gethostname = lambda: 'another-host'\nlock = state.lock('chat')\nlock.__enter__()\nprint('locked', flush=True)\nimport time\ntime.sleep(600)\n",
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match="another-host"):
            open_state(url).lock("chat").__enter__()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    state = open_state(url)
    deadline = time.monotonic() + 10
    with state.lock("chat", wait_seconds=10) as holder:  # the server ends the dead client's backend within moments
        assert holder == holder_name() and time.monotonic() < deadline
    state.close()
