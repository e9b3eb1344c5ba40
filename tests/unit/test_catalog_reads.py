"""The catalog entries bookings decide with (``application.catalog_reads``): read once
while the catalog's log stands still, read again as soon as it moves."""

import pytest

from application.catalog import Catalog
from application.catalog_file import parse_catalog
from application.catalog_reads import SharedCatalog
from application.errors import NotFoundError
from domain.context import system_actor
from domain.location import Location
from domain.resource import Resource
from tests.unit.test_catalog_admin import CATALOG, POPO

US_1 = Resource.create_id("us-1")


@pytest.fixture
def catalog() -> Catalog:
    catalog = Catalog(POPO)
    catalog.apply(parse_catalog(CATALOG), system_actor())
    return catalog


def test_entries_are_read_once_while_the_log_stands_still(catalog):
    shared = SharedCatalog(catalog)
    first = shared.current()
    resource = first.resource(US_1)
    catalog.find = None  # any read of the catalog from here on would fail
    again = shared.current()
    assert again is first
    assert again.resource(US_1) is resource


def test_an_edit_is_seen_by_the_next_read(catalog):
    shared = SharedCatalog(catalog)
    before = shared.current().resource(US_1)
    spec = {**before.spec, "name": "Renamed"}
    catalog.put(Resource, spec, system_actor(), expected_version=before.version)
    after = shared.current().resource(US_1)
    assert after.spec["name"] == "Renamed"
    assert before.spec["name"] != "Renamed"


def test_an_unknown_entry_is_refused_each_time_and_not_kept(catalog):
    shared = SharedCatalog(catalog)
    missing = Location.create_id("nowhere")
    for _ in range(2):
        with pytest.raises(NotFoundError):
            shared.current().location(missing)
    catalog.put(
        Location,
        {**catalog.location(Location.create_id(CATALOG["locations"][0]["code"])).spec,
         "code": "nowhere"},
        system_actor(),
        expected_version=None,
    )  # fmt: skip
    assert shared.current().location(missing).spec["code"] == "nowhere"
