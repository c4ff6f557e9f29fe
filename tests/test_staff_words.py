"""Issue 20, item 10: staff read plain words. Every back-office page the demo's
staff member reaches by links shows money as money, rates and keys in words and
audit events as sentences: no "_cents" key, no word "cents", no raw event code
such as `consent.submitted`, no snake_case key."""

from __future__ import annotations

import html
import re

import pytest

import demo
from tests.accounts_factory import sessionmaker_of
from tests.test_html_valid import signed_in_staff
from tests.test_performance_budgets import crawl

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


def test_no_staff_page_shows_codes_keys_or_cents(request, clock):
    app = request.getfixturevalue("app")
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    results = crawl(signed_in_staff(app, clock), ["/staff/"])
    assert len(results) >= 20, [r["url"] for r in results]
    problems = {}
    for result in results:
        found = offences(visible_text(result["page"]))
        if found:
            problems[result["url"]] = sorted(set(found))[:10]
    assert problems == {}, "\n".join(f"{url}: {found}" for url, found in problems.items())
