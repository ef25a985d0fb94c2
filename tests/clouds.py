"""The cloud stand-ins behind one small harness, so provider scenarios are written once.

Each cloud's stand-in is wrapped in a `Cloud` that writes a stack placed on it, injects
faults in that cloud's own terms, and reports what the cloud received and what is left.
A new cloud joins the scenario suite by adding a harness here; the scenarios do not change.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from click.testing import CliRunner

import providers.aws
import providers.azure
import providers.gcp
import providers.oci
from orchestrator.cli import cli
from orchestrator.lifecycle.state import open_state
from orchestrator.planning.serving import chat_request
from providers import registry
from tests import fake_provider
from tests.emulators import containers, fake, gcp, oci
from tests.emulators.aws import CREDENTIALS, AwsStandIn
from tests.emulators.aws import REGION as AWS_REGION
from tests.emulators.azure import BLOB_CONTAINER, FAMILIES, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, AzureStandIn, vcpus
from tests.emulators.fake import FakeStandIn
from tests.emulators.gcp import PROJECT, GcpStandIn
from tests.emulators.internet import Internet
from tests.emulators.oci import COMPARTMENT, NAMESPACE, SUBNET, OciStandIn
from tests.emulators.oci import PROJECT as OCI_PROJECT
from tests.emulators.vllm import VALID_TOKEN

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"
# The test tenancy's copy of vLLM's image in OCIR (OCI runs images from OCIR only).
OCIR_IMAGE = "iad.ocir.io/llamadeploy/vllm-openai:v0.11.0"
containers.mirror(OCIR_IMAGE, of="vllm/vllm-openai:v0.11.0")
HF_TOKEN = VALID_TOKEN  # the one token the stand-in hub accepts
DECLARED = "meta-llama/Llama-3.2-1B-Instruct"  # the checkpoint the test stacks' model serves
SERVICE_ACCOUNT = "llama-serving@llm-prod.iam.gserviceaccount.com"  # what Vertex AI runs the test's containers as


def stand_in_environment(state: Path, poll_seconds: float = 0.001) -> dict[str, str]:
    """What every stand-in run needs: fake AWS keys and no shared config, a token, fast polls, a state file."""
    return {
        **CREDENTIALS,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "HF_TOKEN": HF_TOKEN,
        "LLAMADEPLOY_POLL_SECONDS": str(poll_seconds),
        "LLAMADEPLOY_STATE": str(state),
    }


def flags(arguments: list[str]) -> dict[str, str]:
    """vLLM options as `--name value` or `--name=value` pairs, by name without dashes."""
    found: dict[str, str] = {}
    for index, token in enumerate(arguments):
        if token.startswith("--"):
            name, has_value, value = token[2:].partition("=")
            following = arguments[index + 1] if index + 1 < len(arguments) else ""
            found[name] = value if has_value else ("" if following.startswith("--") else following)
    return found


BIN = Path(__file__).parent / "bin"  # the test doubles of the clouds' own CLIs the examples use (aws is the real one)


def run_example(command: str) -> subprocess.CompletedProcess[str]:
    """A command as `up` printed it, run by a shell, with the clouds' CLIs on PATH."""
    path = os.pathsep.join([str(BIN), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(["bash", "-c", command], env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=120)


def cli_run(*args: str) -> tuple[int, str, str]:
    """The CLI in-process, as a user would run it: exit code, stdout, stderr."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


class CliProcess:
    """`llamadeploy ARGS` in a process of its own, forked from the test's, so that a test can
    SIGKILL it mid-operation as a user's Ctrl-\\ or an OOM kill would. Forking skips a fresh
    interpreter's cloud SDK imports (seconds of CPU each on a 2-core machine); the child makes
    its own SDK clients (the registry drops the parent's at fork) and never returns into pytest.
    The fork copies the state of the stand-ins' server threads, locks included; the child uses
    none of their objects (it reaches them over HTTP), and one stuck on a copied lock is killed
    at the deadline, failing its test rather than hanging the run."""

    def __init__(self, *args: str) -> None:
        with tempfile.NamedTemporaryFile(prefix="llamadeploy-child-", suffix=".err", delete=False) as handle:
            self._stderr = Path(handle.name)  # read after the child ends
        with tempfile.NamedTemporaryFile(prefix="llamadeploy-child-", suffix=".out", delete=False) as handle:
            self._stdout = Path(handle.name)
        self.returncode: int | None = None
        self.pid = os.fork()
        if self.pid == 0:
            self._run_child(args)

    def _run_child(self, args: tuple[str, ...]) -> None:
        code = 70
        try:
            sys.stdout, sys.stderr = open(self._stdout, "w", buffering=1), open(self._stderr, "w", buffering=1)  # noqa: SIM115 (the child's own streams)
            logging.root.handlers.clear()  # pytest's capture handlers: without them, logging reaches stderr as in a fresh process
            cli.main(list(args), prog_name="llamadeploy", standalone_mode=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def stderr(self) -> str:
        return self._stderr.read_text()

    def wait(self, timeout: float = 120) -> tuple[int, str]:
        """The exit code and stderr once the process ends by itself (killed, and the test failed, if it does not)."""
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.returncode is None:
            self._kill()
            raise AssertionError(f"the command did not end within {timeout} s: {self._last_words()}")
        return self.returncode, self._last_words()

    def kill_once(self, ready: Callable[[], bool], settle: float) -> None:
        """SIGKILL the process `settle` seconds after `ready()` holds; fail (killing it still) if it never does."""
        deadline = time.monotonic() + 60
        while not ready() and time.monotonic() < deadline and self.poll() is None:
            time.sleep(0.05)
        if self.poll() is not None or not ready():
            self._kill()
            raise AssertionError(f"the command ended, or never got to the point to kill it at: {self._last_words()}")
        time.sleep(settle)
        self._kill()
        self._last_words()

    def _kill(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.returncode = -signal.SIGKILL

    def _last_words(self) -> str:
        """What the process wrote to stderr, with its files removed (stdout's kept in `out`)."""
        try:
            self.out = self._stdout.read_text()
            return self.stderr()
        finally:
            self._stderr.unlink(missing_ok=True)
            self._stdout.unlink(missing_ok=True)


CALLER_PAUSE_S = 0.005  # between a Caller's calls: calling flat out starves the command it watches of the GIL


class Caller:
    """A client calling the deployment all along, as a user's service would: it looks the endpoint
    up in the state and sends a chat completion through the cloud's own route and authentication,
    with no retry. It notes each failure, the record's phase at each call, and how many variants
    the cloud bills, so a test (or bench/replace.py) can count failed calls and double-billed time."""

    def __init__(self, cloud: Cloud, state: Path) -> None:
        self.cloud, self.state = cloud, state
        self.phases: list[str] = []
        self.failures: list[str] = []
        self.billed: list[tuple[float, int]] = []  # (monotonic time, variants billed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._calls, daemon=True)

    def __enter__(self) -> Caller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def calls(self) -> int:
        return len(self.phases)

    def overlap(self) -> float:
        """Seconds during which the cloud billed two variants or more."""
        return sum(later - at for (at, billed), (later, _) in itertools.pairwise(self.billed) if billed > 1)

    def _calls(self) -> None:
        provider, state = registry.provider(self.cloud.name), open_state(self.state)
        try:
            while not self._stop.is_set():
                self.billed.append((time.monotonic(), self.cloud.billed_variants()))
                record = state.get("chat")
                assert record is not None and record.deployed is not None
                self.phases.append(record.phase.value)
                try:
                    answer = provider.invoke(record.deployed, chat_request("Say hi.", 4))
                    if answer["model"] != DECLARED:
                        self.failures.append(f"answered as {answer['model']}")
                except Exception as exc:  # any failure of a call is what is counted
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(CALLER_PAUSE_S)
        finally:
            state.close()


def cli_process(*args: str) -> tuple[int, str, str]:
    """The CLI in a process of its own, run to its end: exit code, stdout, stderr. What it prints
    is what a user's terminal gets, a traceback included, and its exit code is the process's own."""
    child = CliProcess(*args)
    code, err = child.wait()
    return code, child.out, err


class Cloud(Protocol):
    name: str
    endpoint_type: str
    capacity_text: str
    quota_text: str
    secrets_stay_out_of_the_deployment: bool
    program_types: tuple[str, ...]  # the Pulumi type tokens an exported program declares
    quota_refused_at_first_create: bool  # quota is checked before anything exists (nothing to roll back)
    replacement_gpu: str  # a GPU the test stack can move to, so a change needs new machines
    stages_weights: bool  # `weights stage` can copy a checkpoint into its storage
    exports_weights: bool  # `export` declares a deployment's own weights

    def placement(self) -> str: ...
    def environment(self) -> dict[str, str]: ...
    def inventory(self) -> dict[str, list[str]]: ...
    def empty(self) -> bool: ...
    def ready_after_polls(self, polls: int) -> None: ...
    def make_ready(self) -> None: ...
    def finish_in_polls(self, polls: int) -> None: ...  # what is in flight ends after this many more polls
    def hold_serving(self) -> None: ...  # making the serving resource goes on until finish_in_polls
    def serving_requests(self) -> int: ...  # requests that make the serving resource (an endpoint, a deployment)
    def delete_requests(self) -> int: ...  # requests that delete it
    def serving_copies(self) -> int: ...  # serving resources (endpoints, deployments) the cloud holds
    def billed_variants(self) -> int: ...  # fleets of serving machines the cloud bills now (two while a blue/green replace overlaps)
    def autoscaling_target(self) -> Any: ...  # what the cloud's autoscaling aims at now, in its own terms
    def tags(self) -> dict[str, dict[str, str]]: ...  # each tagged resource's tags (or labels) in the cloud now
    def fail_capacity(self, instance_type: str) -> None: ...
    def fail_quota(self, instance_type: str) -> None: ...
    def set_quota(self, instance_type: str, available: int) -> None: ...  # what the quota API says is free for the type

    quota_name: str  # how the cloud names that quota, in words the user sees

    def throttle(self) -> None: ...
    def fail_transiently(self, calls: int) -> None: ...
    def drop_connections(self, calls: int) -> None: ...
    def fail_storage_transiently(self, calls: int) -> bool: ...
    def throttling_was_respected(self, stderr: str) -> bool: ...
    def delete_endpoint_by_hand(self, name: str) -> None: ...
    def endpoint_name(self, deployment: str) -> str: ...

    unknown_image: str  # an image reference the stand-in does not know
    unknown_image_text: str  # how the cloud says it cannot run that image

    def use_image(self, stack: Path, image: str) -> None: ...
    def break_contract(self, monkeypatch: Any) -> str: ...
    def creates(self) -> int: ...
    def endpoint_creates(self) -> int: ...
    def created_twice(self) -> list[str]: ...
    def received(self) -> dict[str, Any]: ...
    def answers(self, url: str) -> bool: ...
    def from_program(self, declared: dict[str, list[dict[str, Any]]]) -> dict[str, Any]: ...
    # A checkpoint put in the cloud's object storage, file by file: where the stack's `weights:`
    # points at it; None where llamadeploy cannot serve the user's own weights on this cloud yet.
    def store_weights(self, files: dict[str, bytes]) -> str | None: ...
    def weights_received(self) -> str | None: ...  # the object-storage location the cloud was told to load the model from
    def weights_declared(self, declared: dict[str, list[dict[str, Any]]]) -> str | None: ...  # the same, in an exported program
    def stored_weights(self) -> dict[str, int]: ...  # what lies where store_weights puts a checkpoint, by name (size)
    # Placement lines that keep the deployment private (its network made in the stand-in first); None
    # where llamadeploy cannot declare private networking on this cloud yet. It sets `private_ids`
    # (what the cloud must be sent, as private_received and private_declared return it) and
    # `private_words` (what `reached` must say).
    def private_block(self) -> str | None: ...
    def private_received(self) -> list[str]: ...  # the private networking the cloud was asked for
    def private_declared(self, declared: dict[str, list[dict[str, Any]]]) -> list[str]: ...  # the same, in an exported program

    private_ids: list[str]
    private_words: list[str]
    private_needs_weights: bool  # the container then reaches nothing, the Hugging Face Hub included
    private_inbound: bool  # the endpoint then answers only inside its network (`up` does not call it)
    secrets_in_environment: bool  # secrets reach the container as plain environment (`plan` says so)


class _Common:
    """What every harness does the same way, given a stand-in with an inventory."""

    stand_in: Any
    # The built-in services check quota on a later resource (the endpoint, the deployment), after the first exists.
    quota_refused_at_first_create: ClassVar[bool] = False
    stages_weights: ClassVar[bool] = False
    exports_weights: ClassVar[bool] = False

    def placement(self) -> str:
        """Stack lines placing a deployment on this cloud."""
        return "placement:\n" + self.block()

    def store_weights(self, files: dict[str, bytes]) -> str | None:
        return None

    def weights_received(self) -> str | None:
        return None

    def weights_declared(self, declared: dict[str, list[dict[str, Any]]]) -> str | None:
        return None

    def stored_weights(self) -> dict[str, int]:
        return {}

    private_needs_weights: ClassVar[bool] = False
    private_inbound: ClassVar[bool] = True
    # Secrets reach the container as plain environment (no secret reference in the service's container spec).
    secrets_in_environment: ClassVar[bool] = True

    def private_block(self) -> str | None:
        return None

    def private_received(self) -> list[str]:
        return []

    def private_declared(self, declared: dict[str, list[dict[str, Any]]]) -> list[str]:
        return []

    def inventory(self) -> dict[str, list[str]]:
        return self.stand_in.inventory()

    def empty(self) -> bool:
        return not any(self.inventory().values())

    def throttling_was_respected(self, stderr: str) -> bool:
        return "throttling requests; retry" in stderr

    def fail_transiently(self, calls: int) -> None:
        """The next `calls` API calls fail as the cloud fails when it is having a bad moment (a 5xx)."""
        self.stand_in.faults.server_error_next = calls

    def drop_connections(self, calls: int) -> None:
        """The next `calls` API calls lose their connection before any answer comes."""
        self.stand_in.faults.drop_next = calls

    def fail_storage_transiently(self, calls: int) -> bool:
        """The next `calls` calls to the object storage answer 503; False where the stand-in's
        storage cannot be made to (moto's S3 is served as it is)."""
        if not hasattr(self.stand_in.faults, "storage_error_next"):
            return False
        self.stand_in.faults.storage_error_next = calls
        return True

    def endpoint_name(self, deployment: str) -> str:
        """The endpoint llamadeploy made for `deployment`, as the cloud names it."""
        return deployment

    def use_image(self, stack: Path, image: str) -> None:
        """Serve from `image` instead of the cloud's default one."""
        stack.write_text(stack.read_text().replace("serving:\n", f"serving:\n  image: {image}\n"))

    def billed_variants(self) -> int:
        """Serving resources, plus the new fleets a service brings up inside one while it replaces it in place."""
        return self.serving_copies() + self.stand_in.updating_in_place()

    def answers(self, url: str) -> bool:
        """Whether a recorded endpoint URL answers its health route now, this cloud standing in for its host."""
        target, stand_in = urlsplit(url), urlsplit(self.stand_in.url)
        connection = http.client.HTTPConnection(stand_in.hostname, stand_in.port, timeout=10)
        try:
            connection.request("GET", target.path, headers={"Host": target.netloc})
            response = connection.getresponse()
            response.read()  # an unread body would reset the connection on close
            return response.status == 200
        finally:
            connection.close()


class _RestStandInHarness(_Common):
    """For the REST stand-ins (azure, gcp, oci): faults, operations and a log of creations."""

    endpoint_kind: ClassVar[str]
    counted: ClassVar[tuple[str, ...] | None] = None  # creation kinds `creates()` counts; None: all
    serving_inventory: ClassVar[str]  # the inventory's list of serving resources
    serving_request: ClassVar[tuple[str, str]]  # (method, route kind) of the request that makes one
    delete_request: ClassVar[tuple[str, str]]  # (method, route kind) of the request that deletes it

    def ready_after_polls(self, polls: int) -> None:
        self.stand_in.faults.polls = polls

    def make_ready(self) -> None:
        self.stand_in.finish_operations()

    def finish_in_polls(self, polls: int) -> None:
        self.stand_in.finish_operations(polls)

    def hold_serving(self) -> None:
        """The serving resource is the only one that waits on these services; ones that wait on more override this."""
        self.ready_after_polls(10**6)

    def _requests(self, method: str, kind: str) -> int:
        return sum(1 for r in list(self.stand_in.requests) if (r.method, r.kind) == (method, kind))

    def serving_requests(self) -> int:
        return self._requests(*self.serving_request)

    def delete_requests(self) -> int:
        return self._requests(*self.delete_request)

    def serving_copies(self) -> int:
        return len(self.inventory()[self.serving_inventory])

    def fail_capacity(self, instance_type: str) -> None:
        self.stand_in.faults.capacity_for.add(instance_type)

    def fail_quota(self, instance_type: str) -> None:
        self.stand_in.faults.quota_for.add(instance_type)

    def creates(self) -> int:
        return sum(1 for kind, _ in self.stand_in.creations if self.counted is None or kind in self.counted)

    def endpoint_creates(self) -> int:
        return sum(1 for kind, _ in self.stand_in.creations if kind == self.endpoint_kind)

    def created_twice(self) -> list[str]:
        creations = self.stand_in.creations
        return sorted({f"{kind} {name}" for kind, name in creations if creations.count((kind, name)) > 1})


@dataclass
class AwsCloud(_Common):
    stand_in: AwsStandIn
    stages_weights: ClassVar[bool] = True
    exports_weights: ClassVar[bool] = True
    name: str = "aws"
    replacement_gpu: str = "L40S"
    endpoint_type: str = "AWS::SageMaker::Endpoint"
    capacity_text: str = "Unable to provision requested ML compute capacity"
    quota_text: str = "ResourceLimitExceeded"
    # SageMaker has no secret references in a container's environment (see the AWS note).
    secrets_stay_out_of_the_deployment: bool = False
    program_types: tuple[str, ...] = (
        "aws:sagemaker/model:Model",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "aws:sagemaker/endpoint:Endpoint",
        "aws:appautoscaling/target:Target",
        "aws:appautoscaling/policy:Policy",
    )

    def block(self) -> str:
        return f"  aws:\n    region: us-east-1\n    execution_role_arn: {ROLE}\n    endpoint_url: {self.stand_in.url}\n"

    def environment(self) -> dict[str, str]:
        # botocore's service-specific endpoint variables: the user's buckets are moto's S3, and EC2
        # reads go through the stand-in, which records them (and can refuse them)
        return {"AWS_ENDPOINT_URL_S3": f"http://{self.stand_in.moto_host}:{self.stand_in.moto_port}", "AWS_ENDPOINT_URL_EC2": self.stand_in.url}

    def ready_after_polls(self, polls: int) -> None:
        self.stand_in.faults.ready_after_polls = self.stand_in.faults.deleting_polls = polls

    def make_ready(self) -> None:
        self.finish_in_polls(0)

    def finish_in_polls(self, polls: int) -> None:
        self.stand_in.finish_in_polls(polls)

    def hold_serving(self) -> None:
        self.stand_in.faults.ready_after_polls = 10**6  # the model and endpoint configuration are made at once; deletes stay quick

    def serving_requests(self) -> int:
        return len(self.stand_in.calls("CreateEndpoint"))

    def delete_requests(self) -> int:
        return len(self.stand_in.calls("DeleteEndpoint"))

    def serving_copies(self) -> int:
        return len(self.inventory()["endpoints"])

    def autoscaling_target(self) -> Any:
        (policy,) = self.stand_in.client("application-autoscaling").describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        return policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]

    def tags(self) -> dict[str, dict[str, str]]:
        sagemaker = self.stand_in.client("sagemaker")
        arns = [m["ModelArn"] for m in sagemaker.list_models()["Models"]]
        arns += [c["EndpointConfigArn"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]]
        arns += [e["EndpointArn"] for e in sagemaker.list_endpoints()["Endpoints"]]
        return {arn: {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]} for arn in arns}

    def fail_capacity(self, instance_type: str) -> None:
        self.stand_in.faults.failure_reason = "Unable to provision requested ML compute capacity. Please retry using a different ML instance type."

    def fail_quota(self, instance_type: str) -> None:
        self.stand_in.faults.fail["CreateEndpoint"] = (
            "ResourceLimitExceeded",
            f"The account-level service limit '{instance_type} for endpoint usage' is 0 Instances, with current utilization of 0 Instances",
        )

    def throttle(self) -> None:
        self.stand_in.faults.throttle_next = 4  # boto3 makes one attempt (the engine retries)

    def set_quota(self, instance_type: str, available: int) -> None:
        self.stand_in.faults.endpoint_quota[instance_type] = available

    quota_name: ClassVar[str] = "for endpoint usage"

    def delete_endpoint_by_hand(self, name: str) -> None:
        self.stand_in.client("sagemaker").delete_endpoint(EndpointName=name)

    unknown_image: ClassVar[str] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nobody-knows:1"
    unknown_image_text: ClassVar[str] = "Requested image 123456789012.dkr.ecr.us-east-1.amazonaws.com/nobody-knows:1 not found"

    def break_contract(self, monkeypatch: Any) -> str:
        """vLLM's own image on SageMaker: nothing passes it options, and it listens on 8000, not 8080."""
        monkeypatch.setattr(providers.aws, "LMI_IMAGE", "vllm/vllm-openai:v0.11.0")
        return "did not pass the ping health check"

    def creates(self) -> int:
        return sum(len(self.stand_in.calls(a)) for a in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"))

    def endpoint_creates(self) -> int:
        return len(self.stand_in.calls("CreateEndpoint"))

    def created_twice(self) -> list[str]:
        names = [
            body[key]
            for action, key in (("CreateModel", "ModelName"), ("CreateEndpointConfig", "EndpointConfigName"), ("CreateEndpoint", "EndpointName"))
            for body in self.stand_in.calls(action)
        ]
        return sorted({n for n in names if names.count(n) > 1})

    def from_program(self, declared: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (model,), (config,) = declared["aws:sagemaker/model:Model"], declared["aws:sagemaker/endpointConfiguration:EndpointConfiguration"]
        (target,), (policy,) = declared["aws:appautoscaling/target:Target"], declared["aws:appautoscaling/policy:Policy"]
        variant, env = config["productionVariants"][0], model["primaryContainer"]["environment"]
        return {
            "instance_type": variant["instanceType"],
            "instance_count": variant["initialInstanceCount"],
            "min_replicas": target["minCapacity"],
            "max_replicas": target["maxCapacity"],
            "concurrency": policy["targetTrackingScalingPolicyConfiguration"]["targetValue"],
            "model_id": env["HF_MODEL_ID"],
            "max_model_len": env["OPTION_MAX_MODEL_LEN"],
            "environment": env,
            "tags": model["tags"],
            "vllm_options": {k.removeprefix("OPTION_").lower().replace("_", "-"): v for k, v in env.items() if k.startswith("OPTION_")},
        }

    def received(self) -> dict[str, Any]:
        (model,) = self.stand_in.calls("CreateModel")
        (config,) = self.stand_in.calls("CreateEndpointConfig")
        (target,) = self.stand_in.calls("RegisterScalableTarget")
        (policy,) = self.stand_in.calls("PutScalingPolicy")
        variant = config["ProductionVariants"][0]
        env = model["PrimaryContainer"]["Environment"]
        return {
            "instance_type": variant["InstanceType"],
            "instance_count": variant["InitialInstanceCount"],
            "min_replicas": target["MinCapacity"],
            "max_replicas": target["MaxCapacity"],
            "concurrency": policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
            "model_id": env["HF_MODEL_ID"],
            "max_model_len": env["OPTION_MAX_MODEL_LEN"],
            "environment": env,
            "vllm_options": {k.removeprefix("OPTION_").lower().replace("_", "-"): v for k, v in env.items() if k.startswith("OPTION_")},
            "tags": {t["Key"]: t["Value"] for t in model["Tags"]},
            "deployment_request": json.dumps(config),
        }

    def store_weights(self, files: dict[str, bytes]) -> str | None:
        s3 = self.stand_in.client("s3")
        s3.create_bucket(Bucket="my-models")
        for name, body in files.items():
            s3.put_object(Bucket="my-models", Key=f"llama-ft/{name}", Body=body)
        return "s3://my-models/llama-ft/"

    def private_block(self) -> str | None:
        ec2 = self.stand_in.client("ec2")
        vpc, subnets, group = aws_vpc(ec2, "10.8")
        s3_gateway(ec2, vpc, subnets)  # SageMaker copies the model data through the subnets
        self.private_ids = [*subnets, group, "EnableNetworkIsolation"]
        self.private_words = [*subnets, group, "network isolation: it makes no outbound call"]
        return f"    subnets: [{', '.join(subnets)}]\n    security_groups: [{group}]\n    network_isolation: true\n"

    # Network isolation: the container reaches nothing; calls still go through the public runtime API.
    private_needs_weights: ClassVar[bool] = True
    private_inbound: ClassVar[bool] = False

    def private_received(self) -> list[str]:
        (model,) = self.stand_in.calls("CreateModel")
        vpc = model.get("VpcConfig") or {}
        return [*vpc.get("Subnets", []), *vpc.get("SecurityGroupIds", []), *(["EnableNetworkIsolation"] if model.get("EnableNetworkIsolation") else [])]

    def private_declared(self, declared: dict[str, list[dict[str, Any]]]) -> list[str]:
        (model,) = declared["aws:sagemaker/model:Model"]
        vpc = model.get("vpcConfig") or {}
        return [*vpc.get("subnets", []), *vpc.get("securityGroupIds", []), *(["EnableNetworkIsolation"] if model.get("enableNetworkIsolation") else [])]

    def stored_weights(self) -> dict[str, int]:
        """The objects under the staged prefix, by name: what a staging run has landed so far."""
        pages = self.stand_in.client("s3").get_paginator("list_objects_v2").paginate(Bucket="my-models", Prefix="llama-ft/")
        return {item["Key"].removeprefix("llama-ft/"): item["Size"] for page in pages for item in page.get("Contents", [])}

    def weights_received(self) -> str | None:
        (model,) = self.stand_in.calls("CreateModel")
        return model["PrimaryContainer"].get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri")

    def weights_declared(self, declared: dict[str, list[dict[str, Any]]]) -> str | None:
        (model,) = declared["aws:sagemaker/model:Model"]
        sources = model["primaryContainer"].get("modelDataSource", {}).get("s3DataSources", [])
        return sources[0]["s3Uri"] if sources else None


@dataclass
class AzureCloud(_RestStandInHarness):
    secrets_in_environment: ClassVar[bool] = False  # workspace connections, referenced by the deployment
    stand_in: AzureStandIn
    name: str = "azure"
    replacement_gpu: str = "A100-80GB"
    endpoint_type: str = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    capacity_text: str = "OutOfCapacity"
    quota_text: str = "QuotaExceeded"
    secrets_stay_out_of_the_deployment: bool = True
    endpoint_kind: ClassVar[str] = "endpoint"
    counted: ClassVar[tuple[str, ...] | None] = ("environment", "endpoint", "deployment")
    serving_inventory: ClassVar[str] = "deployments"
    serving_request: ClassVar[tuple[str, str]] = ("PUT", "deployment")
    delete_request: ClassVar[tuple[str, str]] = ("DELETE", "endpoint")

    stages_weights: ClassVar[bool] = True
    exports_weights: ClassVar[bool] = True

    def private_block(self) -> str | None:
        self.private_ids = ["disabled"]
        self.private_words = ["only through the workspace's private endpoint (public_network_access disabled)"]
        return "    public_network_access: disabled\n"

    def private_received(self) -> list[str]:
        endpoint = self.stand_in.received("PUT", "endpoint")[0]  # the create; later PUTs move traffic
        access = endpoint["properties"].get("publicNetworkAccess")
        return [access.lower()] if access else []

    def private_declared(self, declared: dict[str, list[dict[str, Any]]]) -> list[str]:
        (endpoint,) = declared["azure-native:machinelearningservices:OnlineEndpoint"]
        access = endpoint["properties"].get("publicNetworkAccess")
        return [access.lower()] if access else []

    def hold_serving(self) -> None:
        self.stand_in.faults.deployment_polls = 10**6

    def store_weights(self, files: dict[str, bytes]) -> str | None:
        with self.stand_in._lock:
            self.stand_in.blobs.update({f"{BLOB_CONTAINER}/llama-ft/{name}": (body, {}) for name, body in files.items()})
        return "azureml://datastores/workspaceblobstore/paths/llama-ft/"

    def stored_weights(self) -> dict[str, int]:
        prefix = f"{BLOB_CONTAINER}/llama-ft/"
        with self.stand_in._lock:
            return {name[len(prefix) :]: len(data) for name, (data, _) in self.stand_in.blobs.items() if name.startswith(prefix)}

    def weights_received(self) -> str | None:
        """The datastore folder of the model asset the deployment names, in the short form."""
        (deployment,) = self.stand_in.received("PUT", "deployment")
        model_id = deployment["properties"].get("model")
        if not model_id:
            return None
        name, version = model_id.rsplit("/models/", 1)[1].split("/versions/")
        return _short_datastore_path(self.stand_in.models[(name, version)]["properties"]["modelUri"])

    def weights_declared(self, declared: dict[str, list[dict[str, Any]]]) -> str | None:
        """The datastore folder of the model asset the program declares, which its deployment names."""
        models = declared.get("azure-native:machinelearningservices:ModelVersion", [])
        if not models:
            return None
        (model,), (deployment,) = models, declared["azure-native:machinelearningservices:OnlineDeployment"]
        assert deployment["properties"].get("model")  # the deployment mounts the asset
        assert re.match(r"azureml://subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/[^/]+/datastores/", model["properties"]["modelUri"])  # the long form
        return _short_datastore_path(model["properties"]["modelUri"])

    def set_quota(self, instance_type: str, available: int) -> None:
        self.stand_in.faults.family_cores[FAMILIES[instance_type].replace(" ", "")] = available * vcpus(instance_type)

    def autoscaling_target(self) -> Any:
        (setting,) = self.stand_in.autoscale.values()
        return [rule["metricTrigger"]["threshold"] for rule in setting["properties"]["profiles"][0]["rules"]]

    def tags(self) -> dict[str, dict[str, str]]:
        stand_in = self.stand_in
        return {
            **{f"endpoint {k}": e["tags"] for k, e in stand_in.endpoints.items()},
            **{f"deployment {e}/{d}": r["tags"] for (e, d), r in stand_in.deployments.items()},
            **{f"autoscale {k}": a.get("tags", {}) for k, a in stand_in.autoscale.items()},
        }

    quota_name: ClassVar[str] = "Family (dedicated cores)"

    program_types: tuple[str, ...] = (
        "azure-native:machinelearningservices:WorkspaceConnection",
        "azure-native:machinelearningservices:EnvironmentVersion",
        "azure-native:machinelearningservices:OnlineEndpoint",
        "azure-native:machinelearningservices:OnlineDeployment",
        "azure-native:monitor:AutoscaleSetting",
        "azure-native:storage:Blob",
    )

    def block(self) -> str:
        return (
            f"  azure:\n    region: eastus\n    subscription_id: {SUBSCRIPTION}\n    resource_group: {RESOURCE_GROUP}\n"
            f"    workspace: {WORKSPACE}\n    endpoint: {self.stand_in.url}\n"
        )

    def environment(self) -> dict[str, str]:
        # DefaultAzureCredential's managed-identity step (App Service flow) asks the stand-in; the
        # test `az` (tests/bin/az) finds Resource Manager and the subscription as `az login` would.
        return {
            "IDENTITY_ENDPOINT": f"{self.stand_in.url}/msi/token",
            "IDENTITY_HEADER": "test",
            "AZURE_RESOURCE_MANAGER_URL": self.stand_in.url,
            "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        }

    def throttle(self) -> None:
        self.stand_in.faults.throttle_next = 2
        self.stand_in.faults.retry_after = 1

    def throttling_was_respected(self, stderr: str) -> bool:
        """Every request after a 429 came at least Retry-After seconds later."""
        requests = self.stand_in.requests
        throttled = [i for i, r in enumerate(requests) if r.kind != "token"][:2]
        return all(requests[i + 1].at - requests[i].at >= 0.95 for i in throttled)

    def delete_endpoint_by_hand(self, name: str) -> None:
        self.stand_in.delete_endpoint_by_hand(self.endpoint_name(name))

    def endpoint_name(self, deployment: str) -> str:
        return self.stand_in.endpoint_named(deployment)  # unique in the region: the name plus a hash

    unknown_image: ClassVar[str] = "docker.io/nobody/knows:1"
    unknown_image_text: ClassVar[str] = "ImageBuildFailure"

    def break_contract(self, monkeypatch: Any) -> str:
        """vLLM's stock image with the model in environment variables it never reads: it starts
        vLLM's default model, passes its health check, and answers as the wrong model."""
        monkeypatch.setattr(providers.azure, "DOCKERFILE", "FROM {image}\n")
        return "answers as model 'Qwen/Qwen3-0.6B', not the declared 'meta-llama/Llama-3.2-1B-Instruct'"

    def from_program(self, declared: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (deployment,), (autoscale,) = declared["azure-native:machinelearningservices:OnlineDeployment"], declared["azure-native:monitor:AutoscaleSetting"]
        properties, capacity = deployment["properties"], autoscale["profiles"][0]["capacity"]
        env = properties["environmentVariables"]
        return {
            "instance_type": properties["instanceType"],
            "instance_count": deployment["sku"]["capacity"],
            "min_replicas": int(capacity["minimum"]),
            "max_replicas": int(capacity["maximum"]),
            "concurrency": properties["requestSettings"]["maxConcurrentRequestsPerInstance"],
            "model_id": env["MODEL_NAME"],
            "max_model_len": flags(shlex.split(env["VLLM_ARGS"]))["max-model-len"],
            "environment": env,
            "tags": deployment["tags"],
            "vllm_options": flags(shlex.split(env["VLLM_ARGS"])),
        }

    def received(self) -> dict[str, Any]:
        (deployment,) = self.stand_in.received("PUT", "deployment")
        (autoscale,) = self.stand_in.received("PUT", "autoscale")
        properties = deployment["properties"]
        env = properties["environmentVariables"]
        capacity = autoscale["properties"]["profiles"][0]["capacity"]
        return {
            "instance_type": properties["instanceType"],
            "instance_count": deployment["sku"]["capacity"],
            "min_replicas": int(capacity["minimum"]),
            "max_replicas": int(capacity["maximum"]),
            "concurrency": properties["requestSettings"]["maxConcurrentRequestsPerInstance"],
            "model_id": env["MODEL_NAME"],
            "max_model_len": flags(shlex.split(env["VLLM_ARGS"]))["max-model-len"],
            "environment": env,
            "vllm_options": flags(shlex.split(env["VLLM_ARGS"])),
            "tags": deployment["tags"],
            "deployment_request": json.dumps(deployment),
        }


@dataclass
class GcpCloud(_RestStandInHarness):
    stand_in: GcpStandIn
    name: str = "gcp"
    replacement_gpu: str = "A100-40GB"
    endpoint_type: str = "aiplatform.googleapis.com/Endpoint"
    capacity_text: str = "does not have enough resources available"
    quota_text: str = "exceed quota limits"
    # Vertex AI has no secret references in a serving container's environment either.
    secrets_stay_out_of_the_deployment: bool = False
    endpoint_kind: ClassVar[str] = "endpoint"
    serving_inventory: ClassVar[str] = "deployed_models"
    serving_request: ClassVar[tuple[str, str]] = ("POST", "deploy")
    delete_request: ClassVar[tuple[str, str]] = ("POST", "undeploy")

    def hold_serving(self) -> None:
        self.stand_in.faults.deploy_polls = 10**6

    def autoscaling_target(self) -> Any:
        (model,) = [d for e in self.stand_in.endpoints.values() for d in e["deployedModels"]]
        return model["dedicatedResources"]["autoscalingMetricSpecs"]

    def tags(self) -> dict[str, dict[str, str]]:
        return {
            **{f"endpoint {k}": e.get("labels", {}) for k, e in self.stand_in.endpoints.items()},
            **{f"model {k}": m.get("labels", {}) for k, m in self.stand_in.models.items()},
        }

    def set_quota(self, instance_type: str, available: int) -> None:
        accelerator, counts = next(spec for prefix, spec in gcp.MACHINES.items() if instance_type.startswith(prefix))
        size = int("".join(c for c in instance_type.rsplit("-", 1)[-1] if c.isdigit()))
        self.stand_in.faults.serving_gpus[accelerator] = available * counts[size]

    quota_name: ClassVar[str] = "custom_model_serving_nvidia"

    program_types: tuple[str, ...] = ("gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment",)

    def block(self) -> str:
        return f"  gcp:\n    region: us-central1\n    project: {PROJECT}\n    endpoint: {self.stand_in.url}\n    service_account: {SERVICE_ACCOUNT}\n"

    stages_weights: ClassVar[bool] = True

    def private_block(self) -> str | None:
        network = f"projects/{PROJECT}/global/networks/serving"
        self.private_ids = [PROJECT, network]
        self.private_words = [f"only through Private Service Connect from {PROJECT}, at the forwarding rule Vertex AI makes in {network}"]
        return f"    private_service_connect: [{PROJECT}]\n    private_service_connect_network: {network}\n"

    def private_received(self) -> list[str]:
        (endpoint,) = [body for body in self.stand_in.received("endpoints") if body and body.get("displayName")]  # the create (a list sends no body)
        config = endpoint.get("privateServiceConnectConfig") or {}
        networks = [automation["network"] for automation in config.get("pscAutomationConfigs", [])]
        return [*config.get("projectAllowlist", []), *networks] if config.get("enablePrivateServiceConnect") else []

    def private_declared(self, declared: dict[str, list[dict[str, Any]]]) -> list[str]:
        (endpoint,) = declared["gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment"]
        config = endpoint["endpointConfig"].get("privateServiceConnectConfig") or {}
        automation = config.get("pscAutomationConfigs")
        return [*config.get("projectAllowlists", []), *([automation["network"]] if automation else [])] if config.get("enablePrivateServiceConnect") else []

    def store_weights(self, files: dict[str, bytes]) -> str | None:
        with self.stand_in._lock:
            bucket = self.stand_in.buckets.setdefault("my-models", {})
            bucket.update({f"llama-ft/{name}": body for name, body in files.items()})
        return "gs://my-models/llama-ft/"

    def stored_weights(self) -> dict[str, int]:
        return {name: len(data) for name, data in self.stand_in.gcs_folder("gs://my-models/llama-ft/").items()}

    def weights_received(self) -> str | None:
        (upload,) = self.stand_in.received("upload")
        (deploy,) = self.stand_in.received("deploy")
        assert deploy["deployedModel"].get("serviceAccount") == SERVICE_ACCOUNT  # the container must read the bucket as someone who may
        model = flags(upload["model"]["containerSpec"]["args"])["model"]
        return model if model.startswith("gs://") else None  # else the hub repository

    def environment(self) -> dict[str, str]:
        # Application Default Credentials: an authorized_user file whose token_uri is the stand-in.
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(self.stand_in.credentials_file)}

    def throttle(self) -> None:
        self.stand_in.faults.throttle_next = 4  # google-api-core does not retry 429 here; the engine does

    def delete_endpoint_by_hand(self, name: str) -> None:
        self.stand_in.delete_endpoint_by_hand(name)

    unknown_image: ClassVar[str] = "us-docker.pkg.dev/nobody/knows:1"
    unknown_image_text: ClassVar[str] = "Failed to pull the serving container image"

    def break_contract(self, monkeypatch: Any) -> str:
        """An option vLLM 0.11.0 does not have: its argument parser exits 2."""
        original = providers.gcp._vllm_arguments
        monkeypatch.setattr(providers.gcp, "_vllm_arguments", lambda plan: [*original(plan), "--not-a-vllm-option", "1"])
        return "unrecognized arguments: --not-a-vllm-option"

    def from_program(self, declared: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (endpoint,) = declared[self.program_types[0]]
        container = endpoint["modelConfig"]["containerSpec"]
        environment = {e["name"]: e["value"] for e in container["envs"]}  # pulumi-gcp's name for the API's `env`
        # pulumi-gcp's Model Garden deployment takes no labels: the tags are not declared.
        return _vertex_values(container, endpoint["deployConfig"]["dedicatedResources"], environment)

    def received(self) -> dict[str, Any]:
        (upload,) = self.stand_in.received("upload")
        (deploy,) = self.stand_in.received("deploy")
        container = upload["model"]["containerSpec"]
        environment = {e["name"]: e["value"] for e in container.get("env", [])}
        return {
            **_vertex_values(container, deploy["deployedModel"]["dedicatedResources"], environment),
            "tags": upload["model"]["labels"],
            "deployment_request": json.dumps(deploy),
        }


def aws_vpc(ec2: Any, cidr: str) -> tuple[str, list[str], str]:
    """A VPC (`cidr`.0.0/16) with two subnets in two zones, as the SageMaker guide asks (host-vpc.md),
    and a security group; no route out."""
    vpc = ec2.create_vpc(CidrBlock=f"{cidr}.0.0/16")["Vpc"]["VpcId"]
    zones = ((1, "a"), (2, "b"))
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.{i}.0/24", AvailabilityZone=f"{AWS_REGION}{z}")["Subnet"]["SubnetId"] for i, z in zones]
    group = ec2.create_security_group(GroupName="llama-serving", Description="SageMaker endpoint", VpcId=vpc)["GroupId"]
    return vpc, subnets, group


def s3_gateway(ec2: Any, vpc: str, subnets: list[str], table: str | None = None) -> str:
    """A gateway endpoint for S3 on a route table (`table`, or a new one for `subnets`), as the
    SageMaker guide asks of subnets without internet (host-vpc.md, "Create an Amazon S3 VPC
    Endpoint"): EC2 adds the route to the region's S3 prefix list. The endpoint's id."""
    if table is None:
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        for subnet in subnets:
            ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{AWS_REGION}.s3", VpcEndpointType="Gateway", RouteTableIds=[table])
    return endpoint["VpcEndpoint"]["VpcEndpointId"]


def _vertex_values(container: dict[str, Any], dedicated: dict[str, Any], environment: dict[str, str]) -> dict[str, Any]:
    """What a Vertex AI model and its deployment declare, as the API and pulumi-gcp both shape them."""
    args = flags(container["args"])
    return {
        "instance_type": dedicated["machineSpec"]["machineType"],
        "instance_count": dedicated["minReplicaCount"],
        "min_replicas": dedicated["minReplicaCount"],
        "max_replicas": dedicated["maxReplicaCount"],
        "concurrency": int(args["max-num-seqs"]),
        "model_id": args["model"],
        "max_model_len": args["max-model-len"],
        "environment": environment,
        "vllm_options": args,
    }


@dataclass
class OciCloud(_RestStandInHarness):
    stand_in: OciStandIn
    name: str = "oci"
    replacement_gpu: str = "L40S"
    endpoint_type: str = "oci:DataScience/ModelDeployment"
    capacity_text: str = "Out of host capacity"
    quota_text: str = "LimitExceeded"
    # OCI model deployments take secrets only as plain environment variables too.
    secrets_stay_out_of_the_deployment: bool = False
    endpoint_kind: ClassVar[str] = "model_deployment"
    serving_inventory: ClassVar[str] = "model_deployments"
    serving_request: ClassVar[tuple[str, str]] = ("POST", "deployments")
    delete_request: ClassVar[tuple[str, str]] = ("DELETE", "deployment")
    program_types: tuple[str, ...] = ("oci:DataScience/model:Model", "oci:DataScience/modelDeployment:ModelDeployment")

    def block(self) -> str:
        return (
            f"  oci:\n    region: us-ashburn-1\n    compartment_id: {COMPARTMENT}\n    project_id: {OCI_PROJECT}\n"
            f"    subnet_id: {SUBNET}\n    image: {OCIR_IMAGE}\n    endpoint: {self.stand_in.url}\n"
        )

    def environment(self) -> dict[str, str]:
        config = str(self.stand_in.write_config())
        return {"OCI_CONFIG_FILE": config, "OCI_CLI_CONFIG_FILE": config}  # the SDK's variable, and the CLI's

    stages_weights: ClassVar[bool] = True

    def private_block(self) -> str | None:
        endpoint = self.stand_in.make_private_endpoint()
        self.private_ids = [endpoint]
        self.private_words = [f"only through Data Science private endpoint {endpoint}"]
        return f"    private_endpoint_id: {endpoint}\n"

    def private_received(self) -> list[str]:
        (deployment,) = self.stand_in.received("POST", "deployments")
        private = deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["instanceConfiguration"].get("privateEndpointId")
        return [private] if private else []

    def private_declared(self, declared: dict[str, list[dict[str, Any]]]) -> list[str]:
        (deployment,) = declared["oci:DataScience/modelDeployment:ModelDeployment"]
        private = deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["instanceConfiguration"].get("privateEndpointId")
        return [private] if private else []

    def store_weights(self, files: dict[str, bytes]) -> str | None:
        self.stand_in.make_bucket("my-models")
        with self.stand_in._lock:
            for name, body in files.items():
                self.stand_in.put_object("my-models", f"llama-ft/{name}", body)
        return f"oci://my-models@{NAMESPACE}/llama-ft/"

    def stored_weights(self) -> dict[str, int]:
        return {name.removeprefix("llama-ft/"): len(data) for name, data in self.stand_in.objects_under("my-models", "llama-ft/").items()}

    def weights_received(self) -> str | None:
        """The Object Storage folder the deployed model references (its description artifact)."""
        (deployment,) = self.stand_in.received("POST", "deployments")
        model = self.stand_in.models[deployment["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["modelId"]]
        description = model.get("artifact")
        if not isinstance(description, dict) or description.get("type") != "modelOSSReferenceDescription":
            return None  # a zip artifact: the hub's model
        (described,) = description["models"]
        return f"oci://{described['bucketName']}@{described['namespace']}/{described['prefix']}"

    def throttle(self) -> None:
        self.stand_in.faults.throttle_next = 4  # the SDK's retries are off; the engine retries

    def delete_endpoint_by_hand(self, name: str) -> None:
        self.stand_in.delete_deployment_by_hand(name)

    unknown_image: ClassVar[str] = "iad.ocir.io/llamadeploy/nobody-knows:1"
    unknown_image_text: ClassVar[str] = "Failed to pull the container image"

    def use_image(self, stack: Path, image: str) -> None:
        stack.write_text(stack.read_text().replace(f"image: {OCIR_IMAGE}", f"image: {image}"))

    def autoscaling_target(self) -> Any:
        (live,) = [d for d in self.stand_in.deployments.values() if d["lifecycleState"] == "ACTIVE"]
        return live["modelDeploymentConfigurationDetails"]["modelConfigurationDetails"]["scalingPolicy"]

    def tags(self) -> dict[str, dict[str, str]]:
        live = [*self.stand_in.models.values(), *self.stand_in.deployments.values()]
        return {r["id"]: r.get("freeformTags", {}) for r in live if r["lifecycleState"] != "DELETED"}

    def set_quota(self, instance_type: str, available: int) -> None:
        self.stand_in.faults.gpu_limit[str(oci.gpu_limit_of(instance_type))] = available * int(instance_type.rsplit(".", 1)[-1])

    quota_name: ClassVar[str] = "data-science ds-gpu"

    def break_contract(self, monkeypatch: Any) -> str:
        """`vllm serve MODEL` in cmd: OCI appends cmd to the image's ENTRYPOINT, which is vLLM's server already."""
        original = providers.oci._vllm_command
        monkeypatch.setattr(providers.oci, "_vllm_command", lambda plan: ["vllm", "serve", plan.hf_repo, *original(plan)])
        return "unrecognized arguments: serve"

    def from_program(self, declared: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (created,) = declared["oci:DataScience/modelDeployment:ModelDeployment"]
        return _oci_values(created, "cmds")  # pulumi-oci's name for the API's `cmd`

    def received(self) -> dict[str, Any]:
        (created,) = self.stand_in.received("POST", "deployments")
        return {**_oci_values(created, "cmd"), "deployment_request": json.dumps(created)}


def _oci_values(created: dict[str, Any], cmd: str) -> dict[str, Any]:
    """What a model deployment declares, as the API and pulumi-oci both shape it."""
    configuration = created["modelDeploymentConfigurationDetails"]
    model, environment = configuration["modelConfigurationDetails"], configuration["environmentConfigurationDetails"]
    policy = model["scalingPolicy"]["autoScalingPolicies"][0]
    args = flags(environment[cmd])
    return {
        "instance_type": model["instanceConfiguration"]["instanceShapeName"],
        "instance_count": policy["initialInstanceCount"],
        "min_replicas": policy["minimumInstanceCount"],
        "max_replicas": policy["maximumInstanceCount"],
        "concurrency": int(args["max-num-seqs"]),
        "model_id": args["model"],
        "max_model_len": args["max-model-len"],
        "environment": environment["environmentVariables"],
        "vllm_options": args,
        "tags": created["freeformTags"],
    }


@dataclass
class FakeCloud(_RestStandInHarness):
    """The test plugin's cloud: the plugin is registered through its entry point (conftest's `fake_plugin`)."""

    secrets_in_environment: ClassVar[bool] = False  # the plugin declares no serving contract, so plan says nothing of it
    stand_in: FakeStandIn
    name: str = "fake"
    replacement_gpu: str = "L40S"
    endpoint_type: str = "fake::Endpoint"
    capacity_text: str = "no capacity for"
    quota_text: str = "QuotaExceeded"
    # Fake serving has no secret store: secrets travel in the endpoint's environment.
    secrets_stay_out_of_the_deployment: bool = False
    endpoint_kind: ClassVar[str] = "endpoint"
    serving_inventory: ClassVar[str] = "endpoints"
    program_types: tuple[str, ...] = ("fake:index:Endpoint",)
    quota_refused_at_first_create: ClassVar[bool] = True  # one resource, refused at its PUT

    def block(self) -> str:
        return "  fake:\n    region: moon-1\n    zone: crater-7\n"

    def environment(self) -> dict[str, str]:
        return {fake_provider.URL_ENV: self.stand_in.url, fake_provider.KEY_ENV: fake.API_KEY}

    def throttle(self) -> None:
        self.stand_in.faults.throttle_next = 3

    def delete_endpoint_by_hand(self, name: str) -> None:
        self.stand_in.endpoints.pop(("moon-1", self.endpoint_name(name)))

    def _requests(self, method: str, kind: str) -> int:
        return sum(1 for verb, path, _ in list(self.stand_in.requests) if verb == method and "/endpoints/" in path)

    serving_request: ClassVar[tuple[str, str]] = ("PUT", "endpoint")
    delete_request: ClassVar[tuple[str, str]] = ("DELETE", "endpoint")
    quota_name: ClassVar[str] = "instances"

    def set_quota(self, instance_type: str, available: int) -> None:
        self.stand_in.faults.instance_quota[instance_type] = available

    def autoscaling_target(self) -> Any:
        (endpoint,) = self.stand_in.endpoints.values()
        return endpoint["target"]

    def tags(self) -> dict[str, dict[str, str]]:
        return {name: e["tags"] for (_, name), e in self.stand_in.endpoints.items()}

    def endpoint_name(self, deployment: str) -> str:
        return f"{deployment}-moon-1"

    unknown_image: ClassVar[str] = "registry.example/nobody/knows:1"
    unknown_image_text: ClassVar[str] = "cannot pull image"

    def break_contract(self, monkeypatch: Any) -> str:
        """An option vLLM 0.11.0 does not have: its argument parser exits 2."""
        original = fake_provider.vllm_arguments
        monkeypatch.setattr(fake_provider, "vllm_arguments", lambda plan: [*original(plan), "--not-a-vllm-option", "1"])
        return "unrecognized arguments: --not-a-vllm-option"

    def received(self) -> dict[str, Any]:
        (sent,) = self.stand_in.received("PUT")
        return {
            **_fake_values(sent["instance_type"], sent["args"], sent["env"], sent["min_replicas"], sent["max_replicas"]),
            "tags": sent["tags"],
            "deployment_request": json.dumps(sent),
        }

    def from_program(self, declared: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        (endpoint,) = declared[self.program_types[0]]
        values = _fake_values(endpoint["instanceType"], endpoint["args"], endpoint["env"], endpoint["minReplicas"], endpoint["maxReplicas"])
        return {**values, "tags": endpoint["tags"]}


def _fake_values(instance_type: str, args: list[str], env: dict[str, str], min_replicas: int, max_replicas: int) -> dict[str, Any]:
    options = flags(args)
    return {
        "instance_type": instance_type,
        "instance_count": min_replicas,
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "concurrency": int(options["max-num-seqs"]),
        "model_id": options["model"],
        "max_model_len": options["max-model-len"],
        "environment": env,
        "vllm_options": options,
    }


HARNESSES: dict[str, type] = {"aws": AwsCloud, "azure": AzureCloud, "gcp": GcpCloud, "oci": OciCloud, "fake": FakeCloud}


def start_stand_in(name: str, internet: Internet) -> Any:
    """One cloud's stand-in; Azure and OCI serve inference, Google Cloud Quotas and OCI Limits on
    hosts of their own, behind `internet` (SageMaker's runtime and Vertex AI's rawPredict answer on
    the API endpoint the tests set)."""
    if name == "aws":
        return AwsStandIn()
    if name == "fake":
        return FakeStandIn()
    return {"azure": AzureStandIn, "gcp": GcpStandIn, "oci": OciStandIn}[name](internet)


def _short_datastore_path(uri: str) -> str:
    """An azureml:// datastore path in azure-ai-ml's short form (it sends the long one)."""
    return "azureml://" + uri[uri.index("datastores/") :]
