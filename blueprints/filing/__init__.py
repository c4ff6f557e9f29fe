"""Filing a return or claim: the periods open for filing, the program's figures
(saved as a draft as the person types, the amounts worked out by the server
before anything is sent), a check page with the rates used and a declaration,
and the confirmation. Amended returns go the same way for a period already
filed. Rules in domain.filing. Every route needs "file" and, but the
confirmation, a program that files here (web.access.account_route)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, render_template, request, url_for
from flask_login import current_user

from domain import drafts, filing, sending
from domain import requests as service_requests
from domain.returns import period_text
from models import Account, Draft, FilingPeriod, Grant, ServiceRequest, TaxReturn
from web import journeys
from web.access import account_route
from web.database import get_db, now
from web.dates import today
from web.forms import add_error, bind
from web.htmx import see_other

from .forms import CheckForm, figures_form, values_of

bp = Blueprint("filing", __name__, url_prefix="/filing")

CURRENT = "filing"  # a service under the Summary tab (templates/accounts/_account_header.html)
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


def _filed_elsewhere(account, grant):
    """The program's returns are not filed here: where they are filed."""
    text = filing.FILED_ELSEWHERE.get(account.program_code, filing.GENERIC_ELSEWHERE)
    return journeys.page("filing/elsewhere.html", account, grant, current=CURRENT, text=text)


def _not_filed_here(account, grant):
    abort(404)  # a step of a return the program does not file here


def _filing(account: Account, grant: Grant, period_end: str) -> Filing:
    """The program form and the period; 404 for a program with no form here, a
    malformed date or a period not the account's (or not ended yet)."""
    spec = filing.form_for(account.program_code)
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


@bp.route("/<account:number>/")
@account_route("file", feature="file", not_offered=_filed_elsewhere)
def start(account: Account, grant: Grant):
    spec = filing.form_for(account.program_code)
    if spec is None:
        return _filed_elsewhere(account, grant)
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
    shown = dict(spec=spec, open_periods=open_periods, filed=filed, started=started, drafted=drafted, today=day)
    return journeys.page("filing/start.html", account, grant, current=CURRENT, **shown)


@bp.route("/<account:number>/<period_end>/begin", methods=["POST"])
@account_route("file", feature="file", not_offered=_not_filed_here)
def begin(account: Account, grant: Grant, period_end: str):
    """Start (or resume) the draft of this period's return, then its figures."""
    f = _filing(account, grant, period_end)
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


@bp.route("/<account:number>/<period_end>/figures", methods=["GET", "POST"])
@account_route("file", feature="file", not_offered=_not_filed_here)
def figures(account: Account, grant: Grant, period_end: str):
    f = _filing(account, grant, period_end)
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
            add_error(form[key], message)
    return _figures_page(f, form, draft, 400)


@bp.route("/<account:number>/<period_end>/autosave", methods=["POST"])
@account_route("file", feature="file", not_offered=_not_filed_here)
def autosave(account: Account, grant: Grant, period_end: str):
    """Keep what has been typed so far (text, unchecked) and say when."""
    f = _filing(account, grant, period_end)
    draft = None
    if f.amended or f.latest is None:
        db = get_db()
        draft = drafts.current_or_start(
            db, now(), account_id=f.account.id, user_id=current_user.id, kind=f.kind, subject=f.subject
        )
        drafts.save(draft, now(), _typed(f))
        db.commit()
    return render_template("drafts/_status.html", draft=draft)


@bp.route("/<account:number>/<period_end>/compute", methods=["POST"])
@account_route("file", feature="file", not_offered=_not_filed_here)
def compute(account: Account, grant: Grant, period_end: str):
    """The amounts for the figures as typed so far: the live region of the figures
    page. Works nothing out but the preview; changes nothing."""
    f = _filing(account, grant, period_end)
    rates = filing.rates_for(get_db(), f.spec, f.period.period_start)
    rows, total = filing.preview(f.spec, _typed(f), rates)
    return render_template(
        "filing/_computed.html", rows=rows, total=total, rates=rates, rate_text=filing.rate_text, **f.context()
    )


# --- Check and submit -----------------------------------------------------------------


class FilingCheck(journeys.Journey):
    """The check page of a period's return or claim: the figures worked out at the
    period's rates (kept for the page and the submission), sent once as a request
    with its return."""

    blueprint, kinds, form_class, current = "filing", filing.KINDS, CheckForm, CURRENT
    permission, feature = "file", "file"
    check_rule = "/<account:number>/<period_end>/check"

    def __init__(self, account, grant, period_end: str):
        self.f = _filing(account, grant, period_end)
        super().__init__(account, grant, kind=self.f.kind, subject=self.f.subject)

    def stop(self, draft):
        f = self.f
        if not f.amended and f.latest is not None:
            return _already_filed(f, 200 if request.method == "GET" else 409)
        if draft is None:
            return see_other(f.url(".figures"))
        self.rates = filing.rates_for(get_db(), f.spec, f.period.period_start)
        self.got = filing.read(f.spec, _saved_figures(f, draft))
        if not self.got.ok or filing.problems(f.spec, self.got.values, self.rates):
            return see_other(f.url(".figures"))
        self.worked = filing.compute(f.spec.program_code, self.got.values, self.rates)
        return None

    def context(self, draft):
        f = self.f
        worked = dict(figures=self.got.values, worked=self.worked, rates=self.rates)
        return dict(spec=f.spec, filing=f, period=f.period, rate_text=filing.rate_text, show=filing.show, **worked)

    def outgoing(self, draft, moment):
        f, amends = self.f, (self.f.latest if self.f.amended else None)
        end, figures = f.period.period_end, self.got.values
        return sending.Outgoing(
            summary=filing.summary_line(f.spec, f.period_text, f.amended, self.worked.total_cents),
            data=filing.request_data(
                f.spec, f.period.period_start, end, f.amended, figures, self.worked, self.rates, amends
            ),
            build=filing.builder(
                account=f.account,
                form=f.spec,
                period_end=end,
                amended=f.amended,
                figures=figures,
                worked=self.worked,
                user_id=current_user.id,
                received_on=today(),
                amends=amends,
            ),
        )

    def refused(self, refusal):
        """Someone else filed the period a moment ago: nothing of this one is kept."""
        self.f.latest = filing.latest_return(get_db(), self.f.account, self.f.period.period_end)
        return _already_filed(self.f, 409)


journeys.check_route(bp, FilingCheck, not_offered=_not_filed_here)


@journeys.confirmation_route(bp, FilingCheck)
def done(account: Account, grant: Grant, sent: ServiceRequest):
    db = get_db()
    tax_return = db.get(TaxReturn, sent.tax_return_id) if sent.tax_return_id else None
    if tax_return is not None and tax_return.account_id != account.id:
        tax_return = None
    shown = dict(current=CURRENT, sent=sent, tax_return=tax_return, data=service_requests.answers(sent))
    return journeys.page("filing/done.html", account, grant, **shown, **_named(account, sent))


def _named(account, sent) -> dict:
    """What the confirmation calls what was sent: "Amended Tourism Levy return", a claim or a return."""
    spec = filing.form_for(account.program_code)
    amended = sent.kind.startswith("amended_")
    heading = (f"Amended {spec.title}" if amended else spec.title) if spec else "Filing"
    return {"heading": heading, "amended": amended, "paper": "claim" if sent.kind.endswith("claim") else "return"}
