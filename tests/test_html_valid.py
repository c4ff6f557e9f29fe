"""Every page is valid HTML, as the Nu Html Checker (vnu.jar, the W3C's) reads it.

The pages are the ones the budget crawl reaches (tests/test_performance_budgets.py)
from the demo data: signed out, as the demo owner and as the demo staff member. Each
is saved to a folder and the checker runs once over all of them (a JVM takes
seconds to start). An error fails the test; a warning is only listed.

The checker is npm's vnu-jar (a dev dependency in package.json, installed by
`make test`), run with Debian's Java (.ci/test-services installs it). Outside CI a
missing Java or vnu.jar skips the test; under CI it fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyotp
import pytest

import demo
from tests.accounts_factory import sessionmaker_of
from tests.conftest import JAVA, UNDER_CI, VNU_JAR, Auth, csrf_from, missing_html_checker
from tests.test_performance_budgets import OWNER_EMAIL, OWNER_PASSWORD, crawl

STAFF_EMAIL, STAFF_PASSWORD = next((p[2], p[3]) for p in demo.DEMO_PEOPLE if p[4])
KNOWN_INVALID = "the checker's own test"
KNOWN_INVALID_PAGE = '<!doctype html><html lang="en"><title>x</title><body hx-boost="true"><p>x</p></body></html>'


@pytest.fixture
def db_backend():
    """The markup is the same on either database: this test runs on SQLite only (it
    asks for its app at run time, so conftest's backend parametrisation leaves it be)."""
    return "sqlite"


def signed_in_staff(app, clock):
    client = app.test_client()
    response = client.post(
        "/staff/sign-in",
        data={
            "email": STAFF_EMAIL,
            "password": STAFF_PASSWORD,
            "code": pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET).at(clock()),
            "csrf_token": csrf_from(client.get("/staff/sign-in").get_data(as_text=True)),
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def crawled_pages(app, clock) -> dict[str, str]:
    """Every page the three crawls reach, by "who url"."""
    owner = app.test_client()
    Auth(owner, app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    crawls = {
        "signed-out": crawl(app.test_client(), ["/", "/auth/sign-in"]),
        "owner": crawl(owner, ["/", "/access/reviews"]),
        "staff": crawl(signed_in_staff(app, clock), ["/staff/"]),
    }
    for who, results in crawls.items():
        assert len(results) >= 5, (who, [r["url"] for r in results])
    return {f"{who} {r['url']}": r["page"] for who, results in crawls.items() for r in results}


def check(pages: dict[str, str], folder: Path) -> list[dict]:
    """The checker's messages, each with the page it is about."""
    by_file = {}
    for number, (page, html) in enumerate(pages.items()):
        path = folder / f"page-{number:04d}.html"
        path.write_text(html, encoding="utf-8")
        by_file[path.resolve().as_uri()] = page
    result = subprocess.run(
        [str(JAVA), "-jar", str(VNU_JAR), "--format", "json", "--stdout", *sorted(str(p) for p in folder.iterdir())],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip(), f"the checker said nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    messages = json.loads(result.stdout)["messages"]
    for message in messages:
        url = message.get("url", "")
        message["page"] = by_file.get(url) or by_file.get(url.replace("file:/", "file:///", 1)) or url
    return messages


def describe(message: dict) -> str:
    return f"{message['page']} line {message.get('lastLine', '?')}: {message['message']} [{message.get('extract', '')}]"


def test_every_crawled_page_is_valid_html(request, clock, tmp_path):
    why_not = missing_html_checker()
    if why_not:
        pytest.fail(why_not) if UNDER_CI else pytest.skip(why_not)
    app = request.getfixturevalue("app")
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    # One page the checker must refuse, checked in the same run: a checker that
    # passes everything would pass the test too.
    pages = {KNOWN_INVALID: KNOWN_INVALID_PAGE, **crawled_pages(app, clock)}
    folder = tmp_path / "pages"
    folder.mkdir()
    messages = check(pages, folder)
    assert any(m["page"] == KNOWN_INVALID and m["type"] == "error" for m in messages), messages[:5]
    messages = [m for m in messages if m["page"] != KNOWN_INVALID]
    pages.pop(KNOWN_INVALID)
    errors = [m for m in messages if m["type"] != "info"]
    warnings = [m for m in messages if m["type"] == "info" and m.get("subType") == "warning"]
    for warning in warnings:
        print("warning:", describe(warning))
    print(f"\n{len(pages)} pages checked: {len(errors)} errors, {len(warnings)} warnings")
    assert errors == [], f"{len(errors)} errors:\n" + "\n".join(map(describe, errors[:200]))
