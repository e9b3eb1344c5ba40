"""What we answer: which messages we accept, and the ACK in the sender's own version,
separators and encoding characters (their header bytes echoed back unchanged)."""

from datetime import datetime

from adapters.hl7.characters import without_control_characters
from adapters.hl7.envelope import VERSION_PATTERN, Envelope, Problem

SUPPORTED: dict[str, frozenset[str]] = {
    "ADT": frozenset({"A01", "A04", "A08", "A28", "A31", "A40"}),
    "ORM": frozenset({"O01"}),
    "OMI": frozenset({"O23"}),
    "ORU": frozenset({"R01"}),
    "SIU": frozenset({"S12", "S13", "S14", "S15", "S26"}),
}
FALLBACK_VERSION = "2.5"


def acceptance(envelope: Envelope) -> Problem | None:
    """None when we take the message (AA), else why not (AE/AR with ERR)."""
    if envelope.problem is not None:
        return envelope.problem
    triggers = SUPPORTED.get(envelope.message_type)
    if triggers is None:
        return Problem("AR", "200", "unsupported message type", field=9)
    if not envelope.trigger and envelope.message_type == "ORU":
        return None  # v2.3 feeds may omit MSH-9.2 on results; R01 is the only one
    if not envelope.trigger:
        return Problem("AR", "101", "MSH-9 trigger event missing", field=9)
    if envelope.trigger not in triggers:
        return Problem("AR", "201", "unsupported event code", field=9)
    return None


def _err_segment(envelope: Envelope, problem: Problem, version: str) -> str:
    fs = envelope.field_separator
    cs = envelope.component_separator
    ss = envelope.encoding_characters[3] if len(envelope.encoding_characters) > 3 else "&"
    position = str(problem.field) if problem.field else ""
    sequence = str(problem.sequence)
    if version[:3] in {"2.1", "2.2", "2.3", "2.4"}:
        # ERR-1 (ELD): segment^sequence^field^code&text&HL70357
        code = ss.join((problem.error_code, problem.text, "HL70357"))
        return fs.join(("ERR", cs.join((problem.segment, sequence, position, code))))
    # 2.5 and later: ERR-2 location (segment^sequence^field), ERR-3 HL7 error code,
    # ERR-4 severity. A problem with the message as a whole has no location.
    located = problem.segment and (problem.field or problem.segment != "MSH")
    location = cs.join(p for p in (problem.segment, sequence, position) if p) if located else ""
    code = cs.join((problem.error_code, problem.text, "HL70357"))
    return fs.join(("ERR", "", location, code, "E"))


def build_ack(
    envelope: Envelope, problem: Problem | None, *, control_id: str, now: datetime
) -> bytes:
    """The ACK for ``envelope``: AA when ``problem`` is None, else its code with an ERR.
    Never raises; bytes in latin-1 so that echoed header fields are byte-identical
    (less any control character: an ACK holds none but its segment terminators)."""
    echo = without_control_characters
    fs = envelope.field_separator
    cs = envelope.component_separator
    version = envelope.version if VERSION_PATTERN.match(envelope.version) else FALLBACK_VERSION
    trigger = envelope.trigger if envelope.trigger.isalnum() else ""
    msh = [
        "MSH",
        envelope.encoding_characters,
        echo(envelope.receiving_application),
        echo(envelope.receiving_facility),
        echo(envelope.sending_application),
        echo(envelope.sending_facility),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        cs.join(("ACK", trigger, "ACK")) if trigger else "ACK",
        control_id,
        echo(envelope.processing_id) or "P",
        version,
    ]
    if envelope.charset:
        msh += ["", "", "", "", "", echo(envelope.charset)]
    code = "AA" if problem is None else problem.ack_code
    segments = [fs.join(msh), fs.join(("MSA", code, echo(envelope.control_id)))]
    if problem is not None:
        segments.append(_err_segment(envelope, problem, version))
    return ("\r".join(segments) + "\r").encode("latin-1")
