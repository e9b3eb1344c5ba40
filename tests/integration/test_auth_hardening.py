"""Issue 9's sign-in findings, each through the real API: reset timing, the registration
budget, refresh reuse ending the session, passwords used exactly as typed, two-factor
ending password-only sessions, no changes to one's own account, and token refusals in the
PHI access log."""

import time
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.passwords import Argon2PasswordHasher
from adapters.tokens import JwtSigner
from application.auth import RESET_FLOOR_SECONDS
from application.notices.password_resets import QueuedPasswordResets
from application.ports import Principal
from application.registry import Registry
from domain.context import system_actor
from tests.support import register, reset_link_token_in, sent_mail, staff_headers, totp_now

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
PATIENT = {"given_name": "Test", "family_name": "Patient", "birth_date": "1980-02-29"}


def sign_in(client, address, password=PASSWORD):
    return client.post("/v1/auth/token", data={"username": address, "password": password})


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def access_log(runtime, where: str, *params: object) -> list[tuple]:
    """(action, outcome, actor_id, role, resource, reason) of matching rows, oldest first."""
    runtime.services.access_log.flush()
    with runtime.pool.connection() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                "SELECT action, outcome, actor_id, role, resource, reason FROM phi_access_log"
                f" WHERE {where} ORDER BY id",
                params,
            ).fetchall()
        ]


# Finding 3: password-reset timing ---------------------------------------------------------


@pytest.fixture
def port_calls(monkeypatch) -> list[str]:
    """Every call to the real hasher, signer, account lookup and mailer, in order."""
    seen: list[str] = []
    spied = {
        Argon2PasswordHasher: ("hash", "verify", "needs_rehash"),
        JwtSigner: ("issue", "verify", "issue_purpose", "verify_purpose"),
        Registry: ("account", "account_by_email"),
        QueuedPasswordResets: ("send_reset",),
    }
    for cls, names in spied.items():
        for name in names:
            real = getattr(cls, name)

            def counted(self, *args, _real=real, _name=f"{cls.__name__}.{name}", **kwargs):
                seen.append(_name)
                return _real(self, *args, **kwargs)

            monkeypatch.setattr(cls, name, counted)
    return seen


def test_a_reset_request_does_the_same_work_and_takes_as_long_for_any_address(
    client, runtime, port_calls
):
    # Given an account, a disabled account, and an address without one
    register(client, "known@example.org")
    disabled = runtime.services.registry.open_staff_account(
        email="gone@staff.example.org",
        password="staff member long password",
        role="scheduler",
        centres=[],
        actor=system_actor(),
    )
    runtime.services.registry.disable_account(disabled, "left", system_actor())
    work: dict[str, list[str]] = {}
    took: dict[str, float] = {}
    answers = {}
    for address in ("known@example.org", "gone@staff.example.org", "nobody@example.org"):
        port_calls.clear()
        # When each asks for a reset link
        started = time.perf_counter()
        answers[address] = client.post("/v1/auth/password-reset", json={"email": address})
        took[address] = time.perf_counter() - started
        work[address] = list(port_calls)

    # Then the answers are identical, the same expensive operations ran in the same order
    # (only the real account's message was handed to the mailer), and none came back
    # before the floor
    assert {(a.status_code, a.content) for a in answers.values()} == {(202, b"")}
    sent = "QueuedPasswordResets.send_reset"
    mailed = [call for call in work["known@example.org"] if call != sent]
    assert work["known@example.org"].count(sent) == 1
    assert mailed == work["gone@staff.example.org"] == work["nobody@example.org"]
    assert "JwtSigner.issue_purpose" in mailed
    assert min(took.values()) >= RESET_FLOOR_SECONDS


# Finding 4: a registration budget ----------------------------------------------------------


def test_registering_a_taken_address_again_and_again_runs_into_a_budget(client, clock):
    # Given an address that has an account
    register(client, "taken@example.org")
    body = {"email": "taken@example.org", "password": PASSWORD, **PATIENT}

    # When the same client tries to register it forty times in a row
    answers = [client.post("/v1/patients/register", json=body) for _ in range(40)]

    # Then the budget (30 a minute, one spent on the first registration) runs out
    codes = [answer.status_code for answer in answers]
    assert codes == [409] * 29 + [429] * 11
    assert answers[-1].json()["code"] == "too_many_requests"
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    # And the next window has a new budget
    clock.advance(timedelta(seconds=60))
    assert client.post("/v1/patients/register", json=body).status_code == 409


# Finding 7: a reused refresh token ends the whole session -----------------------------------


def test_reusing_a_refresh_token_ends_the_session_and_its_access_tokens(client):
    # Given a session that has refreshed once
    register(client, "reuse@example.org")
    first = sign_in(client, "reuse@example.org").json()
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert client.get("/v1/appointments", headers=bearer(second["access_token"])).status_code == 200

    # When the first refresh token is presented again (someone kept a copy)
    reused = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    # Then it is refused and the whole session is over: every access token, every refresh
    assert reused.status_code == 401
    for token in (first["access_token"], second["access_token"]):
        assert client.get("/v1/appointments", headers=bearer(token)).status_code == 401
    latest = client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert latest.status_code == 401
    # And other sessions of the account go on
    assert sign_in(client, "reuse@example.org").status_code == 200


# Finding 8: token refusals are in the PHI access log ----------------------------------------


def test_forged_expired_invalid_and_ended_tokens_and_refresh_reuse_are_in_the_access_log(
    client, runtime, clock
):
    # Given a patient with a session, and tokens that must not work
    headers = register(client, "logged@example.org")
    account_id = runtime.services.registry.account_by_email("logged@example.org").id
    real = runtime.services.auth.principal(headers["Authorization"].split()[1])
    forger = JwtSigner(
        Ed25519PrivateKey.generate(), runtime.settings.jwt_key_id, timedelta(minutes=15)
    )
    forged, _ = forger.issue(
        Principal(account_id, "admin", None, real.session_id, ("pwd", "otp")), clock.now()
    )
    ended = sign_in(client, "logged@example.org").json()
    assert client.post("/v1/auth/logout", headers=bearer(ended["access_token"])).status_code == 204
    pair = sign_in(client, "logged@example.org").json()
    assert client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).is_success

    # When each is used
    assert client.get("/v1/appointments", headers=bearer(forged)).status_code == 401
    assert client.get("/v1/appointments", headers=bearer("not.a.token")).status_code == 401
    assert client.get("/v1/patients/me", headers=bearer(ended["access_token"])).status_code == 401
    assert client.get("/v1/patients/me").status_code == 401
    reuse = client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert reuse.status_code == 401
    clock.advance(timedelta(minutes=16))
    assert client.get("/v1/appointments", headers=headers).status_code == 401

    # Then every refusal is in the access log, with the route and the reason
    refusals = access_log(runtime, "outcome IN ('denied_token', 'denied_no_token')")
    assert [(row[1], row[4], row[5]) for row in refusals] == [
        ("denied_token", "/v1/appointments", "the access token is invalid"),
        ("denied_token", "/v1/appointments", "the access token is invalid"),
        ("denied_token", "/v1/patients/me", "the session has ended; sign in again"),
        ("denied_no_token", "/v1/patients/me", "no bearer token"),
        ("denied_token", "/v1/appointments", "the access token has expired"),
    ]
    assert {(row[2], row[3]) for row in refusals} == {("anonymous", "anonymous")}
    # And the reuse names the account whose session it ended
    assert access_log(runtime, "action = 'refresh' AND outcome = 'reused'") == [
        ("refresh", "reused", str(account_id), "patient", "session", "")
    ]


# Finding 12: passwords exactly as typed ------------------------------------------------------


def reset_link_token(runtime) -> str:
    message = sent_mail(runtime)[-1]
    return reset_link_token_in(message.get_body(("plain",)).get_content())


def test_passwords_are_used_exactly_as_typed_everywhere(client, runtime):
    # Register with spaces around the password: signing in needs it exactly so
    headers = register(client, "spaces@example.org", "  spaced password  ")
    assert sign_in(client, "spaces@example.org", "spaced password").status_code == 401

    # Change it to another with spaces around it
    changed = client.post(
        "/v1/auth/password",
        headers=headers,
        json={"current_password": "  spaced password  ", "new_password": " changed with space "},
    )
    assert changed.status_code == 204
    assert sign_in(client, "spaces@example.org", " changed with space ").status_code == 200
    assert sign_in(client, "spaces@example.org", "changed with space").status_code == 401

    # Reset it to a third one
    client.post("/v1/auth/password-reset", json={"email": "spaces@example.org"})
    reset = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": reset_link_token(runtime), "new_password": "reset with spaces  "},
    )
    assert reset.status_code == 204
    assert sign_in(client, "spaces@example.org", "reset with spaces  ").status_code == 200
    assert sign_in(client, "spaces@example.org", "reset with spaces").status_code == 401


def test_a_staff_password_with_spaces_works_as_typed(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    created = client.post(
        "/v1/staff/accounts",
        headers=admin,
        json={"email": "new@staff.example.org", "password": " staff spaces ", "role": "billing"},
    )
    assert created.status_code == 201
    assert sign_in(client, "new@staff.example.org", " staff spaces ").status_code == 200
    assert sign_in(client, "new@staff.example.org", "staff spaces").status_code == 401


# Finding 14: two-factor ends password-only sessions; nothing on one's own account -----------


def test_turning_two_factor_on_ends_the_accounts_password_only_sessions(client, clock):
    # Given two password-only sessions of one account
    here = register(client, "twice@example.org")
    elsewhere_pair = sign_in(client, "twice@example.org").json()
    elsewhere = bearer(elsewhere_pair["access_token"])

    # When two-factor sign-in is turned on in one of them
    enrolment = client.post("/v1/auth/2fa/enrol", headers=here).json()
    confirmed = client.post(
        "/v1/auth/2fa/confirm", headers=here, json={"code": totp_now(enrolment["secret"], clock)}
    )
    assert confirmed.status_code == 200

    # Then only the new two-factor session it was given works
    upgraded = bearer(confirmed.json()["tokens"]["access_token"])
    assert client.get("/v1/appointments", headers=upgraded).status_code == 200
    assert client.get("/v1/appointments", headers=elsewhere).status_code == 401
    assert client.get("/v1/appointments", headers=here).status_code == 401
    stale = client.post("/v1/auth/refresh", json={"refresh_token": elsewhere_pair["refresh_token"]})
    assert stale.status_code == 401


def test_an_admin_cannot_change_their_own_role_or_disable_themselves(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    own_id = runtime.services.registry.account_by_email("admin@staff.example.org").id

    promoted = client.post(
        f"/v1/staff/accounts/{own_id}/role", headers=admin, json={"role": "compliance"}
    )
    disabled = client.post(
        f"/v1/staff/accounts/{own_id}/disable", headers=admin, json={"reason": "testing"}
    )

    assert (promoted.status_code, promoted.json()["code"]) == (422, "own_account")
    assert (disabled.status_code, disabled.json()["code"]) == (422, "own_account")
    account = runtime.services.registry.account(own_id)
    assert (account.role, account.disabled) == ("admin", False)
    assert client.get(f"/v1/staff/accounts/{own_id}", headers=admin).status_code == 200


def test_the_inbound_replay_refuses_unknown_fields(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    replay = client.post(
        f"/v1/admin/hl7/inbound/{uuid.uuid4()}/replay",
        headers=admin,
        json={"reason": "the RIS fixed the order", "force": True},
    )
    assert replay.status_code == 422
    assert replay.json()["code"] == "validation_error"
    assert "force" in replay.json()["detail"]
