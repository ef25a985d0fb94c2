"""Provider scenarios against the cloud stand-ins: real SDK, real HTTP, loopback only.

Written once over the `Cloud` harness and parametrised by cloud; every assertion is on what
the cloud received, what is left in it, or what the user saw.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator import engine
from orchestrator.catalog import load_catalog
from orchestrator.cli import cli
from orchestrator.spec import load_stack
from orchestrator.state import LockedError, State
from tests.clouds import ROLE, AwsCloud, Cloud
from tests.emulators.aws import CREDENTIALS, AwsStandIn

HF_TOKEN = "hf_NotARealTokenButSecret123"
REPO = Path(__file__).parent.parent
EMPTY = {"aws": {"models": [], "endpoint_configs": [], "endpoints": [], "scalable_targets": [], "scaling_policies": []}}


@pytest.fixture(scope="session")
def aws_stand_in() -> Iterator[AwsStandIn]:
    stand_in = AwsStandIn()
    yield stand_in
    stand_in.stop()


@pytest.fixture(params=["aws"])
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cloud:
    for key, value in {**CREDENTIALS, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                       "AWS_EC2_METADATA_DISABLED": "true", "HF_TOKEN": HF_TOKEN, "LLAMADEPLOY_POLL_SECONDS": "0.02",
                       "LLAMADEPLOY_STATE": str(tmp_path / "state.db")}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    stand_in = request.getfixturevalue(f"{request.param}_stand_in")
    stand_in.reset()
    return {"aws": AwsCloud}[request.param](stand_in)


@pytest.fixture
def stack(cloud: Cloud, tmp_path: Path) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(
        "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 8192\nconcurrency: 8\n"
        "autoscaling: {min_replicas: 1, max_replicas: 3, target_concurrent_requests: 6}\n"
        "serving:\n  env: {VLLM_LOGGING_LEVEL: INFO}\ntags: {team: ml}\n" + cloud.placement()
    )
    return path


def cli_run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_up_status_down_leaves_nothing(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    cloud.ready_after_polls(3)
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert "chat is serving on" in out and "try:" in out
    received = cloud.received()
    assert (received["instance_type"], received["instance_count"]) == ("ml.g6.xlarge", 1)
    assert (received["min_replicas"], received["max_replicas"], received["scaling_target"]) == (1, 3, 6.0)
    assert received["environment"]["HF_MODEL_ID"] == "meta-llama/Llama-3.2-1B-Instruct"
    assert received["environment"]["OPTION_MAX_MODEL_LEN"] == "8192"
    assert received["environment"]["VLLM_LOGGING_LEVEL"] == "INFO"
    assert received["tags"] == {"team": "ml", "llamadeploy-deployment": "chat"}
    assert "endpoint SageMaker endpoint chat: Creating" not in err  # progress is phrased for people
    assert "SageMaker endpoint chat: Creating" in err and "SageMaker endpoint chat: InService" in err

    code, out, _ = cli_run("status", "--output", "json")
    (row,) = json.loads(out)["deployments"]
    assert code == 0 and row["live"]["state"] == "serving" and row["drift"] == []
    assert (row["live"]["min_replicas"], row["live"]["max_replicas"], row["live"]["instance_type"]) == (1, 3, "ml.g6.xlarge")

    code, out, err = cli_run("down", "chat", "--yes")
    assert code == 0, err
    assert "nothing tagged with it remains" in out
    assert cloud.inventory() == EMPTY[cloud.name]
    code, out, _ = cli_run("status", "--output", "json")
    assert json.loads(out)["deployments"] == []


def test_secrets_stay_out_of_state_and_output(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes", "--output", "json")
    assert code == 0
    assert HF_TOKEN not in out + err
    state_file = tmp_path / "state.db"
    assert HF_TOKEN.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["deployment"] == "chat"
    assert {"created"} <= {e["event"] for e in events}


def test_rerun_changes_nothing(cloud: Cloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    before = cloud.creates()
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0 and cloud.creates() == before
    assert "already serving as declared; nothing to change" in err


@pytest.mark.parametrize("fault", ["capacity", "quota"])
def test_capacity_or_quota_failure_leaves_nothing_and_says_why(cloud: Cloud, stack: Path, fault: str) -> None:
    cloud.ready_after_polls(2)
    getattr(cloud, f"fail_{fault}")()
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1
    assert ("Unable to provision requested ML compute capacity" if fault == "capacity" else "ResourceLimitExceeded") in err
    assert "rolled back: deleted the" in err and "Traceback" not in err
    assert cloud.inventory() == EMPTY[cloud.name]
    assert json.loads(cli_run("status", "--output", "json")[1])["deployments"] == []


def test_throttling_is_retried(cloud: Cloud, stack: Path) -> None:
    cloud.throttle(8)  # more than the SDK's own retries
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert "throttling requests; retry" in err
    assert cloud.inventory()["endpoints"] == ["chat"]


def test_status_reports_an_endpoint_deleted_by_hand(cloud: Cloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    cloud.delete_endpoint_by_hand("chat")
    code, out, _ = cli_run("status", "chat", "--output", "json")
    (row,) = json.loads(out)["deployments"]
    assert code == 0 and row["error"] is None, row["error"]
    assert row["live"]["state"] == "missing"
    assert any("AWS::SageMaker::Endpoint chat was deleted outside llamadeploy" in d for d in row["drift"])
    code, out, _ = cli_run("status")
    assert "deleted outside llamadeploy" in out
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.inventory() == EMPTY[cloud.name]


def test_killed_mid_up_is_adopted_by_the_next_up_and_removed_by_down(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    cloud.ready_after_polls(10**6)
    child = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "up", str(stack), "--cloud", cloud.name, "--yes"],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while cloud.inventory()["endpoints"] != ["chat"] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # a few polls while the endpoint is Creating
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    assert cloud.creates() == 3  # model, config and endpoint exist; autoscaling does not yet

    cloud.make_ready()
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert "did not finish; taking over" in err
    assert "adopted AWS::SageMaker::Endpoint chat" in err
    assert cloud.creates() == 3  # adopted, not created twice
    assert cloud.inventory()["scalable_targets"] == ["endpoint/chat/variant/AllTraffic"]

    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.inventory() == EMPTY[cloud.name]


def test_killed_mid_up_then_down_leaves_nothing(cloud: Cloud, stack: Path) -> None:
    cloud.ready_after_polls(10**6)
    child = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "up", str(stack), "--cloud", cloud.name, "--yes"],
        cwd=REPO, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while cloud.inventory()["endpoints"] != ["chat"] and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    cloud.make_ready()
    code, _, err = cli_run("down", "chat", "--yes")
    assert code == 0, err
    assert cloud.inventory() == EMPTY[cloud.name]


def test_two_concurrent_ups_do_not_both_create(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    cloud.ready_after_polls(20)
    loaded = load_stack(stack)
    planned, provider = engine.plan_up(loaded, loaded.deployments[0], cloud.name, load_catalog())
    outcomes: list[object] = []

    def attempt() -> None:
        state = State(tmp_path / "state.db")
        try:
            outcomes.append(engine.up(planned, provider, state, lambda *a, **k: None))
        except LockedError as exc:
            outcomes.append(exc)
        finally:
            state.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    locked = [o for o in outcomes if isinstance(o, LockedError)]
    assert len(outcomes) == 2 and len(locked) == 1
    assert "is locked by" in str(locked[0]) and " since " in str(locked[0])
    assert cloud.creates() == 3


def test_up_needs_the_clouds_placement_fields(cloud: Cloud, tmp_path: Path) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text("name: chat\nmodel: llama3.2-1b-instruct\nplacement:\n  aws:\n    region: us-east-1\n")
    code, _, err = cli_run("up", str(path), "--cloud", "aws", "--yes")
    assert code == 1 and f"{path}:4: placement.aws: `up` on aws needs placement.aws.execution_role_arn" in err
    assert cloud.creates() == 0


def test_missing_secret_stops_before_any_create(cloud: Cloud, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "needs the secrets HF_TOKEN (from $HF_TOKEN)" in err
    assert cloud.creates() == 0 and cloud.inventory() == EMPTY[cloud.name]


def test_pipeline_without_yes_is_refused(cloud: Cloud, stack: Path) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name)
    assert code == 2 and "pass --yes to confirm" in err
    assert cloud.creates() == 0


def test_plan_only_cloud_says_it_cannot_deploy_yet(cloud: Cloud, stack: Path) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 2 and "cannot deploy to oci yet" in err and "aws" in err


def test_aws_endpoint_url_from_the_environment(cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if cloud.name != "aws":
        pytest.skip("AWS_ENDPOINT_URL is boto3's own setting")
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.stand_in.url)
    path = tmp_path / "env.yaml"
    path.write_text(f"name: envchat\nmodel: llama3.2-1b-instruct\nplacement:\n  aws:\n    region: us-east-1\n    execution_role_arn: {ROLE}\n")
    code, _, err = cli_run("up", str(path), "--cloud", "aws", "--yes")
    assert code == 0, err
    assert cloud.inventory()["endpoints"] == ["envchat"]
    assert cloud.stand_in.calls("CreateEndpoint") == [{"EndpointName": "envchat", "EndpointConfigName": "envchat-config", "Tags": [
        {"Key": "llamadeploy-deployment", "Value": "envchat"}]}]  # fmt: skip
    assert cli_run("down", "envchat", "--yes")[0] == 0
    assert cloud.inventory() == EMPTY["aws"]
