"""Who may reach what, checked against every route the application has.

In the manner of the Flask tutorial's `test_login_required`, but the list of
routes comes from `app.url_map`, so a route added later cannot escape: unless its
view says `@access(public=True)`, an anonymous request must be refused.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask import url_for
from sqlalchemy import select
from werkzeug.routing import IntegerConverter

from domain.accounts import make_number
from models import AuditEvent, Grant, User
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in, without_tokens
from tests.conftest import PASSWORD, csrf_from, make_user
from web.access import AccessRule, AccountNeed, account_route, rule_for_endpoint
from web.converters import AccountNumberConverter

STAFF_EMAIL = "staff@tra.example"
# Served by web.assets with no session at all: public by design (rule_for_endpoint).
STATIC_ENDPOINTS = {"assets.asset"}


def sample_value(converter):
    """A value the converter takes (the router refuses one it does not: 404)."""
    if isinstance(converter, IntegerConverter):
        return 1
    if isinstance(converter, AccountNumberConverter):
        return make_number("41", 1)
    return "sample"


def concrete_url(app, rule, method) -> str:
    """The rule with a sample value in each variable."""
    values = {name: sample_value(rule._converters[name]) for name in rule.arguments}
    with app.test_request_context():
        return url_for(rule.endpoint, _method=method, **values)


def rule_of(app, endpoint) -> AccessRule:
    """The rule the gate applies: the view's own, or the default for where it lives
    (staff-only under the staff blueprint, signed-in elsewhere)."""
    with app.test_request_context():
        return rule_for_endpoint(endpoint)


def routes(app, predicate):
    """(endpoint, method, url) for every rule and method the predicate picks."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in STATIC_ENDPOINTS:
            continue
        access_rule = rule_of(app, rule.endpoint)
        if not predicate(access_rule):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, concrete_url(app, rule, method)))
    return found


def not_public(rule: AccessRule | None) -> bool:
    return rule is None or not (rule.public or rule.anonymous)


def staff_only(rule: AccessRule | None) -> bool:
    return rule is not None and rule.staff


def test_every_view_is_known(app):
    endpoints = set(app.view_functions)
    assert endpoints >= STATIC_ENDPOINTS
    # The route list is the real one: the familiar routes are in it.
    protected = {endpoint for endpoint, _m, _u in routes(app, not_public)}
    assert {
        "profile.overview",
        "profile.details",
        "profile.password",
        "profile.sessions",
        "profile.sign_out_others",
        "auth.confirm",
        "auth.session_extend",
        "staff.index",
        "staff.person",
        "staff.end_sessions",
        "staff.set_access",
    } <= protected
    public = {endpoint for endpoint, _m, _u in routes(app, lambda r: not not_public(r))}
    assert {"home", "auth.sign_in", "auth.register", "health.healthz", "staff.sign_in"} <= public
    assert not protected & public


def test_everything_on_the_staff_side_is_staff_only_but_its_sign_in(app):
    staff_side = {r.endpoint for r in app.url_map.iter_rules() if r.rule.startswith("/staff/")}
    assert len(staff_side) > 15, "the back office's routes are in the map"
    assert {endpoint for endpoint in staff_side if not rule_of(app, endpoint).staff} == {"staff.sign_in"}
    assert all(rule_of(app, endpoint).always_open for endpoint in staff_side)


def test_the_access_rule_defaults_to_signed_in(app):
    from web.access import SIGNED_IN, rule_for_endpoint

    @app.route("/test-only/new-page")
    def new_page():  # no @access: a forgotten decorator must not make it public
        return "secret"

    with app.test_request_context("/test-only/new-page"):
        assert rule_for_endpoint("new_page") == SIGNED_IN
    response = app.test_client().get("/test-only/new-page")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/auth/sign-in"


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_anonymous_requests_to_every_protected_route_are_refused(app, client, htmx):
    checked, wrong = [], []
    for endpoint, method, url in routes(app, not_public):
        headers = {"HX-Request": "true", "HX-Current-URL": f"http://localhost{url}"} if htmx else {}
        response = client.open(url, method=method, headers=headers)
        checked.append(endpoint)
        if htmx:
            target = response.headers.get("HX-Redirect", "")
            ok = response.status_code == 401 and urlsplit(target).path == "/auth/sign-in" and response.get_data() == b""
        else:
            target = response.headers.get("Location", "")
            ok = response.status_code == 303 and urlsplit(target).path == "/auth/sign-in"
        if ok and method == "GET":
            ok = parse_qs(urlsplit(target).query).get("next") == [url]
        if not ok:
            wrong.append((endpoint, method, url, response.status_code, target))
    assert len(checked) >= 15
    assert wrong == []


def test_anonymous_requests_to_public_routes_are_not_sent_to_sign_in(app, client):
    for endpoint, method, url in routes(app, lambda r: not not_public(r)):
        if method != "GET":
            continue
        response = client.get(url)
        assert not (
            response.status_code in (302, 303)
            and urlsplit(response.headers["Location"]).path == "/auth/sign-in"
            and "next" in response.headers["Location"]
        ), endpoint


def _refusals(app) -> list[AuditEvent]:
    with app.extensions["portal.sessionmaker"]() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.event == "access.refused").order_by(AuditEvent.id)))


def test_staff_only_routes_refuse_a_taxpayer_with_403_and_audit(app, client, auth):
    taxpayer = make_user(app)
    assert auth.sign_in().status_code == 303
    token = csrf_from(client.get("/").get_data(as_text=True))
    staff_routes = routes(app, staff_only)
    assert {e for e, _m, _u in staff_routes} >= {
        "staff.index",
        "staff.person",
        "staff.end_sessions",
        "staff.set_access",
    }
    for endpoint, method, url in staff_routes:
        before = len(_refusals(app))
        response = client.open(
            url, method=method, headers={"X-CSRFToken": token}, data={"action": "disable"} if method == "POST" else None
        )
        assert response.status_code == 403, (endpoint, method, response.status_code)
        assert "You do not have access to this page" in response.get_data(as_text=True)
        events = _refusals(app)
        assert len(events) == before + 1, endpoint
        event = events[-1]
        assert event.outcome == "failure" and event.actor_user_id == taxpayer
        assert json.loads(event.detail) == {"endpoint": endpoint, "reason": "staff-only"}
    with app.extensions["portal.sessionmaker"]() as s:
        assert s.get(User, taxpayer).disabled_at is None


def test_staff_only_routes_refuse_a_taxpayer_over_htmx_too(app, client, auth):
    make_user(app)
    auth.sign_in()
    response = client.get("/staff/?q=a", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert "<html" not in response.get_data(as_text=True)


def _staff(app, clock, role):
    secret = pyotp.random_base32()
    staff_id = make_user(app, email=STAFF_EMAIL, name=f"Staff {role}", staff_role=role, totp_secret=secret)
    staff = app.test_client()
    token = csrf_from(staff.get("/staff/sign-in").get_data(as_text=True))
    response = staff.post(
        "/staff/sign-in",
        data={"email": STAFF_EMAIL, "password": PASSWORD, "code": pyotp.TOTP(secret).at(clock()), "csrf_token": token},
    )
    assert response.status_code == 303
    return staff, staff_id


@pytest.mark.parametrize("role", ["officer", "supervisor"])
def test_access_changes_are_for_administrators_only(app, clock, role):
    person = make_user(app)
    staff, staff_id = _staff(app, clock, role)
    page = staff.get(f"/staff/people/{person}")
    assert page.status_code == 200, "every staff role may look a person up"
    token = csrf_from(page.get_data(as_text=True))
    for action in ("disable", "enable"):
        before = len(_refusals(app))
        response = staff.post(f"/staff/people/{person}/access", data={"csrf_token": token, "action": action})
        assert response.status_code == 403
        events = _refusals(app)
        assert len(events) == before + 1
        assert events[-1].actor_user_id == staff_id
        assert json.loads(events[-1].detail)["reason"] == "administrator-only"
    with app.extensions["portal.sessionmaker"]() as s:
        assert s.get(User, person).disabled_at is None


def test_an_administrator_may_change_access(app, clock):
    person = make_user(app)
    staff, _staff_id = _staff(app, clock, "administrator")
    token = csrf_from(staff.get(f"/staff/people/{person}").get_data(as_text=True))
    response = staff.post(f"/staff/people/{person}/access", data={"csrf_token": token, "action": "disable"})
    assert response.status_code == 303
    with app.extensions["portal.sessionmaker"]() as s:
        assert s.get(User, person).disabled_at is not None
    assert _refusals(app) == []


def test_staff_pages_refuse_staff_without_a_second_factor(app, clock):
    """A staff account with no second factor yet is sent to set one up, not into staff pages."""
    make_user(app, email=STAFF_EMAIL, name="New Staff", staff_role="officer")
    staff = app.test_client()
    token = csrf_from(staff.get("/staff/sign-in").get_data(as_text=True))
    response = staff.post(
        "/staff/sign-in", data={"email": STAFF_EMAIL, "password": PASSWORD, "code": "000000", "csrf_token": token}
    )
    assert response.status_code == 303 and urlsplit(response.headers["Location"]).path == "/profile/two-factor"
    response = staff.get("/staff/")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/profile/two-factor"


def test_taxpayers_cannot_use_the_staff_sign_in(app, client):
    make_user(app)
    token = csrf_from(client.get("/staff/sign-in").get_data(as_text=True))
    response = client.post(
        "/staff/sign-in",
        data={"email": "taxpayer@example.com", "password": PASSWORD, "code": "000000", "csrf_token": token},
    )
    assert response.status_code == 400
    assert client.get("/profile/").status_code == 303


def test_unverified_people_are_sent_to_verify(app, client, auth):
    make_user(app, verified=False)
    auth.sign_in()
    response = client.get("/profile/details")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/auth/verify-email"
    htmx = client.get("/profile/details", headers={"HX-Request": "true"})
    assert htmx.status_code == 403 and htmx.headers["HX-Redirect"] == "/auth/verify-email"


# --- Account routes: declared, checked once, and nothing asked of a value no row can have -------


def _owned_account(app, clock, email="owner@example.com") -> tuple[str, int]:
    owner = make_user(app, email=email, name="Olive Owner")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=5, legal_name="Declared Ltd.")
        grant = give(db, clock(), owner, account)
        db.commit()
        return account.number, grant.id


def test_an_account_route_that_declares_nothing_is_refused_to_everyone(app, clock):
    """Default deny: a view whose URL names an account and that forgot
    `@account_route` is refused by the gate, even to the account's owner, with the
    stranger's 404 and an audited refusal saying why. ASVS 5.0 8.2.1."""

    @app.route("/test-only/<account:number>/page")
    def undeclared_page(number):
        return "Declared Ltd.'s secrets"

    number, _grant_id = _owned_account(app, clock)
    with app.test_request_context():
        assert rule_for_endpoint("undeclared_page").account is None
    response = signed_in(app, "owner@example.com").get(f"/test-only/{number}/page")
    assert response.status_code == 404 and "secrets" not in body(response)
    [event] = _refusals(app)
    assert json.loads(event.detail) == {"endpoint": "undeclared_page", "reason": "undeclared"}


def test_the_declaration_is_what_the_gate_and_the_tests_read(app):
    with app.test_request_context():
        assert rule_for_endpoint("access.manage").account == AccountNeed(("manage_access",))
        assert rule_for_endpoint("accounts.summary").account == AccountNeed(("view_returns", "view_financial"))
        assert rule_for_endpoint("documents.upload").account == AccountNeed(("upload",), feature="upload")
        assert rule_for_endpoint("profile.overview").account is None
    with pytest.raises(ValueError, match="unknown permission"):
        account_route("view_everything")
    with pytest.raises(ValueError, match="a feature needs"):
        account_route("upload", feature="upload")


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/{wrong_digit}/",  # the Luhn check digit is wrong: no account has it
        "/accounts/41000/",
        "/accounts/{number}0/",
        "/accounts/４１００００００１３/",
        "/access/{number}/pins/0",
        "/access/{number}/pins/-1",
        f"/access/{{number}}/pins/{2**31}",
        f"/access/{{number}}/pins/{2**63}",
        "/access/{number}/pins/" + "9" * 5000,
        "/access/{number}/pins/١٢٣",
        "/mail/{number}/1e3.pdf",
        f"/messages/{2**31}",
    ],
)
def test_a_value_no_row_can_have_is_a_404_from_the_router(app, clock, path):
    """The URL converters (web.converters) refuse it before any view or query: no
    grant is looked up or used, no refusal is audited (as for any unknown URL)."""
    number, grant_id = _owned_account(app, clock)
    wrong_digit = number[:-1] + str((int(number[-1]) + 1) % 10)
    client = signed_in(app, "owner@example.com")
    assert client.get(path.format(number=number, wrong_digit=wrong_digit)).status_code == 404
    assert _refusals(app) == []
    with sessionmaker_of(app)() as db:
        assert db.get(Grant, grant_id).last_used_at is None
    assert client.get(f"/accounts/{number}/").status_code == 200  # the right number, for contrast


# --- A person whose access was removed is told so; a stranger learns nothing -----------------


def _statements_of(app, send) -> int:
    """How many SQL statements one request runs (the real database does the work)."""
    from sqlalchemy import event

    count = [0]

    def counted(*_args, **_kwargs):
        count[0] += 1

    engine = app.extensions["portal.engine"]
    event.listen(engine, "before_cursor_execute", counted)
    try:
        send()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count[0]


def test_a_stranger_gets_the_unknown_accounts_404_while_a_removed_person_is_told(app, clock):
    """The attacker first: a stranger's 404 on a real account is word for word the one
    for a number no account has, and costs the same statements as the removed person's,
    so neither the words nor the time say the account exists. Only someone who once
    had access (and so knows it exists) is told it was removed."""
    from domain import access
    from models import Account

    number, _owner_grant = _owned_account(app, clock)
    former = make_user(app, email="former@example.com", name="Fern Former")
    make_user(app, email="stranger@example.com", name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        account = db.scalar(select(Account).where(Account.number == number))
        target = give(db, clock(), former, account, role="viewer")
        access.deactivate(db, clock(), account=account, actor=None, target=target)
        db.commit()
    url, unknown_url = f"/accounts/{number}/", f"/accounts/{make_number('41', 9999)}/"
    stranger, removed = signed_in(app, "stranger@example.com"), signed_in(app, "former@example.com")

    refused, unknown = stranger.get(url), stranger.get(unknown_url)
    assert refused.status_code == unknown.status_code == 404
    assert without_tokens(body(refused)) == without_tokens(body(unknown))
    assert "Declared Ltd." not in body(refused) and "no longer have access" not in body(refused)

    told = removed.get(url)
    assert told.status_code == 404
    page = body(told)
    assert "You no longer have access to this account" in page and "Ask the account&#39;s owner" in page
    assert "Declared Ltd." not in page
    assert "no longer have access" not in body(removed.get(unknown_url))

    costs = {_statements_of(app, lambda c=c, u=u: c.get(u)) for c, u in ((stranger, url), (removed, url))}
    assert len(costs) == 1
