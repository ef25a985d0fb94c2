"""`llamadeploy plan` and `cost` on stacks of many deployments: time and memory, and how they grow.

Writes stacks of N deployments (a mix of models, quantizations, contexts, concurrencies and
autoscaling bounds, as a platform team's catalogue would hold) and runs the real CLI on each:
`plan --cloud aws --no-refresh` as a table (one row per deployment), and `cost` comparing all
four clouds, as its default table (totals per cloud for a large stack) and as `--output json`
(every deployment on every cloud). Goal (issue 19): 10,000 deployments in <= 2 s for the plan
table and the cost JSON, growing linearly.

    python bench/plan_scale.py [--sizes 1000 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("llama3.1-8b-instruct", "llama3.1-70b-instruct", "llama3.2-3b-instruct", "llama3.3-70b-instruct")


def write_stack(path: Path, size: int) -> None:
    lines = ["deployments:"]
    for i in range(size):
        lines += [
            f"  - name: team{i // 50}-svc{i}",
            f"    model: {MODELS[i % len(MODELS)]}",
            f"    quantization: {('bf16', 'fp8')[i % 2]}",
            f"    max_context: {4096 * (1 + i % 4)}",
            f"    concurrency: {8 * (1 + i % 3)}",
            f"    autoscaling: {{min_replicas: 1, max_replicas: {1 + i % 5}}}",
            f"    tags: {{team: team{i // 50}}}",
        ]
    path.write_text("\n".join(lines) + "\n")


def run(args: list[str], workdir: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one CLI run, output discarded; the state is an empty
    file of the bench's own (plan only reads it)."""
    start = time.perf_counter()
    env = {**os.environ, "LLAMADEPLOY_STATE": str(Path(workdir) / "state.db")}
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"llamadeploy {' '.join(args)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print(f"{'deployments':>11} {'command':>10} {'median s':>9} {'per 1k s':>9} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as workdir:
        results = {}
        for size in options.sizes:
            stack = Path(workdir) / f"stack-{size}.yaml"
            write_stack(stack, size)
            commands = {
                "plan table": ["plan", str(stack), "--cloud", "aws", "--no-refresh"],
                "cost table": ["cost", str(stack)],
                "cost json": ["cost", str(stack), "--output", "json"],
            }
            for label, command in commands.items():
                runs = [run(command, workdir) for _ in range(options.repeat)]
                wall, rss = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
                results[size, label] = wall
                print(f"{size:>11,} {label:>10} {wall:>9.2f} {wall / size * 1000:>9.3f} {rss:>9.0f}")
    largest = max(options.sizes)
    for label in ("plan table", "cost json"):
        goal = results[largest, label]
        print(f"goal: {largest:,} deployments <= 2 s ({label}): {'met' if goal <= 2 else 'missed'} ({goal:.2f} s)")


if __name__ == "__main__":
    main()
