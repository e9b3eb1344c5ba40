"""A read model dropped and rebuilt from the log equals the one built live."""

import pytest

from tests.support import catalog_ids, register

pytestmark = pytest.mark.integration

TABLES = {
    "appointment_history": "SELECT * FROM rm_appointments ORDER BY id",
    "availability": "SELECT * FROM rm_busy ORDER BY calendar_id, holder",
    "catalog_view": "SELECT 'l', id::text, spec::text FROM rm_locations UNION ALL "
    "SELECT 'r', id::text, spec::text FROM rm_resources UNION ALL "
    "SELECT 't', id::text, spec::text FROM rm_appointment_types ORDER BY 1, 2",
}


def snapshot(runtime, name):
    with runtime.pool.connection() as conn:
        return conn.execute(TABLES[name]).fetchall()


@pytest.mark.parametrize("name", sorted(TABLES))
def test_rebuilt_read_model_equals_live(client, runtime, name):
    headers = register(client, "kim@example.org")
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
        assert response.status_code == 201
        ids.append(response.json()["id"])
    client.post(f"/v1/appointments/{ids[0]}/cancel", headers=headers, json={"reason": "r"})
    client.post(
        f"/v1/appointments/{ids[1]}/reschedule",
        headers=headers,
        json={"start": "2026-12-04T15:00:00-06:00"},
    )
    client.get("/v1/appointments", headers=headers)  # waits for the read models
    live = snapshot(runtime, name)
    assert live

    # Damage the read model, so only a real rebuild from the log can restore it.
    table = {"appointment_history": "rm_appointments", "availability": "rm_busy"}.get(
        name, "rm_locations"
    )
    with runtime.pool.connection() as conn:
        conn.execute(f"DELETE FROM {table}")
    assert snapshot(runtime, name) != live

    notifications = runtime.projections.rebuild(name)

    assert notifications > 0
    assert snapshot(runtime, name) == live
    assert runtime.projections.running()[name]
