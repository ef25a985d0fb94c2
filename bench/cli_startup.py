"""Cold start of the CLI: wall time and peak RSS of `--help`, `plan` and `cost`, and what they import.

Goals (issue 2, on the 2-core dev machine): `--help` <= 0.15 s, `cost` over four clouds
<= 0.4 s, and no boto3, azure, google.cloud, oci or pulumi module imported by any of them.
Each command runs in a fresh interpreter, as a user's shell would start it.

    python bench/cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STACK = "stacks/llama-3.1-70b.yaml"
COMMANDS = {
    "--help": ["--help"],
    "plan --cloud aws": ["plan", STACK, "--cloud", "aws"],
    "cost (4 clouds)": ["cost", STACK],
    "cost --output json": ["cost", STACK, "--output", "json"],
}
GOALS = {"--help": 0.15, "cost (4 clouds)": 0.4}
CLOUD_SDKS = ("boto3", "botocore", "azure", "google.cloud", "oci", "pulumi")
# Empty namespace modules google-cloud's `-nspkg.pth` creates at interpreter start: no SDK code.
PTH_NAMESPACES = {"google", "google.cloud"}
RUN_CLI = "import sys; from orchestrator.cli import main; sys.argv[0] = 'llamadeploy'; main()"
LIST_MODULES = (
    "import sys, atexit; atexit.register(lambda: print('\\n'.join(sorted(sys.modules)), file=sys.stderr)); "
    "from orchestrator.cli import main; sys.argv[0] = 'llamadeploy'; main()"
)


def measure(args: list[str], runs: int) -> tuple[float, float, float]:
    """Median and worst wall seconds, and the peak RSS in MiB, over `runs` cold starts."""
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", RUN_CLI, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        times.append(time.perf_counter() - start)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"llamadeploy {' '.join(args)} exited {child.returncode}")
        peaks.append(usage.ru_maxrss / 1024)  # this child's own peak, in KiB on Linux
    return statistics.median(times), max(times), max(peaks)


def imported(args: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", LIST_MODULES, *args], cwd=REPO, check=True, capture_output=True, text=True)
    return done.stderr.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()

    figures = []
    for label, args in COMMANDS.items():
        median, worst, rss = measure(args, options.runs)
        modules = imported(args)
        heavy = sorted({m for m in set(modules) - PTH_NAMESPACES if m.split(".")[0] in CLOUD_SDKS or m.startswith("google.cloud")})
        goal = GOALS.get(label)
        figures.append(
            {
                "command": label,
                "median_s": round(median, 3),
                "max_s": round(worst, 3),
                "peak_rss_mib": round(rss, 1),
                "modules": len(modules),
                "cloud_sdk_modules": heavy,
                "goal_s": goal,
                "met": None if goal is None else median <= goal and not heavy,
            }
        )
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{'command':22} {'median s':>9} {'max s':>7} {'RSS MiB':>8} {'modules':>8}  goal")
    for f in figures:
        goal = "" if f["goal_s"] is None else f"<= {f['goal_s']} s: {'met' if f['met'] else 'MISSED'}"
        print(f"{f['command']:22} {f['median_s']:9.3f} {f['max_s']:7.3f} {f['peak_rss_mib']:8.1f} {f['modules']:8d}  {goal}")
        if f["cloud_sdk_modules"]:
            print(f"  cloud SDK modules imported: {', '.join(f['cloud_sdk_modules'])}")
    print(f"({options.runs} cold runs each, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
