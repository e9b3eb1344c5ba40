"""Reading the fields the inbound effects need out of an ER7 message.

A careful manual reader rather than hl7apy: it honours the message's own separators,
CR / LF / CRLF segment breaks, escapes, and the many ways real feeds fill (or leave
empty) the fields we use, and it is a hundred times cheaper. Only the values listed in
``application.ris.parsed`` are read; report text (OBX TX/FT/ST values) never is. The
RIS's codes are translated here into what they mean (message kinds, order intents,
result statuses), so the application never decides on HL7 vocabulary.
"""

import re
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta, timezone

from application.ris.inbound_ports import InboundMessage, MessageKind, MessageReader
from application.ris.parsed import (
    BookedResource,
    Identifier,
    MalformedMessageError,
    OrderData,
    ParsedMessage,
    PatientData,
    ResultData,
    ScheduleData,
)
from domain.account import normalise_email
from domain.errors import InvalidValueError
from domain.patient import ADMINISTRATIVE_SEXES
from domain.ris.order import CORRECTED, FINAL, PRELIMINARY, OrderIntent

_BREAK = re.compile(r"\r\n|\r|\n")
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")
# MSH-9 (type, trigger) -> what the message asks of us. ORU feeds of v2.3 may omit the
# trigger.
PATIENT_UPDATES = frozenset({"A01", "A04", "A05", "A08", "A28", "A31"})
MESSAGE_KINDS = {
    **{("ADT", trigger): MessageKind.PATIENT for trigger in PATIENT_UPDATES},
    ("ADT", "A40"): MessageKind.MERGE,
    ("ORM", "O01"): MessageKind.ORDERS,
    ("OMI", "O23"): MessageKind.ORDERS,
    ("ORU", "R01"): MessageKind.RESULTS,
    ("ORU", ""): MessageKind.RESULTS,
    **{("SIU", trigger): MessageKind.BOOKING_MADE for trigger in ("S12", "S13", "S14")},
    **{("SIU", trigger): MessageKind.BOOKING_FREED for trigger in ("S15", "S26")},
}
# ORC-1 order control -> what it asks of the order (others ask nothing we act on).
ORDER_INTENTS = {
    "NW": OrderIntent.NEW,
    "XO": OrderIntent.CHANGE,
    "XX": OrderIntent.CHANGE,
    "CA": OrderIntent.CANCEL,
    "DC": OrderIntent.CANCEL,
    "OC": OrderIntent.CANCEL,
    "CR": OrderIntent.CANCEL,
}
# OBR-25 result status -> the domain's result status.
RESULT_STATUSES = {"P": PRELIMINARY, "F": FINAL, "C": CORRECTED}
# AIx-2 segment actions that take a resource off a booking (cancel, delete).
REMOVED_RESOURCE = frozenset({"C", "D"})
_UNITS_TO_MINUTES = {"s": 1 / 60, "sec": 1 / 60, "m": 1, "min": 1, "h": 60, "hr": 60, "d": 1440}


def administrative_sex(code: str) -> str:
    """PID-8 as HL7 table 0001 has it; a code outside the table is not kept."""
    code = code.strip().upper()
    return code if code in ADMINISTRATIVE_SEXES else ""


class _Message:
    """Segments split into fields with the message's own separators."""

    def __init__(self, text: str) -> None:
        start = text.find("MSH")
        if start < 0 or len(text) < start + 8:
            raise MalformedMessageError("no MSH segment")
        text = text[start:]
        self.field_sep = text[3]
        encoding = text[4:8]
        self.component_sep = encoding[0]
        self.repetition_sep = encoding[1] if len(encoding) > 1 else "~"
        self.escape = encoding[2] if len(encoding) > 2 else "\\"
        self.subcomponent_sep = encoding[3] if len(encoding) > 3 else "&"
        self._delimiters = {
            "F": self.field_sep,
            "S": self.component_sep,
            "T": self.subcomponent_sep,
            "R": self.repetition_sep,
            "E": self.escape,
        }
        e = re.escape(self.escape)
        self._escapes = re.compile(f"{e}([FSTRE]){e}")
        self.segments: list[list[str]] = []
        for line in _BREAK.split(text):
            line = line.strip("\x0b\x1c")
            if len(line) < 3:
                continue
            fields = line.split(self.field_sep)
            if fields[0] == "MSH":
                # MSH-1 is the separator itself: keep numbering as the standard does.
                fields = ["MSH", self.field_sep, *fields[1:]]
            self.segments.append(fields)

    def all(self, name: str) -> list[list[str]]:
        return [s for s in self.segments if s[0] == name]

    def first(self, name: str) -> list[str] | None:
        found = self.all(name)
        return found[0] if found else None

    @staticmethod
    def field(segment: list[str] | None, number: int) -> str:
        if segment is None or number >= len(segment):
            return ""
        return segment[number]

    def repetitions(self, value: str) -> list[str]:
        return [r for r in value.split(self.repetition_sep) if r]

    def component(self, value: str, number: int) -> str:
        """Component ``number`` (1-based) of the first repetition, unescaped."""
        first = value.split(self.repetition_sep)[0]
        parts = first.split(self.component_sep)
        if number > len(parts):
            return ""
        return self.unescape(parts[number - 1].split(self.subcomponent_sep)[0]).strip()

    def unescape(self, value: str) -> str:
        """Delimiter escapes (``\\F\\``, ``\\S\\``, ``\\T\\``, ``\\R\\``, ``\\E\\``) read in
        one pass, left to right, so an escaped escape character is never read again as
        the start of another escape; other escapes are kept as they are."""
        e = self.escape
        if e not in value:
            return value
        return self._escapes.sub(lambda match: self._delimiters[match.group(1)], value)


def parse_timestamp(value: str) -> datetime | None:
    """An HL7 TS/DTM: aware when it carries an offset, naive otherwise; None if absent
    or unreadable (a date alone is midnight)."""
    match = _TS.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
        )
    except ValueError:
        return None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        try:
            moment = moment.replace(tzinfo=timezone(sign * delta)).astimezone(UTC)
        except (ValueError, OverflowError):
            return None  # an offset of a day or more, or a UTC instant before year 1 or after 9999
    return moment


def parse_date(value: str) -> date | None:
    if len(value.strip()) < 8:
        return None
    moment = parse_timestamp(value.strip()[:8])
    return moment.date() if moment is not None else None


class Hl7Extractor(MessageReader):
    """The ``MessageReader`` for ER7 text (HL7 v2.3 to v2.8)."""

    def kind(self, message: InboundMessage) -> MessageKind | None:
        return MESSAGE_KINDS.get((message.message_type.upper(), message.trigger.upper()))

    def read(self, message: InboundMessage) -> ParsedMessage:
        m = _Message(message.text)
        return ParsedMessage(
            patient=self._patient(m),
            merged=self._merged(m),
            orders=self._orders(m),
            results=self._results(m),
            schedule=self._schedule(m),
        )

    @staticmethod
    def _identifiers(m: _Message, value: str) -> tuple[Identifier, ...]:
        found = []
        for repetition in m.repetitions(value):
            identifier = m.component(repetition, 1)
            if identifier:
                found.append(
                    Identifier(
                        value=identifier,
                        authority=m.component(repetition, 4),
                        type_code=m.component(repetition, 5),
                    )
                )
        # An MR (medical record number) first: the patient is created under it.
        return tuple(sorted(found, key=lambda i: i.type_code.upper() != "MR"))

    def _patient(self, m: _Message) -> PatientData | None:
        pid = m.first("PID")
        if pid is None:
            return None
        identifiers = self._identifiers(m, m.field(pid, 3))
        if not identifiers:
            # Older feeds put the MRN in PID-2 (external id) only.
            identifiers = self._identifiers(m, m.field(pid, 2))
        name = m.field(pid, 5)
        phone = m.component(m.field(pid, 13), 1)
        return PatientData(
            email=self._email(m, m.field(pid, 13)),
            identifiers=identifiers,
            family_name=m.component(name, 1),
            given_name=m.component(name, 2),
            birth_date=parse_date(m.field(pid, 7)),
            phone=phone or None,
            administrative_sex=administrative_sex(m.component(m.field(pid, 8), 1)),
        )

    @staticmethod
    def _email(m: _Message, value: str) -> str | None:
        """The first e-mail address among the home contacts (PID-13): XTN-4, where
        feeds put it whatever the use code says (``^NET^Internet^a@b.org``, or after a
        phone number), or XTN-1 in feeds that write it there; None when none reads as one."""
        for repetition in m.repetitions(value):
            for number in (4, 1):
                candidate = m.component(repetition, number)
                if "@" in candidate:
                    with suppress(InvalidValueError):
                        return normalise_email(candidate)
        return None

    def _merged(self, m: _Message) -> tuple[Identifier, ...]:
        mrg = m.first("MRG")
        return self._identifiers(m, m.field(mrg, 1)) if mrg is not None else ()

    @staticmethod
    def _number(m: _Message, value: str) -> str:
        """An EI (entity identifier) as ``id`` or ``namespace:id``."""
        identifier = m.component(value, 1)
        namespace = m.component(value, 2)
        if not identifier:
            return ""
        return f"{namespace}:{identifier}" if namespace else identifier

    def _orders(self, m: _Message) -> tuple[OrderData, ...]:
        if m.first("ORC") is None:
            return ()
        ipc = m.first("IPC")
        orders = []
        current_orc: list[str] | None = None
        groups: list[tuple[list[str] | None, list[str] | None]] = []
        for segment in m.segments:
            if segment[0] == "ORC":
                current_orc = segment
                groups.append((segment, None))
            elif segment[0] == "OBR":
                if groups and groups[-1][0] is current_orc and groups[-1][1] is None:
                    groups[-1] = (current_orc, segment)
                else:
                    groups.append((current_orc, segment))
        for orc, obr in groups:
            procedure = m.field(obr, 4)
            accession = (
                m.component(m.field(obr, 18), 1)
                or m.component(m.field(ipc, 1), 1)
                or m.component(m.field(obr, 3), 1)
                or m.component(m.field(orc, 3), 1)
            )
            control = m.component(m.field(orc, 1), 1).upper()
            orders.append(
                OrderData(
                    intent=ORDER_INTENTS.get(control),
                    control=control,
                    placer=self._number(m, m.field(orc, 2)) or self._number(m, m.field(obr, 2)),
                    filler=self._number(m, m.field(orc, 3)) or self._number(m, m.field(obr, 3)),
                    accession_number=accession,
                    procedure_code=m.component(procedure, 1),
                    procedure_text=m.component(procedure, 2),
                )
            )
        return tuple(orders)

    def _results(self, m: _Message) -> tuple[ResultData, ...]:
        msh = m.first("MSH")
        if m.component(m.field(msh, 9), 1).upper() != "ORU":
            return ()
        results: list[ResultData] = []
        orc: list[str] | None = None
        obr: list[str] | None = None
        link = ""

        def close() -> None:
            if obr is None:
                return
            procedure = m.field(obr, 4)
            status_code = m.component(m.field(obr, 25), 1)
            results.append(
                ResultData(
                    placer=self._number(m, m.field(obr, 2)) or self._number(m, m.field(orc, 2)),
                    filler=self._number(m, m.field(obr, 3)) or self._number(m, m.field(orc, 3)),
                    accession_number=m.component(m.field(obr, 18), 1)
                    or m.component(m.field(obr, 3), 1)
                    or m.component(m.field(orc, 3), 1),
                    procedure_code=m.component(procedure, 1),
                    procedure_text=m.component(procedure, 2),
                    status_code=status_code,
                    result_status=RESULT_STATUSES.get(status_code.upper()),
                    observed_at=parse_timestamp(m.component(m.field(obr, 7), 1)),
                    viewer_link=link,
                )
            )

        for segment in m.segments:
            if segment[0] == "ORC":
                orc = segment
            elif segment[0] == "OBR":
                close()
                obr, link = segment, ""
            elif (
                segment[0] == "OBX"
                and obr is not None
                and not link
                and m.component(m.field(segment, 2), 1).upper() == "RP"
            ):
                # Only a reference pointer (RP) is read: never report text.
                link = m.component(m.field(segment, 5), 1)
        close()
        return tuple(results)

    def _schedule(self, m: _Message) -> ScheduleData | None:
        sch = m.first("SCH")
        if sch is None:
            return None
        timing = m.field(sch, 11)
        resources = []
        # AIS-3 is a service, not a resource: our resources are rooms and machines.
        for name, (at, length, units) in RESOURCE_TIMING.items():
            for segment in m.all(name):
                code = m.component(m.field(segment, 3), 1)
                if not code:
                    continue
                action = m.component(m.field(segment, 2), 1).upper()
                resources.append(
                    BookedResource(
                        code=code,
                        action=action,
                        removed=action in REMOVED_RESOURCE,
                        start=parse_timestamp(m.component(m.field(segment, at), 1)),
                        duration_minutes=_minutes(
                            m.component(m.field(segment, length), 1),
                            m.component(m.field(segment, units), 1),
                        ),
                    )
                )
        return ScheduleData(
            filler_id=m.component(m.field(sch, 2), 1),
            placer_id=m.component(m.field(sch, 1), 1),
            start=parse_timestamp(m.component(timing, 4)),
            end=parse_timestamp(m.component(timing, 5)),
            resources=tuple(resources),
        )


# Where each resource segment of an SIU holds its start, duration and duration units.
RESOURCE_TIMING = {"AIG": (8, 11, 12), "AIL": (6, 9, 10), "AIP": (6, 9, 10)}


def _minutes(amount: str, units: str) -> int | None:
    try:
        value = float(amount)
    except ValueError:
        return None
    factor = _UNITS_TO_MINUTES.get(units.strip().lower() or "m", 1)
    minutes = round(value * factor)
    return minutes if minutes > 0 else None
