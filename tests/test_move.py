"""`move`: make before break between any two clouds, and a failed target leaves the source alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clouds import CliProcess, Cloud, cli_run

REPO = Path(__file__).parent.parent


@pytest.fixture
def two_cloud_stack(pair: tuple[Cloud, Cloud], tmp_path: Path) -> Path:
    source, target = pair
    path = tmp_path / "stack.yaml"
    path.write_text(
        "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\nautoscaling: {min_replicas: 1, max_replicas: 2}\n"
        "serving:\n  env: {VLLM_LOGGING_LEVEL: INFO}\nplacement:\n" + source.block() + target.block()
    )
    return path


def status() -> dict:
    (row,) = json.loads(cli_run("status", "--output", "json")[1])["deployments"]
    return row


def test_move_brings_the_target_up_then_empties_the_source(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    assert not source.empty()
    source_url = status()["url"]
    assert source.answers(source_url)
    code, out, err = cli_run("move", "chat", "--to", target.name, "--yes")
    assert code == 0, err
    assert f"chat: {source.name} " in err and f"-> {target.name} " in err  # the cost of both, before confirming
    assert f"chat moved from {source.name} to {target.name}" in out
    assert source.empty(), source.inventory()
    assert target.endpoint_creates() == 1 and not target.empty()
    row = status()
    assert target.answers(row["url"]) and not source.answers(source_url)
    assert (row["cloud"], row["live"]["state"], row["draining"]) == (target.name, "serving", None)
    assert [(m["from"], m["to"]) for m in row["moves"]] == [(source.name, target.name)]
    assert [op["operation"] for op in row["history"]][-1] == "move" and row["history"][-1]["status"] == "succeeded"
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert target.empty() and source.empty()


# A timeout needs a stand-in that delays creation only (AWS's); the REST stand-ins delay deletes too.
@pytest.mark.parametrize(
    ("pair", "fault"),
    [(("aws", "azure"), "capacity"), (("aws", "azure"), "quota"), (("oci", "aws"), "capacity"), (("oci", "aws"), "quota"), (("oci", "aws"), "timeout")],
    indirect=["pair"],
)
def test_a_target_that_fails_leaves_the_source_serving_and_the_target_empty(
    pair: tuple[Cloud, Cloud], two_cloud_stack: Path, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = pair
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    before = source.inventory()
    (planned,) = json.loads(cli_run("plan", str(two_cloud_stack), "--cloud", target.name, "--output", "json")[1])["plans"]
    if fault == "timeout":
        target.hold_serving()
        monkeypatch.setenv("LLAMADEPLOY_WAIT_TIMEOUT", "1")
    else:
        getattr(target, f"fail_{fault}")(planned["instance_type"])
    code, _, err = cli_run("move", "chat", "--to", target.name, "--yes")
    expected = {"capacity": target.capacity_text, "quota": target.quota_text, "timeout": "LLAMADEPLOY_WAIT_TIMEOUT allows 1 s"}[fault]
    assert code == 1 and expected in err
    assert f"'chat' still serves on {source.name}" in err
    if fault == "timeout":  # the target is left being made (a Creating endpoint cannot be deleted yet): --rollback deletes it once it can
        assert "`--rollback` deletes it" in err
        monkeypatch.delenv("LLAMADEPLOY_WAIT_TIMEOUT")
        target.make_ready()
        assert cli_run("move", "chat", "--rollback", "--yes")[0] == 0
    assert target.empty(), target.inventory()
    assert source.inventory() == before
    row = status()
    assert (row["cloud"], row["live"]["state"], row["moves"]) == (source.name, "serving", [])


@pytest.mark.parametrize("pair", [("aws", "azure")], indirect=True, ids="->".join)
def test_move_refuses_nonsense(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, _ = pair
    assert cli_run("move", "chat", "--to", "azure", "--yes")[0] == 1  # nothing deployed yet
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    code, _, err = cli_run("move", "chat", "--to", source.name, "--yes")
    assert code == 2 and "already runs on aws" in err
    code, _, err = cli_run("move", "chat", "--to", "gcp", "--yes")
    assert code == 1 and "`up` on gcp needs placement.gcp" in err  # the recorded spec has no gcp placement
    assert cli_run("move", "chat", "--to", "azure")[0] == 2  # no --yes off a terminal


@pytest.mark.parametrize("pair", [("aws", "azure")], indirect=True, ids="->".join)
def test_a_placement_added_later_is_recorded_by_up_and_move_uses_it(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    both = two_cloud_stack.read_text()
    two_cloud_stack.write_text(both.replace(target.block(), ""))
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    two_cloud_stack.write_text(both)  # the target's placement, added once the deployment serves
    assert cli_run("plan", str(two_cloud_stack), "--cloud", source.name, "--detailed-exitcode")[0] == 0  # nothing changes in the cloud
    code, _, err = cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")
    assert code == 0 and "nothing to change" in err, err
    code, out, err = cli_run("move", "chat", "--to", target.name, "--yes")
    assert code == 0 and f"chat moved from {source.name} to {target.name}" in out, err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert source.empty() and target.empty()


def _kill_while_draining(stack: Path, source: Cloud, target: Cloud) -> None:
    """Run `move` in a process and SIGKILL it once the target serves and the source is being deleted."""
    assert cli_run("up", str(stack), "--cloud", source.name, "--yes")[0] == 0
    source.ready_after_polls(10**6)  # the source's delete stays in flight
    CliProcess("move", "chat", "--to", target.name, "--yes").kill_once(lambda: source.delete_requests() > 0, settle=0.2)
    source.make_ready()


# Each kill scenario runs on two pairs, so that between them every cloud is killed as source and as target.
DRAINING = pytest.mark.parametrize("pair", [("aws", "azure"), ("gcp", "oci")], indirect=True, ids="->".join)
PROVISIONING = pytest.mark.parametrize("pair", [("azure", "aws"), ("oci", "gcp")], indirect=True, ids="->".join)


@DRAINING
def test_a_move_killed_while_draining_is_finished_by_resume(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    _kill_while_draining(two_cloud_stack, source, target)
    row = status()
    assert (row["cloud"], row["draining"]) == (target.name, source.name)  # where it serves, and what is left to drain
    assert any("unfinished move" in d for d in row["drift"])
    code, _, err = cli_run("up", str(two_cloud_stack), "--cloud", target.name, "--yes")
    assert code == 1 and "run `llamadeploy move chat --resume`" in err
    code, out, err = cli_run("move", "chat", "--resume", "--yes")
    assert code == 0, err
    assert f"finished moving to {target.name}" in out
    assert source.empty(), source.inventory()
    assert target.endpoint_creates() == 1 and not target.empty()
    row = status()
    assert (row["cloud"], row["draining"], row["live"]["state"]) == (target.name, None, "serving")
    assert not any("unfinished" in d for d in row["drift"])


@DRAINING
def test_a_move_killed_while_draining_is_undone_by_rollback(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    _kill_while_draining(two_cloud_stack, source, target)
    code, out, err = cli_run("move", "chat", "--rollback", "--yes")
    assert code == 0, err
    assert f"chat serves on {source.name} (" in out and f"again; nothing remains on {target.name}" in out
    assert target.empty(), target.inventory()
    assert source.serving_copies() == 1, source.inventory()  # re-applied: what the drain had deleted is back
    row = status()
    assert (row["cloud"], row["draining"], row["live"]["state"]) == (source.name, None, "serving")
    assert cli_run("down", "chat", "--yes")[0] == 0 and source.empty()


def _kill_while_target_provisions(stack: Path, source: Cloud, target: Cloud) -> None:
    """Run `move` in a process and SIGKILL it while the target is still being created."""
    assert cli_run("up", str(stack), "--cloud", source.name, "--yes")[0] == 0
    target.ready_after_polls(10**6)
    CliProcess("move", "chat", "--to", target.name, "--yes").kill_once(lambda: target.creates() > 0, settle=0.2)
    target.make_ready()


@PROVISIONING
def test_a_move_killed_while_the_target_provisions_is_resumed(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    _kill_while_target_provisions(two_cloud_stack, source, target)
    row = status()
    assert (row["cloud"], row["live"]["state"]) == (source.name, "serving")  # the source never stopped serving
    assert any("unfinished move" in d for d in row["drift"])
    code, out, err = cli_run("move", "chat", "--resume", "--yes")
    assert code == 0, err
    assert f"finished moving from {source.name} to {target.name}" in out
    assert target.created_twice() == [] and target.endpoint_creates() == 1
    assert source.empty(), source.inventory()


@PROVISIONING
def test_a_move_killed_while_the_target_provisions_is_rolled_back(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    source, target = pair
    _kill_while_target_provisions(two_cloud_stack, source, target)
    code, out, err = cli_run("move", "chat", "--rollback", "--yes")
    assert code == 0, err
    assert f"nothing remains on {target.name}" in out
    assert target.empty(), target.inventory()
    assert source.endpoint_creates() == 1 and not source.empty()  # the source `up` made, untouched and not remade
    row = status()
    assert (row["cloud"], row["live"]["state"]) == (source.name, "serving") and not any("unfinished" in d for d in row["drift"])


@pytest.mark.parametrize("pair", [("aws", "azure")], indirect=True)
def test_a_move_to_a_private_endpoint_says_first_where_to_run_it(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    """A target that answers only inside its network is called before the source is deleted: the
    move says so before anything is made, and from outside the target is built, its call fails,
    and it is deleted again, the source serving throughout."""
    source, target = pair
    two_cloud_stack.write_text(two_cloud_stack.read_text().replace("  azure:\n", "  azure:\n    public_network_access: disabled\n", 1))
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    code, _, err = cli_run("move", "chat", "--to", target.name, "--yes")
    warned = err.index("warning: on azure, public_network_access is disabled")
    assert warned < err.index("creat"), err  # said before anything is made
    assert code == 1 and "was not checked: it could not be called from here" in err and "run the command from inside that network" in err, err
    assert target.empty(), target.inventory()
    row = status()
    assert (row["cloud"], row["live"]["state"]) == (source.name, "serving") and source.answers(row["url"])
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert source.empty()


@pytest.mark.parametrize("pair", [("aws", "gcp")], indirect=True)
def test_a_move_to_an_endpoint_llamadeploy_cannot_call_is_refused_first(pair: tuple[Cloud, Cloud], two_cloud_stack: Path) -> None:
    """A Private Service Connect target with no network for Vertex AI to make its forwarding rule in
    answers at an address llamadeploy does not know; the move would build it and could never check
    it before deleting the source, so it is refused before anything is made."""
    source, target = pair
    two_cloud_stack.write_text(two_cloud_stack.read_text().replace("  gcp:\n", "  gcp:\n    private_service_connect: [llm-prod]\n", 1))
    assert cli_run("up", str(two_cloud_stack), "--cloud", source.name, "--yes")[0] == 0
    code, _, err = cli_run("move", "chat", "--to", target.name, "--yes")
    assert code == 1 and "cannot move chat to gcp: there it is reached only through a forwarding rule you make" in err, err
    assert target.empty() and status()["cloud"] == source.name
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert source.empty()
