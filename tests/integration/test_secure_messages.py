"""Secure messages through the API, both sides: a patient writes, staff of the patient's
centre see it unread, read it (and it is read), reply (and the patient sees it unread),
assign, close (the patient can no longer reply) and reopen; another patient's thread and
another centre's staff get 404; bad subjects and bodies get 422; every read and write is
in the access log; the text is in no table in clear."""

from uuid import UUID, uuid4

import pytest

from application.base import Position
from domain.location import Location
from tests.integration.test_phi_at_rest import scan
from tests.support import RIS_BIRTH, book, catalog_ids, register, ris_patient, staff_headers

pytestmark = pytest.mark.integration

SECRET_BODY = "Quillorbant sideeffects after my scan, is that normal?"


def me(client, headers) -> str:
    return client.get("/v1/patients/me", headers=headers).json()["id"]


def access_rows(runtime, resource_id: str) -> list[tuple[str, str, str, str]]:
    """(role, action, outcome, patient id) of the access log's rows about ``resource_id``,
    oldest first."""
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT role, action, outcome, coalesce(patient_id::text, '') FROM phi_access_log"
            " WHERE resource_id = %s ORDER BY id",
            (resource_id,),
        ).fetchall()
    return [tuple(row) for row in rows]


@pytest.fixture
def scene(client, runtime, clock):
    """Ana booked at riverside, Bo at lakeshore; a riverside scheduler, a second one, and
    a lakeshore scheduler."""
    types, locations = catalog_ids(client)
    ana = register(client, "ana@example.org")
    bo = register(client, "bo@example.org")
    book(client, ana, types, locations, "riverside", "2026-12-01T09:00:00-05:00")
    book(client, bo, types, locations, "lakeshore", "2026-12-01T09:00:00-06:00")
    client.get("/v1/appointments", headers=bo)  # read models caught up
    riverside = [Location.create_id("riverside")]
    desk = staff_headers(
        client, runtime, clock, "scheduler", email="desk@staff.example.org", centres=riverside
    )
    other = staff_headers(
        client, runtime, clock, "scheduler", email="desk2@staff.example.org", centres=riverside
    )
    lakeshore = staff_headers(
        client,
        runtime,
        clock,
        "scheduler",
        email="lake@staff.example.org",
        centres=[Location.create_id("lakeshore")],
    )
    return {"ana": ana, "bo": bo, "desk": desk, "other": other, "lakeshore": lakeshore}


def start(client, headers, subject="About my scan", body=SECRET_BODY) -> str:
    answer = client.post(
        "/v1/me/messages", headers=headers, json={"subject": subject, "body": body}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["thread_id"]


def caught_up(runtime) -> None:
    """The thread list holds every message written so far (by either side: a caller's
    own writes are waited for anyway)."""
    head = runtime.services.messaging.log.recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position("messaging", head))


def listed(client, runtime, path, headers, **params) -> dict[str, dict]:
    caught_up(runtime)
    answer = client.get(path, headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    return {item["id"]: item for item in answer.json()["items"]}


def test_a_conversation_from_both_sides(client, runtime, scene):
    ana, desk = scene["ana"], scene["desk"]
    # Given Ana writes to the centre
    thread_id = start(client, ana)

    # Then she sees it, read by her; staff of her centre see it, unread and unassigned
    mine = listed(client, runtime, "/v1/me/messages", ana)
    assert mine[thread_id]["subject"] == "About my scan"
    assert mine[thread_id]["unread"] is False
    staff_list = listed(
        client, runtime, "/v1/staff/messages", desk, unread="true", assigned="unassigned"
    )
    assert staff_list[thread_id]["patient_id"] == me(client, ana)
    assert staff_list[thread_id]["unread"] is True

    # When staff open it
    opened = client.get(f"/v1/staff/messages/{thread_id}", headers=desk)
    assert opened.status_code == 200, opened.text
    assert opened.json()["unread"] == 1
    assert [m["body"] for m in opened.json()["messages"]] == [SECRET_BODY]
    # Then it is read for staff
    assert thread_id not in listed(client, runtime, "/v1/staff/messages", desk, unread="true")
    again = client.get(f"/v1/staff/messages/{thread_id}", headers=desk).json()
    assert again["unread"] == 0

    # When staff reply
    reply = client.post(
        f"/v1/staff/messages/{thread_id}", headers=desk, json={"body": "Yes, it is.\nCall us."}
    )
    assert reply.status_code == 201, reply.text
    # Then Ana has an unread message, which reading the thread clears
    assert listed(client, runtime, "/v1/me/messages", ana)[thread_id]["unread"] is True
    hers = client.get(f"/v1/me/messages/{thread_id}", headers=ana).json()
    assert hers["unread"] == 1
    assert [(m["author_role"], m["body"]) for m in hers["messages"]] == [
        ("patient", SECRET_BODY),
        ("staff", "Yes, it is.\nCall us."),
    ]
    assert "author_id" not in hers["messages"][1]
    assert listed(client, runtime, "/v1/me/messages", ana)[thread_id]["unread"] is False

    # And Ana replies: unread for staff again
    assert (
        client.post(f"/v1/me/messages/{thread_id}", headers=ana, json={"body": "Thanks"})
    ).status_code == 201
    assert thread_id in listed(client, runtime, "/v1/staff/messages", desk, unread="true")


def test_assignment_close_and_reopen(client, runtime, scene):
    ana, desk, other = scene["ana"], scene["desk"], scene["other"]
    thread_id = start(client, ana)
    other_id = str(runtime.services.registry.account_by_email("desk2@staff.example.org").id)

    # When the desk gives the thread to the other scheduler
    given = client.post(
        f"/v1/staff/messages/{thread_id}/assign", headers=desk, json={"staff_id": other_id}
    )
    assert given.status_code == 200, given.text
    # Then it is theirs, and nobody else's or unassigned
    assert thread_id in listed(client, runtime, "/v1/staff/messages", other, assigned="mine")
    assert thread_id not in listed(client, runtime, "/v1/staff/messages", desk, assigned="mine")
    assert thread_id not in listed(
        client, runtime, "/v1/staff/messages", desk, assigned="unassigned"
    )
    assert listed(client, runtime, "/v1/staff/messages", desk)[thread_id]["assigned_to"] == other_id

    # A patient's account, or no account, is no assignee
    ana_account = str(runtime.services.registry.account_by_email("ana@example.org").id)
    for nobody in (ana_account, str(uuid4())):
        refused = client.post(
            f"/v1/staff/messages/{thread_id}/assign", headers=desk, json={"staff_id": nobody}
        )
        assert refused.status_code == 422, refused.text

    # When it is closed, Ana cannot reply, nor can staff, until it is reopened
    assert client.post(f"/v1/staff/messages/{thread_id}/close", headers=other).status_code == 200
    assert listed(client, runtime, "/v1/me/messages", ana)[thread_id]["status"] == "closed"
    assert thread_id in listed(client, runtime, "/v1/staff/messages", desk, status="closed")
    assert thread_id not in listed(client, runtime, "/v1/staff/messages", desk, status="open")
    for path, headers in (
        (f"/v1/me/messages/{thread_id}", ana),
        (f"/v1/staff/messages/{thread_id}", desk),
    ):
        closed = client.post(path, headers=headers, json={"body": "hello?"})
        assert closed.status_code == 409, closed.text
        assert closed.json()["code"] == "thread_closed"
    assert client.post(f"/v1/staff/messages/{thread_id}/reopen", headers=desk).status_code == 200
    reply = client.post(f"/v1/me/messages/{thread_id}", headers=ana, json={"body": "hello?"})
    assert reply.status_code == 201, reply.text

    # And the aggregate remembers every step
    thread = runtime.services.messaging.log.thread(reply.json()["thread_id"])
    assert str(thread.assigned_to) == other_id
    assert thread.status == "open"
    assert len(thread.messages) == 2


def test_staff_write_first(client, runtime, scene):
    ana, desk = scene["ana"], scene["desk"]
    patient_id = me(client, ana)
    started = client.post(
        "/v1/staff/messages",
        headers=desk,
        json={"patient_id": patient_id, "subject": "Your preparation", "body": "Please fast."},
    )
    assert started.status_code == 201, started.text
    thread_id = started.json()["thread_id"]
    mine = listed(client, runtime, "/v1/me/messages", ana)
    assert mine[thread_id]["unread"] is True
    assert mine[thread_id]["last_author_role"] == "staff"
    # Nobody they may not reach, nor an unknown patient
    for unknown in (me(client, scene["bo"]), str(uuid4())):
        refused = client.post(
            "/v1/staff/messages",
            headers=desk,
            json={"patient_id": unknown, "subject": "Hello", "body": "Hi"},
        )
        assert refused.status_code == 404, refused.text


def test_other_peoples_threads_answer_404_and_are_logged(client, runtime, scene):
    ana, bo, lakeshore = scene["ana"], scene["bo"], scene["lakeshore"]
    thread_id = start(client, ana)

    # Bo, and staff of a centre Ana never booked at, get 404 on every route
    assert client.get(f"/v1/me/messages/{thread_id}", headers=bo).status_code == 404
    assert (
        client.post(f"/v1/me/messages/{thread_id}", headers=bo, json={"body": "x"}).status_code
        == 404
    )
    assert thread_id not in listed(client, runtime, "/v1/me/messages", bo)
    assert thread_id not in listed(client, runtime, "/v1/staff/messages", lakeshore)
    for path, body in (
        ("", None),
        ("", {"body": "x"}),
        ("/assign", {"staff_id": None}),
        ("/close", None),
        ("/reopen", None),
    ):
        url = f"/v1/staff/messages/{thread_id}{path}"
        answer = (
            client.get(url, headers=lakeshore)
            if path == "" and body is None
            else client.post(url, headers=lakeshore, json=body)
        )
        assert answer.status_code == 404, (path, answer.text)
    assert client.get(f"/v1/me/messages/{uuid4()}", headers=ana).status_code == 404

    # And the access log holds Ana's writes and reads, and each refusal
    client.get(f"/v1/me/messages/{thread_id}", headers=ana)
    rows = access_rows(runtime, thread_id)
    ana_id = me(client, ana)
    assert ("patient", "post", "allowed", ana_id) in rows
    assert ("patient", "read", "allowed", ana_id) in rows
    assert ("patient", "read", "denied_or_missing", me(client, bo)) in rows
    refused_staff = [r for r in rows if r[0] == "scheduler"]
    assert len(refused_staff) == 5
    assert all(r[2] in {"denied_or_missing", "not_found"} for r in refused_staff)


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("About my scan", ""),
        ("About my scan", "   \n  "),
        ("About my scan", "x" * 5001),
        ("About my scan", "bell \x07 here"),
        ("About my scan", "escape \x1b[31m"),
        ("About my scan", "nul \x00 byte"),
        ("", "hello"),
        ("s" * 121, "hello"),
        ("two\nlines", "hello"),
    ],
)
def test_bad_subjects_and_bodies_get_422(client, subject, body):
    ana = register(client, "ana@example.org")
    answer = client.post("/v1/me/messages", headers=ana, json={"subject": subject, "body": body})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] in {"invalid_value", "validation_error", "invalid_request"}
    assert answer.json()["detail"]


def test_a_reply_with_a_control_character_gets_422(client):
    ana = register(client, "ana@example.org")
    thread_id = start(client, ana)
    answer = client.post(
        f"/v1/me/messages/{thread_id}", headers=ana, json={"body": "unit \x1f separator"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_value"


def test_the_text_is_in_no_table_in_clear(client, runtime, scene):
    # Given a thread whose subject and messages hold words found nowhere else
    thread_id = start(client, scene["ana"], subject="Zorblaxian subject line")
    client.post(f"/v1/staff/messages/{thread_id}", headers=scene["desk"], json={"body": "Vrentish"})
    client.get("/v1/me/messages", headers=scene["ana"])  # read model caught up
    runtime.services.access_log.flush()
    # ... readable with the key
    thread = runtime.services.messaging.log.thread(UUID(thread_id))
    assert [m.body for m in thread.messages] == [SECRET_BODY, "Vrentish"]

    # When every column of every table is read, Then none holds them in clear
    needles = {"Quillorbant": "body", "Zorblaxian": "subject", "Vrentish": "reply"}
    hits, read = scan(runtime.url, needles)
    assert {"public.messaging_events.state", "public.phi_access_log.reason"} <= read
    assert hits == [], "\n".join(hits)


def test_threads_follow_an_account_linked_to_the_centres_record(client, runtime, clock):
    # Given Ana wrote to the centre before linking her account to the RIS's record of her
    ana = register(client, "ana@example.org")
    thread_id = start(client, ana)
    ris_id = ris_patient(runtime)
    desk = staff_headers(client, runtime, clock, "scheduler")
    code = client.post(f"/v1/staff/patients/{ris_id}/activation-codes", headers=desk)
    assert code.status_code == 201, code.text

    # When she links it (her record merges into the centre's)
    linked = client.post(
        "/v1/me/activation",
        headers=ana,
        json={"code": code.json()["code"], "birth_date": RIS_BIRTH.isoformat()},
    )
    assert linked.status_code == 200, linked.text
    fresh = {"Authorization": f"Bearer {linked.json()['tokens']['access_token']}"}
    caught_up(runtime)
    head = runtime.services.registry.recorder.max_notification_id()
    assert runtime.services.sync.wait(Position("registry", head))

    # Then her thread is still hers, listed and readable, and staff see the centre's record
    assert thread_id in listed(client, runtime, "/v1/me/messages", fresh)
    assert client.get(f"/v1/me/messages/{thread_id}", headers=fresh).status_code == 200
    reply = client.post(f"/v1/me/messages/{thread_id}", headers=fresh, json={"body": "Still me"})
    assert reply.status_code == 201, reply.text
    assert listed(client, runtime, "/v1/staff/messages", desk)[thread_id]["patient_id"] == ris_id
    staff_view = client.get(f"/v1/staff/messages/{thread_id}", headers=desk).json()
    assert staff_view["patient_id"] == ris_id
