import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import (
    ActorDep,
    AnonymousActorDep,
    Public,
    SecurityAudit,
    SecurityAuditDep,
    ServicesDep,
    SignedInDep,
)
from api.limits import rate_limit
from api.schemas.auth import (
    ChangePassword,
    DisableTotp,
    PasswordReset,
    PasswordResetRequest,
    RefreshRequest,
    SecondFactorChallenge,
    SecondFactorSignIn,
    SignedOut,
    TokenResponse,
    TotpCode,
    TotpConfirmed,
    TotpEnrolmentOut,
)
from api.schemas.common import ErrorBody
from application.auth import RESET_FLOOR_SECONDS, TokenPair
from application.errors import (
    InvalidCredentialsError,
    InvalidTokenError,
    RefreshTokenReusedError,
    SecondFactorRequiredError,
    TooManyAttemptsError,
)

router = APIRouter(prefix="/v1/auth", tags=["auth"])

SIGN_IN_LIMIT = rate_limit("sign-in", limit=30, window_seconds=60)
SECOND_FACTOR_LIMIT = rate_limit("second-factor", limit=30, window_seconds=60)
RESET_LIMIT = rate_limit("password-reset", limit=5, window_seconds=300)


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse.model_validate(pair)


@contextmanager
def _audited(audit: SecurityAudit, action: str) -> Iterator[None]:
    """Record a failed or locked-out attempt before the error goes back to the caller."""
    try:
        yield
    except TooManyAttemptsError:
        audit.event(action, "locked_out")
        raise
    except RefreshTokenReusedError as reused:
        audit.event(
            action,
            "reused",
            actor_id=str(reused.account_id),
            role=reused.role,
            patient_id=reused.patient_id,
            resource_id=reused.session_id,
        )
        raise
    except (InvalidCredentialsError, InvalidTokenError):
        audit.event(action, "failure")
        raise
    except SecondFactorRequiredError:
        audit.event(action, "second_factor_required")
        raise


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage)
    return image.to_string(encoding="unicode")  # type: ignore[no-any-return]


@router.post(
    "/token",
    dependencies=[Public, SIGN_IN_LIMIT],
    response_model=TokenResponse,
    responses={
        401: {
            "model": SecondFactorChallenge | ErrorBody,
            "description": "a code is needed (with a challenge), or the sign-in is refused",
        }
    },
    summary="Sign in with e-mail and password",
)
def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
    actor: AnonymousActorDep,
    audit: SecurityAuditDep,
) -> TokenResponse:
    """OAuth2 password grant (``username`` is the e-mail). With two-factor sign-in on,
    the answer is 401 ``second_factor_required`` with a ``challenge`` to send, with the
    code, to ``/v1/auth/token/second-factor``."""
    with _audited(audit, "sign_in"):
        pair = services.auth.sign_in(form.username, form.password, actor)
    audit.signed_in(pair.access_token)
    return _tokens(pair)


@router.post(
    "/token/second-factor",
    dependencies=[Public, SECOND_FACTOR_LIMIT],
    response_model=TokenResponse,
    responses={401: {"model": ErrorBody}},
    summary="Finish signing in with an authenticator code or a recovery code",
)
def sign_in_second_factor(
    request: SecondFactorSignIn,
    services: ServicesDep,
    actor: AnonymousActorDep,
    audit: SecurityAuditDep,
) -> TokenResponse:
    with _audited(audit, "sign_in_second_factor"):
        pair = services.auth.sign_in_second_factor(
            request.challenge, code=request.code, recovery_code=request.recovery_code, actor=actor
        )
    audit.signed_in(pair.access_token, "sign_in_second_factor")
    return _tokens(pair)


@router.post(
    "/refresh",
    dependencies=[Public, SIGN_IN_LIMIT],
    response_model=TokenResponse,
    summary="Swap a refresh token for new tokens",
)
def refresh(
    request: RefreshRequest, services: ServicesDep, audit: SecurityAuditDep
) -> TokenResponse:
    """Each refresh token works once. Presenting one again ends its whole session at
    once (its access tokens too) and is recorded in the access log."""
    with _audited(audit, "refresh"):
        return _tokens(services.auth.refresh(request.refresh_token))


@router.post("/logout", status_code=204, summary="End this session")
def logout(principal: SignedInDep, services: ServicesDep, audit: SecurityAuditDep) -> Response:
    services.auth.sign_out(principal)
    audit.event("sign_out", "success", actor_id=str(principal.account_id), role=principal.role)
    return Response(status_code=204)


@router.post("/logout-everywhere", response_model=SignedOut, summary="End every session")
def logout_everywhere(
    principal: SignedInDep, services: ServicesDep, audit: SecurityAuditDep
) -> SignedOut:
    ended = services.auth.sign_out_everywhere(principal.account_id)
    audit.event(
        "sign_out_everywhere", "success", actor_id=str(principal.account_id), role=principal.role
    )
    return SignedOut(sessions_ended=ended)


@router.post(
    "/2fa/enrol", response_model=TotpEnrolmentOut, summary="Start two-factor enrolment (TOTP)"
)
def enrol(principal: SignedInDep, actor: ActorDep, services: ServicesDep) -> TotpEnrolmentOut:
    enrolment = services.auth.start_totp_enrolment(principal, actor)
    return TotpEnrolmentOut.model_validate(
        {**vars(enrolment), "qr_svg": _qr_svg(enrolment.provisioning_uri)}
    )


@router.post(
    "/2fa/confirm",
    dependencies=[SECOND_FACTOR_LIMIT],
    response_model=TotpConfirmed,
    summary="Confirm enrolment with a first code; returns recovery codes once",
)
def confirm(
    request: TotpCode, principal: SignedInDep, actor: ActorDep, services: ServicesDep
) -> TotpConfirmed:
    codes, pair = services.auth.confirm_totp(principal, request.code, actor)
    return TotpConfirmed(recovery_codes=codes, tokens=_tokens(pair))


@router.post(
    "/2fa/disable",
    dependencies=[SECOND_FACTOR_LIMIT],
    status_code=204,
    summary="Turn two-factor sign-in off (password and a current code required)",
)
def disable(
    request: DisableTotp, principal: SignedInDep, actor: ActorDep, services: ServicesDep
) -> Response:
    services.auth.disable_totp(principal, request.password, request.code, actor)
    return Response(status_code=204)


@router.post("/password", status_code=204, summary="Change password; every session ends")
def change_password(
    request: ChangePassword, principal: SignedInDep, actor: ActorDep, services: ServicesDep
) -> Response:
    services.auth.change_password(principal, request.current_password, request.new_password, actor)
    return Response(status_code=204)


@router.post(
    "/password-reset",
    dependencies=[Public, RESET_LIMIT],
    status_code=202,
    response_class=Response,
    summary="E-mail a single-use reset link (same answer whether or not the address exists)",
)
async def request_reset(
    request: PasswordResetRequest, services: ServicesDep, actor: AnonymousActorDep
) -> Response:
    """Answered a fixed 0.4 s after the request whether or not the address has an
    account, so its timing tells nothing either (the wait holds no worker thread)."""
    started = time.monotonic()
    await run_in_threadpool(services.auth.request_password_reset, request.email, actor)
    await asyncio.sleep(max(0.0, RESET_FLOOR_SECONDS - (time.monotonic() - started)))
    return Response(status_code=202)


@router.post(
    "/password-reset/confirm",
    dependencies=[Public, RESET_LIMIT],
    status_code=204,
    summary="Set a new password with a reset link's token",
)
def reset(request: PasswordReset, services: ServicesDep, actor: AnonymousActorDep) -> Response:
    services.auth.reset_password(request.token, request.new_password, actor)
    return Response(status_code=204)
