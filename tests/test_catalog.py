"""The price catalog: precedence of managed prices, unknown prices, bad catalog files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.errors import CatalogError, UsageError
from orchestrator.pricing.catalog import MANAGED_PRICE, Catalog, list_offers, load_catalog


def one(catalog: Catalog, cloud: str, region: str, instance: str):
    (offer,) = [o for o in catalog.select(cloud=cloud, region=region) if o.instance_type == instance]
    return offer


def test_shipped_catalog_has_one_offer_per_instance_and_region() -> None:
    """Invariants of the shipped file, not its numbers: a catalog refresh changes prices and rows."""
    catalog = load_catalog()
    keys = [(o.cloud, o.region, o.instance_type) for o in catalog.offers]
    assert len(keys) == len(set(keys)) > 0
    assert catalog.clouds() == ["aws", "azure", "gcp", "oci"]
    assert all(o.source for o in catalog.offers)  # every price says where it came from


HEADER = "cloud,service,region,instance_type,gpu,gpu_count,gpu_memory_gib,vcpus,memory_gib,usd_per_hour,spot_usd_per_hour,price_basis,source,as_of\n"
VM_PRICE = '"VM list price (service adds a markup, unknown)"'


@pytest.fixture
def precedence(tmp_path: Path) -> Catalog:
    """Three instance types: one with a managed price and a VM twin, one with only a VM price, one with neither."""
    path = tmp_path / "offers.csv"
    path.write_text(
        HEADER
        + f"aws,S,us-east-1,both,A10G,1,24,4,16,1.41,,{MANAGED_PRICE},list,2026-09-27\n"
        + f"aws,S,us-east-1,both,A10G,1,24,4,16,1.01,,{VM_PRICE},vms,\n"
        + f"aws,S,us-east-1,vm-only,H200,8,141,192,2048,,,{MANAGED_PRICE},none found,\n"
        + f"aws,S,us-east-1,vm-only,H200,8,141,192,2048,63.3,,{VM_PRICE},vms,\n"
        + f"aws,S,us-east-1,unpriced,H200,8,141,192,2048,,,{MANAGED_PRICE},none found,\n"
    )
    return load_catalog(path)


def test_managed_price_wins_over_the_vm_price_beneath_it(precedence: Catalog) -> None:
    offer = one(precedence, "aws", "us-east-1", "both")
    assert (offer.usd_per_hour, offer.price_basis, offer.price_is_lower_bound) == (1.41, MANAGED_PRICE, False)


def test_vm_price_stands_in_as_a_lower_bound_where_no_managed_price_is_known(precedence: Catalog) -> None:
    offer = one(precedence, "aws", "us-east-1", "vm-only")
    assert offer.usd_per_hour == 63.3
    assert offer.price_is_lower_bound


def test_row_without_a_price_stays_with_an_unknown_price(precedence: Catalog) -> None:
    offer = one(precedence, "aws", "us-east-1", "unpriced")
    assert offer.usd_per_hour is None


def test_fixture_precedence(mini_catalog: Catalog) -> None:
    assert one(mini_catalog, "aws", "us-east-1", "ml.p5.48xlarge").usd_per_hour == 60.0
    assert mini_catalog.dated == "prices dated 2026-07-30 to 2026-09-27, 4 offers undated"


def test_list_offers_filters_and_sorts_cheapest_first_unknown_last(mini_catalog: Catalog) -> None:
    listed = list_offers(mini_catalog, cloud="aws", gpu="l4")
    assert [o.instance_type for o in listed] == ["ml.g6.xlarge", "ml.g6.xlarge", "ml.g6.12xlarge"]
    assert [o.region for o in listed][:2] == ["us-west-2", "us-east-1"]
    everything = list_offers(mini_catalog)
    assert everything[-1].usd_per_hour is None


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [({"cloud": "awss"}, "did you mean 'aws'"), ({"gpu": "H1OO"}, "no GPU type 'H1OO'"), ({"cloud": "aws", "region": "us-east1"}, "did you mean 'us-east-1'")],
)
def test_list_offers_rejects_unknown_filters(mini_catalog: Catalog, kwargs: dict, text: str) -> None:
    with pytest.raises(UsageError, match=text):
        list_offers(mini_catalog, **kwargs)


def test_catalog_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("cloud,region\naws,us-east-1\n")
    with pytest.raises(CatalogError, match="lacks the columns service"):
        load_catalog(bad)


def test_catalog_bad_number_names_the_line(tmp_path: Path, mini_catalog_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    lines = mini_catalog_path.read_text().splitlines()
    bad.write_text("\n".join([lines[0], lines[1].replace(",1.00,", ",cheap,")]) + "\n")
    with pytest.raises(CatalogError, match=r"bad\.csv:2: bad value"):
        load_catalog(bad)


def test_catalog_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read the price catalog"):
        load_catalog(tmp_path / "none.csv")


# SkyPilot's catalog snapshots carry no date and their commits' dates cannot be read offline;
# `llamadeploy catalog refresh` replaces these rows with dated ones. This list only shrinks.
UNDATED_SNAPSHOTS = (
    "https://github.com/skypilot-org/skypilot-catalog/blob/00148f2af3672e2229b4f7bf8157d5a3f36e3c35/catalogs/v8/aws/vms.csv",
    "https://github.com/skypilot-org/skypilot-catalog/blob/098741e70562f65d7af1cceb81e33b284f742604/catalogs/v6/azure/vms.csv",
    "https://github.com/skypilot-org/skypilot-catalog/blob/006059e0f18acb1341e22a27751e9f80df6ba92f/catalogs/v8/gcp/vms.csv",
)


def test_every_price_names_a_url_a_reader_can_open_and_a_date() -> None:
    """A price a finance lead takes to a meeting can be checked: its source is a URL (the vendor's
    price page or API, or a public file at a commit) and it is dated; an offer without a price says
    why. Not an opaque index id, not 'found somewhere'."""
    for offer in load_catalog().offers:
        where = f"{offer.cloud} {offer.region} {offer.instance_type}"
        if offer.usd_per_hour is None:
            assert offer.source.startswith("no "), (where, offer.source)  # why there is no price
            continue
        assert re.search(r"https://\S+", offer.source), (where, offer.source)
        assert "index id" not in offer.source and "not exposed" not in offer.source, (where, offer.source)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", offer.as_of) or offer.source.startswith(UNDATED_SNAPSHOTS), (where, offer.source, offer.as_of)
