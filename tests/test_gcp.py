"""What only Vertex AI has: accelerators as received, multi-host replicas, and the machine
type / accelerator pairing Vertex enforces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import providers.gcp
from tests.checkpoints import checkpoint_files
from tests.clouds import GcpCloud, cli_run, flags
from tests.emulators.gcp import PROJECT, PROJECT_NUMBER

pytestmark = pytest.mark.parametrize("cloud", ["gcp"], indirect=True)


def test_machine_accelerators_and_container_as_received(cloud: GcpCloud, stack: Path) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 0, err
    (deploy,) = cloud.stand_in.received("deploy")
    dedicated = deploy["deployedModel"]["dedicatedResources"]
    assert dedicated["machineSpec"] == {"machineType": "g2-standard-4", "acceleratorType": 11, "acceleratorCount": 1}  # 11 = NVIDIA_L4
    assert (dedicated["minReplicaCount"], dedicated["maxReplicaCount"]) == (1, 3)
    (metric,) = dedicated["autoscalingMetricSpecs"]
    assert metric["metricName"] == "aiplatform.googleapis.com/prediction/online/request_count" and metric["target"] >= 1  # requests per minute per replica
    assert deploy["trafficSplit"] == {"0": 100}
    (upload,) = cloud.stand_in.received("upload")
    container = upload["model"]["containerSpec"]
    assert upload["modelId"] == "chat"
    # Google's samples: the dated Model Garden image, the whole command line as args, which its entrypoint runs.
    assert container["imageUri"].endswith("/pytorch-vllm-serve:20251205_0916_RC01") and "command" not in container
    assert container["args"][:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert {"--host=0.0.0.0", "--port=8080"} <= set(container["args"])
    assert flags(container["args"])["tensor-parallel-size"] == "1" and flags(container["args"])["max-num-seqs"] == "8"
    assert (container["healthRoute"], container["predictRoute"], container["ports"]) == ("/health", "/v1/chat/completions", [{"containerPort": 8080}])
    assert int(container["sharedMemorySizeMb"]) == 16384 and 0 < int(container["deploymentTimeout"].rstrip("s")) <= 7200
    assert upload["model"]["labels"] == {"team": "ml", "llamadeploy-deployment": "chat"}


def test_a_replica_over_two_a3_hosts_starts_through_the_ray_launcher(cloud: GcpCloud, tmp_path: Path) -> None:
    stack = tmp_path / "big.yaml"  # 70B with twelve 128K-token sequences: more than one 8x H100 host holds
    stack.write_text("name: big\nmodel: llama3.1-70b-instruct\nmax_context: 131072\nconcurrency: 12\ngpu: H100\n" + cloud.placement())
    code, _out, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 0, err
    (deploy,) = cloud.stand_in.received("deploy")
    spec = deploy["deployedModel"]["dedicatedResources"]["machineSpec"]
    assert (spec["machineType"], spec["acceleratorType"], spec["acceleratorCount"], spec["multihostGpuNodeCount"]) == ("a3-highgpu-8g", 13, 8, 2)
    (upload,) = cloud.stand_in.received("upload")
    args = upload["model"]["containerSpec"]["args"]
    assert args[0] == "/vllm-workspace/ray_launcher.sh"  # vLLM reaches the second host's GPUs only through Ray
    assert (flags(args)["tensor-parallel-size"], flags(args)["pipeline-parallel-size"]) == ("8", "2")
    assert cli_run("down", "big", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_vertex_rejects_an_accelerator_the_machine_cannot_carry(cloud: GcpCloud, stack: Path, tmp_path: Path, mini_catalog_path: Path) -> None:
    wrong = tmp_path / "offers.csv"  # a catalog that claims g2 machines carry H100s
    wrong.write_text(
        mini_catalog_path.read_text().splitlines()[0] + "\n"
        "gcp,Vertex AI online prediction,us-central1,g2-standard-4,H100,1,80,4,16,0.5,,managed-service list price,test,2026-11-01\n"
    )
    code, _, err = cli_run("--catalog", str(wrong), "up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1
    assert "Accelerator NVIDIA_H100_80GB is not supported for machine type g2-standard-4" in err
    assert "rolled back" in err and cloud.empty(), cloud.inventory()


def test_unknown_project_is_an_auth_error(cloud: GcpCloud, tmp_path: Path) -> None:
    stack = tmp_path / "other.yaml"
    stack.write_text("name: chat\nmodel: llama3.2-1b-instruct\n" + cloud.placement().replace("project: llm-prod", "project: someone-else"))
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1 and "Permission denied on project someone-else" in err and "roles/aiplatform.user" in err


def test_a_replica_over_two_hosts_without_the_ray_launcher_does_not_start(cloud: GcpCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM alone sees one host's GPUs: 8 tensor x 2 pipeline ranks need the second host through Ray."""
    original = providers.gcp._container
    monkeypatch.setattr(providers.gcp, "_container", lambda plan: {**original(plan), "args": original(plan)["args"][1:]})
    stack = tmp_path / "big.yaml"
    stack.write_text("name: big\nmodel: llama3.1-70b-instruct\nmax_context: 131072\nconcurrency: 12\ngpu: H100\n" + cloud.placement())
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1 and "Model server exited unexpectedly" in err and "(16 > 8)" in err
    assert "rolled back" in err and cloud.empty(), cloud.inventory()


def test_own_weights_need_a_service_account_that_reads_the_bucket(cloud: GcpCloud, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DeployedModel.service_account the container runs as Vertex AI's own agent, which cannot
    read the user's bucket: the deployment fails, as Vertex's would, and nothing is left."""

    uri = cloud.store_weights(checkpoint_files())
    stack.write_text(stack.read_text() + f"weights:\n  gcp: {uri}\n")
    monkeypatch.setattr(providers.gcp, "_service_account", lambda plan: None)  # as if up forgot to send it
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1 and "does not have storage.objects.list access" in err, err
    assert "rolled back" in err and cloud.empty(), cloud.inventory()


def test_vertex_names_the_project_by_number_and_a_rerun_deploys_nothing_twice(cloud: GcpCloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", "gcp", "--yes")[0] == 0
    assert all("/projects/llm-prod/" in r.path for r in cloud.stand_in.requests if r.kind in ("upload", "deploy"))  # asked by project id
    (deployed,) = cloud.stand_in.endpoints["chat"]["deployedModels"]
    assert deployed["model"] == f"projects/{PROJECT_NUMBER}/locations/us-central1/models/chat"  # answered by number
    code, out, _ = cli_run("status", "chat", "--output", "json")
    (row,) = json.loads(out)["deployments"]
    assert code == 0 and row["live"]["state"] == "serving" and row["drift"] == []
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 0 and "already serving as declared" in err
    assert len(cloud.stand_in.received("deploy")) == 1 and cloud.stand_in.inventory()["deployed_models"] == [f"chat/{deployed['id']}"]


def test_status_maps_vertex_traffic_and_replicas_into_live_states(cloud: GcpCloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", "gcp", "--yes")[0] == 0
    endpoint = cloud.stand_in.endpoints["chat"]
    (deployed,) = endpoint["deployedModels"]
    assert json.loads(cli_run("status", "chat", "--output", "json")[1])["deployments"][0]["live"]["replicas"] == 1
    deployed["status"]["availableReplicaCount"] = 0  # its replicas are down or still starting
    (row,) = json.loads(cli_run("status", "chat", "--output", "json")[1])["deployments"]
    assert (row["live"]["state"], row["drift"]) == ("provisioning", ["the endpoint is provisioning"])
    endpoint["trafficSplit"] = {}  # traffic moved away by hand
    (row,) = json.loads(cli_run("status", "chat", "--output", "json")[1])["deployments"]
    assert (row["live"]["state"], row["drift"]) == ("inactive", ["the endpoint is inactive"])


def test_private_service_connect_is_not_changed_on_a_live_endpoint(cloud: GcpCloud, stack: Path) -> None:
    """Vertex AI takes an endpoint's Private Service Connect only when it makes it (its project
    allowlist "cannot be changed" after, Google's page on PSC endpoints): turning it on for a live
    deployment is refused by `plan` and `up`, saying what to do, with nothing made or journaled."""
    assert cli_run("up", str(stack), "--cloud", "gcp", "--yes")[0] == 0
    stack.write_text(stack.read_text().replace("  gcp:\n", f"  gcp:\n    private_service_connect: [{PROJECT}]\n", 1))
    before = (cloud.creates(), cloud.inventory())
    code, out, _ = cli_run("plan", str(stack), "--cloud", "gcp")
    assert "Private Service Connect projects changed" in " ".join(out.split()), out
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1 and "Vertex AI takes them only when it makes the endpoint: `llamadeploy down chat` then `up`" in err, err
    assert (cloud.creates(), cloud.inventory()) == before
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_private_service_connect_is_called_at_the_forwarding_rule_vertex_ai_makes(cloud: GcpCloud, stack: Path) -> None:
    """With placement.gcp.private_service_connect_network, Vertex AI makes the endpoint's forwarding
    rule in that network as the model is deployed (PSC automation), and a client inside calls
    https://<its IP>/v1/<endpoint>:rawPredict (Google's page on PSC endpoints): `up` reads the IP,
    calls the model there and records it; a network without a service connection policy fails
    the automation, which `up` reports with what to do, and rolls back."""
    network = f"projects/{PROJECT}/global/networks/serving"
    placed = f"  gcp:\n    private_service_connect: [{PROJECT}]\n    private_service_connect_network: {network}\n"
    stack.write_text(stack.read_text().replace("  gcp:\n", placed, 1))
    cloud.stand_in.faults.connection_policy_missing = True
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1 and f"Vertex AI could not make the endpoint's forwarding rule in {network} (CONNECTION_POLICY_MISSING)" in err, err
    assert "service connection policy for the service class gcp-vertexai" in err and "`llamadeploy down chat` and `up`" in err
    assert cloud.empty(), cloud.inventory()

    cloud.stand_in.faults.connection_policy_missing = False
    cloud.stand_in.faults.inside_network = True
    cloud.stand_in.faults.psc_automation_polls = 3  # the forwarding rule comes a little after the model is deployed
    route = json.loads(cli_run("plan", str(stack), "--cloud", "gcp", "--output", "json")[1])["plans"][0]["serving"]["route"]
    assert route.startswith(f"POST https://<the forwarding rule Vertex AI makes in {network}'s address>/v1/projects/"), route
    code, out, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 0 and "chat answers as" in err and "Vertex AI's forwarding rule for chat" in err, err
    assert "curl -sS -k -X POST https://10.128.0." in out, out  # the example works as printed: the certificate is self-signed
    create = [body for body in cloud.stand_in.received("endpoints") if body and body.get("displayName")][-1]  # this run's
    assert create["privateServiceConnectConfig"]["pscAutomationConfigs"] == [{"projectId": PROJECT, "network": network}]
    (row,) = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    assert row["url"].startswith("https://10.128.0.") and row["url"].endswith("/endpoints/chat:rawPredict"), row["url"]
    assert json.loads(cli_run("call", "chat", "--output", "json")[1])["model"]
    cloud.stand_in.faults.inside_network = False  # from outside the network the address has no route
    code, _, err = cli_run("call", "chat")
    assert code == 1 and "call it from inside that network" in err, err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_a_private_service_connect_network_must_be_in_an_allowed_project(stack: Path) -> None:
    stack.write_text(
        stack.read_text().replace(
            "  gcp:\n", "  gcp:\n    private_service_connect: [llm-prod]\n    private_service_connect_network: projects/other/global/networks/x\n", 1
        )
    )
    code, _, err = cli_run("plan", str(stack), "--cloud", "gcp")
    assert code == 1 and "private_service_connect_network's project 'other' must be one of private_service_connect" in err, err


def test_private_service_connect_without_a_network_is_never_called(cloud: GcpCloud, stack: Path) -> None:
    """Without private_service_connect_network the endpoint answers at a forwarding rule the user
    makes, whose address llamadeploy does not know: `up` says it is unchecked without sending the
    token anywhere, `call` says why, and a replace (which must call the new variant before the old
    one goes) is refused before anything is made."""
    stack.write_text(stack.read_text().replace("  gcp:\n", f"  gcp:\n    private_service_connect: [{PROJECT}]\n", 1))
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 0 and "chat was not checked: it is reached only through a forwarding rule you make" in err and "from inside that network" not in err, err
    assert cloud.stand_in.received("raw_predict") == []  # nothing called, no token sent
    code, _, err = cli_run("call", "chat")
    assert code == 1 and "chat cannot be called by llamadeploy: it is reached only through a forwarding rule you make" in err, err
    before = (cloud.creates(), cloud.inventory())
    stack.write_text(stack.read_text().replace("max_context: 8192\n", "max_context: 4096\n"))
    code, _, err = cli_run("up", str(stack), "--cloud", "gcp", "--yes")
    assert code == 1 and "so a new variant cannot be checked before the old one is deleted" in err, err
    assert (cloud.creates(), cloud.inventory()) == before
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()
