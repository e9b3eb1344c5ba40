"""Encryption at rest for what we store outside the event log (raw inbound HL7 first),
with the key that encrypts the events (``EVENT_CIPHER_KEY``).

``seal`` is AES-256-GCM with a fresh 96-bit nonce and the row's identity as associated
data, so a sealed value copied onto another row does not open. ``digest`` is an
HMAC-SHA256 under a key derived (HKDF) from the same key: equal contents compare equal
(duplicate detection) without the content, or a plain hash anyone could confirm a
guess against, being stored.
"""

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
DIGEST_KEY_INFO = b"imaging-bridge/at-rest/content-digest/v1"


class UnreadableError(Exception):
    """A sealed value that does not open with this key (another key, or altered)."""


class AtRestCipher:
    """Seals and opens stored payloads; digests contents for comparison."""

    def __init__(self, cipher_key: str) -> None:
        """``cipher_key``: the base64 AES-256 key the events are encrypted with."""
        key = base64.b64decode(cipher_key, validate=True)
        if len(key) != 32:
            raise ValueError("the at-rest key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self._digest_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=DIGEST_KEY_INFO
        ).derive(key)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """``nonce || ciphertext || tag``, bound to ``context`` (e.g. the row id)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        """The plaintext of ``seal(plaintext, context)``; UnreadableError otherwise."""
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context)
        except (InvalidTag, ValueError) as error:
            raise UnreadableError("stored value does not open with this key") from error

    def digest(self, content: bytes) -> bytes:
        """HMAC-SHA256 of ``content`` under the derived digest key."""
        return hmac.new(self._digest_key, content, hashlib.sha256).digest()
