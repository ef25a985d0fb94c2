"""Shared fixtures: stack files written on the fly and a small price catalog with known numbers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.declared.stackfile import load_stack
from orchestrator.planning.planner import plan
from orchestrator.pricing.catalog import Catalog, load_catalog
from providers import registry
from tests import fake_provider, services
from tests.clouds import HARNESSES, HF_TOKEN, Cloud, stand_in_environment, start_stand_in
from tests.emulators import fake
from tests.emulators.aws import AwsStandIn
from tests.emulators.azure import AzureStandIn
from tests.emulators.fake import FakeStandIn
from tests.emulators.gcp import GcpStandIn
from tests.emulators.hub import HubStandIn
from tests.emulators.internet import Internet
from tests.emulators.oci import OciStandIn

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture(autouse=True)
def wide_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables render at the width llamadeploy uses off a terminal, whatever terminal (or xdist
    worker, which inherits a narrow COLUMNS) runs the tests."""
    monkeypatch.setenv("COLUMNS", "160")


@pytest.fixture
def mini_catalog_path() -> Path:
    return DATA / "mini-offers.csv"


@pytest.fixture
def mini_catalog(mini_catalog_path: Path) -> Catalog:
    return load_catalog(mini_catalog_path)


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text (dedented) to a stack file and return its path."""

    def write(text: str, name: str = "stack.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


FAKE_OFFER = (
    "fake,Fake serving,moon-1,fake.gpu1,L4,1,24,4,16,0.50,,managed-service list price,test,2026-11-01\n"
    "fake,Fake serving,moon-1,fake.gpu2,L40S,1,48,8,32,0.90,,managed-service list price,test,2026-11-01\n"
    "fake,Fake serving,moon-2,fake.gpu1,L4,1,24,4,16,0.55,,managed-service list price,test,2026-11-01\n"
    "fake2,Fake serving,mars-1,f2.gpu1,L4,1,24,4,16,0.45,,managed-service list price,test,2026-11-01\n"
    "planonly,Plan-only serving,moon-1,po.gpu1,L4,1,24,4,16,0.40,,managed-service list price,test,2026-11-01\n"
    "needsdk,Fake serving,moon-1,ns.gpu1,L4,1,24,4,16,0.45,,managed-service list price,test,2026-11-01\n"
)


@pytest.fixture
def fake_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mini_catalog_path: Path, fake_stand_in: FakeStandIn) -> Iterator[Path]:
    """Install a distribution whose only content is an entry point naming tests.fake_provider, and
    point the plugin at its cloud's stand-in (reset)."""
    dist = tmp_path / "site" / "llamadeploy_fake-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: llamadeploy-fake\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[llamadeploy.providers]\nfake = tests.fake_provider:FakeProvider\nfake2 = tests.fake_provider:OtherFakeProvider\nplanonly = tests.fake_provider:PlanOnlyService\n"
        "needsdk = tests.fake_provider:NeedsSdkProvider\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.forget_plugins()
    catalog = tmp_path / "offers.csv"
    catalog.write_text(mini_catalog_path.read_text() + FAKE_OFFER)
    fake_stand_in.reset()
    for key, value in {
        "LLAMADEPLOY_CATALOG": str(catalog),
        "LLAMADEPLOY_STATE": str(tmp_path / "state.db"),
        "LLAMADEPLOY_POLL_SECONDS": "0.001",
        "HF_TOKEN": HF_TOKEN,
        fake_provider.URL_ENV: fake_stand_in.url,
        fake_provider.KEY_ENV: fake.API_KEY,
    }.items():
        monkeypatch.setenv(key, value)
    yield tmp_path
    registry.forget_plugins()


@pytest.fixture(scope="session")
def internet() -> Iterator[Internet]:
    """The stand-ins' public hosts behind one HTTPS proxy (inference and storage URLs)."""
    proxy = Internet()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def hub_stand_in(internet: Internet) -> HubStandIn:
    return HubStandIn(internet)


@pytest.fixture
def hub(hub_stand_in: HubStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubStandIn:
    """The Hugging Face Hub on the test internet (emptied), with downloads cached under the test's folder."""
    hub_stand_in.reset()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return hub_stand_in


def _stand_in(name: str, internet: Internet) -> Iterator[Any]:
    stand_in = start_stand_in(name, internet)
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="session")
def aws_stand_in(internet: Internet) -> Iterator[AwsStandIn]:
    yield from _stand_in("aws", internet)


@pytest.fixture(scope="session")
def azure_stand_in(internet: Internet) -> Iterator[AzureStandIn]:
    yield from _stand_in("azure", internet)


@pytest.fixture(scope="session")
def gcp_stand_in(internet: Internet) -> Iterator[GcpStandIn]:
    yield from _stand_in("gcp", internet)


@pytest.fixture(scope="session")
def fake_stand_in(internet: Internet) -> Iterator[FakeStandIn]:
    yield from _stand_in("fake", internet)


@pytest.fixture(scope="session")
def oci_stand_in(internet: Internet) -> Iterator[OciStandIn]:
    yield from _stand_in("oci", internet)


def _harness(name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cloud:
    """One cloud's stand-in, reset, with an environment that reaches it and nothing else. The test
    plugin's cloud joins through its entry point, like any third-party provider."""
    if name == "fake":
        request.getfixturevalue("fake_plugin")
    for key, value in {**stand_in_environment(tmp_path / "state.db"), **request.getfixturevalue("internet").environment()}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    stand_in = request.getfixturevalue(f"{name}_stand_in")
    stand_in.reset()
    harness = HARNESSES[name](stand_in)
    for key, value in harness.environment().items():
        monkeypatch.setenv(key, value)
    return harness


@pytest.fixture(params=list(HARNESSES))
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cloud:
    return _harness(request.param, request, monkeypatch, tmp_path)


@pytest.fixture(params=[("aws", "azure"), ("azure", "gcp"), ("gcp", "oci"), ("oci", "fake"), ("fake", "aws")], ids="->".join)
def pair(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Cloud, Cloud]:
    """A source and a target cloud, each with its stand-in reset and reachable."""
    source, target = request.param
    return _harness(source, request, monkeypatch, tmp_path), _harness(target, request, monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[services.Postgres]:
    """A PostgreSQL server for the state backend tests: `.ci/run`'s, or one started here."""
    try:
        server = services.start_postgres()
    except services.ServiceFailed as exc:
        pytest.fail(f"the PostgreSQL state tests need a server: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[services.Azurite]:
    """Azurite's blob service for the state backend tests: `.ci/run`'s, or one started here."""
    try:
        server = services.start_azurite()
    except services.ServiceFailed as exc:
        pytest.fail(f"the Azure Blob state tests need Azurite: {exc}")
    yield server
    server.stop()


@pytest.fixture
def stack(cloud: Cloud, tmp_path: Path) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(
        "name: chat\nmodel: llama3.2-1b-instruct\nmax_context: 8192\nconcurrency: 8\n"
        "autoscaling: {min_replicas: 1, max_replicas: 3, target_concurrent_requests: 6}\n"
        "serving:\n  env: {VLLM_LOGGING_LEVEL: INFO}\ntags: {team: ml}\n" + cloud.placement()
    )
    return path


@pytest.fixture
def instance_type(cloud: Cloud, stack: Path) -> str:
    """The instance type the planner chooses for the stack on this cloud."""
    loaded = load_stack(stack)
    return plan(loaded, loaded.deployments[0], cloud.name, load_catalog()).offer.instance_type
