"""Which peers' forwarded headers uvicorn believes (``TRUSTED_PROXIES``).

uvicorn's defaults believe ``X-Forwarded-For`` and ``X-Forwarded-Proto`` from 127.0.0.1
(or whatever ``FORWARDED_ALLOW_IPS`` says): any local client could then choose its own
address (escaping every per-address request budget and writing a made-up address into
the PHI access log) and claim HTTPS (turning HSTS on over plain HTTP). The app reads the
client's address and scheme from the ASGI scope only, so what uvicorn puts there is
what counts: the connection's own, unless the connection comes from a trusted proxy.
"""

from typing import Any

from adapters.settings import Settings


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``proxy_headers`` and ``forwarded_allow_ips`` for ``serve`` (one process
    or ``--workers``): off unless ``TRUSTED_PROXIES`` names proxies, then only theirs."""
    trusted = [str(network) for network in settings.trusted_proxies]
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted}
