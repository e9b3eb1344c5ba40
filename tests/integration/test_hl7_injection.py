"""HL7 injection through what patients type: names and notes holding segment and
field separators, escapes and control characters go out through the real API, policy,
worker and MLLP to a peer, in messages with exactly their segments, and read back (by an
HL7 reader) as typed, control characters as spaces."""

from uuid import UUID

import pytest

from adapters.hl7.extract import Hl7Extractor, _Message
from application.ris.inbound_ports import InboundMessage
from tests.integration import test_outbound_hl7 as outbound
from tests.integration.mllp_peer import field_of, wait_until
from tests.integration.test_at_rest import all_acknowledged, patient_books_with_notes
from tests.integration.test_outbound_hl7 import outbound_settings

pytestmark = pytest.mark.integration
peer, outbound_factory = outbound.peer, outbound.outbound_factory  # the fixtures

GIVEN = "Ann\rPID|2||EVIL^^^X^MR||INJECTED\n~&\\S\\"
FAMILY = "O'Brien|^\x0bMSH|^~\\&|\x1c\rEVN|A08"
NOTES = "wheelchair\r\nNTE|2||more\x1c\x1d\x7f\u0085\ttab \\F\\ end\x1c"
SEGMENTS = {
    "ADT^A04": ["MSH", "EVN", "PID", "PV1"],
    "SIU^S12": ["MSH", "SCH", "PID", "RGS", "AIS", "AIG", "AIL"],
    "SIU^S14": ["MSH", "SCH", "NTE", "PID", "RGS", "AIS", "AIG", "AIL"],
}


def as_read(text: str) -> str:
    """``text`` as an HL7 reader gets it back: control characters as spaces, the outer
    whitespace stripped (the API strips it first)."""
    return "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text.strip()).strip()


def test_names_and_notes_cannot_add_segments_and_read_back_as_typed(
    client, runtime, peer, outbound_factory
):
    # Given a patient whose name and notes hold separators, escapes and control characters
    ob = outbound_factory(outbound_settings(runtime, peer))
    patient = {
        "email": "injection@example.org",
        "password": "correct horse battery staple",
        "given_name": GIVEN,
        "family_name": FAMILY,
        "birth_date": "1980-02-29",
    }

    # When they book and give notes, and the RIS gets ADT^A04, SIU^S12 and SIU^S14
    headers, appointment_id = patient_books_with_notes(client, patient, NOTES)
    wait_until(lambda: all_acknowledged(ob, 3))

    # Then the peer got three messages (one frame each), every one with its segments only
    received = peer.messages()
    kinds = [field_of(m, "MSH", 9).rsplit("^", 1)[0] for m in received]
    assert kinds == ["ADT^A04", "SIU^S12", "SIU^S14"]
    for kind, message in zip(kinds, received, strict=True):
        assert [line.split("|", 1)[0] for line in message.split("\r")] == SEGMENTS[kind]
        assert len([line for line in message.split("\r") if line.startswith("PID|")]) == 1
        assert not {"\x0b", "\x1c", "\n", "\x00"} & set(message)
        # ... and an HL7 reader gets the name back as typed.
        read = Hl7Extractor().read(
            InboundMessage(UUID(int=1), "X", "Y", "1", "IB", "IB", "2.5.1", message)
        )
        assert read.patient is not None
        assert (read.patient.given_name, read.patient.family_name) == (
            as_read(GIVEN),
            as_read(FAMILY),
        )
        assert [i.authority for i in read.patient.identifiers] == ["IMGBRIDGE"]
    s14 = _Message(received[2])
    # (The appointment keeps notes with their whitespace runs as single spaces.)
    kept = " ".join(NOTES.split())
    assert s14.component(s14.field(s14.first("NTE"), 3), 1) == as_read(kept)

    # The portal still shows the patient their notes as typed (the read model took them).
    shown = client.get(f"/v1/appointments/{appointment_id}", headers=headers)
    assert shown.status_code == 200, shown.text
    assert shown.json()["notes"] == kept
