"""The authorization matrix (issue 8): every route of `app.url_map` x every kind
of person x every method the route declares, plus one it does not (PUT).

Who asks: nobody (anonymous); the account's owner; a person holding each single
permission of models.PERMISSIONS alone; a signed-in person with no grant; a person
whose grant was removed; a representative of another client (a representative's
permissions, on a different account); and each staff role, on the taxpayer side
and the staff side alike (and every taxpayer on the staff side). What each may do is derived, not
listed case by case: account routes from their own declarations (`@account_route`,
read by tests/route_needs/ for the permission table of tests/test_delegation.py),
the gate's rule for each view (web.access), and two small tables here (the staff
side's minimum role, and the taxpayer routes that name no account). A route in none
of them fails `test_the_matrix_covers_every_route`, which says what to add.

Allowed means an answer that is not a refusal: not 403, 404 or 405, not a
redirect to sign-in, below 500. A refusal is a redirect to sign-in (anonymous),
a 403 (the wrong side, the wrong staff role, owner-only) or a 404 (an account or
an object the person may not reach): it changes no row (tests/db_snapshot.py),
shows nothing of the account, and leaves exactly one "access.refused" audit event
naming the person, the view and the reason (anonymous: no event, nothing written).

Each principal runs in its own database (one set-up per principal): GETs first,
then state changes with a valid CSRF token and no other field, so a permitted
change meets its form's validation (400) or does its one-button work on an object
of its own, and signing out comes last. Every request is followed by a snapshot
of every table, so each refusal is checked before and after on its own.

Cost: in every CI run SQLite runs the full matrix and PostgreSQL a slice
(anonymous, the owner, a person with no grant, the representative of another
client and an officer): the full matrix on PostgreSQL repeats the same
application code at about twice the time, which the SQLite run already proves;
the slice proves the refusals and their audit events on the production database.
The rest of PostgreSQL's matrix is marked `long` (run with --long, `make proof`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import select

from domain import consents as consent_rules
from domain import enrolment, letters, mail, messages, work
from domain.work import at_least
from models import PERMISSIONS, STAFF_ROLES, AuditEvent, Consent, Document, DocumentContent, User
from tests import route_needs
from tests.accounts_factory import file_return, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import StaffMember, csrf_from, make_user
from tests.db_snapshot import changes, snapshot
from tests.test_delegation import NEEDS as ACCOUNT_NEEDS
from web.access import rule_for_endpoint

LEGAL_NAME = "Table Top Ltd."
ALL = frozenset(PERMISSIONS)
UNDECLARED = "PUT"  # no rule declares it: the router answers 405 whoever asks

# --- What the tables say about each route -----------------------------------------------
# The staff side: the least staff role each view lets in (web.access.require_staff_role
# is called inside views, some only for some requests, so it cannot be read from the
# view: this table says it, and the coverage test makes every new staff route appear here).
STAFF_MIN_ROLE = {
    "staff.index": "officer",
    "staff.person": "officer",
    "staff.end_sessions": "officer",
    "staff.set_access": "administrator",
    "staff.accounts.index": "officer",
    "staff.accounts.pins": "officer",
    "staff.accounts.show": "officer",
    "staff.accounts.show_with_slash": "officer",
    "staff.accounts.document": "officer",
    "staff.accounts.new": "officer",
    "staff.accounts.letters_issue": "officer",
    "staff.accounts.letters_reissue": "officer",
    "staff.accounts.letter": "officer",
    "staff.audit.index": "supervisor",
    "staff.audit.export": "supervisor",
    # post_entry's role depends on the kind posted (domain.postings.KINDS; tests/test_staff_ledger.py):
    # the matrix posts no kind, which any officer may be told is missing.
    "staff.ledger.account": "officer",
    "staff.ledger.post_entry": "officer",
    "staff.ledger.reverse": "supervisor",
    "staff.mail.index": "officer",
    "staff.mail.download": "officer",
    "staff.mail.mark_mailed": "officer",
    "staff.messages.index": "officer",
    "staff.messages.thread": "officer",
    "staff.messages.attachment": "officer",
    "staff.messages.reply": "officer",
    "staff.messages.new": "officer",
    "staff.programs.index": "officer",
    "staff.programs.new": "administrator",
    "staff.programs.edit": "administrator",
    # updates' POST needs a supervisor once its form is whole (tests/test_subscriptions.py);
    # the matrix posts an empty form, which any officer may be told is missing.
    "staff.programs.updates": "officer",
    "staff.queues.index": "officer",
    "staff.queues.mine": "officer",
    "staff.queues.queue": "officer",
    "staff.queues.item": "officer",
    "staff.queues.signed_form": "officer",
    "staff.queues.take": "officer",
    "staff.queues.release": "officer",
    "staff.queues.assign": "supervisor",
    "staff.queues.decide": "officer",
    "staff.queues.send_letter": "officer",
    "staff.returns.show": "officer",
    "staff.returns.assess": "officer",
    "staff.returns.reassess": "officer",
    "staff.team.index": "administrator",
    "staff.team.add": "administrator",
    "staff.team.member": "administrator",
    "staff.team.change_role": "administrator",
    "staff.team.set_up_link": "administrator",
    "staff.team.revoke": "administrator",
}
# Taxpayer-side routes that name no account: open to anyone signed in (None), or,
# for a message thread, to those who receive the account's messages (a 404 for others).
SIGNED_IN_NEEDS: dict[str, frozenset | None] = {
    "auth.confirm": None,
    "auth.session_extend": None,
    "auth.verify_pending": None,
    "consents.ask": None,
    "consents.clients": None,
    "access.reviews": None,
    "enrol.start": None,
    "profile.overview": None,
    "profile.details": None,
    "profile.password": None,
    "profile.sessions": None,
    "profile.sign_out_others": None,
    "profile.two_factor": None,
    "profile.recovery_codes": None,
    "profile.two_factor_off": None,
    "messages.inbox": None,
    "messages.thread": frozenset({"receive_messages"}),
    "messages.reply": frozenset({"receive_messages"}),
    "messages.attachment": frozenset({"receive_messages"}),
}
# A view that, past the account check, lets only an owner make the change (403, audited).
OWNER_ONLY = {("mail.delivery", "POST")}
# Views whose account check (their declaration) is wider than what the table's object
# needs: a person with the wider permission passes it, and is refused the object
# itself (reason "not-found").
ACCOUNT_CHECK = {endpoint: route_needs.declared()[endpoint] for endpoint in route_needs.object_needs()}
# Signing out ends the principal's session: it is asked last.
LAST = {"auth.sign_out"}
# Paths served with no session at all (web.sessions): a state change there cannot
# carry a CSRF token, so the undeclared method is refused by the CSRF check (400)
# before the router's 405. Asked last, after signing out (see
# test_a_sessionless_path_leaves_the_session_alone for why).
SESSIONLESS = ("/static/", "/healthz", "/metrics")


@dataclass(frozen=True)
class Principal:
    key: str
    email: str | None = None  # None: anonymous
    permissions: frozenset = frozenset()  # on the table's account
    has_grant: bool = False  # a grant in force on the table's account
    staff_role: str | None = None
    is_owner: bool = False
    removed: bool = False  # once had a grant on the table's account, removed since


PRINCIPALS = [
    Principal("anonymous"),
    Principal("owner", "owner@example.com", ALL, True, is_owner=True),
    *[Principal(f"only-{p}", f"{p}@example.com", frozenset({p}), True) for p in PERMISSIONS],
    Principal("no-grant", "nogrant@example.com"),
    Principal("removed-grant", "removed@example.com", removed=True),
    Principal("other-client-representative", "rep@example.com"),
    *[Principal(role, f"{role}@tra.example", staff_role=role) for role in STAFF_ROLES],
]
POSTGRES_SLICE = {"anonymous", "owner", "no-grant", "other-client-representative", "officer"}
# The router answers an undeclared method before anyone is looked at, so it is asked
# of one principal of each kind (nobody, a taxpayer, staff), not of all of them.
UNDECLARED_FOR = {"anonymous", "owner", "officer"}


# --- Expectations ----------------------------------------------------------------------------


def access_rule(app, endpoint):
    with app.test_request_context():
        return rule_for_endpoint(endpoint)


def is_open(app, endpoint) -> bool:
    rule = access_rule(app, endpoint)
    return rule.public or rule.anonymous


@dataclass(frozen=True)
class Expect:
    outcome: str  # "allowed", "sign-in", "403", "404"
    reason: str | None = None  # the audit event's reason for a 403 or 404


def expected(app, who: Principal, endpoint: str, method: str) -> Expect:
    if is_open(app, endpoint):
        return Expect("allowed")
    if who.email is None:
        return Expect("sign-in")
    if endpoint.startswith("staff."):
        if who.staff_role is None:
            return Expect("403", "staff-only")
        least = STAFF_MIN_ROLE[endpoint]
        return Expect("allowed") if at_least(User(staff_role=who.staff_role), least) else Expect("403", f"{least}-only")
    if endpoint in ACCOUNT_NEEDS:
        if not who.permissions & ACCOUNT_NEEDS[endpoint]:
            if who.permissions & ACCOUNT_CHECK.get(endpoint, frozenset()):
                return Expect("404", "not-found")
            # A removed person is told so on the 404 (its audit reason says "removed").
            return Expect("404", "permission" if who.has_grant else "removed" if who.removed else "no-grant")
        if (endpoint, method) in OWNER_ONLY and not who.is_owner:
            return Expect("403", "owner-only")
        return Expect("allowed")
    needs = SIGNED_IN_NEEDS[endpoint]
    if needs is not None and not who.permissions & needs:
        return Expect("404", "not-found")
    return Expect("allowed")


def uncovered(app) -> list[str]:
    """Every endpoint the matrix cannot say anything about, with where to add it."""
    missing = []
    for rule in app.url_map.iter_rules():
        endpoint = rule.endpoint
        if is_open(app, endpoint):
            continue
        if endpoint.startswith("staff."):
            if endpoint not in STAFF_MIN_ROLE:
                missing.append(f"{endpoint}: add its least staff role to STAFF_MIN_ROLE in {__name__}")
        elif "number" in rule.arguments:
            if endpoint not in ACCOUNT_NEEDS:
                missing.append(f"{endpoint}: declare what it needs with @account_route (web.access)")
        elif endpoint not in SIGNED_IN_NEEDS:
            missing.append(f"{endpoint}: add it to SIGNED_IN_NEEDS in {__name__} (None: anyone signed in)")
    return missing


def test_the_matrix_covers_every_route(app):
    """Every endpoint has an entry that says who may use it; a new route without
    one fails here. ASVS 5.0 8.1.1, 8.2.1."""
    assert uncovered(app) == []
    stale = (set(STAFF_MIN_ROLE) | set(SIGNED_IN_NEEDS)) - set(app.view_functions)
    assert stale == set(), f"entries for routes that no longer exist in {__name__}"
    assert all(role in STAFF_ROLES for role in STAFF_MIN_ROLE.values())


def test_a_new_route_cannot_escape_the_matrix(app):
    """A route added without an entry (taxpayer side, account route, staff side)
    is named by the coverage check, with where to add it. ASVS 5.0 8.2.1."""
    app.add_url_rule("/test-only/page", "test_only_page", lambda: "page")
    app.add_url_rule("/test-only/<number>/page", "test_only.account_page", lambda number: number)
    app.add_url_rule("/staff/test-only", "staff.test_only", lambda: "staff")
    found = uncovered(app)
    assert len(found) == 3
    assert any(m.startswith("test_only_page: add it to SIGNED_IN_NEEDS") for m in found)
    assert any(m.startswith("test_only.account_page: declare what it needs with @account_route") for m in found)
    assert any(m.startswith("staff.test_only: add its least staff role to STAFF_MIN_ROLE") for m in found)


# --- The world each principal meets ----------------------------------------------------------


@dataclass
class World:
    values: dict  # URL variable -> value
    overrides: dict  # endpoint prefix -> {URL variable -> value}
    ids: dict = field(default_factory=dict)  # principal key -> user id


def build_world(app, clock) -> World:
    """The table of tests/test_delegation.py (one account, a return with a notice, a
    pending PIN, a requested consent, every feature's objects from tests/route_needs),
    the people of PRINCIPALS, another client's account, a message with an attachment
    to everyone who receives the account's messages, and what the staff side names."""
    ids = {
        p.key: make_user(app, email=p.email, name=p.key.replace("-", " ").title())
        for p in PRINCIPALS
        if p.email and not p.staff_role
    }
    clerk = make_user(app, email="clerk@example.com", name="Casey Clerk")
    subject = make_user(app, email="subject@example.com", name="Sam Subject")
    teammate = make_user(app, email="teammate@tra.example", name="Terry Teammate", staff_role="officer")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=31, legal_name=LEGAL_NAME, opened_on=date(2026, 6, 1))
        entry = post(db, account, "assessment", 10000, date(2026, 7, 15), period_end=date(2026, 6, 30))
        tax_return = file_return(db, account, date(2026, 6, 30))
        tax_return.status, tax_return.notice_kind, tax_return.notice_date = "assessed", "assessment", date(2026, 7, 15)
        tax_return.processed_on = date(2026, 7, 15)
        give(db, clock(), ids["owner"], account)
        for p in PERMISSIONS:
            give(db, clock(), ids[f"only-{p}"], account, role="delegate", permissions=(p,))
        removed = give(db, clock(), ids["removed-grant"], account, role="authorized")
        removed.revoked_at = clock()
        target = give(db, clock(), clerk, account, role="delegate")
        to_remove = give(db, clock(), subject, account, role="viewer")
        other = open_account(db, serial=42, legal_name="Other Client Inc.")
        give(db, clock(), ids["other-client-representative"], other, role="representative")
        pins = [
            enrolment.issue(
                db, clock(), account, role="viewer", issued_by_user_id=ids["owner"], invitee_name=f"Pat Pending {n}"
            )[0]
            for n in range(2)
        ]
        consents = []
        for n in range(3):
            consent = Consent(
                account_id=account.id,
                representative_name=f"Asa Asker {n}",
                representative_email=f"asa{n}@example.com",
                permissions="",
                starts_on=date(2026, 11, 23),
                status="requested",
                requested_at=clock(),
            )
            db.add(consent)
            consents.append(consent)
        db.flush()
        sent = messages.to_everyone_with_access(
            db, clock(), account, "About your account", "A message.", clock().date()
        )
        thread_id = sent[0].thread_id
        post_id = sent[0].post_id
        values = {
            "number": account.number,
            "grant_id": target.id,
            "pin_id": pins[0].id,
            "return_id": tax_return.id,
            "consent_id": consents[0].id,
        }
        route_needs.extend_table(db, account, clock(), values)
        document = db.get(Document, values["document_id"])
        content = db.get(DocumentContent, document.stored_name).content
        db.add(DocumentContent(stored_name="0" * 31 + "2", content=content))
        attachment = Document(
            account_id=account.id,
            stored_name="0" * 31 + "2",
            uploaded_name="letter.pdf",
            content_type="application/pdf",
            size_bytes=document.size_bytes,
            sha256=document.sha256,
            storage="database",
            description="",
            uploaded_at=clock(),
            uploaded_by_user_id=teammate,
            message_post_id=post_id,
        )
        db.add(attachment)
        db.flush()
        # An invitation letter (the staff side's letter page shows only those), and a
        # consent sent for review with its signed paper form (a queue item that has one).
        letter = mail.post(
            db,
            clock(),
            clock().date(),
            account=account,
            kind=letters.KIND,
            title="Invitation",
            pdf=content,
            posted_by_user_id=teammate,
            shown_online=False,
        )
        reviewed = Consent(
            account_id=account.id,
            representative_name="Rae Review",
            representative_email="rae@example.com",
            permissions="view_returns",
            starts_on=date(2026, 11, 23),
            status="submitted",
            declared_by_user_id=ids["owner"],
            declared_at=clock(),
        )
        db.add(reviewed)
        db.flush()
        consent_rules.attach_signed_form(
            db, clock(), consent=reviewed, uploaded_name="at4931.pdf", content=content, user_id=ids["owner"]
        )
        work_item = work.open_for_consent(db, clock(), reviewed).id
        db.commit()
        assert post_id is not None
        values.update(
            {
                "thread_id": thread_id,
                "code": account.program_code,
                "queue": "returns",
                "entry_id": entry.id,
                "user_id": subject,
                "token": "not-a-real-token",
                "hashed": sorted(app.extensions["portal.assets_by_hash"])[0],
            }
        )
        overrides = {
            # One-button changes each get an object of their own, so the one made
            # (a permitted one) does not change what the next URL names.
            "access.remove": {"grant_id": to_remove.id},
            "access.withdraw": {"pin_id": pins[1].id},
            "consents.decline": {"consent_id": consents[1].id},
            "consents.revoke": {"consent_id": consents[2].id},
            "messages.": {"document_id": attachment.id},
            "staff.messages.": {"document_id": attachment.id},
            "staff.queues.": {"item_id": work_item},
            "staff.accounts.letter": {"item_id": letter.id},
            "staff.team.": {"user_id": teammate},
        }
    return World(values, overrides, ids)


def url_of(app, world: World, rule) -> str:
    values = dict(world.values)
    for prefix, extra in sorted(world.overrides.items(), key=lambda kv: len(kv[0])):
        if rule.endpoint == prefix or (prefix.endswith(".") and rule.endpoint.startswith(prefix)):
            values.update(extra)
    with app.test_request_context():
        return url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})


def client_for(app, clock, who: Principal):
    if who.email is None:
        return app.test_client()
    if who.staff_role:
        return StaffMember(app, clock, who.staff_role, who.email).client
    return signed_in(app, who.email)


def requests_of(app, undeclared: bool) -> list:
    """(rule, method) for every rule and declared method (HEAD and OPTIONS are
    Flask's own) and the undeclared method on each rule: GETs first, then state
    changes, then the undeclared method, signing out, and the paths served
    with no session last."""
    rules = list(app.url_map.iter_rules())
    assert not any(UNDECLARED in rule.methods for rule in rules)
    found = [(rule, method) for rule in rules for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    if undeclared:
        found += [(rule, UNDECLARED) for rule in rules]
    found.sort(
        key=lambda rm: (
            rm[0].rule.startswith(SESSIONLESS),
            rm[0].endpoint in LAST and rm[1] != UNDECLARED,
            rm[1] == UNDECLARED,
            rm[1] != "GET",
            rm[0].rule,
            rm[1],
        )
    )
    return found


def _refusal_events(before, after) -> list[dict]:
    new = sorted(set(after["audit_events"]) - set(before["audit_events"]))
    return [dict(after["audit_events"][key]) for key in new]


def _sign_in_redirect(response) -> bool:
    return response.status_code in (302, 303) and urlsplit(response.headers.get("Location", "")).path == "/auth/sign-in"


def run_matrix(app, clock, who: Principal) -> dict:
    world = build_world(app, clock)
    client = client_for(app, clock, who)
    user_id = None
    if who.email:
        with sessionmaker_of(app)() as db:
            user_id = db.scalar(select(User.id).where(User.email == who.email))
    token = csrf_from(
        client.get("/auth/sign-in" if who.email is None else ("/staff/" if who.staff_role else "/profile/")).get_data(
            as_text=True
        )
    )
    wrong, counts = [], {"allowed": 0, "refused": 0, "undeclared": 0}
    state = None  # the snapshot of every table, while no allowed request has come since
    for rule, method in requests_of(app, undeclared=who.key in UNDECLARED_FOR):
        url = url_of(app, world, rule)
        want = expected(app, who, rule.endpoint, method)
        if method == UNDECLARED:
            want = Expect("400" if rule.rule.startswith(SESSIONLESS) else "405")
        if want.outcome != "allowed" and state is None:
            state = snapshot(app)
        response = client.open(url, method=method, headers={"X-CSRFToken": token})
        page = response.get_data()  # read to the end: a streamed answer holds its request open
        if want.outcome == "allowed":
            before, state = None, None  # it may change things: the next refusal snapshots afresh
        else:
            before, state = state, snapshot(app)
        case = (who.key, rule.endpoint, method, url, response.status_code)
        status = response.status_code
        if want.outcome == "allowed":
            counts["allowed"] += 1
            # An open view may send anyone to sign in (a second-factor page with no sign-in
            # under way); a protected one sending a signed-in person there refuses them.
            if (
                status >= 500
                or status in (403, 404, 405)
                or (_sign_in_redirect(response) and not is_open(app, rule.endpoint))
            ):
                wrong.append((*case, "should be allowed"))
            continue
        if method == UNDECLARED:
            counts["undeclared"] += 1
            found = changes(before, state)
            if status != int(want.outcome) or (status == 405 and "Allow" not in response.headers) or found:
                wrong.append((*case, "an undeclared method must be a 405 that changes nothing", found))
            continue
        counts["refused"] += 1
        found = changes(before, state)
        events = _refusal_events(before, state)
        if want.outcome == "sign-in":
            ok = _sign_in_redirect(response) and events == []
        else:
            ok = status == int(want.outcome) and len(events) == 1
            if ok:
                event = events[0]
                ok = (
                    event["event"] == "access.refused"
                    and event["outcome"] == "failure"
                    and event["actor_user_id"] == user_id
                    and event["account_id"] is None
                    and json.loads(event["detail"]) == {"endpoint": rule.endpoint, "reason": want.reason}
                )
        if not ok or found or LEGAL_NAME.encode() in page:
            wrong.append((*case, f"should be refused ({want.outcome}, {want.reason})", found, events))
    # The token was good throughout: no 400 above came from a CSRF refusal.
    with sessionmaker_of(app)() as db:
        csrf_refusals = [
            json.loads(detail)["endpoint"]
            for detail in db.scalars(select(AuditEvent.detail).where(AuditEvent.event == "csrf.refused"))
        ]
    assert [e for e in csrf_refusals if e not in ("health.healthz", "assets.asset", None)] == [], who.key
    assert wrong == [], "\n".join(map(repr, wrong))
    return counts


def pytest_generate_tests(metafunc):
    """One case per (backend, principal): every principal on SQLite, the slice on
    PostgreSQL (the module's docstring says why; the rest of PostgreSQL's is marked
    `long`, for `make proof`). The matrix test asks for its app
    at run time, so conftest's own backend parametrisation does not multiply these."""
    if "case" in metafunc.fixturenames:
        backends = metafunc.config.getoption("backend") or ["sqlite", "postgresql"]
        metafunc.parametrize(
            "case",
            [
                pytest.param(
                    (backend, who),
                    id=f"{backend}-{who.key}",
                    marks=[pytest.mark.long] if backend == "postgresql" and who.key not in POSTGRES_SLICE else [],
                )
                for backend in backends
                for who in PRINCIPALS
            ],
        )


@pytest.fixture
def db_backend(request):
    """The case's backend, for the app the matrix test asks for (tests that take
    `app` directly are parametrised by conftest, which overrides this)."""
    return request.node.callspec.params["case"][0]


def test_every_route_method_and_principal(case, clock, request):
    """Each principal against every route and method: allowed exactly where the
    rules say, and every refusal (sign-in, 403, 404, 405) changes nothing, shows
    nothing of the account, and is audited once with who, which view and why.
    ASVS 5.0 8.2.1, 8.2.2, 8.3.1, 8.4.1, 16.3.2, 16.2.1."""
    _backend, principal = case
    app = request.getfixturevalue("app")
    counts = run_matrix(app, clock, principal)
    assert counts["allowed"] and (counts["undeclared"] > 100 or principal.key not in UNDECLARED_FOR)


# --- What the audit of 404s leaves alone -----------------------------------------------------


def test_404s_that_are_not_refusals_write_nothing(app, clock):
    """An unknown URL (signed in or not) and a view that tries one permission and
    then another (the account summary: returns, else finances) write no refusal;
    a refused account route writes exactly one, without the account. ASVS 5.0
    16.3.2, 16.2.5."""
    world = build_world(app, clock)
    number = world.values["number"]
    anonymous = app.test_client()
    before = snapshot(app)
    assert anonymous.get("/no-such-page").status_code == 404
    assert anonymous.get(f"/accounts/{number}/no-such-page").status_code == 404
    after = snapshot(app)
    # Any page, an error page too, gives a visitor a session for its CSRF token
    # (templates/base.html): that row is the only thing written.
    assert set(changes(before, after, keep_bookkeeping=True)) <= {"auth_sessions"}
    assert _refusal_events(before, after) == []
    finances_only = signed_in(app, "view_financial@example.com")
    before = snapshot(app)
    assert finances_only.get("/no-such-page").status_code == 404
    assert finances_only.get(f"/accounts/{number}/").status_code == 200
    assert _refusal_events(before, snapshot(app)) == []
    stranger = signed_in(app, "nogrant@example.com")
    before = snapshot(app)
    assert stranger.get(f"/accounts/{number}/").status_code == 404
    [event] = _refusal_events(before, after := snapshot(app))
    assert json.loads(event["detail"]) == {"endpoint": "accounts.summary", "reason": "no-grant"}
    assert event["account_id"] is None and number not in event["detail"]
    assert changes(before, after) == {}


def test_a_sessionless_path_leaves_the_session_alone(app, clock):
    """/static/ and /healthz are served with no session (web.sessions). An error
    page there (a missing asset after a deploy, a PUT) must not start a new
    session over the signed-in person's cookie, which signs them out and writes
    an anonymous session row. Found by the matrix; the fix is in web/sessions.py
    (save_session leaves these paths alone). ASVS 5.0 16.5.3."""
    make_user(app, email="someone@example.com")
    client = signed_in(app, "someone@example.com")
    before = snapshot(app)
    assert client.get("/static/no-such-asset.css").status_code == 404
    assert client.put("/healthz").status_code == 400
    assert changes(before, snapshot(app)) == {}
    assert client.get("/profile/").status_code == 200
