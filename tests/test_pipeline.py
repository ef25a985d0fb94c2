"""Pipeline mode: the documented JSON fields, plan's exit codes, no colours, the CI example."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import cli
from tests.clouds import Cloud, cli_run

REPO = Path(__file__).parent.parent
DOC = REPO / "docs" / "pipelines.md"
WORKFLOW = REPO / "examples" / "github-actions" / "llamadeploy.yml"


def documented() -> dict[str, dict[str, str]]:
    """Each section of the doc's JSON part: field path -> type, from its table's rows."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in DOC.read_text().split("## JSON output", 1)[1].splitlines():
        if line.startswith("### "):
            current = line[4:].strip().strip("`").removesuffix(" --output json")
            sections[current] = {}
        elif current and (row := re.match(r"^\| `([^`]+)` \| ([^|]+) \|", line)):
            sections[current][row[1]] = row[2].strip()
    return sections


def expected_paths(section: str) -> set[str]:
    """The section's paths, with *plan* / *result* fields expanded into the plan or infeasible fields."""
    docs = documented()
    paths = set()
    for path, kind in docs[section].items():
        paths.add(path)
        shared = {"*plan*": ["Plan object"], "*result*": ["Plan object", "Infeasible object"]}.get(kind, [])
        paths |= {f"{path}.{field}" for name in shared for field in docs[name]}
    return paths


def actual_paths(value: Any, leaves: set[str], prefix: str = "") -> set[str]:
    """Every field path in `value`; lists of objects as `x[]`, merged over their items."""
    found = set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, list) and path not in leaves:
            found.add(f"{path}[]")
            for element in item:
                found |= actual_paths(element, leaves, f"{path}[].") if isinstance(element, dict) else set()
        else:
            found.add(path)
            if isinstance(item, dict):
                found |= actual_paths(item, leaves, f"{path}.")
    return found


def check(section: str, output: str) -> None:
    """The output's fields are the documented ones; an object documented "or null" may be null, and
    an empty list has no items to show its items' fields."""
    expected = expected_paths(section)
    data = json.loads(output)
    found = actual_paths(data, expected)
    absent = null_paths(data) | {p.removesuffix("[]") for p in found if p.endswith("[]") and not any(f.startswith(p + ".") for f in found)}
    assert found == expected - {p for p in expected - found if any(p.startswith(n + ".") or p.startswith(n + "[].") for n in absent)}


def null_paths(value: Any, prefix: str = "") -> set[str]:
    found = set()
    for key, item in value.items():
        path = f"{prefix}{key}"
        if item is None:
            found.add(path)
        elif isinstance(item, dict):
            found |= null_paths(item, f"{path}.")
        elif isinstance(item, list):
            found |= {p for element in item if isinstance(element, dict) for p in null_paths(element, f"{path}[].")}
    return found


@pytest.mark.parametrize(
    ("section", "args"),
    [
        ("plan", ("plan", "stacks/llama-3.1-8b.yaml", "--cloud", "aws")),
        ("cost", ("cost", "{a10g}")),  # A10G: feasible on AWS only
        ("gpus", ("gpus", "--cloud", "aws")),
        ("models", ("models",)),
        ("providers", ("providers",)),
    ],
)
def test_json_output_is_what_the_doc_says(section: str, args: tuple[str, ...], write_stack: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("LLAMADEPLOY_STATE", str(tmp_path / "state.db"))
    a10g = write_stack("name: small\nmodel: llama3.1-8b-instruct\ngpu: A10G\nload: {requests_per_second: 2}\n")
    code, out, err = cli_run(*[a.format(a10g=a10g) for a in args], "--output", "json")
    assert code == 0, err
    check(section, out)


@pytest.mark.parametrize("cloud", ["aws"], indirect=True)
def test_status_and_export_json_are_what_the_doc_says(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    code, out, _ = cli_run("status", "--output", "json")
    assert code == 0
    check("status", out)
    code, out, _ = cli_run("export", str(stack), "--cloud", cloud.name, "--to", str(tmp_path / "program"), "--output", "json")
    assert code == 0
    check("export", out)
    assert cli_run("down", "chat", "--yes")[0] == 0


@pytest.mark.parametrize("cloud", ["aws"], indirect=True)
def test_plan_detailed_exitcode_follows_the_state(cloud: Cloud, stack: Path, tmp_path: Path) -> None:
    def planned(*extra: str) -> tuple[int, list[dict[str, Any]]]:
        code, out, _ = cli_run("plan", str(stack), "--cloud", cloud.name, "--detailed-exitcode", "--output", "json", *extra)
        return code, json.loads(out)["changes"] if out else []

    state = Path(tmp_path / "state.db")
    created = {"deployment": "chat", "action": "create", "cloud": "aws", "region": "us-east-1", "detail": "will be created on aws (us-east-1)", "fields": []}
    assert planned() == (2, [created])
    assert not state.exists()  # planning reads the state, never creates it
    assert cli_run("plan", str(stack), "--cloud", cloud.name)[0] == 0  # without the flag, changes are not an error
    assert cli_run("up", str(stack), "--cloud", cloud.name, "--yes")[0] == 0
    code, changes = planned()
    assert (code, changes[0]["action"]) == (0, "none")
    stack.write_text(stack.read_text().replace("concurrency: 8", "concurrency: 16"))
    code, changes = planned()
    assert (code, changes[0]["action"]) == (2, "replace") and "replaces it blue/green" in changes[0]["detail"]
    assert {"field": "concurrency", "old": 8, "new": 16} in changes[0]["fields"]
    stack.write_text(stack.read_text() + "  azure: {region: eastus}\n")
    code, out, _ = cli_run("plan", str(stack), "--cloud", "azure", "--detailed-exitcode")
    assert code == 2 and "llamadeploy move chat --to azure" in out
    assert cli_run("plan", str(stack), "--cloud", "nimbus", "--detailed-exitcode")[0] == 1  # a usage error is 1 here, as 2 means changes
    assert cli_run("plan", str(stack), "--bogus", "--detailed-exitcode")[0] == 1
    assert cli_run("plan", str(stack), "--detailed-exitcode", "--bogus")[0] == 1  # whatever the order
    assert cli_run("plan", str(stack), "--bogus")[0] == 2
    assert cli_run("down", "chat", "--yes")[0] == 0


def test_tables_have_no_colour_off_a_terminal() -> None:
    for args in (("cost", str(REPO / "stacks" / "llama-3.1-70b.yaml")), ("plan", str(REPO / "stacks" / "llama-3.1-8b.yaml"), "--cloud", "gcp"), ("providers",)):
        code, out, _ = cli_run(*args)
        assert code == 0 and out and "\x1b[" not in out


def test_the_github_actions_example_runs_real_commands() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    # Each `llamadeploy …` line, up to a pipe or a redirection.
    commands = [shlex.split(re.split(r"[|>]", line)[0]) for run in runs for line in map(str.strip, run.splitlines()) if line.startswith("llamadeploy ")]
    assert {c[1] for c in commands} >= {"plan", "cost", "up"}
    for command in commands:
        name, args = command[1], ["x" if a.startswith("$") else a for a in command[2:]]
        sub = cli.get_command(None, name)  # type: ignore[arg-type]
        assert sub is not None, command
        sub.make_context(name, args)  # raises on an option the command does not have
    plan_step = next(r for r in runs if "--detailed-exitcode" in r)
    assert "2)" in plan_step or "-eq 2" in plan_step  # the job tells "changes" (2) from an error (1)
