"""GPU offers of each cloud's managed serving service, with their prices and where they came from.

The shipped file `orchestrator/data/gpu-offers.csv` is the sourced table from
`shared/data/gpu-offers.csv` (see gpu-offers.md there for every source and caveat). A
(cloud, region, instance type) may appear twice: once at the managed service's own list price
and once at the VM price underneath it. The managed price is what the user is billed, so it
wins; a VM price stands in only where no managed price is known, and where the service adds a
markup the catalog marks it a lower bound, which every report says. A row with no price stays an offer whose
price is unknown: it is never treated as free.
"""

from __future__ import annotations

import csv
import difflib
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from orchestrator.errors import CatalogError, UsageError

MANAGED_PRICE = "managed-service list price"
VM_PRICE_BILLED = "VM list price (service bills VM price)"
VM_PRICE_LOWER_BOUND = "VM list price (service adds a markup, unknown)"
BASIS_LABELS = {MANAGED_PRICE: "list price", VM_PRICE_BILLED: "VM price (billed as is)", VM_PRICE_LOWER_BOUND: "VM price, lower bound"}
_BASIS_RANK = {MANAGED_PRICE: 0, VM_PRICE_BILLED: 0, VM_PRICE_LOWER_BOUND: 1}
COLUMNS = (
    "cloud",
    "service",
    "region",
    "instance_type",
    "gpu",
    "gpu_count",
    "gpu_memory_gib",
    "vcpus",
    "memory_gib",
    "usd_per_hour",
    "spot_usd_per_hour",
    "price_basis",
    "source",
    "as_of",
)
CATALOG_ENV = "LLAMADEPLOY_CATALOG"


@dataclass(frozen=True)
class Offer:
    """One instance type of one cloud's serving service in one region."""

    cloud: str
    service: str
    region: str
    instance_type: str
    gpu: str
    gpu_count: int
    gpu_memory_gib: float
    vcpus: int
    memory_gib: float
    usd_per_hour: float | None
    spot_usd_per_hour: float | None
    price_basis: str
    source: str
    as_of: str

    @property
    def price_is_lower_bound(self) -> bool:
        return self.price_basis == VM_PRICE_LOWER_BOUND

    @property
    def basis_label(self) -> str:
        return BASIS_LABELS.get(self.price_basis, self.price_basis)


@dataclass(frozen=True)
class Catalog:
    """The offers llamadeploy prices deployments with, one per (cloud, region, instance type)."""

    path: str
    offers: tuple[Offer, ...]

    def select(self, cloud: str | None = None, region: str | None = None, gpu: str | None = None) -> list[Offer]:
        return [o for o in self.offers if (cloud is None or o.cloud == cloud) and (region is None or o.region == region) and (gpu is None or o.gpu == gpu)]

    def clouds(self) -> list[str]:
        return sorted({o.cloud for o in self.offers})

    def regions(self, cloud: str) -> list[str]:
        return list(self._regions.get(cloud, ()))

    @cached_property
    def _regions(self) -> dict[str, tuple[str, ...]]:
        """Each cloud's regions, found once: planning asks for every deployment."""
        by_cloud: dict[str, set[str]] = {}
        for offer in self.offers:
            by_cloud.setdefault(offer.cloud, set()).add(offer.region)
        return {cloud: tuple(sorted(regions)) for cloud, regions in by_cloud.items()}

    def gpus(self) -> list[str]:
        return sorted({o.gpu for o in self.offers})

    @property
    def dated(self) -> str:
        """The span of the prices' dates, which every report prints."""
        dates = sorted({o.as_of for o in self.offers if o.as_of})
        undated = sum(1 for o in self.offers if not o.as_of)
        span = f"{dates[0]} to {dates[-1]}" if len(dates) > 1 else (dates[0] if dates else "unknown")
        return f"prices dated {span}" + (f", {undated} offers undated" if undated else "")


def default_path() -> Path:
    return Path(__file__).parent.parent / "data" / "gpu-offers.csv"


def load_catalog(path: str | os.PathLike[str] | None = None) -> Catalog:
    """The catalog at `path`, else at $LLAMADEPLOY_CATALOG, else the shipped one."""
    chosen = Path(path or os.environ.get(CATALOG_ENV) or default_path())
    return _load(chosen.resolve())


@lru_cache(maxsize=4)
def _load(path: Path) -> Catalog:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CatalogError(f"price catalog {path} lacks the columns {', '.join(missing)}; it needs {', '.join(COLUMNS)}")
            rows = [_offer(row, path, number) for number, row in enumerate(reader, start=2)]
    except OSError as exc:
        raise CatalogError(f"cannot read the price catalog {path}: {exc.strerror or exc}") from exc
    return Catalog(str(path), tuple(_prefer_managed_prices(rows)))


def _offer(row: dict[str, str], path: Path, line: int) -> Offer:
    try:
        return Offer(
            cloud=row["cloud"].strip(),
            service=row["service"].strip(),
            region=row["region"].strip(),
            instance_type=row["instance_type"].strip(),
            gpu=row["gpu"].strip(),
            gpu_count=int(row["gpu_count"]),
            gpu_memory_gib=float(row["gpu_memory_gib"]),
            vcpus=int(row["vcpus"]),
            memory_gib=float(row["memory_gib"]),
            usd_per_hour=_price(row["usd_per_hour"]),
            spot_usd_per_hour=_price(row["spot_usd_per_hour"]),
            price_basis=row["price_basis"].strip(),
            source=row["source"].strip(),
            as_of=row["as_of"].strip(),
        )
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{path}:{line}: bad value in the price catalog ({exc}); fix or remove the row") from exc


def _price(text: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    value = float(text)
    if value < 0:
        raise ValueError(f"negative price {text}")
    return value


def _prefer_managed_prices(rows: list[Offer]) -> list[Offer]:
    """One offer per (cloud, region, instance type): a known price over none, a managed one over a VM's."""
    best: dict[tuple[str, str, str], Offer] = {}
    for offer in rows:
        key = (offer.cloud, offer.region, offer.instance_type)
        if key not in best or _preference(offer) < _preference(best[key]):
            best[key] = offer
    return list(best.values())


def _preference(offer: Offer) -> tuple[int, int]:
    return (offer.usd_per_hour is None, _BASIS_RANK.get(offer.price_basis, 2))


def list_offers(catalog: Catalog, cloud: str | None = None, gpu: str | None = None, region: str | None = None) -> list[Offer]:
    """Offers matching the filters, cheapest first; a filter value the catalog lacks is an error."""
    cloud = _known(cloud, catalog.clouds(), "cloud")
    gpu = _known(gpu, catalog.gpus(), "GPU type")
    regions = sorted({o.region for o in catalog.select(cloud=cloud)})
    region = _known(region, regions, "region" + (f" for {cloud}" if cloud else ""))
    chosen = catalog.select(cloud=cloud, region=region, gpu=gpu)
    return sorted(chosen, key=lambda o: (o.usd_per_hour is None, o.usd_per_hour or 0.0, o.cloud, o.region, o.instance_type))


def _known(value: str | None, known: list[str], what: str) -> str | None:
    """`value` as the catalog spells it (any letter case), or a UsageError naming the choices."""
    if value is None:
        return None
    by_folded = {k.lower(): k for k in known}
    if value.lower() in by_folded:
        return by_folded[value.lower()]
    close = difflib.get_close_matches(value.lower(), list(by_folded), n=1, cutoff=0.5)
    hint = f"did you mean {by_folded[close[0]]!r}? " if close else ""
    raise UsageError(f"the price catalog has no {what} {value!r}; {hint}choose one of {', '.join(known)}")
