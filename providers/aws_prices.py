"""SageMaker's offers priced from the AWS Price List bulk API, which needs no account.

The bulk API publishes each service's offer file per region, found through the service's
region index (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-the-aws-price-list-bulk-api-fetching-price-list-files-manually.html):
`products` by SKU with `productFamily` and `attributes`, and `terms.OnDemand[sku][term]
.priceDimensions[rate].pricePerUnit.USD`. A real-time endpoint's instance is the product of
family "ML Instance" whose `component` is "Hosting" (training, processing, notebooks and batch
transform are other components), named by `instanceName`, as public tools select it (e.g. a
jq filter on `.value.attributes.component == "Hosting"` over this same file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from orchestrator.pricing.catalog import MANAGED_PRICE, Offer
from orchestrator.pricing.refresh import today
from providers.base import GetJson

PRICE_LIST_HOST = "https://pricing.us-east-1.amazonaws.com"
REGION_INDEX = "/offers/v1.0/aws/AmazonSageMaker/current/region_index.json"
URL_ENV = "LLAMADEPLOY_AWS_PRICES_URL"  # the tests' recorded answers


def read_prices(offers: Sequence[Offer], get_json: GetJson) -> list[Offer]:
    host = os.environ.get(URL_ENV, PRICE_LIST_HOST)
    regions = get_json(host + REGION_INDEX).get("regions", {})
    read = []
    for region in sorted({offer.region for offer in offers}):
        entry = regions.get(region)
        if not entry:
            continue
        url = host + entry["currentVersionUrl"]
        offer_file = get_json(url)
        hourly = _hosting_prices(offer_file, region)
        for offer in offers:
            price = hourly.get(offer.instance_type) if offer.region == region else None
            if price is not None:
                published = offer_file.get("publicationDate", "unstated")
                source = f"AWS Price List, AmazonSageMaker offer file, Hosting on demand (published {published}): {url}"
                read.append(replace(offer, usd_per_hour=price, price_basis=MANAGED_PRICE, source=source, as_of=today()))
    return read


def _hosting_prices(offer_file: dict[str, Any], region: str) -> dict[str, float]:
    """USD per hour of each ML instance for real-time hosting in `region`."""
    on_demand = offer_file.get("terms", {}).get("OnDemand", {})
    prices: dict[str, float] = {}
    for sku, product in offer_file.get("products", {}).items():
        attributes = product.get("attributes", {})
        if product.get("productFamily") != "ML Instance" or attributes.get("component") != "Hosting":
            continue
        if attributes.get("regionCode", region) != region or not attributes.get("instanceName"):
            continue
        for term in on_demand.get(sku, {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if dimension.get("unit") == "Hrs" and usd is not None and dimension.get("beginRange", "0") == "0":  # the first tier: the hourly list price
                    price = float(usd)
                    known = prices.setdefault(attributes["instanceName"], price)
                    if known != price:
                        raise ValueError(f"two Hosting prices for {attributes['instanceName']} in {region}: {known} and {price}")
    return prices
