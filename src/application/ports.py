"""Ports: what the application needs from the outside world, as small ABCs.

Adapters (clock, password hashing, token signing and storage) and projections
(read models) implement them; the composition root wires them in.
"""

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from application.base import Position
from domain.context import Actor
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
    """Who an access token speaks for, and how they proved it (``amr``: pwd, otp)."""

    account_id: UUID
    role: str
    patient_id: UUID | None
    session_id: str
    amr: tuple[str, ...] = ("pwd",)
    centres: tuple[UUID, ...] = ()

    @property
    def two_factor(self) -> bool:
        return "otp" in self.amr


class TokenSigner(ABC):
    @abstractmethod
    def issue(self, principal: Principal, now: datetime) -> tuple[str, int]:
        """A signed access token for ``principal`` and its lifetime in seconds."""

    @abstractmethod
    def verify(self, token: str, now: datetime) -> Principal:
        """The principal of a valid token; InvalidTokenError otherwise."""

    @abstractmethod
    def issue_purpose(
        self,
        subject: str,
        purpose: str,
        lifetime: timedelta,
        now: datetime,
        extra: dict[str, str] | None = None,
    ) -> str:
        """A short-lived signed token good for one purpose only (a sign-in challenge,
        a password reset link)."""

    @abstractmethod
    def verify_purpose(self, token: str, purpose: str, now: datetime) -> dict[str, str]:
        """The claims of a valid token of that purpose; InvalidTokenError otherwise."""


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
        """Use a token once: its grant, or None if unknown or expired.

        Presenting an already used token revokes its whole family, then raises
        RefreshTokenReusedError naming the family (the session it belongs to).
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
    notes: str = ""


class AppointmentReader(ABC):
    @abstractmethod
    def for_patient(self, patient_id: UUID) -> list[AppointmentView]:
        """The patient's appointments, soonest first."""

    @abstractmethod
    def get(self, appointment_id: UUID) -> AppointmentView | None:
        """One appointment, or None."""

    @abstractmethod
    def at_location(
        self, location_id: UUID, start: datetime, end: datetime
    ) -> list[AppointmentView]:
        """Appointments at a location starting in [start, end), soonest first."""

    @abstractmethod
    def locations_of_patient(self, patient_id: UUID) -> set[UUID]:
        """Every location the patient has (or had) an appointment at."""

    @abstractmethod
    def active_on_resource(self, resource_id: UUID, after: datetime) -> list[AppointmentView]:
        """Active (booked or checked-in) appointments on a resource that end after
        ``after``, soonest first."""


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

    @abstractmethod
    def specs(
        self, appointment_type_ids: Collection[UUID], location_ids: Collection[UUID]
    ) -> tuple[dict[UUID, dict[str, Any]], dict[UUID, dict[str, Any]]]:
        """The specs of these appointment types and of these locations, by id, in one
        read; an id the read model does not hold is left out."""


class BusyReader(ABC):
    @abstractmethod
    def busy(
        self, resource_ids: Sequence[UUID], start: datetime, end: datetime
    ) -> dict[UUID, list[Interval]]:
        """Reserved intervals overlapping [start, end), by resource."""


class SearchVersions(ABC):
    """How far the read models a slot search reads have got (availability, catalog): an
    answer worked out at the same versions is still the answer."""

    @abstractmethod
    def current(self) -> tuple[int, ...]:
        """The read models' positions now (asked of the database)."""

    def known(self) -> tuple[int, ...] | None:
        """The positions without asking anyone, when nothing is known to have moved them
        since they were last asked; None when they must be asked (the default)."""
        return None


class ReadModelSync(ABC):
    @abstractmethod
    def wait(self, position: Position, timeout: float = 5.0) -> bool:
        """Block until every read model fed by the position's application has
        processed it; False if that did not happen within ``timeout`` seconds."""

    @abstractmethod
    def head(self, application: str) -> int | None:
        """The last notification id in ``application``'s log (0 if empty); None if no
        read model follows an application of that name."""


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

    @classmethod
    def of(
        cls,
        actor: Actor,
        *,
        at: datetime,
        client_address: str,
        patient_id: UUID | None,
        resource: str,
        action: str,
        outcome: str,
        resource_id: str = "",
        reason: str = "",
    ) -> "AccessRecord":
        """The entry for what ``actor`` (its id, role and request id) did to
        ``resource`` from ``client_address``: the one way every entry is built."""
        return cls(
            at=at,
            actor_id=actor.id,
            role=actor.role,
            patient_id=patient_id,
            resource=resource,
            resource_id=resource_id,
            action=action,
            outcome=outcome,
            request_id=actor.request_id,
            client_address=client_address,
            reason=reason,
        )


class AccessLog(ABC):
    """The PHI access log: entries appended, and searched by compliance."""

    @abstractmethod
    def record(self, entry: AccessRecord) -> None:
        """Append one entry. A batching log may hold it for a moment: it is durable once
        ``flush`` (or ``close``) returns True."""

    def flush(self, timeout: float | None = None) -> bool:
        """Until every entry recorded so far is written; False if that took too long."""
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop taking entries."""
        return self.flush(timeout)

    @abstractmethod
    def search(
        self,
        *,
        patient_id: UUID | None = None,
        actor_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[tuple[int, AccessRecord]]:
        """Entries matching every filter given, newest first; ``before_id`` continues
        after that entry."""

    def operator_action(
        self,
        *,
        at: datetime,
        actor: Actor,
        resource: str,
        resource_id: str,
        action: str,
        reason: str,
        patient_id: UUID | None = None,
    ) -> None:
        """Audit what an operator did (a redrive, a replay), with who, when and why."""
        self.record(
            AccessRecord.of(
                actor,
                at=at,
                client_address=actor.source,
                patient_id=patient_id,
                resource=resource,
                resource_id=resource_id,
                action=action,
                outcome="success",
                reason=reason,
            )
        )


@dataclass(frozen=True)
class Session:
    """One sign-in and its refreshes: ends when revoked, idle too long, or too old."""

    id: str
    account_id: UUID
    amr: tuple[str, ...]
    created_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    revoked: bool = False

    def active(self, now: datetime) -> bool:
        return not self.revoked and now < self.idle_expires_at and now < self.absolute_expires_at


class SessionStore(ABC):
    @abstractmethod
    def create(self, session: Session) -> None:
        """Remember a new session."""

    @abstractmethod
    def get(self, session_id: str) -> Session | None:
        """A session, active or not; None if unknown."""

    @abstractmethod
    def touch(self, session_id: str, idle_expires_at: datetime) -> None:
        """Push the idle limit on (the session was used)."""

    @abstractmethod
    def revoke(self, session_id: str, reason: str) -> None:
        """End one session (and so its refresh tokens)."""

    @abstractmethod
    def revoke_account(self, account_id: UUID, reason: str) -> int:
        """End every session of an account; how many were active."""

    @abstractmethod
    def bind_browser(self, session_id: str, token_hash: str) -> None:
        """Tie a browser's cookie (only its digest) to a session."""

    @abstractmethod
    def by_browser_token(self, token_hash: str) -> Session | None:
        """The session a browser cookie's digest is tied to, active or not; None if none."""


class Throttle(ABC):
    """Slows and then locks out repeated failures of one key (an account, an address)."""

    @abstractmethod
    def retry_after(self, key: str, now: datetime) -> float:
        """Seconds before ``key`` may try again (0: now)."""

    @abstractmethod
    def failure(self, key: str, now: datetime) -> None:
        """Record a failed attempt; the delay grows exponentially past a few failures."""

    @abstractmethod
    def success(self, key: str) -> None:
        """Forget the failures of ``key``."""


class RateLimiter(ABC):
    """Fixed-window request budgets per bucket and key (address, account)."""

    @abstractmethod
    def hit(self, bucket: str, key: str, limit: int, window_seconds: int, now: datetime) -> float:
        """Count one request; 0 if within ``limit`` per window, else seconds to wait."""


class OneTimeUse(ABC):
    @abstractmethod
    def claim(self, key: str, expires_at: datetime) -> bool:
        """True the first time ``key`` is claimed (until it expires), False after."""


class SecondFactor(ABC):
    """Time-based one-time passwords (RFC 6238)."""

    @abstractmethod
    def new_secret(self) -> str:
        """A fresh random base32 secret."""

    @abstractmethod
    def provisioning_uri(self, secret: str, account_name: str) -> str:
        """The ``otpauth://`` URI authenticator apps read (usually from a QR code)."""

    @abstractmethod
    def matching_step(self, secret: str, code: str, now: datetime) -> int | None:
        """The time step the code belongs to (allowing one step of drift), or None."""


@dataclass(frozen=True)
class ResetRequest:
    """A password-reset link to send: to the account's e-mail ``address``, carrying
    ``token`` (good for ``valid_minutes``), asked for at ``at``. ``reference`` is unique
    to the request (the token's id), ``patient_id`` the account's patient record if any."""

    account_id: UUID
    patient_id: UUID | None
    address: str
    token: str
    valid_minutes: int
    reference: str
    at: datetime


class PasswordResetSender(ABC):
    """Sends password-reset links (a delivery on the e-mail channel)."""

    @abstractmethod
    def send_reset(self, request: ResetRequest, actor: Actor) -> None:
        """Hand one reset link over for delivery; once per ``request.reference``."""


@dataclass(frozen=True)
class BreakGlassGrant:
    id: UUID
    account_id: UUID
    patient_id: UUID
    reason: str
    granted_at: datetime
    expires_at: datetime


class BreakGlassStore(ABC):
    @abstractmethod
    def grant(self, grant: BreakGlassGrant) -> None:
        """Record an emergency access grant and raise an alert for compliance."""

    @abstractmethod
    def active(self, account_id: UUID, patient_id: UUID, now: datetime) -> BreakGlassGrant | None:
        """The grant letting this account see this patient now, if any."""


@dataclass(frozen=True)
class Alert:
    """Something compliance must look at (a break-glass grant, for now)."""

    id: int
    at: datetime
    kind: str
    subject_id: str
    detail: str
    acknowledged_at: datetime | None


class AlertReader(ABC):
    @abstractmethod
    def search(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts raised at or after ``start`` and before ``end`` and older than the
        alert ``before_id``, newest first, at most ``limit``."""


class PatientLookup(ABC):
    """The staff search's index of patient records (keyed digests, never names)."""

    @abstractmethod
    def by_name(self, family_name: str, birth_date: date) -> list[UUID]:
        """The records whose family name (case, accents and spacing aside) and birth date
        are these; merged-away records included (the caller follows merges)."""


class PatientRecords(ABC):
    """What the scheduling store holds of one patient record (read models)."""

    @abstractmethod
    def appointment_ids(self, patient_id: UUID) -> list[UUID]: ...

    @abstractmethod
    def order_ids(self, patient_id: UUID) -> list[UUID]: ...
