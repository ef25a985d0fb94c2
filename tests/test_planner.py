"""Planner choices on the small fixture catalog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.declared.stackfile import load_stack
from orchestrator.errors import InfeasibleError, SpecError, UsageError
from orchestrator.planning.plan import Plan
from orchestrator.planning.planner import Infeasible, compare, plan
from orchestrator.pricing.catalog import Catalog

Write = Callable[..., Path]


def planned(write_stack: Write, text: str, cloud: str, catalog: Catalog, region: str | None = None) -> Plan:
    stack = load_stack(write_stack(text))
    return plan(stack, stack.deployments[0], cloud, catalog, region)


def test_cheapest_fitting_offer_is_chosen(write_stack: Write, mini_catalog: Catalog) -> None:
    # 8B bf16 at 8k x 16 needs 33 GiB: not one L4 (21.6 usable); four L4s at $4 beat an H100 node at $60
    p = planned(write_stack, "name: a\nmodel: llama3.1-8b-instruct\nautoscaling: {min_replicas: 2, max_replicas: 5}\n", "aws", mini_catalog)
    assert (p.region, p.region_source, p.offer.instance_type) == ("us-east-1", "default", "ml.g6.12xlarge")
    assert (p.layout.min_gpus, p.layout.tensor_parallel, p.gpus_per_replica) == (2, 4, 4)
    assert (p.usd_per_hour(2), p.usd_per_hour(5), p.usd_per_month_min) == (8.0, 20.0, 8.0 * 730)


def test_small_model_takes_one_small_gpu(write_stack: Write, mini_catalog: Catalog) -> None:
    p = planned(write_stack, "name: a\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\n", "aws", mini_catalog)
    assert p.offer.instance_type == "ml.g6.xlarge"


def test_gpu_type_is_respected(write_stack: Write, mini_catalog: Catalog) -> None:
    p = planned(write_stack, "name: a\nmodel: llama3.1-8b-instruct\ngpu: H100\n", "aws", mini_catalog)
    assert p.offer.instance_type == "ml.p5.48xlarge"
    assert p.offer.usd_per_hour == 60.0  # the managed price, not the $50 VM price beneath it


def test_region_from_placement_then_override(write_stack: Write, mini_catalog: Catalog) -> None:
    text = "name: a\nmodel: llama3.2-1b-instruct\nplacement:\n  aws: {region: us-west-2}\n"
    assert planned(write_stack, text, "aws", mini_catalog).region == "us-west-2"
    assert planned(write_stack, text, "aws", mini_catalog, region="us-east-1").region_source == "--region"


def test_unknown_region_in_placement_points_at_the_line(write_stack: Write, mini_catalog: Catalog) -> None:
    with pytest.raises(SpecError) as caught:
        planned(write_stack, "name: a\nmodel: llama3.2-1b-instruct\nplacement:\n  aws:\n    region: us-east1\n", "aws", mini_catalog)
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (5, "placement.aws.region")
    assert "regions with offers: us-east-1, us-west-2" in problem.message


def test_unknown_region_from_the_command_line_is_a_usage_error(write_stack: Write, mini_catalog: Catalog) -> None:
    with pytest.raises(UsageError, match="no offers in region 'mars-1'"):
        planned(write_stack, "name: a\nmodel: llama3.2-1b-instruct\n", "aws", mini_catalog, region="mars-1")


def test_offer_of_unknown_price_only_when_nothing_priced_fits(write_stack: Write, mini_catalog: Catalog) -> None:
    p = planned(write_stack, "name: a\nmodel: llama3.2-1b-instruct\ngpu: H200\n", "aws", mini_catalog)
    assert p.offer.instance_type == "ml.p5e.48xlarge"
    assert p.usd_per_hour(1) is None and p.usd_per_month_min is None


def test_nothing_fits_says_what_is_needed_and_what_would_fit(write_stack: Write, mini_catalog: Catalog) -> None:
    text = "name: a\nmodel: llama3.1-405b-instruct\nmax_context: 16384\nconcurrency: 8\ngpu: H100\n"
    with pytest.raises(InfeasibleError) as caught:
        planned(write_stack, text, "aws", mini_catalog)
    message = str(caught.value)
    assert "needs 835 GiB per replica on 8 GPUs (weights 756 GiB + KV cache 63 GiB" in message
    assert "ml.p5.48xlarge (8x H100 80 GiB), gives 573 GiB usable" in message  # 81559 MiB per GPU x 0.9 x 8
    assert "a replica cannot span instances" in message
    assert "quantization: fp8 (on ml.p5.48xlarge)" in message
    assert "gpu: H200 (on ml.p5e.48xlarge)" in message


def test_what_would_fit_an_own_checkpoint_is_what_it_can_be_served_as(write_stack: Write, mini_catalog: Catalog) -> None:
    """A user's own 16-bit checkpoint of 405B's architecture, too big for 8 H100s: fp8 (quantized
    when vLLM loads it) would fit and is offered; int4 is not, though the hub has an AWQ checkpoint of
    the catalog's model: this checkpoint is not quantized ahead of time, which int4 needs."""
    import json

    from orchestrator.sizing.checkpoint_files import read_checkpoint

    config = {"hidden_size": 16384, "intermediate_size": 53248, "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8}
    config |= {"vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    files = {"config.json": json.dumps(config).encode(), "model.safetensors.index.json": json.dumps({"metadata": {"total_size": 811_700_000_000}}).encode()}
    checkpoint = read_checkpoint("s3://m/ft/", {n: len(b) for n, b in files.items()}, files.__getitem__)
    text = "name: a\nmodel: llama3.1-405b-instruct\nmax_context: 16384\nconcurrency: 8\ngpu: H100\nweights: {aws: 's3://m/ft/'}\n"
    stack = load_stack(write_stack(text))
    memo: dict[object, object] = {("checkpoint", "aws", "s3://m/ft/", None): checkpoint}  # as `plan` reads it with credentials
    with pytest.raises(InfeasibleError) as caught:
        plan(stack, stack.deployments[0], "aws", mini_catalog, "us-east-1", memo)
    message = str(caught.value)
    assert "quantization: fp8 (on ml.p5.48xlarge)" in message, message
    assert "int4" not in message.split("what would fit:")[1]
    with pytest.raises(InfeasibleError) as caught:  # the catalog's model (no checkpoint of the user's read) would be offered int4
        planned(write_stack, text.replace("weights: {aws: 's3://m/ft/'}\n", ""), "aws", mini_catalog, "us-east-1")
    assert "quantization: int4" in str(caught.value)


def test_multi_node_only_where_the_service_supports_it(write_stack: Write, mini_catalog: Catalog) -> None:
    text = "name: a\nmodel: llama3.1-405b-instruct\nmax_context: 16384\nconcurrency: 8\ngpu: H100\n"
    p = planned(write_stack, text, "gcp", mini_catalog)
    assert (p.offer.instance_type, p.layout.nodes, p.gpus_per_replica, p.usd_per_hour(1)) == ("a3-highgpu-8g", 2, 16, 176.0)


def test_multi_node_never_on_gpus_without_the_interconnect(write_stack: Write, mini_catalog: Catalog) -> None:
    # 70B bf16 at 32k x 32 would fit 3 nodes of 8 L4s; Vertex multi-host is for A3 (H100/H200) only
    text = "name: a\nmodel: llama3.1-70b-instruct\nmax_context: 32768\nconcurrency: 32\ngpu: L4\n"
    with pytest.raises(InfeasibleError):
        planned(write_stack, text, "gcp", mini_catalog)


def test_resources_carry_names_and_the_deployment_tag(write_stack: Write, mini_catalog: Catalog) -> None:
    p = planned(write_stack, "name: chat\nmodel: llama3.2-1b-instruct\ntags: {team: ml}\nautoscaling: {max_replicas: 3}\n", "aws", mini_catalog)
    by_type = {r.type: r for r in p.resources}
    assert by_type["AWS::SageMaker::Endpoint"].name == "chat"
    assert by_type["AWS::SageMaker::EndpointConfig"].properties["instance_type"] == "ml.g6.xlarge"
    assert by_type["AWS::SageMaker::Model"].properties["tags"] == {"team": "ml", "llamadeploy-deployment": "chat"}
    assert by_type["AWS::ApplicationAutoScaling::ScalableTarget"].properties == {"min_capacity": 1, "max_capacity": 3}


def test_compare_cheapest_first_and_infeasible_last(write_stack: Write, mini_catalog: Catalog) -> None:
    stack = load_stack(write_stack("name: a\nmodel: llama3.2-1b-instruct\nmax_context: 4096\nconcurrency: 8\n"))
    results = compare(stack, stack.deployments[0], ["aws", "azure", "gcp", "oci"], mini_catalog)
    assert [r.cloud for r in results] == ["aws", "gcp", "azure", "oci"]
    aws = results[0]
    assert isinstance(aws, Plan) and (aws.region, aws.region_source, aws.offer.usd_per_hour) == ("us-west-2", "cheapest", 0.9)
    oci = results[-1]
    assert isinstance(oci, Plan) and oci.usd_per_hour(1) is None  # priced "unknown", after the priced ones


def test_compare_says_why_a_cloud_cannot_host(write_stack: Write, mini_catalog: Catalog) -> None:
    stack = load_stack(write_stack("name: a\nmodel: llama3.1-70b-instruct\nquantization: fp8\n"))
    results = compare(stack, stack.deployments[0], ["azure", "oci"], mini_catalog)
    assert all(isinstance(r, Infeasible) for r in results)
    azure = next(r for r in results if r.cloud == "azure")
    assert azure.region == "eastus" and "gives 72 GiB usable" in azure.reason


def test_a_record_written_before_a_field_was_added_is_no_change(write_stack: Write, mini_catalog: Catalog) -> None:
    """A spec recorded by an earlier version lacks fields added since (AWS's subnets, security_groups
    and network_isolation, `weights`): their defaults are no change, and certainly no replace."""
    from types import SimpleNamespace

    from orchestrator.planning.changes import declared_changes

    stack = load_stack(write_stack("name: chat\nmodel: llama3.2-1b-instruct\nplacement:\n  aws: {region: us-east-1}\n"))
    (deployment,) = stack.deployments
    planned = plan(stack, deployment, "aws", mini_catalog)
    older = deployment.model_dump(mode="json")
    del older["weights"]
    for key in ("subnets", "security_groups", "network_isolation"):
        del older["placement"]["aws"][key]
    record = SimpleNamespace(
        spec=older, cloud="aws", region=planned.region, placed=SimpleNamespace(plan=SimpleNamespace(instance_type=planned.offer.instance_type))
    )
    assert declared_changes(record, planned) == ()  # type: ignore[arg-type]
