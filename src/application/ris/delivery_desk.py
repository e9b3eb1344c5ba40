"""What an operator does with deliveries: list, inspect, redrive (API and CLI)."""

from uuid import UUID

from application.errors import NotFoundError
from application.ports import AccessLog, Clock
from application.ris.deliveries import Deliveries
from application.ris.delivery_views import (
    AttemptView,
    DeliveryReader,
    DeliveryView,
    patient_from,
    patient_of,
)
from domain.context import Actor


class DeliveryDesk:
    """What an operator does with deliveries: list, inspect, redrive."""

    def __init__(
        self, deliveries: Deliveries, reader: DeliveryReader, clock: Clock, audit: AccessLog
    ) -> None:
        self.deliveries = deliveries
        self.reader = reader
        self.clock = clock
        self.audit = audit

    def search(
        self, *, status: str | None = None, channel: str | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        """Deliveries from the read model, newest first, optionally of one status and
        channel."""
        return self.reader.search(status=status, channel=channel, limit=limit)

    def show(self, delivery_id: UUID, actor: Actor) -> tuple[DeliveryView, list[AttemptView]]:
        """The delivery and its history (an audited read); NotFoundError if the read
        model lacks it."""
        view = self.reader.get(delivery_id)
        if view is None:
            raise NotFoundError("no such delivery")
        self.audit.operator_action(
            at=self.clock.now(),
            actor=actor,
            resource="delivery",
            resource_id=str(delivery_id),
            action="read",
            reason="",
            patient_id=patient_from(view.ordering_key),
        )
        return view, self.reader.history(delivery_id)

    def redrive(self, delivery_id: UUID, *, reason: str, actor: Actor) -> int:
        """Send a dead letter again: an event with the operator's meta, and an entry in
        the audit log naming the patient the message is about. Its new version."""
        at = self.clock.now()
        delivery = self.deliveries.redrive(delivery_id, reason=reason, at=at, actor=actor)
        self.audit.operator_action(
            at=at,
            actor=actor,
            resource="delivery",
            resource_id=str(delivery_id),
            action="redrive",
            reason=reason.strip(),
            patient_id=patient_of(delivery.payload),
        )
        return int(delivery.version)
