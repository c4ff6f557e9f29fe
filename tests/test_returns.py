"""Assessment status and the notice of assessment or reassessment as PDF: the
table of returns, the notice's figures from the ledger, and who may see what.
Every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import re
import zlib
from datetime import date
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from domain import grants, ledger, notices
from domain.accounts import make_number
from domain.programs import PROGRAMS, ensure_programs
from domain.returns import period_start, period_text
from models import Account, FilingPeriod, LedgerEntry, Program, TaxReturn
from tests.accounts_factory import as_written, body, signed_in, without_tokens
from tests.conftest import make_user

OWNER = "owner@example.com"
MARCH = date(2026, 3, 31)
APRIL = date(2026, 4, 30)


# --- Helpers ----------------------------------------------------------------------


def _unescape(literal: bytes) -> bytes:
    return re.sub(rb"\\([\\()])", rb"\1", literal)


def pdf_strings(data: bytes) -> list[str]:
    """The text a PDF shows (what fpdf2 writes with Tj), compressed streams or not."""
    found = []
    for match in re.finditer(rb"stream\r?\n(.*?)\nendstream", data, re.S):
        content = _inflated(match.group(1))
        found += [_unescape(m.group(1)).decode("latin-1") for m in re.finditer(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content)]
    return found


def _inflated(raw: bytes) -> bytes:
    """A stream's content, inflated when compressed. Its last byte may be a carriage
    return (compressed bytes are any bytes), or the "\r\n" before endstream: try it
    both ways, else it was a notice's page lost now and then, as the bytes fell."""
    for candidate in (raw, raw[:-1]) if raw.endswith(b"\r") else (raw,):
        with contextlib.suppress(zlib.error):
            return zlib.decompress(candidate)
    return raw[:-1] if raw.endswith(b"\r") else raw


def pdf_text(data: bytes) -> str:
    return "\n".join(pdf_strings(data))


def _program(db, code: str) -> Program:
    ensure_programs(db)
    return db.get(Program, code)


def _account(db, serial: int, legal_name: str, program_code: str = "TL") -> Account:
    program = _program(db, program_code)
    account = Account(
        number=make_number(program.number_prefix, serial),
        program_code=program.code,
        legal_name=legal_name,
        operating_name=None,
        status="active",
        mailing_address="PO Box 100\nBanff AB  T1L 1A1",
        physical_address="",
        opened_on=date(2025, 1, 1),
    )
    db.add(account)
    db.flush()
    return account


def _post(db, account, kind, cents, processed, period_end, reference, description=""):
    ledger.post(
        db,
        account_id=account.id,
        kind=kind,
        amount_cents=cents,
        effective_date=processed,
        processed_date=processed,
        reference=reference,
        period_end=period_end,
        description=description,
    )


def _return(
    db,
    account,
    period_end,
    received_on,
    status,
    *,
    processed_on=None,
    amended=False,
    notice_kind=None,
    notice_date=None,
    reference="R",
) -> TaxReturn:
    tax_return = TaxReturn(
        account_id=account.id,
        period_end=period_end,
        kind="return",
        amended=amended,
        received_on=received_on,
        status=status,
        processed_on=processed_on,
        reference=reference,
        notice_kind=notice_kind,
        notice_date=notice_date,
    )
    db.add(tax_return)
    db.flush()
    return tax_return


@pytest.fixture
def world(app, clock):
    """An inn's Tourism Levy account with five returns (one amended) and the March
    period's ledger; the owner also holds a second account with a return of its own."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    with app.extensions["portal.sessionmaker"]() as db:
        inn = _account(db, 12, "O\u2019Brien Hospitality \u2013 Banff Ltd.")
        db.add(FilingPeriod(account_id=inn.id, period_start=date(2026, 3, 1), period_end=MARCH, due_date=APRIL))
        _post(db, inn, "assessment", 123456, date(2026, 5, 4), MARCH, "TL-A-2603", "Levy on the March return")
        _post(db, inn, "penalty", 6173, date(2026, 5, 4), MARCH, "PEN-2603", "Late filing penalty")
        _post(db, inn, "payment", -100000, date(2026, 5, 20), MARCH, "PMT-7731")
        _post(db, inn, "adjustment", -23456, date(2026, 7, 10), MARCH, "ADJ-2603", "Amended return")
        _post(db, inn, "interest", 999, date(2026, 8, 1), MARCH, "INT-2603")  # after both notices
        _post(db, inn, "assessment", 5000, date(2026, 5, 5), APRIL, "TL-A-2604")  # another period
        first = _return(
            db,
            inn,
            MARCH,
            date(2026, 4, 20),
            "assessed",
            processed_on=date(2026, 5, 4),
            notice_kind="assessment",
            notice_date=date(2026, 5, 4),
            reference="TL-R-2603",
        )
        amended = _return(
            db,
            inn,
            MARCH,
            date(2026, 6, 15),
            "reassessed",
            processed_on=date(2026, 7, 10),
            amended=True,
            notice_kind="reassessment",
            notice_date=date(2026, 7, 10),
            reference="TL-R-2603-A",
        )
        pending = _return(db, inn, APRIL, date(2026, 5, 25), "in_progress", reference="TL-R-2604")
        _return(
            db,
            inn,
            date(2026, 2, 28),
            date(2026, 3, 20),
            "processed",
            processed_on=date(2026, 4, 1),
            reference="TL-R-2602",
        )
        _return(db, inn, date(2026, 5, 31), date(2026, 6, 10), "received", reference="TL-R-2605")
        other = _account(db, 13, "Lakeside Lodge Ltd.")
        others_return = _return(
            db,
            other,
            MARCH,
            date(2026, 4, 2),
            "assessed",
            processed_on=date(2026, 4, 9),
            notice_kind="assessment",
            notice_date=date(2026, 4, 9),
            reference="LL-R-2603",
        )
        grants.give(db, clock(), user_id=owner, account=inn, role="owner")
        grants.give(db, clock(), user_id=owner, account=other, role="owner")
        db.commit()
        return {
            "inn": inn.number,
            "other": other.number,
            "first": first.id,
            "amended": amended.id,
            "pending": pending.id,
            "others_return": others_return.id,
        }


# --- Periods and Latin-1 text (no database) -------------------------------------------


def _spec(code: str) -> Program:
    return Program(**next(spec for spec in PROGRAMS if spec["code"] == code))


def test_a_period_runs_from_the_programs_frequency_or_is_just_its_end():
    assert period_text(period_start(_spec("TL"), MARCH), MARCH) == "1\u201331 March 2026"
    assert period_text(period_start(_spec("FTR"), MARCH), MARCH) == "1 January \u2013 31 March 2026"
    june = date(2026, 6, 30)
    assert period_text(period_start(_spec("CIT"), june), june) == "1 July 2025 \u2013 30 June 2026"
    assert period_start(_spec("CIT"), date(2026, 6, 15)) is None
    assert period_text(None, date(2026, 6, 15)) == "ending 15 June 2026"


def test_pdf_text_is_latin_1_whatever_the_name():
    text = notices.pdf_text("O\u2019Brien \u201cInn\u201d \u2013 \u0141\u00f3d\u017a\u2026 Caf\u00e9 \u682a\tok\x07")
    assert text == 'O\'Brien "Inn" - L\u00f3dz... Caf\u00e9 ? ok'
    text.encode("latin-1")


# --- The assessment status page ------------------------------------------------------


def test_assessment_status_lists_every_return_newest_period_first(app, world):
    client = signed_in(app, OWNER)
    response = client.get(f"/accounts/{world['inn']}/returns")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = as_written(body(response))
    assert "Assessment status" in page and "5 returns, newest period first" in page
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>(.*?)</tr>", page, re.S)
    assert [period for period, _ in rows] == [
        "1\u201331 May 2026",
        "1\u201330 April 2026",
        "1\u201331 March 2026",
        "1\u201331 March 2026",
        "1\u201328 February 2026",
    ]
    cells = [re.findall(r"<td>(.*?)</td>", rest, re.S) for _, rest in rows]
    assert [c[0] for c in cells] == ["Return", "Return", "Amended return", "Return", "Return"]
    assert [c[1] for c in cells] == ["10 June 2026", "25 May 2026", "15 June 2026", "20 April 2026", "20 March 2026"]
    assert [re.sub(r"<[^>]+>", "", c[2]) for c in cells] == [
        "Received",
        "In progress",
        "Reassessed",
        "Assessed",
        "Processed",
    ]
    assert [c[3] for c in cells] == ["Not yet", "Not yet", "10 July 2026", "4 May 2026", "1 April 2026"]
    # A link to each notice there is, saying which period (and which return) to a screen reader.
    inn = world["inn"]
    assert (
        f'<a href="/accounts/{inn}/returns/{world["amended"]}/notice.pdf" download data-hx-boost="false">'
        'Notice of reassessment<span class="visually-hidden"> for the period 1\u201331 March 2026, amended '
        "return</span> (PDF)</a>"
    ) in page
    assert (
        f'<a href="/accounts/{inn}/returns/{world["first"]}/notice.pdf" download data-hx-boost="false">'
        'Notice of assessment<span class="visually-hidden"> for the period 1\u201331 March 2026</span> (PDF)</a>'
    ) in page
    assert page.count("notice.pdf") == 2 and page.count("None yet") == 3
    assert "<script>" not in page and "style=" not in page
    # Only this account's returns.
    assert "Lakeside" not in page and "LL-R-2603" not in page
    assert f'href="/accounts/{inn}/returns" aria-current="page"' in page


def test_an_account_with_no_returns_says_so(app, clock):
    owner = make_user(app, email=OWNER)
    with app.extensions["portal.sessionmaker"]() as db:
        account = _account(db, 30, "Fuel Refunds Ltd.", program_code="FTR")
        grants.give(db, clock(), user_id=owner, account=account, role="owner")
        db.commit()
        number = account.number
    page = body(signed_in(app, OWNER).get(f"/accounts/{number}/returns"))
    assert "We have not received any claims for this account yet." in page and "<table" not in page


# --- The notice PDF --------------------------------------------------------------------


def test_notice_of_assessment_is_a_pdf_attachment_built_from_the_ledger(app, world):
    client = signed_in(app, OWNER)
    response = client.get(f"/accounts/{world['inn']}/returns/{world['first']}/notice.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"] == f"attachment; filename=notice-{world['inn']}-2026-03-31.pdf"
    assert response.headers["Cache-Control"] == "no-store"
    lines = pdf_strings(response.data)
    text = "\n".join(lines)
    assert "Tax and Revenue Administration, Alberta" in lines
    assert "Notice of assessment" in lines and "Date of notice: 4 May 2026" in lines
    assert "4100 0001 26" in lines  # the account number, formatted
    assert "O'Brien Hospitality - Banff Ltd." in lines  # Latin-1: no curly quote or en dash
    assert "PO Box 100" in lines and "Banff AB  T1L 1A1" in lines and "Tourism Levy" in lines
    assert "1-31 March 2026" in lines
    # The period's entries processed on or before the notice date, and nothing else.
    for expected in ("4 May 2026", "Assessment", "TL-A-2603", "$1,234.56", "Penalty", "PEN-2603", "$61.73"):
        assert expected in lines, expected
    for absent in ("PMT-7731", "ADJ-2603", "INT-2603", "TL-A-2604", "$50.00"):
        assert absent not in text, absent
    assert "Balance for this period" in lines and lines.count("$1,296.29 owing") == 2
    assert "You owe $1,296.29 for this period." in text
    # 90 days after 4 May 2026.
    assert "Objection deadline: 2 August 2026" in lines
    assert "notice of objection by 2 August 2026" in text
    assert "Demonstration document" in text and "Page 1 of" in text


def test_notice_of_reassessment_counts_what_was_processed_by_its_date(app, world):
    client = signed_in(app, OWNER)
    response = client.get(f"/accounts/{world['inn']}/returns/{world['amended']}/notice.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    lines = pdf_strings(response.data)
    text = "\n".join(lines)
    assert "Notice of reassessment" in lines and "Date of notice: 10 July 2026" in lines
    for expected in ("TL-A-2603", "PEN-2603", "PMT-7731", "$1,000.00 credit", "ADJ-2603", "$234.56 credit"):
        assert expected in lines, expected
    assert "INT-2603" not in text and "TL-A-2604" not in text
    # 1,234.56 + 61.73 - 1,000.00 - 234.56
    assert lines.count("$61.73 owing") == 2
    assert "Objection deadline: 8 October 2026" in lines
    assert "This notice replaces any earlier notice for this period." in text


def test_notice_with_compression_off_has_its_text_in_the_bytes(app, world):
    """domain.notices is plain Python: the same figures without Flask, text searchable."""
    with app.extensions["portal.sessionmaker"]() as db:
        account = db.scalar(select(Account).where(Account.number == world["inn"]))
        notice = notices.notice_for(db, account, db.get(TaxReturn, world["first"]))
        assert notice.balance_cents == 129629 and isinstance(notice.balance_cents, int)
        assert notice.objection_deadline == date(2026, 8, 2)
        assert [line.reference for line in notice.lines] == ["TL-A-2603", "PEN-2603"]
        assert notices.notice_for(db, account, db.get(TaxReturn, world["pending"])) is None
    raw = notices.render_pdf(notice, compress=False)
    assert raw.startswith(b"%PDF-")
    for expected in (
        b"(4100 0001 26)",
        b"(1-31 March 2026)",
        b"($1,234.56)",
        b"($1,296.29 owing)",
        b"(Objection deadline: 2 August 2026)",
    ):
        assert expected in raw, expected


def test_a_claim_on_a_credit_says_so(app, clock):
    owner = make_user(app, email=OWNER)
    with app.extensions["portal.sessionmaker"]() as db:
        account = _account(db, 31, "Farm Fuel Co-op", program_code="FTR")
        _post(db, account, "assessment", -45000, date(2026, 5, 1), MARCH, "FTR-2026Q1")
        claim = _return(
            db,
            account,
            MARCH,
            date(2026, 4, 10),
            "assessed",
            processed_on=date(2026, 5, 1),
            notice_kind="assessment",
            notice_date=date(2026, 5, 1),
            reference="C-1",
        )
        claim.kind = "claim"
        grants.give(db, clock(), user_id=owner, account=account, role="owner")
        db.commit()
        number, claim_id = account.number, claim.id
    response = signed_in(app, OWNER).get(f"/accounts/{number}/returns/{claim_id}/notice.pdf")
    text = pdf_text(response.data)
    assert "1 January - 31 March 2026" in text and "Fuel Tax Refund claim" in text
    assert "$450.00 credit" in text and "You have a credit of $450.00 for this period." in text


def test_a_return_of_another_account_is_not_found_through_this_accounts_url(app, world):
    client = signed_in(app, OWNER)  # who holds both accounts
    assert client.get(f"/accounts/{world['other']}/returns/{world['others_return']}/notice.pdf").status_code == 200
    wrong = client.get(f"/accounts/{world['inn']}/returns/{world['others_return']}/notice.pdf")
    assert wrong.status_code == 404 and "Page not found" in body(wrong)
    # No notice yet, no such return, an id no column can hold: all the same 404.
    for return_id in (world["pending"], 999999, 2**40):
        response = client.get(f"/accounts/{world['inn']}/returns/{return_id}/notice.pdf")
        assert response.status_code == 404 and without_tokens(body(response)) == without_tokens(body(wrong))


def test_reading_returns_and_notices_changes_nothing(app, world):
    def snapshot():
        with app.extensions["portal.sessionmaker"]() as db:
            return (
                db.scalar(select(func.count()).select_from(LedgerEntry)),
                [
                    (r.id, r.status, r.processed_on, r.notice_kind, r.notice_date)
                    for r in db.scalars(select(TaxReturn).order_by(TaxReturn.id))
                ],
            )

    before = snapshot()
    client = signed_in(app, OWNER)
    client.get(f"/accounts/{world['inn']}/returns")
    client.get(f"/accounts/{world['inn']}/returns/{world['first']}/notice.pdf")
    assert snapshot() == before


# --- Who may see what --------------------------------------------------------------

ROUTES = ["/accounts/{n}/returns", "/accounts/{n}/returns/{r}/notice.pdf"]
WHO = ["anonymous", "owner", "without-view-returns", "no-grant", "revoked"]


@pytest.fixture
def matrix(app, clock):
    people = {who: make_user(app, email=f"{who}@example.com", name=who.title()) for who in WHO[1:]}
    with app.extensions["portal.sessionmaker"]() as db:
        account = _account(db, 40, "Matrix Motel Ltd.")
        _post(db, account, "assessment", 10000, date(2026, 5, 4), MARCH, "MM-2603")
        tax_return = _return(
            db,
            account,
            MARCH,
            date(2026, 4, 20),
            "assessed",
            processed_on=date(2026, 5, 4),
            notice_kind="assessment",
            notice_date=date(2026, 5, 4),
        )
        grants.give(db, clock(), user_id=people["owner"], account=account, role="owner")
        grants.give(
            db,
            clock(),
            user_id=people["without-view-returns"],
            account=account,
            role="viewer",
            permissions=("view_financial",),
        )
        revoked = grants.give(db, clock(), user_id=people["revoked"], account=account, role="owner")
        db.flush()
        revoked.revoked_at = clock()
        db.commit()
        return {"n": account.number, "r": tax_return.id}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("route", ROUTES)
def test_access_matrix(app, matrix, who, route):
    url = route.format(**matrix)
    if who == "anonymous":
        response = app.test_client().get(url)
        assert response.status_code == 303
        location = urlsplit(response.headers["Location"])
        assert location.path == "/auth/sign-in" and "next=" in location.query
        assert b"Matrix Motel" not in response.data
        return
    client = signed_in(app, f"{who}@example.com")
    response = client.get(url)
    if who == "owner":
        assert response.status_code == 200
        if route.endswith(".pdf"):
            assert response.data.startswith(b"%PDF-") and "Matrix Motel Ltd." in pdf_strings(response.data)
        else:
            assert "Matrix Motel Ltd." in body(response)
        return
    assert response.status_code == 404 and response.mimetype == "text/html"
    page = body(response)
    assert "Matrix Motel" not in page
    if who == "revoked":  # told, on the same 404, that their access was removed
        assert "You no longer have access to this account" in page
        return
    assert "Page not found" in page
    # The same answer as an account number that does not exist at all.
    unknown = client.get(route.format(n=make_number("41", 9999), r=matrix["r"]))
    assert unknown.status_code == 404 and without_tokens(body(unknown)) == without_tokens(page)


def test_the_pdf_reader_keeps_a_compressed_stream_whose_last_byte_is_a_carriage_return():
    """Compressed bytes are any bytes: one stream in 256 ends in "\r", which the reader
    once took for the line end before endstream, losing that page's text (a notice's
    first page, now and then in CI)."""
    text = b"BT (Hello 1,880.00) Tj ET"
    compressed = next(c for c in (zlib.compress(text + str(n).encode()) for n in range(100_000)) if c.endswith(b"\r"))
    assert "Hello 1,880.00" in pdf_text(b"stream\n" + compressed + b"\nendstream")
    assert "Hello 1,880.00" in pdf_text(b"stream\r\n" + zlib.compress(text) + b"\r\nendstream")
