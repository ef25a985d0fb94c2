"""`up` of a stack of N deployments against the AWS stand-in, whose endpoints take D seconds to
become ready, next to `up` of one of them alone.

Reports the wall time of each and their ratio (goal: N deployments within 1.1x the slowest one,
as they run at once), and the DescribeEndpoint polls each endpoint got while it was waited on.
Runs the real path in-process: spec, plan, engine (`parallel.for_each`, as the CLI's `up` does),
boto3 over HTTP to moto.

    python bench/parallel_up.py [--deployments 4] [--delay 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.declared.stackfile import load_stack  # noqa: E402
from orchestrator.lifecycle import engine  # noqa: E402
from orchestrator.lifecycle.context import Context  # noqa: E402
from orchestrator.lifecycle.parallel import for_each  # noqa: E402
from orchestrator.lifecycle.state import open_state  # noqa: E402
from orchestrator.pricing.catalog import load_catalog  # noqa: E402
from tests.clouds import ROLE  # noqa: E402
from tests.emulators.aws import CREDENTIALS, AwsStandIn  # noqa: E402
from tests.emulators.vllm import VALID_TOKEN  # noqa: E402


def run(stand_in: AwsStandIn, names: list[str], delay: float, workdir: Path) -> tuple[float, Counter[str]]:
    """Wall seconds of one `up` of the stack made of `names`, and DescribeEndpoint polls per endpoint."""
    stand_in.reset()
    stand_in.faults.ready_after_seconds = delay
    placement = f"    placement:\n      aws: {{region: us-east-1, execution_role_arn: '{ROLE}', endpoint_url: '{stand_in.url}'}}\n"
    stack = workdir / f"stack-{len(names)}.yaml"
    stack.write_text("deployments:\n" + "".join(f"  - name: {n}\n    model: llama3.2-1b-instruct\n    max_context: 4096\n{placement}" for n in names))
    loaded, catalog = load_stack(stack), load_catalog()
    ready = {d.name: engine.plan_up(loaded, d, "aws", catalog) for d in loaded.deployments}
    state = open_state(workdir / f"state-{len(names)}.db")
    start = time.perf_counter()
    for_each(Context(state), names, lambda ctx, name: engine.up(ctx, *ready[name]), lambda _name, _result: None)
    wall = time.perf_counter() - start
    polls = Counter(call["EndpointName"] for call in stand_in.calls("DescribeEndpoint"))
    for_each(Context(state), names, engine.down, lambda _name, _result: None)
    state.close()
    return wall, polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=4)
    parser.add_argument("--delay", type=float, default=20.0, help="seconds each endpoint takes to become ready")
    options = parser.parse_args()
    os.environ.update({**CREDENTIALS, "HF_TOKEN": VALID_TOKEN, "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    stand_in = AwsStandIn()
    names = [f"chat{i}" for i in range(1, options.deployments + 1)]
    with tempfile.TemporaryDirectory() as workdir:
        run(stand_in, ["warm"], 0.0, Path(workdir))  # imports and the first clients, outside the measurement
        alone, polls_alone = run(stand_in, names[:1], options.delay, Path(workdir))
        together, polls = run(stand_in, names, options.delay, Path(workdir))
    stand_in.stop()
    ratio = together / alone
    print(f"endpoints ready after {options.delay:.0f} s; polls of minutes-long steps at most every 10 s")
    print(f"1 deployment:  {alone:6.2f} s   DescribeEndpoint polls: {sum(polls_alone.values())}")
    print(f"{options.deployments} deployments: {together:6.2f} s   DescribeEndpoint polls per endpoint: {dict(sorted(polls.items()))}")
    print(f"{options.deployments} together / 1 alone = {ratio:.3f}   goal <= 1.1: {'met' if ratio <= 1.1 else 'missed'}")


if __name__ == "__main__":
    main()
