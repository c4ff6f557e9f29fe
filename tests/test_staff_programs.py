"""Programs (issue 6): every member of staff sees them; administrators register
a program and change its rules, each checked beside its field and audited; the
number prefix is unique. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from domain.accounts import make_number, number_problem
from domain.programs import PROGRAMS, ensure_programs
from domain.registration import PAYMENT_FIELDS
from models import Account, AuditEvent, Program, UsedToken
from tests.accounts_factory import body, open_account, sessionmaker_of


@pytest.fixture
def programs(app):
    with sessionmaker_of(app)() as db:
        ensure_programs(db)
        db.commit()


def _answers(**changes) -> dict:
    answers = {
        "code": "BT",
        "name": "Bingo Tax",
        "number_prefix": "47",
        "filing_frequency": "quarterly",
        "due_rule": "M+1:last",
        "is_claim": "no",
        "functions": ["file", "upload", "messages"],
        "objection_days": "90",
        "description": "A tax on bingo halls.",
    }
    answers.update(changes)
    return answers


# The Tourism Levy's ways to pay as the form shows them, sent back unchanged.
TL_WAYS = {name: next(spec for spec in PROGRAMS if spec["code"] == "TL")[name] for name in PAYMENT_FIELDS}  # type: ignore[literal-required]


def _register(member, **changes):
    form = body(member.get("/staff/programs/new"))
    key = re.search(r'name="key" value="([^"]+)"', form).group(1)
    return member.post(
        "/staff/programs/new", {**_answers(**changes), "key": key}, token_from="/staff/programs/new"
    ), key


def _program(app, code: str) -> Program | None:
    with sessionmaker_of(app)() as db:
        return db.get(Program, code)


def _count(app) -> int:
    with sessionmaker_of(app)() as db:
        return db.scalar(select(func.count()).select_from(Program))


def test_every_member_of_staff_sees_the_programs(programs, staff_member):
    officer = staff_member("officer")
    response = officer.get("/staff/programs/")
    assert response.status_code == 200
    page = body(response)
    assert "Tourism Levy (TL)" in page and "Fuel Tax Refund (FTR)" in page
    assert "The last day of the month after the period ends (M+1:last)" in page
    assert "Quarterly claims" in page and "Payment arrangements" in page
    assert "/staff/programs/new" not in page and "/staff/programs/TL/edit" not in page
    admin_page = body(staff_member("administrator").get("/staff/programs/"))
    assert 'href="/staff/programs/new"' in admin_page and 'href="/staff/programs/TL/edit"' in admin_page


def test_an_administrator_registers_a_program(app, programs, staff_member):
    admin = staff_member("administrator")
    response, _key = _register(admin)
    assert response.status_code == 303 and response.headers["Location"].endswith("/staff/programs/")
    program = _program(app, "BT")
    assert (program.name, program.number_prefix, program.filing_frequency, program.due_rule) == (
        "Bingo Tax",
        "47",
        "quarterly",
        "M+1:last",
    )
    assert program.functions == "file,upload,messages" and program.allows("upload")
    assert program.is_claim is False and program.objection_days == 90
    assert program.description == "A tax on bingo halls."
    page = body(admin.get("/staff/programs/"))
    assert "Registered the program Bingo Tax (BT)." in page and "Bingo Tax (BT)" in page
    with sessionmaker_of(app)() as db:
        [event] = db.scalars(select(AuditEvent).where(AuditEvent.event == "program.registered"))
        assert event.actor_user_id == admin.id and json.loads(event.detail)["program"] == "BT"


def test_a_new_program_takes_accounts_with_its_prefix(app, programs, staff_member):
    admin = staff_member("administrator")
    assert _register(admin)[0].status_code == 303
    form = body(admin.get("/staff/accounts/new"))
    assert '<option value="BT">Bingo Tax (BT, numbers start 47)</option>' in form
    key = re.search(r'name="key" value="([^"]+)"', form).group(1)
    response = admin.post(
        "/staff/accounts/new",
        {
            "key": key,
            "program_code": "BT",
            "legal_name": "Lucky Hall Ltd.",
            "mailing_line1": "1 Main Street",
            "mailing_city": "Red Deer",
            "mailing_province": "AB",
            "mailing_postal": "T4N 1X5",
            "physical_line1": "1 Main Street",
            "physical_city": "Red Deer",
            "physical_province": "AB",
            "physical_postal": "T4N 1X5",
            "contact_name": "Lou Lucky",
            "contact_phone": "403-347-2290",
            "opened_on": "2026-01-01",
        },
        token_from="/staff/accounts/new",
    )
    assert response.status_code == 303
    with sessionmaker_of(app)() as db:
        account = db.scalar(select(Account).where(Account.program_code == "BT"))
        assert account.number == make_number("47", 1) and number_problem(account.number) is None


def test_the_same_program_form_sent_twice_makes_one(app, programs, staff_member):
    admin = staff_member("administrator")
    first, key = _register(admin)
    second = admin.post("/staff/programs/new", {**_answers(), "key": key}, token_from="/staff/programs/new")
    assert first.status_code == second.status_code == 303
    assert _count(app) == 7
    with sessionmaker_of(app)() as db:
        assert (
            db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "program.registered")) == 1
        )


def test_an_administrator_changes_a_program(app, programs, staff_member):
    admin = staff_member("administrator")
    form = body(admin.get("/staff/programs/TL/edit"))
    assert 'value="Tourism Levy"' in form and 'value="M+1:last"' in form
    assert 'name="functions" type="checkbox" value="waiver" checked' in form
    assert 'name="functions" type="checkbox" value="renewal">' in form
    response = admin.post(
        "/staff/programs/TL/edit",
        _answers(
            code="XX",
            name="Tourism Levy (accommodation)",
            number_prefix="41",
            filing_frequency="monthly",
            due_rule="m+1:25",
            functions=["file", "upload"],
            objection_days="120",
            description="Changed.",
            **TL_WAYS,
        ),
        token_from="/staff/programs/TL/edit",
    )
    assert response.status_code == 303
    program = _program(app, "TL")
    assert (program.name, program.due_rule, program.functions, program.objection_days, program.description) == (
        "Tourism Levy (accommodation)",
        "M+1:25",
        "file,upload",
        120,
        "Changed.",
    )
    assert _program(app, "XX") is None  # the code never changes
    with sessionmaker_of(app)() as db:
        [event] = db.scalars(select(AuditEvent).where(AuditEvent.event == "program.changed"))
        detail = json.loads(event.detail)
        assert detail["program"] == "TL" and event.actor_user_id == admin.id
        assert set(detail["fields"]) == {"name", "due_rule", "functions", "objection_days", "description"}
    # The same form again changes nothing and records nothing.
    again = admin.post(
        "/staff/programs/TL/edit",
        _answers(
            name="Tourism Levy (accommodation)",
            number_prefix="41",
            filing_frequency="monthly",
            due_rule="M+1:25",
            functions=["file", "upload"],
            objection_days="120",
            description="Changed.",
            **TL_WAYS,
        ),
        token_from="/staff/programs/TL/edit",
    )
    assert again.status_code == 303 and "Nothing changed" in body(admin.get("/staff/programs/"))
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.event == "program.changed")) == 1


def test_an_unknown_program_is_not_found(programs, staff_member):
    admin = staff_member("administrator")
    assert admin.get("/staff/programs/NOPE/edit").status_code == 404
    assert admin.get("/staff/programs/tl/edit").status_code == 404


@pytest.mark.parametrize("role", ["officer", "supervisor"])
def test_only_administrators_register_or_change_programs(app, programs, staff_member, role):
    member = staff_member(role)
    assert member.get("/staff/programs/new").status_code == 403
    assert member.get("/staff/programs/TL/edit").status_code == 403
    assert member.post("/staff/programs/new", {**_answers(), "key": "some-key"}).status_code == 403
    assert member.post("/staff/programs/TL/edit", _answers(name="Renamed")).status_code == 403
    assert _program(app, "BT") is None and _program(app, "TL").name == "Tourism Levy"
    with sessionmaker_of(app)() as db:
        refusals = [
            json.loads(e.detail)["reason"]
            for e in db.scalars(
                select(AuditEvent).where(AuditEvent.event == "access.refused", AuditEvent.actor_user_id == member.id)
            )
        ]
        assert refusals == ["administrator-only"] * 4


@pytest.mark.parametrize(
    "changes,field,message",
    [
        ({"code": ""}, "code", "Enter the program&#39;s code"),
        ({"code": "b1"}, "code", "Enter a code of 2 to 10 capital letters"),
        ({"code": "TL"}, "code", "There is already a program with the code TL"),
        ({"name": ""}, "name", "Enter the program&#39;s name"),
        ({"number_prefix": "41"}, "number_prefix", "Another program (TL) already uses the prefix 41"),
        ({"number_prefix": "07"}, "number_prefix", "Enter two digits, not starting with 0"),
        ({"number_prefix": "4a"}, "number_prefix", "Enter two digits, not starting with 0"),
        ({"filing_frequency": ""}, "filing_frequency", "Choose how often returns are filed"),
        ({"filing_frequency": "weekly"}, "filing_frequency", "Choose how often returns are filed"),
        ({"is_claim": "maybe"}, "is_claim", "Choose whether taxpayers file returns or claims"),
        ({"due_rule": "end of month"}, "due_rule", "Enter the due rule like M+1:last or M+1:25"),
        ({"due_rule": "M+1:32"}, "due_rule", "The day of the month is from 1 to 31, or last"),
        ({"due_rule": "M+61:last"}, "due_rule", "at most 60 months"),
        ({"is_claim": ""}, "is_claim", "Choose whether taxpayers file returns or claims"),
        ({"functions": ["file", "teleport"]}, "functions", "Choose self-service functions from the list"),
        ({"name": "Bingo\x00Tax"}, "name", "Enter the name on one line"),
        ({"description": "Bingo\x00"}, "description", "Enter the description without special characters"),
        ({"objection_days": "ninety"}, "objection_days", "Enter a whole number of days from 1 to 3650"),
        ({"objection_days": "0"}, "objection_days", "Enter a whole number of days from 1 to 3650"),
    ],
)
def test_bad_programs_are_refused_beside_their_field(app, programs, staff_member, changes, field, message):
    admin = staff_member("administrator")
    response, _key = _register(admin, **changes)
    assert response.status_code == 400
    page = body(response)
    assert message in page and f'href="#{field}"' in page
    assert _count(app) == 6
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count()).select_from(UsedToken)) == 0


def test_the_prefix_and_frequency_stay_while_the_program_has_accounts(app, programs, staff_member):
    with sessionmaker_of(app)() as db:
        open_account(db, serial=5)
        db.commit()
    admin = staff_member("administrator")
    for changes, message in (
        ({"number_prefix": "48"}, "The prefix cannot change"),
        ({"filing_frequency": "annual"}, "The filing frequency cannot change"),
    ):
        answers = _answers(name="Tourism Levy", number_prefix="41", filing_frequency="monthly")
        answers.update(changes)
        response = admin.post("/staff/programs/TL/edit", answers, token_from="/staff/programs/TL/edit")
        assert response.status_code == 400 and message in body(response)
    program = _program(app, "TL")
    assert (program.number_prefix, program.filing_frequency) == ("41", "monthly")
    # A program with no accounts may change both.
    response = admin.post(
        "/staff/programs/CIT/edit",
        _answers(name="Corporate Income Tax", number_prefix="49", filing_frequency="annual", due_rule="M+6:last"),
        token_from="/staff/programs/CIT/edit",
    )
    assert response.status_code == 303 and _program(app, "CIT").number_prefix == "49"
