"""Everything the API and the CLI call, gathered by the composition root."""

from dataclasses import dataclass
from typing import Protocol

from application.access import StaffAccess
from application.activation import Activation
from application.appointment_details import AppointmentDetails
from application.auth import AuthService
from application.browser_sessions import BrowserSessions
from application.catalog import Catalog
from application.communications.records import Communications
from application.messaging import Messaging
from application.patient_search import PatientSearch
from application.ports import (
    AccessLog,
    AlertReader,
    AppointmentReader,
    CatalogReader,
    Clock,
    RateLimiter,
    ReadModelSync,
)
from application.preferences import Preferences
from application.registry import Registry
from application.ris.delivery_desk import DeliveryDesk
from application.ris.inbound_desk import Hl7Inbound
from application.ris.patient_records import PatientRecords
from application.scheduling import Scheduling
from application.slot_answers import SlotAnswers
from application.slot_search import SlotSearch
from application.sms_hooks import SmsHooks


class Health(Protocol):
    def database_ok(self) -> bool: ...

    def projections_ok(self) -> bool: ...

    def read_models(self) -> dict[str, dict[str, int]]:
        """``{"behind": {read model: events}, "parked": {read model: events}}``, naming
        only the read models behind their log or with parked events."""
        ...


@dataclass
class Services:
    catalog: Catalog
    scheduling: Scheduling
    registry: Registry
    auth: AuthService
    slots: SlotSearch
    slot_answers: SlotAnswers
    appointments: AppointmentReader
    appointment_details: AppointmentDetails
    catalog_view: CatalogReader
    sync: ReadModelSync
    clock: Clock
    health: Health
    access_log: AccessLog
    rate_limiter: RateLimiter
    staff_access: StaffAccess
    hl7_inbound: Hl7Inbound
    deliveries: DeliveryDesk
    alerts: AlertReader
    records: PatientRecords
    jwks: dict[str, list[dict[str, str]]]
    """The public keys that verify our tokens (``/.well-known/jwks.json``)."""
    activation: Activation
    patient_search: PatientSearch
    browser: BrowserSessions
    preferences: Preferences
    messaging: Messaging
    sms_hooks: SmsHooks
    communications: Communications
    """What was sent to each patient: their notifications, the compliance record."""
