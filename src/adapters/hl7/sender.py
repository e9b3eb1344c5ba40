"""The sender behind the actor that sends one outbound delivery over MLLP.

At least once, idempotent where it counts: the actor loads the delivery, checks the
version it was handed is still current, renders it (MSH-10 = the delivery's control
id, the same for every resend), sends it and records the attempt; a second sender of
the same attempt loses on the version. A sending thread of a process that pumps takes
several hand-outs at once (``send_many``): one query loads them, one write saves their
attempts, together with those of the process's other sending threads
(``AttemptWriter``).
"""

import random
import time
from collections.abc import Sequence
from uuid import UUID

import structlog

from adapters.hl7.attempt_writer import AttemptWriter
from adapters.hl7.destinations import Destination
from adapters.hl7.mllp_client import MllpClient, SendResult, tls_context
from adapters.hl7.render import RenderError, render_fast
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
        return self.send_many([(delivery_id, version)])[0]

    def send_many(
        self, handed: Sequence[tuple[UUID, int]], *, until: float | None = None
    ) -> list[str]:
        """Send each delivery whose version is still the one it was handed out at, with
        the deliveries read in one query and their attempts saved in one write; what
        happened to each, in order. None is sent once ``time.monotonic()`` has passed
        ``until`` ("expired": its lease is running out, and the pump that leases it next
        sends it)."""
        found = self.deliveries.deliveries([delivery_id for delivery_id, _ in handed])
        now = self.clock.now()
        outcomes = ["stale"] * len(handed)
        attempted: list[tuple[int, MessageDelivery, SendResult]] = []
        for index, (delivery_id, version) in enumerate(handed):
            delivery = found.get(delivery_id)
            if delivery is None:
                outcomes[index] = "missing"
            elif until is not None and time.monotonic() >= until:
                outcomes[index] = "expired"
            elif delivery.version == version and delivery.is_due(now):
                attempted.append((index, delivery, self._record(delivery)))
        saved = self.writer.save_many([delivery for _, delivery, _ in attempted])
        for (index, delivery, result), ok in zip(attempted, saved, strict=True):
            outcomes[index] = result.outcome if ok else "lost"
            if ok:
                log.info(
                    "delivery_attempted",
                    delivery_id=str(delivery.id),
                    outcome=result.outcome,
                    code=result.code,
                    status=delivery.status,
                )
        return outcomes

    def _record(self, delivery: MessageDelivery) -> SendResult:
        """Send and record the attempt on the delivery (saved by the caller)."""
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
        return result

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
