"""The key that encrypts stored events: from settings, or in development one generated
into the data folder (lose it and the development data can no longer be read)."""

import base64
import binascii
import os
from pathlib import Path

KEY_BYTES = 32


def load_or_create_cipher_key(
    configured: str | None, data_dir: Path, *, allow_generate: bool
) -> str:
    if configured:
        try:
            raw = base64.b64decode(configured, validate=True)
        except binascii.Error as error:
            raise ValueError("EVENT_CIPHER_KEY must be base64") from error
        if len(raw) != KEY_BYTES:
            raise ValueError("EVENT_CIPHER_KEY must encode 32 bytes (AES-256)")
        return configured
    if not allow_generate:
        raise ValueError("EVENT_CIPHER_KEY must be set outside development")
    path = data_dir / "dev-event-key"
    if path.exists():
        return path.read_text().strip()
    key = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key)
    return key
