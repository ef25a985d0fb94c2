"""What runs on the GPUs, the same on every cloud: vLLM's OpenAI-compatible server, the checkpoint
it loads, the options it takes, how long it takes to start, and the one call every cloud answers.

Providers wrap this in their service's own way of starting a container (DESIGN §5.1: an
environment, a Dockerfile's entrypoint, the container's args or the entrypoint's arguments;
each provider cites its service's reference). The options are vLLM 0.11.0's; a provider whose
service runs another vLLM build says which next to its image.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.sizing.memory import GIB, weight_bytes, weight_format

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan

VLLM_VERSION = "0.11.0"
# vllm-project/vllm v0.11.0 docker/Dockerfile, target vllm-openai: ENTRYPOINT ["python3", "-m",
# "vllm.entrypoints.openai.api_server"], no CMD; it serves on port 8000 unless told otherwise.
VLLM_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"
OPENAI_SERVER = ("python3", "-m", "vllm.entrypoints.openai.api_server")
VLLM_PORT = 8000
HEALTH_ROUTE = "/health"
CHAT_ROUTE = "/v1/chat/completions"
# How long a replica takes to start when it downloads its weights from the Hugging Face Hub.
# No vendor publishes a hub download rate; 100 MiB/s is a planning assumption (the services
# advise staging weights in object storage above ~40 GB for the same reason). Loading onto the GPUs and vLLM's own start
# (CUDA graphs, the KV cache) come on top.
HUB_MIB_PER_SECOND = 100
# The user's own weights come from the cloud's object storage in the same region; also a planning
# assumption, and on SageMaker that copy runs before the container's own startup limit starts.
STORAGE_MIB_PER_SECOND = 500
LOAD_SECONDS_PER_GIB = 5
ENGINE_START_SECONDS = 180


def vllm_arguments(plan: Plan) -> list[str]:
    """vLLM's options for the plan, the same on every cloud: model, parallelism, context, batch,
    and a load-time quantization where the checkpoint needs one. Providers add host and port."""
    deployment, checkpoint = plan.deployment, plan.checkpoint
    arguments = [
        "--model",
        plan.model_path,
        "--tensor-parallel-size",
        str(plan.layout.tensor_parallel),
        "--max-model-len",
        str(deployment.max_context),
        "--max-num-seqs",
        str(deployment.concurrency),
    ]
    if checkpoint.load_quantization:
        arguments += ["--quantization", checkpoint.load_quantization]
    if plan.weights:  # vLLM would answer as the mount path
        arguments += ["--served-model-name", plan.served_model]
    return arguments


@dataclass(frozen=True)
class Startup:
    """How long one replica takes from container start to answering, and why."""

    download_gib: float
    seconds: int
    source: str = "the Hugging Face Hub"
    mib_per_second: int = HUB_MIB_PER_SECOND

    @property
    def download_seconds(self) -> int:
        return math.ceil(self.download_gib * 1024 / self.mib_per_second)

    def timeout(self, limit_s: int | None, margin: float = 1.5) -> int:
        """A startup timeout to configure: the estimate with a margin, at most the service's limit."""
        wanted = math.ceil(self.seconds * margin)
        return wanted if limit_s is None else min(limit_s, wanted)


def startup(plan: Plan) -> Startup:
    """The download (the checkpoint's stored bytes: fp8 served from bf16 downloads bf16; the user's
    own weights from the cloud's storage), the load of the served weights, and the engine's start."""
    if plan.weights:
        stored = plan.requirements.stored_bytes
        download, source, rate = (stored / GIB if stored is not None else plan.requirements.weights_gib), "your object storage", STORAGE_MIB_PER_SECOND
    else:
        download, source, rate = (
            weight_bytes(plan.requirements.model, weight_format(plan.checkpoint.stored_as, None)) / GIB,
            "the Hugging Face Hub",
            HUB_MIB_PER_SECOND,
        )
    seconds = math.ceil(download * 1024 / rate + plan.requirements.weights_gib * LOAD_SECONDS_PER_GIB + ENGINE_START_SECONDS)
    return Startup(download, seconds, source, rate)


EXAMPLE_PROMPT = "What is the capital of France?"
EXAMPLE_MAX_TOKENS = 64
# Autoscaling on a rate scales out above the rate that holds the concurrency target, in below this share of it.
SCALE_IN_SHARE = 0.5


def startup_of(plan: Plan) -> tuple[str, bool]:
    """What starting a replica of `plan` takes against its service's limit, and whether it cannot start in time."""
    contract = plan.contract
    counted = contract is None or contract.weights_copy_counts or not plan.weights
    return startup_verdict(plan, contract.startup_limit_s if contract else None, contract.startup_setting if contract else "", counted)


def startup_verdict(plan: Plan, limit_s: int | None, setting: str, download_counts: bool = True) -> tuple[str, bool]:
    """What `plan` says about starting a replica within the service's limit, and whether it cannot:
    when the download alone outlasts the limit, `up` refuses before creating anything. A download
    the service makes before the container starts (`download_counts` False) is outside the limit."""
    estimate = startup(plan)
    counted = estimate.seconds if download_counts else estimate.seconds - estimate.download_seconds
    minutes = (
        f"~{math.ceil(estimate.seconds / 60)} min: {estimate.download_gib:.0f} GiB from {estimate.source} at ~{estimate.mib_per_second} MiB/s, then loading"
    )
    if limit_s is None or counted <= limit_s:
        return (f"{minutes}; {setting} allows {limit_s // 60} min" if limit_s else minutes), False
    fatal = download_counts and estimate.download_seconds > limit_s
    smaller = [] if plan.weights else [name for name in ("int4", "fp8") if _downloads_less(plan, name)]
    ideas = [f"quantization: {name} (a smaller checkpoint)" for name in smaller]
    if not plan.weights and plan.described_by.weights_scheme:
        ideas.append(f"the weights staged in {plan.cloud}'s object storage (`llamadeploy weights stage`, then weights.{plan.cloud})")
    ideas.append("a cloud with a longer startup limit (`llamadeploy cost` compares them)")
    verdict = "cannot start in time" if fatal else "will likely not start in time"
    return f"{minutes}; {verdict}: {setting} allows {limit_s // 60} min; try {'; '.join(ideas)}", fatal


def _downloads_less(plan: Plan, quantization: str) -> bool:
    """Whether serving at `quantization` downloads a smaller checkpoint of the same model."""
    from orchestrator.errors import NoCheckpointError

    ref = plan.deployment.model_ref
    try:
        other = ref.checkpoint(quantization)
    except NoCheckpointError:
        return False
    return weight_bytes(ref.model, weight_format(other.stored_as, None)) < weight_bytes(ref.model, weight_format(plan.checkpoint.stored_as, None))


def chat_request(prompt: str, max_tokens: int) -> dict[str, Any]:
    """An OpenAI chat completion request: the body every cloud's route takes."""
    return {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0}


@dataclass(frozen=True)
class Answer:
    """What a chat completion said and which model said it."""

    model: str
    text: str


def example_body() -> str:
    """The JSON body of the example call `up` prints, the same on every cloud."""
    return json.dumps(chat_request(EXAMPLE_PROMPT, EXAMPLE_MAX_TOKENS))


def read_answer(response: Any) -> Answer:
    """The model and text of an OpenAI chat completion; a ValueError names what is missing."""
    if not isinstance(response, dict):
        raise ValueError(f"the answer is not a JSON object: {str(response)[:200]}")
    try:
        text = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"the answer is not a chat completion: {str(response)[:200]}") from None
    return Answer(str(response.get("model") or ""), str(text))
