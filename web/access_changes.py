"""What the manage-access and consents blueprints share: the caps from the
settings, and a refused change shown beside its field and put in the audit log."""
from __future__ import annotations

from flask import current_app

from domain import audit
from domain.delegation import AccessRefused, Caps
from models import Account, Grant
from web.database import get_db, now


def caps() -> Caps:
    config = current_app.config
    return Caps(owners=config["MAX_OWNERS_PER_ACCOUNT"], representatives=config["MAX_REPRESENTATIVES_PER_ACCOUNT"])


def refused(account: Account, actor: Grant, form, error: AccessRefused) -> None:
    """The refusal beside its field (or at the top of the form), nothing of the
    change kept, and the refusal in the audit log."""
    field = getattr(form, error.field, None) if error.field else None
    (field.errors if field is not None else form.form_errors).append(error.message)
    db = get_db()
    db.rollback()
    audit.record(db, now(), "access.refused", "failure", actor_user_id=actor.user_id, account_id=account.id,
                 reason=error.message)
    db.commit()
