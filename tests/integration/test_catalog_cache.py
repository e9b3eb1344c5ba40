"""The catalog read model held in memory (``projections.catalog_cache``): it answers as the
tables do after every change, a staff change shows on the next page, and one request reads
one catalog."""

import pytest

from application.catalog_file import CatalogSpecs
from application.catalog_scope import one_catalog_read
from domain.context import system_actor
from projections.catalog_cache import CachedCatalogReader
from projections.catalog_view import PostgresCatalogReader
from tests.support import catalog_ids, demo_specs, portal_register

pytestmark = pytest.mark.integration

MODALITIES = ("MR", "CT", "DX", "US", "MG")


def answers(reader) -> tuple:
    """Everything a catalog reader can be asked, for comparing two of them."""
    types, locations = reader.appointment_types(), reader.locations()
    return (
        locations,
        types,
        {
            (modality, place): reader.resources(modality, place)
            for modality in MODALITIES
            for place in [None, *(i for i, _ in locations)]
        },
        reader.specs([i for i, _ in types][:2], [i for i, _ in locations][1:]),
    )


def renamed(specs: CatalogSpecs, code: str, name: str) -> CatalogSpecs:
    locations = [{**s, "name": name} if s["code"] == code else s for s in specs.locations]
    return specs.model_copy(update={"locations": locations})


def apply(runtime, specs: CatalogSpecs) -> None:
    change = runtime.services.catalog.apply(specs, system_actor(source="test"))
    assert change.position is not None
    assert runtime.services.sync.wait(change.position)


def test_the_cached_reader_answers_as_the_tables_do_after_each_change(runtime):
    cached = runtime.services.catalog_view
    assert isinstance(cached, CachedCatalogReader)
    tables = PostgresCatalogReader(runtime.pool)
    assert answers(cached) == answers(tables)
    assert len(answers(cached)[0]) == 3  # the demo catalog's places

    # When staff rename a place, then rename it back
    for name in ("Riverside Imaging (renamed)", "Riverside Imaging Center"):
        apply(runtime, renamed(demo_specs(), "riverside", name))

        # Then the next read has the change, and agrees with the tables in every answer
        assert name in [spec["name"] for _, spec in cached.locations()]
        assert answers(cached) == answers(tables)


def test_a_staff_change_shows_on_the_next_page(portal, runtime):
    # Given a patient choosing where to have a chest X-ray
    portal_register(portal, "cache@example.org")
    types, _ = catalog_ids(portal)
    place_page = {"appointment_type_id": types["xr-chest"]}
    assert "Riverside Imaging Center" in portal.get("/book/location", params=place_page).text

    # When staff rename the place
    apply(runtime, renamed(demo_specs(), "riverside", "Riverside Radiology Hub"))

    # Then the next page shows the new name, not the old one
    page = portal.get("/book/location", params=place_page)
    assert page.status_code == 200
    assert "Riverside Radiology Hub" in page.text
    assert "Riverside Imaging Center" not in page.text


def test_within_one_request_the_catalog_is_read_once(runtime):
    cached = runtime.services.catalog_view

    def names() -> set[str]:
        return {spec["name"] for _, spec in cached.locations()}

    # Given a request that has read the catalog
    with one_catalog_read():
        before = names()

        # When staff rename a place meanwhile
        apply(runtime, renamed(demo_specs(), "lakeshore", "Lakeshore Imaging"))

        # Then the rest of the request sees the catalog it started with
        assert names() == before
        assert "Lakeshore Radiology" in names()

    # And the next request sees the change
    assert "Lakeshore Imaging" in names()
    assert "Lakeshore Radiology" not in names()
