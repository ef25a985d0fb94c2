"""`move` between two cloud stand-ins while a client keeps calling the recorded endpoint.

For each pair, a deployment is brought up on the source, then moved to a target whose
endpoint takes a while to become ready. Meanwhile a loop on loopback reads the state file
(as a client's service discovery would) and calls the recorded endpoint's health route on
the cloud that serves it. It reports:

- failed calls (goal 0): the recorded endpoint did not answer, or nothing was recorded;
- overlap: how long both clouds held serving compute, i.e. both were billed.

Runs the real CLI in-process against the same stand-ins the tests use.

    python bench/move.py [--pairs aws:azure gcp:oci] [--ready-polls 25] [--interval 0.02]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.lifecycle.state import open_state  # noqa: E402
from tests.clouds import HARNESSES, Cloud, cli_run, stand_in_environment, start_stand_in  # noqa: E402
from tests.emulators.internet import Internet  # noqa: E402

# The inventory kind that holds serving compute, the thing each cloud bills by the hour.
BILLED: dict[str, str] = {"aws": "endpoints", "azure": "deployments", "gcp": "deployed_models", "oci": "model_deployments"}


@dataclass
class Probe:
    """What the client loop saw (calls, failures with why) and how long both clouds billed."""

    calls: int = 0
    failures: list[str] = field(default_factory=list)
    overlap: float = 0.0


def call_endpoint(state_path: Path, clouds: dict[str, Cloud], interval: float, stop: threading.Event, seen: Probe) -> None:
    """The client: look the endpoint up in state, call its health route on the cloud serving it."""
    state = open_state(state_path)
    while not stop.is_set():
        record = state.get("chat")
        url = record.deployed.url if record is not None and record.deployed is not None else None
        seen.calls += 1
        if record is None or not url:
            seen.failures.append("no endpoint recorded")
        elif not clouds[record.cloud].answers(url):
            seen.failures.append(f"{record.cloud} endpoint {url} not answering")
        time.sleep(interval)
    state.close()


def sample_billing(clouds: dict[str, Cloud], interval: float, stop: threading.Event, seen: Probe) -> None:
    """Add up the time during which both clouds' inventories held serving compute."""
    last = time.monotonic()
    while not stop.is_set():
        both = all(cloud.inventory()[BILLED[name]] for name, cloud in clouds.items())
        now = time.monotonic()
        seen.overlap += (now - last) if both else 0.0
        last = now
        time.sleep(interval)


def one_move(source: Cloud, target: Cloud, ready_polls: int, interval: float, workdir: Path) -> tuple[float, Probe]:
    state_path = workdir / f"{source.name}-{target.name}.db"
    os.environ.update(stand_in_environment(state_path, poll_seconds=0.05))
    for cloud in (source, target):
        cloud.stand_in.reset()
        os.environ.update(cloud.environment())
    stack = workdir / f"{source.name}-{target.name}.yaml"
    stack.write_text(
        "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\nautoscaling: {min_replicas: 1, max_replicas: 2}\n"
        "placement:\n" + source.block() + target.block()
    )
    code, _, err = cli_run("up", str(stack), "--cloud", source.name, "--yes")
    if code:
        raise SystemExit(f"up on {source.name} failed: {err}")
    target.ready_after_polls(ready_polls)
    stop, seen = threading.Event(), Probe()
    clouds: dict[str, Cloud] = {source.name: source, target.name: target}
    loops = [
        threading.Thread(target=call_endpoint, args=(state_path, clouds, interval, stop, seen)),
        threading.Thread(target=sample_billing, args=(clouds, interval, stop, seen)),
    ]
    for loop in loops:
        loop.start()
    time.sleep(0.5)  # the client is calling the source before the move starts
    start = time.perf_counter()
    code, _, err = cli_run("move", "chat", "--to", target.name, "--yes")
    wall = time.perf_counter() - start
    time.sleep(0.5)  # and goes on calling the target after it ends
    stop.set()
    for loop in loops:
        loop.join()
    if code:
        raise SystemExit(f"move {source.name} -> {target.name} failed: {err}")
    cli_run("down", "chat", "--yes")
    return wall, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["aws:azure", "azure:gcp", "gcp:oci", "oci:aws"], help="source:target pairs")
    parser.add_argument("--ready-polls", type=int, default=25, help="status polls before the target's endpoint is ready")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between the client's calls")
    options = parser.parse_args()
    pairs = [tuple(p.split(":")) for p in options.pairs]
    internet = Internet()
    os.environ.update(internet.environment())
    stand_ins = {name: start_stand_in(name, internet) for name in sorted({c for pair in pairs for c in pair})}
    harnesses = {name: HARNESSES[name](stand_in) for name, stand_in in stand_ins.items()}
    print(f"{'move':<14} {'move s':>7} {'calls':>6} {'failed':>7} {'overlap s':>10}  goal: 0 failed")
    with tempfile.TemporaryDirectory() as workdir:
        for source, target in pairs:
            wall, seen = one_move(harnesses[source], harnesses[target], options.ready_polls, options.interval, Path(workdir))
            print(
                f"{source + ' -> ' + target:<14} {wall:7.2f} {seen.calls:6d} {len(seen.failures):7d} {seen.overlap:10.2f}"
                + (f"  first failure: {seen.failures[0]}" if seen.failures else "")
            )
    for stand_in in stand_ins.values():
        stand_in.stop()
    internet.stop()
    print(
        f"(target ready after {options.ready_polls} status polls; first poll 0.05 s, then 4 % of the time waited; "
        "overlap = both clouds' inventories held serving compute; Vertex lists a deployed model only once it is deployed)"
    )


if __name__ == "__main__":
    main()
