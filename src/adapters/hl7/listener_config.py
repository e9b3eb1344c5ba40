"""The MLLP listener's configuration and TLS context, built from ``Settings`` in one
place (``listener_config`` and ``ssl_context_from``) for every command that listens."""

import ssl
from dataclasses import dataclass, field

from adapters.hl7.admission import Limits
from adapters.hl7.framing import DEFAULT_MAX_FRAME
from adapters.hl7.senders import DEVELOPMENT_LOOPBACK, FORMAT, Sender, parse_senders
from adapters.settings import Settings


class ListenerSetupError(Exception):
    """The listener must not start with these settings; the message is one line."""


@dataclass(frozen=True)
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    max_frame: int = DEFAULT_MAX_FRAME  # bytes one frame may hold; more is refused (AR)
    # A connection is closed when no frame started or ended for idle_timeout seconds, and
    # when a frame is not complete frame_timeout seconds after its first byte: single
    # bytes trickling in do not keep a connection open.
    idle_timeout: float = 300.0
    frame_timeout: float = 30.0
    pool_size: int = 10
    limits: Limits = field(default_factory=Limits)
    senders: tuple[Sender, ...] = (DEVELOPMENT_LOOPBACK,)

    @property
    def senders_note(self) -> str:
        """Who may send, in one phrase for the start-up output."""
        if self.senders == (DEVELOPMENT_LOOPBACK,):
            return "HL7_SENDERS unset: only loopback peers may send"
        return "senders: " + ", ".join(sender.name for sender in self.senders)


def listener_config(settings: Settings) -> ListenerConfig:
    """The listener's configuration: address, who may send, the caps and timeouts.
    Raises ``ListenerSetupError`` when these settings must not run a listener."""
    senders = parse_senders(settings.hl7_senders)
    if not senders and not settings.development_like:
        raise ListenerSetupError(
            "ENVIRONMENT=production needs HL7_SENDERS to start the HL7 listener"
            f" (who may send: {FORMAT}, comma-separated)"
        )
    for sender in senders:
        if sender.common_name is None:
            continue
        if not settings.tls_enabled:
            raise ListenerSetupError(
                f"HL7_SENDERS entry {sender.name!r} asks for a client certificate (cn=):"
                " that needs TLS_CERT_FILE and TLS_KEY_FILE"
            )
        if settings.hl7_tls_cafile is None:
            raise ListenerSetupError(
                f"HL7_SENDERS entry {sender.name!r} asks for a client certificate (cn=):"
                " set HL7_TLS_CAFILE to the CA that signs them"
            )
    return ListenerConfig(
        host=settings.host,
        port=settings.mllp_port,
        idle_timeout=settings.mllp_idle_timeout,
        frame_timeout=settings.mllp_frame_timeout,
        max_frame=settings.mllp_max_frame_bytes,
        limits=Limits(
            max_connections=settings.mllp_max_connections,
            max_connections_per_address=settings.mllp_max_connections_per_address,
            max_buffered=settings.mllp_max_buffered_bytes,
        ),
        senders=senders or (DEVELOPMENT_LOOPBACK,),
    )


def server_ssl_context(
    cert_file: str,
    key_file: str,
    password: str | None = None,
    *,
    client_cafile: str | None = None,
    client_certificate_required: bool = False,
) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or later) for MLLP over TLS. With ``client_cafile``
    a client certificate is verified against that CA alone (never the system's CAs)
    when presented, and with ``client_certificate_required`` one must be."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file, password=password)
    if client_cafile is not None:
        context.load_verify_locations(cafile=client_cafile)
        required = client_certificate_required
        context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return context


def ssl_context_from(settings: Settings) -> ssl.SSLContext | None:
    """The MLLP TLS context from the same certificate and key HTTPS uses, if set; with
    client certificates checked against HL7_TLS_CAFILE when an HL7_SENDERS entry has cn=."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    senders = parse_senders(settings.hl7_senders)
    wants_certificates = any(sender.common_name for sender in senders)
    password = settings.tls_key_password
    return server_ssl_context(
        str(settings.tls_cert_file),
        str(settings.tls_key_file),
        password.get_secret_value() if password else None,
        client_cafile=(
            str(settings.hl7_tls_cafile) if wants_certificates and settings.hl7_tls_cafile else None
        ),
        client_certificate_required=all(sender.common_name for sender in senders),
    )
