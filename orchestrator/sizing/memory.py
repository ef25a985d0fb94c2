"""How much GPU memory one replica of a deployment needs, and how many GPUs that takes.

The arithmetic is deliberately simple and shown to the user by `plan`:

    weights  = parameters x bytes per parameter (bf16 2, fp8 1); int4 as its AWQ checkpoint is stored
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


def requirements(model: LlamaModel, quantization: str, max_context: int, concurrency: int) -> Requirements:
    return Requirements(
        model=model,
        quantization=quantization,
        max_context=max_context,
        concurrency=concurrency,
        weights_bytes=weight_bytes(model, quantization),
        kv_cache_bytes=model.kv_bytes_per_token(KV_BYTES_PER_VALUE) * max_context * concurrency,
    )


def weight_bytes(model: LlamaModel, stored_as: str) -> float:
    """The bytes of the model's weights stored as bf16, fp8 or int4 (AWQ)."""
    if stored_as == "int4":
        return model.linear_parameters * AWQ_BYTES_PER_LINEAR_PARAMETER + (model.parameters - model.linear_parameters) * BYTES_PER_PARAMETER["bf16"]
    return model.parameters * BYTES_PER_PARAMETER[stored_as]


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
