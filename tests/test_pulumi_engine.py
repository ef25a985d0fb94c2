"""`up`/`down --engine pulumi`: the exported program run through the Automation API.

The Pulumi CLI cannot be installed here, so these run the real Automation API against
`tests/fake_pulumi/pulumi`, a script that logs how it was called; and check that without
any `pulumi` on PATH llamadeploy stops at once, writes nothing and says what to do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pulumi")

from tests.clouds import HF_TOKEN, ROLE, cli_run

FAKE = Path(__file__).parent / "fake_pulumi"
STACK = f"""
name: chat
model: llama3.2-1b-instruct
max_context: 4096
serving: {{secrets: {{HF_TOKEN: env:HF_TOKEN}}}}
placement:
  aws: {{region: us-east-1, execution_role_arn: "{ROLE}"}}
"""


@pytest.fixture
def pulumi_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake `pulumi` first on PATH, its log, and a state directory in tmp_path."""
    log = tmp_path / "pulumi.log"
    monkeypatch.setenv("PATH", f"{FAKE}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.setenv("LLAMADEPLOY_STATE", str(tmp_path / "state" / "state.db"))
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_without_pulumi_on_path_nothing_is_written(write_stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = write_stack(STACK)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("LLAMADEPLOY_STATE", str(tmp_path / "state" / "state.db"))
    for args in (("up", str(stack), "--cloud", "aws", "--engine", "pulumi", "--yes"), ("down", "chat", "--engine", "pulumi", "--yes")):
        code, _, err = cli_run(*args)
        assert code == 1
        assert "`pulumi` is not on PATH" in err and "llamadeploy export" in err and "Traceback" not in err
    assert not (tmp_path / "state").exists()


def test_up_and_down_run_the_exported_program_with_the_users_pulumi(write_stack: Any, pulumi_log: Path, tmp_path: Path) -> None:
    stack = write_stack(STACK, name="prod.yaml")
    code, out, err = cli_run("up", str(stack), "--cloud", "aws", "--engine", "pulumi", "--yes")
    assert code == 0, err
    assert "chat_url: https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/chat/invocations" in out
    assert "pulumi: Resources: 5 changed" in err
    project = tmp_path / "state" / "pulumi" / "prod"
    made = calls(pulumi_log)
    assert all(c["cwd"] == str(project) for c in made if c["args"] != ["version"])
    commands = [c["args"] for c in made]
    config = next(a for a in commands if a[:2] == ["config", "set-all"])
    assert ["--secret", f"llamadeploy:HF_TOKEN={HF_TOKEN}"] == config[config.index("--secret") : config.index("--secret") + 2]
    assert f"llamadeploy:execution_role_arn={ROLE}" in config and "aws:region=us-east-1" in config
    assert next(a for a in commands if a[0] == "up")[:3] == ["up", "--yes", "--skip-preview"] and "prod" in next(a for a in commands if a[0] == "up")
    assert "aws.sagemaker.Endpoint(" in (project / "__main__.py").read_text()
    assert f"virtualenv: {json.dumps(sys.prefix)}" in (project / "Pulumi.yaml").read_text()  # the program runs in llamadeploy's own environment
    assert HF_TOKEN not in "".join(p.read_text() for p in project.iterdir() if p.suffix in (".py", ".yaml", ".json"))

    code, out, err = cli_run("down", "chat", "--engine", "pulumi", "--yes")
    assert code == 0, err
    assert "chat is gone from aws" in out
    assert any(c["args"][0] == "destroy" for c in calls(pulumi_log)) and not project.exists()


def test_a_pulumi_failure_is_one_clear_line(write_stack: Any, pulumi_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = write_stack(STACK)
    monkeypatch.setenv("FAKE_PULUMI_FAIL", "creating SageMaker Model (chat-model): AccessDeniedException: not authorized")
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--engine", "pulumi", "--yes")
    assert code == 1
    assert err.strip().splitlines()[-1] == "Error: pulumi failed: error: creating SageMaker Model (chat-model): AccessDeniedException: not authorized"


def test_missing_placement_stops_before_pulumi_runs(write_stack: Any, pulumi_log: Path) -> None:
    stack = write_stack(STACK.replace(f', execution_role_arn: "{ROLE}"', ""))
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--engine", "pulumi", "--yes")
    assert code == 1 and "needs placement.aws.execution_role_arn" in err and "stack.yaml:" in err
    assert [c["args"] for c in calls(pulumi_log)] == []
    code, _, err = cli_run("up", str(stack), "--cloud", "auto", "--engine", "pulumi", "--yes")
    assert code == 2 and "--cloud auto" in err
