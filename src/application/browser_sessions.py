"""The web portal's sessions: a cookie holding an opaque random value bound to one of the
same session rows the API's tokens name, so that everything that ends a session (sign-out,
"sign out everywhere", a password change or reset, an admin disabling the account, turning
on two-factor sign-in) ends a browser's too. Only the value's digest is stored; the
browser never holds an access or refresh token.

Form tokens (against cross-site request forgery) are short-lived signed tokens bound to
the digest of a cookie: the session's for signed-in forms, an anonymous cookie's for the
forms used before signing in (sign-in, create account, password reset)."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from application.auth import SessionLimits, TokenPair, hash_token, live_account
from application.errors import InvalidTokenError
from application.ports import (
    Clock,
    Principal,
    RefreshTokenStore,
    Session,
    SessionStore,
    TokenSigner,
)
from application.registry import Registry

COOKIE_BYTES = 32
FORM_TOKEN_PURPOSE = "form"  # noqa: S105 (a token audience, not a secret)
# Longer than any session lives, so a page left open is refused only when its session is.
FORM_TOKEN_LIFETIME = timedelta(hours=24)
# A session's idle limit is pushed on at most once a minute (not a write per page).
TOUCH_EVERY = timedelta(minutes=1)


def binding_of(cookie: str) -> str:
    """What a form token is bound to: a digest of the cookie (never the cookie itself)."""
    return hashlib.sha256(b"form-binding:" + cookie.encode()).hexdigest()[:32]


class BrowserSessions:
    """Opens, reads and protects browser sessions on the API's session store."""

    def __init__(
        self,
        *,
        registry: Registry,
        sessions: SessionStore,
        refresh_tokens: RefreshTokenStore,
        signer: TokenSigner,
        clock: Clock,
        limits: SessionLimits | None = None,
    ) -> None:
        self._registry = registry
        self._sessions = sessions
        self._refresh_tokens = refresh_tokens
        self._signer = signer
        self._clock = clock
        self._limits = limits or SessionLimits()

    def open(self, pair: TokenPair) -> str:
        """The cookie value for the session a sign-in just opened (``pair``). The pair's
        refresh token is revoked: the browser's session lives by its cookie alone, and
        nobody holds that refresh token to extend it."""
        principal = self._signer.verify(pair.access_token, self._clock.now())
        cookie = secrets.token_urlsafe(COOKIE_BYTES)
        self._sessions.bind_browser(principal.session_id, hash_token(cookie))
        self._refresh_tokens.revoke_family(principal.session_id)
        return cookie

    def principal(self, cookie: str) -> Principal:
        """Who a browser's cookie speaks for; InvalidTokenError unless its session is
        active and its account enabled. Using it pushes the idle limit on."""
        now = self._clock.now()
        session = self._sessions.by_browser_token(hash_token(cookie)) if cookie else None
        account = live_account(session, now, self._registry, self._sessions)
        assert session is not None  # live_account refused a missing one
        idle, _ = self._limits.for_account(account)
        self._keep_alive(session, idle, now)
        return Principal(
            account_id=account.id,
            role=account.role,
            patient_id=account.patient_id,
            session_id=session.id,
            amr=session.amr,
            centres=tuple(account.centres),
        )

    def form_token(self, cookie: str) -> str:
        """A token for the forms of the page a holder of ``cookie`` is shown."""
        return self._signer.issue_purpose(
            binding_of(cookie), FORM_TOKEN_PURPOSE, FORM_TOKEN_LIFETIME, self._clock.now()
        )

    def form_token_valid(self, token: str, cookie: str) -> bool:
        """Whether ``token`` was issued for ``cookie`` and has not expired."""
        if not token or not cookie:
            return False
        try:
            claims = self._signer.verify_purpose(token, FORM_TOKEN_PURPOSE, self._clock.now())
        except InvalidTokenError:
            return False
        return hmac.compare_digest(str(claims.get("sub", "")), binding_of(cookie))

    def _keep_alive(self, session: Session, idle: timedelta, now: datetime) -> None:
        pushed = min(now + idle, session.absolute_expires_at)
        if pushed - session.idle_expires_at >= TOUCH_EVERY:
            self._sessions.touch(session.id, pushed)
