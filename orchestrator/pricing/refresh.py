"""`llamadeploy catalog refresh`: current list prices from the clouds' public price APIs.

Each cloud's provider knows its own price API (one that needs no account, or only an API key)
and reads the prices of the catalog's offers from it (`CloudService.read_prices`); this module
asks every provider that has one, merges what came back into the catalog, and writes a dated
catalog the user passes with `--catalog`. A refreshed row names the URL it was read from and the
day it was read, so a reader can check every price; a row no API priced is kept as it was.
"""

from __future__ import annotations

import csv
import io
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestrator.errors import CatalogError, PriceApiUnavailable
from orchestrator.pricing.catalog import COLUMNS, Catalog, Offer

if TYPE_CHECKING:
    from providers.base import CloudService, GetJson

TIMEOUT_S = float(os.environ.get("LLAMADEPLOY_PRICE_API_TIMEOUT", "60"))


def get_json(url: str, headers: Mapping[str, str] | None = None) -> Any:
    """GET `url` and parse its JSON; a network or HTTP failure says which URL and why."""
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "llamadeploy catalog refresh", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise CatalogError(f"the price API answered {exc.code} {exc.reason} for {url}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CatalogError(f"cannot reach the price API at {url}: {reason}; check the network (or a proxy: HTTPS_PROXY)") from exc
    except ValueError as exc:
        raise CatalogError(f"the price API at {url} answered with something other than JSON: {exc}") from exc


@dataclass
class CloudRefresh:
    """What one cloud's price API said about the catalog's offers."""

    cloud: str
    read: int = 0  # offers the API priced
    changed: list[tuple[Offer, Offer]] = field(default_factory=list)  # (before, after) where the price moved
    unpriced: list[Offer] = field(default_factory=list)  # offers the API had no price for: kept as they were
    skipped: str | None = None  # why the cloud was not read


@dataclass(frozen=True)
class Refreshed:
    offers: tuple[Offer, ...]
    clouds: tuple[CloudRefresh, ...]


def refresh(catalog: Catalog, providers: list[CloudService], fetch: GetJson = get_json) -> Refreshed:
    """The catalog with every offer a provider's price API priced replaced by what it read."""
    by_key = {_key(offer): offer for offer in catalog.offers}
    reports = []
    for provider in providers:
        report = CloudRefresh(provider.name)
        reports.append(report)
        offers = [offer for offer in catalog.offers if offer.cloud == provider.name]
        try:
            read = provider.read_prices(offers, fetch)
        except PriceApiUnavailable as exc:
            report.skipped = str(exc)
            continue
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # an answer not in the API's documented form
            raise CatalogError(
                f"{provider.name}'s price API answered in a form llamadeploy does not read ({type(exc).__name__}: {exc}); nothing was written"
            ) from exc
        if read is None:
            report.skipped = f"{provider.name} has no public price API llamadeploy reads; its rows are kept as they are"
            continue
        priced = {_key(offer): offer for offer in read}
        for offer in offers:
            new = priced.get(_key(offer))
            if new is None:
                report.unpriced.append(offer)
                continue
            report.read += 1
            if (new.usd_per_hour, new.spot_usd_per_hour) != (offer.usd_per_hour, offer.spot_usd_per_hour):
                report.changed.append((offer, new))
            by_key[_key(offer)] = new
    return Refreshed(tuple(by_key.values()), tuple(reports))


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def catalog_csv(offers: tuple[Offer, ...]) -> Iterator[str]:
    """The catalog file's text, in the shipped catalog's columns and order."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for offer in sorted(offers, key=lambda o: (o.cloud, o.instance_type, o.region)):
        row = asdict(offer)
        for column in ("gpu_memory_gib", "memory_gib", "usd_per_hour", "spot_usd_per_hour"):
            row[column] = _number(row[column])
        writer.writerow(row)
    yield buffer.getvalue()


def _number(value: float | None) -> str:
    if value is None:
        return ""
    text = repr(value)
    return text.removesuffix(".0")


def _key(offer: Offer) -> tuple[str, str, str]:
    return (offer.cloud, offer.region, offer.instance_type)
