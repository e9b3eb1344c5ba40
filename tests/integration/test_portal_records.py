"""The portal's scans to book and results, through its pages: an order the RIS placed is
listed in plain words and booked through the journey (with its id), then shows as booked;
a result opens through a redirect to the centre's viewer with a token that verifies
against our JWKS, or, with no viewer, a page that says whom to call; another patient's
order or result is a 404 page. Creating an account with an activation code, and linking
an existing account on /activate."""

import re
from datetime import date
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest

from domain.context import system_actor
from tests.integration.test_orders_results import verify
from tests.integration.test_portal_booking import choose
from tests.integration.test_portal_pages import assert_page
from tests.support import (
    PORTAL_PASSWORD,
    RIS_BIRTH,
    VIEWER,
    audit_rows,
    configure_viewer,
    form_token,
    patient_of,
    place_order,
    portal_register,
    radio_values,
    report_result,
    ris_patient,
    settle,
)

pytestmark = pytest.mark.integration

ACTIVATION_FAILED = "We could not match that code and date of birth"


@pytest.fixture
def ana(portal, runtime):
    """Ana, signed in to the portal, with an MRI brain order from the RIS."""
    portal_register(portal, "ana@example.org")
    patient = patient_of(runtime, "ana@example.org")
    order_id = place_order(runtime, patient, 1, "70551", "MRI brain")
    settle(runtime)
    return patient, order_id


@pytest.fixture
def ben(runtime):
    """Ben, in his own browser, with an order and a result of his own."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(runtime.services)) as browser:
        portal_register(browser, "ben@example.org")
        patient = patient_of(runtime, "ben@example.org")
        order_id = place_order(runtime, patient, 7, "70551", "MRI brain")
        report_result(runtime, 7)
        settle(runtime)
        result_id = runtime.services.records.results(patient)[0].id
        yield browser, order_id, result_id


def book_order(portal, order_id) -> str:
    """From "Scans to book" through the journey to the confirmation: its address."""
    listed = portal.get("/orders")
    assert f'href="/book?order={order_id}"' in listed.text
    start = portal.get(f"/book?order={order_id}", follow_redirects=False)
    # One scan performs an MRI brain: the scan step is skipped.
    assert start.status_code == 303
    assert start.headers["location"].startswith("/book/location?")
    chosen = dict(parse_qs(urlsplit(start.headers["location"]).query, strict_parsing=True))
    chosen = {key: values[0] for key, values in chosen.items()}
    assert chosen["order"] == str(order_id)
    _, chosen["location_id"] = choose(portal, "/book/location", chosen, "location_id")
    day_page, day = choose(portal, "/book/day", chosen, "day", 1)
    assert f'name="order" value="{order_id}"' in day_page.text
    _, start_at = choose(portal, "/book/time", {**chosen, "day": day}, "start")
    check = portal.get("/book/check", params={**chosen, "start": start_at})
    assert check.status_code == 200, check.text
    assert "Requested by your doctor" in check.text
    assert "MRI brain" in check.text
    key = re.search(r'name="booking_key" value="([^"]+)"', check.text).group(1)
    booked = portal.post(
        "/book/check",
        data={
            **chosen,
            "start": start_at,
            "booking_key": key,
            "csrf_token": form_token(check.text),
        },
        follow_redirects=False,
    )
    assert booked.status_code == 303, booked.text
    return booked.headers["location"]


def test_an_order_is_listed_and_booked_through_the_journey(portal, runtime, ana):
    patient, order_id = ana

    listed = portal.get("/orders")

    assert_page(listed)
    assert "Scans to book" in listed.text
    assert "MRI brain" in listed.text
    assert "To book" in listed.text
    assert 'href="/orders" aria-current="page"' in listed.text

    confirmation = book_order(portal, order_id)

    appointment_id = re.fullmatch(r"/appointments/([0-9a-f-]{36})/booked", confirmation).group(1)
    booked = runtime.services.scheduling.repository.get(UUID(appointment_id))
    assert booked.order_id == order_id
    [order] = runtime.services.records.orders(patient)
    assert order.status == "scheduled"
    assert order.appointment_id == UUID(appointment_id)
    after = portal.get("/orders")
    assert "Booked" in after.text
    assert f'href="/appointments/{appointment_id}"' in after.text
    assert f'href="/book?order={order_id}"' not in after.text

    # Booking it again (an old tab) says so in words, and books nothing.
    again = portal.get(f"/book?order={order_id}")
    assert again.status_code == 409
    assert "This scan is already booked" in again.text

    # Every order page read is in the access log, with the patient.
    runtime.services.access_log.flush()
    rows = audit_rows(runtime.url, str(order_id))
    assert rows
    assert all(row[1] == "order" and row[4] == str(patient) for row in rows)


def test_results_are_listed_in_plain_words_and_open_in_the_viewer(portal, runtime, clock, ana):
    patient, _ = ana
    configure_viewer(runtime)
    report_result(runtime, 1, "preliminary")
    settle(runtime)

    page = portal.get("/results")

    assert page.status_code == 200
    assert_page(page, csp=False)
    assert "Preliminary result" in page.text
    assert "Monday 30 November 2026" in page.text
    assert "5 minutes" in page.text
    # The page's forms may end up at the viewer (browsers hold the redirect to form-action).
    assert (
        "form-action 'self' https://viewer.example.test;" in page.headers["content-security-policy"]
    )
    [result_id] = re.findall(r'action="/results/([0-9a-f-]{36})/open"', page.text)

    opened = portal.post(
        f"/results/{result_id}/open",
        data={"csrf_token": form_token(page.text)},
        follow_redirects=False,
    )

    assert opened.status_code == 303
    url = opened.headers["location"]
    assert url.startswith(VIEWER.split("?")[0] + "?study=ACC1&token=")
    token = parse_qs(urlsplit(url).query)["token"][0]
    claims = verify(portal, token, clock.now())
    assert claims["sub"] == str(patient)
    assert claims["accession"] == "ACC1"
    runtime.services.access_log.flush()
    opening = [row for row in audit_rows(runtime.url, result_id) if row[0] == "open_link"]
    assert [(row[1], row[4]) for row in opening] == [("result", str(patient))]
    assert opening[0][3] == f"token {claims['jti']}"


def test_without_a_viewer_the_page_says_whom_to_call(portal, runtime, ana):
    report_result(runtime, 1)
    settle(runtime)
    page = portal.get("/results")
    assert "Final result" in page.text
    assert page.headers["content-security-policy"].count("form-action 'self';") == 1
    [result_id] = re.findall(r'action="/results/([0-9a-f-]{36})/open"', page.text)

    opened = portal.post(
        f"/results/{result_id}/open",
        data={"csrf_token": form_token(page.text)},
        follow_redirects=False,
    )

    assert opened.status_code == 409
    assert "location" not in opened.headers
    assert "Results cannot be opened online yet" in opened.text
    assert 'href="tel:+12155550100"' in opened.text


def test_another_patients_order_and_result_are_not_found(portal, runtime, ana, ben):
    _, ben_order, ben_result = ben
    configure_viewer(runtime)
    token = form_token(portal.get("/results").text)

    assert portal.get(f"/book?order={ben_order}").status_code == 404
    assert portal.get(f"/book/location?order={ben_order}").status_code == 404
    opened = portal.post(
        f"/results/{ben_result}/open", data={"csrf_token": token}, follow_redirects=False
    )
    assert opened.status_code == 404
    assert "Page not found" in opened.text
    assert "ACC7" not in opened.text
    assert "MRI brain" not in portal.get("/results").text
    assert str(ben_order) not in portal.get("/orders").text
    assert portal.post("/results/nonsense/open", data={"csrf_token": token}).status_code == 404


def test_opening_a_result_needs_the_form_token(portal, runtime, ana):
    configure_viewer(runtime)
    report_result(runtime, 1)
    settle(runtime)
    [result_id] = re.findall(r'action="/results/([0-9a-f-]{36})/open"', portal.get("/results").text)

    refused = portal.post(f"/results/{result_id}/open", data={}, follow_redirects=False)

    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    runtime.services.access_log.flush()
    assert not [row for row in audit_rows(runtime.url, result_id) if row[0] == "open_link"]


def activation_form(page_text: str, code: str, birth: date, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": form_token(page_text),
        "activation_code": code,
        "birth_day": str(birth.day),
        "birth_month": str(birth.month),
        "birth_year": str(birth.year),
        **fields,
    }


def test_an_account_is_created_with_an_activation_code(portal, runtime):
    patient = ris_patient(runtime)
    order_id = place_order(runtime, UUID(patient), 3, "70551", "MRI brain")
    settle(runtime)
    issued = runtime.services.activation.issue(UUID(patient), system_actor())

    page = portal.get(f"/register?activation_code={issued.code}")
    assert f'value="{issued.code}"' in page.text
    assert "from your imaging centre's letter or e-mail" in page.text.lower()

    # A wrong birth date: the one answer for every failure, names not asked for.
    wrong = portal.post(
        "/register",
        data=activation_form(
            page.text,
            issued.code,
            date(1985, 3, 5),
            email="ana@example.org",
            password=PORTAL_PASSWORD,
        ),
    )
    assert wrong.status_code == 422
    assert ACTIVATION_FAILED in wrong.text
    assert "Enter your first name" not in wrong.text

    created = portal.post(
        "/register",
        data=activation_form(
            wrong.text,
            issued.code,
            RIS_BIRTH,
            email="ana@example.org",
            password=PORTAL_PASSWORD,
        ),
        follow_redirects=False,
    )

    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/orders?done=welcome"
    assert patient_of(runtime, "ana@example.org") == UUID(patient)
    orders = portal.get(created.headers["location"])
    assert "linked to the imaging centre" in orders.text
    assert f'href="/book?order={order_id}"' in orders.text


def test_wrong_codes_count_toward_the_lockout(portal, runtime):
    page = portal.get("/register")
    answers = []
    for attempt in range(12):
        answer = portal.post(
            "/register",
            data=activation_form(
                page.text,
                f"AAAA-BBBB-CC{attempt:02d}",
                RIS_BIRTH,
                email=f"x{attempt}@example.org",
                password=PORTAL_PASSWORD,
            ),
        )
        answers.append(answer.status_code)
        if answer.status_code == 429:
            break
    assert answers[0] == 422
    assert answers[-1] == 429, answers


def test_a_signed_in_patient_links_their_account_on_activate(portal, runtime):
    # Ana has an account of her own; the RIS has a record of her with an order.
    portal_register(portal, "ana@example.org", birth_day="4", birth_month="3", birth_year="1985")
    own = patient_of(runtime, "ana@example.org")
    ris = UUID(ris_patient(runtime))
    order_id = place_order(runtime, ris, 4, "70551", "MRI brain")
    settle(runtime)
    issued = runtime.services.activation.issue(ris, system_actor())
    assert str(order_id) not in portal.get("/orders").text

    # The invitation's link fills the code in.
    page = portal.get(f"/activate?token={issued.code}")
    assert_page(page)
    assert f'value="{issued.code}"' in page.text

    wrong = portal.post("/activate", data=activation_form(page.text, "WRONG-CODE", RIS_BIRTH))
    assert wrong.status_code == 422
    assert ACTIVATION_FAILED in wrong.text

    linked = portal.post(
        "/activate",
        data=activation_form(wrong.text, issued.code, RIS_BIRTH),
        follow_redirects=False,
    )

    assert linked.status_code == 303, linked.text
    assert linked.headers["location"] == "/orders?done=linked"
    # The browser is signed in again (linking ended the old session) as the RIS record.
    orders = portal.get(linked.headers["location"], follow_redirects=False)
    assert orders.status_code == 200
    assert "Your account is now linked" in orders.text
    assert f'href="/book?order={order_id}"' in orders.text
    assert patient_of(runtime, "ana@example.org") == ris != own


def test_the_invitation_link_leads_a_visitor_to_create_an_account(client):
    answer = client.get("/activate?token=7KQM-3XWP-HD9T", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/register?activation_code=7KQM-3XWP-HD9T"
    page = client.get(answer.headers["location"])
    assert 'value="7KQM-3XWP-HD9T"' in page.text
    assert "/sign-in?next=/activate%3Ftoken%3D7KQM-3XWP-HD9T" in page.text


def test_the_pages_show_nothing_when_there_is_nothing(portal):
    portal_register(portal, "ana@example.org")
    assert "You have no scans to book" in portal.get("/orders").text
    assert "You have no results yet" in portal.get("/results").text
    assert radio_values(portal.get("/book").text, "appointment_type_id")
