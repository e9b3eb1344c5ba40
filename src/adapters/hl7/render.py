"""Render an outbound delivery as an HL7 v2 message.

The message is a pure function of the delivery: its type, its payload (a snapshot taken
when the delivery was queued) and its control id (MSH-10), so every resend of one
delivery is the same message, byte for byte.

``segments`` decides every field once. ``render`` builds the message with hl7apy from
them and validates its structure (the reference); ``render_fast`` joins the same fields
as text (hl7apy costs ~10 ms a message, too slow for the send path). A property test
holds the two to the same bytes.
"""

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_field

DEFAULT_VERSION = "2.5.1"
SENDING_APPLICATION = "IMGBRIDGE"
ASSIGNING_AUTHORITY = "IMGBRIDGE"

# SIU trigger -> SCH-25 filler status
SIU_STATUS = {
    "S12": "Booked",
    "S13": "Booked",
    "S14": "Booked",
    "S15": "Cancelled",
    "S26": "Noshow",
}
# Where each SIU segment sits in hl7apy's SIU_S12 structure
SIU_GROUPS = {
    "PID": ("SIU_S12_PATIENT",),
    "RGS": ("SIU_S12_RESOURCES",),
    "AIS": ("SIU_S12_RESOURCES", "SIU_S12_SERVICE"),
    "AIG": ("SIU_S12_RESOURCES", "SIU_S12_GENERAL_RESOURCE"),
    "AIL": ("SIU_S12_RESOURCES", "SIU_S12_LOCATION_RESOURCE"),
}

Segment = tuple[str, dict[int, str]]
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


class RenderError(Exception):
    """The delivery cannot be rendered (unknown type or missing data)."""


def hl7_ts(iso: str) -> str:
    """ISO 8601 text -> HL7 DTM (seconds, with the UTC offset)."""
    return datetime.fromisoformat(iso).strftime("%Y%m%d%H%M%S%z")


def hl7_date(iso: str) -> str:
    return iso.replace("-", "")


def entity_identifier(number: str) -> str:
    """An order number as we keep it (``namespace:id``, or ``id``) as an HL7 EI."""
    namespace, colon, identifier = number.partition(":")
    if not colon or not namespace:
        return esc(number if not colon else identifier)
    return f"{esc(identifier)}^{esc(namespace)}"


def esc(value: str) -> str:
    """Escape HL7 delimiters in free text (default encoding characters); every control
    character (CR and LF, the MLLP frame bytes 0x0B and 0x1C, NUL, DEL, C1) becomes a
    space, so no text can start a segment or end a frame."""
    out = value.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    out = out.replace("&", "\\T\\").replace("~", "\\R\\")
    return _CONTROL.sub(" ", out)


def segments(
    message_type: str,
    payload: Mapping[str, str],
    control_id: str,
    *,
    recipient: str,
    version: str = DEFAULT_VERSION,
) -> list[Segment]:
    """Every segment and its fields (by HL7 position) of one delivery's message."""
    family, _, trigger = message_type.partition("^")
    if family == "SIU" and trigger in SIU_STATUS:
        structure, body = "SIU_S12", _siu(trigger, payload, version)
    elif family == "ADT" and trigger in ("A04", "A08"):
        structure, body = "ADT_A01", _adt(trigger, payload, version)
    else:
        raise RenderError(f"cannot render {message_type!r}")
    msh = {
        3: SENDING_APPLICATION,
        4: SENDING_APPLICATION,
        5: esc(recipient.upper()),
        6: esc(recipient.upper()),
        7: hl7_ts(payload["event_at"]),
        9: f"{family}^{trigger}^{structure}",
        10: control_id,
        11: "P",
        12: version,
        15: "AL",
        16: "NE",
        18: "UNICODE UTF-8",
    }
    return [("MSH", msh), *body]


def _pid(payload: Mapping[str, str], version: str) -> dict[int, str]:
    ids = f"{payload['patient_id']}^^^{ASSIGNING_AUTHORITY}^PI"
    if payload.get("mrn"):
        ids = f"{esc(payload['mrn'])}^^^{esc(payload.get('mrn_authority', ''))}^MR~{ids}"
    pid = {
        1: "1",
        3: ids,
        5: f"{esc(payload['family_name'])}^{esc(payload['given_name'])}",
        7: hl7_date(payload["birth_date"]),
    }
    if payload.get("sex"):  # HL7 table 0001; payloads queued before it was kept have none
        pid[8] = esc(payload["sex"])
    if payload.get("phone") and version < "2.6":  # XTN.1 is gone from 2.6 on
        pid[13] = f"^PRN^PH^^^^^^^^^{esc(payload['phone'])}"
    return pid


def _siu(trigger: str, payload: Mapping[str, str], version: str) -> list[Segment]:
    appointment = f"{payload['appointment_id']}^{SENDING_APPLICATION}"
    minutes = payload["duration_minutes"]
    start, end = hl7_ts(payload["start"]), hl7_ts(payload["end"])
    reason = esc(payload.get("reason") or "Patient self-scheduled")
    sch = {
        1: appointment,
        2: appointment,
        6: f"^{reason}",
        7: f"{esc(payload['type_code'])}^{esc(payload['type_name'])}",
        9: minutes,
        10: "min",
        11: f"^^{minutes}^{start}^{end}",
        16: SENDING_APPLICATION,
        20: SENDING_APPLICATION,
        25: SIU_STATUS[trigger],
    }
    if version >= "2.4":  # SCH-26 and SCH-27 came with v2.4
        # The RIS order the appointment was booked for, as the RIS numbered it.
        if payload.get("placer_number"):
            sch[26] = entity_identifier(payload["placer_number"])
        if payload.get("filler_number"):
            sch[27] = entity_identifier(payload["filler_number"])
    notes: list[Segment] = []
    if payload.get("notes"):  # the patient's or the front desk's notes for the exam
        notes.append(("NTE", {1: "1", 3: esc(payload["notes"])}))
    return [
        ("SCH", sch),
        *notes,
        ("PID", _pid(payload, version)),
        ("RGS", {1: "1", 2: "A" if trigger == "S12" else "U"}),
        (
            "AIS",
            {
                1: "1",
                3: f"{esc(payload['type_cpt'])}^{esc(payload['type_name'])}^C4",
                4: start,
                7: minutes,
                8: "min",
            },
        ),
        (
            "AIG",
            {
                1: "1",
                3: f"{esc(payload['resource_code'])}^{esc(payload['resource_name'])}",
                4: f"{esc(payload['modality'])}^{esc(payload['modality'])}",
            },
        ),
        (
            "AIL",
            {
                1: "1",
                3: f"^^^{esc(payload['location_code'])}^^^^^{esc(payload['location_name'])}",
                6: start,
            },
        ),
    ]


def _adt(trigger: str, payload: Mapping[str, str], version: str) -> list[Segment]:
    return [
        ("EVN", {1: trigger, 2: hl7_ts(payload["event_at"])}),
        ("PID", _pid(payload, version)),
        ("PV1", {2: "N"}),  # patient class "not applicable": no visit yet
    ]


def render(
    message_type: str,
    payload: Mapping[str, str],
    control_id: str,
    *,
    recipient: str,
    version: str = DEFAULT_VERSION,
    validate: bool = True,
) -> str:
    """The ER7 text (segments separated by CR) built with hl7apy, structure validated."""
    parts = segments(message_type, payload, control_id, recipient=recipient, version=version)
    structure = parts[0][1][9].rsplit("^", 1)[1]
    message = Message(structure, version=version, validation_level=VALIDATION_LEVEL.TOLERANT)
    groups: dict[tuple[str, ...], Any] = {(): message}
    for name, fields in parts:
        path = SIU_GROUPS.get(name, ()) if structure == "SIU_S12" else ()
        for depth in range(1, len(path) + 1):
            if path[:depth] not in groups:
                groups[path[:depth]] = groups[path[: depth - 1]].add_group(path[depth - 1])
        segment = getattr(groups[path], name.lower())
        for index, value in sorted(fields.items()):
            if "~" in value:  # repetitions: one field each
                for repetition in value.split("~"):
                    segment.add(parse_field(repetition, name=f"{name}_{index}", version=version))
            else:
                setattr(segment, f"{name.lower()}_{index}", value)
    if validate:
        message.validate()
    er7: str = message.to_er7()
    return er7


def render_fast(
    message_type: str,
    payload: Mapping[str, str],
    control_id: str,
    *,
    recipient: str,
    version: str = DEFAULT_VERSION,
) -> str:
    """The same ER7 as ``render``, joined as text (no hl7apy on the send path)."""
    lines = []
    for name, fields in segments(
        message_type, payload, control_id, recipient=recipient, version=version
    ):
        last = max(fields)
        if name == "MSH":
            values = [fields.get(i, "") for i in range(3, last + 1)]
            lines.append("MSH|^~\\&|" + "|".join(values))
        else:
            values = [fields.get(i, "") for i in range(1, last + 1)]
            lines.append(name + "|" + "|".join(values))
    return "\r".join(lines)
