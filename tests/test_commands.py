"""The command-line tasks an operator runs."""
from __future__ import annotations

from datetime import timedelta

import pyotp
from sqlalchemy import func, select

import demo
from domain import outbox as outbox_domain, sessions as store
from models import AuthSession, OutboxEmail, User
from tests.conftest import make_user


def count(app, model, *where) -> int:
    with app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def test_seed_demo_loads_the_people_once(app, runner):
    assert "Demo data loaded" in runner.invoke(args=["seed-demo", "--if-empty"]).output
    assert count(app, User) == len(demo.DEMO_PEOPLE)
    assert "nothing changed" in runner.invoke(args=["seed-demo", "--if-empty"]).output
    assert count(app, User) == len(demo.DEMO_PEOPLE)
    with app.extensions["portal.sessionmaker"]() as db:
        staff = db.scalar(select(User).where(User.staff_role.is_not(None)))
        assert staff.has_two_factor and staff.totp_secret == demo.DEMO_STAFF_TOTP_SECRET
        assert all(u.email_verified_at for u in db.scalars(select(User)))
    assert pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET).now().isdigit()


def test_create_staff_refuses_a_weak_password_and_creates_a_verified_officer(app, runner):
    weak = runner.invoke(args=["create-staff", "--email", "o@tra.example", "--name", "Olu Officer",
                               "--role", "officer"], input="password\npassword\n")
    assert weak.exit_code != 0 and count(app, User) == 0
    good = runner.invoke(args=["create-staff", "--email", "o@tra.example", "--name", "Olu Officer",
                               "--role", "officer"], input="granite-lantern-9\ngranite-lantern-9\n")
    assert good.exit_code == 0, good.output
    with app.extensions["portal.sessionmaker"]() as db:
        officer = db.scalar(select(User))
        assert officer.staff_role == "officer" and officer.email_verified_at and not officer.has_two_factor


def test_purge_removes_stale_sessions_and_old_sent_email_but_keeps_live_ones(app, runner, clock):
    user_id = make_user(app)
    with app.extensions["portal.sessionmaker"]() as db:
        store.create(db, clock() - timedelta(hours=1))  # anonymous, long idle
        store.create(db, clock() - timedelta(days=40), user_id=user_id)  # never loaded again
        store.create(db, clock(), user_id=user_id)  # live
        outbox_domain.enqueue(db, clock() - timedelta(days=40), "a@example.com", "Old", "x")
        db.flush()
        old = db.scalar(select(OutboxEmail))
        old.status, old.sent_at = "sent", clock() - timedelta(days=40)
        outbox_domain.enqueue(db, clock(), "b@example.com", "Waiting", "y")
        db.commit()
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0 and "Purged" in result.output
    assert count(app, AuthSession) == 1
    assert count(app, AuthSession, AuthSession.last_activity_at == clock()) == 1
    assert count(app, OutboxEmail, OutboxEmail.status == "pending") == 1
    assert count(app, OutboxEmail, OutboxEmail.status == "sent") == 0


def test_sign_in_accepts_an_email_with_spaces_around_it(app, auth):
    make_user(app)
    response = auth.sign_in(email="  Taxpayer@Example.com  ")
    assert response.status_code == 303 and response.headers["Location"] == "/"
