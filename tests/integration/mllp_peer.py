"""A real MLLP peer on loopback acting as the RIS: it ACKs AA, AE or AR, stalls
(never answers), or is down (nothing listens), as a test scripts it."""

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

START, END = b"\x0b", b"\x1c\x0d"


def field_of(message: str, segment: str, index: int) -> str:
    """Field ``index`` of the first ``segment`` (MSH counts its separator as MSH-1)."""
    for line in message.split("\r"):
        parts = line.split("|")
        if parts[0] == segment:
            if segment == "MSH":
                index -= 1
            return parts[index] if index < len(parts) else ""
    return ""


@dataclass
class Peer:
    """Answers each message with the next scripted reply, then ``default``."""

    default: str = "AA"
    script: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)  # MSH-10 of every message it AA'd
    port: int = 0
    stalls: int = 0
    stalled: list[str] = field(default_factory=list)  # MSH-10s of the messages held
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> "Peer":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.up()
        return self

    def __exit__(self, *_: object) -> None:
        self.down()
        assert self._loop is not None
        assert self._thread is not None

        async def cancel_handlers() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._run(cancel_handlers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _run(self, coro: object) -> object:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)  # type: ignore[arg-type]

    def up(self) -> None:
        async def start() -> asyncio.Server:
            return await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

        self._server = self._run(start())  # type: ignore[assignment]
        assert self._server is not None
        self.port = self._server.sockets[0].getsockname()[1]

    def down(self) -> None:
        if self._server is None:
            return
        server = self._server
        self._server = None

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        self._run(stop())

    def next_reply(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    data = await reader.readuntil(END)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                message = data[data.find(START) + 1 : -2].decode("utf-8")
                with self._lock:
                    self.received.append(message)
                reply = self.next_reply()
                if reply == "stall":
                    with self._lock:
                        self.stalls += 1
                        self.stalled.append(field_of(message, "MSH", 10))
                    await asyncio.sleep(3600)
                    return
                control = field_of(message, "MSH", 10)
                if reply == "AA":
                    with self._lock:
                        self.acked.append(control)
                ack = (
                    f"MSH|^~\\&|RIS|RIS|IMGBRIDGE|IMGBRIDGE|20261130120000||ACK|A{control}|P|2.5.1"
                    f"\rMSA|{reply}|{control}|{'scripted ' + reply}"
                )
                writer.write(START + ack.encode() + END)
                await writer.drain()
        finally:
            writer.close()

    def messages(self, control_id: str | None = None) -> list[str]:
        with self._lock:
            return [
                m
                for m in self.received
                if control_id is None or field_of(m, "MSH", 10) == control_id
            ]


def wait_until(condition: Callable[[], object], timeout: float = 45.0) -> object:
    """Bounded polling on a condition (no blind sleeps)."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.2)
