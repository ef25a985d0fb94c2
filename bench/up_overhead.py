"""`up` against the AWS stand-in whose endpoint takes D seconds to become ready.

Reports wall time / D (goal <= 1.05: llamadeploy adds little to the cloud's own wait) and
the number of DescribeEndpoint calls made while waiting (few calls: no self-inflicted
throttling). Runs the real CLI path in-process: spec, plan, engine, boto3 over HTTP to moto.

    python bench/up_overhead.py [--delays 5 30] [--poll 1.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.declared.stackfile import load_stack  # noqa: E402
from orchestrator.lifecycle import engine  # noqa: E402
from orchestrator.lifecycle.context import Context  # noqa: E402
from orchestrator.lifecycle.pacing import Backoff  # noqa: E402
from orchestrator.lifecycle.state import open_state  # noqa: E402
from orchestrator.pricing.catalog import load_catalog  # noqa: E402
from tests.clouds import ROLE  # noqa: E402
from tests.emulators.aws import CREDENTIALS, AwsStandIn  # noqa: E402
from tests.emulators.vllm import VALID_TOKEN  # noqa: E402


def one_up(stand_in: AwsStandIn, delay: float, poll: float, workdir: Path) -> tuple[float, int]:
    stand_in.reset()
    stand_in.faults.ready_after_seconds = delay
    stack = workdir / f"stack-{delay}.yaml"
    stack.write_text(
        "name: bench\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\n"
        f"placement:\n  aws: {{region: us-east-1, execution_role_arn: '{ROLE}', endpoint_url: '{stand_in.url}'}}\n"
    )
    loaded = load_stack(stack)
    planned, provider = engine.plan_up(loaded, loaded.deployments[0], "aws", load_catalog())
    state = open_state(workdir / f"state-{delay}.db")
    start = time.perf_counter()
    engine.up(Context(state, backoff=Backoff(initial=poll)), planned, provider)
    wall = time.perf_counter() - start
    engine.down(Context(state, backoff=Backoff(initial=0.05)), "bench")
    return wall, len(stand_in.calls("DescribeEndpoint"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[5.0, 30.0])
    parser.add_argument("--poll", type=float, default=1.0, help="first poll interval (LLAMADEPLOY_POLL_SECONDS), default 1.0")
    options = parser.parse_args()
    os.environ.update({**CREDENTIALS, "HF_TOKEN": VALID_TOKEN, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    stand_in = AwsStandIn()
    with tempfile.TemporaryDirectory() as workdir:
        cold, _ = one_up(stand_in, 0.0, options.poll, Path(workdir))
        print(f"first up in this process (boto3 import and clients), endpoint ready at once: {cold:.2f} s")
        print(f"{'D s':>6} {'wall s':>8} {'wall/D':>7} {'DescribeEndpoint':>17}  goal wall/D <= 1.05")
        for delay in options.delays:
            wall, polls = one_up(stand_in, delay, options.poll, Path(workdir))
            print(f"{delay:6.1f} {wall:8.2f} {wall / delay:7.3f} {polls:17d}  {'met' if wall / delay <= 1.05 else 'missed'}")
    stand_in.stop()
    print(f"(first poll {options.poll} s, then 4 % of the time waited, at most 60 s; the first describe is just after create)")


if __name__ == "__main__":
    main()
