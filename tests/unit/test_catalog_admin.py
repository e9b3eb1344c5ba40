"""The staff catalog's decisions: the pure ones (which bookings a change strands, which
block a DELETE names, wall-clock times in a location's zone), then the commands on
in-memory persistence (a change made meanwhile is not lost; centres are respected)."""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import given
from hypothesis import strategies as st

from application.catalog import Catalog
from application.catalog_admin import (
    Booking,
    CatalogAdmin,
    Editor,
    Opening,
    OutsideCentresError,
    aware,
    block_index,
    stranded,
)
from application.catalog_file import AppointmentTypeEntry, parse_catalog
from application.errors import NotFoundError
from application.ports import AppointmentReader, ReadModelSync
from application.scheduling import Scheduling
from domain.context import Actor, system_actor
from domain.errors import InvalidValueError
from domain.location import Location
from domain.resource import Resource, normalise_spec
from tests.support import SettableClock

NY = ZoneInfo("America/New_York")
HERE, THERE = uuid4(), uuid4()
FIXED = {"code": "here", "kind": "fixed", "timezone": "America/New_York", "name": "Here",
         "address": {"line1": "1 Main St", "city": "Town"}}  # fmt: skip
WEEKDAYS = {day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def resource(**changes):
    spec = {"code": "us-1", "name": "US", "modality": "US", "location_id": str(HERE)}
    return normalise_spec({**spec, "hours": WEEKDAYS, **changes})


def booking(start: str, minutes: int = 30, location=HERE) -> Booking:
    begins = datetime.fromisoformat(start)
    return Booking(uuid4(), uuid4(), location, begins, begins + timedelta(minutes=minutes), NY.key)


TUESDAY_10 = booking("2026-12-01T10:00-05:00")
BEFORE = Opening(resource(), HERE, FIXED)


def test_a_closure_on_the_booked_day_strands_it_and_one_on_another_day_does_not():
    closed = Opening(resource(closures=[{"date": "2026-12-01"}]), HERE, FIXED)
    elsewhere = Opening(resource(closures=[{"date": "2026-12-02"}]), HERE, FIXED)
    assert stranded([TUESDAY_10], before=BEFORE, after=closed) == [TUESDAY_10]
    assert stranded([TUESDAY_10], before=BEFORE, after=elsewhere) == []


def test_a_block_strands_only_the_bookings_it_overlaps():
    block = {"start": "2026-12-01T10:15:00-05:00", "end": "2026-12-01T11:00:00-05:00"}
    after = Opening(resource(blocks=[block]), HERE, FIXED)
    touching = booking("2026-12-01T11:00-05:00")
    assert stranded([TUESDAY_10, touching], before=BEFORE, after=after) == [TUESDAY_10]


def test_hours_that_still_hold_the_booking_strand_nothing():
    narrower = Opening(resource(hours={"tue": ["10:00-10:30"]}), HERE, FIXED)
    later = Opening(resource(hours={"tue": ["10:01-17:00"]}), HERE, FIXED)
    assert stranded([TUESDAY_10], before=BEFORE, after=narrower) == []
    assert stranded([TUESDAY_10], before=BEFORE, after=later) == [TUESDAY_10]


def test_a_move_to_another_location_strands_the_bookings_made_here():
    moved = Opening(resource(location_id=str(THERE)), THERE, {**FIXED, "code": "there"})
    assert stranded([TUESDAY_10], before=BEFORE, after=moved) == [TUESDAY_10]


def test_a_new_time_zone_moves_the_windows_under_the_bookings():
    west = Opening(resource(), HERE, {**FIXED, "timezone": "America/Los_Angeles"})
    afternoon = booking("2026-12-01T15:00-05:00")  # 12:00 in Los Angeles
    assert stranded([TUESDAY_10, afternoon], before=BEFORE, after=west) == [TUESDAY_10]


def test_a_mobile_unit_that_stops_visiting_on_a_day_strands_that_days_bookings():
    visit = {"site": "Library", "address": {"line1": "2 Side St"}, "weekdays": ["tue", "wed"]}
    mobile = {**FIXED, "kind": "mobile", "visits": [visit]}
    fewer = {**mobile, "visits": [{**visit, "weekdays": ["wed"]}]}
    assert stranded(
        [TUESDAY_10],
        before=Opening(resource(), HERE, mobile),
        after=Opening(resource(), HERE, fewer),
    ) == [TUESDAY_10]


def test_a_booking_across_midnight_is_stranded_by_a_closure_of_its_second_day():
    always = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed")}
    night = booking("2026-12-01T23:45-05:00", minutes=30)
    before = Opening(resource(hours=always), HERE, FIXED)
    closed = Opening(resource(hours=always, closures=[{"date": "2026-12-02"}]), HERE, FIXED)
    assert stranded([night], before=before, after=before) == []
    assert stranded([night], before=before, after=closed) == [night]


def test_a_booking_already_outside_the_windows_is_not_listed_again():
    closed = Opening(resource(closures=[{"date": "2026-12-01"}]), HERE, FIXED)
    closed_more = Opening(
        resource(closures=[{"date": "2026-12-01"}, {"date": "2026-12-02"}]), HERE, FIXED
    )
    assert stranded([TUESDAY_10], before=closed, after=closed_more) == []


@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=5, max_value=480),
    opens=st.integers(min_value=0, max_value=23),
)
def test_a_change_that_changes_nothing_strands_nothing(start, minutes, opens):
    spec = resource(hours={"mon": [f"{opens:02d}:00-24:00"], "sun": ["00:00-12:00"]})
    same = Opening(spec, HERE, FIXED)
    one = Booking(uuid4(), uuid4(), HERE, start, start + timedelta(minutes=minutes), NY.key)
    assert stranded([one], before=same, after=same) == []


BLOCKS = [
    {"start": "2026-12-09T12:00:00-05:00", "end": "2026-12-09T16:00:00-05:00", "reason": ""},
    {"start": "2026-12-10T09:00:00-05:00", "end": "2026-12-10T10:00:00-05:00", "reason": ""},
]


@pytest.mark.parametrize(
    ("which", "index"),
    [("0", 0), ("1", 1), ("2026-12-10T09:00", 1), ("2026-12-09T17:00:00Z", 0)],
)
def test_a_block_is_named_by_its_index_or_its_start(which, index):
    assert block_index(BLOCKS, which, NY) == index


@pytest.mark.parametrize(
    ("which", "error"),
    [
        ("2", NotFoundError),
        ("2026-12-09T13:00", NotFoundError),
        ("noon", InvalidValueError),
        ("\u00b2", InvalidValueError),
        ("9999-12-31T23:00", InvalidValueError),
    ],
)
def test_a_block_that_is_not_there_or_a_name_that_is_not_a_time_is_refused(which, error):
    with pytest.raises(error):
        block_index(BLOCKS, which, NY)


def test_wall_clock_times_are_in_the_zone_and_must_exist_there():
    assert aware(datetime(2026, 12, 1, 9), NY).isoformat() == "2026-12-01T09:00:00-05:00"
    # The repeated hour of the autumn change is its first occurrence (still summer time).
    assert aware(datetime(2026, 11, 1, 1, 30), NY).utcoffset() == timedelta(hours=-4)
    given_offset = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert aware(given_offset, NY) is given_offset
    with pytest.raises(InvalidValueError, match="does not exist"):
        aware(datetime(2027, 3, 14, 2, 30), NY)


# The commands on in-memory persistence ------------------------------------------------

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
CATALOG = {
    "locations": [FIXED],
    "resources": [{"code": "us-1", "name": "US", "modality": "US", "location": "here",
                   "hours": WEEKDAYS}],
}  # fmt: skip


class NoBookings(AppointmentReader):
    """No appointments; calls ``meanwhile`` once when asked, as a concurrent request would."""

    def __init__(self, meanwhile=None):
        self.meanwhile = meanwhile

    def active_on_resource(self, resource_id, after):
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile:
            meanwhile()
        return []

    def for_patient(self, patient_id):
        return []

    def get(self, appointment_id):
        return None

    def at_location(self, location_id, start, end):
        return []

    def locations_of_patient(self, patient_id):
        return set()


class CaughtUp(ReadModelSync):
    def wait(self, position, timeout=5.0):
        return True

    def head(self, application):
        return None


def admin(catalog, reader):
    scheduling = Scheduling(POPO, catalog=catalog, clock=SettableClock())
    return CatalogAdmin(catalog, scheduling, reader, None, CaughtUp(), SettableClock())


def test_a_stale_expected_version_is_refused_like_a_concurrent_save():
    catalog = Catalog(POPO)
    catalog.apply(parse_catalog(CATALOG), system_actor())
    spec = catalog.resource(Resource.create_id("us-1")).spec
    with pytest.raises(IntegrityError):
        catalog.put(Resource, spec, system_actor(), expected_version=None)
    with pytest.raises(IntegrityError):
        catalog.put(Location, {**FIXED, "code": "new"}, system_actor(), expected_version=1)


def test_a_change_made_meanwhile_is_not_lost_the_command_decides_again():
    catalog = Catalog(POPO)
    catalog.apply(parse_catalog(CATALOG), system_actor())
    editor = Editor(Actor(id="s1", role="scheduler"))
    other = admin(catalog, NoBookings())
    reader = NoBookings(
        meanwhile=lambda: other.add_closure("us-1", date(2026, 12, 1), "Pipe", editor)
    )

    change = admin(catalog, reader).add_closure("us-1", date(2026, 12, 2), "Drill", editor)

    assert change.outcome == "revised"
    closures = catalog.resource(Resource.create_id("us-1")).spec["closures"]
    assert [c["date"] for c in closures] == ["2026-12-01", "2026-12-02"]


def test_staff_of_one_centre_may_not_change_another_or_the_shared_exam_types():
    catalog = Catalog(POPO)
    catalog.apply(parse_catalog(CATALOG), system_actor())
    elsewhere = Editor(Actor(id="s2", role="scheduler"), frozenset({uuid4()}))
    with pytest.raises(OutsideCentresError):
        admin(catalog, NoBookings()).set_hours("us-1", WEEKDAYS, elsewhere)
    exam = AppointmentTypeEntry(code="ct", name="CT", modality="CT", cpt="70450",
                                duration_minutes=15)  # fmt: skip
    with pytest.raises(OutsideCentresError):
        admin(catalog, NoBookings()).put_appointment_type(exam, elsewhere)
