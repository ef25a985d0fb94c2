"""SageMaker-only behaviour: a model's container in a VPC reaches what the VPC's routes reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clouds import AwsCloud, cli_run

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
