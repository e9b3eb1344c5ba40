from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import AnonymousActorDep, Public, ServicesDep, SignedInDep
from api.schemas.auth import RefreshRequest, TokenResponse
from application.auth import TokenPair

router = APIRouter(prefix="/v1/auth", tags=["auth"])


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )


@router.post(
    "/token",
    dependencies=[Public],
    response_model=TokenResponse,
    summary="Sign in with e-mail and password",
)
def sign_in(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    services: ServicesDep,
    actor: AnonymousActorDep,
) -> TokenResponse:
    return _tokens(services.auth.sign_in(form.username, form.password, actor))


@router.post(
    "/refresh",
    dependencies=[Public],
    response_model=TokenResponse,
    summary="Swap a refresh token for new tokens",
)
def refresh(request: RefreshRequest, services: ServicesDep) -> TokenResponse:
    return _tokens(services.auth.refresh(request.refresh_token))


@router.post("/logout", status_code=204, summary="End this session")
def logout(principal: SignedInDep, services: ServicesDep) -> Response:
    services.auth.sign_out(principal)
    return Response(status_code=204)
