"""The account header's tabs: a tab is marked the current page on its own page only;
on a page under it (the details and every service the Summary lists, a person's
access under Manage access) it is marked the current section, and every account
page marks exactly one tab. Checked over every account page the demo owner reaches."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import demo
from tests.accounts_factory import sessionmaker_of
from tests.conftest import Auth
from tests.test_performance_budgets import OWNER_EMAIL, OWNER_PASSWORD, crawl

MARKED = re.compile(r'<a href="([^"]+)" aria-current="(page|true)">([^<]+)</a>')


def _tabs(page: str) -> list[tuple[str, str, str]] | None:
    nav = re.search(r'<nav class="sub-nav" aria-label="This account">.*?</nav>', page, re.S)
    return None if nav is None else MARKED.findall(nav.group(0))


def test_each_account_page_marks_one_tab_and_only_a_tabs_own_page_is_the_current_page(app, clock):
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    owner = app.test_client()
    Auth(owner, app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    sections: dict[str, str] = {}
    for result in crawl(owner, ["/"]):
        marked = _tabs(result["page"])
        if marked is None:
            continue
        path = urlsplit(result["url"]).path
        assert len(marked) == 1, (result["url"], marked)
        [(href, kind, label)] = marked
        assert (kind == "page") == (href == path), (result["url"], marked)
        sections[re.sub(r"/\d{10}/", "/N/", path)] = f"{label} {kind}"
    assert sections["/accounts/N/"] == "Summary page"
    assert sections["/details/N/"] == "Summary true"  # the account details are under Summary, not it
    assert sections["/waivers/N/"] == sections["/filing/N/"] == "Summary true"
    assert sections["/access/N/add"] == "Manage access true"
    assert sections["/mail/N/delivery"] == "Mail true"
