"""The throughput model against published vLLM measurements: the error per cited point.

Each row of orchestrator/data/vllm-measurements.csv is one measurement someone published (model,
GPU, tensor parallel degree, sequences in the batch, mean context, milliseconds per output token,
and where it comes from). The model (orchestrator/sizing/throughput.py, `decode_step`) is asked the
same question; tests/test_throughput.py keeps every point within 25 %.

    python bench/throughput.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.sizing.models import resolve  # noqa: E402
from orchestrator.sizing.throughput import cited_measurements, decode_step  # noqa: E402


def main() -> None:
    print(f"{'model':<22} {'gpu':<10} {'tp':>2} {'batch':>5} {'measured ms':>11} {'model ms':>8} {'error':>6}  source")
    worst = 0.0
    for point in cited_measurements():
        step, _ = decode_step(resolve(point.model).model, point.weights, point.gpu, point.tensor_parallel, point.batch, point.mean_context)
        error = step * 1000 / point.ms_per_output_token - 1
        worst = max(worst, abs(error))
        print(
            f"{point.model:<22} {point.gpu:<10} {point.tensor_parallel:>2} {point.batch:>5} {point.ms_per_output_token:>11.2f} {step * 1000:>8.2f} "
            f"{error:>+6.0%}  {point.source[:90]}"
        )
    print(f"largest error: {worst:.0%} (goal: within 25 % of every point)")


if __name__ == "__main__":
    main()
