"""The outbound part of a process, wired by the composition root (``bootstrap.build``):
the delivery policy that turns events into HL7 deliveries and the communication policy
that turns them into notices to patients, the pumps that hand due deliveries to this
process's sending threads or to the task queue, and the dramatiq workers that send them.

``serve`` runs it whole; ``imaging-bridge worker`` runs the pump and the workers only
(several processes may pump: hand-outs are leased per delivery version). The deliveries
read model the pump reads is one of the projections (``projections.runners``).

A process that pumps and sends hands its HL7 deliveries and its patient notices straight
to its own sending threads (a ``LocalHandoff`` each; ``OUTBOUND_HANDOFF=broker`` sends
them through the task queue instead, for ``worker --no-pump`` processes); the attempts of
both are saved together (one ``AttemptWriter``). A pump that found nothing to do sleeps
until the deliveries read model moves (``projections.progress``: at once in a process that
runs the projections) or, at the latest, a retry's base delay (2 s by default) later.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

import dramatiq
import structlog
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import ProjectionRunner
from psycopg_pool import ConnectionPool

from adapters.access_log import PostgresAccessLog
from adapters.channels.recipients import PatientLookup, PreferencesOf, preferences_of
from adapters.channels.setup import channel_senders, notice_settings
from adapters.channels.worker import ChannelWorker, ConsentFollowUps
from adapters.hl7.attempt_writer import AttemptWriter
from adapters.hl7.destinations import Destination, parse_destinations
from adapters.hl7.handoff import LocalHandoff
from adapters.hl7.pump import Pump
from adapters.hl7.sender import Sender
from adapters.leadership import Leadership
from adapters.settings import Settings
from adapters.startup import StartupError
from adapters.task_queue import (
    NOTICE_ACTOR_NAME,
    NOTICE_QUEUE,
    declare_actor,
    enqueuer,
    make_broker,
)
from application.catalog import Catalog
from application.channels import PATIENT_CHANNELS
from application.communications.messaging_notices import MessagingNotices
from application.communications.policy import CommunicationPolicy
from application.messaging import MessagingLog
from application.ports import Clock
from application.registry import RegistryLog
from application.ris.deliveries import Deliveries
from application.ris.delivery_desk import DeliveryDesk
from application.ris.delivery_policy import DeliveryPolicy, recipients_env
from application.scheduling import SchedulingLog
from application.stranded import StrandingFollower
from domain.reminders import QuietHours, parse_offsets
from domain.ris.message_delivery import RetryPolicy
from imaging_bridge.policy_runner import PolicyRunner
from projections.deliveries_view import PostgresDeliveryReader
from projections.progress import PROGRESS

POLICIES_LEADER = "outbound-policies"
IDLE_WAIT = 2.0  # seconds an idle pump sleeps unless the deliveries read model moves

log = structlog.get_logger(__name__)


def destinations_of(settings: Settings) -> list[Destination]:
    """The configured HL7 destinations (InvalidValueError naming a bad one)."""
    return parse_destinations(settings.hl7_destinations)


def retry_policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempt_limit=settings.delivery_attempt_limit,
        ambiguous_limit=settings.delivery_ambiguous_limit,
        base_delay=timedelta(seconds=settings.delivery_base_delay),
        max_delay=timedelta(seconds=settings.delivery_max_delay),
        give_up_after=timedelta(seconds=settings.delivery_give_up_after),
    )


def policy_env(env: dict[str, str], destinations: list[Destination]) -> dict[str, str]:
    """The policy runners' environment: the library's settings plus the names of the
    recipients (``DeliveryPolicy`` reads them from its env)."""
    return {**env, **recipients_env([destination.name for destination in destinations])}


def communication_policy_of(settings: Settings, clock: Clock) -> type[CommunicationPolicy]:
    """The communication policy with the centre's reminder offsets and quiet hours."""
    quiet = settings.default_quiet_hours.strip()
    return CommunicationPolicy.configured(
        clock=clock,
        offsets=parse_offsets(settings.reminder_offsets),
        quiet_hours=QuietHours.parse(quiet) if quiet else None,
    )


@dataclass
class Outbound:
    """Everything outbound one process runs; ``start`` it, ``stop`` it."""

    env: dict[str, str]
    url: str
    clock: Clock
    settings: Settings
    policy: bool = True
    lead: bool = False
    """Run the policies only while this instance leads the instances on the database
    (``adapters.leadership``): several ``serve`` processes may share one."""
    pump: bool = True
    workers: int = 2
    pump_interval: float = 0.2
    deliveries: Deliveries | None = None
    patients: PatientLookup | None = None  # the registry's patient_by_id, for notices
    preferences: PreferencesOf = preferences_of
    follow_ups: ConsentFollowUps | None = None  # services.preferences, when there is one
    runners: list[Any] = field(default_factory=list)
    worker: Any = None
    pool: ConnectionPool[Any] | None = None
    broker: Any = None
    _owns_deliveries: bool = False
    _scheduling: SchedulingLog | None = None
    _handoff: LocalHandoff | None = None  # HL7's
    _notice_handoff: LocalHandoff | None = None
    _leadership: Leadership | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> "Outbound":
        settings = self.settings
        destinations = destinations_of(settings)
        if self.policy and self.lead:
            self._leadership = Leadership(
                self.url, POLICIES_LEADER, self._start_policies, self._stop_policies
            ).begin()
        elif self.policy:
            self._start_policies()
        self.pool = ConnectionPool(
            self.url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
        )
        self.pool.open(wait=True, timeout=30)
        if self.deliveries is None:
            self.deliveries = Deliveries(self.env)
            self._owns_deliveries = True
        if self.workers or self.pump:
            self.broker = make_broker(self.url, broker_url=settings.broker_url)
        sender = notices = None
        if self.workers:
            writer = AttemptWriter(self.deliveries)  # HL7's and notices' attempts, saved together
            sender = self._sender(destinations, writer)
            notices = self.notice_worker(writer) if self.patients is not None else None
        if sender is not None:
            declare_actor(self.broker, sender.send)
            if notices is not None:
                declare_actor(
                    self.broker, notices.send, actor_name=NOTICE_ACTOR_NAME, queue_name=NOTICE_QUEUE
                )
            self.worker = dramatiq.Worker(  # type: ignore[no-untyped-call, unused-ignore]
                self.broker, worker_threads=self.workers, worker_timeout=100
            )
            self.worker.start()
        if self.pump:
            self._start_pumps(sender, notices)
        return self

    def _start_pumps(self, sender: Sender | None, notices: ChannelWorker | None) -> None:
        """The HL7 pump and the notices pump, each handing out to this process's own
        sending threads when it has them and ``outbound_handoff`` is local, else to the
        task queue."""
        lease = timedelta(seconds=self.settings.delivery_lease_seconds)
        local = self.settings.outbound_handoff == "local"
        if local and sender is not None:
            self._handoff = LocalHandoff(
                sender.send_many, self.workers, lease=lease.total_seconds()
            ).start()
        if local and notices is not None:
            self._notice_handoff = LocalHandoff(
                notices.send_many, self.workers, lease=lease.total_seconds(), name="notice-send"
            ).start()
        self._start_pump(("hl7",), self._handoff, enqueuer(self.broker), lease)
        queued = enqueuer(self.broker, actor_name=NOTICE_ACTOR_NAME, queue_name=NOTICE_QUEUE)
        self._start_pump(PATIENT_CHANNELS, self._notice_handoff, queued, lease)

    def _start_pump(
        self,
        channels: tuple[str, ...],
        handoff: LocalHandoff | None,
        queued: Callable[[list[tuple[UUID, int]]], None],
        lease: timedelta,
    ) -> None:
        """A pump of ``channels`` on a thread of its own, handing out to ``handoff``'s
        threads, or else to the task queue (``queued``)."""
        if self.pool is None:
            raise RuntimeError("start the outbound part first")
        pump = Pump(
            self.reader(),
            self.pool,
            handoff.dispatch if handoff else queued,
            self.clock,
            lease=lease,
            channels=channels,
            room=handoff.room if handoff else None,
        )
        wanting = handoff.wanting if handoff else None
        thread = threading.Thread(target=self._pump_loop, args=(pump, wanting), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _sender(self, destinations: list[Destination], writer: AttemptWriter) -> Sender:
        assert self.deliveries is not None
        cafile = self.settings.hl7_tls_cafile
        return Sender(
            self.deliveries,
            destinations,
            self.clock,
            retry_policy_of(self.settings),
            writer=writer,
            tls_cafile=str(cafile) if cafile else None,
        )

    def _start_policies(self) -> None:
        """The runners that turn events into deliveries (once among instances: see
        ``lead``)."""
        settings = self.settings
        destinations = destinations_of(settings)
        # Staff's secure messages -> "new message" notices to the patient.
        notices: Any = PolicyRunner(
            application_class=MessagingLog, projection_class=MessagingNotices, env=self.env
        )
        self.runners.append(notices.__enter__())
        env = policy_env(self.env, destinations)
        for upstream in (SchedulingLog, RegistryLog):
            runner: Any = PolicyRunner(
                application_class=upstream, projection_class=DeliveryPolicy, env=env
            )
            self.runners.append(runner.__enter__())
        self.runners.append(self._stranding_follower())
        communications: Any = PolicyRunner(
            application_class=SchedulingLog,
            projection_class=communication_policy_of(settings, self.clock),
            env=self.env,
        )
        self.runners.append(communications.__enter__())

    def _stop_policies(self) -> None:
        for runner in reversed(self.runners):
            try:
                runner.__exit__(None, None, None)
            except Exception:  # its thread's last error: stop the others all the same
                log.exception("policy_stopped_with_error", policy=type(runner.projection).__name__)
            if isinstance(runner, ProjectionRunner):
                runner.view.datastore.close()
        self.runners.clear()
        if self._scheduling is not None:
            self._scheduling.close()
            self._scheduling = None

    def _stranding_follower(self) -> Any:
        """The follower that settles what forced catalog changes stranded (appointments
        that need a new time), writing to the scheduling log (``application.stranded``)."""
        self._scheduling = SchedulingLog(self.env)
        follower: Any = ProjectionRunner(
            application_class=Catalog,
            projection_class=StrandingFollower.writing_to(self._scheduling),
            view_class=PostgresTrackingRecorder,
            env=self.env,
        )
        return follower.__enter__()

    def notice_worker(self, writer: AttemptWriter | None = None) -> ChannelWorker:
        """The body of the ``send_notice`` actor and of the notices' sending threads:
        e-mail, SMS and push, through the channels the settings name (their development
        defaults when unset); its attempts saved by ``writer`` when given."""
        if self.deliveries is None or self.patients is None:
            raise RuntimeError("the notice worker needs the deliveries and the patients")
        try:
            senders = channel_senders(self.settings)
        except ValueError as error:  # SMTP_URL, TWILIO_*, VAPID_*: the message names which
            raise StartupError(f"patient channels: {error}") from None
        return ChannelWorker(
            self.deliveries,
            senders,
            self.patients,
            self.clock,
            retry_policy_of(self.settings),
            notice_settings(self.settings),
            preferences=self.preferences,
            follow_ups=self.follow_ups,
            writer=writer,
        )

    def reader(self) -> PostgresDeliveryReader:
        if self.pool is None:
            raise RuntimeError("start the outbound part first")
        return PostgresDeliveryReader(self.pool)

    def desk(self) -> DeliveryDesk:
        if self.deliveries is None or self.pool is None:
            raise RuntimeError("start the outbound part first")
        return DeliveryDesk(
            self.deliveries, self.reader(), self.clock, PostgresAccessLog(self.pool)
        )

    def _pump_loop(self, pump: Pump, wanting: threading.Event | None) -> None:
        """Pump; after a round that handed work out (or found the threads' queue full),
        pump again once the sending threads want more (``wanting``) or after
        ``pump_interval``; after an idle round, once the deliveries read model moves, or
        after ``_idle_wait()``."""
        idle = self._idle_wait()
        while not self._stop.is_set():
            seen = PROGRESS.generation(Deliveries.name)
            if wanting is not None:
                wanting.clear()
            try:
                handed = pump.run_once()
            except Exception:  # logged; the next round tries again
                log.exception("delivery_pump_failed")
                handed = 0
            full = pump.room is not None and pump.room() == 0
            if (handed or full) and wanting is not None:
                wanting.wait(self.pump_interval)
            elif handed or pump.found:  # found but lost to another pump: more may be due
                self._stop.wait(self.pump_interval)
            else:
                PROGRESS.wait_for(
                    Deliveries.name,
                    lambda seen=seen: (  # type: ignore[misc]
                        self._stop.is_set() or PROGRESS.generation(Deliveries.name) != seen
                    ),
                    timeout=idle,
                )

    def _idle_wait(self) -> float:
        """Time-driven work (a retry's delay, a lease that ran out) is found at the
        latest this long after it falls due; never sooner than ``pump_interval``."""
        settings = self.settings
        longest = min(IDLE_WAIT, settings.delivery_base_delay, settings.delivery_lease_seconds)
        return max(self.pump_interval, longest)

    def wait_caught_up(self, timeout: float = 10.0) -> None:
        """Until the policy runners have processed their logs."""
        deadline = time.monotonic() + timeout
        for runner in self.runners:
            head = runner.app.recorder.max_notification_id() or 0
            if head:
                runner.wait(head, timeout=max(0.01, deadline - time.monotonic()))

    def stop(self) -> None:
        """Stop pumping and sending, then the policy; idempotent."""
        self._stop.set()
        # Wakes the idle pumps (and anyone else waiting on the deliveries read model,
        # who checks again and waits on).
        PROGRESS.advanced(Deliveries.name)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()
        for handoff in (self._handoff, self._notice_handoff):
            if handoff is not None:
                handoff.stop()
        self._handoff = self._notice_handoff = None
        if self.worker is not None:
            self.worker.stop(timeout=10_000)
            self.worker = None
        if self.broker is not None:
            self.broker.close()
            self.broker = None
        if self._leadership is not None:
            self._leadership.end()
            self._leadership = None
        else:
            self._stop_policies()
        if self.deliveries is not None and self._owns_deliveries:
            self.deliveries.close()
            self.deliveries = None
        if self.pool is not None:
            self.pool.close()
            self.pool = None
