"""Issue 7's budgets that do not depend on the machine's speed: bytes and requests.

Every page a taxpayer (and a signed-out visitor) can reach by links from the demo
data is fetched as a browser fetches it (Accept-Encoding: br, gzip) and weighed:
the document at most 14,000 B on the wire (one TCP initial window), the first visit
(the document and every file it asks for) at most 30,000 B and at most 4 requests.
Every htmx swap of a filter or page: one request, at most 2,000 B for 50 rows.
Repeat visits: static files immutable under hashed names, and an unchanged
fragment answers 304. The throttled browser figures are `make bench`'s
(bench/journey.py, docs/performance.md); the browser test in
tests/browser/test_budgets_journey.py checks the same budgets on the wire.

"On the wire" here is the status line, the headers and the body as sent, plus
SERVER_HEADERS for what gunicorn adds (Date, Server, Connection). Budgets are read
strictly: "30 KB" is 30,000 B.
"""

from __future__ import annotations

import gzip
import html
import re
from datetime import date

import brotli
import pytest

import demo
from tests.accounts_factory import busy_history, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import Auth, csrf_from, make_user

FIRST_VISIT_BYTES = 30_000
FIRST_VISIT_REQUESTS = 4
DOCUMENT_BYTES = 14_000
SWAP_BYTES = 2_000
SERVER_HEADERS = 80  # "Date: …\r\nServer: gunicorn\r\nConnection: keep-alive\r\n" (79 B), which the server adds
BROWSER = {"Accept-Encoding": "br, gzip"}
HTMX = {**BROWSER, "HX-Request": "true"}
OWNER_EMAIL, OWNER_PASSWORD = next((p[2], p[3]) for p in demo.DEMO_PEOPLE if p[2] == demo.OWNER)

# Links a crawl does not follow: files (not pages), and what signs out.
NOT_PAGES = re.compile(r"/static/|\.csv|\.pdf|/download|/csv|format=|sign-out|/file$|/original")


def wire_bytes(response) -> int:
    head = f"HTTP/1.1 {response.status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in response.headers.items())
    return len(head.encode("latin-1")) + 2 + SERVER_HEADERS + len(response.get_data())


def decoded(response) -> str:
    data = response.get_data()
    if response.headers.get("Content-Encoding") == "br":
        data = brotli.decompress(data)
    elif response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def subresources(page: str) -> list[str]:
    """What a browser fetches for a page before it is usable: scripts, stylesheets, images."""
    found = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page)
    found += re.findall(r'<link[^>]*rel="(?:stylesheet|preload|icon)"[^>]*href="([^"]+)"', page)
    found += re.findall(r'<img[^>]*\ssrc="([^"]+)"', page)
    return [url for url in found if not url.startswith("data:")]


def first_visit(client, url: str) -> dict:
    response = client.get(url, headers=BROWSER)
    assert response.status_code == 200, url
    page = decoded(response)
    files = subresources(page)
    total = wire_bytes(response)
    for file_url in files:
        asset = client.get(file_url, headers=BROWSER)
        assert asset.status_code == 200, file_url
        total += wire_bytes(asset)
    return {"url": url, "document": wire_bytes(response), "requests": 1 + len(files), "total": total, "page": page}


def crawl(client, start: list[str], limit: int = 400) -> list[dict]:
    """Every page reachable by links from `start`, each weighed as a first visit."""
    seen, queue, results = set(), list(start), []
    while queue and len(results) < limit:
        url = queue.pop(0)
        if url in seen or NOT_PAGES.search(url):
            continue
        seen.add(url)
        response = client.get(url, headers=BROWSER)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        results.append(first_visit(client, url))
        for link in re.findall(r'<a[^>]*\shref="(/[^"#]*)"', results[-1]["page"]):
            link = link.replace("&amp;", "&")
            if link not in seen and link != url:
                queue.append(link)
    return results


def over_budget(results: list[dict]) -> list[str]:
    problems = []
    for r in results:
        if r["document"] > DOCUMENT_BYTES:
            problems.append(f"{r['url']}: document {r['document']:,} B > {DOCUMENT_BYTES:,}")
        if r["total"] > FIRST_VISIT_BYTES:
            problems.append(f"{r['url']}: first visit {r['total']:,} B > {FIRST_VISIT_BYTES:,}")
        if r["requests"] > FIRST_VISIT_REQUESTS:
            problems.append(f"{r['url']}: {r['requests']} requests > {FIRST_VISIT_REQUESTS}")
    return problems


@pytest.fixture
def demo_app(app, clock):
    with sessionmaker_of(app)() as db:
        assert demo.build_demo(db, clock())
    return app


def test_every_page_a_signed_out_visitor_reaches_is_within_the_first_visit_budget(demo_app):
    results = crawl(demo_app.test_client(), ["/", "/auth/sign-in"])
    assert len(results) >= 5, [r["url"] for r in results]
    assert over_budget(results) == []
    biggest = max(results, key=lambda r: r["total"])
    print(f"\n{len(results)} signed-out pages; heaviest first visit {biggest['url']}: {biggest['total']:,} B")


def test_every_page_the_demo_owner_reaches_is_within_the_first_visit_budget(demo_app):
    client = demo_app.test_client()
    Auth(client, demo_app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    results = crawl(client, ["/"])
    urls = [r["url"] for r in results]
    assert len(results) >= 30, urls
    assert any("/transactions" in u for u in urls) and any(u.startswith("/filing/") for u in urls), urls
    assert over_budget(results) == []
    biggest = max(results, key=lambda r: r["document"])
    print(
        f"\n{len(results)} signed-in pages; largest document {biggest['url']}: {biggest['document']:,} B; "
        f"heaviest first visit {max(r['total'] for r in results):,} B"
    )


def test_a_page_fetched_by_htmx_leaves_out_the_stylesheet_the_page_already_has(demo_app):
    client = demo_app.test_client()
    whole = decoded(client.get("/auth/sign-in", headers=BROWSER))
    boosted = decoded(client.get("/auth/sign-in", headers={**HTMX, "HX-Boosted": "true"}))
    assert "<style>" in whole and "<style>" not in boosted
    assert re.sub(r"\s*<style>.*?</style>", "", whole, flags=re.S).count("<form") == boosted.count("<form")


# --- swaps ------------------------------------------------------------------------------


@pytest.fixture
def busy(app, clock):
    """An account with 130 entries over four periods; a client signed in as its owner."""
    owner = make_user(app, email="owner@example.com", name="Olive Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=11, legal_name="Busy Hotel Inc.", operating_name=None)
        busy_history(db, account)
        give(db, clock(), owner, account)
        db.commit()
        number = account.number
    return signed_in(app, "owner@example.com"), number


def _swap(client, url: str):
    response = client.get(url, headers={**HTMX, "HX-Current-URL": "http://localhost" + url})
    assert response.status_code == 200, url
    fragment = decoded(response)
    assert "<html" not in fragment and subresources(fragment) == []  # one request: nothing more to fetch
    return response, fragment


def test_a_fifty_row_transactions_swap_is_one_request_of_at_most_two_kilobytes(busy):
    client, number = busy
    first, fragment = _swap(client, f"/accounts/{number}/transactions?mode=processed")
    assert fragment.count("<tr>") - 1 == 50
    next_url = html.unescape(re.search(r'<a href="([^"]+)" rel="next"', fragment).group(1))
    period, _period_fragment = _swap(client, f"/accounts/{number}/transactions?mode=period&period=2026-06-30")
    following, next_fragment = _swap(client, next_url)
    assert next_fragment.count("<tr>") - 1 == 50
    sizes = {"first page": wire_bytes(first), "period": wire_bytes(period), "next page": wire_bytes(following)}
    print(f"\ntransactions swaps on the wire: {sizes}")
    assert all(size <= SWAP_BYTES for size in sizes.values()), sizes


def test_the_dashboard_search_swap_is_within_budget(demo_app):
    client = demo_app.test_client()
    Auth(client, demo_app).sign_in(OWNER_EMAIL, OWNER_PASSWORD)
    response, _fragment = _swap(client, "/?q=a")
    assert wire_bytes(response) <= SWAP_BYTES, wire_bytes(response)


# --- repeat visits -----------------------------------------------------------------------


def test_an_unchanged_fragment_answers_304_and_a_changed_one_does_not(app, busy, clock):
    client, number = busy
    url = f"/accounts/{number}/transactions?mode=processed"
    first = client.get(url, headers=HTMX)
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = client.get(url, headers={**HTMX, "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert wire_bytes(again) < 1_500
    # A new entry changes the first page: the full fragment comes back.
    with sessionmaker_of(app)() as db:
        from sqlalchemy import select

        from models import Account

        account = db.scalar(select(Account).where(Account.number == number))
        post(db, account, "payment", -100, date(2026, 11, 20), period_end=date(2026, 10, 31), reference="NEW1")
        db.commit()
    changed = client.get(url, headers={**HTMX, "If-None-Match": etag})
    assert changed.status_code == 200 and "NEW1" in decoded(changed)
    # The same ETag from another person's session gets their own answer (a refusal), never a 304.
    make_user(app, email="stranger@example.com")
    other = signed_in(app, "stranger@example.com")
    refused = other.get(url, headers={**HTMX, "If-None-Match": changed.headers["ETag"]})
    assert refused.status_code in (403, 404)


def test_whole_pages_are_never_kept(busy):
    client, number = busy
    page = client.get(f"/accounts/{number}/transactions", headers=BROWSER)
    assert page.headers["Cache-Control"] == "no-store" and "ETag" not in page.headers


def test_signing_out_tells_the_browser_to_drop_what_it_kept(busy):
    client, _ = busy
    token = csrf_from(client.get("/").get_data(as_text=True))
    response = client.post("/auth/sign-out", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Clear-Site-Data"] == '"cache"'
    assert client.get("/auth/signed-out").headers["Clear-Site-Data"] == '"cache"'
    assert client.get("/auth/sign-in?reason=idle").headers["Clear-Site-Data"] == '"cache"'


def test_static_files_are_immutable_compressed_and_never_fetched_twice(app):
    client = app.test_client()
    page = decoded(client.get("/auth/sign-in", headers=BROWSER))
    files = subresources(page)
    assert files and all(re.search(r"\.[0-9a-f]{12}\.", url) for url in files)
    for url in files:
        response = client.get(url, headers=BROWSER)
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Encoding"] == "br"
        assert "Accept-Encoding" in response.headers["Vary"]
        gzipped = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert gzipped.headers["Content-Encoding"] == "gzip"
        plain = client.get(url)
        assert "Content-Encoding" not in plain.headers
        assert brotli.decompress(response.get_data()) == plain.get_data()
        assert gzip.decompress(gzipped.get_data()) == plain.get_data()
