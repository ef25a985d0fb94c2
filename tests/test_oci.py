"""What only OCI has: the deployment as received (shape, counts, scaling, container ports),
OCIR images, config profiles and resource principals."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from tests.checkpoints import checkpoint_files
from tests.clouds import OCIR_IMAGE, SUBNET, OciCloud, cli_run

pytestmark = pytest.mark.parametrize("cloud", ["oci"], indirect=True)


def _created(cloud: OciCloud) -> dict:
    (created,) = cloud.stand_in.received("POST", "deployments")
    return created["modelDeploymentConfigurationDetails"]


def test_shape_scaling_and_container_as_received(cloud: OciCloud, stack: Path) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 0, err
    details = _created(cloud)
    model = details["modelConfigurationDetails"]
    assert model["instanceConfiguration"] == {"instanceShapeName": "VM.GPU.A10.1", "subnetId": SUBNET}  # custom networking: the hub download
    policy = model["scalingPolicy"]
    assert (policy["policyType"], policy["isEnabled"]) == ("AUTOSCALING", True)
    (threshold,) = policy["autoScalingPolicies"]
    assert (threshold["minimumInstanceCount"], threshold["maximumInstanceCount"], threshold["initialInstanceCount"]) == (1, 3, 1)
    (rule,) = threshold["rules"]
    assert rule["metricExpressionRuleType"] == "CUSTOM_EXPRESSION"  # requests, not CPU: a GPU server's CPU says little
    out, scale_in = rule["scaleOutConfiguration"]["query"], rule["scaleInConfiguration"]["query"]
    assert out.startswith('PredictRequestCount[1m]{resourceId = "MODEL_DEPLOYMENT_OCID"}.grouping().mean() > ')
    assert ".absent() == 1 ||" in scale_in and float(out.rsplit(" ", 1)[1]) == 2 * float(scale_in.rsplit(" ", 1)[1])
    environment = details["environmentConfigurationDetails"]
    assert (environment["environmentConfigurationType"], environment["image"]) == ("OCIR_CONTAINER", OCIR_IMAGE)
    assert (environment["serverPort"], environment["healthCheckPort"]) == (8080, 8080)
    # Oracle's BYOC samples: no entrypoint, vLLM's options only in cmd (they follow the image's ENTRYPOINT).
    assert "entrypoint" not in environment and environment["cmd"][:2] == ["--model", "meta-llama/Llama-3.2-1B-Instruct"]
    assert environment["cmd"][-4:] == ["--host", "0.0.0.0", "--port", "8080"]
    variables = environment["environmentVariables"]
    assert (variables["MODEL_DEPLOY_PREDICT_ENDPOINT"], variables["SHM_SIZE"]) == ("/v1/chat/completions", "10g")
    assert int(variables["STORAGE_SIZE_IN_GB"]) >= 50 and 1 <= int(variables["DEPLOYMENT_TIMEOUT_IN_MINUTES"]) <= 240
    (model_created,) = cloud.stand_in.received("POST", "models")
    assert (model_created["displayName"], model_created["freeformTags"]["llamadeploy-deployment"]) == ("chat-model", "chat")
    assert [r.kind for r in cloud.stand_in.requests].count("artifact") == 1  # bring-your-own-container still needs one


def test_fixed_size_when_min_equals_max(cloud: OciCloud, stack: Path) -> None:
    stack.write_text(stack.read_text().replace("max_replicas: 3", "max_replicas: 1"))
    assert cli_run("up", str(stack), "--cloud", "oci", "--yes")[0] == 0
    assert _created(cloud)["modelConfigurationDetails"]["scalingPolicy"] == {"policyType": "FIXED_SIZE", "instanceCount": 1}


def test_an_unknown_shape_is_rejected_and_rolled_back(cloud: OciCloud, stack: Path, tmp_path: Path, mini_catalog_path: Path) -> None:
    offers = tmp_path / "offers.csv"
    offers.write_text(
        mini_catalog_path.read_text().splitlines()[0] + "\n"
        "oci,OCI Data Science model deployment,us-ashburn-1,VM.GPU.NOPE.1,A10,1,24,30,240,0.5,,VM list price (service bills VM price),test,\n"
    )
    code, _, err = cli_run("--catalog", str(offers), "up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "Invalid shape VM.GPU.NOPE.1" in err and "rolled back" in err
    assert cloud.empty(), cloud.inventory()


def test_an_ocir_image_and_a_subnet_are_required_before_anything_is_created(cloud: OciCloud, stack: Path) -> None:
    text = stack.read_text()
    stack.write_text(text.replace(f"    image: {OCIR_IMAGE}\n", "").replace(f"    subnet_id: {SUBNET}\n", ""))
    code, out, _ = cli_run("plan", str(stack), "--cloud", "oci")
    assert code == 0 and "OCI Data Science runs containers from OCIR only" in out and "placement.oci.subnet_id" in out  # said at plan
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "`up` on oci needs placement.oci.image, subnet_id" in err
    assert cloud.creates() == 0
    stack.write_text(text.replace(OCIR_IMAGE, "docker.io/vllm/vllm-openai:v0.11.0"))
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "placement.oci.image" in err and "iad.ocir.io/<namespace>/vllm-openai" in err
    assert cloud.creates() == 0


def test_a_named_profile_of_the_config_file(cloud: OciCloud, stack: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = Path(cloud.environment()["OCI_CONFIG_FILE"])
    team = tmp_path / "config"
    team.write_text(config.read_text().replace("[DEFAULT]", "[team]"))
    monkeypatch.setenv("OCI_CONFIG_FILE", str(team))
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "OCI configuration problem" in err  # no DEFAULT profile in this file
    stack.write_text(stack.read_text().replace("    endpoint:", "    profile: team\n    endpoint:"))
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 0, err


def test_resource_principals(cloud: OciCloud, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    token = ".".join([part({"alg": "RS256", "typ": "JWT"}), part({"exp": int(time.time()) + 3600, "res_tenant": "ocid1.tenancy.oc1..t"}), "c2ln"])
    monkeypatch.delenv("OCI_CONFIG_FILE")
    for name, value in {"VERSION": "2.2", "RPST": token, "PRIVATE_PEM": pem, "REGION": "us-ashburn-1"}.items():
        monkeypatch.setenv(f"OCI_RESOURCE_PRINCIPAL_{name}", value)
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 0, err
    assert cloud.inventory()["model_deployments"] == ["chat"]  # the stand-in refuses unsigned requests


def test_a_model_whose_artifact_upload_failed_is_finished_not_adopted_as_complete(cloud: OciCloud, stack: Path) -> None:
    """The model exists before its artifact: an upload that fails (and the run's retry) must neither orphan
    the model nor adopt it as complete (OCI refuses to deploy a model without an artifact)."""
    cloud.stand_in.faults.artifact_failures = 1
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 0, err
    assert "retry in" in err and "adopted " in err  # the retried apply found the model it had made, and finished it
    (model,) = cloud.stand_in.models.values()
    assert model["hasArtifact"] and cloud.creates() == 2  # one model, one deployment
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_new_weights_on_a_live_deployment_are_refused_before_anything_is_made(cloud: OciCloud, stack: Path) -> None:
    """An OCI update names the model the deployment serves again: a new weights.oci location is refused
    by `plan` and `up` with what to do, nothing journaled or made, the old one serving as it was."""

    uri = cloud.store_weights(checkpoint_files())
    stack.write_text(stack.read_text() + f"weights:\n  oci: {uri}\n")
    assert cli_run("up", str(stack), "--cloud", "oci", "--yes")[0] == 0
    for name, body in checkpoint_files().items():
        cloud.stand_in.put_object("my-models", f"llama-ft-2/{name}", body)
    stack.write_text(stack.read_text().replace(uri, uri.replace("llama-ft/", "llama-ft-2/")))
    before = (cloud.creates(), cloud.inventory())
    code, out, _ = cli_run("plan", str(stack), "--cloud", "oci")
    assert "llamadeploy does not swap the model an OCI model deployment serves in place yet" in " ".join(out.split()), out
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "its weights changed" in err and "`llamadeploy down chat` then `up`" in err, err
    assert (cloud.creates(), cloud.inventory()) == before
    code, out, _ = cli_run("status", "--output", "json")
    (row,) = json.loads(out)["deployments"]
    assert [h["operation"] for h in row["history"]] == ["up"]  # nothing journaled for the refused replace
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_own_weights_need_no_subnet_and_run_without_internet(cloud: OciCloud, stack: Path) -> None:
    """A model by reference is copied by the service itself: with weights.oci, up needs no subnet, the
    container runs in default networking (no internet) and still loads and serves the checkpoint."""

    uri = cloud.store_weights(checkpoint_files())
    stack.write_text(stack.read_text().replace(f"    subnet_id: {SUBNET}\n", "") + f"weights:\n  oci: {uri}\n")
    code, out, err = cli_run("plan", str(stack), "--cloud", "oci", "--output", "json")
    serving = json.loads(out)["plans"][0]["serving"]
    assert "default networking, with no internet access" in serving["reached"] and not any("subnet" in need for need in serving["needs"]), serving
    (grant,) = [need for need in serving["needs"] if need.startswith("the Data Science service must read")]
    bucket = uri.removeprefix("oci://").split("@")[0]
    assert f"target.bucket.name='{bucket}'" in grant and "resource.type='datasciencemodeldeployment'" in grant, grant  # both grants Oracle's samples give
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 0 and f"chat answers as {uri}" in err, err
    (deployment,) = cloud.stand_in.received("POST", "deployments")
    assert "subnetId" not in deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["instanceConfiguration"]
    assert cli_run("down", "chat", "--yes")[0] == 0
    stack.write_text(stack.read_text().replace(f"weights:\n  oci: {uri}\n", ""))
    before = cloud.creates()
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")  # the hub's checkpoint needs the route out
    assert code == 1 and "needs placement.oci.subnet_id" in err and cloud.creates() == before, err
    assert cloud.empty(), cloud.inventory()


def test_a_subnet_without_a_way_out_is_refused_before_anything_is_made(cloud: OciCloud, stack: Path) -> None:
    """With custom networking the container downloads from the Hugging Face Hub through the subnet:
    `up` reads its route table first and makes nothing while it has no route out; a route to an
    internet gateway is one (Oracle's docs: a NAT or internet gateway); a subnet it cannot read is
    said, and the service has the last word."""
    bare, public = "ocid1.subnet.oc1.iad.bare", "ocid1.subnet.oc1.iad.public"
    cloud.stand_in.subnets[bare] = []
    cloud.stand_in.subnets[public] = [{"destination": "0.0.0.0/0", "networkEntityId": "ocid1.internetgateway.oc1.iad.test"}]
    stack.write_text(stack.read_text().replace(SUBNET, bare))
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "stopped before creating anything" in err and f"through {bare}, and its route table ocid1.routetable.{bare}" in err, err
    assert "has no route out" in err and "weights.oci" in err and cloud.creates() == 0, err
    assert {"subnets", "routeTables"} <= {r.kind for r in cloud.stand_in.requests}

    cloud.stand_in.faults.network_unreadable = True  # a policy without `read virtual-network-family`: said, and the start then fails
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "network not checked" in err and f"reading subnet {bare}" in err and "rolled back" in err, err
    assert cloud.empty(), cloud.inventory()
    cloud.stand_in.faults.network_unreadable = False

    stack.write_text(stack.read_text().replace(bare, public))
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 0 and "chat answers as" in err, err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()
