"""Hostile input, property-based (issue 8, Input): every form the running app
shows and every query parameter a view reads gets hostile values from Hypothesis:
nothing answers 5xx, a refusal (4xx) changes nothing, and markup, htmx attributes
and template expressions typed into a field come back inert.

- The forms are found, not listed: the crawl GETs every page of the URL map as six
  identities (owner, staff administrator, anonymous, half-way through a two-step
  sign-in, signed in with an authenticator, unverified) plus the links emails carry,
  takes each journey's first steps with plain answers, and crawls again; it must find
  a form for every POST route (UNREACHABLE, empty, lists any it cannot, with why).
- The query parameters are scanned from the source (request.args / request.values
  and WTForms bound to request.args in blueprints/ and web/); the scan must equal
  QUERY_PARAMETERS, so a new parameter cannot escape.
- Each example: every field left out, given its own value, a hostile one (markup,
  htmx attributes, {{7*7919}}, NUL and control characters, RTL and combining marks,
  emoji, numbers as strings, impossible dates, up to 70,000 characters) or repeated;
  a valid CSRF token; with or without HX-Request. After a 4xx, row counts of every
  table must be unchanged, and every 25th example (every 5th in the fast part)
  compares every row of every table (tests/db_snapshot.py; the audit log and the
  sign-in counters are written by refusals on purpose and are left out).
- Reproducible: derandomize=True and no example database, so CI runs the same cases
  every time. One app and one signed-in client per property, never per example.

Cost, measured on this machine (2 cores shared with other test runs): an example is
one request. 500 cases for each of the 78 forms and 30 parameters (54,000 requests)
took 19 minutes on SQLite (10.5 minutes of CPU), far over CI's budget and over the
4 minutes aimed at (PostgreSQL: 18.6 minutes). So CI runs FAST_EXAMPLES (25)
generated cases a form and a parameter, plus explicit ones (the 12 EVERY_TIME values
in every field at once; plain answers with a NUL in one field at a time), on both
backends (about 1 minute on SQLite, 2 to 3 on PostgreSQL), and the `long` tests
(`--long`, `make proof`) run the 500 the issue asks for, on both backends.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pyotp
import pytest
from flask import url_for
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from werkzeug.exceptions import MethodNotAllowed, NotFound

from domain import enrolment, enrolment_requests, mail, messages, subscriptions, work
from models import Account, Base, Consent, Licence, MessageThread, Subscription, User
from tests import route_needs
from tests.accounts_factory import file_return, give, open_account, post, sessionmaker_of
from tests.conftest import PASSWORD, Auth, StaffMember, csrf_from, link_in, make_user, outbox

ROOT = Path(__file__).resolve().parents[2]
OWNER, CLERK, TWO_STEP, UNVERIFIED = (
    "owner@example.com",
    "clerk@example.com",
    "twostep@example.com",
    "unverified@example.com",
)
RESETTER = "resetter@example.com"
TWO_STEP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

# --- The world the crawl walks ------------------------------------------------------------------


@dataclass
class World:
    """The objects every URL names, a signed-in client for each identity, and pages
    the URL map alone does not name (a second item, a link from an email)."""

    values: dict
    overrides: dict  # endpoint prefix -> {argument: value}, where one name means different things
    clients: dict = field(default_factory=dict)  # identity -> the crawl's client
    extra_pages: list = field(default_factory=list)  # (identity, url)
    staff_secret: str = ""  # the administrator's authenticator

    def args_for(self, endpoint: str, arguments) -> dict | None:
        chosen = dict(self.values)
        for prefix, extra in sorted(self.overrides.items(), key=lambda item: len(item[0])):
            if endpoint.startswith(prefix):
                chosen.update(extra)
        if not set(arguments) <= set(chosen):
            return None
        return {name: chosen[name] for name in arguments}


def _build_world(app, clock) -> World:
    """A Fuel Tax account (every function: filing, renewals, arrangements, objections,
    waivers, direct deposit, messages) owned by Olive, with a balance, a return assessed
    on 2 November (open to objection), a return waiting to be assessed, a licence, a
    consent asked for and one approved, a PIN, a message thread with its work item, a
    letter waiting to be mailed; staff of each kind; people half-way through signing in."""
    owner = make_user(app, email=OWNER, name="Olive Owner")
    clerk = make_user(app, email=CLERK, name="Casey Clerk")
    make_user(app, email=TWO_STEP, name="Tess Twostep", totp_secret=TWO_STEP_SECRET)
    make_user(app, email=UNVERIFIED, name="Uma Unverified", verified=False)
    make_user(app, email=RESETTER, name="Reese Resetter")  # the reset link's: a fuzzed reset may succeed
    with sessionmaker_of(app)() as db:
        account = open_account(
            db, program_code="FT", serial=31, legal_name="Table Top Ltd.", opened_on=date(2026, 6, 1)
        )
        entry = post(db, account, "assessment", 10000, date(2026, 7, 15), period_end=date(2026, 6, 30))
        post(db, account, "penalty", 2500, date(2026, 8, 5), period_end=date(2026, 6, 30))
        old_return = file_return(db, account, date(2026, 6, 30))
        old_return.status, old_return.notice_kind, old_return.notice_date = "assessed", "assessment", date(2026, 7, 15)
        old_return.processed_on = date(2026, 7, 15)
        tax_return = file_return(db, account, date(2026, 9, 30))
        tax_return.status, tax_return.notice_kind, tax_return.notice_date = "assessed", "assessment", date(2026, 11, 2)
        tax_return.processed_on = date(2026, 11, 2)
        waiting = file_return(db, account, date(2026, 10, 31))
        give(db, clock(), owner, account)
        target = give(db, clock(), clerk, account, role="delegate")
        pin, _ = enrolment.issue(
            db, clock(), account, role="viewer", issued_by_user_id=owner, invitee_name="Pat Pending"
        )
        consent = Consent(
            account_id=account.id,
            representative_name="Asa Asker",
            representative_email="asa@example.com",
            permissions="",
            starts_on=date(2026, 11, 23),
            status="requested",
            requested_at=clock(),
        )
        approved = Consent(
            account_id=account.id,
            representative_name="Al Approved",
            representative_email="al@example.com",
            permissions="view_financial",
            starts_on=date(2026, 11, 1),
            status="approved",
            requested_at=clock(),
        )
        db.add_all([consent, approved])
        thread = MessageThread(
            account_id=account.id,
            subject="Your return",
            to_user_id=None,
            started_by_user_id=None,
            started_at=clock(),
            last_post_at=clock(),
        )
        db.add(thread)
        db.flush()
        item = work.open_for_thread(db, clock(), thread, "Reply from Olive Owner: Your return")
        letter = mail.post(
            db,
            clock(),
            clock().date(),
            account=account,
            kind="letter",
            title="A paper letter",
            pdf=b"%PDF-1.4\n%%EOF\n",
        )
        letter.delivery = "paper"
        values = {
            "number": account.number,
            "grant_id": target.id,
            "pin_id": pin.id,
            "return_id": tax_return.id,
            "consent_id": consent.id,
            "thread_id": thread.id,
            "entry_id": entry.id,
            "code": "FT",
            "queue": "messages",
            "token": "not-a-token",
            "document_id": 1,
        }
        route_needs.extend_table(db, account, clock(), values)
        # tests/route_needs leaves an arrangement and a renewal waiting on the first account,
        # so a second one, with a balance and a licence, is where those journeys start.
        second = open_account(
            db, program_code="FT", serial=32, legal_name="Second Site Ltd.", opened_on=date(2026, 6, 1)
        )
        post(db, second, "assessment", 50000, date(2026, 7, 15), period_end=date(2026, 6, 30))
        licence = Licence(
            account_id=second.id,
            licence_number="FSL-2002",
            kind="Fuel seller's licence",
            issued_on=date(2025, 12, 1),
            expires_on=date(2026, 12, 31),
        )
        db.add(licence)
        give(db, clock(), owner, second)
        db.commit()
        ids = {
            "item": item.id,
            "letter": letter.id,
            "waiting": waiting.id,
            "second": second.number,
            "licence": licence.id,
        }
    administrator = StaffMember(app, clock, "administrator", "administrator@tra.example")
    officer = StaffMember(app, clock, "officer", "officer@tra.example")
    with sessionmaker_of(app)() as db:
        sent = messages.start_thread(
            db,
            clock(),
            clock().date(),
            staff=db.get(User, administrator.id),
            account=db.scalar(select(Account).where(Account.number == values["number"])),
            to_user=db.get(User, owner),
            subject="About your return",
            body="Please send the receipts.",
        )
        ids["thread"] = sent.thread.id
        # A request for an invitation letter (its work item sends one) and the emailed
        # links of an update subscription: to confirm one and to leave one.
        lettered = open_account(db, serial=33, legal_name="Ask Me Ltd.")
        asked = enrolment_requests.Asked(lettered.number, None, None, None, "Ria Ask", "ria@example.com", "1", "owner")
        ids["letter_item"] = work.for_enrolment_request(
            db, enrolment_requests.submit(db, clock(), asked, enrol_url="http://localhost/enrol/").id
        ).id
        waiting = subscriptions.subscribe(db, clock(), "wait@example.com", ["TL"], user_id=None, confirmed=False)
        subscriptions.subscribe(db, clock(), "reader@example.com", ["TL"], user_id=None, confirmed=True)
        reader = db.scalar(select(Subscription).where(Subscription.email == "reader@example.com"))
        confirm_token = subscriptions.confirm_token(app.secret_key, "wait@example.com", waiting, clock())
        unsubscribe_token = subscriptions.unsubscribe_token(app.secret_key, reader, clock())
        db.commit()
    overrides = {
        "staff.queues.send_letter": {"item_id": ids["letter_item"]},
        "subscriptions.confirm": {"token": confirm_token},
        "subscriptions.unsubscribe": {"token": unsubscribe_token},
        "staff.queues.": {"item_id": ids["item"]},
        "staff.mail.": {"item_id": ids["letter"]},
        "messages.": {"thread_id": ids["thread"]},
        "arrangements.": {"number": ids["second"]},
        "renewals.": {"number": ids["second"], "licence_id": ids["licence"]},
        "staff.team.": {"user_id": officer.id},
        "staff.": {"user_id": clerk},
    }
    world = World(values, overrides, staff_secret=administrator.secret)
    world.clients["owner"] = _signed_in(app, OWNER)
    _signed_in(app, OWNER)  # a second session, so "sign out my other sessions" is offered
    _signed_in(app, CLERK)  # an active session staff can end
    world.clients["administrator"] = administrator.client
    world.clients["anonymous"] = app.test_client()
    halfway = app.test_client()  # a person with an authenticator, between the password and the code
    assert Auth(halfway, app).sign_in(email=TWO_STEP).status_code == 303
    world.clients["second factor"] = halfway
    two_step = app.test_client()
    assert Auth(two_step, app).sign_in(email=TWO_STEP, code=pyotp.TOTP(TWO_STEP_SECRET).at(clock())).status_code == 303
    world.clients["two-step"] = two_step
    world.clients["unverified"] = _signed_in(app, UNVERIFIED)
    # Links that arrive by email: a password reset and an address to verify.
    anonymous = world.clients["anonymous"]
    anonymous.post(
        "/auth/forgot-password",
        data={
            "email": RESETTER,
            "csrf_token": csrf_from(anonymous.get("/auth/forgot-password").get_data(as_text=True)),
        },
    )
    register_token = csrf_from(anonymous.get("/auth/register").get_data(as_text=True))
    anonymous.post(
        "/auth/register",
        data={
            "name": "Reg Istrant",
            "email": "registrant@example.com",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "csrf_token": register_token,
        },
    )
    for email in outbox(app):
        if "/auth/" in email.body_text:
            world.extra_pages.append(("anonymous", link_in(email.body_text)))
    world.extra_pages += [
        ("administrator", _url(app, "staff.returns.show", return_id=ids["waiting"])),
        ("administrator", _url(app, "staff.messages.new", account=values["number"])),
        ("administrator", _url(app, "staff.queues.item", item_id=ids["letter_item"])),
    ]
    return world


def _signed_in(app, email):
    client = app.test_client()
    assert Auth(client, app).sign_in(email=email).status_code == 303
    return client


# Steps of a journey, taken after a first crawl, so that the later steps' forms show:
# (identity, endpoint, fields given; any other field takes the first value its form offers).
JOURNEY_STEPS = [
    ("owner", "filing.begin", {}),
    ("owner", "filing.figures", {"action": "continue"}),
    ("owner", "waivers.start", {}),
    ("owner", "waivers.reason", {"reason": "circumstances"}),
    ("owner", "objections.form", {"amount": ""}),
    ("owner", "renewals.confirm", {"details_correct": "yes", "locations": "1"}),
    ("owner", "direct_deposit.change", {"transit": "12345", "institution": "004", "bank_account": "1234567"}),
    ("owner", "objections.begin", {}),
    ("owner", "renewals.begin", {}),
    (
        "owner",
        "arrangements.propose",
        {"frequency": "monthly", "instalment": "250.00", "first_day": "1", "first_month": "12", "first_year": "2026"},
    ),
    ("administrator", "staff.accounts.letters_issue", {}),
    ("administrator", "staff.queues.take", {}),
]


# --- Forms, as the pages show them --------------------------------------------------------------


@dataclass
class Form:
    endpoint: str
    url: str  # where it posts
    page: str  # the page that shows it
    identity: str
    fields: dict  # name -> the values the page offers (hidden value, options, checkbox value, button value)


class _FormParser(HTMLParser):
    """Every <form> of a page (its targets: action, hx-post, formaction; and its fields),
    and the POST targets outside forms: hx-post elements (with the fields of the form
    they hx-include) and data-* attributes naming a URL for the page's script. The
    pages write htmx's attributes data-hx-*, which htmx reads as hx-*; so does this."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self.by_id, self.loose, self._form, self._select = [], {}, [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = {name.removeprefix("data-") if name.startswith("data-hx-") else name: value for name, value in attrs}
        for name, value in attrs.items():
            if name.startswith("data-") and (value or "").startswith("/"):
                self.loose.append((value, None))
        if tag == "form":
            self._form = {"method": (attrs.get("method") or "get").lower(), "targets": [], "fields": {}}
            self._form["targets"].append(attrs.get("action") or "")
            for name in ("hx-post", "hx-put", "hx-patch", "hx-delete"):
                if attrs.get(name):
                    self._form["targets"].append(attrs[name])
            self.forms.append(self._form)
            if attrs.get("id"):
                self.by_id[attrs["id"]] = self._form
            return
        if self._form is None:
            if attrs.get("hx-post"):
                self.loose.append((attrs["hx-post"], (attrs.get("hx-include") or "").lstrip("#")))
            return
        for name in ("formaction", "hx-post"):
            if attrs.get(name):
                self._form["targets"].append(attrs[name])
        name = attrs.get("name")
        if tag == "select" and name:
            self._select = self._form["fields"].setdefault(name, [])
        elif tag == "option" and self._select is not None:
            self._select.append(attrs.get("value") or "")
        elif tag in ("input", "button", "textarea") and name:
            offered = self._form["fields"].setdefault(name, [])
            kind = attrs.get("type", "text").lower()
            if attrs.get("value") is not None and kind not in ("file",):
                offered.append(attrs["value"])
            elif kind == "checkbox":
                offered.append("on")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def _forms_of(html: str) -> list[dict]:
    parser = _FormParser()
    parser.feed(html)
    forms = [form for form in parser.forms if form["method"] == "post"]
    for target, include in parser.loose:
        fields = parser.by_id.get(include, {}).get("fields", {}) if include else {}
        forms.append({"method": "post", "targets": [target], "fields": fields})
    return forms


def _get_rules(app):
    return [rule for rule in app.url_map.iter_rules() if "GET" in rule.methods and rule.endpoint != "static"]


def _post_rules(app):
    return [rule for rule in app.url_map.iter_rules() if "POST" in rule.methods]


def _url(app, endpoint, **values) -> str:
    with app.test_request_context():
        return url_for(endpoint, **values)


def _pages(app, world: World):
    for identity in ("owner", "administrator", "anonymous", "second factor", "two-step", "unverified"):
        for rule in _get_rules(app):
            values = world.args_for(rule.endpoint, rule.arguments)
            if values is not None:
                yield identity, _url(app, rule.endpoint, **values)
    yield from world.extra_pages


def _crawl(app, world: World, found: dict | None = None) -> dict[str, Form]:
    """GET every page of the URL map as each identity (and the world's extra pages), and
    keep each POST form the first time its endpoint is seen."""
    adapter = app.url_map.bind("localhost")
    found = {} if found is None else found
    for identity, page in _pages(app, world):
        response = world.clients[identity].get(page)
        if response.status_code != 200 or "html" not in response.content_type:
            response.close()
            continue
        for form in _forms_of(response.get_data(as_text=True)):
            for target in form["targets"]:
                path = urlsplit(target or page)
                try:
                    endpoint, _ = adapter.match(path.path, method="POST")
                except (NotFound, MethodNotAllowed):
                    continue
                if endpoint not in found:
                    url = path.path + (f"?{path.query}" if path.query else "")
                    fields = {k: v for k, v in form["fields"].items() if k != "csrf_token"}
                    found[endpoint] = Form(endpoint, url, page, identity, fields)
    return found


def _plain_answer(name: str) -> str:
    if re.search(r"litres|price|amount|instalment|total|number", name):
        return "100"
    if "email" in name:
        return "someone@example.com"
    return "A serious illness kept me from filing on time, as the letter from my doctor shows."


def _discover(app, world: World) -> dict[str, Form]:
    """Crawl; take each journey step whose form has shown, with plain answers; crawl
    again, until no new step can be taken."""
    found, taken = _crawl(app, world), set()
    while True:
        ready = [step for step in JOURNEY_STEPS if step[1] in found and step[1] not in taken]
        if not ready:
            return found
        for identity, endpoint, given_fields in ready:
            taken.add(endpoint)
            status = _take_step(world.clients[identity], found[endpoint], given_fields)
            assert status in (200, 303), (endpoint, status)
        _crawl(app, world, found)


def _take_step(client, form: Form, given_fields: dict) -> int:
    data = {
        name: offered[0] if offered and offered[0] else _plain_answer(name) for name, offered in form.fields.items()
    }
    response = client.post(form.url, data={**data, **given_fields, "csrf_token": _token(client, form)})
    response.close()
    return response.status_code


def _retake_steps(client, found: dict, form: Form) -> None:
    """Before a form's property: its journey's earlier steps again (an earlier
    property may have left the draft half-filled with hostile values)."""
    feature = form.endpoint.rsplit(".", 1)[0]
    for identity, endpoint, given_fields in JOURNEY_STEPS:
        if endpoint == form.endpoint:
            return
        if identity == form.identity and endpoint.rsplit(".", 1)[0] == feature and endpoint in found:
            _take_step(client, found[endpoint], given_fields)


# A page with a CSRF token for each identity, when the form's own page has moved on.
TOKEN_PAGES = {
    "owner": "/profile/",
    "two-step": "/profile/",
    "administrator": "/staff/",
    "anonymous": "/auth/sign-in",
    "second factor": "/auth/code",
    "unverified": "/auth/verify-email",
}


def _token(client, form: Form) -> str:
    for page in (form.page, TOKEN_PAGES[form.identity]):
        match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).get_data(as_text=True))
        if match:
            return match.group(1)
    raise AssertionError(f"no page with a CSRF token for {form.identity}")


# --- Hostile values -----------------------------------------------------------------------------

MARKUP = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><img src=x onerror=alert(1)>",
    'hx-get="/auth/sign-out" hx-trigger="load"',
    '" hx-get="/auth/sign-out" hx-trigger="load" x="',
    "' hx-post='/fuzz-inert' hx-trigger='load' x='",
    '<div hx-get="/fuzz-inert" hx-trigger="load">x</div>',
    '" data-hx-get="/auth/sign-out" data-hx-trigger="load" x="',
    '<div data-hx-post="/fuzz-inert" data-hx-trigger="load">x</div>',
    "<fuzzmark data-fuzzmark=1>",
    "</textarea><script>alert(1)</script>",
    "</title><fuzzmark>",
    "javascript:alert(1)",
    "{{7*7919}}",
    "${7*7919}",
    "{% print(7*7919) %}",
    "{{7*7}}",
    "${7*7}",
    "#{7*7}",
]
NUMBERS = [
    "²100000316",
    "4200 0003 1²",
    "¹²³",
    "-1",
    "-0",
    "0",
    "1e309",
    "-1e309",
    "1e-400",
    "0.1+0.2",
    "0.30000000000000004",
    "1,000.00",
    "1.000,00",
    "١٢٣",
    "１２３",
    "²",
    "NaN",
    "Infinity",
    "-inf",
    "0x10",
    "1_000",
    "99999999999999999999999999",
    "$5",
    "5.005",
    "9" * 400,
    "00000.01",
    " 12 ",
    "\u00a012",
    "+7",
    "1e5",
    "--5",
    "(5)",
]
DATES = [
    "2026-02-30",
    "0000-00-00",
    "99999-01-01",
    "2026-13-01",
    "2026-11-23T00:00",
    "23/11/2026",
    "2026-11-23\x00",
    "1900-01-01",
    "9999-12-31",
    "-2026-01-01",
    "2026-1-1",
    "today",
    "",
]
ODD = [
    "",
    " ",
    "\x00",
    "\x00abc",
    "a\x00b",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\u202eevil\u202c",
    "\u200f\u200e",
    "e\u0301" * 50,
    "😀" * 30,
    "\ufeff",
    "\uffff",
    "Robert'); DROP TABLE users;--",
    "' OR '1'='1",
    "../../etc/passwd",
    "%00",
    "%3Cscript%3E",
    "&lt;b&gt;",
    "\\",
    "null",
    "None",
    "true",
    "[]",
    "{}",
    "on",
    "y",
    "yes",
]
# Long values: past the form's limits, past a request line a server accepts (gunicorn: 4094
# bytes), past MAX_CONTENT_LENGTH for a form body.
HUGE = st.builds(
    lambda unit, times: unit * times,
    st.sampled_from(["A", "9", "<", "é", "😀", "\x00", "ﷺ", "²"]),
    st.sampled_from([256, 4301, 70_000]),
)
HOSTILE = st.one_of(
    st.sampled_from(MARKUP),
    st.sampled_from(NUMBERS),
    st.sampled_from(DATES),
    st.sampled_from(ODD),
    st.text(max_size=60),  # any unicode text (Hypothesis leaves surrogates out)
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=12),  # control characters, NUL included
    st.text(alphabet=st.characters(categories=["Mn", "Me", "Cf", "So", "Zs"]), max_size=20),
    HUGE,
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
MISSING = object()
# Tried first in every property, in every field at once (Hypothesis' explicit examples,
# on top of the generated ones), so the sharpest values never depend on the draw.
EVERY_TIME = [
    "\x00",
    "a\x00b",
    "²100000316",
    "9" * 4301,
    '"><img src=x onerror=alert(1)>',
    '" hx-get="/auth/sign-out" hx-trigger="load" x="',
    "<fuzzmark data-fuzzmark=1>",
    "{{7*7919}}",
    "2026-02-30",
    "1e309",
    "١٢٣",
    "\u202eevil",
]


def _field_values(offered: list[str]):
    """One field: left out, its own value, a hostile one, or repeated."""
    one = st.one_of(st.sampled_from(offered), HOSTILE) if offered else HOSTILE
    return st.one_of(st.just(MISSING), one, one, one, st.lists(one, min_size=2, max_size=3))


def _form_data(fields: dict):
    extra = st.dictionaries(
        st.sampled_from(
            ["id", "user_id", "account_id", "status", "amount_cents", "is_admin", "staff_role", "_method", "next"]
        ),
        HOSTILE,
        max_size=2,
    )
    return st.tuples(
        st.fixed_dictionaries({name: _field_values(offered) for name, offered in fields.items()}), extra
    ).map(lambda pair: {**pair[1], **{k: v for k, v in pair[0].items() if v is not MISSING}})


# --- What must hold -----------------------------------------------------------------------------

# Written on purpose by a refusal or a GET: the audit log, the brute-force counters
# (a wrong password is counted), and the bookkeeping columns of tests/db_snapshot.py.
COUNTED_ANYWAY = {"audit_events", "throttle_events"}


def _count_query(app) -> str:
    """Row counts of every table in one statement (anonymous sessions, made to hold a
    form's CSRF token, are bookkeeping too: tests/db_snapshot.py)."""

    def count(table):
        where = " WHERE user_id IS NOT NULL" if table == "auth_sessions" else ""
        return f"SELECT '{table}', COUNT(*) FROM {table}{where}"

    return " UNION ALL ".join(
        count(table.name) for table in Base.metadata.sorted_tables if table.name not in COUNTED_ANYWAY
    )


def _counts(app, query) -> dict:
    with sessionmaker_of(app)() as db:
        return dict(db.execute(text(query)).all())


def _full(app):
    from tests.db_snapshot import snapshot

    found = snapshot(app)
    for table in COUNTED_ANYWAY:
        found.pop(table, None)
    return found


class _InertCheck(HTMLParser):
    """Elements or attributes that could only have come from the hostile input."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.live, self._script = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "fuzzmark" or (tag == "img" and ("src", "x") in attrs):
            self.live.append(f"<{tag}>")
        if tag == "script":
            self._script = True
        for name, value in attrs:
            value = value or ""
            if name in ("onerror", "data-fuzzmark", "x"):
                self.live.append(f"{tag} {name}={value!r}")
            htmx = name.removeprefix("data-").startswith("hx-")  # htmx reads hx-* and data-hx-*
            if htmx and ("fuzz-inert" in value or value == "/auth/sign-out" or value == "load"):
                self.live.append(f"{tag} {name}={value!r}")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                self.live.append(f"{tag} {name}={value!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = False

    def handle_data(self, data):
        if self._script and "alert(1)" in data:
            self.live.append(f"<script>{data[:40]}")


def _assert_inert(response, sent: str):
    if "html" not in (response.content_type or ""):
        return
    page = response.get_data(as_text=True)
    check = _InertCheck()
    check.feed(page)
    assert not check.live, f"input rendered live: {check.live[:3]}"
    assert "55433" not in page or "55433" in sent, "a template expression in the input was evaluated (7*7919)"


@dataclass
class Tally:
    examples: int = 0
    statuses: dict = field(default_factory=dict)
    full_checks: int = 0

    def saw(self, status):
        self.examples += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


def _settings(examples: int):
    """Derandomised (the same cases on every run, so CI is reproducible) and without
    the example database (nothing written to .hypothesis/)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )


def _full_every(examples: int) -> int:
    """How often an example compares every row of every table (the others compare row
    counts, which is much cheaper): about 20 times a property, at most every 5th example."""
    return max(5, examples // 20)


def _fuzz_form(app, client, form: Form, examples: int, query, tally: Tally):
    token = _token(client, form)
    from tests.db_snapshot import changes

    @_settings(examples)
    @given(data=_form_data(form.fields), hx=st.booleans())
    def property_(data, hx):
        full = tally.examples % _full_every(examples) == 0
        before = _full(app) if full else _counts(app, query)
        headers = {"HX-Request": "true"} if hx else {}
        response = client.post(form.url, data={**data, "csrf_token": token}, headers=headers)
        response.get_data()
        tally.saw(response.status_code)
        assert response.status_code < 500, (form.endpoint, response.status_code)
        if 400 <= response.status_code < 500:
            if full:
                tally.full_checks += 1
                assert changes(before, _full(app)) == {}, (form.endpoint, response.status_code)
            else:
                assert _counts(app, query) == before, (form.endpoint, response.status_code)
        _assert_inert(response, repr(data))

    for value in EVERY_TIME:
        property_ = example(data=dict.fromkeys(form.fields, value), hx=False)(property_)
    # Plain answers with one field at a time NUL-bearing: a value every other check lets
    # through is what reaches the database (PostgreSQL refuses a NUL in text).
    plain = {
        name: offered[0] if offered and offered[0] else _plain_answer(name) for name, offered in form.fields.items()
    }
    for name in form.fields:
        property_ = example(data={**plain, name: "Ab\x00c"}, hx=False)(property_)
    property_()


# --- Query parameters ---------------------------------------------------------------------------

SOURCES = ("blueprints", "web")
_GET_CALL = re.compile(r'request\.(?:args|values)\.get\(\s*"(\w+)"')
_INDEX = re.compile(r'request\.args\[\s*"(\w+)"\s*\]')
_FORM_OF_ARGS = re.compile(r"(\w+)\(\s*(?:formdata=)?request\.args\b(?![.\[])")
_ALIAS = re.compile(r"(\w+)\s*=\s*request\.form if .* else request\.args")
_TRUTH = re.compile(r"if request\.args:")
_ANY_USE = re.compile(r"request\.(?:args|values)\b")


def _form_class_fields(name: str) -> set[str]:
    """The query parameters the WTForms class `name` reads, wherever in blueprints/ or
    web/ it is defined: each field's name, and a date input's three boxes besides."""
    import importlib

    from wtforms.fields.core import UnboundField

    from web.forms import DateInputField

    def read_by(attr: str, field: UnboundField) -> set[str]:
        named = getattr(field, "name", None) or field.kwargs.get("name") or attr
        if issubclass(field.field_class, DateInputField):
            return {named, *(f"{named}_{part}" for part in ("day", "month", "year"))}
        return {named}

    for path in sorted(p for top in SOURCES for p in (ROOT / top).rglob("*.py")):
        if re.search(rf"^class {name}\(", path.read_text(), re.M):
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            form_class = getattr(module, name)
            return {
                parameter
                for klass in form_class.__mro__
                for attr, value in vars(klass).items()
                if isinstance(value, UnboundField)
                for parameter in read_by(attr, value)
            }
    raise AssertionError(f"no form class {name} in {SOURCES}")


def scanned_parameters() -> set[tuple[str, str]]:
    """(file, parameter) for every query parameter the views read, found in the source.
    A use of request.args this scan does not understand fails, so none escapes."""
    found = set()
    for path in sorted(p for top in SOURCES for p in (ROOT / top).rglob("*.py")):
        # A call that ruff splits over lines, `Form(\n    request.args,`, is read as one line.
        source = re.sub(r"\(\s*\n\s*", "(", path.read_text())
        where = str(path.relative_to(ROOT))
        for line in source.splitlines():
            if not _ANY_USE.search(line):
                continue
            understood = False
            for pattern in (_GET_CALL, _INDEX):
                for name in pattern.findall(line):
                    found.add((where, name))
                    understood = True
            for form_name in _FORM_OF_ARGS.findall(line):
                found |= {(where, name) for name in _form_class_fields(form_name)}
                understood = True
            for alias in _ALIAS.findall(line):
                found |= {(where, name) for name in re.findall(rf'\b{alias}\.get\(\s*"(\w+)"', source)}
                understood = True
            understood = understood or bool(_TRUTH.search(line))
            assert understood, f"{where}: a use of request.args the scan does not understand: {line.strip()}"
    return found


# (file, parameter) -> [(endpoint, identity), ...]: where each is read, and by whom it is reached.
_TRANSACTION_FILTER = [("accounts.transactions", "owner"), ("accounts.transactions_csv", "owner")]
_AUDIT_FILTER = [("staff.audit.index", "administrator"), ("staff.audit.export", "administrator")]
_QUEUE_FILTER = [("staff.queues.queue", "administrator"), ("staff.queues.mine", "administrator")]
_DATE_BOXES = tuple(f"{end}{part}" for end in ("from", "to") for part in ("", "_day", "_month", "_year"))
QUERY_PARAMETERS = {
    ("blueprints/auth/__init__.py", "next"): [("auth.sign_in", "anonymous"), ("auth.confirm", "owner")],
    ("blueprints/auth/__init__.py", "reason"): [("auth.sign_in", "anonymous"), ("auth.signed_out", "anonymous")],
    ("blueprints/pages/__init__.py", "q"): [("home", "owner")],
    ("blueprints/pages/__init__.py", "after"): [("home", "owner")],
    ("blueprints/accounts/__init__.py", "after"): [("accounts.transactions", "owner")],
    **{("blueprints/accounts/__init__.py", name): _TRANSACTION_FILTER for name in ("type", "mode")},
    ("blueprints/accounts/__init__.py", "kind"): [("accounts.statement", "owner")],
    # The statement of account (issue 20) reads the filter's period and dates: a date
    # input's three boxes, or one year-month-day (a bookmarked filter).
    **{
        ("blueprints/accounts/__init__.py", name): [*_TRANSACTION_FILTER, ("accounts.statement", "owner")]
        for name in ("period", *_DATE_BOXES)
    },
    ("blueprints/filing/__init__.py", "amended"): [("filing.figures", "owner"), ("filing.start", "owner")],
    ("blueprints/documents/__init__.py", "about"): [("documents.index", "owner"), ("documents.upload", "owner")],
    ("blueprints/documents/__init__.py", "draft"): [("documents.upload", "owner")],
    ("blueprints/documents/__init__.py", "next"): [("documents.upload", "owner")],
    ("blueprints/staff/queues/__init__.py", "queue"): [("staff.queues.index", "administrator"), *_QUEUE_FILTER],
    ("blueprints/staff/ledger/__init__.py", "after"): [("staff.ledger.account", "administrator")],
    ("blueprints/staff/messages/__init__.py", "show"): [("staff.messages.index", "administrator")],
    ("blueprints/staff/messages/__init__.py", "account"): [("staff.messages.new", "administrator")],
    ("blueprints/staff/messages/__init__.py", "person"): [("staff.messages.new", "administrator")],
    ("blueprints/staff/accounts/__init__.py", "status"): [("staff.accounts.pins", "administrator")],
    ("blueprints/staff/audit/__init__.py", "before"): [("staff.audit.index", "administrator")],
    **{
        ("blueprints/staff/audit/__init__.py", name): _AUDIT_FILTER
        for name in ("account", "action", "person", *_DATE_BOXES)
    },
    **{("blueprints/staff/queues/__init__.py", name): _QUEUE_FILTER for name in ("assignee", "status")},
    ("blueprints/staff/__init__.py", "q"): [("staff.index", "administrator")],
    ("blueprints/staff/accounts/__init__.py", "q"): [("staff.accounts.index", "administrator")],
}


HX_VARIANTS = [
    {},
    {"HX-Request": "true"},
    {"HX-Request": "true", "HX-Target": "results"},
    {"HX-Request": "true", "HX-Boosted": "true"},
    {"HX-Request": "false"},
]


def _fuzz_parameter(app, clients: dict, parameter: str, targets, examples: int, query, tally: Tally):
    from tests.db_snapshot import changes

    @_settings(examples)
    @given(
        target=st.sampled_from(targets),
        value=st.one_of(HOSTILE, HOSTILE, st.lists(HOSTILE, min_size=2, max_size=3)),
        headers=st.sampled_from(HX_VARIANTS),
    )
    def property_(target, value, headers):
        url, identity = target
        full = tally.examples % _full_every(examples) == 0
        before = _full(app) if full else _counts(app, query)
        values = value if isinstance(value, list) else [value]
        response = clients[identity].get(url + "?" + urlencode([(parameter, v) for v in values]), headers=headers)
        response.get_data()
        tally.saw(response.status_code)
        assert response.status_code < 500, (url, parameter, response.status_code)
        if full:
            tally.full_checks += 1
            assert changes(before, _full(app)) == {}, (url, parameter)
        else:
            assert _counts(app, query) == before, (url, parameter)
        _assert_inert(response, repr(value))

    for target in targets:
        for value in EVERY_TIME:
            property_ = example(target=target, value=value, headers={})(property_)
    property_()


# --- The tests ----------------------------------------------------------------------------------


def test_the_inert_check_sees_live_markup_and_lets_escaped_markup_pass():
    """ASVS 5.0 1.2.1: the check used below finds injected elements and htmx attributes, not escaped text."""
    live = (
        '<p><img src=x onerror=alert(1)></p><div hx-get="/auth/sign-out" hx-trigger="load"></div><b>55433</b>'
        '<div data-hx-post="/fuzz-inert" data-hx-trigger="load"></div>'
    )
    check = _InertCheck()
    check.feed(live)
    assert len(check.live) >= 5
    escaped = (
        '<p>&lt;img src=x onerror=alert(1)&gt;</p><input value="hx-get=&#34;/auth/sign-out&#34; '
        'hx-trigger=&#34;load&#34;"><textarea>&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;</textarea>'
    )
    check = _InertCheck()
    check.feed(escaped)
    assert check.live == []


# POST routes no page of the running app shows a form for, each with why. Empty: the
# crawl (with the journeys' first steps) reaches every one; keep it that way.
UNREACHABLE: dict[str, str] = {}

# Cases per form and per query parameter. The issue asks for at least 500 each; that is
# about 14 minutes a backend on this machine (see the module's notes), so CI's fast part
# runs FAST_EXAMPLES and the long part (`--long`, `make proof`) runs 500.
FULL_EXAMPLES = 500
FAST_EXAMPLES = 25


@pytest.fixture
def fuzz_app(app_with):
    """The app with the sign-in limits out of reach: hundreds of wrong passwords typed
    into a form (the confirm and password forms name their own person) would otherwise
    lock the person out and leave the later properties nothing but 429s. The limits
    have their own tests (tests/test_identity.py, the brute-force suite)."""
    return app_with(SIGNIN_MAX_FAILURES=10**6, SIGNIN_CLIENT_MAX_FAILURES=10**6)


@pytest.fixture
def world(fuzz_app, clock):
    return _build_world(fuzz_app, clock)


@pytest.fixture
def fresh_client(fuzz_app, clock, world):
    """`fresh_client(identity)`: a client signed in as that identity anew, from its own
    address (each property gets one: a sign-out or a thousand wrong passwords typed
    by the property before stays with that property's client)."""
    app, made = fuzz_app, []

    def factory(identity: str):
        made.append(identity)
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.8.{len(made) // 200}.{len(made) % 200 + 1}"
        if identity in ("owner", "unverified"):
            assert Auth(client, app).sign_in(email=OWNER if identity == "owner" else UNVERIFIED).status_code == 303
        elif identity == "second factor":
            assert Auth(client, app).sign_in(email=TWO_STEP).status_code == 303
        elif identity == "two-step":
            clock.advance(seconds=30)  # an authenticator code is good once
            code = pyotp.TOTP(TWO_STEP_SECRET).at(clock())
            assert Auth(client, app).sign_in(email=TWO_STEP, code=code).status_code == 303
        elif identity == "administrator":
            clock.advance(seconds=30)
            token = csrf_from(client.get("/staff/sign-in").get_data(as_text=True))
            response = client.post(
                "/staff/sign-in",
                data={
                    "email": "administrator@tra.example",
                    "password": PASSWORD,
                    "csrf_token": token,
                    "code": pyotp.TOTP(world.staff_secret).at(clock()),
                },
            )
            assert response.status_code == 303, response.status_code
        else:
            assert identity == "anonymous", identity
        return client

    return factory


def test_the_crawl_finds_a_form_for_every_post_route(fuzz_app, world):
    """ASVS 5.0 2.2.1: the forms fuzzed below are those the running app shows (owner,
    staff administrator, anonymous, half-way through a sign-in, with an authenticator,
    unverified), and they cover every POST route of the URL map, so a new one cannot escape."""
    found = _discover(fuzz_app, world)
    assert not set(found) & set(UNREACHABLE)
    assert set(found) | set(UNREACHABLE) == {rule.endpoint for rule in _post_rules(fuzz_app)}


def test_the_parameter_table_is_every_query_parameter_the_source_reads():
    """ASVS 5.0 2.2.1: every query parameter a view reads (request.args, request.values
    and WTForms bound to request.args, in blueprints/ and web/) is in the fuzzed table."""
    assert scanned_parameters() == set(QUERY_PARAMETERS)


# The last step of a journey: a case that gets through it sends the return or request,
# after which the journey's other forms only answer "already sent" (409). They run last.
FINAL_STEPS = {
    "filing.check",
    "objections.check",
    "waivers.check",
    "renewals.check",
    "arrangements.check",
    "direct_deposit.check",
}


def _run_forms(app, world, fresh_client, examples):
    found, query, failures, report = _discover(app, world), _count_query(app), [], []
    for endpoint in sorted(found, key=lambda name: (name in FINAL_STEPS, name)):
        form, tally, started = found[endpoint], Tally(), time.perf_counter()
        try:
            client = fresh_client(form.identity)
            _retake_steps(client, found, form)
            _fuzz_form(app, client, form, examples, query, tally)
        except Exception as error:  # every form runs; each failure is listed at the end
            failures.append(f"{endpoint}: {error}\n" + "\n".join(getattr(error, "__notes__", [])))
        report.append(
            f"{endpoint}: {tally.examples} cases, {tally.full_checks} full snapshots, "
            f"{time.perf_counter() - started:.1f} s, {dict(sorted(tally.statuses.items()))}"
        )
        assert failures or tally.examples >= examples, (endpoint, tally.examples)
    print("\n".join(report))
    assert not failures, "\n\n".join(failures)


def _run_parameters(app, world, fresh_client, examples):
    query, failures, report = _count_query(app), [], []
    for (where, parameter), reached_by in sorted(QUERY_PARAMETERS.items()):
        clients = {identity: fresh_client(identity) for identity in {identity for _, identity in reached_by}}
        targets = []
        for endpoint, identity in reached_by:
            rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
            targets.append((_url(app, endpoint, **world.args_for(endpoint, rule.arguments)), identity))
        for url, identity in targets:
            # A first visit to a page with a form keeps its CSRF token in a new (anonymous)
            # session row: that is the visit's doing, not the parameter's.
            clients[identity].get(url).close()
        tally, started = Tally(), time.perf_counter()
        try:
            _fuzz_parameter(app, clients, parameter, targets, examples, query, tally)
        except Exception as error:
            failures.append(f"{where} {parameter}: {error}\n" + "\n".join(getattr(error, "__notes__", [])))
        report.append(
            f"{where} {parameter}: {tally.examples} cases, {tally.full_checks} full snapshots, "
            f"{time.perf_counter() - started:.1f} s, {dict(sorted(tally.statuses.items()))}"
        )
        assert failures or tally.examples >= examples, (where, parameter, tally.examples)
    print("\n".join(report))
    assert not failures, "\n\n".join(failures)


def test_hostile_input_in_every_form_is_refused_cleanly_and_rendered_inert(fuzz_app, world, fresh_client):
    """ASVS 5.0 2.2.1, 1.2.1, 1.3.7, 16.5.3 (CI's share: FAST_EXAMPLES cases a form):
    every form, hostile values in every field, a valid CSRF token: never 5xx; a 4xx
    changes nothing; markup, htmx attributes and template expressions come back inert."""
    _run_forms(fuzz_app, world, fresh_client, FAST_EXAMPLES)


def test_hostile_values_in_every_query_parameter_change_nothing_and_render_inert(fuzz_app, world, fresh_client):
    """ASVS 5.0 2.2.1, 1.2.1, 1.3.7, 16.5.3 (CI's share: FAST_EXAMPLES cases a parameter):
    every query parameter, hostile and repeated values, with and without htmx headers:
    never 5xx, nothing changes, markup and template expressions come back inert."""
    _run_parameters(fuzz_app, world, fresh_client, FAST_EXAMPLES)


@pytest.mark.long
def test_500_hostile_cases_in_every_form(fuzz_app, world, fresh_client):
    """ASVS 5.0 2.2.1, 1.2.1, 1.3.7, 16.5.3: as above, FULL_EXAMPLES (500) cases a form."""
    _run_forms(fuzz_app, world, fresh_client, FULL_EXAMPLES)


@pytest.mark.long
def test_500_hostile_cases_in_every_query_parameter(fuzz_app, world, fresh_client):
    """ASVS 5.0 2.2.1, 1.2.1, 1.3.7, 16.5.3: as above, FULL_EXAMPLES (500) cases a parameter."""
    _run_parameters(fuzz_app, world, fresh_client, FULL_EXAMPLES)
