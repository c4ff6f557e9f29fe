"""Direct deposit: Canadian banking details for refunds, shown masked; changing them needs a fresh password.

Journey: show -> change (the three numbers, kept in the person's draft) -> check
(masked summary, declaration, password) -> done. Rules in domain.direct_deposit.
Every route needs "direct_deposit", on an account whose program pays refunds by
direct deposit (web.access.account_route).

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

from flask import Blueprint, current_app, request, session, url_for
from flask_login import current_user

from domain import direct_deposit, drafts, requests
from models import Account, Grant, ServiceRequest
from web import credentials, journeys
from web.access import account_route
from web.database import get_db, now
from web.dates import today
from web.forms import add_error, bind
from web.htmx import see_other
from web.mailer import kick_outbox
from web.sessions import signed_in_user

from .forms import BankForm, CheckForm

bp = Blueprint("direct_deposit", __name__, url_prefix="/direct-deposit")


def _not_offered(account, grant):
    """The program pays no refunds by direct deposit: the page that says so."""
    return journeys.page("direct_deposit/not_offered.html", account, grant)


@bp.route("/<account:number>/")
@account_route("direct_deposit", feature="direct_deposit", not_offered=_not_offered)
def show(account: Account, grant: Grant):
    db = get_db()
    rows = direct_deposit.history(db, account.id)
    names = direct_deposit.names_of(db, [row.set_by_user_id for row in rows])
    draft = direct_deposit.open_draft(db, account_id=account.id, user_id=current_user.id)
    pending, _errors = direct_deposit.validate(drafts.answers(draft))
    return journeys.page(
        "direct_deposit/show.html",
        account,
        grant,
        current_row=rows[0] if rows and rows[0].ended_at is None else None,
        earlier=[row for row in rows if row.ended_at is not None],
        names=names,
        pending=pending,
        mask=direct_deposit.mask,
    )


@bp.route("/<account:number>/change", methods=["GET", "POST"])
@account_route("direct_deposit", feature="direct_deposit", not_offered=_not_offered)
def change(account: Account, grant: Grant):
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
            return see_other(url_for(".check", number=account.number))
        for name, message in errors.items():  # not reached: the form runs the same rules
            add_error(getattr(form, name), message)
    if form.errors:
        status = 400
    return journeys.page("direct_deposit/change.html", account, grant, form=form), status


class DirectDepositCheck(journeys.Journey):
    """The check page of new bank details: masked, declared and confirmed with the
    person's password (and security code), on the very POST that sends them."""

    blueprint, kinds, form_class = "direct_deposit", (direct_deposit.KIND,), CheckForm
    permission, feature = "direct_deposit", "direct_deposit"

    @property
    def user(self):
        return signed_in_user()

    def stop(self, draft):
        self.details, _errors = direct_deposit.validate(drafts.answers(draft))
        if draft is not None and self.details is not None:
            return None
        if draft is None and request.method == "POST":
            session["notice"] = "Enter the bank details again: we could not find the ones you were checking."
        return see_other(url_for(".change", number=self.account.number))

    def held_back(self, form, valid):
        if not valid:
            return 400
        # Checked last, after everything else is right, so a wrong tick does not cost a try.
        status, _factor = credentials.check_password_and_code(self.user, form.password, form.code)
        return None if status == 200 else status

    def context(self, draft):
        return {"details": self.details, "user": self.user}

    def outgoing(self, draft, moment):
        if self.details is None:  # stop() sends the person back to the form without them
            raise ValueError("no bank details to send")
        return direct_deposit.outgoing(
            moment,
            today(),
            account=self.account,
            user=self.user,
            details=self.details,
            zone=current_app.config["SERVICE_TIMEZONE"],
        )

    def after_commit(self, submitted):
        kick_outbox()


journeys.check_route(bp, DirectDepositCheck, not_offered=_not_offered)


@journeys.confirmation_route(bp, DirectDepositCheck, not_offered=_not_offered)
def done(account: Account, grant: Grant, found: ServiceRequest):
    return journeys.page(
        "direct_deposit/done.html", account, grant, service_request=found, answers=requests.answers(found)
    )
