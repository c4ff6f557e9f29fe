"""Notices of assessment and reassessment, as PDF, built from the ledger.

Plain functions, no Flask: `notice_for` gathers what a notice says (the
period's ledger entries processed on or before the notice date, the balance,
the objection deadline) and `render_pdf` lays it out with fpdf2's core
Helvetica, whose text must be Latin-1 (`pdf_text` makes it so). Money stays
integer cents, formatted through Decimal by domain.accounts."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts import describe_balance, format_amount, format_money, format_number
from domain.returns import NOTICE_TITLES, account_period_starts, long_day, period_text, start_of
from models import Account, LedgerEntry, TaxReturn

AGENCY = "Tax and Revenue Administration, Alberta"
SERVICE = "TRA Client Self-Service"
DEMO_FOOTER = "Demonstration document: not a real notice from the Government of Alberta."

# --- Text the core fonts can print --------------------------------------------------

_REPLACEMENTS = {
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u2026": "...",
    "\u2022": "-",
    "\u00b7": "-",
    "\u2002": " ",
    "\u2003": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",
    "\u2060": "",
    "\ufeff": "",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u20ac": "EUR",
    "\u2122": "TM",
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0131": "i",
    "\u0126": "H",
    "\u0127": "h",
}


def pdf_text(text: str) -> str:
    """`text` in Latin-1, the only characters fpdf2's core fonts can print: dashes
    and curly quotes become their plain forms, accented letters outside Latin-1
    lose their accent, anything else becomes "?". Control characters go."""
    out = []
    for char in unicodedata.normalize("NFC", text or ""):
        if char in _REPLACEMENTS:
            out.append(_REPLACEMENTS[char])
        elif char in "\t":
            out.append(" ")
        elif unicodedata.category(char) == "Cc":
            continue
        elif ord(char) < 256:
            out.append(char)
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if ord(c) < 256 and not unicodedata.combining(c)
            )
            out.append(base or "?")
    return "".join(out)


# --- What a notice says -----------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    processed_date: date
    kind: str
    description: str
    reference: str
    amount_cents: int

    @property
    def kind_text(self) -> str:
        return self.kind.capitalize()


@dataclass(frozen=True)
class Notice:
    kind: str  # assessment | reassessment
    notice_date: date
    account_number: str
    legal_name: str
    operating_name: str | None
    mailing_address: str
    program_name: str
    paper: str  # return | claim
    amended: bool
    period_start: date | None
    period_end: date
    received_on: date
    reference: str
    lines: tuple[StatementLine, ...]
    objection_days: int
    objection_online: bool  # the program offers objections through self-service

    @property
    def title(self) -> str:
        return NOTICE_TITLES[self.kind]

    @property
    def period(self) -> str:
        return period_text(self.period_start, self.period_end)

    @property
    def balance_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def objection_deadline(self) -> date:
        return self.notice_date + timedelta(days=self.objection_days)

    @property
    def filename(self) -> str:
        return f"notice-{self.account_number}-{self.period_end.isoformat()}.pdf"


def statement_lines(db: Session, account_id: int, period_end: date, as_of: date) -> tuple[StatementLine, ...]:
    """The period's ledger entries processed on or before `as_of`, oldest first."""
    e = LedgerEntry
    rows = db.execute(
        select(e.processed_date, e.kind, e.description, e.reference, e.amount_cents)
        .where(e.account_id == account_id, e.period_end == period_end, e.processed_date <= as_of)
        .order_by(e.processed_date, e.id)
    )
    return tuple(
        StatementLine(r.processed_date, r.kind, r.description or "", r.reference, int(r.amount_cents)) for r in rows
    )


def notice_for(db: Session, account: Account, tax_return: TaxReturn) -> Notice | None:
    """The latest notice of this return, or None when it has none yet."""
    if (
        tax_return.account_id != account.id
        or tax_return.notice_kind not in NOTICE_TITLES
        or tax_return.notice_date is None
    ):
        return None
    program = account.program
    return Notice(
        kind=tax_return.notice_kind,
        notice_date=tax_return.notice_date,
        account_number=account.number,
        legal_name=account.legal_name,
        operating_name=account.operating_name,
        mailing_address=account.mailing_address or "",
        program_name=program.name,
        paper=tax_return.kind,
        amended=tax_return.amended,
        period_start=start_of(account, tax_return.period_end, account_period_starts(db, account)),
        period_end=tax_return.period_end,
        received_on=tax_return.received_on,
        reference=tax_return.reference,
        lines=statement_lines(db, account.id, tax_return.period_end, tax_return.notice_date),
        objection_days=program.objection_days,
        objection_online=program.allows("objection"),
    )


def explanation(notice: Notice) -> str:
    paper = f"amended {notice.paper}" if notice.amended else notice.paper
    verb = "assessed" if notice.kind == "assessment" else "reassessed"
    text = (
        f"We have {verb} your {notice.program_name} {paper} for the period {notice.period}, "
        f"received on {long_day(notice.received_on)}."
    )
    if notice.kind == "reassessment":
        text += " This notice replaces any earlier notice for this period."
    return text + (
        " The statement below shows every transaction for the period that we had processed by the date of this notice."
    )


def balance_sentence(notice: Notice) -> str:
    cents = notice.balance_cents
    if cents > 0:
        return (
            f"You owe {format_money(cents)} for this period. If you have not paid it yet, please pay it "
            f"now: interest is charged on amounts not paid on time. How to pay: sign in to {SERVICE} and choose "
            f"Make a payment on this account (online banking, wire transfer or cheque, with the account number "
            f"as the reference)."
        )
    if cents < 0:
        return (
            f"You have a credit of {format_money(-cents)} for this period. We will refund it or apply it "
            f"to other amounts you owe."
        )
    return "Nothing is owing for this period."


def objection_sentences(notice: Notice) -> str:
    """Who may object, by when and how. A reassessment can be objected to as an
    assessment can, within the same number of days of its own notice."""
    how = (
        "through TRA Client Self-Service or in writing to Tax and Revenue Administration"
        if notice.objection_online
        else "in writing to Tax and Revenue Administration"
    )
    return (
        f"If you disagree with this {notice.kind}, you may file a notice of objection by "
        f"{long_day(notice.objection_deadline)}, {notice.objection_days} days after the date of this notice. "
        f"File it {how}. Explain why you disagree, give the facts and reasons, and include any documents "
        f"that support your position. Quote your account number and the period."
    )


# --- Layout -----------------------------------------------------------------------------

_INK = (11, 12, 12)
_GREY = (80, 90, 95)
_RULE = (177, 180, 182)
_SHADE = (243, 242, 241)
_BLUE = (29, 112, 184)


class _NoticePDF(FPDF):
    running_title = ""
    footer_note = ""

    def header(self) -> None:
        # Continuation pages say whose notice they belong to.
        if self.page_no() > 1:
            self.set_font("Helvetica", "", 8)
            self.set_text_color(*_GREY)
            self.cell(0, 4, pdf_text(self.running_title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(3)

    def footer(self) -> None:
        self.set_y(-18)
        self.set_draw_color(*_RULE)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(2)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(*_GREY)
        self.cell(0, 4, pdf_text(DEMO_FOOTER), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(self.epw / 2, 4, pdf_text(self.footer_note))
        self.cell(self.epw / 2, 4, f"Page {self.page_no()} of {{nb}}", align="R")


def _heading(pdf: FPDF, text: str, keep_with_next: float = 25) -> None:
    """A section heading, moved to the next page rather than left alone at the
    bottom of one."""
    pdf.ln(4)
    if pdf.get_y() + 8 + keep_with_next > pdf.page_break_trigger:
        pdf.add_page()
    pdf.set_font("Helvetica", "B", 12)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 7, pdf_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)


def _paragraph(pdf: FPDF, text: str, size: float = 10) -> None:
    pdf.set_font("Helvetica", "", size)
    pdf.set_text_color(*_INK)
    pdf.multi_cell(0, 5, pdf_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render_pdf(notice: Notice, *, generated_at: datetime | None = None, compress: bool = True) -> bytes:
    """The notice as PDF bytes (US Letter, the paper used in Canada). With
    compress=False the page text is stored as is, so tests can search it."""
    pdf = _new_pdf(notice, generated_at=generated_at, compress=compress)
    _masthead(pdf, notice)
    _addressee_and_particulars(pdf, notice)
    _paragraph(pdf, explanation(notice))
    _statement(pdf, notice)
    _balance(pdf, notice)
    _if_you_disagree(pdf, notice)
    return bytes(pdf.output())


def _new_pdf(notice: Notice, *, generated_at: datetime | None, compress: bool) -> _NoticePDF:
    """The document with its page set-up and properties, on its first page."""
    pdf = _NoticePDF(unit="mm", format="Letter")
    pdf.set_compression(compress)
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=24)
    pdf.set_title(pdf_text(f"{notice.title}, {format_number(notice.account_number)}, period {notice.period}"))
    pdf.set_author(AGENCY)
    pdf.set_subject(pdf_text(f"{notice.program_name} {notice.title.lower()}"))
    pdf.set_creator(SERVICE)
    pdf.running_title = (
        f"{notice.title}, account {format_number(notice.account_number)}, period {notice.period} (continued)"
    )
    pdf.set_lang("en-CA")
    if generated_at is not None:
        pdf.set_creation_date(generated_at)
        pdf.footer_note = f"Produced from the account's ledger on {long_day(generated_at.date())}."
    pdf.add_page()
    return pdf


def _masthead(pdf: FPDF, notice: Notice) -> None:
    """Agency, title and date."""
    pdf.set_fill_color(*_BLUE)
    pdf.rect(pdf.l_margin, pdf.t_margin, pdf.epw, 1.5, style="F")
    pdf.set_y(pdf.t_margin + 4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 6, pdf_text(AGENCY), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*_GREY)
    pdf.cell(0, 5, SERVICE, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    pdf.set_font("Helvetica", "B", 20)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 9, pdf_text(notice.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(0, 6, pdf_text(f"Date of notice: {long_day(notice.notice_date)}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)


def _addressee_and_particulars(pdf: FPDF, notice: Notice) -> None:
    """Addressee on the left, the account's particulars on the right; the text goes on below the taller."""
    top = pdf.get_y()
    left_width = pdf.epw * 0.48
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(left_width, 5.5, pdf_text(notice.legal_name), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    if notice.operating_name and notice.operating_name != notice.legal_name:
        pdf.multi_cell(
            left_width,
            5,
            pdf_text(f"Operating as {notice.operating_name}"),
            align="L",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
    for line in notice.mailing_address.splitlines():
        if line.strip():
            pdf.multi_cell(left_width, 5, pdf_text(line.strip()), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()
    _particulars(pdf, notice, top)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 4)


def _particulars(pdf: FPDF, notice: Notice, top: float) -> None:
    """The account number, program, period, the return as received and its reference, in a shaded box."""
    paper = notice.paper.capitalize()
    particulars = [
        ("Account number", format_number(notice.account_number)),
        ("Program", notice.program_name),
        ("Period", notice.period),
        (paper, ("Amended, received " if notice.amended else "Received ") + long_day(notice.received_on)),
        ("Reference", notice.reference),
    ]
    box_x = pdf.l_margin + pdf.epw * 0.52
    box_width = pdf.w - pdf.r_margin - box_x
    pdf.set_xy(box_x, top)
    with pdf.table(
        col_widths=(0.36, 0.64),
        width=box_width,
        align="RIGHT",
        first_row_as_headings=False,
        borders_layout="NONE",
        text_align="LEFT",
        line_height=5,
        padding=(1, 2),
        cell_fill_color=_SHADE,
        cell_fill_mode="ALL",
    ) as table:
        for label, value in particulars:
            row = table.row()
            row.cell(pdf_text(label), style=FontFace(emphasis="BOLD", size_pt=9))
            row.cell(pdf_text(value), style=FontFace(size_pt=9))


def _statement(pdf: FPDF, notice: Notice) -> None:
    """The statement of the period: its transactions and their balance."""
    _heading(pdf, "Statement for the period")
    if not notice.lines:
        _paragraph(pdf, "No transactions for this period had been processed by the date of this notice.")
        return
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(
        0,
        4.5,
        'An amount marked "credit" is in your favour (a payment or a credit).',
        align="L",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(1.5)
    pdf.set_text_color(*_INK)
    pdf.set_fill_color(255)
    pdf.set_draw_color(*_RULE)
    bold = FontFace(emphasis="BOLD")
    with pdf.table(
        col_widths=(0.13, 0.13, 0.34, 0.22, 0.18),
        text_align=("LEFT",) * 4 + ("RIGHT",),
        borders_layout="HORIZONTAL_LINES",
        line_height=4.5,
        padding=(1.2, 1.5),
        headings_style=FontFace(emphasis="BOLD", fill_color=_SHADE),
    ) as table:
        heading = table.row()
        for title in ("Processed", "Type", "Details", "Reference", "Amount"):
            heading.cell(title)
        for line in notice.lines:
            row = table.row()
            row.cell(f"{line.processed_date.day} {line.processed_date:%b %Y}")
            row.cell(pdf_text(line.kind_text))
            row.cell(pdf_text(line.description))
            row.cell(pdf_text(line.reference))
            row.cell(pdf_text(format_amount(line.amount_cents)))
        total = table.row(style=bold)
        total.cell("Balance for this period", colspan=4)
        total.cell(pdf_text(describe_balance(notice.balance_cents)))


def _balance(pdf: FPDF, notice: Notice) -> None:
    """What is owing (or the credit), large, and what to do about it."""
    cents = notice.balance_cents
    _heading(pdf, "Amount owing" if cents > 0 else ("Credit" if cents < 0 else "Balance"))
    pdf.set_font("Helvetica", "B", 14)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 8, pdf_text(describe_balance(notice.balance_cents)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _paragraph(pdf, balance_sentence(notice))


def _if_you_disagree(pdf: FPDF, notice: Notice) -> None:
    """The objection deadline and how to object."""
    _heading(pdf, "If you disagree")
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(
        0,
        5.5,
        pdf_text(f"Objection deadline: {long_day(notice.objection_deadline)}"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    _paragraph(pdf, objection_sentences(notice))
