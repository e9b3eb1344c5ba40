"""Render -> extract round trip for any text, control characters included.

What a patient types (names, notes) goes out in an SIU/ADT and is read back by an HL7
reader (ours, ``Hl7Extractor``, stands in for the RIS). The documented normalisation:
every control character (Unicode category Cc: C0, DEL, C1 - CR and LF among them) is
sent as a space, the HL7 delimiters are escaped, and a reader strips the value's outer
whitespace. No text adds a segment, and none carries an MLLP frame byte (0x0B, 0x1C).
"""

import unicodedata
from datetime import UTC, date, datetime
from uuid import UUID

from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.hl7.extract import Hl7Extractor, _Message
from adapters.hl7.framing import END, START
from adapters.hl7.render import render_fast
from application.ris.inbound_ports import InboundMessage
from tests.unit.test_message_delivery import siu_payload

SIU_SEGMENTS = ["MSH", "SCH", "NTE", "PID", "RGS", "AIS", "AIG", "AIL"]
ADT_SEGMENTS = ["MSH", "EVN", "PID", "PV1"]
NASTY = "\r\n|^~\\&\x00\x0b\x1c\x1d\x7f\x85\u2028\t"

# Any text (surrogates cannot be encoded), weighted towards delimiters and controls.
any_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(NASTY + "\\F\\S\\T\\R\\E\\X0D\\ "),
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
    ),
    max_size=40,
)


def normalised(value: str) -> str:
    """What the receiving side reads back for ``value``."""
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in value).strip()


def read_back(er7: str):
    message = InboundMessage(UUID(int=1), "SIU", "S14", "C1", "IB", "IB", "2.5.1", er7)
    return Hl7Extractor().read(message)


def segment_names(er7: str) -> list[str]:
    return [line.split("|", 1)[0] for line in er7.split("\r")]


@settings(max_examples=300, deadline=None)
@given(given_name=any_text, family_name=any_text, notes=any_text)
@example(given_name="Ann\\S\\", family_name="O'Neil|\rPID|2||X", notes="a\x1c")
@example(given_name=NASTY, family_name="\\E\\F\\", notes="\x0bMSH|^~\\&|")
def test_names_and_notes_come_back_as_sent_less_control_characters(given_name, family_name, notes):
    # Given a booking whose patient and notes hold any text at all
    payload = siu_payload(
        given_name, family_name, date(1980, 2, 29), datetime(2026, 12, 1, tzinfo=UTC)
    )
    payload["notes"] = notes

    # When it is rendered as an SIU and read by the receiving side
    er7 = render_fast("SIU^S14", payload, "C1", recipient="ris")
    parsed = read_back(er7)

    # Then the message has exactly its segments, nothing that ends an MLLP frame early,
    # and every value reads back as sent, control characters as spaces.
    expected = SIU_SEGMENTS if notes else [s for s in SIU_SEGMENTS if s != "NTE"]
    assert segment_names(er7) == expected
    assert START.decode() not in er7
    assert END.decode() not in er7
    assert "\n" not in er7
    assert parsed.patient is not None
    assert (parsed.patient.given_name, parsed.patient.family_name) == (
        normalised(given_name),
        normalised(family_name),
    )
    if notes:
        message = _Message(er7)
        assert message.component(message.field(message.first("NTE"), 3), 1) == normalised(notes)


@settings(max_examples=150, deadline=None)
@given(given_name=any_text, family_name=any_text, mrn=any_text)
def test_adt_names_and_identifiers_come_back_as_sent(given_name, family_name, mrn):
    payload = siu_payload(
        given_name, family_name, date(1980, 2, 29), datetime(2026, 12, 1, tzinfo=UTC)
    )
    if mrn:
        payload.update(mrn=mrn, mrn_authority="RIS")

    er7 = render_fast("ADT^A08", payload, "C1", recipient="ris")
    parsed = read_back(er7)

    assert segment_names(er7) == ADT_SEGMENTS
    assert START.decode() not in er7
    assert END.decode() not in er7
    assert parsed.patient is not None
    assert (parsed.patient.given_name, parsed.patient.family_name) == (
        normalised(given_name),
        normalised(family_name),
    )
    sent_ids = [i.value for i in parsed.patient.identifiers]
    assert sent_ids[-1] == payload["patient_id"]
    if normalised(mrn):
        assert sent_ids[0] == normalised(mrn)
