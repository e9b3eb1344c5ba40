"""The sender behind the actor that sends one outbound delivery over MLLP.

At least once, idempotent where it counts: the actor loads the delivery, checks the
version it was handed is still current, renders it (MSH-10 = the delivery's control
id, the same for every resend), sends it and records the attempt; a second sender of
the same attempt loses on the version. The attempts are saved together with those of
the process's other sending threads (``AttemptWriter``).
"""

import random
from uuid import UUID

import structlog

from adapters.hl7.attempt_writer import AttemptWriter
from adapters.hl7.destinations import Destination
from adapters.hl7.mllp_client import MllpClient, SendResult, tls_context
from adapters.hl7.render import RenderError, render_fast
from application.errors import NotFoundError
from application.ports import Clock
from application.ris.deliveries import Deliveries
from domain.context import Actor, system_actor
from domain.ris.message_delivery import REJECTED_PERMANENT, MessageDelivery, RetryPolicy

log = structlog.get_logger(__name__)


class Sender:
    """Sends one delivery and records the attempt (the body of the actor)."""

    def __init__(
        self,
        deliveries: Deliveries,
        destinations: list[Destination],
        clock: Clock,
        policy: RetryPolicy,
        *,
        actor: Actor | None = None,
        writer: AttemptWriter | None = None,
        tls_cafile: str | None = None,
    ) -> None:
        self.deliveries = deliveries
        self.destinations = {d.name: d for d in destinations}
        self.clock = clock
        self.policy = policy
        self.actor = actor or system_actor(source="delivery-worker")
        self.writer = writer or AttemptWriter(deliveries)
        # One TLS context per destination, made once (it loads the CA bundle).
        self.clients = {
            d.name: MllpClient(
                d.host, d.port, timeout=d.timeout, tls=tls_context(tls_cafile) if d.tls else None
            )
            for d in destinations
        }

    def send(self, delivery_id: UUID, version: int) -> str:
        """Send the delivery if ``version`` is still its current one; what happened."""
        try:
            delivery = self.deliveries.delivery(delivery_id)
        except NotFoundError:
            return "missing"
        now = self.clock.now()
        if delivery.version != version or not delivery.is_due(now):
            return "stale"
        result = self._attempt(delivery)
        delivery.record_attempt(
            outcome=result.outcome,
            code=result.code,
            detail=result.detail,
            at=self.clock.now(),
            policy=self.policy,
            jitter=random.uniform(0.5, 1.0),  # noqa: S311 - jitter, not security
            meta=self.actor.meta(),
        )
        if not self.writer.save(delivery):
            return "lost"
        log.info(
            "delivery_attempted",
            delivery_id=str(delivery_id),
            outcome=result.outcome,
            code=result.code,
            status=delivery.status,
        )
        return result.outcome

    def _attempt(self, delivery: MessageDelivery) -> SendResult:
        """Render and send; a delivery that cannot be (its recipient is no longer
        configured, its payload does not render) is refused for good, so it becomes a
        dead letter an operator sees instead of holding its patient's queue for ever."""
        destination = self.destinations.get(delivery.recipient)
        if destination is None:
            detail = f"no destination {delivery.recipient!r} is configured"
            return SendResult(REJECTED_PERMANENT, "RECIPIENT", detail)
        try:
            message = render_fast(
                delivery.message_type,
                delivery.payload,
                delivery.control_id,
                recipient=destination.name,
                version=destination.version,
            )
        except (RenderError, KeyError) as error:
            return SendResult(REJECTED_PERMANENT, "RENDER", f"cannot render: {error!r}")
        return self.clients[destination.name].send(message, delivery.control_id)
