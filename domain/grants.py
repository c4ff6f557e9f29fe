"""Who may act on which account, and how. One check serves every account route."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

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
_GRANT_FOR = (select(Grant).join(Account, Grant.account_id == Account.id)
              .where(Grant.user_id == bindparam("user_id"), Account.number == bindparam("number"),
                     Grant.revoked_at.is_(None)))


def grant_for(db: Session, user_id: int, account_number: str) -> Grant | None:
    """The person's live grant on the account with this number (its account and
    program come with it), or None."""
    return db.scalar(_GRANT_FOR, {"user_id": user_id, "number": account_number})


def give(db: Session, now: datetime, *, user_id: int, account: Account, role: str,
         permissions=None, granted_by_user_id: int | None = None) -> Grant:
    grant = Grant(user_id=user_id, account_id=account.id, role=role,
                  permissions=permissions_text(permissions if permissions is not None else ROLE_PRESETS[role]),
                  granted_by_user_id=granted_by_user_id, granted_at=now)
    db.add(grant)
    return grant
