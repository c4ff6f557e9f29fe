"""Who may act on which account, and how. One check serves every account route."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Update, bindparam, select, update
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


# Built once: every account request asks it, and building the statement costs
# about as much as running it (docs/performance.md).
_GRANT_FOR = (select(Grant).join(Grant.account).join(Account.program)
              # The account and program from the same joins (no second join for the eager load).
              .options(contains_eager(Grant.account).contains_eager(Account.program))
              .where(Grant.user_id == bindparam("user_id"), Account.number == bindparam("number"),
                     Grant.revoked_at.is_(None)))


def grant_for(db: Session, user_id: int, account_number: str) -> Grant | None:
    """The person's live grant on the account with this number (its account and
    program come with it), or None."""
    return db.scalar(_GRANT_FOR, {"user_id": user_id, "number": account_number})


# "Last used" (for the access review) is kept to the minute: no write on every click.
USE_GRANULARITY = timedelta(minutes=1)
_MARK_USED = update(Grant).where(Grant.id == bindparam("grant_id")).values(last_used_at=bindparam("at"))


def use_write(grant: Grant, now: datetime) -> tuple[Update, dict] | None:
    """(statement, parameters) recording that the grant was used now, or None
    when it was recorded within the last minute."""
    if grant.last_used_at is not None and now - grant.last_used_at < USE_GRANULARITY:
        return None
    return _MARK_USED, {"grant_id": grant.id, "at": now}


def give(db: Session, now: datetime, *, user_id: int, account: Account, role: str,
         permissions=None, granted_by_user_id: int | None = None) -> Grant:
    grant = Grant(user_id=user_id, account_id=account.id, role=role,
                  permissions=permissions_text(permissions if permissions is not None else ROLE_PRESETS[role]),
                  granted_by_user_id=granted_by_user_id, granted_at=now)
    db.add(grant)
    return grant
