"""Filing a return or claim: the periods open for filing, the program's figures
(saved as a draft as the person types, the amounts worked out by the server
before anything is sent), a check page with the rates used and a declaration,
and the confirmation. Amended returns go the same way for a period already
filed. Rules in domain.filing; every route asks account_or_404 for "file"."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, render_template, request, url_for
from flask_login import current_user

from domain import drafts, filing
from domain import requests as service_requests
from domain.returns import period_text
from models import Account, Draft, FilingPeriod, Grant, ServiceRequest, TaxReturn
from web.account_access import account_or_404
from web.database import get_db, now
from web.dates import today
from web.forms import bind
from web.htmx import see_other

from . import bp
from .forms import CheckForm, figures_form, values_of

PERMISSION = "file"
CURRENT = "filing"  # no tab of the account header is this page
# What autosave keeps of one figure: typed text, never more than this.
KEPT_CHARS = 200


@dataclass
class Filing:
    """One period's filing as the URL names it."""

    account: Account
    grant: Grant
    spec: filing.ProgramForm
    period: FilingPeriod
    amended: bool
    latest: TaxReturn | None  # the period's latest return, if any

    @property
    def kind(self) -> str:
        return filing.draft_kind(self.spec, self.amended)

    @property
    def subject(self) -> str:
        return filing.subject_for(self.period.period_end, self.amended)

    @property
    def period_text(self) -> str:
        return period_text(self.period.period_start, self.period.period_end)

    @property
    def title(self) -> str:
        return f"Amended {self.spec.title}" if self.amended else self.spec.title

    def url(self, endpoint: str, **extra) -> str:
        if self.amended:
            extra["amended"] = "1"
        return url_for(endpoint, number=self.account.number, period_end=self.period.period_end.isoformat(), **extra)

    def context(self) -> dict:
        return dict(
            account=self.account, grant=self.grant, current=CURRENT, spec=self.spec, filing=self, period=self.period
        )


def _filing_program(number: str):
    account, grant = account_or_404(number, PERMISSION)
    spec = filing.form_for(account.program_code)
    if spec is None or not account.program.allows("file"):
        return account, grant, None
    return account, grant, spec


def _filing(number: str, period_end: str) -> Filing:
    """The account (permission checked), its program form and the period; 404 for
    a program not filed here, a malformed date or a period not the account's
    (or not ended yet)."""
    account, grant, spec = _filing_program(number)
    end = filing.parse_period_end(period_end)
    if spec is None or end is None:
        abort(404)
    db = get_db()
    period = filing.period_of(db, account, end, today())
    if period is None:
        abort(404)
    amended = request.values.get("amended") == "1"
    latest = filing.latest_return(db, account, end)
    if amended and latest is None:
        abort(404)  # nothing to amend
    return Filing(account, grant, spec, period, amended, latest)


def _draft(f: Filing) -> Draft | None:
    return drafts.current(get_db(), account_id=f.account.id, user_id=current_user.id, kind=f.kind, subject=f.subject)


def _already_filed(f: Filing, status: int):
    """A period filed already, reached without choosing an amendment: say so and
    offer the amendment; nothing is created."""
    return render_template("filing/already_filed.html", latest=f.latest, **f.context()), status


def _saved_figures(f: Filing, draft: Draft | None) -> dict:
    return {k: v for k, v in drafts.answers(draft).items() if k in f.spec.keys and isinstance(v, str)}


def _typed(f: Filing) -> dict:
    return {k: (request.form.get(k) or "")[:KEPT_CHARS] for k in f.spec.keys if k in request.form}


# --- Start --------------------------------------------------------------------------


@bp.route("/<number>/")
def start(number: str):
    account, grant, spec = _filing_program(number)
    if spec is None:
        text = filing.FILED_ELSEWHERE.get(account.program_code, filing.GENERIC_ELSEWHERE)
        return render_template("filing/elsewhere.html", account=account, grant=grant, current=CURRENT, text=text)
    db, day = get_db(), today()
    open_periods, filed = filing.periods(db, account, day)
    starts = {p.end: p.start for p in open_periods} | {p.end: p.start for p in filed}
    filed_ends = {p.end for p in filed}
    started = []
    for draft in filing.open_drafts(db, account, current_user.id):
        end, amended = filing.draft_period(draft)
        # A draft of a first return for a period someone has filed since is not offered any more.
        if end in starts and (amended or end not in filed_ends):
            started.append((draft, end, amended, period_text(starts[end], end)))
    drafted = {(end, amended) for _draft, end, amended, _text in started}
    return render_template(
        "filing/start.html",
        account=account,
        grant=grant,
        current=CURRENT,
        spec=spec,
        open_periods=open_periods,
        filed=filed,
        started=started,
        drafted=drafted,
        today=day,
    )


@bp.route("/<number>/<period_end>/begin", methods=["POST"])
def begin(number: str, period_end: str):
    """Start (or resume) the draft of this period's return, then its figures."""
    f = _filing(number, period_end)
    if not f.amended and f.latest is not None:
        return _already_filed(f, 409)
    db = get_db()
    if _draft(f) is None:
        drafts.start(
            db,
            now(),
            account_id=f.account.id,
            user_id=current_user.id,
            kind=f.kind,
            subject=f.subject,
            data=filing.figures_of(f.latest, f.spec) if f.amended else None,
        )
        db.commit()
    return see_other(f.url(".figures"))


# --- Figures ------------------------------------------------------------------------


def _figures_page(f: Filing, form, draft, status=200, computed=None):
    db = get_db()
    rates = filing.rates_for(db, f.spec, f.period.period_start)
    raw = computed if computed is not None else {k: form[k].data for k in f.spec.keys}
    rows, total = filing.preview(f.spec, raw, rates)
    return render_template(
        "filing/figures.html",
        form=form,
        draft=draft,
        rows=rows,
        total=total,
        rates=rates,
        rate_text=filing.rate_text,
        **f.context(),
    ), status


@bp.route("/<number>/<period_end>/figures", methods=["GET", "POST"])
def figures(number: str, period_end: str):
    f = _filing(number, period_end)
    if not f.amended and f.latest is not None:
        return _already_filed(f, 200 if request.method == "GET" else 409)
    db = get_db()
    draft = _draft(f)
    if request.method == "GET":
        form = bind(figures_form(f.spec), current_user.id, data=_saved_figures(f, draft))
        return _figures_page(f, form, draft)
    form = figures_form(f.spec)()
    if form.validate_on_submit():
        rates = filing.rates_for(db, f.spec, f.period.period_start)
        found = filing.problems(f.spec, values_of(form, f.spec), rates)
        if not found:
            draft = draft or drafts.start(
                db, now(), account_id=f.account.id, user_id=current_user.id, kind=f.kind, subject=f.subject
            )
            drafts.save(draft, now(), {k: form[k].data for k in f.spec.keys})
            db.commit()
            if request.form.get("action") == "calculate":
                return _figures_page(f, form, draft)
            return see_other(f.url(".check"))
        for key, message in found.items():
            form[key].errors.append(message)
    return _figures_page(f, form, draft, 400)


@bp.route("/<number>/<period_end>/autosave", methods=["POST"])
def autosave(number: str, period_end: str):
    """Keep what has been typed so far (text, unchecked) and say when."""
    f = _filing(number, period_end)
    draft = None
    if f.amended or f.latest is None:
        db = get_db()
        draft = drafts.current_or_start(
            db, now(), account_id=f.account.id, user_id=current_user.id, kind=f.kind, subject=f.subject
        )
        drafts.save(draft, now(), _typed(f))
        db.commit()
    return render_template("drafts/_status.html", draft=draft)


@bp.route("/<number>/<period_end>/compute", methods=["POST"])
def compute(number: str, period_end: str):
    """The amounts for the figures as typed so far: the live region of the figures
    page. Works nothing out but the preview; changes nothing."""
    f = _filing(number, period_end)
    rates = filing.rates_for(get_db(), f.spec, f.period.period_start)
    rows, total = filing.preview(f.spec, _typed(f), rates)
    return render_template(
        "filing/_computed.html", rows=rows, total=total, rates=rates, rate_text=filing.rate_text, **f.context()
    )


# --- Check and submit -----------------------------------------------------------------


def _draft_for_check(f: Filing) -> Draft | None:
    """The draft this check is about: the one the form names (a second tab, a
    retry after submitting), else the person's open one."""
    token = request.form.get("token") if request.method == "POST" else None
    if filing.plausible_token(token):
        draft = drafts.by_token(get_db(), account_id=f.account.id, user_id=current_user.id, token=token)
        if draft is not None and draft.kind == f.kind and draft.subject == f.subject:
            return draft
    return _draft(f)


def _done_url(f: Filing, reference: str) -> str:
    return url_for(".done", number=f.account.number, reference=reference)


@bp.route("/<number>/<period_end>/check", methods=["GET", "POST"])
def check(number: str, period_end: str):
    f = _filing(number, period_end)
    db = get_db()
    draft = _draft_for_check(f)
    if draft is not None and draft.submitted_request_id is not None:
        # Sent already (a double click, a retry, a second tab): the same confirmation.
        sent = db.get(ServiceRequest, draft.submitted_request_id)
        if sent is None or sent.account_id != f.account.id:
            abort(404)
        return see_other(_done_url(f, sent.reference))
    if not f.amended and f.latest is not None:
        return _already_filed(f, 200 if request.method == "GET" else 409)
    if draft is None:
        return see_other(f.url(".figures"))
    rates = filing.rates_for(db, f.spec, f.period.period_start)
    got = filing.read(f.spec, _saved_figures(f, draft))
    if not got.ok or filing.problems(f.spec, got.values, rates):
        return see_other(f.url(".figures"))
    worked = filing.compute(f.spec.program_code, got.values, rates)
    form = bind(CheckForm, current_user.id)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            moment, day = now(), today()
            drafts.hold(db, draft)
            if draft.submitted_request_id is not None:
                # Sent by another worker a moment ago (a double click, another tab): its confirmation.
                reference = db.get(ServiceRequest, draft.submitted_request_id).reference
                db.rollback()
                return see_other(_done_url(f, reference))
            try:
                submitted = _submit(f, draft, got, worked, rates, moment, day)
            except filing.AlreadyFiled:
                # Someone else filed the period a moment ago: nothing of this one is kept.
                db.rollback()
                f.latest = filing.latest_return(db, f.account, f.period.period_end)
                return _already_filed(f, 409)
            drafts.mark_submitted(db, draft, submitted.request.id)
            db.commit()
            return see_other(_done_url(f, submitted.request.reference))
        status = 400
    form.token.data = draft.token
    return render_template(
        "filing/check.html",
        form=form,
        draft=draft,
        figures=got.values,
        worked=worked,
        rates=rates,
        rate_text=filing.rate_text,
        show=filing.show,
        **f.context(),
    ), status


def _submit(f: Filing, draft: Draft, got, worked, rates, moment, day):
    """The filing as a service request with its return (or the request this draft made before)."""
    return service_requests.submit(
        get_db(),
        moment,
        account=f.account,
        user_id=current_user.id,
        kind=f.kind,
        key=draft.token,
        summary=filing.summary_line(f.spec, f.period_text, f.amended, worked.total_cents),
        data=filing.request_data(
            f.spec,
            f.period.period_start,
            f.period.period_end,
            f.amended,
            got.values,
            worked,
            rates,
            f.latest if f.amended else None,
        ),
        build=filing.builder(
            account=f.account,
            form=f.spec,
            period_end=f.period.period_end,
            amended=f.amended,
            figures=got.values,
            worked=worked,
            user_id=current_user.id,
            received_on=day,
            amends=f.latest if f.amended else None,
        ),
    )


@bp.route("/<number>/done/<reference>")
def done(number: str, reference: str):
    account, grant = account_or_404(number, PERMISSION)
    db = get_db()
    sent = service_requests.find(db, account.id, reference) if filing.plausible_reference(reference) else None
    if sent is None or sent.kind not in filing.KINDS:
        abort(404)
    tax_return = db.get(TaxReturn, sent.tax_return_id) if sent.tax_return_id else None
    if tax_return is not None and tax_return.account_id != account.id:
        tax_return = None
    spec = filing.form_for(account.program_code)
    amended = sent.kind.startswith("amended_")
    heading = (f"Amended {spec.title}" if amended else spec.title) if spec else "Filing"
    return render_template(
        "filing/done.html",
        account=account,
        grant=grant,
        current=CURRENT,
        sent=sent,
        heading=heading,
        tax_return=tax_return,
        data=service_requests.answers(sent),
        paper="claim" if sent.kind.endswith("claim") else "return",
        amended=amended,
    )
