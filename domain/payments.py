"""How to pay an account: what is owing now and by period, the ways to pay its
program takes (data on the program: online banking payee, wire or EFT details,
cheque payee and mailing address, the account number always the reference), and
a remittance voucher to print and send with a cheque. No card payments: the
portal takes no money itself.

Plain functions, no Flask. Money stays integer cents; a credit is said in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from fpdf.enums import XPos, YPos
from sqlalchemy.orm import Session

from domain import notices, overview
from domain.accounts import describe_balance, format_amount, format_number
from domain.notices import pdf_text
from domain.returns import long_day
from models import Account, Program


@dataclass(frozen=True)
class PeriodOwing:
    period_end: date
    due_date: date
    cents: int


@dataclass(frozen=True)
class Owing:
    """The balance now, and the periods (and the unallocated line) it is made of."""

    balance_cents: int
    periods: tuple[PeriodOwing, ...]  # those with something owing or a credit, oldest first
    unallocated_cents: int


def owing(db: Session, account: Account, today: date) -> Owing:
    lines = overview.filing_periods(db, account.id, today, with_money=True)
    money = overview.period_money(db, account.id)
    periods = tuple(
        PeriodOwing(line.period_end, line.due_date, line.balance_cents or 0)
        for line in reversed(lines)
        if line.balance_cents
    )
    return Owing(money.balance_cents, periods, money.unallocated_cents)


@dataclass(frozen=True)
class WaysToPay:
    reference: str  # the account number, as people write it
    online_payee: str
    wire: tuple[str, ...]  # one detail a line
    cheque_payable_to: str
    cheque_address: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.online_payee or self.wire or self.cheque_payable_to)


def _lines(text: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


def ways_to_pay(program: Program, account: Account) -> WaysToPay:
    return WaysToPay(
        reference=format_number(account.number),
        online_payee=program.pay_online_payee or "",
        wire=_lines(program.pay_wire),
        cheque_payable_to=program.pay_cheque_payable_to or "",
        cheque_address=_lines(program.pay_cheque_address),
    )


# --- The remittance voucher -------------------------------------------------------------


def voucher_filename(account: Account) -> str:
    return f"remittance-voucher-{account.number}.pdf"


def voucher_pdf(account: Account, due: Owing, ways: WaysToPay, *, generated_at: datetime, compress=True) -> bytes:
    """A page to print: how to pay by cheque, then a voucher to cut off and send with it."""
    pdf = notices._NoticePDF(unit="mm", format="Letter")
    pdf.set_compression(compress)
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=24)
    pdf.set_title(pdf_text(f"Remittance voucher, {account.program.name} account {ways.reference}"))
    pdf.set_author(notices.AGENCY)
    pdf.set_creator(notices.SERVICE)
    pdf.set_lang("en-CA")
    pdf.set_creation_date(generated_at)
    pdf.footer_note = f"Produced on {long_day(generated_at.date())}."
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 6, pdf_text(notices.AGENCY), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 9, "How to pay by cheque", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    notices._paragraph(pdf, _cheque_text(account, due, ways, generated_at.date()))
    _voucher(pdf, account, due, ways)
    return bytes(pdf.output())


def _cheque_text(account: Account, due: Owing, ways: WaysToPay, today: date) -> str:
    owing_text = (
        f"On {long_day(today)} this account owes {format_amount(due.balance_cents)}."
        if due.balance_cents > 0
        else f"On {long_day(today)} nothing is owing on this account ({describe_balance(due.balance_cents)})."
    )
    payable = ways.cheque_payable_to or "the Government of Alberta"
    return (
        f"{owing_text} Make the cheque payable to {payable} and write the account number {ways.reference} "
        f"on it. Cut off the voucher below and mail it with the cheque. Allow time for the mail: a payment "
        f"counts on the day we receive it."
    )


def _voucher(pdf, account: Account, due: Owing, ways: WaysToPay) -> None:
    pdf.ln(8)
    pdf.set_draw_color(80, 90, 95)
    pdf.set_dash_pattern(dash=2, gap=1.5)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.set_dash_pattern()
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 5, "Cut here and send this part with your cheque", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, "Remittance voucher", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    rows = [
        ("Program", account.program.name),
        ("Account number", ways.reference),
        ("Name", account.legal_name),
        ("Amount owing", describe_balance(due.balance_cents)),
        ("Amount paid", "$ ____________________"),
        ("Period(s) paid", "______________________"),
    ]
    with pdf.table(col_widths=(0.3, 0.7), first_row_as_headings=False, line_height=7, borders_layout="NONE") as table:
        for label, value in rows:
            row = table.row()
            row.cell(pdf_text(label))
            row.cell(pdf_text(value))
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 5, "Mail to", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    for line in ways.cheque_address or ("Tax and Revenue Administration",):
        pdf.cell(0, 5, pdf_text(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
