"""The SQLite state: records, journal, locks and file permissions."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.state import LockedError, State, StateError


def test_state_file_is_private_and_records_round_trip(tmp_path: Path) -> None:
    state = State(tmp_path / "deep" / "state.db")
    state.put("chat", "aws", "us-east-1", "abc", "serving", {"plan": {"instance_type": "ml.g6.xlarge"}})
    assert stat.S_IMODE((tmp_path / "deep" / "state.db").stat().st_mode) == 0o600
    record = state.get("chat")
    assert (record.cloud, record.region, record.status, record.data["plan"]["instance_type"]) == ("aws", "us-east-1", "serving", "ml.g6.xlarge")
    state.drop("chat")
    assert state.get("chat") is None and state.records() == []


def test_journal_keeps_what_an_operation_created(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    op = state.begin("chat", "up", "aws", "me")
    state.note_created(op, {"type": "AWS::SageMaker::Model", "name": "chat-model"})
    state.note_created(op, {"type": "AWS::SageMaker::Model", "name": "chat-model"})
    (running,) = state.interrupted("chat")
    assert running.created == [{"type": "AWS::SageMaker::Model", "name": "chat-model"}]
    state.finish(op, "succeeded")
    assert state.interrupted("chat") == [] and state.history("chat")[0].status == "succeeded"


def test_second_holder_is_told_who_holds_the_lock(tmp_path: Path) -> None:
    first, second = State(tmp_path / "state.db"), State(tmp_path / "state.db")
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
    code = f"from orchestrator.state import State\ns = State({str(path)!r})\ncm = s.lock('chat')\ncm.__enter__()\nimport os\nos._exit(0)\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    with State(path).lock("chat") as holder:  # the holder died without releasing; no wait
        assert "pid" in holder


def test_a_directory_is_not_a_state_file(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="is a directory"):
        State(tmp_path)
