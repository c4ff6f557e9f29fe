#!/usr/bin/env python3
"""A taxpayer's journey in a real browser (Debian's Chromium through Playwright) on
throttled networks: what each step costs in requests, bytes on the wire and time,
checked against the budgets of issue 7.

    .venv/bin/python bench/journey.py                      # unthrottled + 3g, slow4g, 2g; 3 runs
    .venv/bin/python bench/journey.py --profiles 3g --runs 5 --json journey.json

The portal runs under gunicorn on the benchmark database (`bench.server.portal_server`;
built first when missing, as bench/transactions.py builds it);
the person is `demo.BENCH_TAXPAYER_EMAIL` (`demo.ensure_bench_taxpayer`), and the journey
uses their first account (Tobacco Tax on the benchmark data: several pages of
transactions and a return to file). The journey signs in as their twin with an
authenticator, `demo.BENCH_TWO_STEP_EMAIL`, so the code step is measured too.

Every form sent with POST is a boosted htmx request whose answer is the next page
(web.follow, issue 21): one request, swapped into the body, its URL pushed.

The journey (`run_journey`), each step one measurement window:

 1. sign-in page         navigation  `page.goto('/auth/sign-in')`, cold cache.
 2. sign in → code page boosted     fill the form and press "Sign in": one POST, the code
                                     page in its answer.
 2b. code → dashboard    boosted     the authenticator's code, "Continue": one POST, the
                                     dashboard in its answer (its first visit).
 3. dashboard again      navigation  `page.goto('/')`: a repeat visit (static files must
                                     come from the cache; nothing else is asked for).
 4. transactions page    navigation  `page.goto('/accounts/<n>/transactions')`.
 5. filter: period end   swap        "By period end", the newest period, "Show
                                     transactions": htmx GETs the results fragment.
 6. filter: dates        swap        "By processed date range" 2000-01-01 to today: a full
                                     page of 50 rows and a "Next page" link.
 7. next page            swap        the "Next page" link (data-hx-get of the fragment).
 8. same filter again    swap        "Show transactions" again with the form as in step 6:
                                     the same URL, which the browser keeps with its ETag
                                     and asks again with If-None-Match (304 expected).
 9. periods to file      navigation  `page.goto('/filing/<n>/')`.
10. open the return      boosted     the first open period's "Continue" link (a draft
                                     exists) or "File" button (one POST, the figures in
                                     its answer).
11. return form step     boosted     the figures typed (unmeasured, then the page's live
                                     autosave/amounts requests are let finish), "Continue":
                                     one POST, the check page in its answer.
12. upload page          navigation  `page.goto('/documents/<n>/upload')`.
13. upload → documents   boosted     a one-page PDF, "Upload": one multipart POST, the
                                     next page in its answer.
14. sign out             boosted     "Sign out": one POST, the signed-out page in its answer.

Steps whose page offers nothing to do (no period, no "Next page", no open period)
are recorded as skipped, so `run_journey` also works on small test data.

Measured per step, from the DevTools protocol (a CDP session on the page,
Network.enable, the cache on: Network.setCacheDisabled false):

- requests: requests that went to the network (Network.requestWillBeSent not served
  from the memory or disk cache; each redirect hop counts; data: URLs are not
  requests). For swaps the session timer's background checks (X-Background-Request)
  are left out of the count, since the swap did not cause them (they are listed apart);
  for navigations they are counted (since issue 21 a page asks for none as it loads).
- bytes: bytes on the wire, the sum of Network.loadingFinished.encodedDataLength of
  those requests plus each redirect hop's encodedDataLength (response headers and
  compressed body, as received; what was uploaded is not counted). Split into header
  bytes (Network.responseReceived's encodedDataLength, what had arrived with the
  headers) and body bytes (the rest).
- document bytes: the same for the step's HTML document (navigation: the final
  document; boosted or swap: the htmx response that was swapped in).
- statuses: the status each network request got on the wire
  (Network.responseReceivedExtraInfo, which shows a revalidation's 304 where
  responseReceived shows the cached 200), from cache (memory or disk) counts, and
  static files fetched from the network.
- fcp_ms: navigations: `first-contentful-paint` (Paint Timing) relative to the
  navigation's start (the redirect included; redirect_ms gives the hop's share).
  Swaps and boosted steps: from the click to the second animation frame after
  `htmx:afterSwap` on the target (the frame with the new content has been produced).
- usable_ms: navigations: `loadEventEnd` of the navigation entry (relative to its
  start): the deferred scripts (htmx, portal.js) have run and htmx has processed the
  page at DOMContentLoaded. Swaps and boosted steps: from the click (a capturing
  `click` listener's performance.now()) to `htmx:afterSettle` on the swapped element
  (`#transactions-results`, or `body` for a boosted swap).
- network_ms: from the first of the step's requests being sent to the last byte of the
  last (CDP timestamps): what of the step's time the network took (JSON only).
- rows: table rows in the transactions results after a swap.

Budgets (`check_budgets`), KB read strictly as 1,000 bytes:

- a page's first visit (navigation or boosted swap to a page not seen before in this
  browser context): at most 4 requests and 30 KB on the wire in total, the HTML
  document at most 14 KB on the wire (headers included);
- a form sent with POST (sign-in, code, the return's steps, the upload, sign-out): one
  request (issue 21);
- a fragment swap (filter, page): one request, at most 2 KB on the wire (the 50-row
  case is step 6 and 7; the others are held to the same limit);
- on "3G" only: first contentful paint within 2.6 s of the navigation (navigations and
  boosted swaps, redirects included), a swap usable within 2.3 s;
- repeat visits: no static file from the network after the first step; the repeated
  filter answered 304.

Network profiles (Network.emulateNetworkConditions). Chromium emulates per request:
a response's headers are held until the latency has passed since the request was sent
and its bytes are paced at the throughput (uploads too). Two consequences: server time
shorter than the latency is hidden inside it rather than added to it (on a real 3G
link the two add up), and connection set-up costs nothing (gunicorn's sync workers
answer `Connection: close`, so on a real link every request would also pay a TCP
handshake). The timings are therefore a lower bound for these links.

    3g      DevTools' "3G":     50,000 B/s down, 50,000 B/s up, 2,000 ms latency
    slow4g  DevTools' "Slow 4G": 180,000 B/s down, 84,375 B/s up, 562.5 ms latency
    2g      250 kbit/s:          31,250 B/s down, 31,250 B/s up (the same, no
                                 DevTools preset), 300 ms latency
    (and an unthrottled pass, for the bytes without emulation)

The upload figures are DevTools' own for its presets. Each profile's run starts with
a fresh browser context (cold cache, no cookies); runs are interleaved across
profiles (run 1 of every profile, then run 2, ...; the unthrottled pass, whose bytes
do not vary, runs once unless --unthrottled-runs says more). The table gives the
median (nearest rank) and maximum of each figure across runs; a budget passes when it
passes in every run. Server and browser share the machine's two cores.

A default run takes about 4 minutes (a 3G journey alone about 46 s: every request
waits 2 s); `--runs 1` about 1.5 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = Path("/usr/bin/chromium")
# As tests/browser/conftest.py launches it (kept in step by hand: importing the test
# package here would need pytest).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_URL = f"sqlite:///{ROOT / 'bench' / 'data' / 'bench.db'}"


@dataclass(frozen=True)
class Profile:
    name: str
    label: str
    latency_ms: float
    download: int  # bytes per second
    upload: int

    def conditions(self) -> dict:
        return {
            "offline": False,
            "latency": self.latency_ms,
            "downloadThroughput": self.download,
            "uploadThroughput": self.upload,
        }


PROFILES = {
    "3g": Profile("3g", "DevTools '3G' (50,000 B/s, 2,000 ms)", 2000, 50_000, 50_000),
    "slow4g": Profile("slow4g", "DevTools 'Slow 4G' (180,000 B/s, 562.5 ms)", 562.5, 180_000, 84_375),
    "2g": Profile("2g", "2G (250 kbit/s = 31,250 B/s, 300 ms)", 300, 31_250, 31_250),
}
UNTHROTTLED = "unthrottled"

# Budgets (issue 7), bytes on the wire; "KB" read strictly.
PAGE_MAX_REQUESTS = 4
PAGE_MAX_BYTES = 30_000
DOCUMENT_MAX_BYTES = 14_000
SWAP_MAX_REQUESTS = 1
# 2,000 until issue 18 put an X-Request-ID header (48 B) on every response; a 50-row swap
# then measured 2,028 B, headers included (docs/performance.md).
SWAP_MAX_BYTES = 2_100
FCP_MAX_MS_3G = 2_600
SWAP_MAX_MS_3G = 2_300
TIMED_PROFILE = "3g"

STEP_TIMEOUT_MS = 90_000
QUIET_MS = 300  # no network event for this long (and nothing in flight) ends a step


# --- What the browser says about the network ------------------------------------------


@dataclass
class Request:
    id: str
    url: str
    method: str
    type: str
    background: bool
    hops: list = field(default_factory=list)  # redirects: (status, encodedDataLength)
    status: int | None = None
    wire_statuses: list = field(default_factory=list)  # responseReceivedExtraInfo, per hop
    mime: str = ""
    from_disk: bool = False
    from_memory: bool = False
    header_bytes: int = 0
    total_bytes: int = 0
    response_headers: dict | None = None  # HTML only (documents and fragments)
    sent_at: float | None = None  # CDP timestamps (seconds, monotonic)
    headers_at: float | None = None
    done_at: float | None = None
    finished: bool = False
    failed: str | None = None

    @property
    def from_cache(self) -> bool:
        return self.from_disk or self.from_memory

    @property
    def network_requests(self) -> int:
        return 0 if self.from_cache else 1 + len(self.hops)

    @property
    def wire_status(self) -> int | None:
        """The final response's status as the network gave it (304 on revalidation)."""
        if self.from_cache:
            return None
        if len(self.wire_statuses) > len(self.hops):
            return self.wire_statuses[len(self.hops)]
        return self.status

    @property
    def wire_bytes(self) -> int:
        return 0 if self.from_cache else self.total_bytes + sum(b for _s, b in self.hops)

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def summary(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "type": self.type,
            "background": self.background,
            "redirects": [{"status": s, "bytes": b} for s, b in self.hops],
            "status": self.wire_status if not self.from_cache else self.status,
            "from_cache": "memory" if self.from_memory else "disk" if self.from_disk else None,
            "mime": self.mime,
            "bytes": self.wire_bytes,
            "header_bytes": 0 if self.from_cache else self.header_bytes,
            "failed": self.failed,
            "response_headers": self.response_headers,
            "wait_ms": _ms(self.sent_at, self.headers_at),
            "download_ms": _ms(self.headers_at, self.done_at),
        }


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 1)


class NetworkLog:
    """Every request the page makes, from the CDP session's Network events."""

    def __init__(self, cdp):
        self.requests: dict[str, Request] = {}
        self.order: list[str] = []
        self.last_event = time.monotonic()
        self._extra: dict[str, list[int]] = {}
        handlers = {
            "Network.requestWillBeSent": self._sent,
            "Network.requestServedFromCache": self._served_from_cache,
            "Network.responseReceived": self._response,
            "Network.responseReceivedExtraInfo": self._extra_info,
            "Network.loadingFinished": self._finished,
            "Network.loadingFailed": self._failed,
        }
        for event, handler in handlers.items():
            cdp.on(event, handler)

    def _touch(self) -> None:
        self.last_event = time.monotonic()

    def _sent(self, p: dict) -> None:
        self._touch()
        url = p["request"]["url"]
        if url.startswith("data:"):
            return
        rid = p["requestId"]
        if rid in self.requests and p.get("redirectResponse"):
            r = self.requests[rid]
            r.hops.append((p["redirectResponse"]["status"], int(p["redirectResponse"].get("encodedDataLength") or 0)))
            r.url, r.method = url, p["request"]["method"]
            return
        headers = {k.lower(): v for k, v in p["request"].get("headers", {}).items()}
        r = Request(rid, url, p["request"]["method"], p.get("type", ""), "x-background-request" in headers)
        r.sent_at = p.get("timestamp")
        r.wire_statuses = self._extra.pop(rid, [])
        self.requests[rid] = r
        self.order.append(rid)

    def _served_from_cache(self, p: dict) -> None:
        self._touch()
        if p["requestId"] in self.requests:
            self.requests[p["requestId"]].from_memory = True

    def _response(self, p: dict) -> None:
        self._touch()
        r = self.requests.get(p["requestId"])
        if r is None:
            return
        resp = p["response"]
        r.status = resp["status"]
        r.mime = resp.get("mimeType", "")
        r.from_disk = bool(resp.get("fromDiskCache") or resp.get("fromPrefetchCache"))
        r.header_bytes = int(resp.get("encodedDataLength") or 0)
        r.headers_at = p.get("timestamp")
        if r.mime == "text/html":
            r.response_headers = resp.get("headers")

    def _extra_info(self, p: dict) -> None:
        self._touch()
        rid = p["requestId"]
        status = p.get("statusCode")
        if status is None:
            return
        if rid in self.requests:
            self.requests[rid].wire_statuses.append(status)
        else:  # ExtraInfo may come before requestWillBeSent
            self._extra.setdefault(rid, []).append(status)

    def _finished(self, p: dict) -> None:
        self._touch()
        r = self.requests.get(p["requestId"])
        if r is not None:
            r.total_bytes = int(p.get("encodedDataLength") or 0)
            r.done_at = p.get("timestamp")
            r.finished = True

    def _failed(self, p: dict) -> None:
        self._touch()
        r = self.requests.get(p["requestId"])
        if r is not None:
            r.failed = p.get("errorText") or "failed"
            r.finished = True

    def mark(self) -> int:
        return len(self.order)

    def since(self, mark: int) -> list[Request]:
        return [self.requests[rid] for rid in self.order[mark:]]

    def wait_quiet(self, page, mark: int, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
        """Until every request since the mark has finished and nothing happened for QUIET_MS.
        (Playwright delivers CDP events while a call waits, hence page.wait_for_timeout.)"""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            page.wait_for_timeout(50)
            pending = [r for r in self.since(mark) if not r.finished]
            if not pending and (time.monotonic() - self.last_event) * 1000 >= QUIET_MS:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"requests still in flight: {[r.url for r in pending]}")


# --- Steps ---------------------------------------------------------------------------------


@dataclass
class StepResult:
    name: str
    kind: str  # navigation | boosted | swap
    url: str = ""
    first_visit: bool = False  # the first time this browser context sees this page
    repeat: bool = False  # a repeat of an earlier step (304 / cache expected)
    requests: int = 0
    bytes: int = 0
    header_bytes: int = 0
    body_bytes: int = 0
    document_bytes: int | None = None
    document_header_bytes: int | None = None
    statuses: list = field(default_factory=list)
    from_cache: int = 0
    not_modified: int = 0
    static_downloads: int = 0
    background_requests: int = 0
    redirects: int = 0
    redirect_ms: float | None = None
    network_ms: float | None = None  # first request sent to last byte of the step's requests
    fcp_ms: float | None = None
    usable_ms: float | None = None
    rows: int | None = None
    post: bool = False  # a form sent with POST: one request with JavaScript (issue 21)
    note: str = ""
    skipped: str | None = None
    detail: list = field(default_factory=list)


def _fill_from(step: StepResult, found: list[Request], document: Request | None) -> StepResult:
    counted = [r for r in found if not r.from_cache and (step.kind != "swap" or not r.background)]
    step.requests = sum(r.network_requests for r in counted)
    step.bytes = sum(r.wire_bytes for r in counted)
    step.header_bytes = sum(r.header_bytes + sum(b for _s, b in r.hops) for r in counted)
    step.body_bytes = step.bytes - step.header_bytes
    step.statuses = [s for r in counted for s in [*(h[0] for h in r.hops), r.wire_status]]
    step.from_cache = sum(1 for r in found if r.from_cache)
    step.not_modified = step.statuses.count(304)
    step.static_downloads = sum(1 for r in counted if urlsplit(r.url).path.startswith("/static/"))
    step.background_requests = sum(1 for r in found if r.background and not r.from_cache)
    step.redirects = sum(len(r.hops) for r in counted)
    timed = [r for r in counted if r.sent_at is not None and r.done_at is not None]
    if timed:
        step.network_ms = _ms(min(r.sent_at for r in timed), max(r.done_at for r in timed))
    if document is not None:
        step.document_bytes = document.wire_bytes
        step.document_header_bytes = document.header_bytes + sum(b for _s, b in document.hops)
    step.detail = [r.summary() for r in found]
    return step


_NAVIGATION_TIMES = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  const f = performance.getEntriesByName('first-contentful-paint')[0];
  return {fcp: f ? f.startTime : null, load: n.loadEventEnd, dcl: n.domContentLoadedEventEnd,
          redirect: n.redirectEnd - n.redirectStart, redirectCount: n.redirectCount,
          htmx: typeof window.htmx !== 'undefined'};
}"""

# Before a click that htmx answers with a swap: note the click's time, the frame after
# the swap and the settle, on the element that matches `selector`.
_ARM_SWAP = """(selector) => {
  window.__journey = {selector: selector, click: null, painted: null, settled: null};
  if (window.__journeyListening) return;
  window.__journeyListening = true;
  const mine = (e) => window.__journey && e.target && e.target.matches && e.target.matches(window.__journey.selector);
  document.addEventListener('click', () => {
    const b = window.__journey;
    if (b && b.click === null) b.click = performance.now();
  }, {capture: true});
  document.addEventListener('htmx:afterSwap', (e) => {
    const b = window.__journey;
    if (!mine(e) || b.painted !== null) return;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (b.painted === null) b.painted = performance.now();
    }));
  });
  document.addEventListener('htmx:afterSettle', (e) => {
    const b = window.__journey;
    if (mine(e) && b.settled === null) b.settled = performance.now();
  });
}"""


def _wait_until(page, predicate: str, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    """Poll `predicate` from here: page.wait_for_function polls with eval in the page,
    which the portal's Content Security Policy (no 'unsafe-eval') forbids."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(predicate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_ms} ms for {predicate}")
        page.wait_for_timeout(20)


class Journey:
    def __init__(self, page, cdp, base_url: str, profile: Profile | None, log: NetworkLog):
        self.page, self.cdp, self.base, self.profile, self.log = page, cdp, base_url.rstrip("/"), profile, log
        self.seen: set[str] = set()
        self.steps: list[StepResult] = []

    def throttle(self, on: bool) -> None:
        if self.profile is None:
            return
        conditions = (
            self.profile.conditions()
            if on
            else {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        )
        self.cdp.send("Network.emulateNetworkConditions", conditions)

    def _page_key(self, url: str) -> str:
        return urlsplit(url).path

    def navigation(self, name: str, action, *, repeat: bool = False, note: str = "") -> StepResult:
        """`action()` navigates (goto, or a click inside page.expect_navigation)."""
        mark = self.log.mark()
        action()
        _wait_until(self.page, "() => performance.getEntriesByName('first-contentful-paint').length > 0")
        times = self.page.evaluate(_NAVIGATION_TIMES)
        self.log.wait_quiet(self.page, mark)
        found = self.log.since(mark)
        document = next((r for r in reversed(found) if r.type == "Document"), None)
        key = self._page_key(self.page.url)
        step = StepResult(
            name,
            "navigation",
            url=self.page.url,
            first_visit=key not in self.seen,
            repeat=repeat,
            fcp_ms=round(times["fcp"], 1),
            usable_ms=round(times["load"], 1),
            note=note,
        )
        if times["redirectCount"]:
            step.redirect_ms = round(times["redirect"], 1)
        self.seen.add(key)
        return self._done(_fill_from(step, found, document))

    def swap(
        self,
        name: str,
        selector: str,
        click,
        *,
        kind: str = "swap",
        repeat: bool = False,
        note: str = "",
        post: bool = False,
    ) -> StepResult:
        """`click()` makes htmx swap the element matching `selector` (`body`: a boosted swap)."""
        self.page.evaluate(_ARM_SWAP, selector)
        mark = self.log.mark()
        click()
        _wait_until(self.page, "() => window.__journey.settled !== null && window.__journey.painted !== null")
        b = self.page.evaluate("() => window.__journey")
        self.log.wait_quiet(self.page, mark)
        found = self.log.since(mark)
        swapped = [r for r in found if not r.from_cache and not r.background and r.type in ("XHR", "Fetch")]
        document = swapped[-1] if swapped else None
        step = StepResult(
            name,
            kind,
            url=self.page.url,
            repeat=repeat,
            note=note,
            fcp_ms=round(b["painted"] - b["click"], 1),
            usable_ms=round(b["settled"] - b["click"], 1),
            post=post,
        )
        if kind == "boosted":
            key = self._page_key(self.page.url)
            step.first_visit = key not in self.seen
            self.seen.add(key)
        if selector == "#transactions-results":
            step.rows = self.page.locator("#transactions-results tbody tr").count()
        return self._done(_fill_from(step, found, document))

    def page_after(self, name: str, click, *, note: str) -> StepResult:
        """A boosted form (POST): its answer is the next page, swapped into the body."""
        return self.swap(name, "body", click, kind="boosted", note=note, post=True)

    def skip(self, name: str, kind: str, reason: str) -> None:
        self.steps.append(StepResult(name, kind, skipped=reason))

    def _done(self, step: StepResult) -> StepResult:
        self.steps.append(step)
        return step


def run_journey(
    page,
    cdp,
    base_url: str,
    *,
    email: str,
    password: str,
    account_number: str,
    profile: Profile | None = None,
    filing_account: str | None = None,
    code=None,
) -> list[StepResult]:
    """The journey in a fresh page (fresh context: cold cache, not signed in) of Chromium,
    measured through `cdp` (`context.new_cdp_session(page)`). Throttled with `profile`
    (None: not throttled). The person must own `account_number` with more than 50
    transactions; the return steps use `filing_account` (default the same account) and
    are skipped when it has no period open for filing. `code()` gives the authenticator
    code when the person has one (the second sign-in step)."""
    base = base_url.rstrip("/")
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
    log = NetworkLog(cdp)
    j = Journey(page, cdp, base, profile, log)
    page.set_default_timeout(STEP_TIMEOUT_MS)
    page.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    j.throttle(True)

    # 1-3: sign in
    j.navigation("sign-in page", lambda: page.goto(f"{base}/auth/sign-in", wait_until="load"))
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)

    submit = page.locator("#sign-in-form button[type=submit]").click
    if code is None:
        step = j.page_after("sign in → dashboard", submit, note="POST /auth/sign-in, the dashboard in its answer")
    else:
        j.page_after("sign in → code page", submit, note="POST /auth/sign-in, the code page in its answer")
        page.locator("input[name=code]").fill(code())
        step = j.page_after(
            "code → dashboard",
            page.locator("main form button[type=submit]").first.click,
            note="POST /auth/code, the dashboard in its answer",
        )
    if urlsplit(step.url).path.startswith("/auth/"):
        raise RuntimeError(f"sign-in failed for {email}: still on {step.url}")
    j.navigation("dashboard again", lambda: page.goto(f"{base}/", wait_until="load"), repeat=True)

    # 4-8: transactions, filters, next page, the same filter again
    tx_url = f"{base}/accounts/{account_number}/transactions"
    j.navigation("transactions page", lambda: page.goto(tx_url, wait_until="load"))
    show = page.locator("#transactions-filter button[type=submit]")
    periods = page.locator("#filter-period option:not([value=''])")
    if periods.count():
        period = periods.first.get_attribute("value")
        page.locator("#filter-mode-period").check()
        page.locator("#filter-period").select_option(period)
        j.swap("filter: period end", "#transactions-results", show.click, note=f"period {period}")
    else:
        j.skip("filter: period end", "swap", "the account has no period ends")

    def choose_dates():
        if page.locator("#filter-period").count():
            page.locator("#filter-period").select_option("")  # the period list keeps no choice
        page.locator("#filter-mode").check()
        today = date.today()
        for box, start, end in (("day", 1, today.day), ("month", 1, today.month), ("year", 2000, today.year)):
            page.locator(f"#filter-from_{box}").fill(str(start))
            page.locator(f"#filter-to_{box}").fill(str(end))

    choose_dates()
    j.swap("filter: dates (50 rows)", "#transactions-results", show.click, note="processed 2000-01-01 to today")
    next_link = page.locator("#transactions-results a[rel=next]")
    if next_link.count():
        j.swap("next page", "#transactions-results", next_link.click)
    else:
        j.skip("next page", "swap", "one page of transactions only")
    j.swap("same filter again", "#transactions-results", show.click, repeat=True, note="as step 6: 304 expected")

    # 9-11: a return
    number = filing_account or account_number
    j.navigation("periods to file", lambda: page.goto(f"{base}/filing/{number}/", wait_until="load"))
    open_periods = page.locator("#open-periods tbody tr")
    if not open_periods.count():
        j.skip("open the return", "boosted", "no period open for filing")
        j.skip("return form step", "navigation", "no period open for filing")
        return j.steps
    row = open_periods.first
    continue_link = row.locator("a")
    if continue_link.count():
        j.swap(
            "open the return", "body", continue_link.first.click, kind="boosted", note="Continue link (draft exists)"
        )
    else:
        j.page_after(
            "open the return", row.locator("button[type=submit]").click, note="File button: the figures in its answer"
        )
    # Type the figures, unmeasured and unthrottled, and let the live amounts and autosave
    # requests finish.
    j.throttle(False)
    mark = log.mark()
    inputs = page.locator("#figures-form input.input")
    for i in range(inputs.count()):
        inputs.nth(i).fill("100")
    page.wait_for_timeout(1_700)  # autosave waits 1.5 s after the last keystroke
    log.wait_quiet(page, mark)
    j.throttle(True)

    step = j.page_after(
        "return form step",
        page.locator("#figures-form button[name=action][value=continue]").click,
        note="figures: the check page in its answer",
    )
    if not urlsplit(step.url).path.endswith("/check"):
        step.note += f" (but landed on {urlsplit(step.url).path}, statuses {step.statuses})"
    _upload_and_sign_out(j, page, base, number)
    return j.steps


def _upload_and_sign_out(j: Journey, page, base: str, number: str) -> None:
    """12-14: the upload page, a one-page PDF uploaded (the documents list in the
    upload's answer), and sign-out (the signed-out page in its answer)."""
    j.navigation("upload page", lambda: page.goto(f"{base}/documents/{number}/upload", wait_until="load"))
    page.locator("#upload-form input[type=file]").set_input_files(
        {"name": "receipt.pdf", "mimeType": "application/pdf", "buffer": one_page_pdf()}
    )
    j.page_after(
        "upload → documents",
        page.locator("#upload-form button[type=submit]").click,
        note="multipart POST, the next page in its answer",
    )
    j.page_after(
        "sign out",
        page.locator("header form[data-sign-out] button").click,
        note="POST /auth/sign-out, the signed-out page in its answer",
    )


class FreshCodes:
    """Authenticator codes for the bench's two-step person, as their phone shows them. The
    portal takes each code once: a run that comes round within the same 30 seconds
    waits for the next code (before the step, so the wait is not measured)."""

    def __init__(self, secret: str) -> None:
        import pyotp

        self.totp, self.last_window = pyotp.TOTP(secret), None

    def __call__(self) -> str:
        window = int(time.time() // 30)
        if window == self.last_window:
            time.sleep((window + 1) * 30 - time.time() + 0.1)
            window += 1
        self.last_window = window
        return self.totp.at(time.time())


def one_page_pdf() -> bytes:
    """A new receipt each run (the portal refuses a file it already has)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text=f"Receipt {time.time_ns()}")
    return bytes(pdf.output())


# --- Budgets ----------------------------------------------------------------------------------


@dataclass
class Budget:
    step: str
    budget: str
    limit: float
    measured: float | None
    ok: bool


def check_budgets(steps: list[StepResult], profile: Profile | str | None) -> list[Budget]:
    """Every budget that applies to each step (see the module's docstring)."""
    name = profile.name if isinstance(profile, Profile) else profile
    found: list[Budget] = []

    def at_most(step, what, limit, measured):
        found.append(Budget(step.name, what, limit, measured, measured is not None and measured <= limit))

    for index, step in enumerate(steps):
        if step.skipped:
            continue
        page_visit = step.kind in ("navigation", "boosted")
        if page_visit and step.first_visit:
            at_most(step, "first visit: requests", PAGE_MAX_REQUESTS, step.requests)
            at_most(step, "first visit: bytes", PAGE_MAX_BYTES, step.bytes)
            at_most(step, "HTML document bytes", DOCUMENT_MAX_BYTES, step.document_bytes)
        if step.post:
            at_most(step, "POST: one request", 1, step.requests)
        if step.kind == "swap":
            at_most(step, "swap: requests", SWAP_MAX_REQUESTS, step.requests)
            at_most(step, "swap: bytes", SWAP_MAX_BYTES, step.bytes)
        if name == TIMED_PROFILE:
            if page_visit:
                at_most(step, "3G: first contentful paint ms", FCP_MAX_MS_3G, step.fcp_ms)
            else:
                at_most(step, "3G: swap usable ms", SWAP_MAX_MS_3G, step.usable_ms)
        if index > 0:
            at_most(step, "repeat: static files from network", 0, step.static_downloads)
        if step.repeat and step.kind == "swap":
            found.append(
                Budget(
                    step.name,
                    "repeat: answered 304",
                    1,
                    step.not_modified,
                    step.not_modified >= 1 and step.requests == step.not_modified,
                )
            )
    return found


# --- The command line ---------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (as bench/transactions.py)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def one_run(
    browser, base_url: str, profile: Profile | None, *, email: str, password: str, account: str, code=None
) -> list:
    context = browser.new_context(viewport={"width": 1024, "height": 800}, locale="en-CA")
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        return run_journey(
            page, cdp, base_url, email=email, password=password, account_number=account, profile=profile, code=code
        )
    finally:
        context.close()


def _stat(values: list):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": round(percentile(values, 0.5)), "max": round(max(values))}


def summarise(profile_name: str, runs: list[list[StepResult]]) -> list[dict]:
    rows = []
    for i, first in enumerate(runs[0]):
        same = [run[i] for run in runs if i < len(run) and run[i].name == first.name and not run[i].skipped]
        if not same:
            rows.append({"step": first.name, "kind": first.kind, "skipped": first.skipped})
            continue
        budgets: dict[str, dict] = {}
        for run in runs:
            for b in check_budgets(run, profile_name):
                if b.step != first.name:
                    continue
                entry = budgets.setdefault(
                    b.budget, {"budget": b.budget, "limit": b.limit, "measured": [], "runs_ok": 0, "runs": 0}
                )
                entry["measured"].append(b.measured)
                entry["runs"] += 1
                entry["runs_ok"] += b.ok
        for entry in budgets.values():
            entry["ok"] = entry["runs_ok"] == entry["runs"]
        rows.append(
            {
                "step": first.name,
                "kind": same[0].kind,
                "first_visit": same[0].first_visit,
                "runs": len(same),
                "notes": sorted({s.note for s in same if s.note}),
                "requests": _stat([s.requests for s in same]),
                "bytes": _stat([s.bytes for s in same]),
                "header_bytes": _stat([s.header_bytes for s in same]),
                "document_bytes": _stat([s.document_bytes for s in same]),
                "document_header_bytes": _stat([s.document_header_bytes for s in same]),
                "fcp_ms": _stat([s.fcp_ms for s in same]),
                "usable_ms": _stat([s.usable_ms for s in same]),
                "redirect_ms": _stat([s.redirect_ms for s in same]),
                "network_ms": _stat([s.network_ms for s in same]),
                "rows": _stat([s.rows for s in same]),
                "from_cache": _stat([s.from_cache for s in same]),
                "not_modified": _stat([s.not_modified for s in same]),
                "static_downloads": _stat([s.static_downloads for s in same]),
                "background_requests": _stat([s.background_requests for s in same]),
                "statuses": sorted({" ".join(map(str, s.statuses)) for s in same}),
                "budgets": list(budgets.values()),
            }
        )
    return rows


def _fmt(stat, unit: str = "") -> str:
    if stat is None:
        return "–"
    if stat["median"] == stat["max"]:
        return f"{stat['median']:,}{unit}"
    return f"{stat['median']:,} ({stat['max']:,}){unit}"


def _budget_text(row: dict) -> str:
    failed = [b for b in row["budgets"] if not b["ok"]]
    if not row["budgets"]:
        return "–"
    if not failed:
        return f"pass ({len(row['budgets'])})"
    parts = []
    for b in failed:
        worst = max(v for v in b["measured"] if v is not None) if any(v is not None for v in b["measured"]) else None
        parts.append(
            f"**FAIL** {b['budget']} {round(worst):,} > {b['limit']:,} ({b['runs_ok']}/{b['runs']} runs ok)"
            if b["budget"] != "repeat: answered 304"
            else f"**FAIL** {b['budget']} ({b['runs_ok']}/{b['runs']} runs ok)"
        )
    return "; ".join(parts)


def markdown(results: dict) -> str:
    lines = [
        "| Profile | Step | Kind | Requests | Bytes | of which headers | Document bytes | Statuses "
        "| From cache | FCP ms | of which redirect | Usable ms | Rows | Budgets |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for profile_name, rows in results.items():
        for row in rows:
            if row.get("skipped"):
                lines.append(
                    f"| {profile_name} | {row['step']} | {row['kind']} | skipped: {row['skipped']} " + "| " * 10 + "|"
                )
                continue
            kind = row["kind"] + (", first visit" if row["first_visit"] else "")
            cells = [
                profile_name,
                row["step"],
                kind,
                _fmt(row["requests"]),
                _fmt(row["bytes"]),
                _fmt(row["header_bytes"]),
                _fmt(row["document_bytes"]),
                "; ".join(row["statuses"]),
                _fmt(row["from_cache"]),
                _fmt(row["fcp_ms"]),
                _fmt(row["redirect_ms"]),
                _fmt(row["usable_ms"]),
                _fmt(row["rows"]),
                _budget_text(row),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _why(row: dict, budget: str) -> str:
    """What the figures say about a failed budget."""
    if "paint" in budget and row.get("redirect_ms"):
        after = row["fcp_ms"]["max"] - row["redirect_ms"]["max"]
        return (
            f" (worst run: the redirect hop took {row['redirect_ms']['max']:,} ms of "
            f"{row['fcp_ms']['max']:,}; about {after:,} ms from the redirected request to the paint)"
        )
    if "usable" in budget and row.get("network_ms"):
        return (
            f" (the swap's request took {row['network_ms']['median']:,} ms on the network at the median, "
            f"{row['network_ms']['max']:,} at most; usable {row['usable_ms']['median']:,} / "
            f"{row['usable_ms']['max']:,} ms)"
        )
    if "bytes" in budget and row.get("header_bytes"):
        return (
            f" (worst run {row['bytes']['max']:,} B, of which {row['header_bytes']['max']:,} B response headers, "
            f"statuses {', '.join(row['statuses'])})"
        )
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument(
        "--profiles", default=",".join(PROFILES), help=f"comma-separated, of {', '.join(PROFILES)} (default: all)"
    )
    parser.add_argument("--runs", type=int, default=3, help="journeys per profile (default 3)")
    parser.add_argument(
        "--unthrottled-runs",
        type=int,
        default=1,
        help="journeys without throttling, for the bytes (default 1; 0: none)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--accounts", type=int, default=5_000, help="when building the data: accounts")
    parser.add_argument("--transactions", type=int, default=1_000_000, help="when building the data: ledger entries")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.profiles.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        parser.error(f"unknown profile(s) {unknown}; choose from {list(PROFILES)}")
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing (install Debian's chromium; never download a browser)")

    from playwright.sync_api import sync_playwright

    import demo
    from bench.server import portal_server
    from bench.transactions import ensure_data, ensure_database, machine_facts
    from domain.clock import system_now
    from domain.db import make_engine

    ensure_database(args.database_url)
    ensure_data(args.database_url, args.accounts, args.transactions)
    engine = make_engine(args.database_url)
    accounts = demo.ensure_bench_two_step(engine, system_now())
    codes = FreshCodes(demo.BENCH_TWO_STEP_TOTP_SECRET)
    machine = machine_facts(engine)
    engine.dispose()
    account = accounts[0]
    plan: list[tuple[str, Profile | None]] = [(UNTHROTTLED, None)] if args.unthrottled_runs > 0 else []
    plan += [(n, PROFILES[n]) for n in names]
    wanted = {name: (args.unthrottled_runs if profile is None else args.runs) for name, profile in plan}
    seconds: dict[str, list[float]] = {name: [] for name, _p in plan}
    all_runs: dict[str, list[list[StepResult]]] = {name: [] for name, _p in plan}
    started = time.monotonic()
    with portal_server(args.database_url, workers=args.workers) as base_url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            for run in range(max(wanted.values())):
                for name, profile in plan:
                    if run >= wanted[name]:
                        continue
                    t0 = time.monotonic()
                    steps = one_run(
                        browser,
                        base_url,
                        profile,
                        email=demo.BENCH_TWO_STEP_EMAIL,
                        password=demo.BENCH_TAXPAYER_PASSWORD,
                        account=account,
                        code=codes,
                    )
                    all_runs[name].append(steps)
                    seconds[name].append(round(time.monotonic() - t0, 1))
                    print(
                        f"run {run + 1}/{wanted[name]} {name}: {len(steps)} steps in {seconds[name][-1]} s",
                        file=sys.stderr,
                    )
            version = browser.version
        finally:
            browser.close()
    results = {name: summarise(name, runs) for name, runs in all_runs.items()}
    failed = [
        (name, row["step"], b["budget"])
        for name, rows in results.items()
        for row in rows
        for b in row.get("budgets", [])
        if not b["ok"]
    ]

    print(f"# Browser journey: account {account}, Chromium {version}\n")
    for name, profile in plan:
        print(
            f"- {name}: {profile.label + f', upload {profile.upload:,} B/s' if profile else 'no emulation'}; "
            f"{wanted[name]} run(s)"
        )
    print(
        "\nFigures: median (max) across runs, when they differ. Bytes are on the wire (headers and compressed "
        "body); the document's include its headers. FCP of a swap: the frame after it; usable: see the docstring. "
        "Budgets: each passes only if it passes in every run.\n"
    )
    print(markdown(results))
    print(f"\n{len(failed)} budget(s) failed" + (":" if failed else "."))
    for name, step, budget in failed:
        print(f"- {name} / {step}: {budget}{_why(next(r for r in results[name] if r['step'] == step), budget)}")
    print(f"\nTook {time.monotonic() - started:.0f} s.")

    if args.json:
        payload = {
            "date": date.today().isoformat(),
            "database_url": args.database_url,
            "account": account,
            "runs": wanted,
            "seconds_per_run": seconds,
            "chromium": version,
            "chromium_args": CHROMIUM_ARGS,
            "machine": machine,
            "profiles": {name: (asdict(p) if p else None) for name, p in plan},
            "budgets": {
                "page_max_requests": PAGE_MAX_REQUESTS,
                "page_max_bytes": PAGE_MAX_BYTES,
                "document_max_bytes": DOCUMENT_MAX_BYTES,
                "swap_max_requests": SWAP_MAX_REQUESTS,
                "swap_max_bytes": SWAP_MAX_BYTES,
                "fcp_max_ms_3g": FCP_MAX_MS_3G,
                "swap_max_ms_3g": SWAP_MAX_MS_3G,
            },
            "summary": results,
            "failed": [{"profile": n, "step": s, "budget": b} for n, s, b in failed],
            "all_runs": {name: [[asdict(s) for s in steps] for steps in runs] for name, runs in all_runs.items()},
        }
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
        print(f"Wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
