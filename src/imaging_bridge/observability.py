"""The operator's view of a running ``serve``: the Prometheus metrics server, wired to
this process's runtime (see adapters.metrics for what it shows)."""

from adapters.access_log import BatchingAccessLog
from adapters.metrics import MetricsServer, SystemCollector, serve_metrics
from adapters.settings import Settings
from application.catalog import Catalog
from application.communications.policy import TRACKING_TABLE
from application.messaging import MessagingLog
from application.registry import Registry
from application.ris.deliveries import Deliveries
from application.scheduling import Scheduling
from application.stranded import StrandingFollower
from domain.ris.message_delivery import CHANNELS
from imaging_bridge.bootstrap import Runtime
from imaging_bridge.cli_common import fail
from projections.runners import PROJECTIONS

# Every read model and policy, and the logs it follows; each tracks its position in
# ``<name>_tracking`` (the delivery policy's and the new-message notices' is the
# deliveries application's own; the communication policy's ``communications_tracking``).
COMMUNICATIONS = TRACKING_TABLE.removesuffix("_tracking")
FOLLOWERS: dict[str, list[str]] = {
    **{name: [application.name] for name, (application, _) in PROJECTIONS.items()},
    Deliveries.name: [Scheduling.name, Registry.name, MessagingLog.name],
    StrandingFollower.name: [Catalog.name],
    COMMUNICATIONS: [Scheduling.name],
}


def start_metrics_server(settings: Settings, runtime: Runtime) -> MetricsServer | None:
    """Serve ``/metrics`` as the settings say (``METRICS_PORT`` unset: not at all), or
    stop the command with one line when the port cannot be had."""
    if settings.metrics_port is None:
        return None
    access_log = runtime.services.access_log
    collector = SystemCollector(
        runtime.pool,
        followers=FOLLOWERS,
        channels=CHANNELS,
        access_log_pending=(
            (lambda: access_log.stats()["pending"])
            if isinstance(access_log, BatchingAccessLog)
            else None
        ),
    )
    try:
        return serve_metrics(
            settings.metrics_host, settings.metrics_port, [collector], settings.metrics_allow
        )
    except OSError as error:
        where = f"{settings.metrics_host}:{settings.metrics_port}"
        fail(f"cannot serve metrics on {where}: {error.strerror}")
