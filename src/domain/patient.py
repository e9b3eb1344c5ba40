"""Patient: demographics and contact details of a person who books exams, and how they
want to hear from the centre (``Patient.preferences``)."""

from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.account import normalise_email
from domain.contact_preferences import (
    CHANNELS,
    EMAIL,
    LANGUAGES,
    PUSH,
    SMS,
    SOURCES,
    Consent,
    ContactPreferences,
    PushSubscription,
    e164,
    push_endpoint_allowed,
)
from domain.errors import InvalidValueError
from domain.reminders import QuietHours
from domain.schedule import zone as zone_named

# HL7 table 0001: female, male, other, unknown, ambiguous, not applicable.
ADMINISTRATIVE_SEXES = ("F", "M", "O", "U", "A", "N")


def check_demographics(given_name: str, family_name: str, birth_date: date, today: date) -> None:
    if not given_name.strip() or not family_name.strip():
        raise InvalidValueError("given and family names are required")
    if len(given_name) > 100 or len(family_name) > 100:
        raise InvalidValueError("names are limited to 100 characters")
    if not date(1900, 1, 1) <= birth_date <= today:
        raise InvalidValueError("birth date must be between 1900-01-01 and today")


class Patient(Aggregate):
    """A person known to the centre (identifiers, consent and insurance come later)."""

    class Registered(Aggregate.Created):
        given_name: str
        family_name: str
        birth_date: date
        email: str
        phone: str | None
        meta: dict[str, str]

    @classmethod
    def register(
        cls,
        *,
        id: UUID,
        given_name: str,
        family_name: str,
        birth_date: date,
        email: str,
        phone: str | None,
        today: date,
        meta: dict[str, str],
    ) -> "Patient":
        check_demographics(given_name, family_name, birth_date, today)
        return cls(
            id=id,
            given_name=given_name.strip(),
            family_name=family_name.strip(),
            birth_date=birth_date,
            email=email,
            phone=phone,
            meta=meta,
        )

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        given_name: str,
        family_name: str,
        birth_date: date,
        email: str,
        phone: str | None,
        meta: dict[str, str],
    ) -> None:
        self.given_name = given_name
        self.family_name = family_name
        self.birth_date = birth_date
        self.email = email
        self.phone = phone
        self.identifiers: dict[str, str] = {}
        self.merged_into: UUID | None = None
        # Kept by events added later; records older than them start from these.
        self.administrative_sex = ""
        self.account_id: UUID | None = None
        self.activation_code_id: UUID | None = None
        self.ris_email = ""
        # A record the RIS made has no e-mail address when it is registered.
        self.made_by_ris = not email
        self._contact = ContactPreferences()
        # Which of language, quiet hours and zone the patient (or staff) ever set.
        self._chosen: set[str] = set()

    @property
    def has_account(self) -> bool:
        """Someone signs in as this patient: they registered here (their record carries
        the account's e-mail address) or an account was linked to it."""
        return bool(self.email) or self.account_id is not None

    @property
    def notice_email(self) -> str:
        """Where e-mail notices go: the account's address when someone signs in as the
        patient, else the one the RIS sent (PID-13), else none."""
        return self.email or self.ris_email

    # Identifiers, demographics from the RIS, merges -----------------------------------

    class Identified(Aggregate.Event):
        authority: str
        value: str
        meta: dict[str, str]

    class DemographicsChanged(Aggregate.Event):
        given_name: str
        family_name: str
        birth_date: date
        phone: str | None
        meta: dict[str, str]

    class MergedInto(Aggregate.Event):
        survivor_id: UUID
        meta: dict[str, str]

    class SexRecorded(Aggregate.Event):
        administrative_sex: str
        meta: dict[str, str]

    class AccountLinked(Aggregate.Event):
        account_id: UUID
        email: str
        meta: dict[str, str]

    class ActivationCodeIssued(Aggregate.Event):
        code_id: UUID
        meta: dict[str, str]

    class RisEmailRecorded(Aggregate.Event):
        email: str
        meta: dict[str, str]

    def identify(self, *, authority: str, value: str, meta: dict[str, str]) -> None:
        """Record the patient's identifier (an MRN) issued by ``authority``."""
        if not authority.strip() or not value.strip():
            raise InvalidValueError("an identifier needs a value and an assigning authority")
        if self.identifiers.get(authority.strip()) == value.strip():
            return
        self._identified(authority=authority.strip(), value=value.strip(), meta=meta)

    @event(Identified)
    def _identified(self, authority: str, value: str, meta: dict[str, str]) -> None:
        self.identifiers[authority] = value

    def change_demographics(
        self,
        *,
        given_name: str,
        family_name: str,
        birth_date: date,
        phone: str | None,
        today: date,
        at: datetime,
        meta: dict[str, str],
    ) -> bool:
        """New names, birth date or phone; False (and no event) when nothing differs.
        SMS consent is given for one number: a new number (in E.164; the same number
        written differently is no change), or none, withdraws it (source
        ``number_changed``, at ``at``) and the patient is asked again."""
        check_demographics(given_name, family_name, birth_date, today)
        given_name, family_name = given_name.strip(), family_name.strip()
        if (given_name, family_name, birth_date, phone) == (
            self.given_name,
            self.family_name,
            self.birth_date,
            self.phone,
        ):
            return False
        number_before = self.phone
        self._demographics_changed(
            given_name=given_name,
            family_name=family_name,
            birth_date=birth_date,
            phone=phone,
            meta=meta,
        )
        if e164(phone or "") != e164(number_before or ""):
            self.withdraw_consent(SMS, at=at, source="number_changed", meta=meta)
        return True

    @event(DemographicsChanged)
    def _demographics_changed(
        self,
        given_name: str,
        family_name: str,
        birth_date: date,
        phone: str | None,
        meta: dict[str, str],
    ) -> None:
        self.given_name = given_name
        self.family_name = family_name
        self.birth_date = birth_date
        self.phone = phone

    def merge_into(self, survivor_id: UUID, meta: dict[str, str]) -> None:
        """This record is a duplicate of ``survivor_id``'s: lookups go there from now on."""
        if survivor_id == self.id:
            raise InvalidValueError("a patient cannot be merged into itself")
        if self.merged_into == survivor_id:
            return
        if self.merged_into is not None:
            raise InvalidValueError("this patient was already merged into another record")
        self._merged_into(survivor_id=survivor_id, meta=meta)

    @event(MergedInto)
    def _merged_into(self, survivor_id: UUID, meta: dict[str, str]) -> None:
        self.merged_into = survivor_id

    # Administrative sex (HL7 PID-8), accounts, activation codes ------------------------

    def record_sex(self, administrative_sex: str, meta: dict[str, str]) -> bool:
        """The administrative sex (HL7 table 0001); False (and no event) when unchanged.
        An empty value says nothing and changes nothing."""
        value = administrative_sex.strip().upper()
        if not value or value == self.administrative_sex:
            return False
        if value not in ADMINISTRATIVE_SEXES:
            raise InvalidValueError(
                f"administrative sex must be one of {', '.join(ADMINISTRATIVE_SEXES)}"
            )
        self._sex_recorded(administrative_sex=value, meta=meta)
        return True

    @event(SexRecorded)
    def _sex_recorded(self, administrative_sex: str, meta: dict[str, str]) -> None:
        self.administrative_sex = administrative_sex

    def link_account(self, account_id: UUID, email: str, meta: dict[str, str]) -> None:
        """An account signs in as this patient from now on (it was activated with a code)."""
        if self.merged_into is not None:
            raise InvalidValueError("an account cannot be linked to a merged-away record")
        if self.account_id == account_id:
            return
        if self.has_account:
            raise InvalidValueError("this patient already has an account")
        self._account_linked(account_id=account_id, email=email, meta=meta)

    @event(AccountLinked)
    def _account_linked(self, account_id: UUID, email: str, meta: dict[str, str]) -> None:
        self.account_id = account_id
        self.email = email

    def issue_activation_code(self, code_id: UUID, meta: dict[str, str]) -> None:
        """The code ``code_id`` may activate this record; it replaces any earlier code."""
        if self.merged_into is not None:
            raise InvalidValueError("this record was merged into another; use that one")
        self._activation_code_issued(code_id=code_id, meta=meta)

    @event(ActivationCodeIssued)
    def _activation_code_issued(self, code_id: UUID, meta: dict[str, str]) -> None:
        self.activation_code_id = code_id

    def record_ris_email(self, email: str, meta: dict[str, str]) -> bool:
        """The e-mail address the RIS holds for the patient (PID-13), kept apart from the
        account's: notices may go there, nobody signs in with it. False (and no event) when
        unchanged; an empty value says nothing and changes nothing."""
        if not email.strip():
            return False
        address = normalise_email(email)
        if address == self.ris_email:
            return False
        self._ris_email_recorded(email=address, meta=meta)
        return True

    @event(RisEmailRecorded)
    def _ris_email_recorded(self, email: str, meta: dict[str, str]) -> None:
        self.ris_email = email

    # How the patient wants to hear from the centre ------------------------------------

    class ConsentGiven(Aggregate.Event):
        channel: str
        at: datetime
        source: str
        meta: dict[str, str]

    class ConsentWithdrawn(Aggregate.Event):
        channel: str
        at: datetime
        source: str
        meta: dict[str, str]

    class LanguageChosen(Aggregate.Event):
        language: str
        meta: dict[str, str]

    class QuietHoursSet(Aggregate.Event):
        quiet_hours: str  # "21:00-08:00"
        meta: dict[str, str]

    class QuietHoursCleared(Aggregate.Event):
        meta: dict[str, str]

    class TimezoneChosen(Aggregate.Event):
        zone: str | None  # None: the zone of the centre's location
        meta: dict[str, str]

    class PushSubscriptionAdded(Aggregate.Event):
        endpoint: str
        p256dh: str
        auth: str
        at: datetime
        meta: dict[str, str]

    class PushSubscriptionRemoved(Aggregate.Event):
        endpoint: str
        at: datetime
        source: str
        meta: dict[str, str]

    def take_preferences_of(self, merged: "Patient", *, at: datetime, meta: dict[str, str]) -> bool:
        """What ``merged`` (a duplicate record being merged into this one) said about how
        the person wants to hear from us, carried over as events here (source ``merge``)
        where it does not override this record's own choices: a withdrawal always (a
        merge never loses one; a ``number_changed`` one is not the person's and is not
        carried); a consent on a channel this record was never asked about when given
        for the address this record has too (the same e-mail address, the same number in
        E.164; push never, a subscription being one browser's); the language, quiet hours
        and zone this record never set. True when something changed."""
        if merged.merged_into != self.id:
            raise InvalidValueError("only a record merged into this one hands over preferences")
        changed = False
        for channel in CHANNELS:
            theirs = merged._contact.consent(channel)
            if theirs is None or theirs.source == "number_changed":
                continue
            if not theirs.granted:
                changed |= self.withdraw_consent(channel, at=at, source="merge", meta=meta)
            elif self._contact.consent(channel) is None and _same_address(self, merged, channel):
                changed |= self.give_consent(channel, at=at, source="merge", meta=meta)
        chosen = merged._chosen - self._chosen
        if "language" in chosen:
            changed |= self.choose_language(merged._contact.language, meta)
        if "quiet_hours" in chosen:
            changed |= self.set_quiet_hours(merged._contact.quiet_hours, meta)
        if "zone" in chosen:
            changed |= self.choose_timezone(merged._contact.zone, meta)
        return changed

    @property
    def preferences(self) -> ContactPreferences:
        """The patient's preferences now. Until the patient says otherwise, e-mail is
        consented from the moment the record had an address (``registration``, or ``ris``
        for a record the RIS made, with the address the RIS sent or the one of an account
        that later claimed it); SMS and push are off."""
        contact = self._contact
        if contact.consent(EMAIL) is None and self.notice_email:
            source = "ris" if self.made_by_ris else "registration"
            contact = contact.with_consent(Consent(EMAIL, True, self.created_on, source))
        return contact

    def give_consent(
        self, channel: str, *, at: datetime, source: str, meta: dict[str, str]
    ) -> bool:
        """The patient agrees to hear on ``channel``; False (and no event) when they had
        already (even if the subscriptions went since). E-mail needs an address, SMS a
        phone number ``e164`` reads (the consent is for that number: see
        ``change_demographics``), push a subscription."""
        _check_consent(channel, at, source)
        current = self.preferences.consent(channel)
        if current is not None and current.granted:
            return False
        if channel == EMAIL and not self.notice_email:
            raise InvalidValueError("e-mail needs an address on the record")
        if channel == SMS and (self.phone is None or e164(self.phone) is None):
            raise InvalidValueError("text messages need a mobile phone number on the record")
        if channel == PUSH and not self._contact.push_subscriptions:
            raise InvalidValueError("notifications need this browser to subscribe first")
        self._consent_given(channel=channel, at=at, source=source, meta=meta)
        return True

    @event(ConsentGiven)
    def _consent_given(self, channel: str, at: datetime, source: str, meta: dict[str, str]) -> None:
        self._contact = self._contact.with_consent(Consent(channel, True, at, source))

    def withdraw_consent(
        self, channel: str, *, at: datetime, source: str, meta: dict[str, str]
    ) -> bool:
        """The patient no longer wants ``channel``; False (and no event) when it was off."""
        _check_consent(channel, at, source)
        current = self.preferences.consent(channel)
        if current is None or not current.granted:
            return False
        self._consent_withdrawn(channel=channel, at=at, source=source, meta=meta)
        return True

    @event(ConsentWithdrawn)
    def _consent_withdrawn(
        self, channel: str, at: datetime, source: str, meta: dict[str, str]
    ) -> None:
        self._contact = self._contact.with_consent(Consent(channel, False, at, source))

    def choose_language(self, language: str, meta: dict[str, str]) -> bool:
        """The language messages are written in; False (and no event) when unchanged."""
        if language not in LANGUAGES:
            raise InvalidValueError(f"language must be one of {', '.join(LANGUAGES)}")
        if language == self._contact.language:
            return False
        self._language_chosen(language=language, meta=meta)
        return True

    @event(LanguageChosen)
    def _language_chosen(self, language: str, meta: dict[str, str]) -> None:
        self._contact = self._contact.with_language(language)
        self._chosen.add("language")

    def set_quiet_hours(self, quiet_hours: QuietHours | None, meta: dict[str, str]) -> bool:
        """The hours nothing but safety notices reach the patient (None: no quiet hours);
        False (and no event) when unchanged."""
        if quiet_hours == self._contact.quiet_hours:
            return False
        if quiet_hours is None:
            self._quiet_hours_cleared(meta=meta)
        else:
            self._quiet_hours_set(quiet_hours=str(quiet_hours), meta=meta)
        return True

    @event(QuietHoursSet)
    def _quiet_hours_set(self, quiet_hours: str, meta: dict[str, str]) -> None:
        self._contact = self._contact.with_quiet_hours(QuietHours.parse(quiet_hours))
        self._chosen.add("quiet_hours")

    @event(QuietHoursCleared)
    def _quiet_hours_cleared(self, meta: dict[str, str]) -> None:
        self._contact = self._contact.with_quiet_hours(None)
        self._chosen.add("quiet_hours")

    def choose_timezone(self, zone: str | None, meta: dict[str, str]) -> bool:
        """The IANA zone quiet hours are read in (None: the zone of the exam's location);
        False (and no event) when unchanged."""
        if zone is not None:
            zone_named(zone)
        if zone == self._contact.zone:
            return False
        self._timezone_chosen(zone=zone, meta=meta)
        return True

    @event(TimezoneChosen)
    def _timezone_chosen(self, zone: str | None, meta: dict[str, str]) -> None:
        self._contact = self._contact.with_zone(zone)
        self._chosen.add("zone")

    def add_push_subscription(
        self, *, endpoint: str, p256dh: str, auth: str, at: datetime, meta: dict[str, str]
    ) -> bool:
        """A browser subscribed to push (the same endpoint again replaces its keys); False
        (and no event) when it is already there with these keys. Browsers give https
        endpoints; plain http is taken for a loopback host only (a local push service in
        development and tests: the API and the portal take https alone)."""
        if not push_endpoint_allowed(endpoint) or not p256dh or not auth:
            raise InvalidValueError("a push subscription needs an https endpoint and its keys")
        for known in self._contact.push_subscriptions:
            if (known.endpoint, known.p256dh, known.auth) == (endpoint, p256dh, auth):
                return False
        self._push_subscription_added(endpoint=endpoint, p256dh=p256dh, auth=auth, at=at, meta=meta)
        return True

    @event(PushSubscriptionAdded)
    def _push_subscription_added(
        self, endpoint: str, p256dh: str, auth: str, at: datetime, meta: dict[str, str]
    ) -> None:
        subscription = PushSubscription(endpoint, p256dh, auth, at)
        self._contact = self._contact.with_subscription(subscription)

    def remove_push_subscription(
        self, endpoint: str, *, at: datetime, source: str, meta: dict[str, str]
    ) -> bool:
        """The browser at ``endpoint`` gets no more pushes (the patient removed it, or the
        push service said it is gone); False (and no event) when it was not there."""
        if source not in SOURCES:
            raise InvalidValueError(f"source must be one of {', '.join(SOURCES)}")
        if all(s.endpoint != endpoint for s in self._contact.push_subscriptions):
            return False
        self._push_subscription_removed(endpoint=endpoint, at=at, source=source, meta=meta)
        return True

    @event(PushSubscriptionRemoved)
    def _push_subscription_removed(
        self, endpoint: str, at: datetime, source: str, meta: dict[str, str]
    ) -> None:
        self._contact = self._contact.without_subscription(endpoint)


def _same_address(one: Patient, other: Patient, channel: str) -> bool:
    """Whether ``channel`` reaches both records at one address, as consent to it is given
    for: the same e-mail address, the same number in E.164; never for push (a
    subscription is one browser's)."""
    if channel == EMAIL:
        return bool(one.notice_email) and one.notice_email == other.notice_email
    if channel == SMS:
        number = e164(one.phone or "")
        return number is not None and number == e164(other.phone or "")
    return False


def _check_consent(channel: str, at: datetime, source: str) -> None:
    if channel not in CHANNELS:
        raise InvalidValueError(f"channel must be one of {', '.join(CHANNELS)}")
    if source not in SOURCES:
        raise InvalidValueError(f"source must be one of {', '.join(SOURCES)}")
    if at.tzinfo is None:
        raise InvalidValueError("a consent's time carries its offset")
