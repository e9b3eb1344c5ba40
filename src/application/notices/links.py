"""The portal addresses a notice links to, all absolute and built from one base URL (the
portal's ``PUBLIC_BASE_URL``), so a link in a message always leads to the portal that
sent it. Ids and tokens are percent-encoded."""

import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from domain.errors import InvalidValueError

BASE_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~\-/]*)?$")


@dataclass(frozen=True)
class PortalLinks:
    """``base_url`` is ``http(s)://host[:port][/path]``, without a query."""

    base_url: str

    def __post_init__(self) -> None:
        if not BASE_URL.match(self.base_url):
            raise InvalidValueError("a base URL is http(s)://host[/path], with no query")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def appointment(self, appointment_id: str) -> str:
        return self._at("appointments", appointment_id)

    def reschedule(self, appointment_id: str) -> str:
        return self._at("appointments", appointment_id, "reschedule")

    def book(self, order_id: str | None = None) -> str:
        return self._at("book", query={"order": order_id} if order_id else None)

    def activate(self, token: str) -> str:
        return self._at("activate", query={"token": token})

    def activate_page(self) -> str:
        """The activation page without a code (the patient types the one staff gave)."""
        return self._at("activate")

    def results(self) -> str:
        return self._at("results")

    def messages(self, thread_id: str | None = None) -> str:
        return self._at("messages", thread_id) if thread_id else self._at("messages")

    def profile(self) -> str:
        return self._at("profile")

    def reset_password(self, token: str) -> str:
        return self._at("reset-password", query={"token": token})

    def _at(self, *parts: str, query: dict[str, str] | None = None) -> str:
        path = "/".join(quote(part, safe="") for part in parts)
        return f"{self.base_url}/{path}" + (f"?{urlencode(query)}" if query else "")
