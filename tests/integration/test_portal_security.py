"""The portal's session and forms: cookie flags, form tokens (CSRF), signing out here and
everywhere (API sessions too), two-factor sign-in turned on in the pages and then used,
and the password reset page the e-mailed link opens."""

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from adapters.settings import Settings
from api.app import create_app
from tests.support import (
    PORTAL_PASSWORD,
    form_token,
    portal_register,
    portal_sign_in,
    register_form,
    reset_link_token_in,
    sent_mail,
    totp_now,
)

pytestmark = pytest.mark.integration


def set_cookies(response) -> dict[str, str]:
    """Each Set-Cookie header of an answer, by cookie name."""
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def assert_flags(header: str, *, secure: bool) -> None:
    attributes = [part.strip().lower() for part in header.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert ("secure" in attributes) is secure


def sign_up_and_cookie(client) -> str:
    """Create an account: the Set-Cookie header of its session."""
    return set_cookies(portal_register(client, "ana@example.org"))["ib_session"]


def test_cookies_are_httponly_and_strict_and_not_secure_over_plain_http(portal):
    form_cookie = set_cookies(portal.get("/sign-in"))["ib_form"]
    assert_flags(form_cookie, secure=False)
    assert_flags(sign_up_and_cookie(portal), secure=False)


def test_cookies_are_secure_over_https(runtime):
    with TestClient(create_app(runtime.services), base_url="https://portal.test") as client:
        assert_flags(set_cookies(client.get("/sign-in"))["ib_form"], secure=True)
        assert_flags(sign_up_and_cookie(client), secure=True)
        assert client.get("/appointments").status_code == 200


@pytest.mark.parametrize(("trusted", "secure"), [(["testclient"], True), (["10.0.0.5"], False)])
def test_cookies_are_secure_behind_a_trusted_proxy_only(runtime, trusted, secure):
    # uvicorn believes X-Forwarded-Proto from TRUSTED_PROXIES only (adapters/proxies.py)
    app = ProxyHeadersMiddleware(create_app(runtime.services), trusted_hosts=trusted)
    with TestClient(app, headers={"X-Forwarded-Proto": "https"}) as client:
        assert_flags(set_cookies(client.get("/sign-in"))["ib_form"], secure=secure)


def test_a_form_without_a_valid_token_is_refused(portal, runtime):
    # Signing in without the token, or with a made-up one, is refused with a clear page
    page = portal.get("/sign-in")
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": form_token(page.text) + "x"}):
        refused = portal.post(
            "/sign-in", data={**data, "email": "a@example.org", "password": "whatever"}
        )
        assert refused.status_code == 403
        assert "This form has expired" in refused.text
        assert refused.headers["content-type"].startswith("text/html")

    # A token taken from another browser's page is not this browser's
    portal_register(portal, "ana@example.org")
    with TestClient(create_app(runtime.services)) as other:
        their_token = form_token(other.get("/sign-in").text)
    refused = portal.post(
        "/profile",
        data={
            "csrf_token": their_token,
            "given_name": "Mallory",
            "family_name": "Example",
            "birth_day": "1",
            "birth_month": "1",
            "birth_year": "1970",
        },
    )
    assert refused.status_code == 403
    patient_id = runtime.services.registry.account_by_email("ana@example.org").patient_id
    assert runtime.services.registry.patient(patient_id).given_name == "Ana"

    # Nor does a signed-out page's token work once signed in (it was bound to another cookie)
    assert portal.post("/sign-out", data={"csrf_token": form_token(page.text)}).status_code == 403

    # The refusals are in the access log
    runtime.services.access_log.flush()
    import psycopg

    with psycopg.connect(runtime.url) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM phi_access_log WHERE outcome = 'denied_csrf'"
        ).fetchone()
    assert count == 5


def test_signing_out_ends_the_session_the_cookie_named(portal):
    cookie = sign_up_and_cookie(portal).split(";")[0].split("=", 1)[1]
    signed_out = portal.post(
        "/sign-out",
        data={"csrf_token": form_token(portal.get("/appointments").text)},
        follow_redirects=False,
    )
    assert signed_out.headers["location"] == "/?done=signed-out"
    assert 'ib_session=""' in signed_out.headers["set-cookie"]
    # The old cookie, replayed, is a signed-out visitor's
    portal.cookies.set("ib_session", cookie)
    again = portal.get("/appointments", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/sign-in")


def test_sign_out_everywhere_ends_api_sessions_too(portal, client):
    portal_register(portal, "ana@example.org")
    api_token = client.post(
        "/v1/auth/token", data={"username": "ana@example.org", "password": PORTAL_PASSWORD}
    ).json()["access_token"]
    api = {"Authorization": f"Bearer {api_token}"}
    assert client.get("/v1/appointments", headers=api).status_code == 200

    ended = portal.post(
        "/security/sign-out-everywhere",
        data={"csrf_token": form_token(portal.get("/security").text)},
        follow_redirects=False,
    )

    assert ended.headers["location"] == "/sign-in?done=everywhere"
    assert client.get("/v1/appointments", headers=api).status_code == 401
    assert portal.get("/appointments", follow_redirects=False).status_code == 303


def test_an_api_logout_ends_nothing_else_but_a_password_change_ends_the_browsers(portal, client):
    portal_register(portal, "ana@example.org")
    tokens = client.post(
        "/v1/auth/token", data={"username": "ana@example.org", "password": PORTAL_PASSWORD}
    ).json()
    api = {"Authorization": f"Bearer {tokens['access_token']}"}
    client.post("/v1/auth/logout", headers=api)
    assert portal.get("/appointments").status_code == 200

    other = client.post(
        "/v1/auth/token", data={"username": "ana@example.org", "password": PORTAL_PASSWORD}
    ).json()
    changed = client.post(
        "/v1/auth/password",
        headers={"Authorization": f"Bearer {other['access_token']}"},
        json={"current_password": PORTAL_PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 204
    assert portal.get("/appointments", follow_redirects=False).status_code == 303


def test_two_factor_turned_on_in_the_pages_then_used_to_sign_in(portal, clock):
    # Given a patient who turns on two-factor sign-in
    portal_register(portal, "ana@example.org")
    page = portal.get("/security/two-factor")
    secret = re.search(r'<code class="secret" id="totp-secret">([A-Z2-7]+)</code>', page.text)
    assert secret, page.text
    secret = secret.group(1)
    assert 'src="/security/two-factor/qr.svg"' in page.text
    assert "<svg" in portal.get("/security/two-factor/qr.svg").text
    # A wrong code first: the message beside the field
    wrong = portal.post(
        "/security/two-factor", data={"csrf_token": form_token(page.text), "code": "000000"}
    )
    assert wrong.status_code == 422
    assert "That code is not right" in wrong.text
    assert re.search(r'id="totp-secret">' + secret, wrong.text)  # the same enrolment
    old_cookie = portal.cookies["ib_session"]

    done = portal.post(
        "/security/two-factor",
        data={"csrf_token": form_token(page.text), "code": totp_now(secret, clock)},
    )

    # Then the recovery codes are shown once, and the browser has a new session
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([0-9A-F]{5}-[0-9A-F]{5})</code></li>", done.text)
    assert len(codes) == 10
    assert portal.cookies["ib_session"] != old_cookie
    assert "Two-factor sign-in is on" in portal.get("/security/two-factor").text
    assert portal.get("/security/two-factor/qr.svg").status_code == 404

    # When they sign out and in again, the password alone is not enough
    portal.post("/sign-out", data={"csrf_token": form_token(portal.get("/security").text)})
    first = portal_sign_in(portal, "ana@example.org")
    assert first.headers["location"] == "/sign-in/second-factor?next=%2Fappointments"
    assert portal.get("/appointments", follow_redirects=False).status_code == 303
    challenge_page = portal.get("/sign-in/second-factor?next=%2Fappointments")
    assert challenge_page.status_code == 200

    # With the code of the next time step, they are in
    clock.advance(timedelta(seconds=30))
    second = portal.post(
        "/sign-in/second-factor",
        data={
            "csrf_token": form_token(challenge_page.text),
            "code": totp_now(secret, clock),
            "next": "/appointments",
        },
        follow_redirects=False,
    )
    assert second.status_code == 303, second.text
    assert second.headers["location"] == "/appointments"
    assert portal.get("/appointments").status_code == 200

    # And a recovery code works once in place of a code
    portal.post("/sign-out", data={"csrf_token": form_token(portal.get("/security").text)})
    portal_sign_in(portal, "ana@example.org")
    challenge_page = portal.get("/sign-in/second-factor")
    with_recovery = portal.post(
        "/sign-in/second-factor",
        data={"csrf_token": form_token(challenge_page.text), "code": codes[0].lower()},
        follow_redirects=False,
    )
    assert with_recovery.headers["location"] == "/appointments"


def test_the_reset_link_opens_the_reset_page(portal, runtime):
    # Given a patient who forgot their password
    portal_register(portal, "ana@example.org")
    portal.post("/sign-out", data={"csrf_token": form_token(portal.get("/security").text)})
    page = portal.get("/forgot-password")
    sent = portal.post(
        "/forgot-password", data={"csrf_token": form_token(page.text), "email": "ana@example.org"}
    )
    assert sent.status_code == 200
    assert "Check your e-mail" in sent.text

    # The e-mailed link is the portal's page (PUBLIC_BASE_URL, by default where serve listens)
    (message,) = sent_mail(runtime)  # the e-mail channel's worker sends it
    text = message.get_body(("plain",)).get_content()
    assert "http://127.0.0.1:8000/reset-password?token=" in text
    token = reset_link_token_in(text)

    # When they open it and choose a new password
    reset_page = portal.get(f"/reset-password?token={token}")
    assert 'name="token" value="' in reset_page.text
    done = portal.post(
        "/reset-password",
        data={
            "csrf_token": form_token(reset_page.text),
            "token": token,
            "password": "my new long passphrase",
        },
        follow_redirects=False,
    )

    # Then they sign in with it; the link does not work twice
    assert done.headers["location"] == "/sign-in?done=password"
    assert portal_sign_in(portal, "ana@example.org", "my new long passphrase").status_code == 303
    reused = portal.post(
        "/reset-password",
        data={
            "csrf_token": form_token(portal.get("/forgot-password").text),
            "token": token,
            "password": "yet another passphrase",
        },
    )
    assert reused.status_code == 400
    assert "This link does not work" in reused.text


def test_a_weak_new_password_is_said_beside_the_field(portal):
    page = portal.get("/register")
    token = form_token(page.text)
    answer = portal.post(
        "/register",
        data={
            "csrf_token": token,
            **register_form("not-an-address", "password", birth_day="31", birth_month="2"),
        },
    )
    assert answer.status_code == 422
    assert 'href="#birth_day">Enter a real date' in answer.text
    assert 'href="#email">Enter an e-mail address like name@example.com' in answer.text
    # Filled-in values come back (never the password)
    assert 'value="Ana"' in answer.text
    assert 'value="password"' not in answer.text

    fixed = portal.post(
        "/register", data={"csrf_token": token, **register_form("ana@example.org", "password")}
    )
    assert fixed.status_code == 422
    assert "That password is too common" in fixed.text


def test_the_public_base_url_builds_reset_links():
    assert (
        Settings(_env_file=None).reset_link_template
        == "http://127.0.0.1:8000/reset-password?token={token}"
    )
    assert (
        Settings(_env_file=None, public_base_url="https://portal.example.org/").reset_link_template
        == "https://portal.example.org/reset-password?token={token}"
    )
    # An explicit RESET_LINK still wins (deployments that set it keep working)
    assert (
        Settings(_env_file=None, reset_link="https://x.example/r#token={token}").reset_link_template
        == "https://x.example/r#token={token}"
    )
    with pytest.raises(ValueError, match="http"):
        Settings(_env_file=None, public_base_url="ftp://portal.example.org")
