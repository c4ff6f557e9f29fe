"""Enrolment: link an account to your sign-in with the account number and the PIN
from an invitation letter (the rules are in domain.enrolment)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, session, url_for
from flask_login import current_user

from domain import enrolment, grants, overview
from domain.accounts import format_number
from web.database import get_db, now
from web.dates import today
from web.forms import add_error, bind
from web.htmx import see_other
from web.secret_key import secret_key
from web.templating import local_time

from .forms import EnrolForm

bp = Blueprint("enrol", __name__, url_prefix="/enrol")

AGENCY_PHONE = "780-427-3044"
NO_MATCH = "The account number and PIN do not match an invitation. Check both and try again."
LOCKED = (
    f"Too many wrong tries. Ask for a new PIN: call Tax and Revenue Administration at {AGENCY_PHONE}, "
    "or ask the account manager who issued your PIN"
)
EXPIRED_AGENCY = f"This PIN has expired. Call Tax and Revenue Administration at {AGENCY_PHONE} to ask for a new one"
EXPIRED_MANAGER = "This PIN has expired. Ask the account manager who issued it for a new one"
TOO_MANY = {
    "too-many": "You have got the PIN for this account number wrong too many times. Try again after {when}",
    "too-many-numbers": "You have tried too many account numbers today. Try again after {when}",
}


def _limits() -> enrolment.Limits:
    config = current_app.config
    return enrolment.Limits(
        numbers_per_day=config["ENROL_NUMBERS_PER_DAY"], client_failures_per_day=config["ENROL_CLIENT_MAX_FAILURES"]
    )


@bp.route("/", methods=["GET", "POST"])
def start():
    user = current_user._get_current_object()
    form = bind(EnrolForm, user.id)
    status = 200
    if form.validate_on_submit():
        db = get_db()
        outcome = enrolment.enrol(
            db,
            now(),
            secret_key(),
            user_id=user.id,
            number=form.number.data,
            pin=form.pin_code.data,
            client=request.remote_addr or "unknown",
            limits=_limits(),
        )
        if outcome.result in ("linked", "already") and outcome.account is not None:  # these come with it
            account = outcome.account
            label = f"{account.program.name} account {format_number(account.number)} ({account.legal_name})"
            session["notice"] = (
                f"You can now use {label}." if outcome.result == "linked" else f"You already have access to {label}."
            )
            grant = grants.grant_for(db, user.id, account.number, today())
            if grant is not None and overview.shows_periods(grant):
                return see_other(url_for("accounts.summary", number=account.number))
            return see_other(url_for("home"))
        if outcome.result in TOO_MANY:
            when = local_time(outcome.retry_at)
            add_error(form.number, TOO_MANY[outcome.result].format(when=when))
            status = 429
        elif outcome.result == "locked":
            add_error(form.pin_code, LOCKED)
            status = 429
        elif outcome.result == "expired":
            add_error(form.pin_code, EXPIRED_AGENCY if outcome.issued_by_agency else EXPIRED_MANAGER)
            status = 400
        else:
            # The same words whether the number is unknown or the PIN is wrong.
            add_error(form.number, NO_MATCH)
            status = 400
    elif form.errors:
        status = 400
    return render_template("enrol/start.html", form=form, phone=AGENCY_PHONE), status
