"""Cost reports: the throughput model and the month's arithmetic on hand-computed cases, the
totals per cloud, and the HTML page (self-contained, one bar per feasible cloud, loads in
headless Chromium without console errors)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest

from orchestrator.declared.stackfile import load_stack
from orchestrator.planning.planner import plan
from orchestrator.planning.projection import project
from orchestrator.pricing.catalog import load_catalog
from orchestrator.sizing.throughput import replica_throughput, usd_per_million_tokens
from tests.clouds import cli_run

REPO = Path(__file__).parent.parent

# Llama 3.1 8B: 8,030,261,248 parameters; KV cache 2 (K and V) x 32 layers x 8 KV heads x 128 x 2 bytes = 131,072 bytes per token.
PARAMETERS = 8_030_261_248
KV_PER_TOKEN = 131_072
L40S = {"bandwidth": 864e9, "bf16": 362.05e12}
VLLM = 0.7  # calibrated on published measurements (tests/test_throughput.py)


def planned(write_stack: Any, text: str, cloud: str = "aws") -> Any:
    stack = load_stack(write_stack(text))
    return plan(stack, stack.deployments[0], cloud, load_catalog())


EIGHT_B_ON_L40S = (
    "name: chat\nmodel: llama3.1-8b-instruct\ngpu: L40S\nconcurrency: 16\nautoscaling: {min_replicas: 1, max_replicas: 2, target_concurrent_requests: 12}\n"
)


def test_throughput_of_a_memory_bound_replica_by_hand(write_stack: Any) -> None:
    p = planned(write_stack, EIGHT_B_ON_L40S)
    assert (p.offer.instance_type, p.layout.tensor_parallel) == ("ml.g6e.xlarge", 1)
    rate = replica_throughput(p)  # 1000 prompt, 250 output tokens
    # 2 x 8,030,261,248 bytes, less the input embedding table a decode step does not read
    # (128,256 x 4,096 x 2 B = 1,050,673,152 bytes): 15,009,849,344 bytes
    weights = 2 * PARAMETERS - 128_256 * 4_096 * 2
    kv_read = 16 * (1000 + 250 / 2) * KV_PER_TOKEN  # 2,359,296,000 bytes
    step = (weights + kv_read) / (L40S["bandwidth"] * VLLM)  # 28.72 ms; compute would take 1.01 ms; one GPU: no all-reduce
    prefill = 2 * PARAMETERS * 1000 / (L40S["bf16"] * VLLM)  # 63.37 ms
    expected = 16 * 250 / (16 * prefill + 250 * step)
    assert rate.bound == "memory bandwidth"
    assert rate.decode_step_s == pytest.approx(step) and step == pytest.approx(0.028719, abs=1e-6)
    assert rate.prefill_s == pytest.approx(0.063371, abs=1e-6)
    assert rate.output_tokens_per_s == pytest.approx(expected) and expected == pytest.approx(488.18, abs=0.01)
    assert usd_per_million_tokens(2.61, expected) == pytest.approx(2.61 / (488.18 * 3600) * 1e6, rel=1e-4)  # $1.4851
    assert usd_per_million_tokens(None, expected) is None


def test_fp8_uses_fp8_tensor_cores_only_where_the_gpu_has_them(write_stack: Any) -> None:
    h100_fp8 = replica_throughput(planned(write_stack, "name: a\nmodel: llama3.1-8b-instruct\nquantization: fp8\ngpu: H100\n"))
    h100_bf16 = replica_throughput(planned(write_stack, "name: a\nmodel: llama3.1-8b-instruct\ngpu: H100\n"))
    a100_fp8 = replica_throughput(planned(write_stack, "name: a\nmodel: llama3.1-8b-instruct\nquantization: fp8\ngpu: A100-80GB\n"))
    a100_bf16 = replica_throughput(planned(write_stack, "name: a\nmodel: llama3.1-8b-instruct\ngpu: A100-80GB\n"))
    assert h100_bf16.prefill_s / h100_fp8.prefill_s == pytest.approx(1979 / 989.5)
    assert a100_fp8.prefill_s == pytest.approx(a100_bf16.prefill_s)  # no FP8 tensor cores: bf16 FLOP/s
    assert a100_fp8.decode_step_s < a100_bf16.decode_step_s  # but half the weight bytes to read


def test_a_small_model_with_a_huge_batch_is_compute_bound(write_stack: Any) -> None:
    p = planned(write_stack, "name: a\nmodel: llama3.2-1b-instruct\ngpu: L4\nmax_context: 2048\nconcurrency: 512\n")
    # Short requests keep the KV cache read small: 2 x 1.24 G x 512 FLOPs per step outweigh reading 2.5 GB of weights.
    assert replica_throughput(p, prompt_tokens=16, output_tokens=16).bound == "compute"
    assert replica_throughput(p).bound == "memory bandwidth"  # 1000-token prompts: the KV cache dominates again


def test_a_load_profile_sets_replicas_per_hour_and_the_month(write_stack: Any) -> None:
    hourly = [0.0] * 8 + [1.0] * 8 + [3.2] * 8
    p = planned(write_stack, EIGHT_B_ON_L40S + f"load: {{requests_per_second: {hourly}, prompt_tokens: 1000, output_tokens: 250}}\n")
    projection = project(p)
    rate = replica_throughput(p)
    per_replica = rate.output_tokens_per_s / 250 * 12 / 16  # requests/s a replica takes at the autoscaling target
    assert projection.replica_capacity_rps == pytest.approx(per_replica, rel=1e-4)
    # One L40S (ml.g6e.xlarge, the cheapest hour) takes 1.46 req/s: 3.2 would need 3 replicas, over max 2.
    # The planner chooses an offer whose 2 replicas serve every hour instead.
    assert p.offer.instance_type != "ml.g6e.xlarge" and projection.unmet_hours == ()
    assert projection.hourly_replicas == tuple(max(1, math.ceil(rps / per_replica - 1e-9)) for rps in hourly)
    price = p.usd_per_replica_hour
    assert projection.usd_per_month == pytest.approx(sum(projection.hourly_replicas) * price * 730 / 24)
    busier = planned(write_stack, EIGHT_B_ON_L40S + f"load: {{requests_per_second: {[0.0] * 16 + [100.0] * 8}}}\n")
    assert project(busier).unmet_hours == tuple(range(16, 24))  # no L40S offer serves 100 req/s on 2 replicas: said so


def test_cost_totals_a_stack_per_cloud_and_clouds_restricts_it(write_stack: Any) -> None:
    stack = write_stack("""
deployments:
  - {name: chat, model: llama3.1-8b-instruct, load: {requests_per_second: 0.5}}
  - {name: small, model: llama3.2-1b-instruct, gpu: A10G}
""")
    code, out, err = cli_run("cost", str(stack), "--output", "json")
    assert code == 0, err
    report = json.loads(out)
    totals = {t["cloud"]: t for t in report["totals"]}
    assert totals["aws"]["complete"] and totals["aws"]["deployments"] == ["chat", "small"]
    assert not totals["gcp"]["complete"] and totals["gcp"]["missing"] == ["small"]  # no A10G on Vertex AI
    assert report["totals"][0]["cloud"] == "aws"  # the only complete total comes first
    months = {(d["name"], c["cloud"]): c for d in report["deployments"] for c in d["clouds"] if c["feasible"]}
    chat, small = months["chat", "aws"], months["small", "aws"]
    assert totals["aws"]["usd_per_month"] == pytest.approx(chat["load"]["usd_per_month"] + small["price"]["usd_per_month_min"], abs=0.02)
    assert totals["aws"]["usd_per_hour_min"] == pytest.approx(chat["price"]["usd_per_hour_min"] + small["price"]["usd_per_hour_min"], abs=1e-3)

    code, out, _ = cli_run("cost", str(stack), "--clouds", "aws,gcp", "--output", "json")
    assert code == 0 and sorted(t["cloud"] for t in json.loads(out)["totals"]) == ["aws", "gcp"]
    code, out, _ = cli_run("cost", str(stack), "--clouds", "aws,gcp", "--output", "markdown")
    assert "### Total per cloud (2 deployments)" in out and "| gcp |" in out and "not small" in out
    code, out, _ = cli_run("cost", str(stack))
    assert "Total per cloud" in out and "$/month under load" in out


class _Page(HTMLParser):
    """Checks tags balance (HTML's void elements aside) and collects what the page would fetch.

    A self-closing SVG element (`<rect/>`) reaches handle_starttag and handle_endtag both.
    """

    VOID: ClassVar[set[str]] = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.fetches: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        if tag != "a":  # a link is navigation the reader chooses, not something the page loads
            self.fetches += [f"{tag} {k}={v}" for k, v in attrs if k in ("src", "href", "xlink:href") and v and not v.startswith("#")]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()


def _html_report(write_stack: Any, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    stack = write_stack(EIGHT_B_ON_L40S.replace("gpu: L40S\n", "") + f"load: {{requests_per_second: {[0.2] * 12 + [2.0] * 12}}}\n")
    code, _, err = cli_run("cost", str(stack), "--output", "html", "--to", str(tmp_path / "report.html"))
    assert code == 0, err
    data = json.loads(cli_run("cost", str(stack), "--output", "json")[1])
    return (tmp_path / "report.html").read_text(), data


def test_the_html_report_is_self_contained_and_shows_the_table(write_stack: Any, tmp_path: Path) -> None:
    page, data = _html_report(write_stack, tmp_path)
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.open == [] and parser.fetches == []  # balanced, and nothing fetched: pygal's inline config script only
    assert parser.scripts == 2  # one per chart, inline
    assert "@import" not in page and "url(http" not in page
    feasible = [c for c in data["deployments"][0]["clouds"] if c["feasible"]]
    for cloud in feasible:
        low = "≥\u00a0" if cloud["price"]["price_is_lower_bound"] else ""
        assert f"{low}${cloud['load']['usd_per_month']:,.2f}" in page
        assert f"{cloud['throughput']['output_tokens_per_s']:,.0f}" in page and cloud["instance_type"] in page
        assert cloud["price"]["source"][:40].replace("'", "&#39;") in page
    assert data["catalog"]["dated"] in page
    chart = page.split('id="monthly-cost-chart"', 1)[1].split("</figure>", 1)[0]
    bars = re.findall(r'<rect[^>]*class="rect reactive tooltip-trigger"', chart)
    assert len(bars) == len(feasible) == 4
    assert 'class="replicas-chart"' in page and "replicas over the day" in page


def test_html_needs_a_file_and_a_bad_path_is_one_line(write_stack: Any, tmp_path: Path) -> None:
    stack = write_stack(EIGHT_B_ON_L40S)
    code, _, err = cli_run("cost", str(stack), "--output", "html")
    assert code == 2 and "--to report.html" in err
    code, _, err = cli_run("cost", str(stack), "--output", "html", "--to", str(tmp_path / "missing" / "report.html"))
    assert code == 1 and "cannot write" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.llamadeploy-tmp"))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _console_errors(page: Path) -> list[str]:
    """Console errors and uncaught exceptions Chromium logs while loading `page` headless."""
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "<svg" in run.stdout or "<body" in run.stdout, run.stderr[-2000:]
    return [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_the_page_loads_in_headless_chromium_without_console_errors(write_stack: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>console.error('deliberate'); missing();</script></body></html>")
    assert _console_errors(broken), "the console check must see a page's errors"
    _html_report(write_stack, tmp_path)
    assert _console_errors(tmp_path / "report.html") == []


SERIES_HUES = {"azure": 4, "oci": 231, "aws": 174, "gcp": 45}  # pygal's default colours, in the order the clouds are added


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_a_screenshot_of_the_replicas_chart_shows_every_cloud_where_lines_coincide(tmp_path: Path) -> None:
    """In the 70B stack Azure and GCP need the same replicas every hour, as do OCI and AWS: drawn
    alike, the later line would hide the earlier. Chromium draws the chart and every cloud's colour
    must cover far more than its legend swatch (144 pixels), i.e. a visible line."""
    from PIL import Image

    code, _, err = cli_run("cost", str(REPO / "stacks" / "llama-3.1-70b.yaml"), "--output", "html", "--to", str(tmp_path / "report.html"))
    assert code == 0, err
    figure = re.search(r'<figure class="replicas-chart".*?</figure>', (tmp_path / "report.html").read_text(), re.S)
    assert figure, "the report has no replicas chart"
    (tmp_path / "chart.html").write_text(f'<!DOCTYPE html><html><body style="margin:0">{figure.group(0)}</body></html>')
    shot = tmp_path / "chart.png"
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=800,360",
            f"--screenshot={shot}",
            (tmp_path / "chart.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), run.stderr[-2000:]
    pixels = dict.fromkeys(SERIES_HUES, 0)
    for hue, saturation, _ in Image.open(shot).convert("HSV").get_flattened_data():
        if saturation > 90:
            for cloud, expected in SERIES_HUES.items():
                pixels[cloud] += abs((hue * 360 / 255 - expected + 180) % 360 - 180) < 12
    assert all(count > 500 for count in pixels.values()), pixels


def test_the_shipped_70b_stack_ranks_billed_prices_before_lower_bounds() -> None:
    """A VM price under SageMaker or Vertex AI is only a lower bound: it may end up dearer than any
    billed price, so it is ranked after them (and marked), not by its number."""
    code, out, err = cli_run("cost", str(REPO / "stacks" / "llama-3.1-70b.yaml"), "--output", "json")
    assert code == 0, err
    (deployment,) = json.loads(out)["deployments"]
    bounds = [c["price"]["price_is_lower_bound"] for c in deployment["clouds"] if c["feasible"]]
    assert bounds == sorted(bounds) and bounds.count(False) >= 1 and bounds.count(True) >= 1, bounds
    code, out, _ = cli_run("cost", str(REPO / "stacks" / "llama-3.1-70b.yaml"))
    first_bound = out.index("≥")
    assert all(out.index(f"│ {cloud} ") < first_bound for cloud in ("azure", "oci")), out


def test_cost_of_a_deployment_no_cloud_can_host_is_an_error_with_what_would_fit(write_stack: Any) -> None:
    stack = write_stack("name: huge\nmodel: llama3.1-405b-instruct\nmax_context: 32768\nconcurrency: 8\ngpu: A100-80GB\n")
    code, out, err = cli_run("cost", str(stack))
    assert code == 1 and "huge" in out  # the report is printed, then the error
    assert "no cloud compared (aws, azure, gcp, oci) can host 'huge' as declared; what would fit:" in err, err
    # 756 GiB of bf16 weights and a 126 GiB KV cache exceed 8 x 80 GiB; the real ways out, per cloud:
    assert "  quantization: fp8 (aws: ml.p4de.24xlarge; azure: Standard_ND96amsr_A100_v4; gcp: a2-ultragpu-8g; oci: BM.GPU.A100-v2.8)" in err, err
    assert "  gpu: H200 (" in err and "another cloud" not in err


def test_under_a_load_profile_the_planner_chooses_by_the_month_and_names_the_runner_up(write_stack: Any) -> None:
    """At 20 requests/s an H100 serves the day on fewer replicas than the L40S whose hour is cheapest:
    chosen by the month, not by $/h; at 1 request/s the L40S's month is the cheaper one."""

    def chosen(rps: float) -> dict[str, Any]:
        stack = write_stack(f"name: c\nmodel: llama3.1-8b-instruct\nautoscaling: {{min_replicas: 1, max_replicas: 40}}\nload: {{requests_per_second: {rps}}}\n")
        code, out, err = cli_run("plan", str(stack), "--cloud", "aws", "--no-refresh", "--output", "json")
        assert code == 0, err
        return json.loads(out)["plans"][0]

    busy, quiet = chosen(20), chosen(1)
    assert (busy["instance_type"], busy["runner_up"]["instance_type"]) == ("ml.p5.4xlarge", "ml.g6e.xlarge")
    assert busy["runner_up"]["measure"] == "$/month under load" and busy["runner_up"]["value"] > busy["runner_up"]["chosen"] == busy["load"]["usd_per_month"]
    assert busy["price"]["usd_per_hour_min"] > quiet["price"]["usd_per_hour_min"]  # a dearer hour, a cheaper month
    assert quiet["instance_type"] == "ml.g6e.xlarge"
    _, out, _ = cli_run(
        "plan",
        str(write_stack("name: c\nmodel: llama3.1-8b-instruct\nload: {requests_per_second: 20}\nautoscaling: {min_replicas: 1, max_replicas: 40}\n")),
        "--cloud",
        "aws",
        "--no-refresh",
    )
    assert re.search(r"runner-up +ml\.g6e\.xlarge \(1 GPU\): \$[\d,.]+/month under load, \d+% more than \$[\d,.]+", out), out


def test_the_html_report_answers_which_cloud_and_why_first(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, _, err = cli_run("cost", str(REPO / "stacks" / "llama-3.1-70b.yaml"), "--output", "html", "--to", str(page))
    assert code == 0, err
    text = page.read_text()
    first = re.search(r'<p class="headline"><strong>(.*?)</strong></p>', text)
    assert first is not None and text.index(first.group(0)) < text.index("<h2"), text[:2000]
    # The cheapest billed month, how far below the next cloud, and the machines each needs.
    assert re.fullmatch(r"Azure eastus is cheapest at \$[\d,.]+/month, \d+% below OCI; it needs 4×A100-80GB where OCI needs 8×A100-40GB\.", first.group(1)), (
        first.group(1)
    )
    assert "<title>llama-3.1-70b: cost on every cloud</title>" in text
    assert "≥ $" not in text and "≥\u00a0$" in text  # a lower bound's sign never wraps away from its number
    assert text.count("(≥, a lower bound)") == 2  # AWS's and GCP's bars are marked in the chart, not only in the tables
    replicas = text[text.index('class="replicas-chart"') :]
    assert not re.search(r">\d+\.\d+</text>", replicas)  # whole replicas on the axis
    assert '<a href="https://github.com/skypilot-org/skypilot-catalog/blob/' in text  # a source a reader can open


def test_break_even_is_where_the_months_meet_or_never() -> None:
    from orchestrator.pricing.hosted import break_even_rps

    # $2.61/h per replica against $0.005 a request ($18/h per request/s): equal months at 0.145 req/s
    assert break_even_rps(2.61, replica_capacity_rps=2.0, min_replicas=1, api_usd_per_request=0.005) == pytest.approx(2.61 / 18)
    assert break_even_rps(2.61, 2.0, 3, 0.005) == pytest.approx(3 * 2.61 / 18)  # three replicas billed from the first request
    # at 0.1 req/s per replica a full replica costs $0.0725 a request, more than the API's $0.005: never
    assert break_even_rps(2.61, 0.1, 1, 0.005) is None


def test_every_report_compares_hosted_apis_with_sources_dates_and_break_even(write_stack: Any, tmp_path: Path) -> None:
    """The seed's claim made checkable: each hosted API's price for this workload next to the
    deployment's cheapest cloud, and the load from which self-hosting costs less."""
    from orchestrator.pricing.hosted import load_hosted

    stack = write_stack(EIGHT_B_ON_L40S.replace("gpu: L40S\n", "") + "load: {requests_per_second: 1, prompt_tokens: 800, output_tokens: 400}\n")
    code, out, err = cli_run("cost", str(stack), "--output", "json")
    assert code == 0, err
    (deployment,) = json.loads(out)["deployments"]
    hosted = deployment["hosted_apis"]
    cheapest = next(c for c in deployment["clouds"] if c["feasible"])
    assert hosted["against"]["cloud"] == cheapest["cloud"] and (hosted["prompt_tokens"], hosted["output_tokens"]) == (800, 400)
    prices = load_hosted()
    assert [a["model"] for a in hosted["apis"]] == [p.model for p in prices] and all(a["source"].startswith("https://") and a["as_of"] for a in hosted["apis"])
    per_hour = cheapest["price"]["usd_per_hour_min"] / cheapest["replicas"]["min"]
    for api in hosted["apis"]:
        per_request = (800 * api["usd_per_million_input"] + 400 * api["usd_per_million_output"]) / 1e6
        assert api["usd_per_million_output_tokens_this_workload"] == pytest.approx(per_request / 400 * 1e6, abs=1e-4)
        if api["break_even_requests_per_s"] is not None:  # the deployment's month equals the API's there
            assert api["break_even_requests_per_s"] * 3600 * per_request == pytest.approx(cheapest["replicas"]["min"] * per_hour, rel=1e-3)
            assert api["break_even_requests_per_s"] <= api["break_even_up_to_requests_per_s"]  # cheaper only until the min replicas are full
        assert (api["break_even_requests_per_s"] is None) == (api["cost_ratio_at_target"] > 1)  # never cheaper iff dearer per request at the target
    assert any(a["break_even_requests_per_s"] is None for a in hosted["apis"]) and any(a["break_even_requests_per_s"] for a in hosted["apis"])

    code, markdown, _ = cli_run("cost", str(stack), "--output", "markdown")
    assert "Hosted APIs, price only (the models differ), at 800 prompt + 400 output tokens per request" in markdown
    assert "| OpenAI GPT-4o | $2.50 | $10.00 | $15.00 |" in markdown and "never: a replica at the autoscaling target costs more per request" in markdown
    assert "Hosted API prices: OpenAI GPT-4o: https://platform.openai.com/docs/pricing" in markdown
    page, _ = _html_report(write_stack, tmp_path)
    assert "<h3>Against hosted APIs</h3>" in page and '<a href="https://docs.anthropic.com/en/docs/about-claude/pricing' in page
    code, table, _ = cli_run("cost", str(stack))
    assert "OpenAI GPT-4o mini" in table and "break-even on min replicas" in table
