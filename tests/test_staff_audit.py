"""The staff audit viewer (issue 6): filter by person, account, action and days
(service-zone days), newest first in keyset pages of 100, a fragment for htmx,
the same filter as CSV (BOM, formula guard), supervisors and administrators only,
every export itself audited, and a 400 beside the field for a filter that is wrong."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from domain import audit
from models import AuditEvent
from tests.accounts_factory import as_written, body, open_account, sessionmaker_of, signed_in
from tests.conftest import make_user

URL = "/staff/audit/"
CSV_URL = "/staff/audit/export.csv"


@pytest.fixture
def log(app):
    """Two people, two accounts and a handful of events at known times."""
    ann = make_user(app, email="ann@example.com", name="Ann Able")
    bo = make_user(app, email="bo@example.com", name="Bo Baker")
    mallory = make_user(app, email="mallory@example.com", name='=HYPERLINK("http://evil.example")')
    with sessionmaker_of(app)() as db:
        inn = open_account(db, serial=81, legal_name="Audit Inn Ltd.")
        bar = open_account(db, serial=82, legal_name="Audit Bar Ltd.")
        at = datetime(2026, 11, 10, 18, 0, tzinfo=UTC)  # 11:00 on 10 November, Mountain time
        events = [
            (at, "consent.approved", dict(actor_user_id=ann, account_id=inn.id, consent=7)),
            (at + timedelta(hours=1), "consent.declined", dict(actor_user_id=bo, account_id=bar.id, consent=8)),
            # 23:30 on 11 November in Edmonton, already the 12th in UTC.
            (
                datetime(2026, 11, 12, 6, 30, tzinfo=UTC),
                "mail.posted",
                dict(actor_user_id=None, account_id=inn.id, mail=3, kind="letter"),
            ),
            (
                datetime(2026, 11, 12, 7, 30, tzinfo=UTC),
                "access.changed",
                dict(actor_user_id=ann, subject_user_id=bo, account_id=inn.id, note='=HYPERLINK("x")'),
            ),
            (datetime(2026, 11, 15, 18, 0, tzinfo=UTC), "consent_form.read", dict(actor_user_id=bo, account_id=None)),
            # Text a spreadsheet would run: a name and a detail that start like formulas.
            (
                datetime(2026, 11, 12, 8, 0, tzinfo=UTC),
                "access.reviewed",
                {"actor_user_id": mallory, "account_id": inn.id, "-2+3": "@SUM(1)"},
            ),
        ]
        ids = []
        for when, name, fields in events:
            event = audit.record(db, when, name, **fields)
            db.flush()
            ids.append(event.id)
        db.commit()
        return {"ann": ann, "bo": bo, "inn": inn.number, "bar": bar.number, "inn_id": inn.id, "ids": ids}


def _ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="meta">No\. (\d+)</span>', page)]


def _csv_rows(response) -> list[list[str]]:
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# --- Who may look ------------------------------------------------------------------------


def test_supervisors_and_administrators_see_the_log_and_officers_are_refused(app, log, staff_member):
    for role in ("supervisor", "administrator"):
        member = staff_member(role)
        response = member.get(URL)
        assert response.status_code == 200, role
        assert 'aria-current="page">Audit</a>' in body(response)
        assert member.get(CSV_URL).status_code == 200
    officer = staff_member("officer")
    for path in (URL, CSV_URL, f"{URL}?action=consent."):
        response = officer.get(path)
        assert response.status_code == 403, path
        assert "consent.approved" not in body(response)
    with sessionmaker_of(app)() as db:
        refused = db.scalars(
            select(AuditEvent).where(AuditEvent.event == "access.refused", AuditEvent.actor_user_id == officer.id)
        ).all()
        assert len(refused) == 3 and all('"supervisor-only"' in e.detail for e in refused)
        assert (
            db.scalar(
                select(func.count(AuditEvent.id)).where(
                    AuditEvent.event == "audit.exported", AuditEvent.actor_user_id == officer.id
                )
            )
            == 0
        )
    assert signed_in(app, "ann@example.com").get(URL).status_code == 403


# --- Filters ------------------------------------------------------------------------------


def test_each_row_says_when_what_who_to_whom_which_account_and_the_detail(app, log, staff_member):
    page = body(staff_member("supervisor").get(URL + "?action=access.changed"))
    assert _ids(page) == [log["ids"][3]]
    row = as_written(page[page.index('<table class="table" id="audit-events">') :])
    assert "12 Nov 2026, 12:30:00 am" in row and "<td>Access changed</td>" in row and "<td>Done</td>" in row
    assert 'Ann Able<span class="meta">ann@example.com</span>' in row
    assert 'Bo Baker<span class="meta">bo@example.com</span>' in row
    assert log["inn"][:4] + " " + log["inn"][4:8] + " " + log["inn"][8:] in row
    assert "Note: =HYPERLINK(&#34;x&#34;)" in row
    system = body(staff_member("supervisor").get(URL + "?action=mail.posted"))
    assert "System" in system and "Kind: letter<br>Mail: 3" in system


def test_filter_by_person_email_or_user_number_as_actor_or_subject(app, log, staff_member):
    supervisor = staff_member("supervisor")
    ids = log["ids"]
    by_email = _ids(body(supervisor.get(URL + "?person=bo@example.com")))
    assert by_email == [ids[4], ids[3], ids[1]]  # Bo's own events, and the one done to Bo; newest first
    assert _ids(body(supervisor.get(URL + "?person=BO@Example.com"))) == by_email
    assert _ids(body(supervisor.get(URL + f"?person={log['ann']}"))) == [ids[3], ids[0]]


def test_filter_by_account_action_and_days(app, log, staff_member):
    supervisor = staff_member("supervisor")
    ids = log["ids"]
    spaced = f"{log['inn'][:4]} {log['inn'][4:8]} {log['inn'][8:]}"
    assert _ids(body(supervisor.get(URL, query_string={"account": spaced}))) == [ids[5], ids[3], ids[2], ids[0]]
    assert _ids(body(supervisor.get(URL + "?action=consent."))) == [ids[1], ids[0]]  # not consent_form.read
    assert _ids(body(supervisor.get(URL + "?action=consent.approved"))) == [ids[0]]
    assert _ids(body(supervisor.get(URL + "?action=consent"))) == []  # an event name is matched whole
    # Days are Mountain time: 23:30 on the 11th is the 11th, though it was the 12th in UTC.
    assert _ids(body(supervisor.get(URL + "?from=2026-11-11&to=2026-11-11"))) == [ids[2]]
    assert _ids(body(supervisor.get(URL + "?from=2026-11-12&to=2026-11-14"))) == [ids[5], ids[3]]
    assert _ids(body(supervisor.get(URL + "?to=2026-11-10"))) == [ids[1], ids[0]]
    combined = body(
        supervisor.get(
            URL,
            query_string={
                "person": "ann@example.com",
                "account": log["inn"],
                "action": "access.",
                "from": "2026-11-12",
            },
        )
    )
    assert _ids(combined) == [ids[3]]
    assert "No events match the filter." in body(supervisor.get(URL + "?action=nothing.here"))


def test_the_log_is_paged_a_hundred_at_a_time_newest_first(app, clock, staff_member):
    with sessionmaker_of(app)() as db:
        for n in range(250):
            audit.record(db, clock() - timedelta(minutes=250 - n), "test.paged", number=n)
        db.commit()
        made = db.scalars(
            select(AuditEvent.id).where(AuditEvent.event == "test.paged").order_by(AuditEvent.id.desc())
        ).all()
    supervisor = staff_member("supervisor")
    first = body(supervisor.get(URL + "?action=test.paged"))
    assert _ids(first) == made[:100]
    next_url = re.search(r'<a href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert f"before={made[99]}" in next_url and "action=test.paged" in next_url
    second = body(supervisor.get(next_url))
    assert _ids(second) == made[100:200] and "Newest events" in second
    third = body(supervisor.get(re.search(r'<a href="([^"]+)" rel="next"', second).group(1).replace("&amp;", "&")))
    assert _ids(third) == made[200:] and 'rel="next"' not in third
    # Events written since the first page do not shift the later pages.
    with sessionmaker_of(app)() as db:
        audit.record(db, clock(), "test.paged", number=999)
        db.commit()
    assert _ids(body(supervisor.get(next_url))) == made[100:200]
    # A `before` that is no id shows the first page.
    assert _ids(body(supervisor.get(URL + "?action=test.paged&before=abc")))[1:] == made[:99]


def test_htmx_gets_only_the_results(app, log, staff_member):
    supervisor = staff_member("supervisor")
    response = supervisor.get(URL + "?action=consent.", headers={"HX-Request": "true"})
    page = body(response)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert page.startswith('<div id="audit-results"') and "<html" not in page and "audit-filter" not in page
    assert _ids(page) == [log["ids"][1], log["ids"][0]] and 'data-hx-swap-oob="innerHTML"' in page
    whole = body(supervisor.get(URL + "?action=consent."))
    assert 'id="audit-filter"' in whole and 'data-hx-get="/staff/audit/"' in whole and 'id="audit-results"' in whole


def _typed(name: str, day: str, month: str, year: str) -> dict[str, str]:
    return {f"{name}_day": day, f"{name}_month": month, f"{name}_year": year}


@pytest.mark.parametrize(
    "query, field, link, message",
    [
        (_typed("from", "1", "13", "2026"), "audit-from", "audit-from_month", "The first day must be a real date"),
        (_typed("to", "yesterday", "", ""), "audit-to", "audit-to_month", "The last day must include a month and year"),
        (_typed("from", "31", "12", "9999"), "audit-from", "audit-from_day", "The first day must be a real date"),
        ({"from": "2026-13-01"}, "audit-from", "audit-from_month", "The first day must be a real date"),
        (
            {**_typed("from", "20", "11", "2026"), **_typed("to", "10", "11", "2026")},
            "audit-from",
            "audit-from_day",
            "The first day must be on or before the last day",
        ),
        ({"person": "nobody@example.com"}, "audit-person", "audit-person", "No one has that email address"),
        ({"person": "99999"}, "audit-person", "audit-person", "No one has that user number"),
        (
            {"person": "Ann Able"},
            "audit-person",
            "audit-person",
            "Enter an email address, like name@example.com, or a user number",
        ),
        ({"account": "1234"}, "audit-account", "audit-account", "An account number has 10 digits"),
        ({"account": "4100000019"}, "audit-account", "audit-account", "No account has that number"),
        ({"action": "DROP TABLE;"}, "audit-action", "audit-action", "Enter an event in words, like Consent approved"),
    ],
)
def test_a_wrong_filter_gets_a_400_with_the_message_beside_the_field(
    app, log, staff_member, query, field, link, message
):
    supervisor = staff_member("supervisor")
    response = supervisor.get(URL, query_string=query)
    assert response.status_code == 400
    page = body(response)
    assert message in page and f'href="#{link}"' in page and f'id="{field}-error"' in page
    assert "Correct the filter to see events." in page and "<code>" not in page
    exported = supervisor.get(CSV_URL, query_string=query)
    assert exported.status_code == 400 and message in body(exported)
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.event == "audit.exported")) == 0
    over_htmx = supervisor.get(URL, query_string=query, headers={"HX-Request": "true"})
    assert over_htmx.status_code == 400 and over_htmx.headers["HX-Retarget"] == "#audit-filter"
    assert body(over_htmx).lstrip().startswith('<form method="get" action="/staff/audit/" id="audit-filter"')


# --- The CSV ------------------------------------------------------------------------------


def test_the_csv_has_the_same_rows_as_the_filter_with_a_bom_and_no_formulas(app, log, staff_member):
    supervisor = staff_member("supervisor")
    query = {"account": log["inn"]}
    shown = _ids(body(supervisor.get(URL, query_string=query)))
    response = supervisor.get(CSV_URL, query_string=query)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    header, *rows = _csv_rows(response)
    assert header[:5] == ["Event number", "When", "Event", "Event code", "Outcome"] and header[-1] == "Detail"
    assert [int(r[0]) for r in rows] == shown == [log["ids"][5], log["ids"][3], log["ids"][2], log["ids"][0]]
    reviewed, changed = rows[0], rows[1]
    # A spreadsheet shows these, never runs them.
    assert reviewed[6] == '\'=HYPERLINK("http://evil.example")' and reviewed[12] == "'-2+3: @SUM(1)"
    assert changed[1] == "2026-11-12T00:30:00-07:00" and changed[2:5] == ["Access changed", "access.changed", "Done"]
    assert changed[6:8] == ["Ann Able", "ann@example.com"] and changed[9:11] == ["Bo Baker", "bo@example.com"]
    assert changed[11] == log["inn"]
    assert changed[12] == 'Note: =HYPERLINK("x")'  # not at the start of the cell: no formula
    assert rows[2][12] == "Kind: letter; Mail: 3" and rows[2][5:8] == ["", "", ""]
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell


def test_every_export_is_audited_without_personal_data(app, log, staff_member):
    supervisor = staff_member("supervisor")
    response = supervisor.get(
        CSV_URL,
        query_string={"person": "bo@example.com", "action": "consent.", "from": "2026-11-01", "to": "2026-11-30"},
    )
    assert response.status_code == 200
    _header, *rows = _csv_rows(response)
    assert [int(r[0]) for r in rows] == [log["ids"][1]]
    with sessionmaker_of(app)() as db:
        (event,) = db.scalars(select(AuditEvent).where(AuditEvent.event == "audit.exported")).all()
    assert event.actor_user_id == supervisor.id and event.account_id is None
    detail = json.loads(event.detail)
    assert detail == {
        "account": None,
        "person": log["bo"],
        "action": "consent.",
        "start": "2026-11-01T06:00:00+00:00",
        "end": "2026-12-01T07:00:00+00:00",
    }
    assert "@" not in event.detail
    # The unfiltered export holds everything, the export's own record included.
    everything = _csv_rows(supervisor.get(CSV_URL))[1:]
    events = {row[3] for row in everything}
    assert {"consent.approved", "mail.posted", "audit.exported"} <= events
    assert len(everything) == len(_ids_of_all(app))


def _ids_of_all(app) -> list[int]:
    with sessionmaker_of(app)() as db:
        return db.scalars(select(AuditEvent.id)).all()
