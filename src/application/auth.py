"""Sign-in and sessions: passwords checked, access tokens signed, refresh tokens rotated."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from application.errors import InvalidCredentialsError, InvalidTokenError
from application.ports import (
    Clock,
    PasswordHasher,
    Principal,
    RefreshGrant,
    RefreshTokenStore,
    TokenSigner,
)
from application.registry import Registry
from domain.account import Account
from domain.context import Actor
from domain.errors import InvalidValueError

REFRESH_TOKEN_BYTES = 32


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str


def hash_token(token: str) -> str:
    """Refresh tokens are stored only as a SHA-256 digest (they carry 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    """Issues and checks the tokens the API accepts."""

    def __init__(
        self,
        registry: Registry,
        hasher: PasswordHasher,
        signer: TokenSigner,
        refresh_tokens: RefreshTokenStore,
        clock: Clock,
        refresh_lifetime: timedelta = timedelta(days=14),
    ) -> None:
        self._registry = registry
        self._hasher = hasher
        self._signer = signer
        self._refresh_tokens = refresh_tokens
        self._clock = clock
        self._refresh_lifetime = refresh_lifetime
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    def sign_in(self, email: str, password: str, actor: Actor) -> TokenPair:
        """Tokens for a correct e-mail and password; one uniform error otherwise."""
        try:
            account = self._registry.account_by_email(email)
        except InvalidValueError:
            account = None
        if account is None:
            # Spend the same time as for a real account, so timing reveals nothing.
            self._hasher.verify(self._dummy_hash, password)
            raise InvalidCredentialsError("e-mail or password is incorrect")
        if account.disabled or not self._hasher.verify(account.password_hash, password):
            raise InvalidCredentialsError("e-mail or password is incorrect")
        if self._hasher.needs_rehash(account.password_hash):
            self._registry.rehash_password(account.id, password, actor)
        return self._issue(account, family_id=secrets.token_hex(16))

    def refresh(self, refresh_token: str) -> TokenPair:
        """Swap a refresh token for a new pair; each refresh token works once."""
        grant = self._refresh_tokens.consume(hash_token(refresh_token), self._clock.now())
        if grant is None:
            raise InvalidTokenError("the refresh token is invalid, expired or already used")
        account = self._registry.account(grant.account_id)
        if account.disabled:
            self._refresh_tokens.revoke_family(grant.family_id)
            raise InvalidTokenError("the account is disabled")
        return self._issue(account, family_id=grant.family_id)

    def principal(self, access_token: str) -> Principal:
        """Who a bearer token speaks for; InvalidTokenError if it is not valid now."""
        return self._signer.verify(access_token, self._clock.now())

    def sign_out(self, principal: Principal) -> None:
        """End the session the token belongs to (its refresh tokens stop working)."""
        self._refresh_tokens.revoke_family(principal.session_id)

    def _issue(self, account: Account, family_id: str) -> TokenPair:
        now = self._clock.now()
        patient_id: UUID | None = account.patient_id
        principal = Principal(account.id, account.role, patient_id, family_id)
        access_token, expires_in = self._signer.issue(principal, now)
        refresh_token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
        self._refresh_tokens.create(
            hash_token(refresh_token),
            RefreshGrant(account.id, family_id, now + self._refresh_lifetime),
        )
        return TokenPair(access_token, expires_in, refresh_token)
