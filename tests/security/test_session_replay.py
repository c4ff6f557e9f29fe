"""A session cookie is worthless once its session is over, holds nothing personal,
and every time limit is enforced by the server, not the page's timer.

Each replay test captures the Cookie header (and a CSRF token) of a signed-in
browser, makes the session end (sign-out, a password change here or elsewhere, a
reset by email, "sign out my other sessions", staff ending the sessions, the
account disabled, staff access revoked, 15 minutes idle, the absolute limit),
then sends that cookie and token, as they were, to every protected route in
`app.url_map` with each of its methods, once as a page and once as htmx. Every
one must be sent to sign in (303, or 401 with HX-Redirect for htmx, empty),
exactly as for a stranger (tests/test_access.py), and the database must not change.

Already covered in tests/test_sessions.py and not repeated here: the cookie's
shape after a taxpayer's sign-in, its attributes over http and https, rotation at
sign-in and re-confirmation, the old cookie on /profile/ after most endings above
(one page each), idle at 14:59 / 15:00 / 15:01 / 15:59, background requests, htmx
after expiry, re-confirmation after an hour (page, POST, htmx in place) and the
absolute limit on one page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import date
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from domain import postings
from domain import sessions as store
from models import AuditEvent, AuthSession
from tests.accounts_factory import give, open_account, sessionmaker_of
from tests.accounts_factory import post as post_entry
from tests.conftest import PASSWORD, Auth, csrf_from, link_in, make_user, outbox
from tests.db_snapshot import changes, snapshot
from tests.test_access import concrete_url, not_public, routes, rule_of
from web.sessions import ServerSessionInterface

COOKIE = "portal_session"
TAXPAYER = "taxpayer@example.com"
TAXPAYER_NAME = "Jordan Example"
NEW_PASSWORD = "a-completely-different-passphrase-42"
SALT = ServerSessionInterface.salt


# --- helpers -------------------------------------------------------------------------


def cookie_of(client) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None and cookie.value, "the browser holds a session cookie"
    return cookie.value


def signed_in_browser(app, email=TAXPAYER, password=PASSWORD):
    client = app.test_client()
    auth = Auth(client, app)
    response = auth.sign_in(email=email, password=password)
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/"
    return client, auth


def capture(client, page="/profile/") -> tuple[str, str]:
    """The Cookie value and a CSRF token of a live session, before anything ends it."""
    response = client.get(page)
    assert response.status_code == 200, (page, response.status_code)
    return cookie_of(client), csrf_from(response.get_data(as_text=True))


def send(replayer, cookie: str, method: str, url: str, token: str, htmx: bool):
    """One request carrying exactly the captured cookie (the replaying client keeps no jar)."""
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    data = None
    if htmx:
        headers.update({"HX-Request": "true", "HX-Current-URL": f"http://localhost{url}"})
    if method not in ("GET", "HEAD"):
        headers["X-CSRFToken"] = token
        data = {"csrf_token": token}
    return replayer.open(url, method=method, headers=headers, data=data)


def sent_to(response, htmx: bool) -> tuple[str, dict] | None:
    """(path, query) the gate sends the browser to, or None when it is not such a refusal."""
    if htmx:
        if response.status_code != 401 or response.get_data() != b"" or "Location" in response.headers:
            return None
        target = response.headers.get("HX-Redirect", "")
    else:
        if response.status_code != 303:
            return None
        target = response.headers.get("Location", "")
    parts = urlsplit(target)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def live_signed_in(app, clock) -> set[tuple[str, int]]:
    """Sessions that would let someone in right now: not ended, within both limits."""
    idle, maximum = app.config["SESSION_IDLE_SECONDS"], app.config["SESSION_MAX_SECONDS"]
    moment = clock()
    with sessionmaker_of(app)() as db:
        rows = db.scalars(
            select(AuthSession).where(AuthSession.ended_at.is_(None), AuthSession.user_id.is_not(None))
        ).all()
    return {
        (row.id, row.user_id)
        for row in rows
        if (moment - row.last_activity_at).total_seconds() < idle
        and (moment - row.created_at).total_seconds() < maximum
    }


def row_of(app, cookie: str) -> AuthSession | None:
    sid = TimestampSigner(app.secret_key, salt=SALT).unsign(cookie).decode()
    with sessionmaker_of(app)() as db:
        return db.get(AuthSession, store.sid_hash(sid))


# What a refused request may still write in the sessions table: ending a row that has
# timed out, keeping a timed-out form (web.access.keep_form_for_later) for its person.
SESSION_COLUMNS_A_REFUSAL_MAY_WRITE = {"ended_at", "end_reason", "data", "last_activity_at"}


def nothing_changed(before, after) -> dict:
    """`changes` for every table; in the sessions table only what a refusal may write:
    no row removed, no signed-in row added, no row given another person or start."""
    found = changes(before, after)
    sessions = found.pop("auth_sessions", None)
    if sessions:
        old, new = before["auth_sessions"], after["auth_sessions"]
        if sessions["removed"]:
            found["auth_sessions removed"] = sessions["removed"]
        signed_in_added = [key for key in sessions["added"] if dict(new[key])["user_id"] is not None]
        if signed_in_added:
            found["auth_sessions added signed in"] = signed_in_added
        for key in sessions["altered"]:
            was, now = dict(old[key]), dict(new[key])
            moved = {column for column in was if was[column] != now[column]} - SESSION_COLUMNS_A_REFUSAL_MAY_WRITE
            if was["ended_at"] is not None and now["ended_at"] is None:
                moved.add("ended_at (revived)")
            if moved:
                found.setdefault("auth_sessions altered", []).append((key, sorted(moved)))
    return found


def sweep(app, clock, cookie, token, expected_path, expected_reason=None, skip=()) -> int:
    """Replay on every protected route and method, as a page and as htmx; return the count."""
    protected = [r for r in routes(app, not_public) if r[0] not in skip]
    replayer = app.test_client(use_cookies=False)
    before, live_before = snapshot(app), live_signed_in(app, clock)
    wrong, count = [], 0
    for endpoint, method, url in protected:
        for htmx in (False, True):
            response = send(replayer, cookie, method, url, token, htmx)
            count += 1
            target = sent_to(response, htmx)
            ok = target is not None and target[0] == expected_path
            if ok and expected_reason != "any":
                ok = target[1].get("reason") == expected_reason
            if ok and method == "GET" and not htmx:
                ok = target[1].get("next") == url
            if not ok:
                wrong.append(
                    (
                        endpoint,
                        method,
                        "htmx" if htmx else "page",
                        response.status_code,
                        response.headers.get("Location") or response.headers.get("HX-Redirect"),
                    )
                )
    assert wrong == []
    assert nothing_changed(before, snapshot(app)) == {}
    assert live_signed_in(app, clock) <= live_before, "no replay started or revived a session"
    assert count == 2 * len(protected) and len(protected) > 100
    return count


def signed_out_everywhere_else(app, cookie: str, name: str):
    """The public pages that look at the session see nobody."""
    replayer = app.test_client(use_cookies=False)
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    state = replayer.get("/auth/session", headers={**headers, "X-Background-Request": "1"})
    assert state.status_code == 200 and state.get_json() == {"signed_in": False}
    start = replayer.get("/", headers=headers)
    assert start.status_code == 200 and name not in start.get_data(as_text=True)
    sign_in_page = replayer.get("/auth/sign-in", headers=headers)
    assert sign_in_page.status_code == 200, "the sign-in form, not a signed-in redirect"


# --- the events that end a session -------------------------------------------------------
# Each returns (cookie, token, reason the sign-in page is given, the person's name),
# the cookie and token captured before the event.


def ev_sign_out(app, clock, staff_member):
    make_user(app)
    client, auth = signed_in_browser(app)
    cookie, token = capture(client)
    assert auth.sign_out().status_code == 303
    return cookie, token, None, TAXPAYER_NAME


def ev_password_changed_here(app, clock, staff_member):
    make_user(app)
    client, auth = signed_in_browser(app)
    cookie, token = capture(client)
    response = auth.post(
        "/profile/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    assert cookie_of(client) != cookie and client.get("/profile/").status_code == 200
    return cookie, token, None, TAXPAYER_NAME  # the old id was rotated away


def ev_password_changed_elsewhere(app, clock, staff_member):
    make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    _other, other_auth = signed_in_browser(app)
    response = other_auth.post(
        "/profile/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 303
    return cookie, token, "ended", TAXPAYER_NAME


def ev_password_reset_by_email(app, clock, staff_member):
    make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    stranger = app.test_client()
    stranger.post(
        "/auth/forgot-password",
        data={"email": TAXPAYER, "csrf_token": csrf_from(stranger.get("/auth/forgot-password").get_data(as_text=True))},
    )
    link = link_in(outbox(app)[-1].body_text)
    page = stranger.get(link)
    assert page.status_code == 200
    response = stranger.post(
        link,
        data={
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrf_token": csrf_from(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 303
    return cookie, token, "ended", TAXPAYER_NAME


def ev_other_sessions_signed_out(app, clock, staff_member):
    make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    _other, other_auth = signed_in_browser(app)
    response = other_auth.post(
        "/profile/sessions/sign-out-others", {"password": PASSWORD}, token_from="/profile/sessions"
    )
    assert response.status_code == 303
    return cookie, token, "ended", TAXPAYER_NAME


def ev_staff_ended_sessions(app, clock, staff_member):
    person = make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    officer = staff_member("officer")
    response = officer.post(f"/staff/people/{person}/end-sessions", token_from=f"/staff/people/{person}")
    assert response.status_code == 303
    return cookie, token, "ended", TAXPAYER_NAME


def ev_account_disabled(app, clock, staff_member):
    person = make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    admin = staff_member("administrator")
    response = admin.post(f"/staff/people/{person}/access", {"action": "disable"}, token_from=f"/staff/people/{person}")
    assert response.status_code == 303
    return cookie, token, "ended", TAXPAYER_NAME


def ev_account_disabled_then_restored(app, clock, staff_member):
    """Restoring the sign-in does not bring its old sessions back."""
    person = make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    admin = staff_member("administrator")
    for action in ("disable", "enable"):
        response = admin.post(
            f"/staff/people/{person}/access", {"action": action}, token_from=f"/staff/people/{person}"
        )
        assert response.status_code == 303
    signed_in_browser(app)  # the person can sign in afresh
    return cookie, token, "ended", TAXPAYER_NAME


def ev_staff_access_revoked(app, clock, staff_member):
    member = staff_member("supervisor")
    cookie, token = capture(member.client, "/staff/")
    admin = staff_member("administrator")
    response = admin.post(f"/staff/team/{member.id}/revoke", token_from=f"/staff/team/{member.id}")
    assert response.status_code == 303
    return cookie, token, "ended", "Staff Supervisor"


def ev_idle_15_minutes(app, clock, staff_member):
    make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    clock.advance(minutes=15)
    return cookie, token, "idle", TAXPAYER_NAME


def ev_staff_idle_15_minutes(app, clock, staff_member):
    member = staff_member("administrator")
    cookie, token = capture(member.client, "/staff/")
    clock.advance(minutes=15)
    return cookie, token, "idle", "Staff Administrator"


def ev_absolute_limit(app, clock, staff_member):
    """Active all along, never idle: the absolute limit (30 minutes here) still ends it."""
    app.config["SESSION_MAX_SECONDS"] = 30 * 60
    make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, token = capture(client)
    for _ in range(2):
        clock.advance(minutes=14)
        assert client.get("/profile/").status_code == 200
    clock.advance(minutes=2)
    return cookie, token, "idle", TAXPAYER_NAME  # the sign-in page words both alike


EVENTS = {name[3:]: event for name, event in globals().items() if name.startswith("ev_")}


@pytest.mark.parametrize("event", list(EVENTS))
def test_a_captured_cookie_is_refused_everywhere_after_its_session_ends(app, app_with, clock, staff_member, event):
    """ASVS 5.0 7.4.1, 7.4.2, 7.4.3, 7.4.5, 7.3.1, 7.3.2, 7.2.1: after the session ends, the
    cookie and CSRF token captured before it, replayed on every protected route and
    method (page and htmx), only lead to sign-in, on this worker and on another, and
    nothing in the database changes."""
    cookie, token, reason, name = EVENTS[event](app, clock, staff_member)
    count = sweep(app, clock, cookie, token, "/auth/sign-in", reason)
    assert count == 2 * len(routes(app, not_public))
    row = row_of(app, cookie)
    assert row is not None and row.ended_at is not None, "the session is over in the database"
    signed_out_everywhere_else(app, cookie, name)
    # Another worker (its own engine, nothing cached in memory) says the same.
    other_worker = app_with().test_client(use_cookies=False)
    for htmx in (False, True):
        response = send(other_worker, cookie, "GET", "/profile/", token, htmx)
        target = sent_to(response, htmx)
        assert target is not None and target[0] == "/auth/sign-in", (htmx, response.status_code)


# --- re-confirmation after an hour, on every route ------------------------------------------


@pytest.mark.parametrize("who", ["taxpayer", "staff"])
def test_after_an_hour_every_route_asks_to_re_confirm_and_changes_nothing(app, clock, staff_member, who):
    """ASVS 5.0 7.3.1, 7.3.2: after an hour of continuous activity (TRACS re-confirms
    identity hourly) every protected route (page, htmx, POST with a valid token) is held
    at the re-confirmation by the server, changing nothing, until the password is given."""
    if who == "taxpayer":
        make_user(app)
        client, auth = signed_in_browser(app)
        page, data = "/profile/", {"password": PASSWORD, "next": "/profile/"}
    else:
        member = staff_member("officer")
        client, auth, page = member.client, Auth(member.client, app), "/staff/"
    for _ in range(4):
        clock.advance(minutes=14)
        assert client.get(page).status_code == 200
    cookie, token = capture(client, page)  # minute 56: still fine
    clock.advance(minutes=4)
    exempt = {endpoint for endpoint, _m, _u in routes(app, not_public) if rule_of(app, endpoint).reauth_exempt}
    assert exempt == {"auth.confirm", "auth.session_extend"}
    sweep(app, clock, cookie, token, "/auth/confirm", "any", skip=exempt)
    # Still the same live session, still held there, until the password is given again.
    assert row_of(app, cookie).ended_at is None
    assert urlsplit(client.get(page).headers["Location"]).path == "/auth/confirm"
    if who == "staff":
        data = {"password": PASSWORD, "next": page, "code": pyotp.TOTP(member.secret).at(clock())}
    response = auth.post("/auth/confirm", data)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert client.get(page).status_code == 200
    assert row_of(app, cookie).end_reason == "rotated", "re-confirming gives a new id; the old one is dead"


# --- a role lowered applies on the very next request --------------------------------------


@pytest.fixture
def books(app, clock):
    """An account with one ledger entry, for the supervisor-only ledger pages."""
    owner = make_user(app, email="owner@example.com", name="Olive Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=81)
        entry = post_entry(
            db,
            account,
            "assessment",
            100_000,
            date(2026, 10, 15),
            period_end=date(2026, 9, 30),
            reference="ASM-TL-202609",
        )
        give(db, clock(), owner, account)
        db.commit()
        return {"number": account.number, "entry": entry.id}


def _supervisor_only(app, books) -> list[tuple[str, str, str, dict | None]]:
    """(endpoint, method, url, form) for everything a supervisor may do and an officer may
    not: the audit log, reassigning work, reversing an entry, and posting each kind of
    entry domain.postings reserves for supervisors."""
    audit_rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("staff.audit.")]
    assert len(audit_rules) >= 2
    found = [(rule.endpoint, "GET", concrete_url(app, rule, "GET"), None) for rule in audit_rules]
    reverse = f"/staff/ledger/{books['number']}/entries/{books['entry']}/reverse"
    found += [
        ("staff.ledger.reverse", "GET", reverse, None),
        ("staff.ledger.reverse", "POST", reverse, {"reason": "Entered twice"}),
        ("staff.queues.assign", "POST", "/staff/queues/items/1/assign", {"assignee": "1"}),
    ]
    kinds = [kind for kind, rule in postings.KINDS.items() if rule.role == "supervisor"]
    assert len(kinds) >= 5
    for kind in kinds:
        found.append(
            (
                "staff.ledger.post_entry",
                "POST",
                f"/staff/ledger/{books['number']}/entries",
                {
                    "kind": kind,
                    "amount": "10.00",
                    "effective_date": "2026-11-20",
                    "period_end": "",
                    "to_account": "",
                    "reason": "Replay",
                },
            )
        )
    return found


def test_a_supervisor_lowered_to_officer_is_refused_on_the_very_next_request(app, clock, staff_member, books):
    """ASVS 5.0 8.3.2, 8.2.1, 7.2.1: a role change applies at once: the supervisor's own
    cookie and token, captured before, are refused (403, audited) on every supervisor-only
    page and action, page and htmx, and nothing is posted."""
    supervisor = staff_member("supervisor")
    admin = staff_member("administrator")
    targets = _supervisor_only(app, books)
    for _endpoint, method, url, _form in targets:
        if method == "GET":
            assert supervisor.get(url).status_code == 200, url
    ledger_page = supervisor.get(f"/staff/ledger/{books['number']}/").get_data(as_text=True)
    key = ledger_page.split('name="key" value="', 1)[1].split('"', 1)[0]
    cookie, token = cookie_of(supervisor.client), csrf_from(ledger_page)

    response = admin.post(
        f"/staff/team/{supervisor.id}/role", {"role": "officer"}, token_from=f"/staff/team/{supervisor.id}"
    )
    assert response.status_code == 303
    before = snapshot(app)
    replayer = app.test_client(use_cookies=False)
    wrong, refusals = [], 0
    for endpoint, method, url, form in targets:
        for htmx in (False, True):
            headers = {"Cookie": f"{COOKIE}={cookie}", "X-CSRFToken": token}
            if htmx:
                headers.update({"HX-Request": "true", "HX-Current-URL": f"http://localhost{url}"})
            data = {**form, "key": key, "csrf_token": token} if form is not None else None
            response = replayer.open(url, method=method, headers=headers, data=data)
            if response.status_code != 403:
                wrong.append((endpoint, method, htmx, response.status_code))
            refusals += 1
    assert wrong == []
    assert changes(before, snapshot(app)) == {}
    with sessionmaker_of(app)() as db:
        events = db.scalars(
            select(AuditEvent).where(AuditEvent.event == "access.refused", AuditEvent.actor_user_id == supervisor.id)
        ).all()
    assert len(events) == refusals and all('"supervisor-only"' in e.detail for e in events)
    # Signed in still, as an officer: the officer's pages work with the same cookie.
    assert replayer.get("/staff/", headers={"Cookie": f"{COOKIE}={cookie}"}).status_code == 200


def test_an_administrator_lowered_loses_the_team_pages_at_once(app, clock, staff_member):
    """ASVS 5.0 8.3.2, 8.2.1: an administrator lowered to officer is refused (403, audited)
    on every staff-management route on the next request, with the token captured before."""
    lowered = staff_member("administrator")
    other_admin = staff_member("administrator")
    cookie, token = capture(lowered.client, "/staff/team/")
    response = other_admin.post(
        f"/staff/team/{lowered.id}/role", {"role": "officer"}, token_from=f"/staff/team/{lowered.id}"
    )
    assert response.status_code == 303
    team = [
        (rule.endpoint, method, concrete_url(app, rule, method))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("staff.team.")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    team.append(("staff.set_access", "POST", f"/staff/people/{other_admin.id}/access"))
    assert len(team) >= 6
    before = snapshot(app)
    replayer = app.test_client(use_cookies=False)
    statuses = {}
    for endpoint, method, url in team:
        for htmx in (False, True):
            headers = {"Cookie": f"{COOKIE}={cookie}", "X-CSRFToken": token}
            if htmx:
                headers["HX-Request"] = "true"
            data = (
                {
                    "csrf_token": token,
                    "role": "officer",
                    "action": "disable",
                    "name": "Pat Lee",
                    "email": "pat@tra.example",
                }
                if method == "POST"
                else None
            )
            statuses[(endpoint, method, htmx)] = replayer.open(
                url, method=method, headers=headers, data=data
            ).status_code
    assert set(statuses.values()) == {403}, statuses
    assert changes(before, snapshot(app)) == {}


# --- what the cookie holds ------------------------------------------------------------------


def _decoded_parts(value: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in value.split(".")]


class Recorder:
    """Every Set-Cookie the application sends a browser."""

    def __init__(self, client):
        self.client, self.headers = client, []

    def open(self, path, method="GET", **kwargs):
        response = self.client.open(path, method=method, **kwargs)
        self.headers += response.headers.getlist("Set-Cookie")
        return response

    def form(self, page, path, data, **kwargs):
        token = csrf_from(self.open(page, **kwargs).get_data(as_text=True))
        return self.open(path, "POST", data={**data, "csrf_token": token}, **kwargs)


def _check_cookie_headers(app, headers: list[str], personal: list[str], secure: bool) -> int:
    """Each Set-Cookie: the session cookie only, with its flags, holding a signed random
    id and the signing time, or emptied at sign-out. Returns how many carried an id."""
    name = "__Host-session" if secure else COOKIE
    device_name = "__Host-device" if secure else "portal_device"
    visitor_name = "__Host-visitor" if secure else "portal_visitor"
    issued = 0
    for header in headers:
        cookie_name, _, rest = header.partition("=")
        assert cookie_name in (name, device_name, visitor_name), header
        value, *attributes = [part.strip() for part in rest.split(";")]
        lowered = [a.lower() for a in attributes]
        assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered, header
        assert not any(a.startswith("domain=") for a in lowered), header
        assert ("secure" in lowered) == secure, header
        assert len(header.encode()) < 4096, "small enough for every browser to keep"
        if cookie_name == device_name:
            _check_device_cookie(app, value, personal)
            continue
        if cookie_name == visitor_name:  # a signed random CSRF secret for a visitor, nothing else
            secret = URLSafeTimedSerializer(app.secret_key, salt="portal.visitor-cookie.v1").loads(value)
            assert re.fullmatch(r"[0-9a-f]{40}", secret), value
            continue
        if not value:  # emptied at sign-out
            assert any(a.startswith("expires=thu, 01 jan 1970") for a in lowered) or "max-age=0" in lowered
            continue
        issued += 1
        sid = TimestampSigner(app.secret_key, salt=SALT).unsign(value).decode()
        sid_bytes, stamp, signature = _decoded_parts(value)
        assert len(sid_bytes) == 32 and len(stamp) <= 8 and len(signature) == 20
        assert sid == value.split(".")[0]
        searched = (value + " " + b" ".join(_decoded_parts(value)).decode("latin-1")).lower()
        for item in personal:
            assert item.lower() not in searched, (item, header)
        with sessionmaker_of(app)() as db:
            assert db.get(AuthSession, store.sid_hash(sid)) is not None, "the id names a server-side row"
    return issued


def _check_device_cookie(app, value: str, personal: list[str]) -> None:
    """The browser's note that a person signed in here (web.credentials, abuse case 8):
    signed, and holding for each person a keyed hash of the email and a random id only."""
    entries = URLSafeTimedSerializer(app.secret_key, salt="portal.device-cookie.v1").loads(value)
    assert entries and all(
        re.fullmatch(r"[0-9a-f]{32}", login) and re.fullmatch(r"[\w-]{24}", device) for login, device in entries
    ), entries
    searched = (value + " " + json.dumps(entries)).lower()
    for item in personal:
        assert item.lower() not in searched, (item, value)


def test_cookies_carry_no_personal_data(app, clock):
    """ASVS 5.0 14.3.3, 7.2.3, 3.3.2, 3.3.4, 3.3.5: every Set-Cookie sent to a taxpayer and to a
    staff member with an authenticator, over a walk through their pages, is the session
    cookie (HttpOnly, SameSite=Strict, Path=/, no Domain) holding only a 32-byte random id,
    the signing time and an HMAC; the CSRF secret, notices and kept forms stay in the database."""
    person = make_user(app, name=TAXPAYER_NAME)
    secret = pyotp.random_base32()
    staff_id = make_user(
        app, email="avery.admin@tra.example", name="Avery Quartermaine", staff_role="supervisor", totp_secret=secret
    )
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=81, legal_name="Prairie Inn Ltd.")
        give(db, clock(), person, account)
        db.commit()
        number = account.number

    taxpayer = Recorder(app.test_client())
    assert (
        taxpayer.form(
            "/auth/sign-in", "/auth/sign-in", {"email": TAXPAYER, "password": PASSWORD, "next": ""}
        ).status_code
        == 303
    )
    for path in ("/", "/profile/", f"/accounts/{number}/", f"/accounts/{number}/transactions", "/profile/sessions"):
        assert taxpayer.open(path).status_code == 200, path
    assert taxpayer.open(f"/accounts/{number}/transactions", headers={"HX-Request": "true"}).status_code == 200
    assert (
        taxpayer.form(
            "/profile/details", "/profile/details", {"name": "Jordan Quincy Example", "phone": "780 555 0199"}
        ).status_code
        == 303
    )
    assert taxpayer.open("/profile/").status_code == 200
    assert taxpayer.form("/", "/auth/sign-out", {}).status_code == 303

    staff = Recorder(app.test_client())
    response = staff.form(
        "/staff/sign-in",
        "/staff/sign-in",
        {"email": "avery.admin@tra.example", "password": PASSWORD, "code": pyotp.TOTP(secret).at(clock())},
    )
    assert response.status_code == 303
    for path in ("/staff/", f"/staff/people/{person}", "/staff/audit/", f"/staff/ledger/{number}/"):
        assert staff.open(path).status_code == 200, path
    assert staff.open("/staff/?q=Jordan", headers={"HX-Request": "true"}).status_code == 200
    assert staff.form("/staff/", "/auth/sign-out", {}).status_code == 303

    # Five characters or more: a shorter string turns up by chance in random base64.
    personal = [
        TAXPAYER,
        "taxpayer",
        "example.com",
        "Jordan",
        "Quincy",
        "Example",
        "780 555 0199",
        "7805550199",
        number,
        number.replace(" ", ""),
        "Prairie",
        "avery",
        "Quartermaine",
        "tra.example",
        "supervisor",
        secret,
        PASSWORD,
        "user_id",
        "email",
        "staff_role",
    ]
    issued = _check_cookie_headers(app, taxpayer.headers + staff.headers, personal, secure=False)
    assert issued >= 2, "a session cookie at each sign-in (a visitor has none: issue 18)"
    assert len(taxpayer.headers) >= 3 and len(staff.headers) >= 3
    # What the cookie does not hold lives in the server-side row.
    with sessionmaker_of(app)() as db:
        rows = db.scalars(select(AuthSession).where(AuthSession.user_id.in_([person, staff_id]))).all()
    assert rows and any("csrf_token" in (row.data or "") for row in rows)


def test_production_cookies_are_secure_and_host_prefixed(app_with, monkeypatch):
    """ASVS 5.0 3.3.1, 3.3.3, 3.3.4: with PORTAL_ENV=production the default is a
    __Host- cookie with Secure, HttpOnly, SameSite=Strict, Path=/ and no Domain, on every
    Set-Cookie from the sign-in page to the sign-out."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    app = app_with(MAIL_SENDER="smtp", PUBLIC_BASE_URL="https://tracs.example.ca")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    make_user(app)
    base = "https://localhost"
    browser = Recorder(app.test_client())
    referer = {"Referer": f"{base}/"}
    response = browser.form(
        "/auth/sign-in",
        "/auth/sign-in",
        {"email": TAXPAYER, "password": PASSWORD, "next": ""},
        base_url=base,
        headers=referer,
    )
    assert response.status_code == 303
    assert browser.open("/profile/", base_url=base).status_code == 200
    assert browser.form("/profile/", "/auth/sign-out", {}, base_url=base, headers=referer).status_code == 303
    assert _check_cookie_headers(app, browser.headers, [TAXPAYER, TAXPAYER_NAME], secure=True) >= 1
    assert any("=;" in h or h.split("=", 1)[1].startswith(";") for h in browser.headers), "emptied at sign-out"


def _flip(value: str, part: int, index: int) -> str:
    parts = value.split(".")
    raw = bytearray(_decoded_parts(value)[part])
    raw[index] ^= 0x01
    parts[part] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    return ".".join(parts)


def test_a_tampered_cookie_is_no_session(app, clock):
    """ASVS 5.0 7.2.1, 7.2.2: a cookie with any one byte changed (id, time or signature),
    signed with another key, or naming an id never issued, is treated as no session at
    all (page and htmx), and the real session is untouched."""
    make_user(app)
    client, _auth = signed_in_browser(app)
    cookie, _token = capture(client)
    lengths = [len(p) for p in _decoded_parts(cookie)]
    forged = [_flip(cookie, part, index) for part in range(3) for index in range(lengths[part])]
    sid = cookie.split(".")[0]
    forged += [
        TimestampSigner("another-secret-key-of-the-same-length-12", salt=SALT).sign(sid).decode(),
        TimestampSigner(app.secret_key, salt="another.salt").sign(sid).decode(),
        TimestampSigner(app.secret_key, salt=SALT).sign(store.new_sid()).decode(),  # never issued
        cookie.rsplit(".", 1)[0],
        sid,
        "",
        "x" * 4096,
    ]
    assert len(set(forged)) == len(forged) and cookie not in forged
    replayer = app.test_client(use_cookies=False)
    before, live = snapshot(app), live_signed_in(app, clock)
    for value in forged:
        for htmx in (False, True):
            headers = {"Cookie": f"{COOKIE}={value}"}
            if htmx:
                headers["HX-Request"] = "true"
            response = replayer.get("/profile/details", headers=headers)
            target = sent_to(response, htmx)
            assert target is not None and target[0] == "/auth/sign-in" and "reason" not in target[1], value
            assert response.headers.getlist("Set-Cookie") == [], "no session handed out in its place"
    assert changes(before, snapshot(app), keep_bookkeeping=False) == {}
    assert live_signed_in(app, clock) == live
    assert replayer.get("/profile/", headers={"Cookie": f"{COOKIE}={cookie}"}).status_code == 200
    assert len(forged) > 50
    assert hashlib.sha256(sid.encode()).hexdigest() == row_of(app, cookie).id


# --- a sign-in half done (password given, code not yet) ---------------------------------------


@pytest.mark.parametrize("change", ["password-changed", "password-reset", "disabled"])
def test_a_half_finished_sign_in_dies_with_the_password(app, clock, staff_member, change):
    """ASVS 5.0 7.4.1, 7.4.2, 7.4.3: someone who had the old password and stands at the
    code step cannot finish signing in once the person changes or resets the password
    (or staff disable the sign-in), even with a correct authenticator code."""
    secret = pyotp.random_base32()
    person = make_user(app, totp_secret=secret)
    intruder = app.test_client()
    response = Auth(intruder, app).sign_in()
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/auth/code"
    code_page = intruder.get("/auth/code")
    assert code_page.status_code == 200
    token = csrf_from(code_page.get_data(as_text=True))

    if change == "password-changed":
        owner_auth = Auth(app.test_client(), app)
        assert owner_auth.sign_in(code=pyotp.TOTP(secret).at(clock())).status_code == 303
        clock.advance(seconds=31)  # the next code: each code signs in once
        response = owner_auth.post(
            "/profile/password",
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
                "code": pyotp.TOTP(secret).at(clock()),
            },
        )
        assert response.status_code == 303, response.get_data(as_text=True)
    elif change == "password-reset":
        stranger = app.test_client()
        stranger.post(
            "/auth/forgot-password",
            data={
                "email": TAXPAYER,
                "csrf_token": csrf_from(stranger.get("/auth/forgot-password").get_data(as_text=True)),
            },
        )
        link = link_in(outbox(app)[-1].body_text)
        page = stranger.get(link)
        assert (
            stranger.post(
                link,
                data={
                    "new_password": NEW_PASSWORD,
                    "new_password_confirm": NEW_PASSWORD,
                    "csrf_token": csrf_from(page.get_data(as_text=True)),
                },
            ).status_code
            == 303
        )
    else:
        admin = staff_member("administrator")
        assert (
            admin.post(
                f"/staff/people/{person}/access", {"action": "disable"}, token_from=f"/staff/people/{person}"
            ).status_code
            == 303
        )
    clock.advance(seconds=31)
    before = live_signed_in(app, clock)
    response = intruder.post("/auth/code", data={"code": pyotp.TOTP(secret).at(clock()), "csrf_token": token})
    assert not (response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/")
    assert intruder.get("/profile/").status_code == 303
    assert {uid for _sid, uid in live_signed_in(app, clock)} - {uid for _sid, uid in before} == set()
