"""Stack files: what parses, and every bad input named in the foundation issue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.declared.stackfile import load_stack
from orchestrator.errors import SpecError

Write = Callable[..., Path]


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_stack(path)
    return [str(p) for p in caught.value.problems]


def test_single_deployment_with_defaults(write_stack: Write) -> None:
    stack = load_stack(write_stack("name: chat\nmodel: llama3.1-8b-instruct\n"))
    (d,) = stack.deployments
    assert (d.name, d.quantization, d.max_context, d.concurrency, d.gpu) == ("chat", "bf16", 8192, 16, "auto")
    assert (d.autoscaling.min_replicas, d.autoscaling.max_replicas, d.target_concurrent_requests) == (1, 1, 16)
    assert d.serving.secrets == {"HF_TOKEN": "env:HF_TOKEN"}
    assert d.model_ref.hf_repo == "meta-llama/Llama-3.1-8B-Instruct"


def test_every_shipped_stack_is_valid() -> None:
    stacks = sorted((Path(__file__).parent.parent / "stacks").glob("*.yaml"))
    assert len(stacks) >= 4
    for path in stacks:
        assert load_stack(path).deployments


def test_several_deployments(write_stack: Write) -> None:
    stack = load_stack(
        write_stack("""
        deployments:
          - {name: a, model: llama3.2-1b-instruct, gpu: l4}
          - {name: b, model: meta-llama/Llama-3.3-70B-Instruct, quantization: FP8}
    """)
    )
    assert [d.name for d in stack.deployments] == ["a", "b"]
    assert stack.deployments[0].gpu == "L4"  # letter case is forgiven, spelling is not
    assert stack.deployments[1].quantization == "fp8"
    assert stack.get("b").model_ref.model.name == "llama3.3-70b-instruct"


def test_malformed_yaml_names_the_line(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\n  gpu: [H100\n"))
    assert msg.startswith(f"{Path(msg.split(':')[0])}:3: invalid YAML")


def test_unknown_key_suggests_the_nearest(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\nautoscaling:\n  min_replica: 2\n"))
    assert ":4: autoscaling.min_replica: unknown key; did you mean 'min_replicas'?" in msg


def test_unknown_cloud_in_placement(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\nplacement:\n  azrue: {region: eastus}\n"))
    assert ":4: placement.azrue: unknown cloud 'azrue'; did you mean 'azure'? known clouds: aws, azure, gcp, oci" in msg


def test_each_cloud_validates_its_own_placement(write_stack: Write) -> None:
    text = "name: a\nmodel: llama3.1-8b\nplacement:\n  aws: {region: us-east-1, workspace: w, execution_role_arn: nope}\n  oci:\n    subnet_id: ocid1.vcn.x\n"
    found = problems(write_stack(text))
    assert any(":4: placement.aws.workspace: unknown key; valid keys here: region, execution_role_arn, endpoint_url" in m for m in found), found
    assert any(":4: placement.aws.execution_role_arn: 'nope' is not valid; use an IAM role ARN" in m for m in found), found
    assert any(":6: placement.oci.subnet_id: 'ocid1.vcn.x' is not valid; use the subnet's OCID" in m for m in found), found


def test_wrong_type_is_not_coerced(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\nconcurrency: '32'\n"))
    assert ":3: concurrency: Input should be a valid integer (got '32')" in msg


@pytest.mark.parametrize("value", ["0", "-4"])
def test_zero_or_negative_values(write_stack: Write, value: str) -> None:
    (msg,) = problems(write_stack(f"name: a\nmodel: llama3.1-8b\nmax_context: {value}\n"))
    assert f":3: max_context: Input should be greater than 0 (got {value})" in msg


def test_min_replicas_above_max(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\nautoscaling:\n  min_replicas: 3\n  max_replicas: 2\n"))
    assert ":4: autoscaling.min_replicas: min_replicas (3) is above max_replicas (2)" in msg


def test_max_context_over_the_models_limit(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama-3-8b-instruct\nmax_context: 16384\n"))
    assert ":3: max_context: 16384 tokens is over llama-3-8b-instruct's limit of 8192" in msg


def test_unknown_model(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-80b-instruct\n"))
    assert ":2: model: unknown model 'llama3.1-80b-instruct'; did you mean llama3.1-8b-instruct" in msg


def test_unknown_gpu(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\ngpu: H1000\n"))
    assert ":3: gpu: unknown GPU type 'H1000'; did you mean 'H100'?" in msg


def test_fp8_checkpoint_cannot_be_served_as_bf16(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: meta-llama/Llama-3.1-405B-Instruct-FP8\nquantization: bf16\n"))
    assert ":3: quantization: meta-llama/Llama-3.1-405B-Instruct-FP8 is a fp8 checkpoint" in msg


def test_duplicate_names(write_stack: Write) -> None:
    (msg,) = problems(write_stack("deployments:\n  - {name: a, model: llama3.1-8b}\n  - {name: a, model: llama3.1-8b}\n"))
    assert ":3: deployments[1].name: duplicate deployment name 'a'" in msg


def test_duplicate_yaml_key(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\nname: b\n"))
    assert ":3: name: duplicate key" in msg


def test_literal_secret_is_refused_and_never_echoed(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: a\nmodel: llama3.1-8b\nserving:\n  secrets: {HF_TOKEN: hf_SeCrEt123}\n"))
    assert "must be a reference such as env:HF_TOKEN" in msg
    assert "hf_SeCrEt123" not in msg


def test_bad_name(write_stack: Write) -> None:
    (msg,) = problems(write_stack("name: Chat_70B\nmodel: llama3.1-8b\n"))
    assert ":1: name: 'Chat_70B' is not valid; use lowercase letters" in msg


def test_many_problems_reported_at_once_in_line_order(write_stack: Write) -> None:
    found = problems(write_stack("name: a\nmodle: llama3.1-8b\ngpu: H10\nconcurrency: 0\n"))
    assert len(found) == 4  # missing model, unknown key, bad gpu, zero concurrency
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)


def test_empty_file(write_stack: Write) -> None:
    (msg,) = problems(write_stack(""))
    assert "the file is empty" in msg


def test_missing_file(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path / "nope.yaml")
    assert "no such file" in msg


def test_directory(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path)
    assert "is a directory" in msg


def test_not_a_mapping(write_stack: Write) -> None:
    (msg,) = problems(write_stack("- just\n- a list\n"))
    assert "must be a mapping" in msg


def test_key_beside_deployments(write_stack: Write) -> None:
    (msg,) = problems(write_stack("deployments:\n  - {name: a, model: llama3.1-8b}\nregion: us-east-1\n"))
    assert ":3: region: unknown key beside `deployments:`" in msg


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_an_alias_bomb_is_refused_before_it_expands(write_stack: Write) -> None:
    (msg,) = problems(write_stack(BOMB))
    assert "its aliases expand to more than 100,000 values (an alias bomb?)" in msg


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: nothing is written
    (msg,) = problems(path)
    assert "is 65 MiB; a stack file may be at most 64 MiB" in msg


def test_shared_anchors_and_merge_keys_still_load(write_stack: Write) -> None:
    text = "defaults: &d {model: llama3.2-1b-instruct, max_context: 2048}\ndeployments:\n" + "".join(f"  - {{<<: *d, name: chat-{i}}}\n" for i in range(200))
    with pytest.raises(SpecError) as caught:  # `defaults` is not a stack key: the file loaded, and only that is wrong
        load_stack(write_stack(text))
    assert all("defaults" in str(problem) for problem in caught.value.problems)


def test_weights_are_checked_by_each_clouds_provider_with_their_lines(write_stack: Write) -> None:
    """`weights.<cloud>` is a location in that cloud's object storage, in the form its service reads;
    a default hub token is not asked for once the stack serves its own weights."""
    stack = write_stack(
        "name: ft\nmodel: llama3.1-8b-instruct\nweights:\n  aws: s3://my-models/llama-ft\n  azure: azureml://x/y/\n  mars: s3://x/y/\n  gcp: not a uri\n  oci: oci://models/ft/\n"
    )
    with pytest.raises(SpecError) as caught:
        load_stack(stack)
    message = str(caught.value)
    assert ":4: weights.aws: must end with / : SageMaker reads a key name prefix (S3Prefix) of uncompressed files, e.g. s3://my-models/llama-ft/" in message
    assert ":5: weights.azure: must be a folder on a workspace datastore, as azureml://datastores/<datastore>/paths/<folder>/ (ending in /)" in message
    assert ":8: weights.oci: must be a folder in Object Storage, as oci://<bucket>@<namespace>/<prefix>/" in message
    assert ":6: weights.mars: unknown cloud 'mars'" in message and ":7: weights.gcp: must be a gs:// location" in message


def test_own_weights_drop_the_default_hub_token_on_their_cloud_only(write_stack: Write) -> None:
    """Weights in the user's own storage need no Hugging Face token there; the same deployment on a
    cloud without `weights:` still downloads gated Llama weights from the hub, with the token."""
    from orchestrator.declared.secrets import sent_secrets

    (deployment,) = load_stack(write_stack("name: ft\nmodel: llama3.1-8b-instruct\nweights: {aws: s3://my-models/llama-ft/}\n")).deployments
    assert sent_secrets(deployment, own_weights=True) == {} and sent_secrets(deployment, own_weights=False) == {"HF_TOKEN": "env:HF_TOKEN"}
    (kept,) = load_stack(
        write_stack("name: ft\nmodel: llama3.1-8b-instruct\nweights: {aws: s3://m/ft/}\nserving: {secrets: {HUGGING_FACE_HUB_TOKEN: env:HF_TOKEN}}\n")
    ).deployments
    assert sent_secrets(kept, own_weights=True) == {"HUGGING_FACE_HUB_TOKEN": "env:HF_TOKEN"}  # one the stack names otherwise is sent
    from orchestrator.lifecycle.record import Record

    recorded = Record.__new__(Record)
    object.__setattr__(recorded, "spec", deployment.model_dump(mode="json"))
    assert sent_secrets(recorded.declared(), own_weights=True) == {}  # read back from a record (move, resume): still none


def test_the_hub_token_weights_stage_fetches_with_is_the_declared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """`weights stage` fetches with the deployment's own HF_TOKEN reference: the default variable, another
    one named, or none when the stack turns the default off (`secrets: {}`)."""
    from orchestrator.declared.secrets import hub_token
    from orchestrator.declared.stackfile import parse_deployment

    monkeypatch.setenv("HF_TOKEN", "default-token")
    monkeypatch.setenv("TEAM_HF", "team-token")
    base = {"name": "a", "model": "llama3.1-8b-instruct"}
    assert hub_token(parse_deployment(base)) == "default-token"
    assert hub_token(parse_deployment({**base, "serving": {"secrets": {"HF_TOKEN": "env:TEAM_HF"}}})) == "team-token"
    assert hub_token(parse_deployment({**base, "serving": {"secrets": {}}})) is None
