"""A stand-in for Twilio's Messages API on loopback, speaking the documented endpoint:

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json
    HTTP basic auth AccountSid:AuthToken; form body To, From (or MessagingServiceSid),
    Body, StatusCallback
    201 {"sid": "SM…", "status": "queued", …}
    4xx/5xx {"code": 21211, "message": "…", "more_info": "…", "status": 400}

Failures are scripted per recipient (``fail_next``, ``stall``); it can also post a delivery status
callback to a URL, signed as Twilio documents it (``X-Twilio-Signature``: base64 of the
HMAC-SHA1, under the auth token, of the URL followed by every parameter name and value
in name order) — computed here on its own, not with the library under test.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from tests.providers.loopback_http import LoopbackHttp, Reply, Request

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
MESSAGES = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")


@dataclass(frozen=True)
class TwilioError:
    status: int
    code: int
    message: str


INVALID_NUMBER = TwilioError(400, 21211, "The 'To' number is not a valid phone number.")
UNSUBSCRIBED = TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
RATE_LIMITED = TwilioError(429, 20429, "Too Many Requests")
UNAVAILABLE = TwilioError(503, 20503, "Service Unavailable")


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature of a POST of ``params`` to ``url``."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass
class FakeTwilio:
    """``with FakeTwilio() as twilio:`` serves at ``twilio.base_url``; ``messages`` holds
    the form of every message it accepted."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    messages: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    _script: dict[str, list[TwilioError]] = field(default_factory=lambda: defaultdict(list))
    _stalled: set[str] = field(default_factory=set)
    _release: threading.Event = field(default_factory=threading.Event)
    _http: LoopbackHttp | None = None

    @property
    def base_url(self) -> str:
        assert self._http is not None
        return self._http.base_url

    def fail_next(self, to: str, *errors: TwilioError) -> None:
        """The next messages to ``to`` get these errors, in order; later ones succeed."""
        self._script[to].extend(errors)

    def stall(self, to: str) -> None:
        """Requests for ``to`` get no answer until the server stops (and create nothing)."""
        self._stalled.add(to)

    def __enter__(self) -> "FakeTwilio":
        self._http = LoopbackHttp(self._answer).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._http is not None
        self._release.set()
        self._http.__exit__(*exc)

    def _answer(self, request: Request) -> Reply:
        self.requests += 1
        match = MESSAGES.match(request.path)
        if request.method != "POST" or not match:
            return _error(TwilioError(404, 20404, "The requested resource was not found"))
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if match.group(1) != self.account_sid or request.headers.get("authorization") != expected:
            return _error(TwilioError(401, 20003, "Authenticate"))
        form = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        if not form.get("To") or not (form.get("From") or form.get("MessagingServiceSid")):
            return _error(TwilioError(400, 21604, "A 'To' and a 'From' are required."))
        if form["To"] in self._stalled:
            self._release.wait(30)
            return _error(UNAVAILABLE)
        if self._script[form["To"]]:
            return _error(self._script[form["To"]].pop(0))
        sid = "SM" + secrets.token_hex(16)
        self.messages.append({**form, "Sid": sid})
        return Reply(
            201,
            json.dumps(
                {
                    "sid": sid,
                    "account_sid": self.account_sid,
                    "to": form["To"],
                    "from": form.get("From"),
                    "messaging_service_sid": form.get("MessagingServiceSid"),
                    "body": form.get("Body", ""),
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "error_code": None,
                    "error_message": None,
                    "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
                }
            ).encode(),
            {"Content-Type": "application/json"},
        )

    def post_signed(self, url: str, params: dict[str, str], token: str | None = None) -> int:
        """POST ``params`` to ``url`` as Twilio would, signed with ``token`` (by default the
        account's auth token); the receiver's HTTP status."""
        signature = twilio_signature(token or self.auth_token, url, params)
        request = urllib.request.Request(
            url,
            data=urlencode(params).encode(),
            headers={"X-Twilio-Signature": signature},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    def post_status(self, url: str, message_sid: str, status: str, **extra: str) -> int:
        """A signed delivery status callback for ``message_sid`` to ``url``."""
        params = {
            "AccountSid": self.account_sid,
            "MessageSid": message_sid,
            "SmsSid": message_sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": "2010-04-01",
            **extra,
        }
        return self.post_signed(url, params)


def _error(error: TwilioError) -> Reply:
    body = {
        "code": error.code,
        "message": error.message,
        "more_info": f"https://www.twilio.com/docs/errors/{error.code}",
        "status": error.status,
    }
    return Reply(error.status, json.dumps(body).encode(), {"Content-Type": "application/json"})
