"""Azure ML's offers priced from the Azure Retail Prices API, which needs no account.

Azure ML managed online endpoints bill the VM's price (the catalog's basis for Azure), so an
offer's price is the Linux pay-as-you-go meter of its VM size. The API, its filters and its
answer (`Items[]` with `armSkuName`, `retailPrice`, `unitOfMeasure`, `type`, `productName`,
`skuName`; `NextPageLink` until the last page) are documented at
https://learn.microsoft.com/rest/api/cost-management/retail-prices/azure-retail-prices .
A `productName` with "Windows" is the Windows meter; a `skuName` ending in "Spot" is the spot
meter and one ending in "Low Priority" the retired low-priority one.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from orchestrator.pricing.catalog import Offer
from orchestrator.pricing.refresh import today
from providers.base import GetJson

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
URL_ENV = "LLAMADEPLOY_AZURE_PRICES_URL"  # the tests' recorded answers
MAX_PAGES = 50  # a region's GPU sizes fit in one page of 100; more means a filter went wrong


def read_prices(offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
    base = os.environ.get(URL_ENV, RETAIL_PRICES_URL)
    read = []
    for region in sorted({offer.region for offer in offers}):
        here = [offer for offer in offers if offer.region == region]
        sizes = " or ".join(f"armSkuName eq '{offer.instance_type}'" for offer in here)
        query = f"serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and armRegionName eq '{region}' and ({sizes})"
        url = f"{base}?{urllib.parse.urlencode({'$filter': query}, quote_via=urllib.parse.quote)}"
        meters = _meters(url, get_json)
        for offer in here:
            on_demand, spot = _linux_prices(meters.get(offer.instance_type, []))
            if on_demand is not None:
                source = f"Azure Retail Prices API, Linux pay-as-you-go meter: {url}"
                read.append(replace(offer, usd_per_hour=on_demand, spot_usd_per_hour=spot, source=source, as_of=today()))
    return read


def _meters(url: str, get_json: GetJson) -> dict[str, list[dict[str, Any]]]:
    """Every item of every page, by VM size."""
    by_size: dict[str, list[dict[str, Any]]] = {}
    next_url: str | None = url
    for _ in range(MAX_PAGES):
        if not next_url:
            break
        page = get_json(next_url)
        for item in page.get("Items", []):
            by_size.setdefault(item.get("armSkuName", ""), []).append(item)
        next_url = page.get("NextPageLink")
    if next_url:
        raise ValueError(f"more than {MAX_PAGES} pages answer {url}; the filter matched more than the catalog's VM sizes")
    return by_size


def _linux_prices(items: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """The on-demand and spot Linux prices per hour in USD among a size's meters (the latest
    where a meter has several effective dates)."""
    linux = [
        item
        for item in items
        if item.get("currencyCode") == "USD"
        and item.get("type") == "Consumption"
        and item.get("unitOfMeasure") == "1 Hour"
        and "Windows" not in item.get("productName", "")
        and not item.get("skuName", "").endswith("Low Priority")
    ]
    latest = sorted(linux, key=lambda item: item.get("effectiveStartDate", ""))
    on_demand = [item["retailPrice"] for item in latest if not item.get("skuName", "").endswith("Spot")]
    spot = [item["retailPrice"] for item in latest if item.get("skuName", "").endswith("Spot")]
    return (float(on_demand[-1]) if on_demand else None, float(spot[-1]) if spot else None)
