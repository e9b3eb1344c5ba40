"""Messages with the centre through the portal's pages: a patient writes, staff reply
through the API, the patient sees "New reply", opens the conversation (read, logged)
and replies; a form without its token is refused; an empty or unusable message is said
beside the field; a closed conversation takes no reply; another patient's conversation
is a 404 page; the pages speak Spanish."""

import re
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from application.base import Position
from tests.integration.test_portal_pages import assert_page
from tests.support import audit_rows, form_token, patient_of, portal_register, staff_headers

pytestmark = pytest.mark.integration


def caught_up(runtime) -> None:
    head = runtime.services.messaging.log.recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position("messaging", head))


def write(portal, subject: str, body: str, token: str | None = None):
    page = portal.get("/messages/new")
    assert page.status_code == 200, page.text
    data = {"csrf_token": token if token is not None else form_token(page.text)}
    return portal.post(
        "/messages/new", data={**data, "subject": subject, "body": body}, follow_redirects=False
    )


@pytest.fixture
def ana(portal, runtime):
    portal_register(portal, "ana@example.org")
    return patient_of(runtime, "ana@example.org")


def test_a_conversation_through_the_pages(portal, runtime, clock, client, ana):
    # Given Ana writes to the centre from the portal
    sent = write(portal, "Before my MRI", "Can I eat before the scan?\nThanks, Ana")
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    assert re.fullmatch(r"/messages/[0-9a-f-]{36}\?done=sent", location)
    thread_id = location.split("/")[2].split("?")[0]
    shown = portal.get(location)
    assert_page(shown)
    assert "Your message has been sent." in shown.text
    assert "Can I eat before the scan?\nThanks, Ana" in shown.text

    # When staff reply through the API
    desk = staff_headers(client, runtime, clock, "scheduler")
    reply = client.post(
        f"/v1/staff/messages/{thread_id}", headers=desk, json={"body": "Nothing for 4 hours."}
    )
    assert reply.status_code == 201, reply.text
    caught_up(runtime)

    # Then her list shows a new reply, which opening the conversation clears
    listed = portal.get("/messages")
    assert_page(listed)
    assert "Before my MRI" in listed.text
    assert "New reply" in listed.text
    opened = portal.get(f"/messages/{thread_id}")
    assert "Nothing for 4 hours." in opened.text
    assert "The imaging centre" in opened.text
    caught_up(runtime)
    assert "New reply" not in portal.get("/messages").text

    # And she replies
    answer = portal.post(
        f"/messages/{thread_id}",
        data={"csrf_token": form_token(opened.text), "body": "Thank you"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert "Thank you" in portal.get(f"/messages/{thread_id}").text

    # Every read and write is in the access log
    runtime.services.access_log.flush()
    rows = audit_rows(runtime.url, thread_id)
    assert ("post", "secure_thread", "patient", "", str(ana)) in rows
    assert ("read", "secure_thread", "patient", "", str(ana)) in rows
    assert ("post", "secure_thread", "scheduler", "", str(ana)) in rows


def test_a_form_without_its_token_is_refused(portal, ana, runtime):
    refused = write(portal, "Hello", "Hi", token="not-the-token")
    assert refused.status_code == 403
    assert runtime.services.messaging.threads_of(ana) == []


@pytest.mark.parametrize(
    ("subject", "body", "field", "says"),
    [
        ("", "Hi", "subject", "Enter a subject"),
        ("Hello", "  ", "body", "Enter your message"),
        ("Hello", "x" * 5001, "body", "Use 5000 characters or fewer"),
        ("Hello", "bell \x07 here", "body", "Remove the special characters"),
    ],
)
def test_a_bad_message_is_said_beside_the_field(portal, ana, subject, body, field, says):
    answer = write(portal, subject, body)
    assert answer.status_code == 422
    assert_page(answer)
    assert f'<a href="#{field}">{says}' in answer.text
    assert f'id="{field}-error"' in answer.text


def test_a_closed_conversation_takes_no_reply(portal, runtime, ana):
    from domain.context import system_actor

    posted = runtime.services.messaging.start(ana, "Old question", "Hello", system_actor())
    runtime.services.messaging.log.change(
        posted.thread_id, lambda t: t.close(runtime.services.clock.now(), {})
    )
    page = portal.get(f"/messages/{posted.thread_id}")
    assert "The centre has closed this conversation." in page.text
    assert 'name="body"' not in page.text
    refused = portal.post(
        f"/messages/{posted.thread_id}",
        data={"csrf_token": form_token(page.text), "body": "Still there?"},
    )
    assert refused.status_code == 422
    assert "This conversation is closed." in refused.text
    assert len(runtime.services.messaging.log.thread(posted.thread_id).messages) == 1


def test_another_patients_conversation_is_a_404_page(portal, runtime, ana):
    sent = write(portal, "Mine", "Private words")
    thread_id = sent.headers["location"].split("/")[2].split("?")[0]
    with TestClient(create_app(runtime.services)) as ben:
        portal_register(ben, "ben@example.org")
        for path in (f"/messages/{thread_id}", f"/messages/{uuid4()}", "/messages/not-an-id"):
            page = ben.get(path)
            assert page.status_code == 404, path
            assert "Private words" not in page.text
        token = form_token(ben.get("/messages/new").text)
        posted = ben.post(f"/messages/{thread_id}", data={"csrf_token": token, "body": "hi"})
        assert posted.status_code == 404
    assert len(runtime.services.messaging.log.thread(UUID(thread_id)).messages) == 1
    runtime.services.access_log.flush()
    outcomes = [row for row in audit_rows(runtime.url, thread_id) if row[4] != str(ana)]
    assert len(outcomes) == 2


def test_the_pages_speak_spanish(portal, ana):
    portal.cookies.set("lang", "es")
    page = portal.get("/messages")
    assert_page(page, "es")
    assert "Escribir un mensaje nuevo" in page.text
    sent = write(portal, "Pregunta", "¿Puedo comer?")
    shown = portal.get(sent.headers["location"])
    assert "Su mensaje se ha enviado." in shown.text
    assert "¿Puedo comer?" in shown.text
