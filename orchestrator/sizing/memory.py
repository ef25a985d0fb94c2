"""How much GPU memory one replica of a deployment needs, and how many GPUs that takes.

The arithmetic is deliberately simple and shown to the user by `plan`:

    weights  = the served checkpoint's bytes, as it is held on the GPUs (`weight_bytes`): bf16 2 bytes
               a parameter; fp8 1 byte for what is quantized and 2 for the rest; int4 as AWQ stores it
    kv cache = 2 x layers x kv_heads x head_dim x 2 bytes x max_context x concurrency
    per GPU  = (weights + kv cache) / tensor_parallel + runtime overhead
    fits     = per GPU <= GPU memory x 0.90

The KV cache is sized for the worst case (every sequence at full context), because a server
that runs out of KV blocks under load queues or drops requests. It stays in bf16 whatever the
weight quantization: quantizing the cache trades accuracy the user did not ask to trade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.sizing.models import LlamaModel

GIB = 1024**3
BYTES_PER_PARAMETER = {"bf16": 2.0, "fp8": 1.0, "int4": 0.5}
# An AWQ int4 checkpoint stores each group of 128 weights of the linear layers in 4 bits plus an
# fp16 scale and a 4-bit zero point, and keeps embeddings, output layer and norms in bf16
# (huggingface/blog llama31.md: "zero-point quantization down to 4 bits with a group size of 128").
AWQ_GROUP_SIZE = 128
AWQ_BYTES_PER_LINEAR_PARAMETER = 0.5 + (2 + 0.5) / AWQ_GROUP_SIZE
# Meta's fp8 rows each carry one fp32 scale (llama-models quantize_fp8, row-wise scaling).
FP8_SCALE_BYTES = 4
KV_BYTES_PER_VALUE = 2.0
# The share of GPU memory the serving engine may use (vLLM's gpu_memory_utilization default).
GPU_MEMORY_UTILIZATION = 0.90
# Per GPU: CUDA context, NCCL buffers, CUDA graphs and peak activations of a prefill batch.
RUNTIME_OVERHEAD_GIB_PER_GPU = 2.0
TENSOR_PARALLEL_DEGREES = (1, 2, 4, 8)
GPUS_PER_NODE = 8


@dataclass(frozen=True)
class Requirements:
    """Memory one replica needs, before it is split over GPUs."""

    model: LlamaModel
    quantization: str
    max_context: int
    concurrency: int
    weights_bytes: float
    kv_cache_bytes: float
    # Where the sizes come from: "" for the catalog's architecture and the declared quantization,
    # else the user's checkpoint (or why it could not be read).
    sized_from: str = ""
    # The user's own checkpoint: its stored bytes (what is copied at start) and whether it is quantized.
    stored_bytes: float | None = None
    checkpoint_quantized: bool = False

    @property
    def weights_gib(self) -> float:
        return self.weights_bytes / GIB

    @property
    def kv_cache_gib(self) -> float:
        return self.kv_cache_bytes / GIB

    def per_gpu_gib(self, gpus: int) -> float:
        """Memory each GPU needs when weights and KV cache are split over `gpus` GPUs."""
        return (self.weights_gib + self.kv_cache_gib) / gpus + RUNTIME_OVERHEAD_GIB_PER_GPU

    def total_gib(self, gpus: int) -> float:
        return self.per_gpu_gib(gpus) * gpus

    def fits(self, gpus: int, gpu_memory_gib: float) -> bool:
        return self.per_gpu_gib(gpus) <= usable_gib(gpu_memory_gib)


def usable_gib(gpu_memory_gib: float) -> float:
    return gpu_memory_gib * GPU_MEMORY_UTILIZATION


def requirements(model: LlamaModel, quantization: str, max_context: int, concurrency: int, weights: str | None = None) -> Requirements:
    """What one replica needs; `weights` is how the served checkpoint holds them (`weight_format`),
    by default the declared quantization applied at load time."""
    return Requirements(
        model=model,
        quantization=quantization,
        max_context=max_context,
        concurrency=concurrency,
        weights_bytes=weight_bytes(model, weights or quantization),
        kv_cache_bytes=model.kv_bytes_per_token(KV_BYTES_PER_VALUE) * max_context * concurrency,
    )


# How a served checkpoint holds its weights: the key `weight_bytes` reads.
FP8_MIXED = "fp8_mixed"


def weight_format(stored_as: str, load_quantization: str | None) -> str:
    """The weights as served: quantized at load time (vLLM's `--quantization fp8` turns every linear
    layer to fp8), or as the checkpoint stores them (Meta's FP8 checkpoints are `fp8_mixed`)."""
    if load_quantization is not None:
        return load_quantization
    return FP8_MIXED if stored_as == "fp8" else stored_as


def weight_bytes(model: LlamaModel, held_as: str) -> float:
    """The bytes of the model's weights as they are held: every case keeps the embeddings, the
    output layer and the norms in bf16.

    - bf16: 2 bytes a parameter.
    - fp8 (quantized at load time): the attention and MLP projections in 1 byte (vLLM's Fp8LinearMethod
      quantizes linear layers; the embedding and lm_head are not linear layers it converts).
    - fp8_mixed (Meta's FP8 checkpoints, llama-models fp8_mixed): only the feed-forward layers of
      every block but the first and the last, in 1 byte (llama-models models/llama3/quantization/
      loader.py, convert_to_fp8_quantized_model: `block.layer_id == 0 or block.layer_id ==
      (model.n_layers - 1)` skipped, `block.feed_forward` w1/w2/w3 converted), each row with a
      4-byte scale; 405B: 324.5 B fp8 parameters + 81.3 B bf16 = 454 GiB.
    - int4 (AWQ): the projections in 4 bits with a scale and zero point per group of 128.
    """
    others = model.parameters - model.linear_parameters
    if held_as == "int4":
        return model.linear_parameters * AWQ_BYTES_PER_LINEAR_PARAMETER + others * BYTES_PER_PARAMETER["bf16"]
    if held_as == "fp8":
        return model.linear_parameters * BYTES_PER_PARAMETER["fp8"] + others * BYTES_PER_PARAMETER["bf16"]
    if held_as == FP8_MIXED:
        quantized_blocks = max(0, model.n_layers - 2)
        fp8 = quantized_blocks * 3 * model.dim * model.ffn_hidden
        scales = quantized_blocks * (2 * model.ffn_hidden + model.dim) * FP8_SCALE_BYTES
        return fp8 * BYTES_PER_PARAMETER["fp8"] + (model.parameters - fp8) * BYTES_PER_PARAMETER["bf16"] + scales
    return model.parameters * BYTES_PER_PARAMETER[held_as]


def valid_tensor_parallel(model: LlamaModel, degree: int) -> bool:
    """vLLM splits attention heads evenly, and KV heads either split or replicate evenly."""
    kv = model.n_kv_heads
    return model.n_heads % degree == 0 and (kv % degree == 0 or degree % kv == 0)


@dataclass(frozen=True)
class GpuLayout:
    """How one replica is laid out: GPUs it needs, tensor parallelism, and instances (nodes)."""

    min_gpus: int
    tensor_parallel: int
    nodes: int


def layout(req: Requirements, gpu_memory_gib: float, gpus_per_instance: int) -> GpuLayout | None:
    """The layout of one replica on instances of `gpus_per_instance` GPUs, or None if it cannot fit.

    The smallest tensor-parallel degree that fits is what the model needs; the instance's
    GPUs are all paid for, so the engine then uses the largest valid degree the instance holds.
    Past eight GPUs a replica spans several 8-GPU instances (pipeline parallel across nodes).
    """
    needed = next(
        (d for d in TENSOR_PARALLEL_DEGREES if valid_tensor_parallel(req.model, d) and req.fits(d, gpu_memory_gib)),
        None,
    )
    if needed is not None:
        if needed > gpus_per_instance:
            return None
        degree = max(d for d in TENSOR_PARALLEL_DEGREES if d <= gpus_per_instance and valid_tensor_parallel(req.model, d))
        return GpuLayout(min_gpus=needed, tensor_parallel=degree, nodes=1)
    if gpus_per_instance != GPUS_PER_NODE or not valid_tensor_parallel(req.model, GPUS_PER_NODE):
        return None
    room = usable_gib(gpu_memory_gib) - RUNTIME_OVERHEAD_GIB_PER_GPU
    if room <= 0:
        return None
    nodes = math.ceil((req.weights_gib + req.kv_cache_gib) / (room * GPUS_PER_NODE))
    return GpuLayout(min_gpus=nodes * GPUS_PER_NODE, tensor_parallel=GPUS_PER_NODE, nodes=nodes)
