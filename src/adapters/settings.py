"""Configuration, read once from the environment (and a .env file if present).

This is the only module that reads the environment: everything else gets its values
from a ``Settings`` (a test in ``tests/test_quality.py`` keeps it so).
"""

import base64
import binascii
import os
import re
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Literal, Self

import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.conninfo import conninfo_to_dict
from pydantic import (
    Field,
    FilePath,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.hl7.senders import parse_senders

ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
VIEWER_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\s]*)?$", re.IGNORECASE)
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
BASE_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~\-/]*)?$")
DATABASE_SCHEMES = ("postgresql://", "postgres://")
BROKER_SCHEMES = ("amqp://", "amqps://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; without it an embedded server runs in the data folder",
    )
    data_dir: Path = Path(".imaging-bridge")
    migrations_dir: Path | None = Field(
        default=None, description="the SQL migrations; the checkout's migrations/ when unset"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    mllp_port: int = Field(default=2575, ge=0, le=65535, description="0: any free port")
    jwt_private_key: SecretStr | None = Field(
        default=None, description="PEM Ed25519 private key that signs access tokens"
    )
    jwt_key_id: str = "k1"
    event_cipher_key: SecretStr | None = Field(
        default=None,
        description="base64 AES-256 key that encrypts every stored event (AES-GCM)",
    )
    public_base_url: str | None = Field(
        default=None,
        description="the portal's address as people reach it (links in messages);"
        " unset: the address serve listens on",
    )
    reset_link: str | None = Field(
        default=None,
        description="where password reset links point, {token} replaced;"
        " unset: {PUBLIC_BASE_URL}/reset-password?token={token}",
    )
    access_token_minutes: int = Field(default=15, ge=1, le=15)
    refresh_token_days: int = Field(default=14, ge=1, le=90)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    log_level: str = "INFO"
    log_json: bool = True
    tls_cert_file: FilePath | None = Field(
        default=None,
        description="PEM certificate (chain) for HTTPS; the MLLP listener serves the same one",
    )
    tls_key_file: FilePath | None = Field(default=None, description="PEM private key of it")
    tls_key_password: SecretStr | None = Field(
        default=None, description="password of TLS_KEY_FILE, if it is encrypted"
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="browser origins allowed to call the API, comma-separated; empty: no CORS",
    )
    # Outbound HL7 and its task queue.
    hl7_destinations: str = Field(
        default="",
        description="name=host:port[;version=2.5.1][;tls=1][;timeout=10], comma-separated",
    )
    broker_url: str = Field(
        default="", description="amqp:// puts delivery work on RabbitMQ; unset: PostgreSQL"
    )
    delivery_attempt_limit: int = Field(default=8, ge=1, le=1000)
    delivery_ambiguous_limit: int = Field(default=3, ge=1, le=1000)
    delivery_base_delay: float = Field(default=2.0, gt=0, description="seconds")
    delivery_max_delay: float = Field(default=600.0, gt=0, description="seconds")
    delivery_give_up_after: float = Field(default=259_200.0, gt=0, description="seconds")
    delivery_lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    outbound_handoff: Literal["local", "broker"] = Field(
        default="local",
        description="local: a process that pumps and sends hands HL7 deliveries and patient"
        " notices to its own sending threads; broker: through the task queue (for"
        " `worker --no-pump` processes)",
    )
    outbound_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="how much `serve`'s outbound child yields the CPU to the API (nice"
        " value): while patients are answered it sends with what is left; 0: equal share",
    )
    # Patient channels: e-mail, SMS, web push; the notices they carry.
    centre_name: str = Field(default="Imaging Bridge Demo Centre", min_length=1, max_length=80)
    smtp_url: SecretStr | None = Field(
        default=None,
        description="smtp://host:25, smtp+starttls://user:pass@host:587 or smtps://…:465;"
        " unset: e-mail into a Maildir under DATA_DIR",
    )
    mail_from: str = Field(default="Imaging Bridge <no-reply@imaging-bridge.invalid>")
    twilio_account_sid: str = Field(default="", description="unset: SMS into a file")
    twilio_auth_token: SecretStr | None = None
    twilio_from: str = Field(default="", description="E.164 number or Messaging Service SID")
    twilio_base_url: str = Field(
        default="", description="Twilio API base URL (tests: a local server); unset: Twilio's"
    )
    vapid_private_key: SecretStr | None = Field(
        default=None, description="PEM or base64url P-256 key; unset: one kept in DATA_DIR"
    )
    vapid_subject: str = Field(default="mailto:it@imaging-bridge.invalid")
    reminder_offsets: str = Field(
        default="72h,24h",
        description="before the exam, e.g. 72h,24h,2h (an exam type may set its own)",
    )
    default_quiet_hours: str = Field(
        default="21:00-08:00", description="HH:MM-HH:MM in the patient's zone; empty: none"
    )

    @property
    def development_like(self) -> bool:
        """Development and test runs may generate their own keys and go without TLS."""
        return self.environment != "production"

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def base_url(self) -> str:
        """PUBLIC_BASE_URL, else the address ``serve`` listens on (https with TLS)."""
        if self.public_base_url:
            return self.public_base_url
        scheme = "https" if self.tls_enabled else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def reset_link_template(self) -> str:
        """RESET_LINK when set (kept for deployments that set it), else the portal's page."""
        return self.reset_link or f"{self.base_url}/reset-password?token={{token}}"

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.rstrip("/")
        if not BASE_URL.match(value):
            raise ValueError(
                "must be an http:// or https:// address with no query, e.g."
                " https://portal.example.org"
            )
        return value

    @field_validator("reset_link")
    @classmethod
    def _reset_link(cls, value: str | None) -> str | None:
        if not value:
            return None
        if "{token}" not in value or not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) address holding {token}")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        """A ``postgresql://`` URL or a libpq ``key=value`` string; the message names the
        scheme only, as the rest may hold a password."""
        if not value:
            return None
        if "://" in value and not value.startswith(DATABASE_SCHEMES):
            raise ValueError(
                f"unsupported scheme {value.split('://', 1)[0]}://: a postgresql:// URL is"
                " expected, e.g. postgresql://user:password@host:5432/imaging_bridge"
            )
        try:
            conninfo_to_dict(value)
        except psycopg.ProgrammingError:
            raise ValueError(
                "not a PostgreSQL URL, e.g. postgresql://user:password@host:5432/imaging_bridge"
            ) from None
        return value

    @field_validator("broker_url")
    @classmethod
    def _amqp_url(cls, value: str) -> str:
        if value and not value.startswith(BROKER_SCHEMES):
            raise ValueError("must be an amqp:// or amqps:// URL, or unset for PostgreSQL")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], no path, no wildcard"
                )
        return origins

    @field_validator("jwt_private_key")
    @classmethod
    def _ed25519_pem(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            key = serialization.load_pem_private_key(
                value.get_secret_value().encode(), password=None
            )
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("must be an unencrypted Ed25519 private key in PEM")
        return value

    @field_validator("event_cipher_key")
    @classmethod
    def _aes_256_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise ValueError("must be 32 random bytes in base64 (AES-256)")
        return value

    @model_validator(mode="after")
    def _production_has_its_own_secrets(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither")
        if self.development_like:
            return self
        missing = [
            name
            for name, value in (
                ("JWT_PRIVATE_KEY", self.jwt_private_key),
                ("EVENT_CIPHER_KEY", self.event_cipher_key),
            )
            if value is None
        ]
        if missing:
            raise ValueError(
                f"ENVIRONMENT=production needs its own {' and '.join(missing)}; keys are"
                " generated into the data folder only in development and test"
            )
        return self

    # Prometheus metrics (see adapters/metrics.py): off unless METRICS_PORT is set.
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="port of the Prometheus /metrics server; unset: none; 0: any free port",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="interface the metrics server listens on"
    )
    metrics_allow: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")],
        description="client networks (CIDR, comma-separated) that may read /metrics",
    )

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [network.strip() for network in value.split(",") if network.strip()]
        return value

    # Inbound HL7 (the MLLP listener): who may send, and what a peer may hold.
    hl7_senders: str = Field(
        default="",
        description="who may send HL7: name=ADDRESS[,ADDRESS…];app=MSH-3;facility=MSH-4"
        "[;cn=CN], comma-separated; unset: loopback only in development, refused in production",
    )
    hl7_tls_cafile: FilePath | None = Field(
        default=None,
        description="CA bundle: outbound tls=1 destinations' certificates and inbound"
        " senders' client certificates (cn=) are checked against it",
    )
    mllp_idle_timeout: float = Field(
        default=300.0, gt=0, description="seconds without data before an MLLP connection closes"
    )
    mllp_frame_timeout: float = Field(
        default=30.0, gt=0, description="seconds from a frame's first byte to its end"
    )
    mllp_max_frame_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    mllp_max_connections: int = Field(default=200, ge=1, le=100_000)
    mllp_max_connections_per_address: int = Field(default=20, ge=1, le=100_000)
    mllp_max_buffered_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="bytes of unfinished frames held across all MLLP connections",
    )
    # 2: on 2 cores, 4 applied hardly faster (the registry's saves go one at a time) and
    # slowed the listener's ACKs (benchmarks/RESULTS.md, HL7 inbound in serve).
    hl7_inbound_processors: int = Field(
        default=2,
        ge=1,
        le=64,
        description="threads applying stored inbound HL7 messages in serve (in order per patient)",
    )

    @field_validator("hl7_senders")
    @classmethod
    def _readable_senders(cls, value: str) -> str:
        parse_senders(value)
        return value

    # Finding 5 of issue 9: forwarded headers only from proxies named here.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="reverse proxies (addresses or CIDR, comma-separated) whose"
        " X-Forwarded-For/-Proto are believed; unset: none, the connection's address counts",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [network.strip() for network in value.split(",") if network.strip()]
        return value

    # Per-patient booking caps (a patient booking for themselves; staff are not capped).
    max_bookings_per_exam_type: int = Field(
        default=3,
        ge=0,
        description="active upcoming bookings a patient may hold per exam type; 0: no cap",
    )
    max_bookings_overall: int = Field(
        default=10, ge=0, description="active upcoming bookings a patient may hold; 0: no cap"
    )
    booking_requests_per_hour: int = Field(
        default=30, ge=0, description="booking requests a patient may make per hour; 0: no cap"
    )

    # Links to the centre's result viewer (PACS/RIS web viewer), issue 10.
    result_viewer_url: str = Field(
        default="",
        description="the viewer's URL with {accession} and {token} placeholders, e.g."
        " https://pacs.example/viewer?study={accession}&token={token}; unset: no result links",
    )
    result_viewer_audience: str = Field(
        default="result-viewer",
        min_length=1,
        max_length=200,
        description="the aud claim of viewer tokens",
    )
    result_link_seconds: int = Field(
        default=300, ge=1, le=300, description="how long a result link is good (at most 5 min)"
    )

    @field_validator("result_viewer_url")
    @classmethod
    def _viewer_template(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        if not VIEWER_URL.match(value):
            raise ValueError("must be an http:// or https:// URL with a host")
        if "{token}" not in value:
            raise ValueError("must contain {token}, where the signed token goes")
        if set(PLACEHOLDER.findall(value)) - {"{accession}", "{token}"}:
            raise ValueError("the only placeholders are {accession} and {token}")
        return value


def settings_problem(error: ValidationError) -> str:
    """One line naming each setting that is wrong, never its value."""
    problems = []
    for problem in error.errors():
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem.get("loc", ()))
        problems.append(f"{where.upper()}: {message}" if where else message)
    return "; ".join(problems)


def hand_to_child_processes(settings: Settings) -> None:
    """Put the database and data folder of ``settings`` into this process's environment,
    where child processes started from it (``serve --workers N``) read their settings."""
    if settings.database_url:
        os.environ["DATABASE_URL"] = settings.database_url
    os.environ["DATA_DIR"] = str(settings.data_dir.resolve())


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra`` added: what a child process it starts
    (``serve --outbound process``) is given."""
    return {**os.environ, **extra}


def inherited(name: str) -> str | None:
    """A value a parent process put in this one's environment for it (``name``), not a
    setting an operator gives."""
    return os.environ.get(name)
