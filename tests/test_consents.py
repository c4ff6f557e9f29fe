"""Representatives by consent (issue 4): a manager signs a consent for one named
individual or answers a representative's request; the agency approves (a PIN by
email) or rejects (a reason the managers see); the representative enrols and
sees their client list; revoking or reaching the end date ends it at once."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import pytest
from sqlalchemy import func, select

from domain import consents, scanning
from models import Consent, Grant, InvitationPin
from tests.accounts_factory import body, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import csrf_from, make_user, outbox

OWNER, REP, OTHER_REP = "owner@example.com", "rep@example.com", "other-rep@example.com"


@pytest.fixture
def firm(app, clock):
    """Olive owns two accounts: Corner Shop (the client) and Back Office (another client
    of the same owner); Riley is a tax preparer with a sign-in."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    rep = make_user(app, email=REP, name="Riley Preparer")
    make_user(app, email=OTHER_REP, name="Quinn Other")
    with sessionmaker_of(app)() as db:
        shop = open_account(db, serial=51, legal_name="Corner Shop Ltd.", opened_on=date(2026, 3, 1))
        post(db, shop, "assessment", 5000, date(2026, 4, 15), period_end=date(2026, 3, 31))
        other = open_account(db, serial=52, legal_name="Back Office Ltd.", opened_on=date(2026, 3, 1))
        give(db, clock(), owner, shop)
        give(db, clock(), owner, other)
        db.commit()
        return {"number": shop.number, "account_id": shop.id, "other": other.number, "owner": owner, "rep": rep}


def _post(client, url, data=None):
    token = csrf_from(body(client.get("/profile/")))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def _sign(client, number, **fields):
    data = {
        "representative_name": "Riley Preparer",
        "representative_email": REP,
        "firm_name": "Ledger & Co.",
        "permissions": ["view_financial", "view_returns"],
        "starts_on": "2026-11-23",
        "ends_on": "",
        "declaration": "y",
        **fields,
    }
    return _post(client, f"/consents/{number}/new", data)


def _approve(app, runner):
    with sessionmaker_of(app)() as db:
        consent_id = db.scalar(select(Consent.id).where(Consent.status == "submitted").order_by(Consent.id.desc()))
    listed = runner.invoke(args=["consents", "list"])
    assert f"{consent_id}: Corner Shop Ltd." in listed.output
    result = runner.invoke(args=["consents", "approve", str(consent_id)])
    assert result.exit_code == 0, result.output
    message = outbox(app)[-1]
    pin = re.search(r"^\s+([A-Z0-9]{10})$", message.body_text, re.MULTILINE).group(1)
    return consent_id, message, pin


def test_owner_signs_agency_approves_representative_enrols_and_sees_the_client_list(app, firm, runner):
    owner = signed_in(app, OWNER)
    assert "Representatives and consents" in body(owner.get(f"/access/{firm['number']}/"))
    response = _sign(owner, firm["number"])
    assert response.status_code == 303
    page = body(owner.get(f"/consents/{firm['number']}/"))
    assert "Riley Preparer" in page and "Waiting for our review" in page and "Ledger &amp; Co." in page
    consent_id, message, pin = _approve(app, runner)
    assert message.to_address == REP
    assert "Corner Shop Ltd." in message.body_text and firm["number"] not in message.body_text
    assert "http" not in message.body_text  # no link that signs in
    assert "In force" in body(owner.get(f"/consents/{firm['number']}/"))
    rep = signed_in(app, REP)
    assert "do not represent any client yet" in body(rep.get("/consents/clients"))
    assert _post(rep, "/enrol/", {"number": firm["number"], "pin_code": pin}).status_code == 303
    clients = body(rep.get("/consents/clients"))
    assert "Corner Shop Ltd." in clients and "Until revoked" in clients
    assert "Back Office" not in clients
    assert rep.get(f"/accounts/{firm['number']}/transactions").status_code == 200
    # A representative never sees another client's data, nor manages access.
    assert rep.get(f"/accounts/{firm['other']}/").status_code == 404
    assert rep.get(f"/access/{firm['number']}/").status_code == 404
    with sessionmaker_of(app)() as db:
        grant = db.scalar(select(Grant).where(Grant.user_id == firm["rep"]))
        assert grant.role == "representative" and grant.consent_id == consent_id
        assert grant.permissions == "view_financial,view_returns" and grant.valid_from == date(2026, 11, 23)


def test_rejection_records_a_reason_the_managers_see(app, firm, runner):
    owner = signed_in(app, OWNER)
    _sign(owner, firm["number"])
    with sessionmaker_of(app)() as db:
        consent_id = db.scalar(select(Consent.id))
    assert runner.invoke(args=["consents", "reject", str(consent_id)]).exit_code != 0  # a reason is required
    result = runner.invoke(
        args=["consents", "reject", str(consent_id), "--reason", "The signature does not match our records"]
    )
    assert result.exit_code == 0
    page = body(owner.get(f"/consents/{firm['number']}/"))
    assert "Not approved" in page and "The signature does not match our records" in page
    assert runner.invoke(args=["consents", "approve", str(consent_id)]).exit_code != 0


def test_revoking_ends_access_at_once_and_cancels_an_unused_pin(app, firm, runner):
    owner = signed_in(app, OWNER)
    _sign(owner, firm["number"])
    consent_id, _message, pin = _approve(app, runner)
    rep = signed_in(app, REP)
    _post(rep, "/enrol/", {"number": firm["number"], "pin_code": pin})
    assert rep.get(f"/accounts/{firm['number']}/").status_code == 200
    assert _post(owner, f"/consents/{firm['number']}/{consent_id}/revoke").status_code == 303
    assert rep.get(f"/accounts/{firm['number']}/").status_code == 404
    assert "Corner Shop" not in body(rep.get("/consents/clients"))
    # A second consent, approved, then revoked before the PIN is used: the PIN dies with it.
    _sign(owner, firm["number"], representative_name="Quinn Other", representative_email=OTHER_REP)
    second, _message, second_pin = _approve(app, runner)
    _post(owner, f"/consents/{firm['number']}/{second}/revoke")
    quinn = signed_in(app, OTHER_REP)
    assert _post(quinn, "/enrol/", {"number": firm["number"], "pin_code": second_pin}).status_code == 400


def test_the_dates_of_the_consent_bound_the_access(app, firm, runner, clock):
    owner = signed_in(app, OWNER)
    _sign(owner, firm["number"], starts_on="2026-11-25", ends_on="2026-11-30")
    _consent_id, _message, pin = _approve(app, runner)
    rep = signed_in(app, REP)
    assert _post(rep, "/enrol/", {"number": firm["number"], "pin_code": pin}).status_code == 303
    assert rep.get(f"/accounts/{firm['number']}/").status_code == 404  # not started yet
    clock.advance(days=2)
    rep = signed_in(app, REP)
    assert rep.get(f"/accounts/{firm['number']}/").status_code == 200
    assert "30 November 2026" in body(rep.get("/consents/clients"))
    clock.advance(days=6)  # 1 December: the consent ended on 30 November
    rep = signed_in(app, REP)
    assert rep.get(f"/accounts/{firm['number']}/").status_code == 404
    assert "Corner Shop" not in body(rep.get("/"))
    assert "Ended" in body(signed_in(app, OWNER).get(f"/consents/{firm['number']}/"))


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"representative_name": ""}, "representative_name", "Enter the representative&#39;s full name"),
        ({"representative_email": "nope"}, "representative_email", "Enter an email address in the correct format"),
        ({"permissions": []}, "permissions", "Choose at least one thing this person can do"),
        ({"permissions": ["manage_access"]}, "permissions", "cannot manage who else uses the account"),
        (
            {"starts_on_day": "30", "starts_on_month": "2", "starts_on_year": "2026"},
            "starts_on_day",
            "The start date must be a real date",
        ),
        (
            {"starts_on_day": "", "starts_on_month": "", "starts_on_year": ""},
            "starts_on_day",
            "Enter the date the consent starts",
        ),
        (
            {"ends_on_day": "24", "ends_on_month": "", "ends_on_year": "2026"},
            "ends_on_month",
            "The end date must include a month",
        ),
        ({"starts_on": "2026-11-01"}, "starts_on_day", "The start date must be today or in the future"),
        ({"ends_on": "2026-11-24", "starts_on": "2026-12-01"}, "ends_on_day", "The end date must be on or after"),
        ({"declaration": ""}, "declaration", "Confirm the declaration"),
    ],
)
def test_a_wrong_consent_gets_a_message_beside_the_field_and_changes_nothing(app, firm, fields, field, message):
    owner = signed_in(app, OWNER)
    response = _sign(owner, firm["number"], **fields)
    assert response.status_code == 400
    page = body(response)
    assert message in page and f'href="#{field}"' in page
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(Consent.id))) == 0


def test_each_representative_needs_their_own_consent(app, firm):
    owner = signed_in(app, OWNER)
    assert _sign(owner, firm["number"]).status_code == 303
    again = _sign(owner, firm["number"], representative_name="Riley P.")
    assert again.status_code == 400 and "already has a consent" in body(again)
    assert (
        _sign(owner, firm["number"], representative_name="Quinn Other", representative_email=OTHER_REP).status_code
        == 303
    )


def test_a_representative_asks_and_the_owner_accepts_then_the_agency_approves(app, firm, runner):
    rep = signed_in(app, REP)
    asked = _post(rep, "/consents/ask", {"number": firm["number"], "legal_name": "corner shop  ltd."})
    assert asked.status_code == 303
    notice_page = body(rep.get(asked.headers["Location"]))
    assert "If the account number and legal name match" in notice_page
    owner = signed_in(app, OWNER)
    page = body(owner.get(f"/consents/{firm['number']}/"))
    assert "Asked for by the representative" in page and "Riley Preparer" in page
    with sessionmaker_of(app)() as db:
        consent_id = db.scalar(select(Consent.id))
    accepted = _post(
        owner,
        f"/consents/{firm['number']}/{consent_id}/accept",
        {"permissions": ["view_returns"], "starts_on": "2026-11-23", "declaration": "y"},
    )
    assert accepted.status_code == 303
    _consent_id, message, pin = _approve(app, runner)
    assert message.to_address == REP
    assert _post(rep, "/enrol/", {"number": firm["number"], "pin_code": pin}).status_code == 303
    assert rep.get(f"/accounts/{firm['number']}/returns").status_code == 200
    assert rep.get(f"/accounts/{firm['number']}/transactions").status_code == 404


def test_asking_with_a_wrong_name_says_the_same_and_creates_nothing(app, firm):
    rep = signed_in(app, REP)
    wrong = _post(rep, "/consents/ask", {"number": firm["number"], "legal_name": "Someone Else Ltd."})
    right = _post(rep, "/consents/ask", {"number": firm["number"], "legal_name": "Corner Shop Ltd."})
    assert wrong.status_code == right.status_code == 303
    assert wrong.headers["Location"] == right.headers["Location"]
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(Consent.id))) == 1


def test_an_owner_declines_a_request(app, firm):
    rep = signed_in(app, REP)
    _post(rep, "/consents/ask", {"number": firm["number"], "legal_name": "Corner Shop Ltd."})
    with sessionmaker_of(app)() as db:
        consent_id = db.scalar(select(Consent.id))
    owner = signed_in(app, OWNER)
    assert _post(owner, f"/consents/{firm['number']}/{consent_id}/decline").status_code == 303
    assert "Declined" in body(owner.get(f"/consents/{firm['number']}/"))


def test_an_unanswered_request_lapses_after_ten_working_days(app, firm, clock):
    rep = signed_in(app, REP)
    _post(rep, "/consents/ask", {"number": firm["number"], "legal_name": "Corner Shop Ltd."})
    with sessionmaker_of(app)() as db:
        consent = db.scalar(select(Consent))
        asked_on = consent.requested_at.date()
        # Monday 23 November 2026: ten working days later is Monday 7 December.
        assert not consents.lapsed(consent, date(2026, 12, 4))
        assert consents.lapsed(consent, date(2026, 12, 7))
        # Christmas (Friday) and a weekend are not working days; Boxing Day is not a statutory holiday in Alberta.
        assert consents.working_days_between(date(2026, 12, 24), date(2026, 12, 29)) == 2
        consent_id = consent.id
    assert asked_on == date(2026, 11, 23)
    clock.advance(days=14)
    owner = signed_in(app, OWNER)
    assert "Lapsed" in body(owner.get(f"/consents/{firm['number']}/"))
    late = _post(
        owner,
        f"/consents/{firm['number']}/{consent_id}/accept",
        {"permissions": ["view_returns"], "starts_on": "2026-12-07", "declaration": "y"},
    )
    assert late.status_code == 400 and "can no longer be answered" in body(late)


def test_representatives_are_capped(app_with, firm):
    app = app_with(MAX_REPRESENTATIVES_PER_ACCOUNT=1)
    owner = signed_in(app, OWNER)
    assert _sign(owner, firm["number"]).status_code == 303
    capped = _sign(owner, firm["number"], representative_name="Quinn Other", representative_email=OTHER_REP)
    assert capped.status_code == 400 and "already has 1 representatives" in body(capped)


def test_consent_changes_are_in_the_access_history(app, firm, runner):
    owner = signed_in(app, OWNER)
    _sign(owner, firm["number"])
    consent_id, _message, _pin = _approve(app, runner)
    _post(owner, f"/consents/{firm['number']}/{consent_id}/revoke")
    history = body(owner.get(f"/access/{firm['number']}/history"))
    for words in ("Consent submitted", "Consent approved", "Consent revoked"):
        assert words in history
    assert "consent." not in history  # words, never the event codes
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(InvitationPin.id)).where(InvitationPin.consent_id == consent_id)) == 1


# --- The paper way: the signed form uploaded as a PDF ------------------------------------


def _zip_with_a_page() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("page.html", "<script>alert(1)</script>")
    return buffer.getvalue()


_ZIP_WITH_A_PAGE = _zip_with_a_page()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\nstartxref\n0\n%%EOF\n"


def _upload(client, number, content, filename="AT4931 signed.pdf", **fields):
    import io

    token = csrf_from(body(client.get("/profile/")))
    data = {
        "representative_name": "Riley Preparer",
        "representative_email": REP,
        "firm_name": "",
        "permissions": ["view_returns"],
        "starts_on": "2026-11-23",
        "ends_on": "",
        "csrf_token": token,
        **fields,
    }
    if content is not None:
        data["signed_form"] = (io.BytesIO(content), filename)
    return client.post(f"/consents/{number}/upload", data=data, content_type="multipart/form-data")


def test_a_signed_form_uploaded_as_a_pdf_goes_for_review_and_the_agency_can_read_it(app, firm, runner, tmp_path):
    owner = signed_in(app, OWNER)
    response = _upload(owner, firm["number"], PDF, filename="../../etc/AT4931.pdf")
    assert response.status_code == 303
    page = body(owner.get(f"/consents/{firm['number']}/"))
    assert "Waiting for our review" in page and "Signed form uploaded: ....etcAT4931.pdf" in page
    listed = runner.invoke(args=["consents", "list"]).output
    assert "[signed form uploaded" in listed
    with sessionmaker_of(app)() as db:
        consent_id = db.scalar(select(Consent.id))
    out = tmp_path / "form.pdf"
    result = runner.invoke(args=["consents", "document", str(consent_id), "--out", str(out)])
    assert result.exit_code == 0 and out.read_bytes() == PDF
    import hashlib

    assert hashlib.sha256(PDF).hexdigest() in result.output
    assert not list(tmp_path.glob("*.part"))
    _consent_id, message, _pin = _approve(app, runner)
    assert message.to_address == REP


@pytest.mark.parametrize(
    "content, filename, message",
    [
        (b"", "empty.pdf", "The selected file is empty"),
        (b"<html><script>alert(1)</script></html>", "disguised.pdf", "The selected file must be a PDF"),
        (b"%PDF-1.4\n1 0 obj << >> endobj\n", "cut-short.pdf", "The PDF looks incomplete"),
        (None, None, "Select the signed form"),
        # The checks every upload gets (web.uploads): a PDF with an archive appended, and
        # the antivirus test signature inside a PDF (issue 8, ASVS 5.0 5.2.2, 5.4.3).
        (PDF + _ZIP_WITH_A_PAGE, "hiding.pdf", "has another file or a web page hidden in it"),
        (PDF.replace(b"endobj", b"endobj\n" + scanning.EICAR, 1), "eicar.pdf", "contains a virus"),
    ],
)
def test_a_wrong_file_gets_a_message_beside_the_field_and_nothing_is_kept(app, firm, content, filename, message):
    owner = signed_in(app, OWNER)
    response = _upload(owner, firm["number"], content, filename=filename or "x.pdf")
    assert response.status_code == 400
    page = body(response)
    assert message in page and 'href="#signed_form"' in page
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(Consent.id))) == 0


def test_a_file_over_the_limit_is_refused(app_with, firm):
    app = app_with(UPLOAD_MAX_BYTES=1024)
    owner = signed_in(app, OWNER)
    too_big = PDF[:-7] + b" " * 1024 + b"\n%%EOF\n"
    response = _upload(owner, firm["number"], too_big)
    assert response.status_code == 400 and "must be smaller than" in body(response)
    with sessionmaker_of(app)() as db:
        assert db.scalar(select(func.count(Consent.id))) == 0


@pytest.mark.parametrize("page", ["new", "upload"])
def test_the_consent_forms_start_with_nothing_ticked(app, firm, page):
    owner = signed_in(app, OWNER)
    page_text = body(owner.get(f"/consents/{firm['number']}/{page}"))
    assert 'name="permissions"' in page_text
    assert " checked" not in page_text  # no permission (nor the declaration) is chosen for the manager
