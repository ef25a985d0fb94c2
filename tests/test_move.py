"""`move`: make before break between any two clouds, and a failed target leaves the source alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clouds import Cloud, cli_run


@pytest.fixture
def two_cloud_stack(pair: tuple[Cloud, Cloud], tmp_path: Path) -> Path:
    source, target = pair
    serving = source.serving() or target.serving() or "serving:\n  env: {VLLM_LOGGING_LEVEL: INFO}\n"
    path = tmp_path / "stack.yaml"
    path.write_text("name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\n"
                    "autoscaling: {min_replicas: 1, max_replicas: 2}\n" + serving + "placement:\n" + source.block() + target.block())  # fmt: skip
    return path


def status() -> dict:
    (row,) = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    return row


def test_move_brings_the_target_up_then_empties_the_source(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    assert not source.empty()
    code, out, err = cli_run("move", "chat", "--to", target.name, "--yes")
    assert code == 0, err
    assert f"chat: {source.name} " in err and f"-> {target.name} " in err  # the cost of both, before confirming
    assert f"chat moved from {source.name} to {target.name}" in out
    assert source.empty(), source.inventory()
    assert target.endpoint_creates() == 1 and not target.empty()
    row = status()
    assert (row["cloud"], row["live"]["state"], row["draining"]) == (target.name, "serving", None)
    assert [(m["from"], m["to"]) for m in row["moves"]] == [(source.name, target.name)]
    assert [op["operation"] for op in row["history"]][-1] == "move" and row["history"][-1]["status"] == "succeeded"
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert target.empty() and source.empty()


@pytest.mark.parametrize("pair", [("aws", "azure"), ("oci", "aws")], indirect=True, ids="->".join)
def test_a_target_that_fails_leaves_the_source_serving_and_the_target_empty(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    before = source.inventory()
    (planned,) = json.loads(cli_run("plan", str(two_cloud_stack), "--cloud", target.name, "--output", "json")[1])["plans"]
    target.fail_capacity(planned["instance_type"])
    code, _, err = cli_run("move", "chat", "--to", target.name, "--yes")
    assert code == 1 and target.capacity_text in err
    assert f"'chat' still serves on {source.name}" in err
    assert target.empty(), target.inventory()
    assert source.inventory() == before
    row = status()
    assert (row["cloud"], row["live"]["state"], row["moves"]) == (source.name, "serving", [])


@pytest.mark.parametrize("pair", [("aws", "azure")], indirect=True, ids="->".join)
def test_move_refuses_nonsense(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, _ = pair
    assert cli_run("move", "chat", "--to", "azure", "--yes")[0] == 1  # nothing deployed yet
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    code, _, err = cli_run("move", "chat", "--to", source.name, "--yes")
    assert code == 2 and "already runs on aws" in err
    code, _, err = cli_run("move", "chat", "--to", "gcp", "--yes")
    assert code == 1 and "`up` on gcp needs placement.gcp" in err  # the recorded spec has no gcp placement
    assert cli_run("move", "chat", "--to", "azure")[0] == 2  # no --yes off a terminal
