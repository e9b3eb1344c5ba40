"""Request budgets per client address, and the 429 error every limit answers with."""

from collections.abc import Callable
from math import ceil
from typing import Any, Protocol

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.deps import PrincipalDep
from api.errors import ApiError
from application.ports import Clock, RateLimiter


class _Limited(Protocol):
    """The part of the services a rate limit needs."""

    rate_limiter: RateLimiter
    clock: Clock


def too_many_attempts(seconds: float, what: str = "attempts") -> ApiError:
    """429 with ``Retry-After`` in whole seconds (rounded up, at least 1)."""
    wait = max(1, ceil(seconds))
    return ApiError(
        429,
        "too_many_requests",
        f"too many {what}; try again in {wait} second{'s' if wait != 1 else ''}",
        headers={"Retry-After": str(wait)},
    )


def rate_limit(bucket: str, limit: int, window_seconds: int) -> Any:
    """A dependency allowing ``limit`` requests per client address every ``window_seconds``
    (fixed windows), counted under ``bucket``; past that, 429 until the window ends.

    Use as ``dependencies=[rate_limit("sign_in", 10, 60)]`` on a route. Behind a proxy the
    client address is the proxy's unless it is in ``TRUSTED_PROXIES`` (adapters/proxies.py)."""

    def check(request: Request) -> None:
        services: _Limited = request.app.state.services
        address = request.client.host if request.client else "unknown"
        wait = services.rate_limiter.hit(
            bucket, address, limit, window_seconds, services.clock.now()
        )
        if wait > 0:
            raise too_many_attempts(wait)

    return Depends(check)


def patient_rate_limit(
    bucket: str, limit: Callable[[Any], int], window_seconds: int, what: str = "requests"
) -> Any:
    """Like ``rate_limit``, but counted per patient (their account), whatever address they
    come from; ``limit(services)`` reads the budget from the configured services. Calls by
    anyone but a patient are not counted here."""

    async def check(request: Request, principal: PrincipalDep) -> None:
        services: _Limited = request.app.state.services
        budget = limit(services)
        if principal.patient_id is None or budget <= 0:
            return
        wait = await run_in_threadpool(
            services.rate_limiter.hit,
            bucket,
            f"patient:{principal.account_id}",
            budget,
            window_seconds,
            services.clock.now(),
        )
        if wait > 0:
            raise too_many_attempts(wait, what)

    return Depends(check)
