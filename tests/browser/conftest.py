"""Browser fixtures: a live server on a FrozenClock, Debian's Chromium through
Playwright, and checks every browser test gets for free (no Content Security
Policy violation, no script error, axe on the pages a test looks at).

Never downloads a browser: without /usr/bin/chromium the tests skip, except under
CI (CI=true), where a missing browser fails the run.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app import create_app
from domain.clock import FrozenClock
from tests.conftest import CHROMIUM, PASSWORD, UNDER_CI, outbox

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SERIOUS = {"serious", "critical"}
# Playwright's own waits (real time). The app's minutes pass on the two fake clocks.
TIMEOUT_MS = 10_000


@dataclass
class LiveServer:
    app: object
    clock: FrozenClock
    url: str

    def __call__(self, path: str = "/") -> str:
        return self.url + path

    def advance(self, **delta) -> None:
        """Move the server's clock only; see `Browser.advance` for both clocks."""
        self.clock.advance(**delta)

    def last_link(self, to: str, subject: str | None = None) -> str:
        """The link in the newest email to an address, read from the outbox table."""
        mails = [m for m in outbox(self.app) if m.to_address == to and (subject is None or m.subject == subject)]
        assert mails, f"no email to {to} in the outbox"
        match = re.search(r"https?://\S+", mails[-1].body_text)
        assert match, "the email has no link"
        return match.group(0)


@pytest.fixture
def live_server(sqlite_template, clock, tmp_path):
    """The app on 127.0.0.1 (a free port), SQLite only, in a daemon thread."""
    path = tmp_path / "portal.db"
    shutil.copy(sqlite_template, path)
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
            "DATABASE_URL": f"sqlite:///{path}",
            "CLOCK": clock,
            "OUTBOX_THREAD": False,
            "SERVICE_HOURS": "always",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 1024,
            "DOCUMENT_DIR": str(tmp_path / "documents"),
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PUBLIC_BASE_URL"] = url  # links in emails open on this server
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(app=app, clock=clock, url=url)
    server.shutdown()
    thread.join(5)
    server.server_close()
    app.extensions["portal.engine"].dispose()


@pytest.fixture(scope="session")
def playwright_browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (install Debian's chromium package; never download a browser)"
        if UNDER_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Browser:
    """New contexts and pages, watched for CSP violations and script errors; axe and
    screenshots on demand. Problems fail the test at teardown; axe findings are listed."""

    browser: object
    server: LiveServer
    test_name: str
    contexts: list = field(default_factory=list)
    csp_errors: list = field(default_factory=list)
    script_errors: list = field(default_factory=list)
    axe_findings: list = field(default_factory=list)
    axe_notes: list = field(default_factory=list)  # moderate and minor: reported, not failed
    scriptless: list = field(default_factory=list)  # the contexts with JavaScript off
    shots: int = 0

    def context(self, javascript: bool = True):
        ctx = self.browser.new_context(
            java_script_enabled=javascript,
            viewport={"width": 1024, "height": 800},
            base_url=self.server.url,
            locale="en-CA",
        )
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.set_default_navigation_timeout(TIMEOUT_MS)
        # Where a violation came from (the browser's own console error says only what).
        ctx.add_init_script(
            "document.addEventListener('securitypolicyviolation', function (e) {"
            " console.error('Content Security Policy violation: ' + e.violatedDirective + ' at '"
            " + e.sourceFile + ':' + e.lineNumber + ':' + e.columnNumber); });"
        )
        ctx.on("console", self._console)
        ctx.on("weberror", lambda error: self.script_errors.append(str(error.error)))
        self.contexts.append(ctx)
        if not javascript:
            self.scriptless.append(ctx)
        else:
            new_page = ctx.new_page
            ctx.new_page = lambda: _goto_after_htmx(new_page())
        return ctx

    def page(self, javascript: bool = True):
        return self.context(javascript).new_page()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            page = message.page.url if message.page else "?"
            self.csp_errors.append(f"on {page}: {message.text} (from {message.location.get('url')})")

    def advance(self, page, **delta) -> None:
        """Move the server's FrozenClock and the page's emulated clock together; due
        timers in the page fire once (Playwright's fast_forward)."""
        from datetime import timedelta

        self.server.advance(**delta)
        page.clock.fast_forward(int(timedelta(**delta).total_seconds() * 1000))

    def shot(self, page, step: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.test_name}-{self.shots:02d}-{step}.png"
        # caret="initial": hiding the caret leaves style="" on inputs, which htmx then
        # copies onto the next page's inputs, a (test-made) CSP violation.
        page.screenshot(path=str(path), full_page=True, caret="initial")
        return path

    def check(self, page, step: str, axe: bool = True) -> None:
        """Screenshot the page and run axe on it. axe needs JavaScript in the page: with
        it off, Playwright's evaluate never answers (no timeout applies), so a page
        without scripts is only photographed; its JavaScript-on twin has the axe run."""
        self.shot(page, step)
        if not axe or page.context in self.scriptless:
            return
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(page)
        for violation in results.response["violations"]:
            nodes = [n.get("target") for n in violation.get("nodes", [])]
            line = (
                f"[{step}] {page.url}: {violation.get('impact')} {violation['id']}: {violation['help']}"
                f" at {json.dumps(nodes)}"
            )
            (self.axe_findings if violation.get("impact") in SERIOUS else self.axe_notes).append(line)

    def problems(self) -> list[str]:
        found = []
        if self.csp_errors:
            found.append("Content Security Policy violations:\n  " + "\n  ".join(self.csp_errors))
        if self.script_errors:
            found.append("script errors:\n  " + "\n  ".join(self.script_errors))
        if self.axe_findings:
            found.append("axe serious/critical violations:\n  " + "\n  ".join(self.axe_findings))
        return found


def _goto_after_htmx(page):
    """A boosted click (a form's button, a link) is an htmx request, not a navigation:
    Playwright's click returns before it is answered, and a `goto` straight after it
    would cancel it (a sign-out that never reached the server). So every `goto`
    first waits for htmx's request in flight, as a person waits for the page."""
    goto = page.goto

    def goto_when_idle(url, **kwargs):
        if page.url.startswith("http"):
            page.wait_for_function("() => !document.querySelector('.htmx-request')")
        return goto(url, **kwargs)

    page.goto = goto_when_idle
    return page


@pytest.fixture
def browser(playwright_browser, live_server, request):
    watcher = Browser(
        browser=playwright_browser, server=live_server, test_name=re.sub(r"\W+", "-", request.node.name).strip("-")
    )
    yield watcher
    for ctx in watcher.contexts:
        ctx.close()
    if watcher.axe_notes:
        print("axe, moderate or minor:\n  " + "\n  ".join(watcher.axe_notes))
    problems = watcher.problems()
    if problems:
        print("\n".join(problems))
        pytest.fail("\n".join(problems), pytrace=False)


# --- Steps shared by the journeys ----------------------------------------------


def sign_in(page, email: str, password: str = PASSWORD, expect_heading: str | None = "Welcome") -> None:
    from playwright.sync_api import expect

    page.goto("/auth/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    if expect_heading:
        expect(page.get_by_role("heading", level=1)).to_contain_text(expect_heading)


def settled(page) -> None:
    """Wait until htmx has finished every swap: no request, swap or settle under way
    (what a swap's after-settle handlers do has happened by then)."""
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")


def csrf_token(page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def session_state(page) -> dict:
    """The server's view of this browser's session; asking is not activity."""
    response = page.request.get("/auth/session", headers={"X-Background-Request": "1"})
    assert response.ok
    return response.json()


def extend_session(page) -> dict:
    """Activity on the server without touching the page (as another click would be)."""
    response = page.request.post("/auth/session/extend", headers={"X-CSRFToken": csrf_token(page)})
    assert response.ok, response.text()
    return response.json()


def fill_date(page, legend: str, day=None) -> None:
    """Type a date (or nothing) into the day, month and year boxes of the date input
    whose legend is `legend`, as a person does."""
    group = page.get_by_role("group", name=legend)
    values = (str(day.day), str(day.month), str(day.year)) if day else ("", "", "")
    for label, value in zip(("Day", "Month", "Year"), values, strict=True):
        group.get_by_label(label, exact=True).fill(value)
