"""What was sent to a patient, through the API: ``GET /v1/me/notifications`` lists the
confirmation and the reminders with their due times, a withdrawn reminder as withdrawn;
``GET /v1/audit/patients/{id}/communications`` gives the compliance officer the template
id and version, the history and (``content=1``) the message rendered again; an
undeliverable notice shows in both; every read is in the access log."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from application.base import Position
from domain.appointment_type import AppointmentType
from domain.location import Location
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.outbound import Outbound
from tests.support import place_order, register, ris_patient, staff_headers

pytestmark = pytest.mark.integration

EXAM = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)  # 09:00 in New York


@pytest.fixture
def policy(runtime: Runtime) -> Iterator[Outbound]:
    outbound = runtime.start_outbound(pump=False, workers=0)
    yield outbound
    outbound.stop()


def delivered(runtime: Runtime, policy: Outbound) -> None:
    """The policy caught up with the scheduling log, the deliveries view with it."""
    policy.wait_caught_up(timeout=30)
    head = runtime.services.deliveries.deliveries.recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position("deliveries", head), timeout=30)


def me(client, headers) -> UUID:
    return UUID(client.get("/v1/patients/me", headers=headers).json()["id"])


def book(client, headers, start: datetime = EXAM) -> str:
    answer = client.post(
        "/v1/appointments",
        headers=headers,
        json={
            "appointment_type_id": str(AppointmentType.create_id("ct-head")),
            "location_id": str(Location.create_id("riverside")),
            "start": start.isoformat(),
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def access_rows(runtime: Runtime, resource: str) -> list[tuple[str, str, str]]:
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT role, resource_id, patient_id::text FROM phi_access_log"
            " WHERE resource = %s ORDER BY id",
            (resource,),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_my_notifications_list_the_confirmation_and_the_reminders_with_their_due_times(
    runtime, client, policy
):
    headers = register(client, "ana@example.org")
    book(client, headers)
    delivered(runtime, policy)

    answer = client.get("/v1/me/notifications", headers=headers)

    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    # Booked at 07:00 in New York (the test clock), inside the quiet hours (21:00-08:00):
    # the confirmation of the patient's own booking is due at once all the same; the
    # reminders fall outside them.
    assert {(i["kind"], i["channel"], i["status"]) for i in items} == {
        ("booking_confirmation", "email", "queued"),
        ("reminder", "email", "queued"),
    }
    assert len(items) == 3
    [confirmation] = [i for i in items if i["kind"] == "booking_confirmation"]
    assert confirmation["due_at"] is None
    dues = sorted(datetime.fromisoformat(i["due_at"]) for i in items if i["kind"] == "reminder")
    assert dues == [EXAM - timedelta(days=3), EXAM - timedelta(days=1)]
    assert set(items[0]) == {
        "id",
        "kind",
        "channel",
        "status",
        "queued_at",
        "due_at",
        "sent_at",
        "attempts",
    }
    patient = str(me(client, headers))
    assert access_rows(runtime, "notification") == [("patient", "*", patient)]


def test_a_cancelled_booking_shows_its_reminders_withdrawn(runtime, client, policy):
    headers = register(client, "ana@example.org")
    appointment = book(client, headers)
    cancel = client.post(
        f"/v1/appointments/{appointment}/cancel", headers=headers, json={"reason": "cannot"}
    )
    assert cancel.status_code == 200, cancel.text
    delivered(runtime, policy)

    items = client.get("/v1/me/notifications", headers=headers).json()["items"]

    assert sorted(i["status"] for i in items if i["kind"] == "reminder") == [
        "withdrawn",
        "withdrawn",
    ]


def test_another_patient_sees_none_of_my_notifications(runtime, client, policy):
    book(client, register(client, "ana@example.org"))
    other = register(client, "ben@example.org")
    delivered(runtime, policy)

    assert client.get("/v1/me/notifications", headers=other).json()["items"] == []


def test_compliance_sees_each_communication_with_template_history_and_content(
    runtime, client, policy, clock
):
    headers = register(client, "ana@example.org")
    book(client, headers)
    patient = me(client, headers)
    delivered(runtime, policy)
    officer = staff_headers(client, runtime, clock, "compliance")

    answer = client.get(
        f"/v1/audit/patients/{patient}/communications",
        headers=officer,
        params={"content": "1"},
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["patient_id"] == str(patient)
    confirmation = next(
        c for c in body["items"] if c["notification"]["kind"] == "booking_confirmation"
    )
    assert confirmation["template_id"] == "booking_confirmation/email.en.v1"
    assert confirmation["template_version"] == 1
    assert confirmation["language"] == "en"
    assert "Riverside Imaging Center" in confirmation["content"]["text"]
    assert confirmation["content"]["subject"]
    reminders = [c for c in body["items"] if c["notification"]["kind"] == "reminder"]
    assert sorted(c["planned_at"] for c in reminders) == sorted(
        c["notification"]["due_at"] for c in reminders
    )
    assert access_rows(runtime, "communications")[-1] == ("compliance", "content", str(patient))
    # Without content=1, nothing is rendered.
    plain = client.get(f"/v1/audit/patients/{patient}/communications", headers=officer).json()
    assert all(c["content"] is None for c in plain["items"])


def test_an_undeliverable_notice_shows_in_the_record_and_the_notifications(
    runtime, client, policy, clock
):
    patient = UUID(ris_patient(runtime))  # the RIS's patient: no e-mail, no consent
    place_order(runtime, patient, 1)
    delivered(runtime, policy)
    officer = staff_headers(client, runtime, clock, "compliance")

    record = client.get(f"/v1/audit/patients/{patient}/communications", headers=officer).json()
    [invitation] = record["items"]
    assert invitation["notification"]["kind"] == "order_invitation"
    assert invitation["notification"]["status"] == "undeliverable"
    assert invitation["reason"] == "the patient consented to no channel"
    assert [h["kind"] for h in invitation["history"]] == ["undeliverable"]
    # What GET /v1/me/notifications answers once this patient signs in.
    [mine] = runtime.services.communications.mine(patient)
    assert (mine.kind, mine.status) == ("order_invitation", "undeliverable")


def test_an_unknown_patient_answers_404(client, runtime, clock):
    officer = staff_headers(client, runtime, clock, "compliance")
    answer = client.get(
        "/v1/audit/patients/00000000-0000-4000-8000-000000000000/communications",
        headers=officer,
    )
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
