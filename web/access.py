"""Access on the web side: who may reach what, and the changes to who may use an
account (the rules themselves are in domain.access; the pages in blueprints/access).

Every view is for signed-in people unless it says otherwise, so a new route is
protected by default. One `before_request` gate applies the rules; views declare
their exceptions with `@access(...)`, and every account route declares what it
needs with `@account_route(...)`, which makes the one account check
(`account_or_404`) and hands the view the account and the grant. The gate refuses
an account URL whose view declares nothing."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from flask import abort, current_app, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from domain import audit, grants, people
from domain.access import AccessRefused, Caps
from models import PERMISSIONS, Account, Grant
from web.database import get_db, now, write_at_end
from web.dates import today
from web.htmx import client_redirect, is_htmx
from web.secret_key import secret_key
from web.sessions import server_session


@dataclass(frozen=True)
class AccountNeed:
    """What an account route needs: a grant in force on the account its URL names,
    allowing any one of `permissions`; with `feature`, a program that offers it."""

    permissions: tuple[str, ...]
    feature: str | None = None


@dataclass(frozen=True)
class AccessRule:
    public: bool = False  # no sign-in needed, and no other check
    anonymous: bool = False  # open to anyone signed out; a signed-in person passes the whole gate
    reauth_exempt: bool = False  # reachable while a re-confirmation is due
    unverified_ok: bool = False  # reachable before the email is verified
    two_factor_setup: bool = False  # reachable before a required second factor is set up
    staff: bool = False  # staff only
    always_open: bool = False  # outside service hours too (health, staff, static)
    signed_out_noop: str | None = None  # with no live session, redirect here and do nothing
    account: AccountNeed | None = None  # an account route's need (`account_route`)
    # A link mailed to one address whose signed token is the authority: a mail
    # provider's one-click POST (RFC 8058) carries no cookie and no CSRF token.
    one_click: bool = False


SIGNED_IN = AccessRule()
# The agency's side: everything under the staff blueprint is staff-only, and open
# outside the taxpayer service hours, unless a view says otherwise (its sign-in page).
STAFF_ONLY = AccessRule(staff=True, always_open=True)


def access(**flags):
    rule = AccessRule(**flags)

    def decorate(view):
        view.access_rule = rule
        return view

    return decorate


def rule_for_endpoint(endpoint: str | None) -> AccessRule:
    view = current_app.view_functions.get(endpoint or "")
    if view is None or endpoint in ("static", "assets.asset"):
        return AccessRule(public=True, always_open=True)
    default = STAFF_ONLY if (endpoint or "").startswith("staff.") else SIGNED_IN
    return getattr(view, "access_rule", default)


# --- Account routes ----------------------------------------------------------------------------
# A URL names an account by its `number` (`<account:number>`, web.converters).


def account_route(*permissions: str, feature: str | None = None, not_offered: Callable | None = None):
    """Declare what an account route needs, and check it. `permissions`: any one of
    them will do (a page that gathers several features). `feature`: the program
    function the route depends on; when the account's program lacks it the answer
    is `not_offered(account, grant)`. The view is called as
    `view(account, grant, **the URL's other values)`."""
    if not permissions or any(p not in PERMISSIONS for p in permissions):
        raise ValueError(f"unknown permission in {permissions!r}")
    if (feature is None) != (not_offered is None):
        raise ValueError("a feature needs the answer for a program that does not offer it, and only a feature")
    need = AccountNeed(tuple(permissions), feature)

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(number: str, **values):
            account, grant = account_or_404(number, need.permissions)
            if not_offered is not None and need.feature is not None and not account.program.allows(need.feature):
                return not_offered(account, grant)
            return view(account, grant, **values)

        marked: Any = checked  # a view carries its rule as an attribute (rule_for_endpoint reads it)
        marked.access_rule = replace(getattr(view, "access_rule", SIGNED_IN), account=need)
        return marked

    return decorate


def account_or_404(number: str, permission: str | tuple[str, ...]) -> tuple[Account, Grant]:
    """The one check every account URL makes: the signed-in person holds a grant in
    force on that very account with the permission (or, for a tuple, any one of
    them). Anything else is a 404, the same answer as an account that does not
    exist (a person whose access was removed is told so on it, web.errors), and an
    "access.refused" audit event (reason "no-grant", "removed" or "permission";
    written by web.errors once the 404 is the answer, since a view may catch it)."""
    wanted = (permission,) if isinstance(permission, str) else tuple(permission)
    if not wanted or any(p not in PERMISSIONS for p in wanted):
        raise ValueError(f"unknown permission {permission!r}")
    grant, removed = grants.grant_or_former(get_db(), current_user.id, number, today())
    if grant is None or not any(grant.allows(p) for p in wanted):
        # Still the 404 a stranger gets; only its words tell a former user what happened.
        note_refusal("removed" if removed else "no-grant" if grant is None else "permission")
        abort(404)
    note_refusal(None)  # past the account: a later 404 is about an object the URL names
    used = grants.use_write(grant, now())
    if used is not None:
        write_at_end(("grant-used", grant.id), *used)
    return grant.account, grant


def _undeclared_account_route(rule: AccessRule) -> bool:
    """A taxpayer-side URL that names an account, served by a view that declares no need."""
    return rule.account is None and not rule.staff and "number" in (request.view_args or {})


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a path on this site: never another host, never a scheme-relative URL."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _current_path() -> str:
    if is_htmx():
        current = request.headers.get("HX-Current-URL", "")
        parts = urlsplit(current)
        return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    if request.method == "GET":
        return safe_next(request.full_path.rstrip("?"))
    return safe_next(request.path)


# A form typed into before a time-out or a re-confirmation is kept here (in the
# server-side session, never the cookie) and handed back to the same form.
_NEVER_KEPT = frozenset(
    {
        "csrf_token",
        "password",
        "password_confirm",
        "current_password",
        "new_password",
        "new_password_confirm",
        "code",
        "pin",
        "pin_code",
        # A declaration is made afresh, never ticked for the person.
        "declaration",
        # Bank details wait only in the person's own draft, never in the session.
        "institution",
        "transit",
        "bank_account",
    }
)


def carries_the_dead_sessions_token() -> bool:
    """The request's CSRF token is the one its timed-out session issued. A page on a
    sibling subdomain or another port is the same site, so SameSite=Strict lets it
    post with the dead cookie; it cannot know that token."""
    secret = getattr(session, "expired_csrf_token", None)
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRFToken")
    if not (isinstance(secret, str) and secret and sent):
        return False
    signer = URLSafeTimedSerializer(
        current_app.config.get("WTF_CSRF_SECRET_KEY") or secret_key(), salt="wtf-csrf-token"
    )  # Flask-WTF's own signing of the token
    try:
        token = signer.loads(sent, max_age=current_app.config.get("WTF_CSRF_TIME_LIMIT"))
    except BadData:
        return False
    return isinstance(token, str) and hmac.compare_digest(token, secret)


def keep_form_for_later(user_id: int | None) -> None:
    if request.method != "POST" or not request.form:
        return
    fields = [[k, v] for k, v in request.form.items(multi=True) if k not in _NEVER_KEPT]
    session["kept_form"] = {"path": request.path, "user_id": user_id, "fields": fields}


def take_kept_form(user_id: int) -> MultiDict | None:
    kept = session.get("kept_form")
    if not kept or kept.get("path") != request.path or kept.get("user_id") != user_id:
        return None
    session.pop("kept_form")
    return MultiDict([tuple(pair) for pair in kept["fields"]])


def _to(endpoint: str, *, status_for_htmx: int = 401, **params: Any):  # params: url_for's values
    target = url_for(endpoint, **params)
    if is_htmx():
        return client_redirect(target, status_for_htmx)
    return redirect(target, 303)


def sign_in_required(reason: str | None = None):
    params: dict[str, Any] = {"next": _current_path()}
    if reason:
        params["reason"] = reason
    return _to("auth.sign_in", **params)


def reauth_due(sess) -> bool:
    if not sess.authenticated_at:
        return False
    limit = timedelta(seconds=current_app.config["SESSION_REAUTH_SECONDS"])
    return now() - sess.authenticated_at >= limit


ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def is_one_click() -> bool:
    """An RFC 8058 one-click POST: its body is exactly `List-Unsubscribe=One-Click`
    and nothing else, so no page's form (which always carries its token) is one."""
    return request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") and (
        request.form.to_dict(flat=True) == ONE_CLICK and not request.files
    )


def enforce() -> ResponseReturnValue | None:
    """The gate every request passes."""
    rule = rule_for_endpoint(request.endpoint)
    if not (rule.public or rule.anonymous) and not current_user.is_authenticated:
        expired = getattr(session, "expired_reason", None)
        reason = {
            "idle": "idle",
            "maximum": "idle",
            "password-changed": "ended",
            "staff": "ended",
            "other-session": "ended",
        }.get(expired or "")
        if reason == "idle" and carries_the_dead_sessions_token():
            # The live CSRF check cannot pass (the token died with the session), so the
            # token is checked against the dead session's own secret instead. The form is
            # then handed back only to the person whose session it was.
            keep_form_for_later(server_session().expired_user_id)
        return sign_in_required(reason)
    if rule.signed_out_noop and not current_user.is_authenticated:
        # Signing out of a session that has already ended changes nothing, so
        # it needs no CSRF token (which died with the session): say it is done.
        return redirect(url_for(rule.signed_out_noop), 303)
    if request.method not in ("GET", "HEAD", "OPTIONS") and not (rule.one_click and is_one_click()):
        current_app.extensions["csrf"].protect()
    if rule.public or not current_user.is_authenticated:
        return None
    user = current_user._get_current_object()
    if reauth_due(session) and not rule.reauth_exempt:
        keep_form_for_later(user.id)
        return _to("auth.confirm", next=_current_path())
    if user.email_verified_at is None and not rule.unverified_ok:
        return _to("auth.verify_pending", status_for_htmx=403)
    if (
        people.two_factor_required(user, current_app.config["REQUIRE_TWO_FACTOR_FOR_ALL"])
        and not user.has_two_factor
        and not rule.two_factor_setup
    ):
        return _to("profile.two_factor", status_for_htmx=403)
    if rule.staff and not user.is_staff:
        refuse(user.id, "staff-only")
    if _undeclared_account_route(rule):
        # Default deny: a forgotten `account_route` refuses everyone, as a stranger is refused.
        note_refusal("undeclared")
        abort(404)
    return None


def record_refusal(user_id: int | None, why: str) -> None:
    """The refusal in the audit log: who, which view, why; never the account or
    anything the URL names (an account's access history lists the refusals made
    on it, and a stranger's guesses are not its managers' business). Whatever the
    view had begun is dropped first: a refusal changes nothing."""
    db = get_db()
    db.rollback()
    audit.record(db, now(), "access.refused", "failure", actor_user_id=user_id, endpoint=request.endpoint, reason=why)
    db.commit()


def refuse(user_id: int | None, why: str):
    """403, with the refusal in the audit log."""
    record_refusal(user_id, why)
    abort(403)


def note_refusal(why: str | None) -> None:
    """Say why the 404 about to be raised is a refusal (None: forget an earlier
    reason). web.errors records it when the 404 is the answer (a view may catch the
    404 and try another way)."""
    g.refusal_reason = why


def record_not_found() -> None:
    """A 404 answered by a protected view to a signed-in person is a refusal (an
    account or an object they may not reach looks exactly like one that does not
    exist): audited once, with the reason noted by the view (`note_refusal`) or
    "not-found". Nothing for anonymous visitors, public views or unknown URLs."""
    if request.url_rule is None or request.endpoint not in current_app.view_functions:
        return
    rule = rule_for_endpoint(request.endpoint)
    if rule.public or rule.anonymous or not current_user.is_authenticated:
        return
    record_refusal(current_user.id, g.pop("refusal_reason", None) or "not-found")


def next_param_url(endpoint: str, **params) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return url_for(endpoint) + (f"?{query}" if query else "")


def require_staff_role(role: str) -> None:
    """403 (audited) unless the signed-in staff member holds `role` or a higher one."""
    from domain import work

    if not work.at_least(current_user._get_current_object(), role):
        refuse(current_user.id, f"{role}-only")


# --- Changes to who may use an account (the manage-access and consents pages) -----------------

T = TypeVar("T")


def configured_caps() -> Caps:
    config = current_app.config
    return Caps(owners=config["MAX_OWNERS_PER_ACCOUNT"], representatives=config["MAX_REPRESENTATIVES_PER_ACCOUNT"])


def refused_change(account: Account, actor: Grant, form, error: AccessRefused) -> None:
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


def one_button_change(account: Account, actor: Grant, change: Callable[[Session], T]) -> tuple[bool, T | None]:
    """A change made by one button (its form is only the CSRF token; a missing one
    is a 400): (True, what `change(db)` returned), committed; or (False, None) when
    the rules refused it, with the refusal as the next page's notice and in the audit log."""
    from web.forms import EmptyForm  # web.forms needs this module's kept forms: imported when used

    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    db = get_db()
    try:
        result = change(db)
    except AccessRefused as error:
        refused_change(account, actor, form, error)
        session["notice"] = error.message
        return False, None
    db.commit()
    return True, result
