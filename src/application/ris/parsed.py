"""What the HL7 adapter reads out of one inbound message for the inbound effects.

Plain values, in the application's terms: the adapter translates the RIS's codes
(message types and triggers, order controls, result statuses, resource actions) into
what they mean, so no HL7 vocabulary decides anything in the application.
"""

from dataclasses import dataclass
from datetime import date, datetime

from domain.errors import DomainError
from domain.ris.order import OrderIntent


class MalformedMessageError(DomainError):
    code = "malformed_message"


@dataclass(frozen=True)
class Identifier:
    """One PID-3 (or MRG-1) repetition: an id and its assigning authority (CX-4)."""

    value: str
    authority: str
    type_code: str = ""


@dataclass(frozen=True)
class PatientData:
    identifiers: tuple[Identifier, ...]
    given_name: str = ""
    family_name: str = ""
    birth_date: date | None = None
    phone: str | None = None
    email: str | None = None  # PID-13's e-mail address: where notices may go, not a sign-in
    administrative_sex: str = ""  # HL7 table 0001 (F, M, O, U, A, N); empty when not sent


@dataclass(frozen=True)
class OrderData:
    """One ORC/OBR group. Numbers are ``id`` or ``namespace:id`` (EI-1, EI-2).
    ``intent`` is what the RIS asks of the order (None when it asks nothing we act on);
    ``control`` is the RIS's own code for it, kept only to name it in a reason."""

    intent: OrderIntent | None
    control: str
    placer: str
    filler: str
    accession_number: str
    procedure_code: str
    procedure_text: str


@dataclass(frozen=True)
class ResultData:
    """One OBR of an ORU and the references it carries (never the report text).
    ``result_status`` is the domain's status for the RIS's ``status_code`` (None when
    the code means none of them)."""

    placer: str
    filler: str
    accession_number: str
    procedure_code: str
    procedure_text: str
    status_code: str
    result_status: str | None
    observed_at: datetime | None
    viewer_link: str = ""


@dataclass(frozen=True)
class BookedResource:
    """One AIS/AIG/AIL/AIP resource line of an SIU: its code and action (AIx-2);
    ``removed`` when the action takes the resource off the booking."""

    code: str
    action: str
    removed: bool
    start: datetime | None
    duration_minutes: int | None


@dataclass(frozen=True)
class ScheduleData:
    filler_id: str
    placer_id: str
    start: datetime | None
    end: datetime | None
    resources: tuple[BookedResource, ...]


@dataclass(frozen=True)
class ParsedMessage:
    """Times without a UTC offset in the message are naive here; the handler places
    them in the resource's (or the configured) time zone."""

    patient: PatientData | None = None
    merged: tuple[Identifier, ...] = ()
    orders: tuple[OrderData, ...] = ()
    results: tuple[ResultData, ...] = ()
    schedule: ScheduleData | None = None
