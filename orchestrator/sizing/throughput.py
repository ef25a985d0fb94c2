"""How many output tokens a replica serves per second: a roofline model, stated.

A replica runs `concurrency` sequences as one continuous batch. Each request first has its
prompt processed (prefill), then generates its output one token per decode step.

    decode step  = max(bytes read / (bandwidth x E), FLOPs / (peak FLOP/s x E))
        bytes read = weights as held (`memory.weight_bytes`), less the input embedding table (a decode
                     step looks up one row of it per sequence; a tied table is read whole, as the
                     output layer), + KV cache of the batch (concurrency x mean context x KV bytes per token)
        FLOPs      = 2 x parameters x concurrency
    prefill      = 2 x parameters x prompt tokens / (peak FLOP/s x E)        per request
    tokens/s     = concurrency x output tokens / (concurrency x prefill + output tokens x decode step)

- Bandwidth and FLOP/s are the replica's GPUs together (tensor parallel x instances), from
  `data/gpu-specs.csv` (dense figures, from NVIDIA's datasheets). FP8 weights use FP8 tensor
  cores where the GPU has them; bf16 and int4 (dequantised to bf16) use bf16 FLOP/s.
- E is one efficiency factor per serving engine: the fraction of peak bandwidth and FLOP/s it
  reaches in steady state (communication between GPUs, kernel launch, scheduling all in it).
- The KV cache is bf16 (as sizing assumes); the mean context during decode is the prompt plus
  half the output. Attention FLOPs, speculative decoding and prefix caching are left out.

$ per million output tokens = hourly price of a replica / (tokens/s x 3600) x 10^6, at the
spec's concurrency, i.e. a replica kept busy. It is a planning figure, not a benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from orchestrator.sizing.gpus import gpu_specs
from orchestrator.sizing.memory import BYTES_PER_PARAMETER, FP8_MIXED, KV_BYTES_PER_VALUE, weight_bytes, weight_format

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from orchestrator.sizing.models import LlamaModel

# Fraction of peak bandwidth and FLOP/s each engine reaches (vLLM's decode typically reaches
# 50-70 % of memory bandwidth on a busy batch).
ENGINE_EFFICIENCY = {"vllm": 0.6}
# Request shape when the spec declares no load profile.
DEFAULT_PROMPT_TOKENS = 1000
DEFAULT_OUTPUT_TOKENS = 250
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Throughput:
    """One replica's steady-state rate for a request shape, and the arithmetic behind it."""

    output_tokens_per_s: float
    requests_per_s: float
    decode_step_s: float
    prefill_s: float
    bound: str  # "memory bandwidth" or "compute": what limits a decode step
    prompt_tokens: int
    output_tokens: int
    efficiency: float
    gpus: int


def replica_throughput(plan: Plan, prompt_tokens: int = DEFAULT_PROMPT_TOKENS, output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> Throughput:
    deployment, layout = plan.deployment, plan.layout
    return _throughput(
        plan.requirements.model,
        weight_format(plan.checkpoint.stored_as, plan.checkpoint.load_quantization),
        deployment.concurrency,
        deployment.serving.engine,
        plan.offer.gpu,
        layout.tensor_parallel * layout.nodes,
        prompt_tokens,
        output_tokens,
    )


@lru_cache(maxsize=4096)
def _throughput(model: LlamaModel, weights_held_as: str, batch: int, engine: str, gpu: str, gpus: int, prompt_tokens: int, output_tokens: int) -> Throughput:
    """The roofline arithmetic, once per distinct shape (a large stack repeats a few)."""
    spec = gpu_specs()[gpu]
    efficiency = ENGINE_EFFICIENCY[engine]
    bandwidth = gpus * spec.memory_bandwidth_gbps * 1e9 * efficiency
    fp8 = weights_held_as in ("fp8", FP8_MIXED)
    tflops = spec.fp8_dense_tflops if fp8 and spec.fp8_dense_tflops else spec.bf16_dense_tflops
    flops = gpus * tflops * 1e12 * efficiency
    input_embedding = 0 if model.tied_embeddings else model.vocab_size * model.dim * BYTES_PER_PARAMETER["bf16"]
    weights = weight_bytes(model, weights_held_as) - input_embedding
    mean_context = prompt_tokens + output_tokens / 2
    kv_read = batch * mean_context * model.kv_bytes_per_token(KV_BYTES_PER_VALUE)
    memory_s, compute_s = (weights + kv_read) / bandwidth, 2 * model.parameters * batch / flops
    step = max(memory_s, compute_s)
    prefill = 2 * model.parameters * prompt_tokens / flops
    cycle = batch * prefill + output_tokens * step
    rate = batch * output_tokens / cycle
    return Throughput(
        rate, rate / output_tokens, step, prefill, "memory bandwidth" if memory_s >= compute_s else "compute", prompt_tokens, output_tokens, efficiency, gpus
    )


def target_requests_per_minute(plan: Plan) -> float:
    """Requests one replica completes per minute while it holds `target_concurrent_requests` in
    flight (Little's law on the model's request time), under the stack's request shape: the rate
    that services scaling on requests, not on requests in flight, are given as their target."""
    load, deployment = plan.deployment.load, plan.deployment
    shape = {"prompt_tokens": load.prompt_tokens, "output_tokens": load.output_tokens} if load else {}
    rate = replica_throughput(plan, **shape)
    return rate.requests_per_s * deployment.target_concurrent_requests / deployment.concurrency * 60


def usd_per_million_tokens(usd_per_replica_hour: float | None, tokens_per_s: float) -> float | None:
    """Hourly price / (tokens/s x 3600) x 10^6; None when the price is unknown."""
    if usd_per_replica_hour is None:
        return None
    return usd_per_replica_hour / (tokens_per_s * SECONDS_PER_HOUR) * 1e6
