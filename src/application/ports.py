"""Ports: what the application needs from the outside world, as small ABCs.

Adapters (clock, password hashing, token signing and storage) and projections
(read models) implement them; the composition root wires them in.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from application.base import Position
from domain.schedule import Interval


class Clock(ABC):
    @abstractmethod
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""


class PasswordHasher(ABC):
    @abstractmethod
    def hash(self, password: str) -> str:
        """A salted, slow hash of ``password`` (argon2id in production)."""

    @abstractmethod
    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches; never raises for a mismatch."""

    @abstractmethod
    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than today's."""


@dataclass(frozen=True)
class Principal:
    """Who an access token speaks for."""

    account_id: UUID
    role: str
    patient_id: UUID | None
    session_id: str


class TokenSigner(ABC):
    @abstractmethod
    def issue(self, principal: Principal, now: datetime) -> tuple[str, int]:
        """A signed access token for ``principal`` and its lifetime in seconds."""

    @abstractmethod
    def verify(self, token: str, now: datetime) -> Principal:
        """The principal of a valid token; InvalidTokenError otherwise."""


@dataclass(frozen=True)
class RefreshGrant:
    account_id: UUID
    family_id: str
    expires_at: datetime


class RefreshTokenStore(ABC):
    @abstractmethod
    def create(self, token_hash: str, grant: RefreshGrant) -> None:
        """Remember a new refresh token (only its hash)."""

    @abstractmethod
    def consume(self, token_hash: str, now: datetime) -> RefreshGrant | None:
        """Use a token once: its grant, or None if unknown, expired or already used.

        Presenting an already used token revokes its whole family.
        """

    @abstractmethod
    def revoke_family(self, family_id: str) -> None:
        """End every refresh token descended from one sign-in."""


@dataclass(frozen=True)
class AppointmentView:
    id: UUID
    patient_id: UUID
    status: str
    appointment_type_id: UUID
    location_id: UUID
    resource_id: UUID
    start: datetime
    end: datetime
    timezone: str
    reason: str
    version: int
    updated_at: datetime


class AppointmentReader(ABC):
    @abstractmethod
    def for_patient(self, patient_id: UUID) -> list[AppointmentView]:
        """The patient's appointments, soonest first."""

    @abstractmethod
    def get(self, appointment_id: UUID) -> AppointmentView | None:
        """One appointment, or None."""


@dataclass(frozen=True)
class ResourceEntry:
    """A resource with the spec of the location it belongs to."""

    id: UUID
    spec: dict[str, Any]
    location_id: UUID
    location_spec: dict[str, Any]


class CatalogReader(ABC):
    @abstractmethod
    def locations(self) -> list[tuple[UUID, dict[str, Any]]]:
        """Every location and its spec, by name."""

    @abstractmethod
    def appointment_types(self) -> list[tuple[UUID, dict[str, Any]]]:
        """Every appointment type and its spec, by name."""

    @abstractmethod
    def resources(self, modality: str, location_id: UUID | None) -> list[ResourceEntry]:
        """Resources of a modality, at one location or at all of them."""


class BusyReader(ABC):
    @abstractmethod
    def busy(
        self, resource_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> dict[UUID, list[Interval]]:
        """Reserved intervals overlapping [start, end), by resource."""


class ReadModelSync(ABC):
    @abstractmethod
    def wait(self, position: Position, timeout: float = 5.0) -> bool:
        """Block until every read model fed by the position's application has
        processed it; False if that did not happen within ``timeout`` seconds."""


@dataclass(frozen=True)
class AccessRecord:
    """One read (or refused read) of patient data."""

    at: datetime
    actor_id: str
    role: str
    patient_id: UUID | None
    resource: str
    resource_id: str
    action: str
    outcome: str
    request_id: str
    client_address: str
    reason: str = ""


class AccessLog(ABC):
    @abstractmethod
    def record(self, entry: AccessRecord) -> None:
        """Append one entry; never loses it once this returns."""
