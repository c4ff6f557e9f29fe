"""Direct deposit: Canadian banking details for refunds, shown masked; changing them needs a fresh password.

Journey: show -> change (the three numbers, kept in the person's draft) -> check
(masked summary, declaration, password) -> done. Rules in domain.direct_deposit.

Fresh confirmation: the check step asks for the person's password (and their
security code when they use two-step sign-in) on the very POST that changes the
details, checked by web.credentials under the sign-in limits (five wrong
passwords in 15 minutes lock it, as at sign-in). We do not reuse the hourly
re-confirmation (auth.confirm): it is a gate for every page, it proves only that
the person signed in within the hour, and its `next` brings them back to a GET,
so "confirmed within 5 minutes" would be a second clock to keep beside it, and
the declaration they had ticked would be lost on the way. A password on the
submission itself binds the proof to this one change."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, session, url_for
from flask_login import current_user

from domain import direct_deposit, drafts, requests
from models import ServiceRequest
from web import credentials
from web.account_access import account_or_404
from web.database import get_db, now
from web.dates import today
from web.forms import bind
from web.htmx import see_other
from web.mailer import kick_outbox

from .forms import BankForm, CheckForm

bp = Blueprint("direct_deposit", __name__, url_prefix="/direct-deposit")

PERMISSION = direct_deposit.PERMISSION


def _not_offered(account, grant):
    return render_template("direct_deposit/not_offered.html", account=account, grant=grant, current=None)


def _account(number: str):
    """(account, grant, page): page is the explanation when the program pays no refunds by direct deposit."""
    account, grant = account_or_404(number, PERMISSION)
    if not account.program.allows(direct_deposit.FUNCTION):
        return account, grant, _not_offered(account, grant)
    return account, grant, None


@bp.route("/<number>/")
def show(number: str):
    account, grant, page = _account(number)
    if page is not None:
        return page
    db = get_db()
    rows = direct_deposit.history(db, account.id)
    names = direct_deposit.names_of(db, [row.set_by_user_id for row in rows])
    draft = direct_deposit.open_draft(db, account_id=account.id, user_id=current_user.id)
    pending, _errors = direct_deposit.validate(drafts.answers(draft))
    return render_template(
        "direct_deposit/show.html",
        account=account,
        grant=grant,
        current=None,
        current_row=rows[0] if rows and rows[0].ended_at is None else None,
        earlier=[row for row in rows if row.ended_at is not None],
        names=names,
        pending=pending,
        mask=direct_deposit.mask,
    )


@bp.route("/<number>/change", methods=["GET", "POST"])
def change(number: str):
    account, grant, page = _account(number)
    if page is not None:
        return page
    db = get_db()
    form = bind(BankForm, current_user.id)
    if request.method == "GET" and not form.restored:
        # Coming back from "Check your answers": the person's own draft, as typed.
        draft = direct_deposit.open_draft(db, account_id=account.id, user_id=current_user.id)
        for name, value in drafts.answers(draft).items():
            if name in direct_deposit.FIELDS and isinstance(value, str):
                getattr(form, name).data = value
    status = 200
    if form.validate_on_submit():
        details, errors = direct_deposit.validate(form.answers())
        if details is not None:
            direct_deposit.keep_in_draft(db, now(), account_id=account.id, user_id=current_user.id, details=details)
            db.commit()
            return see_other(url_for(".check", number=number))
        for name, message in errors.items():  # not reached: the form runs the same rules
            getattr(form, name).errors.append(message)
    if form.errors:
        status = 400
    return render_template("direct_deposit/change.html", account=account, grant=grant, form=form, current=None), status


def _done(number: str, service_request: ServiceRequest):
    return see_other(url_for(".done", number=number, change_reference=service_request.reference))


@bp.route("/<number>/check", methods=["GET", "POST"])
def check(number: str):
    account, grant, page = _account(number)
    if page is not None:
        return page
    db = get_db()
    user = current_user._get_current_object()
    form = CheckForm()
    if request.method == "POST":
        token = form.token.data if isinstance(form.token.data, str) else ""
        draft = drafts.by_token(db, account_id=account.id, user_id=user.id, token=token)
        if draft is None:
            # A retry after the draft was purged still answers its confirmation.
            earlier = requests.by_key(db, token) if token and len(token) <= 64 else None
            if (
                earlier is not None
                and earlier.account_id == account.id
                and earlier.kind == direct_deposit.KIND
                and earlier.submitted_by_user_id == user.id
            ):
                return _done(number, earlier)
            session["notice"] = "Enter the bank details again: we could not find the ones you were checking."
            return see_other(url_for(".change", number=number))
        if draft.submitted_request_id is not None:
            # A double click, a retry, a second tab: the same change, the same confirmation.
            submitted = db.get(ServiceRequest, draft.submitted_request_id)
            if submitted is not None:
                return _done(number, submitted)
            return see_other(url_for(".show", number=number))
    else:
        draft = direct_deposit.open_draft(db, account_id=account.id, user_id=user.id)
    details, _errors = direct_deposit.validate(drafts.answers(draft))
    if draft is None or details is None:
        return see_other(url_for(".change", number=number))
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            status = 400
        else:
            # Checked last, after everything else is right, so a wrong tick does not cost a try.
            status, _factor = credentials.check_password_and_code(user, form.password, form.code)
            if status == 200:
                moment = now()
                submitted = direct_deposit.submit(
                    db,
                    moment,
                    today(),
                    account=account,
                    user=user,
                    draft=draft,
                    details=details,
                    zone=current_app.config["SERVICE_TIMEZONE"],
                )
                db.commit()
                kick_outbox()
                return _done(number, submitted.request)
    form.token.data = draft.token
    return render_template(
        "direct_deposit/check.html", account=account, grant=grant, form=form, current=None, details=details, user=user
    ), status


# The argument is not called "reference": the delegation test fills every
# feature's URL arguments from one table, where "reference" is a return's.
@bp.route("/<number>/done/<change_reference>")
def done(number: str, change_reference: str):
    account, grant, page = _account(number)
    if page is not None:
        return page
    found = requests.find(get_db(), account.id, change_reference)
    if found is None or found.kind != direct_deposit.KIND:
        abort(404)
    return render_template(
        "direct_deposit/done.html",
        account=account,
        grant=grant,
        current=None,
        service_request=found,
        answers=requests.answers(found),
    )
