"""Vertex AI's offers priced from the Cloud Billing Catalog API, as the Compute Engine VM under them.

The catalog prices Vertex AI's machines at the Compute Engine price of the same machine type, a
lower bound (Vertex AI adds a markup llamadeploy cannot read from a public API). Compute Engine
bills an accelerator-optimized machine by its parts: vCPUs x the series' core SKU, GiB x its RAM
SKU and GPUs x the GPU's SKU, each per hour in the machine's region; SkyPilot's catalog fetcher
composes its GCP prices the same way (skypilot-org/skypilot: sky/catalog/data_fetchers/fetch_gcp.py).

The API (https://cloud.google.com/billing/v1/how-tos/catalog-api) lists a service's SKUs, 5,000 a
page until no `nextPageToken`, each with `description`, `category.resourceGroup` ("CPU", "RAM",
"GPU") and `usageType` ("OnDemand", "Preemptible"), `serviceRegions`, and
`pricingInfo[0].pricingExpression` (`usageUnit`, `tieredRates[].unitPrice` in units + nanos). It
needs an API key, which is sent in the `X-Goog-Api-Key` header
(https://cloud.google.com/docs/authentication/api-keys-use) so that it never appears in a URL
that a row or an error message shows. Descriptions read as "A2 Instance Core running in
Americas", "Spot Preemptible A2 Instance Ram running in EMEA", "Nvidia Tesla A100 GPU running in
Americas", "Nvidia H100 80GB GPU attached to Spot Preemptible VMs running in Americas" (the forms
fetch_gcp.py matches); a machine whose parts are not all found keeps its row.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.errors import PriceApiUnavailable
from orchestrator.pricing.catalog import VM_PRICE_LOWER_BOUND, Offer
from orchestrator.pricing.refresh import today
from providers.base import GetJson

BILLING_API = "https://cloudbilling.googleapis.com"
COMPUTE_ENGINE = "6F81-5844-456A"  # Compute Engine's service id (cloud.google.com/skus)
URL_ENV = "LLAMADEPLOY_GCP_PRICES_URL"  # the tests' recorded answers
KEY_ENV = "LLAMADEPLOY_GCP_API_KEY"
MAX_PAGES = 40  # Compute Engine lists some tens of thousands of SKUs, 5,000 a page
# Machine family -> the series name its core and RAM SKUs give it (fetch_gcp.py's
# SERIES_TO_DESCRIPTION) and the GPU it carries, named as its SKU names it (fetch_gcp.py's
# get_gpu_price). A3 Mega and Ultra are left out: whether their cores bill as "A3 Instance" could
# not be read offline, so their rows are kept.
FAMILIES = {
    "a2-highgpu": ("A2", "A100-40GB", "A100 GPU"),
    "a2-ultragpu": ("A2", "A100-80GB", "A100 80GB GPU"),
    "a3-highgpu": ("A3", "H100", "H100 80GB GPU"),
    "g2-standard": ("G2", "L4", "L4 GPU"),
}
PARTS_UNIT = {"CPU": "h", "RAM": "GiBy.h", "GPU": "h"}  # per vCPU hour, per GiB hour, per GPU hour
ON_DEMAND, SPOT = "OnDemand", "Preemptible"


@dataclass(frozen=True)
class _Sku:
    id: str
    usd_per_unit: float


def read_prices(offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
    key = os.environ.get(KEY_ENV)
    if not key:
        raise PriceApiUnavailable(
            f"Google's price API (the Cloud Billing Catalog API) needs an API key: create one in a project with the Cloud Billing API "
            f"enabled and set {KEY_ENV} (cloud.google.com/billing/v1/how-tos/catalog-api)"
        )
    wanted = [offer for offer in offers if offer.price_basis == VM_PRICE_LOWER_BOUND and _family(offer)]
    if not wanted:
        return []
    url = f"{os.environ.get(URL_ENV, BILLING_API)}/v1/services/{COMPUTE_ENGINE}/skus"
    parts = _parts(_skus(url, key, get_json), {offer.region for offer in wanted})
    read = []
    for offer in wanted:
        on_demand = _machine(offer, parts, ON_DEMAND)
        if on_demand is None:
            continue
        price, ids = on_demand
        spot = _machine(offer, parts, SPOT)
        source = (
            f"Cloud Billing Catalog API, Compute Engine SKUs {' + '.join(ids)} ({offer.vcpus} vCPUs, {offer.memory_gib:g} GiB, {offer.gpu_count} GPUs): {url}"
        )
        read.append(replace(offer, usd_per_hour=price, spot_usd_per_hour=spot[0] if spot else None, source=source, as_of=today()))
    return read


def _family(offer: Offer) -> tuple[str, str] | None:
    """The machine's core/RAM series and GPU SKU names, where its family is one priced here and
    carries the GPU the catalog row says (a row that disagrees is left as it is)."""
    family = FAMILIES.get(offer.instance_type.rsplit("-", 1)[0])
    return (family[0], family[2]) if family is not None and family[1] == offer.gpu else None


def _skus(url: str, key: str, get_json: GetJson) -> list[dict[str, Any]]:
    """Every SKU of every page."""
    skus: list[dict[str, Any]] = []
    token = ""
    for _ in range(MAX_PAGES):
        page = get_json(f"{url}?pageToken={token}" if token else url, headers={"X-Goog-Api-Key": key})
        skus += page.get("skus", [])
        token = page.get("nextPageToken", "")
        if not token:
            return skus
    raise ValueError(f"more than {MAX_PAGES} pages answer {url}; Compute Engine lists fewer SKUs than that")


def _parts(skus: list[dict[str, Any]], regions: set[str]) -> dict[tuple[str, str, str, str], _Sku]:
    """(region, usage type, resource group, name) -> the SKU, for the series and GPUs the catalog
    holds in its regions; two SKUs of one part at different prices are an error."""
    core_ram = re.compile(rf"^(?:Spot Preemptible )?({'|'.join(sorted({series for series, _, _ in FAMILIES.values()}))}) Instance (?:Core|Ram) running in ")
    gpu = re.compile(
        rf"^Nvidia (?:Tesla )?({'|'.join(sorted({re.escape(name) for _, _, name in FAMILIES.values()}))})(?: attached to Spot Preemptible VMs)? running in "
    )
    found: dict[tuple[str, str, str, str], _Sku] = {}
    for sku in skus:
        category = sku["category"]
        group, usage = category.get("resourceGroup"), category.get("usageType")
        if group not in PARTS_UNIT or usage not in (ON_DEMAND, SPOT):
            continue
        named = (gpu if group == "GPU" else core_ram).match(sku["description"])
        if not named:
            continue
        part = _Sku(sku["skuId"], _hourly(sku, PARTS_UNIT[group]))
        for region in regions.intersection(sku.get("serviceRegions", [])):
            where = (region, usage, group, named.group(1))
            if where in found and found[where].usd_per_unit != part.usd_per_unit:
                raise ValueError(f"SKUs {found[where].id} and {part.id} both price {named.group(1)} {group} ({usage}) in {region}, differently")
            found[where] = part
    return found


def _hourly(sku: dict[str, Any], unit: str) -> float:
    """The SKU's first-tier price in USD per `unit`."""
    expression = sku["pricingInfo"][0]["pricingExpression"]
    if expression["usageUnit"] != unit:
        raise ValueError(f"SKU {sku['skuId']} is priced per {expression['usageUnit']!r}, not per {unit!r}")
    price = expression["tieredRates"][0]["unitPrice"]
    if price.get("currencyCode", "USD") != "USD":
        raise ValueError(f"SKU {sku['skuId']} is priced in {price['currencyCode']}, not USD")
    return int(price.get("units") or 0) + int(price.get("nanos") or 0) / 1e9


def _machine(offer: Offer, parts: dict[tuple[str, str, str, str], _Sku], usage: str) -> tuple[float, list[str]] | None:
    """The machine's price per hour from its parts, and the SKUs it adds; None if one is missing."""
    series, gpu_sku = _family(offer) or ("", "")
    core, ram, gpu = (parts.get((offer.region, usage, group, name)) for group, name in (("CPU", series), ("RAM", series), ("GPU", gpu_sku)))
    if core is None or ram is None or gpu is None:
        return None
    price = core.usd_per_unit * offer.vcpus + ram.usd_per_unit * offer.memory_gib + gpu.usd_per_unit * offer.gpu_count
    return round(price, 6), [core.id, ram.id, gpu.id]
