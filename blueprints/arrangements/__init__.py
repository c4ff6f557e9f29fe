"""Payment arrangements: the balance owing and any arrangement, a proposal in
three answers (saved as a draft as the person goes), the full schedule to check
with a declaration, and the confirmation; each proposal is checked against the
program's rules (domain.arrangements). Every route needs "payment_arrangements"
and, but the confirmation, a program that offers them (web.access.account_route)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_login import current_user

from domain import arrangements, drafts, sending
from domain.accounts import format_money
from models import Account, Grant, ServiceRequest
from web import journeys
from web.access import account_route
from web.database import get_db, now
from web.dates import today
from web.forms import bind
from web.htmx import see_other

from .forms import CheckForm, ProposeForm

bp = Blueprint("arrangements", __name__, url_prefix="/arrangements")

KIND = "arrangement"
CURRENT = "arrangements"  # a service under the Summary tab (templates/accounts/_account_header.html)


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["SERVICE_TIMEZONE"])


def _not_offered(account, grant):
    """The program has no payment arrangements: say so (200), change nothing."""
    return journeys.page("arrangements/not_offered.html", account, grant, current=CURRENT)


def _draft(db, account):
    return drafts.current(db, account_id=account.id, user_id=current_user.id, kind=KIND)


def _schedule_context(db, arrangement, day):
    """What the start page shows of an arrangement: its instalments, with how far
    each is paid once it is approved."""
    if arrangement is None:
        return None, []
    if arrangement.status == "approved":
        return arrangements.request_of(db, arrangement), arrangements.instalment_states(
            db, arrangement, day, zone=_zone()
        )
    rows = [
        arrangements.InstalmentState(i.sequence, i.due_on, i.amount_cents, 0, "")
        for i in arrangements.instalments(db, arrangement)
    ]
    return arrangements.request_of(db, arrangement), rows


@bp.route("/<account:number>/")
@account_route("payment_arrangements", feature="payment_arrangement", not_offered=_not_offered)
def start(account: Account, grant: Grant):
    db, day = get_db(), today()
    owing = arrangements.owing(db, account.id)
    arrangement = arrangements.blocking(db, account.id) or arrangements.latest(db, account.id)
    service_request, rows = _schedule_context(db, arrangement, day)
    can_propose = owing > 0 and (arrangement is None or arrangement.status not in ("proposed", "approved"))
    return journeys.page(
        "arrangements/start.html",
        account,
        grant,
        current=CURRENT,
        owing=owing,
        arrangement=arrangement,
        service_request=service_request,
        rows=rows,
        can_propose=can_propose,
        draft=_draft(db, account) if can_propose else None,
        rules=arrangements.rules_for(db, account.program_code),
        today=day,
        frequencies=arrangements.FREQUENCIES,
        status_words=arrangements.STATUS_WORDS,
        long_day=arrangements.long_day,
    )


def _apply(form, found: dict) -> None:
    """Put the domain's messages beside their fields; a date's beside the box it is about."""
    for name, message in found.items():
        if name.startswith("first_"):
            form.first.show_problem(message, name.removeprefix("first_"))
        else:
            field = getattr(form, name)
            field.errors = [*field.errors, message]


def _propose_page(account, grant, form, rules, day, draft, status=200):
    dates = {"latest_first": rules.latest_first_day(day), "latest_last": rules.latest_last_day(day)}
    dates["example"] = min(day + timedelta(days=7), dates["latest_first"])
    owing = arrangements.owing(get_db(), account.id)
    shown = dict(form=form, draft=draft, rules=rules, owing=owing, long_day=arrangements.long_day)
    return journeys.page("arrangements/propose.html", account, grant, current=CURRENT, **dates, **shown), status


@bp.route("/<account:number>/propose", methods=["GET", "POST"])
@account_route("payment_arrangements", feature="payment_arrangement", not_offered=_not_offered)
def propose(account: Account, grant: Grant):
    db, day = get_db(), today()
    owing = arrangements.owing(db, account.id)
    if owing <= 0 or arrangements.blocking(db, account.id) is not None:
        return see_other(url_for(".start", number=account.number))
    rules = arrangements.rules_for(db, account.program_code)
    draft = _draft(db, account)
    saved: dict[str, object] = {
        name: value
        for name, value in drafts.answers(draft).items()
        if name in arrangements.FIELDS and isinstance(value, str)
    }
    saved["first"] = {part: saved.pop(f"first_{part}", "") for part in ("day", "month", "year")}
    form = bind(ProposeForm, current_user.id, data=saved)
    if request.method == "GET":
        return _propose_page(account, grant, form, rules, day, draft)
    if form.validate_on_submit():
        answers = arrangements.clean_answers(request.form)
        proposal, found = arrangements.check(answers, balance_cents=owing, today=day, rules=rules)
        if proposal is not None:
            draft = draft or drafts.start(db, now(), account_id=account.id, user_id=current_user.id, kind=KIND)
            drafts.save(draft, now(), {**answers, "balance_cents": owing})
            db.commit()
            return see_other(url_for(".check", number=account.number))
        _apply(form, found)
    return _propose_page(account, grant, form, rules, day, draft, 400)


@bp.route("/<account:number>/autosave", methods=["POST"])
@account_route("payment_arrangements", feature="payment_arrangement", not_offered=_not_offered)
def autosave(account: Account, grant: Grant):
    """Keep what has been typed so far (as text, unchecked) and say when."""
    db = get_db()
    draft = None
    if arrangements.owing(db, account.id) > 0 and arrangements.blocking(db, account.id) is None:
        draft = drafts.current_or_start(db, now(), account_id=account.id, user_id=current_user.id, kind=KIND)
        drafts.save(draft, now(), arrangements.typed_so_far(request.form))
        db.commit()
    return render_template("drafts/_status.html", draft=draft)


class ArrangementCheck(journeys.Journey):
    """The check page of a proposal: the schedule worked out from the balance owing
    now, sent once, and only when the person saw that balance."""

    blueprint, kinds, form_class, current = "arrangements", (KIND,), CheckForm, CURRENT
    permission, feature = "payment_arrangements", "payment_arrangement"

    def stop(self, draft):
        db, number = get_db(), self.account.number
        self.answers = drafts.answers(draft)
        if draft is None or "balance_cents" not in self.answers:
            return see_other(url_for(".propose", number=number))
        if arrangements.blocking(db, self.account.id) is not None:
            return see_other(url_for(".start", number=number))
        self.owing = arrangements.owing(db, self.account.id)
        rules = arrangements.rules_for(db, self.account.program_code)
        self.proposal, self.problems = arrangements.check(
            self.answers, balance_cents=self.owing, today=today(), rules=rules
        )
        self.rows = self.proposal.schedule(self.owing) if self.proposal is not None else []
        self.balance_moved = False
        return None

    def held_back(self, form, valid):
        """Sent only as proposed now, against the balance the person saw; else why not."""
        self.balance_moved = self.proposal is not None and form.seen_balance.data != str(self.owing)
        if valid and self.proposal is not None and not self.balance_moved:
            return None
        if self.owing <= 0:
            form.form_errors.append("You have nothing owing now, so there is nothing to arrange")
        elif self.proposal is None:
            form.form_errors.append("Your proposal does not meet the rules any more: change it before you send it")
        elif self.balance_moved:
            form.form_errors.append(
                f"Your balance is now {format_money(self.owing)}. Check the new schedule and send it again"
            )
        return 400

    def context(self, draft):
        proposed_balance = self.answers.get("balance_cents")
        return {
            "answers": self.answers,
            "proposal": self.proposal,
            "problems": self.problems,
            "rows": self.rows,
            "owing": self.owing,
            "changed_from": proposed_balance if proposed_balance != self.owing else None,
            "balance_moved": self.balance_moved,
            "frequencies": arrangements.FREQUENCIES,
            "long_day": arrangements.long_day,
        }

    def outgoing(self, draft, moment):
        owing, proposal = self.owing, self.proposal
        if proposal is None:  # held_back() lets nothing be sent without one
            raise ValueError("no proposal to send")
        return sending.Outgoing(
            summary=arrangements.summary(owing, self.rows, proposal.frequency),
            data=arrangements.request_data(owing, proposal, self.rows),
            build=arrangements.builder(self.account.id, moment, owing, proposal),
        )

    def refused(self, refusal):
        """Someone proposed an arrangement a moment ago: the start page shows it."""
        return see_other(url_for(".start", number=self.account.number))


journeys.check_route(bp, ArrangementCheck, not_offered=_not_offered)


@journeys.confirmation_route(bp, ArrangementCheck)
def done(account: Account, grant: Grant, service_request: ServiceRequest):
    db = get_db()
    arrangement = arrangements.for_request(db, service_request)
    if arrangement is None:
        abort(404)
    rows = arrangements.instalments(db, arrangement)
    return journeys.page(
        "arrangements/done.html",
        account,
        grant,
        current=CURRENT,
        service_request=service_request,
        arrangement=arrangement,
        rows=rows,
        frequencies=arrangements.FREQUENCIES,
        long_day=arrangements.long_day,
    )
