"""Request metrics: latency by route template (never the raw path: paths carry ids and
whatever a client typed), method and status, in this process's default Prometheus
registry; the operator's metrics server (see imaging_bridge) exposes it."""

from prometheus_client import Histogram

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_SECONDS = Histogram(
    "imaging_bridge_http_request_duration_seconds",
    "HTTP request latency, by route template, method and status",
    ["route", "method", "status"],
)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request (methods outside HTTP's usual ones as ``other``)."""
    REQUEST_SECONDS.labels(
        route=route, method=method if method in METHODS else "other", status=str(status)
    ).observe(seconds)
