from pydantic import BaseModel, Field

from api.schemas.common import FromView, Password, Strict


class TokenResponse(FromView):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    refresh_token: str
    two_factor: bool = False


class SecondFactorChallenge(BaseModel):
    """Returned with 401 ``second_factor_required`` by ``POST /v1/auth/token``."""

    code: str = "second_factor_required"
    detail: str
    challenge: str


class RefreshRequest(Strict):
    refresh_token: str = Field(min_length=1, max_length=512)


class SecondFactorSignIn(Strict):
    challenge: str = Field(min_length=1, max_length=2048)
    code: str | None = Field(default=None, min_length=6, max_length=6, pattern=r"^[0-9]{6}$")
    recovery_code: str | None = Field(default=None, min_length=10, max_length=16)


class TotpEnrolmentOut(FromView):
    secret: str
    provisioning_uri: str
    qr_svg: str = Field(description="the provisioning URI as an SVG QR code")


class TotpCode(Strict):
    code: str = Field(pattern=r"^[0-9]{6}$")


class TotpConfirmed(BaseModel):
    recovery_codes: list[str] = Field(description="shown once; each works once")
    tokens: TokenResponse


class DisableTotp(Strict):
    password: Password
    code: str = Field(pattern=r"^[0-9]{6}$")


class ChangePassword(Strict):
    current_password: Password
    new_password: Password


class PasswordResetRequest(Strict):
    email: str = Field(max_length=254)


class PasswordReset(Strict):
    token: str = Field(min_length=1, max_length=2048)
    new_password: Password


class SignedOut(BaseModel):
    sessions_ended: int
