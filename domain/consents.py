"""Representatives by consent (seed: form AT4931, Part 4).

A manager of the account signs a consent online for one named individual (a
firm may be recorded, but the consent names a person, and each person needs
their own), with the permissions, a start date and an optional end date. Or the
representative asks from their side, by account number and the account's legal
name; a manager then accepts the request (choosing the permissions: that is the
signature) or declines it, and an unanswered request lapses after 10 working
days. The agency reviews every signed consent: approval issues the
representative a PIN, emailed to them; rejection records a reason the managers
see. The grant the representative enrols into lasts from the start date to the
end date, and a manager can revoke the consent at any time, which ends the grant
and any PIN not yet used.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from domain import audit, enrolment, grants, messages, outbox, work
from domain.access import AccessRefused, Caps, clean_permissions, within_own
from domain.accounts import normalise_number
from domain.db import rows_changed
from domain.service_hours import is_working_day
from models import MAX_ID, Account, Consent, ConsentDocument, Grant, InvitationPin, User

REQUEST_LAPSE_WORKING_DAYS = 10
# The account's managers are reminded of a request still unanswered this many working days before it lapses.
REMIND_WORKING_DAYS_BEFORE = 3
# What a representative can never be given: the taxpayer's managers control access.
NOT_FOR_REPRESENTATIVES = ("manage_access",)
PIN_VALID_DAYS = 30


def working_days_between(start: date, end: date) -> int:
    """Working days (Alberta) after `start` up to and including `end`."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += is_working_day(day)
    return count


def lapsed(consent: Consent, today: date) -> bool:
    return (
        consent.status == "requested"
        and consent.requested_at is not None
        and working_days_between(consent.requested_at.date(), today) >= REQUEST_LAPSE_WORKING_DAYS
    )


def lapses_on(consent: Consent) -> date:
    """The first day a request counts as lapsed (see `lapsed`)."""
    start = consent.requested_at.date() if consent.requested_at is not None else consent.starts_on
    day = start
    while working_days_between(start, day) < REQUEST_LAPSE_WORKING_DAYS:
        day += timedelta(days=1)
    return day


def shown_status(consent: Consent, today: date) -> str:
    """The status as people see it: a request nobody answered has lapsed, and an
    approved consent past its end date has ended."""
    if lapsed(consent, today):
        return "lapsed"
    if consent.status == "approved" and consent.ends_on is not None and consent.ends_on < today:
        return "ended"
    return consent.status


def _rep_permissions(permissions) -> list[str]:
    chosen = clean_permissions(permissions)
    if set(chosen) & set(NOT_FOR_REPRESENTATIVES):
        raise AccessRefused("A representative cannot manage who else uses the account", "permissions")
    return chosen


def _check_dates(today: date, starts_on: date | None, ends_on: date | None) -> date:
    """The start date, once the dates are found sound."""
    if starts_on is None:
        raise AccessRefused("Enter the date the consent starts", "starts_on")
    if starts_on < today:
        raise AccessRefused("The start date must be today or in the future", "starts_on")
    if ends_on is not None and ends_on < starts_on:
        raise AccessRefused("The end date must be on or after the start date", "ends_on")
    return starts_on


def _open_for(db: Session, account_id: int, email: str, today: date, excluding: int | None = None) -> bool:
    """Whether this person already has a consent waiting or in force on the account."""
    for consent in db.scalars(
        select(Consent).where(
            Consent.account_id == account_id,
            func.lower(Consent.representative_email) == email.lower(),
            Consent.status.in_(("submitted", "approved")),
        )
    ):
        if consent.id != excluding and shown_status(consent, today) in ("submitted", "approved"):
            return True
    return False


def _check_cap(db: Session, now: datetime, account_id: int, caps: Caps, today: date) -> None:
    held = (
        db.scalar(
            select(func.count(Grant.id)).where(
                Grant.account_id == account_id, Grant.role == "representative", grants.in_force(today)
            )
        )
        or 0
    )
    waiting = (
        db.scalar(select(func.count(Consent.id)).where(Consent.account_id == account_id, Consent.status == "submitted"))
        or 0
    )
    unused = (
        db.scalar(
            select(func.count(InvitationPin.id)).where(
                InvitationPin.account_id == account_id,
                InvitationPin.role == "representative",
                InvitationPin.used_at.is_(None),
                InvitationPin.cancelled_at.is_(None),
                InvitationPin.expires_at > now,
            )
        )
        or 0
    )
    if held + waiting + unused >= caps.representatives:
        raise AccessRefused(
            f"This account already has {caps.representatives} representatives, the most it can "
            "have (consents waiting for review count too)"
        )


def sign(
    db: Session,
    now: datetime,
    today: date,
    *,
    account: Account,
    actor: Grant,
    name: str,
    email: str,
    firm_name: str | None,
    permissions,
    starts_on: date | None,
    ends_on: date | None,
    caps: Caps,
) -> Consent:
    """A manager's consent for one representative, sent to the agency for review."""
    chosen = _rep_permissions(permissions)
    within_own(actor, chosen)
    starts = _check_dates(today, starts_on, ends_on)
    if _open_for(db, account.id, email, today):
        raise AccessRefused(
            "This person already has a consent on this account, waiting for review or in force", "representative_email"
        )
    _check_cap(db, now, account.id, caps, today)
    consent = Consent(
        account_id=account.id,
        representative_name=name,
        representative_email=email,
        firm_name=firm_name or None,
        permissions=grants.permissions_text(chosen),
        starts_on=starts,
        ends_on=ends_on,
        status="submitted",
        declared_by_user_id=actor.user_id,
        declared_at=now,
    )
    db.add(consent)
    db.flush()
    audit.record(db, now, "consent.submitted", actor_user_id=actor.user_id, account_id=account.id, consent=consent.id)
    work.open_for_consent(db, now, consent)
    return consent


def pdf_problem(content: bytes, max_bytes: int) -> str | None:
    """What is wrong with an uploaded signed form, judged from its bytes (never its name)."""
    if not content:
        return "The selected file is empty"
    if len(content) > max_bytes:
        size = f"{max_bytes // (1024 * 1024)} MB" if max_bytes >= 1024 * 1024 else f"{max(max_bytes // 1024, 1)} KB"
        return f"The selected file must be smaller than {size}"
    if not content.startswith(b"%PDF-"):
        return "The selected file must be a PDF"
    if b"%%EOF" not in content[-2048:]:
        return "The PDF looks incomplete. Save it again and upload it"
    return None


def attach_signed_form(
    db: Session, now: datetime, *, consent: Consent, uploaded_name: str, content: bytes, user_id: int
) -> ConsentDocument:
    """Keep the signed form with its consent (checked first with `pdf_problem`)."""
    name = "".join(ch for ch in (uploaded_name or "") if ch.isprintable() and ch not in "/\\")[-200:] or "form.pdf"
    document = ConsentDocument(
        consent_id=consent.id,
        uploaded_name=name,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        uploaded_at=now,
        uploaded_by_user_id=user_id,
    )
    db.add(document)
    audit.record(
        db,
        now,
        "consent.form_uploaded",
        actor_user_id=user_id,
        account_id=consent.account_id,
        consent=consent.id,
        sha256=document.sha256,
        size=document.size_bytes,
    )
    return document


def signed_forms(db: Session, consent_ids: list[int]) -> dict[int, ConsentDocument]:
    """The signed form of each consent that has one (without loading the bytes twice)."""
    if not consent_ids:
        return {}
    return {
        d.consent_id: d for d in db.scalars(select(ConsentDocument).where(ConsentDocument.consent_id.in_(consent_ids)))
    }


def ask(db: Session, now: datetime, *, user: User, number: str, legal_name: str) -> Consent | None:
    """A representative asks for access. The same answer whether or not the number
    and legal name match an account (None then): nothing is given away."""
    account = db.scalar(select(Account).where(Account.number == normalise_number(number)))
    if account is None or " ".join(account.legal_name.lower().split()) != " ".join(legal_name.lower().split()):
        audit.record(db, now, "consent.requested", "no-match", actor_user_id=user.id)
        return None
    already = db.scalar(
        select(Consent.id).where(
            Consent.account_id == account.id, Consent.requested_by_user_id == user.id, Consent.status == "requested"
        )
    )
    if already is not None:
        return db.get(Consent, already)
    consent = Consent(
        account_id=account.id,
        representative_name=user.name,
        representative_email=user.email,
        permissions="",
        starts_on=now.date(),
        status="requested",
        requested_by_user_id=user.id,
        requested_at=now,
    )
    db.add(consent)
    db.flush()
    audit.record(db, now, "consent.requested", actor_user_id=user.id, account_id=account.id, consent=consent.id)
    messages.representative_asked(db, now, account=account, representative_name=user.name, lapses_on=lapses_on(consent))
    return consent


def requests_to_answer(db: Session, user_id: int, today: date) -> list[tuple[Consent, Account]]:
    """Representatives' requests, not yet lapsed, on the accounts this person
    manages (a live grant with "manage_access"), oldest first: their dashboard's list."""
    rows = db.execute(
        select(Consent, Account)
        .join(Account, Account.id == Consent.account_id)
        .join(Grant, Grant.account_id == Account.id)
        .where(
            Consent.status == "requested",
            Grant.user_id == user_id,
            Grant.revoked_at.is_(None),
            Grant.permissions.contains(messages.MANAGE, autoescape=True),
        )
        .order_by(Consent.requested_at, Consent.id)
        .distinct()
    ).all()
    return [(consent, account) for consent, account in rows if not lapsed(consent, today)]


def remind_before_lapse(db: Session, now: datetime, today: date) -> int:
    """The nightly reminder: each request unanswered with REMIND_WORKING_DAYS_BEFORE
    working days or fewer to go is brought to its managers once (a message and
    the email saying one is waiting). Each is claimed by a conditional UPDATE, so
    two runs at once remind once. How many were reminded; the caller commits."""
    reminded = 0
    waiting = db.scalars(
        select(Consent).where(Consent.status == "requested", Consent.reminded_at.is_(None)).order_by(Consent.id)
    ).all()
    for consent in waiting:
        due = (
            consent.requested_at is not None
            and working_days_between(consent.requested_at.date(), today)
            >= REQUEST_LAPSE_WORKING_DAYS - REMIND_WORKING_DAYS_BEFORE
        )
        if not due or lapsed(consent, today):
            continue
        claim = (
            update(Consent)
            .where(Consent.id == consent.id, Consent.reminded_at.is_(None))
            .values(reminded_at=now)
            .execution_options(synchronize_session=False)
        )
        if rows_changed(db, claim) != 1:
            continue
        account = db.get_one(Account, consent.account_id)
        messages.representative_request_lapsing(
            db, now, account=account, representative_name=consent.representative_name, lapses_on=lapses_on(consent)
        )
        audit.record(db, now, "consent.reminded", account_id=account.id, consent=consent.id)
        reminded += 1
    return reminded


def accept(
    db: Session,
    now: datetime,
    today: date,
    *,
    account: Account,
    actor: Grant,
    consent: Consent,
    permissions,
    starts_on: date | None,
    ends_on: date | None,
    caps: Caps,
) -> None:
    """A manager signs the consent a representative asked for; it goes to the agency."""
    if consent.account_id != account.id or shown_status(consent, today) != "requested":
        raise AccessRefused("This request can no longer be answered (it was answered, or it lapsed)")
    chosen = _rep_permissions(permissions)
    within_own(actor, chosen)
    starts = _check_dates(today, starts_on, ends_on)
    if _open_for(db, account.id, consent.representative_email, today, excluding=consent.id):
        raise AccessRefused("This person already has a consent on this account, waiting for review or in force")
    _check_cap(db, now, account.id, caps, today)
    consent.permissions, consent.starts_on, consent.ends_on = grants.permissions_text(chosen), starts, ends_on
    consent.status, consent.declared_by_user_id, consent.declared_at = "submitted", actor.user_id, now
    audit.record(
        db,
        now,
        "consent.submitted",
        actor_user_id=actor.user_id,
        account_id=account.id,
        consent=consent.id,
        from_request=True,
    )
    work.open_for_consent(db, now, consent)


def decline(db: Session, now: datetime, today: date, *, account: Account, actor: Grant, consent: Consent) -> None:
    if consent.account_id != account.id or shown_status(consent, today) != "requested":
        raise AccessRefused("This request can no longer be answered (it was answered, or it lapsed)")
    consent.status, consent.decided_at, consent.decided_by_user_id = "declined", now, actor.user_id
    audit.record(db, now, "consent.declined", actor_user_id=actor.user_id, account_id=account.id, consent=consent.id)


def approve(db: Session, now: datetime, *, consent: Consent, staff_user_id: int | None) -> tuple[InvitationPin, str]:
    """The agency approves a signed consent: a PIN for the representative, to email."""
    if consent.status != "submitted":
        raise AccessRefused(f"Only a consent waiting for review can be approved (this one is {consent.status})")
    account = db.get_one(Account, consent.account_id)
    consent.status, consent.decided_at, consent.decided_by_user_id = "approved", now, staff_user_id
    row, pin = enrolment.issue(
        db,
        now,
        account,
        role="representative",
        permissions=consent.permissions.split(","),
        valid_days=PIN_VALID_DAYS,
        issued_by_user_id=None,
        invitee_name=consent.representative_name,
        invitee_email=consent.representative_email,
        consent_id=consent.id,
    )
    audit.record(db, now, "consent.approved", actor_user_id=staff_user_id, account_id=account.id, consent=consent.id)
    messages.consent_approved(
        db,
        now,
        account=account,
        representative_name=consent.representative_name,
        starts_on=consent.starts_on,
        ends_on=consent.ends_on,
    )
    return row, pin


def approve_and_send_pin(db: Session, now: datetime, *, consent: Consent, staff_user_id: int | None) -> InvitationPin:
    """Approve the consent and put the representative's PIN email (`pin_email`) in
    the outbox, in the same transaction. The caller commits, then wakes the outbox."""
    row, pin = approve(db, now, consent=consent, staff_user_id=staff_user_id)
    subject, body = pin_email(consent, db.get_one(Account, consent.account_id), pin)
    outbox.enqueue(db, now, consent.representative_email, subject, body)
    return row


def reject(db: Session, now: datetime, *, consent: Consent, staff_user_id: int | None, reason: str) -> None:
    if consent.status != "submitted":
        raise AccessRefused(f"Only a consent waiting for review can be rejected (this one is {consent.status})")
    if not reason.strip():
        raise AccessRefused("Give the reason, which the account's managers will see", "reason")
    consent.status, consent.decided_at, consent.decided_by_user_id = "rejected", now, staff_user_id
    consent.decision_reason = reason.strip()
    audit.record(
        db, now, "consent.rejected", actor_user_id=staff_user_id, account_id=consent.account_id, consent=consent.id
    )


def revoke(db: Session, now: datetime, *, account: Account, actor: Grant | None, consent: Consent) -> None:
    """End a consent at once: the representative's grant and any unused PIN stop working."""
    if consent.account_id != account.id or consent.status not in ("submitted", "approved"):
        raise AccessRefused("This consent is not in force")
    actor_id = actor.user_id if actor else None
    consent.status, consent.revoked_at, consent.revoked_by_user_id = "revoked", now, actor_id
    ended = []
    for grant in db.scalars(select(Grant).where(Grant.consent_id == consent.id, Grant.revoked_at.is_(None))):
        grant.revoked_at, grant.revoked_by_user_id = now, actor_id
        ended.append(grant.user_id)
    for pin in db.scalars(
        select(InvitationPin).where(
            InvitationPin.consent_id == consent.id,
            InvitationPin.used_at.is_(None),
            InvitationPin.cancelled_at.is_(None),
        )
    ):
        pin.cancelled_at = now
    audit.record(db, now, "consent.revoked", actor_user_id=actor_id, account_id=account.id, consent=consent.id)
    # Revoked while it waited for review: nothing is left for the agency to decide.
    work.close_open(
        db,
        now,
        outcome="withdrawn",
        reason="Revoked by the account before the review",
        by_user_id=None,
        consent_id=consent.id,
    )
    for user_id in dict.fromkeys(ended):
        messages.access_removed(db, now, account=account, user_id=user_id)


def find(db: Session, consent_id: int) -> Consent | None:
    """The consent with this id, or None (the command line takes any integer)."""
    return db.get(Consent, consent_id) if 0 < consent_id <= MAX_ID else None


def for_account(db: Session, account_id: int) -> list[Consent]:
    return list(db.scalars(select(Consent).where(Consent.account_id == account_id).order_by(Consent.id.desc())))


def waiting_for_review(db: Session) -> list[tuple[Consent, Account]]:
    return list(
        db.execute(
            select(Consent, Account)
            .join(Account, Account.id == Consent.account_id)
            .where(Consent.status == "submitted")
            .order_by(Consent.declared_at, Consent.id)
        )
    )


def clients(db: Session, user_id: int, today: date) -> list[tuple[Grant, Account, Consent | None]]:
    """Every account this person acts on as a representative, with its consent."""
    return list(
        db.execute(
            select(Grant, Account, Consent)
            .join(Account, Account.id == Grant.account_id)
            .outerjoin(Consent, Consent.id == Grant.consent_id)
            .where(Grant.user_id == user_id, Grant.role == "representative", grants.in_force(today))
            .order_by(Account.legal_name, Account.number)
        )
    )


def pin_email(consent: Consent, account: Account, pin: str) -> tuple[str, str]:
    """(subject, body) of the email that sends an approved representative their PIN.
    It names the client so they know which one, but not the whole account number,
    and has no link (the agency never sends a link that signs in)."""
    ends = f" until {consent.ends_on:%-d %B %Y}" if consent.ends_on else ""
    return (
        "Your representative PIN from Tax and Revenue Administration",
        f"Hello {consent.representative_name},\n\n"
        f"{account.legal_name} has consented to you acting as their representative on their "
        f"{account.program.name} account ending {account.number[-3:]}, from "
        f"{consent.starts_on:%-d %B %Y}{ends}. We have reviewed the consent.\n\n"
        f"Your PIN is:\n\n    {pin}\n\n"
        f"It works once, for you alone, and expires in {PIN_VALID_DAYS} days. Sign in to TRA Client "
        'Self-Service (or register with this email address), choose "Link a tax account" and enter your '
        "client's account number and this PIN.\n\n"
        "We never ask for your password or PIN by email or phone.\n",
    )
