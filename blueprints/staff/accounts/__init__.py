"""Accounts as the agency sees them: find one, see it whole on one page, register
a new one, issue an invitation letter (an owner PIN on paper) or reissue the PIN,
and follow PINs across accounts. The rules live in domain.agency_view,
domain.registration, domain.letters and domain.pins."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user

from blueprints.enrol import AGENCY_PHONE
from domain import agency_view, details, documents, letters, mail, once, pins, registration, staff_search
from domain.accounts import format_number
from web.access import require_staff_role
from web.database import get_db, now
from web.dates import today
from web.details_fields import address_of
from web.errors import render_error
from web.forms import SelectChoice
from web.htmx import render, see_other
from web.links import link_base
from web.uploads import send_document

from ..lookups import account_or_404
from .forms import AccountSearchForm, RegisterAccountForm

bp = Blueprint("accounts", __name__, url_prefix="/accounts")
log = logging.getLogger("portal.staff.accounts")
SECTION = dict(staff_section="accounts")


# --- Finding -------------------------------------------------------------------------------


@bp.route("/")
def index():
    form = AccountSearchForm(request.args)
    results, status = None, 200
    if request.args:
        if form.validate():
            results = staff_search.find_accounts(get_db(), form.q.data or "")
        else:
            status = 400
    return render(
        "staff/accounts/index.html",
        "staff/accounts/_results.html",
        status,
        form=form,
        results=results,
        most=staff_search.MOST,
        **SECTION,
    )


@bp.route("/pins", endpoint="pins")
def pins_index():
    chosen = request.args.get("status") or None
    if chosen is not None and chosen not in pins.STATUSES:
        return render_template(
            "staff/accounts/pins.html",
            rows=[],
            counts=pins.counts(get_db(), now()),
            chosen=None,
            bad_status=True,
            statuses=pins.STATUSES,
            words=pins.STATUS_WORDS,
            most=pins.MOST_LISTED,
            staff_section="pins",
        ), 400
    db, moment = get_db(), now()
    return render_template(
        "staff/accounts/pins.html",
        rows=pins.listing(db, moment, chosen),
        counts=pins.counts(db, moment),
        chosen=chosen,
        bad_status=False,
        statuses=pins.STATUSES,
        words=pins.STATUS_WORDS,
        most=pins.MOST_LISTED,
        staff_section="pins",
    )


# --- The account --------------------------------------------------------------------------


@bp.route("/<number>")
def show(number: str):
    account = account_or_404(number)
    db = get_db()
    return render_template(
        "staff/accounts/show.html",
        file=agency_view.file_of(db, account, now(), today()),
        account=account,
        letter_key=once.new_key(),
        reissue_key=once.new_key(),
        **SECTION,
    )


@bp.route("/<number>/")
def show_with_slash(number: str):
    """`/staff/accounts/<number>/` (a typed or pasted address, as on the taxpayer side)
    is the account page too: a permanent redirect to the one address it has."""
    return redirect(url_for(".show", number=number), 308)


@bp.route("/<number>/documents/<int:document_id>")
def document(number: str, document_id: int):
    """A document of the account, as the taxpayer's own download sends it: an
    attachment, never shown as a page."""
    account = account_or_404(number)
    db = get_db()
    found = documents.find(db, account.id, document_id)
    if found is None:
        abort(404)
    return send_document(db, found)


# --- Registering ----------------------------------------------------------------------------


def _program_choices(db) -> list[SelectChoice]:
    programs = registration.programs(db, by_name=True)
    return [SelectChoice("", "Choose a program")] + [
        SelectChoice(p.code, f"{p.name} ({p.code}, numbers start {p.number_prefix})") for p in programs
    ]


def _register_page(form, status: int = 200):
    return render_template("staff/accounts/new.html", form=form, provinces=details.PROVINCES, **SECTION), status


@bp.route("/new", methods=["GET", "POST"])
def new():
    require_staff_role("officer")
    db = get_db()
    if request.method == "GET":
        form = RegisterAccountForm(formdata=None)
        form.program_code.choices = _program_choices(db)
        form.key.data = once.new_key()
        return _register_page(form)
    form = RegisterAccountForm()
    form.program_code.choices = _program_choices(db)
    if not once.valid(form.key.data):
        form.form_errors.append("This form has expired. Check the details and register the account again")
        form.key.data = once.new_key()
    if not form.validate() or form.form_errors:
        return _register_page(form, 400)
    fields = registration.AccountFields(
        program_code=form.program_code.data,
        legal_name=form.legal_name.data,
        operating_name=form.operating_name.data or None,
        mailing_address=address_of(form, "mailing"),
        physical_address=address_of(form, "physical"),
        contact_name=form.contact_name.data,
        contact_phone=form.contact_phone.data,
        contact_email=form.contact_email.data or None,
        opened_on=form.opened_on.data,
    )
    try:
        made = registration.register_account(
            db, now(), today(), fields=fields, actor_user_id=current_user.id, key=form.key.data
        )
    except registration.Refused as refused:
        db.rollback()
        (getattr(form, refused.field).errors if refused.field else form.form_errors).append(refused.message)
        return _register_page(form, 400)
    except once.AlreadySent:
        db.rollback()
        form.form_errors.append("This form was sent already. Open the register form again")
        form.key.data = once.new_key()
        return _register_page(form, 409)
    db.commit()
    if made.created:
        session["notice"] = (
            f"Registered account {format_number(made.account.number)} with "
            f"{len(made.periods)} filing period{'s' if len(made.periods) != 1 else ''}."
        )
    return see_other(url_for(".show", number=made.account.number))


# --- Invitation letters and PINs ------------------------------------------------------------


def _issue(number: str, reissue: bool):
    account = account_or_404(number)
    key = request.form.get("key", "")
    if not once.valid(key):
        return render_error(
            400, title="This button has expired", message="Go back to the account page and press the button again."
        )
    db = get_db()
    base = link_base()
    try:
        issued = letters.issue_invitation(
            db,
            now(),
            today(),
            account=account,
            staff_user_id=current_user.id,
            key=key,
            reissue=reissue,
            register_url=base + url_for("auth.register"),
            enrol_url=base + url_for("enrol.start"),
            agency_phone=AGENCY_PHONE,
            zone=current_app.config["SERVICE_TIMEZONE"],
        )
    except once.AlreadySent:
        db.rollback()
        return render_error(
            409,
            title="This button was pressed already",
            message="Go back to the account page to see its PINs and letters.",
        )
    db.commit()
    return see_other(url_for(".letter", number=account.number, item_id=issued.item.id))


@bp.route("/<number>/letters", methods=["POST"])
def letters_issue(number: str):
    return _issue(number, reissue=False)


@bp.route("/<number>/letters/reissue", methods=["POST"])
def letters_reissue(number: str):
    return _issue(number, reissue=True)


@bp.route("/<number>/letters/<int:item_id>")
def letter(number: str, item_id: int):
    account = account_or_404(number)
    item = mail.get(get_db(), item_id)
    if item is None or item.account_id != account.id or item.kind != letters.KIND:
        abort(404)
    return render_template("staff/accounts/letter.html", account=account, item=item, **SECTION)
