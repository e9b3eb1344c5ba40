"""The composition root: builds every application, adapter and projection once."""

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from psycopg_pool import ConnectionPool

from adapters.access_log import BatchingAccessLog
from adapters.at_rest import AtRestCipher
from adapters.break_glass import PostgresAlertReader, PostgresBreakGlassStore
from adapters.clock import SystemClock
from adapters.database import (
    ensure_database,
    eventsourcing_env,
    reader_pool,
    start_embedded,
)
from adapters.hl7.extract import Hl7Extractor
from adapters.hl7.inbound_store import PostgresInboundStore
from adapters.hl7.processor import InboundProcessor
from adapters.keys import load_or_create_cipher_key
from adapters.limits import PostgresRateLimiter, PostgresThrottle
from adapters.mailer import OutboxMailer
from adapters.migrations import apply_migrations
from adapters.passwords import Argon2PasswordHasher
from adapters.second_factor import PyotpSecondFactor
from adapters.sessions import PostgresOneTimeUse, PostgresSessionStore
from adapters.settings import Settings
from adapters.tokens import JwtSigner, PostgresRefreshTokenStore, load_or_create_key
from application.access import StaffAccess
from application.auth import AuthService, SessionLimits
from application.catalog import Catalog
from application.ports import Clock, PasswordHasher
from application.registry import Registry
from application.ris.deliveries import Deliveries
from application.ris.delivery_desk import DeliveryDesk
from application.ris.inbound import InboundEffects, InboundSettings
from application.ris.inbound_desk import Hl7Inbound
from application.ris.inbound_ports import InboundHandler
from application.scheduling import Scheduling
from application.services import Services
from application.slot_search import SlotSearch
from projections.appointment_history import PostgresAppointmentReader
from projections.availability import PostgresBusyReader
from projections.catalog_view import PostgresCatalogReader
from projections.deliveries_view import PostgresDeliveryReader
from projections.runners import Projections

log = structlog.get_logger(__name__)


def database_url(settings: Settings) -> str:
    """The configured server's URL, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    log.info("embedded_postgres_starting", data_dir=str(settings.data_dir))
    return start_embedded(settings.data_dir)


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
    closed: bool = field(default=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def process_inbound(self) -> None:
        """Apply stored inbound HL7 messages on a background thread, in arrival order."""
        processor = InboundProcessor(self.pool, self.inbound, self.cipher)
        thread = threading.Thread(
            target=processor.run, args=(self._stop,), name="hl7-inbound", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        # Write every queued access-log entry while the pool is still open.
        self.services.access_log.close()
        self.projections.stop()
        for app in (
            self.services.catalog,
            self.services.scheduling,
            self.services.registry,
            self.services.deliveries.deliveries,
        ):
            app.close()
        self.pool.close()


def build(
    settings: Settings,
    *,
    url: str | None = None,
    run_projections: bool = True,
    create_tables: bool = True,
    hasher: PasswordHasher | None = None,
    clock: Clock | None = None,
) -> Runtime:
    """Connect (starting the embedded server if needed), migrate, wire, start projections."""
    url = url or database_url(settings)
    if create_tables:
        ensure_database(url)
        apply_migrations(url)
    env = eventsourcing_env(url, settings.db_pool_size)
    if not create_tables:
        # Another process (the one that started this worker) made every table already;
        # concurrent CREATE statements from several workers would trip over each other.
        env["CREATE_TABLE"] = "n"
    production = settings.environment == "production"
    env["CIPHER_TOPIC"] = "eventsourcing.cryptography:AESCipher"
    env["CIPHER_KEY"] = load_or_create_cipher_key(
        settings.event_cipher_key.get_secret_value() if settings.event_cipher_key else None,
        settings.data_dir,
        allow_generate=not production,
    )
    cipher = AtRestCipher(env["CIPHER_KEY"])
    clock = clock or SystemClock()
    hasher = hasher or Argon2PasswordHasher()
    # Catalog aggregates change rarely and every booking reads several: keep them cached
    # (the library fast-forwards a cached aggregate with any newer events before use).
    catalog = Catalog({**env, "AGGREGATE_CACHE_MAXSIZE": "5000"})
    scheduling = Scheduling(env, catalog=catalog, clock=clock)
    registry = Registry(env, hasher=hasher, clock=clock)
    deliveries = Deliveries(env)
    pool = reader_pool(url, settings.db_pool_size)
    inbound_store = PostgresInboundStore(pool, cipher)
    if create_tables:
        inbound_store.seal_rows_in_clear()  # any stored before migration 0016
    projections = Projections(env)
    if run_projections:
        projections.start()
    key = load_or_create_key(
        settings.jwt_private_key.get_secret_value() if settings.jwt_private_key else None,
        settings.data_dir,
        allow_generate=not production,
    )
    signer = JwtSigner(key, settings.jwt_key_id, timedelta(minutes=settings.access_token_minutes))
    auth = AuthService(
        registry=registry,
        hasher=hasher,
        signer=signer,
        sessions=PostgresSessionStore(pool),
        refresh_tokens=PostgresRefreshTokenStore(pool),
        second_factor=PyotpSecondFactor(),
        one_time=PostgresOneTimeUse(pool),
        throttle=PostgresThrottle(pool),
        mailer=OutboxMailer(settings.data_dir / "outbox"),
        clock=clock,
        limits=SessionLimits(),
        reset_link=settings.reset_link,
    )
    catalog_view = PostgresCatalogReader(pool)
    appointments = PostgresAppointmentReader(pool)
    access_log = BatchingAccessLog(pool)
    services = Services(
        catalog=catalog,
        scheduling=scheduling,
        registry=registry,
        auth=auth,
        slots=SlotSearch(catalog_view, PostgresBusyReader(pool), clock),
        appointments=appointments,
        catalog_view=catalog_view,
        sync=projections,
        clock=clock,
        health=Health(pool, projections),
        access_log=access_log,
        rate_limiter=PostgresRateLimiter(pool),
        staff_access=StaffAccess(appointments, PostgresBreakGlassStore(pool), clock),
        hl7_inbound=Hl7Inbound(inbound_store, clock, access_log),
        deliveries=DeliveryDesk(deliveries, PostgresDeliveryReader(pool), clock, access_log),
        alerts=PostgresAlertReader(pool),
    )
    inbound = InboundEffects(
        registry=registry,
        scheduling=scheduling,
        catalog=catalog,
        reader=Hl7Extractor(),
        settings=InboundSettings(),
    )
    return Runtime(settings, url, env, services, projections, pool, inbound, cipher)
