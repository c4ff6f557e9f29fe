"""Managing who may use an account: the rules, as plain functions the views call.

A manager is anyone whose live grant carries "manage_access". The rules:
- every account keeps at least one owner and at least one manager;
- only an owner, or the agency, may add, change or remove an owner;
- nobody changes their own access (another manager, or the agency, does);
- representatives come only by the owner's consent, which the agency reviews,
  never by a manager's PIN;
- settings cap the owners and the representatives of an account; pending PINs
  count against the caps, so a cap cannot be overrun by inviting first.
Every change is in the audit log with the account's id, which the account's
access history reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from domain import audit, enrolment, grants, messages
from domain.accounts import add_months
from models import PERMISSIONS, Account, AuditEvent, Grant, InvitationPin, User

ROLE_LABELS = {
    "owner": "Owner",
    "authorized": "Authorized individual",
    "delegate": "Delegate",
    "representative": "Representative",
    "viewer": "View only",
}
PERMISSION_LABELS = {
    "view_financial": "View balances and financial transactions",
    "view_returns": "View returns, their assessment status and notices",
    "file": "File returns and claims",
    "upload": "Upload documents",
    "update_profile": "Update the account's profile",
    "objections_waivers": "File objections and ask for waivers",
    "payment_arrangements": "Set up payment arrangements",
    "direct_deposit": "Set up direct deposit",
    "receive_messages": "Receive messages from the agency",
    "manage_access": "Manage who can use this account",
}
# The roles a manager may give with a PIN, in the order the form offers them.
INVITABLE_ROLES = ("viewer", "delegate", "authorized", "owner")
MANAGE = "manage_access"
# Events that make up an account's access history (in words: domain.words.EVENT_WORDS).
ACCESS_EVENTS = (
    "pin.issued",
    "enrolment",
    "access.changed",
    "access.removed",
    "access.pin_cancelled",
    "access.pin_reissued",
    "access.reviewed",
    "access.refused",
    "consent.submitted",
    "consent.requested",
    "consent.reminded",
    "consent.declined",
    "consent.approved",
    "consent.rejected",
    "consent.revoked",
)


class AccessRefused(Exception):
    """A change the rules do not allow, with the words to show (beside `field` when given)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class Caps:
    owners: int
    representatives: int


@dataclass(frozen=True)
class PersonWithAccess:
    grant: Grant
    name: str
    email: str
    granted_by: str  # a name, or "Tax and Revenue Administration"

    @property
    def permissions(self) -> list[str]:
        return [p for p in self.grant.permissions.split(",") if p]


AGENCY = "Tax and Revenue Administration"


def people_with_access(db: Session, account_id: int, *, live: bool = True) -> list[PersonWithAccess]:
    """Everyone whose grant is live (or, with live=False, was removed), owners first."""
    granter = aliased(User)
    statement = (
        select(Grant, User.name, User.email, granter.name)
        .join(User, User.id == Grant.user_id)
        .outerjoin(granter, granter.id == Grant.granted_by_user_id)
        .where(Grant.account_id == account_id, Grant.revoked_at.is_(None) if live else Grant.revoked_at.is_not(None))
        .order_by(Grant.role != "owner", User.name, Grant.id)
    )
    return [
        PersonWithAccess(grant, name, email, granted_by or AGENCY)
        for grant, name, email, granted_by in db.execute(statement)
    ]


def outstanding_pins(db: Session, account_id: int) -> list[InvitationPin]:
    """PINs not used and not withdrawn, newest first: pending, expired or locked."""
    return list(
        db.scalars(
            select(InvitationPin)
            .where(
                InvitationPin.account_id == account_id,
                InvitationPin.used_at.is_(None),
                InvitationPin.cancelled_at.is_(None),
            )
            .order_by(InvitationPin.issued_at.desc(), InvitationPin.id.desc())
        )
    )


def pin_status(pin: InvitationPin, now: datetime) -> str:
    if pin.used_at is not None:
        return "used"
    if pin.cancelled_at is not None:
        return "withdrawn"
    if pin.locked_at is not None:
        return "locked"
    if pin.expires_at <= now:
        return "expired"
    return "pending"


def _live(db: Session, account_id: int):
    return select(Grant).where(Grant.account_id == account_id, Grant.revoked_at.is_(None))


def _count_with_role(db: Session, now: datetime, account_id: int, role: str) -> int:
    """Live grants with this role, and PINs for it still waiting to be used."""
    held = (
        db.scalar(
            select(func.count(Grant.id)).where(
                Grant.account_id == account_id, Grant.revoked_at.is_(None), Grant.role == role
            )
        )
        or 0
    )
    waiting = (
        db.scalar(
            select(func.count(InvitationPin.id)).where(
                InvitationPin.account_id == account_id,
                InvitationPin.role == role,
                InvitationPin.used_at.is_(None),
                InvitationPin.cancelled_at.is_(None),
                InvitationPin.locked_at.is_(None),
                InvitationPin.expires_at > now,
            )
        )
        or 0
    )
    return held + waiting


def _check_cap(db: Session, now: datetime, account_id: int, role: str, caps: Caps) -> None:
    limit = {"owner": caps.owners, "representative": caps.representatives}.get(role)
    if limit is not None and _count_with_role(db, now, account_id, role) >= limit:
        noun = "owners" if role == "owner" else "representatives"
        raise AccessRefused(
            f"This account already has {limit} {noun}, the most it can have (people waiting "
            "to enrol with a PIN count too)",
            "role",
        )


def _check_role(actor: Grant | None, role: str, *, changing_owner: bool = False) -> None:
    if role == "representative":
        raise AccessRefused(
            "Representatives get access through a consent the agency reviews, not with a PIN from a manager", "role"
        )
    if role not in ROLE_LABELS:
        raise AccessRefused("Choose a role from the list", "role")
    if (role == "owner" or changing_owner) and actor is not None and actor.role != "owner":
        raise AccessRefused("Only an owner of the account, or the agency, can add, change or remove an owner", "role")


def clean_permissions(permissions) -> list[str]:
    chosen = [p for p in PERMISSIONS if p in set(permissions)]
    if set(permissions) - set(PERMISSIONS):
        raise AccessRefused("Choose permissions from the list", "permissions")
    if not chosen:
        raise AccessRefused("Choose at least one thing this person can do", "permissions")
    return chosen


def within_own(actor: Grant | None, permissions, *, already=()) -> None:
    """Nobody hands out more than they hold: what a manager gives (beyond what the person
    has already) must be among the manager's own permissions. An owner holds them all;
    the agency (no actor) is not limited."""
    if actor is None or actor.role == "owner":
        return
    beyond = [p for p in PERMISSIONS if p in set(permissions) and p not in set(already) and not actor.allows(p)]
    if beyond:
        names = "; ".join(PERMISSION_LABELS[p] for p in beyond)
        raise AccessRefused(f"You can only give what you can do yourself. You cannot give: {names}", "permissions")


def _others(db: Session, target: Grant):
    return [g for g in db.scalars(_live(db, target.account_id)) if g.id != target.id]


def _keeps_owner_and_manager(
    db: Session, target: Grant, *, role_after: str | None, permissions_after: list[str] | None
) -> None:
    """Refuse a change that would leave the account with no owner or no manager."""
    others = _others(db, target)
    if target.role == "owner" and role_after != "owner" and not any(g.role == "owner" for g in others):
        raise AccessRefused("Every account keeps at least one owner. Add another owner first", "role")
    loses_manage = target.allows(MANAGE) and (permissions_after is None or MANAGE not in permissions_after)
    if loses_manage and not any(g.allows(MANAGE) for g in others):
        raise AccessRefused(
            'This is the account\'s last manager. Give someone else "Manage who can use this account" first',
            "permissions",
        )


def _not_self(actor: Grant | None, target_user_id: int | None) -> None:
    if actor is not None and actor.user_id == target_user_id:
        raise AccessRefused("You cannot change your own access. Ask another manager of the account, or the agency")


def invite(
    db: Session,
    now: datetime,
    *,
    account: Account,
    actor: Grant | None,
    name: str,
    email: str | None,
    role: str,
    permissions,
    valid_days: int,
    caps: Caps,
) -> tuple[InvitationPin, str]:
    """A single-use PIN for one named person, with the permissions they will get.
    Returns the PIN's row and the plain PIN, to show once."""
    _check_role(actor, role)
    chosen = clean_permissions(permissions)
    within_own(actor, chosen)
    _check_cap(db, now, account.id, role, caps)
    row, pin = enrolment.issue(
        db,
        now,
        account,
        role=role,
        permissions=chosen,
        valid_days=valid_days,
        issued_by_user_id=actor.user_id if actor else None,
        invitee_name=name,
        invitee_email=email or None,
    )
    return row, pin


def change(
    db: Session,
    now: datetime,
    *,
    account: Account,
    actor: Grant | None,
    target: Grant,
    role: str,
    permissions,
    caps: Caps,
) -> None:
    if target.revoked_at is not None or target.account_id != account.id:
        raise AccessRefused("This person no longer has access to the account")
    _not_self(actor, target.user_id)
    if target.role == "representative" and role != "representative":
        raise AccessRefused("A representative's role comes from their consent and cannot be changed here", "role")
    if role != "representative" or target.role != "representative":
        _check_role(actor, role, changing_owner=target.role == "owner")
    chosen = clean_permissions(permissions)
    within_own(actor, chosen, already=target.permissions.split(","))
    _keeps_owner_and_manager(db, target, role_after=role, permissions_after=chosen)
    if role != target.role:
        _check_cap(db, now, account.id, role, caps)
    before = (target.role, target.permissions)
    target.role, target.permissions = role, grants.permissions_text(chosen)
    audit.record(
        db,
        now,
        "access.changed",
        actor_user_id=actor.user_id if actor else None,
        subject_user_id=target.user_id,
        account_id=account.id,
        role_before=before[0],
        role_after=role,
        permissions_before=before[1],
        permissions_after=target.permissions,
    )


def deactivate(db: Session, now: datetime, *, account: Account, actor: Grant | None, target: Grant) -> None:
    """Remove a person's access; the grant check refuses their very next request."""
    if target.revoked_at is not None or target.account_id != account.id:
        raise AccessRefused("This person no longer has access to the account")
    _not_self(actor, target.user_id)
    if target.role == "owner":
        _check_role(actor, "owner")
    _keeps_owner_and_manager(db, target, role_after=None, permissions_after=None)
    target.revoked_at, target.revoked_by_user_id = now, actor.user_id if actor else None
    audit.record(
        db,
        now,
        "access.removed",
        actor_user_id=actor.user_id if actor else None,
        subject_user_id=target.user_id,
        account_id=account.id,
        role=target.role,
    )
    messages.access_removed(db, now, account=account, user_id=target.user_id)


def withdraw_pin(db: Session, now: datetime, *, account: Account, actor: Grant | None, pin: InvitationPin) -> None:
    if pin.account_id != account.id or pin.used_at is not None or pin.cancelled_at is not None:
        raise AccessRefused("This PIN has already been used or withdrawn")
    if pin.role == "owner":
        _check_role(actor, "owner")
    pin.cancelled_at = now
    audit.record(
        db,
        now,
        "access.pin_cancelled",
        actor_user_id=actor.user_id if actor else None,
        account_id=account.id,
        invitation_id=pin.id,
        role=pin.role,
    )


def reissue_pin(
    db: Session, now: datetime, *, account: Account, actor: Grant | None, pin: InvitationPin, valid_days: int
) -> tuple[InvitationPin, str]:
    """A new PIN in place of a lost, expired or locked one, for the same person and
    permissions; the old one stops working."""
    if pin.account_id != account.id or pin.used_at is not None or pin.cancelled_at is not None:
        raise AccessRefused("This PIN has already been used or withdrawn")
    if pin.role == "owner":
        _check_role(actor, "owner")
    if pin.role == "representative" and actor is not None:
        raise AccessRefused("A representative's PIN comes from the agency. Ask the agency for a new one")
    within_own(actor, pin.permissions.split(","))
    pin.cancelled_at = now
    row, plain = enrolment.issue(
        db,
        now,
        account,
        role=pin.role,
        permissions=pin.permissions.split(","),
        valid_days=valid_days,
        issued_by_user_id=actor.user_id if actor else None,
        invitee_name=pin.invitee_name,
        invitee_email=pin.invitee_email,
    )
    audit.record(
        db,
        now,
        "access.pin_reissued",
        actor_user_id=actor.user_id if actor else None,
        account_id=account.id,
        replaced=pin.id,
        invitation_id=row.id,
    )
    return row, plain


def record_review(db: Session, now: datetime, *, account: Account, actor: Grant) -> None:
    account.access_reviewed_at, account.access_reviewed_by_user_id = now, actor.user_id
    audit.record(db, now, "access.reviewed", actor_user_id=actor.user_id, account_id=account.id)


def review_due_on(account: Account, months: int, access_began: date | None = None) -> date:
    """When the account's access next needs a review by a manager: `months` after the
    last review or, when nobody has reviewed it yet, after the manager's access began
    (an account opened years before they took it on is not overdue the day they do;
    the account's opening date when that is unknown)."""
    if account.access_reviewed_at:
        last = account.access_reviewed_at.date()
    else:
        last = access_began or account.opened_on
    return add_months(last, months)


def accounts_due_for_review(db: Session, user_id: int, today: date, months: int) -> list[Account]:
    """The accounts this person manages whose access review is due."""
    managed = db.execute(
        select(Account, Grant.granted_at)
        .join(Grant, Grant.account_id == Account.id)
        .where(Grant.user_id == user_id, Grant.revoked_at.is_(None), Grant.permissions.like(f"%{MANAGE}%"))
        .order_by(Account.legal_name)
    )
    return [a for a, began in managed if review_due_on(a, months, began.date()) <= today]


def history(db: Session, account_id: int, limit: int = 200) -> list[tuple[AuditEvent, str | None, str | None]]:
    """The account's access events, newest first, with the names of who did it and to whom."""
    actor, subject = aliased(User), aliased(User)
    return list(
        db.execute(
            select(AuditEvent, actor.name, subject.name)
            .outerjoin(actor, actor.id == AuditEvent.actor_user_id)
            .outerjoin(subject, subject.id == AuditEvent.subject_user_id)
            .where(AuditEvent.account_id == account_id, AuditEvent.event.in_(ACCESS_EVENTS))
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
