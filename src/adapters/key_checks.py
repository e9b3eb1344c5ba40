"""Key check values: a short fingerprint of each key, recorded with the database at its
first start and compared at every start after (table ``key_checks``, migration 0015).

- The event key (``EVENT_CIPHER_KEY``): another key cannot read the log and would write
  new events under a second key, so a process given another key refuses to start. A
  database from before key checks gets its value recorded once the key has decrypted a
  stored event.
- The access-token signing key (``JWT_PRIVATE_KEY``): another key only invalidates the
  access tokens signed before it (at most ``ACCESS_TOKEN_MINUTES`` old; refresh tokens
  go on working), and rotating it is legitimate: a change is reported as a warning and
  the new value recorded.

A check value is an HMAC of a fixed label under the key (the event key) or a hash of the
public key (the signing key): it tells keys apart without revealing them.
"""

import base64
import hashlib
import hmac
from collections.abc import Iterable

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment
from psycopg import sql

from adapters.startup import StartupError

EVENT_KEY = "event_cipher_key"
SIGNING_KEY = "jwt_signing_key"
LABEL = b"imaging-bridge key check v1"


class KeyMismatchError(StartupError):
    """The event key is not the one this database's log was written with."""


def event_key_check(key_b64: str) -> str:
    """The check value of a base64 AES key."""
    return hmac.new(base64.b64decode(key_b64), LABEL, hashlib.sha256).hexdigest()[:16]


def signing_key_check(key: Ed25519PrivateKey) -> str:
    """The check value of an Ed25519 signing key (from its public half)."""
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(LABEL + public).hexdigest()[:16]


def check_keys(
    url: str,
    *,
    event_key: str,
    event_key_source: str,
    signing_key: Ed25519PrivateKey,
    event_tables: Iterable[str],
) -> list[str]:
    """Compare both keys with the values recorded for this database (recording them the
    first time). Raises KeyMismatchError for another event key; returns the warnings to
    show (a changed signing key)."""
    given = event_key_check(event_key)
    signing = signing_key_check(signing_key)
    warnings: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        recorded = dict(conn.execute("SELECT name, check_value FROM key_checks").fetchall())
        if EVENT_KEY not in recorded:
            if not _reads_stored_events(conn, event_key, event_tables):
                raise KeyMismatchError(
                    f"{event_key_source} cannot decrypt the events already in this database:"
                    " start with the key kept with this database"
                )
            recorded[EVENT_KEY] = _record(conn, EVENT_KEY, given)
        if recorded[EVENT_KEY] != given:
            raise KeyMismatchError(
                f"{event_key_source} is not the key this database was started with (key check"
                f" {given}, recorded {recorded[EVENT_KEY]}): start with the key kept with"
                " this database"
            )
        previous = recorded.get(SIGNING_KEY)
        if previous is None:
            _record(conn, SIGNING_KEY, signing)
        elif previous != signing:
            conn.execute(
                "UPDATE key_checks SET check_value = %s, recorded_at = now() WHERE name = %s",
                (signing, SIGNING_KEY),
            )
            warnings.append(
                "the access-token signing key (JWT_PRIVATE_KEY) changed since the last start:"
                " access tokens signed before are refused (clients refresh or sign in again)"
            )
    return warnings


def _record(conn: psycopg.Connection[tuple[str, str]], name: str, value: str) -> str:
    """Record ``value`` unless a concurrent start recorded one first; the recorded one."""
    conn.execute(
        "INSERT INTO key_checks (name, check_value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (name, value),
    )
    row = conn.execute("SELECT check_value FROM key_checks WHERE name = %s", (name,)).fetchone()
    return str(row[0]) if row else value


def _reads_stored_events(
    conn: psycopg.Connection[tuple[str, str]], key_b64: str, tables: Iterable[str]
) -> bool:
    """Whether ``key_b64`` decrypts the first stored event of each existing events table
    (with the library's own cipher, the one that wrote them)."""
    cipher = AESCipher(Environment(env={AESCipher.CIPHER_KEY: key_b64}))
    for table in tables:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if not exists or not exists[0]:
            continue
        row = conn.execute(
            sql.SQL("SELECT state FROM {} ORDER BY notification_id LIMIT 1").format(
                sql.Identifier(table)
            )
        ).fetchone()
        if row is None:
            continue
        try:
            cipher.decrypt(bytes(row[0]))  # type: ignore[arg-type]
        except ValueError:  # the library's "Invalid cipher tag" (or a damaged layout)
            return False
    return True
