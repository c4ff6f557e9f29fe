"""Managing account access (issue 4): the permission table for every account
route, delegation by an account's managers, PINs, the owner and last-manager
rules, caps, reviews and the access history."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask import url_for
from sqlalchemy import func, select

from domain import access, enrolment
from models import PERMISSIONS, Account, AuditEvent, Consent, Grant, InvitationPin
from tests import route_needs
from tests.accounts_factory import body, file_return, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user, outbox

OWNER, PARTNER, CLERK, STRANGER = (
    "owner@example.com",
    "partner@example.com",
    "clerk@example.com",
    "stranger@example.com",
)

# --- The permission table: every account route and what it needs ----------------------
# An account route is any route whose URL names an account. What it needs is its own
# declaration (`@account_route`), read by tests/route_needs; a new route without one
# fails test_the_table_covers_every_account_route.
NEEDS = route_needs.collected()


def _account_rules(app):
    """The taxpayer side's routes on one account (the staff side's are staff-only:
    tests/test_access.py sweeps them)."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if "number" in rule.arguments and not rule.endpoint.startswith("staff.")
    ]


def test_the_table_covers_every_account_route(app):
    assert {rule.endpoint for rule in _account_rules(app)} == set(NEEDS)


@pytest.fixture
def table(app, clock):
    """One account; a person holding each single permission; an owner; a second
    person whose access can be changed; a pending PIN; a return with a notice."""
    people = {p: make_user(app, email=f"{p}@example.com", name=p.replace("_", " ").title()) for p in PERMISSIONS}
    owner = make_user(app, email=OWNER, name="Olive Owner")
    other = make_user(app, email=CLERK, name="Casey Clerk")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=31, legal_name="Table Top Ltd.", opened_on=date(2026, 6, 1))
        post(db, account, "assessment", 10000, date(2026, 7, 15), period_end=date(2026, 6, 30))
        tax_return = file_return(db, account, date(2026, 6, 30))
        tax_return.status, tax_return.notice_kind, tax_return.notice_date = "assessed", "assessment", date(2026, 7, 15)
        tax_return.processed_on = date(2026, 7, 15)
        give(db, clock(), owner, account)
        for permission, user_id in people.items():
            give(db, clock(), user_id, account, role="delegate", permissions=(permission,))
        target = give(db, clock(), other, account, role="delegate")
        row, _pin = enrolment.issue(
            db, clock(), account, role="viewer", issued_by_user_id=owner, invitee_name="Pat Pending"
        )
        consent = Consent(
            account_id=account.id,
            representative_name="Asa Asker",
            representative_email="asa@example.com",
            permissions="",
            starts_on=date(2026, 11, 23),
            status="requested",
            requested_at=clock(),
        )
        db.add(consent)
        db.flush()
        table = {
            "number": account.number,
            "grant_id": target.id,
            "pin_id": row.id,
            "return_id": tax_return.id,
            "consent_id": consent.id,
        }
        route_needs.extend_table(db, account, clock(), table)
        db.commit()
        return table


def _url(app, rule, table) -> str:
    with app.test_request_context():
        return url_for(rule.endpoint, **{name: table[name] for name in rule.arguments})


@pytest.mark.parametrize("endpoint", sorted(NEEDS))
def test_each_permission_on_or_off_allows_or_refuses_every_account_route(app, table, endpoint):
    rule = next(r for r in _account_rules(app) if r.endpoint == endpoint)
    url = _url(app, rule, table)
    method = "GET" if "GET" in rule.methods else "POST"
    for permission in PERMISSIONS:
        client = signed_in(app, f"{permission}@example.com")
        token = csrf_from(body(client.get("/profile/")))
        response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
        page = response.get_data()  # read to the end: a streamed answer holds its request open until then
        allowed = permission in NEEDS[endpoint]
        if allowed:
            assert response.status_code in (200, 303, 400), (endpoint, permission, response.status_code)
        else:
            assert response.status_code == 404, (endpoint, permission, response.status_code)
            assert b"Table Top" not in page


def test_a_stranger_and_a_removed_person_get_404_on_every_account_route(app, table, clock):
    make_user(app, email=STRANGER, name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        removed = db.scalar(
            select(Grant).join(Account).where(Account.number == table["number"], Grant.permissions == "manage_access")
        )
        removed.revoked_at = clock()
        db.commit()
    for email in (STRANGER, "manage_access@example.com"):
        client = signed_in(app, email)
        token = csrf_from(body(client.get("/profile/")))
        for rule in _account_rules(app):
            method = "GET" if "GET" in rule.methods else "POST"
            response = client.open(
                _url(app, rule, table), method=method, data={"csrf_token": token} if method == "POST" else None
            )
            response.get_data()
            assert response.status_code == 404, (email, rule.endpoint)


# --- Delegation by the account's managers ------------------------------------------------


@pytest.fixture
def shop(app, clock):
    """Olive owns the shop's account; Casey is a delegate who can view it."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=41, legal_name="Corner Shop Ltd.", opened_on=date(2026, 3, 1))
        post(db, account, "assessment", 5000, date(2026, 4, 15), period_end=date(2026, 3, 31))
        owner_grant = give(db, clock(), owner, account)
        clerk_grant = give(db, clock(), clerk, account, role="viewer")
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "owner": owner,
            "clerk": clerk,
            "owner_grant": owner_grant.id,
            "clerk_grant": clerk_grant.id,
        }


def _post(client, url, data=None):
    token = csrf_from(body(client.get("/profile/")))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def _invite(client, number, **fields):
    data = {"name": "Dana Delegate", "email": "", "role": "viewer", "permissions": ["view_returns"], **fields}
    return _post(client, f"/access/{number}/add", data)


def test_manage_access_lists_everyone_with_role_permissions_granter_and_last_use(app, shop):
    client = signed_in(app, OWNER)
    client.get(f"/accounts/{shop['number']}/")  # Olive uses the account
    page = body(client.get(f"/access/{shop['number']}/"))
    assert "Olive Owner" in page and "Casey Clerk" in page and CLERK in page
    assert "View only" in page and "View balances and financial transactions" in page
    assert "Tax and Revenue Administration" in page  # who granted it
    assert "Not yet" in page  # Casey has not used it
    assert 'href="/access/{}/"'.format(shop["number"]) in body(client.get(f"/accounts/{shop['number']}/"))


def test_a_person_without_manage_access_sees_no_link_and_gets_404(app, shop):
    client = signed_in(app, CLERK)
    assert "Manage access" not in body(client.get(f"/accounts/{shop['number']}/"))
    assert client.get(f"/access/{shop['number']}/").status_code == 404


def test_adding_a_person_shows_the_pin_once_and_it_enrols_them_with_those_permissions(app, shop):
    client = signed_in(app, OWNER)
    response = _invite(client, shop["number"], name="Dana Delegate", permissions=["view_returns", "upload"])
    assert response.status_code == 303
    pin_page = client.get(response.headers["Location"])
    pin = re.search(r'id="pin-value">([A-Z0-9]+)<', body(pin_page)).group(1)
    assert "We show this PIN only once" in body(pin_page)
    again = body(client.get(response.headers["Location"]))
    assert pin not in again and "reissue" in again.lower()
    manage = body(client.get(f"/access/{shop['number']}/"))
    assert "Dana Delegate" in manage and "Pending" in manage
    with sessionmaker_of(app)() as db:
        stored = db.scalar(select(InvitationPin).where(InvitationPin.invitee_name == "Dana Delegate"))
        assert pin not in stored.pin_hash and stored.issued_by_user_id == shop["owner"]
        assert (stored.expires_at - stored.issued_at).days == 30
    make_user(app, email="dana@example.com", name="Dana Delegate")
    dana = signed_in(app, "dana@example.com")
    enrolled = _post(dana, "/enrol/", {"number": shop["number"], "pin_code": pin})
    assert enrolled.status_code == 303
    assert dana.get(f"/accounts/{shop['number']}/returns").status_code == 200
    assert dana.get(f"/accounts/{shop['number']}/transactions").status_code == 404
    with sessionmaker_of(app)() as db:
        grant = db.scalar(
            select(Grant)
            .join(Account)
            .where(Account.number == shop["number"], Grant.role == "viewer", Grant.user_id != shop["clerk"])
        )
        assert grant.permissions == "view_returns,upload" and grant.granted_by_user_id == shop["owner"]
    assert "Pending" not in body(client.get(f"/access/{shop['number']}/"))


def test_the_pin_can_be_emailed_without_the_account_details(app, shop):
    client = signed_in(app, OWNER)
    response = _invite(client, shop["number"], email="dana@example.com", send_email="y")
    pin = re.search(r'id="pin-value">([A-Z0-9]+)<', body(client.get(response.headers["Location"]))).group(1)
    message = outbox(app)[-1]
    assert message.to_address == "dana@example.com"
    text = message.body_text
    assert pin in text
    assert shop["number"] not in text and "Corner Shop" not in text


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"name": ""}, "name", "Enter the person&#39;s full name"),
        ({"permissions": []}, "permissions", "Choose at least one thing this person can do"),
        ({"email": "not-an-email"}, "email", "Enter an email address in the correct format"),
        ({"send_email": "y", "email": ""}, "send-email", "Enter their email address"),
        ({"role": "representative"}, "role", "Representatives get access through a consent"),
        ({"role": "emperor"}, "role", "Choose a role from the list"),
    ],
)
def test_a_wrong_invitation_gets_a_message_beside_the_field_and_changes_nothing(app, shop, fields, field, message):
    client = signed_in(app, OWNER)
    with sessionmaker_of(app)() as db:
        before = db.scalar(select(func.count(InvitationPin.id)))
    response = _invite(client, shop["number"], **fields)
    assert response.status_code == 400
    page = body(response)
    assert message in page and f'href="#{field}"' in page
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(InvitationPin.id))) == before


def test_removing_a_person_takes_effect_on_their_very_next_request(app, shop):
    clerk = signed_in(app, CLERK)
    assert clerk.get(f"/accounts/{shop['number']}/").status_code == 200
    owner = signed_in(app, OWNER)
    confirm = owner.get(f"/access/{shop['number']}/people/{shop['clerk_grant']}/remove")
    assert "Remove Casey Clerk" in body(confirm)
    response = _post(owner, f"/access/{shop['number']}/people/{shop['clerk_grant']}/remove")
    assert response.status_code == 303
    assert clerk.get(f"/accounts/{shop['number']}/").status_code == 404
    page = body(owner.get(f"/access/{shop['number']}/"))
    assert "can no longer use this account" in page and "removed" in page
    with sessionmaker_of(app)() as db:
        grant = db.get(Grant, shop["clerk_grant"])
        assert grant.revoked_at is not None and grant.revoked_by_user_id == shop["owner"]


def test_changing_permissions_takes_effect_at_once(app, shop):
    clerk = signed_in(app, CLERK)
    assert clerk.get(f"/accounts/{shop['number']}/transactions").status_code == 200
    owner = signed_in(app, OWNER)
    response = _post(
        owner,
        f"/access/{shop['number']}/people/{shop['clerk_grant']}",
        {"role": "viewer", "permissions": ["view_returns"]},
    )
    assert response.status_code == 303
    assert clerk.get(f"/accounts/{shop['number']}/transactions").status_code == 404
    assert clerk.get(f"/accounts/{shop['number']}/returns").status_code == 200


def test_the_last_manager_and_the_last_owner_cannot_be_removed(app, shop, clock):
    owner = signed_in(app, OWNER)
    # Casey becomes an authorized individual who manages access.
    assert (
        _post(
            owner,
            f"/access/{shop['number']}/people/{shop['clerk_grant']}",
            {"role": "authorized", "permissions": list(PERMISSIONS)},
        ).status_code
        == 303
    )
    clerk = signed_in(app, CLERK)
    refused = _post(clerk, f"/access/{shop['number']}/people/{shop['owner_grant']}/remove")
    assert refused.status_code == 400
    assert "Only an owner of the account, or the agency" in body(refused)
    with sessionmaker_of(app)() as db:
        assert db.get(Grant, shop["owner_grant"]).revoked_at is None
        owner_grant = db.get(Grant, shop["owner_grant"])
        account = db.get(Account, shop["account_id"])
        # The agency itself cannot leave the account without an owner either.
        with pytest.raises(access.AccessRefused, match="at least one owner"):
            access.deactivate(db, clock(), account=account, actor=None, target=owner_grant)
        # Nor without a manager: take manage_access from Casey, then try Olive's.
        clerk_grant = db.get(Grant, shop["clerk_grant"])
        with pytest.raises(access.AccessRefused, match="at least one owner"):
            access.change(
                db,
                clock(),
                account=account,
                actor=None,
                target=owner_grant,
                role="delegate",
                permissions=["view_returns"],
                caps=access.Caps(3, 10),
            )
        access.change(
            db,
            clock(),
            account=account,
            actor=None,
            target=clerk_grant,
            role="viewer",
            permissions=["view_returns"],
            caps=access.Caps(3, 10),
        )
        with pytest.raises(access.AccessRefused, match="last manager"):
            access.change(
                db,
                clock(),
                account=account,
                actor=None,
                target=owner_grant,
                role="owner",
                permissions=["view_returns"],
                caps=access.Caps(3, 10),
            )


def test_nobody_changes_their_own_access(app, shop):
    owner = signed_in(app, OWNER)
    response = _post(owner, f"/access/{shop['number']}/people/{shop['owner_grant']}/remove")
    assert response.status_code == 400 and "cannot change your own access" in body(response)


def test_only_an_owner_adds_or_changes_an_owner(app, shop):
    owner = signed_in(app, OWNER)
    _post(
        owner,
        f"/access/{shop['number']}/people/{shop['clerk_grant']}",
        {"role": "authorized", "permissions": list(PERMISSIONS)},
    )
    clerk = signed_in(app, CLERK)
    refused = _invite(clerk, shop["number"], role="owner", permissions=list(PERMISSIONS))
    assert refused.status_code == 400 and "Only an owner" in body(refused)
    allowed = _invite(owner, shop["number"], role="owner", permissions=list(PERMISSIONS))
    assert allowed.status_code == 303
    with sessionmaker_of(app)() as db:
        refusals = db.scalars(
            select(AuditEvent).where(AuditEvent.event == "access.refused", AuditEvent.account_id == shop["account_id"])
        ).all()
        assert len(refusals) == 1 and refusals[0].actor_user_id == shop["clerk"]


def test_owners_are_capped_and_pending_pins_count(app_with, shop):
    app = app_with(MAX_OWNERS_PER_ACCOUNT=2)
    owner = signed_in(app, OWNER)
    assert (
        _invite(owner, shop["number"], name="Second Owner", role="owner", permissions=list(PERMISSIONS)).status_code
        == 303
    )
    refused = _invite(owner, shop["number"], name="Third Owner", role="owner", permissions=list(PERMISSIONS))
    assert refused.status_code == 400 and "already has 2 owners" in body(refused)


def test_a_lost_pin_is_reissued_and_the_old_one_stops_working(app, shop):
    owner = signed_in(app, OWNER)
    first = _invite(owner, shop["number"], name="Lee Lost")
    old_pin = re.search(r'id="pin-value">([A-Z0-9]+)<', body(owner.get(first.headers["Location"]))).group(1)
    pin_id = int(first.headers["Location"].rstrip("/").split("/")[-1])
    reissued = _post(owner, f"/access/{shop['number']}/pins/{pin_id}/reissue")
    assert reissued.status_code == 303
    new_pin = re.search(r'id="pin-value">([A-Z0-9]+)<', body(owner.get(reissued.headers["Location"]))).group(1)
    assert new_pin != old_pin
    make_user(app, email="lee@example.com", name="Lee Lost")
    lee = signed_in(app, "lee@example.com")
    assert _post(lee, "/enrol/", {"number": shop["number"], "pin_code": old_pin}).status_code == 400
    assert _post(lee, "/enrol/", {"number": shop["number"], "pin_code": new_pin}).status_code == 303


def test_a_withdrawn_pin_no_longer_works(app, shop):
    owner = signed_in(app, OWNER)
    first = _invite(owner, shop["number"], name="Wyn Withdrawn")
    pin = re.search(r'id="pin-value">([A-Z0-9]+)<', body(owner.get(first.headers["Location"]))).group(1)
    pin_id = int(first.headers["Location"].rstrip("/").split("/")[-1])
    assert _post(owner, f"/access/{shop['number']}/pins/{pin_id}/withdraw").status_code == 303
    make_user(app, email="wyn@example.com", name="Wyn Withdrawn")
    wyn = signed_in(app, "wyn@example.com")
    assert _post(wyn, "/enrol/", {"number": shop["number"], "pin_code": pin}).status_code == 400


def test_a_manager_cannot_reach_a_pin_or_person_of_another_account(app, shop, clock):
    someone = make_user(app, email="someone@example.com", name="Some One")
    with sessionmaker_of(app)() as db:
        other = open_account(db, serial=42, legal_name="Other Co.")
        row, _pin = enrolment.issue(db, clock(), other, role="viewer")
        theirs = give(db, clock(), someone, other)
        db.commit()
        row_id, theirs_id = row.id, theirs.id
    owner = signed_in(app, OWNER)
    assert owner.get(f"/access/{shop['number']}/pins/{row_id}").status_code == 404
    assert _post(owner, f"/access/{shop['number']}/pins/{row_id}/reissue").status_code == 404
    assert owner.get(f"/access/{shop['number']}/people/{theirs_id}").status_code == 404
    assert _post(owner, f"/access/{shop['number']}/people/{theirs_id}/remove").status_code == 404


def test_dashboard_reminds_a_manager_to_review_and_reviewed_records_it(app, shop, clock):
    # The account opened on 1 March 2026, but Olive's access began on 23 November 2026:
    # her first review falls due a year after that, on 23 November 2027.
    assert "access-reviews-due" not in body(signed_in(app, OWNER).get("/"))
    clock.advance(days=364)
    assert "access-reviews-due" not in body(signed_in(app, OWNER).get("/"))
    clock.advance(days=1)
    owner = signed_in(app, OWNER)
    page = body(owner.get("/"))
    assert "access-reviews-due" in page and "Review who can use Corner Shop Ltd." in page
    assert "access-reviews-due" not in body(signed_in(app, CLERK).get("/"))  # Casey does not manage it
    assert _post(owner, f"/access/{shop['number']}/reviewed").status_code == 303
    assert "access-reviews-due" not in body(owner.get("/"))
    with sessionmaker_of(app)() as db:
        account = db.get(Account, shop["account_id"])
        assert account.access_reviewed_at == clock() and account.access_reviewed_by_user_id == shop["owner"]


def test_many_reviews_due_are_one_line_linking_to_the_review_page(app, shop, clock):
    """However many accounts are due, the home page spends one line on them (a phone's
    first screen stays the person's accounts); the review page lists them all."""
    with sessionmaker_of(app)() as db:
        for serial in range(61, 66):
            account = open_account(db, serial=serial, legal_name=f"Branch {serial} Ltd.", opened_on=date(2020, 1, 1))
            give(db, clock(), shop["owner"], account)
        db.commit()
    clock.advance(days=366)
    owner = signed_in(app, OWNER)
    page = body(owner.get("/"))
    assert page.count('id="access-reviews-due"') == 1 and "Review who can use 6 of your accounts" in page
    assert "Review access to" not in page and 'href="/access/reviews"' in page
    listed = body(owner.get("/access/reviews"))
    assert listed.count("Review access to") == 6 and "Branch 65 Ltd." in listed
    assert "No access reviews are due" in body(signed_in(app, CLERK).get("/access/reviews"))


def test_every_change_is_in_the_access_history(app, shop):
    owner = signed_in(app, OWNER)
    _invite(owner, shop["number"], name="Hana History")
    _post(
        owner,
        f"/access/{shop['number']}/people/{shop['clerk_grant']}",
        {"role": "delegate", "permissions": ["view_returns", "upload"]},
    )
    _post(owner, f"/access/{shop['number']}/people/{shop['clerk_grant']}/remove")
    _post(owner, f"/access/{shop['number']}/reviewed")
    page = body(owner.get(f"/access/{shop['number']}/history"))
    for words in (
        "PIN issued",
        "Access changed",
        "Access removed",
        "Access list reviewed",
        "Casey Clerk",
        "Olive Owner",
    ):
        assert words in page
    with sessionmaker_of(app)() as db:
        events = db.scalars(select(AuditEvent.event).where(AuditEvent.account_id == shop["account_id"])).all()
        assert {"pin.issued", "access.changed", "access.removed", "access.reviewed"} <= set(events)


def test_state_changes_need_a_csrf_token_and_change_nothing_without_one(app, shop):
    owner = signed_in(app, OWNER)
    for url in (
        f"/access/{shop['number']}/people/{shop['clerk_grant']}/remove",
        f"/access/{shop['number']}/reviewed",
        f"/access/{shop['number']}/add",
    ):
        assert owner.post(url, data={"name": "X", "role": "viewer", "permissions": ["view_returns"]}).status_code == 400
    with sessionmaker_of(app)() as db:
        assert db.get(Grant, shop["clerk_grant"]).revoked_at is None
        assert db.get(Account, shop["account_id"]).access_reviewed_at is None
        assert db.scalar(select(func.count(InvitationPin.id))) == 0
