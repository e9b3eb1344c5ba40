"""The portal's pages: each renders for the right person (one h1, the language, the skip
link, its CSP), redirects to sign-in when signed out, refuses staff and other patients,
writes the access log, speaks Spanish, and never fails on odd query input."""

import re
from urllib.parse import quote
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.security import WEB_CSP
from api.web.app import create_web_app
from tests.integration.test_permission_matrix import route_permissions
from tests.integration.test_portal_booking import book_through_pages
from tests.support import (
    audit_rows,
    catalog_ids,
    form_token,
    portal_register,
    portal_sign_in,
    radio_values,
    staff_headers,
)

pytestmark = pytest.mark.integration


def patient_pages(appointment_id: str, ids) -> list[str]:
    types, locations = ids
    exam, place = types["xr-chest"], locations["lakeshore"]
    journey = f"appointment_type_id={exam}&location_id={place}"
    return [
        "/appointments",
        f"/appointments/{appointment_id}",
        f"/appointments/{appointment_id}/booked",
        f"/appointments/{appointment_id}/reschedule",
        f"/appointments/{appointment_id}/reschedule?day=2026-12-02",
        f"/appointments/{appointment_id}/cancel",
        "/book",
        f"/book/location?appointment_type_id={exam}",
        f"/book/day?{journey}",
        f"/book/time?{journey}&day=2026-12-02",
        f"/book/check?{journey}&start=2026-12-02T09:00:00-06:00",
        "/orders",
        "/results",
        "/messages",
        "/messages/new",
        "/profile",
        "/security",
        "/security/two-factor",
    ]


PUBLIC_PAGES = ["/", "/sign-in", "/register", "/forgot-password", "/reset-password?token=x"]


def assert_page(response, language: str = "en", csp: bool = True) -> None:
    """What every page has: one h1, its language, a skip link to the main landmark, the
    portal's CSP (a page whose forms lead to another site adds it, ``csp=False``), and
    nothing cached."""
    html = response.text
    assert response.headers["content-type"].startswith("text/html")
    assert len(re.findall(r"<h1[ >]", html)) == 1, html
    assert f'<html lang="{language}">' in html
    assert '<a class="skip-link" href="#main-content">' in html
    assert '<main id="main-content"' in html
    if csp:
        assert response.headers["content-security-policy"] == WEB_CSP
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in html
    assert " style=" not in html


def test_every_page_renders_for_a_signed_in_patient(portal):
    portal_register(portal, "ana@example.org")
    appointment_id = book_through_pages(portal)
    for path in patient_pages(appointment_id, catalog_ids(portal)):
        response = portal.get(path)
        assert response.status_code == 200, (path, response.text)
        assert_page(response)
    for path in PUBLIC_PAGES[1:]:  # "/" sends a signed-in patient to their appointments
        assert_page(portal.get(path))
    assert portal.get("/", follow_redirects=False).headers["location"] == "/appointments"
    qr = portal.get("/security/two-factor/qr.svg")
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")


def test_signed_out_every_patient_page_redirects_to_sign_in(portal, client):
    portal_register(portal, "ana@example.org")
    appointment_id = book_through_pages(portal)
    for path in patient_pages(appointment_id, catalog_ids(client)):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/sign-in?next=%2F"), path
    for path in PUBLIC_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_page(response)


def test_sign_in_returns_to_the_page_asked_for(client):
    portal_register(client, "ana@example.org")
    client.post("/sign-out", data={"csrf_token": form_token(client.get("/book").text)})
    asked = client.get("/profile", follow_redirects=False).headers["location"]
    page = client.get(asked)
    signed_in = client.post(
        "/sign-in",
        data={
            "csrf_token": form_token(page.text),
            "email": "ana@example.org",
            "password": "correct horse battery staple",
            "next": re.search(r'name="next" value="([^"]*)"', page.text).group(1),
        },
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == "/profile"
    # Never to another site
    evil = client.get("/sign-in?next=//evil.example/", follow_redirects=False)
    assert evil.headers["location"] == "/appointments"
    client.post("/sign-out", data={"csrf_token": form_token(client.get("/security").text)})
    page = client.get("/sign-in?next=https://evil.example/")
    assert 'name="next" value="/appointments"' in page.text


def test_a_pending_second_factor_is_not_a_session(portal, runtime, clock, client):
    staff_headers(client, runtime, clock, "scheduler")
    signed_in = portal_sign_in(portal, "scheduler@staff.example.org", "staff member long password")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/sign-in/second-factor?next=%2Fappointments"
    assert "ib_session" not in portal.cookies
    refused = portal.get("/security", follow_redirects=False)
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/sign-in?next=")


def test_a_staff_session_is_refused_patient_pages(portal, runtime, clock, client):
    # A staff account without its second factor yet signs in with the password alone
    from domain.context import system_actor

    runtime.services.registry.open_staff_account(
        email="new.staff@staff.example.org",
        password="staff member long password",
        role="billing",
        centres=[],
        actor=system_actor(),
    )
    assert (
        portal_sign_in(
            portal, "new.staff@staff.example.org", "staff member long password"
        ).status_code
        == 303
    )
    for path in ("/appointments", "/book", "/profile", "/messages"):
        refused = portal.get(path)
        assert refused.status_code == 403, path
        assert "This page is for patients" in refused.text
    assert portal.get("/security").status_code == 200


def test_another_patients_appointment_is_a_404_page(portal, runtime):
    # Given Ana's appointment
    portal_register(portal, "ana@example.org")
    appointment_id = book_through_pages(portal)
    ana = runtime.services.registry.account_by_email("ana@example.org").patient_id

    # When Ben asks for it on every page that takes its id
    with TestClient(create_app(runtime.services)) as ben:
        portal_register(ben, "ben@example.org", given_name="Ben")
        token = form_token(ben.get("/appointments").text)
        for path in ("", ".ics", "/booked", "/reschedule", "/cancel"):
            response = ben.get(f"/appointments/{appointment_id}{path}")
            assert response.status_code == 404, path
            assert "Page not found" in response.text
        for path in ("/reschedule", "/cancel"):
            response = ben.post(
                f"/appointments/{appointment_id}{path}",
                data={"csrf_token": token, "start": "2026-12-03T09:00:00-06:00"},
            )
            assert response.status_code == 404, path

    # Then Ana's appointment is untouched, and each refusal is logged with its owner
    assert runtime.services.appointments.get(UUID(appointment_id)).status == "booked"
    runtime.services.access_log.flush()
    ben_account = runtime.services.registry.account_by_email("ben@example.org").id
    with psycopg.connect(runtime.url) as conn:
        refusals = conn.execute(
            "SELECT patient_id, outcome FROM phi_access_log"
            " WHERE actor_id = %s AND resource_id = %s",
            (str(ben_account), appointment_id),
        ).fetchall()
    assert refusals == [(ana, "denied_or_missing")] * 7


def test_page_reads_of_patient_data_are_in_the_access_log(portal, runtime):
    portal_register(portal, "ana@example.org")
    appointment_id = book_through_pages(portal)
    patient_id = str(runtime.services.registry.account_by_email("ana@example.org").patient_id)

    portal.get("/appointments")
    portal.get(f"/appointments/{appointment_id}")
    portal.get(f"/appointments/{appointment_id}.ics")
    portal.get("/profile")

    runtime.services.access_log.flush()
    one = audit_rows(runtime.url, appointment_id)
    assert ("read", "appointment", "patient", "", patient_id) in one
    assert len([row for row in one if row[0] == "read"]) == 2  # the page and the .ics
    assert ("read", "appointment", "patient", "", patient_id) in audit_rows(runtime.url, "*")
    assert ("read", "patient", "patient", "", patient_id) in audit_rows(runtime.url, patient_id)


def test_pages_speak_spanish(portal):
    # Accept-Language picks Spanish
    page = portal.get("/sign-in", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert_page(page, "es")
    assert '<h1 class="heading-l">Iniciar sesión</h1>' in page.text

    # The switch sets a cookie and keeps the page (and its query)
    switched = portal.get("/reset-password?token=abc&lang=es", follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/reset-password?token=abc"
    assert "lang=es" in switched.headers["set-cookie"]
    assert 'lang="es"' in portal.get("/reset-password?token=abc").text

    # Dates are written out in Spanish, in the place's zone with its short name
    portal_register(portal, "ana@example.org")
    appointment_id = book_through_pages(portal)
    shown = portal.get(f"/appointments/{appointment_id}")
    assert_page(shown, "es")
    assert re.search(r"\w+, \d+ de diciembre de 2026, \d+:\d\d CST", shown.text)
    assert "Cómo prepararse" in shown.text

    # And back to English
    portal.get("/appointments?lang=en")
    assert_page(portal.get("/appointments"), "en")


def test_spanish_error_messages_beside_the_field(portal):
    portal.get("/sign-in?lang=es")
    page = portal.get("/sign-in")
    answer = portal.post("/sign-in", data={"csrf_token": form_token(page.text)})
    assert answer.status_code == 422
    assert "Hay un problema" in answer.text
    assert 'href="#email"' in answer.text
    assert 'aria-describedby="email-error"' in answer.text


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    value=st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "9999-12-31",
                "0001-01-01",
                "2026-02-30",
                "2100-12-31",
                "1900-01-01",
                "2026-12-01T09:00:00+23:59",
                "2026-12-01T09:00:00",
                "not-a-uuid",
                "00000000-0000-0000-0000-000000000000",
                "2026-12-01T09:00:00 06:00",
            ]
        ),
    )
)
def test_odd_query_input_never_fails_a_page(signed_in_portal, value):
    client, appointment_id, ids = signed_in_portal
    types, locations = ids
    journey = {"appointment_type_id": types["xr-chest"], "location_id": locations["lakeshore"]}
    requests = [
        ("/book/location", {"appointment_type_id": value}),
        ("/book/day", {**journey, "from": value}),
        ("/book/day", {"appointment_type_id": value, "location_id": value}),
        ("/book/time", {**journey, "day": value}),
        ("/book/check", {**journey, "start": value}),
        (f"/appointments/{appointment_id}/reschedule", {"day": value}),
        (f"/appointments/{appointment_id}/reschedule", {"start": value}),
        (f"/appointments/{appointment_id}/reschedule", {"from": value}),
        ("/appointments", {"done": value}),
        ("/sign-in", {"next": value}),
    ]
    for path, params in requests:
        response = client.get(path, params=params)
        assert response.status_code < 500, (path, params, response.text)
    odd_id = client.get(f"/appointments/{quote(value, safe='')}x")
    assert odd_id.status_code < 500, odd_id.text


@pytest.fixture
def signed_in_portal(runtime):
    with TestClient(create_app(runtime.services)) as client:
        portal_register(client, "odd@example.org")
        appointment_id = book_through_pages(client)
        yield client, appointment_id, catalog_ids(client)


def test_the_api_keeps_its_own_answers_beside_the_portal(client):
    unknown = client.get("/v1/no-such-thing")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    wrong_method = client.post("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    assert client.get("/openapi.json").status_code == 200
    assert "/book" not in client.get("/openapi.json").json()["paths"]
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert "Page not found" in page.text


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "words"),
    [
        ("get", "/book/day?from=%00", {}, 400, "This page address is not right"),
        ("get", "/sign-in?next=/appointments%00", {}, 400, "This page address is not right"),
        ("get", "/appointments%00", {}, 400, "This page address is not right"),
        ("get", "/no-such-page?x=%00", {}, 400, "This page address is not right"),
        ("post", "/sign-in", {"data": {"email": "a\u0000b@example.org"}}, 422, "Check what you"),
        ("post", "/sign-in", {"content": b"x" * 70_000}, 413, "too much to send"),
    ],
    ids=["query", "query-next", "path", "unknown-page", "form", "too-large"],
)
def test_a_page_refused_before_any_route_is_a_portal_page(
    client, method, url, kwargs, status, words
):
    # NUL characters and oversized bodies are refused before routing; on the portal's
    # paths the answer is its own error page, not the API's JSON.
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status
    assert_page(response)
    assert words in response.text
    assert "Traceback" not in response.text
    assert "NUL" not in response.text


@pytest.mark.parametrize("url", ["/v1/slots?x=%00", "/healthz?x=%00", "/docs?x=%00", "/v1/none%00"])
def test_the_api_refuses_with_json_beside_the_portal(client, url):
    response = client.get(url)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_the_stylesheet_is_served_and_cacheable(client):
    page = client.get("/sign-in")
    href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)
    sheet = client.get(href)
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/css")
    assert "immutable" in sheet.headers["cache-control"]
    again = client.get(href, headers={"If-None-Match": sheet.headers["etag"]})
    assert again.status_code == 304


def test_every_portal_route_declares_exactly_one_permission(runtime):
    """As the API's routes do (the permission matrix test); the portal is a separate
    application mounted at the root, so it is walked here."""
    found = {
        key: permissions
        for key, permissions in route_permissions(create_web_app(runtime.services)).items()
        if key[1] not in ("/static/{name}", "/{rest:path}")
    }
    assert len(found) > 25
    assert {key: value for key, value in found.items() if len(value) != 1} == {}


def test_a_radio_question_links_its_error_to_the_first_option(portal):
    portal_register(portal, "ana@example.org")
    page = portal.get("/book/location")
    first = radio_values(page.text, "appointment_type_id")[0]
    assert f'id="appointment_type_id" name="appointment_type_id" type="radio" value="{first}"' in (
        page.text
    )
