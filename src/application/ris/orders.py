"""Orders and results from the RIS.

Orders live in the scheduling event store, beside appointments, because an order
becomes an appointment. Each command names the inbound message (``message_id``) that
caused it, and does nothing when that message was already applied.
"""

from uuid import UUID

from application.scheduling import SchedulingLog, retry_writes
from domain.context import Actor
from domain.errors import InvalidValueError
from domain.identifiers import derived_id
from domain.ris.order import ImagingOrder, OrderIntent, ResultReference, UnknownOrderError
from domain.ris.unmatched_result import UnmatchedResult

APPLIED = "applied"
IGNORED = "ignored"
KEPT_FOR_REVIEW = "kept_for_review"


def order_ids(placer: str, filler: str) -> list[UUID]:
    """The identities an order with these numbers may have. The RIS is the filler and
    every result it sends names its filler number, so that comes first."""
    ids = []
    if filler:
        ids.append(derived_id("imaging-order", "filler", filler))
    if placer:
        ids.append(derived_id("imaging-order", "placer", placer))
    return ids


class Orders:
    """The order and result commands, on the scheduling event store."""

    def __init__(self, scheduling: SchedulingLog) -> None:
        self._store = scheduling

    def find_order(self, placer: str, filler: str) -> ImagingOrder | None:
        """The order with these numbers, if we know it."""
        for order_id in order_ids(placer, filler):
            order = self._store.find(order_id, ImagingOrder)
            if order is not None:
                return order
        return None

    def unmatched_result(self, message_id: str) -> UnmatchedResult | None:
        """The result that message carried, if it was kept for review."""
        return self._store.find(UnmatchedResult.create_id(message_id), UnmatchedResult)

    def receive_order(
        self,
        *,
        intent: OrderIntent | None,
        patient_id: UUID,
        placer: str,
        filler: str,
        accession_number: str,
        procedure_code: str,
        procedure_text: str,
        reason: str,
        message_id: str,
        actor: Actor,
    ) -> str:
        """A new order waits to be scheduled, a change is applied, a cancellation (for
        ``reason``) ends it; no intent (an order control we do not act on) changes
        nothing. Returns ``applied`` or ``ignored``."""

        def attempt() -> str:
            order = self.find_order(placer, filler)
            if intent is OrderIntent.NEW and order is None:
                ids = order_ids(placer, filler)
                if not ids:
                    raise InvalidValueError("an order needs a placer or a filler order number")
                order = ImagingOrder.place(
                    id=ids[0],
                    patient_id=patient_id,
                    placer_number=placer,
                    filler_number=filler,
                    accession_number=accession_number,
                    procedure_code=procedure_code,
                    procedure_text=procedure_text,
                    message_id=message_id,
                    meta=actor.meta(),
                )
            elif intent in (OrderIntent.NEW, OrderIntent.CHANGE) and order is not None:
                order.change(
                    accession_number=accession_number,
                    procedure_code=procedure_code,
                    procedure_text=procedure_text,
                    message_id=message_id,
                    meta=actor.meta(),
                )
            elif intent is OrderIntent.CANCEL and order is not None:
                order.cancel(reason=reason, message_id=message_id, meta=actor.meta())
            elif intent is OrderIntent.CHANGE:
                raise UnknownOrderError("the RIS changed an order we do not know")
            else:
                return IGNORED
            self._store.save(order)
            return APPLIED

        return retry_writes(attempt)

    def reference_result(
        self,
        result: ResultReference,
        *,
        placer: str,
        filler: str,
        patient_identifier: str,
        message_id: str,
        actor: Actor,
    ) -> str:
        """Attach a result reference to its order (``applied``), or keep it for review
        when no order matches (``kept_for_review``). Never the report text."""

        def attempt() -> str:
            order = self.find_order(placer, filler)
            if order is not None:
                order.reference_result(result, message_id=message_id, meta=actor.meta())
                self._store.save(order)
                return APPLIED
            if self.unmatched_result(message_id) is None:
                self._store.save(
                    UnmatchedResult.keep(
                        result,
                        message_id=message_id,
                        placer_number=placer,
                        filler_number=filler,
                        patient_identifier=patient_identifier,
                        meta=actor.meta(),
                    )
                )
            return KEPT_FOR_REVIEW

        return retry_writes(attempt)
