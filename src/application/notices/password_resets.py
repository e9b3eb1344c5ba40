"""Password-reset links go out on the e-mail channel: each request is one
``MessageDelivery`` (channel ``email``, message type ``password_reset``) whose envelope
names the account's address, so an account without a patient record gets its link too.
The channel worker renders and sends it at once (a reset is what the person just asked
for: no consent check, no quiet hours), with retries and an audit trail like any notice.

The delivery's recipient is the account's patient record when it has one (so it is among
that patient's communications), else the account. The token travels in the delivery's
payload, encrypted with every stored event, and dies after ``valid_minutes`` anyway.
"""

from contextlib import suppress

from eventsourcing.persistence import IntegrityError

from application.notices.envelope import NoticeEnvelope
from application.notices.kinds import PASSWORD_RESET, PasswordReset
from application.notices.renderer import EMAIL, NoticeTemplates
from application.ports import PasswordResetSender, ResetRequest
from application.ris.deliveries import Deliveries
from domain.context import Actor
from domain.ris.message_delivery import MessageDelivery


def reset_cause(reference: str) -> str:
    return f"password-reset:{reference}"


class QueuedPasswordResets(PasswordResetSender):
    """Queues each reset link as an e-mail delivery in ``deliveries``."""

    def __init__(
        self, deliveries: Deliveries, templates: NoticeTemplates | None = None, language: str = "en"
    ) -> None:
        self.deliveries = deliveries
        self.language = language
        self.version = (templates or NoticeTemplates()).versions(PASSWORD_RESET, EMAIL, language)[
            -1
        ]

    def send_reset(self, request: ResetRequest, actor: Actor) -> None:
        envelope = NoticeEnvelope(
            patient_id=request.patient_id,
            notice=PasswordReset(token=request.token, valid_minutes=request.valid_minutes),
            language=self.language,
            version=self.version,
            address=request.address,
        )
        cause = reset_cause(request.reference)
        delivery = MessageDelivery.queue(
            channel=EMAIL,
            recipient=str(request.patient_id or request.account_id),
            message_type=PASSWORD_RESET,
            cause=cause,
            cause_at=request.at,
            ordering_key=cause,
            payload=envelope.to_payload(),
            meta=actor.meta(cause=cause),
        )
        with suppress(IntegrityError):  # queued already for this request: once is enough
            self.deliveries.save(delivery)
