"""The agency's own people: staff sign-ins with a role (officer, supervisor,
administrator). An administrator adds a staff member, who chooses a password
from an emailed set-up link and must set up two-step sign-in before anything
else; roles change, and staff access is revoked (which disables the sign-in and
ends its sessions at once). Plain functions, no Flask."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import audit, passwords, people
from domain import sessions as session_store
from models import STAFF_ROLES, User

ROLE_WORDS = {"officer": "Officer", "supervisor": "Supervisor", "administrator": "Administrator"}
ROLE_HINTS = {
    "officer": "Works the queues, assesses returns, posts payments, writes to taxpayers",
    "supervisor": "Also reassigns work, sees queue ages, posts refunds, transfers, adjustments and reversals, "
    "reads the audit log",
    "administrator": "Also registers programs and manages staff sign-ins",
}


class StaffRefused(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def members(db: Session) -> list[User]:
    """Everyone who is or was staff: active ones first, then by name."""
    return list(
        db.scalars(
            select(User).where(User.staff_role.in_(STAFF_ROLES)).order_by(User.disabled_at.is_not(None), User.name)
        )
    )


def add(db: Session, now: datetime, *, name: str, email: str, role: str, by: User) -> User:
    """A new staff sign-in. Its password is random and unknown to anyone until the
    person sets their own from the set-up link; the caller sends that link."""
    if role not in STAFF_ROLES:
        raise StaffRefused("Choose a role", "role")
    if people.find_by_email(db, email) is not None:
        raise StaffRefused(
            "Someone already signs in with that email address. Staff use a work address of "
            "their own, never a taxpayer's sign-in",
            "email",
        )
    user = User(
        name=name.strip(),
        email=people.normalise_email(email),
        password_hash=passwords.hash_password(secrets.token_urlsafe(32)),
        created_at=now,
        password_changed_at=now,
        email_verified_at=now,
        staff_role=role,
    )
    db.add(user)
    db.flush()
    audit.record(db, now, "staff.added", actor_user_id=by.id, subject_user_id=user.id, role=role)
    return user


def change_role(db: Session, now: datetime, *, member: User, role: str, by: User) -> None:
    if role not in STAFF_ROLES:
        raise StaffRefused("Choose a role", "role")
    if member.id == by.id:
        raise StaffRefused("You cannot change your own role: ask another administrator", "role")
    if not member.is_staff or member.is_disabled:
        raise StaffRefused("This person's staff access has been revoked")
    if member.staff_role == role:
        return
    previous, member.staff_role = member.staff_role, role
    audit.record(
        db, now, "staff.role_changed", actor_user_id=by.id, subject_user_id=member.id, previous=previous, role=role
    )


def revoke(db: Session, now: datetime, *, member: User, by: User) -> int:
    """End a staff member's access: the sign-in is disabled and every session ends
    now (a copied cookie stops working on the next request). Returns the number
    of sessions ended. The role stays recorded, for the history."""
    if member.id == by.id:
        raise StaffRefused("You cannot revoke your own access: ask another administrator")
    if member.is_disabled:
        return 0
    member.disabled_at = now
    ended = session_store.end_all_for_user(db, member.id, now, "staff")
    audit.record(db, now, "staff.revoked", actor_user_id=by.id, subject_user_id=member.id, sessions_ended=ended)
    return ended
