"""Watch the whole lifecycle without a cloud account: `python -m tests.demo`.

Starts two of the test suite's cloud stand-ins on loopback (SageMaker on moto, and Vertex AI),
each running a stand-in vLLM the way the real service starts the container, then runs the real
`llamadeploy` commands against them and prints what each says: `up` on AWS, `status`, `call`,
`move` to Google Cloud, `status`, `down`. Nothing leaves this machine; no credentials are used
(the stand-ins accept the test suite's fake keys). Needs `pip install -e '.[dev]'`.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tests.clouds import HARNESSES, cli_run, stand_in_environment, start_stand_in
from tests.emulators.internet import Internet

STACK = "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\nautoscaling: {min_replicas: 1, max_replicas: 2}\n"


def main() -> None:
    internet = Internet()
    os.environ.update(internet.environment())
    stand_ins = {name: start_stand_in(name, internet) for name in ("aws", "gcp")}
    clouds = {name: HARNESSES[name](stand_in) for name, stand_in in stand_ins.items()}
    with tempfile.TemporaryDirectory(prefix="llamadeploy-demo-") as workdir:
        os.environ.update(stand_in_environment(Path(workdir) / "state.db", poll_seconds=0.05))
        for cloud in clouds.values():
            os.environ.update(cloud.environment())
        stack = Path(workdir) / "chat.yaml"
        stack.write_text(STACK + "placement:\n" + clouds["aws"].block() + clouds["gcp"].block())
        print(f"# the stack ({stack}):\n{stack.read_text()}")
        steps = [
            ("up", str(stack), "--cloud", "aws", "--yes"),
            ("status",),
            ("call", "chat", "--prompt", "Say hello in five words."),
            ("move", "chat", "--to", "gcp", "--yes"),
            ("status",),
            ("down", "chat", "--yes"),
        ]
        try:
            for step in steps:
                print(f"\n$ llamadeploy {' '.join(step)}", flush=True)
                code, out, err = cli_run(*step)
                print(err.rstrip() + ("\n" if err.strip() else "") + out.rstrip())
                if code:
                    sys.exit(f"`llamadeploy {step[0]}` exited {code}")
        finally:
            for stand_in in stand_ins.values():
                stand_in.stop()
            internet.stop()
    print("\nEvery cloud resource the demo made was deleted; the state file went with its temporary folder.")


if __name__ == "__main__":
    main()
