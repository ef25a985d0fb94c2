"""The serving contract without a cloud: which checkpoint is served, what `plan` says about each
cloud's container, scaling signal and startup limit, and how the stand-in vLLM and LMI start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.declared.stackfile import load_stack
from orchestrator.planning.planner import plan
from orchestrator.pricing.catalog import load_catalog
from orchestrator.sizing.memory import GIB, weight_bytes
from tests.clouds import Cloud, cli_run
from tests.emulators import containers, vllm
from tests.emulators.vllm import ContainerFailed

REPO = Path(__file__).parent.parent


def test_int4_of_a_model_without_an_int4_checkpoint_is_refused_with_the_alternatives(write_stack: Any) -> None:
    stack = write_stack("name: chat\nmodel: llama3.2-1b-instruct\nquantization: int4\n")
    code, _, err = cli_run("plan", str(stack), "--cloud", "aws")
    assert code == 1
    assert f"{stack}:3: quantization: no int4 checkpoint of llama3.2-1b-instruct is known" in err
    assert "use quantization: fp8" in err and "llama3.1-8b-instruct" in err


def test_int4_is_sized_from_its_awq_checkpoint(write_stack: Any) -> None:
    """AWQ keeps embeddings, output layer and norms in bf16 and stores each group of 128 linear
    weights in 4 bits plus an fp16 scale and a 4-bit zero: 8B is 6.98e9 linear parameters x
    (0.5 + 2.5/128) B + 1.05e9 others x 2 B = 5.73e9 B = 5.33 GiB (hugging-quants' files: 5.7 GB)."""
    loaded = load_stack(write_stack("name: chat\nmodel: llama3.1-8b-instruct\nquantization: int4\nmax_context: 4096\nconcurrency: 4\n"))
    planned = plan(loaded, loaded.deployments[0], "aws", load_catalog())
    model = planned.requirements.model
    assert (model.linear_parameters, model.parameters - model.linear_parameters) == (6_979_321_856, 1_050_939_392)
    assert planned.requirements.weights_bytes == pytest.approx(6_979_321_856 * (0.5 + 2.5 / 128) + 1_050_939_392 * 2)
    assert planned.requirements.weights_gib == pytest.approx(5.334, abs=1e-3)
    assert planned.checkpoint.repo == "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4" and planned.checkpoint.load_quantization is None


def test_fp8_of_a_bf16_checkpoint_quantizes_at_load_and_downloads_bf16(write_stack: Any) -> None:
    loaded = load_stack(write_stack("name: chat\nmodel: llama3.1-8b-instruct\nquantization: fp8\n"))
    planned = plan(loaded, loaded.deployments[0], "aws", load_catalog())
    assert (planned.checkpoint.repo, planned.checkpoint.load_quantization) == ("meta-llama/Llama-3.1-8B-Instruct", "fp8")
    _code, out, _ = cli_run("plan", str(loaded.path), "--cloud", "aws", "--output", "json")
    (p,) = json.loads(out)["plans"]
    assert f"{weight_bytes(planned.requirements.model, 'bf16') / GIB:.0f} GiB from the Hugging Face Hub" in p["serving"]["startup"]["verdict"]


EXPECTED_SIGNALS = {
    "aws": ("SageMakerVariantConcurrentRequestsPerModelHighResolution", "requests in flight per instance"),
    "azure": ("RequestsPerMinute (per instance)", "requests per minute per instance"),
    "gcp": ("aiplatform.googleapis.com/prediction/online/request_count", "requests per minute per replica"),
    "oci": ("PredictRequestCount (per instance, custom MQL rule)", "requests per minute per instance"),
}


@pytest.mark.parametrize("cloud", list(EXPECTED_SIGNALS))
def test_plan_names_each_clouds_scaling_signal_image_start_and_startup(cloud: str) -> None:
    code, out, err = cli_run("plan", str(REPO / "stacks" / "llama-3.1-8b.yaml"), "--cloud", cloud, "--output", "json")
    assert code == 0, err
    (p,) = json.loads(out)["plans"]
    serving = p["serving"]
    assert (serving["scaling"]["metric"], serving["scaling"]["unit"]) == EXPECTED_SIGNALS[cloud] and serving["scaling"]["target"] > 0
    assert serving["checkpoint"] == "meta-llama/Llama-3.1-8B-Instruct" and serving["image"] and serving["started"] and serving["route"]
    assert serving["startup"]["can_start"] is True
    code, out, _ = cli_run("plan", str(REPO / "stacks" / "llama-3.1-8b.yaml"), "--cloud", cloud)
    scales_on = next(line for line in out.splitlines() if line.startswith("scales on"))
    assert code == 0 and f"{EXPECTED_SIGNALS[cloud][0]} at" in scales_on and "\nstartup " in out and "\nroute " in out


@pytest.mark.parametrize("cloud", ["aws"], indirect=True)
def test_a_405b_hub_download_sagemaker_cannot_wait_for_is_said_at_plan_and_refused_at_up(cloud: Cloud, tmp_path: Path) -> None:
    """405B's FP8 checkpoint is 378 GiB: at ~100 MiB/s its download alone takes 3,870 s, past
    SageMaker's 3,600 s ContainerStartupHealthCheckTimeoutInSeconds."""
    stack = tmp_path / "405b.yaml"
    stack.write_text("name: big\nmodel: meta-llama/Llama-3.1-405B-Instruct-FP8\nquantization: fp8\nmax_context: 8192\nconcurrency: 8\n" + cloud.placement())
    code, out, _ = cli_run("plan", str(stack), "--cloud", "aws", "--output", "json")
    (p,) = json.loads(out)["plans"]
    assert code == 0 and p["serving"]["startup"]["can_start"] is False
    assert "cannot start in time: ContainerStartupHealthCheckTimeoutInSeconds" in p["serving"]["startup"]["verdict"]
    assert "quantization: int4" in p["serving"]["startup"]["verdict"]  # 405B's AWQ checkpoint downloads half as much
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "cannot start in time" in err and "Traceback" not in err
    assert cloud.creates() == 0 and cloud.empty()
    code, out, _ = cli_run("plan", str(stack), "--cloud", "azure", "--output", "json")
    assert json.loads(out)["plans"][0]["serving"]["startup"]["can_start"] is True  # Azure ML sets no such limit
    assert "the weights staged in aws's object storage (`llamadeploy weights stage`, then weights.aws)" in p["serving"]["startup"]["verdict"]
    # Staged in S3, the copy comes from the same region's storage, before the container's timer starts.
    stack.write_text(stack.read_text() + "weights: {aws: s3://my-models/llama-405b-fp8/}\n")
    code, out, err = cli_run("plan", str(stack), "--cloud", "aws", "--output", "json", "--no-refresh")
    startup = json.loads(out)["plans"][0]["serving"]["startup"]
    assert code == 0 and startup["can_start"] is True, err
    assert (
        "GiB from your object storage at ~500 MiB/s" in startup["verdict"]
        and "from the container's start: SageMaker copies the model data first" in startup["verdict"]
    )


# The stand-in vLLM: vLLM 0.11.0's real options, its failures.


def _start(argv: list[str], env: dict[str, str] | None = None, gpus: int = 1) -> vllm.Server:
    return vllm.start(argv, {"HF_TOKEN": vllm.VALID_TOKEN} if env is None else env, gpus)


SERVER = ["python3", "-m", "vllm.entrypoints.openai.api_server"]


def test_the_stand_in_vllm_parses_as_vllm_does() -> None:
    server = _start(
        [
            *SERVER,
            "--model=meta-llama/Llama-3.2-1B-Instruct",
            "--max_model_len",
            "4096",
            "--enforce-eager",
            "--no-enable-prefix-caching",
            "--served-model-name",
            "a",
            "b",
            "--port",
            "8080",
            "--max-num-seq",
            "4",
        ]
    )
    assert (server.model, server.served_names, server.port, server.max_model_len) == ("meta-llama/Llama-3.2-1B-Instruct", ["a", "b"], 8080, 4096)
    status, answer = server.handle("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "model": "b"})
    assert status == 200 and answer["model"] == "a"  # the first served name, whatever name the request used
    assert server.handle("POST", "/v1/chat/completions", {"messages": [], "model": "other"})[0] == 404
    assert server.handle("GET", "/health", None)[0] == 200 and server.handle("GET", "/v1/models", None)[1]["data"][1]["id"] == "b"
    with pytest.raises(ContainerFailed, match="unrecognized arguments: --not-an-option") as failed:
        _start([*SERVER, "--model", "meta-llama/Llama-3.2-1B-Instruct", "--not-an-option", "1"])
    assert failed.value.code == 2
    with pytest.raises(ContainerFailed, match="ambiguous option: --max-num"):
        _start([*SERVER, "--max-num", "4"])


def test_the_stand_in_vllm_fails_as_vllm_does() -> None:
    assert _start(SERVER).model == "Qwen/Qwen3-0.6B"  # no --model: vLLM 0.11.0's default, which starts happily
    assert _start([*SERVER, "meta-llama/Llama-3.2-1B-Instruct"]).model == "Qwen/Qwen3-0.6B"  # the module ignores a positional model
    assert _start(["vllm", "serve", "meta-llama/Llama-3.2-1B-Instruct"]).model == "meta-llama/Llama-3.2-1B-Instruct"  # `vllm serve` takes it
    cases = [
        ([*SERVER, "vllm", "serve", "meta-llama/Llama-3.2-1B-Instruct"], {}, 1, "unrecognized arguments: serve"),
        ([*SERVER, "--model", "meta-llama/Llama-3.2-1B-Instruct"], {}, 1, "gated repo"),
        ([*SERVER, "--model", "meta-llama/Llama-3.2-1B-Instruct"], {"HF_TOKEN": "${{azureml://connections/x/credentials/key}}"}, 1, "gated repo"),
        ([*SERVER, "--model", "nobody/nothing"], None, 1, "is not a valid model identifier"),
        ([*SERVER, "--model", "meta-llama/Llama-3.1-8B-Instruct", "--quantization", "awq"], None, 1, "Cannot find the config file for awq"),
        ([*SERVER, "--model", "meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size", "2"], None, 1, "exceeds the total number of available GPUs"),
        ([*SERVER, "--model", "meta-llama/Llama-3.2-1B-Instruct", "--max-model-len", "200000"], None, 1, "greater than the derived max_model_len"),
        (["vllm", "serve", "--model", "meta-llama/Llama-3.2-1B-Instruct"], None, 1, "provide the model as a positional argument"),
    ]
    for argv, env, gpus, message in cases:
        with pytest.raises(ContainerFailed, match=message):
            _start(argv, env, gpus)
    assert _start([*SERVER, "--model", "meta-llama/Llama-3.1-8B-Instruct", "--quantization", "fp8"]).model == "meta-llama/Llama-3.1-8B-Instruct"


def test_the_stand_in_lmi_reads_environment_only() -> None:
    env = {
        "HF_MODEL_ID": "meta-llama/Llama-3.2-1B-Instruct",
        "HF_TOKEN": vllm.VALID_TOKEN,
        "TENSOR_PARALLEL_DEGREE": "1",
        "OPTION_MAX_MODEL_LEN": "4096",
        "OPTION_NOT_A_VLLM_OPTION": "x",
    }
    lmi = "763104351884.dkr.ecr.us-west-2.amazonaws.com/djl-inference:0.35.0-lmi17.0.0-cu128"
    container = containers.start(lmi, env, "ml.g5.xlarge")
    assert container.port == 8080 and container.server.max_model_len == 4096  # an unknown OPTION_ is dropped, as LMI does
    status, answer = container.handle("POST", "/invocations", {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 200 and answer["model"] == "lmi"  # async mode's default served name
    with pytest.raises(ContainerFailed, match="no model"):
        containers.start(lmi, {}, "ml.g5.xlarge")


def test_images_start_as_their_dockerfiles_say() -> None:
    with pytest.raises(containers.UnknownImage):
        containers.lookup("docker.io/someone/vllm:latest")
    built = containers.build("FROM vllm/vllm-openai:v0.11.0\nENTRYPOINT python3 -m vllm.entrypoints.openai.api_server --model $MODEL_NAME $VLLM_ARGS\n", "env")
    started = containers.start(
        built,
        {"MODEL_NAME": "meta-llama/Llama-3.2-1B-Instruct", "VLLM_ARGS": "--max-model-len 2048 --port 8000", "HF_TOKEN": vllm.VALID_TOKEN},
        "Standard_NV36ads_A10_v5",
    )
    assert started.server.model == "meta-llama/Llama-3.2-1B-Instruct" and started.argv[:3] == SERVER
    with pytest.raises(containers.UnknownImage, match="cannot build 'RUN'"):
        containers.build("FROM vllm/vllm-openai:v0.11.0\nRUN pip install something\n", "env")
    stock = containers.start("vllm/vllm-openai:v0.11.0", {"MODEL_ID": "meta-llama/Llama-3.2-1B-Instruct"}, "ml.g5.xlarge")
    assert stock.server.model == "Qwen/Qwen3-0.6B"  # the stock image reads no variable naming the model
