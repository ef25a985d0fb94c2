"""The command line as a user and a pipeline see it: output, exit codes, and what gets imported."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli

REPO = Path(__file__).parent.parent
Write = Callable[..., Path]
CLOUD_SDKS = ("boto3", "botocore", "azure", "google.cloud", "oci", "pulumi")
# Empty namespace modules that google-cloud packages' `-nspkg.pth` creates at interpreter start,
# before any code runs; they hold no SDK code.
PTH_NAMESPACES = {"google", "google.cloud"}


@pytest.fixture
def run(mini_catalog_path: Path) -> Callable[..., tuple[int, str, str]]:
    def invoke(*args: str, catalog: bool = True) -> tuple[int, str, str]:
        prefix = ["--catalog", str(mini_catalog_path)] if catalog else []
        result = CliRunner().invoke(cli, [*prefix, *args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_plan_json_field_by_field(run, write_stack: Write) -> None:
    stack = write_stack("name: chat\nmodel: llama3.1-8b-instruct\nautoscaling: {min_replicas: 2, max_replicas: 5}\ntags: {team: ml}\n")
    code, out, err = run("plan", str(stack), "--cloud", "aws", "--output", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["catalog"]["dated"] == "prices dated 2026-07-30 to 2026-09-27, 4 offers undated"
    (p,) = data["plans"]
    assert p["deployment"] == "chat" and p["feasible"] is True
    assert (p["cloud"], p["service"], p["region"], p["region_source"]) == ("aws", "SageMaker real-time inference", "us-east-1", "default")
    assert (p["model"], p["hf_repo"], p["quantization"]) == ("llama3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", "bf16")
    assert (p["instance_type"], p["gpu"], p["gpu_memory_gib"]) == ("ml.g6.12xlarge", "L4", 22.49)  # the driver reports 23034 MiB
    assert (p["gpus_per_replica"], p["tensor_parallel"], p["instances_per_replica"]) == (4, 4, 1)
    assert p["replicas"] == {"min": 2, "max": 5, "target_concurrent_requests": 16}
    price = p["price"]
    assert (price["usd_per_hour_min"], price["usd_per_hour_max"], price["usd_per_month_min"]) == (8.0, 20.0, 5840.0)
    assert (price["price_basis"], price["price_is_lower_bound"], price["as_of"]) == ("managed-service list price", False, "2026-09-27")
    sizing = p["sizing"]
    assert sizing["parameters"] == 8_030_261_248
    assert (sizing["weights_gib"], sizing["kv_cache_gib"], sizing["min_gpus"]) == (14.96, 16.0, 2)
    assert (sizing["per_gpu_gib"], sizing["usable_per_gpu_gib"], sizing["total_gib"]) == (9.74, 20.24, 38.96)  # 22.49 GiB x 0.9
    assert [r["type"] for r in p["resources"]] == [
        "AWS::SageMaker::Model",
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    ]


def test_plan_table_shows_the_arithmetic(run, write_stack: Write) -> None:
    code, out, _ = run("plan", str(write_stack("name: chat\nmodel: llama3.1-8b-instruct\n")), "--cloud", "aws")
    assert code == 0
    for text in (
        "chat on aws (SageMaker real-time inference), region us-east-1",
        "ml.g6.12xlarge",
        "15.0 GiB  8.03 B parameters x 2 B (bf16)",
        "16.0 GiB",
        "128 KiB/token x 8192 tokens x 16 sequences",
        "$4.00/h at 1",
        "AWS::SageMaker::Endpoint",
        "Price catalog: prices dated",
    ):
        assert text in out


def test_plan_picks_the_only_placed_cloud(run, write_stack: Write) -> None:
    stack = write_stack("name: chat\nmodel: llama3.2-1b-instruct\nplacement:\n  gcp: {region: us-central1}\n")
    code, out, _ = run("plan", str(stack), "--output", "json")
    assert code == 0 and json.loads(out)["plans"][0]["cloud"] == "gcp"


def test_cost_json_ranks_clouds_and_explains_the_infeasible(run, write_stack: Write) -> None:
    stack = write_stack("name: big\nmodel: llama3.1-405b-instruct\nmax_context: 16384\nconcurrency: 8\ngpu: H100\n")
    code, out, err = run("cost", str(stack), "--output", "json")
    assert (code, err) == (0, "")
    (deployment,) = json.loads(out)["deployments"]
    clouds = deployment["clouds"]
    assert [c["cloud"] for c in clouds] == ["gcp", "aws", "azure", "oci"]
    assert clouds[0]["feasible"] and clouds[0]["instances_per_replica"] == 2
    assert clouds[0]["price"]["price_is_lower_bound"] is True
    assert not clouds[1]["feasible"] and "a replica cannot span instances" in clouds[1]["reason"]
    assert "no H100 offers" in clouds[2]["reason"]


def test_cost_csv_and_markdown(run, write_stack: Write) -> None:
    stack = str(write_stack("name: a\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\n"))
    code, out, _ = run("cost", stack, "--output", "csv", "--clouds", "aws,oci")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["cloud"], r["usd_per_hour_min"]) for r in rows] == [("aws", "0.9000"), ("oci", "")]
    assert rows[0]["price_is_lower_bound"] == "true"
    code, out, _ = run("cost", stack, "--output", "markdown", "--clouds", "aws,oci")
    assert "| 1 | aws | us-west-2 | ml.g6.xlarge | 1× L4 | ≥ $0.90 |" in out
    assert "| 2 | oci | us-ashburn-1 | VM.GPU.A10.1 | 1× A10 | price unknown |" in out
    assert "$0.00" not in out


def test_cost_table_with_the_shipped_catalog(run) -> None:
    code, out, _ = run("cost", str(REPO / "stacks" / "llama-3.1-70b.yaml"), catalog=False)
    assert code == 0
    assert "chat-70b: cheapest first" in out and re.search(r"Price catalog: prices dated \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d", out)
    for cloud in ("aws", "azure", "gcp", "oci"):
        assert f" {cloud} " in out


def test_gpus_lists_offers_with_unknown_prices(run) -> None:
    code, out, _ = run("gpus", "--cloud", "aws", "--gpu", "H200", "--output", "json")
    (offer,) = json.loads(out)["offers"]
    assert code == 0 and offer["instance_type"] == "ml.p5e.48xlarge" and offer["usd_per_hour"] is None
    code, out, _ = run("gpus", "--cloud", "aws", "--gpu", "H200")
    assert "price unknown" in out and "$0" not in out


def test_models_lists_the_catalog(run) -> None:
    code, out, _ = run("models", "--output", "json", catalog=False)
    names = {m["name"]: m for m in json.loads(out)["models"]}
    assert code == 0 and names["llama3.1-70b-instruct"]["parameters"] == 70_553_706_496


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["plan", "{stack}", "--cloud", "azur"], 2, "unknown cloud 'azur'; did you mean 'azure'?"),
        (["plan", "{stack}", "--cloud", "aws", "--region", "us-east1"], 2, "no offers in region 'us-east1'"),
        (["plan", "{stack}"], 2, "say which cloud to plan 'chat' on with --cloud"),
        (["plan", "{stack}", "--cloud", "aws", "--output", "yaml"], 2, "Invalid value for '--output'"),
        (["plan", "{stack}", "--cloud", "aws", "--deployment", "nope"], 1, "no deployment named 'nope'; this stack has chat"),
        (["cost", "{stack}", "--clouds", "aws,gpc"], 2, "unknown cloud 'gpc'; did you mean 'gcp'?"),
        (["gpus", "--gpu", "B300"], 2, "the price catalog has no GPU type 'B300'"),
        (["plan", "{missing}", "--cloud", "aws"], 1, "no such file"),
        (["plan", "{dir}", "--cloud", "aws"], 1, "is a directory"),
        (["plan", "{bad}", "--cloud", "aws"], 1, "2 problems in the stack file:"),
        (["plan", "{big}", "--cloud", "aws"], 1, "what would fit: quantization: fp8"),
    ],
)
def test_errors_are_one_message_and_an_exit_code_never_a_traceback(run, write_stack: Write, tmp_path: Path, args, code, text) -> None:
    paths = {
        "stack": write_stack("name: chat\nmodel: llama3.2-1b-instruct\n"),
        "missing": tmp_path / "missing.yaml",
        "dir": tmp_path,
        "bad": write_stack("name: x\nmodel: llama3.1-8b\ngpu: H10\nconcurrency: -1\n", "bad.yaml"),
        "big": write_stack("name: big\nmodel: llama3.1-405b-instruct\nmax_context: 16384\nconcurrency: 8\ngpu: H100\n", "big.yaml"),
    }
    exit_code, out, err = run(*[a.format(**paths) for a in args])
    assert exit_code == code
    assert text in err
    assert "Traceback" not in err and out == ""


def test_broken_catalog_is_an_error_not_a_traceback(write_stack: Write, tmp_path: Path) -> None:
    broken = tmp_path / "prices.csv"
    broken.write_text("cloud\naws\n")
    result = CliRunner().invoke(cli, ["--catalog", str(broken), "cost", str(write_stack("name: a\nmodel: llama3.2-1b\n"))])
    assert result.exit_code == 1 and "lacks the columns" in result.stderr and "Traceback" not in result.stderr


def _imported_modules(*args: str) -> set[str]:
    """Run the CLI in a fresh interpreter and list the modules it imported."""
    code = (
        "import sys\nfrom orchestrator.cli import cli\n"
        f"try:\n    cli({list(args)!r}, prog_name='llamadeploy')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return set(done.stderr.split())


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["plan", "stacks/llama-3.1-70b.yaml", "--cloud", "aws"],
        ["cost", "stacks/llama-3.1-70b.yaml"],
        ["cost", "stacks/llama-3.1-70b.yaml", "--output", "json"],
    ],
)
def test_no_cloud_sdk_is_imported(args: list[str]) -> None:
    modules = _imported_modules(*args)
    heavy = sorted(m for m in modules - PTH_NAMESPACES if m.split(".")[0] in CLOUD_SDKS or m.startswith(("google.cloud", "azure.")))
    assert heavy == []
    assert "orchestrator.cli" in modules  # the check ran the real CLI


def test_help_imports_neither_models_nor_rich() -> None:
    modules = _imported_modules("--help")
    assert not {"llama_models", "rich", "pydantic"} & modules


def test_console_script_is_installed() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "llamadeploy"), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "llamadeploy, version" in done.stdout


def test_clouds_are_named_in_any_letter_case(run, write_stack: Write) -> None:
    stack = write_stack("name: chat\nmodel: llama3.1-8b-instruct\n")
    code, out, err = run("plan", str(stack), "--cloud", "AWS", "--output", "json")
    assert code == 0 and json.loads(out)["plans"][0]["cloud"] == "aws", err
    code, out, _ = run("cost", str(stack), "--clouds", "AWS,Gcp", "--output", "json")
    assert code == 0 and [c["cloud"] for c in json.loads(out)["deployments"][0]["clouds"]] == ["aws", "gcp"]


def test_providers_table_shows_the_install_command_whole() -> None:
    """`[aws]` in `pip install 'llamadeploy[aws]'` is text, not console markup to be swallowed."""
    from rich.console import Console

    from orchestrator.reports import render

    console = Console(record=True, width=200)
    row = {
        "name": "aws",
        "service": "SageMaker",
        "deploy": True,
        "export": True,
        "install": "pip install 'llamadeploy[aws]'",
        "sdk_missing": ["boto3"],
        "source": "built-in",
    }
    render.providers(console, [row])
    assert "missing: pip install 'llamadeploy[aws]'" in console.export_text()


def test_status_with_nothing_deployed_writes_no_state(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("--state", "nowhere/state.db", "status", "--output", "json")
    assert (code, json.loads(out)) == (0, {"deployments": []})
    code, _, err = run("--state", "nowhere/state.db", "status", "chat")
    assert code == 1 and "no deployment named 'chat'" in err
    assert list(tmp_path.iterdir()) == []  # a read never writes


def test_one_gpu_is_one_gpu(run, write_stack: Write) -> None:
    code, out, _ = run("plan", str(write_stack("name: chat\nmodel: llama3.2-1b-instruct\n")), "--cloud", "aws")
    assert code == 0 and re.search(r"2 GiB per GPU x 1 GPU\b", out) and "fits on 1 GPU at least" in out, out
    assert "1 GPUs" not in out


def test_machine_output_rounds_money_and_writes_booleans_as_spreadsheets_read_them(run) -> None:
    stack = str(REPO / "stacks" / "llama-3.1-70b.yaml")
    for command in (("cost", stack, "--output", "json"), ("plan", stack, "--cloud", "gcp", "--no-refresh", "--output", "json")):
        code, out, _ = run(*command, catalog=False)
        assert code == 0 and not re.search(r"\d\.\d{7,}", out), re.findall(r"\d+\.\d{7,}", out)[:3]
    code, out, _ = run("cost", stack, "--output", "csv", catalog=False)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and {r["price_is_lower_bound"] for r in rows} == {"true", "false"} and {r["feasible"] for r in rows} == {"true"}


def test_status_tables_say_how_long_ago() -> None:
    from datetime import UTC, datetime

    from orchestrator.reports.render import ago

    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert [ago(t, now) for t in ("2026-12-01T11:59:30+00:00", "2026-12-01T11:48:00+00:00", "2026-12-01T09:00:00+00:00", "2026-11-28T12:00:00+00:00")] == [
        "just now",
        "12 min ago",
        "3 h ago",
        "3 d ago",
    ]


def test_every_problem_of_a_stack_is_reported_in_one_pass(run, write_stack: Write) -> None:
    """Field errors, rules across fields and placement regions together, not in three rounds."""
    stack = write_stack(
        "name: Chat_Bad\nmodel: llama3.1-8b-instruct\nmax_context: -5\nconcurency: 8\nquantization: fp4\n"
        "autoscaling: {min_replicas: 5, max_replicas: 2}\ntags: {team: 7}\nplacement:\n  aws: {region: mars-1}\n"
    )
    code, _, err = run("plan", str(stack), "--cloud", "aws")
    assert code == 1 and "problems in the stack file" in err, err
    for line, field in ((1, "name"), (3, "max_context"), (4, "concurency"), (5, "quantization"), (6, "autoscaling.min_replicas"), (9, "placement.aws.region")):
        assert f"stack.yaml:{line}: {field}:" in err, (field, err)


def test_the_demo_runs_the_whole_lifecycle_without_a_cloud_account() -> None:
    """`python -m tests.demo`, as the README tells a newcomer to run it."""
    done = subprocess.run([sys.executable, "-m", "tests.demo"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for said in ("$ llamadeploy up", "answered by meta-llama/Llama-3.2-1B-Instruct", "chat moved from aws to gcp", "nothing tagged with it remains"):
        assert said in done.stdout, (said, done.stdout[-2000:])


@pytest.mark.parametrize("width", [80, 200])
def test_tables_fit_the_terminal_and_never_cut_a_cell(run, width: int, monkeypatch: pytest.MonkeyPatch, fake_plugin: Path, fake_stand_in) -> None:
    """cost, gpus, models and status at 80 and 200 columns: fewer columns when narrow (named), never `…`."""
    monkeypatch.setenv("COLUMNS", str(width))
    stack = str(REPO / "stacks" / "llama-3.1-70b.yaml")
    code, out, _ = run("cost", stack, "--output", "json", catalog=False)
    months = [c["load"]["usd_per_month"] for c in json.loads(out)["deployments"][0]["clouds"] if c["feasible"]]
    outputs = {}
    for command in (("cost", stack), ("gpus",), ("gpus", "--gpu", "H100"), ("models",)):
        code, out, err = run(*command, catalog=False)
        assert code == 0, err
        outputs[command[0] + " ".join(command[1:2])] = out
    placed = "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 2048\nconcurrency: 4\nplacement:\n  fake: {region: moon-1, zone: crater-7}\n"
    (fake_plugin / "stack.yaml").write_text(placed)  # a deployment on the test plugin's cloud, for `status`
    assert run("up", str(fake_plugin / "stack.yaml"), "--cloud", "fake", "--yes", catalog=False)[0] == 0
    outputs["status"] = run("status", catalog=False)[1]
    for name, out in outputs.items():
        assert "…" not in out and all(len(line) <= width for line in out.splitlines()), (name, out)
    assert all(f"${month:,.2f}" in outputs["cost" + stack] for month in months), outputs["cost" + stack]
    narrowed = "Left out to fit 80 columns" in outputs["cost" + stack] or "\n  cloud: " in outputs["cost" + stack]  # fewer columns, or one block per row
    assert narrowed == (width == 80)
    assert run("down", "chat", "--yes", catalog=False)[0] == 0


def test_the_groups_options_may_come_after_the_command(write_stack: Write, mini_catalog_path: Path, tmp_path: Path) -> None:
    stack = str(write_stack("name: chat\nmodel: llama3.1-8b-instruct\n"))
    before = CliRunner().invoke(cli, ["--catalog", str(mini_catalog_path), "plan", stack, "--cloud", "aws", "--output", "json"])
    for after in (["--catalog", str(mini_catalog_path)], [f"--catalog={mini_catalog_path}"]):
        result = CliRunner().invoke(cli, ["plan", stack, "--cloud", "aws", "--output", "json", *after])
        assert result.exit_code == 0 and json.loads(result.stdout)["catalog"] == json.loads(before.stdout)["catalog"], result.output
    result = CliRunner().invoke(cli, ["status", "--output", "json", "--state", str(tmp_path / "elsewhere.db")])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"deployments": []}


def test_plan_of_a_large_stack_is_one_row_per_deployment(run, write_stack: Write, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Past 50 deployments `plan` prints one table row each (30 lines each would bury a reader and
    take minutes for thousands), the changed fields of each changed one, and each quota verdict once."""
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("LLAMADEPLOY_STATE", str(tmp_path / "state.db"))
    deployments = "".join(
        f"  - name: svc{i}\n    model: llama3.2-1b-instruct\n    autoscaling: {{min_replicas: 1, max_replicas: {1 + i % 3}}}\n" for i in range(240)
    )
    stack = write_stack("deployments:\n" + deployments)
    code, out, err = run("plan", str(stack), "--cloud", "aws", "--no-refresh")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "240 deployments; `--deployment NAME` shows one in full"
    assert lines[1].split() == ["deployment", "cloud", "region", "instance", "GPUs/replica", "replicas", "$/month", "at", "min", "action"]
    rows = [line.split() for line in lines[2:242]]
    assert [row[0] for row in rows] == [f"svc{i}" for i in range(240)] and {row[-1] for row in rows} == {"create"}
    assert rows[2][6] == "1-3" and rows[0][7].startswith("$")  # GPUs are two words: "1x L4"
    assert "quota not read (--no-refresh): 240 deployments" in out and "Plan: 240 to add" in out
    assert "team" not in out and "resources" not in out  # no per-deployment block
