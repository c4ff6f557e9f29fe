"""Issue 20, item 10: staff read plain words. Every back-office page the demo's
staff member reaches by links shows money as money, rates and keys in words and
audit events as sentences: no "_cents" key, no word "cents", no raw event code
such as `consent.submitted`, no snake_case key."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import demo
from domain import arrangements, requests, words
from models import REQUEST_KINDS, Account, User
from tests.accounts_factory import sessionmaker_of
from tests.conftest import Auth
from tests.test_assessments import FIGURES, _file
from tests.test_html_valid import signed_in_staff
from tests.test_performance_budgets import OWNER_EMAIL, OWNER_PASSWORD, crawl

# An event code as the audit log keeps it (`consent.submitted`, `pin.issued_by_staff`),
# and a key as the code names it (`balance_cents`, `rate_unit`).
EVENT_CODE = re.compile(r"\b[a-z]+(?:_[a-z]+)*\.[a-z]+(?:_[a-z]+)*\b")
SNAKE_KEY = re.compile(r"\b[a-z]+_[a-z_]+\b")
CENTS = re.compile(r"cents", re.I)


def visible_text(page: str) -> str:
    """What a person reads: the page without its tags, scripts, head and attributes."""
    body = page.split("<body", 1)[-1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def offences(text: str) -> list[str]:
    found = [m.group(0) for m in CENTS.finditer(text)]
    found += [m.group(0) for m in EVENT_CODE.finditer(text) if not _is_address(text, m)]
    found += SNAKE_KEY.findall(text)
    return found


def _is_address(text: str, match: re.Match) -> bool:
    """An email address or a host name (demo.tracs.example) is not an event code."""
    start, end = match.span()
    return (
        "@" in text[max(0, start - 40) : start] or text[end : end + 1] in (".", "@") or text[start - 1 : start] in "@."
    )


@pytest.fixture
def db_backend():
    """The words are the same on either database: SQLite only."""
    return "sqlite"


def _requests_waiting(app, clock) -> None:
    """What the demo's queues lack and the words matter most in: a return filed
    online (its answers hold rates, units and cents) and a proposed payment
    arrangement (its answers hold the balance in cents)."""
    owner = app.test_client()
    Auth(owner, app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    tourism = demo.demo_account("tourism").number
    _file(owner, tourism, FIGURES)  # October 2026, the demo's latest period
    with sessionmaker_of(app)() as db:
        account = db.scalars(select(Account).where(Account.number == tourism)).one()
        owing = arrangements.owing(db, account.id)
        proposal = arrangements.Proposal("monthly", max(owing // 3, 1), clock().date() + timedelta(days=10))
        rows = proposal.schedule(owing)
        requests.submit(
            db,
            clock(),
            account=account,
            user_id=db.scalar(select(User.id).where(User.email == OWNER_EMAIL)),
            kind="arrangement",
            key=requests.new_token(),
            summary=arrangements.summary(owing, rows, "monthly"),
            data=arrangements.request_data(owing, proposal, rows),
            build=arrangements.builder(account.id, clock(), owing, proposal),
        )
        db.commit()


def test_no_staff_page_shows_codes_keys_or_cents(request, clock):
    app = request.getfixturevalue("app")
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    _requests_waiting(app, clock)
    results = crawl(signed_in_staff(app, clock), ["/staff/"])
    assert len(results) >= 20, [r["url"] for r in results]
    problems = {}
    for result in results:
        found = offences(visible_text(result["page"]))
        if found:
            problems[result["url"]] = sorted(set(found))[:10]
    assert problems == {}, "\n".join(f"{url}: {found}" for url, found in problems.items())
    # The two requests' answers, read as words: the rate with its unit, the balance as money.
    texts = [re.sub(r"\s+", " ", visible_text(r["page"])) for r in results if "/queues/items/" in r["url"]]
    assert any("Rate: 4% " in t and "Amount: $480.00 " in t for t in texts)
    assert any(re.search(r"Balance \$[0-9,]+\.[0-9]{2} ", t) for t in texts)
    assert not any("Rate unit" in t or "percent" in t for t in texts)


# --- The one mapping ---------------------------------------------------------------------------

SOURCES = [p for folder in ("domain", "blueprints", "web") for p in Path(folder).rglob("*.py")] + [
    Path("commands.py"),
    Path("demo.py"),
]
RECORDED = re.compile(r'audit\.record\(\s*[\w.]+,\s*[\w.()]+,\s*"([a-z_]+\.[a-z_]+|[a-z_]+)"', re.S)


def test_every_event_the_code_records_has_its_words():
    recorded = {code for path in SOURCES for code in RECORDED.findall(path.read_text(encoding="utf-8"))}
    assert len(recorded) > 40, sorted(recorded)
    assert recorded - set(words.EVENT_WORDS) == set()
    for kind in REQUEST_KINDS:  # "request.<kind>", recorded from an f-string
        assert f"request.{kind}" in words.EVENT_WORDS


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("balance_cents", "Balance"),
        ("rate_unit", "Rate unit"),
        ("consent.submitted", "Consent submitted"),
        ("pin_id", "PIN"),
        ("cents", "Amount"),
        ("first_due_on", "First due on"),
    ],
)
def test_keys_read_as_words(key, expected):
    assert words.humanise(key) == expected


def test_values_read_as_words_and_money():
    assert words.answer_text(43138, "balance_cents") == "$431.38"
    assert words.answer_text("-250", "amount_cents") == "$2.50 credit"
    assert words.answer_text(True, "balance_cents") == "True"  # not a number of cents
    assert words.answer_text("demo_created", "reason") == "Demo created"
    assert words.answer_text("consent.approved") == "Consent approved"
    assert words.answer_text("receipt.pdf") == "receipt.pdf"
    assert words.event_words("nothing.known_here") == "Nothing known here"
    assert words.event_code(" consent   APPROVED ") == "consent.approved"
    assert words.event_code("consent.") == "consent."


def test_pairs_merge_a_rate_with_its_unit_and_drop_cents_said_twice():
    line = {"amount": "$480.00", "cents": 48000, "rate": "0.13", "rate_unit": "per_litre", "unit": "litres"}
    assert words.answer_pairs(line) == [("amount", "$480.00"), ("rate", "$0.13 a litre"), ("unit", "litres")]
    assert words.answer_pairs({"total": "$5.00", "total_cents": 500}) == [("total", "$5.00")]
    assert words.answer_pairs({"balance_cents": 43138}) == [("balance_cents", 43138)]
    assert words.rate_text("4", "percent") == "4%" and words.rate_text("7.20", "percent") == "7.2%"
