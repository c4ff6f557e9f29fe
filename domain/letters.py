"""Invitation letters: the agency issues an account's owner PIN on paper.

`issue_invitation` issues the PIN (domain.enrolment, the agency as issuer, 90
days), lays the letter out as a PDF and posts it for mailing only
(domain.mail.post with shown_online=False: a PIN never appears in the online
mailbox); a reissue first cancels the account's waiting letter PINs. The plain
PIN lives only in the PDF; it is never logged or put in the audit log. Plain
functions, no Flask; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlalchemy.orm import Session

from domain import audit, enrolment, mail, once, pins
from domain.accounts import format_number
from domain.notices import AGENCY, DEMO_FOOTER, SERVICE, pdf_text
from domain.returns import long_day
from models import Account, InvitationPin, MailItem

KIND = "invitation_letter"
TITLE = "Invitation letter"
VALID_DAYS = enrolment.DEFAULT_VALID_DAYS
EVENTS = ("letter.issued", "pin.reissued")
WARNING = (
    "Tax and Revenue Administration never asks for your password or PIN by email, by text message or "
    "by phone. Do not share this PIN. If anyone asks you for it, do not answer: call us."
)


@dataclass(frozen=True)
class Letter:
    """What an invitation letter says."""

    letter_date: date
    account_number: str
    program_name: str
    legal_name: str
    operating_name: str | None
    mailing_address: str
    pin: str
    expires_on: date
    register_url: str  # where to register a sign-in
    enrol_url: str  # where to enter the account number and PIN
    agency_phone: str

    @property
    def steps(self) -> tuple[str, ...]:
        return (
            f"Register a sign-in for TRA Client Self-Service at {self.register_url} (if you already have "
            "one, go on to step 2).",
            "Sign in with your email address and password.",
            f'Choose "Link an account" ({self.enrol_url}) and enter the account number '
            f"{format_number(self.account_number)} and the PIN above.",
        )


_INK = (11, 12, 12)
_GREY = (80, 90, 95)
_BLUE = (29, 112, 184)
# A #10 window envelope's window, with the letter folded in three: about 20 mm
# from the left edge and 50 mm from the top of the page, 90 by 30 mm.
_WINDOW_X, _WINDOW_Y, _WINDOW_WIDTH = 22, 50, 88


def render_pdf(letter: Letter, *, compress: bool = True) -> bytes:
    """The letter as PDF bytes (US Letter). Core fonts only: text goes through pdf_text."""
    pdf = FPDF(unit="mm", format="Letter")
    pdf.set_compression(compress)
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_title(pdf_text(f"{TITLE}, account {format_number(letter.account_number)}"))
    pdf.set_author(AGENCY)
    pdf.set_creator(SERVICE)
    pdf.set_lang("en-CA")
    pdf.add_page()
    _masthead(pdf, letter)
    _address_block(pdf, letter)
    _introduction(pdf, letter)
    _account_number_and_pin(pdf, letter)
    _how_to_link(pdf, letter)
    _heading(pdf, "Keep your account safe")
    pdf.set_font("Helvetica", "B", 10)
    pdf.multi_cell(0, 5.5, pdf_text(WARNING), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(-26)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(*_GREY)
    pdf.cell(0, 4, pdf_text(DEMO_FOOTER), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _masthead(pdf: FPDF, letter: Letter) -> None:
    """The agency and how to call it on the left, the letter's date on the right."""
    pdf.set_fill_color(*_BLUE)
    pdf.rect(pdf.l_margin, pdf.t_margin, pdf.epw, 1.5, style="F")
    pdf.set_y(pdf.t_margin + 4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 6, pdf_text(AGENCY), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*_GREY)
    pdf.cell(0, 5, pdf_text(f"{SERVICE}  -  {letter.agency_phone}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_xy(pdf.l_margin, pdf.t_margin + 4)
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 6, pdf_text(long_day(letter.letter_date)), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _address_block(pdf: FPDF, letter: Letter) -> None:
    """The address block, where the envelope's window shows it."""
    pdf.set_xy(_WINDOW_X, _WINDOW_Y)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(_WINDOW_WIDTH, 5.5, pdf_text(letter.legal_name), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 11)
    if letter.operating_name and letter.operating_name != letter.legal_name:
        pdf.multi_cell(
            _WINDOW_WIDTH,
            5.5,
            pdf_text(f"Operating as {letter.operating_name}"),
            align="L",
            new_x=XPos.LEFT,
            new_y=YPos.NEXT,
        )
    for line in letter.mailing_address.splitlines():
        if line.strip():
            pdf.multi_cell(_WINDOW_WIDTH, 5.5, pdf_text(line.strip()), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), _WINDOW_Y + 34) + 6)


def _introduction(pdf: FPDF, letter: Letter) -> None:
    pdf.set_font("Helvetica", "B", 17)
    pdf.cell(0, 8, "Your invitation to TRA Client Self-Service", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    _paragraph(
        pdf,
        f"You can now manage {letter.program_name} account {format_number(letter.account_number)} "
        f"online: see its balance and returns, file, pay and write to us. To link the account to your "
        f"sign-in you need the account number and the PIN below. The PIN makes you an owner of the "
        f"account, works once, and expires on {long_day(letter.expires_on)}.",
    )
    pdf.ln(3)


def _account_number_and_pin(pdf: FPDF, letter: Letter) -> None:
    """The account number, then the PIN large in a box, when it expires and how to type it."""
    _particular(pdf, "Account number", format_number(letter.account_number), "Helvetica", 13)
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 6, "Your PIN", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    box_width, box_height = 80, 16
    top = pdf.get_y()
    pdf.set_draw_color(*_INK)
    pdf.set_line_width(0.6)
    pdf.rect(pdf.l_margin, top, box_width, box_height)
    pdf.set_xy(pdf.l_margin, top)
    pdf.set_font("Courier", "B", 22)
    pdf.cell(box_width, box_height, pdf_text(letter.pin), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    _particular(pdf, "PIN expires on", long_day(letter.expires_on), "Helvetica", 11)
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(
        0,
        4.5,
        "Letters and digits only: the PIN has no letters I, L or O and no digits 0 or 1. "
        "Upper or lower case both work.",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(*_INK)
    pdf.ln(3)


def _how_to_link(pdf: FPDF, letter: Letter) -> None:
    """The numbered steps, and what to do when the PIN has expired or the letter is lost."""
    _heading(pdf, "How to link the account")
    for number, step in enumerate(letter.steps, start=1):
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(7, 5.5, f"{number}.")
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 5.5, pdf_text(step), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
    _paragraph(
        pdf,
        f"If the PIN has expired or you have lost this letter, call us at {letter.agency_phone} and ask for a new one.",
    )


def _paragraph(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*_INK)
    pdf.multi_cell(0, 5.5, pdf_text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 7, pdf_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _particular(pdf: FPDF, label: str, value: str, family: str, size: float) -> None:
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(38, 7, pdf_text(label))
    pdf.set_font(family, "B", size)
    pdf.cell(0, 7, pdf_text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


# --- Issuing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    item: MailItem
    created: bool  # False: the form's key had issued this letter before


def issue_invitation(
    db: Session,
    now: datetime,
    today: date,
    *,
    account: Account,
    staff_user_id: int,
    key: str,
    reissue: bool,
    register_url: str,
    enrol_url: str,
    agency_phone: str,
    zone: str,
) -> Issued:
    """A new owner PIN from the agency, in a letter posted for mailing. With
    `reissue`, the account's waiting letter PINs are cancelled first (audited as
    pin.reissued). The same form key again answers the letter it made."""
    earlier = _issued_before(db, now, key, account)
    if earlier is not None:
        return Issued(earlier, False)
    replaced = _cancel_waiting_letter_pins(db, now, account) if reissue else None
    row, pin = enrolment.issue(db, now, account, role="owner", valid_days=VALID_DAYS, issued_by_user_id=None)
    expires_on = row.expires_at.astimezone(ZoneInfo(zone)).date()
    letter = _letter_to(
        account, today, pin, expires_on, register_url=register_url, enrol_url=enrol_url, agency_phone=agency_phone
    )
    item = mail.post(
        db,
        now,
        today,
        account=account,
        kind=KIND,
        title=TITLE,
        pdf=render_pdf(letter),
        posted_by_user_id=staff_user_id,
        pin_id=row.id,
        shown_online=False,
    )
    _record_issued(db, now, key, account=account, staff_user_id=staff_user_id, pin=row, item=item, replaced=replaced)
    return Issued(item, True)


def _record_issued(
    db: Session,
    now: datetime,
    key: str,
    *,
    account: Account,
    staff_user_id: int,
    pin: InvitationPin,
    item: MailItem,
    replaced: list[int] | None,
) -> None:
    """The audit event of an issue (a reissue names the PINs it cancelled), with the
    form key's marker, so a retry finds the letter it made."""
    marker = once.marker(key)
    if replaced is not None:
        audit.record(
            db,
            now,
            "pin.reissued",
            actor_user_id=staff_user_id,
            account_id=account.id,
            invitation_id=pin.id,
            replaced=replaced,
            mail=item.id,
            submission=marker,  # once.MARKER_FIELD
        )
    else:
        audit.record(
            db,
            now,
            "letter.issued",
            actor_user_id=staff_user_id,
            account_id=account.id,
            invitation_id=pin.id,
            mail=item.id,
            submission=marker,  # once.MARKER_FIELD
        )


def _letter_to(
    account: Account,
    today: date,
    pin: str,
    expires_on: date,
    *,
    register_url: str,
    enrol_url: str,
    agency_phone: str,
) -> Letter:
    """What the letter to the account's mailing address says."""
    return Letter(
        letter_date=today,
        account_number=account.number,
        program_name=account.program.name,
        legal_name=account.legal_name,
        operating_name=account.operating_name,
        mailing_address=account.mailing_address or "",
        pin=pin,
        expires_on=expires_on,
        register_url=register_url,
        enrol_url=enrol_url,
        agency_phone=agency_phone,
    )


def _cancel_waiting_letter_pins(db: Session, now: datetime, account: Account) -> list[int]:
    """Cancel the account's owner PINs from the agency that are still waiting; their ids."""
    replaced = []
    for old in pins.agency_owner_pins_waiting(db, account.id):
        old.cancelled_at = now
        replaced.append(old.id)
    return replaced


def _issued_before(db: Session, now: datetime, key: str, account: Account) -> MailItem | None:
    """The letter this form key issued before; None on the key's first use, which
    claims it. once.AlreadySent when the key was claimed without a letter for this
    account (a request sending the same form at the same moment)."""
    earlier = _earlier(db, key, account)
    if earlier is not None:
        return earlier
    if not once.claim(db, now, key):
        earlier = _earlier(db, key, account)
        if earlier is None:
            raise once.AlreadySent()
        return earlier
    return None


def _earlier(db: Session, key: str, account: Account) -> MailItem | None:
    made = once.made_with(db, key, EVENTS)
    if made is None or made["account_id"] != account.id:
        return None
    return db.get(MailItem, made["mail"])
