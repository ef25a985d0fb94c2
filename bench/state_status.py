"""`llamadeploy status` of 1,000 recorded deployments, on each state backend.

Fills a fresh store of each kind (SQLite, PostgreSQL, S3 on moto, Azure Blob Storage on Azurite,
the servers the tests use: tests/services.py) with N records and one journal entry each, then
times the real CLI's `status --output json` reading them back. The records are of deployments
still being created, so `status` asks no cloud: what is timed is the store.

    python bench/state_status.py [--deployments 1000] [--backends sqlite postgresql s3 az]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.lifecycle.record import Phase, Placed, PlanSnapshot, Record  # noqa: E402
from orchestrator.lifecycle.state import OperationKind, holder_name, open_state  # noqa: E402
from providers.base import Resource  # noqa: E402
from tests import services  # noqa: E402
from tests.clouds import cli_run  # noqa: E402
from tests.emulators.aws import CREDENTIALS  # noqa: E402


def _record(name: str) -> Record:
    endpoint = Resource("AWS::SageMaker::Endpoint", name)
    snapshot = PlanSnapshot("meta-llama/Llama-3.2-1B-Instruct", "ml.g6.xlarge", 1, 3, 0.8, False, (endpoint,))
    return Record(name, Phase.CREATING, {"name": name, "model": "llama3.2-1b-instruct"}, Placed("aws", "us-east-1", "abc", snapshot, {}))


def _stores(kinds: list[str], workdir: Path) -> tuple[dict[str, str], list[object]]:
    """A fresh store URL per backend, and the servers to stop afterwards."""
    urls, servers = {}, []
    for kind in kinds:
        if kind == "sqlite":
            urls[kind] = f"sqlite:///{workdir / 'state.db'}"
        elif kind == "postgresql":
            server = services.start_postgres()
            servers.append(server)
            os.environ[services.PASSWORD_ENV] = server.password
            urls[kind] = server.url(server.new_database())
        elif kind == "s3":
            from moto.moto_server.threaded_moto_server import ThreadedMotoServer

            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            servers.append(moto)
            host, port = moto.get_host_and_port()
            os.environ.update(CREDENTIALS)
            import boto3

            boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1").create_bucket(Bucket="llamadeploy-state")
            urls[kind] = f"s3://llamadeploy-state/bench?endpoint_url=http://{host}:{port}&region=us-east-1"
        elif kind == "az":
            from azure.storage.blob import BlobServiceClient

            azurite = services.start_azurite()
            servers.append(azurite)
            os.environ["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
            BlobServiceClient.from_connection_string(azurite.connection_string).create_container("state")
            urls[kind] = f"az://state/{uuid.uuid4().hex}"
    return urls, servers


def main() -> None:
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql", "s3", "az"])
    options = parser.parse_args()
    print(f"{'backend':<11} {'fill s':>7} {'status s':>9} {'rows':>6}  ({options.deployments} deployments, one journal entry each)")
    with tempfile.TemporaryDirectory() as workdir:
        urls, servers = _stores(options.backends, Path(workdir))
        try:
            for kind, url in urls.items():
                state = open_state(url)
                start = time.perf_counter()
                for index in range(options.deployments):
                    name = f"chat-{index:04d}"
                    state.put(_record(name))
                    state.begin(name, OperationKind.UP, "aws", holder_name())
                fill = time.perf_counter() - start
                state.close()
                start = time.perf_counter()
                code, out, err = cli_run("--state", url, "status", "--output", "json")
                took = time.perf_counter() - start
                if code:
                    raise SystemExit(f"status on {kind} failed: {err}")
                print(f"{kind:<11} {fill:7.2f} {took:9.2f} {len(json.loads(out)['deployments']):6d}")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
