"""Staff sign-ins, managed by administrators: add one (a set-up link by email,
two-step sign-in at first sign-in), change a role, revoke access (the sign-in is
disabled and a copied cookie stops working at once). Lower roles are refused."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from models import AuditEvent, AuthSession, User
from tests.conftest import PASSWORD, csrf_from, link_in, make_user, outbox

NEW_PASSWORD = "granite-fjord-otter-lantern-77"


def _user(app, email):
    with app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(User).where(User.email == email))


def _events(app, name):
    with app.extensions["portal.sessionmaker"]() as db:
        return list(db.scalars(select(AuditEvent).where(AuditEvent.event == name)))


@pytest.mark.parametrize("role", ["officer", "supervisor"])
def test_only_administrators_manage_staff(staff_member, role):
    member = staff_member(role)
    assert member.get("/staff/team/").status_code == 403
    response = member.post("/staff/team/", {"name": "Pat Lee", "email": "pat@tra.example", "role": "officer"})
    assert response.status_code == 403
    assert "Staff sign-ins" not in member.get("/staff/").get_data(as_text=True), "the navigation hides it"


def test_an_administrator_adds_a_staff_member_who_sets_a_password_then_two_step_sign_in(
    app, client, staff_member, clock
):
    admin = staff_member("administrator")
    assert "Staff sign-ins" in admin.get("/staff/").get_data(as_text=True)
    response = admin.post(
        "/staff/team/", {"name": "Pat Lee", "email": "Pat@TRA.example", "role": "officer"}, token_from="/staff/team/"
    )
    assert response.status_code == 303
    pat = _user(app, "pat@tra.example")
    assert pat.staff_role == "officer" and not pat.has_two_factor
    mail = [m for m in outbox(app) if m.to_address == "pat@tra.example"]
    assert len(mail) == 1 and mail[0].subject == "Set up your TRA back-office sign-in"
    link = link_in(mail[0].body_text)
    page = client.get(link)
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    done = client.post(
        link, data={"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD, "csrf_token": token}
    )
    assert done.status_code == 303
    # First staff sign-in: password only, then straight to setting up the second factor.
    token = csrf_from(client.get("/staff/sign-in").get_data(as_text=True))
    signed = client.post(
        "/staff/sign-in", data={"email": "pat@tra.example", "password": NEW_PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 303 and signed.headers["Location"].endswith("/profile/two-factor")
    assert client.get("/staff/queues/").status_code == 303, "nothing else until two-step sign-in is set up"
    assert [e.subject_user_id for e in _events(app, "staff.added")] == [pat.id]


def test_adding_refuses_bad_input_and_an_existing_sign_in_and_changes_nothing(app, staff_member):
    admin = staff_member("administrator")
    make_user(app, email="taxpayer@example.com")
    cases = [
        ({"name": "", "email": "pat@tra.example", "role": "officer"}, "Enter the staff member"),
        ({"name": "Pat", "email": "not-an-email", "role": "officer"}, "correct format"),
        ({"name": "Pat", "email": "pat@tra.example", "role": "emperor"}, "Not a valid choice"),
        ({"name": "Pat", "email": "taxpayer@example.com", "role": "officer"}, "already signs in"),
    ]
    for data, message in cases:
        response = admin.post("/staff/team/", data, token_from="/staff/team/")
        assert response.status_code == 400, data
        assert message in response.get_data(as_text=True), data
    assert _user(app, "pat@tra.example") is None
    assert _user(app, "taxpayer@example.com").staff_role is None


def test_a_role_changes_and_an_administrator_cannot_change_their_own(app, staff_member):
    admin = staff_member("administrator")
    officer = staff_member("officer")
    assert officer.get("/staff/team/").status_code == 403
    response = admin.post(
        f"/staff/team/{officer.id}/role", {"role": "administrator"}, token_from=f"/staff/team/{officer.id}"
    )
    assert response.status_code == 303
    assert _user(app, officer.email).staff_role == "administrator"
    assert officer.get("/staff/team/").status_code == 200, "the new role applies on the next request"
    own = admin.post(f"/staff/team/{admin.id}/role", {"role": "officer"}, token_from=f"/staff/team/{officer.id}")
    assert own.status_code == 400
    assert _user(app, admin.email).staff_role == "administrator"
    [event] = _events(app, "staff.role_changed")
    assert event.subject_user_id == officer.id


def test_revoking_staff_access_ends_every_session_and_the_cookie_stops_working(app, staff_member):
    admin = staff_member("administrator")
    officer = staff_member("officer")
    assert officer.get("/staff/queues/").status_code == 200
    response = admin.post(f"/staff/team/{officer.id}/revoke", token_from=f"/staff/team/{officer.id}")
    assert response.status_code == 303
    after = officer.get("/staff/queues/")
    assert after.status_code == 303 and "/auth/sign-in" in after.headers["Location"]
    with app.extensions["portal.sessionmaker"]() as db:
        live = db.scalars(
            select(AuthSession).where(AuthSession.user_id == officer.id, AuthSession.ended_at.is_(None))
        ).all()
    assert live == []
    assert _user(app, officer.email).is_disabled
    [event] = _events(app, "staff.revoked")
    assert event.actor_user_id == admin.id and event.subject_user_id == officer.id
    # Signing in again is refused too.
    token = csrf_from(officer.client.get("/staff/sign-in").get_data(as_text=True))
    again = officer.client.post(
        "/staff/sign-in",
        data={
            "email": officer.email,
            "password": PASSWORD,
            "code": pyotp.TOTP(officer.secret).now(),
            "csrf_token": token,
        },
    )
    assert again.status_code in (400, 403, 429)


def test_an_administrator_cannot_revoke_themselves(app, staff_member):
    admin = staff_member("administrator")
    admin.post(f"/staff/team/{admin.id}/revoke", token_from="/staff/team/")
    assert not _user(app, admin.email).is_disabled


def test_a_taxpayer_id_is_not_a_staff_member(app, staff_member):
    admin = staff_member("administrator")
    taxpayer = make_user(app)
    assert admin.get(f"/staff/team/{taxpayer}").status_code == 404
    assert admin.get("/staff/team/99999999999").status_code == 404
