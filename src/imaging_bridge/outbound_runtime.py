"""The runtime of a process that runs only the outbound part: ``imaging-bridge worker``
and the child of ``serve --outbound process``.

It starts from the same footing as every process (``bootstrap.prepare``: database,
migrations, keys) but wires only what the outbound part uses: the deliveries and
registry applications, the preferences service the notice worker reports gone
addresses to, and ``Outbound`` itself. No API services, authentication (whose set-up
hashes a dummy Argon2 password), read models or inbound HL7.
"""

from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from adapters.at_rest import AtRestCipher
from adapters.clock import SystemClock
from adapters.database import reader_pool
from adapters.hl7.inbound_store import PostgresInboundStore
from adapters.passwords import Argon2PasswordHasher
from adapters.settings import Settings
from application.ports import Clock
from application.preferences import Preferences
from application.registry import Registry
from application.ris.deliveries import Deliveries
from imaging_bridge.bootstrap import Parts, preferences_service, prepare, vapid_key
from imaging_bridge.outbound import Outbound
from projections.runners import Projections


@dataclass
class OutboundRuntime:
    """What an outbound-only process runs, and how to stop it cleanly."""

    settings: Settings
    url: str
    env: dict[str, str]
    clock: Clock
    pool: ConnectionPool[Any]
    deliveries: Deliveries
    registry: Registry  # the patients the notice worker writes to
    preferences: Preferences  # where the notice worker reports gone addresses
    sync: Projections  # never started here: hears the read models serve keeps
    notices: list[str] = field(default_factory=list)
    outbound: Outbound | None = None
    closed: bool = False

    def start(self, parts: Parts) -> "OutboundRuntime":
        """Start the outbound ``parts`` (policies, pump, sending threads); on any
        failure, stop what started and raise."""
        if parts.projections or parts.inbound or parts.listener:
            raise ValueError("an outbound runtime runs no read models and no inbound HL7")
        try:
            if parts.pump:
                # The deliveries read model is kept by another process (``serve``'s
                # parent): without its NOTIFY an idle pump would see a new delivery only
                # at its next timed round, up to ``outbound.IDLE_WAIT`` later.
                self.sync.listen()
            self.outbound = Outbound(
                self.env,
                self.url,
                self.clock,
                self.settings,
                policy=parts.policy,
                lead=parts.lead,
                pump=parts.pump,
                workers=parts.workers,
                deliveries=self.deliveries,
                patients=self.registry.patient_by_id,
                follow_ups=self.preferences,
            ).start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.outbound is not None:
            self.outbound.stop()
        self.sync.stop()
        self.deliveries.close()
        self.registry.close()
        self.pool.close()


def build_outbound(
    settings: Settings, parts: Parts, *, create: bool = False, migrate: bool = True
) -> OutboundRuntime:
    """``bootstrap.prepare``, then wire and start the outbound ``parts`` only.
    StartupError (one line for the operator) when it cannot, as ``bootstrap.build``."""
    ready = prepare(settings, create=create, migrate=migrate)
    vapid = vapid_key(settings)
    env, clock = ready.env, SystemClock()
    pool = reader_pool(ready.url, settings.db_pool_size)
    if migrate:  # any stored before migration 0016, as every migrating process does
        PostgresInboundStore(pool, AtRestCipher(env["CIPHER_KEY"])).seal_rows_in_clear()
    registry = Registry(env, hasher=Argon2PasswordHasher(), clock=clock)
    sync = Projections(env, {registry.name: registry})
    runtime = OutboundRuntime(
        settings,
        ready.url,
        env,
        clock,
        pool,
        deliveries=Deliveries(env),
        registry=registry,
        preferences=preferences_service(registry, pool, env, clock, sync, vapid),
        sync=sync,
        notices=ready.notices,
    )
    return runtime.start(parts)
