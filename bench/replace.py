"""A blue/green replace on each cloud stand-in while a client keeps calling the deployment.

For each cloud, a deployment is brought up, then its stack changed in what needs new machines
(another GPU, a shorter context) and `up` run again, with the new variant taking a while to
become ready. Meanwhile a client on loopback looks the endpoint up in the state file and sends
chat completions through the cloud's own route and authentication, with no retry (tests/clouds.py
`Caller`, the same client the scenario tests use). It reports, per cloud:

- failed calls (goal 0): a call that did not answer, or answered as another model;
- double-billed seconds: how long the cloud billed both variants (the old and the new fleet side
  by side, which is what blue/green costs), from the stand-in's inventory and in-place updates;
- the replace's wall time.

Runs the real CLI in-process against the same stand-ins the tests use.

    python bench/replace.py [--clouds aws azure gcp oci] [--ready-polls 25]
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

from tests.clouds import HARNESSES, Caller, Cloud, cli_run, stand_in_environment, start_stand_in  # noqa: E402
from tests.emulators.internet import Internet  # noqa: E402

STACK = "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 8192\nconcurrency: 8\nautoscaling: {min_replicas: 1, max_replicas: 2}\n"


def one_replace(cloud: Cloud, ready_polls: int, workdir: Path) -> tuple[float, Caller]:
    state_path = workdir / f"{cloud.name}.db"
    os.environ.update(stand_in_environment(state_path, poll_seconds=0.05))
    cloud.stand_in.reset()
    os.environ.update(cloud.environment())
    stack = workdir / f"{cloud.name}.yaml"
    stack.write_text(STACK + cloud.placement())
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    if code:
        raise SystemExit(f"up on {cloud.name} failed: {err}")
    stack.write_text(stack.read_text().replace("max_context: 8192\n", f"max_context: 4096\ngpu: {cloud.replacement_gpu}\n"))
    cloud.ready_after_polls(ready_polls)
    with Caller(cloud, state_path) as caller:
        time.sleep(0.5)  # the client is calling the old variant before the replace starts
        start = time.perf_counter()
        code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
        wall = time.perf_counter() - start
        time.sleep(0.5)  # and goes on calling the new one after it ends
    if code:
        raise SystemExit(f"replace on {cloud.name} failed: {err}")
    cli_run("down", "chat", "--yes")
    return wall, caller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clouds", nargs="+", default=["aws", "azure", "gcp", "oci"])
    parser.add_argument("--ready-polls", type=int, default=25, help="status polls before the new variant is ready")
    options = parser.parse_args()
    internet = Internet()
    os.environ.update(internet.environment())
    stand_ins = {name: start_stand_in(name, internet) for name in options.clouds}
    print(f"{'cloud':<6} {'replace s':>9} {'calls':>6} {'failed':>7} {'double-billed s':>16}  goal: 0 failed")
    with tempfile.TemporaryDirectory() as workdir:
        for name, stand_in in stand_ins.items():
            wall, caller = one_replace(HARNESSES[name](stand_in), options.ready_polls, Path(workdir))
            print(
                f"{name:<6} {wall:9.2f} {caller.calls:6d} {len(caller.failures):7d} {caller.overlap():16.2f}"
                + (f"  first failure: {caller.failures[0]}" if caller.failures else "")
            )
    for stand_in in stand_ins.values():
        stand_in.stop()
    internet.stop()
    print(
        f"(the new variant is ready after {options.ready_polls} status polls; first poll 0.05 s, then 4 % of the time waited; "
        "double-billed = two fleets of serving machines at once: a second deployment or deployed model, or a fleet a service brings up inside one)"
    )


if __name__ == "__main__":
    main()
