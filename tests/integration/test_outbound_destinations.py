"""Where outbound HL7 goes: to every configured destination, each at its own pace (one
down does not hold up another), and never back to the RIS for what the RIS told us."""

from collections.abc import Iterator

import pytest

from application.ris.ris_bookings import RisBookings
from domain.ris.ris_booking import OCCUPYING
from tests.integration import test_outbound_hl7 as outbound
from tests.integration.mllp_peer import Peer, field_of, wait_until
from tests.integration.test_inbound_effects import message
from tests.integration.test_outbound_hl7 import (
    DAY,
    PATIENT_ACTOR,
    book,
    deliveries,
    new_patient,
    outbound_settings,
)

pytestmark = pytest.mark.integration
peer, outbound_factory = outbound.peer, outbound.outbound_factory  # the fixtures


@pytest.fixture
def engine() -> Iterator[Peer]:
    """A second receiver: the centre's interface engine."""
    with Peer() as p:
        yield p


def two_destinations(runtime, ris: Peer, engine: Peer):
    return outbound_settings(
        runtime,
        ris,
        hl7_destinations=f"ris=127.0.0.1:{ris.port};timeout=5,engine=127.0.0.1:{engine.port};timeout=5",
    )


def acknowledged(ob, recipient: str, count: int) -> bool:
    mine = [d for d in deliveries(ob) if d.recipient == recipient]
    return len(mine) == count and all(d.status == "acknowledged" for d in mine)


def after_msh(message_text: str) -> list[str]:
    """A message less its MSH (which names the recipient and carries its own MSH-10)."""
    return message_text.split("\r")[1:]


def test_every_destination_gets_every_message_and_one_down_holds_up_no_other(
    runtime, peer, engine, outbound_factory
):
    # Given two destinations, the interface engine down
    ob = outbound_factory(two_destinations(runtime, peer, engine))
    engine.down()

    # When a patient registers, books and cancels
    patient = new_patient(runtime, 21)
    first = book(runtime, patient, DAY)
    runtime.services.scheduling.cancel(first, reason="moved", actor=PATIENT_ACTOR, owner=None)

    # Then the RIS gets all three while the engine's wait and are retried
    wait_until(lambda: acknowledged(ob, "ris", 3))
    wait_until(
        lambda: any(d.recipient == "engine" and d.last_code == "CONNECT" for d in deliveries(ob))
    )
    engine_side = [d for d in deliveries(ob) if d.recipient == "engine"]
    assert len(engine_side) == 3
    assert not any(d.status == "acknowledged" for d in engine_side)
    assert engine.messages() == []

    # ... and once the engine is back it gets the same three, in order
    engine.up()
    wait_until(lambda: acknowledged(ob, "engine", 3))
    to_ris, to_engine = peer.messages(), engine.messages()
    assert [field_of(m, "MSH", 9) for m in to_engine] == [field_of(m, "MSH", 9) for m in to_ris]
    assert [field_of(m, "MSH", 9).split("^")[1] for m in to_ris] == ["A04", "S12", "S15"]
    assert [after_msh(m) for m in to_engine] == [after_msh(m) for m in to_ris]
    assert {field_of(m, "MSH", 5) for m in to_engine} == {"ENGINE"}
    assert {field_of(m, "MSH", 5) for m in to_ris} == {"RIS"}
    # Each destination's copy is its own delivery, with its own MSH-10.
    assert not {field_of(m, "MSH", 10) for m in to_engine} & {
        field_of(m, "MSH", 10) for m in to_ris
    }


def ris_message(text: str):
    return message(text.replace("\n", "\r").strip())


def test_what_the_ris_tells_us_is_applied_but_not_echoed_back(runtime, peer, outbound_factory):
    # Given a patient of ours the RIS has heard about (ADT^A04 sent and acknowledged)
    ob = outbound_factory(outbound_settings(runtime, peer))
    ours = new_patient(runtime, 31)
    wait_until(lambda: acknowledged(ob, "ris", 1))

    # When the RIS renames them (ADT^A08), registers a patient of its own (ADT^A04) and
    # books a scanner of ours (SIU^S12)
    outcomes = [
        runtime.inbound.handle(ris_message(text))
        for text in (
            f"""MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|IMGBRIDGE|20261130120000||ADT^A08^ADT_A01|R1|P|2.5.1
EVN|A08|20261130120000
PID|1||MRN77^^^CENTRE^MR~{ours}^^^IMGBRIDGE^PI||Renamed^Jane||19800229|F""",
            """MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|IMGBRIDGE|20261130120100||ADT^A04^ADT_A01|R2|P|2.5.1
EVN|A04|20261130120100
PID|1||MRN88^^^CENTRE^MR||Risonly^Joe||19700101|M""",
            """MSH|^~\\&|RIS|CENTRE|IMGBRIDGE|IMGBRIDGE|20261130120200||SIU^S12^SIU_S12|R3|P|2.5.1
SCH|P1|RISAPPT1|||||||45|min|^^45^20261203100000-0500^20261203104500-0500
PID|1||MRN88^^^CENTRE^MR||Risonly^Joe||19700101|M
RGS|1|A
AIG|1|A|riverside-ct-1^CT one""",
        )
    ]
    assert outcomes == ["applied", "applied", "applied"]
    registry = runtime.services.registry
    assert registry.patient(ours).family_name == "Renamed"
    assert registry.patient_by_identifier("CENTRE", "MRN88") is not None
    booking = RisBookings(runtime.services.scheduling).ris_booking("RISAPPT1")
    assert booking is not None
    assert booking.status == OCCUPYING

    # ... and then our patient books in the portal and another registers (both logs move
    # past the RIS's changes, which the policy follows in order)
    book(runtime, ours, DAY)
    other = new_patient(runtime, 32)
    markers = {("SIU^S12", str(ours)), ("ADT^A04", str(other))}
    wait_until(
        lambda: (
            markers
            <= {
                (d.message_type, d.ordering_key)
                for d in deliveries(ob)
                if d.status == "acknowledged"
            }
        )
    )

    # Then the RIS heard only of our own changes: no A08 back, nothing on its patient or
    # its booking; the portal booking carries the name the RIS gave
    queued = sorted(d.message_type for d in deliveries(ob))
    assert queued == ["ADT^A04", "ADT^A04", "SIU^S12"]
    sent = [(field_of(m, "MSH", 9).split("^")[1], field_of(m, "PID", 5)) for m in peer.messages()]
    assert sorted(sent) == [("A04", "Doe31^Jane"), ("A04", "Doe32^Jane"), ("S12", "Renamed^Jane")]
