"""Manage access: an account's managers see who can use it, invite people with a
single-use PIN, change or remove their permissions, reissue lost PINs, record a
review, and read the access history. The rules are in domain.access; every
account route needs "manage_access" (web.access.account_route). `/access/reviews`
lists the reviews due on the accounts the signed-in person manages."""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, render_template, request, session, url_for
from flask_login import current_user

from domain import access
from domain.access import AccessRefused
from domain.accounts import format_number
from domain.grants import ROLE_PRESETS
from models import Account, Grant, InvitationPin, User
from web.access import account_route, configured_caps, one_button_change, refused_change
from web.database import get_db, now
from web.dates import today
from web.forms import EmptyForm, bind
from web.htmx import see_other
from web.mailer import kick_outbox, queue_email

from .forms import ChangeForm, InviteForm

bp = Blueprint("access", __name__, url_prefix="/access")


def _show_pin_once(row: InvitationPin, pin: str, emailed: bool = False) -> None:
    # Kept in the server-side session (never the cookie) for the one page that shows it.
    session["shown_pin"] = {"id": row.id, "pin": pin, "emailed": emailed}


@bp.route("/<account:number>/")
@account_route("manage_access")
def manage(account: Account, grant: Grant):
    db, moment = get_db(), now()
    pins = access.outstanding_pins(db, account.id)
    return render_template(
        "access/manage.html",
        account=account,
        grant=grant,
        current="access",
        people=access.people_with_access(db, account.id),
        removed=access.people_with_access(db, account.id, live=False),
        pins=[(pin, access.pin_status(pin, moment)) for pin in pins],
        review_due_on=access.review_due_on(
            account, current_app.config["ACCESS_REVIEW_MONTHS"], grant.granted_at.date()
        ),
        role_labels=access.ROLE_LABELS,
        permission_labels=access.PERMISSION_LABELS,
        review_form=EmptyForm(),
        today=moment.date(),
    )


@bp.route("/reviews")
def reviews():
    """Every account whose access review is due for the signed-in manager, one line each:
    the home page's reminder is one line that links here, however many are due."""
    due = access.accounts_due_for_review(get_db(), current_user.id, today(), current_app.config["ACCESS_REVIEW_MONTHS"])
    return render_template("access/reviews.html", reviews_due=due)


@bp.route("/<account:number>/add", methods=["GET", "POST"])
@account_route("manage_access")
def invite(account: Account, grant: Grant):
    form = bind(InviteForm, current_user.id)
    status = 200
    if form.validate_on_submit():
        db, moment = get_db(), now()
        try:
            row, pin = access.invite(
                db,
                moment,
                account=account,
                actor=grant,
                name=form.name.data,
                email=form.email.data,
                role=form.role.data,
                permissions=form.permissions.data or [],
                valid_days=current_app.config["DELEGATE_PIN_VALID_DAYS"],
                caps=configured_caps(),
            )
        except AccessRefused as error:
            refused_change(account, grant, form, error)
            status = 400
        else:
            if form.send_email.data and row.invitee_email:
                _email_pin(db, moment, row, pin, row.invitee_email)
            db.commit()
            if form.send_email.data:
                kick_outbox()
            _show_pin_once(row, pin, emailed=bool(form.send_email.data and row.invitee_email))
            return see_other(url_for(".pin", number=account.number, pin_id=row.id))
    elif form.errors:
        status = 400
    return render_template(
        "access/invite.html", account=account, grant=grant, form=form, current="access", presets=_presets()
    ), status


def _presets() -> dict[str, str]:
    return {role: " ".join(ROLE_PRESETS[role]) for role in access.INVITABLE_ROLES}


def _email_pin(db, moment, row: InvitationPin, pin: str, address: str) -> None:
    """The PIN alone: no account number or name, so the email is no use to whoever
    else reads it. The manager passes on the account number themselves."""
    days = (row.expires_at - moment).days
    queue_email(
        db,
        moment,
        address,
        "Your PIN for TRA Client Self-Service",
        f"Hello {row.invitee_name},\n\n"
        f"Someone who manages a tax account has given you access to it. Your PIN is:\n\n    {pin}\n\n"
        f"It works once and expires in {days} days. To use it, sign in to TRA Client Self-Service "
        f'(or register), choose "Link a tax account", and enter the account number the person who '
        f"invited you gives you, with this PIN.\n\n"
        "We never ask for your password or PIN by email or phone. If you did not expect this, "
        "you can ignore it.\n",
    )


def _pin_or_404(account, pin_id: int) -> InvitationPin:
    pin = get_db().get(InvitationPin, pin_id)
    if pin is None or pin.account_id != account.id:
        abort(404)
    return pin


@bp.route("/<account:number>/pins/<id:pin_id>")
@account_route("manage_access")
def pin(account: Account, grant: Grant, pin_id: int):
    row = _pin_or_404(account, pin_id)
    shown = session.get("shown_pin")
    plain, emailed = None, False
    if shown and shown.get("id") == row.id:
        shown = session.pop("shown_pin")
        plain, emailed = shown["pin"], shown.get("emailed", False)
    return render_template(
        "access/pin.html",
        account=account,
        grant=grant,
        row=row,
        plain=plain,
        emailed=emailed,
        status=access.pin_status(row, now()),
        role_labels=access.ROLE_LABELS,
        permission_labels=access.PERMISSION_LABELS,
        form=EmptyForm(),
        current="access",
    )


@bp.route("/<account:number>/pins/<id:pin_id>/reissue", methods=["POST"])
@account_route("manage_access")
def reissue(account: Account, grant: Grant, pin_id: int):
    row = _pin_or_404(account, pin_id)
    done, made = one_button_change(
        account,
        grant,
        lambda db: access.reissue_pin(
            db, now(), account=account, actor=grant, pin=row, valid_days=current_app.config["DELEGATE_PIN_VALID_DAYS"]
        ),
    )
    if not done or made is None:  # made is None only when not done
        return see_other(url_for(".manage", number=account.number))
    new_row, plain = made
    _show_pin_once(new_row, plain)
    return see_other(url_for(".pin", number=account.number, pin_id=new_row.id))


@bp.route("/<account:number>/pins/<id:pin_id>/withdraw", methods=["POST"])
@account_route("manage_access")
def withdraw(account: Account, grant: Grant, pin_id: int):
    row = _pin_or_404(account, pin_id)
    done, _ = one_button_change(
        account, grant, lambda db: access.withdraw_pin(db, now(), account=account, actor=grant, pin=row)
    )
    if done:
        session["notice"] = f"The PIN for {row.invitee_name or 'this person'} no longer works."
    return see_other(url_for(".manage", number=account.number))


def _person_or_404(account: Account, grant_id: int):
    db = get_db()
    target = db.get(Grant, grant_id)
    if target is None or target.account_id != account.id or target.revoked_at is not None:
        abort(404)
    return target, db.get(User, target.user_id)


@bp.route("/<account:number>/people/<id:grant_id>", methods=["GET", "POST"])
@account_route("manage_access")
def person(account: Account, grant: Grant, grant_id: int):
    target, person_user = _person_or_404(account, grant_id)
    form = bind(ChangeForm, current_user.id, data={"role": target.role, "permissions": target.permissions.split(",")})
    status = 200
    if form.validate_on_submit():
        db = get_db()
        try:
            access.change(
                db,
                now(),
                account=account,
                actor=grant,
                target=target,
                role=form.role.data,
                permissions=form.permissions.data or [],
                caps=configured_caps(),
            )
        except AccessRefused as error:
            refused_change(account, grant, form, error)
            status = 400
        else:
            db.commit()
            session["notice"] = f"{person_user.name}'s access has changed. It applies from their next click."
            return see_other(url_for(".manage", number=account.number))
    elif form.errors:
        status = 400
    return render_template(
        "access/person.html",
        account=account,
        grant=grant,
        form=form,
        target=target,
        person=person_user,
        is_self=target.id == grant.id,
        presets=_presets(),
        role_labels=access.ROLE_LABELS,
        current="access",
    ), status


@bp.route("/<account:number>/people/<id:grant_id>/remove", methods=["GET", "POST"])
@account_route("manage_access")
def remove(account: Account, grant: Grant, grant_id: int):
    target, person_user = _person_or_404(account, grant_id)
    form = EmptyForm()
    status = 200
    if form.validate_on_submit():
        db = get_db()
        try:
            access.deactivate(db, now(), account=account, actor=grant, target=target)
        except AccessRefused as error:
            refused_change(account, grant, form, error)
            status = 400
        else:
            db.commit()
            session["notice"] = f"{person_user.name} can no longer use this account."
            return see_other(url_for(".manage", number=account.number))
    elif request.method == "POST":
        status = 400
    return render_template(
        "access/remove.html",
        account=account,
        grant=grant,
        form=form,
        target=target,
        person=person_user,
        role_labels=access.ROLE_LABELS,
        current="access",
    ), status


@bp.route("/<account:number>/reviewed", methods=["POST"])
@account_route("manage_access")
def reviewed(account: Account, grant: Grant):
    one_button_change(account, grant, lambda db: access.record_review(db, now(), account=account, actor=grant))
    session["notice"] = (
        f"Thank you. We have recorded that you reviewed who can use account {format_number(account.number)}."
    )
    return see_other(url_for(".manage", number=account.number))


@bp.route("/<account:number>/history")
@account_route("manage_access")
def history(account: Account, grant: Grant):
    events = [
        (event, actor, subject, json.loads(event.detail or "{}"))
        for event, actor, subject in access.history(get_db(), account.id)
    ]
    return render_template(
        "access/history.html",
        account=account,
        grant=grant,
        events=events,
        role_labels=access.ROLE_LABELS,
        current="access",
    )
