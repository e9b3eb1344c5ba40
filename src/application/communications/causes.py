"""What the communication policy's deliveries are called (their causes and identities,
derived from the upstream event, so a later change finds the reminders an earlier one
scheduled without a read model) and when its reminders go (``plan_reminders``)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from domain.reminders import AFTER_QUIET_HOURS, QuietHours, reminder_schedule
from domain.ris.message_delivery import MessageDelivery

MAX_REMINDERS = 10
PATIENT_CHANNELS = ("email", "sms", "push")
# A cancelled or moved exam closer than this is told at once, quiet hours or not.
SOON = timedelta(hours=48)
SOURCE = "communication-policy"
RIS_SOURCE = "hl7-inbound"


def reminder_cause(appointment_id: UUID, version: int, number: int) -> str:
    """The cause of the ``number``-th reminder (1 = nearest the exam) scheduled by the
    appointment's event at ``version``."""
    return f"{appointment_id}:{version}:reminder:{number}"


def reminder_ids(appointment_id: UUID, version: int, patient_id: UUID) -> list[UUID]:
    """Every delivery id the reminders scheduled at ``version`` can have."""
    return [
        MessageDelivery.create_id(reminder_cause(appointment_id, version, n), str(patient_id), c)
        for n in range(1, MAX_REMINDERS + 1)
        for c in PATIENT_CHANNELS
    ]


def offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes}m"
    return f"{minutes // 60}h"


@dataclass(frozen=True)
class PlannedReminder:
    """One reminder as queued: ``number`` (1 = nearest the exam), ``due_at`` its queued
    time, ``held_until`` set when quiet hours moved it later (it is queued at its planned
    time, then held: the record shows why it waited)."""

    number: int
    offset: timedelta
    due_at: datetime
    held_until: datetime | None
    placement: str

    @property
    def goes_at(self) -> datetime:
        return self.held_until or self.due_at


def plan_reminders(
    start: datetime,
    location_zone: str,
    offsets: Iterable[timedelta],
    now: datetime,
    quiet_hours: QuietHours | None,
    patient_zone: str | None,
) -> list[PlannedReminder]:
    """The reminders to queue for an exam at ``start`` (``domain.reminders`` places them),
    the ``MAX_REMINDERS`` nearest the exam at most, numbered from the exam backwards."""
    schedule = reminder_schedule(
        start, location_zone, offsets, now, quiet_hours=quiet_hours, patient_zone=patient_zone
    )[-MAX_REMINDERS:]
    planned = []
    for number, reminder in enumerate(reversed(schedule), start=1):
        held = reminder.placement == AFTER_QUIET_HOURS
        planned.append(
            PlannedReminder(
                number=number,
                offset=reminder.offset,
                due_at=reminder.planned if held else reminder.due,
                held_until=reminder.due if held else None,
                placement=reminder.placement,
            )
        )
    return planned
