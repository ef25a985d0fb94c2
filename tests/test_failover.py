"""Failover at `up`: placement.fallback in order, or `--cloud auto` cheapest first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.declared.stackfile import load_stack
from orchestrator.errors import SpecError
from tests.clouds import Cloud, cli_run

pytestmark = pytest.mark.parametrize("pair", [("aws", "azure")], indirect=True, ids="->".join)


def _stack(pair: tuple[Cloud, Cloud], tmp_path: Path, fallback: str = "") -> Path:
    first, second = pair
    path = tmp_path / "stack.yaml"
    path.write_text(
        "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\n"
        "serving:\n  env: {VLLM_LOGGING_LEVEL: INFO}\nplacement:\n" + first.block() + second.block() + fallback
    )
    return path


def _instance(stack: Path, cloud: str) -> str:
    return json.loads(cli_run("plan", str(stack), "--cloud", cloud, "--output", "json")[1])["plans"][0]["instance_type"]


def test_fallback_tries_in_order_and_stops_at_the_first_success(pair: tuple[Cloud, Cloud], tmp_path: Path) -> None:
    aws, azure = pair
    stack = _stack(pair, tmp_path, "  fallback: [aws:us-east-1, azure:eastus]\n")
    aws.fail_capacity(_instance(stack, "aws"))
    code, out, err = cli_run("up", str(stack), "--yes")
    assert code == 0, err
    assert "aws (us-east-1) cannot host it now" in err and "trying the next candidate" in err
    assert "chat is serving on azure (eastus)" in out and "after 2 attempts" in out
    assert aws.empty() and azure.endpoint_creates() == 1
    (row,) = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    assert [(op["cloud"], op["status"]) for op in row["history"]] == [("aws", "rolled_back"), ("azure", "succeeded")]


def test_a_candidate_without_quota_is_skipped_before_anything_is_created(pair: tuple[Cloud, Cloud], tmp_path: Path) -> None:
    aws, azure = pair
    stack = _stack(pair, tmp_path, "  fallback: [aws:us-east-1, azure:eastus]\n")
    aws.set_quota(_instance(stack, "aws"), 0)
    code, out, err = cli_run("up", str(stack), "--yes")
    assert code == 0, err
    assert f"quota '{_instance(stack, 'aws')} for endpoint usage': 0 instances free, 1 needed" in err
    assert "request-service-quota-increase --service-code sagemaker" in err
    assert "chat is serving on azure (eastus)" in out
    assert aws.creates() == 0 and aws.empty() and azure.endpoint_creates() == 1
    (row,) = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    assert [(op["cloud"], op["status"]) for op in row["history"]] == [("azure", "succeeded")]  # the skipped candidate wrote nothing


def test_an_exhausted_list_says_what_was_tried(pair: tuple[Cloud, Cloud], tmp_path: Path) -> None:
    aws, azure = pair
    stack = _stack(pair, tmp_path, "  fallback: [aws, azure, gcp]\n")
    aws.fail_capacity(_instance(stack, "aws"))
    azure.fail_quota(_instance(stack, "azure"))
    code, _, err = cli_run("up", str(stack), "--yes")
    assert code == 1 and "no candidate could host 'chat'; tried, in order:" in err
    assert "aws:us-east-1: SageMaker could not provision the instances" in err
    assert "azure:eastus: Azure ML quota" in err
    assert "gcp: not tried: " in err and "needs placement.gcp" in err
    assert aws.empty() and azure.empty()


def test_cloud_auto_goes_cheapest_first(pair: tuple[Cloud, Cloud], tmp_path: Path) -> None:
    aws, _azure = pair
    stack = _stack(pair, tmp_path)
    aws.fail_capacity(_instance(stack, "aws"))
    code, out, err = cli_run("up", str(stack), "--cloud", "auto", "--yes", "--output", "json")
    assert code == 0, err
    done = json.loads(out.splitlines()[-1])
    # cheapest first: gcp (not placed), aws (out of capacity), oci (not placed), then azure serves
    assert [a["cloud"] for a in done["attempts"]] == ["gcp", "aws", "oci", "azure"]
    outcomes = [a["outcome"] for a in done["attempts"]]
    assert outcomes[0].startswith("not tried") and "capacity" in outcomes[1] and outcomes[2].startswith("not tried") and outcomes[3] == "serving"
    assert done["cloud"] == "azure" and aws.empty()


def test_a_malformed_fallback_entry_is_a_spec_error(pair: tuple[Cloud, Cloud], tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"fallback.*use cloud or cloud:region"):
        load_stack(_stack(pair, tmp_path, "  fallback: ['azure: east us']\n"))
