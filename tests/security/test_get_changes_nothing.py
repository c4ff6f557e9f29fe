"""GET changes nothing (issue 8): a crawl of every GET route in the URL map, at
real URLs (real ids, tests/route_needs), as an anonymous visitor, the account's
owner and staff of each role, changes no row but the bookkeeping named in
tests/db_snapshot.py; and that list is exactly what the crawl writes, so it cannot
grow unnoticed."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.accounts_factory import signed_in
from tests.conftest import csrf_from
from tests.db_snapshot import (
    BOOKKEEPING_COLUMNS,
    GET_AUDIT_EVENTS,
    added_rows,
    bookkeeping_only,
    changes,
    snapshot,
    touched,
)
from tests.security.test_csrf_sweep import OWNER, build_world, form_data, real_url, realistic_form

# Journeys the owner has under way when the crawl starts, so their later pages
# (check, documents) are shown, not redirected to the start.
UNDER_WAY = [
    "waivers.start",
    "waivers.reason",
    "objections.begin",
    "objections.form",
    "filing.begin",
    "filing.figures",
    "direct_deposit.change",
]


def get_rules(app):
    return sorted((rule for rule in app.url_map.iter_rules() if "GET" in rule.methods), key=lambda r: r.endpoint)


@pytest.fixture
def world(app, clock, staff_member):
    return build_world(app, clock, staff_member)


def _under_way(app, world, owner):
    token = csrf_from(owner.get("/profile/").get_data(as_text=True))
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    for endpoint in UNDER_WAY:
        url = real_url(app, world, rules[endpoint])
        response = owner.post(url, data=form_data(realistic_form(app, world, owner, rules[endpoint], url), token))
        assert response.status_code == 303, (endpoint, response.status_code)


def _crawlers(app, world, staff_member):
    """(who, client, also as htmx?): htmx too for the three the issue names."""
    owner = signed_in(app, OWNER)
    _under_way(app, world, owner)
    return [
        ("anonymous", app.test_client(), True),
        ("owner", owner, True),
        ("administrator", world["administrator"].client, True),
        ("officer", world["officer"].client, False),
        ("supervisor", staff_member("supervisor").client, False),
    ]


def test_crawling_every_get_route_changes_no_row(app, clock, world, staff_member):
    """Every GET rule, at a real URL, as five kinds of people (anonymous, the owner
    with journeys under way, a staff administrator, officer and supervisor; as a page
    and, for the first three, as an htmx fragment too): no 5xx, and after each URL
    no row changed outside the bookkeeping; over the whole crawl the bookkeeping written is exactly
    the list in tests/db_snapshot.py (every entry used, nothing else).
    ASVS 5.0 3.5.3 (safe methods change nothing)."""
    crawlers = _crawlers(app, world, staff_member)
    rules = get_rules(app)
    assert len(rules) >= 100, "the whole URL map is read"
    assert {r.endpoint for r in rules} >= {"home", "assets.asset", "staff.audit.export", "mail.download"}
    start = before = snapshot(app)
    wrong, statuses, requests = [], Counter(), 0
    for who, client, htmx_too in crawlers:
        clock.advance(minutes=2)  # each session's last activity moves on (and none is idle)
        for rule in rules:
            url = real_url(app, world, rule)
            variants = [{}] + ([{"HX-Request": "true", "HX-Current-URL": f"http://localhost{url}"}] if htmx_too else [])
            for headers in variants:
                response = client.get(url, headers=headers)
                response.get_data()  # a streamed answer writes as it goes: read it to the end
                requests += 1
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    wrong.append((who, rule.endpoint, url, "status", response.status_code))
            after = snapshot(app)  # after each URL (its page and its fragment)
            if not bookkeeping_only(before, after):
                wrong.append(
                    (
                        who,
                        rule.endpoint,
                        url,
                        changes(before, after),
                        sorted(touched(before, after) - BOOKKEEPING_COLUMNS),
                        [row["event"] for row in added_rows(before, after, "audit_events")],
                    )
                )
            before = after
    assert wrong == []
    assert changes(start, before) == {}
    print(f"\n{len(rules)} GET rules, {requests} requests, statuses {dict(sorted(statuses.items()))}")
    # The bookkeeping list is exactly what GET writes: no entry unused, nothing else (and no
    # session row: a visitor's CSRF secret is in a cookie of its own).
    assert touched(start, before) == BOOKKEEPING_COLUMNS | {("audit_events", "+row")}
    assert {row["event"] for row in added_rows(start, before, "audit_events")} == GET_AUDIT_EVENTS


def test_the_bookkeeping_exception_is_exact(app, clock, world):
    """`changes` ignores only the listed bookkeeping: a write to a listed column is
    ignored and any other column of the same row is reported; of new audit events
    only those a GET writes pass as bookkeeping; of new sessions only an anonymous
    one. ASVS 5.0 3.5.3."""
    from sqlalchemy import text

    from domain import audit, sessions

    engine, sessionmaker = app.extensions["portal.engine"], app.extensions["portal.sessionmaker"]
    before = snapshot(app)
    with engine.begin() as conn:
        conn.execute(text("UPDATE grants SET last_used_at = :t"), {"t": clock()})
    after = snapshot(app)
    assert changes(before, after) == {} and changes(before, after, keep_bookkeeping=True) != {}
    assert touched(before, after) == {("grants", "last_used_at")} and bookkeeping_only(before, after)
    with engine.begin() as conn:
        conn.execute(text("UPDATE grants SET permissions = 'view_returns'"))
    assert changes(before, snapshot(app)) != {} and not bookkeeping_only(before, snapshot(app))

    for event, allowed in (("access.refused", True), ("profile.changed", False)):
        before = snapshot(app)
        with sessionmaker() as db:
            audit.record(db, clock(), event, actor_user_id=world["owner"])
            db.commit()
        assert changes(before, snapshot(app)) == {}  # the audit log is never a change...
        assert bookkeeping_only(before, snapshot(app)) is allowed  # ...but only some events are a GET's

    for user_id, allowed in ((None, True), (world["owner"], False)):
        before = snapshot(app)
        with sessionmaker() as db:
            sessions.create(db, clock(), data="{}", user_id=user_id, authenticated_at=None, user_agent="test")
            db.commit()
        assert (changes(before, snapshot(app)) == {}) is allowed
        assert bookkeeping_only(before, snapshot(app)) is allowed


def test_a_get_on_an_idle_session_ends_it_and_writes_nothing_else(app, clock, world):
    """The one GET write beyond the bookkeeping, by design: a request that finds its
    session idle past the limit ends it there and then (when and why), and the
    answer is the sign-in page. `changes` reports it (it is not bookkeeping); it
    touches nothing else. ASVS 5.0 7.3.1, 3.5.3."""
    owner = signed_in(app, OWNER)
    assert owner.get("/profile/").status_code == 200
    clock.advance(seconds=app.config["SESSION_IDLE_SECONDS"] + 1)
    before = snapshot(app)
    response = owner.get("/profile/")
    after = snapshot(app)
    assert response.status_code == 303 and "/auth/sign-in" in response.headers["Location"]
    assert touched(before, after) == {("auth_sessions", "ended_at"), ("auth_sessions", "end_reason")}
    assert list(changes(before, after)) == ["auth_sessions"]
    # Once ended, further GETs with the old cookie write nothing at all.
    assert owner.get("/profile/").status_code == 303
    assert touched(after, snapshot(app)) == set()
