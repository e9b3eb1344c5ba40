"""Outbound HL7 against a real MLLP peer on loopback (the RIS): bookings become SIU,
registrations ADT, each ACKed; AE retried with the same MSH-10; a peer that is down
gets everything in order when back; a silent peer leads to ambiguous then dead letter."""

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import AggregateNotFoundError
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapters.clock import SystemClock
from adapters.settings import Settings
from application.registry import RegistryLog
from application.ris.delivery_policy import (
    REGISTRATION_WAIT,
    DeliveryPolicy,
    introduction_id,
)
from application.scheduling import SchedulingLog
from domain.appointment_type import AppointmentType
from domain.context import Actor, system_actor
from domain.location import Location
from domain.ris.message_delivery import MessageDelivery, control_id
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.outbound import Outbound, destinations_of, policy_env
from imaging_bridge.policy_runner import PolicyRunner
from tests.integration.mllp_peer import Peer, field_of, wait_until

pytestmark = pytest.mark.integration

DAY = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)  # Riverside CT is open around the clock
PATIENT_ACTOR = Actor(id="p", role="patient", source="test")


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as p:
        yield p


def outbound_settings(
    runtime: Runtime, peer: Peer, ack_timeout: float = 5.0, **extra: object
) -> Settings:
    """The runtime's settings, sending to ``peer`` with short retry delays (``extra``:
    more settings by field name). A busy machine's late ACK would be a resend, so the
    ACK timeout is short only where a test waits for silence."""
    return Settings.model_validate(
        {
            **runtime.settings.model_dump(),
            "hl7_destinations": f"ris=127.0.0.1:{peer.port};timeout={ack_timeout:g}",
            "delivery_base_delay": 0.05,
            "delivery_max_delay": 0.2,
            **extra,
        }
    )


@pytest.fixture
def outbound_factory(runtime: Runtime) -> Iterator[Any]:
    started: list[Outbound] = []

    def start(settings: Settings, **kwargs: Any) -> Outbound:
        # Retries fall due in real time: the runtime's clock stands still.
        ob = runtime.start_outbound(settings, pump_interval=0.05, clock=SystemClock(), **kwargs)
        started.append(ob)
        return ob

    yield start
    for ob in started:
        ob.stop()


def new_patient(runtime: Runtime, n: int) -> UUID:
    registration = runtime.services.registry.register_patient(
        email=f"hl7-{n}@example.org",
        password="correct horse battery staple",
        given_name="Jane",
        family_name=f"Doe{n}",
        birth_date=date(1980, 2, 29),
        phone=None,
        actor=system_actor(source="test"),
    )
    return registration.patient_id


def book(runtime: Runtime, patient: UUID, start: datetime) -> UUID:
    written = runtime.services.scheduling.book(
        patient_id=patient,
        appointment_type_id=AppointmentType.create_id("ct-head"),
        location_id=Location.create_id("riverside"),
        start=start,
        actor=PATIENT_ACTOR,
    )
    return written.appointment.id


def deliveries(ob: Outbound, **filters: Any) -> list[Any]:
    """The HL7 deliveries (the patients' notices are not this test's)."""
    return ob.desk().search(**{"channel": "hl7", **filters}, limit=1000)


def show(ob: Outbound, delivery_id: UUID) -> tuple[Any, list[Any]]:
    """A delivery and its history from the read model (the operator's ``show`` would
    write an audit entry on every poll)."""
    reader = ob.reader()
    return reader.get(delivery_id), reader.history(delivery_id)


def by_type(ob: Outbound, message_type: str) -> list[Any]:
    return [d for d in deliveries(ob) if d.message_type == message_type]


def test_a_booking_reaches_the_ris_as_one_valid_siu_s12(runtime, peer, outbound_factory):
    ob = outbound_factory(outbound_settings(runtime, peer))
    patient = new_patient(runtime, 1)
    appointment = book(runtime, patient, DAY)

    wait_until(
        lambda: (
            len(by_type(ob, "SIU^S12")) == 1 and by_type(ob, "SIU^S12")[0].status == "acknowledged"
        )
    )
    wait_until(
        lambda: by_type(ob, "ADT^A04") and by_type(ob, "ADT^A04")[0].status == "acknowledged"
    )

    siu = [m for m in peer.messages() if field_of(m, "MSH", 9).startswith("SIU^S12")]
    assert len(siu) == 1
    delivery = by_type(ob, "SIU^S12")[0]
    assert field_of(siu[0], "MSH", 10) == delivery.control_id == control_id(delivery.id)
    parsed = parse_message(siu[0], validation_level=VALIDATION_LEVEL.STRICT)
    parsed.validate()
    assert parsed.sch.sch_1.to_er7().startswith(str(appointment))
    assert parsed.siu_s12_patient.pid.pid_5.to_er7() == "Doe1^Jane"
    assert str(patient) in parsed.siu_s12_patient.pid.pid_3.to_er7()
    # The registration went first: ADT^A04 then SIU^S12 for this patient.
    types = [field_of(m, "MSH", 9).split("^")[1] for m in peer.messages()]
    assert types == ["A04", "S12"]
    # The operator view shows the ACK.
    _, history = show(ob, delivery.id)
    assert [(h.kind, h.outcome, h.code) for h in history] == [("attempt", "accepted", "AA")]


def test_reschedule_modify_cancel_and_no_show_become_s13_s14_s15_s26(
    runtime, peer, outbound_factory, clock
):
    ob = outbound_factory(outbound_settings(runtime, peer))
    patient = new_patient(runtime, 2)
    first = book(runtime, patient, DAY)
    scheduling = runtime.services.scheduling
    scheduling.reschedule(
        first,
        start=DAY + timedelta(hours=2),
        location_id=None,
        reason="clash",
        actor=PATIENT_ACTOR,
        owner=None,
    )
    scheduling.modify(first, notes="Uses a wheelchair", actor=PATIENT_ACTOR, owner=None)
    scheduling.modify(first, notes="Uses a wheelchair", actor=PATIENT_ACTOR, owner=None)
    scheduling.cancel(first, reason="changed my mind", actor=PATIENT_ACTOR, owner=None)
    second = book(runtime, patient, DAY + timedelta(hours=4))
    clock.set(DAY + timedelta(hours=5))
    scheduling.mark_no_show(second, reason="did not come", actor=PATIENT_ACTOR)

    wait_until(
        lambda: len(deliveries(ob)) == 7 and all(d.status == "acknowledged" for d in deliveries(ob))
    )
    triggers = [field_of(m, "MSH", 9).split("^")[1] for m in peer.messages()]
    assert triggers == ["A04", "S12", "S13", "S14", "S15", "S12", "S26"]
    s13, s14 = peer.messages()[2:4]
    assert field_of(s13, "SCH", 11).split("^")[3].startswith("20261202160000")
    # A change of notes: same time, the notes in NTE-3; the notes stay on the cancel.
    assert field_of(s14, "SCH", 11) == field_of(s13, "SCH", 11)
    assert field_of(s14, "NTE", 3) == "Uses a wheelchair"
    assert field_of(peer.messages()[4], "NTE", 3) == "Uses a wheelchair"
    for message in peer.messages():
        parse_message(message, validation_level=VALIDATION_LEVEL.STRICT).validate()


def test_a_profile_change_becomes_adt_a08_in_its_place(runtime, peer, outbound_factory):
    patient = new_patient(runtime, 7)
    book(runtime, patient, DAY)
    registry = runtime.services.registry
    registry.change_profile(
        patient, {"family_name": "Moore", "phone": "+1 555 0100"}, PATIENT_ACTOR
    )
    registry.change_profile(patient, {"family_name": "Moore"}, PATIENT_ACTOR)  # no change
    # The policy starts after all three happened: each message still carries the patient
    # as they were when its cause happened.
    ob = outbound_factory(outbound_settings(runtime, peer))

    wait_until(
        lambda: len(deliveries(ob)) == 3 and all(d.status == "acknowledged" for d in deliveries(ob))
    )
    sent = peer.messages()
    kinds = [field_of(m, "MSH", 9) for m in sent]
    assert sorted(kinds) == ["ADT^A04^ADT_A01", "ADT^A08^ADT_A01", "SIU^S12^SIU_S12"]
    # The registry's own messages keep their order. Where the SIU falls between them is not
    # yet guaranteed when the policy catches up on a backlog (its two runners follow two
    # logs independently): a known gap, left for the outbound ordering work.
    assert kinds.index("ADT^A04^ADT_A01") < kinds.index("ADT^A08^ADT_A01")
    a04, s12, a08 = (
        sent[kinds.index(kind)]
        for kind in ("ADT^A04^ADT_A01", "SIU^S12^SIU_S12", "ADT^A08^ADT_A01")
    )
    assert field_of(a04, "PID", 5) == "Doe7^Jane"
    assert field_of(s12, "PID", 5) == "Doe7^Jane"
    assert field_of(a08, "PID", 5) == "Moore^Jane"
    assert field_of(a08, "PID", 13).endswith("+1 555 0100")
    parse_message(a08, validation_level=VALIDATION_LEVEL.STRICT).validate()


def test_ae_twice_then_aa_sends_three_times_with_the_same_msh10(runtime, peer, outbound_factory):
    ob = outbound_factory(outbound_settings(runtime, peer))
    patient = new_patient(runtime, 3)
    wait_until(
        lambda: by_type(ob, "ADT^A04") and by_type(ob, "ADT^A04")[0].status == "acknowledged"
    )
    peer.script.extend(["AE", "AE", "AA"])
    book(runtime, patient, DAY)

    wait_until(
        lambda: by_type(ob, "SIU^S12") and by_type(ob, "SIU^S12")[0].status == "acknowledged"
    )
    delivery = by_type(ob, "SIU^S12")[0]
    sent = peer.messages(delivery.control_id)
    assert len(sent) == 3
    assert len(set(sent)) == 1  # byte for byte the same message
    _, history = show(ob, delivery.id)
    assert [h.code for h in history] == ["AE", "AE", "AA"]
    assert delivery.attempts == 3


def test_a_peer_down_for_a_while_gets_every_message_in_order_once_back(
    runtime, peer, outbound_factory
):
    ob = outbound_factory(outbound_settings(runtime, peer))
    peer.down()
    patients = [new_patient(runtime, 10 + i) for i in range(3)]
    for i, patient in enumerate(patients):
        first = book(runtime, patient, DAY + timedelta(hours=i))
        runtime.services.scheduling.cancel(first, reason="moved", actor=PATIENT_ACTOR, owner=None)
        book(runtime, patient, DAY + timedelta(hours=i, minutes=30))
    # While it is down, attempts are recorded as not sent and retried.
    wait_until(lambda: any(d.last_code == "CONNECT" for d in deliveries(ob)))
    assert peer.messages() == []

    peer.up()
    wait_until(
        lambda: (
            len(deliveries(ob)) == 12 and all(d.status == "acknowledged" for d in deliveries(ob))
        ),
        timeout=30,
    )
    received = peer.messages()
    assert len(received) == 12  # nothing lost, nothing twice
    for patient in patients:
        mine = [m for m in received if str(patient) in field_of(m, "PID", 3)]
        assert [field_of(m, "MSH", 9).split("^")[1] for m in mine] == ["A04", "S12", "S15", "S12"]


def test_a_silent_peer_makes_it_ambiguous_then_dead_and_redrive_sends_again(
    runtime, peer, outbound_factory
):
    ob = outbound_factory(
        outbound_settings(runtime, peer, ack_timeout=0.5, delivery_ambiguous_limit=2)
    )
    peer.default = "stall"
    patient = new_patient(runtime, 4)

    wait_until(
        lambda: by_type(ob, "ADT^A04") and by_type(ob, "ADT^A04")[0].status == "dead_lettered"
    )
    delivery = by_type(ob, "ADT^A04")[0]
    _, history = show(ob, delivery.id)
    assert [(h.kind, h.outcome) for h in history] == [
        ("attempt", "no_answer"),
        ("attempt", "no_answer"),
        ("dead_lettered", ""),
    ]
    assert len(peer.messages(delivery.control_id)) == 2
    assert dead_letters(ob) == [delivery.id]

    peer.default = "AA"
    ob.desk().redrive(delivery.id, reason="RIS fixed", actor=Actor("op", "admin", "r1", "test"))
    wait_until(lambda: show(ob, delivery.id)[0].status == "acknowledged")
    sent = peer.messages(delivery.control_id)
    assert len(sent) == 3
    assert len(set(sent)) == 1
    _, history = show(ob, delivery.id)
    assert history[-2].kind == "redriven"
    assert history[-2].actor_id == "op"
    assert str(patient) in field_of(sent[-1], "PID", 3)


def dead_letters(ob: Outbound) -> list[UUID]:
    return [d.id for d in deliveries(ob, status="dead_lettered")]


def test_operator_lists_inspects_and_redrives_through_the_api(
    runtime, peer, outbound_factory, client, clock
):
    from tests.support import audit_rows, register, staff_headers

    ob = outbound_factory(outbound_settings(runtime, peer))
    runtime.services.deliveries = ob.desk()  # what the composition root wires
    peer.default = "AR"
    patient_id = new_patient(runtime, 5)
    wait_until(lambda: deliveries(ob, status="dead_lettered"))
    [dead] = deliveries(ob, status="dead_lettered")

    admin = staff_headers(client, runtime, clock, "admin")
    listed = client.get(
        "/v1/admin/deliveries", params={"status": "dead_lettered", "channel": "hl7"}, headers=admin
    )
    assert listed.status_code == 200, listed.text
    assert [d["id"] for d in listed.json()] == [str(dead.id)]
    runtime.services.access_log.flush()
    assert audit_rows(runtime.url, "status=dead_lettered channel=hl7") == [
        ("read", "delivery_list", "admin", "", "")
    ]
    shown = client.get(f"/v1/admin/deliveries/{dead.id}", headers=admin).json()
    assert shown["control_id"] == dead.control_id
    assert [(h["kind"], h["code"]) for h in shown["history"]] == [
        ("attempt", "AR"),
        ("dead_lettered", ""),
    ]
    assert shown["history"][0]["at"]

    patient = register(client, "nosy@example.org")
    assert client.get("/v1/admin/deliveries", headers=patient).status_code == 403
    assert client.get("/v1/admin/deliveries").status_code == 401

    peer.default = "AA"
    redriven = client.post(
        f"/v1/admin/deliveries/{dead.id}/redrive", json={"reason": "RIS fixed"}, headers=admin
    )
    assert redriven.status_code == 202, redriven.text
    again = client.post(
        f"/v1/admin/deliveries/{dead.id}/redrive", json={"reason": "twice"}, headers=admin
    )
    assert again.status_code == 409
    wait_until(lambda: show(ob, dead.id)[0].status == "acknowledged")
    history = client.get(f"/v1/admin/deliveries/{dead.id}", headers=admin).json()["history"]
    redrive = [h for h in history if h["kind"] == "redriven"]
    assert redrive
    assert redrive[0]["detail"] == "RIS fixed"
    assert redrive[0]["actor_id"] != "system"
    # The redrive and every look at the delivery are in the audit log, with the patient.
    runtime.services.access_log.flush()
    assert [row for row in audit_rows(runtime.url, str(dead.id)) if row[0] == "redrive"] == [
        ("redrive", "delivery", "admin", "RIS fixed", str(patient_id))
    ]
    assert ("read", "delivery", "admin", "", str(patient_id)) in audit_rows(
        runtime.url, str(dead.id)
    )
    assert client.get(f"/v1/admin/deliveries/{UUID(int=1)}", headers=admin).status_code == 404


def test_cli_lists_shows_and_redrives(runtime, peer, outbound_factory, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    ob = outbound_factory(outbound_settings(runtime, peer))
    peer.default = "AR"
    patient_id = new_patient(runtime, 6)
    wait_until(lambda: deliveries(ob, status="dead_lettered"))
    [dead] = deliveries(ob, status="dead_lettered")
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": runtime.url,
        "ENVIRONMENT": "test",
        "PYTHONPATH": f"{root / 'src'}:{root}",
    }
    program = "from imaging_bridge.deliveries_cli import deliveries_app; deliveries_app()"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", program, *args, "--data-dir", str(tmp_path)],
            env=env,
            cwd=str(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = cli("list", "--status", "dead_lettered")
    assert listed.returncode == 0, listed.stderr
    assert str(dead.id) in listed.stdout
    shown = cli("show", str(dead.id))
    assert shown.returncode == 0, shown.stderr
    assert dead.control_id in shown.stdout
    assert " AR " in shown.stdout

    peer.default = "AA"
    redriven = cli("redrive", str(dead.id), "--reason", "fixed")
    assert redriven.returncode == 0, redriven.stderr
    wait_until(lambda: show(ob, dead.id)[0].status == "acknowledged")
    again = cli("redrive", str(dead.id), "--reason", "again")
    assert again.returncode == 2
    from tests.support import audit_rows

    actions = [(row[0], row[3], row[4]) for row in audit_rows(runtime.url, str(dead.id))]
    assert actions == [("read", "", str(patient_id)), ("redrive", "fixed", str(patient_id))]


def test_a_booking_for_an_order_carries_its_placer_and_filler_numbers_to_the_ris(
    runtime, peer, outbound_factory
):
    from tests.support import place_order

    # Given an order the RIS placed (placer P1 of PLC, filler F1 of RIS) for a CT head
    patient = new_patient(runtime, 20)
    order_id = place_order(runtime, patient, 1, "70450", "CT head")
    ob = outbound_factory(outbound_settings(runtime, peer))

    # When the patient books it, moves it, then cancels it
    scheduling = runtime.services.scheduling
    appointment = scheduling.book(
        patient_id=patient,
        appointment_type_id=AppointmentType.create_id("ct-head"),
        location_id=Location.create_id("riverside"),
        start=DAY,
        actor=PATIENT_ACTOR,
        order_id=order_id,
    ).appointment.id
    scheduling.reschedule(
        appointment,
        start=DAY + timedelta(hours=1),
        location_id=None,
        reason="later",
        actor=PATIENT_ACTOR,
        owner=patient,
    )
    scheduling.cancel(appointment, reason="ill", actor=PATIENT_ACTOR, owner=patient)

    # Then S12, S13 and S15 each name the order as the RIS numbered it (SCH-26, SCH-27)
    wait_until(
        lambda: len(deliveries(ob)) == 4 and all(d.status == "acknowledged" for d in deliveries(ob))
    )
    sius = [m for m in peer.messages() if field_of(m, "MSH", 9).startswith("SIU")]
    assert [field_of(m, "MSH", 9).split("^")[1] for m in sius] == ["S12", "S13", "S15"]
    for message in sius:
        assert (field_of(message, "SCH", 26), field_of(message, "SCH", 27)) == (
            "P1^PLC",
            "F1^RIS",
        )
        parsed = parse_message(message, validation_level=VALIDATION_LEVEL.STRICT)
        parsed.validate()
        assert parsed.sch.sch_27.to_er7() == "F1^RIS"
    # A booking for no order names none.
    book(runtime, patient, DAY + timedelta(hours=3))
    wait_until(lambda: len(by_type(ob, "SIU^S12")) == 2)
    wait_until(lambda: len([m for m in peer.messages() if "SIU^S12" in m]) == 2)
    plain = [m for m in peer.messages() if "SIU^S12" in m][-1]
    assert field_of(plain, "SCH", 26) == field_of(plain, "SCH", 27) == ""


# The RIS knows our patients (issue 10): once linked to the RIS's record, PID-3 carries the
# RIS's MRN beside our id and PID-8 the administrative sex; a patient registered before the
# RIS was a destination is introduced with an ADT^A04 before their first SIU.


def test_a_linked_patients_siu_carries_the_ris_mrn_and_the_sex(runtime, peer, outbound_factory):
    registry = runtime.services.registry
    ris_id = registry.record_patient_from_ris(
        identifiers=[("CENTRE", "MRN-OUT-1")],
        given_name="Ana",
        family_name="Lopez",
        birth_date=date(1985, 3, 4),
        phone=None,
        update_demographics=True,
        actor=system_actor(source="hl7-inbound"),
        administrative_sex="F",
    )
    issued = runtime.services.activation.issue(ris_id, system_actor())
    registration = runtime.services.activation.register(
        code=issued.code,
        birth_date=date(1985, 3, 4),
        email="ana.out@example.org",
        password="correct horse battery staple",
        throttle_key="test",
        actor=system_actor(),
    )
    assert registration.patient_id == ris_id
    book(runtime, ris_id, DAY)
    ob = outbound_factory(outbound_settings(runtime, peer))

    wait_until(lambda: [d.status for d in deliveries(ob)] == ["acknowledged"])
    [siu] = peer.messages()
    assert field_of(siu, "MSH", 9).startswith("SIU^S12")  # the RIS sent us Ana: no A04
    assert field_of(siu, "PID", 3) == f"MRN-OUT-1^^^CENTRE^MR~{ris_id}^^^IMGBRIDGE^PI"
    assert field_of(siu, "PID", 8) == "F"
    parse_message(siu, validation_level=VALIDATION_LEVEL.STRICT).validate()


def test_a_patient_registered_before_the_ris_was_a_destination_gets_an_a04_first(
    runtime, peer, outbound_factory
):
    # The policy runs without destinations: the registration is followed, nothing sent.
    quiet = outbound_factory(runtime.settings, pump=False, workers=0)
    patient = new_patient(runtime, 31)
    runtime.services.registry.change_profile(
        patient, {"administrative_sex": "M"}, system_actor(source="test")
    )
    quiet.wait_caught_up()
    assert deliveries(quiet) == []
    quiet.stop()

    ob = outbound_factory(outbound_settings(runtime, peer))
    book(runtime, patient, DAY)
    wait_until(
        lambda: len(deliveries(ob)) == 2 and all(d.status == "acknowledged" for d in deliveries(ob))
    )
    kinds = [field_of(m, "MSH", 9).split("^")[1] for m in peer.messages()]
    assert kinds == ["A04", "S12"]
    a04 = peer.messages()[0]
    assert field_of(a04, "PID", 3) == f"{patient}^^^IMGBRIDGE^PI"
    assert (field_of(a04, "PID", 5), field_of(a04, "PID", 8)) == ("Doe31^Jane", "M")
    parse_message(a04, validation_level=VALIDATION_LEVEL.STRICT).validate()
    # A second booking needs no introduction.
    book(runtime, patient, DAY.replace(hour=16))
    wait_until(lambda: len(by_type(ob, "SIU^S12")) == 2)
    ob.wait_caught_up()
    assert len(by_type(ob, "ADT^A04")) == 1


def bookings_follower(
    runtime: Runtime,
    settings: Settings,
    *,
    wait: float,
    policy: type[DeliveryPolicy] = DeliveryPolicy,
) -> PolicyRunner:
    """The delivery policy following the bookings' log alone (no registry follower beside
    it), waiting ``wait`` seconds for one (``REGISTRATION_WAIT``); run it with ``with``."""
    env = {**policy_env(runtime.env, destinations_of(settings)), REGISTRATION_WAIT: f"{wait:g}"}
    return PolicyRunner(application_class=SchedulingLog, projection_class=policy, env=env)


def test_the_bookings_follower_leaves_a_registration_it_is_ahead_of_to_the_registry_one(
    runtime, peer, outbound_factory
):
    # The two followers (registry, scheduling) catch up side by side. When the scheduling
    # one meets a booking whose patient's registration the registry one has not reached,
    # it must not introduce the patient: both queueing an A04 at once gave two.
    patients = [new_patient(runtime, 40 + i) for i in range(4)]
    for i, patient in enumerate(patients):
        book(runtime, patient, DAY.replace(hour=8 + i))
    settings = outbound_settings(runtime, peer)
    # No registry follower runs here: the bookings' one must not wait for it.
    with bookings_follower(runtime, settings, wait=0) as bookings_only:
        bookings_only.wait(bookings_only.app.recorder.max_notification_id(), timeout=10)
        introduced = []
        for patient in patients:
            with contextlib.suppress(AggregateNotFoundError):
                introduced.append(
                    bookings_only.projection.repository.get(introduction_id(patient, "ris"))
                )
    assert introduced == []
    ob = outbound_factory(settings)
    wait_until(lambda: len(by_type(ob, "ADT^A04")) == len(patients))
    ob.wait_caught_up()
    assert len(by_type(ob, "SIU^S12")) == len(patients)
    assert len(by_type(ob, "ADT^A04")) == len(patients)


def test_once_a_wait_for_the_registry_follower_ran_out_no_other_patient_waits(runtime, peer):
    # No registry follower runs (as when it is far behind): the bookings' follower waits
    # for it once, to its limit, then queues the other new patients' SIUs at once. Before,
    # it waited the full time for each of them: 6 x 4 s, while everyone's SIUs queued up.
    patients = [new_patient(runtime, 60 + i) for i in range(6)]
    booked = [book(runtime, patient, DAY.replace(hour=8 + i)) for i, patient in enumerate(patients)]
    settings = outbound_settings(runtime, peer)
    with bookings_follower(runtime, settings, wait=4) as bookings_only:
        bookings_only.wait(bookings_only.app.recorder.max_notification_id(), timeout=16)
        queued = [
            bookings_only.projection.repository.get(
                MessageDelivery.create_id(f"{appointment}:1", "ris", "hl7")
            ).message_type
            for appointment in booked
        ]
    assert queued == ["SIU^S12"] * len(patients)


def test_a_patient_who_registers_and_books_at_once_reaches_the_ris_a04_first(
    runtime, peer, outbound_factory
):
    # The registry's follower falls behind (its tracking row is locked, as a long batch
    # would hold it) while a new patient registers and books: the bookings' follower
    # must not queue their S12 before the registry's one has queued their A04, or the
    # pump sends the S12 first and the RIS hears of an appointment for a stranger.
    first = new_patient(runtime, 50)
    ob = outbound_factory(outbound_settings(runtime, peer))
    wait_until(lambda: [d.status for d in by_type(ob, "ADT^A04")] == ["acknowledged"])
    with runtime.pool.connection() as held, held.transaction():
        locked = held.execute(
            "SELECT notification_id FROM deliveries_tracking WHERE application_name = %s"
            " FOR UPDATE",
            (RegistryLog.name,),
        ).fetchall()
        assert locked, "the registry's follower has recorded its position"
        patient = new_patient(runtime, 51)
        book(runtime, patient, DAY)
        time.sleep(1.5)  # the pump runs every 0.05 s: an S12 queued now would be sent
        assert [field_of(m, "PID", 3) for m in peer.messages()] == [f"{first}^^^IMGBRIDGE^PI"]
    wait_until(lambda: len(by_type(ob, "SIU^S12")) == 1 and len(by_type(ob, "ADT^A04")) == 2)
    wait_until(lambda: len(peer.messages()) == 3)
    kinds = [field_of(m, "MSH", 9).split("^")[1] for m in peer.messages()[1:]]
    assert kinds == ["A04", "S12"]
    assert {field_of(m, "PID", 3) for m in peer.messages()[1:]} == {f"{patient}^^^IMGBRIDGE^PI"}
