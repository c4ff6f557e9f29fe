"""Requests to waive penalties and interest picked from the ledger.

Every route needs "objections_waivers" (web.access.account_route); all but the
confirmation, a program that takes waiver requests online.
Steps: the charges (penalty and interest entries of the account) -> the reason
and explanation -> supporting documents (optional) -> check and declare ->
confirmation. The answers live in one draft (kind "waiver", no subject) until
the check page sends it once (web.journeys, domain.sending). Rules are in
domain.waivers."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from domain import drafts, requests, sending, waivers
from domain.accounts import format_money
from domain.objections import documents_of
from models import Account, Grant, ServiceRequest
from web import journeys
from web.access import account_route
from web.database import get_db, now
from web.forms import bind
from web.htmx import see_other

from .forms import CheckForm, EntriesForm, ReasonForm

bp = Blueprint("waivers", __name__, url_prefix="/waivers")

KIND = waivers.KIND
STALE = (
    "A charge you chose can no longer be waived (it may have been reversed or already changed). "
    "Choose the charges again"
)


def _not_offered(account, grant):
    """The page saying this program does not take waiver requests online (400 to a POST)."""
    return journeys.page("waivers/not_offered.html", account, grant), 200 if request.method == "GET" else 400


def _draft(account):
    return drafts.current(get_db(), account_id=account.id, user_id=current_user.id, kind=KIND, subject="")


def _new_draft(account):
    return drafts.start(get_db(), now(), account_id=account.id, user_id=current_user.id, kind=KIND, subject="")


def _entries_form(available, data=None, restore=False):
    form = bind(EntriesForm, current_user.id, data=data) if restore else EntriesForm()
    form.entries.choices = [(str(c.id), c.label) for c in available]
    return form


def _start_page(account, grant, available, form, draft, status: int = 200):
    return journeys.page(
        "waivers/start.html",
        account,
        grant,
        form=form,
        draft=draft,
        charges=available,
        ticked=set(form.entries.data or []),
    ), status


def _reason_page(account, grant, chosen, form, draft, status: int = 200):
    return journeys.page(
        "waivers/reason.html",
        account,
        grant,
        form=form,
        draft=draft,
        chosen=chosen,
        total=waivers.total(chosen),
        hints=waivers.REASON_HINTS,
    ), status


def _chosen(available, answers) -> tuple[list, str | None]:
    """The draft's charges as they are now, or why the person must choose again."""
    saved = answers.get("entries")
    if not isinstance(saved, list) or not saved:
        return [], "Select at least one penalty or interest charge"
    chosen, message = waivers.pick(available, saved)
    return chosen, (STALE if message else None)


def _reason_answers(answers: dict) -> dict:
    return {"reason": answers.get("reason"), "explanation": answers.get("explanation", "")}


def _refuse_entries(account, grant, available, draft, message: str):
    form = _entries_form(available)
    form.entries.data = [v for v in (drafts.answers(draft).get("entries") or []) if isinstance(v, str)]
    form.entries.errors = [message]
    return _start_page(account, grant, available, form, draft, 400)


# --- Which charges ----------------------------------------------------------------------------


@bp.route("/<account:number>/", methods=["GET", "POST"])
@account_route("objections_waivers", feature="waiver", not_offered=_not_offered)
def start(account: Account, grant: Grant):
    db = get_db()
    available = waivers.charges(db, account)
    draft = _draft(account)
    if request.method == "GET":
        form = _entries_form(available, data={"entries": drafts.answers(draft).get("entries") or []}, restore=True)
        return _start_page(account, grant, available, form, draft)
    form = _entries_form(available)
    if not available:
        form.entries.errors = ["This account has no penalties or interest to waive"]
        return _start_page(account, grant, available, form, draft, 400)
    if form.validate_on_submit():
        chosen, message = waivers.pick(available, request.form.getlist("entries"))
        if message:
            form.entries.errors = [message]
        else:
            draft = draft or _new_draft(account)
            drafts.save(draft, now(), {"entries": [str(c.id) for c in chosen]})
            db.commit()
            return see_other(url_for(".reason", number=account.number))
    return _start_page(account, grant, available, form, draft, 400)


@bp.route("/<account:number>/autosave", methods=["POST"])
@account_route("objections_waivers", feature="waiver", not_offered=_not_offered)
def autosave(account: Account, grant: Grant):
    """What the person has ticked or typed so far, kept without checking it (htmx, after a pause)."""
    db = get_db()
    available = waivers.charges(db, account)
    step = request.form.get("step")
    if not available or step not in ("entries", "reason"):
        return render_template("drafts/_status.html", draft=_draft(account)), 400
    draft = _draft(account) or _new_draft(account)
    kept: dict[str, object]
    if step == "entries":
        kept = {"entries": waivers.kept_ids(available, request.form.getlist("entries"))}
    else:
        reason, explanation = request.form.get("reason", ""), request.form.get("explanation", "")
        kept = {"reason": reason if reason in waivers.REASONS else ""}
        if len(explanation) <= waivers.MAX_TEXT:
            kept["explanation"] = explanation
    drafts.save(draft, now(), kept)
    db.commit()
    return render_template("drafts/_status.html", draft=draft)


# --- Why ----------------------------------------------------------------------------------------


@bp.route("/<account:number>/reason", methods=["GET", "POST"])
@account_route("objections_waivers", feature="waiver", not_offered=_not_offered)
def reason(account: Account, grant: Grant):
    db = get_db()
    available = waivers.charges(db, account)
    draft = _draft(account)
    answers = drafts.answers(draft)
    chosen, message = _chosen(available, answers)
    if message:
        if request.method == "GET":
            return redirect(url_for(".start", number=account.number), 303)
        return _refuse_entries(account, grant, available, draft, message)
    if request.method == "GET":
        form = bind(ReasonForm, current_user.id, data=_reason_answers(answers))
    else:
        form = ReasonForm()
    if form.validate_on_submit():
        if drafts.save(draft, now(), {"reason": form.reason.data, "explanation": form.explanation.data or ""}):
            db.commit()
            return see_other(url_for(".documents", number=account.number))
        form.form_errors.append("Your answers are too long for us to keep. Shorten them and try again.")
    return _reason_page(account, grant, chosen, form, draft, 400 if form.errors else 200)


@bp.route("/<account:number>/documents")
@account_route("objections_waivers", feature="waiver", not_offered=_not_offered)
def documents(account: Account, grant: Grant):
    draft = _draft(account)
    if draft is None:
        return redirect(url_for(".start", number=account.number), 303)
    upload_url = None
    if "documents.upload" in current_app.view_functions:
        upload_url = url_for(
            "documents.upload",
            number=account.number,
            draft=draft.token,
            next=url_for(".documents", number=account.number),
        )
    return journeys.page(
        "waivers/documents.html",
        account,
        grant,
        draft=draft,
        documents=documents_of(get_db(), draft.id),
        upload_url=upload_url,
    )


# --- Check and send --------------------------------------------------------------------------


def _check_rows(account, chosen, answers, documents_now) -> list:
    entries = "\n".join(
        f"{c.label}, {c.period or 'no period'}, charged {c.processed_date.day} "
        f"{c.processed_date:%B %Y}: {format_money(c.amount_cents)}"
        for c in chosen
    )
    reason_url = url_for(".reason", number=account.number)
    return [
        ("Penalties and interest", entries, url_for(".start", number=account.number), "the charges"),
        ("Total", format_money(waivers.total(chosen)), None, None),
        ("Reason", waivers.REASONS.get(answers.get("reason"), ""), reason_url + "#reason", "the reason"),
        ("Explanation", answers.get("explanation", ""), reason_url + "#explanation", "the explanation"),
        (
            "Supporting documents",
            "\n".join(d.uploaded_name for d in documents_now) or "None",
            url_for(".documents", number=account.number),
            "supporting documents",
        ),
    ]


class WaiverCheck(journeys.Journey):
    """The check page of a waiver request: the charges as they are now, the reason
    and the documents, sent once."""

    blueprint, kinds, form_class = "waivers", (KIND,), CheckForm
    permission, feature = "objections_waivers", "waiver"

    def stop(self, draft):
        account, grant = self.account, self.grant
        available = waivers.charges(get_db(), account)
        self.answers = drafts.answers(draft)
        self.chosen, message = _chosen(available, self.answers)
        if message:
            if request.method == "GET":
                return redirect(url_for(".start", number=account.number), 303)
            return _refuse_entries(account, grant, available, draft, message)
        missing = waivers.problems(self.answers)
        if not missing:
            self.documents = documents_of(get_db(), draft.id)
            return None
        if request.method == "GET":
            return redirect(url_for(".reason", number=account.number), 303)
        form = ReasonForm(formdata=None, data=_reason_answers(self.answers))
        for name, text in missing.items():
            form[name].errors = [text]
        return _reason_page(account, grant, self.chosen, form, draft, 400)

    def context(self, draft):
        return {"rows": _check_rows(self.account, self.chosen, self.answers, self.documents)}

    def outgoing(self, draft, moment):
        names = [d.uploaded_name for d in self.documents]
        return sending.Outgoing(
            summary=waivers.summary(self.chosen), data=waivers.request_data(self.chosen, self.answers, names)
        )


journeys.check_route(bp, WaiverCheck, not_offered=_not_offered)


# --- The confirmation ---------------------------------------------------------------------


@journeys.confirmation_route(bp, WaiverCheck)
def done(account: Account, grant: Grant, sent: ServiceRequest):
    return journeys.page("waivers/done.html", account, grant, sent=sent, data=requests.answers(sent))
