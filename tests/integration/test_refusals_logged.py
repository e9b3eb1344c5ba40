"""Refused writes are in the PHI access log as refused reads are: a patient changing
another patient's appointment, a scheduler's front-desk action or catalog change outside
their centres. Each refusal is one row: who, which route, which object, the outcome and
why. The log is written asynchronously; tests wait on the writer's flush()."""

import pytest

from domain.location import Location
from tests.support import book, catalog_ids, register, staff_headers

pytestmark = pytest.mark.integration


def refusals(runtime, resource_id: str) -> list[tuple[str, str, str, str, str]]:
    """(role, route, action, outcome, reason) of every non-allowed row naming the object."""
    assert runtime.services.access_log.flush(timeout=30)
    with runtime.pool.connection() as conn:
        return conn.execute(
            "SELECT role, resource, action, outcome, reason FROM phi_access_log"
            " WHERE resource_id = %s AND outcome NOT IN ('allowed', 'success') ORDER BY id",
            (resource_id,),
        ).fetchall()


@pytest.fixture
def scene(client, runtime, clock):
    types, locations = catalog_ids(client)
    here = register(client, "here@example.org")
    there = register(client, "there@example.org")
    at_lakeshore = book(client, there, types, locations, "lakeshore", "2026-12-01T09:00:00-06:00")
    client.get("/v1/appointments", headers=there)  # read models caught up
    return here, at_lakeshore


APPOINTMENT = "/v1/appointments/{appointment_id}"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"notes": "mine now"}),
        ("POST", "/reschedule", {"start": "2026-12-02T09:00:00-06:00"}),
        ("POST", "/cancel", {"reason": "not coming"}),
    ],
)
def test_a_patients_change_of_someone_elses_appointment_is_logged(
    client, runtime, scene, method, suffix, body
):
    # given another patient's appointment
    intruder, theirs = scene
    # when a patient tries to change it
    response = client.request(
        method, f"/v1/appointments/{theirs['id']}{suffix}", headers=intruder, json=body
    )
    # then it is answered as missing, and the refusal is in the log
    assert response.status_code == 404, response.text
    assert refusals(runtime, theirs["id"]) == [
        ("patient", APPOINTMENT + suffix, method.lower(), "not_found", "no such appointment")
    ]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"notes": "seen"}),
        ("POST", "/check-in", None),
        ("POST", "/complete", None),
        ("POST", "/no-show", {"reason": "did not come"}),
    ],
)
def test_a_schedulers_front_desk_action_outside_their_centres_is_logged(
    client, runtime, clock, scene, method, suffix, body
):
    # given a scheduler of Riverside and an appointment at Lakeshore
    _, theirs = scene
    scheduler = staff_headers(
        client, runtime, clock, "scheduler", centres=[Location.create_id("riverside")]
    )
    # when the scheduler acts on it
    kwargs = {"json": body} if body is not None else {}
    response = client.request(
        method, f"/v1/staff/appointments/{theirs['id']}{suffix}", headers=scheduler, **kwargs
    )
    # then 404, logged once
    assert response.status_code == 404, response.text
    route = "/v1/staff/appointments/{appointment_id}" + suffix
    assert refusals(runtime, theirs["id"]) == [
        ("scheduler", route, method.lower(), "not_found", "no such appointment")
    ]


def test_a_catalog_change_outside_the_callers_centres_is_logged(client, runtime, clock):
    # given a scheduler of Lakeshore only
    lakeshore_only = staff_headers(
        client, runtime, clock, "scheduler", centres=[Location.create_id("lakeshore")]
    )
    # when they close a Riverside resource
    response = client.post(
        "/v1/staff/catalog/resources/riverside-us-1/closures",
        headers=lakeshore_only,
        json={"date": "2026-12-01"},
    )
    # then 403, and the refusal is logged with its reason
    assert response.status_code == 403, response.text
    assert refusals(runtime, "riverside-us-1") == [
        (
            "scheduler",
            "/v1/staff/catalog/resources/{code}/closures",
            "post",
            "denied",
            "that location is not one of your centres",
        )
    ]


def test_a_refused_read_is_logged_once(client, runtime, scene):
    # given another patient's appointment
    intruder, theirs = scene
    # when a patient reads it
    assert client.get(f"/v1/appointments/{theirs['id']}", headers=intruder).status_code == 404
    # then the read's own entry is the only one (the generic hook does not add another)
    assert [row[3] for row in refusals(runtime, theirs["id"])] == ["denied_or_missing"]
