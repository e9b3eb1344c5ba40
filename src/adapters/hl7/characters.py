"""Control characters on the HL7 path: which ones a message may hold, and where the
first one that it may not hold is (segment, its sequence, field).

HL7 v2 allows no control character in a message except the segment terminator CR; we
also take LF and CRLF as segment breaks, as many feeds send them. Every other C0 control
(NUL, TAB, VT, FF, ESC, the MLLP framing bytes, ...) and DEL is refused: PostgreSQL text
cannot hold NUL at all (one such value would stop a read model for good), and none of
them is data. C1 code points (U+0080-U+009F) are kept: PostgreSQL stores them, and they
are what mislabelled feeds produce (UTF-8 declared as 8859/1 reads an en dash as
``â\\x80\\x93``; the public corpus has two such messages).
"""

import re
from dataclasses import dataclass

ALLOWED_BREAKS = "\r\n"
NOT_ALLOWED = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")


@dataclass(frozen=True)
class Location:
    """Where a character sits: ``segment`` is empty when the segment id itself cannot be
    read; ``field`` is 0 inside the segment id."""

    character: str
    segment: str
    sequence: int
    field: int

    @property
    def label(self) -> str:
        """``OBR-4`` (``OBR(2)-4`` for a second OBR), for texts and logs."""
        name = self.segment or "segment"
        if self.sequence > 1:
            name += f"({self.sequence})"
        return f"{name}-{self.field}" if self.field else name


def first_control_character(text: str, field_separator: str) -> Location | None:
    """The first character of ``text`` (a message from its MSH on) that HL7 does not
    allow, with its location; None when there is none."""
    found = NOT_ALLOWED.search(text)
    if found is None:
        return None
    position = found.start()
    line_start = max(text.rfind("\r", 0, position), text.rfind("\n", 0, position)) + 1
    line = text[line_start:position]
    segment = line[:3] if len(line) >= 3 and _SEGMENT_ID.fullmatch(line[:3]) else ""
    field = line.count(field_separator) if segment else 0
    if segment == "MSH" and field:
        field += 1  # MSH-1 is the field separator itself
    return Location(
        character=found.group(),
        segment=segment,
        sequence=_sequence(text, line_start, segment),
        field=field,
    )


def _sequence(text: str, line_start: int, segment: str) -> int:
    """Which occurrence of ``segment`` the line starting at ``line_start`` is."""
    if not segment:
        return 1
    before = re.split(r"[\r\n]", text[:line_start])
    return 1 + sum(1 for line in before if line[:3] == segment)


def without_control_characters(value: str) -> str:
    """``value`` with every character HL7 does not allow removed (CR and LF too): for
    header values echoed back into an ACK."""
    return re.sub(r"[\x00-\x1f\x7f]", "", value)
