"""What an appointment answer says about place and time, from catalog specs (pure)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from application.appointment_details import describe
from tests.support import demo_entry

COACH = demo_entry("locations", "prairie-mobile")
LAKESHORE = demo_entry("locations", "lakeshore")
MAMMO = demo_entry("appointment_types", "mammo-screening")


@dataclass(frozen=True)
class Booked:
    start: datetime
    timezone: str = "America/Chicago"
    id: UUID = field(default_factory=uuid4)
    appointment_type_id: UUID = field(default_factory=uuid4)
    location_id: UUID = field(default_factory=uuid4)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=20)


def test_the_site_is_the_one_of_the_local_day_not_the_utc_day():
    # Monday 7 December 2026, 21:00 in Chicago is already Tuesday in UTC.
    late_monday = Booked(datetime(2026, 12, 8, 3, 0, tzinfo=UTC))

    described = describe(late_monday, MAMMO, COACH)

    assert described.site is not None
    assert described.site.name == "Oak Grove Community Health Center"
    assert described.local_start.isoformat() == "2026-12-07T21:00:00-06:00"


def test_a_mobile_unit_on_a_day_it_visits_nowhere_has_no_site():
    sunday = Booked(datetime(2026, 12, 6, 16, 0, tzinfo=UTC))
    assert describe(sunday, MAMMO, COACH).site is None


def test_a_fixed_centre_has_no_site_but_its_own_address():
    described = describe(Booked(datetime(2026, 12, 1, 15, 0, tzinfo=UTC)), MAMMO, LAKESHORE)
    assert described.site is None
    assert described.location.address["line1"] == "2500 Sample Drive"
    assert described.location.phone == "+1 312 555 0150"


@pytest.mark.parametrize(
    ("instant", "name", "wall_clock"),
    [
        # 1 November 2026: 01:00-02:00 happens twice in Chicago, first in CDT, then in CST.
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "CDT", "2026-11-01T01:30:00-05:00"),
        (datetime(2026, 11, 1, 7, 30, tzinfo=UTC), "CST", "2026-11-01T01:30:00-06:00"),
        # 14 March 2027: 02:00 jumps to 03:00.
        (datetime(2027, 3, 14, 7, 59, tzinfo=UTC), "CST", "2027-03-14T01:59:00-06:00"),
        (datetime(2027, 3, 14, 8, 0, tzinfo=UTC), "CDT", "2027-03-14T03:00:00-05:00"),
    ],
)
def test_the_zone_name_is_the_one_at_the_appointments_instant(instant, name, wall_clock):
    described = describe(Booked(instant), MAMMO, LAKESHORE)
    assert described.location.timezone_name == name
    assert described.local_start.isoformat() == wall_clock


def test_the_appointments_own_attributes_read_through():
    booked = Booked(datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
    described = describe(booked, MAMMO, LAKESHORE)
    assert (described.id, described.start, described.end) == (booked.id, booked.start, booked.end)
    assert described.exam.name == "Screening mammography, bilateral (3D)"
    with pytest.raises(AttributeError):
        _ = described.no_such_attribute
