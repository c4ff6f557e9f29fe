"""The one check every account URL makes: the signed-in person holds a live grant
on that very account with the permission the view needs. Anything else is a 404,
the same answer as an account that does not exist."""
from __future__ import annotations

from flask import abort
from flask_login import current_user

from domain import grants
from models import PERMISSIONS, Account, Grant
from web.database import get_db, now, write_at_end
from web.dates import today


def account_or_404(number: str, permission: str) -> tuple[Account, Grant]:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    db = get_db()
    grant = grants.grant_for(db, current_user.id, number, today())
    if grant is None or not grant.allows(permission):
        abort(404)
    used = grants.use_write(grant, now())
    if used is not None:
        write_at_end(("grant-used", grant.id), *used)
    return grant.account, grant
