"""The catalog file's booking horizons and date bounds (issue 9, finding 6)."""

import pytest

from application.catalog_file import parse_catalog
from domain.appointment_type import AppointmentType
from domain.errors import InvalidValueError

EXAM = {
    "code": "ct-head",
    "name": "CT head",
    "modality": "CT",
    "cpt": "70450",
    "duration_minutes": 15,
}
LOCATION = {
    "code": "riverside",
    "name": "Riverside",
    "timezone": "America/New_York",
    "address": {"line1": "1 River Rd", "city": "Springfield"},
}


def resource(**extra):
    return {
        "code": "ct-1",
        "name": "CT 1",
        "modality": "CT",
        "location": "riverside",
        "hours": {"mon": ["08:00-17:00"]},
        **extra,
    }


def test_an_exam_without_a_horizon_keeps_its_old_spec_and_books_a_year_ahead():
    specs = parse_catalog({"appointment_types": [EXAM]})

    assert specs.appointment_types == [{**EXAM, "preparation": ""}]
    exam = AppointmentType.define(specs.appointment_types[0], {})
    assert exam.booking_horizon_days == 365


def test_an_exam_s_own_horizon_is_kept():
    specs = parse_catalog({"appointment_types": [{**EXAM, "booking_horizon_days": 30}]})

    assert specs.appointment_types[0]["booking_horizon_days"] == 30
    assert AppointmentType.define(specs.appointment_types[0], {}).booking_horizon_days == 30


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_a_horizon_out_of_bounds_is_refused(days):
    with pytest.raises(InvalidValueError, match="booking_horizon_days"):
        parse_catalog({"appointment_types": [{**EXAM, "booking_horizon_days": days}]})


@pytest.mark.parametrize(
    "extra",
    [
        {"closures": [{"date": "9999-12-31"}]},
        {"closures": [{"date": "0001-01-01"}]},
        {"blocks": [{"start": "9999-12-31T08:00:00", "end": "9999-12-31T09:00:00"}]},
        {"blocks": [{"start": "2026-12-01T08:00:00+23:59", "end": "2026-12-01T09:00:00Z"}]},
    ],
)
def test_closures_and_blocks_far_off_are_refused(extra):
    with pytest.raises(InvalidValueError, match="between"):
        parse_catalog({"locations": [LOCATION], "resources": [resource(**extra)]})
