"""Keyed digests of secrets and of patient data that must be found again without being
stored: activation codes, and the name + birth date a staff search looks up.

An HMAC-SHA256 under a key derived from the event key for one purpose: equal inputs
give equal digests, and without the key nobody can confirm a guess against them (a
plain hash of a name and a birth date could be reversed by trying them all).
"""

import base64
import hashlib
import hmac
import unicodedata
from datetime import date


class KeyedDigest:
    def __init__(self, key: bytes, purpose: str) -> None:
        self._key = hmac.new(key, f"imaging-bridge/{purpose}/v1".encode(), hashlib.sha256).digest()

    @classmethod
    def from_cipher_key(cls, cipher_key: str, purpose: str) -> "KeyedDigest":
        """``cipher_key``: the base64 event key (``EVENT_CIPHER_KEY``)."""
        return cls(base64.b64decode(cipher_key), purpose)

    def hex(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def normalise_name(name: str) -> str:
    """Case, accents and spacing do not matter when staff look a name up."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.split())


def name_key(family_name: str, birth_date: date) -> str:
    """What the staff search indexes (before the keyed digest): family name and birth date."""
    return f"{normalise_name(family_name)}|{birth_date.isoformat()}"
