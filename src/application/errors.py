"""Errors raised by application services (domain errors pass through unchanged)."""

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


class WeakPasswordError(DomainError):
    code = "weak_password"


class IdempotencyKeyReusedError(DomainError):
    code = "idempotency_key_reused"


class ConcurrencyError(DomainError):
    """Retries of an optimistic write were exhausted under contention."""

    code = "try_again"
