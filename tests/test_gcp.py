"""What only Vertex AI has: accelerators as received, multi-host replicas, and the machine
type / accelerator pairing Vertex enforces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clouds import GcpCloud, cli_run

pytestmark = pytest.mark.parametrize("cloud", ["gcp"], indirect=True)


def test_machine_accelerators_and_container_as_received(cloud: GcpCloud, stack: Path) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 0, err
    (deploy,) = cloud.stand_in.received("deploy")
    dedicated = deploy["deployedModel"]["dedicatedResources"]
    assert dedicated["machineSpec"] == {"machineType": "g2-standard-4", "acceleratorType": 11, "acceleratorCount": 1}  # 11 = NVIDIA_L4
    assert (dedicated["minReplicaCount"], dedicated["maxReplicaCount"]) == (1, 3)
    assert dedicated["autoscalingMetricSpecs"] == [{"metricName": "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle", "target": 60}]
    assert deploy["trafficSplit"] == {"0": 100}
    (upload,) = cloud.stand_in.received("upload")
    container = upload["model"]["containerSpec"]
    assert upload["modelId"] == "chat"
    assert "--tensor-parallel-size=1" in container["args"] and "--max-num-seqs=8" in container["args"]
    assert (container["healthRoute"], container["predictRoute"], container["ports"]) == ("/ping", "/generate", [{"containerPort": 8080}])
    assert int(container["sharedMemorySizeMb"]) == 4096
    assert upload["model"]["labels"] == {"team": "ml", "llamadeploy-deployment": "chat"}


def test_a_replica_over_two_a3_hosts(cloud: GcpCloud, tmp_path: Path) -> None:
    stack = tmp_path / "big.yaml"
    stack.write_text("name: big\nmodel: llama3.1-405b-instruct\nmax_context: 16384\nconcurrency: 8\ngpu: H100\n" + cloud.placement())
    code, out, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 0, err
    (deploy,) = cloud.stand_in.received("deploy")
    spec = deploy["deployedModel"]["dedicatedResources"]["machineSpec"]
    assert (spec["machineType"], spec["acceleratorType"], spec["acceleratorCount"], spec["multihostGpuNodeCount"]) == ("a3-highgpu-8g", 13, 8, 2)
    (upload,) = cloud.stand_in.received("upload")
    assert {"--tensor-parallel-size=8", "--pipeline-parallel-size=2"} <= set(upload["model"]["containerSpec"]["args"])
    assert cli_run("down", "big", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_vertex_rejects_an_accelerator_the_machine_cannot_carry(cloud: GcpCloud, stack: Path, tmp_path: Path, mini_catalog_path: Path) -> None:
    wrong = tmp_path / "offers.csv"  # a catalog that claims g2 machines carry H100s
    wrong.write_text(mini_catalog_path.read_text().splitlines()[0] + "\n"
                     "gcp,Vertex AI online prediction,us-central1,g2-standard-4,H100,1,80,4,16,0.5,,managed-service list price,test,2026-11-01\n")  # fmt: skip
    code, _, err = cli_run("--catalog", str(wrong), "up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1
    assert "Accelerator NVIDIA_H100_80GB is not supported for machine type g2-standard-4" in err
    assert "rolled back" in err and cloud.empty(), cloud.inventory()


def test_unknown_project_is_an_auth_error(cloud: GcpCloud, tmp_path: Path) -> None:
    stack = tmp_path / "other.yaml"
    stack.write_text("name: chat\nmodel: llama3.2-1b-instruct\n" + cloud.placement().replace("project: llm-prod", "project: someone-else"))
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1 and "Permission denied on project someone-else" in err and "roles/aiplatform.user" in err
