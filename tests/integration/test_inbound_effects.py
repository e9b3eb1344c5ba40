"""Inbound effects on real PostgreSQL: one corpus message of each type, applied through
the applications, and the same message handled twice changing nothing."""

from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from adapters.hl7.extract import Hl7Extractor
from application.base import Position
from application.patient_merges import PatientMerges
from application.registry import IncompletePatientError
from application.ris.inbound import (
    InboundEffects,
    InboundSettings,
    MissingFieldError,
    UnknownPatientError,
)
from application.ris.inbound_ports import InboundMessage
from application.ris.orders import Orders
from application.ris.ris_bookings import RisBookings
from domain.appointment import BOOKED, NEEDS_NEW_TIME
from domain.appointment_type import AppointmentType
from domain.context import system_actor
from domain.errors import DomainError
from domain.location import Location
from domain.ris.order import CANCELLED, COMPLETED, FINAL, WAITING, OrderIntent
from domain.ris.ris_booking import OCCUPYING, RELEASED
from projections.orders_view import PostgresOrderReader
from projections.patient_records import PostgresPatientRecords
from tests.support import catalog_ids, hl7_corpus, register

CORPUS = hl7_corpus()
PHONE = {"63130|||": "63130||215-555-0111|"}  # PID-13 of ADT_A08/dcm4che_1
pytestmark = pytest.mark.integration


def corpus(name: str, **replace: str) -> str:
    """A corpus message with "\\r" between segments (and some values replaced)."""
    raw = (CORPUS / name).read_bytes().decode("latin-1").lstrip("\ufeff")
    text = "\r".join(line for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def message(text: str, name: str = "") -> InboundMessage:
    msh = text.split("\r", 1)[0].split("|")
    kind = msh[8].split("^")
    return InboundMessage(
        id=uuid5(NAMESPACE_URL, name or text),
        message_type=kind[0],
        trigger=kind[1] if len(kind) > 1 else "",
        control_id=msh[9],
        sending_application=msh[2],
        sending_facility=msh[3],
        version=msh[11],
        text=text,
    )


@pytest.fixture
def effects(runtime):
    s = runtime.services
    return InboundEffects(
        registry=s.registry,
        scheduling=s.scheduling,
        catalog=s.catalog,
        reader=Hl7Extractor(),
        settings=InboundSettings(viewer_url_template="https://pacs.example/view?acc={accession}"),
        merges=PatientMerges(s.scheduling, PostgresPatientRecords(runtime.pool), s.sync),
    )


def log_head(runtime, name: str) -> int:
    app = getattr(runtime.services, name)
    return app.recorder.max_notification_id() or 0


def sync(runtime) -> None:
    """Wait until every read model of Scheduling has caught up with its log."""
    head = log_head(runtime, "scheduling")
    if head:
        assert runtime.services.sync.wait(Position("scheduling", head))


def twice(runtime, effects, msg: InboundMessage) -> str:
    """When the message is handled, and then handled again: the second time writes
    nothing to any log and gives the same outcome."""
    first = effects.handle(msg)
    heads = {name: log_head(runtime, name) for name in ("registry", "scheduling")}
    assert effects.handle(msg) == first
    assert {name: log_head(runtime, name) for name in heads} == heads
    return first


def test_adt_a08_creates_then_updates_the_patient_under_the_ris_mrn(runtime, effects):
    registry = runtime.services.registry
    a08 = message(corpus("ADT_A08/dcm4che_1.hl7"))
    assert twice(runtime, effects, a08) == "applied"
    patient = registry.patient_by_identifier("ADT1", "583295")
    assert patient is not None
    assert (patient.given_name, patient.family_name) == ("JAY", "SILVERHEELS")
    assert patient.identifiers == {"ADT1": "583295"}

    renamed = message(corpus("ADT_A08/dcm4che_1.hl7", **{"SILVERHEELS^JAY": "MOORE^JAY"}))
    assert twice(runtime, effects, renamed) == "applied"
    again = registry.patient_by_identifier("ADT1", "583295")
    assert again is not None
    assert again.id == patient.id
    assert again.family_name == "MOORE"


def test_a_new_patient_without_name_or_birth_date_is_refused(effects):
    # ADT_A04/hapi_1 carries neither a name nor a birth date: quarantined, not invented.
    with pytest.raises(IncompletePatientError):
        effects.handle(message(corpus("ADT_A04/hapi_1.hl7")))


def test_adt_a40_merges_the_old_record_into_the_survivor(runtime, effects):
    registry = runtime.services.registry
    old = corpus("ADT_A08/dcm4che_1.hl7", **{"583295^^^ADT1": "OLD_PID_1^^^ADT1"})
    effects.handle(message(old))
    old_patient = registry.patient_by_identifier("ADT1", "OLD_PID_1")
    assert old_patient is not None

    assert twice(runtime, effects, message(corpus("ADT_A40/dcm4che_1.hl7"))) == "applied"
    survivor = registry.patient_by_identifier("ADT1", "NEW_PID_1")
    assert survivor is not None
    assert survivor.id != old_patient.id
    assert registry.patient(old_patient.id).merged_into == survivor.id
    found = registry.patient_by_identifier("ADT1", "OLD_PID_1")
    assert found is not None
    assert found.id == survivor.id


def test_adt_a40_hands_the_old_records_preferences_to_a_survivor_never_asked(runtime, effects):
    # Given two records of one person with one mobile number; the front desk recorded
    # SMS consent and Spanish on the old one only
    registry, preferences = runtime.services.registry, runtime.services.preferences
    old_text = corpus("ADT_A08/dcm4che_1.hl7", **PHONE, **{"583295^^^ADT1": "OLD_PID_1^^^ADT1"})
    effects.handle(message(old_text))
    old = registry.patient_by_identifier("ADT1", "OLD_PID_1")
    assert old is not None
    desk = system_actor(source="test")
    preferences.update(old.id, consents={"sms": True}, language="es", actor=desk, source="staff")

    # When the RIS merges it into the survivor, which has the same number
    a40 = corpus("ADT_A40/dcm4che_1.hl7", **{"Address|||": "Address||(215) 555 0111|"})
    assert twice(runtime, effects, message(a40)) == "applied"

    # Then the survivor may text that number, in Spanish, as the person asked
    survivor = registry.patient_by_identifier("ADT1", "NEW_PID_1")
    assert survivor is not None
    assert survivor.id != old.id
    prefs = preferences.preferences(survivor.id)
    assert prefs.allows("sms")
    assert prefs.consent("sms").source == "merge"
    assert prefs.language == "es"


def test_adt_a40_never_loses_a_withdrawal_of_the_old_record(runtime, effects):
    # Given the survivor consented to SMS, and the old record (same number) withdrew it
    registry, preferences = runtime.services.registry, runtime.services.preferences
    desk = system_actor(source="test")
    ids = {}
    for mrn in ("NEW_PID_1", "OLD_PID_1"):
        text = corpus("ADT_A08/dcm4che_1.hl7", **PHONE, **{"583295^^^ADT1": f"{mrn}^^^ADT1"})
        effects.handle(message(text))
        patient = registry.patient_by_identifier("ADT1", mrn)
        assert patient is not None
        preferences.update(patient.id, consents={"sms": True}, actor=desk, source="staff")
        ids[mrn] = patient.id
    preferences.update(ids["OLD_PID_1"], consents={"sms": False}, actor=desk, source="staff")

    # When the RIS merges the old record into the survivor
    effects.handle(message(corpus("ADT_A40/dcm4che_1.hl7")))

    # Then the survivor no longer texts: the withdrawal came with the merge
    consent = preferences.preferences(ids["NEW_PID_1"]).consent("sms")
    assert consent is not None
    assert (consent.granted, consent.source) == (False, "merge")


def test_adt_a40_moves_the_old_records_appointments_and_orders_to_the_survivor(runtime, effects):
    registry, scheduling = runtime.services.registry, runtime.services.scheduling
    survivor_text = corpus("ADT_A08/dcm4che_1.hl7", **{"583295^^^ADT1": "NEW_PID_1^^^ADT1"})
    effects.handle(message(survivor_text))
    effects.handle(
        message(corpus("ADT_A08/dcm4che_1.hl7", **{"583295^^^ADT1": "OLD_PID_1^^^ADT1"}))
    )
    old = registry.patient_by_identifier("ADT1", "OLD_PID_1")
    survivor = registry.patient_by_identifier("ADT1", "NEW_PID_1")
    assert old is not None
    assert survivor is not None
    # Each record holds an appointment and an order of its own.
    booked = {}
    for patient, start in (
        (old, "2026-12-01T09:00:00-05:00"),
        (survivor, "2026-12-01T10:00:00-05:00"),
    ):
        written = scheduling.book(
            patient_id=patient.id,
            appointment_type_id=AppointmentType.create_id("xr-chest"),
            location_id=Location.create_id("riverside"),
            start=datetime.fromisoformat(start),
            actor=system_actor(source="test"),
        )
        booked[patient.id] = written.appointment.id
        Orders(scheduling).receive_order(
            intent=OrderIntent.NEW,
            patient_id=patient.id,
            placer="",
            filler=f"FILLER-{patient.id}",
            accession_number=f"ACC-{patient.id}"[:20],
            procedure_code="71046",
            procedure_text="XR chest",
            reason="",
            message_id=f"order-{patient.id}",
            actor=system_actor(source="hl7-inbound"),
        )
    sync(runtime)

    assert twice(runtime, effects, message(corpus("ADT_A40/dcm4che_1.hl7"))) == "applied"
    sync(runtime)
    appointments = runtime.services.appointments
    assert {a.id for a in appointments.for_patient(survivor.id)} == set(booked.values())
    assert appointments.for_patient(old.id) == []
    orders = PostgresOrderReader(runtime.pool)
    assert len(orders.for_patient(survivor.id)) == 2
    assert orders.for_patient(old.id) == []


def test_orm_new_order_waits_for_the_patient_and_cancel_ends_it(runtime, effects):
    scheduling, registry = runtime.services.scheduling, runtime.services.registry
    # ORM_O01/dcm4che_1 has no birth date: the patient is known first through ADT^A08.
    effects.handle(message(corpus("ADT_A08/dcm4che_1.hl7")))
    orm = message(corpus("ORM_O01/dcm4che_1.hl7"))
    assert twice(runtime, effects, orm) == "applied"
    order = Orders(scheduling).find_order("MESA_ORDPLC:A103Z", "MESA_ORDFIL:B103Z")
    patient = registry.patient_by_identifier("ADT1", "583295")
    assert order is not None
    assert patient is not None
    assert (order.status, order.patient_id) == (WAITING, patient.id)
    assert (order.accession_number, order.procedure_code) == ("MOF5026", "P1")

    cancel = message(corpus("ORM_O01/dcm4che_1.hl7", **{"ORC|NW|": "ORC|CA|"}))
    assert twice(runtime, effects, cancel) == "applied"
    cancelled = Orders(scheduling).find_order("", "MESA_ORDFIL:B103Z")
    assert cancelled is not None
    assert cancelled.status == CANCELLED


def test_omi_creates_the_patient_and_oru_attaches_a_result_reference(runtime, effects):
    scheduling, registry = runtime.services.scheduling, runtime.services.registry
    assert twice(runtime, effects, message(corpus("OMI_O23/dcm4che_1.hl7"))) == "applied"
    patient = registry.patient_by_identifier("ADT1", "PID_1")
    assert patient is not None
    assert patient.birth_date.isoformat() == "2014-10-14"

    oru_text = corpus("ORU_R01/dcm4che_1.hl7")
    assert twice(runtime, effects, message(oru_text)) == "applied"
    order = Orders(scheduling).find_order("", "FillerOrderNumberImagingServiceRequest")
    assert order is not None
    assert order.patient_id == patient.id
    assert order.result_status == FINAL
    [reference] = order.results
    assert reference["accession_number"] == "AccessionNumber"
    assert reference["procedure_code"] == "10637-7"
    assert reference["observed_at"] == datetime(2022, 3, 24, 19, 30, 57, tzinfo=UTC)
    assert reference["viewer_link"] == "https://pacs.example/view?acc=AccessionNumber"
    # No report text in any event stored for the order (decrypted through the mapper).
    stored = repr(
        [
            vars(scheduling.mapper.to_domain_event(item))
            for item in scheduling.recorder.select_events(order.id)
        ]
    )
    assert "AccessionNumber" in stored
    assert "kidney" not in stored.lower()
    assert "pulmonary" not in stored.lower()

    # The orders read model shows the order with its latest result reference (a final
    # one: the exam was done, the order is completed).
    sync(runtime)
    [row] = PostgresOrderReader(runtime.pool).for_patient(patient.id)
    assert (row.id, row.status, row.result_status) == (order.id, COMPLETED, FINAL)
    assert row.viewer_link == "https://pacs.example/view?acc=AccessionNumber"


def test_a_result_for_an_unknown_accession_is_kept_for_review(runtime, effects):
    scheduling = runtime.services.scheduling
    oru = message(corpus("ORU_R01/hapi_1.hl7"))
    assert twice(runtime, effects, oru) == "kept_for_review"
    kept = Orders(scheduling).unmatched_result(f"{oru.id}/0")
    assert kept is not None
    assert (kept.filler_number, kept.accession_number, kept.result_status) == (
        "T09-106575-CHO-0",
        "10015716",
        FINAL,
    )
    assert kept.patient_identifier == "TML:7005728"
    sync(runtime)
    [row] = PostgresOrderReader(runtime.pool).unmatched()
    assert (row.id, row.filler_number, row.result_status) == (kept.id, "T09-106575-CHO-0", FINAL)


# SIU: SIU_S12/mirth_1 moved onto our 24-hour CT at Riverside, on Tuesday 2026-12-01
# 10:00-10:45 New York time (the clock stands at 2026-11-30 12:00 UTC).
SIU_ON_OUR_CT = {
    "OFFICE^^^OFFICE": "riverside-ct-1^^^riverside-ct-1",
    "20110614084500": "20261201100000",
    "20110617084500": "20261201100000",
    "20110617093000": "20261201104500",
}
AT_10 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def free_slots_at_10(runtime, client) -> list[str]:
    catalog = client.get("/v1/catalog/appointment-types").json()
    ct_head = next(t["id"] for t in catalog if t["code"] == "ct-head")
    locations = client.get("/v1/catalog/locations").json()
    riverside = next(loc["id"] for loc in locations if loc["code"] == "riverside")
    sync(runtime)
    response = client.get(
        "/v1/slots",
        params={
            "appointment_type_id": ct_head,
            "location_id": riverside,
            "start": "2026-12-01T10:00:00-05:00",
            "end": "2026-12-01T10:45:00-05:00",
        },
    )
    assert response.status_code == 200, response.text
    return [slot["start"] for slot in response.json()]


def test_a_ris_booking_occupies_our_resource_and_a_cancel_frees_it(runtime, effects, client):
    assert free_slots_at_10(runtime, client)
    s12 = message(corpus("SIU_S12/mirth_1.hl7", **SIU_ON_OUR_CT))
    assert twice(runtime, effects, s12) == "applied"
    booking = RisBookings(runtime.services.scheduling).ris_booking("2196178")
    assert booking is not None
    assert booking.status == OCCUPYING
    assert booking.span.start == AT_10
    assert free_slots_at_10(runtime, client) == []

    s15 = message(corpus("SIU_S15/mirth_1.hl7", **SIU_ON_OUR_CT))
    assert twice(runtime, effects, s15) == "applied"
    assert RisBookings(runtime.services.scheduling).ris_booking("2196178").status == RELEASED
    assert free_slots_at_10(runtime, client)


def test_the_ris_wins_a_clash_and_the_patient_needs_a_new_time(runtime, effects, client):
    services = runtime.services
    catalog = client.get("/v1/catalog/appointment-types").json()
    ct_head = UUID(next(t["id"] for t in catalog if t["code"] == "ct-head"))
    locations = client.get("/v1/catalog/locations").json()
    riverside = UUID(next(loc["id"] for loc in locations if loc["code"] == "riverside"))
    booked = services.scheduling.book(
        patient_id=UUID(int=7),
        appointment_type_id=ct_head,
        location_id=riverside,
        start=datetime(2026, 12, 1, 15, 15, tzinfo=UTC),
        actor=system_actor(source="test"),
    )
    assert booked.appointment.status == BOOKED

    s12 = message(corpus("SIU_S12/mirth_1.hl7", **SIU_ON_OUR_CT))
    assert twice(runtime, effects, s12) == "applied"
    appointment = services.scheduling.appointment(booked.appointment.id)
    assert appointment.status == NEEDS_NEW_TIME
    calendar = services.scheduling.resource_day(appointment.resource_id, AT_10.date())
    assert calendar is not None
    assert set(calendar.reservations) == {"ris:2196178"}
    assert free_slots_at_10(runtime, client) == []


def test_a_displaced_patient_picks_a_new_time_or_cancels_in_the_portal(runtime, effects, client):
    types, locations = catalog_ids(client)
    mine, theirs = register(client, "displaced@example.com"), register(client, "other@example.com")
    booked = {}
    for who, headers, start in (
        ("mine", mine, "2026-12-01T15:15:00Z"),
        ("theirs", theirs, "2026-12-01T15:30:00Z"),
    ):
        response = client.post(
            "/v1/appointments",
            headers=headers,
            json={
                "appointment_type_id": types["ct-head"],
                "location_id": locations["riverside"],
                "start": start,
            },
        )
        assert response.status_code == 201, response.text
        booked[who] = response.json()["id"]
    s12 = message(corpus("SIU_S12/mirth_1.hl7", **SIU_ON_OUR_CT))
    assert twice(runtime, effects, s12) == "applied"
    sync(runtime)  # the RIS's write is not this client's: its reads do not wait for it
    for who, headers in (("mine", mine), ("theirs", theirs)):
        seen = client.get(f"/v1/appointments/{booked[who]}", headers=headers)
        assert seen.json()["status"] == NEEDS_NEW_TIME

    moved = client.post(
        f"/v1/appointments/{booked['mine']}/reschedule",
        headers=mine,
        json={"start": "2026-12-01T18:00:00Z", "reason": "the centre needed my time"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == BOOKED
    assert client.get(f"/v1/appointments/{booked['mine']}", headers=mine).json()["status"] == BOOKED
    cancelled = client.post(
        f"/v1/appointments/{booked['theirs']}/cancel",
        headers=theirs,
        json={"reason": "I will book elsewhere"},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    # The RIS keeps its time; the new time is held for the patient on the same scanner.
    appointment = runtime.services.scheduling.appointment(UUID(booked["mine"]))
    calendar = runtime.services.scheduling.resource_day(appointment.resource_id, AT_10.date())
    assert calendar is not None
    assert set(calendar.reservations) == {"ris:2196178", booked["mine"]}


def test_a_booking_on_a_resource_we_do_not_have_is_ignored(runtime, effects):
    assert effects.handle(message(corpus("SIU_S12/mirth_1.hl7"))) == "ignored"
    assert RisBookings(runtime.services.scheduling).ris_booking("2196178") is None


def test_an_siu_without_sch_is_refused(effects):
    with pytest.raises(MissingFieldError):
        effects.handle(message(corpus("SIU_S12/dcm4che_1.hl7")))


@pytest.mark.parametrize(
    "folder",
    [
        *("ADT_A04", "ADT_A08", "ADT_A28", "ADT_A31", "ADT_A40"),
        *("ORM_O01", "OMI_O23", "ORU_R01"),
        *("SIU_S12", "SIU_S13", "SIU_S14", "SIU_S15", "SIU_S26"),
    ],
)
def test_every_corpus_message_applies_or_is_refused_with_a_domain_error(runtime, effects, folder):
    # Whatever a real feed sends, the handler answers with an outcome or a DomainError
    # (which quarantines the message): never another exception.
    outcomes = {}
    for path in sorted((CORPUS / folder).glob("*.hl7")):
        text = corpus(f"{folder}/{path.name}")
        start = text.find("MSH")
        if start < 0 or text[start + 3] != "|":
            continue  # framing oddities are the listener's to refuse
        try:
            outcomes[path.name] = effects.handle(message(text[start:], path.name))
        except DomainError as error:
            outcomes[path.name] = error.code
    assert outcomes
    assert set(outcomes.values()) <= {
        "applied",
        "ignored",
        "kept_for_review",
        "incomplete_patient",
        "missing_field",
        "malformed_message",
        "invalid_value",
        "unknown_order",
        "unknown_patient",
    }, outcomes


def test_an_adt_naming_our_own_patient_id_links_the_ris_mrn_to_that_patient(runtime, effects):
    registry = runtime.services.registry
    registration = registry.register_patient(
        email="jay@example.org",
        password="correct horse battery staple",
        given_name="Jay",
        family_name="Silverheels",
        birth_date=datetime(1950, 1, 2).date(),
        phone="+1 555 0100",
        actor=system_actor(source="test"),
    )
    ours = f"583295^^^ADT1^MR~{registration.patient_id}^^^IMGBRIDGE^PI"
    a08 = message(corpus("ADT_A08/dcm4che_1.hl7", **{"583295^^^ADT1": ours}))
    assert twice(runtime, effects, a08) == "applied"
    linked = registry.patient_by_identifier("ADT1", "583295")
    assert linked is not None
    assert linked.id == registration.patient_id
    assert linked.identifiers == {"ADT1": "583295"}
    assert linked.family_name == "SILVERHEELS"
    assert linked.phone == "+1 555 0100"  # the RIS sent none: the patient's stays


def test_an_adt_naming_a_patient_id_of_ours_we_do_not_know_is_refused(effects):
    unknown = "583295^^^ADT1^MR~00000000-0000-0000-0000-000000000009^^^IMGBRIDGE^PI"
    a08 = message(corpus("ADT_A08/dcm4che_1.hl7", **{"583295^^^ADT1": unknown}))
    with pytest.raises(UnknownPatientError):
        effects.handle(a08)


def test_a_ris_reschedule_moves_its_booking_and_frees_the_old_time(runtime, effects, client):
    effects.handle(message(corpus("SIU_S12/mirth_1.hl7", **SIU_ON_OUR_CT)))
    assert free_slots_at_10(runtime, client) == []
    moved_to_noon = {
        **SIU_ON_OUR_CT,
        "SIU^S12": "SIU^S13",
        "20110614084500": "20261201120000",
        "20110617084500": "20261201120000",
        "20110617093000": "20261201124500",
    }
    s13 = message(corpus("SIU_S12/mirth_1.hl7", **moved_to_noon))
    assert twice(runtime, effects, s13) == "applied"
    booking = RisBookings(runtime.services.scheduling).ris_booking("2196178")
    assert booking is not None
    assert booking.span.start == datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert free_slots_at_10(runtime, client)
