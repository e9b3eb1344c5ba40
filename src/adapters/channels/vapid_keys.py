"""The VAPID key (RFC 8292) that identifies us to push services.

Browsers subscribe with our public key (``application_server_key``, the
``applicationServerKey`` of ``pushManager.subscribe``); every push is signed with the
private one. Changing the key orphans every subscription, so production loads it from
configuration and development keeps one in ``DATA_DIR``.
"""

import base64
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid, VapidException

from adapters.settings import Settings

KEY_FILE = "vapid-key.pem"


class VapidKeyError(ValueError):
    """A VAPID key that cannot be read; the message never holds the key."""


def load_vapid(text: str) -> Vapid:
    """A VAPID key from PEM, or from base64url DER or raw 32-byte private value."""
    try:
        if "-----BEGIN" in text:
            return Vapid.from_pem(text.strip().encode())
        return Vapid.from_string(text.strip())
    except (ValueError, TypeError, IndexError, VapidException):
        raise VapidKeyError("the VAPID private key is not a P-256 key (PEM or base64url)") from None


def vapid_from_file(path: Path) -> Vapid:
    """The key kept in ``path`` (PEM), made there (readable by this account only) on first
    use: the development default. The file appears whole or not at all (written aside,
    then linked into place), so processes starting together all use the first one made."""
    if path.exists():
        return load_vapid(path.read_text())
    vapid = Vapid()
    vapid.generate_keys()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:  # mkstemp's file: this account only
            file.write(vapid.private_pem())
        os.link(draft, path)
    except FileExistsError:  # another process made it a moment ago: use theirs
        return load_vapid(path.read_text())
    finally:
        os.unlink(draft)
    return vapid


def application_server_key(vapid: Vapid) -> str:
    """The public key as browsers want it: base64url of the uncompressed P-256 point."""
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def vapid_of(settings: Settings) -> Vapid:
    """The key every part of a process signs pushes and answers browsers with:
    VAPID_PRIVATE_KEY when set, else the one kept in ``DATA_DIR`` (made on first use).
    VapidKeyError when the configured key cannot be read."""
    configured = settings.vapid_private_key
    if configured is not None and configured.get_secret_value().strip():
        return load_vapid(configured.get_secret_value())
    return vapid_from_file(Path(settings.data_dir) / KEY_FILE)
