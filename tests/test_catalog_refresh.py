"""`llamadeploy catalog refresh` against recorded answers of the clouds' public price APIs.

The answers in tests/data/prices are in each API's own format (Azure Retail Prices: `Items`,
`NextPageLink`; Oracle's price list: `items[].currencyCodeLocalizations[].prices[]`; the AWS
Price List bulk API: a region index, then `products` and `terms.OnDemand`), served over loopback
HTTP the way the real APIs answer the queries the providers send.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.pricing.catalog import load_catalog
from tests.clouds import cli_run

PRICES = Path(__file__).parent / "data" / "prices"


class _PriceApis(BaseHTTPRequestHandler):
    """Azure's Retail Prices API under /azure (two pages for eastus, empty elsewhere), Oracle's
    price list under /oci/ (the items of the part asked for), the AWS Price List's SageMaker
    files under /offers/ (a region index naming us-east-1 only) and the Cloud Billing Catalog's
    Compute Engine SKUs under /gcp/ (two pages, for the API key test-api-key only; written in the
    API's documented format, not recorded, with the A2 prices that reproduce the shipped catalog's
    and made-up ones for the others)."""

    asked: list[str]

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.asked.append(self.path)
        if url.path == "/azure":
            region = re.search(r"armRegionName eq '([^']+)'", query["$filter"][0])
            assert region, query
            if region.group(1) != "eastus":
                body = {"BillingCurrency": "USD", "Items": [], "NextPageLink": None, "Count": 0}
            elif "$skip" in query:
                body = json.loads((PRICES / "azure-retail-eastus-2.json").read_text())
            else:
                body = json.loads((PRICES / "azure-retail-eastus-1.json").read_text())
                following = urllib.parse.urlencode({"$filter": query["$filter"][0], "$skip": "100"}, quote_via=urllib.parse.quote)
                body["NextPageLink"] = f"http://{self.headers['Host']}/azure?{following}"
        elif url.path == "/oci/":
            recorded = json.loads((PRICES / "oci-products.json").read_text())
            body = {**recorded, "items": [item for item in recorded["items"] if item["partNumber"] == query["partNumber"][0]]}
            assert query["currencyCode"] == ["USD"]
        elif url.path == "/gcp/v1/services/6F81-5844-456A/skus":
            if self.headers.get("X-Goog-Api-Key") != "test-api-key":
                self.send_error(403, "Forbidden")
                return
            body = json.loads((PRICES / f"gcp-compute-skus-{2 if 'pageToken' in query else 1}.json").read_text())
            assert query.get("pageToken", [body.get("nextPageToken") or "CAEQ4x4aBmEyLTEyOQ"]) == ["CAEQ4x4aBmEyLTEyOQ"]
        elif url.path == "/offers/v1.0/aws/AmazonSageMaker/current/region_index.json":
            body = json.loads((PRICES / "aws-sagemaker-region-index.json").read_text())
        elif url.path == "/offers/v1.0/aws/AmazonSageMaker/20261120180513/us-east-1/index.json":
            body = json.loads((PRICES / "aws-sagemaker-us-east-1.json").read_text())
        else:
            self.send_error(503, "Service Unavailable")
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def price_apis(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The recorded APIs on a loopback port; yields the paths asked for, in order."""
    asked: list[str] = []
    handler = type("Handler", (_PriceApis,), {"asked": asked})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("LLAMADEPLOY_AZURE_PRICES_URL", f"{base}/azure")
    monkeypatch.setenv("LLAMADEPLOY_OCI_PRICES_URL", f"{base}/oci/")
    monkeypatch.setenv("LLAMADEPLOY_AWS_PRICES_URL", base)
    monkeypatch.setenv("LLAMADEPLOY_GCP_PRICES_URL", f"{base}/gcp")
    monkeypatch.delenv("LLAMADEPLOY_GCP_API_KEY", raising=False)
    monkeypatch.setenv("PRICE_APIS_BASE", base)
    yield asked
    server.shutdown()
    server.server_close()


def test_refresh_prices_azure_and_oci_from_their_apis_with_url_and_date(price_apis: list[str], tmp_path: Path) -> None:
    shipped = load_catalog()
    target = tmp_path / "offers.csv"
    code, out, err = cli_run("catalog", "refresh", "--to", str(target))
    assert code == 0, err
    refreshed = {(o.cloud, o.region, o.instance_type): o for o in load_catalog(target).offers}
    today = datetime.now(UTC).date().isoformat()

    a100 = refreshed["azure", "eastus", "Standard_NC24ads_A100_v4"]
    # the latest Linux pay-as-you-go meter; not the older one, the Windows one or the low-priority one
    assert (a100.usd_per_hour, a100.spot_usd_per_hour, a100.as_of) == (3.5, 0.7346, today)
    assert a100.source.startswith("Azure Retail Prices API, Linux pay-as-you-go meter: http://127.0.0.1:")
    assert "armRegionName%20eq%20%27eastus%27" in a100.source and a100.price_basis == "VM list price (service bills VM price)"
    h200 = refreshed["azure", "eastus", "Standard_ND96isr_H200_v5"]  # unpriced in the shipped catalog; on the API's second page
    assert h200.usd_per_hour == 110.24 and h200.as_of == today
    h100 = refreshed["oci", "eu-frankfurt-1", "BM.GPU.H100.8"]
    assert (h100.usd_per_hour, h100.as_of) == (76.0, today) and "B98415 per GPU hour x 8 GPUs (list updated 2026-11-20T09:12:44.103Z)" in h100.source
    assert refreshed["oci", "us-ashburn-1", "VM.GPU.A10.1"].usd_per_hour == 2.0

    g5 = refreshed["aws", "us-east-1", "ml.g5.xlarge"]  # the Hosting component's price, not Training's
    assert (g5.usd_per_hour, g5.price_basis, g5.as_of) == (1.408, "managed-service list price", today)
    assert g5.source.startswith("AWS Price List, AmazonSageMaker offer file, Hosting on demand (published 2026-11-20T18:05:13Z): http://127.0.0.1:")
    p5e = refreshed["aws", "us-east-1", "ml.p5e.48xlarge"]  # unpriced in the shipped catalog
    assert (p5e.usd_per_hour, p5e.price_is_lower_bound) == (72.296, False)

    before = {(o.cloud, o.region, o.instance_type): o for o in shipped.offers}
    assert refreshed.keys() == before.keys()  # no row lost or added
    kept = [key for key in before if key[0] == "gcp" or key[:2] == ("aws", "us-west-2")]
    kept += [("oci", "us-ashburn-1", "BM.GPU4.8"), ("azure", "westus3", "Standard_NC24ads_A100_v4"), ("aws", "us-east-1", "ml.g6.xlarge")]
    assert all(refreshed[key] == before[key] for key in kept)  # no API read for them: as they were

    regions = sorted({o.region for o in shipped.offers if o.cloud == "azure"})
    azure_queries = [urllib.parse.unquote(path) for path in price_apis if path.startswith("/azure")]
    assert len(azure_queries) == len(regions) + 1  # one query per region, and eastus's second page
    assert all("serviceName eq 'Virtual Machines' and priceType eq 'Consumption'" in q for q in azure_queries)
    assert sorted(p for p in price_apis if p.startswith("/oci/")) == sorted(
        f"/oci/?partNumber={part}&currencyCode=USD" for part in ("B98415", "B110519", "B95907", "B93544", "B109479", "B95909")
    )
    assert "azure: " in out and "eastus Standard_NC24ads_A100_v4: $3.673 -> $3.5/h" in out
    assert "gcp: kept; Google's price API (the Cloud Billing Catalog API) needs an API key" in out and "LLAMADEPLOY_GCP_API_KEY" in out
    assert f"--catalog {target} cost STACK" in out
    assert "aws: 2 offers priced, 2 changed" in out and "us-east-1 ml.p5e.48xlarge: unpriced -> $72.3/h" in out

    code, out, err = cli_run("--catalog", str(target), "cost", str(Path(__file__).parent.parent / "stacks" / "llama-3.1-70b.yaml"), "--output", "json")
    assert code == 0, err
    assert f"prices dated 2025-08-15 to {today}" in json.loads(out)["catalog"]["dated"]


def test_refresh_prices_gcp_from_compute_engine_skus_with_an_api_key(price_apis: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine's price is vCPUs x its series' core SKU + GiB x its RAM SKU + GPUs x its GPU SKU in
    its region: with A2 SKU prices of $0.031611, $0.004237 and $2.933908, a2-highgpu-1g in
    us-central1 is 12 x $0.031611 + 85 x $0.004237 + 1 x $2.933908 = $3.673385, the shipped
    catalog's price (read from a public calculator built on the same API) to the millionth."""
    shipped = load_catalog()
    monkeypatch.setenv("LLAMADEPLOY_GCP_API_KEY", "test-api-key")
    target = tmp_path / "offers.csv"
    code, out, err = cli_run("catalog", "refresh", "--to", str(target), "--cloud", "gcp")
    assert code == 0, err
    offers = load_catalog(target).offers
    today = datetime.now(UTC).date().isoformat()
    vm = {(o.region, o.instance_type): o for o in offers if o.cloud == "gcp" and o.price_is_lower_bound}
    before = {(o.region, o.instance_type): o for o in shipped.offers if o.cloud == "gcp" and o.price_is_lower_bound}

    a2 = vm["us-central1", "a2-highgpu-1g"]
    assert (a2.usd_per_hour, a2.as_of) == (3.673385, today)
    assert a2.spot_usd_per_hour == round(12 * 0.0065 + 85 * 0.00087 + 1.173, 6)  # the Spot Preemptible SKUs
    assert a2.source.startswith(
        "Cloud Billing Catalog API, Compute Engine SKUs 1B86-EB73-1A2A + 2A8D-5F2C-3B5E + 039F-D0DA-4055 (12 vCPUs, 85 GiB, 1 GPUs): http://127.0.0.1:"
    )
    assert "test-api-key" not in target.read_text() and "test-api-key" not in out  # the key travels in a header only
    assert (
        vm["us-central1", "a2-highgpu-8g"].usd_per_hour
        == round(96 * 0.031611 + 680 * 0.004237 + 8 * 2.933908, 6)
        == before["us-central1", "a2-highgpu-8g"].usd_per_hour
    )
    assert vm["europe-west4", "a2-highgpu-1g"].usd_per_hour == round(12 * 0.034806 + 85 * 0.004666 + 2.93661, 6)
    assert vm["us-central1", "a3-highgpu-2g"].usd_per_hour == round(52 * 0.034061 + 468 * 0.004557 + 2 * 9.796093, 6)
    assert vm["us-central1", "g2-standard-4"].usd_per_hour == round(4 * 0.024988 + 16 * 0.002927 + 0.56, 6)
    assert vm["us-central1", "a2-ultragpu-1g"].usd_per_hour == round(12 * 0.031611 + 170 * 0.004237 + 3.92764, 6)
    for kept in (("us-east4", "a2-highgpu-1g"), ("us-central1", "a3-ultragpu-8g"), ("europe-west4", "a3-highgpu-1g")):
        assert vm[kept] == before[kept]  # no SKU for that region, an A3 Ultra, a GPU priced nowhere here: as they were
    managed = [o for o in offers if o.cloud == "gcp" and not o.price_is_lower_bound and o.usd_per_hour is not None]
    assert managed == [o for o in shipped.offers if o.cloud == "gcp" and not o.price_is_lower_bound and o.usd_per_hour is not None]  # Vertex's own price kept
    assert ("us-central1", "a3-highgpu-1g") not in vm  # ... where the catalog has one, over the VM's
    assert [p.split("?")[0] for p in price_apis] == ["/gcp/v1/services/6F81-5844-456A/skus"] * 2  # both pages, once
    assert "gcp: 21 offers priced, 21 changed, 36 not priced by the API (kept as they were)" in out

    monkeypatch.setenv("LLAMADEPLOY_GCP_API_KEY", "revoked")
    code, _, err = cli_run("catalog", "refresh", "--to", str(target), "--cloud", "gcp")
    assert code == 1 and "the price API answered 403 Forbidden for http://127.0.0.1:" in err and "revoked" not in err


def test_an_unreachable_price_api_is_one_clear_error_and_writes_nothing(price_apis: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMADEPLOY_AZURE_PRICES_URL", "http://127.0.0.1:9/azure")  # nothing listens on the discard port
    target = tmp_path / "offers.csv"
    code, _, err = cli_run("catalog", "refresh", "--to", str(target), "--cloud", "Azure")
    assert code == 1 and "cannot reach the price API at http://127.0.0.1:9/azure?" in err and "Traceback" not in err
    assert not target.exists() and list(tmp_path.iterdir()) == []
    monkeypatch.setenv("LLAMADEPLOY_OCI_PRICES_URL", os.environ["PRICE_APIS_BASE"] + "/down")
    code, _, err = cli_run("catalog", "refresh", "--to", str(target), "--cloud", "oci")
    assert code == 1 and "the price API answered 503 Service Unavailable for http://127.0.0.1:" in err and not target.exists()
    code, _, err = cli_run("catalog", "refresh", "--to", str(target), "--cloud", "mars")
    assert code == 2 and "no offers for mars; choose from aws, azure, gcp, oci" in err
