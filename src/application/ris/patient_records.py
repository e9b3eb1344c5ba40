"""A patient's orders and results from the RIS, and links to the centre's result viewer.

What the portal shows is read from the orders read model; a patient sees the orders and
results of their own record and of every record the RIS merged into it (ADT^A40). A
result is never copied: the patient gets a link to the radiology system's own viewer,
carrying a short-lived signed token bound to them and to the result's accession number.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote
from uuid import UUID

from application.errors import NotFoundError, NoViewerError
from application.ports import Clock

ACCESSION = "{accession}"
TOKEN = "{token}"  # noqa: S105 - a placeholder, not a secret


@dataclass(frozen=True)
class OrderView:
    """One order as the patient sees it; ``appointment_type_ids`` are the exam types
    that perform its procedure (what it can be booked as)."""

    id: UUID
    patient_id: UUID
    status: str
    procedure_code: str
    procedure_text: str
    accession_number: str
    appointment_id: UUID | None
    appointment_type_ids: list[UUID]


@dataclass(frozen=True)
class ResultView:
    """One result reference (never its text): the latest status reported for it."""

    id: UUID
    order_id: UUID
    patient_id: UUID
    accession_number: str
    procedure_text: str
    status: str
    observed_at: datetime | None


class RecordsReader(ABC):
    """The orders read model, as the patient portal reads it. ``patient_id`` stands for
    the patient's whole record: theirs and every record merged into it."""

    @abstractmethod
    def orders_of(self, patient_id: UUID) -> list[OrderView]:
        """The patient's orders, most recently changed first."""

    @abstractmethod
    def results_of(self, patient_id: UUID) -> list[ResultView]:
        """The patient's results, most recently observed first."""

    @abstractmethod
    def result_of(self, patient_id: UUID, result_id: UUID) -> ResultView | None:
        """One of the patient's results; None for an unknown id or another patient's."""


class ViewerTokens(ABC):
    """Signs the tokens the result viewer (or its gateway) checks against our JWKS."""

    @abstractmethod
    def issue(
        self, *, subject: str, accession: str, audience: str, now: datetime, lifetime: timedelta
    ) -> tuple[str, str]:
        """A signed token for ``subject`` and ``accession`` and its unique id (``jti``)."""


@dataclass(frozen=True)
class ViewerSettings:
    """Where the centre's viewer is (``{accession}`` and ``{token}`` in the template;
    empty: none is configured), who the tokens are for and how long they are good."""

    url_template: str = ""
    audience: str = "result-viewer"
    lifetime: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class ResultLink:
    url: str
    expires_at: datetime
    token_id: str
    result: ResultView


class PatientRecords:
    """Orders and results for the patient portal."""

    def __init__(
        self, reader: RecordsReader, tokens: ViewerTokens, viewer: ViewerSettings, clock: Clock
    ) -> None:
        self._reader = reader
        self._tokens = tokens
        self.viewer = viewer  # what the API links to (tests configure one)
        self._clock = clock

    def orders(self, patient_id: UUID) -> list[OrderView]:
        """The patient's orders, with the exam types each can be booked as."""
        return self._reader.orders_of(patient_id)

    def results(self, patient_id: UUID) -> list[ResultView]:
        """The patient's result references."""
        return self._reader.results_of(patient_id)

    def link(self, patient_id: UUID, result_id: UUID) -> ResultLink:
        """A link to one of the patient's results in the centre's viewer, good for the
        configured lifetime (at most five minutes). NotFoundError for another patient's
        result; NoViewerError when no viewer is configured."""
        result = self._reader.result_of(patient_id, result_id)
        if result is None:
            raise NotFoundError("no such result")
        if not self.viewer.url_template:
            raise NoViewerError(
                "results cannot be opened online here yet: no result viewer is configured;"
                " ask the imaging centre for your report"
            )
        now = self._clock.now()
        token, token_id = self._tokens.issue(
            subject=str(patient_id),
            accession=result.accession_number,
            audience=self.viewer.audience,
            now=now,
            lifetime=self.viewer.lifetime,
        )
        url = self.viewer.url_template.replace(
            ACCESSION, quote(result.accession_number, safe="")
        ).replace(TOKEN, token)
        expires_at = datetime.fromtimestamp(
            int((now + self.viewer.lifetime).timestamp()), tz=now.tzinfo
        )
        return ResultLink(url=url, expires_at=expires_at, token_id=token_id, result=result)
