"""A cheap reader of the MSH segment: enough to store, deduplicate and acknowledge a
message without a full HL7 parse (hl7apy is far too slow for the ACK path).

``read_envelope`` never raises: bytes it cannot make sense of give an envelope with
``problem`` set, which the listener turns into AE/AR with an ERR segment.
"""

import codecs
import re
from dataclasses import dataclass

from adapters.hl7.characters import first_control_character

BOM = b"\xef\xbb\xbf"
DEFAULT_FIELD_SEPARATOR = "|"
DEFAULT_ENCODING = "^~\\&"
MAX_KEY_CHARS = 180  # identifying fields are cut to this for storage and keys
_SEGMENT_BREAK = re.compile(rb"\r\n|\r|\n")
_TEXT_BREAK = re.compile(r"\r\n|\r|\n")
VERSION_PATTERN = re.compile(r"^2\.[1-8](\.\d+)*$")

# MSH-18 values and the Python codec that reads them.
CHARSETS = {
    "ASCII": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE": "utf-8",
}


@dataclass(frozen=True)
class Problem:
    """Why a message cannot be accepted: the ACK code, an HL7 table 0357 error code,
    a short text, and where (segment, its sequence, field) when known."""

    ack_code: str  # AE or AR
    error_code: str
    text: str
    segment: str = "MSH"
    field: int = 0
    sequence: int = 1


@dataclass(frozen=True)
class Envelope:
    """What the MSH says. Header field values are the raw bytes read as latin-1, so
    echoing them back into an ACK reproduces the sender's bytes exactly."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    timestamp: str
    message_type: str
    trigger: str
    control_id: str
    processing_id: str
    version: str
    charset: str  # MSH-18 as sent
    msh_offset: int  # where MSH starts in the bytes (after a BOM or junk)
    problem: Problem | None = None

    @property
    def component_separator(self) -> str:
        return self.encoding_characters[0]

    @property
    def codec(self) -> str | None:
        return CHARSETS.get(self.charset.split(self.component_separator)[0].strip().upper())


def _empty(problem: Problem, offset: int = 0) -> Envelope:
    return Envelope(
        field_separator=DEFAULT_FIELD_SEPARATOR,
        encoding_characters=DEFAULT_ENCODING,
        sending_application="",
        sending_facility="",
        receiving_application="",
        receiving_facility="",
        timestamp="",
        message_type="",
        trigger="",
        control_id="",
        processing_id="",
        version="",
        charset="",
        msh_offset=offset,
        problem=problem,
    )


def _find_msh(raw: bytes) -> int:
    """Where the MSH segment starts: at the beginning, or after junk at a line start
    (batch headers, ``[SOM]`` markers, a BOM)."""
    position = 0
    while True:
        found = raw.find(b"MSH", position)
        if found < 0:
            return -1
        if (
            found + 3 < len(raw)
            and raw[found + 3] not in b"\r\n"
            and not chr(raw[found + 3]).isalnum()
        ):
            return found
        position = found + 1


def _valid_separators(field_separator: str, encoding: str) -> bool:
    characters = field_separator + encoding
    return (
        len(encoding) in (4, 5)
        and len(set(characters)) == len(characters)
        and all(c.isprintable() and not c.isalnum() and c != " " for c in characters)
    )


def read_envelope(raw: bytes) -> Envelope:
    """Read the MSH of one message. Never raises."""
    start = _find_msh(raw)
    if start < 0:
        return _empty(Problem("AR", "100", "no MSH segment"))
    end_match = _SEGMENT_BREAK.search(raw, start)
    line = raw[start : end_match.start() if end_match else len(raw)].decode("latin-1")
    field_separator = line[3]
    fields = line.split(field_separator)
    encoding = fields[1] if len(fields) > 1 else ""
    if not _valid_separators(field_separator, encoding):
        return _empty(Problem("AR", "102", "invalid MSH-1 or MSH-2", field=2), start)

    def msh(number: int) -> str:
        # MSH-1 is the separator itself, so MSH-n is fields[n - 1].
        index = number - 1
        return fields[index][:MAX_KEY_CHARS] if index < len(fields) else ""

    component = encoding[0]
    message_type = msh(9).split(component)
    version = msh(12).split(component)[0].strip()
    envelope = Envelope(
        field_separator=field_separator,
        encoding_characters=encoding,
        sending_application=msh(3),
        sending_facility=msh(4),
        receiving_application=msh(5),
        receiving_facility=msh(6),
        timestamp=msh(7),
        message_type=message_type[0].strip().upper(),
        trigger=message_type[1].strip().upper() if len(message_type) > 1 else "",
        control_id=msh(10),
        processing_id=msh(11),
        version=version,
        charset=msh(18),
        msh_offset=start,
    )
    problem = (
        _charset_problem(envelope)
        or _control_character_problem(raw, envelope)
        or _header_problem(envelope)
    )
    if problem is None:
        return envelope
    return Envelope(**{**envelope.__dict__, "problem": problem})


def _charset_problem(envelope: Envelope) -> Problem | None:
    if envelope.charset.strip() and envelope.codec is None:
        return Problem("AR", "103", "unsupported character set", field=18)
    return None


def _control_character_problem(raw: bytes, envelope: Envelope) -> Problem | None:
    """A control character HL7 does not allow, anywhere from the MSH on (see
    ``characters``): AR with where it is, before anything else reads the message."""
    text, _ = decode(raw[envelope.msh_offset :], envelope)
    found = first_control_character(text, envelope.field_separator)
    if found is None:
        return None
    return Problem(
        "AR",
        "102",
        f"control character 0x{ord(found.character):02X} not allowed in {found.label}",
        segment=found.segment,
        field=found.field,
        sequence=found.sequence,
    )


def _header_problem(envelope: Envelope) -> Problem | None:
    if not envelope.message_type:
        return Problem("AR", "101", "MSH-9 message type missing", field=9)
    if not VERSION_PATTERN.match(envelope.version):
        return Problem("AR", "203", "unsupported version id", field=12)
    return None


def decode(raw: bytes, envelope: Envelope) -> tuple[str, str]:
    """The message as text and the codec that read it: MSH-18's when the bytes fit it,
    else UTF-8, else latin-1 (which reads anything). Feeds mislabel often."""
    for codec in (envelope.codec, "utf-8", "iso8859-1"):
        if codec is None:
            continue
        try:
            return raw.decode(codec), codecs.lookup(codec).name
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "iso8859-1"  # pragma: no cover - latin-1 always decodes


BATCH_SEGMENTS = ("FHS", "FTS", "BHS", "BTS")


def segments_text(raw: bytes, envelope: Envelope) -> str:
    """The message from its MSH on, segments joined by CR, empty lines and batch
    envelope segments left out: what the handler parses."""
    text, _ = decode(raw[envelope.msh_offset :], envelope)
    kept = [
        line
        for line in _TEXT_BREAK.split(text)
        if line.strip() and not line.startswith(BATCH_SEGMENTS)
    ]
    return "\r".join(kept)
