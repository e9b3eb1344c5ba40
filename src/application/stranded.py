"""Appointments a forced catalog change stranded: they need a new time.

When staff force a closure, a block or new opening hours over booked appointments, the
change and a ``Stranding`` listing those appointments are saved together in the
catalog's log (``CatalogAdmin``). Settling the stranding then moves each listed
appointment to ``needs_new_time`` and frees its calendar time, in one atomic save of the
scheduling log, exactly as when the RIS takes a patient's time
(``application.ris.ris_bookings``).

The catalog and the scheduling log are two event stores, so the two saves cannot share a
transaction. The staff request settles its stranding at once; ``StrandingFollower``
follows the catalog's log and settles every stranding again, so one left unsettled by a
crash between the two saves is settled when the follower reaches it. Settling twice is
harmless: an appointment that needs a new time already, or that no longer holds the
time it was stranded at (moved, cancelled), is left alone; two settlers racing meet in
the event store's optimistic concurrency and the second finds the work done. So each
appointment gets one ``Appointment.Displaced``.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection

from application.base import Position
from application.scheduling import SchedulingLog, retry_writes
from domain.appointment import BOOKED, Appointment
from domain.context import Actor
from domain.stranding import Stranding


@dataclass(frozen=True)
class Settled:
    """The appointments a settlement moved to ``needs_new_time``, and where it landed."""

    moved: list[UUID]
    position: Position | None


def actor_of(meta: dict[str, str]) -> Actor:
    """The author of a change, from the metadata its events carry."""
    return Actor(
        id=meta.get("actor_id", ""),
        role=meta.get("role", ""),
        request_id=meta.get("request_id", ""),
        source=meta.get("source", ""),
    )


def still_holds(appointment: Appointment, booking: dict[str, str]) -> bool:
    """Whether the appointment is booked still at the time the stranding lists (the same
    instants, whatever their offsets)."""
    return (
        appointment.status == BOOKED
        and str(appointment.resource_id) == booking["resource_id"]
        and appointment.start == datetime.fromisoformat(booking["start"])
        and appointment.end == datetime.fromisoformat(booking["end"])
    )


class StrandedAppointments:
    """Settles strandings in the scheduling log."""

    def __init__(self, scheduling: SchedulingLog) -> None:
        self._store = scheduling

    def settle(self, stranding: Stranding) -> Settled:
        """Move every appointment the stranding lists that still holds its stranded time
        to ``needs_new_time`` and free that time, all in one atomic save; the ids moved
        (none when they were all moved already) and where the save landed. The
        ``Displaced`` events carry the stranding's reason and cause, and the actor of the
        change."""
        actor = actor_of(stranding.meta)
        meta = actor.meta(stranding=str(stranding.id))

        def attempt() -> Settled:
            calendars = self._store.calendars()
            moved: list[Appointment] = []
            for booking in stranding.bookings:
                appointment = self._store.find(UUID(booking["id"]), Appointment)
                if appointment is None or not still_holds(appointment, booking):
                    continue
                appointment.displace(
                    by=f"{actor.role}:{actor.id}",
                    reason=stranding.reason,
                    meta=meta,
                    cause=stranding.cause,
                )
                calendars.free_appointment(appointment, actor)
                moved.append(appointment)
            if not moved:
                return Settled([], None)
            recordings = self._store.save(*moved, *calendars.touched())
            return Settled([a.id for a in moved], self._store.position_of(recordings))

        return retry_writes(attempt)


class StrandingFollower(Projection[PostgresTrackingRecorder]):
    """Follows the catalog's log and settles every stranding recorded there (see the
    module's docstring); its view holds only its tracking. Bind it to the scheduling log
    with ``writing_to`` before a runner constructs it. Every event of the catalog is
    tracked (the log is small), so waiting for the log's head works as for the others."""

    name = "stranded_appointments"
    settler: StrandedAppointments | None = None

    @classmethod
    def writing_to(cls, scheduling: SchedulingLog) -> type["StrandingFollower"]:
        """This follower settling strandings in ``scheduling``."""
        # The name too: a subclass would otherwise be named (and tracked) after itself.
        attributes = {"settler": StrandedAppointments(scheduling), "name": cls.name}
        return type(cls.__name__, (cls,), attributes)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if self.settler is None:
            raise RuntimeError("the stranding follower runs without the scheduling log")
        if isinstance(domain_event, Stranding.Recorded):
            stranding = domain_event.mutate(None)
            if isinstance(stranding, Stranding):
                self.settler.settle(stranding)
        self.view.insert_tracking(tracking)
