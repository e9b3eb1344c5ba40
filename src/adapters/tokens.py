"""Access tokens (EdDSA-signed JWTs with a key id) and refresh tokens in PostgreSQL."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg_pool import ConnectionPool

from application.errors import InvalidTokenError, RefreshTokenReusedError
from application.ports import Principal, RefreshGrant, RefreshTokenStore, TokenSigner

ISSUER = "imaging-bridge"
AUDIENCE = "imaging-bridge-api"


class JwtSigner(TokenSigner):
    """Signs with one current key; verifies any key it knows by ``kid`` (rotation)."""

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        key_id: str,
        lifetime: timedelta,
        previous_keys: dict[str, Ed25519PublicKey] | None = None,
    ) -> None:
        self._private_key = private_key
        self._key_id = key_id
        self._lifetime = lifetime
        self._public_keys = {key_id: private_key.public_key(), **(previous_keys or {})}

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every public key this signer verifies with, by ``kid`` (the JWKS)."""
        return dict(self._public_keys)

    def issue(self, principal: Principal, now: datetime) -> tuple[str, int]:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(principal.account_id),
            "role": principal.role,
            "sid": principal.session_id,
            "iat": int(now.timestamp()),
            "exp": int((now + self._lifetime).timestamp()),
        }
        if principal.patient_id is not None:
            claims["pid"] = str(principal.patient_id)
        claims["amr"] = list(principal.amr)
        if principal.centres:
            claims["cen"] = [str(c) for c in principal.centres]
        token = jwt.encode(
            claims, self._private_key, algorithm="EdDSA", headers={"kid": self._key_id}
        )
        return token, int(self._lifetime.total_seconds())

    def verify(self, token: str, now: datetime) -> Principal:
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
            key = self._public_keys.get(str(key_id))
            if key is None:
                raise InvalidTokenError("the access token was signed by an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": ["exp", "iat", "sub", "role", "sid"],
                    # Expiry is checked below against the application's clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            if claims["exp"] <= now.timestamp():
                raise InvalidTokenError("the access token has expired")
            return Principal(
                account_id=UUID(claims["sub"]),
                role=str(claims["role"]),
                patient_id=UUID(claims["pid"]) if claims.get("pid") else None,
                session_id=str(claims["sid"]),
                amr=tuple(str(m) for m in claims.get("amr", ["pwd"])),
                centres=tuple(UUID(c) for c in claims.get("cen", [])),
            )
        except (jwt.PyJWTError, ValueError, KeyError) as error:
            raise InvalidTokenError("the access token is invalid") from error

    def issue_purpose(
        self,
        subject: str,
        purpose: str,
        lifetime: timedelta,
        now: datetime,
        extra: dict[str, str] | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            **(extra or {}),
            "iss": ISSUER,
            "aud": f"{AUDIENCE}:{purpose}",
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
        }
        return jwt.encode(
            claims, self._private_key, algorithm="EdDSA", headers={"kid": self._key_id}
        )

    def verify_purpose(self, token: str, purpose: str, now: datetime) -> dict[str, str]:
        try:
            key = self._public_keys.get(str(jwt.get_unverified_header(token).get("kid")))
            if key is None:
                raise InvalidTokenError("the token was signed by an unknown key")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=f"{AUDIENCE}:{purpose}",
                issuer=ISSUER,
                options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False},
            )
        except (jwt.PyJWTError, ValueError) as error:
            raise InvalidTokenError("the token is invalid") from error
        if claims["exp"] <= now.timestamp():
            raise InvalidTokenError("the token has expired")
        return {k: str(v) for k, v in claims.items()}


def load_or_create_key(
    pem: str | None, data_dir: Path, *, allow_generate: bool
) -> Ed25519PrivateKey:
    """The signing key from settings; in development, one generated into the data folder."""
    if pem:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("JWT_PRIVATE_KEY must be an Ed25519 private key in PEM")
        return key
    if not allow_generate:
        raise ValueError("JWT_PRIVATE_KEY must be set outside development")
    path = data_dir / "dev-jwt-key.pem"
    if path.exists():
        return load_or_create_key(path.read_text(), data_dir, allow_generate=False)
    key = Ed25519PrivateKey.generate()
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


class PostgresRefreshTokenStore(RefreshTokenStore):
    """Table ``refresh_tokens`` (see migrations): hashes only, one row per token."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def create(self, token_hash: str, grant: RefreshGrant) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO refresh_tokens (token_hash, account_id, family_id, expires_at)"
                " VALUES (%s, %s, %s, %s)",
                (token_hash, grant.account_id, grant.family_id, grant.expires_at),
            )

    def consume(self, token_hash: str, now: datetime) -> RefreshGrant | None:
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT account_id, family_id, expires_at, used_at, revoked"
                " FROM refresh_tokens WHERE token_hash = %s FOR UPDATE",
                (token_hash,),
            ).fetchone()
            if row is None:
                return None
            account_id, family_id, expires_at, used_at, revoked = row
            if used_at is None and not revoked:
                if expires_at <= now:
                    return None
                conn.execute(
                    "UPDATE refresh_tokens SET used_at = %s WHERE token_hash = %s",
                    (now, token_hash),
                )
                return RefreshGrant(account_id, family_id, expires_at)
            # A used token presented again: someone holds a copy. End the family.
            conn.execute(
                "UPDATE refresh_tokens SET revoked = true WHERE family_id = %s", (family_id,)
            )
        # Raised once the revocation is committed, not inside the transaction (rolled back).
        raise RefreshTokenReusedError(
            "the refresh token was already used; the session has ended",
            account_id=account_id,
            session_id=family_id,
        )

    def revoke_family(self, family_id: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE refresh_tokens SET revoked = true WHERE family_id = %s", (family_id,)
            )
