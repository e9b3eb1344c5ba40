"""Control characters (issue 9, finding 2), as properties: no text that passes the
acceptance check and reaches the extractor holds a character PostgreSQL text refuses
(NUL) or any other control character HL7 does not allow; and a control character put
into any field is refused with that field's location."""

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7.acks import build_ack
from adapters.hl7.envelope import decode, read_envelope
from adapters.hl7.extract import Hl7Extractor
from adapters.hl7.processor import inbound_message
from domain.errors import DomainError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

# One message of each kind the bridge applies, as (segment, fields after the id).
TEMPLATES: dict[str, list[tuple[str, list[str]]]] = {
    "ADT^A08": [
        ("PID", ["1", "", "MRN1^^^CENTRE^MR", "", "DOE^JANE", "", "19800101", "F"]),
        ("PV1", ["1", "O"]),
    ],
    "ORM^O01": [
        ("PID", ["1", "", "MRN2^^^CENTRE^MR", "", "ROE^ALEX", "", "19750312", "M"]),
        ("ORC", ["NW", "PL1^RIS", "FI1^RIS"]),
        ("OBR", ["1", "PL1^RIS", "FI1^RIS", "CTHEAD^CT head", "", "", "20261130120000"]),
        ("ORC", ["NW", "PL2^RIS", "FI2^RIS"]),
        ("OBR", ["2", "PL2^RIS", "FI2^RIS", "XR^Chest X-ray"]),
    ],
    "ORU^R01": [
        ("PID", ["1", "", "MRN3^^^CENTRE^MR", "", "POE^SAM", "", "19900101"]),
        ("OBR", ["1", "PL3^RIS", "FI3^RIS", "MR^MR knee", "", "", "20261130120000"]),
        ("OBX", ["1", "RP", "V^Viewer", "", "https://pacs.example/v?acc=1^URL"]),
    ],
    "SIU^S12": [
        ("SCH", ["P1", "F1", "", "", "", "", "", "", "", "", "^^30^20261201100000"]),
        ("PID", ["1", "", "MRN4^^^CENTRE^MR", "", "LOE^KIM", "", "19600101"]),
        ("AIL", ["1", "A", "ROOM1^Room one", "", "", "20261201100000", "", "", "30", "MIN"]),
    ],
}
CHARSETS = ["", "UNICODE UTF-8", "8859/1", "ASCII"]
# What HL7 does not allow, written out here independently of the code under test: every
# C0 control but the CR (and LF) segment breaks, and DEL.
NOT_ALLOWED = re.compile("[" + "".join(chr(c) for c in range(32) if c not in (10, 13)) + "\x7f]")
CONTROL = st.sampled_from([chr(c) for c in (*range(0x0A), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)])


def render(kind: str, charset: str, fields: list[tuple[str, list[str]]]) -> str:
    header = f"MSH|^~\\&|RIS|CENTRE|BRIDGE|US|20261130120000||{kind}|C1|P|2.5.1"
    if charset:
        header += f"|||||EN|{charset}"
    return "\r".join([header, *("|".join([name, *values]) for name, values in fields)]) + "\r"


def strings(value: Any) -> list[str]:
    """Every string inside a parsed message (dataclasses, tuples, dates left out)."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in strings(getattr(value, f.name))]
    if isinstance(value, tuple | list):
        return [s for item in value for s in strings(item)]
    return []


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    """A supported message with arbitrary bytes or text (controls included) in some of
    its fields, under any declared charset."""
    kind = draw(st.sampled_from(sorted(TEMPLATES)))
    fields = [(name, list(values)) for name, values in TEMPLATES[kind]]
    for _ in range(draw(st.integers(1, 4))):
        segment = draw(st.integers(0, len(fields) - 1))
        position = draw(st.integers(0, len(fields[segment][1]) - 1))
        value = draw(
            st.one_of(
                st.text(max_size=20),
                st.text(alphabet=st.characters(max_codepoint=0xA0), max_size=20),
                st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
            )
        )
        fields[segment][1][position] = value
    charset = draw(st.sampled_from(CHARSETS))
    text = render(kind, charset, fields)
    as_latin1 = charset == "8859/1" and draw(st.booleans())
    return text.encode("latin-1", errors="replace") if as_latin1 else text.encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(hostile_messages())
def test_nothing_accepted_reaches_the_extractor_with_a_character_postgresql_refuses(raw):
    # Given any message; when the processing stage reads it as it does a stored one
    message, problem = inbound_message(UUID(int=1), raw)
    envelope = read_envelope(raw)
    text, _ = decode(raw[envelope.msh_offset :], envelope)
    if NOT_ALLOWED.search(text):
        # Then one holding a control character is refused (AR), whatever else it holds
        assert problem is not None
        return
    if problem is not None:
        return
    # Then an accepted one yields, header and extracted values alike, only text that
    # PostgreSQL stores: no NUL, no other control character, valid UTF-8
    try:
        parsed = Hl7Extractor().read(message)
    except DomainError:
        return  # quarantined by the handler: nothing applied
    header = [message.control_id, message.sending_application, message.sending_facility]
    for value in strings(parsed) + header + [message.text]:
        assert "\x00" not in value
        assert NOT_ALLOWED.search(value) is None
        value.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(sorted(TEMPLATES)),
    data=st.data(),
    control=CONTROL,
    version=st.sampled_from(["2.3", "2.5.1"]),
)
def test_a_control_character_in_any_field_is_refused_with_its_location(
    kind, data, control, version
):
    # Given a control character put into one field (not the first character of the
    # segment: that is where the segment id is)
    fields = [(name, list(values)) for name, values in TEMPLATES[kind]]
    segment = data.draw(st.integers(0, len(fields) - 1))
    position = data.draw(st.integers(0, len(fields[segment][1]) - 1))
    value = fields[segment][1][position]
    cut = data.draw(st.integers(0, len(value)))
    fields[segment][1][position] = value[:cut] + control + value[cut:]
    raw = render(kind, "", fields).replace("|2.5.1", f"|{version}", 1).encode()
    name = fields[segment][0]
    sequence = 1 + sum(1 for other, _ in fields[:segment] if other == name)

    # When the envelope is read
    problem = read_envelope(raw).problem

    # Then it is refused with that segment, sequence and field
    assert problem is not None
    assert (problem.ack_code, problem.error_code) == ("AR", "102")
    assert (problem.segment, problem.sequence, problem.field) == (name, sequence, position + 1)
    # ... and the ACK's ERR names them, and holds no control character itself
    ack = build_ack(read_envelope(raw), problem, control_id="A1", now=NOW)
    location = f"{name}^{sequence}^{position + 1}"
    assert location in ack.decode("latin-1")
    assert NOT_ALLOWED.search(ack.decode("latin-1")) is None
