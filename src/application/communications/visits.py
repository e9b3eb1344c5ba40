"""What a notice says about an appointment (``Visit``), read from the catalog, and the
notice as one channel carries it: clinical words (the exam's name, its preparation) only
ever go by e-mail, so an SMS or push delivery does not even store them."""

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from application.catalog import Catalog
from application.notices.kinds import Notice, OrderInvitation, Visit
from domain.contact_preferences import EMAIL
from domain.errors import InvalidValueError
from domain.location import site_on
from domain.reminders import parse_offsets
from domain.schedule import zone as zone_named

# How long a catalog entry read for notices is reused: a renamed exam or new preparation
# reaches notices within this time, and a day's bulk import does not read the catalog
# twice per booking.
SPEC_TTL = 30.0


def written_address(address: dict[str, str]) -> str:
    """``100 Example Avenue, Philadelphia, PA 19000`` from a catalog address."""
    parts = [address.get(key, "").strip() for key in ("line1", "line2", "city")]
    tail = " ".join(p for p in (address.get("region", ""), address.get("postal_code", "")) if p)
    return ", ".join(p for p in (*parts, tail.strip()) if p)


def exam_offsets(spec: dict[str, Any]) -> tuple[timedelta, ...] | None:
    """The exam type's own reminder offsets (``"72h,24h"`` or a list of such), None when
    it sets none (the centre's apply); an unreadable value counts as none set."""
    value = spec.get("reminder_offsets")
    if value is None:
        return None
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    try:
        return parse_offsets(text)
    except InvalidValueError:
        return None


def for_channel(notice: Notice, channel: str) -> Notice:
    """The notice as ``channel`` stores it: without the exam's name and preparation
    unless it goes by e-mail."""
    if channel == EMAIL:
        return notice
    visit = getattr(notice, "visit", None)
    if isinstance(visit, Visit):
        changed: Any = notice  # every kind with a visit has the field
        return cast(Notice, replace(changed, visit=replace(visit, exam_name="", preparation="")))
    if isinstance(notice, OrderInvitation):
        return replace(notice, exam_name="")
    return notice


class VisitWriter:
    """Builds the ``Visit`` of an appointment from the catalog (entries reused for
    ``SPEC_TTL`` seconds)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._specs: dict[UUID, tuple[float, dict[str, Any]]] = {}
        self._zone: tuple[float, str] | None = None

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def spec(self, entry_id: UUID, kind: str) -> dict[str, Any]:
        cached = self._specs.get(entry_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < SPEC_TTL:
            return cached[1]
        if kind == "location":
            spec = dict(self._catalog.location(entry_id).spec)
        else:
            spec = dict(self._catalog.appointment_type(entry_id).spec)
        self._specs[entry_id] = (now, spec)
        return spec

    def visit(
        self,
        appointment_id: UUID,
        appointment_type_id: UUID,
        location_id: UUID,
        start: datetime,
        timezone: str,
    ) -> Visit:
        exam = self.spec(appointment_type_id, "exam")
        location = self.spec(location_id, "location")
        local_day = start.astimezone(zone_named(timezone)).date()
        site = site_on(location, local_day)
        name = str(location["name"])
        address = dict(location.get("address") or {})
        if site is not None and location.get("kind") == "mobile":
            name, address = f"{name} ({site.name})", site.address
        return Visit(
            appointment_id=str(appointment_id),
            start=start,
            zone=timezone,
            location_name=name,
            location_address=written_address(address),
            exam_name=str(exam.get("name", "")),
            preparation=str(exam.get("preparation", "")),
        )

    def centre_zone(self) -> str:
        """The zone most of the catalog's locations keep (the first by code on a tie;
        UTC without any): where quiet hours are read for a notice about no visit (an
        invitation, a result) when the patient has not set a zone of their own."""
        now = time.monotonic()
        if self._zone is None or now - self._zone[0] >= SPEC_TTL:
            zones = [z for _, z in sorted(self._catalog.location_timezones().items())]
            chosen = max(zones, key=zones.count) if zones else "UTC"
            self._zone = (now, chosen)
        return self._zone[1]

    def offsets(self, appointment_type_id: UUID) -> tuple[timedelta, ...] | None:
        return exam_offsets(self.spec(appointment_type_id, "exam"))
