"""A patient's orders and results through the API: orders with the exam types that can
perform them, booking one (scheduled in the same save), cancelling (waiting again),
completing; results as references; a link to the centre's viewer whose token verifies
against our JWKS with PyJWT and is refused once expired (on the test clock); another
patient's ids answer 404 on every route; every read and link is in the access log."""

import time
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import jwt
import psycopg
import pytest

from domain.appointment_type import AppointmentType
from domain.context import Actor, system_actor
from domain.location import Location
from domain.ris.order import COMPLETED, SCHEDULED, WAITING, ImagingOrder
from tests.support import (
    configure_viewer,
    place_order,
    register,
    report_result,
    settle,
    staff_headers,
)

pytestmark = pytest.mark.integration

MRI_BRAIN = str(AppointmentType.create_id("mri-brain"))
RIVERSIDE = str(Location.create_id("riverside"))


def me(client, headers) -> UUID:
    return UUID(client.get("/v1/patients/me", headers=headers).json()["id"])


def slots(client, exam: str = MRI_BRAIN, days: int = 3) -> list[str]:
    start = datetime(2026, 12, 1, 13, 0).isoformat() + "Z"
    end = datetime(2026, 12, 1 + days, 0, 0).isoformat() + "Z"
    found = client.get(
        "/v1/slots",
        params={"appointment_type_id": exam, "location_id": RIVERSIDE, "start": start, "end": end},
    )
    assert found.status_code == 200, found.text
    return [s["start"] for s in found.json()]


def book(client, headers, order_id, start: str, exam: str = MRI_BRAIN):
    body = {"appointment_type_id": exam, "location_id": RIVERSIDE, "start": start}
    if order_id is not None:
        body["order_id"] = str(order_id)
    return client.post("/v1/appointments", headers=headers, json=body)


def orders(client, headers) -> dict[str, dict]:
    answer = client.get("/v1/me/orders", headers=headers)
    assert answer.status_code == 200, answer.text
    return {item["id"]: item for item in answer.json()["items"]}


def access_rows(url: str, resource: str) -> list[tuple[str, str, str, str]]:
    """(action, resource id, outcome, patient id) of the access log's rows about
    ``resource``, oldest first."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT action, resource_id, outcome, coalesce(patient_id::text, '')"
            " FROM phi_access_log WHERE resource = %s ORDER BY id",
            (resource,),
        ).fetchall()
    return [tuple(row) for row in rows]


@pytest.fixture
def ana(client):
    headers = register(client, "ana@example.org")
    return headers, me(client, headers)


@pytest.fixture
def ben(client):
    headers = register(client, "ben@example.org")
    return headers, me(client, headers)


def test_orders_list_the_exam_types_that_perform_them(runtime, client, ana):
    headers, patient = ana
    mri = place_order(runtime, patient, 1, "70551", "MRI brain")
    ct_chest = place_order(runtime, patient, 2, "37953", "CT chest")
    settle(runtime)

    found = orders(client, headers)

    assert found[str(mri)] == {
        "id": str(mri),
        "status": WAITING,
        "procedure_code": "70551",
        "procedure_text": "MRI brain",
        "accession_number": "ACC1",
        "appointment_id": None,
        "appointment_type_ids": [MRI_BRAIN],
    }
    # No exam type of the catalog performs it: the centre books it.
    assert found[str(ct_chest)]["appointment_type_ids"] == []
    runtime.services.access_log.flush()
    assert access_rows(runtime.url, "order") == [("read", "*", "allowed", str(patient))]


def test_an_order_booked_is_scheduled_kept_when_moved_and_waits_again_when_cancelled(
    runtime, client, ana
):
    headers, patient = ana
    order_id = place_order(runtime, patient, 1)
    settle(runtime)
    first, later = slots(client)[0], slots(client)[3]

    booked = book(client, headers, order_id, first)

    assert booked.status_code == 201, booked.text
    appointment_id = booked.json()["id"]
    # The order was scheduled in the booking's own save: it is read with the booking.
    order = runtime.services.scheduling.find(order_id, ImagingOrder)
    assert (order.status, str(order.appointment_id)) == (SCHEDULED, appointment_id)
    assert orders(client, headers)[str(order_id)]["status"] == SCHEDULED
    assert orders(client, headers)[str(order_id)]["appointment_id"] == appointment_id

    moved = client.post(
        f"/v1/appointments/{appointment_id}/reschedule",
        headers=headers,
        json={"start": later, "reason": "later suits me"},
    )
    assert moved.status_code == 200, moved.text
    assert orders(client, headers)[str(order_id)]["appointment_id"] == appointment_id

    cancelled = client.post(
        f"/v1/appointments/{appointment_id}/cancel", headers=headers, json={"reason": "ill"}
    )
    assert cancelled.status_code == 200, cancelled.text
    again = orders(client, headers)[str(order_id)]
    assert (again["status"], again["appointment_id"]) == (WAITING, None)
    # Waiting again, it can be booked again.
    assert book(client, headers, order_id, later).status_code == 201


def test_booking_an_order_refuses_a_wrong_exam_and_an_order_not_waiting(runtime, client, ana):
    headers, patient = ana
    order_id = place_order(runtime, patient, 1)
    settle(runtime)
    start = slots(client)[0]
    ct_head = str(AppointmentType.create_id("ct-head"))

    wrong = book(client, headers, order_id, slots(client, ct_head)[0], exam=ct_head)
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "exam_not_for_order"
    assert "70551" in wrong.json()["detail"]

    assert book(client, headers, order_id, start).status_code == 201
    twice = book(client, headers, order_id, slots(client)[2])
    assert twice.status_code == 409
    assert twice.json() == {
        "code": "order_not_waiting",
        "detail": "this order is scheduled: only an order waiting to be scheduled can be booked",
    }

    # An order the RIS cancelled cannot be booked either.
    cancelled = place_order(runtime, patient, 2)
    from application.ris.orders import Orders
    from domain.ris.order import OrderIntent

    Orders(runtime.services.scheduling).receive_order(
        intent=OrderIntent.CANCEL,
        patient_id=patient,
        placer="PLC:P2",
        filler="RIS:F2",
        accession_number="",
        procedure_code="",
        procedure_text="",
        reason="cancelled by the RIS",
        message_id="orm-2-ca",
        actor=system_actor(source="hl7-inbound"),
    )
    refused = book(client, headers, cancelled, slots(client)[4])
    assert (refused.status_code, refused.json()["code"]) == (409, "order_not_waiting")
    assert "cancelled" in refused.json()["detail"]


def test_the_front_desk_completing_or_missing_the_appointment_moves_the_order(
    runtime, client, clock, ana
):
    headers, patient = ana
    done, missed = place_order(runtime, patient, 1), place_order(runtime, patient, 2)
    settle(runtime)
    times = slots(client)
    first = book(client, headers, done, times[0]).json()["id"]
    second = book(client, headers, missed, times[1]).json()["id"]
    clock.set(datetime.fromisoformat(times[1]) + timedelta(minutes=50))
    scheduler = staff_headers(client, runtime, clock, "scheduler")

    checked_in = client.post(f"/v1/staff/appointments/{first}/check-in", headers=scheduler)
    assert checked_in.status_code == 200, checked_in.text
    completed = client.post(f"/v1/staff/appointments/{first}/complete", headers=scheduler)
    assert completed.status_code == 200, completed.text
    no_show = client.post(
        f"/v1/staff/appointments/{second}/no-show",
        headers=scheduler,
        json={"reason": "did not come"},
    )
    assert no_show.status_code == 200, no_show.text

    settle(runtime)
    # (Ana's own session ran out while the clock moved on: the read model is read here.)
    found = {order.id: order for order in runtime.services.records.orders(patient)}
    assert found[done].status == COMPLETED
    assert (found[missed].status, found[missed].appointment_id) == (WAITING, None)


def test_a_staff_cancellation_returns_the_order_to_waiting(runtime, client, ana):
    headers, patient = ana
    order_id = place_order(runtime, patient, 1)
    settle(runtime)
    appointment_id = UUID(book(client, headers, order_id, slots(client)[0]).json()["id"])

    runtime.services.scheduling.cancel(
        appointment_id,
        reason="scanner out of service",
        actor=Actor(id="desk", role="scheduler", source="test"),
        owner=None,
    )

    order = runtime.services.scheduling.find(order_id, ImagingOrder)
    assert (order.status, order.appointment_id) == (WAITING, None)


def test_results_are_listed_as_references_and_complete_their_order(runtime, client, ana):
    headers, patient = ana
    order_id = place_order(runtime, patient, 1)
    report_result(runtime, 1, "preliminary", datetime.fromisoformat("2026-11-30T09:00:00+00:00"))
    report_result(runtime, 1, "final", datetime.fromisoformat("2026-11-30T10:30:00+00:00"))
    settle(runtime)

    answer = client.get("/v1/me/results", headers=headers)

    assert answer.status_code == 200, answer.text
    [result] = answer.json()["items"]
    assert set(result) == {
        "id",
        "order_id",
        "accession_number",
        "procedure_text",
        "status",
        "observed_at",
    }
    assert (result["order_id"], result["accession_number"], result["status"]) == (
        str(order_id),
        "ACC1",
        "final",
    )
    assert result["procedure_text"] == "MRI brain"
    assert datetime.fromisoformat(result["observed_at"]) == datetime.fromisoformat(
        "2026-11-30T10:30:00+00:00"
    )
    assert orders(client, headers)[str(order_id)]["status"] == COMPLETED
    runtime.services.access_log.flush()
    assert access_rows(runtime.url, "result") == [("read", "*", "allowed", str(patient))]


def verify(client, token: str, at: datetime, audience: str = "result-viewer") -> dict:
    """Verify ``token`` as the viewer's gateway would: against our published JWKS, with
    PyJWT, as of the instant ``at`` (the test clock): PyJWT compares ``exp`` with the
    real time less its leeway, so the leeway moves its "now" to ``at``."""
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [jwt.PyJWK(k) for k in keys if k["kid"] == kid]
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience=audience,
        issuer="imaging-bridge",
        leeway=time.time() - at.timestamp(),
        options={"require": ["exp", "iat", "jti", "sub", "aud"]},
    )


def test_a_result_link_carries_a_token_the_viewer_verifies_until_it_expires(
    runtime, client, clock, ana
):
    headers, patient = ana
    configure_viewer(runtime)
    place_order(runtime, patient, 1)
    report_result(runtime, 1)
    settle(runtime)
    [result] = client.get("/v1/me/results", headers=headers).json()["items"]

    answer = client.post(f"/v1/me/results/{result['id']}/link", headers=headers)

    assert answer.status_code == 200, answer.text
    link = answer.json()
    assert set(link) == {"url", "expires_at"}
    assert link["url"].startswith("https://viewer.example.test/open?study=ACC1&token=")
    token = parse_qs(urlsplit(link["url"]).query)["token"][0]
    claims = verify(client, token, clock.now())
    assert (claims["sub"], claims["aud"], claims["accession"]) == (
        str(patient),
        "result-viewer",
        "ACC1",
    )
    assert claims["exp"] - claims["iat"] == 300
    assert datetime.fromisoformat(link["expires_at"]).timestamp() == claims["exp"]
    assert jwt.get_unverified_header(token)["kid"] == runtime.settings.jwt_key_id
    # A second link is another token (its own jti).
    second = client.post(f"/v1/me/results/{result['id']}/link", headers=headers).json()
    second_token = parse_qs(urlsplit(second["url"]).query)["token"][0]
    assert verify(client, second_token, clock.now())["jti"] != claims["jti"]

    # Five minutes on, the viewer refuses it.
    clock.advance(timedelta(seconds=300))
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(client, token, clock.now())
    # And it was never good for another audience.
    with pytest.raises(jwt.InvalidAudienceError):
        verify(client, token, clock.now() - timedelta(seconds=10), audience="imaging-bridge-api")

    runtime.services.access_log.flush()
    rows = access_rows(runtime.url, "result")
    links = [row for row in rows if row[0] == "open_link"]
    assert links == [("open_link", result["id"], "allowed", str(patient))] * 2


def test_no_viewer_configured_answers_no_viewer_never_a_broken_link(runtime, client, ana):
    headers, patient = ana
    assert runtime.services.records.viewer.url_template == ""  # RESULT_VIEWER_URL unset
    place_order(runtime, patient, 1)
    report_result(runtime, 1)
    settle(runtime)
    [result] = client.get("/v1/me/results", headers=headers).json()["items"]

    answer = client.post(f"/v1/me/results/{result['id']}/link", headers=headers)

    assert answer.status_code == 409
    assert answer.json()["code"] == "no_viewer"
    runtime.services.access_log.flush()
    assert ("open_link", result["id"], "no_viewer", str(patient)) in access_rows(
        runtime.url, "result"
    )


def test_another_patients_orders_results_and_links_answer_404(runtime, client, ana, ben):
    (ana_headers, ana_id), (ben_headers, _) = ana, ben
    configure_viewer(runtime)
    anas_order = place_order(runtime, ana_id, 1)
    report_result(runtime, 1)
    settle(runtime)
    [anas_result] = client.get("/v1/me/results", headers=ana_headers).json()["items"]

    assert orders(client, ben_headers) == {}
    assert client.get("/v1/me/results", headers=ben_headers).json() == {"items": []}
    link = client.post(f"/v1/me/results/{anas_result['id']}/link", headers=ben_headers)
    assert (link.status_code, link.json()["code"]) == (404, "not_found")
    unknown = client.post(f"/v1/me/results/{uuid4()}/link", headers=ben_headers)
    assert unknown.status_code == 404
    assert link.json()["detail"] == unknown.json()["detail"]  # nothing tells them apart
    # A waiting order of Ana's is not Ben's to book (her first was completed by its result).
    waiting = place_order(runtime, ana_id, 2)
    booked = book(client, ben_headers, waiting, slots(client)[0])
    assert (booked.status_code, booked.json()["code"]) == (404, "not_found")
    assert book(client, ben_headers, uuid4(), slots(client)[0]).status_code == 404
    assert runtime.services.scheduling.find(waiting, ImagingOrder).status == WAITING
    assert runtime.services.scheduling.find(anas_order, ImagingOrder).status == COMPLETED
    runtime.services.access_log.flush()
    refusals = access_rows(runtime.url, "/v1/me/results/{result_id}/link")
    assert ("post", anas_result["id"], "not_found", "") in refusals


def test_a_patient_sees_and_books_the_orders_of_a_record_merged_into_theirs(runtime, client, ana):
    # Given a record the RIS made for Ana before she registered, with an order on it
    headers, patient = ana
    registry = runtime.services.registry
    ris_record = registry.record_patient_from_ris(
        identifiers=[("CENTRE", "MRN77")],
        given_name="Ana",
        family_name="Example",
        birth_date=datetime(1980, 2, 29).date(),
        phone=None,
        update_demographics=True,
        actor=system_actor(source="hl7-inbound"),
    )
    order_id = place_order(runtime, ris_record, 1)
    settle(runtime)
    assert orders(client, headers) == {}

    # When the RIS merges that record into Ana's (ADT^A40)
    registry.merge_patients(survivor_id=patient, merged=[("CENTRE", "MRN77")], actor=system_actor())
    settle(runtime)

    # Then Ana sees the order, and may book it
    assert list(orders(client, headers)) == [str(order_id)]
    assert book(client, headers, order_id, slots(client)[0]).status_code == 201


def test_the_jwks_publishes_the_signing_key_publicly_and_cacheably(client):
    answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=300"
    [key] = answer.json()["keys"]
    assert {k: key[k] for k in ("kty", "crv", "alg", "use", "kid")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": "k1",
    }
    assert "d" not in key  # never the private half


def test_the_viewer_template_is_filled_with_the_accession_escaped(runtime, client, ana):
    headers, patient = ana
    configure_viewer(runtime, "https://viewer.example.test/studies/{accession}#t={token}")
    from application.ris.orders import Orders
    from domain.ris.order import OrderIntent

    Orders(runtime.services.scheduling).receive_order(
        intent=OrderIntent.NEW,
        patient_id=patient,
        placer="PLC:odd",
        filler="",
        accession_number="A/1 2",
        procedure_code="70551",
        procedure_text="MRI brain",
        reason="",
        message_id="orm-odd",
        actor=system_actor(source="hl7-inbound"),
    )
    from domain.ris.order import ResultReference

    Orders(runtime.services.scheduling).reference_result(
        ResultReference("", "", "", "final", None, ""),
        placer="PLC:odd",
        filler="",
        patient_identifier="",
        message_id="oru-odd",
        actor=system_actor(source="hl7-inbound"),
    )
    settle(runtime)
    [result] = client.get("/v1/me/results", headers=headers).json()["items"]
    assert result["observed_at"] is None

    url = client.post(f"/v1/me/results/{result['id']}/link", headers=headers).json()["url"]

    assert url.startswith("https://viewer.example.test/studies/A%2F1%202#t=")
