"""A blocking MLLP client: send one HL7 message, read its ACK, classify the outcome.

Outcomes follow the delivery's vocabulary: the ACK's MSA-1 AA/CA -> accepted,
AE/CE -> retryable rejection, AR/CR -> permanent rejection; no connection -> not sent;
sent but no (complete) answer in time, or the connection dropped -> no answer.
"""

import socket
import ssl
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
    """Sends one message per connection (simple, and safe after any failure)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls

    def send(self, message: str, control_id: str) -> SendResult:
        try:
            raw = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        except OSError as error:
            return SendResult(NOT_SENT, "CONNECT", f"cannot connect: {error}")
        try:
            sock: socket.socket = raw
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(raw, server_hostname=self.host)
                except (OSError, ssl.SSLError) as error:
                    return SendResult(NOT_SENT, "TLS", f"TLS handshake failed: {error}")
            try:
                sock.settimeout(self.timeout)
                sock.sendall(frame(message.encode("utf-8")))
            except OSError as error:
                # Part of the message may have left us: its fate is unknown.
                return SendResult(NO_ANSWER, "SEND", f"connection failed while sending: {error}")
            return self._read_ack(sock, control_id)
        finally:
            raw.close()

    def _read_ack(self, sock: socket.socket, control_id: str) -> SendResult:
        """The first frame the peer answers with (read as tolerantly as the listener
        reads: without its final CR, after junk), classified."""
        deframer = Deframer()
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return SendResult(NO_ANSWER, "CLOSED", "connection closed before the ACK")
                frames = deframer.feed(chunk)
                if frames:
                    ack = frames[0].payload.decode("utf-8", errors="replace")
                    return classify_ack(ack, control_id)
        except TimeoutError:
            return SendResult(NO_ANSWER, "TIMEOUT", f"no ACK within {self.timeout:g}s")
        except OSError as error:
            return SendResult(NO_ANSWER, "RECV", f"connection failed awaiting the ACK: {error}")


def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)
