"""Tokens for the centre's result viewer, and the public keys that verify them.

They are EdDSA JWTs signed with the same Ed25519 key as access tokens (its ``kid`` in the
header), so the viewer, or the gateway in front of it, verifies them against
``/.well-known/jwks.json`` (RFC 7517 / RFC 8037 OKP keys) without any shared secret.
"""

import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from adapters.tokens import ISSUER
from application.ris.patient_records import ViewerTokens


class JwtViewerTokens(ViewerTokens):
    """Viewer tokens: ``sub`` the patient, ``aud`` the viewer, the ``accession`` they
    open, ``iat``/``exp``, and a ``jti`` the viewer can refuse to see twice."""

    def __init__(self, private_key: Ed25519PrivateKey, key_id: str) -> None:
        self._private_key = private_key
        self._key_id = key_id

    def issue(
        self, *, subject: str, accession: str, audience: str, now: datetime, lifetime: timedelta
    ) -> tuple[str, str]:
        token_id = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": audience,
            "sub": subject,
            "accession": accession,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "jti": token_id,
        }
        token = jwt.encode(
            claims, self._private_key, algorithm="EdDSA", headers={"kid": self._key_id}
        )
        return token, token_id


def jwk(key_id: str, public_key: Ed25519PublicKey) -> dict[str, str]:
    """One public key as an OKP JWK (RFC 8037)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_id, "alg": "EdDSA", "use": "sig"}


def jwks(public_keys: dict[str, Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    """The JWK Set of every key we sign with or still verify (by ``kid``)."""
    return {"keys": [jwk(key_id, key) for key_id, key in sorted(public_keys.items())]}
