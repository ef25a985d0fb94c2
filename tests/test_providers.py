"""Provider scenarios against the cloud stand-ins: real SDK, real HTTP, loopback only.

Written once over the `Cloud` harness and parametrised by cloud; every assertion is on what
the cloud received, what is left in it, or what the user saw.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.declared.stackfile import load_stack
from orchestrator.lifecycle import engine
from orchestrator.lifecycle.context import Context
from orchestrator.lifecycle.state import LockedError, open_state
from orchestrator.pricing.catalog import load_catalog
from providers import registry
from tests.checkpoints import checkpoint_files
from tests.clouds import DECLARED, HF_TOKEN, ROLE, AwsCloud, Caller, CliProcess, Cloud, OciCloud, cli_process, cli_run, run_example
from tests.emulators.hub import HubStandIn
from tests.emulators.oci import NAMESPACE

REPO = Path(__file__).parent.parent


def test_up_status_down_leaves_nothing(cloud: Cloud, stack: Path, instance_type: str) -> None:
    cloud.ready_after_polls(3)
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert "chat is serving on" in out and "try:" in out
    received = cloud.received()
    assert (received["instance_type"], received["instance_count"]) == (instance_type, 1)
    assert (received["min_replicas"], received["max_replicas"]) == (1, 3)
    assert received["concurrency"] in (6, 8)  # the autoscaling target, or the per-instance request cap
    assert (received["model_id"], received["max_model_len"]) == ("meta-llama/Llama-3.2-1B-Instruct", "8192")
    assert received["environment"]["VLLM_LOGGING_LEVEL"] == "INFO"
    assert received["tags"] == {"team": "ml", "llamadeploy-deployment": "chat"}
    if cloud.secrets_stay_out_of_the_deployment:
        assert HF_TOKEN not in received["deployment_request"]
        assert "azureml://connections/" in received["environment"]["HF_TOKEN"]
    assert re.search(r": (Creating|InProgress|running|IN_PROGRESS|CREATING) \(\d+ s\)", err)  # the cloud's own state, shown while waiting
    assert not re.search(r"^\.|\.\.", out + err, re.M), err  # no SDK progress dots (azure-ai-ml prints them) in either stream

    code, out, _ = cli_run("status", "--output", "json")
    (row,) = json.loads(out)["deployments"]
    assert code == 0 and row["live"]["state"] == "serving" and row["drift"] == []
    assert (row["live"]["min_replicas"], row["live"]["max_replicas"], row["live"]["instance_type"]) == (1, 3, instance_type)

    code, out, err = cli_run("down", "chat", "--yes")
    assert code == 0, err
    assert "nothing tagged with it remains" in out
    assert cloud.empty(), cloud.inventory()
    code, out, _ = cli_run("status", "--output", "json")
    assert json.loads(out)["deployments"] == []


def test_up_call_and_the_printed_example_all_get_the_declared_model(cloud: Cloud, stack: Path) -> None:
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert f"answered by: {DECLARED}" in out and f"chat answers as {DECLARED}" in err  # up checked it with a call
    code, out, err = cli_run("call", "chat", "--output", "json")
    answer = json.loads(out)
    assert code == 0, err
    assert (answer["model"], answer["declared_model"], answer["matches_declared"]) == (DECLARED, DECLARED, True) and "Paris" in answer["answer"]
    code, out, err = cli_run("call", "chat", "--prompt", "Capital of France?", "--max-tokens", "8")
    assert code == 0 and "Paris" in out and f"model: {DECLARED}" in err
    example = next(line for line in cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[1].splitlines() if "try:" in line).split("try:", 1)[1].strip()
    done = run_example(example)
    assert done.returncode == 0, done.stderr
    assert f'"model": "{DECLARED}"' in done.stdout and "Paris" in done.stdout, done.stdout
    assert cloud.endpoint_creates() == 1 and cloud.created_twice() == []
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_an_image_the_cloud_cannot_run_fails_and_rolls_back(cloud: Cloud, stack: Path) -> None:
    cloud.use_image(stack, cloud.unknown_image)
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "Traceback" not in err
    assert cloud.unknown_image_text in err, err
    assert "rolled back" in err or "nothing was created" in err
    assert cloud.empty(), cloud.inventory()
    assert json.loads(cli_run("status", "--output", "json")[1])["deployments"] == []


def test_a_container_started_the_wrong_way_fails_and_rolls_back(cloud: Cloud, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each cloud's known wrong contract (the ones this project once shipped), sent on purpose: the
    stand-in starts the container as the service would, and `up` must not call that serving."""
    expected = cloud.break_contract(monkeypatch)
    cloud.ready_after_polls(2)
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "Traceback" not in err
    assert expected in err, err
    assert "rolled back: deleted the" in err
    assert cloud.empty(), cloud.inventory()
    if "answers as model" in expected:  # the container started: only the call tells; --no-verify skips it
        code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes", "--no-verify", "--output", "json")
        assert code == 0 and json.loads(out.splitlines()[-1])["answered_by"] is None, err
        code, _, err = cli_run("call", "chat")
        assert code == 1 and "answered as 'Qwen/Qwen3-0.6B', not the declared" in err
        assert cli_run("down", "chat", "--yes")[0] == 0 and cloud.empty()


def test_int4_serves_a_checkpoint_quantized_ahead_of_time(cloud: Cloud, stack: Path) -> None:
    awq = "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"
    stack.write_text(stack.read_text().replace("model: llama3.2-1b-instruct", "model: llama3.1-8b-instruct\nquantization: int4"))
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    received = cloud.received()
    assert received["model_id"] == awq
    assert not {"quantization", "quantize"} & set(received["vllm_options"]), received["vllm_options"]  # vLLM reads AWQ from the checkpoint
    assert f"answered by: {awq}" in out
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_secrets_stay_out_of_state_and_output(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes", "--output", "json")
    assert code == 0
    assert HF_TOKEN not in out + err
    state_file = tmp_path / "state.db"
    assert HF_TOKEN.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["deployment"] == "chat"
    # Each event carries the schema version, when it happened and how bad it was (docs/pipelines.md).
    assert all(
        e["@version"] == 1 and e["@level"] in ("info", "warn") and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", e["@timestamp"]) for e in events
    )
    assert {"created"} <= {e["event"] for e in events}


def test_rerun_changes_nothing(cloud: Cloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    before = cloud.creates()
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0 and cloud.creates() == before
    assert "already serving as declared; nothing to change" in err


@pytest.mark.parametrize("fault", ["capacity", "quota"])
def test_capacity_or_quota_failure_leaves_nothing_and_says_why(cloud: Cloud, stack: Path, instance_type: str, fault: str) -> None:
    cloud.ready_after_polls(2)
    getattr(cloud, f"fail_{fault}")(instance_type)
    code, _out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1
    assert (cloud.capacity_text if fault == "capacity" else cloud.quota_text) in err
    refused_first = fault == "quota" and cloud.quota_refused_at_first_create
    assert ("nothing was created" if refused_first else "rolled back: deleted the") in err and "Traceback" not in err
    assert cloud.empty(), cloud.inventory()
    assert json.loads(cli_run("status", "--output", "json")[1])["deployments"] == []


def test_no_quota_stops_up_before_anything_is_created(cloud: Cloud, stack: Path, instance_type: str) -> None:
    """The quota API is read first: with none free, nothing is created, nothing recorded, and the user
    learns the quota's name and how to ask for more."""
    cloud.set_quota(instance_type, 0)
    code, out, _ = cli_run("plan", str(stack), "--cloud", cloud.name, "--output", "json")
    (quota,) = json.loads(out)["quotas"]
    assert code == 0 and quota["checked"] and cloud.quota_name in quota["name"] and quota["enough"] is False, quota
    assert cli_run("plan", str(stack), "--cloud", cloud.name, "--no-refresh", "--output", "json")[1].count('"checked": false') == 1
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "stopped before creating anything" in err and cloud.quota_name in err, err
    assert "request" in err.split("stopped before creating anything")[1]
    assert cloud.creates() == 0 and cloud.empty(), cloud.inventory()
    assert json.loads(cli_run("status", "--output", "json")[1])["deployments"] == []
    cloud.set_quota(instance_type, 8)
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0 and "8 " in err.split(cloud.quota_name)[1].splitlines()[0], err  # what was read is shown
    assert cli_run("down", "chat", "--yes")[0] == 0 and cloud.empty()


def test_throttling_is_retried(cloud: Cloud, stack: Path) -> None:
    cloud.throttle()
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert cloud.throttling_was_respected(err)
    assert cloud.endpoint_creates() == 1


@pytest.mark.parametrize("when", ["first calls", "while waiting"])
def test_transient_server_errors_are_retried(cloud: Cloud, stack: Path, when: str) -> None:
    """The SDKs do not retry on their own: the engine does, with backoff, whether the cloud fails the
    first calls (the quota read, the existence checks, the creates) or the polls of a resource being made."""
    if when == "first calls":
        cloud.fail_transiently(2)
    else:  # held until the fault is set, so the polls that follow are the ones that fail
        cloud.hold_serving()

        def fail_then_finish() -> None:
            cloud.fail_transiently(2)
            cloud.finish_in_polls(3)

        _once(lambda: cloud.serving_requests() > 0, fail_then_finish)
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert err.count("; retry in") >= 2, err  # one line per retry
    assert cloud.endpoint_creates() == 1 and cloud.created_twice() == []
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def _once(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Event:
    """Do `then` as soon as `condition` holds (or after 60 s), from a thread that watches while the
    test runs a command; the event tells whether the condition was met."""
    met = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.002)
        if condition():
            met.set()
        then()

    threading.Thread(target=watch, daemon=True).start()
    return met


def test_dropped_connections_are_retried_on_every_command(cloud: Cloud, stack: Path) -> None:
    """Each command in a process of its own, as a user runs it: a dropped connection is retried
    (the SDKs do not retry: the engine does), never a traceback."""
    cloud.drop_connections(2)
    code, _, err = cli_process("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert err.count("; retry in") >= 2, err
    for command in (("status", "--output", "json"), ("call", "chat", "--output", "json"), ("plan", str(stack), "--cloud", cloud.name)):
        cloud.drop_connections(1)
        code, out, err = cli_process(*command)
        assert code == 0 and out.strip() and "Traceback" not in err, (command, err)
    assert json.loads(cli_run("status", "--output", "json")[1])["deployments"][0]["live"]["state"] == "serving"
    cloud.drop_connections(1)
    code, _, err = cli_process("down", "chat", "--yes")
    assert code == 0 and "; retry in" in err, err
    assert cloud.empty(), cloud.inventory()


def test_scale_changes_the_bounds_in_place(cloud: Cloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    before = cloud.endpoint_creates()
    code, out, err = cli_run("scale", "chat", "--min", "2", "--max", "4", "--yes")
    assert code == 0, err
    assert "now scales between 2 and 4 replicas" in out
    code, out, _ = cli_run("status", "--output", "json")
    (row,) = json.loads(out)["deployments"]
    assert (row["live"]["min_replicas"], row["live"]["max_replicas"], row["drift"]) == (2, 4, [])  # what the cloud says now, and as recorded
    assert cloud.endpoint_creates() == before  # in place: nothing made again
    code, _, err = cli_run("scale", "chat", "--min", "3", "--max", "2", "--yes")
    assert code == 2 and "1 <= min <= max" in err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_a_wait_past_its_timeout_keeps_the_record_and_down_deletes_it(cloud: Cloud, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.hold_serving()
    monkeypatch.setenv("LLAMADEPLOY_WAIT_TIMEOUT", "0.4")
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "LLAMADEPLOY_WAIT_TIMEOUT allows 0.4 s" in err and "Traceback" not in err, err
    assert "the cloud is still working on it: run `up` again to go on waiting, or `down` to delete it" in err
    monkeypatch.delenv("LLAMADEPLOY_WAIT_TIMEOUT")
    # The cloud finishes first: in this one test process the SDK's poller thread a timed-out wait left
    # behind (azure-ai-ml's prints progress dots) would otherwise write into the next command's output.
    cloud.make_ready()
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert row["recorded_status"] == "creating" and row["history"][-1]["status"] == "failed"  # recorded, nothing deleted under the cloud's feet
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


@pytest.mark.parametrize("damage", ["record", "file"])
def test_a_corrupt_state_is_named_and_nothing_in_the_cloud_is_touched(cloud: Cloud, stack: Path, tmp_path: Path, damage: str) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    before, path = cloud.inventory(), tmp_path / "state.db"
    saved = path.read_bytes()
    if damage == "record":
        with closing(sqlite3.connect(path)) as db, db:
            db.execute("UPDATE deployments SET record = '{\"version\": 2, \"phase\"' WHERE name = 'chat'")
        expected = ("the record of 'chat'", "restore it from a backup")
    else:
        path.write_bytes(b"\x00garbage" * 512)
        expected = ("is not a llamadeploy state database", "restore it from a backup")
    for command in (("status",), ("up", str(stack), "--cloud", cloud.name, "--yes"), ("down", "chat", "--yes"), ("call", "chat")):
        code, _, err = cli_process(*command)
        last = err.strip().splitlines()[-1]
        assert code == 1 and all(words in last for words in expected) and "Traceback" not in err, (command, err)
    assert cloud.inventory() == before  # nothing deleted, nothing made
    path.write_bytes(saved)
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_status_reports_an_endpoint_deleted_by_hand(cloud: Cloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    endpoint = cloud.endpoint_name("chat")
    cloud.delete_endpoint_by_hand("chat")
    code, out, _ = cli_run("status", "chat", "--output", "json")
    (row,) = json.loads(out)["deployments"]
    assert code == 0 and row["error"] is None, row["error"]
    assert row["live"]["state"] == "missing"
    assert f"{cloud.endpoint_type} {endpoint} was deleted outside llamadeploy" in row["drift"]
    code, out, _ = cli_run("status")
    assert code == 0 and "missing" in out  # the table wraps long notes; the JSON above has the exact text
    code, out, _ = cli_run("plan", str(stack), "--cloud", cloud.name, "--detailed-exitcode", "--output", "json")
    (change,) = json.loads(out)["changes"]
    assert code == 2 and change["action"] == "create" and "was deleted outside llamadeploy" in change["detail"], change
    assert cli_run("plan", str(stack), "--cloud", cloud.name, "--detailed-exitcode", "--no-refresh")[0] == 0  # the record alone says serving
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert json.loads(cli_run("status", "chat", "--output", "json")[1])["deployments"][0]["drift"] == []
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_a_changed_replica_bound_is_planned_and_applied_in_place(cloud: Cloud, stack: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    made, aimed = cloud.creates(), cloud.autoscaling_target()
    stack.write_text(
        stack.read_text()
        .replace("max_replicas: 3", "max_replicas: 5")
        .replace("target_concurrent_requests: 6", "target_concurrent_requests: 4")
        .replace("tags: {team: ml}", "tags: {owner: platform, costcenter: c42}")
    )
    code, out, _ = cli_run("plan", str(stack), "--cloud", cloud.name, "--detailed-exitcode")
    assert code == 2 and "autoscaling.max_replicas: 3 -> 5" in out and "autoscaling.target_concurrent_requests: 6 -> 4" in out, out
    assert "tags.team: ml -> (none)" in out and "tags.costcenter: (none) -> c42" in out, out
    assert "Plan: 0 to add, 1 to change in place, 0 to replace, 0 to destroy." in out
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0 and "chat: updating in place (autoscaling.max_replicas: 3 -> 5; autoscaling.target_concurrent_requests: 6 -> 4;" in err, err
    assert cloud.creates() == made and cloud.created_twice() == []  # nothing made anew
    assert cloud.autoscaling_target() != aimed  # the service aims at the new target
    tagged = cloud.tags()
    assert tagged and all(tags == {"owner": "platform", "costcenter": "c42", "llamadeploy-deployment": "chat"} for tags in tagged.values()), tagged
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert (row["live"]["min_replicas"], row["live"]["max_replicas"], row["drift"]) == (1, 5, [])  # as the cloud reports it
    assert row["history"][-1]["operation"] == "update"
    assert cli_run("plan", str(stack), "--cloud", cloud.name, "--detailed-exitcode")[0] == 0
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def _replacing_stack(stack: Path, cloud: Cloud) -> None:
    """The stack changed in what needs new machines: another GPU (so another instance type) and a shorter context."""
    stack.write_text(stack.read_text().replace("max_context: 8192\n", f"max_context: 4096\ngpu: {cloud.replacement_gpu}\n"))


def _counts(cloud: Cloud) -> dict[str, int]:
    return {kind: len(names) for kind, names in cloud.inventory().items()}


def test_a_change_that_needs_new_machines_is_replaced_blue_green_without_a_failed_call(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    endpoints, counts, first = cloud.endpoint_creates(), _counts(cloud), cloud.inventory()
    _replacing_stack(stack, cloud)
    code, out, _ = cli_run("plan", str(stack), "--cloud", cloud.name, "--detailed-exitcode")
    assert code == 2 and "Plan: 0 to add, 0 to change in place, 1 to replace, 0 to destroy." in out and "max_context: 8192 -> 4096" in out, out
    new_type = load_catalog_plan(stack, cloud.name)
    assert f"-> {new_type}" in out
    cloud.ready_after_polls(20)  # the new variant takes a while, so calls overlap every step
    with Caller(cloud, tmp_path / "state.db") as caller:
        code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert "replacing blue/green" in err and "deleting the old one" in err, err
    assert caller.failures == [] and "replacing" in caller.phases, (caller.failures[:3], set(caller.phases))
    assert caller.overlap() > 0 and cloud.billed_variants() == 1  # both variants ran side by side, then only the new one
    assert cloud.endpoint_creates() == endpoints  # the same endpoint: the URL users call did not change
    assert _counts(cloud) == counts, cloud.inventory()  # one variant, as after a first `up`: the old one is gone
    assert cloud.inventory() != first or cloud.name in ("oci", "fake")  # new resources, where the service stages them under new names
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert (row["live"]["state"], row["live"]["instance_type"], row["drift"]) == ("serving", new_type, []), row
    assert row["history"][-1]["operation"] == "replace" and row["history"][-1]["status"] == "succeeded"
    assert json.loads(cli_run("call", "chat", "--output", "json")[1])["model"] == DECLARED
    assert cli_run("plan", str(stack), "--cloud", cloud.name, "--detailed-exitcode")[0] == 0
    variant = json.loads(cli_run("state", "show", "chat")[1])["record"]["placed"]["plan"]["variant"]
    assert variant and cli_run("scale", "chat", "--min", "1", "--max", "4", "--yes")[0] == 0
    assert json.loads(cli_run("state", "show", "chat")[1])["record"]["placed"]["plan"]["variant"] == variant  # the names it has in the cloud
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def load_catalog_plan(stack: Path, cloud: str) -> str:
    """The instance type the planner chooses for the stack on `cloud` now."""
    from orchestrator.planning.planner import plan

    loaded = load_stack(stack)
    return plan(loaded, loaded.deployments[0], cloud, load_catalog()).offer.instance_type


def test_a_replacement_that_fails_leaves_the_old_variant_serving(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    first = cloud.inventory()
    _replacing_stack(stack, cloud)
    cloud.fail_capacity(load_catalog_plan(stack, cloud.name))
    with Caller(cloud, tmp_path / "state.db") as caller:
        code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "replacing 'chat'" in err and cloud.capacity_text in err and "the variant that served before serves" in err, err
    assert caller.failures == [], caller.failures[:3]
    assert cloud.inventory() == first  # the new variant's resources deleted, the old ones untouched
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert (row["recorded_status"], row["live"]["state"]) == ("serving", "serving") and row["history"][-1]["status"] == "rolled_back", row
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_killed_mid_replace_is_undone_by_rollback_and_finished_by_up(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    old_type, first = load_catalog_plan(stack, cloud.name), cloud.inventory()
    _replacing_stack(stack, cloud)
    new_type = load_catalog_plan(stack, cloud.name)
    state = open_state(tmp_path / "state.db")

    def kill_mid_replace() -> None:
        cloud.hold_serving()
        child = CliProcess("up", str(stack), "--cloud", cloud.name, "--yes")
        child.kill_once(lambda: (r := state.get("chat")) is not None and r.phase.value == "replacing", settle=0.3)
        cloud.finish_in_polls(3)

    kill_mid_replace()
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert any("unfinished replace" in d for d in row["drift"]), row
    assert cli_run("down", "chat", "--yes")[0] == 1  # not with a replace half done
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--rollback", "--yes")
    assert code == 0 and "the variant that served before serves" in out, err
    assert cloud.inventory() == first, cloud.inventory()
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert (row["recorded_status"], row["live"]["instance_type"], row["drift"]) == ("serving", old_type, []), row

    kill_mid_replace()
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert (row["recorded_status"], row["live"]["instance_type"], row["drift"]) == ("serving", new_type, []), row
    assert _counts(cloud) == {kind: len(names) for kind, names in first.items()}, cloud.inventory()
    state.close()
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def _kill_up_while_waiting(stack: Path, cloud: Cloud) -> None:
    """Run `up` in a process and SIGKILL it once the cloud has its first resource and the run is waiting on it."""
    cloud.ready_after_polls(10**6)
    child = CliProcess("up", str(stack), "--cloud", cloud.name, "--yes")
    child.kill_once(lambda: cloud.creates() > 0, settle=0.15)  # a few polls while the cloud is still working


def test_killed_mid_up_is_adopted_by_the_next_up_and_removed_by_down(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    _kill_up_while_waiting(stack, cloud)
    made = cloud.creates()
    assert made >= 1

    cloud.make_ready()
    code, _out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert "did not finish; taking over" in err
    assert "adopted " in err
    assert cloud.created_twice() == []  # what the killed run made was adopted, not made again
    assert cloud.endpoint_creates() == 1
    assert json.loads(cli_run("status", "--output", "json")[1])["deployments"][0]["live"]["state"] == "serving"

    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_killed_mid_up_then_down_leaves_nothing(cloud: Cloud, stack: Path) -> None:
    _kill_up_while_waiting(stack, cloud)
    cloud.make_ready()
    code, _, err = cli_run("down", "chat", "--yes")
    assert code == 0, err
    assert cloud.empty(), cloud.inventory()


def test_killed_while_the_cloud_deploys_the_next_up_waits_for_it_and_deploys_once(cloud: Cloud, stack: Path) -> None:
    """The serving resource is still being made when the command dies (on Vertex AI a deployModel in
    flight shows nowhere on the endpoint): the next `up` waits for it rather than make a second."""
    cloud.hold_serving()
    child = CliProcess("up", str(stack), "--cloud", cloud.name, "--yes")
    child.kill_once(lambda: cloud.serving_requests() > 0, settle=0.1)
    cloud.finish_in_polls(3)
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert cloud.serving_requests() == 1 and cloud.serving_copies() == 1, cloud.inventory()
    assert json.loads(cli_run("status", "--output", "json")[1])["deployments"][0]["live"]["state"] == "serving"
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


@pytest.mark.parametrize("then", ["up", "down"])
def test_killed_while_the_cloud_deletes_the_next_command_waits_for_the_delete(cloud: Cloud, stack: Path, then: str) -> None:
    """A `down` killed while the cloud deletes: the next `up` neither adopts what is going away nor
    says it serves while nothing does, and the next `down` finishes without deleting twice."""
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    cloud.ready_after_polls(10**6)
    child = CliProcess("down", "chat", "--yes")
    child.kill_once(lambda: cloud.delete_requests() > 0, settle=0.1)
    cloud.finish_in_polls(3)
    command = ("up", str(stack), "--cloud", cloud.name, "--yes") if then == "up" else ("down", "chat", "--yes")
    code, _, err = cli_run(*command)
    assert code == 0, err
    assert cloud.delete_requests() == 1  # the delete in flight was waited for, not sent again
    if then == "up":
        assert cloud.serving_copies() == 1, cloud.inventory()
        code, out, _ = cli_run("call", "chat", "--output", "json")
        assert code == 0 and json.loads(out)["model"] == DECLARED
        assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_a_stack_of_several_deployments_comes_up_and_goes_down_at_once(cloud: Cloud, tmp_path: Path) -> None:
    """Each deployment in a thread of its own: one progress display whose lines say which deployment."""
    cloud.hold_serving()
    together = _once(lambda: cloud.serving_requests() >= 2, cloud.make_ready)  # one at a time, the first would wait for ever
    placement = textwrap.indent(cloud.placement(), "    ")
    path = tmp_path / "two.yaml"
    path.write_text(
        "deployments:\n" + "".join(f"  - name: {name}\n    model: llama3.2-1b-instruct\n    max_context: 4096\n{placement}" for name in ("chat", "chat2"))
    )
    code, out, err = cli_run("up", str(path), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert together.is_set()  # the second was being made while the first still waited
    assert "chat is serving on" in out and "chat2 is serving on" in out
    assert re.search(r"^chat: created ", err, re.M) and re.search(r"^chat2: created ", err, re.M)
    assert cloud.serving_copies() == 2, cloud.inventory()
    rows = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    assert sorted((row["deployment"], row["live"]["state"]) for row in rows) == [("chat", "serving"), ("chat2", "serving")]
    code, out, err = cli_run("down", "chat", "chat2", "--yes")
    assert code == 0, err
    assert "chat is gone from" in out and "chat2 is gone from" in out
    assert cloud.empty(), cloud.inventory()


def test_two_concurrent_ups_do_not_both_create(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    cloud.hold_serving()  # the first `up` waits on the cloud until the second has asked for the lock
    loaded = load_stack(stack)
    planned, provider = engine.plan_up(loaded, loaded.deployments[0], cloud.name, load_catalog())
    outcomes: list[object] = []

    def attempt() -> None:
        state = open_state(tmp_path / "state.db")
        try:
            outcomes.append(engine.up(Context(state), planned, provider))
        except LockedError as exc:
            outcomes.append(exc)
        finally:
            state.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while not outcomes and time.monotonic() < deadline:  # the one refused ends first
        time.sleep(0.01)
    cloud.make_ready()
    for thread in threads:
        thread.join(timeout=60)
    locked = [o for o in outcomes if isinstance(o, LockedError)]
    assert len(outcomes) == 2 and len(locked) == 1
    assert "is locked by" in str(locked[0]) and " since " in str(locked[0])
    assert cloud.endpoint_creates() == 1


def test_up_needs_the_clouds_placement_fields(cloud: Cloud, tmp_path: Path) -> None:
    path = tmp_path / "bare.yaml"
    path.write_text(f"name: chat\nmodel: llama3.2-1b-instruct\nplacement:\n  {cloud.name}:\n    region: {registry.get(cloud.name).default_region}\n")
    code, _, err = cli_run("up", str(path), "--cloud", cloud.name, "--yes")
    assert code == 1 and f"{path}:4: placement.{cloud.name}: `up` on {cloud.name} needs placement.{cloud.name}." in err
    assert cloud.creates() == 0


def test_missing_secret_stops_before_any_create(cloud: Cloud, stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN")
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    # The stack names no secrets: the message says HF_TOKEN is the default, and how to turn it off.
    assert code == 1 and "needs HF_TOKEN (from $HF_TOKEN), which llamadeploy asks for by default" in err and "`serving: {secrets: {}}`" in err, err
    assert cloud.creates() == 0 and cloud.empty()
    assert json.loads(cli_run("state", "list", "--output", "json")[1])["deployments"] == []  # nothing journaled or recorded either
    stack.write_text(stack.read_text().replace("serving:\n", "serving:\n  secrets: {HF_TOKEN: env:HF_TOKEN}\n"))
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "needs the secrets HF_TOKEN (from $HF_TOKEN); export them before `up`, or remove them from serving.secrets" in err, err


def test_pipeline_without_yes_is_refused(cloud: Cloud, stack: Path) -> None:
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name)
    assert code == 2 and "pass --yes to confirm" in err
    assert cloud.creates() == 0


@pytest.mark.parametrize("cloud", ["aws"], indirect=True)
def test_aws_endpoint_url_from_the_environment(cloud: AwsCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.stand_in.url)
    path = tmp_path / "env.yaml"
    path.write_text(f"name: envchat\nmodel: llama3.2-1b-instruct\nplacement:\n  aws:\n    region: us-east-1\n    execution_role_arn: {ROLE}\n")
    code, _, err = cli_run("up", str(path), "--cloud", "aws", "--yes")
    assert code == 0, err
    assert cloud.inventory()["endpoints"] == ["envchat"]
    assert cloud.stand_in.calls("CreateEndpoint") == [
        {"EndpointName": "envchat", "EndpointConfigName": "envchat-config", "Tags": [{"Key": "llamadeploy-deployment", "Value": "envchat"}]}
    ]
    assert cli_run("down", "envchat", "--yes")[0] == 0
    assert cloud.empty()


def test_own_weights_from_object_storage_are_served_with_no_hub_token(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    """A fine-tune in the cloud's own object storage: the service is told to load it from there,
    vLLM loads it from where the service puts it, `call` answers as it, and no create request
    carries a Hugging Face token. A cloud llamadeploy cannot do this on yet says so and makes nothing."""
    uri = cloud.store_weights(checkpoint_files())
    if uri is None:
        stack.write_text(stack.read_text() + f"weights:\n  {cloud.name}: s3://my-models/llama-ft/\n")
        code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
        assert code != 0 and f"llamadeploy cannot serve weights from object storage on {cloud.name} yet" in err and "weights." in err
        assert cloud.empty() and cloud.creates() == 0
        return
    stack.write_text(stack.read_text() + f"weights:\n  {cloud.name}: {uri}\n")
    code, out, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert cloud.weights_received() == uri and f"chat answers as {uri}" in err
    received = cloud.received()
    assert HF_TOKEN not in json.dumps(received) and "HF_TOKEN" not in received["environment"]
    code, out, err = cli_run("call", "chat", "--output", "json")
    answer = json.loads(out)
    assert code == 0 and (answer["model"], answer["matches_declared"]) == (uri, True), err
    if cloud.stages_weights:  # staging over the location a deployment serves from is said, before anything is sent
        for name, body in checkpoint_files().items():
            (tmp_path / name).write_bytes(body)
        code, _, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", str(tmp_path))
        assert f"warning: chat serves from {uri} on {cloud.name}" in err, err
        assert code == 1 and "holds a different checkpoint" in err, err  # what lies there was not staged (no hashes): refused unless --replace
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_an_incomplete_checkpoint_fails_the_start_and_leaves_nothing(cloud: Cloud, stack: Path) -> None:
    files = checkpoint_files()
    del files["model-00002-of-00002.safetensors"]  # an upload cut short
    uri = cloud.store_weights(files)
    if uri is None:
        return  # the refusal is the test above's
    stack.write_text(stack.read_text() + f"weights:\n  {cloud.name}: {uri}\n")
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 1 and "is not a complete Hugging Face checkpoint: missing model-00002-of-00002.safetensors" in err, err
    assert cloud.creates() == 0 and cloud.empty(), cloud.inventory()  # found before the service made (and billed) anything


def test_a_fine_tune_is_sized_from_its_own_config_and_index(cloud: Cloud, stack: Path) -> None:
    """A fine-tune of the 1B with a larger vocabulary, untied embeddings and float32 tensors: plan
    reads its config.json and safetensors index from the cloud's storage (with the cloud's
    credentials) and sizes what is really there, not the catalog's 1B."""
    config = {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 200064,  # a tokenizer extended for the user's domain
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
    }
    files = checkpoint_files(config)
    total = 6_580_000_000  # float32: 4 bytes a parameter
    index = json.loads(files["model.safetensors.index.json"])
    files["model.safetensors.index.json"] = json.dumps({**index, "metadata": {"total_size": total}}).encode()
    uri = cloud.store_weights(files)
    if uri is None:
        return  # the refusal is test_own_weights_from_object_storage_are_served_with_no_hub_token's
    stack.write_text(stack.read_text() + f"weights:\n  {cloud.name}: {uri}\n")
    failing = cloud.fail_storage_transiently(2)  # the storage has a bad moment: the read is retried, not given up
    code, out, err = cli_run("plan", str(stack), "--cloud", cloud.name, "--output", "json")
    assert code == 0, err
    sizing = json.loads(out)["plans"][0]["sizing"]
    assert sizing["sized_from"] == f"{uri} (config.json, model.safetensors.index.json)"
    assert not failing or cloud.stand_in.faults.storage_error_next == 0
    assert sizing["weights_gib"] == round(total / 2 / 2**30, 2)  # float32 held at 16 bits (vLLM's dtype auto), not the catalog's 1.24 B x 2 bytes
    # KV cache from its config: 16 layers x 8 KV heads x 64 per head x 2 (K and V) x 2 bytes = 32 KiB a token
    assert sizing["kv_cache_bytes_per_token"] == 16 * 8 * 64 * 2 * 2
    # untied embeddings of a 200,064-token vocabulary: the catalog's 1.24 B grows by 2 x 71,808 x 2048 + 200,064 x 2048
    assert sizing["parameters"] > 1.6e9
    code, out, err = cli_run("plan", str(stack), "--cloud", cloud.name)
    assert f"as stored in {uri}" in out, out
    offline = json.loads(cli_run("plan", str(stack), "--cloud", cloud.name, "--output", "json", "--no-refresh")[1])["plans"][0]["sizing"]
    assert offline["sized_from"] == f"the catalog's llama3.2-1b-instruct: {uri} not read (--no-refresh plans offline)"
    stack.write_text(stack.read_text().replace("name: chat\n", "name: chat\nquantization: int4\n"))
    code, _, err = cli_run("plan", str(stack), "--cloud", cloud.name)
    assert code == 1 and "is not quantized (its config has no quantization_config), so vLLM cannot serve it as int4" in err, err


def test_weights_stage_resumes_after_a_kill_and_verifies_every_file(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    """`weights stage` copies a checkpoint folder into the cloud's storage: killed halfway, the next
    run sends only what is missing (config last, so a cut-short copy is refused by `up`); a file
    changed in the folder is sent again, and one gone from it is removed only with --replace."""
    folder = tmp_path / "llama-ft"
    folder.mkdir()
    files = checkpoint_files(shards=40)
    for number, name in enumerate(files):
        (folder / name).write_bytes(files[name] if not name.endswith(".safetensors") else bytes([number % 251]) * 2_000_000)
    probe = cloud.store_weights({})
    if probe is None or not cloud.stages_weights:
        code, _, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", str(folder), "--to", probe or "s3://my-models/llama-ft/")
        assert code == 2 and "yet" in err and f"{cloud.name}" in err, err
        assert not cloud.stored_weights()
        return
    stored = cloud.stored_weights
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"x")
    code, _, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", str(broken), "--to", probe)
    assert code == 1 and "--from" in err and "no config.json; no tokenizer" in err and stored() == {}, err  # checked before anything is sent
    child = CliProcess("weights", "stage", str(stack), "--cloud", cloud.name, "--from", str(folder), "--to", probe)
    child.kill_once(lambda: len(stored()) >= 3, settle=0)
    partial = stored()
    assert 3 <= len(partial) < len(files) and "config.json" not in partial, sorted(partial)  # the config goes last

    code, out, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", str(folder), "--to", probe)
    assert code == 0, err
    assert err.count("already there") >= len(partial) - 1  # the file being sent at the kill may be sent again
    assert err.count("uploaded and verified") == len(files) - err.count("already there")
    assert f"{len(files) - err.count('already there')} files uploaded" in out and f"weights:\n    {cloud.name}: {probe}" in out
    assert sorted(stored()) == sorted(files)

    (folder / "tokenizer.json").write_bytes(b'{"version": "2.0"}')  # changed since: sent again, and the config after it
    (folder / "model-00040-of-00040.safetensors").rename(folder / "extra.bin")  # a file gone from the folder (the index names it not), one new
    code, out, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", str(folder), "--to", probe)
    assert code == 1 and "holds 1 file(s) the folder does not have (model-00040-of-00040.safetensors); stage to a new location" in err, err
    assert "model-00040-of-00040.safetensors" in stored()  # nothing deleted unasked
    failing = cloud.fail_storage_transiently(2)  # the storage has a bad moment: retried, not the end of the copy
    code, out, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", str(folder), "--to", probe, "--replace")
    assert code == 0 and "3 files uploaded" in out, err  # extra.bin, the tokenizer and the config, last
    assert ("retrying in" in err) == failing, err  # (google-cloud-storage reads the bucket from a thread of its own too: not counted)
    assert "removed 1 file(s) the folder no longer has: model-00040-of-00040.safetensors" in err
    assert err.strip().splitlines()[-1].startswith("config.json: uploaded and verified") and "model-00040-of-00040.safetensors" not in stored()


def test_weights_stage_streams_the_hub_checkpoint_a_file_at_a_time(cloud: Cloud, stack: Path, hub: HubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --from, `weights stage` fetches the deployment's checkpoint from the Hugging Face Hub
    a file at a time (what vLLM loads, not Meta's original/ folder) with the deployment's token,
    checks each shard against the SHA-256 the Hub lists (a bad one is refused and fetched afresh
    next time), and copies it, removing each shard once staged; a second run fetches nothing again. A gated repository without a granted token is refused before
    anything is sent, saying how to get access."""
    probe = cloud.store_weights({})
    if probe is None or not cloud.stages_weights:
        return  # refused: test_weights_stage_resumes_after_a_kill_and_verifies_every_file
    files = checkpoint_files()
    hub.publish(DECLARED, {**files, "original/consolidated.00.pth": b"meta" * 1000, "README.md": b"# Llama"})
    monkeypatch.setenv("HF_TOKEN", "hf_not_granted")
    code, _, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--to", probe)
    assert code == 1 and f"the Hugging Face Hub refused {DECLARED}: it is gated, and the token sent has not been granted access" in err, err
    assert cloud.stored_weights() == {}
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    shard = next(name for name in files if name.endswith(".safetensors"))
    hub.corrupt_next.add(f"{DECLARED}/{shard}")  # the bytes differ from the SHA-256 the listing gives: refused, and not kept
    code, _, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--to", probe)
    assert code == 1 and f"{shard} did not arrive whole from its source" in err and "Traceback" not in err, err
    assert shard not in cloud.stored_weights()
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "llamadeploy" / "hub"
    hub.watched = cache
    code, out, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--to", probe)
    assert code == 0, err
    assert f"fetching {DECLARED}@" in err and f"{len(files) - err.count('already there')} files uploaded" in out
    assert sorted(cloud.stored_weights()) == sorted(files)  # neither original/ nor the README
    assert not list(cache.rglob("*.safetensors"))  # each shard removed once staged
    assert hub.held and max(hub.held) == 0, hub.held  # and before the next was asked for: the disk never held two
    fetched = dict(hub.served)
    assert sorted(name.removeprefix(f"{DECLARED}/") for name in fetched) == sorted(files)
    code, out, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", f"hf://{DECLARED}", "--to", probe)
    assert code == 0 and "0 files uploaded" in out, err
    assert dict(hub.served) == fetched  # nothing fetched twice
    hub.publish(DECLARED, {**files, "tokenizer.json": b'{"version": "2.0"}'})  # a later commit: the earlier one's download goes
    code, out, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--to", probe, "--replace")
    assert code == 0 and f"an earlier download of {DECLARED}" in err and "2 files uploaded" in out, err  # the tokenizer, then the config
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
    code, _, err = cli_run("weights", "stage", str(stack), "--cloud", cloud.name, "--from", "hf://meta llama/x", "--to", probe)
    assert code == 1 and "name a Hub repository as hf://<org>/<repo>" in err and "Traceback" not in err, err


def test_weights_declared_for_another_cloud_keep_the_hub_and_its_token_here(cloud: Cloud, stack: Path) -> None:
    """`weights.<other cloud>` changes nothing here: the gated hub checkpoint is downloaded with the
    default token, as without `weights:` (a deployment moved between clouds carries both)."""
    other = "gcp: gs://my-models/llama-ft/" if cloud.name == "aws" else "aws: s3://my-models/llama-ft/"
    stack.write_text(stack.read_text() + f"weights:\n  {other}\n")
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0 and f"chat answers as {DECLARED}" in err, err
    assert cloud.weights_received() is None
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_plan_says_where_a_secret_travels_and_how_to_send_no_hub_token(cloud: Cloud, stack: Path) -> None:
    """Where the service's container spec has no secret reference, the hub token reaches the
    container as plain environment: `plan` says so, with how to send none (staged weights); where
    the stack sends no secret, or serves its own weights, it says nothing of the kind."""

    def needs() -> list[str]:
        code, out, err = cli_run("plan", str(stack), "--cloud", cloud.name, "--output", "json")
        assert code == 0, err
        serving = json.loads(out)["plans"][0]["serving"]
        return [need for need in (serving["needs"] if serving else []) if "travel" in need]

    told = needs()
    if not cloud.secrets_in_environment:
        assert told == [], told
        return
    assert len(told) == 1 and told[0].startswith("HF_TOKEN travels in ") and f"llamadeploy weights stage STACK --cloud {cloud.name}" in told[0], told
    declared = stack.read_text()
    stack.write_text(declared.replace("serving:\n", "serving:\n  secrets: {}\n", 1))
    assert needs() == []
    uri = cloud.store_weights(checkpoint_files())
    if uri is not None:
        stack.write_text(declared + f"weights:\n  {cloud.name}: {uri}\n")
        assert needs() == []


def test_plan_warns_that_an_endpoint_will_be_public(cloud: Cloud, stack: Path) -> None:
    """Every endpoint llamadeploy makes today answers on the internet, behind the cloud's
    authentication: `plan` says so, with what would keep it private on that cloud."""
    code, out, err = cli_run("plan", str(stack), "--cloud", cloud.name, "--output", "json")
    assert code == 0, err
    warning = json.loads(out)["plans"][0]["serving"]["public_warning"]
    assert warning.startswith("its endpoint will be public, behind ") and "private" in warning, warning
    code, out, err = cli_run("plan", str(stack), "--cloud", cloud.name)
    assert code == 0 and "warning" in out and "its endpoint will be public" in " ".join(out.split()), out


@pytest.mark.parametrize("cloud", ["oci"], indirect=True)
def test_oci_weights_in_a_bucket_without_versions_are_refused_before_anything_is_made(cloud: OciCloud, stack: Path) -> None:
    """An OCI model by reference names each object's version: a bucket that keeps none is refused
    by `up` with how to turn versioning on, before a model or deployment exists; with versioning,
    the description sent names the objects at their versions."""
    cloud.stand_in.make_bucket("plain", versioning=False)
    for name, body in checkpoint_files().items():
        cloud.stand_in.put_object("plain", f"ft/{name}", body)
    stack.write_text(stack.read_text() + f"weights:\n  oci: oci://plain@{NAMESPACE}/ft/\n")
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 1 and "bucket plain does not keep object versions" in err and "--versioning Enabled" in err, err
    assert cloud.creates() == 0 and cloud.empty()
    code, out, _ = cli_run("plan", str(stack), "--cloud", "oci", "--output", "json")
    assert "does not keep object versions" in json.loads(out)["plans"][0]["sizing"]["sized_from"]  # plan says why it sized the catalog's model
    cloud.stand_in.make_bucket("kept")
    for name, body in checkpoint_files().items():
        cloud.stand_in.put_object("kept", f"ft/{name}", b"an older upload")
        cloud.stand_in.put_object("kept", f"ft/{name}", body)
    stack.write_text(stack.read_text().replace("oci://plain@", "oci://kept@"))
    code, _, err = cli_run("up", str(stack), "--cloud", "oci", "--yes")
    assert code == 0, err
    (deployment,) = cloud.stand_in.received("POST", "deployments")
    (described,) = cloud.stand_in.models[deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["modelId"]]["artifact"]["models"]
    latest = {name: versions[-1]["versionId"] for name, versions in cloud.stand_in.buckets[(NAMESPACE, "kept")]["objects"].items()}
    assert {o["name"]: o["version"] for o in described["objects"]} == latest  # each object at its current version, not the older one
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


@pytest.mark.parametrize("cloud", ["aws"], indirect=True)
def test_sagemaker_weights_in_another_regions_bucket_are_refused_before_anything_is_made(cloud: AwsCloud, stack: Path) -> None:
    """SageMaker reads model data from its own region's S3 only: a bucket in us-west-2 for an
    endpoint in us-east-1 is refused by `up` with both regions named, and by the stand-in too."""
    s3 = cloud.stand_in.client("s3")
    s3.create_bucket(Bucket="west-models", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for name, body in checkpoint_files().items():
        s3.put_object(Bucket="west-models", Key=f"ft/{name}", Body=body)
    stack.write_text(stack.read_text() + "weights:\n  aws: s3://west-models/ft/\n")
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "s3://west-models/ft/ is in us-west-2, and SageMaker in us-east-1 reads model data from a bucket in its own region only" in err, err
    assert cloud.creates() == 0 and cloud.empty()
    import boto3
    from botocore.exceptions import ClientError

    sagemaker = boto3.client("sagemaker", region_name="us-east-1", endpoint_url=cloud.stand_in.url)
    source = {"S3DataSource": {"S3Uri": "s3://west-models/ft/", "S3DataType": "S3Prefix", "CompressionType": "None"}}
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.35.0-lmi17.0.0-cu128"
    with pytest.raises(ClientError, match="is in us-west-2"):
        sagemaker.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image, "ModelDataSource": source})


def test_private_networking_is_declared_sent_and_shown(cloud: Cloud, stack: Path) -> None:
    """Opt-in private networking in the cloud's placement: sent as the cloud's own fields, shown by
    `plan` and `status`. Where the container then reaches nothing, the hub is out of reach and own
    weights are required; where the endpoint answers only inside its network, `up` says it did not
    call it. A cloud llamadeploy cannot do this on yet refuses the fields."""
    block = cloud.private_block()
    if block is None:
        stack.write_text(stack.read_text().replace(f"  {cloud.name}:\n", f"  {cloud.name}:\n    network_isolation: true\n", 1))
        code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
        assert code == 1 and f"placement.{cloud.name}.network_isolation: unknown key" in err and cloud.empty(), err
        return
    uri = cloud.store_weights(checkpoint_files())
    stack.write_text(stack.read_text().replace(f"  {cloud.name}:\n", f"  {cloud.name}:\n{block}", 1))
    if cloud.private_needs_weights:
        code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
        assert code == 1 and "network isolation cannot download from the Hugging Face Hub" in err and cloud.creates() == 0, err
        stack.write_text(stack.read_text() + f"weights:\n  {cloud.name}: {uri}\n")
    code, out, err = cli_run("plan", str(stack), "--cloud", cloud.name, "--output", "json")
    assert code == 0, err
    serving = json.loads(out)["plans"][0]["serving"]
    assert all(word in serving["reached"] for word in cloud.private_words), serving["reached"]
    assert (serving["public_warning"] is None) == cloud.private_inbound  # no warning that it will be public when it will not
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0, err
    assert cloud.private_received() == cloud.private_ids
    if cloud.private_inbound:  # not called from outside its network: said, not failed
        assert "chat was not checked: it could not be called from here: " in err and "`llamadeploy call chat` from inside that network checks it" in err, err
        code, _, err = cli_run("call", "chat")  # the stand-in, like the cloud, does not answer from outside
        assert code == 1 and "call it from inside that network" in err, err
    code, out, err = cli_run("status", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)["deployments"]
    assert all(word in row["reached"] for word in cloud.private_words), row["reached"]
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_a_private_endpoint_is_verified_from_inside_its_network_through_a_passing_failure(cloud: Cloud, stack: Path) -> None:
    """From inside its network a private endpoint answers. A 503 from a replica not yet taking
    requests says the call got there, so it is retried as any call, on a first `up` and on a
    replace, and the model is verified; one failure used to be read as "not reached", which left
    the `up` unchecked and undid the replace."""
    block = cloud.private_block()
    if block is None or not cloud.private_inbound:
        pytest.skip(f"{cloud.name}'s endpoints answer from anywhere (or it has no private networking): the other scenarios verify them")
    stack.write_text(stack.read_text().replace(f"  {cloud.name}:\n", f"  {cloud.name}:\n{block}", 1))
    cloud.stand_in.faults.inside_network = True
    cloud.stand_in.faults.serving_error_next = 1
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0 and "was not checked" not in err, err
    assert "503" in err and "retry in" in err and "chat answers as" in err and cloud.stand_in.faults.serving_error_next == 0, err
    _replacing_stack(stack, cloud)
    cloud.stand_in.faults.serving_error_next = 2
    code, _, err = cli_run("up", str(stack), "--cloud", cloud.name, "--yes")
    assert code == 0 and "deleting the old one" in err and cloud.stand_in.faults.serving_error_next == 0, err
    assert json.loads(cli_run("call", "chat", "--output", "json")[1])["model"] == DECLARED
    cloud.stand_in.faults.inside_network = False
    code, _, err = cli_run("call", "chat")
    assert code == 1 and "call it from inside that network" in err, err  # from outside: refused, not retried
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()
