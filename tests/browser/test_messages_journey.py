"""Messages with the centre in headless Chromium: a patient goes to Messages from the
navigation, first sends an empty message (the error summary links to the field), then
writes one; staff reply through the API; the list shows the new reply, the conversation
shows both messages, and the patient replies. Every page is screenshotted and checked by
axe-core."""

from datetime import timedelta

import pytest

from application.base import Position
from tests.browser.conftest import Look
from tests.browser.steps import at, new_patient, sign_in, signed_in, submit
from tests.support import staff_headers

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(autouse=True)
def own_minute(portal):
    """Each test in its own minute of the server's clock (the sign-in budgets count per
    minute, and every test comes from 127.0.0.1)."""
    portal.clock.advance(timedelta(minutes=1))


def caught_up(runtime) -> None:
    head = runtime.services.messaging.log.recorder.max_notification_id() or 0
    assert runtime.services.sync.wait(Position("messaging", head))


def test_a_patient_writes_to_the_centre_and_reads_the_reply(page, portal, look: Look) -> None:
    patient = new_patient(portal)
    sign_in(page, look, patient.email, patient.password)
    signed_in(page)

    # From the navigation to an empty list
    page.locator("nav a[href='/messages']").click()
    at(page, "/messages")
    look(page, "messages-empty")
    assert "You have no messages yet." in page.locator("main").inner_text()
    page.locator("main a[href='/messages/new']").first.click()
    at(page, "/messages/new")
    look(page, "message-new")

    # An empty message is said at the top and beside the field
    page.locator("input[name=subject]").fill("Before my scan")
    submit(page, "body")
    at(page, "/messages/new")
    look(page, "message-new-error")
    page.locator(".error-summary a[href='#body']").click()
    assert page.evaluate("document.activeElement.id") == "body"

    # A message sent
    page.locator("textarea[name=body]").fill("Can I eat before the scan?\nThank you")
    submit(page, "body")
    at(page, "/messages/[0-9a-f-]{36}")
    look(page, "message-sent")
    assert "Your message has been sent." in page.locator("main").inner_text()
    thread_path = page.url.split("?")[0].removeprefix(portal.url)

    # Staff reply (through the API)
    with portal.api() as api:
        desk = staff_headers(
            api, portal.runtime, portal.clock, "scheduler", email="desk.browser@example.org"
        )
        replied = api.post(
            f"/v1/staff{thread_path}",
            headers=desk,
            json={"body": "Nothing to eat for 4 hours before, water is fine."},
        )
        assert replied.status_code == 201, replied.text
    caught_up(portal.runtime)

    # The list shows the reply; the conversation shows both messages
    page.locator("nav a[href='/messages']").click()
    at(page, "/messages")
    look(page, "messages-new-reply")
    assert "New reply" in page.locator("main").inner_text()
    page.locator(f"main a[href='{thread_path}']").click()
    at(page, thread_path)
    look(page, "message-thread")
    text = page.locator("main").inner_text()
    assert "Nothing to eat for 4 hours before" in text
    assert "The imaging centre" in text

    # And the patient replies
    page.locator("textarea[name=body]").fill("Thanks, see you then.")
    submit(page, "body")
    at(page, thread_path)
    look(page, "message-replied")
    assert "Thanks, see you then." in page.locator("main").inner_text()
