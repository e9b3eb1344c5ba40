"""Daylight-saving and midnight edges through slot search and booking, in the demo
catalog's zones (New York and Chicago change on the same Sundays).

Property: for a search around a DST change, every slot found lies inside the resource's
opening hours in local wall-clock time, carries the zone's offset at that instant, and
appears once; each one picked is bookable at exactly that time; once booked, it is gone
from the next search and nothing unrelated disappears.
"""

from datetime import UTC, date, datetime, time, timedelta
from itertools import count
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.consistency import HEADER
from application.base import Position
from tests.support import catalog_ids, register

pytestmark = pytest.mark.integration

# Sundays on which US clocks change at 02:00 local time.
FALL_BACK_2026, SPRING_FORWARD_2027, FALL_BACK_2027 = (
    date(2026, 11, 1),
    date(2027, 3, 14),
    date(2027, 11, 7),
)
# (exam, location): the 24-hour CT covers both midnights and the changing hour; the
# others open later in the day, on days whose offset differs from the day before.
SEARCHES = [
    ("ct-head", "riverside"),
    ("ct-abdomen-pelvis", "riverside"),
    ("ct-head", "lakeshore"),
    ("mri-knee", "riverside"),
    ("xr-chest", "lakeshore"),
    ("mammo-screening", "prairie-mobile"),
]
_examples = count()


def search(client, types, locations, exam, location, start: datetime, end: datetime) -> list:
    found = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types[exam],
            "location_id": locations[location],
            "start": start.isoformat(),
            "end": end.isoformat(),
        },
    )
    assert found.status_code == 200, found.text
    return found.json()


def minutes(text: str) -> int:
    hours, mins = text.split(":")
    return int(hours) * 60 + int(mins)


def assert_inside_opening_hours(runtime, slot: dict, duration: timedelta) -> None:
    """The slot's start and end, read on the wall clock of its location, fall inside one
    opening of the resource that local day; the day is not closed, the mobile unit is
    out, and no block overlaps it."""
    resource = runtime.services.catalog.resource(UUID(slot["resource_id"]))
    location = runtime.services.catalog.location(UUID(slot["location_id"]))
    tz = ZoneInfo(location.timezone)
    start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
    assert end - start == duration  # real time, whatever the wall clock does
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    assert start.utcoffset() == local_start.utcoffset()  # the offset shown is the zone's
    assert end.utcoffset() == local_end.utcoffset()
    day = local_start.date()
    start_minute = minutes(local_start.strftime("%H:%M"))
    end_minute = minutes(local_end.strftime("%H:%M")) + 1440 * (local_end.date() - day).days
    weekday = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]
    openings = [tuple(map(minutes, span.split("-"))) for span in resource.spec["hours"][weekday]]
    assert any(
        opens <= start_minute < closes and opens < end_minute <= closes
        for opens, closes in openings
    ), (slot, openings)
    assert day.isoformat() not in {c["date"] for c in resource.spec["closures"]}
    assert location.site_on(day) is not None
    for block in resource.spec["blocks"]:
        blocked = datetime.fromisoformat(block["start"]), datetime.fromisoformat(block["end"])
        assert not (start < blocked[1] and blocked[0] < end)


def key(slot: dict) -> tuple[str, datetime]:
    return slot["location_id"], datetime.fromisoformat(slot["start"])


def overlaps(slot: dict, booked: dict) -> bool:
    return datetime.fromisoformat(slot["start"]) < datetime.fromisoformat(
        booked["end"]
    ) and datetime.fromisoformat(booked["start"]) < datetime.fromisoformat(slot["end"])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    change=st.sampled_from([FALL_BACK_2026, SPRING_FORWARD_2027, FALL_BACK_2027]),
    what=st.sampled_from(SEARCHES),
    from_hour=st.integers(0, 47),  # UTC hours from 00:00Z the day before the change
    hours=st.integers(1, 72),
    written_in_utc=st.booleans(),
    picks=st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=3),
)
def test_around_dst_every_slot_is_open_unique_and_bookable_and_booked_ones_vanish(
    client, runtime, clock, change, what, from_hour, hours, written_in_utc, picks
):
    # Given the clock a few days before the change and a patient
    exam, location = what
    n = next(_examples)
    clock.set(datetime.combine(change - timedelta(days=3), time(12), UTC) + timedelta(minutes=n))
    headers = register(client, f"dst{n}@example.org")
    types, locations = catalog_ids(client)
    duration = timedelta(
        minutes=next(
            t["duration_minutes"]
            for t in client.get("/v1/catalog/appointment-types").json()
            if t["code"] == exam
        )
    )
    start = datetime.combine(change - timedelta(days=1), time(), UTC) + timedelta(hours=from_hour)
    end = start + timedelta(hours=hours)
    if not written_in_utc:
        local = ZoneInfo("America/Chicago" if location != "riverside" else "America/New_York")
        start, end = start.astimezone(local), end.astimezone(local)

    found = search(client, types, locations, exam, location, start, end)
    for pick in picks:
        # Then every slot is in the range, in order, once, and inside opening hours
        starts = [datetime.fromisoformat(slot["start"]) for slot in found]
        assert all(start <= s < end for s in starts)
        assert starts == sorted(starts)
        assert len({key(slot) for slot in found}) == len(found)
        for slot in found:
            assert_inside_opening_hours(runtime, slot, duration)
        if not found:
            break

        # When one of them is booked
        chosen = found[int(pick * len(found))]
        booked = client.post(
            "/v1/appointments",
            headers=headers,
            json={
                "appointment_type_id": types[exam],
                "location_id": chosen["location_id"],
                "start": chosen["start"],
            },
        )

        # Then the booking is at exactly that time, and the next search no longer offers
        # it on that resource, while every slot that did not overlap it stays
        assert booked.status_code == 201, (chosen, booked.text)
        appointment = booked.json()
        assert (appointment["start"], appointment["end"]) == (chosen["start"], chosen["end"])
        assert runtime.services.sync.wait(Position.parse(booked.headers[HEADER]))
        after = search(client, types, locations, exam, location, start, end)
        assert {key(slot) for slot in after} <= {key(slot) for slot in found}
        kept = {key(slot) for slot in after}
        assert all(key(slot) in kept for slot in found if not overlaps(slot, appointment))
        assert not any(
            overlaps(slot, appointment)
            for slot in after
            if slot["resource_id"] == appointment["resource_id"]
        )
        found = after


@pytest.mark.parametrize(
    ("day", "count_", "first_hours"),
    [
        # 23 hours: 01:45 EST is followed by 03:00 EDT.
        (
            SPRING_FORWARD_2027,
            23 * 4,
            ["01:30:00-05:00", "01:45:00-05:00", "03:00:00-04:00", "03:15:00-04:00"],
        ),
        # 25 hours: the hour from 01:00 comes twice, first in EDT, then in EST.
        (
            FALL_BACK_2027,
            25 * 4,
            ["01:30:00-04:00", "01:45:00-04:00", "01:00:00-05:00", "01:15:00-05:00"],
        ),
    ],
)
def test_the_24_hour_ct_offers_every_real_quarter_hour_of_a_dst_day(
    client, clock, day, count_, first_hours
):
    clock.set(datetime.combine(day - timedelta(days=3), time(12), UTC))
    types, locations = catalog_ids(client)
    ny = ZoneInfo("America/New_York")
    local_day = (
        datetime.combine(day, time(), ny),
        datetime.combine(day + timedelta(days=1), time(), ny),
    )

    found = search(client, types, locations, "ct-head", "riverside", *local_day)

    starts = [slot["start"] for slot in found]
    assert len(starts) == len(set(starts)) == count_
    assert starts[0] == f"{day.isoformat()}T00:00:00-0{5 if day == SPRING_FORWARD_2027 else 4}:00"
    assert [s[11:] for s in starts[6:10]] == first_hours
    assert found[-1]["end"].startswith(f"{(day + timedelta(days=1)).isoformat()}T00:00:00")
