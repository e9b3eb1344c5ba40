"""The inbound MLLP listener: every message is stored durably, then acknowledged.

Per connection: the peer's address must be allowed by an ``HL7_SENDERS`` entry (see
``senders``) and a connection slot must be free (see ``admission``), else it is closed
before anything is read; then TLS, when configured, with the client certificate's CN
checked for entries that ask for one. Frames are read tolerantly (see ``framing``)
against a deadline per frame and per idle connection, their bytes counted against one
budget for all connections; each message's MSH is read cheaply (see ``envelope``) and
must name the sender (MSH-3/MSH-4) of an entry that admitted the connection, else it is
answered AR and kept in quarantine. The raw bytes and the ACK they get are written in
one committed INSERT, and only then is the ACK sent. A duplicate gets the ACK it got the
first time. Nothing here parses the whole message: that is the processing stage's job;
a new message wakes it (``NOTIFY hl7_inbound``, see ``ProcessorWakeup``).
If the database cannot take the message, no ACK is sent and the connection is closed,
so the sender retries.
"""

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from adapters.at_rest import AtRestCipher
from adapters.hl7.acks import acceptance, build_ack
from adapters.hl7.admission import Admission
from adapters.hl7.envelope import Problem, read_envelope
from adapters.hl7.framing import Deframer, frame
from adapters.hl7.inbound_store import AsyncInboundWriter
from adapters.hl7.listener_config import (
    ListenerConfig,
    ListenerSetupError,
    listener_config,
    server_ssl_context,
    ssl_context_from,
)
from adapters.hl7.senders import (
    DEVELOPMENT_LOOPBACK,
    Sender,
    allowed_at,
    authorised,
    certificate_names,
    peer_address,
    with_certificate,
)
from adapters.hl7.wakeup import CHANNEL

__all__ = [
    "BackgroundListener",
    "ListenerConfig",
    "ListenerSetupError",
    "MllpListener",
    "StorageUnavailableError",
    "listen",
    "listener_config",
    "server_ssl_context",
    "ssl_context_from",
]

log = structlog.get_logger(__name__)
READ_CHUNK = 64 * 1024
TOO_LARGE = Problem("AR", "207", "message too large")
NOT_AUTHORISED = Problem("AR", "207", "not an authorised sender")


class MllpListener:
    """``async with MllpListener(url, config) as listener:`` serves until the block ends;
    ``listener.port`` is the bound port (useful with port 0)."""

    def __init__(
        self,
        database_url: str,
        config: ListenerConfig | None = None,
        *,
        cipher: AtRestCipher,
        ssl_context: ssl.SSLContext | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database_url = database_url
        self.config = config or ListenerConfig()
        self.cipher = cipher  # seals each stored message (the event key)
        self.ssl_context = ssl_context
        self.now = now
        self.port = self.config.port
        self._server: asyncio.Server | None = None
        self._pool: AsyncConnectionPool[Any] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.admission = Admission(self.config.limits)
        self._wakeup: ProcessorWakeup | None = None

    async def start(self) -> None:
        self._pool = AsyncConnectionPool(
            self.database_url,
            min_size=1,
            max_size=self.config.pool_size,
            kwargs={"autocommit": True},
            open=False,
        )
        await self._pool.open(wait=True, timeout=30)
        self._writer = AsyncInboundWriter(self._pool, self.cipher)
        self._wakeup = ProcessorWakeup(self._pool)
        # Plain TCP first: TLS starts per connection once its address and slot are checked.
        try:
            self._server = await asyncio.start_server(
                self._serve, self.config.host, self.config.port, limit=READ_CHUNK
            )
        except OSError:
            # Close the pool's tasks now: left pending, they end as "Task was destroyed".
            await self._pool.close()
            self._pool = None
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "mllp_listening",
            host=self.config.host,
            port=self.port,
            tls=bool(self.ssl_context),
            senders=[sender.name for sender in self.config.senders],
            loopback_only=self.config.senders == (DEVELOPMENT_LOOPBACK,),
            note=self.config.senders_note,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        if self._wakeup is not None:
            await self._wakeup.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> "MllpListener":
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peername = writer.get_extra_info("peername")
        address = peer_address(peername)
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else ""
        try:
            senders = allowed_at(self.config.senders, address)
            if not senders:
                log.warning("mllp_refused", peer=peer, reason="address_not_allowed")
                return
            refused = self.admission.admit(str(address))
            if refused is not None:
                log.warning("mllp_refused", peer=peer, reason=refused)
                return
            try:
                senders = await self._secure(writer, senders, peer)
                if senders:
                    await self._exchange(reader, writer, senders, peer)
            finally:
                self.admission.release(str(address))
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as error:
            log.info("mllp_connection_lost", peer=peer, error=type(error).__name__)
        except StorageUnavailableError:
            log.warning("mllp_storage_unavailable", peer=peer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _secure(
        self, writer: asyncio.StreamWriter, senders: tuple[Sender, ...], peer: str
    ) -> tuple[Sender, ...]:
        """TLS when configured; the entries this connection satisfies (an entry with cn=
        only with a verified client certificate of that CN), empty if none."""
        names: frozenset[str] = frozenset()
        if self.ssl_context is not None:
            try:
                await writer.start_tls(
                    self.ssl_context, ssl_handshake_timeout=self.config.frame_timeout
                )
            except OSError as error:  # ssl.SSLError, a reset, the handshake's timeout
                log.info("mllp_refused", peer=peer, reason="tls_failed", error=type(error).__name__)
                return ()
            names = certificate_names(writer.get_extra_info("peercert"))
        admitted = with_certificate(senders, names)
        if not admitted:
            reason = "client_certificate_not_allowed" if names else "client_certificate_missing"
            log.warning("mllp_refused", peer=peer, reason=reason)
        return admitted

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        senders: tuple[Sender, ...],
        peer: str,
    ) -> None:
        """Read frames and answer each, until the peer leaves or a deadline or the
        buffer budget ends the connection."""
        loop = asyncio.get_running_loop()
        deframer = Deframer(self.config.max_frame)
        held = 0  # bytes of this connection's unfinished frame, counted in the budget
        last_frame = loop.time()  # when a frame last started or ended
        frame_started: float | None = None
        try:
            while True:
                if frame_started is None:
                    deadline, why = last_frame + self.config.idle_timeout, "mllp_idle_timeout"
                else:
                    limit = min(self.config.frame_timeout, self.config.idle_timeout)
                    deadline, why = frame_started + limit, "mllp_frame_timeout"
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await reader.read(READ_CHUNK)
                except TimeoutError:
                    log.info(why, peer=peer, pending=deframer.pending)
                    return
                if not data:
                    return
                received = deframer.feed(data)
                if received or (deframer.in_frame and frame_started is None):
                    last_frame = loop.time()
                    frame_started = last_frame if deframer.in_frame else None
                if not self.admission.rebuffer(held, deframer.pending):
                    log.warning("mllp_buffer_budget_exceeded", peer=peer, pending=deframer.pending)
                    return
                held = deframer.pending
                for message in received:
                    ack = await self._handle(message.payload, message.oversize, peer, senders)
                    writer.write(frame(ack))
                try:
                    async with asyncio.timeout(self.config.frame_timeout):
                        await writer.drain()
                except TimeoutError:
                    log.info("mllp_write_timeout", peer=peer)
                    return
        finally:
            self.admission.rebuffer(held, 0)

    async def _handle(
        self, payload: bytes, oversize: bool, peer: str, senders: tuple[Sender, ...]
    ) -> bytes:
        envelope = read_envelope(payload)
        message_id = uuid4()
        if oversize:
            log.warning("mllp_frame_too_large", peer=peer)
            return build_ack(envelope, TOO_LARGE, control_id=message_id.hex[:20], now=self.now())
        sender = authorised(senders, envelope)
        problem = NOT_AUTHORISED if sender is None else acceptance(envelope)
        ack = build_ack(envelope, problem, control_id=message_id.hex[:20], now=self.now())
        try:
            stored = await self._writer.store(
                message_id,
                payload,
                envelope,
                ack_code="AA" if problem is None else problem.ack_code,
                ack=ack,
                error=None if problem is None else f"{problem.error_code}: {problem.text}",
                peer=peer,
            )
        except Exception as error:
            log.exception("mllp_store_failed", peer=peer)
            raise StorageUnavailableError() from error
        log.info(
            "mllp_message",
            id=str(stored.id),
            type=f"{envelope.message_type}^{envelope.trigger}",
            ack=problem.ack_code if problem else "AA",
            duplicate=stored.duplicate,
        )
        if problem is None and not stored.duplicate and self._wakeup is not None:
            self._wakeup.soon()
        if sender is None:
            # Never the stored ACK of an authorised twin: this sender gets its refusal.
            log.warning(
                "mllp_unauthorised_sender",
                peer=peer,
                id=str(stored.id),
                entries=[entry.name for entry in senders],
            )
            return ack
        return stored.ack


class ProcessorWakeup:
    """Tells the inbound processors (in any process) that messages wait: ``NOTIFY
    hl7_inbound`` after the INSERTs have committed. One NOTIFY covers every message
    stored before it is sent, and at most one goes out per ``spacing`` seconds, so a
    burst sends a few, not one per message. PostgreSQL serialises notifying commits
    (the event stores' saves notify too): so the NOTIFY goes in its own transaction,
    not the INSERT's, which would make the listener's commits wait for each other, and
    rarely, as busy processors look again on their own anyway."""

    def __init__(self, pool: AsyncConnectionPool[Any], spacing: float = 0.05) -> None:
        self._pool = pool
        self._spacing = spacing
        self._pending = False
        self._task: asyncio.Task[None] | None = None

    def soon(self) -> None:
        self._pending = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(f"NOTIFY {CHANNEL}")
            except psycopg.Error:
                # The processors look again on their own after a while.
                log.warning("hl7_inbound_notify_failed", exc_info=True)
                return
            await asyncio.sleep(self._spacing)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class StorageUnavailableError(Exception):
    """The message could not be stored: no ACK is sent."""


async def listen(
    database_url: str,
    config: ListenerConfig,
    *,
    cipher: AtRestCipher,
    ssl_context: ssl.SSLContext | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or forever)."""
    async with MllpListener(
        database_url, config, cipher=cipher, ssl_context=ssl_context
    ) as listener:
        if stop is None:
            await listener.serve_forever()
        else:
            await stop.wait()


class BackgroundListener:
    """The listener on its own event loop in a daemon thread, for a process whose main
    thread does something else (``imaging-bridge serve``, tests)."""

    def __init__(
        self,
        database_url: str,
        config: ListenerConfig | None = None,
        *,
        cipher: AtRestCipher,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.listener = MllpListener(database_url, config, cipher=cipher, ssl_context=ssl_context)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.listener.port

    def start(self, timeout: float = 30) -> "BackgroundListener":
        """Listening once this returns; OSError (the port is taken, ...) otherwise, with
        the thread and its event loop ended."""
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.listener.start(), self._loop).result(timeout)
        except OSError:
            self._end_loop(timeout)
            raise
        return self

    def stop(self, timeout: float = 30) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self._loop).result(timeout)
        self._end_loop(timeout)

    def _end_loop(self, timeout: float) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()

    def __enter__(self) -> "BackgroundListener":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
