"""The command-line tasks an operator runs."""

from __future__ import annotations

import gzip
from datetime import date, timedelta

import brotli
import pyotp
from sqlalchemy import func, select

import demo
from app import create_app
from domain import enrolment, grants, ledger
from domain import outbox as outbox_domain
from domain import sessions as store
from domain.accounts import format_number
from migrations.runner import current_of, head, history
from models import (
    LEDGER_KINDS,
    PERMISSIONS,
    RETURN_STATUSES,
    Account,
    AuthSession,
    FilingPeriod,
    Grant,
    InvitationPin,
    LedgerEntry,
    OutboxEmail,
    TaxReturn,
    ThrottleEvent,
    UsedToken,
    User,
)
from tests.conftest import empty_database, make_user


def count(app, model, *where) -> int:
    with app.extensions["portal.sessionmaker"]() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def test_demo_data_loads_the_people_and_accounts_once(app, runner):
    first = runner.invoke(args=["demo-data", "--if-empty"])
    assert first.exit_code == 0 and "Demo data loaded" in first.output, first.output
    for spec in demo.DEMO_ACCOUNTS:
        if spec.pin:
            assert f"account {spec.number}, PIN {spec.pin}" in first.output
    assert count(app, User) == len(demo.DEMO_PEOPLE)
    assert count(app, Account) == len(demo.DEMO_ACCOUNTS)
    assert "nothing changed" in runner.invoke(args=["demo-data", "--if-empty"]).output
    assert "nothing changed" in runner.invoke(args=["demo-data"]).output
    assert count(app, User) == len(demo.DEMO_PEOPLE) and count(app, Account) == len(demo.DEMO_ACCOUNTS)
    with app.extensions["portal.sessionmaker"]() as db:
        staff = db.scalar(select(User).where(User.staff_role.is_not(None)))
        assert staff.has_two_factor and staff.totp_secret == demo.DEMO_STAFF_TOTP_SECRET
        assert all(u.email_verified_at for u in db.scalars(select(User)))
    assert pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET).now().isdigit()


def test_demo_data_if_empty_leaves_a_database_with_people_alone(app, runner):
    make_user(app)
    assert "nothing changed" in runner.invoke(args=["demo-data", "--if-empty"]).output
    assert count(app, Account) == 0 and count(app, User) == 1


def _grants_of(db, email: str) -> dict[str, tuple[str, str]]:
    user = db.scalar(select(User).where(User.email == email))
    return {
        g.account.number: (g.role, g.permissions)
        for g in db.scalars(select(Grant).where(Grant.user_id == user.id, Grant.revoked_at.is_(None)))
    }


def _snapshot(app) -> dict:
    """Everything the demo built that must come out the same every time."""
    with app.extensions["portal.sessionmaker"]() as db:
        numbers = {a.id: a.number for a in db.scalars(select(Account))}
        entries = list(db.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))
        by_id = {e.id: e for e in entries}
        return {
            "accounts": sorted(
                (a.number, a.program_code, a.legal_name, a.physical_address, a.opened_on)
                for a in db.scalars(select(Account))
            ),
            "balances": {numbers[i]: cents for i, cents in ledger.balances(db, list(numbers)).items()},
            "ledger": [
                (
                    numbers[e.account_id],
                    e.kind,
                    e.period_end,
                    e.effective_date,
                    e.processed_date,
                    e.amount_cents,
                    e.reference,
                    e.description,
                    by_id[e.reverses_id].reference if e.reverses_id else None,
                )
                for e in entries
            ],
            "periods": sorted(
                (numbers[p.account_id], p.period_start, p.period_end, p.due_date)
                for p in db.scalars(select(FilingPeriod))
            ),
            "returns": sorted(
                (
                    numbers[r.account_id],
                    r.period_end,
                    r.kind,
                    r.amended,
                    r.received_on,
                    r.status,
                    r.processed_on,
                    r.reference,
                    r.notice_kind or "",
                    r.notice_date or r.received_on,
                )
                for r in db.scalars(select(TaxReturn))
            ),
            "grants": {email: _grants_of(db, email) for _r, _n, email, _p, _s in demo.DEMO_PEOPLE},
        }


def _enrol_with_the_demo_pins(app, clock) -> list[str]:
    newcomer_id = make_user(app, email="newcomer@example.com", name="Nia Newcomer")
    with app.extensions["portal.sessionmaker"]() as db:
        owner_id = db.scalar(select(User.id).where(User.email == demo.OWNER))
        outcomes = [
            enrolment.enrol(
                db,
                clock(),
                app.config["SECRET_KEY"],
                user_id=owner_id,
                number=format_number(demo.demo_account("insurance").number),
                pin=demo.demo_account("insurance").pin,
            ).result,
            enrolment.enrol(
                db,
                clock(),
                app.config["SECRET_KEY"],
                user_id=newcomer_id,
                number=demo.demo_account("tobacco").number,
                pin=demo.demo_account("tobacco").pin,
            ).result,
        ]
        assert _grants_of(db, demo.OWNER)[demo.demo_account("insurance").number][0] == "owner"
        assert _grants_of(db, "newcomer@example.com") == {
            demo.demo_account("tobacco").number: ("owner", grants.permissions_text(PERMISSIONS))
        }
        return outcomes


def test_demo_data_is_the_same_in_two_fresh_databases_and_its_pins_work(
    app_config, db_backend, request, tmp_path, clock
):
    snapshots = []
    for run in range(2):
        url = empty_database(db_backend, request, tmp_path / f"run{run}")
        application = create_app({**app_config, "DATABASE_URL": url})
        try:
            result = application.test_cli_runner().invoke(args=["demo-data"])
            assert result.exit_code == 0, result.output
            snapshots.append(_snapshot(application))
            assert _enrol_with_the_demo_pins(application, clock) == ["linked", "linked"]
        finally:
            application.extensions["portal.engine"].dispose()
    assert snapshots[0] == snapshots[1]
    assert sorted(snapshots[0]["balances"]) == sorted(a.number for a in demo.DEMO_ACCOUNTS)
    assert all(type(cents) is int for cents in snapshots[0]["balances"].values())


def test_the_demo_has_the_story_the_readme_tells(app, runner, clock):
    assert runner.invoke(args=["demo-data"]).exit_code == 0
    today = demo.demo_today(clock())
    with app.extensions["portal.sessionmaker"]() as db:
        owner = _grants_of(db, demo.OWNER)
        assert {n: role for n, (role, _p) in owner.items()} == {
            demo.demo_account(k).number: "owner" for k in ("tourism", "fuel", "corporate", "refund")
        }
        viewer = grants.permissions_text(grants.ROLE_PRESETS["viewer"])
        assert _grants_of(db, demo.DELEGATE) == {demo.demo_account("tourism").number: ("delegate", viewer)}
        assert _grants_of(db, demo.REPRESENTATIVE) == {
            demo.demo_account("corporate").number: (
                "representative",
                grants.permissions_text(grants.ROLE_PRESETS["representative"]),
            )
        }
        pins = list(db.scalars(select(InvitationPin)))
        assert sorted(db.get(Account, p.account_id).number for p in pins) == sorted(
            a.number for a in demo.DEMO_ACCOUNTS if a.pin
        )
        assert all(p.used_at is None and p.expires_at > clock() for p in pins)

        entries = list(db.scalars(select(LedgerEntry)))
        assert {e.kind for e in entries} == set(LEDGER_KINDS)
        assert all(type(e.amount_cents) is int for e in entries)
        assert max(e.processed_date for e in entries) <= today
        for reversal in (e for e in entries if e.kind == "reversal"):
            undone = db.get(LedgerEntry, reversal.reverses_id)
            assert undone.amount_cents == -reversal.amount_cents and undone.reference in reversal.description
        transfers = [e for e in entries if e.kind == "transfer"]
        assert len(transfers) == 2 and sum(e.amount_cents for e in transfers) == 0

        returns = list(db.scalars(select(TaxReturn)))
        assert {r.status for r in returns} == set(RETURN_STATUSES)
        assert any(r.amended for r in returns)
        for r in returns:
            assert (r.notice_kind is not None) == (r.status in ("assessed", "reassessed"))
            assert r.notice_kind != "reassessment" or r.amended
        # Periods run up to today; the latest one or two of the monthly returns are not filed yet.
        for key in ("tourism", "fuel", "tobacco"):
            account = db.scalar(select(Account).where(Account.number == demo.demo_account(key).number))
            periods = list(
                db.scalars(
                    select(FilingPeriod).where(FilingPeriod.account_id == account.id).order_by(FilingPeriod.period_end)
                )
            )
            assert 23 <= len(periods) <= 25 and periods[-1].period_end < today
            assert (today.year * 12 + today.month) - (
                periods[-1].period_end.year * 12 + periods[-1].period_end.month
            ) == 1
            filed = {r.period_end for r in returns if r.account_id == account.id}
            assert periods[-1].period_end not in filed and periods[0].period_end in filed
        assert any(
            p.due_date < today
            for p in db.scalars(select(FilingPeriod)).all()
            if p.period_end not in {r.period_end for r in returns if r.account_id == p.account_id}
        )
        # Something owing somewhere, so the dashboard has something to say.
        assert any(cents > 0 for cents in ledger.balances(db, [a.id for a in db.scalars(select(Account))]).values())


def test_the_demo_does_not_contradict_itself(app, clock):
    """A return whose assessment is in the ledger is assessed (not still "in progress"),
    and a notice is dated the day its assessment was posted, never before it: the
    notice follows the posting or comes the same day."""
    with app.extensions["portal.sessionmaker"]() as db:
        assert demo.build_demo(db, clock())
        returns = list(db.scalars(select(TaxReturn)))
        assessments = list(db.scalars(select(LedgerEntry).where(LedgerEntry.kind == "assessment")))
        by_period: dict[tuple[int, date | None], list[TaxReturn]] = {}
        for r in returns:
            by_period.setdefault((r.account_id, r.period_end), []).append(r)
        for entry in assessments:
            period = by_period.get((entry.account_id, entry.period_end), [])
            assert period and all(r.status in ("assessed", "reassessed") for r in period), entry.reference
            assert any(r.notice_date >= entry.processed_date for r in period), entry.reference
        for r in returns:
            posted = {
                e.processed_date for e in assessments if (e.account_id, e.period_end) == (r.account_id, r.period_end)
            }
            if r.notice_date is None:
                assert not posted, r.reference  # nothing assessed before its notice
            else:
                assert r.notice_date in posted and min(posted) <= r.notice_date, r.reference
        assert any(r.status == "in_progress" for r in returns) and any(r.status == "assessed" for r in returns)


def test_the_demo_shows_removed_access_and_one_review_due(app, clock):
    """Signed in as the delegate, the fuel account's address says her access was removed;
    the owner's home page gives the one review due (the holdings account) one line."""
    from tests.accounts_factory import body
    from tests.conftest import Auth

    with app.extensions["portal.sessionmaker"]() as db:
        assert demo.build_demo(db, clock())
    password = {email: password for _r, _n, email, password, _s in demo.DEMO_PEOPLE}
    delegate, owner = app.test_client(), app.test_client()
    Auth(delegate, app).sign_in(demo.DELEGATE, password[demo.DELEGATE])
    Auth(owner, app).sign_in(demo.OWNER, password[demo.OWNER])
    told = delegate.get(f"/accounts/{demo.demo_account('fuel').number}/")
    assert told.status_code == 404 and "You no longer have access to this account" in body(told)
    home = body(owner.get("/"))
    assert home.count('id="access-reviews-due"') == 1 and "Review who can use Tremblay Holdings Ltd." in home


def test_demo_data_with_sizes_builds_exactly_that_much_benchmark_data(app, runner):
    result = runner.invoke(args=["demo-data", "--accounts", "20", "--transactions", "2000", "--batch-size", "500"])
    assert result.exit_code == 0, result.output
    assert "2,000 / 2,000 ledger entries" in result.output
    assert demo.BENCH_EMAIL in result.output and demo.BENCH_PASSWORD in result.output
    assert count(app, Account) == 20 and count(app, LedgerEntry) == 2000
    with app.extensions["portal.sessionmaker"]() as db:
        bench = db.scalar(select(User).where(User.email == demo.BENCH_EMAIL))
        assert bench.email_verified_at and bench.staff_role is None
        assert count(app, Grant, Grant.user_id == bench.id, Grant.revoked_at.is_(None)) == 20
        account_ids = list(db.scalars(select(Account.id)))
        sums = ledger.balances(db, account_ids)
        assert all(type(cents) is int for cents in sums.values())
        raw = db.execute(select(func.sum(LedgerEntry.amount_cents), func.count()).select_from(LedgerEntry)).one()
        assert int(raw[0]) == raw[0] == sum(sums.values())
        assert all(type(e) is int for e in db.scalars(select(LedgerEntry.amount_cents)))
        for reversal in db.scalars(select(LedgerEntry).where(LedgerEntry.kind == "reversal")):
            assert db.get(LedgerEntry, reversal.reverses_id).amount_cents == -reversal.amount_cents
        # The rows bulk-inserted with explicit ids leave the id sequences where new rows still fit.
        ledger.post(
            db,
            account_id=account_ids[0],
            kind="payment",
            amount_cents=-100,
            effective_date=date(2026, 1, 2),
            processed_date=date(2026, 1, 2),
            reference="TEST",
        )
        db.add(Account(number="4199999991", program_code="TL", legal_name="After", opened_on=date(2026, 1, 1)))
        db.commit()
    assert count(app, FilingPeriod) > 0 and count(app, TaxReturn) > 0
    again = runner.invoke(args=["demo-data", "--accounts", "20", "--transactions", "2000"])
    assert "already present" in again.output and count(app, LedgerEntry) == 2001


def test_create_staff_refuses_a_weak_password_and_creates_a_verified_officer(app, runner):
    weak = runner.invoke(
        args=["create-staff", "--email", "o@tra.example", "--name", "Olu Officer", "--role", "officer"],
        input="password\npassword\n",
    )
    assert weak.exit_code != 0 and count(app, User) == 0
    good = runner.invoke(
        args=["create-staff", "--email", "o@tra.example", "--name", "Olu Officer", "--role", "officer"],
        input="granite-lantern-9\ngranite-lantern-9\n",
    )
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


def test_issue_pin_prints_a_pin_that_enrols_once(app, runner, clock):
    from models import Account, InvitationPin
    from tests.accounts_factory import open_account, sessionmaker_of

    user_id = make_user(app, email="newcomer@example.com")
    with sessionmaker_of(app)() as db:
        number = open_account(db, program_code="TT", serial=77, legal_name="Chinook Tobacco Ltd.").number
        db.commit()
    refused = runner.invoke(args=["issue-pin", "--account", number[:-1] + str((int(number[-1]) + 1) % 10)])
    assert refused.exit_code != 0 and "not right" in refused.output
    result = runner.invoke(args=["issue-pin", "--account", number, "--role", "viewer", "--days", "30"])
    assert result.exit_code == 0, result.output
    pin = result.output.split("PIN ")[1].split(",")[0]
    with sessionmaker_of(app)() as db:
        stored = db.scalar(select(InvitationPin))
        assert pin not in stored.pin_hash and stored.role == "viewer"
        assert stored.expires_at == clock() + timedelta(days=30)
        outcome = enrolment.enrol(db, clock(), app.secret_key, user_id=user_id, number=number, pin=pin)
        assert outcome.result == "linked" and outcome.account.number == number
        again = enrolment.enrol(db, clock(), app.secret_key, user_id=user_id, number=number, pin=pin)
        assert again.result == "no-match"
        assert db.scalar(select(func.count()).select_from(Account)) == 1


def test_the_database_commands_migrate_say_where_they_are_and_step_back(app_config, fresh_database):
    application = create_app({**app_config, "DATABASE_URL": fresh_database})
    runner = application.test_cli_runner()
    try:
        before = runner.invoke(args=["db-current"])
        assert before.exit_code == 1 and before.output == f"Database: not migrated. This code needs: {head()}.\n"
        assert runner.invoke(args=["db-upgrade"]).output == "Database is up to date.\n"
        at_head = runner.invoke(args=["db-current"])
        assert at_head.exit_code == 0 and at_head.output == f"Database: {head()}. This code needs: {head()}.\n"
        listing = runner.invoke(args=["db-history"])
        assert listing.exit_code == 0
        assert [line.split("  ")[0] for line in listing.output.splitlines()] == [rev for rev, _ in history()]
        refused = runner.invoke(args=["db-downgrade"])
        assert refused.exit_code == 2 and "run again with --yes" in refused.output
        assert current_of(fresh_database) == head()
        down = runner.invoke(args=["db-downgrade", "--yes"])
        assert down.exit_code == 0 and down.output == f"Database is now at {history()[-2][0]}.\n"
        assert runner.invoke(args=["db-current"]).exit_code == 1
        assert runner.invoke(args=["db-upgrade"]).exit_code == 0 and current_of(fresh_database) == head()
    finally:
        application.extensions["portal.engine"].dispose()


def test_build_assets_writes_each_static_file_under_its_hashed_name_with_compressed_copies(app, runner, tmp_path):
    static = tmp_path / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body {\n    color: black;\n}\n\n/* a comment */\n" * 40)
    app.root_path = str(tmp_path)  # the command builds <root>/static into <root>/build/static
    result = runner.invoke(args=["build-assets"])
    assert result.exit_code == 0, result.output
    hashed = result.output.split(":")[0]
    assert hashed.startswith("css/site.") and hashed.endswith(".css") and "(br " in result.output
    built = tmp_path / "build" / "static"
    content = (built / hashed).read_bytes()
    assert b"comment" not in content and len(content) < len((static / "css" / "site.css").read_bytes())
    assert gzip.decompress((built / f"{hashed}.gz").read_bytes()) == content
    assert brotli.decompress((built / f"{hashed}.br").read_bytes()) == content


def test_send_email_sends_what_waits_in_the_outbox(app, runner, clock):
    with app.extensions["portal.sessionmaker"]() as db:
        outbox_domain.enqueue(db, clock(), "a@example.com", "Hello", "Body")
        outbox_domain.enqueue(db, clock(), "b@example.com", "Hello again", "Body")
        db.commit()
    result = runner.invoke(args=["send-email"])
    assert result.exit_code == 0 and result.output == "Sent 2 message(s).\n"
    assert count(app, OutboxEmail, OutboxEmail.status == "sent") == 2
    assert runner.invoke(args=["send-email"]).output == "Sent 0 message(s).\n"


def test_purge_keeps_used_links_while_any_link_could_be_that_old_and_form_keys_always(app, runner, clock):
    longest = timedelta(seconds=max(app.config["EMAIL_LINK_MAX_AGE_SECONDS"], app.config["RESET_LINK_MAX_AGE_SECONDS"]))
    past_any_link = clock() - longest - timedelta(days=1, minutes=1)
    with app.extensions["portal.sessionmaker"]() as db:
        db.add_all(
            [
                UsedToken(token_hash="old-verify", purpose="verify-email", used_at=past_any_link),
                UsedToken(token_hash="old-reset", purpose="reset-password", used_at=past_any_link),
                UsedToken(token_hash="recent-reset", purpose="reset-password", used_at=clock() - longest),
                UsedToken(token_hash="old-form-key", purpose="staff-form", used_at=past_any_link),
                ThrottleEvent(scope="sign-in", key_hash="a", occurred_at=clock() - timedelta(days=1, minutes=1)),
                ThrottleEvent(scope="sign-in", key_hash="b", occurred_at=clock() - timedelta(hours=23)),
            ]
        )
        db.commit()
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0
    assert result.output == "Purged 3 row(s).\nRemoved 0 unclaimed file(s) from the document folder.\n"
    with app.extensions["portal.sessionmaker"]() as db:
        assert set(db.scalars(select(UsedToken.token_hash))) == {"recent-reset", "old-form-key"}
        assert list(db.scalars(select(ThrottleEvent.key_hash))) == ["b"]
