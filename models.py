"""Database models: SQLAlchemy 2 typed mappings with no Flask imports.

Times are stored as naive UTC (SQLite keeps no zone); `domain.clock` hands out
aware UTC datetimes and `as_utc` restores the zone when reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware UTC in Python, naive UTC in the database (the same on SQLite and PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use domain.clock for aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


# The largest id an Integer primary key holds (PostgreSQL's integer). A URL's id is
# checked against it before any query (web.converters); SQLite would refuse a larger
# Python int outright, PostgreSQL would look for a row that cannot exist.
MAX_ID = 2**31 - 1


STAFF_ROLES = ("officer", "supervisor", "administrator")


class PersonRules:
    """What the portal asks of a signed-in person, from their columns alone: shared by
    the database object (User) and the light copy each request signs in with
    (SignedInPerson). Flask-Login reads the first four names from whatever object
    stands for the person; plain attributes keep Flask out of this module."""

    id: int
    staff_role: str | None
    disabled_at: datetime | None
    totp_enabled_at: datetime | None

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_staff(self) -> bool:
        return self.staff_role in STAFF_ROLES

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None


@dataclass(frozen=True, slots=True)
class SignedInPerson(PersonRules):
    """The signed-in person as read with their session, without the ORM: a database
    object costs about 70 µs more to load (docs/performance.md), and most requests
    only read who it is. A view that changes the person, or hands them to a domain
    function, loads the User (web.sessions.signed_in_user)."""

    id: int
    email: str
    name: str
    staff_role: str | None
    email_verified_at: datetime | None
    disabled_at: datetime | None
    totp_enabled_at: datetime | None


class User(PersonRules, Base):
    """A person who signs in: a taxpayer, a delegate, a representative or staff."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    staff_role: Mapped[str | None] = mapped_column(String(20))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Second factor: the TOTP secret, when it was turned on, and the last time
    # step accepted so a code cannot be replayed within its window.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    recovery_codes: Mapped[list[RecoveryCode]] = relationship(back_populates="user", cascade="all, delete-orphan")


class RecoveryCode(Base):
    """A one-time code that stands in for the authenticator app; stored hashed."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class AuthSession(Base):
    """A server-side session. The cookie carries only a signed random id; this row
    carries who is signed in and when, so the server can end it at any time."""

    __tablename__ = "auth_sessions"

    # SHA-256 of the random id in the cookie: a leaked table row cannot be replayed.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    authenticated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(30))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    # Non-personal working state (CSRF secret, flashed notices, a form kept
    # across re-confirmation) as JSON text.
    data: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (Index("ix_auth_sessions_ended_last", "ended_at", "last_activity_at"),)


class ThrottleEvent(Base):
    """One failed attempt against a limited action (sign-in, code, reset request).
    Counted in the database so a limit holds across every worker and server."""

    __tablename__ = "throttle_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(30))
    # HMAC of the email or client address: the table holds no personal data.
    key_hash: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_throttle_scope_key_time", "scope", "key_hash", "occurred_at"),)


class UsedToken(Base):
    """A single-use emailed link that has been used; a second use is refused."""

    __tablename__ = "used_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(30))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """Append-only record of security events. The database refuses UPDATE and DELETE
    (triggers created by the migration)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    event: Mapped[str] = mapped_column(String(60), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subject_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    session_ref: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    # The tax account the event concerns, for that account's access history.
    account_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # What the event is about, copied from the detail by domain.audit.record so a
    # work item's page finds its steps by index (migration 0008).
    work_item_id: Mapped[int | None] = mapped_column(Integer, index=True)
    request_reference: Mapped[str | None] = mapped_column(String(20), index=True)
    consent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    thread_id: Mapped[int | None] = mapped_column(Integer, index=True)


class OutboxEmail(Base):
    """An email waiting to be sent. A sender claims a row atomically before sending,
    so each message goes out once however many workers run."""

    __tablename__ = "outbox_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # After a failure, not tried again before this (the back-off grows with each attempt).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The List-Unsubscribe header's link (RFC 2369), for updates to subscribers.
    list_unsubscribe: Mapped[str | None] = mapped_column(String(500))


# --- Tax accounts (issue 3) ---------------------------------------------------

# What a grant can allow, each a separate switch. Roles are presets of these
# (domain.grants.ROLE_PRESETS), never branches in code.
PERMISSIONS = (
    "view_financial",
    "view_returns",
    "file",
    "upload",
    "update_profile",
    "objections_waivers",
    "payment_arrangements",
    "direct_deposit",
    "receive_messages",
    "manage_access",
)

# Self-service functions a program may offer (Program.functions).
FUNCTIONS = ("file", "renewal", "direct_deposit", "payment_arrangement", "objection", "waiver", "upload", "messages")

LEDGER_KINDS = ("assessment", "payment", "penalty", "interest", "refund", "transfer", "adjustment", "reversal")
RETURN_STATUSES = ("received", "in_progress", "processed", "assessed", "reassessed")


class Program(Base):
    """A tax, levy or claim program. Its rules are data: adding a program is a row."""

    __tablename__ = "programs"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # Every account number of the program starts with these two digits.
    number_prefix: Mapped[str] = mapped_column(String(2), unique=True)
    filing_frequency: Mapped[str] = mapped_column(String(10))  # monthly | quarterly | annual
    # When a period's return is due: "M+1:last" = last day of the month after the
    # period ends; "M+1:25" = the 25th of that month; "M+6:last" = six months on.
    due_rule: Mapped[str] = mapped_column(String(20))
    is_claim: Mapped[bool] = mapped_column(Boolean, default=False)
    functions: Mapped[str] = mapped_column(String(200), default="")  # comma-separated FUNCTIONS
    objection_days: Mapped[int] = mapped_column(Integer, default=90)
    description: Mapped[str] = mapped_column(Text, default="")
    # How to pay the program's accounts (the "Make a payment" page and the voucher);
    # empty means "contact us". The account number is always the reference.
    pay_online_payee: Mapped[str] = mapped_column(String(120), default="", server_default="")
    pay_wire: Mapped[str] = mapped_column(Text, default="", server_default="")  # one detail a line
    pay_cheque_payable_to: Mapped[str] = mapped_column(String(200), default="", server_default="")
    pay_cheque_address: Mapped[str] = mapped_column(Text, default="", server_default="")

    def allows(self, function: str) -> bool:
        return function in self.functions.split(",")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Ten digits: the program's two-digit prefix, a serial, and a Luhn check digit.
    number: Mapped[str] = mapped_column(String(10), unique=True)
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"), index=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    operating_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | inactive | closed
    mailing_address: Mapped[str] = mapped_column(Text, default="")
    physical_address: Mapped[str] = mapped_column(Text, default="")
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_phone: Mapped[str | None] = mapped_column(String(30))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    opened_on: Mapped[date] = mapped_column(Date)
    # The last time a manager confirmed who may use the account (a reminder after 12 months).
    access_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    access_reviewed_by_user_id: Mapped[int | None] = mapped_column(Integer)
    # Bumped by every change of the profile: a save based on an older version is
    # refused, so one person never silently overwrites another's change.
    profile_version: Mapped[int] = mapped_column(Integer, default=1)
    # An owner may ask for notices and letters on paper instead of online mail;
    # the choice lapses after two years (the last day it holds).
    paper_mail_until: Mapped[date | None] = mapped_column(Date)
    paper_mail_chosen_by_user_id: Mapped[int | None] = mapped_column(Integer)

    program: Mapped[Program] = relationship(lazy="joined")


class FilingPeriod(Base):
    __tablename__ = "filing_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("account_id", "period_end"),)


class LedgerEntry(Base):
    """One financial transaction. Append-only: the database refuses UPDATE and
    DELETE; a correction is a new entry (a reversal names what it reverses).
    Amounts are integer cents; positive is owed to the agency, negative is a credit."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    period_end: Mapped[date | None] = mapped_column(Date)
    effective_date: Mapped[date] = mapped_column(Date)
    processed_date: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(String(200), default="")
    reverses_id: Mapped[int | None] = mapped_column(BigInteger)
    # The request (SR-…) the entry came from, when it came from one: a link, not
    # the entry's reference, which is its own (domain.ledger.new_reference).
    request_reference: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (
        # The transactions view reads one account in processed order, and by period.
        Index("ix_ledger_account_processed", "account_id", "processed_date", "id"),
        Index("ix_ledger_account_period", "account_id", "period_end"),
        Index("ix_ledger_request_reference", "request_reference"),
    )


class Grant(Base):
    """What one person may do on one account. Removing access sets revoked_at;
    rows are kept as history."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # owner | authorized | delegate | representative
    permissions: Mapped[str] = mapped_column(String(300))  # comma-separated PERMISSIONS
    granted_by_user_id: Mapped[int | None] = mapped_column(Integer)  # None: the agency
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_user_id: Mapped[int | None] = mapped_column(Integer)  # None: the agency
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A representative's grant lasts as its consent says (the grant check reads these).
    consent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)  # the last day it works

    account: Mapped[Account] = relationship(lazy="joined")

    def allows(self, permission: str) -> bool:
        return self.revoked_at is None and permission in self.permissions.split(",")

    def in_force_on(self, day: date) -> bool:
        return (
            self.revoked_at is None
            and (self.valid_from is None or self.valid_from <= day)
            and (self.valid_until is None or day <= self.valid_until)
        )


class InvitationPin(Base):
    """A single-use PIN that links a person to an account with the permissions it carries."""

    __tablename__ = "invitation_pins"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    pin_hash: Mapped[str] = mapped_column(String(255))
    # A keyed HMAC of the account number and PIN (domain.enrolment.lookup_value): the PIN
    # is found by it, so a try verifies one hash however many PINs the account has.
    # None for PINs issued before it existed.
    pin_lookup: Mapped[str | None] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(20))
    permissions: Mapped[str] = mapped_column(String(300))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_by_user_id: Mapped[int | None] = mapped_column(Integer)  # None: the agency
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by_user_id: Mapped[int | None] = mapped_column(Integer)
    # Who a manager meant the PIN for (shown while it is pending); never the agency's letters.
    consent_id: Mapped[int | None] = mapped_column(Integer)  # a representative's PIN: its consent
    invitee_name: Mapped[str | None] = mapped_column(String(200))
    invitee_email: Mapped[str | None] = mapped_column(String(254))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # withdrawn or replaced


CONSENT_STATUSES = ("requested", "submitted", "approved", "rejected", "declined", "revoked")


class Consent(Base):
    """A taxpayer's consent for one named representative (form AT4931, Part 4),
    given online by a manager of the account or asked for by the representative.
    The agency reviews a submitted consent; approval issues the representative a
    PIN by email, and the grant they enrol into lasts from the start date to the
    end date, or until the consent is revoked."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    representative_name: Mapped[str] = mapped_column(String(200))
    representative_email: Mapped[str] = mapped_column(String(254))
    firm_name: Mapped[str | None] = mapped_column(String(200))  # recorded; the consent names a person
    permissions: Mapped[str] = mapped_column(String(300))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), index=True)  # CONSENT_STATUSES
    # Who signed it for the taxpayer (a manager), and when; None while only requested.
    declared_by_user_id: Mapped[int | None] = mapped_column(Integer)
    declared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A representative's own request: who asked, and when.
    requested_by_user_id: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_user_id: Mapped[int | None] = mapped_column(Integer)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_user_id: Mapped[int | None] = mapped_column(Integer)
    # When the account's managers were reminded that the request is about to lapse (migration 0009).
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsentDocument(Base):
    """A signed consent form uploaded as a PDF, kept in the database so every
    server sees it (no shared disk assumed). The name it was uploaded under is
    only shown, never used to store or serve it."""

    __tablename__ = "consent_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("consents.id"), index=True)
    uploaded_name: Mapped[str] = mapped_column(String(200))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_by_user_id: Mapped[int] = mapped_column(Integer)


class TaxReturn(Base):
    """A return or claim as received, and how far its assessment has gone."""

    __tablename__ = "tax_returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    period_end: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(10), default="return")  # return | claim
    amended: Mapped[bool] = mapped_column(Boolean, default=False)
    received_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # RETURN_STATUSES
    processed_on: Mapped[date | None] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(40))
    # The latest notice: "assessment" or "reassessment", dated; its figures come
    # from the ledger entries of the period up to that date.
    notice_kind: Mapped[str | None] = mapped_column(String(20))
    notice_date: Mapped[date | None] = mapped_column(Date)
    # Filed online (issue 5): the figures as filed, the amount the server computed,
    # who filed it, the request it came with, and the return it amends.
    figures: Mapped[str | None] = mapped_column(Text)  # JSON
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    filed_by_user_id: Mapped[int | None] = mapped_column(Integer)
    service_request_id: Mapped[int | None] = mapped_column(Integer)
    amends_return_id: Mapped[int | None] = mapped_column(Integer)


# --- Filing and requests (issue 5) ---------------------------------------------------

# What a person can ask of the agency through self-service. Each submission is a
# ServiceRequest: its reference is on the confirmation page, it is listed in the
# account's request history, and it is the entry the agency's staff act on.
REQUEST_KINDS = (
    "return",
    "claim",
    "amended_return",
    "amended_claim",
    "objection",
    "waiver",
    "arrangement",
    "direct_deposit",
    "renewal",
    "profile",
    "documents",
)
REQUEST_STATUSES = ("received", "in_review", "approved", "declined", "completed", "withdrawn")


class ProgramRate(Base):
    """One rate of a program (a levy percentage, a tax per litre), in force from a
    date. The rate for a period is the one with the latest `effective_from` on or
    before the period's first day, so a change applies to the periods after it.
    Values are decimal text (exact; never float)."""

    __tablename__ = "program_rates"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"), index=True)
    rate_key: Mapped[str] = mapped_column(String(40))
    effective_from: Mapped[date] = mapped_column(Date)
    value: Mapped[str] = mapped_column(String(24))
    unit: Mapped[str] = mapped_column(String(40))  # percent | per_litre | per_unit | per_gram | ...
    label: Mapped[str] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("program_code", "rate_key", "effective_from"),)


class ProgramSetting(Base):
    """A program's self-service rule as data (payment arrangement limits and the
    like): key and value text, read through domain.programs.setting()."""

    __tablename__ = "program_settings"

    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(100))


class Draft(Base):
    """A form in progress, saved as the person goes (every step and, with
    JavaScript, every pause in typing), so a time-out or a dropped link loses
    nothing. `token` is the submission's idempotency key: every tab and every
    retry of this draft submits the same token, and the agency receives one
    request."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # REQUEST_KINDS
    subject: Mapped[str] = mapped_column(String(40), default="")  # what it is about: a period end, a return id
    data: Mapped[str] = mapped_column(Text, default="{}")  # the answers so far, as JSON
    token: Mapped[str] = mapped_column(String(43), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_request_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_drafts_owner_kind", "account_id", "user_id", "kind", "subject"),)


class ServiceRequest(Base):
    """Something submitted through self-service: a return, an objection, a waiver
    request, a payment arrangement, new banking details, a renewal, a change of
    address. The agency acts on it (status, decision)."""

    __tablename__ = "service_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # REQUEST_KINDS
    status: Mapped[str] = mapped_column(String(20), default="received", index=True)  # REQUEST_STATUSES
    summary: Mapped[str] = mapped_column(String(300))
    data: Mapped[str] = mapped_column(Text, default="{}")  # the answers as submitted, JSON
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_by_user_id: Mapped[int] = mapped_column(Integer)
    # The same key twice (a double click, a retry, a second tab) is the same request.
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    tax_return_id: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_user_id: Mapped[int | None] = mapped_column(Integer)
    decision_reason: Mapped[str | None] = mapped_column(Text)


class Document(Base):
    """A supporting document uploaded to an account, optionally tied to a request
    (or, while its form is in progress, to a draft). The file is stored under a
    generated name by domain.documents (in the database, or on a local disk for a
    single server); the uploaded name is only shown."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    service_request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    draft_id: Mapped[int | None] = mapped_column(Integer, index=True)
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    uploaded_name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage: Mapped[str] = mapped_column(String(12))  # database | filesystem
    description: Mapped[str] = mapped_column(String(200), default="")
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_by_user_id: Mapped[int] = mapped_column(Integer)
    # An attachment to a secure message (issue 6).
    message_post_id: Mapped[int | None] = mapped_column(Integer, index=True)


class DocumentContent(Base):
    """A document's bytes when the store is the database (several servers, no shared disk)."""

    __tablename__ = "document_contents"

    stored_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class PaymentArrangement(Base):
    """A schedule of instalments the person proposed for a balance owing; the
    agency approves or declines it."""

    __tablename__ = "payment_arrangements"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    service_request_id: Mapped[int] = mapped_column(Integer, index=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger)  # the balance it covers, when proposed
    instalment_cents: Mapped[int] = mapped_column(BigInteger)
    frequency: Mapped[str] = mapped_column(String(10))  # weekly | biweekly | monthly
    first_due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="proposed")  # proposed | approved | declined | withdrawn
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Instalment(Base):
    __tablename__ = "instalments"

    id: Mapped[int] = mapped_column(primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(ForeignKey("payment_arrangements.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)


class DirectDeposit(Base):
    """Banking details for refunds. A change ends the current row and adds a new
    one, so the history is kept."""

    __tablename__ = "direct_deposits"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    institution: Mapped[str] = mapped_column(String(3))
    transit: Mapped[str] = mapped_column(String(5))
    bank_account: Mapped[str] = mapped_column(String(12))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by_user_id: Mapped[int] = mapped_column(Integer)
    service_request_id: Mapped[int | None] = mapped_column(Integer)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Licence(Base):
    """A licence or registration a program requires (a fuel or tobacco licence)."""

    __tablename__ = "licences"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    licence_number: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(100))
    issued_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)


class Message(Base):
    """A message to one person in the portal, read under Messages (notices and letters are Mail: MailItem)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The conversation it belongs to and the post it delivers (issue 6).
    thread_id: Mapped[int | None] = mapped_column(Integer, index=True)
    post_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_messages_user_unread", "user_id", "read_at"),)


# --- The agency's side (issue 6) ----------------------------------------------------

# Every kind of submission reaches one queue; each item is worked the same way
# (received, then in progress with an assignee, then decided with a reason the
# taxpayer sees). domain.work holds the rules.
WORK_QUEUES = (
    "consents",
    "returns",
    "objections",
    "waivers",
    "arrangements",
    "direct_deposit",
    "renewals",
    "documents",
    "messages",
    "enrolments",
)
WORK_STATUSES = ("received", "in_progress", "decided")


class WorkItem(Base):
    """One thing the agency has to act on: a service request, a consent to
    review, or a taxpayer's reply to a secure message."""

    __tablename__ = "work_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(20), index=True)  # WORK_QUEUES
    status: Mapped[str] = mapped_column(String(12), default="received", index=True)  # WORK_STATUSES
    account_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # What it is about: exactly one of these.
    service_request_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    consent_id: Mapped[int | None] = mapped_column(Integer, index=True)
    thread_id: Mapped[int | None] = mapped_column(Integer, index=True)
    enrolment_request_id: Mapped[int | None] = mapped_column(Integer, index=True)
    summary: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    assignee_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_user_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(20))  # approved | declined | assessed | answered | ...
    decision_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_work_items_queue_status_received", "queue", "status", "received_at"),)


class MessageThread(Base):
    """A secure conversation between the agency and the people of an account (or
    one person). Each agency post is delivered as a Message to each recipient,
    which carries that person's read state."""

    __tablename__ = "message_threads"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subject: Mapped[str] = mapped_column(String(200))
    # One person; None: everyone on the account allowed to receive messages.
    to_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    started_by_user_id: Mapped[int | None] = mapped_column(Integer)  # None: sent automatically
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_post_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # What a thread the taxpayer started is about (domain.messages.TOPICS); None: the agency started it.
    topic: Mapped[str | None] = mapped_column(String(20))


class MessagePost(Base):
    """One message in a thread: from the agency, or a reply from the account's side."""

    __tablename__ = "message_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("message_threads.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(Integer)  # None: sent automatically
    from_agency: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The one-time key of the form that sent it: the same form sent twice (a double
    # click, a retry) is this post, not a second one.
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)


MAIL_KINDS = ("notice_of_assessment", "notice_of_reassessment", "decision_letter", "letter", "invitation_letter")


class MailItem(Base):
    """A notice or letter posted to an account (under its Mail), or printed for the
    post when the owner asked for paper. The posting date is the date of receipt:
    deadlines such as the 90 days for an objection start from it. The PDF is kept
    as posted, so what the taxpayer received never changes."""

    __tablename__ = "mail_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # MAIL_KINDS
    title: Mapped[str] = mapped_column(String(200))
    posted_on: Mapped[date] = mapped_column(Date)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    posted_by_user_id: Mapped[int | None] = mapped_column(Integer)  # None: sent automatically
    delivery: Mapped[str] = mapped_column(String(8))  # online | paper
    # An invitation letter carries a PIN and goes only by post, never online.
    shown_online: Mapped[bool] = mapped_column(Boolean, default=True)
    tax_return_id: Mapped[int | None] = mapped_column(Integer)
    service_request_id: Mapped[int | None] = mapped_column(Integer)
    pin_id: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)  # the PDF
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # paper: printed and posted
    first_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_mail_items_account_posted", "account_id", "posted_on"),)


# --- Asking for a letter, and updates by email (issue 20) -----------------------------------

ENROLMENT_ROLES = ("owner", "director", "employee", "bookkeeper", "representative", "other")


class EnrolmentRequest(Base):
    """Someone without an invitation letter asks for one (TRACS's enrolment
    request). It names an account by its number or by the business's details;
    an officer finds the account and posts the letter to the address on file,
    never to one given here. The requester's contact details are kept only to
    work the request: they are never logged."""

    __tablename__ = "enrolment_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    account_number: Mapped[str | None] = mapped_column(String(10))
    legal_name: Mapped[str | None] = mapped_column(String(200))
    business_number: Mapped[str | None] = mapped_column(String(40))
    business_address: Mapped[str | None] = mapped_column(Text)
    requester_name: Mapped[str] = mapped_column(String(200))
    requester_email: Mapped[str] = mapped_column(String(254))
    requester_phone: Mapped[str] = mapped_column(String(40))
    requester_role: Mapped[str] = mapped_column(String(20))  # ENROLMENT_ROLES


class Subscription(Base):
    """An email address that wants a program's news. Confirmed by a link sent to
    it (double opt-in) before anything else is sent; ended by the link in every
    update, which names this row only."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"))
    user_id: Mapped[int | None] = mapped_column(Integer)  # who asked, when signed in
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("email", "program_code", name="uq_subscriptions_email_program"),)


class ProgramUpdate(Base):
    """News about a program that staff published to its subscribers."""

    __tablename__ = "program_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    program_code: Mapped[str] = mapped_column(ForeignKey("programs.code"), index=True)
    title: Mapped[str] = mapped_column(String(150))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_by_user_id: Mapped[int] = mapped_column(Integer)
    recipients: Mapped[int] = mapped_column(Integer)
