"""Renewal of a program's licence or registration.

start (the account's licences and when each can be renewed) -> begin (POST: the
draft) -> confirm (the account's details, read-only, and the program's
questions; autosaved) -> check (check your answers, declaration, submit) -> done.
Rules in domain.renewals; every route needs "file" (web.access.account_route). A
program that has no licence to renew answers a page that says so."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, session, url_for
from flask_login import current_user

from domain import drafts, renewals, requests, sending
from models import Account, Grant, ServiceRequest
from web import journeys
from web.access import account_route
from web.database import get_db, now
from web.dates import today
from web.forms import bind
from web.htmx import see_other

from .forms import DeclarationForm, confirm_form

bp = Blueprint("renewals", __name__, url_prefix="/renewals")

KIND = "renewal"


def _nothing_to_renew(account, grant):
    """The program has no licence to renew: the page that says so (after a POST, back to it)."""
    if request.method == "POST":
        return see_other(url_for(".start", number=account.number))
    return journeys.page("renewals/none.html", account, grant, current="summary")


def _licence_or_404(account, licence_id: int):
    licence = renewals.licence_of(get_db(), account.id, licence_id)
    if licence is None:
        abort(404)
    return licence


def _draft(account, licence):
    return drafts.current(
        get_db(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=renewals.subject(licence)
    )


def _licence_to_renew_now(account, licence_id: int):
    """The account's licence (404 for any other) when it can be renewed now; else the
    answer that sends the person where it can (raised, as abort raises a 404; see _elsewhere)."""
    licence = _licence_or_404(account, licence_id)
    elsewhere = _elsewhere(account, licence)
    if elsewhere is not None:
        abort(elsewhere)
    return licence


def _elsewhere(account, licence):
    """Where to send someone who cannot renew this licence now: to the renewal that
    already waits for a decision, or back to the list (saying when renewal opens)."""
    db = get_db()
    waiting = renewals.waiting(db, account.id).get(licence.id)
    if waiting is not None:
        return see_other(url_for(".done", number=account.number, reference=waiting.reference))
    window = renewals.window(licence, today(), renewals.window_days(db, account.program_code))
    if not window.can_renew:
        session["notice"] = (
            f"Licence {licence.licence_number} can be renewed from {renewals.long_day(window.opens_on)}."
        )
        return see_other(url_for(".start", number=account.number))
    return None


@bp.route("/<account:number>/")
@account_route("file", feature="renewal", not_offered=_nothing_to_renew)
def start(account: Account, grant: Grant):
    db, day = get_db(), today()
    days = renewals.window_days(db, account.program_code)
    waiting = renewals.waiting(db, account.id)
    rows = [
        {
            "licence": licence,
            "window": renewals.window(licence, day, days),
            "waiting": waiting.get(licence.id),
            "draft": _draft(account, licence),
        }
        for licence in renewals.licences(db, account.id)
    ]
    return journeys.page(
        "renewals/start.html",
        account,
        grant,
        rows=rows,
        window_days=days,
        long_day=renewals.long_day,
        current="summary",
    )


@bp.route("/<account:number>/<id:licence_id>/begin", methods=["POST"])
@account_route("file", feature="renewal", not_offered=_nothing_to_renew)
def begin(account: Account, grant: Grant, licence_id: int):
    licence = _licence_to_renew_now(account, licence_id)
    db = get_db()
    drafts.current_or_start(
        db, now(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=renewals.subject(licence)
    )
    db.commit()
    return see_other(url_for(".confirm", number=account.number, licence_id=licence.id))


def _confirm_page(account, grant, licence, form, draft, status: int = 200):
    answers = drafts.answers(draft)
    return journeys.page(
        "renewals/confirm.html",
        account,
        grant,
        licence=licence,
        form=form,
        draft=draft,
        questions=renewals.questions(account.program_code),
        said_no=answers.get(renewals.CONFIRMED) == "no" and status == 200,
        long_day=renewals.long_day,
        current="summary",
    ), status


@bp.route("/<account:number>/<id:licence_id>/", methods=["GET", "POST"])
@account_route("file", feature="renewal", not_offered=_nothing_to_renew)
def confirm(account: Account, grant: Grant, licence_id: int):
    licence = _licence_to_renew_now(account, licence_id)
    form_class = confirm_form(account.program_code)
    draft = _draft(account, licence)
    if request.method != "POST":
        form = bind(form_class, current_user.id, data=drafts.answers(draft))
        return _confirm_page(account, grant, licence, form, draft)

    form = bind(form_class, current_user.id)
    if not form.validate_on_submit():
        return _confirm_page(account, grant, licence, form, draft, 400)
    db = get_db()
    draft = draft or drafts.current_or_start(
        db, now(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=renewals.subject(licence)
    )
    drafts.save(draft, now(), form.answers())
    db.commit()
    if form.details_correct.data == "no":
        # Kept: the page now explains how to correct the details first.
        return see_other(url_for(".confirm", number=account.number, licence_id=licence.id) + "#details")
    return see_other(url_for(".check", number=account.number, licence_id=licence.id))


@bp.route("/<account:number>/<id:licence_id>/autosave", methods=["POST"])
@account_route("file", feature="renewal", not_offered=_nothing_to_renew)
def autosave(account: Account, grant: Grant, licence_id: int):
    licence = _licence_to_renew_now(account, licence_id)
    db = get_db()
    form = confirm_form(account.program_code)()
    draft = drafts.current_or_start(
        db, now(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=renewals.subject(licence)
    )
    drafts.save(draft, now(), form.answers())
    db.commit()
    return render_template("drafts/_status.html", draft=draft)


class RenewalCheck(journeys.Journey):
    """The check page of a licence's renewal: the answers, sent once. A resent
    declaration answers the confirmation it has, even after the licence moved on
    (a new expiry is a new subject); only then is it asked whether the licence can
    be renewed now."""

    blueprint, kinds, form_class, current = "renewals", (KIND,), DeclarationForm, "summary"
    permission, feature = "file", "renewal"
    check_rule = "/<account:number>/<id:licence_id>/check"

    def __init__(self, account, grant, licence_id: int):
        self.licence = _licence_or_404(account, licence_id)
        super().__init__(account, grant, subject=renewals.subject(self.licence))

    def owns(self, draft):
        return draft.kind == KIND and draft.subject.startswith(f"licence:{self.licence.id}:")

    def stop(self, draft):
        elsewhere = _elsewhere(self.account, self.licence)
        if elsewhere is not None:
            return elsewhere
        if draft is None or draft.subject != self.subject:
            return self._back()
        self.answers = drafts.answers(draft)
        return None if renewals.ready(self.account.program_code, self.answers) else self._back()

    def _back(self):
        return see_other(url_for(".confirm", number=self.account.number, licence_id=self.licence.id))

    def context(self, draft):
        return {
            "licence": self.licence,
            "rows": renewals.readable(self.account.program_code, self.answers),
            "contact": renewals.contact_text(self.account),
            "long_day": renewals.long_day,
        }

    def outgoing(self, draft, moment):
        return sending.Outgoing(
            summary=renewals.summary(self.licence),
            data=renewals.request_data(self.account, self.licence, self.answers),
            build=renewals.builder(self.account.id, self.licence.id),
        )

    def refused(self, refusal):
        """Someone sent a renewal of the licence a moment ago: its confirmation."""
        return _elsewhere(self.account, self.licence) or see_other(url_for(".start", number=self.account.number))


journeys.check_route(bp, RenewalCheck, not_offered=_nothing_to_renew)


@journeys.confirmation_route(bp, RenewalCheck)
def done(account: Account, grant: Grant, found: ServiceRequest):
    return journeys.page(
        "renewals/done.html", account, grant, found=found, statuses=requests.STATUS_WORDS, current="summary"
    )
