"""Security properties that hold on every response and every state-changing route."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyotp
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

import config
from app import ConfigurationError, create_app
from models import AuditEvent, AuthSession, OutboxEmail, User
from tests.conftest import PASSWORD, Auth, csrf_from, make_user
from web.assets import minify, style_hash
from web.headers import FRAGMENT_SECURITY_POLICY

STAFF_EMAIL = "admin@tra.example"
NEW_PASSWORD = "a-completely-different-passphrase-42"
# Thursday 26 November 2026, 23:30 Mountain time: closed for maintenance.
THURSDAY_CLOSED = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)


def count(app, model, *where) -> int:
    with app.extensions["portal.sessionmaker"]() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def user_row(app, user_id) -> User:
    with app.extensions["portal.sessionmaker"]() as s:
        return s.get(User, user_id)


def staff_client(app, clock, secret, email=STAFF_EMAIL):
    staff = app.test_client()
    token = csrf_from(staff.get("/staff/sign-in").get_data(as_text=True))
    response = staff.post(
        "/staff/sign-in",
        data={"email": email, "password": PASSWORD, "code": pyotp.TOTP(secret).at(clock()), "csrf_token": token},
    )
    assert response.status_code == 303
    return staff


def signed_in(client) -> bool:
    return client.get("/profile/").status_code == 200


def foreign_token(app) -> str:
    """A real token, but from someone else's session."""
    other = app.test_client()
    return csrf_from(other.get("/auth/sign-in").get_data(as_text=True))


# --- CSRF ------------------------------------------------------------------------


@pytest.fixture
def world(app, client, auth, clock):
    """A signed-in taxpayer (client), a signed-in administrator, and a way to
    check that nothing changed."""
    taxpayer = make_user(app)
    secret = pyotp.random_base32()
    make_user(app, email=STAFF_EMAIL, name="Avery Admin", staff_role="administrator", totp_secret=secret)
    return {"taxpayer": taxpayer, "secret": secret}


def _snapshot(app, taxpayer_id):
    user = user_row(app, taxpayer_id)
    return {
        "users": count(app, User),
        "outbox": count(app, OutboxEmail),
        "name": user.name,
        "phone": user.phone,
        "hash": user.password_hash,
        "disabled": user.disabled_at,
        "live_sessions": count(app, AuthSession, AuthSession.user_id == taxpayer_id, AuthSession.ended_at.is_(None)),
    }


# (path, form data, who posts: "anonymous", "taxpayer" or "staff")
STATE_CHANGING = [
    (
        "/auth/register",
        {"name": "New Person", "email": "new@example.com", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        "anonymous",
    ),
    ("/auth/sign-in", {"email": "taxpayer@example.com", "password": PASSWORD}, "anonymous"),
    ("/auth/forgot-password", {"email": "taxpayer@example.com"}, "anonymous"),
    ("/profile/details", {"name": "Changed Name", "phone": "780 555 0100"}, "taxpayer"),
    (
        "/profile/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
        "taxpayer",
    ),
    ("/auth/sign-out", {}, "taxpayer"),
    ("/profile/sessions/sign-out-others", {"password": PASSWORD}, "taxpayer"),
    ("/auth/session/extend", {}, "taxpayer"),
    ("/auth/confirm", {"password": PASSWORD}, "taxpayer"),
    ("/profile/two-factor/turn-off", {"password": PASSWORD, "code": "123456"}, "taxpayer"),
    ("/staff/people/{taxpayer}/end-sessions", {}, "staff"),
    ("/staff/people/{taxpayer}/access", {"action": "disable"}, "staff"),
]


@pytest.mark.parametrize("path,data,who", STATE_CHANGING, ids=[p[0] for p in STATE_CHANGING])
def test_post_without_a_good_csrf_token_changes_nothing(app, client, clock, world, path, data, who):
    taxpayer_client = app.test_client()
    Auth(taxpayer_client, app).sign_in()
    if who == "staff":
        poster = staff_client(app, clock, world["secret"])
    elif who == "taxpayer":
        poster = taxpayer_client
    else:
        poster = client
        poster.get("/auth/sign-in")  # a session exists, with its own CSRF secret
    path = path.format(taxpayer=world["taxpayer"])
    before = _snapshot(app, world["taxpayer"])
    for token in (None, "", "IjBhZGQi.not-a-token.at-all", foreign_token(app)):
        payload = dict(data)
        if token is not None:
            payload["csrf_token"] = token
        refusals = count(app, AuditEvent, AuditEvent.event == "csrf.refused")
        clock.advance(seconds=30)

        response = poster.post(path, data=payload)

        assert response.status_code == 400, (token, response.status_code)
        assert "Your form has expired" in response.get_data(as_text=True)
        assert _snapshot(app, world["taxpayer"]) == before
        assert count(app, AuditEvent, AuditEvent.event == "csrf.refused") == refusals + 1
    assert signed_in(taxpayer_client)
    if who == "anonymous":
        assert not signed_in(client)
    # The same post with the right token is accepted (so the refusals above were the token's doing).
    page = {"anonymous": path, "taxpayer": "/profile/", "staff": "/staff/"}[who]
    payload = dict(data, csrf_token=csrf_from(poster.get(page).get_data(as_text=True)))
    refusals = count(app, AuditEvent, AuditEvent.event == "csrf.refused")
    accepted = poster.post(path, data=payload)
    assert "Your form has expired" not in accepted.get_data(as_text=True)
    assert count(app, AuditEvent, AuditEvent.event == "csrf.refused") == refusals


def test_csrf_token_in_header_works_for_htmx(app, client, auth):
    user_id = make_user(app)
    auth.sign_in()
    token = csrf_from(client.get("/profile/details").get_data(as_text=True))
    headers = {"HX-Request": "true", "HX-Current-URL": "http://localhost/profile/details"}
    refused = client.post("/profile/details", data={"name": "Header Person"}, headers=headers)
    assert refused.status_code == 400 and user_row(app, user_id).name == "Jordan Example"
    wrong = client.post(
        "/profile/details", data={"name": "Header Person"}, headers={**headers, "X-CSRFToken": foreign_token(app)}
    )
    assert wrong.status_code == 400 and user_row(app, user_id).name == "Jordan Example"
    response = client.post(
        "/profile/details", data={"name": "Header Person"}, headers={**headers, "X-CSRFToken": token}
    )
    assert response.status_code == 200 and response.headers["HX-Push-Url"] == "/profile/"
    assert user_row(app, user_id).name == "Header Person"


def test_csrf_refusal_is_a_fragment_for_htmx(app, client, auth):
    make_user(app)
    auth.sign_in()
    response = client.post("/profile/details", data={"name": "X"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "<html" not in body and 'id="error"' in body


# --- headers ---------------------------------------------------------------------


def assert_security_headers(response):
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    if directives.get("default-src") == "default-src 'none'":
        # A fragment (never a document): nothing may load or run at all, and the
        # headers that govern only a document (framing, referrer, window, features)
        # are the page's, not the fragment's.
        assert csp == FRAGMENT_SECURITY_POLICY
        assert not {"X-Frame-Options", "Referrer-Policy", "Permissions-Policy"} & set(response.headers.keys())
    else:
        assert directives.get("script-src") == "script-src 'self'", csp
        assert "object-src" in directives
        assert response.headers.get("Referrer-Policy") in {
            "same-origin",
            "no-referrer",
            "strict-origin-when-cross-origin",
        }
        assert response.headers.get("X-Frame-Options") == "DENY"
    assert "Strict-Transport-Security" not in response.headers  # plain http here
    if response.mimetype == "text/html":
        assert "HX-Request" in response.headers.get("Vary", "")


def _too_many_sign_ins(app, client, auth):
    make_user(app)
    for _ in range(app.config["SIGNIN_MAX_FAILURES"]):
        auth.sign_in(password="wrong-password-here")
    return auth.sign_in(password="wrong-password-here")


def _closed(app_with, clock):
    closed = app_with(SERVICE_HOURS="tracs")
    clock.set(THURSDAY_CLOSED)
    return closed.test_client().get("/auth/sign-in")


def _taxpayer(app, client, auth):
    make_user(app)
    auth.sign_in()
    return client


CASES = {
    "200 page": (lambda app, client, auth, app_with, clock: client.get("/auth/sign-in"), 200),
    "404": (lambda app, client, auth, app_with, clock: client.get("/no/such/page"), 404),
    "403": (lambda app, client, auth, app_with, clock: _taxpayer(app, client, auth).get("/staff/"), 403),
    "400 csrf": (lambda app, client, auth, app_with, clock: client.post("/auth/sign-in", data={}), 400),
    "405": (lambda app, client, auth, app_with, clock: client.get("/auth/sign-out"), 405),
    "413": (
        lambda app, client, auth, app_with, clock: client.post(
            "/auth/sign-in", data={"email": "x" * (app.config["MAX_CONTENT_LENGTH"] + 10)}
        ),
        413,
    ),
    "429": (lambda app, client, auth, app_with, clock: _too_many_sign_ins(app, client, auth), 429),
    "503": (lambda app, client, auth, app_with, clock: _closed(app_with, clock), 503),
    "303": (lambda app, client, auth, app_with, clock: client.get("/profile/"), 303),
    "401 htmx": (
        lambda app, client, auth, app_with, clock: client.get("/profile/", headers={"HX-Request": "true"}),
        401,
    ),
    "htmx fragment": (
        lambda app, client, auth, app_with, clock: client.get("/auth/sign-in", headers={"HX-Request": "true"}),
        200,
    ),
    "htmx error fragment": (
        lambda app, client, auth, app_with, clock: client.get("/no/such/page", headers={"HX-Request": "true"}),
        404,
    ),
    "json healthz": (lambda app, client, auth, app_with, clock: client.get("/healthz"), 200),
    "json session": (
        lambda app, client, auth, app_with, clock: client.get("/auth/session", headers={"X-Background-Request": "1"}),
        200,
    ),
    "static": (
        lambda app, client, auth, app_with, clock: client.get(
            "/static/" + app.extensions["portal.assets"]["css/site.css"]
        ),
        200,
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_security_headers_on_every_response(app, client, auth, app_with, clock, case):
    make, status = CASES[case]
    response = make(app, client, auth, app_with, clock)
    assert response.status_code == status
    assert_security_headers(response)
    if case == "htmx fragment":
        # Kept by the browser only to ask again with its ETag (a 304 when unchanged).
        assert response.headers["Cache-Control"] == "private, no-cache" and response.headers["ETag"]
    elif case not in ("static",):
        assert response.headers["Cache-Control"] == "no-store"


def test_signed_in_pages_are_not_stored(app, client, auth):
    make_user(app)
    auth.sign_in()
    for path in ("/", "/profile/", "/profile/details", "/profile/sessions"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        vary = {v.strip() for v in response.headers["Vary"].split(",")}
        assert {"HX-Request", "Cookie"} <= vary


@pytest.mark.parametrize("path", ["/", "/auth/sign-in", "/healthz", "/no/such/page"])
def test_hsts_only_over_https(app, client, path):
    plain = client.get(path)
    assert "Strict-Transport-Security" not in plain.headers
    secure = app.test_client().get(path, base_url="https://localhost")
    hsts = secure.headers["Strict-Transport-Security"]
    assert "max-age=" in hsts and int(hsts.split("max-age=")[1].split(";")[0]) >= 31536000
    assert "includeSubDomains" in hsts


@pytest.mark.parametrize("logical", ["css/site.css", "js/portal.js", "vendor/htmx.min.js", "favicon.svg"])
def test_hashed_static_assets_are_immutable(app, client, logical):
    hashed = app.extensions["portal.assets"][logical]
    assert hashed != logical
    response = client.get(f"/static/{hashed}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers
    with open(app.extensions["portal.static_dir"] / logical, "rb") as handle:
        assert response.get_data() == minify(logical, handle.read())  # as it is, but for comments and spaces


@pytest.mark.parametrize(
    "path", ["/static/css/site.000000000000.css", "/static/css/site.css", "/static/../config.py", "/static/nothing"]
)
def test_unknown_static_names_are_404(app, client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "public" not in response.headers.get("Cache-Control", "")


def test_pages_link_hashed_assets(app, client):
    page = client.get("/auth/sign-in").get_data(as_text=True)
    for logical in ("js/portal.js", "vendor/htmx.min.js"):
        assert f"/static/{app.extensions['portal.assets'][logical]}" in page
    # The stylesheet is in the page, allowed by its hash alone.
    css = app.extensions["portal.inline_css"]
    assert f"<style>{css}</style>" in page and "</" not in css
    csp = client.get("/auth/sign-in").headers["Content-Security-Policy"]
    assert style_hash(css.encode()) in csp and "unsafe-inline" not in csp
    assert "<script>" not in page and " onclick=" not in page and "style=" not in page


# --- page or fragment -------------------------------------------------------------


@pytest.fixture
def staff(app, clock):
    make_user(app)
    secret = pyotp.random_base32()
    make_user(app, email=STAFF_EMAIL, name="Avery Admin", staff_role="administrator", totp_secret=secret)
    return staff_client(app, clock, secret)


@pytest.mark.parametrize(
    "headers,fragment",
    [
        ({"HX-Request": "true"}, True),
        ({"HX-Request": "true", "HX-Boosted": "true"}, False),
        ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, False),
        ({}, False),
    ],
    ids=["htmx", "boosted", "history-restore", "plain"],
)
def test_people_search_page_or_fragment(staff, headers, fragment):
    response = staff.get("/staff/?q=jordan", headers=headers)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Jordan Example" in body and "taxpayer@example.com" in body
    assert "HX-Request" in response.headers["Vary"]
    if fragment:
        assert body.lstrip().startswith('<div id="staff-search-results"')
        assert "<html" not in body and "<form" not in body and "<header" not in body
    else:
        assert "<html" in body and '<div id="staff-search-results"' in body and 'role="search"' in body


# --- request size, error pages -----------------------------------------------------


def assert_in_layout(body: str):
    assert body.lstrip().lower().startswith("<!doctype html>")
    assert 'class="header__service"' in body and 'class="footer"' in body
    assert "Traceback" not in body and 'File "' not in body and "werkzeug" not in body.lower()


@pytest.mark.parametrize("path", ["/auth/sign-in", "/auth/register", "/profile/details"])
def test_oversized_post_gets_413_in_layout(app, client, auth, path):
    make_user(app)
    auth.sign_in()
    users = count(app, User)
    response = client.post(path, data={"name": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)})
    assert response.status_code == 413
    body = response.get_data(as_text=True)
    assert_in_layout(body)
    assert "What you sent is too large" in body
    assert count(app, User) == users


def test_oversized_upload_of_raw_body_gets_413(app, client):
    response = client.post(
        "/auth/sign-in",
        data=b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "status,make,heading",
    [
        (404, lambda c: c.get("/no/such/page"), "Page not found"),
        (405, lambda c: c.get("/auth/sign-out"), "There is a problem with your request"),
        (403, lambda c: c.get("/staff/"), "You do not have access to this page"),
    ],
    ids=["404", "405", "403"],
)
def test_error_pages_render_in_layout(app, client, auth, status, make, heading):
    make_user(app)
    auth.sign_in()
    response = make(client)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert_in_layout(body)
    assert heading in body


def test_405_names_the_allowed_methods(app, client):
    response = client.get("/auth/sign-out")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"POST"}
    assert "GET" not in response.headers["Allow"]
    assert_in_layout(response.get_data(as_text=True))


def test_an_aborted_503_keeps_its_retry_after(app_config):
    from flask import abort

    from web.access import access

    app = create_app(app_config)
    try:

        @app.route("/test-only/busy")
        @access(public=True)
        def busy():
            abort(503, retry_after=120)

        response = app.test_client().get("/test-only/busy")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "120"
        assert response.headers["Content-Type"].startswith("text/html")
        assert_in_layout(response.get_data(as_text=True))
    finally:
        app.extensions["portal.engine"].dispose()


def test_unhandled_exception_is_a_500_in_layout_without_trace(app_config):
    from web.access import access

    app = create_app(app_config)
    try:
        app.config["PROPAGATE_EXCEPTIONS"] = False

        @app.route("/test-only/boom")
        @access(public=True)
        def boom():
            raise RuntimeError("secret-internal-detail-xyz")

        response = app.test_client().get("/test-only/boom")
        assert response.status_code == 500
        body = response.get_data(as_text=True)
        assert_in_layout(body)
        assert "Sorry, there is a problem with the service" in body
        assert "secret-internal-detail-xyz" not in body and "RuntimeError" not in body
        assert_security_headers(response)
        fragment = app.test_client().get("/test-only/boom", headers={"HX-Request": "true"})
        assert fragment.status_code == 500 and "<html" not in fragment.get_data(as_text=True)
    finally:
        app.extensions["portal.engine"].dispose()


# --- audit log ----------------------------------------------------------------------


def _add_event(db, clock) -> int:
    event = AuditEvent(occurred_at=clock(), event="test.event", outcome="success", detail="{}")
    db.add(event)
    db.commit()
    return event.id


@pytest.mark.parametrize("statement", ["orm-update", "orm-delete", "sql-update", "sql-delete"])
def test_audit_table_is_append_only_in_the_database(app, db, clock, statement):
    event_id = _add_event(db, clock)
    work = {
        "orm-update": lambda: db.execute(
            update(AuditEvent).where(AuditEvent.id == event_id).values(outcome="tampered")
        ),
        "orm-delete": lambda: db.execute(delete(AuditEvent).where(AuditEvent.id == event_id)),
        "sql-update": lambda: db.execute(text("UPDATE audit_events SET event = 'tampered'")),
        "sql-delete": lambda: db.execute(text("DELETE FROM audit_events")),
    }[statement]
    with pytest.raises(DBAPIError) as raised:
        work()
        db.commit()
    assert "append-only" in str(raised.value)
    db.rollback()
    db.expire_all()
    row = db.get(AuditEvent, event_id)
    assert row is not None and row.event == "test.event" and row.outcome == "success"


def test_audit_table_refuses_changes_through_the_engine_too(app, clock, db):
    event_id = _add_event(db, clock)
    engine = app.extensions["portal.engine"]
    for sql in ("UPDATE audit_events SET outcome = 'x' WHERE id = :id", "DELETE FROM audit_events WHERE id = :id"):
        with pytest.raises(DBAPIError), engine.begin() as connection:
            connection.execute(text(sql), {"id": event_id})
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT outcome FROM audit_events WHERE id = :id"), {"id": event_id}).scalar_one()
            == "success"
        )
    # Adding is still allowed.
    assert _add_event(db, clock) > event_id


def test_audit_rows_never_hold_secrets(app, client, auth):
    make_user(app)
    auth.sign_in(password="wrong-password-123")
    auth.sign_in()
    with app.extensions["portal.sessionmaker"]() as s:
        details = [e.detail for e in s.scalars(select(AuditEvent))]
    assert details
    for detail in details:
        assert PASSWORD not in detail and "wrong-password-123" not in detail
        assert not any(k in json.loads(detail) for k in ("password", "code", "token"))


# --- health, production configuration -----------------------------------------------


def test_healthz(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert "Set-Cookie" not in response.headers
    assert client.get("/healthz/").status_code == 200


@pytest.mark.parametrize("key", [None, config.DEFAULT_SECRET, "", "short", "x" * 31])
def test_production_refuses_a_default_or_short_secret_key(monkeypatch, tmp_path, key):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'never.db'}")
    monkeypatch.setenv("MAIL_SENDER", "smtp")  # so the key is the only thing wrong
    if key is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", key)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app({"OUTBOX_THREAD": False})
    with pytest.raises(ConfigurationError):
        create_app({"OUTBOX_THREAD": False, "SECRET_KEY": key or config.DEFAULT_SECRET})
    assert not (tmp_path / "never.db").exists()


def test_production_starts_with_a_long_random_key(monkeypatch, app_config):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("MAIL_SENDER", "smtp")
    app = create_app(
        {
            **app_config,
            "SECRET_KEY": "k" * 16 + "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
            "PUBLIC_BASE_URL": "https://tracs.example.ca",
        }
    )
    try:
        assert app.config["PORTAL_ENV"] == "production"
        assert app.config["SESSION_COOKIE_SECURE"] is True
    finally:
        app.extensions["portal.engine"].dispose()


def test_production_refuses_a_session_cookie_without_secure(monkeypatch, app_config):
    """ASVS 5.0 3.3.1: production never sends the session cookie without Secure."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("MAIL_SENDER", "smtp")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "false")
    with pytest.raises(ConfigurationError, match="SESSION_COOKIE_SECURE"):
        create_app({**app_config, "SECRET_KEY": "k" * 48})


def test_development_allows_the_default_key(monkeypatch, app_config):
    monkeypatch.setenv("PORTAL_ENV", "development")
    app = create_app({**app_config, "SECRET_KEY": config.DEFAULT_SECRET})
    try:
        assert app.secret_key == config.DEFAULT_SECRET
    finally:
        app.extensions["portal.engine"].dispose()
