"""Requests to waive penalties and interest (issue 5): the person picks the
account's penalty and interest charges (never a reversed one, a credit, or
another account's), gives a reason and explains it, may add documents, checks
and declares; one request however many times it is sent."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from domain import ledger
from models import Document, Draft, LedgerEntry, ServiceRequest
from tests.accounts_factory import body, give, open_account, post, sessionmaker_of, signed_in
from tests.conftest import Auth, csrf_from, make_user

OWNER, CLERK, STRANGER = "owner@example.com", "clerk@example.com", "stranger@example.com"
WHY = {"reason": "circumstances", "explanation": "Our bookkeeper was in hospital from 1 to 30 September 2026."}


@pytest.fixture
def inn(app, clock):
    """Prairie Inn's ledger: an assessment, a late-filing penalty ($125.00), interest
    ($34.17), a penalty reversed by the agency, a credit of interest, a payment.
    Olive also owns Other Motel, which has its own penalty. Casey may only view."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    make_user(app, email=STRANGER, name="Sam Stranger")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=71, legal_name="Prairie Inn Ltd.", opened_on=date(2026, 1, 1))
        other = open_account(db, serial=72, legal_name="Other Motel Ltd.", opened_on=date(2026, 1, 1))
        post(db, account, "assessment", 250000, date(2026, 9, 15), period_end=date(2026, 8, 31))
        penalty = post(
            db,
            account,
            "penalty",
            12500,
            date(2026, 10, 5),
            period_end=date(2026, 8, 31),
            description="Late filing penalty",
        )
        interest = post(
            db,
            account,
            "interest",
            3417,
            date(2026, 10, 31),
            period_end=date(2026, 8, 31),
            description="Interest on late payment",
        )
        reversed_penalty = post(
            db,
            account,
            "penalty",
            5000,
            date(2026, 7, 5),
            period_end=date(2026, 5, 31),
            description="Late payment penalty",
        )
        credit = post(db, account, "interest", -200, date(2026, 11, 1), description="Interest on a credit")
        post(db, account, "payment", -100000, date(2026, 10, 10))
        foreign = post(
            db,
            other,
            "penalty",
            9900,
            date(2026, 10, 5),
            period_end=date(2026, 8, 31),
            description="Other motel's penalty",
        )
        db.flush()
        ledger.reverse(
            db, reversed_penalty, processed_date=date(2026, 8, 1), reference="REV-1", reason="Penalty cancelled"
        )
        give(db, clock(), owner, account)
        give(db, clock(), owner, other)
        give(db, clock(), clerk, account, role="viewer")
        db.commit()
        return {
            "number": account.number,
            "account_id": account.id,
            "other": other.number,
            "owner": owner,
            "penalty": penalty.id,
            "interest": interest.id,
            "reversed": reversed_penalty.id,
            "credit": credit.id,
            "foreign": foreign.id,
        }


def _token(client) -> str:
    return csrf_from(body(client.get("/profile/")))


def _post(client, url, data=None):
    return client.post(url, data={**(data or {}), "csrf_token": _token(client)})


def _url(inn, step=""):
    return f"/waivers/{inn['number']}/{step}"


def _drafts(app):
    with sessionmaker_of(app)() as db:
        return [(d.kind, d.data, d.submitted_request_id) for d in db.scalars(select(Draft).order_by(Draft.id))]


def _requests(app):
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(ServiceRequest).order_by(ServiceRequest.id)))


def _draft_token(app) -> str:
    with sessionmaker_of(app)() as db:
        return db.scalar(select(Draft.token).where(Draft.kind == "waiver", Draft.submitted_request_id.is_(None)))


def _choose(client, inn, *ids):
    return _post(client, _url(inn), {"entries": [str(i) for i in ids], "step": "entries"})


def test_the_start_page_lists_only_penalties_and_interest_that_can_be_waived(app, inn):
    client = signed_in(app, OWNER)
    page = body(client.get(_url(inn)))
    assert "Late filing penalty: $125.00" in page and "Interest on late payment: $34.17" in page
    assert "1\u201331 August 2026" in page and "charged 5 October 2026" in page
    assert f'value="{inn["penalty"]}"' in page and f'value="{inn["interest"]}"' in page
    for absent in ("Late payment penalty", "Interest on a credit", "Other motel", f'value="{inn["reversed"]}"'):
        assert absent not in page, absent
    assert f'href="/waivers/{inn["number"]}/"' in body(client.get(f"/accounts/{inn['number']}/"))


def test_a_waiver_request_end_to_end_with_a_document_and_its_confirmation(app, inn, clock):
    client = signed_in(app, OWNER)
    chosen = _choose(client, inn, inn["penalty"], inn["interest"])
    assert chosen.status_code == 303 and chosen.headers["Location"] == _url(inn, "reason")
    reason = body(client.get(_url(inn, "reason")))
    assert "You chose 2 charges totalling $159.17" in reason
    assert "Circumstances beyond your control" in reason and "Our error or delay" in reason
    assert "Inability to pay" in reason and 'id="explanation"' in reason
    sent = _post(client, _url(inn, "reason"), {**WHY, "step": "reason"})
    assert sent.status_code == 303 and sent.headers["Location"] == _url(inn, "documents")
    assert "You have not added any documents" in body(client.get(_url(inn, "documents")))
    with sessionmaker_of(app)() as db:
        draft = db.scalar(select(Draft).where(Draft.kind == "waiver"))
        assert json.loads(draft.data) == {"entries": [str(inn["interest"]), str(inn["penalty"])], **WHY}
        db.add(
            Document(
                account_id=inn["account_id"],
                draft_id=draft.id,
                stored_name=secrets.token_hex(16),
                uploaded_name="hospital-letter.pdf",
                content_type="application/pdf",
                size_bytes=4096,
                sha256=hashlib.sha256(b"x").hexdigest(),
                storage="database",
                uploaded_at=clock(),
                uploaded_by_user_id=inn["owner"],
            )
        )
        db.commit()
        token = draft.token
    assert "hospital-letter.pdf" in body(client.get(_url(inn, "documents")))
    check = body(client.get(_url(inn, "check")))
    for text in (
        "Late filing penalty, 1\u201331 August 2026, charged 5 October 2026: $125.00",
        "Interest on late payment",
        "$159.17",
        "Circumstances beyond your control",
        WHY["explanation"],
        "hospital-letter.pdf",
        'id="declaration"',
        f'value="{token}"',
    ):
        assert text in check, text
    done = _post(client, _url(inn, "check"), {"token": token, "declaration": "y"})
    assert done.status_code == 303
    [request] = _requests(app)
    assert done.headers["Location"] == f"/waivers/{inn['number']}/done/{request.reference}"
    assert request.kind == "waiver" and request.idempotency_key == token
    assert request.summary == "Waiver of penalties and interest: 2 charges totalling $159.17"
    data = json.loads(request.data)
    assert [e["id"] for e in data["entries"]] == [inn["interest"], inn["penalty"]]  # newest first
    assert data["total_cents"] == 15917 and data["reason"] == "circumstances"
    assert data["explanation"] == WHY["explanation"] and data["documents"] == ["hospital-letter.pdf"]
    with sessionmaker_of(app)() as db:
        document = db.scalar(select(Document))
        assert document.service_request_id == request.id and document.draft_id is None
    confirmation = body(client.get(done.headers["Location"]))
    assert "Waiver request sent" in confirmation and request.reference in confirmation
    assert "2 charges of penalties and interest totalling $159.17" in confirmation
    assert "What happens next" in confirmation
    # The charges now say they are in a request; a new request starts a new draft.
    again = body(client.get(_url(inn)))
    assert f"Already in your request {request.reference}" in again
    assert not re.search(r"<input[^>]*\schecked", again)


def test_sending_twice_makes_one_request_and_answers_the_same_confirmation(app, inn):
    client = signed_in(app, OWNER)
    assert _choose(client, inn, inn["penalty"]).status_code == 303
    assert _post(client, _url(inn, "reason"), {**WHY, "step": "reason"}).status_code == 303
    token = _draft_token(app)
    first = _post(client, _url(inn, "check"), {"token": token, "declaration": "y"})
    second = _post(client, _url(inn, "check"), {"token": token, "declaration": "y"})
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert len(_requests(app)) == 1
    assert json.loads(_requests(app)[0].data)["total_cents"] == 12500


def test_an_account_without_penalties_or_interest_says_so(app, inn, clock):
    client = signed_in(app, OWNER)
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=73, legal_name="Quiet Lodge Ltd.")
        post(db, account, "assessment", 1000, date(2026, 10, 1), period_end=date(2026, 8, 31))
        give(db, clock(), inn["owner"], account)
        db.commit()
        number = account.number
    page = client.get(f"/waivers/{number}/")
    assert page.status_code == 200 and "This account has no penalties or interest to waive" in body(page)
    refused = _post(client, f"/waivers/{number}/", {"entries": ["1"]})
    assert refused.status_code == 400 and _drafts(app) == []


def test_a_program_without_online_waivers_explains_how_to_ask_in_writing(app, inn, clock):
    client = signed_in(app, OWNER)
    with sessionmaker_of(app)() as db:
        claim = open_account(db, program_code="FTR", serial=74, legal_name="Farm Fuel Ltd.")
        give(db, clock(), inn["owner"], claim)
        db.commit()
        number = claim.number
    page = client.get(f"/waivers/{number}/")
    assert page.status_code == 200 and "cannot be sent through TRA Client Self-Service" in body(page)
    assert _post(client, f"/waivers/{number}/", {"entries": ["1"]}).status_code == 400
    assert _drafts(app) == []


BAD_CHOICES = [
    ([], "Select at least one penalty or interest charge"),
    (["foreign"], "Select penalties and interest from this account&#39;s list"),
    (["reversed"], "Select penalties and interest from this account&#39;s list"),
    (["credit"], "Select penalties and interest from this account&#39;s list"),
    (["penalty", "foreign"], "Select penalties and interest from this account&#39;s list"),
    (["penalty", "banana"], "Select penalties and interest from this account&#39;s list"),
    (["99999999999999999999999"], "Select penalties and interest from this account&#39;s list"),
    (["-1"], "Select penalties and interest from this account&#39;s list"),
]


def test_charges_that_are_not_this_accounts_penalties_or_interest_are_refused(app, inn):
    client = signed_in(app, OWNER)
    for entries, message in BAD_CHOICES:
        response = _post(client, _url(inn), {"entries": [str(inn.get(e, e)) for e in entries], "step": "entries"})
        assert response.status_code == 400, entries
        page = body(response)
        assert f'href="#entries">{message}' in page and 'id="entries-error"' in page, entries
    assert _drafts(app) == []


BAD_REASONS = [
    ("reason", "", "Select why we should waive the penalties and interest"),
    ("reason", "because", "Select why we should waive the penalties and interest"),
    ("explanation", "", "Explain why we should waive the penalties and interest"),
    ("explanation", "  ", "Explain why we should waive the penalties and interest"),
    ("explanation", "x" * 5001, "The explanation must be 5,000 characters or fewer"),
]


def test_a_bad_reason_or_explanation_is_refused_and_changes_nothing(app, inn):
    client = signed_in(app, OWNER)
    assert _choose(client, inn, inn["penalty"]).status_code == 303
    before = _drafts(app)
    for field, value, message in BAD_REASONS:
        response = _post(client, _url(inn, "reason"), {**WHY, field: value})
        assert response.status_code == 400, (field, value)
        assert f'href="#{field}">{message}' in body(response) and f'id="{field}-error"' in body(response)
    assert _drafts(app) == before


def test_the_declaration_is_required_and_steps_cannot_be_skipped(app, inn):
    client = signed_in(app, OWNER)
    # Nothing chosen yet: the later steps send the person back to the start.
    assert client.get(_url(inn, "reason")).headers["Location"] == _url(inn)
    assert client.get(_url(inn, "check")).headers["Location"] == _url(inn)
    assert client.get(_url(inn, "documents")).headers["Location"] == _url(inn)
    assert _post(client, _url(inn, "reason"), WHY).status_code == 400
    assert _post(client, _url(inn, "check"), {"declaration": "y"}).status_code == 400
    assert _choose(client, inn, inn["penalty"]).status_code == 303
    assert client.get(_url(inn, "check")).headers["Location"] == _url(inn, "reason")
    refused = _post(client, _url(inn, "check"), {"token": _draft_token(app), "declaration": "y"})
    assert refused.status_code == 400 and "Select why we should waive" in body(refused)
    assert _post(client, _url(inn, "reason"), WHY).status_code == 303
    unticked = _post(client, _url(inn, "check"), {"token": _draft_token(app)})
    assert unticked.status_code == 400 and "Confirm the declaration to send your request" in body(unticked)
    assert _requests(app) == []


def test_a_charge_reversed_after_it_was_chosen_must_be_chosen_again(app, inn):
    client = signed_in(app, OWNER)
    assert _choose(client, inn, inn["penalty"], inn["interest"]).status_code == 303
    assert _post(client, _url(inn, "reason"), WHY).status_code == 303
    with sessionmaker_of(app)() as db:
        ledger.reverse(
            db,
            db.get(LedgerEntry, inn["interest"]),
            processed_date=date(2026, 11, 23),
            reference="REV-2",
            reason="Interest cancelled",
        )
        db.commit()
    assert client.get(_url(inn, "check")).headers["Location"] == _url(inn)
    refused = _post(client, _url(inn, "check"), {"token": _draft_token(app), "declaration": "y"})
    assert refused.status_code == 400 and "Choose the charges again" in body(refused)
    assert _requests(app) == []


def test_autosave_keeps_only_this_accounts_charges_and_a_timed_out_session_keeps_the_draft(app, inn, clock):
    client = signed_in(app, OWNER)
    saved = _post(
        client, _url(inn, "autosave"), {"step": "entries", "entries": [str(inn["penalty"]), str(inn["foreign"]), "x"]}
    )
    assert saved.status_code == 200 and "Draft saved at 11:00 am" in body(saved)  # the first save says so
    assert json.loads(_drafts(app)[0][1]) == {"entries": [str(inn["penalty"])]}
    clock.advance(minutes=2)
    saved = _post(
        client, _url(inn, "autosave"), {"step": "reason", "reason": "inability", "explanation": "Sales fell by half"}
    )
    assert saved.status_code == 200 and "Draft saved at 11:02 am" in body(saved)
    assert _post(client, _url(inn, "autosave"), {"step": "nonsense"}).status_code == 400
    clock.advance(minutes=16)
    away = client.get(_url(inn, "reason"))
    assert away.status_code == 303 and "/auth/sign-in" in away.headers["Location"]
    assert Auth(client, app).sign_in(email=OWNER).status_code == 303
    page = body(client.get(_url(inn, "reason")))
    assert "Sales fell by half" in page and 'value="inability" aria-describedby="reason-inability-hint" checked' in page
    start = body(client.get(_url(inn)))
    assert f'value="{inn["penalty"]}" checked' in start and f'value="{inn["interest"]}">' in start


def test_confirmations_belong_to_the_account_and_strangers_get_404(app, inn):
    client = signed_in(app, OWNER)
    assert _choose(client, inn, inn["penalty"]).status_code == 303
    assert _post(client, _url(inn, "reason"), WHY).status_code == 303
    done = _post(client, _url(inn, "check"), {"token": _draft_token(app), "declaration": "y"})
    reference = done.headers["Location"].rsplit("/", 1)[1]
    assert client.get(f"/waivers/{inn['number']}/done/{reference}").status_code == 200
    assert client.get(f"/waivers/{inn['other']}/done/{reference}").status_code == 404
    assert client.get(f"/waivers/{inn['number']}/done/SR-AAAA-AAAA").status_code == 404
    for email in (STRANGER, CLERK):
        other = signed_in(app, email)
        assert other.get(_url(inn)).status_code == 404
        assert _choose(other, inn, inn["penalty"]).status_code == 404
        assert other.get(f"/waivers/{inn['number']}/done/{reference}").status_code == 404
        assert b"Prairie Inn" not in other.get(_url(inn, "check")).get_data()
    assert len(_requests(app)) == 1


ids = st.lists(st.text(max_size=30) | st.integers(min_value=-(2**70), max_value=2**70).map(str), max_size=5)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=ids)
def test_any_ticked_values_are_answered_without_a_server_error(app, inn, entries):
    client = _hypothesis_client(app)
    before = _drafts(app)
    response = client.post(_url(inn), data={"entries": entries, "step": "entries", "csrf_token": client.csrf})
    assert response.status_code < 500
    if response.status_code != 303:
        assert response.status_code == 400 and _drafts(app) == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reason=st.text(max_size=40) | st.sampled_from(["circumstances", "agency_error", "inability"]),
    explanation=st.text(max_size=6000),
)
def test_any_text_in_the_reason_form_is_answered_without_a_server_error(app, inn, reason, explanation):
    client = _hypothesis_client(app)
    if not _drafts(app):
        assert (
            client.post(_url(inn), data={"entries": [str(inn["penalty"])], "csrf_token": client.csrf}).status_code
            == 303
        )
    before = _drafts(app)
    response = client.post(
        _url(inn, "reason"), data={"reason": reason, "explanation": explanation, "csrf_token": client.csrf}
    )
    assert response.status_code < 500
    if response.status_code != 303:
        assert response.status_code == 400 and _drafts(app) == before
    assert _requests(app) == []


def _hypothesis_client(app):
    """One signed-in client per app (each Hypothesis example reuses it)."""
    client = app.config.get("_waivers_client")
    if client is None:
        client = signed_in(app, OWNER)
        client.csrf = _token(client)
        app.config["_waivers_client"] = client
    return client
