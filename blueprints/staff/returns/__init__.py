"""Assessing and reassessing returns and claims: the return as filed, its
period's ledger entries and notices, and the form that assesses it (or, once it
is assessed, reassesses it). Every staff member (officer and above) may assess;
the rules are domain.assessments'."""

from __future__ import annotations

import json

from flask import Blueprint, abort, render_template, request, session, url_for

from domain import assessments, late_filing, once, postings, work
from domain import requests as service_requests
from domain.accounts import cents_to_decimal, format_money
from domain.returns import STATUS_WORDS
from models import Account, TaxReturn, User
from web.database import get_db, now
from web.dates import today
from web.forms import add_error
from web.htmx import see_other
from web.mailer import kick_outbox
from web.sessions import signed_in_user

from .forms import AssessForm, ReassessForm

bp = Blueprint("returns", __name__, url_prefix="/returns")

MAX_ID = 2**31 - 1
STALE_FORM = "This form is out of date. Check the answers and send it again"


def _return_or_404(return_id: int) -> TaxReturn:
    tax_return = get_db().get(TaxReturn, return_id) if 0 < return_id <= MAX_ID else None
    if tax_return is None:
        abort(404)
    return tax_return


def _amount_text(cents: int | None) -> str:
    return "" if cents is None else str(cents_to_decimal(cents))


def _assess_form(tax_return: TaxReturn, formdata=None, proposals=()) -> AssessForm:
    """The assess form; a new one starts from the amount filed and, for a late
    return, the penalty and interest its program's rates propose (posted only
    when the officer sends the form)."""
    form = AssessForm(formdata=formdata)
    if formdata is None:
        form.key.data = once.new_key()
        form.assessed.data = _amount_text(tax_return.amount_cents)
        for (kind, amount, reason), proposal in zip(form.charge_fields(), proposals, strict=False):
            kind.data, amount.data, reason.data = proposal.kind, _amount_text(proposal.cents), proposal.reason
    if tax_return.kind == "claim":
        form.assessed.label.text = "Refund allowed"
        form.assessed.description = "In dollars. It starts as the amount claimed"
    return form


def _reassess_form(db, tax_return: TaxReturn, formdata=None) -> ReassessForm:
    form = ReassessForm(formdata=formdata)
    if formdata is None:
        form.key.data = once.new_key()
        # An amended return proposes its own amount; otherwise start from the current total.
        proposed = (
            tax_return.amount_cents
            if tax_return.amended and tax_return.amount_cents is not None
            else assessments.stated_total(db, tax_return)
        )
        form.new_total.data = _amount_text(proposed)
    return form


def _page(
    tax_return: TaxReturn, *, assess_form=None, reassess_form=None, problem: str | None = None, status: int = 200
):
    db = get_db()
    account = db.get_one(Account, tax_return.account_id)
    step = assessments.step_for(db, tax_return)
    proposals = late_filing.propose(db, tax_return, tax_return.amount_cents) if step == "assess" else []
    if step == "assess" and assess_form is None:
        assess_form = _assess_form(tax_return, proposals=proposals)
    if step == "reassess" and reassess_form is None:
        reassess_form = _reassess_form(db, tax_return)
    service_request = assessments.request_of(db, tax_return)
    answers = service_requests.answers(service_request) if service_request is not None else {}
    item = work.for_request(db, service_request.id) if service_request is not None else None
    filer = db.get(User, tax_return.filed_by_user_id) if tax_return.filed_by_user_id else None
    amends = assessments.amended_original(db, tax_return)
    return render_template(
        "staff/returns/show.html",
        staff_section="accounts",
        tax_return=tax_return,
        account=account,
        period=assessments.period_of(db, account, tax_return),
        status_words=STATUS_WORDS,
        step=step,
        assess_form=assess_form if step == "assess" else None,
        proposals=proposals,
        reassess_form=reassess_form if step == "reassess" else None,
        service_request=service_request,
        answers=answers,
        figures=_figures(tax_return, answers),
        item=item,
        outcome_words=work.OUTCOME_WORDS,
        filer=filer,
        amends=amends,
        problem=problem,
        entries=assessments.period_entries(db, account.id, tax_return.period_end),
        assessed_total=assessments.stated_total(db, tax_return),
        mail_items=assessments.mail_of(db, tax_return),
        format_money=format_money,
    ), status


def _figures(tax_return: TaxReturn, answers: dict) -> list[tuple[str, str]]:
    """The figures as filed: from the request's answers (labels and values as the
    person saw them), else the return's own record."""
    shown = answers.get("figures") if isinstance(answers.get("figures"), dict) else None
    if shown:
        return [
            (str(v.get("label", k)), str(v.get("shown", v.get("value", ""))))
            for k, v in shown.items()
            if isinstance(v, dict)
        ]
    try:
        stored = json.loads(tax_return.figures) if tax_return.figures else {}
    except ValueError:
        stored = {}
    return [(str(k), str(v)) for k, v in stored.items()] if isinstance(stored, dict) else []


@bp.route("/<int:return_id>")
def show(return_id: int):
    return _page(_return_or_404(return_id))


def _refused(tax_return: TaxReturn, refused: assessments.AssessmentRefused, **forms):
    """The page again with the domain's refusal beside its field, or at the top
    of the page when it is about the return as a whole (the return may have
    moved on: the page then shows the form for where it is now)."""
    form = next(iter(forms.values()))
    field = form._fields.get(refused.field) if refused.field else None
    if field is not None:
        add_error(field, refused.message)
        return _page(tax_return, status=refused.status, **forms)
    return _page(tax_return, problem=refused.message, status=refused.status, **forms)


def _done(tax_return: TaxReturn, notice: str):
    session["notice"] = notice
    return see_other(url_for(".show", return_id=tax_return.id))


def _charges(form: AssessForm) -> list[tuple[str, int | None, str]]:
    """The penalty and interest lines filled in, as (kind, cents, reason), with a
    message beside each field that is wrong. A line left blank is no charge."""
    charges, lines = [], []
    for fields in form.charge_fields():
        kind, amount, reason = fields
        if not amount.data and not reason.data:
            continue
        cents = None
        if not amount.data:
            add_error(amount, "Enter the amount of this charge")
        else:
            cents, message = postings.parse_amount(amount.data)
            if message:
                add_error(amount, message)
        charges.append((kind.data, cents, reason.data or ""))
        lines.append(dict(zip(("kind", "amount", "reason"), fields, strict=False)))
    for (position, part), message in assessments.charge_problems(charges).items():
        add_error(lines[position][part], message)
    return charges


@bp.route("/<int:return_id>/assess", methods=["POST"])
def assess(return_id: int):
    tax_return = _return_or_404(return_id)
    db = get_db()
    form = _assess_form(tax_return, request.form)
    form.validate()
    assessed, message = postings.parse_amount(
        form.assessed.data, allow_zero=True, negative="The assessed amount cannot be negative"
    )
    if message:
        add_error(form.assessed, message)
    charges = _charges(form)
    if not once.valid(form.key.data):
        form.form_errors.append(STALE_FORM)
        form.key.data = once.new_key()
    if form.errors or assessed is None:  # no amount comes only with a message
        return _page(tax_return, assess_form=form, status=400)
    try:
        outcome = assessments.assess(
            db,
            now(),
            today(),
            tax_return=tax_return,
            staff=signed_in_user(),
            assessed_cents=assessed,
            charges=charges,
            note=form.note.data or "",
            key=form.key.data,
        )
    except postings.AlreadyDone:
        db.rollback()
        return _done(tax_return, "That form had been sent already: the return is assessed once.")
    except assessments.AssessmentRefused as refused:
        db.rollback()
        return _refused(tax_return, refused, assess_form=form)
    db.commit()
    kick_outbox()  # the mail alert and the message's email
    where = "printed for the post" if outcome.mail_item.delivery == "paper" else "posted under the account's Mail"
    return _done(
        tax_return,
        f"Return assessed at {format_money(outcome.total_cents)}. The notice of assessment is "
        f"{where} and the account's people have a message.",
    )


@bp.route("/<int:return_id>/reassess", methods=["POST"])
def reassess(return_id: int):
    tax_return = _return_or_404(return_id)
    db = get_db()
    form = _reassess_form(db, tax_return, request.form)
    form.validate()
    new_total, message = postings.parse_amount(
        form.new_total.data, allow_zero=True, negative="The new total cannot be negative"
    )
    if message:
        add_error(form.new_total, message)
    if not form.reason.data:
        add_error(form.reason, "Enter the reason for the reassessment: the account's people will read it")
    if not once.valid(form.key.data):
        form.form_errors.append(STALE_FORM)
        form.key.data = once.new_key()
    if form.errors or new_total is None:  # no amount comes only with a message
        return _page(tax_return, reassess_form=form, status=400)
    try:
        outcome = assessments.reassess(
            db,
            now(),
            today(),
            tax_return=tax_return,
            staff=signed_in_user(),
            new_total_cents=new_total,
            reason=form.reason.data or "",  # checked above: there is one
            key=form.key.data,
        )
    except postings.AlreadyDone:
        db.rollback()
        return _done(tax_return, "That form had been sent already: the reassessment is posted once.")
    except assessments.AssessmentRefused as refused:
        db.rollback()
        return _refused(tax_return, refused, reassess_form=form)
    db.commit()
    kick_outbox()
    difference = sum(int(entry.amount_cents) for entry in outcome.entries)
    change = f"an adjustment of {format_money(difference)} posted" if difference else "no change to the total"
    return _done(
        tax_return,
        f"Return reassessed at {format_money(outcome.total_cents)}: {change}. The notice of "
        f"reassessment is in the account's mail and the account's people have a message.",
    )
