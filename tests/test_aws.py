"""SageMaker-only behaviour: a model in a VPC reaches what the VPC's routes reach, its container and its model data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clouds import AwsCloud, cli_run, s3_gateway
from tests.test_providers import _checkpoint

pytestmark = pytest.mark.parametrize("cloud", ["aws"], indirect=True)


def test_a_container_in_subnets_without_a_nat_gateway_cannot_download_from_the_hub(cloud: AwsCloud, stack: Path) -> None:
    """With VpcConfig and no network isolation the container's traffic goes through the user's
    subnets: without a route to a NAT gateway it cannot reach the Hugging Face Hub, the endpoint
    fails to start, and `up` rolls back; with one, it starts."""
    ec2 = cloud.stand_in.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="serving", Description="SageMaker endpoint", VpcId=vpc)["GroupId"]
    stack.write_text(stack.read_text().replace("  aws:\n", f"  aws:\n    subnets: [{private}]\n    security_groups: [{group}]\n", 1))
    code, out, _ = cli_run("plan", str(stack), "--cloud", "aws", "--output", "json")
    (need,) = [need for need in json.loads(out)["plans"][0]["serving"]["needs"] if "NAT gateway" in need]
    assert need.startswith(f"a route from each of {private} to a NAT gateway (0.0.0.0/0)"), need  # said before anything is made
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "did not pass the ping health check" in err and "rolled back" in err, err  # as SageMaker says it
    assert cloud.empty(), cloud.inventory()

    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.2.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=address)["NatGateway"]["NatGatewayId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=table, SubnetId=private)
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 0 and "chat answers as" in err, err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_model_data_is_copied_through_the_subnets_and_needs_a_route_to_s3(cloud: AwsCloud, stack: Path) -> None:
    """With VpcConfig, SageMaker copies the model data through the user's subnets, network isolation
    or not: without an S3 gateway endpoint (or NAT gateway) on their route tables the copy fails, as
    SageMaker reports it, and `up` rolls back; `plan` says what the subnets need first."""
    ec2 = cloud.stand_in.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName="serving", Description="SageMaker endpoint", VpcId=vpc)["GroupId"]
    uri = cloud.store_weights(_checkpoint())
    placement = f"  aws:\n    subnets: [{', '.join(subnets)}]\n    security_groups: [{group}]\n    network_isolation: true\n"
    stack.write_text(stack.read_text().replace("  aws:\n", placement, 1) + f"weights:\n  aws: {uri}\n")
    code, out, _ = cli_run("plan", str(stack), "--cloud", "aws", "--output", "json")
    (need,) = [need for need in json.loads(out)["plans"][0]["serving"]["needs"] if "com.amazonaws.us-east-1.s3" in need]
    assert need.startswith(f"a route from each of {', '.join(subnets)} to S3: a gateway endpoint") and uri in need, need
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and f'Failed to download model data for container "container_1" from URL: "{uri}"' in err and "rolled back" in err, err
    assert cloud.empty(), cloud.inventory()

    s3_gateway(ec2, vpc, subnets[:1])
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "Failed to download model data" in err, err  # every subnet needs the route
    assert cloud.empty(), cloud.inventory()

    s3_gateway(ec2, vpc, subnets[1:])
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 0 and f"chat answers as {uri}" in err, err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()
