"""``serve --outbound process``: the outbound part (delivery and communication policies,
pumps, sending threads) in a child process of ``serve``, off the API's interpreter lock.

The child builds its own runtime on the parent's database (``DATABASE_URL`` and
``DATA_DIR``, as ``serve --workers N`` hands them to its API workers), runs
``OUTBOUND_PARTS`` until the parent stops it (SIGTERM, then SIGKILL after a grace
period), and ends by itself if the parent dies first (Linux parent-death signal). The
parent keeps the read models (the child's pumps read the deliveries read model).
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import replace

import structlog

from adapters.settings import Settings, child_environment, hand_to_child_processes, inherited
from imaging_bridge.bootstrap import SERVE, Parts, Runtime

log = structlog.get_logger(__name__)

OUTBOUND_PARTS = Parts(
    projections=False,
    policy=SERVE.policy,
    pump=SERVE.pump,
    workers=SERVE.workers,
    lead=SERVE.lead,
)
"""What the child runs: ``serve``'s outbound parts."""
WITHOUT_OUTBOUND = replace(SERVE, policy=False, pump=False, workers=0)
"""What ``serve --outbound process`` keeps in its own process."""
PARENT = "IMAGING_BRIDGE_OUTBOUND_PARENT"
CHILD = "from imaging_bridge.outbound_process import run_child; run_child()"
PR_SET_PDEATHSIG = 1
STOP_GRACE = 20.0


def start_child(runtime: Runtime) -> subprocess.Popen[bytes]:
    """Start the outbound child on ``runtime``'s database."""
    hand_to_child_processes(runtime.settings.model_copy(update={"database_url": runtime.url}))
    env = child_environment(**{PARENT: str(os.getpid())})
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env)  # noqa: S603
    log.info("outbound_process_started", pid=child.pid)
    return child


def stop_child(child: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, wait, then SIGKILL; the child's exit status (None: it would not die)."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            log.warning("outbound_process_killed", pid=child.pid)
            child.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
    return child.returncode


def _die_with_parent() -> None:
    """SIGTERM to this process when its parent dies (Linux; elsewhere the child lives
    on until stopped). Armed in the child itself: ``preexec_fn`` is unsafe in a parent
    that runs threads."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_child() -> None:
    """The child's body: the outbound parts until SIGTERM or SIGINT."""
    from adapters.log_setup import configure_logging
    from imaging_bridge.cli_common import wait_for_stop_signal
    from imaging_bridge.outbound_runtime import build_outbound

    _die_with_parent()
    if str(os.getppid()) != inherited(PARENT):  # it died before the signal was armed
        return
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    os.nice(settings.outbound_nice)  # before any thread starts: they inherit it
    # migrate: the parent has migrated; this also lets the library create the tracking
    # tables of the policies, which only this process runs (the parent's own are made).
    runtime = build_outbound(settings, OUTBOUND_PARTS, create=False)
    try:
        log.info("outbound_process_running", threads=OUTBOUND_PARTS.workers)
        wait_for_stop_signal()
    finally:
        runtime.close()
