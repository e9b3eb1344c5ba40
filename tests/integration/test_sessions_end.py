"""When sessions end: a role change ends the account's sessions (access and refresh
tokens); a disabled account cannot refresh; a reset link dies with the password it
was issued for."""

import pytest

from domain.context import system_actor
from tests.integration.signing_in import bearer, reset_tokens, sign_in_with_code
from tests.support import register, staff_headers

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
SCHEDULER = "scheduler@staff.example.org"


def sign_in(client, email: str, password: str = PASSWORD):
    return client.post("/v1/auth/token", data={"username": email, "password": password})


def refresh(client, tokens: dict):
    return client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})


def test_a_role_change_ends_the_accounts_sessions(client, runtime, clock):
    # Given a scheduler with two sessions, and an admin
    admin = staff_headers(client, runtime, clock, "admin")
    staff_headers(client, runtime, clock, "scheduler")
    first = sign_in_with_code(client, runtime, clock, SCHEDULER).json()
    second = sign_in_with_code(client, runtime, clock, SCHEDULER).json()
    account_id = runtime.services.registry.account_by_email(SCHEDULER).id
    assert client.get("/v1/staff/catalog/resources", headers=bearer(first)).status_code == 200

    # When the admin makes the scheduler a billing clerk
    changed = client.post(
        f"/v1/staff/accounts/{account_id}/role", headers=admin, json={"role": "billing"}
    )

    # Then neither session's access or refresh token works any more
    assert changed.status_code == 200, changed.text
    for tokens in (first, second):
        stale = client.get("/v1/staff/catalog/resources", headers=bearer(tokens))
        assert (stale.status_code, stale.json()["code"]) == (401, "invalid_token")
        assert refresh(client, tokens).status_code == 401
    # and a new sign-in carries the new role: the catalog is no longer theirs to edit
    again = sign_in_with_code(client, runtime, clock, SCHEDULER)
    assert again.status_code == 200, again.text
    assert client.get("/v1/staff/catalog/resources", headers=bearer(again.json())).status_code == (
        403
    )
    # The admin's own session is untouched.
    assert client.get(f"/v1/staff/accounts/{account_id}", headers=admin).status_code == 200


def test_the_same_role_and_centres_again_record_nothing(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    staff_headers(client, runtime, clock, "scheduler")
    account_id = runtime.services.registry.account_by_email(SCHEDULER).id
    before = len(list(runtime.services.registry.events.get(account_id)))

    same = client.post(
        f"/v1/staff/accounts/{account_id}/role", headers=admin, json={"role": "scheduler"}
    )

    assert (same.status_code, same.json()["role"]) == (200, "scheduler")
    assert len(list(runtime.services.registry.events.get(account_id))) == before


def test_refresh_of_an_account_disabled_through_the_api_is_refused(client, runtime, clock):
    admin = staff_headers(client, runtime, clock, "admin")
    staff_headers(client, runtime, clock, "scheduler")
    tokens = sign_in_with_code(client, runtime, clock, SCHEDULER).json()
    account_id = runtime.services.registry.account_by_email(SCHEDULER).id

    client.post(f"/v1/staff/accounts/{account_id}/disable", headers=admin, json={"reason": "left"})
    refused = refresh(client, tokens)

    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")


def test_refresh_of_an_account_disabled_behind_the_sessions_back_is_refused(client, runtime):
    # Given a patient signed in, whose account is disabled by the registry directly
    # (no session store involved: only refresh's own check can refuse)
    register(client, "kai@example.org")
    tokens = sign_in(client, "kai@example.org").json()
    account_id = runtime.services.registry.account_by_email("kai@example.org").id
    assert refresh(client, tokens).status_code == 200  # the token itself is good
    tokens = sign_in(client, "kai@example.org").json()
    runtime.services.registry.disable_account(account_id, "fraud", system_actor(source="test"))

    # When the session refreshes
    refused = refresh(client, tokens)

    # Then it is refused, and that session is over for its access token too
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")
    after = client.get("/v1/appointments", headers=bearer(tokens))
    assert after.status_code == 401


def test_a_reset_link_dies_when_the_password_changes_after_it_was_sent(client, runtime):
    # Given a patient who asked for a reset link, then changed the password while signed in
    headers = register(client, "lee@example.org")
    asked = client.post("/v1/auth/password-reset", json={"email": "lee@example.org"})
    assert asked.status_code == 202
    (token,) = reset_tokens(runtime).values()
    changed = client.post(
        "/v1/auth/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "changed while signed in"},
    )
    assert changed.status_code == 204

    # When the old link is used
    used = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "what the link would set"},
    )

    # Then it is refused and the password is the one changed afterwards
    assert (used.status_code, used.json()["code"]) == (401, "invalid_token")
    assert sign_in(client, "lee@example.org", "what the link would set").status_code == 401
    assert sign_in(client, "lee@example.org", "changed while signed in").status_code == 200


def test_using_one_reset_link_voids_the_others_sent_before(client, runtime):
    register(client, "mo@example.org")
    for _ in range(2):
        asked = client.post("/v1/auth/password-reset", json={"email": "mo@example.org"})
        assert asked.status_code == 202
    one, other = reset_tokens(runtime).values()

    used = client.post(
        "/v1/auth/password-reset/confirm", json={"token": one, "new_password": "the link used"}
    )
    stale = client.post(
        "/v1/auth/password-reset/confirm", json={"token": other, "new_password": "the stale link"}
    )

    assert used.status_code == 204
    assert (stale.status_code, stale.json()["code"]) == (401, "invalid_token")
    assert sign_in(client, "mo@example.org", "the link used").status_code == 200
