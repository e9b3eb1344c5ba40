"""``SlotSearch.free_days`` (what the portal's day page lists: the days with free times,
how many and the first) against ``SlotSearch.find`` (every free slot) over the demo
catalog, with bookings and blocks made between searches.

Property: for any exam and place, window of up to 31 days, bookings and blocks, the days
``free_days`` gives are exactly the local days of the slots ``find`` lists, with their
number and the earliest start of each."""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import count
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.consistency import HEADER
from application.base import Position
from application.catalog_admin import CatalogAdmin, Editor
from application.slot_search import FreeDay
from domain.context import system_actor
from tests.support import catalog_ids, lift_booking_caps, register

pytestmark = pytest.mark.integration

# (exam, place, a resource there to block): two MRIs with different hours at Riverside
# (a start both offer is one slot), the 24-hour CT in Chicago, the mobile unit's rounds.
SEARCHES = [
    ("xr-chest", "riverside", "riverside-xr-1"),
    ("mri-knee", "riverside", "riverside-mri-2"),
    ("ct-head", "lakeshore", None),
    ("mammo-screening", "prairie-mobile", None),
]
NOW = datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
_examples = count()


def by_day(slots) -> dict:
    """``find``'s slots counted by their local day, with the first of each."""
    days: dict = defaultdict(list)
    for slot in slots:
        days[slot.start.astimezone(ZoneInfo(slot.timezone)).date()].append(slot.start)
    return {day: FreeDay(len(starts), min(starts)) for day, starts in sorted(days.items())}


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    what=st.sampled_from(SEARCHES),
    from_hours=st.integers(-24, 24 * 20),
    days=st.integers(1, 31),
    picks=st.lists(st.floats(0, 1, exclude_max=True), max_size=3),
    block=st.none() | st.tuples(st.integers(0, 24 * 14), st.integers(1, 30)),
)
def test_free_days_counts_by_day_what_find_lists(
    client, runtime, clock, what, from_hours, days, picks, block
):
    # Given the clock, a patient, and a window of days
    exam, place, blockable = what
    n = next(_examples)
    clock.set(NOW + timedelta(minutes=n))
    lift_booking_caps(runtime)
    headers = register(client, f"days{n}@example.org")
    types, locations = catalog_ids(client)
    start = NOW + timedelta(hours=from_hours)
    search = {
        "appointment_type_id": UUID(types[exam]),
        "location_id": UUID(locations[place]),
        "start": start,
        "end": start + timedelta(days=days),
    }
    slots = runtime.services.slots

    # When a resource there is blocked for a while
    if block is not None and blockable is not None:
        admin = CatalogAdmin(
            runtime.services.catalog,
            runtime.services.scheduling,
            runtime.services.appointments,
            runtime.services.catalog_view,
            runtime.services.sync,
            runtime.services.clock,
        )
        after, hours = block
        at = start + timedelta(hours=after)
        change = admin.add_block(
            blockable,
            at,
            at + timedelta(hours=hours),
            "service visit",
            Editor(system_actor(source="test")),
            force=True,
        )
        assert change.position is not None
        assert runtime.services.sync.wait(change.position)

    # Then the days agree, and again after each booking of one of the slots
    found = slots.find(**search)
    assert slots.free_days(**search) == by_day(found)
    for pick in picks:
        if not found:
            break
        chosen = found[int(pick * len(found))]
        booked = client.post(
            "/v1/appointments",
            headers=headers,
            json={
                "appointment_type_id": types[exam],
                "location_id": str(chosen.location_id),
                "start": chosen.start.isoformat(),
            },
        )
        assert booked.status_code == 201, booked.text
        assert runtime.services.sync.wait(Position.parse(booked.headers[HEADER]))
        found = slots.find(**search)
        taken = (booked.json()["resource_id"], chosen.start)
        assert taken not in {(str(slot.resource_id), slot.start) for slot in found}
        assert slots.free_days(**search) == by_day(found)


def test_free_days_of_the_two_mris_count_a_shared_start_once(runtime, clock):
    # Given Riverside's two MRIs, open at the same quarter hours on a weekday
    clock.set(datetime(2026, 12, 7, 5, 0, tzinfo=UTC))  # Monday, before either opens
    types = {spec["code"]: i for i, spec in runtime.services.catalog_view.appointment_types()}
    places = {spec["code"]: i for i, spec in runtime.services.catalog_view.locations()}
    search = {
        "appointment_type_id": types["mri-knee"],
        "location_id": places["riverside"],
        "start": datetime(2026, 12, 7, 5, 0, tzinfo=UTC),
        "end": datetime(2026, 12, 8, 5, 0, tzinfo=UTC),
    }

    # When the day is counted
    days = runtime.services.slots.free_days(**search)

    # Then it holds as many slots as find lists (one per start, not one per machine), the
    # first at the earlier machine's opening (07:00 New York time)
    found = runtime.services.slots.find(**search)
    assert len(runtime.services.catalog_view.resources("MR", places["riverside"])) == 2
    assert list(days.values()) == [FreeDay(len(found), found[0].start)]
    assert found[0].start == datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
