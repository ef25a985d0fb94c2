"""What only Azure has: what the ARM stand-in received for autoscale and traffic, and the
errors Azure gives that the scenario suite does not cover."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.clouds import AzureCloud, CliProcess, cli_run
from tests.emulators import azure as arm

pytestmark = pytest.mark.parametrize("cloud", ["azure"], indirect=True)


@pytest.fixture
def azure(cloud: AzureCloud) -> AzureCloud:
    return cloud


def test_autoscale_traffic_and_probes_as_received(azure: AzureCloud, stack: Path, instance_type: str) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", "azure", "--yes")
    assert code == 0, err
    endpoint = azure.endpoint_name("chat")
    (autoscale,) = azure.stand_in.received("PUT", "autoscale")
    profile = autoscale["properties"]["profiles"][0]
    assert profile["capacity"] == {"minimum": "1", "maximum": "3", "default": "1"}
    assert autoscale["properties"]["targetResourceUri"].endswith(f"/onlineEndpoints/{endpoint}/deployments/vllm")
    assert [r["scaleAction"]["direction"] for r in profile["rules"]] == ["Increase", "Decrease"]
    triggers = [r["metricTrigger"] for r in profile["rules"]]
    assert {t["metricName"] for t in triggers} == {"RequestsPerMinute"} and all(t["dividePerInstance"] for t in triggers)
    assert triggers[0]["threshold"] == 2 * triggers[1]["threshold"] > 0  # scale in below half the rate that holds the target
    endpoint_puts = azure.stand_in.received("PUT", "endpoint")
    assert endpoint_puts[0]["properties"]["authMode"] == "Key"
    assert endpoint_puts[0]["properties"]["properties"] == {"enforce_access_to_default_secret_stores": "enabled"}  # secret injection needs it
    assert endpoint_puts[0]["identity"]["type"] == "SystemAssigned"
    assert endpoint_puts[-1]["properties"]["traffic"] == {"vllm": 100}
    (deployment,) = azure.stand_in.received("PUT", "deployment")
    properties = deployment["properties"]
    assert properties["scaleSettings"]["scaleType"] == "Default"
    assert properties["livenessProbe"]["initialDelay"].startswith("PT") and properties["readinessProbe"]["failureThreshold"] == 30
    (environment,) = azure.stand_in.received("PUT", "environment")
    registered = next(r.path for r in azure.stand_in.requests if r.method == "PUT" and r.kind == "environment")
    assert "/environments/chat-vllm/versions/" in properties["environmentId"]
    assert properties["environmentId"].endswith(registered.rsplit("/environments/", 1)[1])  # the version it registered
    context = environment["properties"]["build"]["contextUri"]
    assert context.startswith(f"https://{arm.STORAGE_ACCOUNT}.blob.core.windows.net/{arm.BLOB_CONTAINER}/LocalUpload/") and context.endswith("/")
    dockerfile = azure.stand_in.blobs[context.split(".net/", 1)[1] + "Dockerfile"][0].decode()
    assert dockerfile.splitlines() == [
        "FROM vllm/vllm-openai:v0.11.0",
        "ENTRYPOINT python3 -m vllm.entrypoints.openai.api_server --model $MODEL_NAME $VLLM_ARGS",
    ]
    assert environment["properties"]["inferenceConfig"]["scoringRoute"] == {"port": 8000, "path": "/"}
    assert environment["properties"]["inferenceConfig"]["readinessRoute"] == {"port": 8000, "path": "/health"}
    assert properties["environmentVariables"]["MODEL_NAME"] == "meta-llama/Llama-3.2-1B-Instruct"


def test_instance_type_the_region_does_not_offer(azure: AzureCloud, stack: Path, instance_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(arm.INSTANCE_TYPES, arm.LOCATION, arm.INSTANCE_TYPES[arm.LOCATION] - {instance_type})
    code, _, err = cli_run("up", str(stack), "--cloud", "azure", "--yes")
    assert code == 1
    assert f"Instance type {instance_type} is not supported in region eastus" in err
    assert "Azure ML has no capacity for this now" in err and "try another region or cloud" in err  # a CapacityError
    assert azure.empty(), azure.inventory()


def test_refused_credentials_are_an_auth_error(azure: AzureCloud, stack: Path) -> None:
    azure.stand_in.faults.token_refused = True
    # A process of its own, with no SDK client yet: within this one, an earlier test's client still holds a valid token.
    code, err = CliProcess("up", str(stack), "--cloud", "azure", "--yes").wait()
    assert code == 1 and "Traceback" not in err
    assert "Error: up of 'chat' on azure failed: no Azure credentials found" in err or "Azure refused the credentials" in err
    assert "ActivityCompleted" not in err  # azure-ai-ml's telemetry stays out of the user's terminal
    assert azure.creates() == 0 and azure.empty()


def test_endpoint_names_are_unique_in_the_region_and_within_azures_rules(azure: AzureCloud, stack: Path) -> None:
    """`chat` is taken in eastus by someone else (the stand-in's TAKEN_ENDPOINT_NAMES): a bare
    deployment name would collide; and a 40-character deployment name would pass Azure's 32."""
    assert "chat" in arm.TAKEN_ENDPOINT_NAMES
    long_name = "a" * 36 + "-bot"
    stack.write_text(stack.read_text().replace("name: chat", f"name: {long_name}"))
    code, out, err = cli_run("up", str(stack), "--cloud", "azure", "--yes")
    assert code == 0, err
    (endpoint,) = azure.inventory()["endpoints"]
    assert re.fullmatch(r"a{23}-[0-9a-f]{8}", endpoint) and len(endpoint) <= 32
    assert f"https://{endpoint}.eastus.inference.ml.azure.com/v1/chat/completions" in out
    assert cli_run("down", long_name, "--yes")[0] == 0 and azure.empty()


def test_plan_says_a_hub_download_goes_through_the_workspaces_managed_network(azure: AzureCloud, stack: Path) -> None:
    """A managed online deployment reaches out as the workspace's managed network allows: `plan`
    says so, and what a Hub download then needs (FQDN rules, or weights.azure)."""
    code, out, err = cli_run("plan", str(stack), "--cloud", "azure", "--output", "json")
    assert code == 0, err
    serving = json.loads(out)["plans"][0]["serving"]
    assert "managed network allows" in serving["reached"] and "internet access" not in serving["reached"], serving["reached"]
    (need,) = [need for need in serving["needs"] if "managed network" in need]
    assert "allow_only_approved_outbound" in need and "FQDN outbound rules" in need and "weights.azure" in need, need
