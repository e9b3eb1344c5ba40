"""Appointment answers say what a person reads: the exam and its preparation, the
location's name, address, phone and time zone name at that time, the mobile unit's site
of the day, and the times on the location's clock, in every patient and staff answer."""

from datetime import UTC, datetime

import pytest

from application.appointment_details import AppointmentDetails
from projections.catalog_view import PostgresCatalogReader
from tests.support import catalog_ids, demo_entry, post_booking, register, staff_headers

pytestmark = pytest.mark.integration

DETAILS = ("exam", "location", "site", "local_start", "local_end")


def booked(client, headers, ids, exam, location, start) -> dict:
    response = post_booking(client, headers, start, exam, location, ids)
    assert response.status_code == 201, response.text
    return response.json()


def address(location_code: str) -> dict:
    """The demo catalog's address of a location, as answers carry it."""
    return demo_entry("locations", location_code)["address"]


def test_a_booking_at_a_fixed_centre_names_the_exam_place_and_local_time(client):
    ids = catalog_ids(client)
    ana = register(client, "ana@example.org")

    # Tuesday 1 December 2026, 09:15 in Chicago (45-minute slots from 07:00).
    answer = booked(client, ana, ids, "mri-brain", "lakeshore", "2026-12-01T09:15:00-06:00")

    assert answer["exam"] == {
        "id": ids[0]["mri-brain"],
        "name": "MRI brain without contrast",
        "preparation": demo_entry("appointment_types", "mri-brain")["preparation"],
    }
    assert answer["exam"]["preparation"].startswith("Remove all metal.")
    assert answer["location"] == {
        "id": ids[1]["lakeshore"],
        "name": "Lakeshore Radiology",
        "kind": "fixed",
        "timezone": "America/Chicago",
        "timezone_name": "CST",
        "phone": "+1 312 555 0150",
        "address": {
            "line1": "2500 Sample Drive",
            "line2": "",
            "city": "Chicago",
            "region": "IL",
            "postal_code": "60000",
            "country": "US",
        },
    }
    assert answer["location"]["address"] == address("lakeshore")
    assert answer["site"] is None
    assert answer["local_start"] == "2026-12-01T09:15:00-06:00"
    assert answer["local_end"] == "2026-12-01T10:00:00-06:00"
    # The fields clients already read are as they were.
    assert answer["start"] == "2026-12-01T09:15:00-06:00"
    assert answer["timezone"] == "America/Chicago"
    assert answer["location_id"] == ids[1]["lakeshore"]

    # The same in the patient's list and in the single read.
    listed = client.get("/v1/appointments", headers=ana).json()
    one = client.get(f"/v1/appointments/{answer['id']}", headers=ana).json()
    for shown in (listed[0], one):
        assert {key: shown[key] for key in DETAILS} == {key: answer[key] for key in DETAILS}

    cancelled = client.post(
        f"/v1/appointments/{answer['id']}/cancel", headers=ana, json={"reason": "away"}
    ).json()
    assert cancelled["status"] == "cancelled"
    assert {key: cancelled[key] for key in DETAILS} == {key: answer[key] for key in DETAILS}


def test_the_mobile_coach_names_the_site_of_each_day(client):
    ids = catalog_ids(client)
    bo = register(client, "bo@example.org")

    monday = booked(
        client, bo, ids, "mammo-screening", "prairie-mobile", "2026-12-07T10:00:00-06:00"
    )
    tuesday = booked(
        client, bo, ids, "mammo-screening", "prairie-mobile", "2026-12-08T10:00:00-06:00"
    )

    assert monday["site"] == {
        "name": "Oak Grove Community Health Center",
        "address": {
            "line1": "12 Placeholder Street",
            "line2": "",
            "city": "Oak Grove",
            "region": "IL",
            "postal_code": "60001",
            "country": "US",
        },
    }
    assert tuesday["site"]["name"] == "Northbrook Public Library car park"
    assert tuesday["site"]["address"]["line1"] == "48 Fictional Road"
    assert tuesday["site"]["address"]["city"] == "Northbrook"
    visits = demo_entry("locations", "prairie-mobile")["visits"]
    assert [monday["site"]["address"], tuesday["site"]["address"]] == [
        visits[0]["address"],
        visits[1]["address"],
    ]
    # The location itself is still the unit, with its depot address.
    for answer in (monday, tuesday):
        assert answer["location"]["name"] == "Prairie Mobile Mammography Coach"
        assert answer["location"]["kind"] == "mobile"
        assert answer["location"]["address"] == address("prairie-mobile")
        assert answer["exam"]["name"] == "Screening mammography, bilateral (3D)"

    listed = {
        item["id"]: item["site"] for item in client.get("/v1/appointments", headers=bo).json()
    }
    assert listed == {monday["id"]: monday["site"], tuesday["id"]: tuesday["site"]}


def test_the_zone_name_follows_daylight_saving_time(client):
    ids = catalog_ids(client)
    cy = register(client, "cy@example.org")

    # Friday 12 March 2027 is still standard time in Chicago; the US switched on Sunday 14.
    before = booked(client, cy, ids, "xr-chest", "lakeshore", "2027-03-12T09:00:00-06:00")
    assert before["location"]["timezone_name"] == "CST"
    assert before["local_start"] == "2027-03-12T09:00:00-06:00"

    moved = client.post(
        f"/v1/appointments/{before['id']}/reschedule",
        headers=cy,
        json={"start": "2027-03-15T09:00:00-05:00"},
    )
    assert moved.status_code == 200, moved.text
    after = moved.json()
    assert after["location"]["timezone_name"] == "CDT"
    assert after["local_start"] == "2027-03-15T09:00:00-05:00"
    assert after["local_end"] == "2027-03-15T09:15:00-05:00"
    assert (
        client.get(f"/v1/appointments/{after['id']}", headers=cy).json()["location"][
            "timezone_name"
        ]
        == "CDT"
    )


def test_staff_views_carry_the_same_details(client, runtime, clock):
    ids = catalog_ids(client)
    di = register(client, "di@example.org")
    answer = booked(
        client, di, ids, "mammo-screening", "prairie-mobile", "2026-12-11T09:00:00-06:00"
    )
    clock.set(datetime(2026, 12, 11, 14, 30, tzinfo=UTC))  # that morning: check-in opens
    scheduler = staff_headers(client, runtime, clock, "scheduler")

    one = client.get(f"/v1/staff/appointments/{answer['id']}", headers=scheduler)
    day = client.get(
        "/v1/staff/appointments",
        headers=scheduler,
        params={
            "location_id": ids[1]["prairie-mobile"],
            "start": "2026-12-11T00:00:00-06:00",
            "end": "2026-12-12T00:00:00-06:00",
        },
    )
    checked_in = client.post(f"/v1/staff/appointments/{answer['id']}/check-in", headers=scheduler)

    assert one.status_code == day.status_code == checked_in.status_code == 200
    assert [item["id"] for item in day.json()] == [answer["id"]]
    assert answer["site"]["name"] == "Westfield Family Clinic"  # a Friday
    for shown in (one.json(), day.json()[0], checked_in.json()):
        assert {key: shown[key] for key in DETAILS} == {key: answer[key] for key in DETAILS}
    assert checked_in.json()["status"] == "checked_in"


class CaughtUpOnNothing(PostgresCatalogReader):
    """The catalog read model as it is just after a catalog change it has not applied."""

    def specs(self, appointment_type_ids, location_ids):
        return {}, {}


def test_an_entry_the_read_model_lacks_is_read_from_the_catalog(client, runtime):
    ids = catalog_ids(client)
    ed = register(client, "ed@example.org")
    answer = booked(client, ed, ids, "ct-head", "riverside", "2026-12-01T09:00:00-05:00")
    client.get("/v1/appointments", headers=ed)  # the read model holds the booking
    view = runtime.services.appointments.get(answer["id"])
    assert view is not None

    lagging = AppointmentDetails(CaughtUpOnNothing(runtime.pool), runtime.services.catalog)
    described = lagging.one(view)

    assert described.exam.name == answer["exam"]["name"] == "CT head without contrast"
    assert described.location.name == "Riverside Imaging Center"
    assert described.location.timezone_name == "EST"
    assert described.local_start == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert described.id == view.id  # its own attributes read through
