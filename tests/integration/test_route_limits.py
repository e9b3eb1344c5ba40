"""Per-address request budgets on the real routes (sign-in, second factor, password
reset): past the budget, 429 with Retry-After until the window ends; other addresses
are not affected. (tests/integration/test_limits.py covers the limiter itself.)"""

from datetime import timedelta
from itertools import count

import pytest
from fastapi.testclient import TestClient

from tests.support import register

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
_numbers = count()


def sign_in(c, email=None, password="not the password"):
    # A new unknown e-mail each time, so the per-account lockout never answers first.
    email = email or f"nobody{next(_numbers)}@example.org"
    return c.post("/v1/auth/token", data={"username": email, "password": password})


def refresh(c):
    return c.post("/v1/auth/refresh", json={"refresh_token": "not-a-refresh-token"})


def second_factor(c):
    return c.post("/v1/auth/token/second-factor", json={"challenge": "bogus", "code": "123456"})


def reset_request(c):
    return c.post("/v1/auth/password-reset", json={"email": "nobody@example.org"})


def reset_confirm(c):
    return c.post(
        "/v1/auth/password-reset/confirm",
        json={"token": "bogus", "new_password": "some new passphrase"},
    )


# (what to send, the routes sharing its budget, budget, window in seconds, answer within it)
BUDGETS = {
    "sign-in": (sign_in, refresh, 30, 60, 401),
    "second-factor": (second_factor, second_factor, 30, 60, 401),
    "password-reset": (reset_request, reset_confirm, 5, 300, 202),
}


def from_address(client: TestClient, address: str) -> TestClient:
    """Another client of the same running app, calling from ``address``."""
    return TestClient(client.app, client=(address, 40000))


def assert_refused(response, seconds: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["Retry-After"] == str(seconds)
    assert response.json()["code"] == "too_many_requests"


@pytest.mark.parametrize("bucket", sorted(BUDGETS))
def test_an_address_past_its_budget_waits_for_the_window_and_others_do_not(client, clock, bucket):
    send, shares_budget, budget, window, within = BUDGETS[bucket]
    first = from_address(client, "10.0.0.1")
    other = from_address(client, "10.0.0.2")

    # Given an address that used its whole budget (the clock stands at a window's start)
    statuses = [send(first).status_code for _ in range(budget)]
    assert statuses == [within] * budget

    # When it calls once more, on the route or on one sharing its budget
    refused = send(first)
    shared = shares_budget(first)

    # Then both wait for the window to end; another address is served meanwhile
    assert_refused(refused, window)
    assert_refused(shared, window)
    assert send(other).status_code == within
    clock.advance(timedelta(seconds=window // 2))
    assert_refused(send(first), window - window // 2)
    clock.advance(timedelta(seconds=window - window // 2))
    assert send(first).status_code == within


def test_a_spent_sign_in_budget_refuses_even_the_right_password(client, clock):
    register(client, "ria@example.org")
    caller = from_address(client, "10.0.0.3")
    for _ in range(30):
        sign_in(caller)

    refused = sign_in(caller, "ria@example.org", PASSWORD)

    assert_refused(refused, 60)
    assert sign_in(from_address(client, "10.0.0.4"), "ria@example.org", PASSWORD).status_code == 200


def test_the_budget_holds_over_a_real_socket(http, clock):
    # Every caller of the live server is 127.0.0.1: its sixth reset request is refused.
    statuses = [reset_request(http).status_code for _ in range(5)]
    refused = reset_request(http)

    assert statuses == [202] * 5
    assert_refused(refused, 300)
    clock.advance(timedelta(seconds=300))
    assert reset_request(http).status_code == 202
