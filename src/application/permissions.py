"""Who may do what: the one permission matrix every endpoint and command is checked against."""

from enum import StrEnum

STAFF_ROLES = frozenset({"scheduler", "billing", "compliance", "admin", "integration"})


class Permission(StrEnum):
    PUBLIC = "public"
    """Anyone, signed in or not (catalog, slot search, registration, sign-in)."""
    SIGNED_IN = "signed_in"
    """Any valid session, even one still waiting for its second factor (enrolment, sign-out)."""
    OWN_RECORDS = "own_records"
    """A patient's own profile and appointments."""
    APPOINTMENTS_READ = "appointments:read"
    """Staff: appointments of patients at their centres."""
    APPOINTMENTS_MANAGE = "appointments:manage"
    """Staff: check in, complete, mark no-show, book or cancel on a patient's behalf."""
    PATIENTS_READ = "patients:read"
    """Staff: demographics of patients at their centres."""
    CATALOG_WRITE = "catalog:write"
    """Locations, resources, hours, closures, blocks and exam types."""
    STAFF_MANAGE = "staff:manage"
    """Create staff accounts, change roles and centres, disable accounts."""
    AUDIT_READ = "audit:read"
    """The PHI access log and the event history of a patient."""
    BREAK_GLASS = "break_glass"
    """Emergency access to any patient's records, with a reason, for a limited time."""
    DELIVERIES_OPERATE = "deliveries:operate"
    """See, redrive and replay outbound and inbound integration messages."""
    BILLING_MANAGE = "billing:manage"
    """Invoices, payments and ledger sync."""
    MESSAGES_OWN = "messages:own"
    """A patient's own secure messages with the centre."""
    MESSAGES_STAFF = "messages:staff"
    """Staff: answer patients' secure messages (list, read, reply, assign, close)."""


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "patient": frozenset({Permission.OWN_RECORDS, Permission.MESSAGES_OWN}),
    "scheduler": frozenset(
        {
            Permission.APPOINTMENTS_READ,
            Permission.APPOINTMENTS_MANAGE,
            Permission.PATIENTS_READ,
            Permission.CATALOG_WRITE,
            Permission.BREAK_GLASS,
            Permission.MESSAGES_STAFF,
        }
    ),
    "billing": frozenset({Permission.PATIENTS_READ, Permission.BILLING_MANAGE}),
    "compliance": frozenset({Permission.AUDIT_READ}),
    "admin": frozenset(
        {
            Permission.STAFF_MANAGE,
            Permission.CATALOG_WRITE,
            Permission.APPOINTMENTS_READ,
            Permission.DELIVERIES_OPERATE,
        }
    ),
    "integration": frozenset({Permission.DELIVERIES_OPERATE}),
}


def allows(role: str, permission: Permission) -> bool:
    """Whether a signed-in ``role`` holds ``permission`` (PUBLIC and SIGNED_IN: everyone)."""
    if permission in (Permission.PUBLIC, Permission.SIGNED_IN):
        return True
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def needs_second_factor(role: str) -> bool:
    """Staff must have signed in with two factors before using any staff permission."""
    return role in STAFF_ROLES
