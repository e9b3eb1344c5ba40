"""Staff catalog endpoints on real PostgreSQL: create, revise and repeat entries; the
front desk's closures, blocks and hours; who may use them; and the strand rule (a change
that would leave booked appointments outside opening times is refused unless forced)."""

import pytest

from api.consistency import HEADER
from application.base import Position
from domain.location import Location
from domain.resource import Resource
from tests.support import catalog_ids, register, staff_headers

pytestmark = pytest.mark.integration

BASE = "/v1/staff/catalog"
# The clock stands at Monday 2026-11-30 12:00Z (07:00 in New York).
TUESDAY, WEDNESDAY = "2026-12-01", "2026-12-02"
TUESDAY_10AM_NY = "2026-12-01T10:00:00-05:00"
US_RIVERSIDE = "riverside-us-1"  # the only ultrasound at Riverside: 08:00-17:00 weekdays
HARBOR = {
    "code": "harbor",
    "name": "Harbor Imaging",
    "kind": "fixed",
    "timezone": "America/New_York",
    "address": {"line1": "1 Example Pier", "city": "Boston", "region": "MA", "country": "US"},
}
HARBOR_CT = {
    "code": "harbor-ct-1",
    "name": "Harbor CT",
    "modality": "CT",
    "location": "harbor",
    "hours": {"mon": ["08:00-12:00"], "tue": ["08:00-12:00"]},
    "blocks": [{"start": "2026-12-01T09:00", "end": "2026-12-01T10:00", "reason": "Service"}],
}
CT_CHEST = {
    "code": "ct-chest",
    "name": "CT chest without contrast",
    "modality": "CT",
    "cpt": "71250",
    "duration_minutes": 20,
}


@pytest.fixture
def scheduler(client, runtime, clock):
    return staff_headers(client, runtime, clock, "scheduler")


def book(client, headers, exam: str, location: str, start: str) -> dict:
    types, locations = catalog_ids(client)
    response = client.post(
        "/v1/appointments",
        headers=headers,
        json={
            "appointment_type_id": types[exam],
            "location_id": locations[location],
            "start": start,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def slot_times(client, runtime, after_write, exam: str, location: str, day: str) -> list[str]:
    """Local start times (HH:MM) offered on a New York day, once the read models have
    caught up with ``after_write`` (a response carrying a consistency token)."""
    assert runtime.services.sync.wait(Position.parse(after_write.headers[HEADER]))
    types, locations = catalog_ids(client)
    found = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": types[exam],
            "location_id": locations[location],
            "start": f"{day}T00:00:00-05:00",
            "end": f"{day}T23:59:00-05:00",
        },
    )
    assert found.status_code == 200, found.text
    return [slot["start"][11:16] for slot in found.json()]


def catalog_head(runtime) -> int:
    """How many events the catalog's log holds (a refused change adds none)."""
    return runtime.services.catalog.recorder.max_notification_id() or 0


def resource(client, headers, code: str) -> dict:
    response = client.get(f"{BASE}/resources/{code}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def last_event_meta(runtime, aggregate_id) -> dict:
    return next(runtime.services.catalog.events.get(aggregate_id, desc=True, limit=1)).meta


# Creating, revising, repeating --------------------------------------------------------


def test_a_location_is_created_then_revised_then_left_unchanged(client, runtime, scheduler):
    created = client.put(f"{BASE}/locations/harbor", headers=scheduler, json=HARBOR)
    assert created.status_code == 201, created.text
    assert created.json()["outcome"] == "created"
    assert created.json()["location"]["id"] == str(Location.create_id("harbor"))

    again = client.put(f"{BASE}/locations/harbor", headers=scheduler, json=HARBOR)
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")

    renamed = client.put(
        f"{BASE}/locations/harbor", headers=scheduler, json={**HARBOR, "name": "Harbour Imaging"}
    )
    assert (renamed.status_code, renamed.json()["outcome"]) == (200, "revised")
    assert renamed.json()["stranded"] == []
    assert client.get(f"{BASE}/locations/harbor", headers=scheduler).json()["name"] == (
        "Harbour Imaging"
    )
    listed = client.get(f"{BASE}/locations", headers=scheduler).json()
    assert "Harbour Imaging" in {location["name"] for location in listed}
    meta = last_event_meta(runtime, Location.create_id("harbor"))
    assert meta["role"] == "scheduler"
    assert meta["actor_id"] not in ("", "system")


def test_a_new_resource_and_exam_type_become_bookable(client, runtime, scheduler):
    client.put(f"{BASE}/locations/harbor", headers=scheduler, json=HARBOR)
    resource = client.put(f"{BASE}/resources/harbor-ct-1", headers=scheduler, json=HARBOR_CT)
    assert resource.status_code == 201, resource.text
    body = resource.json()["resource"]
    assert body["location"] == "harbor"
    assert body["hours"] == {"mon": ["08:00-12:00"], "tue": ["08:00-12:00"]}
    # A block written in wall-clock time is in the location's zone.
    assert body["blocks"][0]["start"] == "2026-12-01T09:00:00-05:00"

    exam = client.put(f"{BASE}/appointment-types/ct-chest", headers=scheduler, json=CT_CHEST)
    assert (exam.status_code, exam.json()["outcome"]) == (201, "created")
    assert exam.json()["appointment_type"]["duration_minutes"] == 20
    repeat = client.put(f"{BASE}/appointment-types/ct-chest", headers=scheduler, json=CT_CHEST)
    assert (repeat.status_code, repeat.json()["outcome"]) == (200, "unchanged")

    offered = slot_times(client, runtime, exam, "ct-chest", "harbor", TUESDAY)
    assert offered[:3] == ["08:00", "08:20", "08:40"]
    assert "09:00" not in offered
    assert "10:00" in offered
    listed = client.get(f"{BASE}/resources", headers=scheduler, params={"location": "harbor"})
    assert [r["code"] for r in listed.json()] == ["harbor-ct-1"]


def test_staff_read_every_resource_with_its_closures_and_blocks(client, scheduler):
    everything = client.get(f"{BASE}/resources", headers=scheduler)
    assert everything.status_code == 200
    by_code = {r["code"]: r for r in everything.json()}
    assert len(by_code) == 11
    mri = by_code["riverside-mri-1"]
    assert {"date": "2026-12-25", "reason": "Christmas Day"} in mri["closures"]
    assert mri["blocks"][0]["start"] == "2026-12-09T12:00:00-05:00"
    assert mri["timezone"] == "America/New_York"
    assert client.get(f"{BASE}/resources/riverside-mri-1", headers=scheduler).json() == mri
    types = client.get(f"{BASE}/appointment-types", headers=scheduler).json()
    assert "mri-brain" in {t["code"] for t in types}


# Who may ------------------------------------------------------------------------------

WRITES = [
    ("put", f"{BASE}/locations/harbor", HARBOR),
    ("post", f"{BASE}/resources/{US_RIVERSIDE}/closures", {"date": TUESDAY}),
    ("put", f"{BASE}/resources/{US_RIVERSIDE}/hours", {"mon": ["08:00-12:00"]}),
    ("get", f"{BASE}/resources", None),
]


@pytest.mark.parametrize("role", ["billing", "compliance", "patient"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_other_roles_are_forbidden(client, runtime, clock, role, method, path, body):
    if role == "patient":
        headers = register(client, "pat@example.org")
    else:
        headers = staff_headers(client, runtime, clock, role)
    kwargs = {"json": body} if body is not None else {}
    before = catalog_head(runtime)
    response = client.request(method.upper(), path, headers=headers, **kwargs)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"
    assert catalog_head(runtime) == before


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_without_signing_in_it_is_401(client, runtime, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    before = catalog_head(runtime)
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert catalog_head(runtime) == before


def test_an_admin_may_and_a_scheduler_of_another_centre_may_not(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    closed = client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/closures", headers=admin, json={"date": WEDNESDAY}
    )
    assert closed.status_code == 200, closed.text
    assert resource(client, admin, US_RIVERSIDE)["closures"] == [{"date": WEDNESDAY, "reason": ""}]
    lakeshore_only = staff_headers(
        client,
        runtime,
        clock,
        "scheduler",
        email="lakeshore@staff.example.org",
        centres=[Location.create_id("lakeshore")],
    )
    elsewhere = client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/closures",
        headers=lakeshore_only,
        json={"date": TUESDAY},
    )
    assert elsewhere.status_code == 403
    assert resource(client, admin, US_RIVERSIDE)["closures"] == [{"date": WEDNESDAY, "reason": ""}]
    at_home = client.post(
        f"{BASE}/resources/lakeshore-us-1/closures", headers=lakeshore_only, json={"date": TUESDAY}
    )
    assert at_home.status_code == 200, at_home.text
    assert resource(client, lakeshore_only, "lakeshore-us-1")["closures"] == [
        {"date": TUESDAY, "reason": ""}
    ]


# The strand rule ----------------------------------------------------------------------


def test_closing_a_booked_day_is_refused_listing_the_booking_then_forced(
    client, runtime, scheduler
):
    patient = register(client, "ann@example.org")
    booked = book(client, patient, "us-abdomen", "riverside", TUESDAY_10AM_NY)

    refused = client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/closures",
        headers=scheduler,
        json={"date": TUESDAY, "reason": "Burst pipe"},
    )
    assert refused.status_code == 409, refused.text
    assert refused.json() == {
        "code": "would_strand_appointments",
        "detail": refused.json()["detail"],
        "appointments": [
            {
                "id": booked["id"],
                "start": "2026-12-01T10:00:00-05:00",
                "end": "2026-12-01T10:30:00-05:00",
                "patient": refused.json()["appointments"][0]["patient"],
            }
        ],
    }
    assert refused.json()["appointments"][0]["patient"]["given_name"] == "Test"
    unchanged = client.get(f"{BASE}/resources/{US_RIVERSIDE}", headers=scheduler).json()
    assert unchanged["closures"] == []

    forced = client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/closures",
        headers=scheduler,
        params={"force": "true"},
        json={"date": TUESDAY, "reason": "Burst pipe"},
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["outcome"] == "revised"
    assert [a["id"] for a in forced.json()["stranded"]] == [booked["id"]]
    assert forced.json()["resource"]["closures"] == [{"date": TUESDAY, "reason": "Burst pipe"}]
    assert slot_times(client, runtime, forced, "us-abdomen", "riverside", TUESDAY) == []
    # The appointment needs a new time (tests/integration/test_stranded_appointments.py).
    assert [a["id"] for a in forced.json()["displaced"]] == [booked["id"]]
    mine = client.get(f"/v1/appointments/{booked['id']}", headers=patient).json()
    assert mine["status"] == "needs_new_time"
    # A later change of the same resource does not list it again.
    later = client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/closures", headers=scheduler, json={"date": WEDNESDAY}
    )
    assert later.status_code == 200, later.text
    assert later.json()["stranded"] == []
    assert resource(client, scheduler, US_RIVERSIDE)["closures"] == [
        {"date": TUESDAY, "reason": "Burst pipe"},
        {"date": WEDNESDAY, "reason": ""},
    ]


def test_a_block_over_free_time_removes_those_slots_and_removing_it_brings_them_back(
    client, runtime, scheduler
):
    blocked = client.post(
        f"{BASE}/resources/{US_RIVERSIDE}/blocks",
        headers=scheduler,
        json={"start": f"{WEDNESDAY}T09:00", "end": f"{WEDNESDAY}T11:00", "reason": "Service"},
    )
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["resource"]["blocks"] == [
        {
            "start": "2026-12-02T09:00:00-05:00",
            "end": "2026-12-02T11:00:00-05:00",
            "reason": "Service",
        }
    ]
    assert (
        resource(client, scheduler, US_RIVERSIDE)["blocks"] == blocked.json()["resource"]["blocks"]
    )
    offered = slot_times(client, runtime, blocked, "us-abdomen", "riverside", WEDNESDAY)
    assert offered[:3] == ["08:00", "08:30", "11:00"]

    removed = client.delete(f"{BASE}/resources/{US_RIVERSIDE}/blocks/0", headers=scheduler)
    assert removed.status_code == 200, removed.text
    assert removed.json()["resource"]["blocks"] == []
    assert resource(client, scheduler, US_RIVERSIDE)["blocks"] == []
    offered = slot_times(client, runtime, removed, "us-abdomen", "riverside", WEDNESDAY)
    assert offered[:4] == ["08:00", "08:30", "09:00", "09:30"]


def test_a_block_over_a_booking_is_refused_and_one_named_by_its_start_can_be_removed(
    client, scheduler
):
    patient = register(client, "bea@example.org")
    booked = book(client, patient, "us-abdomen", "riverside", TUESDAY_10AM_NY)
    over = {"start": "2026-12-01T14:45:00Z", "end": "2026-12-01T15:15:00Z"}
    refused = client.post(f"{BASE}/resources/{US_RIVERSIDE}/blocks", headers=scheduler, json=over)
    assert refused.status_code == 409
    assert [a["id"] for a in refused.json()["appointments"]] == [booked["id"]]
    assert resource(client, scheduler, US_RIVERSIDE)["blocks"] == []

    beside = {"start": f"{TUESDAY}T11:00", "end": f"{TUESDAY}T12:00"}
    added = client.post(f"{BASE}/resources/{US_RIVERSIDE}/blocks", headers=scheduler, json=beside)
    assert added.status_code == 200, added.text
    assert resource(client, scheduler, US_RIVERSIDE)["blocks"] == [
        {"start": "2026-12-01T11:00:00-05:00", "end": "2026-12-01T12:00:00-05:00", "reason": ""}
    ]
    removed = client.delete(
        f"{BASE}/resources/{US_RIVERSIDE}/blocks/2026-12-01T16:00:00Z", headers=scheduler
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["resource"]["blocks"] == []
    assert resource(client, scheduler, US_RIVERSIDE)["blocks"] == []


def test_hours_that_keep_bookings_inside_are_accepted_and_hours_that_do_not_are_refused(
    client, runtime, scheduler
):
    patient = register(client, "cy@example.org")
    booked = book(client, patient, "us-abdomen", "riverside", TUESDAY_10AM_NY)
    weekdays = ("mon", "tue", "wed", "thu", "fri")

    narrower = client.put(
        f"{BASE}/resources/{US_RIVERSIDE}/hours",
        headers=scheduler,
        json={day: ["09:00-12:00"] for day in weekdays},
    )
    assert narrower.status_code == 200, narrower.text
    assert narrower.json()["outcome"] == "revised"
    assert narrower.json()["stranded"] == []
    assert slot_times(client, runtime, narrower, "us-abdomen", "riverside", WEDNESDAY) == [
        "09:00",
        "09:30",
        "10:00",
        "10:30",
        "11:00",
        "11:30",
    ]

    afternoons = client.put(
        f"{BASE}/resources/{US_RIVERSIDE}/hours",
        headers=scheduler,
        json={day: ["13:00-17:00"] for day in weekdays},
    )
    assert afternoons.status_code == 409
    assert [a["id"] for a in afternoons.json()["appointments"]] == [booked["id"]]
    assert resource(client, scheduler, US_RIVERSIDE)["hours"] == {
        day: ["09:00-12:00"] for day in weekdays
    }


def test_moving_a_booked_resource_or_its_location_to_another_zone_is_refused(client, scheduler):
    patient = register(client, "dee@example.org")
    book(client, patient, "us-abdomen", "riverside", TUESDAY_10AM_NY)
    resource_before = resource(client, scheduler, US_RIVERSIDE)
    moved = {
        "code": US_RIVERSIDE,
        "name": resource_before["name"],
        "modality": "US",
        "location": "lakeshore",
        "hours": resource_before["hours"],
    }
    refused = client.put(f"{BASE}/resources/{US_RIVERSIDE}", headers=scheduler, json=moved)
    assert refused.status_code == 409, refused.text
    assert resource(client, scheduler, US_RIVERSIDE) == resource_before

    riverside = client.get(f"{BASE}/locations/riverside", headers=scheduler).json()
    riverside.pop("id")
    west = {**riverside, "timezone": "America/Los_Angeles"}
    refused = client.put(f"{BASE}/locations/riverside", headers=scheduler, json=west)
    assert refused.status_code == 409, refused.text
    assert len(refused.json()["appointments"]) == 1
    after = client.get(f"{BASE}/locations/riverside", headers=scheduler).json()
    assert after["timezone"] == "America/New_York"


# Clear errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("put", "resources/riverside-us-1/hours", {"mon": ["25:00-26:00"]}, 422, "invalid_value"),
        (
            "put",
            "resources/riverside-us-1/hours",
            {"someday": ["08:00-12:00"]},
            422,
            "invalid_value",
        ),
        ("put", "locations/harbor", {**HARBOR, "timezone": "Mars/Olympus"}, 422, "invalid_value"),
        ("put", "resources/harbor-ct-1", HARBOR_CT, 422, "unknown_location"),
        ("put", "resources/riverside-us-1", {**HARBOR_CT, "code": "other"}, 422, "code_mismatch"),
        ("put", "locations/harbor", {**HARBOR, "role": "admin"}, 422, "validation_error"),
        ("post", "resources/nope/closures", {"date": TUESDAY}, 404, "not_found"),
        ("delete", "resources/riverside-us-1/closures/2026-12-01", None, 404, "not_found"),
        ("delete", "resources/riverside-us-1/blocks/0", None, 404, "not_found"),
        ("delete", "resources/riverside-us-1/blocks/soon", None, 422, "invalid_value"),
        ("get", "resources/nope", None, 404, "not_found"),
        ("get", "resources?location=nowhere", None, 404, "not_found"),
        (
            "post",
            "resources/riverside-ct-1/blocks",
            {"start": "2027-03-14T02:15", "end": "2027-03-14T02:45"},
            422,
            "invalid_value",
        ),
        (
            "post",
            "resources/riverside-ct-1/blocks",
            {"start": "2026-12-03T12:00", "end": "2026-12-03T11:00"},
            422,
            "invalid_value",
        ),
    ],
)
def test_bad_requests_get_a_clear_status_and_code(
    client, runtime, scheduler, method, path, body, status, code
):
    kwargs = {"json": body} if body is not None else {}
    before = catalog_head(runtime)
    response = client.request(method.upper(), f"{BASE}/{path}", headers=scheduler, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert catalog_head(runtime) == before


def test_refused_changes_record_nothing(client, runtime, scheduler):
    def recorded():
        return len(list(runtime.services.catalog.events.get(Resource.create_id(US_RIVERSIDE))))

    before = recorded()
    bad = client.put(f"{BASE}/resources/{US_RIVERSIDE}/hours", headers=scheduler, json={"x": []})
    assert bad.status_code == 422
    assert recorded() == before


def test_an_exam_type_gets_the_ris_procedure_codes_it_performs(client, runtime, scheduler):
    from tests.support import place_order, settle

    # Given a patient with an order for CT chest (37953), which no exam type performs yet
    patient = register(client, "ct.chest@example.org")
    patient_id = client.get("/v1/patients/me", headers=patient).json()["id"]
    place_order(runtime, patient_id, 1, "37953", "CT chest")
    settle(runtime)
    [order] = client.get("/v1/me/orders", headers=patient).json()["items"]
    assert order["appointment_type_ids"] == []

    # When staff create the exam type with that code, then revise its codes
    created = client.put(
        f"{BASE}/appointment-types/ct-chest",
        headers=scheduler,
        json={**CT_CHEST, "procedure_codes": ["37953"]},
    )
    assert (created.status_code, created.json()["outcome"]) == (201, "created")
    assert created.json()["appointment_type"]["procedure_codes"] == ["37953"]
    revised = client.put(
        f"{BASE}/appointment-types/ct-chest",
        headers={**scheduler, HEADER: created.headers[HEADER]},
        json={**CT_CHEST, "procedure_codes": ["37953", "71250"]},
    )
    assert revised.json()["outcome"] == "revised"

    # Then the public catalog shows them and the order can be booked as that exam
    runtime.services.sync.wait(Position.parse(revised.headers[HEADER]))
    public = {t["code"]: t for t in client.get("/v1/catalog/appointment-types").json()}
    assert public["ct-chest"]["procedure_codes"] == ["37953", "71250"]
    assert public["mri-brain"]["procedure_codes"] == ["70551", "70553", "P1"]
    [order] = client.get("/v1/me/orders", headers=patient).json()["items"]
    assert order["appointment_type_ids"] == [public["ct-chest"]["id"]]


@pytest.mark.parametrize(
    ("codes", "says"),
    [(["70551", "70551"], "more than once"), ([""], "procedure_codes"), ("70551", "list")],
)
def test_bad_procedure_codes_are_refused_naming_them(client, scheduler, codes, says):
    refused = client.put(
        f"{BASE}/appointment-types/ct-chest",
        headers=scheduler,
        json={**CT_CHEST, "procedure_codes": codes},
    )
    assert refused.status_code == 422
    assert says in refused.json()["detail"]
