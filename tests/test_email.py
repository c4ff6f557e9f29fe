"""Email through a real SMTP server on loopback (aiosmtpd): what arrives, that each
message goes once however many senders compete, and what happens when the
server cannot be reached. Time moves only through the FrozenClock."""

from __future__ import annotations

import re
import socket
import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from app import create_app
from domain import outbox as outbox_domain
from models import OutboxEmail
from tests.conftest import PASSWORD, Auth, csrf_from, link_in, make_user, outbox
from web.mailer import send_outbox

MAIL_FROM = "TRA Client Self-Service <no-reply@tracs.example>"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Collector:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def smtp_config(app_config, port) -> dict:
    return {
        **app_config,
        "MAIL_SENDER": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_TIMEOUT_SECONDS": 5,
        "MAIL_FROM": MAIL_FROM,
    }


@pytest.fixture
def mail_app(app_config, smtp_server):
    application = create_app(smtp_config(app_config, smtp_server.port))
    yield application
    application.extensions["portal.engine"].dispose()


def body_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def queue(app, count: int, to="someone@example.com"):
    with app.extensions["portal.sessionmaker"]() as db:
        for n in range(count):
            outbox_domain.enqueue(db, app.extensions["portal.clock"](), to, f"Message {n}", f"Body of message {n}\n")
        db.commit()


def rows(app) -> list[OutboxEmail]:
    return outbox(app)


# --- what arrives ------------------------------------------------------------


def test_verification_email_arrives_by_smtp_with_a_working_link(mail_app, smtp_server):
    client = mail_app.test_client()
    auth = Auth(client, mail_app)
    response = auth.post(
        "/auth/register",
        {"name": "River Stone", "email": "river@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert response.status_code == 303

    assert send_outbox(mail_app, "test-worker") == 1
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert message["To"] == "river@example.com"
    assert message["From"] == MAIL_FROM
    assert message["Subject"] == "Confirm your email address"
    assert smtp_server.envelopes == [("no-reply@tracs.example", ["river@example.com"])]
    body = body_of(message)
    assert "It does not sign you in." in body
    assert PASSWORD not in body
    link = link_in(body)
    assert link.startswith("/auth/verify/")

    (row,) = rows(mail_app)
    assert (row.status, row.attempts, row.claimed_by) == ("sent", 1, "test-worker")
    assert row.sent_at == mail_app.extensions["portal.clock"]()
    assert send_outbox(mail_app) == 0  # nothing left to send
    assert len(smtp_server.messages) == 1

    # The link read out of the delivered message verifies the address.
    token = csrf_from(client.get(link).get_data(as_text=True))
    assert client.post(link, data={"csrf_token": token}).status_code == 303
    from models import User

    with mail_app.extensions["portal.sessionmaker"]() as db:
        assert db.scalar(select(User.email_verified_at).where(User.email == "river@example.com")) is not None


def test_reset_emails_carry_no_password(mail_app, smtp_server):
    make_user(mail_app)
    auth = Auth(mail_app.test_client(), mail_app)
    assert auth.post("/auth/forgot-password", {"email": "taxpayer@example.com"}).status_code == 303
    send_outbox(mail_app)
    (reset,) = smtp_server.messages
    assert reset["Subject"] == "Reset your password" and reset["To"] == "taxpayer@example.com"
    body = body_of(reset)
    assert PASSWORD not in body
    assert "your password has not changed" in body
    link = link_in(body)
    assert link.startswith("/auth/reset-password/")

    new_password = "amber-meadow-falcon-copper"
    response = auth.post(link, {"new_password": new_password, "new_password_confirm": new_password})
    assert response.status_code == 303
    send_outbox(mail_app)
    changed = smtp_server.messages[-1]
    assert changed["Subject"] == "Your password has been changed"
    for message in smtp_server.messages:
        text = body_of(message)
        assert PASSWORD not in text and new_password not in text
        assert "password:" not in text.lower()


def test_a_mail_alert_arrives_with_nothing_about_the_letter(mail_app, smtp_server, clock):
    from datetime import date

    from domain import mail
    from tests.accounts_factory import give, open_account

    owner = make_user(mail_app, email="owner@example.com", name="Olive Owner")
    with mail_app.extensions["portal.sessionmaker"]() as db:
        account = open_account(db, serial=71, legal_name="Alert Test Ltd.")
        give(db, clock(), owner, account)
        mail.post(
            db,
            clock(),
            date(2026, 11, 23),
            account=account,
            kind="notice_of_assessment",
            title="Notice of assessment, October 2026",
            pdf=b"%PDF-1.4\n%%EOF\n",
        )
        db.commit()
        number = account.number
    assert send_outbox(mail_app) == 1
    (message,) = smtp_server.messages
    assert message["To"] == "owner@example.com" and message["Subject"] == mail.ALERT_SUBJECT
    text = body_of(message)
    assert "sign in to TRA Client Self-Service" in text
    for secret in ("Alert Test", number, "assessment", "October", "http", "Olive"):
        assert secret not in text


# --- once only, however many senders -----------------------------------------


def test_two_workers_sending_at_once_send_each_message_once(mail_app, app_config, smtp_server):
    queue(mail_app, 24)
    second = create_app(smtp_config(app_config, smtp_server.port))  # another worker on the same database
    start = threading.Barrier(4)
    sent_counts, errors = [], []

    def run(application, name):
        try:
            start.wait(timeout=10)
            sent_counts.append(send_outbox(application, name))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(application, f"worker-{i}"))
        for i, application in enumerate([mail_app, second, mail_app, second])
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        second.extensions["portal.engine"].dispose()

    assert errors == []
    assert sum(sent_counts) == 24
    subjects = sorted(m["Subject"] for m in smtp_server.messages)
    assert subjects == sorted(f"Message {n}" for n in range(24))  # each exactly once
    assert all(r.status == "sent" and r.attempts == 1 for r in rows(mail_app))


def test_a_claim_left_by_a_dead_worker_is_taken_over_after_ten_minutes(mail_app, smtp_server, clock):
    queue(mail_app, 2)
    with mail_app.extensions["portal.sessionmaker"]() as db:
        first, second = db.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
        first.status, first.claimed_by, first.claimed_at, first.attempts = "sending", "dead", clock(), 1
        second.status, second.claimed_by, second.claimed_at, second.attempts = "sending", "busy", clock(), 1
        db.commit()

    clock.advance(minutes=5)
    assert send_outbox(mail_app) == 0  # both claims are recent: someone may be sending them
    assert smtp_server.messages == []

    with mail_app.extensions["portal.sessionmaker"]() as db:
        db.get(OutboxEmail, second.id).claimed_at = clock()  # the busy worker is still at it
        db.commit()
    clock.advance(minutes=6)
    assert send_outbox(mail_app, "rescuer") == 1
    assert [m["Subject"] for m in smtp_server.messages] == ["Message 0"]
    by_id = {r.id: r for r in rows(mail_app)}
    assert (by_id[first.id].status, by_id[first.id].attempts, by_id[first.id].claimed_by) == ("sent", 2, "rescuer")
    assert by_id[second.id].status == "sending"


# --- when the server cannot be reached ----------------------------------------


def test_unreachable_server_leaves_mail_pending_then_failed(app_config, clock):
    dead_port = free_port()  # nothing listens here
    application = create_app(smtp_config(app_config, dead_port))
    try:
        # Registration does not depend on the mail server: the account and its email are kept.
        auth = Auth(application.test_client(), application)
        response = auth.post(
            "/auth/register",
            {"name": "River Stone", "email": "river@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
        )
        assert response.status_code == 303
        assert send_outbox(application) == 0
        (row,) = rows(application)
        assert (row.status, row.attempts, row.to_address) == ("pending", 1, "river@example.com")
        assert row.last_error == "ConnectionRefusedError" and row.sent_at is None

        for attempt in range(2, outbox_domain.MAX_ATTEMPTS):
            clock.advance(seconds=outbox_domain.backoff(attempt - 1).total_seconds())
            send_outbox(application)
            (row,) = rows(application)
            assert (row.status, row.attempts) == ("pending", attempt)

        clock.advance(seconds=outbox_domain.backoff(outbox_domain.MAX_ATTEMPTS - 1).total_seconds())
        send_outbox(application)
        (row,) = rows(application)
        assert (row.status, row.attempts, row.next_attempt_at) == ("failed", outbox_domain.MAX_ATTEMPTS, None)

        clock.advance(hours=2)
        send_outbox(application)  # a failed message is left alone
        (row,) = rows(application)
        assert (row.status, row.attempts) == ("failed", outbox_domain.MAX_ATTEMPTS)
    finally:
        application.extensions["portal.engine"].dispose()


def test_the_back_off_doubles_from_a_minute_up_to_an_hour():
    assert [outbox_domain.backoff(n) for n in range(1, 9)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60)
    ]
    assert outbox_domain.backoff(1000) == timedelta(hours=1)


class FlakyCollector(Collector):
    """Refuses the first `failures` messages with a temporary error (451), then takes them."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refused < self.failures:
                self.refused += 1
                return "451 Requested action aborted: try again later"
        return await super().handle_DATA(server, session, envelope)


def test_a_message_that_failed_twice_goes_on_the_third_attempt_once_its_back_off_has_passed(app_config, clock):
    handler = FlakyCollector(failures=2)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    application = create_app(smtp_config(app_config, controller.port))
    try:
        queue(application, 1)
        first_try = clock()
        assert send_outbox(application) == 0
        (row,) = rows(application)
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "SMTPDataError")
        assert row.next_attempt_at == first_try + timedelta(minutes=1)

        clock.advance(seconds=59)
        assert send_outbox(application) == 0  # not due yet: nothing is tried
        assert rows(application)[0].attempts == 1 and handler.refused == 1

        clock.advance(seconds=1)
        assert send_outbox(application) == 0  # the second attempt, refused too
        (row,) = rows(application)
        assert (row.status, row.attempts) == ("pending", 2)
        assert row.next_attempt_at == clock() + timedelta(minutes=2)

        clock.advance(minutes=1, seconds=59)
        assert send_outbox(application) == 0
        assert handler.messages == [] and rows(application)[0].attempts == 2

        clock.advance(seconds=1)
        assert send_outbox(application) == 1  # the third attempt goes
        (row,) = rows(application)
        assert (row.status, row.attempts, row.sent_at, row.next_attempt_at) == ("sent", 3, clock(), None)
        clock.advance(hours=2)
        assert send_outbox(application) == 0
        assert [m["Subject"] for m in handler.messages] == ["Message 0"]  # once
        assert handler.refused == 2
    finally:
        application.extensions["portal.engine"].dispose()
        controller.stop()


def test_a_message_waiting_out_its_back_off_does_not_hold_up_the_others(mail_app, smtp_server, clock):
    queue(mail_app, 2)
    with mail_app.extensions["portal.sessionmaker"]() as db:
        first = db.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).first()
        first.attempts, first.next_attempt_at, first.last_error = 1, clock() + timedelta(minutes=1), "SMTPDataError"
        db.commit()
    assert send_outbox(mail_app) == 1
    assert [m["Subject"] for m in smtp_server.messages] == ["Message 1"]
    clock.advance(minutes=1)
    assert send_outbox(mail_app) == 1
    assert [m["Subject"] for m in smtp_server.messages] == ["Message 1", "Message 0"]
    assert [(r.status, r.attempts) for r in rows(mail_app)] == [("sent", 2), ("sent", 1)]


def test_mail_queued_while_the_server_was_down_goes_once_it_is_back(app_config, clock):
    port = free_port()
    down = create_app(smtp_config(app_config, port))
    try:
        queue(down, 1)
        assert send_outbox(down) == 0
        handler = Collector()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            clock.advance(minutes=1)
            assert send_outbox(down) == 1
            assert [m["Subject"] for m in handler.messages] == ["Message 0"]
            (row,) = rows(down)
            assert (row.status, row.attempts) == ("sent", 2)
        finally:
            controller.stop()
    finally:
        down.extensions["portal.engine"].dispose()


def test_every_message_has_a_date_a_message_id_in_the_sites_domain_and_a_plain_text_part(mail_app, smtp_server, clock):
    """Issue 18: mail without Date or Message-ID is marked as spam or refused by receiving
    servers. Each message received by the real SMTP server carries both (the Message-ID in
    the domain of PUBLIC_BASE_URL, the same on a retry of the same email, different between
    emails) and a text/plain part in UTF-8."""
    from email.utils import parsedate_to_datetime

    mail_app.config["PUBLIC_BASE_URL"] = "https://tracs.example.ca"
    queue(mail_app, 2)
    assert send_outbox(mail_app, "test-worker") == 2
    ids = []
    for message in smtp_server.messages:
        assert parsedate_to_datetime(message["Date"]) == clock()
        assert re.fullmatch(r"<[^<>@\s]+@tracs\.example\.ca>", message["Message-ID"]), message["Message-ID"]
        ids.append(message["Message-ID"])
        part = message.get_body(preferencelist=("plain",))
        assert part.get_content_type() == "text/plain" and part.get_content_charset() == "utf-8"
    assert len(set(ids)) == 2
