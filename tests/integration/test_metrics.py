"""Operators see the system: ``/metrics`` in the Prometheus text format, scraped over
HTTP while real traffic goes through (a registration and a booking through the API,
inbound HL7 through the MLLP listener, outbound HL7 through the pump and sender to a
peer on loopback), parsed with prometheus_client's own parser. Served only where the
settings say: off by default, loopback by default, and refused to other addresses."""

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

import httpx
import pytest
import typer
from prometheus_client.parser import text_string_to_metric_families

from adapters.hl7.listener import BackgroundListener, ListenerConfig
from adapters.metrics import allowed
from adapters.settings import Settings
from application.base import Position
from domain.context import system_actor
from imaging_bridge.bootstrap import Parts, Runtime
from imaging_bridge.observability import start_metrics_server
from imaging_bridge.outbound import Outbound
from tests.conftest import make_runtime
from tests.integration.mllp_peer import Peer
from tests.integration.test_hl7_listener import adt, exchange, segments
from tests.support import demo_specs, post_booking, register

pytestmark = pytest.mark.integration

TUESDAY_9AM_NY = "2026-12-01T09:00:00-05:00"


@dataclass
class Scrape:
    """One scrape: every sample by name and labels."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]

    def value(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no sample {name}{labels}"
        return self.samples[key]

    def value_or_zero(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> list[dict[str, str]]:
        return [dict(labels) for (sample, labels) in self.samples if sample == name]


def scrape(url: str) -> Scrape:
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples, types)


def with_metrics(runtime: Runtime, **settings: Any) -> Settings:
    return runtime.settings.model_copy(update={"metrics_port": 0, **settings})


@pytest.fixture
def metrics_url(runtime: Runtime) -> Iterator[str]:
    server = start_metrics_server(with_metrics(runtime), runtime)
    assert server is not None
    yield f"http://{server.host}:{server.port}"
    server.stop()


@pytest.fixture
def peer() -> Iterator[Peer]:
    # The RIS refuses the first message (AR: a dead letter), then accepts.
    with Peer(script=["AR"]) as p:
        yield p


@pytest.fixture
def outbound(runtime: Runtime, peer: Peer) -> Outbound:
    """The delivery policy and read model of a real process (no task queue: the test
    pumps and sends itself, through the real pump and sender)."""
    settings = runtime.settings.model_copy(
        update={"hl7_destinations": f"ris=127.0.0.1:{peer.port};timeout=5"}
    )
    return runtime.start_outbound(settings, workers=0, pump=False)  # stopped with the runtime


def pump_and_send(ob: Outbound, runtime: Runtime, peer: Peer) -> None:
    from adapters.hl7.destinations import parse_destinations
    from adapters.hl7.pump import Pump
    from adapters.hl7.sender import Sender
    from domain.ris.message_delivery import RetryPolicy

    assert ob.deliveries is not None
    assert ob.pool is not None
    destinations = parse_destinations(f"ris=127.0.0.1:{peer.port};timeout=5")
    sender = Sender(ob.deliveries, destinations, runtime.services.clock, RetryPolicy())
    pump = Pump(
        ob.reader(),
        ob.pool,
        lambda handed: [sender.send(delivery_id, version) for delivery_id, version in handed],
        runtime.services.clock,
    )

    def caught_up() -> None:
        # the policy, then the deliveries read model the pump reads (a projection)
        ob.wait_caught_up()
        deliveries = ob.deliveries
        assert deliveries is not None
        head = deliveries.recorder.max_notification_id() or 0
        assert runtime.services.sync.wait(Position(deliveries.name, head), timeout=30)

    for _ in range(10):  # one message per patient at a time; each run moves one on
        caught_up()
        if not pump.run_once():
            break
    caught_up()


def caught_up(runtime: Runtime) -> None:
    head = runtime.services.scheduling.recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position("scheduling", head))


def test_metrics_follow_real_traffic(runtime, client, metrics_url, outbound, peer, monkeypatch):
    # given a first scrape
    before = scrape(metrics_url)
    assert before.value("imaging_bridge_database_up") == 1
    assert before.types["imaging_bridge_bookings"] == "counter"
    booking_route = {"route": "/v1/appointments", "method": "POST", "status": "201"}
    requests_before = before.value_or_zero(
        "imaging_bridge_http_request_duration_seconds_count", **booking_route
    )

    # when a patient registers and books through the API
    headers = register(client, "metrics@example.org")
    booked = post_booking(client, headers, TUESDAY_9AM_NY)
    assert booked.status_code == 201, booked.text
    assert client.get(f"/v1/appointments/{booked.json()['id']}", headers=headers).status_code == 200
    caught_up(runtime)
    outbound.wait_caught_up()
    # and the RIS sends us two messages, one we accept and one we refuse
    with BackgroundListener(
        runtime.url, ListenerConfig(host="127.0.0.1", port=0), cipher=runtime.cipher
    ) as listener:
        accepted = segments(exchange(listener.port, adt("MET1")))["MSA"][1]
        refused = segments(
            exchange(listener.port, adt("MET2").replace(b"ADT^A08^ADT_A01", b"MDM^T02"))
        )["MSA"][1]
    during = scrape(metrics_url)

    # then the request latency counts the booking under its route template
    assert (
        during.value("imaging_bridge_http_request_duration_seconds_count", **booking_route)
        == requests_before + 1
    )
    routes = {
        s["route"] for s in during.series("imaging_bridge_http_request_duration_seconds_count")
    }
    assert "/v1/appointments/{appointment_id}" in routes
    assert not any(booked.json()["id"] in route for route in routes)
    # and the booking is counted
    assert (
        during.value("imaging_bridge_bookings_total")
        == before.value("imaging_bridge_bookings_total") + 1
    )
    assert during.value("imaging_bridge_appointments", status="booked") == 1
    # and the inbound messages by type and the ACK code we answered
    assert (accepted, refused) == ("AA", "AR")
    assert (
        during.value("imaging_bridge_hl7_inbound_messages_total", type="ADT^A08", ack_code="AA")
        == 1
    )
    assert (
        during.value("imaging_bridge_hl7_inbound_messages_total", type="MDM^T02", ack_code="AR")
        == 1
    )
    assert during.value("imaging_bridge_hl7_inbound_by_status", status="quarantined") == 1
    # and the registration's ADT^A04 and the booking's SIU^S12 wait in the HL7 queue
    assert during.value("imaging_bridge_delivery_queue_depth", channel="hl7") == 2
    # (for as long as it took since the booking: the events' real time, not the test clock's)
    assert 0 < during.value("imaging_bridge_delivery_queue_oldest_age_seconds", channel="hl7") < 60
    # (the booking's confirmation and reminders wait in the e-mail queue: no e-mail
    # worker runs here)
    assert during.value("imaging_bridge_delivery_queue_depth", channel="email") >= 1
    assert during.value("imaging_bridge_delivery_dead_letters", channel="hl7") == 0
    # and every read model is caught up, each reported
    lag = {
        (s["read_model"], s["source"])
        for s in during.series("imaging_bridge_projection_lag_events")
    }
    assert lag >= {
        ("catalog_view", "catalog"),
        ("availability", "scheduling"),
        ("appointment_history", "scheduling"),
        ("orders", "scheduling"),
        ("deliveries_view", "deliveries"),
        ("patient_merges", "registry"),
        ("deliveries", "scheduling"),
        ("deliveries", "registry"),
        ("secure_threads", "messaging"),
        ("deliveries", "messaging"),
        ("communications", "scheduling"),
    }
    assert (
        during.value(
            "imaging_bridge_projection_lag_events", read_model="availability", source="scheduling"
        )
        == 0
    )
    # and this process's access-log queue is reported, as its writer counts it
    assert "imaging_bridge_access_log_queue_length" in during.types
    access_log = runtime.services.access_log
    with monkeypatch.context() as patched:
        patched.setattr(
            access_log, "stats", lambda: {**type(access_log).stats(access_log), "pending": 7}
        )
        assert scrape(metrics_url).value("imaging_bridge_access_log_queue_length") == 7

    # when the pump sends them: the RIS refuses the first (AR), accepts the next (AA)
    pump_and_send(outbound, runtime, peer)
    after = scrape(metrics_url)

    # then the queue is empty, one dead letter waits, and the attempts count by ACK code
    assert after.value("imaging_bridge_delivery_queue_depth", channel="hl7") == 0
    assert after.value("imaging_bridge_delivery_queue_oldest_age_seconds", channel="hl7") == 0
    assert after.value("imaging_bridge_delivery_dead_letters", channel="hl7") == 1
    attempts = {
        (s["type"], s["ack_code"]): after.value("imaging_bridge_hl7_outbound_attempts_total", **s)
        for s in after.series("imaging_bridge_hl7_outbound_attempts_total")
    }
    assert attempts == {("ADT^A04", "AR"): 1, ("SIU^S12", "AA"): 1}


def test_projection_lag_shows_a_read_model_behind_its_log(database_url, tmp_path, clock):
    # given a runtime whose read models are not running, and a scrape
    runtime = make_runtime(database_url, tmp_path, clock, parts=Parts(projections=False))
    server = start_metrics_server(with_metrics(runtime), runtime)
    assert server is not None
    url = f"http://{server.host}:{server.port}"
    try:
        catalog = {"read_model": "catalog_view", "source": "catalog"}
        assert scrape(url).value("imaging_bridge_projection_lag_events", **catalog) == 0
        # when the catalog is written
        change = runtime.services.catalog.apply(demo_specs(), system_actor(source="test"))
        assert change.position is not None
        # then the catalog view is that many events behind
        behind = scrape(url).value("imaging_bridge_projection_lag_events", **catalog)
        assert behind == change.position.notification_id > 0
        # and when its projection runs and catches up, it is not behind any more
        runtime.projections.start()
        assert runtime.services.sync.wait(change.position, timeout=30)
        assert scrape(url).value("imaging_bridge_projection_lag_events", **catalog) == 0
    finally:
        server.stop()
        runtime.close()


def test_metrics_are_off_by_default_and_on_loopback_when_on(runtime, monkeypatch):
    # given the default settings (no METRICS_* in the environment)
    for name in ("METRICS_PORT", "METRICS_HOST", "METRICS_ALLOW"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    # then there is no metrics server at all
    assert defaults.metrics_port is None
    assert (
        start_metrics_server(runtime.settings.model_copy(update={"metrics_port": None}), runtime)
        is None
    )
    # and with only a port, it listens on loopback and serves loopback only
    assert defaults.metrics_host == "127.0.0.1"
    assert all(network.is_loopback for network in defaults.metrics_allow)
    server = start_metrics_server(with_metrics(runtime), runtime)
    assert server is not None
    try:
        assert server.host == "127.0.0.1"
        assert scrape(f"http://127.0.0.1:{server.port}").value("imaging_bridge_database_up") == 1
    finally:
        server.stop()


def test_an_address_outside_the_allowlist_is_refused(runtime):
    # given a metrics server that only a scraper on 10.0.0.0/8 may read
    settings = with_metrics(runtime, metrics_allow=[ip_network("10.0.0.0/8")])
    server = start_metrics_server(settings, runtime)
    assert server is not None
    try:
        # when this loopback client asks, then it is refused, without any metric
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10)
        assert response.status_code == 403
        assert "imaging_bridge" not in response.text
    finally:
        server.stop()


def test_the_allowlist_matches_networks_and_ipv4_mapped_addresses():
    allow = [ip_network("127.0.0.0/8"), ip_network("::1/128"), ip_network("192.0.2.0/24")]
    assert allowed("127.0.0.1", allow)
    assert allowed("::1", allow)
    assert allowed("::ffff:192.0.2.7", allow)
    assert not allowed("192.0.3.1", allow)
    assert not allowed("::ffff:198.51.100.1", allow)
    assert not allowed("not an address", allow)


def test_settings_take_the_allowlist_comma_separated(monkeypatch):
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.0/8, 2001:db8::/32")
    monkeypatch.setenv("METRICS_PORT", "9464")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.metrics_port == 9464
    assert [str(n) for n in settings.metrics_allow] == ["10.0.0.0/8", "2001:db8::/32"]
    monkeypatch.setenv("METRICS_ALLOW", "10.0.0.1/8")
    with pytest.raises(ValueError, match="metrics_allow"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_metrics_port_in_use_stops_the_command_with_one_line(runtime, capsys):
    # given a port that something else holds
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        # when the metrics server is asked for it, then the command stops, saying why
        with pytest.raises(typer.Exit) as stopped:
            start_metrics_server(with_metrics(runtime, metrics_port=taken), runtime)
    assert stopped.value.exit_code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: cannot serve metrics on 127.0.0.1:{taken}: ")
