"""The agency's side. Staff sign in with a password and a second factor, find
accounts and people from one search box, see their own work, look a person up
(their sessions, the accounts they can use) and end their sessions or disable
their sign-in. It stays up outside the taxpayer service hours."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, session, url_for
from flask_login import current_user

# Aliased: the sub-package blueprints.staff.audit (the audit viewer) takes the plain name.
from domain import agency_view, staff_search, work
from domain import audit as audit_trail
from domain import sessions as session_store
from models import User
from web import credentials
from web.access import access, refuse
from web.database import get_db, now
from web.forms import EmptyForm, add_error
from web.htmx import render, see_other, wants_fragment
from web.sessions import limits_from

from .forms import SearchForm, StaffSignInForm

bp = Blueprint("staff", __name__, url_prefix="/staff")
STAFF = dict(staff=True, always_open=True)


def _register_sections() -> None:
    """Each part of the back office is a blueprint of its own under /staff
    (endpoints "staff.<part>.<view>"; every one staff-only by default: web.access)."""
    import importlib

    for part in ("queues", "accounts", "returns", "ledger", "messages", "mail", "audit", "programs", "team"):
        bp.register_blueprint(importlib.import_module(f"{__name__}.{part}").bp)


_register_sections()


@bp.route("/sign-in", methods=["GET", "POST"])
@access(public=True, always_open=True)
def sign_in():
    form = StaffSignInForm()
    status = 200
    if form.validate_on_submit():
        # Both required: validated, each holds text (WTForms types data as str | None).
        result = credentials.check_password(form.email.data or "", form.password.data or "", staff_only=True)
        if result.locked:
            add_error(form.email, credentials.TOO_MANY_PASSWORDS)
            status = 429
        elif result.user is None:
            add_error(form.email, "Enter a correct email address, password and code")
            status = 400
        elif not result.user.has_two_factor:
            # A new staff account sets up its second factor before anything else.
            return credentials.complete_sign_in(result.user, url_for("profile.two_factor"), "password")
        elif not form.code.data:
            add_error(form.code, "Enter the security code from your authenticator app")
            status = 400
        else:
            factor, locked = credentials.check_code(result.user, form.code.data)
            if factor is None:
                add_error(form.code, credentials.TOO_MANY_CODES if locked else "Enter a correct security code")
                status = 429 if locked else 400
            else:
                return credentials.complete_sign_in(result.user, url_for(".index"), factor)
    elif form.errors:
        status = 400
    return render_template("staff/sign_in.html", form=form), status


@bp.route("/")
@access(**STAFF)
def index():
    """One search box for accounts and people, and the staff member's own work."""
    db = get_db()
    form = SearchForm(request.args)
    accounts = people = None
    status = 200
    if request.args:
        if form.validate():
            accounts = staff_search.find_accounts(db, form.q.data or "")
            people = staff_search.find_people(db, form.q.data or "")
        else:
            status = 400
    context: dict[str, Any] = dict(form=form, accounts=accounts, people=people, most=staff_search.MOST)
    if not wants_fragment():
        context.update(
            my_items=work.items(db, assignee_user_id=current_user.id),
            queues=work.counts(db, now()),
            queue_labels=work.QUEUE_LABELS,
            status_words=work.STATUS_WORDS,
        )
    return render("staff/index.html", "staff/_search_results.html", status, **context)


def _person_or_404(user_id: int) -> User:
    person = get_db().get(User, user_id)
    if person is None:
        abort(404)
    return person


@bp.route("/people/<int:user_id>")
@access(**STAFF)
def person(user_id: int):
    db = get_db()
    person = _person_or_404(user_id)
    active = session_store.active_for_user(db, person.id, now(), limits_from(current_app.config))
    events = audit_trail.events_of_person(db, person.id, limit=30)
    return render_template(
        "staff/person.html",
        person=person,
        active=active,
        events=events,
        form=EmptyForm(),
        grants=agency_view.grants_of(db, person.id),
    )


@bp.route("/people/<int:user_id>/end-sessions", methods=["POST"])
@access(**STAFF)
def end_sessions(user_id: int):
    person = _person_or_404(user_id)
    if person.is_staff and person.id != current_user.id and current_user.staff_role != "administrator":
        # Ending a colleague's sessions is the team's administrators' work (as revoking
        # access is): an officer cannot sign a supervisor or an administrator out.
        refuse(current_user.id, "administrator-only")
    if EmptyForm().validate_on_submit():
        db, moment = get_db(), now()
        ended = session_store.end_all_for_user(db, person.id, moment, "staff")
        audit_trail.record(
            db, moment, "sessions.ended_by_staff", actor_user_id=current_user.id, subject_user_id=person.id, count=ended
        )
        db.commit()
        session["notice"] = f"Ended {ended} session{'s' if ended != 1 else ''}."
    return see_other(url_for(".person", user_id=person.id))


@bp.route("/people/<int:user_id>/access", methods=["POST"])
@access(**STAFF)
def set_access(user_id: int):
    """Disable or restore a person's sign-in (administrators only)."""
    if current_user.staff_role != "administrator":
        refuse(current_user.id, "administrator-only")
    person = _person_or_404(user_id)
    if EmptyForm().validate_on_submit() and person.id != current_user.id:
        db, moment = get_db(), now()
        if request.form.get("action") == "disable" and person.disabled_at is None:
            person.disabled_at = moment
            ended = session_store.end_all_for_user(db, person.id, moment, "staff")
            audit_trail.record(
                db,
                moment,
                "account.disabled",
                actor_user_id=current_user.id,
                subject_user_id=person.id,
                sessions_ended=ended,
            )
            session["notice"] = "Sign-in disabled and every session ended."
        elif request.form.get("action") == "enable" and person.disabled_at is not None:
            person.disabled_at = None
            audit_trail.record(db, moment, "account.enabled", actor_user_id=current_user.id, subject_user_id=person.id)
            session["notice"] = "Sign-in restored."
        db.commit()
    return see_other(url_for(".person", user_id=person.id))
