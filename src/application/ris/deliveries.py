"""Deliveries: the outbound side effects of the log (HL7 to the RIS now; e-mail, SMS,
push and ledger calls later) after they are queued.

``DeliveryPolicy`` (``application.ris.delivery_policy``) queues them; ``Deliveries`` is
the only writer of attempts and redrives afterwards. Both share the ``deliveries``
event store.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from application.base import BaseApplication
from application.errors import ConcurrencyError, NotFoundError
from domain.context import Actor
from domain.ris.message_delivery import MessageDelivery

NAME = "deliveries"


class Deliveries(BaseApplication):
    """Outbound deliveries after they are queued: attempts, dead letters, redrives."""

    name = NAME

    def delivery(self, delivery_id: UUID) -> MessageDelivery:
        """One delivery; NotFoundError if there is none with that id."""
        delivery = self.find(delivery_id, MessageDelivery)
        if delivery is None:
            raise NotFoundError("no such delivery")
        return delivery

    def deliveries(self, delivery_ids: Sequence[UUID]) -> dict[UUID, MessageDelivery]:
        """The deliveries with these ids that exist, read in one query."""
        return self.find_many(delivery_ids, MessageDelivery)

    def save_attempts(self, recorded: Sequence[MessageDelivery]) -> list[UUID]:
        """Save the attempts recorded on several deliveries (each as loaded before its
        send) in one write: one table lock and one commit for all of them. Returns the
        ids of those another sender had recorded first; they are not saved."""
        pending = [(delivery.id, delivery.collect_events()) for delivery in recorded]
        try:
            self.save(*(event for _, events in pending for event in events))
            return []
        except IntegrityError:
            pass
        lost = []
        for delivery_id, events in pending:  # find the loser(s); save the rest
            try:
                self.save(*events)
            except IntegrityError:
                lost.append(delivery_id)
        return lost

    def redrive(
        self, delivery_id: UUID, *, reason: str, at: datetime, actor: Actor
    ) -> MessageDelivery:
        """Send a dead letter again; the delivery as redriven."""
        delivery = self.delivery(delivery_id)
        delivery.redrive(reason=reason, at=at, meta=actor.meta())
        try:
            self.save(delivery)
        except IntegrityError:
            raise ConcurrencyError("the delivery is being changed elsewhere; try again") from None
        return delivery
