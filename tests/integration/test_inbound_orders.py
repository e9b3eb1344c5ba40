"""Orders from the RIS: a change (ORC-1 XO) applied to the order and its read model, and
the orders read model rebuilt from the log equal to the one kept live."""

import pytest

from application.ris.inbound_ports import InboundMessage
from application.ris.orders import Orders
from domain.ris.order import CANCELLED, COMPLETED, FINAL, WAITING, UnknownOrderError
from projections.orders_view import PostgresOrderReader
from tests.integration.test_inbound_branches import ORDER, PID, hl7, seg
from tests.integration.test_inbound_effects import message, sync, twice

pytestmark = pytest.mark.integration


def orm(control: str, control_id: str, **obr: str) -> InboundMessage:
    """An ORM^O01 for the order PL1/FL1 (OBR fields by position as ``f<n>``)."""
    fields = {**ORDER, **{int(k[1:]): v for k, v in obr.items()}}
    orc = f"ORC|{control}|{fields[2]}|{fields[3]}"
    return message(hl7("ORM^O01^ORM_O01", control_id, PID, orc, seg("OBR", fields)).decode())


def test_a_change_order_is_applied_to_the_order_and_its_read_model(runtime):
    # Given an order the RIS placed
    handle = runtime.inbound.handle
    assert handle(orm("NW", "NW1")) == "applied"
    scheduling = runtime.services.scheduling
    placed = Orders(scheduling).find_order("PLACER:PL1", "FILLER:FL1")
    assert placed is not None
    assert (placed.procedure_code, placed.accession_number) == ("CTHEAD", "ACC1")

    # When it changes the procedure and the accession number (XO), twice over
    change = orm("XO", "XO1", f4="CTHEADC^CT head with contrast", f18="ACC2")
    assert twice(runtime, runtime.inbound, change) == "applied"

    # Then the order and the read model show the change, still waiting to be scheduled
    changed = Orders(scheduling).find_order("PLACER:PL1", "FILLER:FL1")
    assert changed is not None
    assert changed.id == placed.id
    assert (changed.status, changed.procedure_code, changed.procedure_text) == (
        WAITING,
        "CTHEADC",
        "CT head with contrast",
    )
    assert changed.accession_number == "ACC2"
    sync(runtime)
    [row] = PostgresOrderReader(runtime.pool).for_patient(placed.patient_id)
    assert (row.status, row.procedure_code, row.accession_number) == (WAITING, "CTHEADC", "ACC2")


def test_a_change_to_an_order_we_do_not_know_is_refused(runtime):
    with pytest.raises(UnknownOrderError):
        runtime.inbound.handle(orm("XO", "XO9", f2="PL9^PLACER", f3="FL9^FILLER"))
    assert Orders(runtime.services.scheduling).find_order("PLACER:PL9", "FILLER:FL9") is None


READ_MODEL = (
    "SELECT * FROM rm_orders ORDER BY id",
    "SELECT * FROM rm_results ORDER BY id",
    "SELECT * FROM rm_unmatched_results ORDER BY id",
)


def snapshot(runtime) -> list[list[tuple]]:
    with runtime.pool.connection() as conn:
        return [conn.execute(query).fetchall() for query in READ_MODEL]


def test_the_orders_read_model_rebuilt_from_the_log_equals_the_live_one(runtime):
    # Given orders placed, changed, cancelled, a result on one, and a result for no order
    handle = runtime.inbound.handle
    second = {"f2": "PL2^PLACER", "f3": "FL2^FILLER", "f18": "ACC3"}
    for msg in (
        orm("NW", "R1"),
        orm("NW", "R2", **second),
        orm("XO", "R3", f4="CTHEADC^CT head with contrast"),
        orm("CA", "R4", **second),
    ):
        assert handle(msg) == "applied"
    results = [
        seg("OBR", {**ORDER, 7: "20261201103000-0500", 25: "F"}),
        seg("OBR", {1: "2", 3: "FL7^FILLER", 4: "XR^X-ray", 18: "ACC7", 25: "P"}),
    ]
    oru = hl7("ORU^R01^ORU_R01", "R5", PID, *results).decode()
    assert handle(message(oru)) == "kept_for_review"
    sync(runtime)
    live = snapshot(runtime)
    orders, results, unmatched = live
    assert (len(orders), len(results), len(unmatched)) == (2, 1, 1)
    order = Orders(runtime.services.scheduling).find_order("", "FILLER:FL1")
    assert (order.result_status, order.procedure_code) == (FINAL, "CTHEADC")
    shown = PostgresOrderReader(runtime.pool).for_patient(order.patient_id)
    assert sorted((r.status, r.result_status, r.procedure_code) for r in shown) == [
        (CANCELLED, None, "CTHEAD"),
        (COMPLETED, FINAL, "CTHEADC"),  # a final result: the exam was done
    ]

    # When the read model is damaged and rebuilt from the log
    with runtime.pool.connection() as conn:
        conn.execute("DELETE FROM rm_orders")
        conn.execute("DELETE FROM rm_results")
        conn.execute("DELETE FROM rm_unmatched_results")
    assert snapshot(runtime) != live
    notifications = runtime.projections.rebuild("orders")

    # Then it is the same, row for row, and kept live again
    assert notifications > 0
    assert snapshot(runtime) == live
    assert runtime.projections.running()["orders"]
