"""Signing in: two factors, recovery codes, lockouts, sessions, password change and reset."""

from datetime import timedelta

import pytest

from tests.support import register, reset_link_token_in, sent_mail, staff_headers, totp_now

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


def sign_in(client, email, password=PASSWORD):
    return client.post("/v1/auth/token", data={"username": email, "password": password})


def enrol(client, headers, clock) -> tuple[str, list[str], dict[str, str]]:
    """Turn two-factor sign-in on; the secret, the recovery codes and the new auth header."""
    enrolment = client.post("/v1/auth/2fa/enrol", headers=headers)
    assert enrolment.status_code == 200
    body = enrolment.json()
    assert body["provisioning_uri"].startswith("otpauth://totp/")
    assert body["qr_svg"].lstrip().startswith("<")
    confirmed = client.post(
        "/v1/auth/2fa/confirm", headers=headers, json={"code": totp_now(body["secret"], clock)}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    new = {"Authorization": f"Bearer {confirmed.json()['tokens']['access_token']}"}
    return body["secret"], codes, new


def test_totp_enrolment_then_sign_in_needs_the_code(client, clock):
    headers = register(client, "tess@example.org")
    secret, _, _ = enrol(client, headers, clock)
    clock.advance(timedelta(seconds=60))

    challenged = sign_in(client, "tess@example.org")
    assert challenged.status_code == 401
    assert challenged.json()["code"] == "second_factor_required"
    challenge = challenged.json()["challenge"]

    done = client.post(
        "/v1/auth/token/second-factor",
        json={"challenge": challenge, "code": totp_now(secret, clock)},
    )
    assert done.status_code == 200, done.text
    assert done.json()["two_factor"] is True
    me = client.get(
        "/v1/patients/me", headers={"Authorization": f"Bearer {done.json()['access_token']}"}
    )
    assert me.status_code == 200


def test_the_same_code_cannot_be_used_twice(client, clock):
    headers = register(client, "uma@example.org")
    secret, _, _ = enrol(client, headers, clock)
    clock.advance(timedelta(seconds=60))
    code = totp_now(secret, clock)
    first = sign_in(client, "uma@example.org").json()["challenge"]
    assert (
        client.post(
            "/v1/auth/token/second-factor", json={"challenge": first, "code": code}
        ).status_code
        == 200
    )
    second = sign_in(client, "uma@example.org").json()["challenge"]
    replay = client.post("/v1/auth/token/second-factor", json={"challenge": second, "code": code})
    assert replay.status_code == 401
    assert replay.json()["code"] == "invalid_credentials"


def test_a_recovery_code_works_once(client, clock):
    headers = register(client, "vic@example.org")
    _, codes, _ = enrol(client, headers, clock)
    challenge = sign_in(client, "vic@example.org").json()["challenge"]
    used = client.post(
        "/v1/auth/token/second-factor", json={"challenge": challenge, "recovery_code": codes[0]}
    )
    assert used.status_code == 200
    challenge = sign_in(client, "vic@example.org").json()["challenge"]
    again = client.post(
        "/v1/auth/token/second-factor", json={"challenge": challenge, "recovery_code": codes[0]}
    )
    assert again.status_code == 401
    other = client.post(
        "/v1/auth/token/second-factor",
        json={"challenge": challenge, "recovery_code": codes[1].lower()},
    )
    assert other.status_code == 200


def test_guessing_codes_is_locked_out(client, clock):
    headers = register(client, "wes@example.org")
    secret, _, _ = enrol(client, headers, clock)
    challenge = sign_in(client, "wes@example.org").json()["challenge"]
    right = totp_now(secret, clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    statuses = [
        client.post(
            "/v1/auth/token/second-factor", json={"challenge": challenge, "code": wrong}
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 6
    locked = client.post(
        "/v1/auth/token/second-factor",
        json={"challenge": challenge, "code": totp_now(secret, clock)},
    )
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1


def test_guessing_passwords_is_locked_out_even_for_the_right_one(client, clock):
    register(client, "xia@example.org")
    for _ in range(6):
        assert sign_in(client, "xia@example.org", "wrong password!").status_code == 401
    locked = sign_in(client, "xia@example.org")
    assert locked.status_code == 429
    assert "Retry-After" in locked.headers
    clock.advance(timedelta(minutes=16))
    assert sign_in(client, "xia@example.org").status_code == 200


def test_disabling_two_factor_needs_password_and_code(client, runtime, clock):
    headers = register(client, "yan@example.org")
    secret, _, new = enrol(client, headers, clock)
    clock.advance(timedelta(seconds=60))
    no = client.post(
        "/v1/auth/2fa/disable",
        headers=new,
        json={"password": "not the password", "code": totp_now(secret, clock)},
    )
    assert no.status_code == 401
    assert runtime.services.registry.account_by_email("yan@example.org").totp_enabled
    assert sign_in(client, "yan@example.org").json()["code"] == "second_factor_required"
    clock.advance(timedelta(seconds=30))
    yes = client.post(
        "/v1/auth/2fa/disable",
        headers=new,
        json={"password": PASSWORD, "code": totp_now(secret, clock)},
    )
    assert yes.status_code == 204
    assert not runtime.services.registry.account_by_email("yan@example.org").totp_enabled
    assert sign_in(client, "yan@example.org").status_code == 200


def test_staff_cannot_turn_two_factor_off(client, runtime, clock):
    headers = staff_headers(client, runtime, clock, "billing")
    secret = runtime.services.registry.account_by_email("billing@staff.example.org").totp_secret
    clock.advance(timedelta(seconds=60))  # a fresh code: the enrolment's was used
    # Right password and a valid code: only the staff rule can refuse this.
    refused = client.post(
        "/v1/auth/2fa/disable",
        headers=headers,
        json={"password": "staff member long password", "code": totp_now(secret, clock)},
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "second_factor_state"
    assert runtime.services.registry.account_by_email("billing@staff.example.org").totp_enabled


def test_common_passwords_are_refused(client, runtime):
    response = client.post(
        "/v1/patients/register",
        json={
            "email": "zed@example.org",
            "password": "password123",
            "given_name": "Zed",
            "family_name": "Example",
            "birth_date": "1970-01-01",
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"
    # A refused registration creates no account.
    assert runtime.services.registry.account_by_email("zed@example.org") is None
    assert sign_in(client, "zed@example.org", "password123").status_code == 401


def test_sign_out_and_sign_out_everywhere(client):
    first = register(client, "amy@example.org")
    second_tokens = sign_in(client, "amy@example.org").json()
    second = {"Authorization": f"Bearer {second_tokens['access_token']}"}
    assert client.post("/v1/auth/logout", headers=first).status_code == 204
    assert client.get("/v1/appointments", headers=first).status_code == 401
    assert client.get("/v1/appointments", headers=second).status_code == 200
    ended = client.post("/v1/auth/logout-everywhere", headers=second)
    assert ended.json() == {"sessions_ended": 1}
    assert client.get("/v1/appointments", headers=second).status_code == 401
    refreshed = client.post(
        "/v1/auth/refresh", json={"refresh_token": second_tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401


def test_idle_and_absolute_session_limits(client, clock):
    register(client, "bea@example.org")
    tokens = sign_in(client, "bea@example.org").json()
    clock.advance(timedelta(minutes=61))
    idle = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert idle.status_code == 401

    tokens = sign_in(client, "bea@example.org").json()
    refreshed = 0
    for _ in range(24 * 2):  # refreshed every 30 minutes, the session still ends at 24 h
        clock.advance(timedelta(minutes=30))
        response = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        if response.status_code != 200:
            break
        refreshed += 1
        tokens = response.json()
    assert response.status_code == 401
    assert refreshed == 24 * 2 - 1  # every refresh before the 24th hour worked


def test_changing_the_password_ends_every_session(client):
    headers = register(client, "cal@example.org")
    other = {"Authorization": f"Bearer {sign_in(client, 'cal@example.org').json()['access_token']}"}
    changed = client.post(
        "/v1/auth/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 204
    assert client.get("/v1/appointments", headers=headers).status_code == 401
    assert client.get("/v1/appointments", headers=other).status_code == 401
    assert sign_in(client, "cal@example.org").status_code == 401
    assert sign_in(client, "cal@example.org", "a brand new passphrase").status_code == 200


def test_password_reset_by_single_use_link(client, runtime):
    register(client, "dee@example.org")
    unknown = client.post("/v1/auth/password-reset", json={"email": "nobody@example.org"})
    known = client.post("/v1/auth/password-reset", json={"email": "dee@example.org"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.content == known.content
    [message] = sent_mail(runtime)  # the e-mail channel's worker sends it
    assert message["To"] == "dee@example.org"
    token = reset_link_token_in(message.get_body(("plain",)).get_content())

    reset = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "reset to this passphrase"},
    )
    assert reset.status_code == 204
    assert sign_in(client, "dee@example.org", "reset to this passphrase").status_code == 200
    again = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "and again this one"},
    )
    assert again.status_code == 401
    assert sign_in(client, "dee@example.org", "and again this one").status_code == 401
    assert sign_in(client, "dee@example.org", "reset to this passphrase").status_code == 200


def test_a_disabled_staff_account_loses_its_sessions(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    scheduler = staff_headers(client, runtime, clock, "scheduler")
    account_id = runtime.services.registry.account_by_email("scheduler@staff.example.org").id
    disabled = client.post(
        f"/v1/staff/accounts/{account_id}/disable", headers=admin, json={"reason": "left"}
    )
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    shown = client.get(f"/v1/staff/accounts/{account_id}", headers=admin)
    assert shown.json()["disabled"] is True
    assert client.get("/v1/staff/accounts/" + str(account_id), headers=scheduler).status_code == 401
    assert (
        sign_in(client, "scheduler@staff.example.org", "staff member long password").status_code
        == 401
    )


def test_sign_in_sign_out_failures_and_lockouts_are_in_the_access_log(client, runtime):
    register(client, "eve@example.org")  # one successful sign-in
    for _ in range(6):
        sign_in(client, "eve@example.org", "wrong password!")
    sign_in(client, "eve@example.org")  # locked out now
    sign_in(client, "nobody@example.org")  # an unknown e-mail: one more failure
    leaving = register(client, "fin@example.org")
    assert client.post("/v1/auth/logout", headers=leaving).status_code == 204
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        rows = conn.execute(
            "SELECT action, outcome FROM phi_access_log WHERE resource = 'session' ORDER BY id"
        ).fetchall()
    assert rows[0] == ("sign_in", "success")
    assert rows.count(("sign_in", "failure")) == 7
    assert ("sign_in", "locked_out") in rows
    assert rows[-1] == ("sign_out", "success")
