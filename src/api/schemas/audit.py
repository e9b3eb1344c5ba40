from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class AccessEntryOut(BaseModel):
    """One read (or refused read) of patient data, as the PHI access log holds it."""

    id: int
    at: datetime
    actor_id: str
    role: str
    patient_id: UUID | None
    resource: str
    resource_id: str
    action: str
    outcome: str
    request_id: str
    client_address: str
    reason: str


class AccessPage(BaseModel):
    """Newest first. ``next_before_id``: pass it as ``before_id`` for the next (older)
    page; null on the last page."""

    items: list[AccessEntryOut]
    next_before_id: int | None = Field(default=None)


class AlertOut(BaseModel):
    """Something compliance must look at: ``kind`` (``break_glass``: an emergency access
    grant, ``subject_id`` its id), when it was raised, and when acknowledged (if so)."""

    id: int
    at: datetime
    kind: str
    subject_id: str
    detail: str
    acknowledged_at: datetime | None


class AlertPage(BaseModel):
    """Newest first. ``next_before_id``: pass it as ``before_id`` for the next (older)
    page; null on the last page."""

    items: list[AlertOut]
    next_before_id: int | None = Field(default=None)
