"""The inbound MLLP listener: every message is stored durably, then acknowledged.

Per connection: frames are read tolerantly (see ``framing``), each message's MSH is
read cheaply (see ``envelope``), the raw bytes and the ACK they get are written in one
committed INSERT, and only then is the ACK sent. A duplicate gets the ACK it got the
first time. Nothing here parses the whole message: that is the processing stage's job.
If the database cannot take the message, no ACK is sent and the connection is closed,
so the sender retries.
"""

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import structlog
from psycopg_pool import AsyncConnectionPool

from adapters.hl7.acks import acceptance, build_ack
from adapters.hl7.envelope import Problem, read_envelope
from adapters.hl7.framing import DEFAULT_MAX_FRAME, Deframer, frame
from adapters.hl7.inbound_store import AsyncInboundWriter
from adapters.settings import Settings

log = structlog.get_logger(__name__)
READ_CHUNK = 64 * 1024
TOO_LARGE = Problem("AR", "207", "message too large")


@dataclass(frozen=True)
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 2575
    max_frame: int = DEFAULT_MAX_FRAME
    idle_timeout: float = 300.0  # seconds without a byte before a connection is closed
    pool_size: int = 10


def server_ssl_context(
    cert_file: str, key_file: str, password: str | None = None
) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2 or later) for MLLP over TLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file, password=password)
    return context


def ssl_context_from(settings: Settings) -> ssl.SSLContext | None:
    """The MLLP TLS context from the same certificate and key HTTPS uses, if set."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    password = settings.tls_key_password
    return server_ssl_context(
        str(settings.tls_cert_file),
        str(settings.tls_key_file),
        password.get_secret_value() if password else None,
    )


class MllpListener:
    """``async with MllpListener(url, config) as listener:`` serves until the block ends;
    ``listener.port`` is the bound port (useful with port 0)."""

    def __init__(
        self,
        database_url: str,
        config: ListenerConfig | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database_url = database_url
        self.config = config or ListenerConfig()
        self.ssl_context = ssl_context
        self.now = now
        self.port = self.config.port
        self._server: asyncio.Server | None = None
        self._pool: AsyncConnectionPool[Any] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._pool = AsyncConnectionPool(
            self.database_url,
            min_size=1,
            max_size=self.config.pool_size,
            kwargs={"autocommit": True},
            open=False,
        )
        await self._pool.open(wait=True, timeout=30)
        self._writer = AsyncInboundWriter(self._pool)
        try:
            self._server = await asyncio.start_server(
                self._serve,
                self.config.host,
                self.config.port,
                ssl=self.ssl_context,
                limit=READ_CHUNK,
            )
        except OSError:
            # Close the pool's tasks now: left pending, they end as "Task was destroyed".
            await self._pool.close()
            self._pool = None
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "mllp_listening", host=self.config.host, port=self.port, tls=bool(self.ssl_context)
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
        peer_info = writer.get_extra_info("peername")
        peer = f"{peer_info[0]}:{peer_info[1]}" if isinstance(peer_info, tuple) else ""
        deframer = Deframer(self.config.max_frame)
        try:
            while True:
                try:
                    data = await asyncio.wait_for(
                        reader.read(READ_CHUNK), timeout=self.config.idle_timeout
                    )
                except TimeoutError:
                    log.info("mllp_idle_timeout", peer=peer, pending=deframer.pending)
                    break
                if not data:
                    break
                for received in deframer.feed(data):
                    ack = await self._handle(received.payload, received.oversize, peer)
                    writer.write(frame(ack))
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as error:
            log.info("mllp_connection_lost", peer=peer, error=type(error).__name__)
        except StorageUnavailableError:
            log.warning("mllp_storage_unavailable", peer=peer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, payload: bytes, oversize: bool, peer: str) -> bytes:
        envelope = read_envelope(payload)
        problem = TOO_LARGE if oversize else acceptance(envelope)
        message_id = uuid4()
        ack = build_ack(envelope, problem, control_id=message_id.hex[:20], now=self.now())
        if oversize:
            log.warning("mllp_frame_too_large", peer=peer)
            return ack
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
        return stored.ack


class StorageUnavailableError(Exception):
    """The message could not be stored: no ACK is sent."""


async def listen(
    database_url: str,
    config: ListenerConfig,
    *,
    ssl_context: ssl.SSLContext | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or forever)."""
    async with MllpListener(database_url, config, ssl_context=ssl_context) as listener:
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
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.listener = MllpListener(database_url, config, ssl_context=ssl_context)
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
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop.close()
            raise
        return self

    def stop(self, timeout: float = 30) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self._loop).result(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()

    def __enter__(self) -> "BackgroundListener":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
