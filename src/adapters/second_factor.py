"""TOTP (RFC 6238) with pyotp: 30-second steps, six digits, one step of drift allowed."""

import hmac
from datetime import datetime

import pyotp

from application.ports import SecondFactor

ISSUER = "Imaging Bridge"


class PyotpSecondFactor(SecondFactor):
    def new_secret(self) -> str:
        return pyotp.random_base32(32)

    def provisioning_uri(self, secret: str, account_name: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)

    def matching_step(self, secret: str, code: str, now: datetime) -> int | None:
        if not (len(code) == 6 and code.isdigit()):
            return None
        totp = pyotp.TOTP(secret)
        step = totp.timecode(now)
        for candidate in (step, step - 1, step + 1):
            if hmac.compare_digest(totp.generate_otp(candidate), code):
                return candidate
        return None
