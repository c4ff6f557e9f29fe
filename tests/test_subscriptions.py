"""Updates by email (issue 20, item 12), through a real SMTP server on loopback:
double opt-in, publishing to a program's subscribers, and an unsubscribe link
that works signed out, ends only its own subscription and changes nothing when
merely opened. The attacker's tests first."""

from __future__ import annotations

import re

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from app import create_app
from domain import programs as program_data
from models import Subscription
from tests.accounts_factory import sessionmaker_of
from tests.conftest import PASSWORD, Auth, StaffMember, csrf_from, link_in, make_user, outbox
from tests.test_email import Collector, body_of, free_port, smtp_config
from web.mailer import send_outbox

START = "/subscriptions/"


@pytest.fixture
def smtp_server():
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def mail_app(app_config, smtp_server):
    """The app sending through the loopback server (as tests/test_email.py's)."""
    application = create_app(smtp_config(app_config, smtp_server.port))
    yield application
    application.extensions["portal.engine"].dispose()


def with_programs(app) -> None:
    with sessionmaker_of(app)() as db:
        program_data.ensure_programs(db)
        db.commit()


def subscribe(client, email: str, programs=("TL",), **extra):
    token = csrf_from(client.get(START).get_data(as_text=True))
    return client.post(START, data={"email": email, "programs": list(programs), "csrf_token": token, **extra})


def publish(staff: StaffMember, code: str, title: str, body: str = "Rates change on 1 January.", key: str = ""):
    page = staff.get(f"/staff/programs/{code}/updates").get_data(as_text=True)
    found = re.search(r'name="key" value="([^"]+)"', page)
    return staff.post(
        f"/staff/programs/{code}/updates",
        {"title": title, "body": body, "key": key or (found.group(1) if found else "")},
        token_from=f"/staff/programs/{code}/updates",
    )


def rows(app) -> list[Subscription]:
    with sessionmaker_of(app)() as db:
        return list(db.scalars(select(Subscription).order_by(Subscription.id)))


def confirm(client, link: str):
    token = csrf_from(client.get(link).get_data(as_text=True))
    return client.post(link, data={"csrf_token": token})


# --- What a stranger can and cannot do ---------------------------------------------------------


def test_a_strangers_address_gets_only_the_confirmation_until_someone_confirms(mail_app, smtp_server, clock):
    with_programs(mail_app)
    answer = subscribe(mail_app.test_client(), "victim@example.com", ("TL", "FT"))
    assert answer.status_code == 303 and answer.headers["Location"] == "/subscriptions/check-email"
    supervisor = StaffMember(mail_app, clock, "supervisor", "super@tra.example")
    assert publish(supervisor, "TL", "New rates").status_code == 303
    send_outbox(mail_app)
    (only,) = smtp_server.messages
    assert only["To"] == "victim@example.com" and only["Subject"] == "Confirm your email updates"
    assert "you will get no updates" in body_of(only)
    assert [r.confirmed_at for r in rows(mail_app)] == [None, None]


def test_the_answer_is_the_same_for_a_known_and_a_new_address(app):
    with_programs(app)
    client = app.test_client()
    first = subscribe(client, "known@example.com")
    again = subscribe(client, "known@example.com")
    new = subscribe(client, "new@example.com")
    assert first.headers["Location"] == again.headers["Location"] == new.headers["Location"]


def test_subscribing_needs_the_csrf_token_and_a_program(app):
    with_programs(app)
    client = app.test_client()
    client.get(START)
    assert client.post(START, data={"email": "a@example.com", "programs": ["TL"]}).status_code == 400
    none_chosen = subscribe(client, "a@example.com", ())
    assert none_chosen.status_code == 400 and "Choose at least one program" in none_chosen.get_data(as_text=True)
    unknown = subscribe(client, "a@example.com", ("ZZ",))
    assert unknown.status_code == 400
    assert rows(app) == [] and outbox(app) == []


def test_an_unsubscribe_link_ends_only_its_own_subscription_and_cannot_be_forged(mail_app, smtp_server, clock):
    with_programs(mail_app)
    for email in ("ann@example.com", "bob@example.com"):
        subscribe(mail_app.test_client(), email, ("TL", "FT"))
    send_outbox(mail_app)
    for message in smtp_server.messages:
        assert confirm(mail_app.test_client(), link_in(body_of(message))).status_code == 303
    smtp_server.messages.clear()
    supervisor = StaffMember(mail_app, clock, "supervisor", "super@tra.example")
    publish(supervisor, "TL", "Tourism news")
    send_outbox(mail_app)
    ann = next(m for m in smtp_server.messages if m["To"] == "ann@example.com")
    link = link_in(body_of(ann))
    assert ann["List-Unsubscribe"] == f"<http://localhost{link}>"
    stranger = mail_app.test_client()
    # A link changed by one character, or made up, is refused and changes nothing.
    token = link.rsplit("/", 1)[1]
    for bad in (link[:-3] + ("abc" if not link.endswith("abc") else "xyz"), "/subscriptions/unsubscribe/" + "A" * 40):
        assert stranger.get(bad).status_code == 400
    # Opening the link changes nothing; its button ends Ann's tourism levy updates only.
    page = stranger.get(link)
    assert page.status_code == 200 and "Stop email updates" in page.get_data(as_text=True)
    assert all(r.ended_at is None for r in rows(mail_app))
    assert confirm(stranger, link).status_code == 303
    ended = [(r.email, r.program_code) for r in rows(mail_app) if r.ended_at is not None]
    assert ended == [("ann@example.com", "TL")]
    assert "You are unsubscribed" in stranger.get(link).get_data(as_text=True)
    again = stranger.post(link, data={"csrf_token": csrf_from(stranger.get(START).get_data(as_text=True))})
    assert again.status_code == 200  # twice: still just the one
    assert len([r for r in rows(mail_app) if r.ended_at is not None]) == 1
    assert token not in " ".join(e.body_text for e in outbox(mail_app) if e.to_address == "bob@example.com")


def test_only_a_supervisor_publishes_and_a_double_click_sends_once(app, staff_member):
    with_programs(app)
    user = make_user(app, email="sub@example.com")
    auth = Auth(app.test_client(), app)
    auth.sign_in("sub@example.com", PASSWORD)
    assert subscribe(auth.client, "sub@example.com").status_code == 303  # own address: at once
    assert user and outbox(app) == []
    officer = staff_member("officer")
    assert officer.get("/staff/programs/TL/updates").status_code == 200
    assert publish(officer, "TL", "Officer news", key="officer-key").status_code == 403
    supervisor = staff_member("supervisor")
    page = supervisor.get("/staff/programs/TL/updates").get_data(as_text=True)
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)
    assert publish(supervisor, "TL", "News", key=key).status_code == 303
    assert publish(supervisor, "TL", "News", key=key).status_code == 303
    sent = [e for e in outbox(app) if e.to_address == "sub@example.com"]
    assert [e.subject for e in sent] == ["Tourism Levy: News"]
    assert sent[0].list_unsubscribe and "/subscriptions/unsubscribe/" in sent[0].list_unsubscribe
    empty = publish(supervisor, "TL", "", key="another-key")
    assert empty.status_code == 400 and "Enter a title" in empty.get_data(as_text=True)


def test_the_whole_round_by_smtp(mail_app, smtp_server, clock):
    with_programs(mail_app)
    client = mail_app.test_client()
    subscribe(client, "reader@example.com", ("FT",))
    send_outbox(mail_app)
    link = link_in(body_of(smtp_server.messages[0]))
    assert client.get(link).status_code == 200 and rows(mail_app)[0].confirmed_at is None  # GET changes nothing
    assert confirm(client, link).status_code == 303
    supervisor = StaffMember(mail_app, clock, "supervisor", "super@tra.example")
    publish(supervisor, "FT", "Fuel tax rate", "The rate changes on 1 April.")
    assert send_outbox(mail_app) == 1
    update = smtp_server.messages[-1]
    assert update["Subject"] == "Fuel Tax: Fuel Tax rate" or update["Subject"].endswith(": Fuel tax rate")
    assert "The rate changes on 1 April." in body_of(update) and "To stop these updates" in body_of(update)
    assert update["List-Unsubscribe"].startswith("<http://localhost/subscriptions/unsubscribe/")


ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_a_mail_provider_s_one_click_post_ends_only_that_subscription(mail_app, smtp_server, clock):
    """RFC 8058: the update says List-Unsubscribe-Post, and the provider POSTs
    `List-Unsubscribe=One-Click` to the link with no cookie and no CSRF token. The
    signed token is the authority; a forged one, a body with anything else in it, or
    the same body at any other URL still meets the CSRF check and changes nothing."""
    with_programs(mail_app)
    subscribe(mail_app.test_client(), "ann@example.com", ("TL", "FT"))
    send_outbox(mail_app)
    confirm(mail_app.test_client(), link_in(body_of(smtp_server.messages[0])))
    smtp_server.messages.clear()
    publish(StaffMember(mail_app, clock, "supervisor", "super@tra.example"), "TL", "Tourism news")
    send_outbox(mail_app)
    (update,) = smtp_server.messages
    assert update["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = update["List-Unsubscribe"].strip("<>").removeprefix("http://localhost")
    provider = mail_app.test_client()
    # The attacker's tries first: each is refused and ends nothing.
    assert provider.post(link[:-3] + "abc", data=ONE_CLICK).status_code == 400
    assert provider.post(link, data={**ONE_CLICK, "x": "1"}).status_code == 400  # not a one-click body: CSRF
    assert provider.post(link, data={"List-Unsubscribe": "Two-Click"}).status_code == 400
    assert provider.post(START, data={**ONE_CLICK, "email": "eve@example.com", "programs": ["TL"]}).status_code == 400
    assert all(r.ended_at is None for r in rows(mail_app))
    # The provider's own: 200 at once (it follows no redirect), and only Ann's Tourism Levy.
    done = provider.post(link, data=ONE_CLICK)
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    assert sorted((r.program_code, r.ended_at is not None) for r in rows(mail_app)) == [("FT", False), ("TL", True)]
    assert provider.post(link, data=ONE_CLICK).status_code == 200  # again: nothing more to do
