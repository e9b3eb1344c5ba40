"""Stranded appointments on real PostgreSQL: a closure, block or change of hours forced
over booked appointments moves them to ``needs_new_time`` (one ``Displaced`` each, with
the reason and the actor), frees their time, lists them in the staff answer with who they
are for, shows them to the staff (status filter) and to their patients, who choose a new
time; without ``force`` the change is refused as before. A stranding left unsettled (a
crash between the catalog's write and the scheduling log's) is settled by the follower."""

from datetime import date, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import ProjectionRunner
from psycopg.sql import SQL, Identifier

from api.consistency import HEADER
from application.base import Position
from application.catalog import Catalog
from application.stranded import StrandedAppointments, StrandingFollower
from domain.appointment import Appointment
from domain.context import Actor
from domain.location import Location
from domain.resource import Resource
from domain.stranding import Stranding
from tests.support import (
    catalog_ids,
    form_token,
    patient_of,
    portal_register,
    register_patient,
    staff_headers,
)

pytestmark = pytest.mark.integration

BASE = "/v1/staff/catalog"
# The clock stands at Monday 2026-11-30 12:00Z (07:00 in New York).
TUESDAY, WEDNESDAY = "2026-12-01", "2026-12-02"
US_RIVERSIDE = "riverside-us-1"  # the only ultrasound at Riverside: 08:00-17:00 weekdays
RESOURCE_ID = Resource.create_id(US_RIVERSIDE)
TEN, ELEVEN = "2026-12-01T10:00:00-05:00", "2026-12-01T11:00:00-05:00"


@pytest.fixture
def scheduler(client, runtime, clock):
    return staff_headers(client, runtime, clock, "scheduler")


def patient(client, given: str) -> dict[str, str]:
    return register_patient(
        client,
        {
            "email": f"{given.lower()}@example.org",
            "password": "correct horse battery staple",
            "given_name": given,
            "family_name": "Example",
            "birth_date": "1980-02-29",
        },
    )


def book(client, headers, start: str) -> str:
    types, locations = catalog_ids(client)
    response = client.post(
        "/v1/appointments",
        headers=headers,
        json={
            "appointment_type_id": types["us-abdomen"],
            "location_id": locations["riverside"],
            "start": start,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def caught_up(runtime, response) -> None:
    assert runtime.services.sync.wait(Position.parse(response.headers[HEADER]))


def close_tuesday(client, headers, **params: str):
    return client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/closures",
        headers=headers,
        params=params,
        json={"date": TUESDAY, "reason": "Burst pipe"},
    )


def displacements(runtime, appointment_id: str) -> list:
    events = runtime.services.scheduling.events.get(UUID(appointment_id))
    return [e for e in events if isinstance(e, Appointment.Displaced)]


def holders(runtime, day: str) -> set[str]:
    calendar = runtime.services.scheduling.resource_day(RESOURCE_ID, date.fromisoformat(day))
    return set() if calendar is None else set(calendar.reservations)


def staff_list(client, headers, **params: str):
    _, locations = catalog_ids(client)
    return client.get(
        "/v1/staff/appointments",
        headers=headers,
        params={
            "location_id": locations["riverside"],
            "start": "2026-12-01T00:00:00-05:00",
            "end": "2026-12-03T00:00:00-05:00",
            **params,
        },
    )


@pytest.fixture
def two_booked(client):
    ann, bob = patient(client, "Ann"), patient(client, "Bob")
    return (ann, book(client, ann, TEN)), (bob, book(client, bob, ELEVEN))


def test_without_force_the_closure_is_still_refused_and_both_stay_booked(
    client, runtime, scheduler, two_booked
):
    (ann, first), (_, second) = two_booked
    refused = close_tuesday(client, scheduler)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "would_strand_appointments"
    listed = refused.json()["appointments"]
    assert {a["id"] for a in listed} == {first, second}
    assert {a["patient"]["given_name"] for a in listed} == {"Ann", "Bob"}
    assert displacements(runtime, first) == displacements(runtime, second) == []
    assert client.get(f"/v1/appointments/{first}", headers=ann).json()["status"] == "booked"
    assert holders(runtime, TUESDAY) == {first, second}


def test_a_forced_closure_moves_both_appointments_to_needs_new_time(
    client, runtime, scheduler, two_booked
):
    (ann, first), (bob, second) = two_booked
    forced = close_tuesday(client, scheduler, force="true")

    assert forced.status_code == 200, forced.text
    body = forced.json()
    assert {a["id"] for a in body["displaced"]} == {first, second}
    assert {a["id"] for a in body["stranded"]} == {first, second}
    briefs = {a["id"]: a["patient"] for a in body["displaced"]}
    assert (briefs[first]["given_name"], briefs[first]["family_name"]) == ("Ann", "Example")
    assert briefs[second]["given_name"] == "Bob"
    assert briefs[first]["birth_date"] == "1980-02-29"
    # One Displaced each, naming the closure, its reason, the old time and the scheduler.
    for appointment_id, start in ((first, TEN), (second, ELEVEN)):
        (displaced,) = displacements(runtime, appointment_id)
        assert displaced.cause == "closure"
        assert "closed on 2026-12-01" in displaced.reason
        assert "Burst pipe" in displaced.reason
        assert displaced.start == datetime.fromisoformat(start)
        assert displaced.timezone == "America/New_York"
        assert displaced.meta["role"] == "scheduler"
        assert displaced.meta["actor_id"] not in ("", "system")
        assert displaced.by == f"scheduler:{displaced.meta['actor_id']}"
    # Their time is freed on the resource's calendar.
    assert holders(runtime, TUESDAY) == set()
    # The patients see it.
    caught_up(runtime, forced)
    for headers, appointment_id in ((ann, first), (bob, second)):
        mine = client.get(f"/v1/appointments/{appointment_id}", headers=headers)
        assert mine.json()["status"] == "needs_new_time"
    # The staff see them.
    waiting = staff_list(client, scheduler, status="needs_new_time")
    assert waiting.status_code == 200, waiting.text
    assert {a["id"] for a in waiting.json()} == {first, second}
    assert {a["patient"]["given_name"] for a in waiting.json()} == {"Ann", "Bob"}
    assert staff_list(client, scheduler, status="booked").json() == []


def test_the_old_start_is_kept_as_the_instant_it_was(client, runtime, scheduler, two_booked):
    (_, first), _ = two_booked
    close_tuesday(client, scheduler, force="true")
    (displaced,) = displacements(runtime, first)
    appointment = runtime.services.scheduling.appointment(UUID(first))
    assert displaced.start == appointment.start
    assert appointment.status == "needs_new_time"


def test_a_patient_chooses_a_new_time_and_the_freed_time_can_be_booked_again(
    client, runtime, scheduler, two_booked
):
    (ann, first), _ = two_booked
    forced = close_tuesday(client, scheduler, force="true")
    caught_up(runtime, forced)

    moved = client.post(
        f"/v1/appointments/{first}/reschedule",
        headers=ann,
        json={"start": "2026-12-02T10:00:00-05:00"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "booked"
    assert holders(runtime, WEDNESDAY) == {first}

    # Open Tuesday again: the time Ann held is free, and another patient books it.
    reopened = client.delete(
        f"{BASE}/resources/{US_RIVERSIDE}/closures/{TUESDAY}", headers=scheduler
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["displaced"] == []
    caught_up(runtime, reopened)
    cara = patient(client, "Cara")
    taken = book(client, cara, TEN)
    assert holders(runtime, TUESDAY) == {taken}


def test_a_forced_block_and_forced_hours_name_what_happened(client, runtime, scheduler):
    ann = patient(client, "Ann")
    first, second = book(client, ann, TEN), book(client, ann, "2026-12-02T15:00:00-05:00")
    blocked = client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/blocks",
        headers=scheduler,
        params={"force": "true"},
        json={"start": "2026-12-01T09:30", "end": "2026-12-01T10:30", "reason": "Repair"},
    )
    assert blocked.status_code == 200, blocked.text
    assert [a["id"] for a in blocked.json()["displaced"]] == [first]
    (by_block,) = displacements(runtime, first)
    assert by_block.cause == "block"
    assert "out of service" in by_block.reason
    assert "Repair" in by_block.reason

    weekdays = ("mon", "tue", "wed", "thu", "fri")
    hours = client.put(
        f"{BASE}/resources/{US_RIVERSIDE}/hours",
        headers=scheduler,
        params={"force": "true"},
        json={day: ["08:00-12:00"] for day in weekdays},
    )
    assert hours.status_code == 200, hours.text
    assert [a["id"] for a in hours.json()["displaced"]] == [second]
    (by_hours,) = displacements(runtime, second)
    assert by_hours.cause == "hours"
    assert "opening hours" in by_hours.reason
    # The first is not displaced twice.
    assert len(displacements(runtime, first)) == 1


def test_settling_again_changes_nothing(client, runtime, scheduler, two_booked):
    (_, first), _ = two_booked
    close_tuesday(client, scheduler, force="true")
    strandings = stored_strandings(runtime)
    assert len(strandings) == 1
    head = runtime.services.scheduling.recorder.max_notification_id()

    again = StrandedAppointments(runtime.services.scheduling).settle(strandings[0])

    assert (again.moved, again.position) == ([], None)
    assert runtime.services.scheduling.recorder.max_notification_id() == head
    assert len(displacements(runtime, first)) == 1


def stored_strandings(runtime) -> list[Stranding]:
    catalog = runtime.services.catalog
    found = []
    for notification in catalog.recorder.select_notifications(1, 10_000):
        event = catalog.mapper.to_domain_event(notification)
        if isinstance(event, Stranding.Recorded):
            found.append(catalog.repository.get(event.originator_id))
    return found


def follow(runtime) -> str:
    """Run the stranding follower until it has processed the catalog's log; the name of
    its tracking table."""
    runner = ProjectionRunner(
        application_class=Catalog,
        projection_class=StrandingFollower.writing_to(runtime.services.scheduling),
        view_class=PostgresTrackingRecorder,
        env=runtime.env,
    )
    with runner:
        runner.wait(runtime.services.catalog.recorder.max_notification_id(), timeout=30)
    runner.view.datastore.close()
    return str(runner.view.tracking_table_name)


def test_a_stranding_left_unsettled_by_a_crash_is_settled_by_the_follower_once(
    client, runtime, scheduler, two_booked
):
    (_, first), (_, second) = two_booked
    # The catalog's write happened (the closure and its stranding), the process died
    # before the scheduling log's.
    resource = runtime.services.catalog.resource(RESOURCE_ID)
    booked = [runtime.services.scheduling.appointment(UUID(a)) for a in (first, second)]
    stranding = Stranding.record(
        id=uuid4(),
        cause="closure",
        reason="the centre is closed on 2026-12-01 (Burst pipe)",
        bookings=[Stranding.booking(a.id, RESOURCE_ID, a.start, a.end) for a in booked],
        meta={"actor_id": "staff-1", "role": "scheduler", "request_id": "r", "source": "api"},
    )
    closed = {**resource.spec, "closures": [{"date": TUESDAY, "reason": "Burst pipe"}]}
    runtime.services.catalog.put(
        Resource, closed, stranding_actor(), expected_version=resource.version, also=[stranding]
    )
    assert displacements(runtime, first) == []

    tracking = follow(runtime)

    for appointment_id in (first, second):
        (displaced,) = displacements(runtime, appointment_id)
        assert (displaced.cause, displaced.meta["actor_id"]) == ("closure", "staff-1")
    assert holders(runtime, TUESDAY) == set()
    # Ann chooses a new time; then everything is processed again from the start (its
    # tracking lost): still one displacement each, and Ann's new time holds.
    runtime.services.scheduling.reschedule(
        UUID(first),
        start=datetime.fromisoformat("2026-12-02T10:00:00-05:00"),
        location_id=None,
        reason="",
        actor=Actor(id="ann", role="patient"),
        owner=None,
    )
    with runtime.pool.connection() as conn:
        conn.execute(SQL("DELETE FROM {}").format(Identifier(tracking)))
    follow(runtime)
    assert [len(displacements(runtime, a)) for a in (first, second)] == [1, 1]
    assert runtime.services.scheduling.appointment(UUID(first)).status == "booked"
    assert holders(runtime, WEDNESDAY) == {first}


def stranding_actor() -> Actor:
    return Actor(id="staff-1", role="scheduler", request_id="r", source="api")


def test_the_status_filter_is_checked_and_logged(client, runtime, scheduler):
    bad = staff_list(client, scheduler, status="lost")
    assert bad.status_code == 422, bad.text
    assert "detail" in bad.json()
    assert "code" in bad.json()
    before = len(access_rows(runtime))
    assert staff_list(client, scheduler, status="needs_new_time").status_code == 200
    rows = access_rows(runtime)
    assert len(rows) == before + 1
    assert rows[-1]["resource"] == "appointment_list"


def test_patients_and_other_centres_do_not_see_the_list(client, runtime, clock):
    ann = patient(client, "Ann")
    assert staff_list(client, ann, status="needs_new_time").status_code == 403
    elsewhere = staff_headers(
        client,
        runtime,
        clock,
        "scheduler",
        email="far@example.org",
        centres=[Location.create_id("lakeshore")],
    )
    assert staff_list(client, elsewhere, status="needs_new_time").status_code == 404


def access_rows(runtime) -> list[dict]:
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT resource, action, outcome FROM phi_access_log ORDER BY id")
        columns = [c.name for c in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def test_the_portal_asks_the_patient_to_choose_a_new_time_in_their_language(
    portal, client, runtime, scheduler
):
    portal_register(portal, "dana@example.org")
    dana = patient_of(runtime, "dana@example.org")
    types, locations = catalog_ids(client)
    written = runtime.services.scheduling.book(
        patient_id=dana,
        appointment_type_id=UUID(types["us-abdomen"]),
        location_id=UUID(locations["riverside"]),
        start=datetime.fromisoformat(TEN),
        actor=Actor(id="dana", role="patient"),
    )
    appointment_id = str(written.appointment.id)
    forced = close_tuesday(client, scheduler, force="true")
    assert [a["id"] for a in forced.json()["displaced"]] == [appointment_id]
    caught_up(runtime, forced)

    listing = portal.get("/appointments?lang=en")
    assert listing.status_code == 200, listing.text
    assert "The centre had to move this appointment. Choose a new time." in listing.text
    action = f'href="/appointments/{appointment_id}/reschedule">Choose a new time</a>'
    assert action in listing.text
    one = portal.get(f"/appointments/{appointment_id}")
    assert action in one.text
    spanish = portal.get("/appointments?lang=es")
    assert "Elegir una nueva hora" in spanish.text
    assert "Elija una nueva hora" in spanish.text

    # The action leads to the reschedule journey, which books the new time.
    portal.get("/appointments?lang=en")
    start = "2026-12-02T10:00:00-05:00"
    check = portal.get(f"/appointments/{appointment_id}/reschedule", params={"start": start})
    assert check.status_code == 200, check.text
    moved = portal.post(
        f"/appointments/{appointment_id}/reschedule",
        data={"csrf_token": form_token(check.text), "start": start},
        follow_redirects=False,
    )
    assert moved.status_code == 303, moved.text
    assert runtime.services.scheduling.appointment(UUID(appointment_id)).status == "booked"
    assert holders(runtime, WEDNESDAY) == {appointment_id}
