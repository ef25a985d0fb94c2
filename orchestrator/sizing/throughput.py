"""How many output tokens a replica serves per second: a roofline model, stated.

A replica runs `concurrency` sequences as one continuous batch. Each request first has its
prompt processed (prefill), then generates its output one token per decode step.

    decode step  = max(bytes read / (bandwidth x E), FLOPs / (peak FLOP/s x E)) + all-reduces
        bytes read = weights as held (`memory.weight_bytes`), less the input embedding table (a decode
                     step looks up one row of it per sequence; a tied table is read whole, as the
                     output layer), + KV cache of the batch (concurrency x mean context x KV bytes per token)
        FLOPs      = 2 x parameters x concurrency
        all-reduces = with tensor parallelism, two per layer (after attention and after the MLP,
                     Megatron-style, as vLLM splits Llama), each of ALLREDUCE_S + ALLREDUCE_PER_DOUBLING_S
                     x log2(GPUs): a step's small messages cost latency, not bandwidth
    prefill      = 2 x parameters x prompt tokens / (peak FLOP/s x E)        per request
    tokens/s     = concurrency x output tokens / (concurrency x prefill + output tokens x decode step)

- Bandwidth and FLOP/s are the replica's GPUs together (tensor parallel x instances), from
  `data/gpu-specs.csv` (dense figures, from NVIDIA's datasheets). FP8 weights use FP8 tensor
  cores where the GPU has them; bf16 and int4 (dequantised to bf16) use bf16 FLOP/s.
- E is one efficiency factor per serving engine: the fraction of peak bandwidth and FLOP/s it
  reaches (kernel launch and scheduling in it). It and the all-reduce latency are calibrated on
  published vLLM measurements (`data/vllm-measurements.csv`; `python bench/throughput.py`
  prints the model against each, and a test keeps every point within 25 %).
- Not modelled: prefill interleaved with decode under heavy load (chunked prefill stretches the
  decode step), long-context attention cost, and multi-node pipeline bubbles.
- The KV cache is bf16 (as sizing assumes); the mean context during decode is the prompt plus
  half the output. Attention FLOPs, speculative decoding and prefix caching are left out.

$ per million output tokens = hourly price of a replica / (tokens/s x 3600) x 10^6, at the
spec's concurrency, i.e. a replica kept busy. It is a planning figure, not a benchmark.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.sizing.gpus import gpu_specs
from orchestrator.sizing.memory import BYTES_PER_PARAMETER, FP8_MIXED, KV_BYTES_PER_VALUE, weight_bytes, weight_format

if TYPE_CHECKING:
    from orchestrator.planning.plan import Plan
    from orchestrator.sizing.models import LlamaModel

# Fraction of peak bandwidth and FLOP/s each engine reaches: vLLM's decode of Llama 3 8B on one
# H100 reads its weights at 68 % of peak and 70B on two at 74 % (LambdaLabsML/vllm-benchmark's
# per-token timings; data/vllm-measurements.csv).
ENGINE_EFFICIENCY = {"vllm": 0.7}
# One all-reduce of a decode step's activations over tensor-parallel GPUs: a latency that grows
# with the ring's doublings. Fitted to the same measurements: 8B's step at TP 1/2/4/8 on H100 is
# 7.05/4.90/3.54/2.92 ms, where bandwidth alone would give 6.4/3.2/1.6/0.8.
ALLREDUCE_S = 10e-6
ALLREDUCE_PER_DOUBLING_S = 5e-6
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
    efficiency = ENGINE_EFFICIENCY[engine]
    flops = gpus * _tflops(gpu, weights_held_as) * 1e12 * efficiency
    step, bound = decode_step(model, weights_held_as, gpu, gpus, batch, prompt_tokens + output_tokens / 2, engine)
    prefill = 2 * model.parameters * prompt_tokens / flops
    cycle = batch * prefill + output_tokens * step
    rate = batch * output_tokens / cycle
    return Throughput(rate, rate / output_tokens, step, prefill, bound, prompt_tokens, output_tokens, efficiency, gpus)


def decode_step(model: LlamaModel, weights_held_as: str, gpu: str, gpus: int, batch: int, mean_context: float, engine: str = "vllm") -> tuple[float, str]:
    """Seconds of one decode step of `batch` sequences, and what bounds it ("memory bandwidth" or "compute")."""
    spec, efficiency = gpu_specs()[gpu], ENGINE_EFFICIENCY[engine]
    bandwidth = gpus * spec.memory_bandwidth_gbps * 1e9 * efficiency
    flops = gpus * _tflops(gpu, weights_held_as) * 1e12 * efficiency
    input_embedding = 0 if model.tied_embeddings else model.vocab_size * model.dim * BYTES_PER_PARAMETER["bf16"]
    weights = weight_bytes(model, weights_held_as) - input_embedding
    kv_read = batch * mean_context * model.kv_bytes_per_token(KV_BYTES_PER_VALUE)
    memory_s, compute_s = (weights + kv_read) / bandwidth, 2 * model.parameters * batch / flops
    communication = 2 * model.n_layers * (ALLREDUCE_S + ALLREDUCE_PER_DOUBLING_S * math.log2(gpus)) if gpus > 1 else 0.0
    return max(memory_s, compute_s) + communication, "memory bandwidth" if memory_s >= compute_s else "compute"


@dataclass(frozen=True)
class Measurement:
    """One published vLLM decode measurement the model is held to (data/vllm-measurements.csv)."""

    model: str
    weights: str  # how the weights were held, as `memory.weight_format` names it
    gpu: str
    tensor_parallel: int
    batch: int
    mean_context: float
    ms_per_output_token: float
    source: str


@cache
def cited_measurements() -> tuple[Measurement, ...]:
    with (Path(__file__).parent.parent / "data" / "vllm-measurements.csv").open(newline="") as handle:
        return tuple(
            Measurement(
                row["model"],
                row["weights"],
                row["gpu"],
                int(row["tensor_parallel"]),
                int(row["batch"]),
                float(row["mean_context"]),
                float(row["ms_per_output_token"]),
                row["source"],
            )
            for row in csv.DictReader(handle)
        )


def _tflops(gpu: str, weights_held_as: str) -> float:
    """Dense tensor TFLOP/s: FP8 weights use FP8 tensor cores where the GPU has them."""
    spec = gpu_specs()[gpu]
    fp8 = weights_held_as in ("fp8", FP8_MIXED)
    return spec.fp8_dense_tflops if fp8 and spec.fp8_dense_tflops else spec.bf16_dense_tflops


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
