"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

It can require STARTTLS or speak implicit TLS (with a trustme certificate), require a
login, and refuse given recipients with a scripted reply (``451 …`` or ``550 …``).
"""

import asyncio
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool  # the session was encrypted when the message came
    login: str  # who logged in, "" without a login


class _Handler:
    def __init__(self, server: "SmtpServer") -> None:
        self.server = server

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.server.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        if self.server.hang_up_after_data & set(envelope.rcpt_tos):
            server.transport.close()  # took the message, never said so
            return "421 closing"
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        login = session.auth_data.login.decode() if session.auth_data else ""
        self.server.received.append(
            ReceivedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,  # type: ignore[arg-type]
                tls=server.transport.get_extra_info("ssl_object") is not None,
                login=login,
            )
        )
        if self.server.stall_after_data & set(envelope.rcpt_tos):
            self.server.stall_after_data -= set(envelope.rcpt_tos)  # once
            self.server.stalls += 1
            while not self.server.released.is_set():  # kept it, and says nothing yet
                await asyncio.sleep(0.05)
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    """``with SmtpServer() as smtp:`` listens on 127.0.0.1:``smtp.port``.

    ``starttls``: a server-side SSL context offered through STARTTLS (and then required);
    ``implicit_tls``: a context for SMTPS (TLS from the first byte);
    ``credentials``: ``(user, password)`` a client must log in with (over TLS);
    ``refuse``: recipient -> the reply its RCPT gets, e.g. ``"550 5.1.1 No such user"``;
    ``hang_up_after_data``: recipients whose message it reads, then hangs up without a reply;
    ``stall_after_data``: recipients whose (first) message it keeps, then answers nothing
    until the server stops (``stalls`` counts them).
    """

    starttls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    credentials: tuple[str, str] | None = None
    refuse: dict[str, str] = field(default_factory=dict)
    hang_up_after_data: set[str] = field(default_factory=set)
    stall_after_data: set[str] = field(default_factory=set)
    stalls: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    received: list[ReceivedMail] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None

    def _authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        good = (
            isinstance(data, LoginPassword)
            and self.credentials is not None
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=good, handled=False, auth_data=data)

    def _smtp(self) -> SMTP:
        with warnings.catch_warnings():  # "AUTH without TLS": it is TLS, implicit
            warnings.simplefilter("ignore", UserWarning)
            return self._new_smtp()

    def _new_smtp(self) -> SMTP:
        return SMTP(
            _Handler(self),
            hostname="mail.test",
            tls_context=self.starttls,
            require_starttls=self.starttls is not None,
            authenticator=self._authenticate if self.credentials else None,
            auth_required=self.credentials is not None,
            # aiosmtpd knows of STARTTLS only: under implicit TLS the session is already
            # encrypted, so the check has nothing to add.
            auth_require_tls=self.implicit_tls is None,
        )

    def __enter__(self) -> "SmtpServer":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        create = self._loop.create_server(self._smtp, "127.0.0.1", 0, ssl=self.implicit_tls)
        self._server = asyncio.run_coroutine_threadsafe(create, self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        assert self._loop is not None
        assert self._server is not None
        assert self._thread is not None
        self.released.set()
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
