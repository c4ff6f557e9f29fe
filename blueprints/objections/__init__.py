"""Notices of objection against a notice of assessment or reassessment, within the program's deadline.

Every route needs "objections_waivers" and, but the confirmation, a program
that takes objections online (web.access.account_route); the return is looked up
within the account and must have a notice (404 otherwise). Rules (the deadline, the answers, what is sent) are in
domain.objections. The answers live in a draft until the check page sends it
once (web.journeys, domain.sending), so a second click answers the same
confirmation."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from domain import drafts, objections, requests, sending
from domain.accounts import format_money
from domain.returns import NOTICE_TITLES, long_day
from models import Account, Grant, ServiceRequest
from web import journeys
from web.access import account_route
from web.database import get_db, now
from web.dates import today
from web.errors import Answer
from web.forms import bind
from web.htmx import see_other

from .forms import CheckForm, ObjectionForm

bp = Blueprint("objections", __name__, url_prefix="/objections")

KIND = objections.KIND


def _status_for_refusal() -> int:
    return 200 if request.method == "GET" else 400


def _not_offered(account, grant):
    return journeys.page(
        "objections/not_offered.html", account, grant, days=account.program.objection_days
    ), _status_for_refusal()


def _notice_or_404(account, return_id: int):
    tax_return = objections.notice_return(get_db(), account.id, return_id)
    if tax_return is None:
        abort(404)
    return tax_return


def _notice(account, tax_return) -> dict:
    """What every page of the journey says about the notice."""
    days = account.program.objection_days
    return {
        "tax_return": tax_return,
        "notice_title": NOTICE_TITLES[tax_return.notice_kind],
        "period": objections.period_of(get_db(), account, tax_return),
        "days": days,
        "deadline": objections.deadline(tax_return.notice_date, days),
    }


def _is_open(account, tax_return) -> bool:
    return objections.is_open(tax_return.notice_date, account.program.objection_days, today())


def _closed(account, grant, tax_return):
    """Why the notice can no longer be objected to online, and what to do instead."""
    notice = _notice(account, tax_return)
    extension_until = objections.one_year_after(notice["deadline"])
    filed = objections.filed_against(get_db(), account.id).get(tax_return.id, [])
    waiver_url = None
    if (
        "waivers.start" in current_app.view_functions
        and account.program.allows("waiver")
        and grant.allows("objections_waivers")
    ):
        waiver_url = url_for("waivers.start", number=account.number)
    return journeys.page(
        "objections/closed.html",
        account,
        grant,
        extension_until=extension_until,
        extension_open=today() <= extension_until,
        filed=[f for f in filed if f.notice_date == tax_return.notice_date.isoformat()],
        waiver_url=waiver_url,
        **notice,
    ), _status_for_refusal()


def _current_draft(account, tax_return):
    return drafts.current(
        get_db(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=objections.subject(tax_return)
    )


def _open_notice_or_closed(account, grant, return_id: int):
    """The return with a notice still open to objection: 404 for no such notice, and
    past the deadline the closed page that explains it (raised, as abort raises a 404)."""
    tax_return = _notice_or_404(account, return_id)
    if not _is_open(account, tax_return):
        raise Answer(_closed(account, grant, tax_return))
    return tax_return


def _upload_url(account, draft, back: str) -> str | None:
    if draft is None or "documents.upload" not in current_app.view_functions:
        return None
    return url_for("documents.upload", number=account.number, draft=draft.token, next=back)


def _form_page(account, grant, tax_return, form, draft, status: int = 200):
    return journeys.page(
        "objections/form.html", account, grant, form=form, draft=draft, **_notice(account, tax_return)
    ), status


# --- The account's notices -------------------------------------------------------------------


@bp.route("/<account:number>/")
@account_route("objections_waivers", feature="objection", not_offered=_not_offered)
def start(account: Account, grant: Grant):
    db = get_db()
    rows = objections.notices_of(db, account, today())
    open_subjects = {
        d.subject for d in drafts.open_drafts(db, account_id=account.id, user_id=current_user.id) if d.kind == KIND
    }
    return journeys.page(
        "objections/start.html",
        account,
        grant,
        rows=rows,
        days=account.program.objection_days,
        open_subjects=open_subjects,
        today=today(),
    )


@bp.route("/<account:number>/<id:return_id>/begin", methods=["POST"])
@account_route("objections_waivers", feature="objection", not_offered=_not_offered)
def begin(account: Account, grant: Grant, return_id: int):
    tax_return = _open_notice_or_closed(account, grant, return_id)
    db = get_db()
    drafts.current_or_start(
        db, now(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=objections.subject(tax_return)
    )
    db.commit()
    return see_other(url_for(".form", number=account.number, return_id=return_id))


# --- The objection ------------------------------------------------------------------------


@bp.route("/<account:number>/<id:return_id>/", methods=["GET", "POST"])
@account_route("objections_waivers", feature="objection", not_offered=_not_offered)
def form(account: Account, grant: Grant, return_id: int):
    tax_return = _open_notice_or_closed(account, grant, return_id)
    db = get_db()
    draft = _current_draft(account, tax_return)
    if request.method == "GET":
        page_form = bind(ObjectionForm, current_user.id, data=drafts.answers(draft))
    else:
        page_form = ObjectionForm()
    if page_form.validate_on_submit():
        answers = {name: page_form[name].data or "" for name in objections.FIELDS}
        draft = draft or drafts.start(
            db, now(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=objections.subject(tax_return)
        )
        if drafts.save(draft, now(), answers):
            db.commit()
            return see_other(url_for(".documents", number=account.number, return_id=return_id))
        db.rollback()
        draft = _current_draft(account, tax_return)
        page_form.form_errors.append("Your answers are too long for us to keep. Shorten them and try again.")
    status = 400 if page_form.errors else 200
    return _form_page(account, grant, tax_return, page_form, draft, status)


@bp.route("/<account:number>/<id:return_id>/autosave", methods=["POST"])
@account_route("objections_waivers", feature="objection", not_offered=_not_offered)
def autosave(account: Account, grant: Grant, return_id: int):
    """What the person has typed so far, kept without checking it (htmx, after a pause)."""
    tax_return = _notice_or_404(account, return_id)
    db = get_db()
    if not _is_open(account, tax_return):
        return render_template("drafts/_status.html", draft=_current_draft(account, tax_return)), 400
    draft = drafts.current_or_start(
        db, now(), account_id=account.id, user_id=current_user.id, kind=KIND, subject=objections.subject(tax_return)
    )
    drafts.save(draft, now(), objections.clean_for_draft(request.form))
    db.commit()
    return render_template("drafts/_status.html", draft=draft)


@bp.route("/<account:number>/<id:return_id>/documents")
@account_route("objections_waivers", feature="objection", not_offered=_not_offered)
def documents(account: Account, grant: Grant, return_id: int):
    tax_return = _open_notice_or_closed(account, grant, return_id)
    draft = _current_draft(account, tax_return)
    if draft is None:
        return redirect(url_for(".form", number=account.number, return_id=return_id), 303)
    back = url_for(".documents", number=account.number, return_id=return_id)
    return journeys.page(
        "objections/documents.html",
        account,
        grant,
        draft=draft,
        documents=objections.documents_of(get_db(), draft.id),
        upload_url=_upload_url(account, draft, back),
        **_notice(account, tax_return),
    )


def _check_rows(account, tax_return, answers: dict, documents) -> list:
    notice = _notice(account, tax_return)
    form_url = url_for(".form", number=account.number, return_id=tax_return.id)
    cents, _message = objections.parse_amount(answers.get("amount") or "")
    return [
        ("Notice", f"{notice['notice_title']} dated {long_day(tax_return.notice_date)}", None, None),
        ("Period", notice["period"], None, None),
        (objections.QUESTIONS["reasons"], answers.get("reasons", ""), form_url + "#reasons", "why you disagree"),
        (objections.QUESTIONS["facts"], answers.get("facts", ""), form_url + "#facts", "the facts"),
        (objections.QUESTIONS["relief"], answers.get("relief", ""), form_url + "#relief", "what you want us to change"),
        (
            objections.QUESTIONS["amount"],
            format_money(cents) if cents is not None else "",
            form_url + "#amount",
            "the amount",
        ),
        (
            "Supporting documents",
            "\n".join(d.uploaded_name for d in documents) or "None",
            url_for(".documents", number=account.number, return_id=tax_return.id),
            "supporting documents",
        ),
    ]


class ObjectionCheck(journeys.Journey):
    """The check page of an objection to one notice: the answers and documents, sent once."""

    blueprint, kinds, form_class = "objections", (KIND,), CheckForm
    permission, feature = "objections_waivers", "objection"
    check_rule = "/<account:number>/<id:return_id>/check"

    def __init__(self, account, grant, return_id: int):
        self.tax_return = _notice_or_404(account, return_id)
        super().__init__(account, grant, subject=objections.subject(self.tax_return))

    def stop(self, draft):
        account, grant, tax_return = self.account, self.grant, self.tax_return
        if not _is_open(account, tax_return):
            return _closed(account, grant, tax_return)
        self.answers = drafts.answers(draft)
        missing = objections.problems(self.answers)
        if not missing:
            self.documents = objections.documents_of(get_db(), draft.id)
            return None
        if request.method == "GET":
            return redirect(url_for(".form", number=account.number, return_id=tax_return.id), 303)
        # Sent without the answers: show them what is missing, where they fill it in.
        page_form = ObjectionForm(formdata=None, data=self.answers)
        for name, message in missing.items():
            page_form[name].errors = [message]
        return _form_page(account, grant, tax_return, page_form, draft, 400)

    def context(self, draft):
        rows = _check_rows(self.account, self.tax_return, self.answers, self.documents)
        return {"rows": rows, **_notice(self.account, self.tax_return)}

    def outgoing(self, draft, moment):
        tax_return, days = self.tax_return, self.account.program.objection_days
        period = objections.period_of(get_db(), self.account, tax_return)
        names = [d.uploaded_name for d in self.documents]
        return sending.Outgoing(
            summary=objections.summary(tax_return, period),
            data=objections.request_data(tax_return, period, self.answers, names, days),
            tax_return_id=tax_return.id,
        )


journeys.check_route(bp, ObjectionCheck, not_offered=_not_offered)


# --- The confirmation ---------------------------------------------------------------------


@journeys.confirmation_route(bp, ObjectionCheck)
def done(account: Account, grant: Grant, sent: ServiceRequest):
    data = requests.answers(sent)
    try:
        notice_date = date.fromisoformat(str(data.get("notice_date", "")))
    except ValueError:
        notice_date = None
    return journeys.page(
        "objections/done.html",
        account,
        grant,
        sent=sent,
        data=data,
        notice_date=notice_date,
        notice_title=NOTICE_TITLES.get(str(data.get("notice_kind")), "Notice of assessment"),
    )
