"""Slot-search answers are kept while the read models are unchanged, and never outlive a
booking: once its consistency token is honoured the booked time is not offered; an
unchanged answer revalidates with its ETag as a bodiless 304."""

from datetime import datetime, timedelta

import pytest

from api.consistency import HEADER
from tests.support import catalog_ids, post_booking, register

pytestmark = pytest.mark.integration

QUERY = {"start": "2026-12-03T00:00:00-05:00", "end": "2026-12-04T00:00:00-05:00"}


def search(client, types, locations, **headers):
    params = {
        **QUERY,
        "appointment_type_id": types["ct-head"],
        "location_id": locations["riverside"],
    }
    return client.get("/v1/slots", params=params, headers=headers)


def test_a_booked_slot_is_not_offered_once_its_token_is_honoured(client):
    ids = catalog_ids(client)
    first = search(client, *ids)
    assert first.status_code == 200
    offered = [slot["start"] for slot in first.json()]
    assert offered == [slot["start"] for slot in search(client, *ids).json()]  # kept
    for n, start in enumerate(offered[:5]):
        patient = register(client, f"slot-cache-{n}@example.org")
        booked = post_booking(client, patient, start, "ct-head", ids=ids)
        assert booked.status_code == 201, booked.text
        after = search(client, *ids, **{HEADER: booked.headers[HEADER]})
        assert after.status_code == 200
        assert start not in {slot["start"] for slot in after.json()}


def test_an_unchanged_answer_revalidates_as_304_and_a_changed_one_does_not(client):
    ids = catalog_ids(client)
    first = search(client, *ids)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = search(client, *ids, **{"If-None-Match": etag})
    assert (again.status_code, again.content) == (304, b"")
    booked = post_booking(
        client, register(client, "etag@example.org"), first.json()[0]["start"], ids=ids
    )
    assert booked.status_code == 201
    changed = search(client, *ids, **{"If-None-Match": etag, HEADER: booked.headers[HEADER]})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_an_answer_is_not_given_again_once_its_first_slot_has_begun(client, clock):
    ids = catalog_ids(client)
    first = [slot["start"] for slot in search(client, *ids).json()]
    clock.set(datetime.fromisoformat(first[0]) + timedelta(minutes=1))
    later = [slot["start"] for slot in search(client, *ids).json()]
    assert first[0] not in later
    assert later == first[1:]  # a slot under way is not offered


def test_an_answer_is_gzipped_for_clients_that_accept_it_under_its_own_etag(client):
    ids = catalog_ids(client)
    plain = search(client, *ids, **{"Accept-Encoding": "identity"})
    gzipped = search(client, *ids, **{"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert plain.headers["Vary"] == gzipped.headers["Vary"] == "Accept-Encoding"
    assert gzipped.json() == plain.json() != []  # decoded by the client
    assert gzipped.headers["ETag"] != plain.headers["ETag"]
    again = search(
        client, *ids, **{"Accept-Encoding": "gzip", "If-None-Match": gzipped.headers["ETag"]}
    )
    assert again.status_code == 304
    other = search(
        client, *ids, **{"Accept-Encoding": "identity", "If-None-Match": gzipped.headers["ETag"]}
    )
    assert other.status_code == 200
