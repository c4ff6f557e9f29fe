"""Who may reach what. Every view is for signed-in people unless it says otherwise,
so a new route is protected by default. One `before_request` gate applies the
rules; views declare only their exceptions with `@access(...)`."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import abort, current_app, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict

from domain import audit, people
from web.database import get_db, now
from web.htmx import client_redirect, is_htmx
from web.secret_key import secret_key
from web.sessions import server_session


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
    if request.method not in ("GET", "HEAD", "OPTIONS"):
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
