"""What the API tells a client who gets something slightly wrong: how to write an instant
with an offset in a URL (documented on every such query parameter), and that a time which
was never a slot is not a slot (rather than "no longer available")."""

import pytest

from tests.support import catalog_ids, post_booking, register

pytestmark = pytest.mark.integration

TUESDAY_9AM_NY = "2026-12-01T09:00:00-05:00"


def query_parameters(openapi: dict) -> dict[tuple[str, str], dict]:
    """Every query parameter of every operation: (path, name) -> its OpenAPI object."""
    found = {}
    for path, operations in openapi["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    found[(path, parameter["name"])] = parameter
    return found


def test_every_instant_in_a_query_string_documents_the_plus_encoding(client):
    # given the published API description
    parameters = query_parameters(client.get("/openapi.json").json())
    # then the slot search, the staff day list and the audit log explain how to write
    # an offset such as -05:00 or +01:00 in a URL
    named = [
        ("/v1/slots", "start"),
        ("/v1/slots", "end"),
        ("/v1/staff/appointments", "start"),
        ("/v1/staff/appointments", "end"),
        ("/v1/audit/access", "from"),
        ("/v1/audit/access", "to"),
    ]
    for key in named:
        description = parameters[key].get("description", "")
        assert "%2B" in description, key
        assert "offset" in description, key
    # and so does any other query parameter that takes an instant
    instants = [
        key
        for key, parameter in parameters.items()
        if parameter.get("schema", {}).get("format") == "date-time"
    ]
    assert set(instants) >= {key for key in named if key[0] != "/v1/audit/access"}
    for key in instants:
        assert "%2B" in parameters[key].get("description", ""), key


def test_the_encoding_the_docs_describe_works(client):
    # given an exam and a location; when a client searches with +00:00 written as %2B
    types, locations = catalog_ids(client)
    url = (
        f"/v1/slots?appointment_type_id={types['ct-head']}&location_id={locations['riverside']}"
        "&start=2026-12-01T14:00:00%2B00:00&end=2026-12-01T15:00:00%2B00:00"
    )
    encoded = client.get(url)
    # then it finds the slots; with a bare +, the URL reads it as a space and says so
    assert encoded.status_code == 200, encoded.text
    assert TUESDAY_9AM_NY in {slot["start"] for slot in encoded.json()}
    bare = client.get(url.replace("%2B", "+"))
    assert (bare.status_code, bare.json()["code"]) == (422, "validation_error")


def book(client, headers, start: str, code: str = "ct-head", location: str = "riverside"):
    return post_booking(client, headers, start, code, location)


def test_a_time_that_was_never_a_slot_is_refused_as_not_a_slot(client):
    # given a patient, and the 15-minute CT slots at Riverside from 09:00 (free)
    headers = register(client, "nadia@example.org")
    # when they book 09:07, which is inside opening hours but no slot starts then
    off_grid = book(client, headers, "2026-12-01T09:07:00-05:00")
    # then the booking is refused, saying it is not a slot and where the slots are
    assert (off_grid.status_code, off_grid.json()["code"]) == (422, "not_a_slot")
    assert "/v1/slots" in off_grid.json()["detail"]
    # and nothing was booked
    assert client.get("/v1/appointments", headers=headers).json() == []


def test_a_taken_slot_is_no_longer_available_but_an_overlapping_non_slot_is_not_a_slot(client):
    # given 09:00 booked by one patient
    first = register(client, "olga@example.org")
    assert book(client, first, TUESDAY_9AM_NY).status_code == 201
    second = register(client, "pim@example.org")
    # when another patient books the same slot, then it is no longer available
    taken = book(client, second, TUESDAY_9AM_NY)
    assert (taken.status_code, taken.json()["code"]) == (409, "slot_unavailable")
    # when they book 09:05 (overlapping the booking, but never a slot), it is not a slot
    overlapping = book(client, second, "2026-12-01T09:05:00-05:00")
    assert (overlapping.status_code, overlapping.json()["code"]) == (422, "not_a_slot")
    # and an offered slot still books
    assert book(client, second, "2026-12-01T09:15:00-05:00").status_code == 201


def test_rescheduling_to_a_time_that_was_never_a_slot_is_refused_as_not_a_slot(client):
    # given a booked appointment
    headers = register(client, "quinn@example.org")
    booked = book(client, headers, TUESDAY_9AM_NY)
    assert booked.status_code == 201
    # when it is moved to 10:10, which no slot starts at
    moved = client.post(
        f"/v1/appointments/{booked.json()['id']}/reschedule",
        headers=headers,
        json={"start": "2026-12-01T10:10:00-05:00", "reason": "later"},
    )
    # then the move is refused as not a slot, and the appointment keeps its time
    assert (moved.status_code, moved.json()["code"]) == (422, "not_a_slot")
    again = client.get(f"/v1/appointments/{booked.json()['id']}", headers=headers).json()
    assert again["start"] == TUESDAY_9AM_NY
