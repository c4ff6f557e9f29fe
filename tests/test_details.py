"""The account's details (issue 5): addresses and contact shown and changed through
structured fields (postal codes and phone numbers checked and normalised), the
refusal of a save based on details someone else changed meanwhile (409), one
request per change however often it is sent, and the change history."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from domain import details
from models import Account, AuditEvent, ServiceRequest
from tests.accounts_factory import body, give, open_account, sessionmaker_of, signed_in
from tests.conftest import make_user

OWNER, CLERK, VIEWER, STRANGER = "owner@example.com", "clerk@example.com", "viewer@example.com", "stranger@example.com"


@pytest.fixture
def shop(app, clock):
    """Olive owns the account; Casey may update its profile too; Vic may only view it."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    viewer = make_user(app, email=VIEWER, name="Vic Viewer")
    make_user(app, email=STRANGER, name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=61, legal_name="Corner Shop Ltd.", opened_on=date(2026, 3, 1))
        give(db, clock(), owner, account)
        give(db, clock(), clerk, account, role="delegate", permissions=("update_profile",))
        give(db, clock(), viewer, account, role="viewer")
        db.commit()
        return {"number": account.number, "account_id": account.id}


def _form(page: str) -> dict:
    """Every input and select of the details form, as the browser would send it."""
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    return {k: v.replace("&amp;", "&").replace("&#39;", "'").replace("&quot;", '"') for k, v in fields.items()}


def _load(client, number) -> dict:
    response = client.get(f"/details/{number}/edit")
    assert response.status_code == 200
    return _form(body(response))


def _account(app, number) -> Account:
    with sessionmaker_of(app)() as db:
        account = db.scalar(select(Account).where(Account.number == number))
        db.expunge(account)
        return account


def _requests(app) -> list[ServiceRequest]:
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(ServiceRequest).order_by(ServiceRequest.id)))


# --- The parts of an address and their checks (no web) -------------------------------------


def test_a_stored_address_parses_into_fields_and_composes_back_the_same():
    parts = details.parse_address("PO Box 100\nEdmonton AB  T5J 2Z2")
    assert parts == details.Address("PO Box 100", "", "Edmonton", "AB", "T5J 2Z2")
    assert details.compose_address(parts) == "PO Box 100\nEdmonton AB  T5J 2Z2"
    three = details.parse_address("10020 100 Street NW\nSuite 5\nRed Deer AB t4n1a1")
    assert (three.line1, three.line2, three.city, three.postal) == (
        "10020 100 Street NW",
        "Suite 5",
        "Red Deer",
        "T4N 1A1",
    )
    # Anything that does not follow the shape goes to line 1, whole: nothing is lost.
    assert (
        details.parse_address("Lot 4, somewhere north\nnear the lake").line1 == "Lot 4, somewhere north, near the lake"
    )
    assert details.parse_address("1 Main St\nCalgary XX  T2P 1A1").city == ""


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("T5J 2Z2", "T5J 2Z2"),
        ("t5j2z2", "T5J 2Z2"),
        (" t5j  2z2 ", "T5J 2Z2"),
        ("K1A 0B1", "K1A 0B1"),
        ("x0a 0h0", "X0A 0H0"),
        ("V6B1A1", "V6B 1A1"),
    ],
)
def test_postal_codes_in_any_case_and_spacing_are_normalised(typed, stored):
    assert details.normalise_postal(typed) == (stored, None)


@pytest.mark.parametrize(
    "typed, message",
    [
        ("D1A 1A1", "never use the letters D, F, I, O, Q or U"),  # D never appears
        ("T5J 2O2", "never use the letters D, F, I, O, Q or U"),  # nor O, anywhere
        ("W1A 1A1", "never start with W or Z"),  # W never starts one (it is London's, not Canada's)
        ("Z1A 1A1", "never start with W or Z"),
        ("T5J-2Z2", "correct format, like T5J 2Z2"),
        ("12345", "correct format"),
        ("T5J 2Z", "correct format"),
        ("T5J 2Z22", "correct format"),
        ("TTJ 2Z2", "correct format"),
        ("", "Enter the postal code"),
    ],
)
def test_postal_codes_that_cannot_be_canadian_are_refused_with_the_reason(typed, message):
    value, problem = details.normalise_postal(typed)
    assert value is None and message in problem


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("403-678-5521", "403-678-5521"),
        ("(403) 678 5521", "403-678-5521"),
        ("+1 403 678 5521", "403-678-5521"),
        ("1-403-678-5521", "403-678-5521"),
        ("403.678.5521 ext 12", "403-678-5521 ext. 12"),
        ("403-678-5521 x 4321", "403-678-5521 ext. 4321"),
        # The fictional 555-01XX lines: libphonenumber counts them valid in a real area code, and so do we.
        ("780 555 0100", "780-555-0100"),
        ("587-555-0199", "587-555-0199"),
        ("212-555-1234", "212-555-1234"),  # another NANP country's number (New York)
        ("800-555-0199", "800-555-0199"),  # toll-free
    ],
)
def test_north_american_phone_numbers_are_stored_formatted(typed, stored):
    assert details.normalise_phone(typed) == (stored, None)


@pytest.mark.parametrize(
    "typed, message",
    [
        ("555-0100", "with its area code"),  # a fictional number without its area code
        ("678-5521", "with its area code"),
        ("123-456-7890", "real phone number"),  # no area code starts with 1
        ("403-123-4567", "real phone number"),  # nor an exchange
        ("+44 20 7946 0958", "Canadian or North American"),
        ("911", "real phone number"),
        ("403-678-55211", "real phone number"),
        ("abc", "correct format"),
        ("", "Enter a phone number"),
        ("403-678-5521 ext. 1234567", "extension of up to 6 digits"),
        ("403\x00678 5521", "correct format"),
    ],
)
def test_phone_numbers_that_are_not_real_north_american_ones_are_refused(typed, message):
    value, problem = details.normalise_phone(typed)
    assert value is None and message in problem


_line = (
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30)
    .map(details.tidy)
    .filter(bool)
)


@given(
    line1=_line,
    line2=st.one_of(st.just(""), _line),
    city=_line,
    province=st.sampled_from(details.PROVINCE_CODES),
    postal=st.sampled_from(["T5J 2Z2", "K1A 0B1", "X0A 0H0"]),
)
@settings(max_examples=60, deadline=None)
def test_any_address_the_form_composes_parses_back_to_the_same_fields(line1, line2, city, province, postal):
    parts = details.Address(line1, line2, city, province, postal)
    assert details.parse_address(details.compose_address(parts)) == parts


def test_summaries_name_what_changed():
    assert details.summary({"mailing_address": {}, "contact_phone": {}}) == "Mailing address and phone changed"
    assert (
        details.summary({"contact_email": {}, "mailing_address": {}, "contact_phone": {}})
        == "Mailing address, phone and email changed"
    )
    assert details.changes({"contact_phone": "780 555 0100"}, {"contact_phone": "780-555-0100"}) == {}


# --- Showing and changing them --------------------------------------------------------------


def test_show_lists_addresses_and_contact_and_the_edit_form_is_prefilled(app, shop):
    client = signed_in(app, OWNER)
    page = body(client.get(f"/details/{shop['number']}/"))
    assert "PO Box 100\nEdmonton AB  T5J 2Z2" in page and "Robin Example" in page and "780 555 0100" in page
    assert "have not been changed online" in page
    assert f'href="/details/{shop["number"]}/"' in body(client.get(f"/accounts/{shop['number']}/"))
    fields = _load(client, shop["number"])
    assert fields["mailing_line1"] == "PO Box 100" and fields["mailing_city"] == "Edmonton"
    assert fields["mailing_province"] == "AB" and fields["mailing_postal"] == "T5J 2Z2"
    assert fields["physical_line1"] == "10020 100 Street NW" and fields["physical_postal"] == "T5J 0N3"
    assert fields["contact_phone"] == "780 555 0100" and fields["profile_version"] == "1"
    assert len(fields["token"]) >= 40


def test_a_change_is_saved_formatted_with_a_request_an_audit_event_and_a_history(app, shop):
    client = signed_in(app, OWNER)
    fields = _load(client, shop["number"])
    fields.update(
        mailing_line1="Suite 300",
        mailing_line2="10180 101 Street NW",
        mailing_city="Edmonton",
        mailing_postal="t5j4k1",
        contact_phone="(403) 678-5521 ext 7",
    )
    response = client.post(f"/details/{shop['number']}/edit", data=fields)
    assert response.status_code == 303 and response.headers["Location"] == f"/details/{shop['number']}/"
    page = body(client.get(response.headers["Location"]))
    (request,) = _requests(app)
    assert f"Details updated. Reference {request.reference}" in page
    account = _account(app, shop["number"])
    assert account.mailing_address == "Suite 300\n10180 101 Street NW\nEdmonton AB  T5J 4K1"
    assert account.contact_phone == "403-678-5521 ext. 7"
    assert account.physical_address == "10020 100 Street NW\nEdmonton AB  T5J 0N3"  # untouched
    assert account.profile_version == 2
    assert request.kind == "profile" and request.status == "completed"
    assert request.summary == "Mailing address and phone changed"
    assert json.loads(request.data) == {
        "mailing_address": {
            "before": "PO Box 100\nEdmonton AB  T5J 2Z2",
            "after": "Suite 300\n10180 101 Street NW\nEdmonton AB  T5J 4K1",
        },
        "contact_phone": {"before": "780 555 0100", "after": "403-678-5521 ext. 7"},
    }
    with sessionmaker_of(app)() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.event == "profile.changed"))
        assert event.account_id == shop["account_id"] and request.reference in event.detail
        assert "Suite 300" not in event.detail  # what changed, not the details themselves
    # The history: who, when, before and after.
    history = body(client.get(f"/details/{shop['number']}/history"))
    assert "Olive Owner" in history and request.reference in history
    assert "PO Box 100" in history and "Suite 300" in history and "403-678-5521 ext. 7" in history
    assert "Last changed by Olive Owner" in body(client.get(f"/details/{shop['number']}/"))
    # Shown the same way on the account summary, and the form prefills from the new text.
    assert "Suite 300\n10180 101 Street NW\nEdmonton AB  T5J 4K1" in body(client.get(f"/accounts/{shop['number']}/"))
    again = _load(client, shop["number"])
    assert again["mailing_line2"] == "10180 101 Street NW" and again["profile_version"] == "2"


def test_the_same_form_sent_twice_saves_once_and_answers_the_same(app, shop):
    client = signed_in(app, OWNER)
    fields = _load(client, shop["number"])
    fields["contact_email"] = "accounts@cornershop.example"
    first = client.post(f"/details/{shop['number']}/edit", data=fields)
    first_page = body(client.get(first.headers["Location"]))
    second = client.post(f"/details/{shop['number']}/edit", data=fields)  # a double click, or a retry
    assert second.status_code == 303 and second.headers["Location"] == first.headers["Location"]
    second_page = body(client.get(second.headers["Location"]))
    (request,) = _requests(app)
    for page in (first_page, second_page):
        assert f"Details updated. Reference {request.reference}" in page
    assert _account(app, shop["number"]).profile_version == 2


def test_saving_without_a_change_says_so_and_sends_nothing(app, shop):
    client = signed_in(app, OWNER)
    fields = _load(client, shop["number"])
    fields["mailing_postal"] = "t5j2z2"  # the same code, typed another way
    fields["contact_phone"] = "780-555-0100"  # the same number, formatted
    response = client.post(f"/details/{shop['number']}/edit", data=fields)
    assert response.status_code == 200 and "You have not changed any details" in body(response)
    assert _requests(app) == [] and _account(app, shop["number"]).profile_version == 1
    assert _account(app, shop["number"]).contact_phone == "780 555 0100"


def test_an_address_that_cannot_be_parsed_is_kept_whole_in_line_one(app, shop):
    with sessionmaker_of(app)() as db:
        db.get(Account, shop["account_id"]).physical_address = "Range Road 42, NW-12-52-4-W5\nnear Barrhead"
        db.commit()
    client = signed_in(app, OWNER)
    fields = _load(client, shop["number"])
    assert fields["physical_line1"] == "Range Road 42, NW-12-52-4-W5, near Barrhead"
    assert fields["physical_city"] == "" and fields["physical_province"] == ""
    response = client.post(f"/details/{shop['number']}/edit", data=fields)
    assert response.status_code == 400  # the town, province and postal code are asked for, nothing is lost
    page = body(response)
    assert "Enter the town or city of the physical address" in page and "Range Road 42" in page
    fields.update(physical_city="Barrhead", physical_province="AB", physical_postal="T7N 1A1")
    assert client.post(f"/details/{shop['number']}/edit", data=fields).status_code == 303
    assert (
        _account(app, shop["number"]).physical_address
        == "Range Road 42, NW-12-52-4-W5, near Barrhead\nBarrhead AB  T7N 1A1"
    )


BAD_INPUT = [
    ({"mailing_postal": "D1A 1A1"}, "mailing_postal", "never use the letters D, F, I, O, Q or U"),
    ({"mailing_postal": "W1A 1A1"}, "mailing_postal", "never start with W or Z"),
    ({"physical_postal": "90210"}, "physical_postal", "Enter a postal code in the correct format, like T5J 2Z2"),
    ({"mailing_postal": ""}, "mailing_postal", "Enter the postal code of the mailing address"),
    ({"mailing_line1": "  "}, "mailing_line1", "Enter address line 1 of the mailing address"),
    ({"physical_city": ""}, "physical_city", "Enter the town or city of the physical address"),
    ({"mailing_province": "XX"}, "mailing_province", "Select the province or territory of the mailing address"),
    ({"mailing_province": ""}, "mailing_province", "Select the province or territory of the mailing address"),
    ({"mailing_line1": "Unit 1\x00"}, "mailing_line1", "on one line, without special characters"),
    ({"mailing_line2": "a\x07b"}, "mailing_line2", "on one line, without special characters"),
    # A right-to-left override makes the line read backwards on a staff page (Trojan Source).
    ({"mailing_line1": "1 Main St\u202egnikcab"}, "mailing_line1", "on one line, without special characters"),
    ({"mailing_line1": "x" * 201}, "mailing_line1", "200 characters or fewer"),
    ({"contact_name": ""}, "contact_name", "Enter the contact name"),
    ({"contact_phone": ""}, "contact_phone", "Enter a phone number"),
    ({"contact_phone": "555-0100"}, "contact_phone", "with its area code"),
    ({"contact_phone": "123-456-7890"}, "contact_phone", "Enter a real phone number"),
    ({"contact_phone": "+44 20 7946 0958"}, "contact_phone", "Canadian or North American"),
    ({"contact_email": "robin.example.com"}, "contact_email", "Enter an email address in the correct format"),
]


def test_bad_input_is_refused_beside_the_field_and_in_the_summary_and_nothing_changes(app, shop):
    client = signed_in(app, OWNER)
    for changes, field_id, message in BAD_INPUT:
        fields = {**_load(client, shop["number"]), **changes}
        response = client.post(f"/details/{shop['number']}/edit", data=fields)
        page = body(response)
        assert response.status_code == 400, changes
        assert f'<a href="#{field_id}">' in page  # in the error summary, linked to the field
        assert f'id="{field_id}-error"' in page and message in page.replace("&#39;", "'"), changes
    assert _requests(app) == [] and _account(app, shop["number"]).profile_version == 1


def test_missing_or_forged_hidden_fields_are_refused_without_saving(app, shop):
    client = signed_in(app, OWNER)
    fields = {**_load(client, shop["number"]), "contact_name": "Pat New"}
    for broken in ({"token": ""}, {"token": "x" * 65}, {"profile_version": "two"}, {"profile_version": "9" * 30}):
        response = client.post(f"/details/{shop['number']}/edit", data={**fields, **broken})
        assert response.status_code == 400 and "Reload the page" in body(response)
    assert _requests(app) == [] and _account(app, shop["number"]).contact_name == "Robin Example"


def test_a_save_based_on_details_someone_changed_meanwhile_is_refused_with_both_versions(app, shop, clock):
    olive, casey = signed_in(app, OWNER), signed_in(app, CLERK)
    olive_form, casey_form = _load(olive, shop["number"]), _load(casey, shop["number"])
    olive_form["contact_phone"] = "403-678-5521"
    assert olive.post(f"/details/{shop['number']}/edit", data=olive_form).status_code == 303
    clock.advance(minutes=3)
    casey_form.update(contact_phone="587-555-0100", contact_name="Casey Clerk")
    response = casey.post(f"/details/{shop['number']}/edit", data=casey_form)
    assert response.status_code == 409
    page = body(response)
    assert (
        "These details were changed by Olive Owner at 11:00 am on Monday 23 November 2026 while you were "
        "editing. Check the details below, which now show their change, and make your change again" in page
    )
    # What Casey typed is still there beside what is saved now; the form shows Olive's change.
    differences = page.split('id="conflict-differences"')[1].split("</table>")[0]
    assert "587-555-0100" in differences and "403-678-5521" in differences and "Casey Clerk" in differences
    assert _form(page)["contact_phone"] == "403-678-5521" and _form(page)["profile_version"] == "2"
    account = _account(app, shop["number"])
    assert account.contact_phone == "403-678-5521" and account.contact_name == "Robin Example"
    assert account.profile_version == 2 and len(_requests(app)) == 1
    # Casey makes the change again, on the details as they are now: it is saved.
    again = {**_form(page), "contact_name": "Casey Clerk"}
    assert casey.post(f"/details/{shop['number']}/edit", data=again).status_code == 303
    account = _account(app, shop["number"])
    assert (account.contact_name, account.contact_phone, account.profile_version) == ("Casey Clerk", "403-678-5521", 3)
    history = body(olive.get(f"/details/{shop['number']}/history"))
    assert history.index("Casey Clerk") < history.index("Olive Owner")  # newest first


def test_the_update_itself_is_refused_when_the_version_moved_under_it(app, shop):
    """Two saves that both passed the first check: only one UPDATE finds the version."""
    with sessionmaker_of(app)() as db:
        details.apply(db, shop["account_id"], 1, {"contact_name": {"before": "Robin Example", "after": "A"}})
        with pytest.raises(details.Conflict):
            details.apply(db, shop["account_id"], 1, {"contact_name": {"before": "Robin Example", "after": "B"}})
        db.commit()
    account = _account(app, shop["number"])
    assert (account.contact_name, account.profile_version) == ("A", 2)


def test_people_without_the_permission_and_strangers_get_404(app, shop):
    for email in (VIEWER, STRANGER):
        client = signed_in(app, email)
        for path in ("/", "/edit", "/history"):
            response = client.get(f"/details/{shop['number']}{path}")
            assert response.status_code == 404 and "Corner Shop" not in body(response)
    assert signed_in(app, CLERK).get(f"/details/{shop['number']}/history").status_code == 200


_VALID = {
    "mailing_line1": "Suite 300",
    "mailing_line2": "",
    "mailing_city": "Calgary",
    "mailing_province": "AB",
    "mailing_postal": "t2p 1j9",
    "physical_line1": "1 Main Street",
    "physical_line2": "Unit 2",
    "physical_city": "Red Deer",
    "physical_province": "AB",
    "physical_postal": "T4N1A1",
    "contact_name": "Pat Example",
    "contact_phone": "403 678 5521",
    "contact_email": "pat@example.com",
    "profile_version": None,
    "token": None,
}


@given(st.dictionaries(st.sampled_from(sorted(_VALID)), st.text(max_size=60), max_size=len(_VALID)))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_in_any_field_never_fails_and_stores_nothing_unless_saved(app, shop, typed):
    """Good answers (None: what the page gave) with any of them replaced by arbitrary text."""
    fields = {**_VALID, **typed}
    if "details-test-client" not in app.extensions:
        app.extensions["details-test-client"] = signed_in(app, OWNER)
    client = app.extensions["details-test-client"]
    page_fields = _load(client, shop["number"])
    sent = {name: page_fields[name] if value is None else value for name, value in fields.items()}
    before, count = _account(app, shop["number"]), len(_requests(app))
    response = client.post(f"/details/{shop['number']}/edit", data={**sent, "csrf_token": page_fields["csrf_token"]})
    response.get_data()
    assert response.status_code < 500
    after = _account(app, shop["number"])
    if response.status_code == 303:
        assert len(_requests(app)) == count + 1 and after.profile_version == before.profile_version + 1
    else:
        assert response.status_code in (200, 400, 409)
        assert len(_requests(app)) == count
        assert [getattr(after, f) for f in (*details.FIELDS, "profile_version")] == [
            getattr(before, f) for f in (*details.FIELDS, "profile_version")
        ]
