"""At most one "new message" email per person per hour (issue 20, item 13):
eleven messages in ten minutes were eleven emails. The first message emails at
once; later ones within the hour wait in the portal; the next email after the
hour says how many are waiting. The limit is per person: one person's flood
never holds back another's email."""

from __future__ import annotations

from sqlalchemy import select

from domain import messages
from models import OutboxEmail
from tests.accounts_factory import sessionmaker_of
from tests.conftest import make_user

ANN, BO = "ann@example.com", "bo@example.com"


def _send(app, clock, user_ids, subject="Hello"):
    with sessionmaker_of(app)() as db:
        messages.send(db, clock(), user_ids=user_ids, account_id=None, subject=subject, body="Text.")
        db.commit()


def _emails(app, to):
    with sessionmaker_of(app)() as db:
        return list(
            db.scalars(
                select(OutboxEmail)
                .where(OutboxEmail.to_address == to, OutboxEmail.subject == messages.EMAIL_SUBJECT)
                .order_by(OutboxEmail.id)
            )
        )


def test_eleven_messages_in_ten_minutes_are_one_email(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    for n in range(11):
        _send(app, clock, [ann], f"Message {n}")
        clock.advance(minutes=1)
    assert len(_emails(app, ANN)) == 1


def test_the_limit_is_per_person_not_for_everyone(app, clock):
    ann, bo = make_user(app, email=ANN, name="Ann Able"), make_user(app, email=BO, name="Bo Baker")
    for n in range(5):
        _send(app, clock, [ann], f"For Ann {n}")
    clock.advance(minutes=10)
    _send(app, clock, [bo], "For Bo")  # Ann's flood does not hold Bo's back
    _send(app, clock, [ann, bo], "For both")  # and neither gets a second one within the hour
    assert (len(_emails(app, ANN)), len(_emails(app, BO))) == (1, 1)


def test_after_the_hour_the_next_email_says_how_many_are_waiting(app, clock):
    ann = make_user(app, email=ANN, name="Ann Able")
    _send(app, clock, [ann], "First")
    clock.advance(minutes=30)
    _send(app, clock, [ann], "Second")
    clock.advance(minutes=29, seconds=59)
    _send(app, clock, [ann], "Third")  # still within the hour of the first email
    assert len(_emails(app, ANN)) == 1
    clock.advance(seconds=2)
    _send(app, clock, [ann], "Fourth")
    first, second = _emails(app, ANN)
    assert "unread messages waiting" not in first.body_text
    assert "You have 4 unread messages waiting." in second.body_text
    # No subject, name or account in either: only that messages are waiting.
    for email in (first, second):
        assert "First" not in email.body_text and "Fourth" not in email.body_text and "Ann" not in email.body_text
