"""Scans to book and results in headless Chromium: a patient with an order and a result
books the order from "Scans to book", then opens the result, and the browser lands on the
centre's viewer (a tiny local server here) with a signed link; without a viewer, the page
that says whom to call. And an account made with an activation code, from the link in the
centre's invitation. Every page of ours is screenshotted and checked by axe-core."""

import itertools
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from uuid import UUID, uuid4

import pytest

from domain.context import system_actor
from tests.browser.conftest import Look
from tests.browser.steps import PASSWORD, at, confirm, new_patient, sign_in, signed_in, submit
from tests.support import (
    RIS_BIRTH,
    configure_viewer,
    patient_of,
    place_order,
    report_result,
    ris_patient,
    settle,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ORDER_NUMBERS = itertools.count(9000)  # placer/filler/accession numbers unique per module


@pytest.fixture(autouse=True)
def own_minute(portal):
    """Each test in its own minute of the server's clock (the sign-in budgets count per
    minute, and every test comes from 127.0.0.1)."""
    portal.clock.advance(timedelta(minutes=1))


class ViewerPage(BaseHTTPRequestHandler):
    """The centre's viewer, as far as the portal knows it: a page at an address."""

    def do_GET(self) -> None:
        body = b'<!DOCTYPE html><html lang="en"><title>Viewer</title><h1>Result viewer</h1>'
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def viewer(portal) -> Iterator[str]:
    """A viewer served on a free port, configured as RESULT_VIEWER_URL; none afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ViewerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    configure_viewer(portal.runtime, url + "/view?study={accession}&token={token}")
    yield url
    configure_viewer(portal.runtime, "")
    server.shutdown()
    server.server_close()


def test_a_patient_books_an_order_and_opens_a_result(page, portal, look: Look, viewer) -> None:
    # Given a patient with an MRI brain to book, and a final result of an earlier knee MRI
    patient = new_patient(portal)
    owner = patient_of(portal.runtime, patient.email)
    runtime = portal.runtime
    to_book, done = next(ORDER_NUMBERS), next(ORDER_NUMBERS)
    place_order(runtime, owner, to_book, "70551", "MRI brain")
    place_order(runtime, owner, done, "73721", "MRI knee")
    report_result(runtime, done, "final", portal.clock.now())
    settle(runtime)

    sign_in(page, look, patient.email, patient.password)
    signed_in(page)
    page.locator("nav a[href='/orders']").click()
    at(page, "/orders")
    look(page, "orders")
    assert "To book" in page.locator("main").inner_text()

    # One scan performs the order: its step is skipped, the journey starts at the place.
    page.locator("main a[href^='/book?order=']").first.click()
    at(page, "/book/location")
    look(page, "order-location")
    page.locator("input[type=radio][name=location_id]").first.check()
    submit(page, "location_id")
    at(page, "/book/day")
    look(page, "order-day")
    days = page.locator("input[type=radio][name=day]")
    days.nth(1 if days.count() > 1 else 0).check()  # today's first time may have passed
    submit(page, "day")
    at(page, "/book/time")
    page.locator("input[type=radio][name=start]").first.check()
    submit(page, "start")
    at(page, "/book/check")
    look(page, "order-check")
    answers = page.locator("main").inner_text()
    assert "Requested by your doctor" in answers
    assert "MRI brain" in answers
    confirm(page)
    at(page, "/appointments/[0-9a-f-]{36}/booked")
    look(page, "order-booked")

    page.locator("nav a[href='/orders']").click()
    at(page, "/orders")
    look(page, "orders-booked")
    assert page.locator("main a[href^='/appointments/']").count() == 1
    assert page.locator("main a[href^='/book?order=']").count() == 0

    page.locator("nav a[href='/results']").click()
    at(page, "/results")
    look(page, "results")
    text = page.locator("main").inner_text()
    assert "Final result" in text
    assert "5 minutes" in text
    page.locator("main form[action^='/results/'] button[type=submit]").first.click()
    page.wait_for_url(f"{viewer}/view?study=ACC{done}&token=*")
    assert page.locator("h1").inner_text() == "Result viewer"

    # Without a viewer, the same button explains instead of leading nowhere.
    configure_viewer(runtime, "")
    page.goto("/results")
    page.locator("main form[action^='/results/'] button[type=submit]").first.click()
    at(page, "/results/[0-9a-f-]{36}/open")
    look(page, "result-offline")
    assert "Results cannot be opened online yet" in page.locator("h1").inner_text()


def test_an_invitation_link_creates_an_account_on_the_centres_record(
    page, portal, look: Look
) -> None:
    runtime = portal.runtime
    ris = UUID(ris_patient(runtime, mrn=f"MRN-{uuid4().hex[:8]}"))
    place_order(runtime, ris, next(ORDER_NUMBERS), "70551", "MRI brain")
    settle(runtime)
    code = runtime.services.activation.issue(ris, system_actor()).code

    page.goto(f"/activate?token={code}")
    at(page, "/register")
    look(page, "register-with-code")
    assert page.locator("input[name=activation_code]").input_value() == code
    page.locator("input[name=birth_day]").fill(str(RIS_BIRTH.day))
    page.locator("input[name=birth_month]").fill(str(RIS_BIRTH.month))
    page.locator("input[name=birth_year]").fill(str(RIS_BIRTH.year + 1))  # a wrong year
    email = f"browser-{uuid4().hex[:10]}@example.org"
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    submit(page, "email")
    page.locator(".error-summary[role=alert]").wait_for()
    look(page, "register-with-code-refused")
    assert "could not match that code" in page.locator(".error-summary").inner_text()

    page.locator("input[name=birth_year]").fill(str(RIS_BIRTH.year))
    page.locator("input[name=password]").fill(PASSWORD)
    submit(page, "email")
    at(page, "/orders")
    look(page, "orders-welcome")
    assert page.locator("main a[href^='/book?order=']").count() == 1


def test_a_signed_in_patient_sees_the_link_your_account_page(page, portal, look: Look) -> None:
    patient = new_patient(portal)
    sign_in(page, look, patient.email, patient.password)
    signed_in(page)
    page.goto("/orders")
    look(page, "orders-empty")
    page.locator("main a[href='/activate']").click()
    at(page, "/activate")
    look(page, "activate")
    submit(page, "activation_code")
    page.locator(".error-summary[role=alert]").wait_for()
    look(page, "activate-errors")
