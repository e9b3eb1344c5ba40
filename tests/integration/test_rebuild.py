"""A read model dropped and rebuilt from the log equals the one built live: every table
of every read model (catalog, appointments, busy time, orders, results and unmatched
results, deliveries and their attempts, patient merges, the patient lookup's keyed digests)
is compared before and after, so a rebuild must restore
its own tables exactly and leave the others alone."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.clock import SystemClock
from adapters.hl7.destinations import parse_destinations
from adapters.hl7.sender import Sender
from application.base import Position
from domain.ris.message_delivery import ACCEPTED, RetryPolicy
from projections.catalog_view import TABLES as CATALOG_TABLES
from tests.integration.mllp_peer import Peer
from tests.integration.test_inbound_effects import SIU_ON_OUR_CT, corpus, message, sync
from tests.support import catalog_ids, lift_booking_caps, register, staff_headers

pytestmark = pytest.mark.integration

READ_MODELS = {
    "catalog_view": CATALOG_TABLES,
    "appointment_history": ("rm_appointments",),
    "availability": ("rm_busy",),
    "orders": ("rm_orders", "rm_results", "rm_unmatched_results"),
    "deliveries_view": ("rm_deliveries", "rm_delivery_attempts"),
    "patient_merges": ("rm_patient_merges",),
    "patient_lookup": ("rm_patient_lookup",),
    "patient_phones": ("rm_patient_phones",),
    "secure_threads": ("rm_secure_threads",),
}


def test_the_compared_tables_are_the_read_models_own():
    """The table lists above are the projections' own (a new table is compared too)."""
    from projections.runners import PROJECTIONS

    for name, (_, projection) in PROJECTIONS.items():
        assert tuple(projection.tables) == tuple(READ_MODELS[name])
    assert set(READ_MODELS) == set(PROJECTIONS)


def snapshot(runtime) -> dict[str, list[str]]:
    """Every row of every read-model table, as text, in a stable order."""
    with runtime.pool.connection() as conn:
        return {
            table: [row[0] for row in conn.execute(f"SELECT t::text FROM {table} t ORDER BY 1")]
            for tables in READ_MODELS.values()
            for table in tables
        }


class Outside:
    """The outbound side's delivery policy, and a RIS that ACKs (the deliveries read model
    is one of the runtime's projections)."""

    def __init__(self, runtime, ris: Peer) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.model_copy(
            update={"hl7_destinations": f"ris=127.0.0.1:{ris.port};timeout=10"}
        )
        self.outbound = runtime.start_outbound(
            self.settings, pump=False, workers=0, clock=SystemClock()
        )

    def send_all(self) -> int:
        """Send every delivery due now, one at a time, as a worker would; how many."""
        assert self.outbound.deliveries is not None
        sender = Sender(
            self.outbound.deliveries,
            parse_destinations(self.settings.hl7_destinations),
            SystemClock(),
            RetryPolicy(),
        )
        self.caught_up()
        sent = 0
        for delivery in self.outbound.desk().search(status="queued", channel="hl7", limit=100):
            assert sender.send(delivery.id, delivery.version) == ACCEPTED
            sent += 1
        return sent

    def caught_up(self) -> None:
        self.outbound.wait_caught_up()
        deliveries = self.outbound.deliveries
        assert deliveries is not None
        head = deliveries.recorder.max_notification_id() or 0
        if head:
            assert self.runtime.projections.wait(Position(deliveries.name, head), timeout=30)

    def stop(self) -> None:
        self.outbound.stop()


@pytest.fixture
def outside(runtime) -> Iterator[Outside]:
    with Peer() as ris:
        side = Outside(runtime, ris)
        try:
            yield side
        finally:
            side.stop()


def live_history(client, runtime, clock, outside: Outside) -> None:
    """Given a history touching every read model: bookings cancelled, moved and noted;
    a catalog change; RIS orders, results (one for nobody's order), a merge of two
    records and a RIS booking; deliveries sent and ACKed."""
    lift_booking_caps(runtime)
    headers = register(client, "kim@example.org")
    phone = client.patch("/v1/patients/me", headers=headers, json={"phone": "+1 312 555 0142"})
    assert phone.status_code == 200, phone.text
    types, locations = catalog_ids(client)
    ids = []
    for hour in (8, 9, 10, 11):
        response = client.post(
            "/v1/appointments",
            headers=headers,
            json={
                "appointment_type_id": types["us-abdomen"],
                "location_id": locations["lakeshore"],
                "start": f"2026-12-03T{hour:02d}:00:00-06:00",
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    cancelled = client.post(
        f"/v1/appointments/{ids[0]}/cancel", headers=headers, json={"reason": "r"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    moved = client.post(
        f"/v1/appointments/{ids[1]}/reschedule",
        headers=headers,
        json={"start": "2026-12-04T15:00:00-06:00"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["id"] == ids[1]
    assert datetime.fromisoformat(moved.json()["start"]) == datetime(2026, 12, 4, 21, tzinfo=UTC)
    noted = client.patch(f"/v1/appointments/{ids[2]}", headers=headers, json={"notes": "ramp"})
    assert noted.status_code == 200, noted.text

    scheduler = staff_headers(client, runtime, clock, "scheduler")
    closed = client.post(
        "/v1/staff/catalog/resources/riverside-mri-2/closures",
        headers=scheduler,
        json={"date": "2026-12-07", "reason": "maintenance"},
    )
    assert closed.status_code == 200, closed.text
    # A secure thread the patient starts, the desk reads and closes (no staff message:
    # its e-mail notice is no delivery the RIS takes)
    thread = client.post(
        "/v1/me/messages", headers=headers, json={"subject": "Parking", "body": "Is there any?"}
    )
    assert thread.status_code == 201, thread.text
    thread_path = f"/v1/staff/messages/{thread.json()['thread_id']}"
    assert client.get(thread_path, headers=scheduler).status_code == 200
    assert client.post(f"{thread_path}/close", headers=scheduler).status_code == 200

    inbound = runtime.inbound
    for text in (
        corpus("ADT_A08/dcm4che_1.hl7"),
        corpus("ORM_O01/dcm4che_1.hl7"),  # an order for that patient
        corpus("OMI_O23/dcm4che_1.hl7"),
        corpus("ORU_R01/dcm4che_1.hl7"),  # a result on the OMI's order
        corpus("ORU_R01/hapi_1.hl7"),  # a result for an accession nobody ordered
        corpus("SIU_S12/mirth_1.hl7", **SIU_ON_OUR_CT),  # the RIS books our CT
        # A second record of a patient, then merged into another (ADT^A40)
        corpus("ADT_A08/dcm4che_1.hl7", **{"583295^^^ADT1": "OLD_PID_1^^^ADT1"}),
        corpus("ADT_A40/dcm4che_1.hl7"),
    ):
        assert inbound.handle(message(text)) in {"applied", "kept_for_review"}

    assert outside.send_all() > 0
    sync(runtime)
    outside.caught_up()
    messaging = runtime.services.messaging.log
    head = messaging.recorder.max_notification_id() or 0
    assert runtime.projections.wait(Position(messaging.name, head), timeout=30)
    assert client.get("/v1/appointments", headers=headers).status_code == 200


@pytest.fixture
def live(client, runtime, clock, outside) -> dict[str, list[str]]:
    live_history(client, runtime, clock, outside)
    before = snapshot(runtime)
    empty = [table for table, rows in before.items() if not rows]
    assert empty == [], "the history must put rows in every read-model table"
    return before


def rebuild(runtime, outside: Outside, name: str) -> Any:
    return runtime.projections.rebuild(name)


@pytest.mark.parametrize("name", sorted(READ_MODELS))
def test_a_rebuilt_read_model_equals_the_live_one(runtime, outside, live, name):
    # Damage the read model, so only a real rebuild from the log can restore it.
    with runtime.pool.connection() as conn:
        for table in READ_MODELS[name]:
            conn.execute(f"DELETE FROM {table}")
    damaged = snapshot(runtime)
    assert all(damaged[table] == [] for table in READ_MODELS[name])

    rebuild(runtime, outside, name)

    assert snapshot(runtime) == live
    assert runtime.projections.running()[name]
