"""A web push service on loopback (RFC 8030), and browsers that subscribe to it.

A subscription is made as a browser makes one: a fresh P-256 key pair and a 16-byte
auth secret (RFC 8291), bound to the application server key it was created with. A push
is accepted only with a VAPID Authorization (RFC 8292: ``vapid t=<JWT>,k=<key>``) whose
ES256 JWT verifies under ``k``, names this service's origin as ``aud``, has a ``sub`` and
expires within 24 hours, and whose ``k`` is that subscription's server key (else 401 /
403); the aes128gcm body is decrypted with the subscription's private key
(``http_ece``) and kept. Answers are 201 with a Location, or what the test scripted
(404, 410, 429 with Retry-After, 5xx); after a 410 the subscription stays gone.
"""

import base64
import json
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from application.channels import PushKeys
from tests.providers.loopback_http import LoopbackHttp, Reply, Request


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What ``pushManager.subscribe`` gives a page: an endpoint and keys."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    server_key: str  # the applicationServerKey it was made with

    @property
    def token(self) -> str:
        return self.endpoint.rsplit("/", 1)[1]

    @property
    def keys(self) -> PushKeys:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return PushKeys(p256dh=b64url(point), auth=b64url(self.auth))


@dataclass(frozen=True)
class ReceivedPush:
    token: str
    ttl: str
    urgency: str
    topic: str
    claims: dict[str, object]
    data: bytes  # decrypted


@dataclass
class PushService:
    """``with PushService() as push:`` serves at ``push.origin``."""

    received: list[ReceivedPush] = field(default_factory=list)
    subscriptions: dict[str, BrowserSubscription] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    _script: dict[str, list[tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _http: LoopbackHttp | None = None

    @property
    def origin(self) -> str:
        assert self._http is not None
        return self._http.base_url

    def subscribe(self, application_server_key: str) -> BrowserSubscription:
        """A new subscription, as a browser would make it for that server key."""
        token = secrets.token_urlsafe(16)
        subscription = BrowserSubscription(
            endpoint=f"{self.origin}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=secrets.token_bytes(16),
            server_key=application_server_key,
        )
        self.subscriptions[token] = subscription
        return subscription

    def answer_next(self, subscription: BrowserSubscription, status: int, **headers: str) -> None:
        """The next push to ``subscription`` gets ``status`` (and headers, ``_`` for ``-``)."""
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        self._script[subscription.token].append((status, named))

    def __enter__(self) -> "PushService":
        self._http = LoopbackHttp(self._answer).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._http is not None
        self._http.__exit__(*exc)

    def _answer(self, request: Request) -> Reply:
        token = request.path.removeprefix("/push/")
        subscription = self.subscriptions.get(token)
        if request.method != "POST" or subscription is None:
            return Reply(404)
        if token in self.gone:
            return Reply(410)
        claims, refusal = self._vapid(request, subscription)
        if refusal:
            return refusal
        if "ttl" not in request.headers:
            return Reply(400, b"TTL header required")
        if request.headers.get("content-encoding") != "aes128gcm":
            return Reply(415)
        try:
            data = http_ece.decrypt(
                request.body,
                private_key=subscription.private_key,
                auth_secret=subscription.auth,
                version="aes128gcm",
            )
        except Exception:  # noqa: BLE001 - any decryption failure is the sender's fault
            return Reply(400, b"cannot decrypt")
        if self._script[token]:
            status, headers = self._script[token].pop(0)
            if status == 410:
                self.gone.add(token)
            return Reply(status, headers=headers)
        self.received.append(
            ReceivedPush(
                token=token,
                ttl=request.headers["ttl"],
                urgency=request.headers.get("urgency", ""),
                topic=request.headers.get("topic", ""),
                claims=claims,
                data=data,
            )
        )
        return Reply(201, headers={"Location": f"{self.origin}/message/{secrets.token_hex(8)}"})

    def _vapid(
        self, request: Request, subscription: BrowserSubscription
    ) -> tuple[dict[str, object], Reply | None]:
        scheme, _, rest = request.headers.get("authorization", "").partition(" ")
        parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        if scheme.lower() != "vapid" or not {"t", "k"} <= parts.keys():
            return {}, Reply(401, b"VAPID authorization required")
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
            claims = jwt.decode(
                parts["t"],
                key,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except (ValueError, jwt.PyJWTError) as error:
            return {}, Reply(401, json.dumps({"error": str(error)}).encode())
        if int(claims["exp"]) > time.time() + 24 * 3600:
            return {}, Reply(401, b"exp more than 24 hours ahead")
        if parts["k"] != subscription.server_key:
            return {}, Reply(403, b"not the key this subscription was made with")
        return claims, None
