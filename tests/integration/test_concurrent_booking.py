"""Many patients race for one slot through the real HTTP server: exactly one wins."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import httpx
import pytest

from tests.support import catalog_ids, register

pytestmark = pytest.mark.integration

CONTENDERS = 24
SLOT = "2026-12-02T07:00:00-05:00"


def test_concurrent_bookings_of_one_slot_yield_one_201_and_the_rest_409(http, live_server):
    types, locations = catalog_ids(http)
    # MRI 2 at Riverside opens at 08:00, so at 07:00 only MRI 1 is open: one scanner, one slot.
    headers = [register(http, f"racer{i}@example.org") for i in range(CONTENDERS)]
    body = {
        "appointment_type_id": types["mri-brain"],
        "location_id": locations["riverside"],
        "start": SLOT,
    }
    barrier = Barrier(CONTENDERS)

    def attempt(auth: dict[str, str]) -> int:
        with httpx.Client(base_url=live_server.url, timeout=30) as own:
            barrier.wait()
            return own.post("/v1/appointments", headers=auth, json=body).status_code

    with ThreadPoolExecutor(max_workers=CONTENDERS) as pool:
        statuses = list(pool.map(attempt, headers))

    assert sorted(statuses) == [201] + [409] * (CONTENDERS - 1)

    # The winner sees it; the slot is gone from search (after the read model catches up,
    # which the winner's read waits for).
    winners = [h for h, s in zip(headers, statuses, strict=True) if s == 201]
    assert len(http.get("/v1/appointments", headers=winners[0]).json()) == 1
    slots = http.get(
        "/v1/slots",
        params={
            "appointment_type_id": types["mri-brain"],
            "location_id": locations["riverside"],
            "start": "2026-12-02T12:00:00Z",
            "end": "2026-12-02T13:00:00Z",
        },
    ).json()
    assert SLOT not in {s["start"] for s in slots}
    losers = [h for h, s in zip(headers, statuses, strict=True) if s == 409]
    assert all(http.get("/v1/appointments", headers=h).json() == [] for h in losers[:3])


def test_concurrent_bookings_fill_both_scanners_then_refuse(http, live_server):
    """09:00 is a slot of both Riverside MRIs (30-minute knee scans from their 07:00 and
    08:00 openings): two of the racers get a scanner each."""
    types, locations = catalog_ids(http)
    headers = [register(http, f"pair{i}@example.org") for i in range(16)]
    body = {
        "appointment_type_id": types["mri-knee"],
        "location_id": locations["riverside"],
        "start": "2026-12-02T09:00:00-05:00",
    }
    barrier = Barrier(len(headers))

    def attempt(auth: dict[str, str]) -> tuple[int, str]:
        with httpx.Client(base_url=live_server.url, timeout=30) as own:
            barrier.wait()
            response = own.post("/v1/appointments", headers=auth, json=body)
            return response.status_code, response.json().get("resource_id", "")

    with ThreadPoolExecutor(max_workers=len(headers)) as pool:
        results = list(pool.map(attempt, headers))

    won = [resource for status, resource in results if status == 201]
    assert len(won) == 2
    assert len(set(won)) == 2
    assert sum(status == 409 for status, _ in results) == len(headers) - 2
