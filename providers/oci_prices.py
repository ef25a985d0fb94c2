"""OCI Data Science's offers priced from Oracle's public price list API, which needs no account.

A model deployment is billed the compute shape's price, and OCI prices a GPU shape per GPU hour,
the same in every commercial region: the shape's price is its GPU part's pay-as-you-go price
times its GPUs. The API answers `items[]` with `partNumber`, `metricName` ("GPU Per Hour") and
`currencyCodeLocalizations[].prices[]` (`model` "PAY_AS_YOU_GO", `value`) and a `lastUpdated`
date, and takes `?partNumber=…&currencyCode=USD` (as read by jasonwilbur/oci-pricing-mcp:
src/data/fetcher.ts; the endpoint is the one Oracle's cost estimator calls; the docs page for it
could not be read offline). The part numbers per GPU are those of Oracle's price list
(https://www.oracle.com/cloud/price-list/, Compute - GPU); a GPU with no part here keeps its rows.
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

PRODUCTS_URL = "https://apexapps.oracle.com/pls/apex/cetools/api/v1/products/"
URL_ENV = "LLAMADEPLOY_OCI_PRICES_URL"  # the tests' recorded answers
GPU_PARTS = {
    "H100": "B98415",
    "H200": "B110519",
    "A100-80GB": "B95907",
    "A100-40GB": "B93544",
    "L40S": "B109479",
    "A10": "B95909",
}


def read_prices(offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
    base = os.environ.get(URL_ENV, PRODUCTS_URL)
    per_gpu: dict[str, tuple[float, str, str]] = {}  # GPU -> (USD per GPU-hour, URL, lastUpdated)
    for gpu in sorted({offer.gpu for offer in offers if offer.gpu in GPU_PARTS}):
        url = f"{base}?{urllib.parse.urlencode({'partNumber': GPU_PARTS[gpu], 'currencyCode': 'USD'})}"
        answer = get_json(url)
        price = _pay_as_you_go(answer.get("items", []), GPU_PARTS[gpu])
        if price is not None:
            per_gpu[gpu] = (price, url, answer.get("lastUpdated", ""))
    read = []
    for offer in offers:
        if offer.gpu in per_gpu:
            price, url, updated = per_gpu[offer.gpu]
            source = f"Oracle price list API, {GPU_PARTS[offer.gpu]} per GPU hour x {offer.gpu_count} GPUs (list updated {updated or 'unstated'}): {url}"
            read.append(replace(offer, usd_per_hour=round(price * offer.gpu_count, 6), source=source, as_of=today()))
    return read


def _pay_as_you_go(items: list[dict[str, Any]], part: str) -> float | None:
    for item in items:
        if item.get("partNumber") != part or item.get("metricName") != "GPU Per Hour":
            continue
        for localization in item.get("currencyCodeLocalizations", []):
            if localization.get("currencyCode") == "USD":
                for price in localization.get("prices", []):
                    if price.get("model") == "PAY_AS_YOU_GO" and price.get("value") is not None:
                        return float(price["value"])
    return None
