"""A provider from outside the package, found through the `llamadeploy.providers` entry point."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import cli
from providers import registry
from tests.emulators.fake import FakeStandIn


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_plugin_is_listed_and_planned(fake_plugin: Path, write_stack) -> None:
    assert registry.names()[-4:] == ["fake", "fake2", "needsdk", "planonly"]
    stack = write_stack("name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 2048\nconcurrency: 4\n")
    code, out, _ = invoke("plan", str(stack), "--cloud", "fake", "--output", "json")
    (plan,) = json.loads(out)["plans"]
    assert code == 0 and (plan["cloud"], plan["region"], plan["instance_type"]) == ("fake", "moon-1", "fake.gpu1")
    code, out, _ = invoke("cost", str(stack), "--output", "json")
    assert "fake" in [c["cloud"] for c in json.loads(out)["deployments"][0]["clouds"]]


PLACED = "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 2048\nconcurrency: 4\nplacement:\n  fake: {region: moon-1, zone: crater-7}\n"


def test_plugin_is_placed_with_its_own_schema(fake_plugin: Path, write_stack, fake_stand_in: FakeStandIn) -> None:
    code, _, err = invoke("up", str(write_stack(PLACED.replace("crater-7", "sea-3"))), "--cloud", "fake", "--yes")
    assert code == 1 and "stack.yaml:6: placement.fake.zone: 'sea-3' is not valid; use a crater, such as crater-7" in err
    code, _, err = invoke("up", str(write_stack(PLACED.replace(", zone: crater-7", ""))), "--cloud", "fake", "--yes")
    assert code == 1 and "`up` on fake needs placement.fake.zone" in err
    code, _, err = invoke("plan", str(write_stack(PLACED.replace("zone:", "zome:"))), "--cloud", "fake")
    assert code == 1 and "placement.fake.zome: unknown key; did you mean 'zone'?" in err
    assert fake_stand_in.inventory() == {"endpoints": []} and fake_stand_in.creations == []


def test_plugin_runs_through_the_same_engine(fake_plugin: Path, write_stack, fake_stand_in: FakeStandIn) -> None:
    stack = write_stack(PLACED)
    code, out, err = invoke("up", str(stack), "--cloud", "fake", "--yes")
    assert code == 0, err
    assert f"chat is serving on fake (moon-1) at {fake_stand_in.url}/serve/moon-1/chat-moon-1" in out
    assert fake_stand_in.inventory() == {"endpoints": ["moon-1/chat-moon-1"]}
    fake_stand_in.endpoints.clear()  # deleted behind llamadeploy's back
    code, out, _ = invoke("status", "--output", "json")
    assert json.loads(out)["deployments"][0]["drift"] == ["fake::Endpoint chat-moon-1 was deleted outside llamadeploy"]
    assert invoke("down", "chat", "--yes")[0] == 0


def test_a_plugin_that_has_not_opted_in_refuses_to_replace_a_live_deployment(fake_plugin: Path, write_stack, fake_stand_in: FakeStandIn) -> None:
    """REPLACE_LIVE is an allow-list entry: a plugin without it keeps serving and says what to do instead."""
    stack = write_stack(PLACED.replace("fake: {region: moon-1, zone: crater-7}", "fake2: {region: mars-1, zone: crater-7}"))
    assert invoke("up", str(stack), "--cloud", "fake2", "--yes")[0] == 0
    before = dict(fake_stand_in.endpoints)
    stack.write_text(stack.read_text().replace("max_context: 2048", "max_context: 1024"))
    code, _, err = invoke("up", str(stack), "--cloud", "fake2", "--yes")
    assert code == 1 and "'chat' serves on fake2, and the new spec needs new machines (max_context); " in err, err
    assert "Fake serving has no way, in its provider, to bring new machines up beside the serving ones: `llamadeploy down chat`, then `up`" in err
    assert fake_stand_in.endpoints == before and not any(b == "PATCH" for b, _, _ in fake_stand_in.requests)
    assert invoke("down", "chat", "--yes")[0] == 0


def test_another_region_is_a_move_not_a_replace(fake_plugin: Path, write_stack, fake_stand_in: FakeStandIn) -> None:
    stack = write_stack(PLACED)
    assert invoke("up", str(stack), "--cloud", "fake", "--yes")[0] == 0
    stack.write_text(stack.read_text().replace("region: moon-1", "region: moon-2"))
    code, out, _ = invoke("plan", str(stack), "--cloud", "fake", "--detailed-exitcode")
    assert code == 2 and "`llamadeploy move chat --to fake --region moon-2` moves it without downtime" in out, out
    code, _, err = invoke("up", str(stack), "--cloud", "fake", "--yes")
    assert code == 1 and "'chat' runs in moon-1: `llamadeploy move chat --to fake --region moon-2`" in err, err
    assert fake_stand_in.inventory() == {"endpoints": ["moon-1/chat-moon-1"]}
    assert invoke("down", "chat", "--yes")[0] == 0


def test_unknown_cloud_lists_the_plugin(fake_plugin: Path, write_stack) -> None:
    code, _, err = invoke("plan", str(write_stack("name: a\nmodel: llama3.2-1b\n")), "--cloud", "fak")
    assert code == 2 and "did you mean 'fake'?" in err and "aws, azure, gcp, oci, fake, fake2, needsdk, planonly" in err


def test_a_cloud_that_can_only_be_planned_says_so_at_up(fake_plugin: Path, write_stack) -> None:
    stack = write_stack("name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 2048\nconcurrency: 4\n")
    assert invoke("plan", str(stack), "--cloud", "planonly")[0] == 0
    code, _, err = invoke("up", str(stack), "--cloud", "planonly", "--yes")
    assert code == 2 and "cannot deploy to planonly yet (Plan-only serving); `plan` and `cost` work there" in err
    assert "Clouds it can deploy to: aws, azure, gcp, oci, fake, fake2, needsdk" in err


def test_a_missing_sdk_is_one_line_before_any_cloud_call(fake_plugin: Path, write_stack, fake_stand_in: FakeStandIn) -> None:
    stack = write_stack("name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 2048\nconcurrency: 4\n")
    assert invoke("plan", str(stack), "--cloud", "needsdk")[0] == 0  # planning needs no SDK
    code, _, err = invoke("up", str(stack), "--cloud", "needsdk", "--yes")
    assert code == 1 and "the needsdk provider needs llamadeploy_no_such_sdk.client, which is not installed" in err
    assert fake_stand_in.creations == [] and "Traceback" not in err


def test_broken_plugin_is_a_clear_error(fake_plugin: Path, write_stack) -> None:
    (fake_plugin / "site" / "llamadeploy_fake-1.0.dist-info" / "entry_points.txt").write_text("[llamadeploy.providers]\nbroken = tests.nowhere:Nothing\n")
    registry.forget_plugins()
    code, _, err = invoke("plan", str(write_stack("name: a\nmodel: llama3.2-1b\n")), "--cloud", "broken")
    assert code == 2 and "provider 'broken' (tests.nowhere:Nothing) cannot be loaded" in err
