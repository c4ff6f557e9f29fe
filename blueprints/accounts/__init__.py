"""A tax account: its summary, financial transactions, assessment status and notices.

Who may see what (each route declares it with web.access.account_route):
- the summary needs view_returns or view_financial: filing periods and whether
  each is filed for either; the balance and period balances only with view_financial;
- the transactions, their CSV and the statement of account (PDF) need view_financial;
- the assessment status and the notices need view_returns; a return that is not
  this account's, or has no notice yet, is a 404 like any other wrong URL. The
  notice PDF is built by domain.notices from the ledger.
Anything else is a 404, the same as an account number that does not exist.
"""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, render_template, request, stream_with_context, url_for

from domain import ledger, notices, overview, statements
from domain import returns as tax_returns
from domain.accounts import cents_to_decimal
from models import Account, Grant
from web.access import account_route
from web.database import get_db, now
from web.dates import today
from web.htmx import render, wants_fragment

from .forms import KIND_CHOICES, MODES, StatementForm, TransactionFilterForm, filter_params

bp = Blueprint("accounts", __name__, url_prefix="/accounts")

KIND_LABELS = dict(KIND_CHOICES)


# --- Summary -------------------------------------------------------------------


@bp.route("/<account:number>/")
@account_route("view_returns", "view_financial")
def summary(account: Account, grant: Grant):
    db, day = get_db(), today()
    with_money = overview.shows_money(grant)
    periods = overview.filing_periods(db, account.id, day, with_money=with_money)
    return render_template(
        "accounts/summary.html",
        account=account,
        grant=grant,
        periods=periods,
        next_due=overview.next_due(periods, day),
        today=day,
        money=overview.period_money(db, account.id) if with_money else None,
        current="summary",
    )


# --- Financial transactions -----------------------------------------------------


def _filter_form(account):
    return TransactionFilterForm(
        request.args,
        period_ends=lambda: ledger.period_ends(get_db(), account.id),
        period_known=lambda day: ledger.has_period(get_db(), account.id, day),
    )


def _invalid(account, grant, form) -> Response:
    """The form again with a message beside each wrong field, 400. Over htmx the
    form itself is swapped (and the stale results emptied), not the results."""
    response = render(
        "accounts/transactions.html",
        "accounts/_transactions_invalid.html",
        400,
        account=account,
        grant=grant,
        form=form,
        modes=MODES,
        kinds=KIND_CHOICES,
        rows=None,
        current="transactions",
    )
    if wants_fragment():
        response.headers["HX-Retarget"] = "#transactions-filter"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


@bp.route("/<account:number>/transactions")
@account_route("view_financial")
def transactions(account: Account, grant: Grant):
    form = _filter_form(account)
    flt = form.to_filter()
    if flt is None:
        return _invalid(account, grant, form)
    after = ledger.Cursor.parse(request.args.get("after"))
    rows, next_cursor = ledger.transactions_page(get_db(), account.id, flt, after)
    # One query string for the three links (url_for each would cost 0.13 M instructions
    # a request more, docs/performance.md); every filter names its mode, so it is never empty.
    query = urlencode(filter_params(flt))
    first_url = f"{url_for('.transactions', number=account.number)}?{query}"
    return render(
        "accounts/transactions.html",
        "accounts/_transactions_results.html",
        account=account,
        grant=grant,
        form=form,
        modes=MODES,
        kinds=KIND_CHOICES,
        kind_labels=KIND_LABELS,
        reason_kinds=ledger.REASON_KINDS,
        rows=rows,
        first_page=after is None,
        description=describe_filter(flt),
        next_url=f"{first_url}&{urlencode({'after': next_cursor.token()})}" if next_cursor else None,
        first_url=first_url,
        csv_url=f"{url_for('.transactions_csv', number=account.number)}?{query}",
        current="transactions",
    )


def describe_filter(flt) -> str:
    """What the results are, in words, for the table's caption."""

    def day(value):
        return value.strftime("%-d %B %Y")

    if flt.mode == "period":
        text = f"Transactions for the period ending {day(flt.period_end)}"
    elif flt.processed_from and flt.processed_to:
        text = f"Transactions processed from {day(flt.processed_from)} to {day(flt.processed_to)}"
    elif flt.processed_from:
        text = f"Transactions processed on or after {day(flt.processed_from)}"
    elif flt.processed_to:
        text = f"Transactions processed on or before {day(flt.processed_to)}"
    else:
        text = "All transactions"
    if flt.kind:
        text += f", {KIND_LABELS[flt.kind].lower()} only"
    return text


CSV_HEADER = ("Processed date", "Effective date", "Period end", "Type", "Reference", "Description", "Amount", "Balance")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    """Text a spreadsheet must not run as a formula."""
    return f"'{value}" if value and value.startswith(_FORMULA_START) else value


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


@bp.route("/<account:number>/transactions.csv")
@account_route("view_financial")
def transactions_csv(account: Account, grant: Grant):
    form = _filter_form(account)
    flt = form.to_filter()
    if flt is None:
        return _invalid(account, grant, form)
    db, account_id = get_db(), account.id  # the rows stream after the request's teardown

    def lines():
        try:
            yield _csv_line(CSV_HEADER)
            chunk = []
            for row in ledger.stream_transactions(db, account_id, flt):
                chunk.append(
                    _csv_line(
                        (
                            row.processed_date.isoformat(),
                            row.effective_date.isoformat(),
                            row.period_end.isoformat() if row.period_end else "",
                            KIND_LABELS.get(row.kind, row.kind),
                            _text_cell(row.reference),
                            _text_cell(row.description or ""),
                            str(cents_to_decimal(row.amount_cents)),
                            str(cents_to_decimal(int(row.balance_after))),
                        )
                    )
                )
                if len(chunk) >= 200:
                    yield "".join(chunk)
                    chunk = []
            if chunk:
                yield "".join(chunk)
        finally:
            # End the read (and its server-side cursor) as soon as the rows are
            # out, even if the client goes away half way: never idle in a transaction.
            db.rollback()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="transactions-{account.number}.csv"'},
    )


# --- Statement of account ------------------------------------------------------


def _produced():
    return now().astimezone(ZoneInfo(current_app.config["SERVICE_TIMEZONE"]))


@bp.route("/<account:number>/statement")
@account_route("view_financial")
def statement(account: Account, grant: Grant):
    """The form, then (once it names what to cover) the PDF. A GET: making a PDF changes nothing."""
    db, day = get_db(), today()
    form = StatementForm(request.args)
    period_ends = ledger.period_ends(db, account.id)
    status = 200
    if form.sent:
        wanted, errors = statements.check_request(form.answers(), period_ends, day)
        if wanted is not None:
            found = statements.build(db, account, wanted)
            return Response(
                statements.render_pdf(found, generated_at=_produced()),
                mimetype="application/pdf",
                headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
            )
        form.show_problems(errors)
        status = 400
    examples = {"example_from": f"1 {day:%-m %Y}", "example_to": f"{day:%-d %-m %Y}"}
    page = render_template(
        "accounts/statement.html",
        account=account,
        grant=grant,
        form=form,
        kinds=statements.KINDS,
        period_ends=period_ends,
        current="statement",
        **examples,
    )
    return page, status


# --- Assessment status and notices ---------------------------------------------


@bp.route("/<account:number>/returns")
@account_route("view_returns")
def returns(account: Account, grant: Grant):
    lines = tax_returns.lines_for(get_db(), account)
    return render_template("accounts/returns.html", account=account, grant=grant, returns=lines, current="returns")


@bp.route("/<account:number>/returns/<id:return_id>/notice.pdf")
@account_route("view_returns")
def notice(account: Account, grant: Grant, return_id: int):
    db = get_db()
    tax_return = tax_returns.return_of(db, account.id, return_id)
    found = notices.notice_for(db, account, tax_return) if tax_return is not None else None
    if found is None:
        abort(404)
    produced = now().astimezone(ZoneInfo(current_app.config["SERVICE_TIMEZONE"]))
    return Response(
        notices.render_pdf(found, generated_at=produced),
        mimetype="application/pdf",
        headers={"Content-Disposition": f"attachment; filename={found.filename}"},
    )
