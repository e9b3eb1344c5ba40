"""Object-level access for staff: a member of staff reaches a patient's records only
through a centre they work at (an appointment there), or through break-glass."""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from application.errors import NotFoundError
from application.ports import AppointmentReader, BreakGlassGrant, BreakGlassStore, Clock, Principal
from domain.errors import InvalidValueError

MAX_BREAK_GLASS = timedelta(hours=4)


@dataclass(frozen=True)
class Reach:
    """How a caller reached a patient's record: ``own``, ``centre`` or ``break_glass``."""

    how: str
    reason: str = ""


class StaffAccess:
    def __init__(self, appointments: AppointmentReader, grants: BreakGlassStore, clock: Clock):
        self._appointments = appointments
        self._grants = grants
        self._clock = clock

    def may_see_location(self, principal: Principal, location_id: UUID) -> bool:
        """Staff limited to centres see only those; staff with no centres listed see all."""
        return not principal.centres or location_id in principal.centres

    def reach_patient(self, principal: Principal, patient_id: UUID) -> Reach:
        """How ``principal`` may reach ``patient_id``; NotFoundError (404) if they may not,
        so that the existence of other centres' patients is not revealed."""
        if principal.patient_id is not None:
            if principal.patient_id == patient_id:
                return Reach("own")
            raise NotFoundError("no such patient")
        if not principal.centres:
            return Reach("centre")
        locations = self._appointments.locations_of_patient(patient_id)
        if locations & set(principal.centres):
            return Reach("centre")
        if not locations:
            # Known to the RIS (or registered) but booked nowhere yet: no centre's patient,
            # so any centre's staff may reach them (to find them, give them an activation
            # code, book them in).
            return Reach("centre", "no appointment at any centre yet")
        grant = self._grants.active(principal.account_id, patient_id, self._clock.now())
        if grant is not None:
            return Reach("break_glass", grant.reason)
        raise NotFoundError("no such patient")

    def reach_appointment(self, principal: Principal, location_id: UUID, patient_id: UUID) -> Reach:
        """How staff reach one appointment: through its centre, or through a break-glass
        grant for its patient; NotFoundError (404) otherwise."""
        if self.may_see_location(principal, location_id):
            return Reach("centre")
        grant = self._grants.active(principal.account_id, patient_id, self._clock.now())
        if grant is not None:
            return Reach("break_glass", grant.reason)
        raise NotFoundError("no such appointment")

    def break_glass(
        self, principal: Principal, patient_id: UUID, reason: str, minutes: int
    ) -> BreakGlassGrant:
        """Emergency access to one patient for a limited time; the reason is required
        and the grant raises an alert."""
        if len(reason.strip()) < 10:
            raise InvalidValueError("break-glass needs a reason of at least 10 characters")
        duration = timedelta(minutes=minutes)
        if not timedelta(minutes=1) <= duration <= MAX_BREAK_GLASS:
            raise InvalidValueError("break-glass lasts between 1 minute and 4 hours")
        now = self._clock.now()
        grant = BreakGlassGrant(
            id=uuid.uuid4(),
            account_id=principal.account_id,
            patient_id=patient_id,
            reason=reason.strip(),
            granted_at=now,
            expires_at=now + duration,
        )
        self._grants.grant(grant)
        return grant
