"""SageMaker-only behaviour: a model in a VPC reaches what the VPC's routes reach, its container and
its model data; `up` reads the routes first and makes nothing that could not start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.checkpoints import checkpoint_files
from tests.clouds import AwsCloud, aws_vpc, cli_run, s3_gateway

pytestmark = pytest.mark.parametrize("cloud", ["aws"], indirect=True)

EC2_READS = {"DescribeSubnets", "DescribeRouteTables", "DescribeManagedPrefixLists", "DescribeVpcEndpoints"}


def _ec2_writes(cloud: AwsCloud) -> list[str]:
    """What llamadeploy asked of EC2 beyond reading: nothing, ever."""
    ec2 = [r.action for r in cloud.stand_in.requests if r.body.get("Service") == "ec2"]
    assert ec2, "no EC2 call was made at all"
    return [action for action in ec2 if not action.startswith("Describe")]


def test_a_container_in_subnets_without_a_nat_gateway_cannot_download_from_the_hub(cloud: AwsCloud, stack: Path) -> None:
    """With VpcConfig and no network isolation the container's traffic goes through the user's
    subnets: without a route to a NAT gateway it cannot reach the Hugging Face Hub. `plan` says so,
    `up` reads the route tables and makes nothing, naming the subnets; where it may not read them it
    says so and goes on, and the endpoint fails its start as SageMaker reports it. A route it cannot
    follow (a NAT instance) is trusted; with a NAT gateway it starts."""
    vpc, subnets, group = aws_vpc(cloud.stand_in.client("ec2"), "10.9")
    ec2 = cloud.stand_in.client("ec2")
    stack.write_text(stack.read_text().replace("  aws:\n", f"  aws:\n    subnets: [{', '.join(subnets)}]\n    security_groups: [{group}]\n", 1))
    code, out, _ = cli_run("plan", str(stack), "--cloud", "aws", "--output", "json")
    (need,) = [need for need in json.loads(out)["plans"][0]["serving"]["needs"] if "NAT gateway" in need]
    assert need.startswith(f"a route from each of {', '.join(subnets)} to a NAT gateway (0.0.0.0/0)"), need  # said before anything is made
    (main,) = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "stopped before creating anything" in err and "have no route out" in err, err
    assert all(f"{subnet} (route table {main['RouteTableId']})" in err for subnet in subnets), err  # the VPC's main table, which they use
    assert cloud.creates() == 0 and cloud.empty(), cloud.inventory()
    assert {r.action for r in cloud.stand_in.requests} >= {"DescribeSubnets", "DescribeRouteTables"} and not _ec2_writes(cloud)

    cloud.stand_in.faults.denied = set(EC2_READS)  # a policy without EC2 reads: said, and the service has the last word
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "network not checked" in err and "did not pass the ping health check" in err and "rolled back" in err, err
    assert cloud.empty(), cloud.inventory()
    cloud.stand_in.faults.denied = set()

    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.3.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=address)["NatGateway"]["NatGatewayId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "have no route out" in err and cloud.empty(), err  # an internet gateway does not do: no public address
    instance = ec2.create_network_interface(SubnetId=public)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=instance)
    models = len(cloud.stand_in.calls("CreateModel"))
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")  # a NAT instance may lead out: trusted, and the service has the last word
    assert "stopped before creating anything" not in err and len(cloud.stand_in.calls("CreateModel")) == models + 1, err
    assert code == 1 and "rolled back" in err, err  # the stand-in models NAT gateways only (as the guide names), so it fails the start
    assert cloud.empty(), cloud.inventory()
    ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 0 and "chat answers as" in err, err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()


def test_model_data_is_copied_through_the_subnets_and_needs_a_route_to_s3(cloud: AwsCloud, stack: Path) -> None:
    """With VpcConfig, SageMaker copies the model data through the user's subnets, network isolation
    or not: `plan` says what the subnets need, and `up` reads their route tables and makes nothing
    while one reaches neither S3 nor a NAT gateway, giving the command that adds the gateway
    endpoint. Where it may not read them, the copy fails as SageMaker reports it and `up` rolls back."""
    vpc, subnets, group = aws_vpc(cloud.stand_in.client("ec2"), "10.7")
    ec2 = cloud.stand_in.client("ec2")
    uri = cloud.store_weights(checkpoint_files())
    placement = f"  aws:\n    subnets: [{', '.join(subnets)}]\n    security_groups: [{group}]\n    network_isolation: true\n"
    stack.write_text(stack.read_text().replace("  aws:\n", placement, 1) + f"weights:\n  aws: {uri}\n")
    code, out, _ = cli_run("plan", str(stack), "--cloud", "aws", "--output", "json")
    (need,) = [need for need in json.loads(out)["plans"][0]["serving"]["needs"] if "com.amazonaws.us-east-1.s3" in need]
    assert need.startswith(f"a route from each of {', '.join(subnets)} to S3: a gateway endpoint") and uri in need, need

    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnets[1])
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "have no route to S3 and none out" in err and all(subnet in err for subnet in subnets), err
    assert f"aws ec2 create-vpc-endpoint --vpc-id {vpc} --service-name com.amazonaws.us-east-1.s3 --route-table-ids " in err and table in err, err
    assert cloud.creates() == 0 and cloud.empty() and not _ec2_writes(cloud), cloud.inventory()

    cloud.stand_in.faults.denied = {"DescribeRouteTables"}
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and "network not checked" in err, err
    assert f'Failed to download model data for container "container_1" from URL: "{uri}"' in err and "rolled back" in err, err
    assert cloud.empty(), cloud.inventory()
    cloud.stand_in.faults.denied = set()

    s3_gateway(ec2, vpc, [], table)
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 1 and f"{subnets[0]} (route table" in err and f"{subnets[1]} (route table" not in err, err  # every subnet needs the route
    assert cloud.empty(), cloud.inventory()

    s3_gateway(ec2, vpc, subnets[:1])
    code, _, err = cli_run("up", str(stack), "--cloud", "aws", "--yes")
    assert code == 0 and f"chat answers as {uri}" in err, err
    assert cli_run("down", "chat", "--yes")[0] == 0
    assert cloud.empty(), cloud.inventory()
