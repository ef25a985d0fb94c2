"""`export`: the rendered Pulumi program, run under Pulumi's mocks, declares what `up` sends.

Each program is rendered into a temporary directory and run with `runpy` inside a
`@pulumi.runtime.test` function while `pulumi.runtime.set_mocks` records every resource it
registers; the inputs are compared with what the same stack's `up` sent the cloud stand-in.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")

from orchestrator.iac import templating  # noqa: E402
from providers import registry  # noqa: E402
from tests.checkpoints import checkpoint_files  # noqa: E402
from tests.clouds import HF_TOKEN, Cloud, cli_run  # noqa: E402

# Pulumi wraps a secret input as {SECRET_SIG: SECRET_VALUE_SIG, "value": ...} on the wire.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
CONFIG = {
    "llamadeploy:execution_role_arn": "arn:aws:iam::123456789012:role/SageMakerExecution",
    "azure-native:subscriptionId": "00000000-0000-0000-0000-000000000009",
    "llamadeploy:resource_group": "rg",
    "llamadeploy:workspace": "ws",
    "llamadeploy:compartment_id": "ocid1.compartment.oc1..x",
    "llamadeploy:project_id": "ocid1.project.oc1..x",
    "llamadeploy:subnet_id": "ocid1.subnet.oc1..x",
    "aws:region": "us-east-1",
    "gcp:project": "llamadeploy-test",
}


class Recorder(pulumi.runtime.Mocks):
    """Pulumi's engine, mocked: remembers each resource's type token, name and inputs."""

    def __init__(self) -> None:
        self.resources: list[tuple[str, str, dict[str, Any]]] = []
        self.lookups: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append((args.typ, args.name, args.inputs))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        """What the lookups a program makes would find: an Azure ML workspace, with its storage account;
        an OCI Data Science private endpoint, with its FQDN."""
        self.lookups.append((args.token, dict(args.args)))
        found = {
            "azure-native:machinelearningservices:getWorkspace": {
                "storageAccount": "/subscriptions/s/resourceGroups/rg-storage/providers/Microsoft.Storage/storageAccounts/wsstore",
                "workspaceId": "0000",
            },
            "oci:DataScience/getPrivateEndpoint:getPrivateEndpoint": {"fqdn": "md-1.datascience.us-ashburn-1.oci.private"},
        }
        return found.get(args.token, {})

    def declared(self) -> dict[str, list[dict[str, Any]]]:
        """Inputs by type token, with secrets unwrapped."""
        found: dict[str, list[dict[str, Any]]] = {}
        for typ, _, inputs in self.resources:
            found.setdefault(typ, []).append(_unwrap(inputs))
        return found


def _unwrap(value: Any) -> Any:
    if isinstance(value, pulumi.StringAsset):
        return value.text
    if isinstance(value, dict):
        return _unwrap(value["value"]) if SECRET_SIG in value else {k: _unwrap(v) for k, v in value.items()}
    return [_unwrap(v) for v in value] if isinstance(value, list) else value


def _redacted(value: Any) -> Any:
    if isinstance(value, pulumi.StringAsset):
        return value.text
    if isinstance(value, dict):
        return "[secret]" if SECRET_SIG in value else {k: _redacted(v) for k, v in value.items()}
    return [_redacted(v) for v in value] if isinstance(value, list) else value


@pytest.fixture(autouse=True)
def mocks() -> Iterator[Recorder]:
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="llamadeploy-test", stack="test", preview=False)
    pulumi.runtime.set_all_config({**CONFIG, "llamadeploy:HF_TOKEN": HF_TOKEN}, ["llamadeploy:HF_TOKEN"])
    yield recorder


def run_program(directory: Path) -> None:
    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(directory / "__main__.py"), run_name="__main__")

    program()


def export(stack: Path, cloud: str, to: Path, *extra: str) -> tuple[int, str, str]:
    return cli_run("export", str(stack), "--cloud", cloud, "--to", str(to), *extra)


def test_the_program_declares_what_up_sends(cloud: Cloud, stack: Path, tmp_path: Path, mocks: Recorder) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    sent = cloud.received()
    code, out, err = export(stack, cloud.name, tmp_path / "program")
    assert code == 0, err
    assert "pulumi up" in out
    run_program(tmp_path / "program")
    assert sorted({typ for typ, _, _ in mocks.resources}) == sorted(cloud.program_types)
    declared = cloud.from_program(mocks.declared())
    assert declared == {key: sent[key] for key in declared}
    assert set(sent) - set(declared) <= {"deployment_request", "tags"}  # GCP's Model Garden resource takes no labels
    assert HF_TOKEN in json.dumps(mocks.declared())  # the secret reaches the cloud (or its secret store)...
    assert HF_TOKEN not in json.dumps([_redacted(inputs) for _, _, inputs in mocks.resources])  # ...only as a Pulumi secret
    for path in (tmp_path / "program").iterdir():
        assert HF_TOKEN.encode() not in path.read_bytes(), path
    assert cli_run("down", "chat", "--yes")[0] == 0


@pytest.mark.parametrize("cloud_name", ["aws", "azure", "gcp", "oci"])
def test_every_cloud_exports_a_complete_project(cloud_name: str, write_stack: Any, tmp_path: Path, mocks: Recorder) -> None:
    stack = write_stack(STACK_ON_EVERY_CLOUD)
    code, out, err = export(stack, cloud_name, tmp_path / "out", "--output", "json", "--stack", "prod")
    assert code == 0, err
    result = json.loads(out)
    assert (result["stack"], result["cloud"], result["deployments"]) == ("prod", cloud_name, ["chat", "batch"])
    names = {Path(p).name for p in result["files"]}
    assert {"Pulumi.yaml", "Pulumi.prod.yaml", "requirements.txt", "__main__.py"} <= names
    requirements = (tmp_path / "out" / "requirements.txt").read_text().split()
    assert requirements[0].startswith("pulumi>=") and any(r.startswith(f"pulumi-{cloud_name}") for r in requirements)
    config = (tmp_path / "out" / "Pulumi.prod.yaml").read_text()
    assert "pulumi config set --secret llamadeploy:HF_TOKEN" in config and HF_TOKEN not in config
    assert "llamadeploy-prod" in (tmp_path / "out" / "Pulumi.yaml").read_text()
    run_program(tmp_path / "out")
    names = [name for _, name, _ in mocks.resources]
    assert len(names) == len(set(names)) and any("batch" in n for n in names) and any("chat" in n for n in names)
    tags = [inputs.get("tags") or inputs.get("freeformTags") for _, _, inputs in mocks.resources]
    assert all(t["llamadeploy-deployment"] in ("chat", "batch") for t in tags if t), tags


def test_a_broken_template_is_caught(cloud: Cloud, stack: Path, instance_type: str, tmp_path: Path, mocks: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A template that declares the wrong instance type, or names a value that does not exist, fails."""
    provider = type(registry.get(cloud.name))
    program = tmp_path / "broken" / provider.pulumi_template.name
    program.parent.mkdir()
    text = provider.pulumi_template.read_text()
    assert text.count("v.instance_type | py") + text.count("v.shape | py") + text.count("v.machine_type | py") == 1
    program.write_text(
        text.replace("v.instance_type | py", "'ml.wrong' | py").replace("v.shape | py", "'ml.wrong' | py").replace("v.machine_type | py", "'ml.wrong' | py")
    )
    monkeypatch.setattr(provider, "pulumi_template", program)  # the provider's own template, broken
    try:
        assert export(stack, cloud.name, tmp_path / "wrong")[0] == 0
        run_program(tmp_path / "wrong")
        assert cloud.from_program(mocks.declared())["instance_type"] not in (instance_type, None)
        program.write_text(
            text.replace("v.instance_type", "v.instance_typo").replace("v.shape", "v.instance_typo").replace("v.machine_type", "v.instance_typo")
        )
        templating.environment.cache_clear()
        code, _, err = export(stack, cloud.name, tmp_path / "undefined")
        assert code == 1 and "instance_typo" in err and not (tmp_path / "undefined").exists()
    finally:
        templating.environment.cache_clear()


def test_export_errors_write_nothing(write_stack: Any, tmp_path: Path) -> None:
    no_image = write_stack("name: chat\nmodel: llama3.2-1b-instruct\nplacement:\n  oci: {region: us-ashburn-1}\n")
    code, _, err = export(no_image, "oci", tmp_path / "out")
    assert code == 1 and "placement.oci.image" in err and not (tmp_path / "out").exists()
    code, _, err = export(no_image, "nimbus", tmp_path / "out")
    assert code == 2 and "nimbus" in err
    code, _, err = cli_run("export", str(no_image), "--cloud", "aws")
    assert code == 2 and "--to" in err
    code, _, err = export(no_image, "aws", tmp_path / "out", "--stack", "no spaces")
    assert code == 2 and "--stack" in err and not (tmp_path / "out").exists()


STACK_ON_EVERY_CLOUD = """
deployments:
  - name: chat
    model: llama3.2-1b-instruct
    max_context: 4096
    concurrency: 8
    autoscaling: {min_replicas: 1, max_replicas: 2}
    serving: {secrets: {HF_TOKEN: env:HF_TOKEN}}
    tags: {team: ml}
    placement: {aws: {region: us-east-1}, azure: {region: eastus}, gcp: {region: us-central1}, oci: {region: us-ashburn-1, image: iad.ocir.io/llamadeploy/vllm:0.11}}
  - name: batch
    model: llama3.1-8b-instruct
    max_context: 8192
    concurrency: 16
    autoscaling: {min_replicas: 2, max_replicas: 2}
    serving: {secrets: {HF_TOKEN: env:HF_TOKEN}}
    placement: {aws: {region: us-east-1}, azure: {region: eastus}, gcp: {region: us-central1}, oci: {region: us-ashburn-1, image: iad.ocir.io/llamadeploy/vllm:0.11}}
"""


def test_an_exported_program_serves_the_same_own_weights_with_no_token(cloud: Cloud, stack: Path, tmp_path: Path, mocks: Recorder) -> None:
    """`weights:` reaches the exported program as it reaches the cloud under `up`: the model reads the
    same storage location, and no hub token is declared."""

    uri = cloud.store_weights(checkpoint_files())
    if uri is None:
        return  # refused at load, as `up` refuses it (test_providers)
    stack.write_text(stack.read_text() + f"weights:\n  {cloud.name}: {uri}\n")
    code, _, err = export(stack, cloud.name, tmp_path / "program")
    if not cloud.exports_weights:
        assert code == 2 and f"export cannot declare weights.{cloud.name}" in err and not (tmp_path / "program").exists(), err
        return
    assert code == 0, err
    run_program(tmp_path / "program")
    assert cloud.weights_declared(mocks.declared()) == uri
    declared = json.dumps(mocks.declared())
    assert HF_TOKEN not in declared and "HF_TOKEN" not in declared
    assert "warning" not in err  # the checkpoint was read: its config says how it is stored

    unread = uri.replace("llama-ft", "missing-ft")  # a location holding no checkpoint: the export cannot read one
    stack.write_text(stack.read_text().replace(uri, unread) + "quantization: fp8\n")
    code, _, err = export(stack, cloud.name, tmp_path / "unread")
    assert code == 0 and "warning: chat: " in err and unread in err and "so the program passes --quantization fp8" in err, err


def test_an_exported_program_keeps_the_private_networking(cloud: Cloud, stack: Path, tmp_path: Path, mocks: Recorder) -> None:
    """The private networking `up` sends is declared by the exported program too."""

    block = cloud.private_block()
    if block is None:
        return  # refused at load (test_providers)
    uri = cloud.store_weights(checkpoint_files())
    stack.write_text(stack.read_text().replace(f"  {cloud.name}:\n", f"  {cloud.name}:\n{block}", 1))
    if cloud.private_needs_weights:
        stack.write_text(stack.read_text() + f"weights:\n  {cloud.name}: {uri}\n")
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert cloud.private_received() == cloud.private_ids
    code, _, err = export(stack, cloud.name, tmp_path / "program")
    assert code == 0, err
    run_program(tmp_path / "program")
    assert cloud.private_declared(mocks.declared()) == cloud.private_ids
    if cloud.name == "oci":  # its URL output is the private endpoint's FQDN, looked up, not the public URL
        assert [args["dataSciencePrivateEndpointId"] for token, args in mocks.lookups if token.endswith(":getPrivateEndpoint")] == cloud.private_ids
    assert cli_run("down", "chat", "--yes")[0] == 0
