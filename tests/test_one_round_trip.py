"""One round trip per action (web.follow): with htmx a successful POST answers with
the next page and its URL; a plain POST keeps post/redirect/get. The attacker's
cases first: what the followed page shows passes the access check again, nothing
off-site is followed, and a refused POST is never followed."""

from __future__ import annotations

import re

import pyotp
import pytest

from tests.accounts_factory import give, open_account, sessionmaker_of
from tests.conftest import PASSWORD, csrf_from, make_user
from web.follow import MAX_HOPS, FollowSeeOther, cookies_after, same_site_path

HTMX = {"HX-Request": "true", "HX-Boosted": "true"}
OTHER_EMAIL = "someone-else@example.com"


def text_of(response) -> str:
    return response.get_data(as_text=True)


def sign_in_token(client) -> str:
    return csrf_from(text_of(client.get("/auth/sign-in")))


def htmx_sign_in(client, email="taxpayer@example.com", password=PASSWORD, next_url=""):
    data = {"email": email, "password": password, "next": next_url, "csrf_token": sign_in_token(client)}
    return client.post("/auth/sign-in", data=data, headers=HTMX)


@pytest.fixture
def two_accounts(app, clock):
    """The taxpayer holds one account; someone else holds another."""
    me, other = make_user(app), make_user(app, email=OTHER_EMAIL, name="Other Person")
    with sessionmaker_of(app)() as db:
        mine = open_account(db, serial=11, legal_name="Mine Ltd.", operating_name=None)
        theirs = open_account(db, serial=12, legal_name="Theirs Ltd.", operating_name=None)
        give(db, clock(), me, mine, "owner")
        give(db, clock(), other, theirs, "owner")
        db.commit()
        return {"mine": mine.number, "theirs": theirs.number}


# --- The attacker's cases ---------------------------------------------------------------


def test_a_next_naming_someone_elses_account_answers_with_its_refusal(app, client, two_accounts):
    response = htmx_sign_in(client, next_url=f"/accounts/{two_accounts['theirs']}/")
    # Signed in (the session cookie came with the answer), but the page followed to is
    # checked like any other request: the other person's account is not found.
    assert response.status_code == 404
    assert "Theirs Ltd." not in text_of(response)
    assert client.get("/profile/").status_code == 200


def test_a_forged_htmx_post_is_refused_and_not_followed(app, client, auth):
    make_user(app)
    auth.sign_in()
    headers = {**HTMX, "X-CSRFToken": csrf_from(text_of(app.test_client().get("/auth/sign-in")))}
    response = client.post("/profile/details", data={"name": "Forged"}, headers=headers)
    assert response.status_code == 400
    assert "HX-Retarget" not in response.headers and response.headers.get("HX-Push-Url") == "false"
    assert "Forged" not in text_of(client.get("/profile/"))


def test_an_off_site_location_is_never_followed():
    asked = []

    def app(environ, start_response):
        asked.append(environ["PATH_INFO"])
        start_response("303 See Other", [("Location", "https://elsewhere.example/")])
        return [b""]

    for location in ("https://elsewhere.example/", "//elsewhere.example/", "/\\elsewhere.example", "elsewhere"):
        assert same_site_path(location) is None
    status, headers = call(FollowSeeOther(app), {"REQUEST_METHOD": "POST", "HTTP_HX_REQUEST": "true"})
    assert status.startswith("303") and ("Location", "https://elsewhere.example/") in headers
    assert asked == ["/"]


def test_a_redirect_loop_stops_after_a_few_hops():
    asked = []

    def app(environ, start_response):
        asked.append(environ["REQUEST_METHOD"])
        start_response("303 See Other", [("Location", "/again")])
        return [b""]

    status, headers = call(FollowSeeOther(app), {"REQUEST_METHOD": "POST", "HTTP_HX_REQUEST": "true"})
    assert status.startswith("303") and asked == ["POST"] + ["GET"] * MAX_HOPS
    assert not any(name == "HX-Retarget" for name, _ in headers)


def test_the_followed_get_carries_no_body_and_the_new_cookies():
    seen = []

    def app(environ, start_response):
        seen.append(dict(environ))
        if environ["REQUEST_METHOD"] == "POST":
            start_response(
                "303 See Other",
                [("Location", "/next%20page?x=1"), ("Set-Cookie", "s=new; Path=/"), ("Set-Cookie", "gone=; Max-Age=0")],
            )
            return [b""]
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<main>next</main>"]

    environ = {
        "REQUEST_METHOD": "POST",
        "HTTP_HX_REQUEST": "true",
        "HTTP_HX_TRIGGER": "form",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": "6",
        "HTTP_COOKIE": "s=old; gone=1; kept=2",
    }
    status, headers = call(FollowSeeOther(app), environ)
    followed = seen[1]
    assert followed["REQUEST_METHOD"] == "GET" and followed["PATH_INFO"] == "/next page"
    assert followed["QUERY_STRING"] == "x=1" and followed["HTTP_HX_BOOSTED"] == "true"
    assert "CONTENT_TYPE" not in followed and "CONTENT_LENGTH" not in followed and "HTTP_HX_TRIGGER" not in followed
    assert followed["HTTP_COOKIE"] == "s=new; kept=2"
    assert status.startswith("200")
    assert ("Set-Cookie", "s=new; Path=/") in headers and ("HX-Push-Url", "/next%20page?x=1") in headers
    assert ("HX-Retarget", "body") in headers and ("HX-Reswap", "innerHTML") in headers


def test_cookies_after_reads_a_browsers_rules():
    jar = cookies_after(
        "a=1; b=2", [("Set-Cookie", "b=3; HttpOnly"), ("Set-Cookie", "a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT")]
    )
    assert jar == "b=3"


def call(middleware, environ: dict):
    import io

    environ.setdefault("PATH_INFO", "/")
    environ.setdefault("wsgi.input", io.BytesIO(b"name=x"))
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured.update(status=status, headers=headers)

    b"".join(middleware(environ, start_response))
    return captured["status"], captured["headers"]


# --- One round trip with htmx; post/redirect/get without ---------------------------------


def test_sign_in_answers_with_the_dashboard_and_a_new_session(app, client, two_accounts):
    before = sign_in_token(client)
    response = htmx_sign_in(client)
    assert response.status_code == 200 and response.headers["HX-Push-Url"] == "/"
    assert response.headers["HX-Retarget"] == "body" and "HX-Request" in response.headers["Vary"]
    page = text_of(response)
    assert "Mine Ltd." in page and '<div class="page" id="page"' in page
    # The page carries the new session's token (it changed at sign-in) and its clock.
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    assert token != before and 'data-reauth-seconds="3600"' in page
    assert any(h.startswith("portal_session=") for h in response.headers.getlist("Set-Cookie"))
    assert client.get("/profile/").status_code == 200  # the cookie took


def test_the_second_factor_is_one_request_each(app, client, clock):
    secret = pyotp.random_base32()
    make_user(app, totp_secret=secret)
    first = htmx_sign_in(client)
    assert first.status_code == 200 and first.headers["HX-Push-Url"] == "/auth/code"
    code_token = csrf_from(text_of(first))
    second = client.post(
        "/auth/code", data={"code": pyotp.TOTP(secret).at(clock()), "csrf_token": code_token}, headers=HTMX
    )
    assert second.status_code == 200 and second.headers["HX-Push-Url"] == "/"
    assert "Welcome, Jordan Example" in text_of(second)


def test_sign_out_answers_with_the_signed_out_page(app, client, auth):
    make_user(app)
    auth.sign_in()
    token = csrf_from(text_of(client.get("/")))
    response = client.post("/auth/sign-out", data={"csrf_token": token}, headers=HTMX)
    assert response.status_code == 200 and response.headers["HX-Push-Url"].startswith("/auth/signed-out")
    assert "data-signed-out-page" in text_of(response) and "data-session-status" not in text_of(response)
    assert client.get("/profile/").status_code in (302, 303)


def test_a_form_with_errors_stays_where_it_was(app, client):
    make_user(app)
    response = htmx_sign_in(client, password="not-the-password")
    assert 400 <= response.status_code < 500
    assert response.headers["HX-Push-Url"] == "false" and "HX-Retarget" not in response.headers


def test_without_javascript_it_is_still_post_redirect_get(app, client):
    make_user(app)
    data = {"email": "taxpayer@example.com", "password": PASSWORD, "next": "", "csrf_token": sign_in_token(client)}
    response = client.post("/auth/sign-in", data=data)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "HX-Push-Url" not in response.headers


def test_the_session_clock_is_on_the_page_not_asked_for(app, client, auth):
    make_user(app)
    auth.sign_in()
    page = text_of(client.get("/"))
    holder = re.search(r'<div class="page" id="page"[^>]*>', page).group(0)
    for name in ("data-hx-headers", "data-session-status", "data-idle-seconds", "data-reauth-seconds"):
        assert name in holder
    assert "<body>" in page
