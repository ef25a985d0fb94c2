"""The throughput model held to published vLLM measurements (orchestrator/data/vllm-measurements.csv)."""

from __future__ import annotations

import pytest

from orchestrator.sizing.models import resolve
from orchestrator.sizing.throughput import cited_measurements, decode_step


@pytest.mark.parametrize("point", cited_measurements(), ids=lambda p: f"{p.model}-{p.gpu}-tp{p.tensor_parallel}-b{p.batch}")
def test_the_decode_step_is_within_a_quarter_of_every_cited_measurement(point) -> None:
    step, _ = decode_step(resolve(point.model).model, point.weights, point.gpu, point.tensor_parallel, point.batch, point.mean_context)
    assert step * 1000 == pytest.approx(point.ms_per_output_token, rel=0.25), point.source
    assert point.source  # every point says where it was published


def test_tensor_parallelism_is_not_linear() -> None:
    """8B at batch 1 on 8 H200 is not 8 times one: the all-reduces of each step are a latency."""
    model = resolve("llama3.1-8b-instruct").model
    one, _ = decode_step(model, "bf16", "H200", 1, 1, 1000)
    eight, _ = decode_step(model, "bf16", "H200", 8, 1, 1000)
    assert 2.0 < one / eight < 3.5  # was 8x with no communication cost
