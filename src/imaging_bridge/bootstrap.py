"""The composition root: ``build(settings, parts)`` wires every application, adapter and
projection once and starts the parts a process runs. Every command, the ASGI factory
and the tests get their runtime from here; nothing else reads configuration.
"""

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg_pool import ConnectionPool
from py_vapid import Vapid

from adapters.access_log import BatchingAccessLog
from adapters.at_rest import AtRestCipher
from adapters.break_glass import PostgresAlertReader, PostgresBreakGlassStore
from adapters.calendar_gate import AdvisoryLockGate
from adapters.channels.sms_callbacks import TwilioCallbacks
from adapters.channels.vapid_keys import VapidKeyError, application_server_key, vapid_of
from adapters.channels.web_push import valid_keys
from adapters.clock import SystemClock
from adapters.database import (
    NoDatabaseError,
    embedded_exists,
    embedded_pgdata,
    ensure_database,
    eventsourcing_env,
    reader_pool,
    start_embedded,
)
from adapters.event_store import TOPIC as EVENT_STORE_RECORDER
from adapters.hl7.destinations import Destination
from adapters.hl7.extract import Hl7Extractor
from adapters.hl7.inbound_store import PostgresInboundStore
from adapters.hl7.listener import (
    BackgroundListener,
    ListenerSetupError,
    listener_config,
    ssl_context_from,
)
from adapters.hl7.processor import InboundProcessors
from adapters.key_checks import check_keys
from adapters.keys import load_or_create_cipher_key
from adapters.leadership import Leadership
from adapters.limits import PostgresRateLimiter, PostgresThrottle
from adapters.migrations import apply_migrations, migrations_dir
from adapters.passwords import Argon2PasswordHasher
from adapters.second_factor import PyotpSecondFactor
from adapters.sessions import PostgresOneTimeUse, PostgresSessionStore
from adapters.settings import Settings
from adapters.startup import StartupError
from adapters.tokens import JwtSigner, PostgresRefreshTokenStore, load_or_create_key
from adapters.viewer_tokens import JwtViewerTokens, jwks
from application.access import StaffAccess
from application.activation import PURPOSE as ACTIVATION_PURPOSE
from application.activation import Activation
from application.appointment_details import AppointmentDetails
from application.auth import AuthService, SessionLimits
from application.browser_sessions import BrowserSessions
from application.catalog import Catalog
from application.communications.records import Communications
from application.digests import KeyedDigest
from application.messaging import Messaging, MessagingLog
from application.notices.password_resets import QueuedPasswordResets
from application.patient_merges import PatientMerges
from application.patient_search import PatientSearch
from application.ports import Clock, PasswordHasher
from application.preferences import Preferences
from application.registry import Registry
from application.ris.deliveries import Deliveries
from application.ris.delivery_desk import DeliveryDesk
from application.ris.inbound import InboundEffects, InboundSettings
from application.ris.inbound_desk import Hl7Inbound
from application.ris.inbound_ports import InboundHandler
from application.ris.patient_records import PatientRecords, ViewerSettings
from application.scheduling import BookingLimits, Scheduling
from application.services import Services
from application.slot_answers import SlotAnswers
from application.slot_search import SlotSearch
from application.sms_hooks import SmsHooks
from domain.errors import DomainError
from imaging_bridge.outbound import Outbound, destinations_of
from projections.appointment_history import PostgresAppointmentReader
from projections.availability import PostgresBusyReader, PostgresSearchVersions
from projections.catalog_cache import CachedCatalogReader
from projections.deliveries_view import PostgresDeliveryReader
from projections.orders_view import PostgresOrderReader
from projections.patient_lookup import PostgresPatientLookup
from projections.patient_notices import PostgresNoticeRows
from projections.patient_phones import PostgresPhoneIndex
from projections.patient_records import PostgresPatientRecords
from projections.runners import Projections
from projections.secure_threads import PostgresThreadReader

log = structlog.get_logger(__name__)

CREATES = "serve, migrate or staff create"
READ_MODELS_LEADER = "read-models"


@dataclass(frozen=True)
class Parts:
    """What a process runs besides answering calls to its services."""

    projections: bool = True  # keep the read models up to date from the logs
    inbound: bool = False  # apply stored inbound HL7 messages (the processing stage)
    listener: bool = False  # receive HL7 over MLLP (stores, then ACKs)
    policy: bool = False  # turn events into outbound deliveries
    pump: bool = False  # hand due deliveries to the task queue
    workers: int = 0  # threads sending deliveries
    lead: bool = False
    """Run the once-only work (read models, outbound policies) only while this process
    leads the processes on its database (``adapters.leadership``), so that several
    ``serve`` processes or hosts can share one; the rest runs in every one of them."""


SERVE = Parts(
    projections=True, inbound=True, listener=True, policy=True, pump=True, workers=2, lead=True
)
"""Everything: ``imaging-bridge serve``."""
TOOL = Parts(projections=False)
"""Nothing in the background: operator commands and API worker processes."""


def database_url(settings: Settings, *, create: bool) -> str:
    """The configured server's database, or the embedded server's (started if needed).
    Without ``create``, a database that does not exist yet is NoDatabaseError, naming
    where it was looked for, instead of a new empty one."""
    if settings.database_url:
        try:
            ensure_database(settings.database_url, create=create)
        except NoDatabaseError as error:
            raise NoDatabaseError(f"{error} (DATABASE_URL); create it with {CREATES}") from None
        return settings.database_url
    if not create and not embedded_exists(settings.data_dir):
        raise NoDatabaseError(
            f"no database: DATABASE_URL is unset and the data folder"
            f" {settings.data_dir.resolve()} holds no embedded PostgreSQL"
            f" ({embedded_pgdata(settings.data_dir).name}/); give --data-dir or DATABASE_URL,"
            f" or create one with {CREATES}"
        )
    log.info("embedded_postgres_starting", data_dir=str(settings.data_dir))
    url = start_embedded(settings.data_dir)
    ensure_database(url, create=create)
    return url


@dataclass
class Health:
    pool: ConnectionPool[Any]
    projections: Projections

    def database_ok(self) -> bool:
        try:
            with self.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False
        return True

    def projections_ok(self) -> bool:
        try:
            return self.projections.healthy()
        except Exception:  # noqa: BLE001 - a read model that cannot be asked is not ready
            return False

    def read_models(self) -> dict[str, dict[str, int]]:
        try:
            parked = {n: len(rows) for n, rows in self.projections.parked().items() if rows}
            return {"behind": self.projections.behind(), "parked": parked}
        except Exception:  # noqa: BLE001 - readyz says not ready already; nothing to name
            return {"behind": {}, "parked": {}}


@dataclass
class Runtime:
    """Everything one process runs, and how to stop it cleanly."""

    settings: Settings
    url: str
    env: dict[str, str]
    services: Services
    projections: Projections
    pool: ConnectionPool[Any]
    inbound: InboundHandler
    cipher: AtRestCipher  # stored inbound HL7, sealed with the event key
    destinations: list[Destination] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    """Warnings for the operator, found while starting (e.g. a changed signing key)."""
    migrations: list[str] = field(default_factory=list)
    """The migrations this start applied."""
    vapid: Vapid | None = None
    """The VAPID key pushes are signed with (the one ``GET /v1/push/public-key`` gives)."""
    listener: BackgroundListener | None = None
    outbound: list[Outbound] = field(default_factory=list)
    closed: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _leadership: Leadership | None = None

    def start(self, parts: Parts) -> "Runtime":
        """Start ``parts``; on any failure, stop what started and raise."""
        try:
            if parts.projections and parts.lead:
                self._leadership = Leadership(
                    self.url, READ_MODELS_LEADER, self.projections.start, self.projections.stop
                ).begin()
            elif parts.projections:
                self.projections.start()
            if parts.listener:
                self._start_listener()
            if parts.inbound:
                self._start_inbound()
            if parts.policy or parts.pump or parts.workers:
                self.start_outbound(
                    policy=parts.policy, pump=parts.pump, workers=parts.workers, lead=parts.lead
                )
        except BaseException:
            self.close()
            raise
        return self

    def start_outbound(
        self,
        settings: Settings | None = None,
        *,
        policy: bool = True,
        pump: bool = True,
        workers: int = 2,
        pump_interval: float = 0.2,
        clock: Clock | None = None,
        lead: bool = False,
    ) -> Outbound:
        """Start an outbound part on this runtime (with other ``settings`` or ``clock``,
        e.g. other destinations, in tests); stopped with the runtime."""
        outbound = Outbound(
            self.env,
            self.url,
            clock or self.services.clock,
            settings or self.settings,
            policy=policy,
            lead=lead,
            pump=pump,
            workers=workers,
            pump_interval=pump_interval,
            deliveries=self.services.deliveries.deliveries,
            patients=self.services.registry.patient_by_id,
            follow_ups=self.services.preferences,
        )
        self.outbound.append(outbound)
        return outbound.start()

    def _start_listener(self) -> None:
        settings = self.settings
        try:
            self.listener = BackgroundListener(
                self.url,
                listener_config(settings),
                cipher=self.cipher,
                ssl_context=ssl_context_from(settings),
            ).start()
        except ListenerSetupError as error:
            raise StartupError(str(error)) from None
        except OSError as error:
            raise StartupError(
                f"cannot listen for HL7 on {settings.host}:{settings.mllp_port}:"
                f" {error.strerror or error}"
            ) from None

    def _start_inbound(self) -> None:
        """Apply stored inbound HL7 messages on background threads, in order per patient."""
        processors = InboundProcessors(
            self.url, self.inbound, self.cipher, self.settings.hl7_inbound_processors
        )
        thread = threading.Thread(
            target=processors.run, args=(self._stop,), name="hl7-inbound", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for outbound in reversed(self.outbound):
            outbound.stop()
        if self.listener is not None:
            self.listener.stop()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        # Write every queued access-log entry while the pool is still open.
        self.services.access_log.close()
        if self._leadership is not None:
            self._leadership.end()  # stops the read models when this process led
            self._leadership = None
        self.projections.stop()
        for app in (
            self.services.catalog,
            self.services.scheduling,
            self.services.registry,
            self.services.deliveries.deliveries,
            self.services.messaging.log,
        ):
            app.close()
        self.pool.close()


def build(
    settings: Settings,
    parts: Parts = Parts(),
    *,
    url: str | None = None,
    create: bool = True,
    migrate: bool = True,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
) -> Runtime:
    """Prepare the database (``prepare``), wire every service and start ``parts``.
    StartupError (one line for the operator) when it cannot."""
    ready = prepare(settings, url=url, create=create, migrate=migrate)
    runtime = _wire(
        settings, ready.url, ready.env, ready.signing_key, hasher, clock, seal_old_rows=migrate
    )
    runtime.destinations = ready.destinations
    runtime.notices = ready.notices
    runtime.migrations = ready.migrations
    return runtime.start(parts)


@dataclass(frozen=True)
class Prepared:
    """What every process starts from: its database, found and migrated; the library's
    environment (with the event key); the signing key; the operator's notices."""

    url: str
    env: dict[str, str]
    signing_key: Ed25519PrivateKey
    destinations: list[Destination]
    notices: list[str]
    migrations: list[str]


def prepare(
    settings: Settings, *, url: str | None = None, create: bool = True, migrate: bool = True
) -> Prepared:
    """Find the database (creating it only with ``create``), migrate it (unless another
    process does: ``migrate=False``) and check the keys against it. StartupError (one
    line for the operator) when it cannot."""
    try:
        destinations = destinations_of(settings)
    except DomainError as error:
        raise StartupError(f"HL7_DESTINATIONS: {error.detail}") from None
    if url is None:
        url = database_url(settings, create=create)
    else:
        ensure_database(url, create=create)
    applied = apply_migrations(url, migrations_dir(settings.migrations_dir)) if migrate else []
    env = eventsourcing_env(url, settings.db_pool_size)
    if not migrate:
        # Another process (the one that started this worker) made every table already;
        # concurrent CREATE statements from several workers would trip over each other.
        env["CREATE_TABLE"] = "n"
    env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
    # Saves in one round trip; subscriptions (the outbound policies' runners) that sleep
    # until their log grows.
    env["APPLICATION_RECORDER_TOPIC"] = EVENT_STORE_RECORDER
    env["CIPHER_KEY"], signing_key = _keys(settings)
    notices = check_keys(
        url,
        event_key=env["CIPHER_KEY"],
        event_key_source=(
            "EVENT_CIPHER_KEY"
            if settings.event_cipher_key
            else f"the development event key in {Path(settings.data_dir) / 'dev-event-key'}"
        ),
        signing_key=signing_key,
        event_tables=[
            f"{app.name}_events"
            for app in (Catalog, Scheduling, Registry, Deliveries, MessagingLog)
        ],
    )
    for notice in notices:
        log.warning("startup_notice", notice=notice)
    return Prepared(url, env, signing_key, destinations, notices, applied)


def vapid_key(settings: Settings) -> Vapid:
    """The VAPID key pushes are signed with (StartupError naming a bad one)."""
    try:
        return vapid_of(settings)
    except VapidKeyError as error:
        raise StartupError(f"VAPID_PRIVATE_KEY: {error}") from None


def preferences_service(
    registry: Registry,
    pool: ConnectionPool[Any],
    env: dict[str, str],
    clock: Clock,
    sync: Projections,
    vapid: Vapid,
) -> Preferences:
    """Patients' contact preferences (the API's, and where the notice worker reports
    addresses a provider says are gone)."""
    return Preferences(
        registry=registry,
        phones=PostgresPhoneIndex(pool, env["CIPHER_KEY"]),
        clock=clock,
        sync=sync,
        valid_keys=valid_keys,
        push_public_key=application_server_key(vapid),
    )


def _keys(settings: Settings) -> tuple[str, Ed25519PrivateKey]:
    """The event key and the signing key: from settings, or generated into the data
    folder in development and test."""
    allow_generate = settings.development_like
    cipher = settings.event_cipher_key
    signing = settings.jwt_private_key
    return (
        load_or_create_cipher_key(
            cipher.get_secret_value() if cipher else None,
            settings.data_dir,
            allow_generate=allow_generate,
        ),
        load_or_create_key(
            signing.get_secret_value() if signing else None,
            settings.data_dir,
            allow_generate=allow_generate,
        ),
    )


def _patient_records(
    settings: Settings, pool: ConnectionPool[Any], signing_key: Ed25519PrivateKey, clock: Clock
) -> PatientRecords:
    """Orders and results for patients, with links to the viewer RESULT_VIEWER_URL names."""
    return PatientRecords(
        PostgresOrderReader(pool),
        JwtViewerTokens(signing_key, settings.jwt_key_id),
        ViewerSettings(
            url_template=settings.result_viewer_url,
            audience=settings.result_viewer_audience,
            lifetime=timedelta(seconds=settings.result_link_seconds),
        ),
        clock,
    )


def _wire(
    settings: Settings,
    url: str,
    env: dict[str, str],
    signing_key: Ed25519PrivateKey,
    hasher: PasswordHasher | None,
    clock: Clock | None,
    *,
    seal_old_rows: bool,
) -> Runtime:
    clock = clock or SystemClock()
    hasher = hasher or Argon2PasswordHasher()
    vapid = vapid_key(settings)
    # Catalog aggregates change rarely and every booking reads several: keep them cached
    # (the library fast-forwards a cached aggregate with any newer events before use).
    catalog = Catalog({**env, "AGGREGATE_CACHE_MAXSIZE": "5000"})
    pool = reader_pool(url, settings.db_pool_size)
    appointments = PostgresAppointmentReader(pool)
    registry = Registry(env, hasher=hasher, clock=clock)
    gate = AdvisoryLockGate(url)
    scheduling = Scheduling(
        env,
        catalog=catalog,
        clock=clock,
        bookings=appointments,
        limits=BookingLimits(
            per_exam_type=settings.max_bookings_per_exam_type,
            overall=settings.max_bookings_overall,
            requests_per_hour=settings.booking_requests_per_hour,
        ),
        survivor=registry.surviving_id,
        gate=gate,
    )
    deliveries = Deliveries(env)
    cipher = AtRestCipher(env["CIPHER_KEY"])
    inbound_store = PostgresInboundStore(pool, cipher)
    if seal_old_rows:
        inbound_store.seal_rows_in_clear()  # any stored before migration 0016
    messaging_log = MessagingLog(env)
    # The read models follow these applications' logs through their own pools.
    projections = Projections(
        env, {app.name: app for app in (catalog, scheduling, registry, deliveries, messaging_log)}
    )
    signer = JwtSigner(
        signing_key, settings.jwt_key_id, timedelta(minutes=settings.access_token_minutes)
    )
    throttle = PostgresThrottle(pool)
    staff_access = StaffAccess(appointments, PostgresBreakGlassStore(pool), clock)
    merges = PatientMerges(scheduling, PostgresPatientRecords(pool), projections)
    sessions = PostgresSessionStore(pool)
    refresh_tokens = PostgresRefreshTokenStore(pool)
    limits = SessionLimits()
    auth = AuthService(
        registry=registry,
        hasher=hasher,
        signer=signer,
        sessions=sessions,
        refresh_tokens=refresh_tokens,
        second_factor=PyotpSecondFactor(),
        one_time=PostgresOneTimeUse(pool),
        throttle=throttle,
        resets=QueuedPasswordResets(deliveries),
        clock=clock,
        limits=limits,
    )
    catalog_view = CachedCatalogReader(pool)
    access_log = BatchingAccessLog(pool)
    slots = SlotSearch(catalog_view, PostgresBusyReader(pool), clock)
    services = Services(
        catalog=catalog,
        scheduling=scheduling,
        registry=registry,
        auth=auth,
        slots=slots,
        slot_answers=SlotAnswers(slots, PostgresSearchVersions(pool), clock),
        appointments=appointments,
        appointment_details=AppointmentDetails(catalog_view, catalog),
        catalog_view=catalog_view,
        sync=projections,
        clock=clock,
        health=Health(pool, projections),
        access_log=access_log,
        rate_limiter=PostgresRateLimiter(pool),
        staff_access=staff_access,
        hl7_inbound=Hl7Inbound(inbound_store, clock, access_log),
        deliveries=DeliveryDesk(deliveries, PostgresDeliveryReader(pool), clock, access_log),
        alerts=PostgresAlertReader(pool),
        records=_patient_records(settings, pool, signing_key, clock),
        jwks=jwks(signer.public_keys()),
        activation=Activation(
            registry=registry,
            merges=merges,
            digest=KeyedDigest.from_cipher_key(env["CIPHER_KEY"], ACTIVATION_PURPOSE),
            hasher=hasher,
            throttle=throttle,
            clock=clock,
        ),
        patient_search=PatientSearch(registry, PostgresPatientLookup(pool, env["CIPHER_KEY"])),
        communications=Communications(
            PostgresNoticeRows(pool),
            deliveries,
            clock,
            base_url=settings.base_url,
            centre_name=settings.centre_name,
        ),
        browser=BrowserSessions(
            registry=registry,
            sessions=sessions,
            refresh_tokens=refresh_tokens,
            signer=signer,
            clock=clock,
            limits=limits,
        ),
        preferences=preferences_service(registry, pool, env, clock, projections, vapid),
        messaging=Messaging(
            messaging_log, PostgresThreadReader(pool), staff_access, registry, clock
        ),
        sms_hooks=SmsHooks(
            deliveries,
            TwilioCallbacks(
                token.get_secret_value() if (token := settings.twilio_auth_token) else ""
            ),
            clock,
            public_base_url=settings.base_url,
            centre_name=settings.centre_name,
        ),
    )
    services.sms_hooks.consent = services.preferences
    inbound = InboundEffects(
        registry=registry,
        scheduling=scheduling,
        catalog=catalog,
        reader=Hl7Extractor(),
        settings=InboundSettings(),
        merges=merges,
    )
    return Runtime(settings, url, env, services, projections, pool, inbound, cipher, vapid=vapid)
