"""Direct deposit (issue 5): the bank details refunds are paid into. Typed once,
checked masked, confirmed with the password, and from then on shown only as the
last three digits, everywhere. Everyone on the account who receives messages is told."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from domain import direct_deposit
from models import AuditEvent, DirectDeposit, Draft, Message, OutboxEmail, ServiceRequest
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import PASSWORD, csrf_from, make_user

OWNER, PARTNER, CLERK, REMOVED, FORMER_REP, STRANGER = (
    "owner@example.com",
    "partner@example.com",
    "clerk@example.com",
    "removed@example.com",
    "former-rep@example.com",
    "stranger@example.com",
)
FULL = "9876543210"  # the account number typed in the tests: it must never be shown again
NEW = {"transit": "12345", "institution": "004", "bank_account": FULL}


@pytest.fixture
def lodge(app, clock):
    """Maple Lodge: Olive owns it; Parker is authorized (may change direct deposit);
    Casey only views it; Rory's access was removed; Fran was a representative whose
    consent ended yesterday; Sam has no access. Tobacco Tax (no direct deposit) too."""
    ids = {
        email: make_user(app, email=email, name=name)
        for email, name in (
            (OWNER, "Olive Owner"),
            (PARTNER, "Parker Partner"),
            (CLERK, "Casey Clerk"),
            (REMOVED, "Rory Removed"),
            (FORMER_REP, "Fran Former"),
            (STRANGER, "Sam Stranger"),
        )
    }
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Maple Lodge Ltd.", opened_on=date(2026, 5, 1))
        tobacco = open_account(
            db, program_code="TT", serial=62, legal_name="Smoke Shop Ltd.", opened_on=date(2026, 5, 1)
        )
        give(db, clock(), ids[OWNER], account)
        give(db, clock(), ids[OWNER], tobacco)
        give(db, clock(), ids[PARTNER], account, role="authorized")
        give(db, clock(), ids[CLERK], account, role="viewer")
        removed = give(db, clock(), ids[REMOVED], account, role="authorized")
        removed.revoked_at = clock()
        former = give(db, clock(), ids[FORMER_REP], account, role="representative")
        former.valid_from, former.valid_until = date(2026, 6, 1), date(2026, 11, 22)
        db.commit()
        return {"number": account.number, "account_id": account.id, "tobacco": tobacco.number, **ids}


def _post(client, url, data=None):
    token = csrf_from(body(client.get("/profile/")))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def _change(client, number, **fields):
    return _post(client, f"/direct-deposit/{number}/change", {**NEW, **fields})


def _draft_token(client, number) -> str:
    page = body(client.get(f"/direct-deposit/{number}/check"))
    return re.search(r'name="token" type="hidden" value="([^"]+)"', page).group(1)


def _submit(client, number, token, password=PASSWORD, declaration="y"):
    return _post(
        client, f"/direct-deposit/{number}/check", {"token": token, "password": password, "declaration": declaration}
    )


def _change_and_submit(client, number, **fields):
    assert _change(client, number, **fields).status_code == 303
    return _submit(client, number, _draft_token(client, number))


def _count(app, model, *where):
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


# --- The journey ---------------------------------------------------------------------


def test_set_up_direct_deposit_end_to_end(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    summary = body(owner.get(f"/accounts/{number}/"))
    assert f"/direct-deposit/{number}/" in summary  # the account's services list links here
    page = body(owner.get(f"/direct-deposit/{number}/"))
    assert "Direct deposit is not set up" in page and "Set up direct deposit" in page
    form = body(owner.get(f"/direct-deposit/{number}/change"))
    assert "Where the numbers are on the bottom line of a cheque" in form
    assert _count(app, Draft) == 0  # a GET starts nothing
    response = _change(owner, number, bank_account="987-654 3210")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/direct-deposit/{number}/check")
    check = body(owner.get(f"/direct-deposit/{number}/check"))
    assert "•••••••210" in check and "12345" in check and "004" in check and FULL not in check
    assert f'href="/direct-deposit/{number}/change"' in check  # Change links
    # Back to the form: the person's own answers, as they were kept.
    assert f'value="{FULL}"' in body(owner.get(f"/direct-deposit/{number}/change"))
    response = _submit(owner, number, _draft_token(owner, number))
    assert response.status_code == 303
    done = body(owner.get(response.headers["Location"]))
    with sessionmaker_of(app)() as db:
        request = db.scalar(select(ServiceRequest))
        assert request.kind == "direct_deposit" and request.status == "completed"
        assert request.reference in done and "What happens next" in done
        row = db.scalar(select(DirectDeposit))
        assert (row.institution, row.transit, row.bank_account) == ("004", "12345", FULL)
        assert row.set_by_user_id == lodge[OWNER] and row.service_request_id == request.id and row.ended_at is None
        assert json.loads(request.data) == {
            "institution": "004",
            "transit": "12345",
            "account_ending": "210",
            "account_masked": "•••••••210",
        }
        draft = db.scalar(select(Draft))
        assert draft.submitted_request_id == request.id and FULL not in draft.data
        assert (
            db.scalar(
                select(func.count(AuditEvent.id)).where(
                    AuditEvent.event == "direct_deposit.changed", AuditEvent.account_id == lodge["account_id"]
                )
            )
            == 1
        )
    page = body(owner.get(f"/direct-deposit/{number}/"))
    assert "•••••••210" in page and "Olive Owner" in page and FULL not in page
    assert "Change the bank details" in page
    # Coming back to the check page after submitting: nothing open, back to the form.
    assert owner.get(f"/direct-deposit/{number}/check").status_code == 303


def test_the_full_account_number_appears_nowhere_after_the_form(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    assert _change(owner, number).status_code == 303
    pages = [body(owner.get(f"/direct-deposit/{number}/check"))]
    done = _submit(owner, number, _draft_token(owner, number))
    pages.append(body(owner.get(done.headers["Location"])))
    pages.append(body(owner.get(f"/direct-deposit/{number}/")))
    pages.append(body(owner.get(f"/requests/{number}/")))
    pages.append(body(owner.get("/messages/")))
    with sessionmaker_of(app)() as db:
        thread_ids = list(db.scalars(select(Message.thread_id).where(Message.user_id == lodge[OWNER])))
        stored = [r.data + r.summary for r in db.scalars(select(ServiceRequest))]
        stored += [m.subject + m.body for m in db.scalars(select(Message))]
        stored += [e.to_address + e.subject + e.body_text for e in db.scalars(select(OutboxEmail))]
        stored += [a.event + a.detail for a in db.scalars(select(AuditEvent))]
        stored += [d.data for d in db.scalars(select(Draft))]
    pages += [body(owner.get(f"/messages/{thread_id}")) for thread_id in thread_ids]
    assert thread_ids and len(pages) == 6
    assert "•••••••210" in pages[-1]
    for text in pages + stored:
        assert FULL not in text
        assert "98765" not in text  # nor a long piece of it


@pytest.mark.parametrize(
    "typed, stored",
    [
        ({"institution": " 0 0 4 ", "transit": "12-345", "bank_account": "987 654-3210"}, ("004", "12345", FULL)),
        ({"institution": "010", "transit": "00011", "bank_account": "1234567"}, ("010", "00011", "1234567")),
        (
            {"institution": "999", "transit": "9-9-9-9-9", "bank_account": "123456789012"},
            ("999", "99999", "123456789012"),
        ),
    ],
)
def test_spaces_and_hyphens_between_digits_are_stripped(app, lodge, typed, stored):
    owner = signed_in(app, OWNER)
    assert _change(owner, lodge["number"], **typed).status_code == 303
    with sessionmaker_of(app)() as db:
        answers = json.loads(db.scalar(select(Draft.data)))
    assert (answers["institution"], answers["transit"], answers["bank_account"]) == stored


_TOO_LONG = "1" * 10_000
_BAD = [
    ("institution", "", "Enter the institution number"),
    ("institution", "04", "Institution number must be 3 digits"),
    ("institution", "0044", "Institution number must be 3 digits"),
    ("institution", "0a4", "Institution number must only include numbers 0 to 9"),
    ("institution", "١٢٣", "Institution number must only include numbers 0 to 9"),
    ("institution", _TOO_LONG, "Institution number must be 3 digits"),
    ("transit", "", "Enter the transit number"),
    ("transit", "1234", "Transit number must be 5 digits"),
    ("transit", "123456", "Transit number must be 5 digits"),
    ("transit", "12b45", "Transit number must only include numbers 0 to 9"),
    ("transit", "١٢٣٤٥", "Transit number must only include numbers 0 to 9"),
    ("transit", "---", "Transit number must only include numbers 0 to 9"),
    ("transit", "9" * 10_000, "Transit number must be 5 digits"),
    ("bank_account", "", "Enter the account number"),
    ("bank_account", "123456", "Account number must be between 7 and 12 digits"),
    ("bank_account", "1234567890123", "Account number must be between 7 and 12 digits"),
    ("bank_account", "12345x7", "Account number must only include numbers 0 to 9"),
    ("bank_account", "١٢٣٤٥٦٧", "Account number must only include numbers 0 to 9"),
    ("bank_account", "1234567.0", "Account number must only include numbers 0 to 9"),
    ("bank_account", "x" * 10_000, "Account number must be between 7 and 12 digits"),
]


@pytest.mark.parametrize("field, typed, message", _BAD, ids=[f"{f}-{i}" for i, (f, _t, _m) in enumerate(_BAD)])
def test_a_wrong_number_gets_a_message_beside_the_field_and_changes_nothing(app, lodge, field, typed, message):
    owner = signed_in(app, OWNER)
    response = _change(owner, lodge["number"], **{field: typed})
    assert response.status_code == 400
    page = body(response)
    assert f'<p class="field-error" id="{field}-error"><span class="visually-hidden">Error:</span> {message}' in page
    assert f'<a href="#{field}">{message}' in page  # and in the error summary
    assert _count(app, Draft) == 0 and _count(app, DirectDeposit) == 0


def test_a_missing_field_is_a_message_not_an_error(app, lodge):
    owner = signed_in(app, OWNER)
    response = _post(owner, f"/direct-deposit/{lodge['number']}/change", {"transit": "12345"})
    assert response.status_code == 400
    assert "Enter the institution number" in body(response) and "Enter the account number" in body(response)


# --- The password step -----------------------------------------------------------------


def test_a_wrong_password_is_refused_and_changes_nothing(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    _change(owner, number)
    token = _draft_token(owner, number)
    response = _submit(owner, number, token, password="not-my-password-at-all")
    assert response.status_code == 400
    page = body(response)
    assert '<p class="field-error" id="password-error">' in page and "Your password is not correct" in page
    assert 'href="#password"' in page and "not-my-password-at-all" not in page
    no_tick = _submit(owner, number, token, declaration="")
    assert no_tick.status_code == 400 and "Confirm the declaration" in body(no_tick)
    empty = _submit(owner, number, token, password="")
    assert empty.status_code == 400 and "Enter your password" in body(empty)
    assert _count(app, DirectDeposit) == 0 and _count(app, ServiceRequest) == 0 and _count(app, Message) == 0
    assert _count(app, Draft, Draft.submitted_request_id.is_(None)) == 1  # still there to try again
    assert _submit(owner, number, token).status_code == 303
    assert _count(app, DirectDeposit) == 1


def test_repeated_wrong_passwords_are_throttled(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    _change(owner, number)
    token = _draft_token(owner, number)
    for _ in range(app.config["SIGNIN_MAX_FAILURES"]):
        assert _submit(owner, number, token, password="guess-guess-guess").status_code == 400
    locked = _submit(owner, number, token)  # even the right password, now
    assert locked.status_code == 429 and "You have tried too many times" in body(locked)
    assert _count(app, DirectDeposit) == 0 and _count(app, ServiceRequest) == 0


def test_two_step_sign_in_asks_for_the_code_too(app, lodge, clock):
    import pyotp

    secret = pyotp.random_base32()
    make_user(app, email="twostep@example.com", name="Tess Two", totp_secret=secret)
    with sessionmaker_of(app)() as db:
        from models import Account, User

        account = db.scalar(select(Account).where(Account.number == lodge["number"]))
        give(db, clock(), db.scalar(select(User.id).where(User.email == "twostep@example.com")), account)
        db.commit()
    from tests.conftest import Auth

    client = app.test_client()
    assert (
        Auth(client, app).sign_in(email="twostep@example.com", code=pyotp.TOTP(secret).at(clock())).status_code == 303
    )
    number = lodge["number"]
    _change(client, number)
    assert 'id="code"' in body(client.get(f"/direct-deposit/{number}/check"))
    token = _draft_token(client, number)
    assert _submit(client, number, token).status_code == 400  # no code
    clock.advance(seconds=60)
    response = _post(
        client,
        f"/direct-deposit/{number}/check",
        {"token": token, "password": PASSWORD, "declaration": "y", "code": pyotp.TOTP(secret).at(clock())},
    )
    assert response.status_code == 303 and _count(app, DirectDeposit) == 1


# --- Replacing, telling everyone, once ----------------------------------------------------


def test_a_change_replaces_the_old_details_and_keeps_the_history(app, lodge, clock):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    assert _change_and_submit(owner, number).status_code == 303
    clock.advance(days=2)
    partner = signed_in(app, PARTNER)
    assert _change_and_submit(partner, number, bank_account="1112223334", transit="54321").status_code == 303
    with sessionmaker_of(app)() as db:
        rows = list(db.scalars(select(DirectDeposit).order_by(DirectDeposit.id)))
        assert len(rows) == 2 and rows[0].ended_at == rows[1].set_at and rows[1].ended_at is None
        assert direct_deposit.current(db, lodge["account_id"]).bank_account == "1112223334"
        assert db.scalar(select(func.count(ServiceRequest.id))) == 2
    page = body(signed_in(app, OWNER).get(f"/direct-deposit/{number}/"))  # two days on: a new session
    current, earlier = page.split("Earlier bank details")
    assert "•••••••334" in current and "Parker Partner" in current and "54321" in current
    assert "•••••••210" in earlier and "Olive Owner" in earlier
    assert FULL not in page and "1112223334" not in page


def test_everyone_with_access_is_told_and_only_they_are(app, lodge):
    owner = signed_in(app, OWNER)
    response = _change_and_submit(owner, lodge["number"])
    reference = response.headers["Location"].rsplit("/", 1)[1]
    # Grants in force today that allow receiving messages: not the viewer.
    told = {lodge[OWNER], lodge[PARTNER]}
    with sessionmaker_of(app)() as db:
        messages = list(db.scalars(select(Message)))
        assert {m.user_id for m in messages} == told and len(messages) == 2
        for message in messages:
            assert message.subject == "Direct deposit details changed for Maple Lodge Ltd."
            assert message.account_id == lodge["account_id"] and message.read_at is None
            for words in (
                "Olive Owner",
                "•••••••210",
                "12345",
                "004",
                reference,
                "did not expect it",
                "11:00 am on Monday 23 November 2026",
            ):
                assert words in message.body, words
        emails = list(db.scalars(select(OutboxEmail)))
        assert sorted(e.to_address for e in emails) == sorted([OWNER, PARTNER])
        for email in emails:
            assert "new message" in email.body_text and "a change to one of your accounts" in email.body_text
            for secret in ("Maple Lodge", lodge["number"], "210", "12345", "004", "Olive", "http"):
                assert secret not in email.body_text + email.subject, secret
    partner = signed_in(app, PARTNER)
    assert "Direct deposit details changed for Maple Lodge Ltd." in body(partner.get("/messages/"))
    for email in (CLERK, REMOVED, FORMER_REP, STRANGER):
        assert "Maple Lodge" not in body(signed_in(app, email).get("/messages/"))


def test_a_double_submit_makes_one_change_and_answers_the_same_confirmation(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    _change(owner, number)
    token = _draft_token(owner, number)
    first, second = _submit(owner, number, token), _submit(owner, number, token)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    # A second tab, even with a wrong password, learns nothing more than the confirmation.
    third = _submit(owner, number, token, password="wrong-wrong-wrong")
    assert third.headers["Location"] == first.headers["Location"]
    assert _count(app, ServiceRequest) == 1 and _count(app, DirectDeposit) == 1
    assert _count(app, Message) == 2 and _count(app, OutboxEmail) == 2
    assert _count(app, AuditEvent, AuditEvent.event == "direct_deposit.changed") == 1
    # Once the submitted draft is purged, the same key still finds its confirmation.
    with sessionmaker_of(app)() as db:
        db.execute(delete(Draft))
        db.commit()
    assert _submit(owner, number, token).headers["Location"] == first.headers["Location"]


def test_someone_elses_draft_token_is_not_theirs_to_submit(app, lodge):
    owner = signed_in(app, OWNER)
    _change(owner, lodge["number"])
    token = _draft_token(owner, lodge["number"])
    partner = signed_in(app, PARTNER)
    response = _submit(partner, lodge["number"], token)
    assert response.status_code == 303 and response.headers["Location"].endswith("/change")
    assert _count(app, DirectDeposit) == 0


# --- Who may, and where it is offered ----------------------------------------------------


def test_strangers_and_people_without_the_permission_get_404(app, lodge):
    owner = signed_in(app, OWNER)
    done = _change_and_submit(owner, lodge["number"]).headers["Location"]
    number = lodge["number"]
    urls = [f"/direct-deposit/{number}/", f"/direct-deposit/{number}/change", f"/direct-deposit/{number}/check", done]
    for email in (STRANGER, CLERK, REMOVED, FORMER_REP):
        client = signed_in(app, email)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 404 and "Maple Lodge" not in body(response), (email, url)
        assert _change(client, number).status_code == 404
    assert owner.get(f"/direct-deposit/{number}/done/SR-NONE-NONE").status_code == 404
    assert owner.get(f"/direct-deposit/{number}/done/{'X' * 5000}").status_code == 404
    assert owner.get("/direct-deposit/4100000000/").status_code == 404


def test_a_program_without_direct_deposit_explains_and_changes_nothing(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["tobacco"]
    for url in (f"/direct-deposit/{number}/", f"/direct-deposit/{number}/change", f"/direct-deposit/{number}/check"):
        response = owner.get(url)
        assert response.status_code == 200 and "does not pay refunds by direct deposit" in body(response)
    response = _change(owner, number)
    assert response.status_code == 200 and "does not pay refunds by direct deposit" in body(response)
    assert _count(app, Draft) == 0


# --- The rules, directly --------------------------------------------------------------------


def test_clean_takes_ascii_digits_with_separators_only():
    assert direct_deposit.clean("bank_account", "12 34-567") == ("1234567", None)
    assert direct_deposit.clean("transit", None)[1] == "Enter the transit number"
    assert direct_deposit.clean("transit", "１２３４５")[1].startswith("Transit number must only")  # full-width
    assert direct_deposit.clean("transit", "12\u00a0345")[1].startswith("Transit number must only")
    assert direct_deposit.mask("1234567") == "•••••••567" == direct_deposit.mask("999991234567")[:-3] + "567"


# --- Property: arbitrary text never breaks the form ------------------------------------------

_text = st.one_of(
    st.text(max_size=60),
    st.from_regex(r"[0-9 \-]{0,20}", fullmatch=True),
    st.sampled_from(["004", "12345", FULL, "", "١٢٣"]),
)


def test_the_change_form_takes_any_text(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    token = csrf_from(body(owner.get("/profile/")))
    url = f"/direct-deposit/{number}/change"

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(institution=_text, transit=_text, bank_account=_text)
    def post_anything(institution, transit, bank_account):
        with sessionmaker_of(app)() as db:
            before = db.scalar(select(Draft.data))
        response = owner.post(
            url,
            data={"csrf_token": token, "institution": institution, "transit": transit, "bank_account": bank_account},
        )
        assert response.status_code in (303, 400)
        with sessionmaker_of(app)() as db:
            after = db.scalar(select(Draft.data))
        if response.status_code == 303:
            expected = {
                field: direct_deposit.clean(field, value)[0]
                for field, value in (("institution", institution), ("transit", transit), ("bank_account", bank_account))
            }
            assert json.loads(after) == expected
        else:
            assert after == before
        assert _count(app, DirectDeposit) == 0

    post_anything()


def test_the_check_form_takes_any_text(app, lodge):
    owner = signed_in(app, OWNER)
    number = lodge["number"]
    _change(owner, number)
    draft_token = _draft_token(owner, number)
    token = csrf_from(body(owner.get("/profile/")))

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        password=st.text(max_size=40),
        code=st.text(max_size=30),
        declaration=st.text(max_size=5),
        which=st.sampled_from(["draft", "other", "none"]),
        other=st.text(max_size=80),
    )
    def post_anything(password, code, declaration, which, other):
        data = {"csrf_token": token, "password": password, "code": code, "declaration": declaration}
        if which == "draft":
            data["token"] = draft_token
        elif which == "other":
            data["token"] = other
        response = owner.post(f"/direct-deposit/{number}/check", data=data)
        assert response.status_code in (303, 400, 429)
        assert _count(app, DirectDeposit) == 0 and _count(app, ServiceRequest) == 0

    post_anything()
