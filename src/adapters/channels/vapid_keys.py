"""The VAPID key (RFC 8292) that identifies us to push services.

Browsers subscribe with our public key (``application_server_key``, the
``applicationServerKey`` of ``pushManager.subscribe``); every push is signed with the
private one. Changing the key orphans every subscription, so production loads it from
configuration and development keeps one in ``DATA_DIR``.
"""

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid, VapidException

if TYPE_CHECKING:
    from adapters.settings import Settings


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
    use: the development default."""
    if path.exists():
        return load_vapid(path.read_text())
    vapid = Vapid()
    vapid.generate_keys()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(vapid.private_pem())
    return vapid


def application_server_key(vapid: Vapid) -> str:
    """The public key as browsers want it: base64url of the uncompressed P-256 point."""
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def vapid_of(settings: "Settings") -> Vapid:
    """``VAPID_PRIVATE_KEY``, else the development key kept in ``DATA_DIR/vapid.pem``."""
    configured = settings.vapid_private_key
    if configured is not None:
        return load_vapid(configured.get_secret_value())
    return vapid_from_file(Path(settings.data_dir) / "vapid.pem")
