"""Ledger entries by hand: an account's ledger as the agency sees it (newest
first, 50 a page, with the running balance and every reversal linked to what it
reverses), a form to post a payment, refund, transfer, adjustment, interest or
penalty, and reversals. Officers post payments only; everything else, and every
reversal, needs a supervisor (web.access.require_staff_role: 403, audited).
The rules are domain.postings'."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request, session, url_for

from domain import ledger, once, postings, work
from domain.accounts import describe_balance, format_money
from models import Account
from web.access import require_staff_role
from web.database import get_db, now
from web.dates import today
from web.forms import add_error
from web.htmx import render, see_other
from web.sessions import signed_in_user

from ..lookups import account_or_404
from .forms import EntryForm, ReverseForm, kind_choices

bp = Blueprint("ledger", __name__, url_prefix="/ledger")

STALE_FORM = "This form is out of date. Check the answers and send it again"


def _staff():
    return signed_in_user()


def _entry_form(formdata=None) -> EntryForm:
    form = EntryForm(formdata=formdata)
    # An officer is offered what an officer may post; the server checks it anyway.
    form.kind.choices = kind_choices([kind for kind in postings.KINDS if postings.may_post(_staff(), kind)])
    if formdata is None:
        form.key.data = once.new_key()
        form.kind.data = "payment"
        form.effective_date.process(None, today())
    return form


def _page(account: Account, form: EntryForm, status: int = 200):
    db = get_db()
    after = ledger.Cursor.parse(request.args.get("after")) if request.method == "GET" else None
    rows, next_cursor = ledger.transactions_page(db, account.id, ledger.TransactionFilter(), after)
    links = postings.links_for(db, account.id, [row.id for row in rows])
    next_url = url_for(".account", number=account.number, after=next_cursor.token()) if next_cursor else None
    return render(
        "staff/ledger/account.html",
        "staff/ledger/_entries.html",
        status,
        staff_section="accounts",
        account=account,
        form=form,
        rows=rows,
        links=links,
        first_page=after is None,
        next_url=next_url,
        first_url=url_for(".account", number=account.number),
        balance=describe_balance(ledger.balance(db, account.id)),
        period_ends=postings.period_ends(db, account.id),
        can_reverse=work.at_least(_staff(), "supervisor"),
        kinds=postings.KINDS,
    )


@bp.route("/<number>/")
def account(number: str):
    return _page(account_or_404(number), _entry_form())


def _done(account: Account, notice: str):
    session["notice"] = notice
    return see_other(url_for(".account", number=account.number))


@bp.route("/<number>/entries", methods=["POST"])
def post_entry(number: str):
    account = account_or_404(number)
    db = get_db()
    form = _entry_form(request.form)
    kind = postings.chosen_kind(request.form)
    if kind in postings.KINDS and not postings.may_post(_staff(), kind):
        require_staff_role(postings.KINDS[kind].role)
    form.validate()  # the effective date's boxes, with the GOV.UK date messages
    answers = request.form.to_dict()
    if form.effective_date.data is not None:
        answers["effective_date"] = form.effective_date.data.isoformat()
    posting, problems = postings.read(db, account, today(), answers)
    for name, message in problems.items():
        if not form[name].errors:  # a date the boxes could not read has its message already
            add_error(form[name], message)
    if not once.valid(form.key.data):
        form.form_errors.append(STALE_FORM)
        form.key.data = once.new_key()
    if form.errors or posting is None:  # no posting comes only with problems
        return _page(account, form, 400)
    try:
        entries = postings.post(db, now(), today(), account=account, staff=_staff(), posting=posting, key=form.key.data)
    except postings.AlreadyDone:
        db.rollback()
        return _done(account, "That form had been sent already: the entry is posted once.")
    except postings.PostingRefused as refused:
        db.rollback()
        form.form_errors.append(refused.message)
        return _page(account, form, refused.status)
    db.commit()
    label = postings.KINDS[posting.kind].label
    notice = f"{label}: {format_money(abs(entries[0].amount_cents))} posted, reference {entries[0].reference}."
    if posting.to_account is not None:  # a transfer
        notice += f" The same amount is credited to account {posting.to_account.number}."
    return _done(account, notice)


def _entry_or_404(account: Account, entry_id: int):
    entry = postings.entry_of(get_db(), account.id, entry_id)
    if entry is None:
        abort(404)
    return entry


def _reverse_page(account, entry, form, problem=None, status=200):
    db = get_db()
    counterpart = postings.counterpart_of(db, entry)
    other = db.get(Account, counterpart.account_id) if counterpart is not None else None
    return render_template(
        "staff/ledger/reverse.html",
        staff_section="accounts",
        account=account,
        entry=entry,
        form=form,
        problem=problem,
        other=other,
    ), status


@bp.route("/<number>/entries/<int:entry_id>/reverse", methods=["GET", "POST"])
def reverse(number: str, entry_id: int):
    require_staff_role("supervisor")
    account = account_or_404(number)
    entry = _entry_or_404(account, entry_id)
    db = get_db()
    form = ReverseForm(formdata=request.form if request.method == "POST" else None)
    if request.method == "GET":
        form.key.data = once.new_key()
        problem = postings.why_not_reversible(db, entry)
        return _reverse_page(account, entry, form if problem is None else None, problem, 409 if problem else 200)
    form.validate()
    message = postings.reason_problem(form.reason.data or "", "Enter why you are reversing this entry")
    if message:
        add_error(form.reason, message)
    if not once.valid(form.key.data):
        form.form_errors.append(STALE_FORM)
        form.key.data = once.new_key()
    if form.errors:
        return _reverse_page(account, entry, form, status=400)
    try:
        reversal = postings.reverse(
            db, now(), today(), entry=entry, staff=_staff(), reason=form.reason.data or "", key=form.key.data
        )
    except postings.AlreadyDone:
        db.rollback()
        return _done(account, "That form had been sent already: the entry is reversed once.")
    except postings.PostingRefused as refused:
        db.rollback()
        if refused.field:
            add_error(form[refused.field], refused.message)
            return _reverse_page(account, entry, form, status=refused.status)
        return _reverse_page(account, entry, None, refused.message, refused.status)
    db.commit()
    return _done(
        account,
        f"Entry {entry.id} reversed: entry {reversal.id}, reference {reversal.reference}, "
        f"{format_money(reversal.amount_cents)}.",
    )
