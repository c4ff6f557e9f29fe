"""The one send-once flow (issue 19): every multi-step journey's check page goes
through web.journeys.check and sends its draft with domain.sending.send, so a draft
of any journey's kind makes one request however often it is sent (one after the
other, or two at the same moment), a sent draft answers the request it made (also
once it is purged), and a journey's refusal keeps nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import inspect
import threading
from datetime import date

import pytest
from sqlalchemy import delete, func, select

from domain import arrangements, drafts, renewals, sending
from models import Account, AuditEvent, Draft, Licence, PaymentArrangement, ServiceRequest, WorkItem
from tests.accounts_factory import give, open_account, post, sessionmaker_of
from tests.conftest import make_user
from web import journeys

# The six journeys: blueprint -> the kinds of request their check page sends.
JOURNEYS = {
    "filing": ("return", "claim", "amended_return", "amended_claim"),
    "objections": ("objection",),
    "waivers": ("waiver",),
    "arrangements": ("arrangement",),
    "renewals": ("renewal",),
    "direct_deposit": ("direct_deposit",),
}
KINDS = [kind for kinds in JOURNEYS.values() for kind in kinds]
JOURNEY_DOMAINS = ("filing", "objections", "waivers", "arrangements", "renewals", "direct_deposit")


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_journey_checks_sends_and_confirms_through_the_one_flow(app):
    """Each journey is a web.journeys.Journey whose check page is the one view that
    journeys.check_route declares and whose confirmation is declared by
    journeys.confirmation_route (which finds the request); no journey submits a
    request or marks a draft itself."""
    assert {cls.blueprint: cls.kinds for cls in _subclasses(journeys.Journey)} == JOURNEYS
    for blueprint, kinds in JOURNEYS.items():
        check = inspect.unwrap(app.view_functions[f"{blueprint}.check"])
        assert check.__module__ == "web.journeys" and check.__name__ == "check", blueprint
        assert app.view_functions[f"{blueprint}.done"].confirms.kinds == kinds, blueprint
        module = inspect.getsource(inspect.getmodule(app.view_functions[f"{blueprint}.done"]))
        assert "requests.submit(" not in module and "mark_submitted(" not in module, blueprint
        for kind in kinds:
            assert journeys._CONFIRMATIONS[kind] == f"{blueprint}.done"
    for name in JOURNEY_DOMAINS:
        source = inspect.getsource(__import__(f"domain.{name}", fromlist=["_"]))
        assert "requests.submit(" not in source and "mark_submitted(" not in source, name


def test_every_confirmation_names_its_request_reference(app):
    for blueprint in JOURNEYS:
        [rule] = [r for r in app.url_map.iter_rules() if r.endpoint == f"{blueprint}.done"]
        assert rule.arguments == {"number", "reference"}, blueprint


# --- Sending a draft of each journey's kind --------------------------------------------------


def _draft_of(app, clock, kind: str, serial: int = 71) -> tuple[int, int, int]:
    """An account, its owner and the owner's open draft of this kind: their ids."""
    owner = make_user(app, email=f"sender{serial}@example.com", name="Sam Sender")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=serial, legal_name="Send Once Ltd.", opened_on=date(2026, 6, 1))
        give(db, clock(), owner, account)
        draft = drafts.start(db, clock(), account_id=account.id, user_id=owner, kind=kind, subject="the subject")
        db.commit()
        return account.id, owner, draft.id


def _send(db, clock, ids, built: list | None = None, build=None):
    account_id, user_id, draft_id = ids
    made = [] if built is None else built
    outgoing = sending.Outgoing(
        summary="Sent once", data={"answer": "yes"}, build=build or (lambda _db, r: made.append(r.id))
    )
    draft = db.get(Draft, draft_id)
    return sending.send(db, clock(), draft, account=db.get(Account, account_id), user_id=user_id, outgoing=outgoing)


def _count(db, model, *where) -> int:
    return db.scalar(select(func.count()).select_from(model).where(*where))


@pytest.mark.parametrize("kind", KINDS)
def test_a_draft_of_every_journey_is_sent_once_and_answers_its_request_after(app, clock, kind):
    ids = _draft_of(app, clock, kind)
    account_id, user_id, draft_id = ids
    built: list[int] = []
    with sessionmaker_of(app)() as db:
        first = _send(db, clock, ids, built)
        db.commit()
        assert first.created and first.request.kind == kind
    with sessionmaker_of(app)() as db:
        again = _send(db, clock, ids, built)  # a double click, a retry, a second tab
        db.commit()
        assert not again.created and again.request.id == first.request.id
        assert built == [first.request.id]  # what goes with the request was made once
        assert _count(db, ServiceRequest) == 1 and _count(db, WorkItem) == 1
        assert _count(db, AuditEvent, AuditEvent.event == f"request.{kind}") == 1
        draft = db.get(Draft, draft_id)
        assert draft.submitted_request_id == first.request.id and first.request.idempotency_key == draft.token
        token = draft.token
        # Purged a day later: its token still finds the request, for its own person and kind only.
        db.execute(delete(Draft))
        db.commit()
        assert sending.made_with(db, token, account_id=account_id, user_id=user_id, kinds=(kind,)).id == (
            first.request.id
        )
        assert sending.made_with(db, token, account_id=account_id, user_id=user_id + 1, kinds=(kind,)) is None
        assert sending.made_with(db, token, account_id=account_id, user_id=user_id, kinds=("profile",)) is None
        assert sending.made_with(db, "not a token\x00", account_id=account_id, user_id=user_id, kinds=(kind,)) is None


def test_a_refusal_from_the_journeys_build_keeps_nothing_and_the_draft_can_be_sent_later(app, clock):
    ids = _draft_of(app, clock, "return")

    def refuse(_db, _made):
        raise sending.Refused("filed a moment ago by someone else")

    with sessionmaker_of(app)() as db:
        with pytest.raises(sending.Refused):
            _send(db, clock, ids, build=refuse)
        db.rollback()
        assert _count(db, ServiceRequest) == 0 and _count(db, WorkItem) == 0 and _count(db, AuditEvent) == 0
        assert db.get(Draft, ids[2]).submitted_request_id is None
        assert _send(db, clock, ids).created
        db.commit()
        assert _count(db, ServiceRequest) == 1


def test_keeps_only_what_the_journey_says_once_sent(app, clock):
    ids = _draft_of(app, clock, "direct_deposit")
    with sessionmaker_of(app)() as db:
        draft = db.get(Draft, ids[2])
        drafts.save(draft, clock(), {"bank_account": "1234567"})
        outgoing = sending.Outgoing(summary="New details", data={}, draft_keeps={"account_ending": "567"})
        sending.send(db, clock(), draft, account=db.get(Account, ids[0]), user_id=ids[1], outgoing=outgoing)
        db.commit()
        assert drafts.answers(db.get(Draft, ids[2])) == {"account_ending": "567"}


def test_the_same_draft_sent_twice_at_the_same_moment_makes_one_request(app, clock):
    """The second sender waits on the draft's row (drafts.hold) until the first commits,
    then answers the first one's request: on PostgreSQL the row lock, on SQLite the
    one write lock."""
    ids = _draft_of(app, clock, "arrangement")
    maker = sessionmaker_of(app)
    answered: dict = {}

    def second_sender():
        with maker() as db:
            sent = _send(db, clock, ids)
            answered.update(created=sent.created, request_id=sent.request.id)
            db.commit()

    with maker() as db:
        first = _send(db, clock, ids)  # holds the draft, not yet committed
        racer = threading.Thread(target=second_sender)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()  # waiting for the first sender
        db.commit()
        first_id = first.request.id
    racer.join(20)
    assert not racer.is_alive() and answered == {"created": False, "request_id": first_id}
    with maker() as db:
        assert _count(db, ServiceRequest) == 1 and _count(db, WorkItem) == 1


# --- Two people sending at the same moment what the journey allows once ----------------------


def _two_senders(app, clock, kind: str):
    """An account with a balance and a licence, and two people's open drafts of this kind."""
    people = [make_user(app, email=f"{who}@example.com", name=who.title()) for who in ("first", "second")]
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=72, legal_name="Two Desks Ltd.", opened_on=date(2026, 6, 1))
        post(db, account, "assessment", 120_000, date(2026, 7, 15), period_end=date(2026, 6, 30))
        licence = Licence(
            account_id=account.id,
            licence_number="TD-1",
            kind="Test licence",
            issued_on=date(2026, 1, 1),
            expires_on=date(2026, 12, 31),
        )
        db.add(licence)
        draft_ids = []
        for person in people:
            give(db, clock(), person, account, role="delegate", permissions=("file", "payment_arrangements"))
            draft_ids.append(drafts.start(db, clock(), account_id=account.id, user_id=person, kind=kind).id)
        db.commit()
        return account.id, licence.id, list(zip(people, draft_ids, strict=True))


def _what_goes_with(kind, account_id, licence_id, moment):
    if kind == "arrangement":
        proposal = arrangements.Proposal("monthly", 40_000, date(2026, 12, 1))
        data, build = {}, arrangements.builder(account_id, moment, 120_000, proposal)
    else:
        data, build = {"licence_id": licence_id}, renewals.builder(account_id, licence_id)
    return sending.Outgoing(summary="Once only", data=data, build=build)


@pytest.mark.parametrize("kind", ["arrangement", "renewal"])
def test_two_people_sending_what_is_allowed_once_at_the_same_moment_send_one(app, clock, kind):
    """Two proposals of an arrangement for one account, or two renewals of one licence,
    each from its own person and draft: the second waits for the first (the account's
    or the licence's row), then is refused and keeps nothing."""
    account_id, licence_id, senders = _two_senders(app, clock, kind)
    maker = sessionmaker_of(app)
    refused: list = []

    def send(db, person, draft_id):
        outgoing = _what_goes_with(kind, account_id, licence_id, clock())
        draft, account = db.get(Draft, draft_id), db.get(Account, account_id)
        return sending.send(db, clock(), draft, account=account, user_id=person, outgoing=outgoing)

    def second_sender():
        with maker() as db:
            try:
                send(db, *senders[1])
            except sending.Refused as refusal:
                refused.append(refusal)
                db.rollback()

    with maker() as db:
        first = send(db, *senders[0])
        racer = threading.Thread(target=second_sender)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()  # waiting for the first sender
        db.commit()
        assert first.created
    racer.join(20)
    assert not racer.is_alive() and len(refused) == 1
    with maker() as db:
        assert _count(db, ServiceRequest, ServiceRequest.kind == kind) == 1
        assert _count(db, PaymentArrangement) == (1 if kind == "arrangement" else 0)
        assert db.get(Draft, senders[1][1]).submitted_request_id is None  # still theirs to change
