"""Sign-in and sessions: passwords, second factors, sessions with idle and absolute
limits, rotating refresh tokens, password change and reset (OWASP ASVS 5.0, V6/V7)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from application.errors import (
    InvalidCredentialsError,
    InvalidTokenError,
    OwnAccountError,
    RefreshTokenReusedError,
    SecondFactorRequiredError,
    TooManyAttemptsError,
)
from application.passwords import check_password
from application.ports import (
    Clock,
    OneTimeUse,
    PasswordHasher,
    PasswordResetSender,
    Principal,
    RefreshGrant,
    RefreshTokenStore,
    ResetRequest,
    SecondFactor,
    Session,
    SessionStore,
    Throttle,
    TokenSigner,
)
from application.registry import Registry
from domain.account import Account, SecondFactorError
from domain.context import Actor
from domain.errors import InvalidValueError

REFRESH_TOKEN_BYTES = 32
RECOVERY_CODES = 10
CHALLENGE_LIFETIME = timedelta(minutes=5)
RESET_LIFETIME = timedelta(minutes=30)
# A reset request is answered this many seconds after it began whether or not the address
# has an account: far above what either path needs (a few ms), so timing tells nothing.
RESET_FLOOR_SECONDS = 0.4


@dataclass(frozen=True)
class SessionLimits:
    """How long a session may sit unused (idle) and live at most (absolute), per kind."""

    patient_idle: timedelta = timedelta(minutes=60)
    patient_absolute: timedelta = timedelta(hours=24)
    staff_idle: timedelta = timedelta(minutes=30)
    staff_absolute: timedelta = timedelta(hours=12)

    def for_account(self, account: Account) -> tuple[timedelta, timedelta]:
        if account.is_staff:
            return self.staff_idle, self.staff_absolute
        return self.patient_idle, self.patient_absolute


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    two_factor: bool = False


@dataclass(frozen=True)
class Enrolment:
    secret: str
    provisioning_uri: str


def hash_token(token: str) -> str:
    """Refresh tokens and recovery codes are stored only as SHA-256 digests (they are
    long random strings, so a slow hash adds nothing)."""
    return hashlib.sha256(token.encode()).hexdigest()


def live_account(
    session: Session | None, now: datetime, registry: Registry, sessions: SessionStore
) -> Account:
    """The account behind ``session`` while the session is active and the account enabled
    (a disabled account's session is ended here); InvalidTokenError otherwise. The one
    check a refresh (API) and a browser cookie (portal) both make before extending a
    session."""
    if session is None or not session.active(now):
        raise InvalidTokenError("the session has ended; sign in again")
    account = registry.account(session.account_id)
    if account.disabled:
        sessions.revoke(session.id, "account disabled")
        raise InvalidTokenError("the session has ended; sign in again")
    return account


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _password_fingerprint(account: Account) -> str:
    """Ties a reset link to the password it replaces: a link dies once that changes."""
    return _fingerprint(account.password_hash)


class AuthService:
    """Issues and checks everything the API accepts as proof of who is calling."""

    def __init__(
        self,
        *,
        registry: Registry,
        hasher: PasswordHasher,
        signer: TokenSigner,
        sessions: SessionStore,
        refresh_tokens: RefreshTokenStore,
        second_factor: SecondFactor,
        one_time: OneTimeUse,
        throttle: Throttle,
        resets: PasswordResetSender,
        clock: Clock,
        limits: SessionLimits | None = None,
    ) -> None:
        self._registry = registry
        self._hasher = hasher
        self._signer = signer
        self._sessions = sessions
        self._refresh_tokens = refresh_tokens
        self._second_factor = second_factor
        self._one_time = one_time
        self._throttle = throttle
        self._resets = resets
        self._clock = clock
        self._limits = limits or SessionLimits()
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    # Signing in ----------------------------------------------------------------------

    def sign_in(self, email: str, password: str, actor: Actor) -> TokenPair:
        """Tokens for a correct e-mail and password; one uniform error otherwise.

        When the account has a second factor, raises SecondFactorRequiredError carrying
        a short-lived challenge to present with the code.
        """
        now = self._clock.now()
        key = f"sign-in:{email.strip().lower()}"
        self._check_throttle(key, now)
        account = self._account_by_email(email)
        if account is None:
            self._hasher.verify(self._dummy_hash, password)  # same time as a real check
            self._throttle.failure(key, now)
            raise InvalidCredentialsError("e-mail or password is incorrect")
        if not self._hasher.verify(account.password_hash, password) or account.disabled:
            self._throttle.failure(key, now)
            raise InvalidCredentialsError("e-mail or password is incorrect")
        self._throttle.success(key)
        if self._hasher.needs_rehash(account.password_hash):
            self._registry.rehash_password(account.id, password, actor)
        if account.totp_enabled:
            challenge = self._signer.issue_purpose(
                str(account.id), "second-factor", CHALLENGE_LIFETIME, now
            )
            raise SecondFactorRequiredError(
                "enter the code from your authenticator app", challenge=challenge
            )
        return self._start_session(account, ("pwd",))

    def sign_in_second_factor(
        self, challenge: str, *, code: str | None, recovery_code: str | None, actor: Actor
    ) -> TokenPair:
        """Complete a sign-in with a TOTP code or one of the recovery codes."""
        now = self._clock.now()
        claims = self._signer.verify_purpose(challenge, "second-factor", now)
        account = self._registry.account(UUID(claims["sub"]))
        key = f"second-factor:{account.id}"
        self._check_throttle(key, now)
        if account.disabled or not account.totp_enabled:
            raise InvalidCredentialsError("the code is not valid")
        accepted = False
        if code:
            accepted = self._accept_code(account, code, now)
        elif recovery_code:
            accepted = self._registry.use_recovery_code(
                account.id, hash_token(_normalise_code(recovery_code)), actor
            )
        if not accepted:
            self._throttle.failure(key, now)
            raise InvalidCredentialsError("the code is not valid")
        self._throttle.success(key)
        return self._start_session(account, ("pwd", "otp"))

    def refresh(self, refresh_token: str) -> TokenPair:
        """Swap a refresh token for a new pair; each refresh token works once, and a
        reused one ends its whole session: its access tokens stop working at once
        (RefreshTokenReusedError)."""
        now = self._clock.now()
        try:
            grant = self._refresh_tokens.consume(hash_token(refresh_token), now)
        except RefreshTokenReusedError as reused:
            # Whoever holds the copy may hold the session's access tokens too.
            self._sessions.revoke(reused.session_id, "refresh token reused")
            account = self._registry.account(reused.account_id)
            reused.role, reused.patient_id = account.role, account.patient_id
            raise
        if grant is None:
            raise InvalidTokenError("the refresh token is invalid, expired or already used")
        session = self._sessions.get(grant.family_id)
        account = live_account(session, now, self._registry, self._sessions)
        assert session is not None  # live_account refused a missing one
        idle, _ = self._limits.for_account(account)
        self._sessions.touch(session.id, min(now + idle, session.absolute_expires_at))
        return self._tokens(account, session, now)

    def principal(self, access_token: str) -> Principal:
        """Who a bearer token speaks for; InvalidTokenError unless it is valid now and
        its session is still active."""
        now = self._clock.now()
        principal = self._signer.verify(access_token, now)
        session = self._sessions.get(principal.session_id)
        if session is None or not session.active(now):
            raise InvalidTokenError("the session has ended; sign in again")
        return principal

    def sign_out(self, principal: Principal) -> None:
        """End this session: its access token stops working and so do its refresh tokens."""
        self._sessions.revoke(principal.session_id, "signed out")

    def sign_out_everywhere(self, account_id: UUID) -> int:
        """End every session of the account; how many were active."""
        return self._sessions.revoke_account(account_id, "signed out everywhere")

    def renew_sessions(self, principal: Principal, reason: str) -> TokenPair:
        """End every session of the account and start one in their place, signed in the
        same way: for a change that the tokens carry (the patient record an account
        signs in as), so no token speaks for what no longer holds."""
        account = self._registry.account(principal.account_id)
        self._sessions.revoke_account(account.id, reason)
        return self._start_session(account, principal.amr)

    def change_staff_role(
        self, account_id: UUID, role: str, centres: list[UUID], actor: Actor
    ) -> Account:
        """A new role or centres; the account's sessions end, so the new rights hold from
        its next sign-in on. Nobody changes their own (OwnAccountError)."""
        _not_own(account_id, actor, "you cannot change your own role or centres")
        self._registry.change_role(account_id, role, centres, actor)
        self.sign_out_everywhere(account_id)
        return self._registry.account(account_id)

    def disable_account(self, account_id: UUID, reason: str, actor: Actor) -> Account:
        """No more sign-ins, and every session ends now. Nobody disables their own
        account (OwnAccountError)."""
        _not_own(account_id, actor, "you cannot disable your own account")
        self._registry.disable_account(account_id, reason, actor)
        self.sign_out_everywhere(account_id)
        return self._registry.account(account_id)

    # Second factor enrolment -----------------------------------------------------------

    def start_totp_enrolment(self, principal: Principal, actor: Actor) -> Enrolment:
        """A new secret to scan; nothing changes for sign-in until it is confirmed."""
        return self.enrol_account(principal.account_id, actor)

    def pending_enrolment(self, account_id: UUID) -> Enrolment | None:
        """The enrolment started and not confirmed yet, if any: the portal shows its QR
        code again rather than starting a new one at every visit."""
        account = self._registry.account(account_id)
        if account.totp_enabled or account.totp_secret is None:
            return None
        secret = account.totp_secret
        return Enrolment(secret, self._second_factor.provisioning_uri(secret, account.email))

    def enrol_account(self, account_id: UUID, actor: Actor) -> Enrolment:
        """Start TOTP enrolment for an account (the CLI's ``staff create`` uses this)."""
        account = self._registry.account(account_id)
        secret = self._second_factor.new_secret()
        self._registry.start_totp_enrolment(account.id, secret, actor)
        return Enrolment(secret, self._second_factor.provisioning_uri(secret, account.email))

    def confirm_account(self, account_id: UUID, code: str, actor: Actor) -> list[str]:
        """Confirm an account's pending enrolment with its first code; the recovery codes.
        Sessions signed in with the password alone end."""
        now = self._clock.now()
        account = self._registry.account(account_id)
        if account.totp_secret is None or account.totp_enabled:
            raise SecondFactorError("start enrolment before confirming it")
        if not self._accept_code(account, code, now):
            raise InvalidCredentialsError("the code is not valid")
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
        self._registry.enable_totp(account.id, [hash_token(c) for c in codes], actor)
        self._sessions.revoke_account(account.id, "two-factor sign-in turned on")
        return codes

    def confirm_totp(
        self, principal: Principal, code: str, actor: Actor
    ) -> tuple[list[str], TokenPair]:
        """Turn the factor on with its first code; returns the recovery codes (shown
        once, stored hashed) and tokens for a new session that has used two factors.
        Every session of the account signed in with the password alone ends, this one
        included (the new one replaces it)."""
        now = self._clock.now()
        key = f"second-factor:{principal.account_id}"
        self._check_throttle(key, now)
        account = self._registry.account(principal.account_id)
        if account.totp_secret is None or account.totp_enabled:
            raise SecondFactorError("start enrolment before confirming it")
        if not self._accept_code(account, code, now):
            self._throttle.failure(key, now)
            raise InvalidCredentialsError("the code is not valid")
        self._throttle.success(key)
        codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
        self._registry.enable_totp(account.id, [hash_token(c) for c in codes], actor)
        account = self._registry.account(account.id)
        self._sessions.revoke_account(account.id, "two-factor sign-in turned on")
        return codes, self._start_session(account, ("pwd", "otp"))

    def disable_totp(self, principal: Principal, password: str, code: str, actor: Actor) -> None:
        """Turn the factor off, only with the password and a current code (re-authentication)."""
        now = self._clock.now()
        key = f"second-factor:{principal.account_id}"
        self._check_throttle(key, now)
        account = self._registry.account(principal.account_id)
        if not self._hasher.verify(account.password_hash, password) or not (
            account.totp_enabled and self._accept_code(account, code, now)
        ):
            self._throttle.failure(key, now)
            raise InvalidCredentialsError("password or code is incorrect")
        self._throttle.success(key)
        self._registry.disable_totp(account.id, actor)

    # Passwords ----------------------------------------------------------------------

    def change_password(self, principal: Principal, current: str, new: str, actor: Actor) -> None:
        """A new password; every session of the account ends (sign in again)."""
        now = self._clock.now()
        key = f"password:{principal.account_id}"
        self._check_throttle(key, now)
        account = self._registry.account(principal.account_id)
        if not self._hasher.verify(account.password_hash, current):
            self._throttle.failure(key, now)
            raise InvalidCredentialsError("the current password is incorrect")
        self._throttle.success(key)
        check_password(new, account.email)
        self._registry.set_password(account.id, new, actor)
        self._sessions.revoke_account(account.id, "password changed")

    def request_password_reset(self, email: str, actor: Actor) -> None:
        """Send a single-use, expiring reset link if the account exists. The answer is
        the same either way and so is the work: both paths look the address up once, sign
        a link; only a live account's is handed to the e-mail channel. What is left unequal
        (handing the message over) the caller hides by answering no sooner than
        RESET_FLOOR_SECONDS after the request began."""
        account = self._account_by_email(email)
        if account is not None and account.disabled:
            account = None
        now = self._clock.now()
        reference = secrets.token_hex(16)
        token = self._signer.issue_purpose(
            str(account.id if account else uuid4()),
            "password-reset",
            RESET_LIFETIME,
            now,
            extra={
                "jti": reference,
                "pwf": _fingerprint(account.password_hash if account else self._dummy_hash),
            },
        )
        if account is not None:
            request = ResetRequest(
                account_id=account.id,
                patient_id=account.patient_id,
                address=account.email,
                token=token,
                valid_minutes=int(RESET_LIFETIME.total_seconds() // 60),
                reference=reference,
                at=now,
            )
            self._resets.send_reset(request, actor)

    def reset_password(self, token: str, new_password: str, actor: Actor) -> None:
        """Use a reset link once: set the new password and end every session."""
        now = self._clock.now()
        claims = self._signer.verify_purpose(token, "password-reset", now)
        account = self._registry.account(UUID(claims["sub"]))
        if claims.get("pwf") != _password_fingerprint(account) or account.disabled:
            raise InvalidTokenError("this reset link is no longer valid")
        check_password(new_password, account.email)
        if not self._one_time.claim(f"reset:{claims['jti']}", now + RESET_LIFETIME):
            raise InvalidTokenError("this reset link was already used")
        self._registry.set_password(account.id, new_password, actor)
        self._sessions.revoke_account(account.id, "password reset")

    # Internals -------------------------------------------------------------------------

    def _account_by_email(self, email: str) -> Account | None:
        try:
            return self._registry.account_by_email(email)
        except InvalidValueError:
            return None

    def _check_throttle(self, key: str, now: datetime) -> None:
        wait = self._throttle.retry_after(key, now)
        if wait > 0:
            raise TooManyAttemptsError("too many failed attempts; try again later", wait)

    def _accept_code(self, account: Account, code: str, now: datetime) -> bool:
        """A TOTP code matches a time step that was not used before (no replay)."""
        if account.totp_secret is None:
            return False
        step = self._second_factor.matching_step(account.totp_secret, code.strip(), now)
        if step is None:
            return False
        return self._one_time.claim(f"totp:{account.id}:{step}", now + timedelta(minutes=5))

    def _start_session(self, account: Account, amr: tuple[str, ...]) -> TokenPair:
        now = self._clock.now()
        idle, absolute = self._limits.for_account(account)
        session = Session(
            id=secrets.token_hex(16),
            account_id=account.id,
            amr=amr,
            created_at=now,
            idle_expires_at=now + idle,
            absolute_expires_at=now + absolute,
        )
        self._sessions.create(session)
        return self._tokens(account, session, now)

    def _tokens(self, account: Account, session: Session, now: datetime) -> TokenPair:
        principal = Principal(
            account_id=account.id,
            role=account.role,
            patient_id=account.patient_id,
            session_id=session.id,
            amr=session.amr,
            centres=tuple(account.centres),
        )
        access_token, expires_in = self._signer.issue(principal, now)
        expires_in = min(expires_in, int((session.absolute_expires_at - now).total_seconds()))
        refresh_token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
        self._refresh_tokens.create(
            hash_token(refresh_token),
            RefreshGrant(account.id, session.id, session.absolute_expires_at),
        )
        return TokenPair(access_token, expires_in, refresh_token, "otp" in session.amr)


def _not_own(account_id: UUID, actor: Actor, refusal: str) -> None:
    if actor.id == str(account_id):
        raise OwnAccountError(refusal)


def _new_recovery_code() -> str:
    raw = secrets.token_hex(5).upper()  # 40 random bits, shown as XXXXX-XXXXX
    return f"{raw[:5]}-{raw[5:]}"


def _normalise_code(code: str) -> str:
    return code.strip().upper()
