"""Updates by email: choose the programs to hear about, confirm by the emailed
link, and stop them from the link in any update, all without signing in
(domain.subscriptions). A signed-in person's own confirmed address needs no
emailed link. Every page answers the same whether or not an address is known."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, session, url_for
from flask_login import current_user

from domain import registration, subscriptions, tokens
from web.access import access, is_one_click
from web.database import get_db, now
from web.forms import EmptyForm, SelectChoice, add_error
from web.htmx import see_other
from web.limits import client_held_back, may_email, try_again_after
from web.mailer import kick_outbox, queue_email
from web.secret_key import secret_key

from .forms import SubscribeForm

bp = Blueprint("subscriptions", __name__, url_prefix="/subscriptions")


def _link(endpoint: str, **values) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for(endpoint, **values)


def _own_address(email: str) -> bool:
    """Whether the address is the signed-in person's own, already confirmed."""
    user = current_user
    return bool(
        user.is_authenticated
        and user.email_verified_at is not None
        and subscriptions.normalise(user.email) == subscriptions.normalise(email)
    )


def _form(db) -> tuple[SubscribeForm, set[str]]:
    """The form with the programs to choose from, and their codes."""
    programs = registration.programs(db, by_name=True)
    form = SubscribeForm()
    form.programs.choices = [SelectChoice(p.code, p.name) for p in programs]
    if not form.is_submitted() and current_user.is_authenticated:
        form.email.data = current_user.email
    return form, {p.code for p in programs}


def _send_confirmation(db, moment, email: str, waiting) -> None:
    names = ", ".join(sorted(row.program_code for row in waiting))
    token = subscriptions.confirm_token(secret_key(), email, waiting, moment)
    queue_email(
        db,
        moment,
        email,
        "Confirm your email updates",
        "Someone asked for email updates from Tax and Revenue Administration to be sent to this address "
        f"(programs: {names}).\n\nTo start them, open this link and confirm:\n\n"
        f"{_link('.confirm', token=token)}\n\nThe link works for 7 days. If you did not ask for this, you need "
        "do nothing: you will get no updates.\n",
    )


@bp.route("/", methods=["GET", "POST"])
@access(public=True)
def start():
    db = get_db()
    form, offered = _form(db)
    if not form.is_submitted():
        return render_template("subscriptions/start.html", form=form)
    valid = form.validate_on_submit()
    chosen = [code for code in form.programs.data or [] if code in offered]
    if not chosen or len(chosen) != len(form.programs.data or []):
        add_error(form.programs, "Choose at least one program")
        valid = False
    if not valid:
        return render_template("subscriptions/start.html", form=form), 400
    email, own = form.email.data or "", _own_address(form.email.data or "")
    if not own:
        held_back = client_held_back()
        if held_back is not None:
            db.commit()  # let go of the limit's lock (domain.throttle)
            add_error(form.email, try_again_after(held_back))
            return render_template("subscriptions/start.html", form=form), 429
    moment = now()
    user_id = current_user.id if current_user.is_authenticated else None
    waiting = subscriptions.subscribe(db, moment, email, chosen, user_id=user_id, confirmed=own)
    if waiting and may_email(email):
        _send_confirmation(db, moment, email, waiting)
    db.commit()
    kick_outbox()
    if own:
        session["notice"] = "You will get email updates about the programs you chose."
        return see_other(url_for(".start"))
    return see_other(url_for(".check_email"))


@bp.route("/check-email")
@access(public=True)
def check_email():
    return render_template("subscriptions/check_email.html")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@access(public=True)
def confirm(token: str):
    """The emailed link: the page asks, its button confirms (opening a link changes nothing)."""
    db, moment = get_db(), now()
    try:
        waiting = subscriptions.waiting_for(db, secret_key(), token, moment)
    except tokens.TokenError as error:
        return render_template("subscriptions/link_problem.html", problem=error.reason), 400
    form = EmptyForm()
    if waiting and form.validate_on_submit():
        subscriptions.confirm(db, moment, waiting)
        db.commit()
        session["notice"] = "Your email updates have started."
        return see_other(url_for(".start"))
    return render_template("subscriptions/confirm.html", form=form, waiting=waiting, names=_names(db))


def _names(db) -> dict[str, str]:
    return {p.code: p.name for p in registration.programs(db)}


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@access(public=True, one_click=True)
def unsubscribe(token: str):
    """The link in every update: the page asks, its button stops that one program's
    updates to that one address. A mail provider's one-click POST (RFC 8058, the
    List-Unsubscribe-Post header) stops them at once and is answered 200: the
    signed token names the address and the program, and nothing else changes."""
    db, moment = get_db(), now()
    try:
        row = subscriptions.for_unsubscribe(db, secret_key(), token, moment)
    except tokens.TokenError as error:
        return render_template("subscriptions/link_problem.html", problem=error.reason), 400
    if row is None:
        return render_template("subscriptions/link_problem.html", problem="invalid"), 400
    form = EmptyForm()
    one_click = request.method == "POST" and is_one_click()
    if row.ended_at is None and (one_click or form.validate_on_submit()):
        subscriptions.end(db, moment, row)
        db.commit()
        if not one_click:  # a mail provider follows no redirect: it is answered here
            return see_other(url_for(".unsubscribe", token=token))
    return render_template("subscriptions/unsubscribe.html", form=form, row=row, program=_names(db)[row.program_code])
