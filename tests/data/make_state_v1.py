"""How `state-v1.sql` and `state-v1-cloud.json` were written: by the engine of release 1bef1b4,
before the typed record, on the test plugin's two clouds.

    git worktree add /tmp/old 1bef1b4 && git show 6d8aaba:tests/fake_provider.py > /tmp/old/tests/fake_provider.py
    PYTHONPATH=/tmp/old python tests/data/make_state_v1.py /tmp/v1

(6d8aaba's test plugin kept its cloud in memory, `FakeProvider.live`; the plugin talks to a
stand-in over HTTP since.)

Four deployments: `chat` serving; `halfway`, whose `up` died while creating; `drained`, whose
move to another region died after the switch (source still draining); `switching`, whose move
to the other cloud died while the target was being created. A death is an exception the engine
does not catch (as SIGKILL leaves the state file), and the dead holders' locks are removed as
their expiry would.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

OFFERS = (
    "fake,Fake serving,moon-1,fake.gpu1,L4,1,24,4,16,0.50,,managed-service list price,test,2026-11-01\n"
    "fake,Fake serving,moon-2,fake.gpu1,L4,1,24,4,16,0.55,,managed-service list price,test,2026-11-01\n"
    "fake2,Fake serving,mars-1,f2.gpu1,L4,1,24,4,16,0.45,,managed-service list price,test,2026-11-01\n"
)


class Death(BaseException):
    """The command stops here, as far as the state file can tell."""


def main(work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    dist = work / "site" / "llamadeploy_fake-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: llamadeploy-fake\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[llamadeploy.providers]\nfake = tests.fake_provider:FakeProvider\nfake2 = tests.fake_provider:OtherFakeProvider\n")
    sys.path.insert(0, str(work / "site"))
    catalog_path = work / "offers.csv"
    catalog_path.write_text((Path(__file__).parent / "mini-offers.csv").read_text() + OFFERS)
    os.environ.update({"LLAMADEPLOY_CATALOG": str(catalog_path), "HF_TOKEN": "x", "LLAMADEPLOY_POLL_SECONDS": "0.01"})

    from orchestrator import engine
    from orchestrator.catalog import load_catalog
    from orchestrator.spec import load_stack
    from orchestrator.state import State
    from tests.fake_provider import FakeProvider

    state, catalog = State(work / "state.db"), load_catalog(catalog_path)

    def quiet(*_: object, **__: object) -> None:
        return None

    def planned(name: str):
        path = work / f"{name}.yaml"
        path.write_text(
            f"name: {name}\nmodel: llama3.2-1b-instruct\nmax_context: 2048\nconcurrency: 4\n"
            "placement:\n  fake: {zone: crater-7}\n  fake2: {zone: crater-9}\n"
        )
        stack = load_stack(path)
        return engine.plan_up(stack, stack.deployments[0], "fake", catalog)

    def dying_apply(provider, plan, events):
        (resource,) = provider.resources(plan)
        FakeProvider.live[resource.name] = resource
        events.created(resource)
        raise Death

    def dying_drain(*_: object) -> None:
        raise Death

    def dies(call, patch_owner, attribute, replacement) -> None:
        original = getattr(patch_owner, attribute)
        setattr(patch_owner, attribute, replacement)
        try:
            call()
        except Death:
            pass
        finally:
            setattr(patch_owner, attribute, original)

    engine.up(*planned("chat"), state, quiet)
    dies(lambda: engine.up(*planned("halfway"), state, quiet), FakeProvider, "apply", dying_apply)
    engine.up(*planned("drained"), state, quiet)
    dies(lambda: engine.move(state, "drained", "fake", catalog, quiet, region="moon-2"), engine, "_drain", dying_drain)
    engine.up(*planned("switching"), state, quiet)
    dies(lambda: engine.move(state, "switching", "fake2", catalog, quiet), FakeProvider, "apply", dying_apply)

    db = sqlite3.connect(work / "state.db")
    db.execute("DELETE FROM locks")
    db.commit()
    (work / "state-v1.sql").write_text("".join(line + "\n" for line in db.iterdump()))
    inventory = {name: {"type": r.type, "name": r.name, "properties": r.properties} for name, r in FakeProvider.live.items()}
    (work / "state-v1-cloud.json").write_text(json.dumps(inventory, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
