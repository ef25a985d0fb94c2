"""What each GPU type is, as its datasheet and its driver say: bandwidth and tensor throughput
(the throughput model's roofline), and the memory the driver reports, which is what a serving
engine can use. A "24 GB" L4 reports 23034 MiB (22.5 GiB) to nvidia-smi, an "80 GB" H100 81559 MiB
(79.6 GiB): sizing on the marketing figure would place a model on a GPU it does not fit.
Each figure's source is in `orchestrator/data/gpu-specs.csv`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

MIB_PER_GIB = 1024


@dataclass(frozen=True)
class GpuSpec:
    gpu: str
    memory_bandwidth_gbps: float
    bf16_dense_tflops: float
    fp8_dense_tflops: float | None
    memory_gib: float  # total memory as the driver reports it (nvidia-smi), in GiB
    source: str
    memory_source: str


class HasGpu(Protocol):
    """An offer, as far as its GPUs go."""

    @property
    def gpu(self) -> str: ...

    @property
    def gpu_memory_gib(self) -> float: ...


@cache
def gpu_specs() -> dict[str, GpuSpec]:
    with (Path(__file__).parent.parent / "data" / "gpu-specs.csv").open(newline="") as handle:
        return {
            row["gpu"]: GpuSpec(
                row["gpu"],
                float(row["memory_bandwidth_gbps"]),
                float(row["bf16_dense_tflops"]),
                float(row["fp8_dense_tflops"]) if row["fp8_dense_tflops"] else None,
                int(row["memory_mib_reported"]) / MIB_PER_GIB,
                row["source"],
                row["memory_source"],
            )
            for row in csv.DictReader(handle)
        }


def gpu_memory_gib(offer: HasGpu) -> float:
    """The memory one of the offer's GPUs really has: the driver's figure for a GPU type known
    here, else what the price catalog says (a user's catalog may name other GPUs)."""
    spec = gpu_specs().get(offer.gpu)
    return spec.memory_gib if spec is not None else offer.gpu_memory_gib
