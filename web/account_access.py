"""The one check every account URL makes: the signed-in person holds a live grant
on that very account with the permission the view needs. Anything else is a 404,
the same answer as an account that does not exist, and an "access.refused" audit
event (reason "no-grant" or "permission"; written by web.errors once the 404 is
the answer, since a view may catch it and try another permission)."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from domain import grants
from models import PERMISSIONS, Account, Grant
from web.access import note_refusal
from web.database import get_db, now, write_at_end
from web.dates import today


def account_or_404(number: str, permission: str | tuple[str, ...]) -> tuple[Account, Grant]:
    """`permission` may be a tuple: any one of them will do (a page that gathers
    several features, such as the request history)."""
    wanted = (permission,) if isinstance(permission, str) else tuple(permission)
    if not wanted or any(p not in PERMISSIONS for p in wanted):
        raise ValueError(f"unknown permission {permission!r}")
    db = get_db()
    grant = grants.grant_for(db, current_user.id, number, today())
    if grant is None or not any(grant.allows(p) for p in wanted):
        note_refusal("no-grant" if grant is None else "permission")
        abort(404)
    note_refusal(None)  # a view that tried another permission first got in: a later 404 is about an object
    used = grants.use_write(grant, now())
    if used is not None:
        write_at_end(("grant-used", grant.id), *used)
    return grant.account, grant
