"""Issue 20, item 9: the help guides. Each guide renders, the help index lists every
guide, every template in templates/pages/help/ is a guide, and each page a guide
helps with links to it. HELPED below names that page for each guide: a guide added
to HELP_GUIDES without a page that links to it fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import demo
from blueprints.pages import HELP_GUIDES
from tests.accounts_factory import sessionmaker_of
from tests.conftest import Auth
from tests.test_performance_budgets import OWNER_EMAIL, OWNER_PASSWORD

HELP_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "pages" / "help"
LEVY = "4100102716"  # the demo owner's Tourism Levy account, which offers every function

# The page each guide helps with, as the demo owner sees it (None: signed out is enough).
HELPED = {
    "account-number": "/enrol/",
    "enrol": "/enrol/",
    "manage-access": f"/access/{LEVY}/",
    "representatives": f"/consents/{LEVY}/",
    "file": f"/filing/{LEVY}/",
    "upload": f"/documents/{LEVY}/",
    "object": f"/objections/{LEVY}/",
    "waiver": f"/waivers/{LEVY}/",
    "payment-arrangement": f"/arrangements/{LEVY}/",
    "direct-deposit": f"/direct-deposit/{LEVY}/",
    "payments": f"/accounts/{LEVY}/transactions",
}


@pytest.fixture
def owner(app, clock):
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    client = app.test_client()
    Auth(client, app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    return client


def links(page: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', page))


def test_every_guide_renders_signed_out_with_its_title(client):
    for slug, title in HELP_GUIDES.items():
        response = client.get(f"/pages/help/{slug}")
        assert response.status_code == 200, slug
        page = response.get_data(as_text=True)
        assert f'<h1 class="heading-l">{title}</h1>' in page, slug
        assert "/pages/help/" in links(page), slug  # the way back to the index


def test_the_index_lists_every_guide_and_every_template_is_a_guide(client):
    page = client.get("/pages/help/").get_data(as_text=True)
    assert {f"/pages/help/{slug}" for slug in HELP_GUIDES} <= links(page)
    templates = {p.stem for p in HELP_TEMPLATES.glob("*.html") if not p.name.startswith("_")} - {"index"}
    assert templates == set(HELP_GUIDES)
    assert "/pages/help/" in links(client.get("/pages/privacy").get_data(as_text=True))  # the footer


def test_an_unknown_guide_is_not_found(client):
    assert client.get("/pages/help/no-such-guide").status_code == 404
    assert client.get("/pages/help/_guide").status_code == 404


def test_each_helped_page_links_to_its_guide(owner):
    assert set(HELPED) == set(HELP_GUIDES), "every guide needs a page that links to it"
    for slug, url in HELPED.items():
        response = owner.get(url)
        assert response.status_code == 200, url
        assert f"/pages/help/{slug}" in links(response.get_data(as_text=True)), (slug, url)


def test_the_account_number_field_hint_links_to_its_guide(owner):
    page = owner.get("/enrol/").get_data(as_text=True)
    hint = re.search(r'<div class="hint" id="number-hint">(.*?)</div>', page, re.S)
    assert hint and 'href="/pages/help/account-number"' in hint.group(1)
    assert 'aria-describedby="number-hint"' in page


def test_the_account_summary_links_to_the_payments_guide(owner):
    page = owner.get(f"/accounts/{LEVY}/").get_data(as_text=True)
    assert "/pages/help/payments" in links(page)
