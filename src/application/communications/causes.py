"""What the communication policy's deliveries are called: their causes and identities,
derived from the upstream event, so a later change finds the reminders an earlier one
scheduled without a read model."""

from datetime import timedelta
from uuid import UUID

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
