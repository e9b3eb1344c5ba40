"""What a patient-channel ``MessageDelivery`` stores in its payload: the notice to render
and for whom, never the rendered text (the text is reproducible from the template version
and the data, so a compliance officer can see exactly what was sent).

A delivery of a notice has ``channel`` e-mail, SMS or push, ``recipient`` the patient's
id (the address is looked up when it is sent: a STOP or a changed address takes effect
at once), ``message_type`` the notice's kind and ``ordering_key`` its cause (notices of a
patient do not wait for one another). Password resets name their account's e-mail in
``address`` (an account may have no patient record).
"""

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from application.notices.kinds import Notice, NoticeError, notice_data, notice_from_data


@dataclass(frozen=True)
class NoticeEnvelope:
    """One notice for one patient over one channel, as a delivery keeps it.

    ``version`` is the template version chosen when it was queued (the latest then);
    ``exempt`` marks a safety notice that may go during quiet hours (and says so).
    """

    patient_id: UUID | None
    notice: Notice
    language: str
    version: int
    exempt: bool = False
    address: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_payload(self) -> dict[str, str]:
        return {
            "patient_id": "" if self.patient_id is None else str(self.patient_id),
            "kind": self.notice.kind,
            "language": self.language,
            "template_version": str(self.version),
            "data": json.dumps(notice_data(self.notice), sort_keys=True),
            "exempt": "1" if self.exempt else "",
            "address": self.address,
            **{f"x_{key}": value for key, value in self.extra.items()},
        }

    @classmethod
    def from_payload(cls, payload: dict[str, str]) -> "NoticeEnvelope":
        """The envelope a delivery stored; ``NoticeError`` when the payload is not one."""
        try:
            data: Any = json.loads(payload["data"])
            patient = payload.get("patient_id", "")
            return cls(
                patient_id=UUID(patient) if patient else None,
                notice=notice_from_data(payload["kind"], data),
                language=payload["language"],
                version=int(payload["template_version"]),
                exempt=payload.get("exempt") == "1",
                address=payload.get("address", ""),
                extra={k[2:]: v for k, v in payload.items() if k.startswith("x_")},
            )
        except (KeyError, ValueError) as error:
            raise NoticeError(f"not a notice payload: {error}") from error
