"""A statement of account, as PDF: every transaction of one filing period, or
every transaction processed between two days, with the balance before, after
each and at the end.

Plain functions, no Flask: `check_request` reads the form's answers (a period
from the account's list, or two dates typed as day, month and year) and says
what is wrong beside each field; `for_period` and `for_dates` gather the lines
from the ledger; `render_pdf` lays them out with the notices' fpdf2 layout, so a
statement looks like the notices it sits beside. Money stays integer cents; a
credit is written "$3,650.00 credit", never with a bare minus sign."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from fpdf import FontFace
from fpdf.enums import XPos, YPos
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import dates, notices
from domain.accounts import describe_balance, format_amount, format_number
from domain.notices import StatementLine, pdf_text
from domain.returns import account_period_starts, long_day, period_text, start_of
from models import Account, LedgerEntry

KINDS = {"period": "For a filing period", "dates": "For dates you choose"}
START_WHAT, END_WHAT = "The start date", "The end date"  # how messages name them


@dataclass(frozen=True)
class Request:
    """What a statement covers: one period end, or a first and last processed day."""

    period_end: date | None = None
    start: date | None = None
    end: date | None = None


def check_request(answers: dict, period_ends: list[date], today: date) -> tuple[Request | None, dict[str, str]]:
    """(the request, {}) or (None, {field: message}). Fields: kind, period, and
    from_<part>/to_<part> for a date, the part being the box that is wrong (day,
    month, year) or "date" for the whole date."""
    kind = answers.get("kind") or ""
    if kind not in KINDS:
        return None, {"kind": "Choose whether the statement is for a period or for dates you choose"}
    if kind == "period":
        chosen = next((end for end in period_ends if end.isoformat() == answers.get("period")), None)
        if chosen is None:
            return None, {"period": "Choose a period this account has"}
        return Request(period_end=chosen), {}
    errors: dict[str, str] = {}
    days = {}
    for prefix, what in (("from", START_WHAT), ("to", END_WHAT)):
        typed = [answers.get(f"{prefix}_{part}", "") for part in ("day", "month", "year")]
        day, message, part = dates.parse_parts(typed[0], typed[1], typed[2], what)
        if day is None and message is None:  # all three empty: this date is needed
            message = f"Enter {what[0].lower()}{what[1:]}"
        if message:
            errors[f"{prefix}_{part}"] = message
        days[prefix] = day
    if errors:
        return None, errors
    start, end = days["from"], days["to"]
    assert start is not None and end is not None  # no message means both parsed
    if end > today:
        return None, {"to_date": "The end date must be today or in the past"}
    if start > end:
        return None, {"from_date": "The start date must be the same as or before the end date"}
    return Request(start=start, end=end), {}


@dataclass(frozen=True)
class Statement:
    account_number: str
    legal_name: str
    operating_name: str | None
    mailing_address: str
    program_name: str
    scope: str  # "for the period 1-31 March 2026", "for 1 March 2026 to 31 May 2026"
    opening_cents: int  # the balance before the first line (0 for a period)
    opening_label: str
    lines: tuple[StatementLine, ...]
    filename: str

    @property
    def closing_cents(self) -> int:
        return self.opening_cents + sum(line.amount_cents for line in self.lines)

    def running(self) -> list[tuple[StatementLine, int]]:
        """Each line with the balance after it."""
        balance, out = self.opening_cents, []
        for line in self.lines:
            balance += line.amount_cents
            out.append((line, balance))
        return out


def _lines(db: Session, *conditions) -> tuple[StatementLine, ...]:
    e = LedgerEntry
    rows = db.execute(
        select(e.processed_date, e.kind, e.description, e.reference, e.amount_cents)
        .where(*conditions)
        .order_by(e.processed_date, e.id)
    )
    return tuple(
        StatementLine(r.processed_date, r.kind, r.description or "", r.reference, int(r.amount_cents)) for r in rows
    )


def _statement(account: Account, scope: str, opening: int, opening_label: str, lines, name: str) -> Statement:
    return Statement(
        account_number=account.number,
        legal_name=account.legal_name,
        operating_name=account.operating_name,
        mailing_address=account.mailing_address or "",
        program_name=account.program.name,
        scope=scope,
        opening_cents=opening,
        opening_label=opening_label,
        lines=lines,
        filename=f"statement-{account.number}-{name}.pdf",
    )


def for_period(db: Session, account: Account, period_end: date) -> Statement:
    """Every entry of the period, whenever it was processed: its lines add up to the period's balance."""
    start = start_of(account, period_end, account_period_starts(db, account))
    lines = _lines(db, LedgerEntry.account_id == account.id, LedgerEntry.period_end == period_end)
    scope = f"for the period {period_text(start, period_end)}"
    return _statement(account, scope, 0, "", lines, f"period-{period_end.isoformat()}")


def for_dates(db: Session, account: Account, start: date, end: date) -> Statement:
    """Every entry processed from `start` to `end`, after the balance of everything processed before."""
    e = LedgerEntry
    before = db.scalar(
        select(func.coalesce(func.sum(e.amount_cents), 0)).where(e.account_id == account.id, e.processed_date < start)
    )
    lines = _lines(db, e.account_id == account.id, e.processed_date >= start, e.processed_date <= end)
    scope = f"for {long_day(start)} to {long_day(end)}"
    label = f"Balance on {long_day(start)}, before these transactions"
    return _statement(account, scope, int(before or 0), label, lines, f"{start.isoformat()}-to-{end.isoformat()}")


def build(db: Session, account: Account, wanted: Request) -> Statement:
    if wanted.start is not None and wanted.end is not None:
        return for_dates(db, account, wanted.start, wanted.end)
    assert wanted.period_end is not None  # check_request makes one or the other
    return for_period(db, account, wanted.period_end)


# --- Layout -----------------------------------------------------------------------------


def render_pdf(statement: Statement, *, generated_at: datetime, compress: bool = True) -> bytes:
    """The statement as PDF bytes, on the notices' page (US Letter, the agency's masthead and footer)."""
    pdf = notices._NoticePDF(unit="mm", format="Letter")
    pdf.set_compression(compress)
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=24)
    title = f"Statement of account {statement.scope}"
    pdf.set_title(pdf_text(f"{title}, {format_number(statement.account_number)}"))
    pdf.set_author(notices.AGENCY)
    pdf.set_creator(notices.SERVICE)
    pdf.set_lang("en-CA")
    pdf.set_creation_date(generated_at)
    pdf.running_title = f"Statement of account {format_number(statement.account_number)} (continued)"
    pdf.footer_note = f"Produced from the account's ledger on {long_day(generated_at.date())}."
    pdf.add_page()
    _masthead(pdf, statement, generated_at.date())
    _table(pdf, statement)
    notices._heading(pdf, "Balance at the end of the statement")
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, pdf_text(describe_balance(statement.closing_cents)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    notices._paragraph(pdf, closing_sentence(statement))
    return bytes(pdf.output())


def closing_sentence(statement: Statement) -> str:
    cents = statement.closing_cents
    if cents > 0:
        return f"{format_amount(cents)} is owing. How to pay: sign in and choose Make a payment on the account."
    if cents < 0:
        return f"A credit of {format_amount(-cents)} is in your favour. We refund it or apply it to amounts owing."
    return "Nothing is owing."


def _masthead(pdf, statement: Statement, today: date) -> None:
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 6, pdf_text(notices.AGENCY), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 9, "Statement of account", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    notices._paragraph(pdf, f"{statement.program_name} account {format_number(statement.account_number)}")
    notices._paragraph(pdf, f"{statement.legal_name}, {statement.scope}")
    notices._paragraph(pdf, f"Date of statement: {long_day(today)}")


def _table(pdf, statement: Statement) -> None:
    notices._heading(pdf, "Transactions")
    if not statement.lines:
        notices._paragraph(pdf, "There are no transactions for this statement.")
    notices._paragraph(pdf, 'An amount marked "credit" is in your favour (a payment or a credit).', size=9)
    with pdf.table(
        col_widths=(0.12, 0.12, 0.32, 0.14, 0.15, 0.15),
        text_align=("LEFT",) * 4 + ("RIGHT", "RIGHT"),
        borders_layout="HORIZONTAL_LINES",
        line_height=4.5,
        padding=(1.2, 1.5),
        headings_style=FontFace(emphasis="BOLD"),
    ) as table:
        heading = table.row()
        for title in ("Processed", "Type", "Details", "Reference", "Amount", "Balance"):
            heading.cell(title)
        if statement.opening_label:
            row = table.row()
            row.cell(pdf_text(statement.opening_label), colspan=5)
            row.cell(pdf_text(format_amount(statement.opening_cents)))
        for line, balance in statement.running():
            row = table.row()
            row.cell(f"{line.processed_date.day} {line.processed_date:%b %Y}")
            row.cell(pdf_text(line.kind_text))
            row.cell(pdf_text(line.description))
            row.cell(pdf_text(line.reference))
            row.cell(pdf_text(format_amount(line.amount_cents)))
            row.cell(pdf_text(format_amount(balance)))
