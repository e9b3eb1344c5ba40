"""Prometheus metrics: what the system holds, read from PostgreSQL at scrape time, and a
small HTTP server for ``/metrics`` that only allowed addresses may read.

The gauges and counters here come from the tables every process writes (inbound HL7,
the deliveries read model, the tracking tables of each read model), so one scrape of one
process shows the whole system, whichever process did the work. What only a process
knows (its request latencies, its access-log queue) comes from that process.
"""

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
import structlog
from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

log = structlog.get_logger(__name__)

PREFIX = "imaging_bridge"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PENDING = ("queued", "retrying", "ambiguous")
# Label values that come from peers are bounded: anything else is counted as "other".
ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")
TRANSPORT_CODES = ("CLOSED", "CONNECT", "RECIPIENT", "RECV", "RENDER", "SEND", "TIMEOUT", "TLS")
HL7_TYPE = "^[A-Z0-9]{3}$"
KINDS = ("events", "tracking")

INBOUND = SQL(
    "SELECT CASE WHEN message_type ~ %(type)s AND trigger ~ %(type)s"
    " THEN message_type || '^' || trigger ELSE 'other' END AS type,"
    " CASE WHEN ack_code = ANY(%(codes)s) THEN ack_code ELSE 'other' END AS ack_code,"
    " status, count(*) AS n"
    " FROM hl7_inbound GROUP BY 1, 2, 3"
)
OUTBOUND = SQL(
    "SELECT d.message_type AS type,"
    " CASE WHEN a.code = ANY(%(codes)s) THEN a.code"
    " WHEN a.code = '' THEN 'none' ELSE 'other' END AS ack_code,"
    " count(*) AS n"
    " FROM rm_delivery_attempts a JOIN rm_deliveries d ON d.id = a.delivery_id"
    " WHERE a.kind = 'attempt' AND d.channel = 'hl7' GROUP BY 1, 2"
)
QUEUES = SQL(
    "SELECT channel, status, count(*) AS n,"
    " greatest(0, extract(epoch FROM now() - min(created_at)))::float AS oldest"
    " FROM rm_deliveries WHERE status = ANY(%(statuses)s) GROUP BY 1, 2"
)
APPOINTMENTS = SQL("SELECT status, count(*) AS n FROM rm_appointments GROUP BY 1")
PARKED = SQL("SELECT projection, count(*) AS n FROM parked_events GROUP BY 1")


class SystemCollector(Collector):
    """Scrape-time metrics from PostgreSQL (and the process's access-log queue).

    ``followers`` names each read model or policy (its tracking table is
    ``<name>_tracking``) and the applications whose logs it follows (``<app>_events``);
    ``channels`` are the delivery channels always reported, at zero when empty.
    """

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        followers: Mapping[str, Sequence[str]],
        channels: Sequence[str],
        access_log_pending: Callable[[], int] | None = None,
    ) -> None:
        self._pool = pool
        self._followers = followers
        self._channels = channels
        self._access_log_pending = access_log_pending

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_database_up", "1 when this scrape could read PostgreSQL")
        families: list[Metric] = []
        try:
            with self._pool.connection(timeout=5) as conn:
                families = list(self._from_database(conn))
        except psycopg.Error as error:  # PoolTimeout is one too
            log.warning("metrics_database_unavailable", error=type(error).__name__)
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families
        if self._access_log_pending is not None:
            pending = GaugeMetricFamily(
                f"{PREFIX}_access_log_queue_length",
                "PHI access-log entries this process holds that are not yet written",
            )
            pending.add_metric([], self._access_log_pending())
            yield pending

    def _from_database(self, conn: psycopg.Connection[Any]) -> Iterator[Metric]:
        yield from _appointments(_rows(conn, APPOINTMENTS, {}))
        yield from _inbound(_rows(conn, INBOUND, {"type": HL7_TYPE, "codes": list(ACK_CODES)}))
        yield _outbound(_rows(conn, OUTBOUND, {"codes": [*ACK_CODES, *TRANSPORT_CODES]}))
        queues = _rows(conn, QUEUES, {"statuses": [*PENDING, "dead_lettered"]})
        yield from _queues(queues, self._channels)
        yield self._lag(conn)
        yield self._parked(conn)

    def _parked(self, conn: psycopg.Connection[Any]) -> Metric:
        """Events each read model parked (could not apply and moved past); every read
        model is reported, at zero when it parked none."""
        parked = GaugeMetricFamily(
            f"{PREFIX}_parked_events",
            "Events a read model could not apply and parked (see projections status)",
            labels=["read_model"],
        )
        counts = dict.fromkeys(self._followers, 0)
        if _existing(conn, ["parked_events"]):
            counts.update({row[0]: row[1] for row in _rows(conn, PARKED, {})})
        for name, n in sorted(counts.items()):
            parked.add_metric([name], n)
        return parked

    def _lag(self, conn: psycopg.Connection[Any]) -> Metric:
        lag = GaugeMetricFamily(
            f"{PREFIX}_projection_lag_events",
            "Events of a source log that a read model (or policy) has not processed yet",
            labels=["read_model", "source"],
        )
        tables = {*self._followers, *(s for sources in self._followers.values() for s in sources)}
        existing = _existing(conn, [f"{name}_{kind}" for name in tables for kind in KINDS])
        for follower, sources in self._followers.items():
            tracking = f"{follower}_tracking"
            for source in sources:
                events = f"{source}_events"
                # No tracking table yet: the read model never ran, so it is the whole log
                # behind; no events table: nothing to follow yet.
                head = _max_id(conn, events) if events in existing else 0
                done = _max_id(conn, tracking, source) if tracking in existing else 0
                lag.add_metric([follower, source], head - done)
        return lag


def _rows(conn: psycopg.Connection[Any], query: SQL, params: Mapping[str, Any]) -> list[Any]:
    return conn.execute(query, params).fetchall()


def _existing(conn: psycopg.Connection[Any], names: Sequence[str]) -> set[str]:
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL",
        (list(names),),
    ).fetchall()
    return {row[0] for row in rows}


def _max_id(conn: psycopg.Connection[Any], table: str, application: str | None = None) -> int:
    """The highest notification id in an events table, or in a tracking table for one
    upstream application; 0 when there is none."""
    query = SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(Identifier(table))
    if application is None:
        row = conn.execute(query).fetchone()
    else:
        row = conn.execute(query + SQL(" WHERE application_name = %s"), (application,)).fetchone()
    return int(row[0]) if row else 0


def _appointments(rows: Iterable[Any]) -> Iterator[Metric]:
    by_status = GaugeMetricFamily(
        f"{PREFIX}_appointments", "Appointments by status (read model)", labels=["status"]
    )
    total = 0
    for status, count in rows:
        by_status.add_metric([status], count)
        total += count
    booked = CounterMetricFamily(
        f"{PREFIX}_bookings", "Appointments booked by patients, ever (read model rows)"
    )
    booked.add_metric([], total)
    yield booked
    yield by_status


def _inbound(rows: Iterable[Any]) -> Iterator[Metric]:
    received = CounterMetricFamily(
        f"{PREFIX}_hl7_inbound_messages",
        "Inbound HL7 messages stored, by type (MSH-9) and the ACK code we answered",
        labels=["type", "ack_code"],
    )
    waiting = GaugeMetricFamily(
        f"{PREFIX}_hl7_inbound_by_status",
        "Inbound HL7 messages by processing status (received: not applied yet)",
        labels=["status"],
    )
    by_type: dict[tuple[str, str], int] = {}
    by_status = dict.fromkeys(("received", "processed", "quarantined"), 0)
    for message_type, ack_code, status, count in rows:
        by_type[(message_type, ack_code)] = by_type.get((message_type, ack_code), 0) + count
        by_status[status] = by_status.get(status, 0) + count
    for labels, count in sorted(by_type.items()):
        received.add_metric(list(labels), count)
    for status, count in by_status.items():
        waiting.add_metric([status], count)
    yield received
    yield waiting


def _outbound(rows: Iterable[Any]) -> Metric:
    sent = CounterMetricFamily(
        f"{PREFIX}_hl7_outbound_attempts",
        "Outbound HL7 send attempts, by message type and the ACK code (or transport failure)",
        labels=["type", "ack_code"],
    )
    for message_type, ack_code, count in rows:
        sent.add_metric([message_type, ack_code], count)
    return sent


def _queues(rows: Iterable[Any], channels: Sequence[str]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        f"{PREFIX}_delivery_queue_depth",
        "Deliveries waiting to be sent (queued, retrying or ambiguous), per channel",
        labels=["channel"],
    )
    oldest = GaugeMetricFamily(
        f"{PREFIX}_delivery_queue_oldest_age_seconds",
        "Age of the oldest delivery waiting to be sent, per channel (0: none waiting)",
        labels=["channel"],
    )
    dead = GaugeMetricFamily(
        f"{PREFIX}_delivery_dead_letters",
        "Deliveries dead-lettered and not redriven, per channel",
        labels=["channel"],
    )
    counts: dict[str, int] = dict.fromkeys(channels, 0)
    ages: dict[str, float] = dict.fromkeys(channels, 0.0)
    letters: dict[str, int] = dict.fromkeys(channels, 0)
    for channel, status, count, age in rows:
        if status == "dead_lettered":
            letters[channel] = letters.get(channel, 0) + count
        else:
            counts[channel] = counts.get(channel, 0) + count
            ages[channel] = max(ages.get(channel, 0.0), age or 0.0)
    for channel in counts:
        depth.add_metric([channel], counts[channel])
        oldest.add_metric([channel], ages.get(channel, 0.0))
    for channel, count in letters.items():
        dead.add_metric([channel], count)
    yield depth
    yield oldest
    yield dead


class _Process(Collector):
    """The process's own metrics: the default registry (request latencies, process, GC)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def allowed(address: str, allow: Sequence[Network]) -> bool:
    """Whether a client address falls in one of the allowed networks."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in allow)


def metrics_app(collectors: Sequence[Collector], allow: Sequence[Network]) -> Callable[..., Any]:
    """A WSGI app answering ``GET /metrics`` to allowed addresses (403 to others)."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    exposition = make_wsgi_app(registry)

    def app(wsgi_env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not allowed(wsgi_env.get("REMOTE_ADDR", ""), allow):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"metrics are not served to this address\n"]
        if wsgi_env.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"see /metrics\n"]
        result: Iterable[bytes] = exposition(wsgi_env, start_response)
        return result

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


@dataclass
class MetricsServer:
    """``/metrics`` on its own port and thread; ``stop()`` ends it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve_metrics(
    host: str, port: int, collectors: Sequence[Collector], allow: Sequence[Network]
) -> MetricsServer:
    """Start serving ``collectors`` and this process's registry at ``host:port`` (port 0:
    any free one). Raises OSError when the address cannot be bound."""
    server_class = _Server6 if ":" in host else _Server
    server = make_server(
        host,
        port,
        metrics_app([_Process(), *collectors], allow),
        server_class=server_class,
        handler_class=_Quiet,
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
