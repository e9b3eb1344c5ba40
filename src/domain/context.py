"""Who did it, in what role, for which request, from which system.

Every event carries this as its ``meta`` so the log answers "who, when, why".
"""

from dataclasses import dataclass

SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """The author of a command."""

    id: str
    role: str
    request_id: str = ""
    source: str = "portal"

    def meta(self, **extra: str) -> dict[str, str]:
        """The metadata dict stored on each event this actor causes."""
        meta = {
            "actor_id": self.id,
            "role": self.role,
            "request_id": self.request_id,
            "source": self.source,
        }
        meta.update(extra)
        return meta


def system_actor(request_id: str = "", source: str = "imaging-bridge") -> Actor:
    """The actor for changes made by the platform itself (loaders, policies)."""
    return Actor(id=SYSTEM, role=SYSTEM, request_id=request_id, source=source)
