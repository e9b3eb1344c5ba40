"""What each kind of notice carries: the data a template is rendered from.

Each kind is a frozen dataclass of plain values, so a delivery can store it
(``notice_data``) and the same text can be rendered again later from the template
version and this data (``notice_from_data``). Only the fields a kind needs exist: a
result notice carries nothing about the exam at all, so no template can leak it.

Clinical words (the exam's name, its preparation) are in ``Visit.exam_name`` and
``Visit.preparation``; only e-mail templates use them, never SMS or push.
"""

from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, get_type_hints

from domain.errors import DomainError

BOOKING_CONFIRMATION = "booking_confirmation"
REMINDER = "reminder"
ORDER_INVITATION = "order_invitation"
RESULT_AVAILABLE = "result_available"
BOOKING_MOVED = "booking_moved"
BOOKING_CANCELLED = "booking_cancelled"
NEEDS_NEW_TIME = "needs_new_time"
NEW_SECURE_MESSAGE = "new_secure_message"
PASSWORD_RESET = "password_reset"  # noqa: S105 (a notice kind, not a secret)


class NoticeError(DomainError):
    """A notice that cannot be rendered: an unknown kind, channel, language or version, or
    data that does not fit its kind. A bug in the caller, not in the data of a patient."""

    code = "invalid_notice"


@dataclass(frozen=True)
class Visit:
    """What a notice says about one appointment. ``start`` is an aware instant, ``zone``
    the location's IANA zone; ``exam_name`` and ``preparation`` are for e-mail only."""

    appointment_id: str
    start: datetime
    zone: str
    location_name: str
    location_address: str = ""
    exam_name: str = ""
    preparation: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise NoticeError("a visit's start carries its offset")


@dataclass(frozen=True)
class BookingConfirmation:
    kind: ClassVar[str] = BOOKING_CONFIRMATION
    visit: Visit


@dataclass(frozen=True)
class Reminder:
    kind: ClassVar[str] = REMINDER
    visit: Visit


@dataclass(frozen=True)
class OrderInvitation:
    """The RIS sent an order: the patient is asked to book. Without an account, the link
    carries ``activation_token``, a new activation code the policy issued for this
    invitation (with it and their birth date they create their account on the centre's
    record); with one, it leads to booking. ``needs_account`` without a token (an
    invitation queued before codes went out in them) leads to the activation page, where
    a code staff gave goes in."""

    kind: ClassVar[str] = ORDER_INVITATION
    order_id: str
    exam_name: str = ""
    activation_token: str | None = None
    needs_account: bool = False


@dataclass(frozen=True)
class ResultAvailable:
    """ "A result is available, sign in to view": nothing else, by design."""

    kind: ClassVar[str] = RESULT_AVAILABLE


@dataclass(frozen=True)
class BookingMoved:
    """The centre (or the RIS) moved the booking from ``previous_start`` to the visit's."""

    kind: ClassVar[str] = BOOKING_MOVED
    visit: Visit
    previous_start: datetime
    outside_quiet_hours: bool = False


@dataclass(frozen=True)
class BookingCancelled:
    """The centre cancelled the booking. ``outside_quiet_hours``: sent during the
    patient's quiet hours because the exam was soon, and the message says so."""

    kind: ClassVar[str] = BOOKING_CANCELLED
    visit: Visit
    outside_quiet_hours: bool = False


@dataclass(frozen=True)
class NeedsNewTime:
    """The booked time can no longer take place (closure, block, the RIS took it): the
    patient is asked to choose another."""

    kind: ClassVar[str] = NEEDS_NEW_TIME
    visit: Visit
    outside_quiet_hours: bool = False


@dataclass(frozen=True)
class NewSecureMessage:
    """Staff wrote in a thread: the notice says so and links to it, nothing more."""

    kind: ClassVar[str] = NEW_SECURE_MESSAGE
    thread_id: str


@dataclass(frozen=True)
class PasswordReset:
    kind: ClassVar[str] = PASSWORD_RESET
    token: str
    valid_minutes: int


Notice = (
    BookingConfirmation
    | Reminder
    | OrderInvitation
    | ResultAvailable
    | BookingMoved
    | BookingCancelled
    | NeedsNewTime
    | NewSecureMessage
    | PasswordReset
)
WITHHELD = "WITHHELD"


def without_secrets(notice: Notice) -> Notice:
    """The notice with its one-time secrets (a reset token, an activation code) replaced:
    what is shown when a sent message is rendered again for someone else to read."""
    match notice:
        case PasswordReset():
            return replace(notice, token=WITHHELD)
        case OrderInvitation(activation_token=str()):
            return replace(notice, activation_token=WITHHELD)
    return notice


NOTICE_TYPES: dict[str, type[Notice]] = {
    cls.kind: cls
    for cls in (
        BookingConfirmation,
        Reminder,
        OrderInvitation,
        ResultAvailable,
        BookingMoved,
        BookingCancelled,
        NeedsNewTime,
        NewSecureMessage,
        PasswordReset,
    )
}
KINDS = tuple(NOTICE_TYPES)


def notice_data(notice: Notice) -> dict[str, Any]:
    """The notice as JSON-ready values (instants as ISO 8601), for storing with a delivery."""
    return _to_data(notice)


def notice_from_data(kind: str, data: dict[str, Any]) -> Notice:
    """The notice ``notice_data`` gave ``data`` for; a ``NoticeError`` when it does not fit."""
    if kind not in NOTICE_TYPES:
        raise NoticeError(f"unknown notice kind {kind!r}")
    try:
        notice = _from_data(NOTICE_TYPES[kind], data)
    except (TypeError, ValueError, KeyError) as error:
        raise NoticeError(f"data does not fit a {kind} notice: {error}") from error
    if not isinstance(notice, NOTICE_TYPES[kind]):
        raise NoticeError(f"data does not fit a {kind} notice")
    return notice


def _to_data(value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in fields(value):
        item = getattr(value, field.name)
        if isinstance(item, datetime):
            data[field.name] = item.isoformat()
        elif is_dataclass(item):
            data[field.name] = _to_data(item)
        else:
            data[field.name] = item
    return data


def _from_data(cls: type[Any], data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise TypeError("expected an object")
    hints = get_type_hints(cls)
    known = {field.name for field in fields(cls)}
    if unknown := set(data) - known:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, item in data.items():
        hint = hints[name]
        if hint is datetime:
            values[name] = datetime.fromisoformat(item)
        elif is_dataclass(hint) and isinstance(hint, type):
            values[name] = _from_data(hint, item)
        else:
            values[name] = item
    return cls(**values)
