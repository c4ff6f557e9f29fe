"""Enrolment: link an account to your sign-in with the account number and the PIN
from an invitation letter (the rules are in domain.enrolment), and, for someone
without a letter, ask for one (domain.enrolment_requests): open to people signed
out, with the same answer whether or not the details match an account."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, session, url_for

from domain import enrolment, enrolment_requests, grants, overview
from domain.accounts import format_number, normalise_number
from web.access import access
from web.database import get_db, now
from web.dates import today
from web.forms import add_error, bind
from web.htmx import see_other
from web.limits import try_again_after
from web.mailer import kick_outbox
from web.secret_key import secret_key
from web.sessions import signed_in_user
from web.templating import local_time

from .forms import AskForm, EnrolForm

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
    user = signed_in_user()
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


# --- Asking for an invitation letter ------------------------------------------------------


def _asked(form: AskForm) -> enrolment_requests.Asked:
    """The form's answers (validated: the required ones hold text)."""
    number = normalise_number(form.account_number.data or "")
    return enrolment_requests.Asked(
        account_number=number or None,
        legal_name=None if number else form.legal_name.data,
        business_number=None if number else form.business_number.data,
        business_address=None if number else form.business_address.data,
        name=form.name.data or "",
        email=(form.email.data or "").lower(),
        phone=form.phone.data or "",
        role=form.role.data or "",
    )


@bp.route("/ask", methods=["GET", "POST"])
@access(public=True)
def ask():
    """Ask for an invitation letter. Nothing is looked up here, so the answer and the
    time it takes are the same whether or not an account matches."""
    form = AskForm()
    if not form.validate_on_submit():
        status = 400 if form.errors else 200
        return render_template("enrol/ask.html", form=form, phone=AGENCY_PHONE), status
    db, moment, asked = get_db(), now(), _asked(form)
    when = enrolment_requests.held_back(
        db,
        moment,
        secret_key(),
        client=request.remote_addr or "unknown",
        email=asked.email,
        limits=enrolment_requests.Limits(
            per_client_per_day=current_app.config["LETTER_REQUESTS_PER_CLIENT_PER_DAY"],
            per_email_per_day=current_app.config["LETTER_REQUESTS_PER_EMAIL_PER_DAY"],
        ),
    )
    if when is not None:
        db.commit()  # keep the count, and let go of the limit's lock (domain.throttle)
        add_error(form.email, try_again_after(when, "You have asked for too many letters today"))
        return render_template("enrol/ask.html", form=form, phone=AGENCY_PHONE), 429
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    enrolment_requests.submit(db, moment, asked, enrol_url=base + url_for(".start"))
    db.commit()
    kick_outbox()
    return see_other(url_for(".asked"))


@bp.route("/asked")
@access(public=True)
def asked():
    return render_template("enrol/asked.html", days=enrolment_requests.BUSINESS_DAYS_TO_WAIT, phone=AGENCY_PHONE)
