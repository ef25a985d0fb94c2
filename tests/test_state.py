"""The SQLite state: records, journal, locks and file permissions."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.lifecycle.record import Destination, Move, Phase, Placed, PlanSnapshot, Record
from orchestrator.lifecycle.state import LockedError, OperationKind, OperationStatus, StateError, holder_name, open_state
from orchestrator.lifecycle.stores.sqlite import FILE_FORMAT
from providers.base import Deployed, Resource
from tests.clouds import HF_TOKEN, cli_run
from tests.emulators.fake import FakeStandIn
from tests.fake_provider import IMAGE

DATA = Path(__file__).parent / "data"
ENDPOINT = Resource("AWS::SageMaker::Endpoint", "chat")
SNAPSHOT = PlanSnapshot("meta-llama/Llama-3.2-1B-Instruct", "ml.g6.xlarge", 1, 3, 0.8048, False, (ENDPOINT,))


def _record(phase: Phase = Phase.SERVING, **changes) -> Record:
    deployed = Deployed("chat", "aws", "us-east-1", (ENDPOINT,), "https://runtime.example/chat", {"role": "arn:x"})
    placed = Placed("aws", "us-east-1", "abc", SNAPSHOT, {"role": "arn:x"}, deployed)
    return Record("chat", phase, {"name": "chat", "model": "llama3.2-1b-instruct"}, placed, **changes)


def test_state_file_is_private_and_records_round_trip(tmp_path: Path) -> None:
    state = open_state(tmp_path / "deep" / "state.db")
    moved = Move("gcp", "us-central1", "aws", "us-east-1", "2026-11-30T10:00:00+00:00")
    written = _record(Phase.MOVING, moves=(moved,), moving_to=Destination("oci", None))
    state.put(written)
    assert stat.S_IMODE((tmp_path / "deep" / "state.db").stat().st_mode) == 0o600
    record = state.get("chat")
    assert record == replace(written, updated_at=record.updated_at) and record.updated_at.startswith("20")
    assert (record.cloud, record.region, record.deployed.url, record.unfinished_move) == ("aws", "us-east-1", "https://runtime.example/chat", True)
    assert record.to(Phase.SERVING).moving_to is None
    state.drop("chat")
    assert state.get("chat") is None and state.records() == []


def test_the_state_directory_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        open_state(tmp_path / ".llamadeploy" / "state.db").close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / ".llamadeploy").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / ".llamadeploy" / "state.db").stat().st_mode) == 0o600


def test_journal_keeps_what_an_operation_created(tmp_path: Path) -> None:
    state = open_state(tmp_path / "state.db")
    op = state.begin("chat", OperationKind.UP, "aws", "me")
    state.note_created(op, {"type": "AWS::SageMaker::Model", "name": "chat-model"})
    state.note_created(op, {"type": "AWS::SageMaker::Model", "name": "chat-model"})
    (running,) = state.interrupted("chat")
    assert running.created == [{"type": "AWS::SageMaker::Model", "name": "chat-model"}]
    assert (running.kind, running.status) == (OperationKind.UP, OperationStatus.RUNNING)
    state.finish(op, OperationStatus.SUCCEEDED)
    assert state.interrupted("chat") == [] and state.history("chat")[0].status is OperationStatus.SUCCEEDED


def _v1_state(tmp_path: Path) -> Path:
    """The state file llamadeploy wrote before the typed record (release 1bef1b4): four deployments
    on the test plugin's clouds, three of them left by commands that died (tests/data/make_state_v1.py)."""
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript((DATA / "state-v1.sql").read_text())
    db.close()
    return path


def test_a_state_file_of_the_first_format_is_migrated_when_opened(tmp_path: Path) -> None:
    state = open_state(_v1_state(tmp_path))
    records = {record.name: record for record in state.records()}
    assert {name: record.phase for name, record in records.items()} == {
        "chat": Phase.SERVING,
        "halfway": Phase.CREATING,
        "drained": Phase.DRAINING,
        "switching": Phase.MOVING,
    }
    chat = records["chat"]
    assert chat.placed.plan == PlanSnapshot("meta-llama/Llama-3.2-1B-Instruct", "fake.gpu1", 1, 1, 0.5, False, (Resource("fake::Endpoint", "chat-moon-1"),))
    assert chat.deployed.url == "fake://chat" and chat.spec["placement"]["fake"]["zone"] == "crater-7"
    drained = records["drained"]
    assert (drained.region, drained.draining.region, drained.draining.deployed.resources[0].name) == ("moon-2", "moon-1", "drained-moon-1")
    assert [(m.source_region, m.target_region) for m in drained.moves] == [("moon-1", "moon-2")]
    assert records["switching"].moving_to == Destination("fake2", None) and records["halfway"].deployed is None
    assert sqlite3.connect(tmp_path / "state.db").execute("PRAGMA user_version").fetchone()[0] == FILE_FORMAT


def test_a_migrated_state_file_works(fake_plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_stand_in: FakeStandIn) -> None:
    from tests.test_plugins import invoke

    monkeypatch.setenv("LLAMADEPLOY_STATE", str(_v1_state(tmp_path / "old")))
    for name, resource in json.loads((DATA / "state-v1-cloud.json").read_text()).items():  # what the old run left in the cloud
        properties = resource["properties"]
        region = name.split("-", 1)[1]
        fake_stand_in.add(
            region,
            name,
            {
                "instance_type": properties["instance_type"],
                "image": IMAGE,
                "args": ["--model", properties["model"], "--max-model-len", "2048"],
                "env": {"HF_TOKEN": HF_TOKEN},
                "min_replicas": 1,
                "max_replicas": 1,
                "tags": properties["tags"],
            },
        )
    code, out, err = invoke("status", "--output", "json")
    listed = {d["deployment"]: d for d in json.loads(out)["deployments"]}
    assert code == 0 and "Traceback" not in err
    assert listed["chat"]["live"]["state"] == "serving" and listed["chat"]["drift"] == []
    assert listed["drained"]["draining"] == "fake" and listed["drained"]["moves"][0]["to_region"] == "moon-2"
    code, _, err = invoke("move", "drained", "--resume", "--yes")
    assert code == 0, err
    code, _, err = invoke("move", "switching", "--rollback", "--yes")
    assert code == 0, err
    assert invoke("down", "halfway", "--yes")[0] == 0
    code, _, err = invoke("call", "chat")
    assert code == 0, err
    assert fake_stand_in.inventory() == {"endpoints": ["moon-1/chat-moon-1", "moon-1/switching-moon-1", "moon-2/drained-moon-2"]}
    code, out, _ = invoke("status", "--output", "json")
    assert {d["deployment"]: (d["recorded_status"], d["drift"]) for d in json.loads(out)["deployments"]} == {
        "chat": ("serving", []),
        "drained": ("serving", []),
        "switching": ("serving", []),
    }


def test_a_first_format_row_in_a_migrated_file_is_read_and_a_corrupt_one_is_an_error(tmp_path: Path) -> None:
    """An older release may still write a record into a file this one migrated; and a record may be damaged by hand."""
    old = sqlite3.connect(_v1_state(tmp_path / "old"))
    row = old.execute("SELECT name, cloud, region, spec_hash, record, status, updated_at FROM deployments WHERE name = 'chat'").fetchone()
    state = open_state(tmp_path / "state.db")
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?)", row)
    db.commit()
    chat = state.get("chat")
    assert (chat.phase, chat.placed.plan.instance_type, chat.deployed.resources[0].name) == (Phase.SERVING, "fake.gpu1", "chat-moon-1")
    db.execute("UPDATE deployments SET record = '{not json' WHERE name = 'chat'")
    db.commit()
    with pytest.raises(StateError, match=r"the record of 'chat' in .* is not valid JSON"):
        state.records()
    for command in (["status"], ["down", "chat", "--yes"], ["call", "chat"]):
        code, _, err = cli_run("--state", str(tmp_path / "state.db"), *command)
        assert code == 1 and "the record of 'chat'" in err and "restore it from a backup" in err and "Traceback" not in err, err


def test_a_state_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    open_state(tmp_path / "state.db").close()
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(f"PRAGMA user_version = {FILE_FORMAT + 1}")
    db.commit()
    with pytest.raises(StateError, match=r"written by a newer llamadeploy \(format 5; this one reads 4\); upgrade llamadeploy"):
        open_state(tmp_path / "state.db")


def test_second_holder_is_told_who_holds_the_lock(tmp_path: Path) -> None:
    first, second = open_state(tmp_path / "state.db"), open_state(tmp_path / "state.db")
    with (
        first.lock("chat"),
        pytest.raises(LockedError, match=rf"deployment 'chat' is locked by .*@{socket.gethostname()} pid \d+ since \d{{4}}-"),
        second.lock("chat"),
    ):
        pass
    with second.lock("chat"):  # released on exit
        pass


def test_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    code = f"from orchestrator.lifecycle.state import open_state\ns = open_state({str(path)!r})\ncm = s.lock('chat')\ncm.__enter__()\nimport os\nos._exit(0)\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    with open_state(path).lock("chat") as holder:  # the holder died without releasing; no wait
        assert holder == holder_name()


def test_a_directory_is_not_a_state_file(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="is a directory"):
        open_state(tmp_path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://ops:s3cret@db/llamadeploy", "the state URL holds a password"),
        ("postgresql://db", "name the database"),
        ("s3:///prefix", "name the bucket"),
        ("ftp://host/state", "unknown scheme 'ftp'"),
        ("sqlite://state.db", "write sqlite:///relative/path"),
    ],
)
def test_a_state_url_is_never_taken_for_a_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli_run("--state", url, "status")
    assert code == 1 and message in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # no folder named "s3:", no file


def test_state_list_show_and_migrate_round_trip_every_record_and_journal_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert json.loads(cli_run("--state", "sqlite:///old.db", "state", "list", "--output", "json")[1])["deployments"] == []
    assert not (tmp_path / "old.db").exists()  # listing reads, never creates
    state = open_state(tmp_path / "old.db")
    state.put(_record())
    state.put(replace(_record(Phase.MOVING, moving_to=Destination("oci", None)), name="other"))
    operation = state.begin("chat", OperationKind.UP, "aws", holder_name())
    state.note_created(operation, {"type": ENDPOINT.type, "name": ENDPOINT.name})
    state.note_waiting(operation, f"{ENDPOINT.type} chat", "projects/1/locations/x/operations/7")
    state.close()
    code, out, _ = cli_run("--state", "sqlite:///old.db", "state", "list", "--output", "json")
    assert code == 0 and [(d["deployment"], d["phase"]) for d in json.loads(out)["deployments"]] == [("chat", "serving"), ("other", "moving")]
    code, out, _ = cli_run("--state", "old.db", "state", "show", "chat")
    shown = json.loads(out)
    assert (
        code == 0
        and shown["record"]["phase"] == "serving"
        and shown["journal"][0]["waiting"] == {f"{ENDPOINT.type} chat": "projects/1/locations/x/operations/7"}
    )
    code, out, err = cli_run("--state", "old.db", "state", "migrate", "--to", f"sqlite:///{tmp_path / 'new.db'}", "--yes")
    assert code == 0 and "copied 2 records and 1 journal entries" in out and "LLAMADEPLOY_STATE=" in out, err
    old, new = open_state(tmp_path / "old.db"), open_state(tmp_path / "new.db")
    assert new.records() == old.records() and new.journal() == old.journal()
    code, _, err = cli_run("--state", "old.db", "state", "migrate", "--to", "new.db", "--yes")
    assert code == 1 and "is not empty" in err  # never merged into, never clobbered
    assert cli_run("--state", "old.db", "state", "show", "nobody")[0] == 1
