"""Old topics of event and aggregate classes that moved.

Every stored event names its class by topic (``module:QualName``). When a module
moves, the events already in the log still name the old module: registering the old
module name for the new module lets them (and any class inside) resolve as before.
"""

from importlib import import_module

from eventsourcing.utils import register_topic

MOVED_MODULES = {
    "domain.order": "domain.ris.order",
    "domain.ris_booking": "domain.ris.ris_booking",
    "domain.unmatched_result": "domain.ris.unmatched_result",
    "domain.message_delivery": "domain.ris.message_delivery",
}


def register_moved_topics() -> None:
    """Make the old module topics resolve to the modules' new places (idempotent)."""
    for old, new in MOVED_MODULES.items():
        register_topic(old, import_module(new))
