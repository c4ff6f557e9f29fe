"""Who may act on which account, and how. One check serves every account route."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Date, Update, and_, bindparam, case, or_, select, update
from sqlalchemy.orm import Session, contains_eager

from models import PERMISSIONS, Account, Grant

# Roles are presets of the permission switches, not branches in code.
ROLE_PRESETS: dict[str, tuple[str, ...]] = {
    "owner": PERMISSIONS,
    "authorized": PERMISSIONS,
    "delegate": ("view_financial", "view_returns", "file", "upload", "receive_messages"),
    "representative": ("view_financial", "view_returns", "file", "upload", "objections_waivers"),
    "viewer": ("view_financial", "view_returns"),
}


def permissions_text(permissions) -> str:
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permissions: {sorted(unknown)}")
    return ",".join(p for p in PERMISSIONS if p in set(permissions))


def in_force(today) -> ColumnElement[bool]:
    """A grant that works today: not removed, and inside the dates of its consent
    (a representative's), so an end date ends it by itself."""
    return and_(
        Grant.revoked_at.is_(None),
        or_(Grant.valid_from.is_(None), Grant.valid_from <= today),
        or_(Grant.valid_until.is_(None), Grant.valid_until >= today),
    )


# Built once, like _GRANT_OR_FORMER below (which every account request asks):
# building a statement costs about as much as running it (docs/performance.md).
_GRANT_FOR = (
    select(Grant)
    .join(Grant.account)
    .join(Account.program)
    # The account and program from the same joins (no second join for the eager load).
    .options(contains_eager(Grant.account).contains_eager(Account.program))
    .where(
        Grant.user_id == bindparam("user_id"),
        Account.number == bindparam("number"),
        in_force(bindparam("today", type_=Date)),
    )
)


def grant_for(db: Session, user_id: int, account_number: str, today: date) -> Grant | None:
    """The person's grant in force today on the account with this number (its
    account and program come with it), or None."""
    return db.scalar(_GRANT_FOR, {"user_id": user_id, "number": account_number, "today": today})


_IN_FORCE_TODAY = in_force(bindparam("today", type_=Date))
# The person's grants on the account, the one in force first (else the latest), with
# whether it is in force: the same one statement whether they never had access, had it
# removed or have it, so the answer takes as long either way.
_GRANT_OR_FORMER = (
    select(Grant, _IN_FORCE_TODAY.label("live"))
    .join(Grant.account)
    .join(Account.program)
    .options(contains_eager(Grant.account).contains_eager(Account.program))
    .where(Grant.user_id == bindparam("user_id"), Account.number == bindparam("number"))
    .order_by(case((_IN_FORCE_TODAY, 0), else_=1), Grant.id.desc())
    .limit(1)
)


def grant_or_former(db: Session, user_id: int, account_number: str, today: date) -> tuple[Grant | None, bool]:
    """(the person's grant in force today on the account, False), or (None, True)
    when they once had access and it was removed or has ended, or (None, False) when
    they never had any: a former user is told their access went, a stranger learns
    nothing. One statement in every case."""
    row = db.execute(_GRANT_OR_FORMER, {"user_id": user_id, "number": account_number, "today": today}).first()
    if row is None:
        return None, False
    grant, live = row
    if live:
        return grant, False
    started = grant.valid_from is None or grant.valid_from <= today
    return None, started  # a consent that has not begun yet is not access removed


# "Last used" (for the access review) is kept to the minute: no write on every click.
USE_GRANULARITY = timedelta(minutes=1)
_MARK_USED = update(Grant).where(Grant.id == bindparam("grant_id")).values(last_used_at=bindparam("at"))


def use_write(grant: Grant, now: datetime) -> tuple[Update, dict] | None:
    """(statement, parameters) recording that the grant was used now, or None
    when it was recorded within the last minute."""
    if grant.last_used_at is not None and now - grant.last_used_at < USE_GRANULARITY:
        return None
    return _MARK_USED, {"grant_id": grant.id, "at": now}


def give(
    db: Session,
    now: datetime,
    *,
    user_id: int,
    account: Account,
    role: str,
    permissions=None,
    granted_by_user_id: int | None = None,
    consent_id: int | None = None,
    valid_from: date | None = None,
    valid_until: date | None = None,
) -> Grant:
    grant = Grant(
        user_id=user_id,
        account_id=account.id,
        role=role,
        permissions=permissions_text(permissions if permissions is not None else ROLE_PRESETS[role]),
        granted_by_user_id=granted_by_user_id,
        granted_at=now,
        consent_id=consent_id,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    db.add(grant)
    return grant
