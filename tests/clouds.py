"""The cloud stand-ins behind one small harness, so provider scenarios are written once.

Each cloud's stand-in is wrapped in a `Cloud` that writes a stack placed on it, injects
faults in that cloud's own terms, and reports what the cloud received and what is left.
Later clouds (azure, gcp, oci) join by adding a harness here; the scenarios do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tests.emulators.aws import AwsStandIn

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"


class Cloud(Protocol):
    name: str

    def placement(self) -> str: ...
    def inventory(self) -> dict[str, list[str]]: ...
    def ready_after_polls(self, polls: int) -> None: ...
    def make_ready(self) -> None: ...
    def fail_capacity(self) -> None: ...
    def fail_quota(self) -> None: ...
    def throttle(self, calls: int) -> None: ...
    def delete_endpoint_by_hand(self, name: str) -> None: ...
    def creates(self) -> int: ...
    def received(self) -> dict[str, Any]: ...


@dataclass
class AwsCloud:
    stand_in: AwsStandIn
    name: str = "aws"

    def placement(self) -> str:
        return f"placement:\n  aws:\n    region: us-east-1\n    execution_role_arn: {ROLE}\n    endpoint_url: {self.stand_in.url}\n"

    def inventory(self) -> dict[str, list[str]]:
        return self.stand_in.inventory()

    def ready_after_polls(self, polls: int) -> None:
        self.stand_in.faults.ready_after_polls = polls

    def make_ready(self) -> None:
        self.stand_in.faults.ready_after_polls = 0
        self.stand_in._polls_left.clear()

    def fail_capacity(self) -> None:
        self.stand_in.faults.failure_reason = "Unable to provision requested ML compute capacity. Please retry using a different ML instance type."

    def fail_quota(self) -> None:
        self.stand_in.faults.fail["CreateEndpoint"] = (
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.g6.xlarge for endpoint usage' is 0 Instances, with current utilization of 0 Instances",
        )

    def throttle(self, calls: int) -> None:
        self.stand_in.faults.throttle_next = calls

    def delete_endpoint_by_hand(self, name: str) -> None:
        self.stand_in.client("sagemaker").delete_endpoint(EndpointName=name)

    def creates(self) -> int:
        return sum(len(self.stand_in.calls(a)) for a in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"))

    def received(self) -> dict[str, Any]:
        (model,) = self.stand_in.calls("CreateModel")
        (config,) = self.stand_in.calls("CreateEndpointConfig")
        (target,) = self.stand_in.calls("RegisterScalableTarget")
        (policy,) = self.stand_in.calls("PutScalingPolicy")
        variant = config["ProductionVariants"][0]
        return {
            "instance_type": variant["InstanceType"],
            "instance_count": variant["InitialInstanceCount"],
            "min_replicas": target["MinCapacity"],
            "max_replicas": target["MaxCapacity"],
            "scaling_target": policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
            "environment": model["PrimaryContainer"]["Environment"],
            "tags": {t["Key"]: t["Value"] for t in model["Tags"]},
            "raw": {"model": model, "config": config},
        }
