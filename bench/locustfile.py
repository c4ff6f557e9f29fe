"""The portal's main journeys for locust (issue 8), weighted roughly like real use.

Run by bench/load.py, which makes the people (LOAD_PEOPLE: a JSON file of them) and
starts gunicorn; locust runs in its own process (gevent patches what it touches):

    LOAD_PEOPLE=people.json .venv/bin/locust -f bench/locustfile.py --headless -u 50 -r 5 \
        -t 4m --host http://127.0.0.1:PORT --csv out/locust --only-summary

A taxpayer (each locust user is a person of their own, so no two share a session)
signs in through the form, looks at the dashboard, searches it, opens an account's
transactions and filters them (htmx fragments, `HX-Request: true`), pages through
them, reads messages, keeps a return's draft, files a return now and then, uploads
a small PDF, and sometimes signs out and in again. A staff officer signs in with an
authenticator code, searches accounts and opens one. Every request checks its answer
(status, where a redirect goes, and a piece of the page only the right page has):
a wrong page is a failure. CSRF tokens are read from the pages, as a browser has them.

LOAD_MIX=deadline (issue 21, `bench/load.py --capacity`): instead of those taxpayers, filing
day's (DeadlineTaxpayer): visits of a sign-in, 8-16 page actions and a sign-out, each a
person's think time apart; see the class.

LOAD_STATUS: a JSON file written at the end with every status code seen, the requests
and failures of the whole run, how often each task ran, and the percentiles of all
requests and of the reads (GET) once every user had started (bench/load.py and the smoke
test read it). LOAD_OFFICER_USERS: how many of the users are officers (the rest are taxpayers). LOAD_TOUR=1: each user
first runs every one of its tasks once, so a short run covers them all (the smoke test).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
import time
from collections import Counter
from html import unescape
from typing import ClassVar

import pyotp
from fpdf import FPDF
from locust import HttpUser, between, events, task
from locust.stats import StatsEntry

with open(os.environ["LOAD_PEOPLE"]) as _f:
    PEOPLE = json.load(_f)

STATUS_CODES: Counter = Counter()
TOTALS: Counter = Counter()
TASKS_RUN: Counter = Counter()
_lock = threading.Lock()

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="(token|draft|next)" value="([^"]*)"')
PERIOD_OPTION = re.compile(r'<option value="(\d{4}-\d{2}-\d{2})"')
NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next"')
THREAD_LINK = re.compile(r'<a href="(/messages/\d+)">([^<]+)</a>')
BEGIN_FORM = re.compile(r'action="(/filing/\d+/\d{4}-\d{2}-\d{2}/begin)"')
FIGURES_LINK = re.compile(r'href="(/filing/\d+/\d{4}-\d{2}-\d{2}/figures)"')
HX = {"HX-Request": "true"}
OFFICER_USERS = int(os.environ.get("LOAD_OFFICER_USERS", "1"))
TOUR = os.environ.get("LOAD_TOUR") == "1"
MIX = os.environ.get("LOAD_MIX", "journeys")  # "journeys" (issue 8) or "deadline" (issue 21)
SERVER_KEEPALIVE_S = 2  # gunicorn's default --keep-alive, as `make run` runs it


@events.request.add_listener
def _count_status(response=None, exception=None, **_kwargs):
    """Over the whole run, ramp-up included (locust's own statistics may be reset after it)."""
    code = getattr(response, "status_code", None)
    with _lock:
        TOTALS["requests"] += 1
        if exception is not None:
            TOTALS["failures"] += 1
        if code is not None:
            STATUS_CODES[str(code)] += 1


def _percentiles(environment, method: str | None) -> dict:
    """p50/p95/p99 (ms) of locust's statistics (reset once every user has started) over every
    step, or over the steps of one method: locust's CSV has them per step and for all only."""
    merged = StatsEntry(environment.stats, method or "all", method or "")
    for (_name, entry_method), entry in environment.stats.entries.items():
        if method is None or entry_method == method:
            merged.extend(entry)
    return {
        "requests": merged.num_requests,
        "failures": merged.num_failures,
        **{f"p{q}_ms": merged.get_response_time_percentile(q / 100) or 0 for q in (50, 95, 99)},
    }


@events.quitting.add_listener
def _write_status(environment=None, **_kwargs):
    path = os.environ.get("LOAD_STATUS")
    if path:
        status = {
            "codes": dict(STATUS_CODES),
            "tasks": dict(TASKS_RUN),
            "requests": TOTALS["requests"],
            "failures": TOTALS["failures"],
        }
        if MIX == "deadline":
            status["mix"] = {"name": MIX, "think_s": THINK_SECONDS, "visit_actions": VISIT_ACTIONS}
        if environment is not None and environment.stats is not None:
            status["steady"] = {"all": _percentiles(environment, None), "reads": _percentiles(environment, "GET")}
        with open(path, "w") as f:
            json.dump(status, f)


def ran(name: str) -> None:
    with _lock:
        TASKS_RUN[name] += 1


def small_pdf(label: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=f"Receipt for the load run: {label}")
    return bytes(pdf.output())


class Page:
    """A response's text and the CSRF token in it."""

    def __init__(self, text: str):
        self.text = text

    @property
    def csrf(self) -> str | None:
        found = CSRF_FIELD.search(self.text) or CSRF_HEADER.search(self.text)
        return unescape(found.group(1)) if found else None


class PortalUser(HttpUser):
    abstract = True
    wait_time = between(1, 4)
    _last_answer = 0.0

    def fresh_connection(self):
        """Open a new connection when gunicorn may be closing the idle one (its keep-alive,
        2 s): a request sent just as the server closes is reset (about 1 in 600 requests
        sent 2 s apart, measured), and a browser resends it on a new connection. Behind
        nginx as docs/deploy.md sets it up (no upstream keep-alive), every request reaches
        gunicorn on a connection of its own, so this race does not arise there."""
        if time.monotonic() - self._last_answer > SERVER_KEEPALIVE_S - 0.5:
            self.client.close()

    def pause(self):
        """Between two requests of one task, where a person reads or types (DeadlineTaxpayer);
        here nothing: the journeys' steps go back to back, their think time between tasks."""

    def tour(self):
        """Every task of this kind of user once, in the order declared (LOAD_TOUR=1)."""
        if TOUR:
            for method in dict.fromkeys(self.tasks):
                method(self)

    def check(self, response, *, status: int = 200, contains: str | None = None, location: str | None = None) -> bool:
        """Mark a catch_response answer right or wrong: its status, what it holds, where it sends."""
        if not response.status_code:
            response.failure(f"no answer: {response.error!r}")
            return False
        if response.status_code != status:
            where = response.headers.get("Location", "")
            response.failure(f"status {response.status_code}, wanted {status}{' -> ' + where if where else ''}")
            return False
        if contains is not None and contains not in response.text:
            response.failure(f"the page lacks {contains!r}")
            return False
        if location is not None and location not in response.headers.get("Location", ""):
            response.failure(f"sent to {response.headers.get('Location')!r}, wanted {location!r}")
            return False
        response.success()
        return True

    def get(
        self,
        path: str,
        name: str,
        *,
        contains: str | None = None,
        status: int = 200,
        headers: dict | None = None,
        params: dict | None = None,
    ) -> Page | None:
        self.fresh_connection()
        with self.client.get(
            path, name=name, headers=headers, params=params, allow_redirects=False, catch_response=True
        ) as response:
            self._last_answer = time.monotonic()
            return Page(response.text) if self.check(response, status=status, contains=contains) else None

    def post(
        self,
        path: str,
        name: str,
        data,
        *,
        status: int = 303,
        location: str | None = None,
        contains: str | None = None,
        headers: dict | None = None,
        files=None,
    ):
        self.fresh_connection()
        with self.client.post(
            path, name=name, data=data, files=files, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            self._last_answer = time.monotonic()
            ok = self.check(response, status=status, location=location, contains=contains)
            return response if ok else None


class Taxpayer(PortalUser):
    abstract = MIX == "deadline"  # DeadlineTaxpayer instead
    _next = itertools.count()

    def on_start(self):
        person = PEOPLE["taxpayers"][next(Taxpayer._next) % len(PEOPLE["taxpayers"])]
        self.email, self.name = person["email"], person["name"]
        self.number = person["accounts"][0]
        self.periods: list[str] = []
        self.next_page: str | None = None
        self.sign_in()
        self.tour()

    def sign_in(self) -> bool:
        ran("sign in")
        self.client.cookies.clear()
        page = self.get("/auth/sign-in", "taxpayer: sign-in page", contains='name="password"')
        if page is None:
            return False
        self.pause()
        response = self.post(
            "/auth/sign-in",
            "taxpayer: sign in",
            {"email": self.email, "password": PEOPLE["password"], "next": "", "csrf_token": page.csrf},
            location="/",
        )
        return response is not None

    # --- The dashboard -------------------------------------------------------------

    @task(10)
    def dashboard(self):
        ran("dashboard")
        self.get("/", "taxpayer: dashboard", contains=self.number)

    @task(3)
    def dashboard_search(self):
        ran("dashboard search")
        self.get(
            "/", "taxpayer: dashboard search (fragment)", params={"q": "Load Lodging"}, headers=HX, contains=self.number
        )

    @task(2)
    def session_poll(self):
        ran("session poll")
        self.get(
            "/auth/session", "taxpayer: session timer poll", headers={"X-Background-Request": "1"}, contains="idle"
        )

    # --- Transactions ---------------------------------------------------------------

    @task(5)
    def transactions(self):
        ran("transactions")
        page = self.get(f"/accounts/{self.number}/transactions", "taxpayer: transactions page", contains="LD")
        if page is not None:
            self.periods = PERIOD_OPTION.findall(page.text)
            found = NEXT_PAGE.search(page.text)
            self.next_page = unescape(found.group(1)) if found else None

    @task(5)
    def filter_by_period(self):
        ran("filter by period")
        if not self.periods:
            return self.transactions()
        self.get(
            f"/accounts/{self.number}/transactions",
            "taxpayer: filter by period (fragment)",
            headers=HX,
            params={"mode": "period", "period": random.choice(self.periods[:4])},
            contains="<tr>",
        )

    @task(3)
    def filter_by_dates(self):
        ran("filter by dates")
        page = self.get(
            f"/accounts/{self.number}/transactions",
            "taxpayer: filter by dates (fragment)",
            headers=HX,
            params={"mode": "processed", "from": "2020-01-01", "to": "2099-12-31", "type": "all"},
            contains="<tr>",
        )
        if page is not None:
            found = NEXT_PAGE.search(page.text)
            self.next_page = unescape(found.group(1)) if found else None

    @task(3)
    def next_page_of_transactions(self):
        ran("next page")
        if not self.next_page:
            return self.filter_by_dates()
        self.get(self.next_page, "taxpayer: next page (fragment)", headers=HX, contains="<tr>")

    # --- Returns ----------------------------------------------------------------------

    @task(2)
    def returns_list(self):
        ran("returns list")
        self.get(f"/accounts/{self.number}/returns", "taxpayer: returns", contains=self.number)

    def open_return(self) -> str | None:
        """The filing page, then the oldest open period's figures (a draft started or
        continued); the figures page's path, or None."""
        page = self.get(f"/filing/{self.number}/", "taxpayer: file a return", contains="Periods to file")
        if page is None:
            return None
        link = FIGURES_LINK.search(page.text.split('id="filed-heading"')[0])
        if link is not None:
            return unescape(link.group(1))
        begin = BEGIN_FORM.search(page.text)
        if begin is None:
            return None  # every period filed: nothing to do, and nothing wrong
        self.pause()
        response = self.post(
            unescape(begin.group(1)), "taxpayer: begin a return", {"csrf_token": page.csrf}, location="/figures"
        )
        if response is None:
            return None
        return response.headers["Location"]

    @task(3)
    def save_draft(self):
        ran("save draft")
        figures = self.open_return()
        if figures is None:
            return
        page = self.get(figures, "taxpayer: return figures", contains='id="figures-form"')
        if page is None:
            return
        self.pause()
        self.post(
            figures.replace("/figures", "/autosave"),
            "taxpayer: autosave draft (fragment)",
            {"accommodation_price": f"{random.randint(1000, 90000)}.00", "exempt_price": "0"},
            headers={**HX, "X-CSRFToken": page.csrf},
            status=200,
            contains="aved",
        )

    @task(1)
    def file_return(self):
        ran("file return")
        figures = self.open_return()
        if figures is None:
            return
        page = self.get(figures, "taxpayer: return figures", contains='id="figures-form"')
        if page is None:
            return
        self.pause()
        if (
            self.post(
                figures,
                "taxpayer: return figures continue",
                {
                    "csrf_token": page.csrf,
                    "accommodation_price": f"{random.randint(1000, 90000)}.00",
                    "exempt_price": "0",
                    "action": "continue",
                },
                location="/check",
            )
            is None
        ):
            return
        check_path = figures.replace("/figures", "/check")
        page = self.get(check_path, "taxpayer: return check", contains='id="check-form"')
        if page is None:
            return
        token = dict(HIDDEN.findall(page.text)).get("token", "")
        self.pause()
        self.post(
            check_path,
            "taxpayer: file the return",
            {"csrf_token": page.csrf, "token": token, "declaration": "y"},
            location=f"/filing/{self.number}/done/",
        )

    # --- Messages and documents -------------------------------------------------------

    @task(3)
    def messages(self):
        ran("messages")
        page = self.get("/messages/", "taxpayer: messages", contains="Your load-test account")
        if page is None:
            return
        path, subject = random.choice(THREAD_LINK.findall(page.text))
        self.get(path, "taxpayer: message thread", contains=f'<h1 class="heading-l">{subject}</h1>')

    @task(1)
    def upload_pdf(self):
        ran("upload")
        path = f"/documents/{self.number}/upload"
        page = self.get(path, "taxpayer: upload page", contains='enctype="multipart/form-data"')
        if page is None:
            return
        hidden = dict(HIDDEN.findall(page.text))
        label = f"{self.email} {random.getrandbits(64):016x}"
        self.pause()
        self.post(
            path,
            "taxpayer: upload a PDF",
            {"csrf_token": page.csrf, "token": hidden.get("token", ""), "description": "Load run receipt", "about": ""},
            files={"files": ("receipt.pdf", small_pdf(label), "application/pdf")},
            location=f"/documents/{self.number}/",
        )

    # --- Signing out and in again -------------------------------------------------------

    @task(1)
    def sign_out_and_in(self):
        if self.sign_out():
            self.sign_in()

    def sign_out(self, page: Page | None = None) -> bool:
        """The sign-out button in the header of a page: of `page`, else of the profile page.
        False when there was no page to sign out from."""
        ran("sign out")
        page = page or self.get("/profile/", "taxpayer: profile", contains=self.email)
        if page is None:
            return False
        self.post("/auth/sign-out", "taxpayer: sign out", {"csrf_token": page.csrf}, location="/auth/signed-out")
        return True


# Filing day (issue 21). Think time: a person's pause between two page actions, uniform over
# 5-30 s (mean 17.5 s). On a tax portal people read before they act (a balance, the periods
# to file, a return's guidance, the declaration) and type figures from their own records
# into a return: seconds to tens of seconds a page, not the 1-4 s of the journeys above,
# which are a stress mix. GOV.UK's Service Manual ("Test your service's performance") asks
# for load tests built from capacity planning, naming self-assessment deadlines as the spike
# to plan for; the GDS Way ("Performance testing") asks for complete journeys as they are
# used in production, sign-in included. Shorter think times make each user heavier, so the
# count of users this mix holds depends on them: load.py prints them with the figure.
# LOAD_THINK_SECONDS="0,0" drops them: the server's cost per request, with no queue to wait in.
THINK_SECONDS = tuple(float(s) for s in os.environ.get("LOAD_THINK_SECONDS", "5,30").split(","))
# Page actions drawn per visit after the sign-in and the dashboard it lands on; with those
# and the sign-out a visit is 11-19 actions, so sign-ins are one action in about fifteen.
VISIT_ACTIONS = (8, 16)


class DeadlineTaxpayer(Taxpayer):
    """A taxpayer on filing day (LOAD_MIX=deadline). A visit: the sign-in form, the dashboard
    its answer leads to, then VISIT_ACTIONS page actions drawn by ACTIONS' weights (the
    account, its transactions and a filter or two, a return filed or its draft kept, a small
    PDF uploaded, the transactions' CSV now and then, messages), then the sign-out button of
    the last page. A think time separates every two page actions, and the steps of one action
    where a person reads or types (the sign-in form, a return's figures and its declaration,
    choosing the file to upload). One think time after signing out the user comes back as a
    new visit (a new sign-in): each locust user is a taxpayer in the middle of a visit all the
    time, so the count of users is the count of people using the portal at once (a real
    person's hours between visits would only have left the user idle). The existing tasks of
    Taxpayer are the actions; the session poll is left out (a page asks it only when a warning
    is due, after 13 idle minutes)."""

    abstract = MIX != "deadline"
    wait_time = between(*THINK_SECONDS)
    ACTIONS: ClassVar[dict[str, int]] = {
        "dashboard": 3,
        "account_summary": 2,
        "transactions": 3,
        "filter_by_period": 2,
        "filter_by_dates": 1,
        "next_page_of_transactions": 1,
        "returns_list": 1,
        "save_draft": 1,
        "file_return": 2,
        "upload_pdf": 1,
        "download_csv": 1,
        "messages": 1,
    }

    def on_start(self):
        self.touring = TOUR  # the tour (the smoke test) goes without think times
        self.last_page: Page | None = None
        self.signed_in = False
        self.actions_left = 0
        super().on_start()
        # The users start within the ramp-up, each with a visit: ending each first visit after
        # a random share of it spreads the later sign-ins, as a crowd's are, instead of in waves.
        self.actions_left = random.randint(0, VISIT_ACTIONS[1])

    def pause(self):
        if not self.touring:
            self.wait()

    def get(self, *args, **kwargs) -> Page | None:
        """Also keeps the last whole page (it has the header's sign-out button) for the sign-out."""
        page = super().get(*args, **kwargs)
        if page is not None and "data-sign-out" in page.text:
            self.last_page = page
        return page

    def sign_in(self) -> bool:
        """A visit begins: the sign-in form, then the dashboard its 303 leads to (a browser
        follows it at once)."""
        self.last_page = None
        self.signed_in = super().sign_in()
        self.actions_left = random.randint(*VISIT_ACTIONS)
        if self.signed_in:
            self.dashboard()
        return self.signed_in

    def end_visit(self):
        self.sign_out(self.last_page)
        self.signed_in = False

    def act(self):
        """The next page action of the visit: a sign-in, an action drawn by weight, or the sign-out."""
        if not self.signed_in:
            self.sign_in()
        elif self.actions_left > 0:
            self.actions_left -= 1
            name = random.choices(list(self.ACTIONS), weights=list(self.ACTIONS.values()))[0]
            getattr(self, name)()
        else:
            self.end_visit()

    def tour(self):
        """Every action once, then a sign-out and a new visit (LOAD_TOUR=1)."""
        if TOUR:
            for name in self.ACTIONS:
                getattr(self, name)()
            self.end_visit()
            self.sign_in()
        self.touring = False

    def account_summary(self):
        ran("account summary")
        self.get(f"/accounts/{self.number}/", "taxpayer: account summary", contains="Account details")

    def download_csv(self):
        ran("download CSV")
        self.get(f"/accounts/{self.number}/transactions.csv", "taxpayer: transactions CSV", contains="Processed date,")


# Only the visit: locust gives a subclass its bases' tasks too (Taxpayer's, weighted for the
# journeys mix), and the visit draws those itself.
DeadlineTaxpayer.tasks = [DeadlineTaxpayer.act]


class Officer(PortalUser):
    # None asked for (LOAD_OFFICER_USERS=0): no officers, rather than locust's weight share.
    abstract = OFFICER_USERS == 0
    fixed_count = OFFICER_USERS
    _next = itertools.count()

    def on_start(self):
        person = PEOPLE["officers"][next(Officer._next) % len(PEOPLE["officers"])]
        self.email, self.totp = person["email"], pyotp.TOTP(person["totp_secret"])
        self.sign_in()
        self.tour()

    def sign_in(self):
        ran("staff sign in")
        page = self.get("/staff/sign-in", "staff: sign-in page", contains='name="code"')
        if page is None:
            return
        self.post(
            "/staff/sign-in",
            "staff: sign in",
            {"email": self.email, "password": PEOPLE["password"], "code": self.totp.now(), "csrf_token": page.csrf},
            location="/staff/",
        )

    def a_taxpayer(self) -> dict:
        return random.choice(PEOPLE["taxpayers"])

    @task(2)
    def staff_home(self):
        ran("staff home")
        self.get("/staff/", "staff: home", contains='name="q"')

    @task(5)
    def search(self):
        ran("staff search")
        person = self.a_taxpayer()
        legal_name = person["name"].replace("Load Taxpayer", "Load Lodging")
        self.get(
            "/staff/", "staff: search (fragment)", headers=HX, params={"q": legal_name}, contains=person["accounts"][0]
        )

    @task(5)
    def open_account(self):
        ran("staff open account")
        person = self.a_taxpayer()
        number = person["accounts"][0]
        self.get(f"/staff/accounts/{number}", "staff: account", contains=number)
