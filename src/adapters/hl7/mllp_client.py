"""A blocking MLLP client: send an HL7 message, read its ACK, classify the outcome.

Outcomes follow the delivery's vocabulary: the ACK's MSA-1 AA/CA -> accepted,
AE/CE -> retryable rejection, AR/CR -> permanent rejection; no connection -> not sent;
sent but no (complete) answer in time, or the connection dropped -> no answer.
"""

import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from adapters.hl7.framing import Deframer, frame
from domain.ris.message_delivery import (
    ACCEPTED,
    NO_ANSWER,
    NOT_SENT,
    REJECTED_PERMANENT,
    REJECTED_RETRYABLE,
)

CONNECT_TIMEOUT = 5.0
REUSE_WITHIN = 30.0  # seconds an idle connection is kept for the next message
MSA_OUTCOMES = {
    "AA": ACCEPTED,
    "CA": ACCEPTED,
    "AE": REJECTED_RETRYABLE,
    "CE": REJECTED_RETRYABLE,
    "AR": REJECTED_PERMANENT,
    "CR": REJECTED_PERMANENT,
}


@dataclass(frozen=True)
class SendResult:
    outcome: str
    code: str  # MSA-1, or a short transport code
    detail: str  # MSA-3 / ERR text, or the transport error


def classify_ack(ack: str, control_id: str) -> SendResult:
    """The outcome an ACK's MSA segment gives (an unreadable ACK counts as AE)."""
    segments = [s for s in ack.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 4:
        return SendResult(REJECTED_RETRYABLE, "ACK?", "the answer is not an HL7 message")
    separator = segments[0][3]
    for segment in segments:
        fields = segment.split(separator)
        if fields[0] == "MSA" and len(fields) > 1:
            code = fields[1].strip().upper()
            detail = fields[3] if len(fields) > 3 else ""
            if len(fields) > 2 and fields[2] and fields[2] != control_id:
                return SendResult(
                    REJECTED_RETRYABLE, code, f"ACK for another message ({fields[2]})"
                )
            errors = [s for s in segments if s.startswith("ERR")]
            if errors and not detail:
                detail = errors[0]
            outcome = MSA_OUTCOMES.get(code, REJECTED_RETRYABLE)
            return SendResult(outcome, code, detail)
    return SendResult(REJECTED_RETRYABLE, "ACK?", "the answer has no MSA segment")


class MllpClient:
    """Sends messages over one connection per thread, kept open between messages.

    A connection is used again only after an exchange that ended cleanly (one ACK
    frame, nothing after it, AA/CA), if it was used in the last ``reuse_within``
    seconds and if the peer has not closed it or sent anything since (checked just
    before the send). Anything else closes it and the next message opens a new one, so
    a peer that closes idle connections costs a reconnect, not an ambiguous message. A
    connection that breaks after the message went out (no ACK, a reset) still makes
    the outcome unknown: no answer, as with a connection per message.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
        reuse_within: float = REUSE_WITHIN,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls
        self.reuse_within = reuse_within
        self._local = threading.local()  # this thread's open connection, if any

    def send(self, message: str, control_id: str) -> SendResult:
        sock = self._open_connection()
        if isinstance(sock, SendResult):
            return sock
        try:
            sock.settimeout(self.timeout)
            sock.sendall(frame(message.encode("utf-8")))
        except OSError as error:
            self.close()
            # Part of the message may have left us: its fate is unknown.
            return SendResult(NO_ANSWER, "SEND", f"connection failed while sending: {error}")
        result, clean = self._read_ack(sock, control_id)
        if clean and result.outcome == ACCEPTED:
            self._local.used = time.monotonic()
        else:
            self.close()
        return result

    def close(self) -> None:
        """Close this thread's connection (the next message opens a new one)."""
        sock: socket.socket | None = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()

    def _open_connection(self) -> "socket.socket | SendResult":
        """This thread's connection if it can carry another message, else a new one (or
        why none could be opened)."""
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is not None:
            idle = time.monotonic() - self._local.used
            if idle < self.reuse_within and not _closed_or_talking(sock):
                return sock
            self.close()
        try:
            raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        except OSError as error:
            return SendResult(NOT_SENT, "CONNECT", f"cannot connect: {error}")
        sock = raw
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(raw, server_hostname=self.host)
            except (OSError, ssl.SSLError) as error:
                raw.close()
                return SendResult(NOT_SENT, "TLS", f"TLS handshake failed: {error}")
        self._local.sock = sock
        return sock

    def _read_ack(self, sock: socket.socket, control_id: str) -> tuple[SendResult, bool]:
        """The first frame the peer answers with (read as tolerantly as the listener
        reads: without its final CR, after junk), classified; and whether the exchange
        ended cleanly (that frame alone, nothing before or after it)."""
        deframer = Deframer()
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    detail = "connection closed before the ACK"
                    return SendResult(NO_ANSWER, "CLOSED", detail), False
                frames = deframer.feed(chunk)
                if frames:
                    ack = frames[0].payload.decode("utf-8", errors="replace")
                    clean = len(frames) == 1 and not deframer.in_frame and not deframer.discarded
                    return classify_ack(ack, control_id), clean
        except TimeoutError:
            return SendResult(NO_ANSWER, "TIMEOUT", f"no ACK within {self.timeout:g}s"), False
        except OSError as error:
            detail = f"connection failed awaiting the ACK: {error}"
            return SendResult(NO_ANSWER, "RECV", detail), False


def _closed_or_talking(sock: socket.socket) -> bool:
    """Whether the peer closed the connection, reset it or sent something unasked since
    the last exchange (it is readable): in each case it cannot carry the next message."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)
