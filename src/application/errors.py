"""Errors raised by application services (domain errors pass through unchanged)."""

from uuid import UUID

from domain.errors import DomainError


class NotFoundError(DomainError):
    """The thing does not exist, or the caller may not know that it does."""

    code = "not_found"


class InvalidQueryError(DomainError):
    code = "invalid_query"


class InvalidCredentialsError(DomainError):
    code = "invalid_credentials"


class InvalidTokenError(DomainError):
    code = "invalid_token"


class RefreshTokenReusedError(InvalidTokenError):
    """A refresh token was presented after it had been used: someone holds a copy. Its
    whole family is revoked by then; the caller ends the session it belongs to. Whose it
    was (account, role, patient) goes into the access log."""

    def __init__(self, detail: str, *, account_id: UUID, session_id: str) -> None:
        super().__init__(detail)
        self.account_id = account_id
        self.session_id = session_id
        self.role = ""
        self.patient_id: UUID | None = None


class OwnAccountError(DomainError):
    """An admin may not disable their own account or change their own role (another
    admin must), so that no one can lock themselves out or raise their own rights."""

    code = "own_account"


class WeakPasswordError(DomainError):
    code = "weak_password"


class IdempotencyKeyReusedError(DomainError):
    code = "idempotency_key_reused"


class ConcurrencyError(DomainError):
    """Retries of an optimistic write were exhausted under contention."""

    code = "try_again"


class TooManyAttemptsError(DomainError):
    code = "too_many_attempts"

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class SecondFactorRequiredError(DomainError):
    """The password was right; now the code from the authenticator app."""

    code = "second_factor_required"

    def __init__(self, detail: str, challenge: str) -> None:
        super().__init__(detail)
        self.challenge = challenge


class BeyondBookingHorizonError(DomainError):
    """The start is further ahead than the exam may be booked."""

    code = "beyond_booking_horizon"


class BookingLimitReachedError(DomainError):
    """The patient already holds as many upcoming bookings as one patient may."""

    code = "booking_limit_reached"


class ExamNotForOrderError(DomainError):
    """An order was booked as an exam type that does not perform its procedure."""

    code = "exam_not_for_order"


class NoViewerError(DomainError):
    """No result viewer is configured: there is no link to give (never a broken one)."""

    code = "no_viewer"
