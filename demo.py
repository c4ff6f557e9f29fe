"""Demo people, so a newcomer can try every role at once. Never load in production."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import audit, passwords
from models import User

# The staff member's authenticator secret is public on purpose: it is a demo.
DEMO_STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

DEMO_PEOPLE = [
    # role, name, email, password, staff role
    ("Taxpayer who owns accounts", "Morgan Tremblay", "owner@demo.tracs.example", "prairie-harvest-lantern-42", None),
    ("Delegate (bookkeeper)", "Priya Natarajan", "delegate@demo.tracs.example", "copper-kettle-river-stone", None),
    ("Third-party representative", "Dana Kowalski", "representative@demo.tracs.example", "maple-ledger-northern-sky", None),
    ("Staff (administrator)", "Sam Okafor", "staff@demo.tracs.example", "aurora-granite-willow-88", "administrator"),
]


def seed(db: Session, now: datetime, only_if_empty: bool = True) -> bool:
    if only_if_empty and db.scalar(select(func.count(User.id))):
        return False
    for _role, name, email, password, staff_role in DEMO_PEOPLE:
        if db.scalar(select(User).where(User.email == email)):
            continue
        user = User(name=name, email=email, password_hash=passwords.hash_password(password), created_at=now,
                    password_changed_at=now, email_verified_at=now, staff_role=staff_role)
        if staff_role:
            user.totp_secret, user.totp_enabled_at = DEMO_STAFF_TOTP_SECRET, now
        db.add(user)
        db.flush()
        audit.record(db, now, "account.demo_created", actor_user_id=user.id)
    db.commit()
    return True
