"""What the manage-access and consents blueprints share: the caps from the
settings, a refused change shown beside its field and put in the audit log, and
one-button changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import abort, current_app, session
from sqlalchemy.orm import Session

from domain import audit
from domain.delegation import AccessRefused, Caps
from models import Account, Grant
from web.database import get_db, now
from web.forms import EmptyForm

T = TypeVar("T")


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
    audit.record(
        db, now(), "access.refused", "failure", actor_user_id=actor.user_id, account_id=account.id, reason=error.message
    )
    db.commit()


def one_button(account: Account, actor: Grant, change: Callable[[Session], T]) -> tuple[bool, T | None]:
    """A change made by one button (its form is only the CSRF token; a missing one
    is a 400): (True, what `change(db)` returned), committed; or (False, None) when
    the rules refused it, with the refusal as the next page's notice and in the audit log."""
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    db = get_db()
    try:
        result = change(db)
    except AccessRefused as error:
        refused(account, actor, form, error)
        session["notice"] = error.message
        return False, None
    db.commit()
    return True, result
