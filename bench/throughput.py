#!/usr/bin/env python3
"""Throughput of the portal under gunicorn with a load generator on loopback
(issue 7, item 3): the transactions fragment and the dashboard fragment against
a bare Flask route answering the same bytes, measured alternately in one run;
their latency at 16 connections; and a 90/10 read/write mix on SQLite with
several workers, which must not meet "database is locked".

    .venv/bin/python bench/throughput.py                       # SQLite, under 3 minutes
    .venv/bin/python bench/throughput.py --postgres --json /tmp/throughput.json
    .venv/bin/python bench/throughput.py --workers 3 --rounds 2 --duration 5

Budgets: the view's throughput at least 60% of the bare route's (transactions
fragment and dashboard each, as the ratio over the whole run), and p99 latency
at most 50 ms at 16 connections on SQLite (the median of the rounds' p99s
counts; the JSON also says whether every round met it); the mix:
no "database is locked" (nor any OperationalError) in the server's log, no 5xx.

How:
- The portal runs under gunicorn the way `make run` starts it (bench/server.py),
  but with --workers N (default: the machine's cores, os.cpu_count()) of one
  thread each for the reads (the mix also runs make run's 2 workers x 4
  threads), on the benchmark database (built by bench/transactions.py's
  `ensure_database`/`ensure_data` when missing). The benchmark taxpayer
  (`demo.BENCH_TAXPAYER_EMAIL`, 3 accounts) signs in through the form.
- Requests: wrk (Debian's /usr/bin/wrk) drives bench/wrk/portal.lua, which
  sends what htmx in a browser sends (the session Cookie, `HX-Request: true`,
  `Accept-Encoding: br, gzip`) and rotates over a plan of real URLs found
  before the run: per account the first page of all processed transactions,
  the next two pages by the `after` cursor the fragments link to, and one
  period (the second newest the filter offers): 12 transactions URLs. The
  dashboard target is the accounts list fragment `/` with HX-Request.
- The bare route (bench/bare_app.py): a Flask application with one route and no
  database, session, CSRF, gate, template, security header or compression,
  under gunicorn with the same workers, that answers each of those URLs with
  the exact bytes the portal gave for it (captured before the run,
  uncompressed, text/html). wrk sends it the same plan, so the two answer the
  same URLs with the same sizes; the view also compresses when asked (it says
  which encoding it used; the transfer sizes are in the JSON).
- Rounds: each round measures transactions-bare, transactions-view,
  dashboard-bare, dashboard-view (reversed every other round, so a drift of
  the machine's speed hits both sides alike), each for --duration seconds
  at --connections (16) with 2 wrk threads, after a warm-up of every target.
  The ratio is view req/s over bare req/s: per round (the adjacent pair) and
  over the run (all requests over all seconds).
- Latency: wrk's own histogram (1 us bins; its percentile is the sample at rank
  round(p*n + 0.5), nearest rank or the one after), closed loop: 16 connections
  each send their next request when the answer comes.
- CPU: for each measurement, the machine's busy share (/proc/stat) and who
  used it (every process's /proc/<pid>/stat before and after): the server
  (the gunicorn processes on that port; also per request), PostgreSQL's
  server processes, wrk (getrusage of children), other processes, and the
  rest ("kernel": busy time charged to no process, mostly loopback network
  work in softirq). On 2 cores wrk and the kernel compete with the server. A
  measurement where other processes took more than 0.2 cores is measured
  again after waiting for quiet, within --retry-budget seconds (default 30);
  the discarded ones are in the JSON, and a warning says when disturbed
  figures remain. --wait-quiet waits for a quiet machine before starting.
- The mix (--mix "2x4,4x1": workers x threads, the first as `make run`): a
  fresh portal server, 16 connections, every 10th request of each wrk thread a
  write, the rest the reads above and the dashboard. The write is the return
  form's autosave (POST /filing/<number>/<period end>/autosave with the CSRF
  token in X-CSRFToken, as htmx sends it) on the taxpayer's open Tobacco Tax
  period: each one UPDATEs the person's draft with a new number, one row that
  every writer contends for. Every answer's status is counted by class; the
  answers saying "Draft saved at" are counted; afterwards the draft must hold a
  number that wrk sent, and the gunicorn log is searched for "database is
  locked", "OperationalError", "Bookkeeping write failed" and tracebacks. A draft
  the run made is deleted afterwards and one that was there is put back as it
  was, so the next run (or another benchmark's journey) finds the same.

The JSON (--json) holds every measurement, the captured sizes, the machine
(nproc, CPU model, memory, load average at start), the budgets and pass/fail.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, select, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import demo  # noqa: E402
from bench.bare_app import bare_server  # noqa: E402
from bench.server import portal_server, request, sign_in  # noqa: E402
from bench.transactions import ensure_data, ensure_database, machine_facts  # noqa: E402
from domain import drafts as drafts_module  # noqa: E402
from domain import filing  # noqa: E402
from domain.clock import system_now  # noqa: E402
from domain.db import make_engine  # noqa: E402
from models import Account, Draft, User  # noqa: E402

TARGET_RATIO = 0.60
TARGET_P99_MS = 50.0
# For reference, no budget: the cheapest signed-in request (the session timer's poll:
# the session load, the access gate and a little JSON), against the bare route
# answering its bytes. No view that checks who is asking can do better than this.
FLOOR = "session poll"
FLOOR_PATH = "/auth/session"
PAGES = ("transactions", "dashboard", FLOOR)
DEFAULT_URL = f"sqlite:///{ROOT / 'bench' / 'data' / 'bench.db'}"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/portal_bench"
LUA = ROOT / "bench" / "wrk" / "portal.lua"
ACCEPT_ENCODING = "br, gzip"
WRITE_EVERY = 10  # 90/10
DISTURBED_CORES = 0.2  # CPU of other processes during a measurement that makes it disturbed


def disturbance(result: dict) -> float:
    """Cores taken by others: other processes, and busy time charged to no process
    (processes that ended within the window are not seen; on loopback the network
    work is charged to the processes, so this is near 0 on a quiet machine)."""
    return result["cpu"]["other_cores"] + result["cpu"]["unattributed_cores"]


LOG_PATTERNS = {
    "database is locked": re.compile(r"database is locked", re.I),
    "OperationalError": re.compile(r"OperationalError"),
    "Bookkeeping write failed": re.compile(r"Bookkeeping write failed"),
    "Traceback": re.compile(r"^Traceback", re.M),
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- Machine and CPU ---------------------------------------------------------------


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def wait_for_quiet(limit: float, busy_below: float = 0.15) -> float:
    """Wait (at most `limit` seconds) until the machine is quiet: under `busy_below` of
    its CPUs busy over 2 s. The seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        busy0, total0 = machine_busy()
        time.sleep(2)
        busy1, total1 = machine_busy()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) < busy_below:
            break
    return time.monotonic() - started


def gunicorn_pids(port: int) -> list[int]:
    """The gunicorn processes (master and workers) bound to this port."""
    needle = f"127.0.0.1:{port}"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"gunicorn" in a for a in args[:2]) and needle.encode() in args:
            found.append(int(entry.name))
    return found


def process_cpu() -> dict[int, tuple[str, float]]:
    """(name, CPU seconds so far) of every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        found[int(entry.name)] = (head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return found


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- wrk -----------------------------------------------------------------------------


@dataclass
class Plan:
    headers: dict
    reads: list[str]
    writes: list[tuple[str, str]] = field(default_factory=list)  # (path, body with {n})
    write_headers: dict = field(default_factory=dict)
    write_every: int = 0
    count_status: bool = False

    def save(self, path: Path) -> Path:
        lines = [f"header\t{k}\t{v}" for k, v in self.headers.items()]
        lines += [f"read\tGET\t{p}" for p in self.reads]
        lines += [f"write\tPOST\t{p}\t{body}" for p, body in self.writes]
        lines += [f"wheader\t{k}\t{v}" for k, v in self.write_headers.items()]
        lines += [f"option\twrite_every\t{self.write_every}", f"option\tcount_status\t{int(self.count_status)}"]
        values = [
            *self.headers.values(),
            *self.reads,
            *self.write_headers.values(),
            *(x for pair in self.writes for x in pair),
        ]
        if any("\t" in str(v) or "\n" in str(v) for v in values):
            raise ValueError("plan values must not hold tabs or newlines")
        path.write_text("\n".join(lines) + "\n")
        return path


def run_wrk(base_url: str, plan_file: Path, *, connections: int, threads: int, seconds: float) -> dict:
    """One wrk run; its figures with the CPU each side used."""
    port = urllib.parse.urlsplit(base_url).port
    pids = set(gunicorn_pids(port))
    busy0, total0 = machine_busy()
    before, wrk0 = process_cpu(), children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(LUA), base_url],
        env={**os.environ, "WRK_PLAN": str(plan_file)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    wall = time.perf_counter() - started
    busy1, total1 = machine_busy()
    after, wrk1 = process_cpu(), children_cpu()
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    raw = json.loads(line[len("WRK_JSON ") :])
    duration = raw["duration_us"] / 1e6
    ncpu = os.cpu_count() or 1
    cpu_window = (total1 - total0) / CLOCK_TICKS / ncpu or wall  # seconds of wall time seen by /proc/stat
    # Every process's CPU in the window: the server's, PostgreSQL's, and the rest (not this
    # script, not wrk: wrk has ended, its CPU comes from getrusage).
    server_cpu = db_cpu = other_cpu = 0.0
    others: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        used = cpu - before.get(pid, (name, 0.0))[1]
        if pid in pids:
            server_cpu += used
        elif name == "postgres":
            db_cpu += used
        elif pid != os.getpid():
            other_cpu += used
            others[name] = others.get(name, 0.0) + used
    wrk_cpu = wrk1 - wrk0
    busy_share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    kernel = busy_share * ncpu - (server_cpu + wrk_cpu + db_cpu + other_cpu) / cpu_window
    socket_errors = sum(raw[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
    return {
        "requests": raw["requests"],
        "seconds": duration,
        "rps": raw["requests"] / duration,
        "bytes": raw["bytes"],
        "p50_ms": raw["latency_p50_us"] / 1000,
        "p75_ms": raw["latency_p75_us"] / 1000,
        "p90_ms": raw["latency_p90_us"] / 1000,
        "p95_ms": raw["latency_p95_us"] / 1000,
        "p99_ms": raw["latency_p99_us"] / 1000,
        "p99_9_ms": raw["latency_p99_9_us"] / 1000,
        "max_ms": raw["latency_max_us"] / 1000,
        "mean_ms": float(raw["latency_mean_us"]) / 1000,
        "non_2xx_3xx": raw["errors_status"],
        "socket_errors": socket_errors,
        "socket_errors_by_kind": {
            k[len("errors_") :]: raw[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout")
        },
        "counters": {
            k: raw[k]
            for k in (
                "sent_reads",
                "sent_writes",
                "status_2xx",
                "status_3xx",
                "status_4xx",
                "status_5xx",
                "status_other",
                "write_marker_seen",
            )
        },
        "cpu": {
            "machine_busy_share": busy_share,
            "server_cores": server_cpu / cpu_window,
            "wrk_cores": wrk_cpu / cpu_window,
            "database_cores": db_cpu / cpu_window,
            "other_cores": other_cpu / cpu_window,
            "other_processes": {
                k: round(v / cpu_window, 3)
                for k, v in sorted(others.items(), key=lambda x: -x[1])
                if v / cpu_window >= 0.01
            },
            # Busy time no process was charged with: mostly the kernel's network work (softirq) on loopback.
            "unattributed_cores": max(kernel, 0.0),
            "server_cpu_ms_per_request": server_cpu * 1000 / raw["requests"] if raw["requests"] else None,
            "database_cpu_ms_per_request": db_cpu * 1000 / raw["requests"] if raw["requests"] else None,
            "wrk_cpu_ms_per_request": wrk_cpu * 1000 / raw["requests"] if raw["requests"] else None,
            "server_processes": len(pids),
        },
    }


# --- The URLs and their bytes --------------------------------------------------------


@dataclass
class Captured:
    path: str
    body: bytes  # uncompressed
    encoded_size: int  # with Accept-Encoding: br, gzip
    encoding: str | None


def fragment(base_url: str, cookie: str, path: str, encoding: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"Cookie": cookie, "HX-Request": "true"}
    if encoding:
        headers["Accept-Encoding"] = encoding
    return request(base_url, "GET", path, headers=headers)


def capture(base_url: str, cookie: str, path: str) -> Captured:
    status, headers, body = fragment(base_url, cookie, path)
    if status != 200 or b"<html" in body[:500].lower():
        raise SystemExit(f"{path} answered {status} (or a whole page) instead of a fragment")
    if headers.get("content-encoding"):
        raise SystemExit(f"{path} came compressed without Accept-Encoding")
    _status, enc_headers, enc_body = fragment(base_url, cookie, path, ACCEPT_ENCODING)
    return Captured(path, body, len(enc_body), enc_headers.get("content-encoding"))


def transactions_urls(base_url: str, cookie: str, accounts: list[str], next_pages: int) -> list[str]:
    """Per account: the first page, `next_pages` pages after it by cursor, one period."""
    paths = []
    for number in accounts:
        base = f"/accounts/{number}/transactions"
        page = f"{base}?mode=processed"
        paths.append(page)
        for _ in range(next_pages):
            _status, _headers, body = fragment(base_url, cookie, page)
            links = re.findall(r'(?:href|data-hx-get)="([^"]*[?&](?:amp;)?after=[^"]*)"', body.decode())
            if not links:
                break
            page = html.unescape(links[0])
            paths.append(page)
        status, _headers, body = request(base_url, "GET", base, headers={"Cookie": cookie})
        options = list(re.findall(r'<option value="([0-9]{4}-[0-9]{2}-[0-9]{2})"', body.decode()))
        if status != 200 or not options:
            raise SystemExit(f"no period to choose on {base} ({status})")
        paths.append(f"{base}?mode=period&period={options[min(1, len(options) - 1)]}")
    return paths


def replay_dir(folder: Path, captured: list[Captured]) -> Path:
    index = {}
    for i, item in enumerate(captured):
        name = f"body{i}.html"
        (folder / name).write_bytes(item.body)
        index[item.path] = name
    (folder / "index.json").write_text(json.dumps(index, indent=1))
    return folder


def csrf_token(base_url: str, cookie: str) -> str:
    status, _headers, body = request(base_url, "GET", "/", headers={"Cookie": cookie})
    found = re.search(rb'"X-CSRFToken": "([^"]+)"', body)
    if status != 200 or not found:
        raise SystemExit(f"no CSRF token on the dashboard ({status})")
    return found.group(1).decode()


# --- The write of the mix ------------------------------------------------------------


@dataclass
class WriteTarget:
    number: str
    period_end: str
    key: str  # the figure the autosave types into
    kind: str
    subject: str
    user_id: int

    @property
    def path(self) -> str:
        return f"/filing/{self.number}/{self.period_end}/autosave"


def find_write_target(engine, accounts: list[str]) -> WriteTarget:
    """The taxpayer's first account with a return form here and a period open for filing."""
    today = system_now().date()
    with Session(engine) as db:
        user_id = db.scalar(select(User.id).where(User.email == demo.BENCH_TAXPAYER_EMAIL))
        for number in accounts:
            account = db.scalar(select(Account).where(Account.number == number))
            spec = filing.form_for(account.program_code)
            if spec is None or not account.program.allows("file"):
                continue
            open_periods, _filed = filing.periods(db, account, today)
            if open_periods:
                end = open_periods[0].end
                return WriteTarget(
                    number,
                    end.isoformat(),
                    spec.keys[0],
                    filing.draft_kind(spec, False),
                    filing.subject_for(end, False),
                    user_id,
                )
    raise SystemExit("the bench taxpayer has no period open for filing: no write to make")


def drafts_now(engine, target: WriteTarget) -> dict[int, tuple]:
    """The person's drafts of that return: id -> (data, updated_at)."""
    with Session(engine) as db:
        rows = db.execute(
            select(Draft.id, Draft.data, Draft.updated_at).where(
                Draft.user_id == target.user_id, Draft.kind == target.kind, Draft.subject == target.subject
            )
        )
        return {row.id: (row.data, row.updated_at) for row in rows}


def put_drafts_back(engine, target: WriteTarget, before: dict[int, tuple]) -> None:
    """Leave the drafts as they were: delete those the run made, restore the others
    (someone else's journey on the same database may be using one)."""
    with Session(engine) as db:
        made = set(drafts_now(engine, target)) - set(before)
        if made:
            db.execute(delete(Draft).where(Draft.id.in_(made)))
        for draft_id, (data, updated_at) in before.items():
            db.execute(update(Draft).where(Draft.id == draft_id).values(data=data, updated_at=updated_at))
        db.commit()


def draft_value(engine, target: WriteTarget) -> str | None:
    with Session(engine) as db:
        draft = drafts_module.current(
            db,
            account_id=db.scalar(select(Account.id).where(Account.number == target.number)),
            user_id=target.user_id,
            kind=target.kind,
            subject=target.subject,
        )
        return drafts_module.answers(draft).get(target.key) if draft else None


# --- Measurements --------------------------------------------------------------------


def summarise_target(runs: list[dict]) -> dict:
    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {
        "rounds": len(runs),
        "requests": requests,
        "seconds": seconds,
        "rps_overall": requests / seconds,
        "rps_median": statistics.median(r["rps"] for r in runs),
        "rps_min": min(r["rps"] for r in runs),
        "rps_max": max(r["rps"] for r in runs),
        "p50_ms_median": statistics.median(r["p50_ms"] for r in runs),
        "p90_ms_median": statistics.median(r["p90_ms"] for r in runs),
        "p99_ms_median": statistics.median(r["p99_ms"] for r in runs),
        "p99_ms_worst": max(r["p99_ms"] for r in runs),
        "max_ms": max(r["max_ms"] for r in runs),
        "non_2xx_3xx": sum(r["non_2xx_3xx"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "server_cpu_ms_per_request_median": statistics.median(r["cpu"]["server_cpu_ms_per_request"] for r in runs),
        "wrk_cores_median": statistics.median(r["cpu"]["wrk_cores"] for r in runs),
        "machine_busy_share_median": statistics.median(r["cpu"]["machine_busy_share"] for r in runs),
    }


def grep_log(path: Path, start: int = 0) -> dict:
    text = path.read_text(errors="replace")[start:] if path.exists() else ""
    return {name: len(pattern.findall(text)) for name, pattern in LOG_PATTERNS.items()}


def measure_reads(url: str, accounts: list[str], args, work: Path, label: str) -> dict:
    log_path = work / f"gunicorn-{label}-reads.log"
    with portal_server(url, workers=args.workers, threads=1, log_path=log_path) as base_url:
        cookie = sign_in(base_url, demo.BENCH_TAXPAYER_EMAIL, demo.BENCH_TAXPAYER_PASSWORD)
        tx_paths = transactions_urls(base_url, cookie, accounts, args.next_pages)
        captured = (
            [capture(base_url, cookie, p) for p in tx_paths]
            + [capture(base_url, cookie, "/")]
            + [capture(base_url, cookie, FLOOR_PATH)]
        )
        folder = work / f"replay-{label}"
        folder.mkdir()
        replay_dir(folder, captured)
        headers = {"Cookie": cookie, "HX-Request": "true", "Accept-Encoding": ACCEPT_ENCODING}
        plans = {
            "transactions": Plan(headers, tx_paths).save(work / f"plan-{label}-transactions.tsv"),
            "dashboard": Plan(headers, ["/"]).save(work / f"plan-{label}-dashboard.tsv"),
            FLOOR: Plan({**headers, "X-Background-Request": "true"}, [FLOOR_PATH]).save(
                work / f"plan-{label}-floor.tsv"
            ),
        }
        sizes = {
            c.path: {"bytes": len(c.body), "encoded_bytes": c.encoded_size, "encoding": c.encoding} for c in captured
        }
        tx_sizes = [len(c.body) for c in captured[:-2]]
        print(
            f"  {len(tx_paths)} transactions URLs ({min(tx_sizes):,}-{max(tx_sizes):,} bytes, "
            f"{captured[0].encoding or 'identity'} {captured[0].encoded_size:,} bytes on the wire for the "
            f"first), dashboard fragment {len(captured[-2].body):,} bytes"
        )
        if args.rounds == 0:  # the URLs only, for the mix
            return {
                "workers": args.workers,
                "threads": 1,
                "connections": args.connections,
                "paths": tx_paths,
                "sizes": sizes,
                "runs": [],
                "summary": {},
                "ratios": {},
                "log": grep_log(log_path),
            }
        with bare_server(folder, workers=args.workers, log_path=work / f"gunicorn-{label}-bare.log") as bare_url:
            for item in captured:  # the bare route answers the very bytes
                status, _h, body = request(bare_url, "GET", item.path)
                if status != 200 or body != item.body:
                    raise SystemExit(f"the bare route does not replay {item.path}")
            targets = {
                (page, side): bare_url if side == "bare" else base_url for page in PAGES for side in ("bare", "view")
            }
            order = list(targets)
            for page, side in order:  # warm-up: every worker, the page cache, the templates
                run_wrk(
                    targets[page, side],
                    plans[page],
                    connections=args.connections,
                    threads=args.wrk_threads,
                    seconds=args.warm_up,
                )
            runs, disturbed = [], []
            retry_budget = args.retry_budget
            for round_no in range(1, args.rounds + 1):
                for page, side in order if round_no % 2 else order[::-1]:
                    while True:
                        result = run_wrk(
                            targets[page, side],
                            plans[page],
                            connections=args.connections,
                            threads=args.wrk_threads,
                            seconds=args.duration,
                        )
                        result.update(round=round_no, page=page, side=side, connections=args.connections)
                        if disturbance(result) <= DISTURBED_CORES or retry_budget < args.duration:
                            break
                        # Something else took the CPU: note it, wait for quiet, measure again.
                        disturbed.append(result)
                        print(
                            f"  round {round_no} {page:12} {side:4}: disturbed ({disturbance(result):.2f}"
                            f" cores to others), measured again"
                        )
                        retry_budget -= args.duration + wait_for_quiet(min(20.0, retry_budget))
                    runs.append(result)
                    print(
                        f"  round {round_no} {page:12} {side:4}: {result['rps']:7.1f} req/s, "
                        f"p99 {result['p99_ms']:6.2f} ms, server {result['cpu']['server_cpu_ms_per_request']:.2f}"
                        f" ms CPU/request, wrk {result['cpu']['wrk_cores']:.2f} cores, "
                        f"busy {result['cpu']['machine_busy_share']:.0%}"
                    )
    summary, ratios = {}, {}
    for page in PAGES:
        for side in ("bare", "view"):
            summary[f"{page} {side}"] = summarise_target([r for r in runs if r["page"] == page and r["side"] == side])
        per_round = []
        for round_no in range(1, args.rounds + 1):
            pair = {r["side"]: r for r in runs if r["page"] == page and r["round"] == round_no}
            per_round.append(pair["view"]["rps"] / pair["bare"]["rps"])
        overall = summary[f"{page} view"]["rps_overall"] / summary[f"{page} bare"]["rps_overall"]
        ratios[page] = {
            "per_round": per_round,
            "overall": overall,
            "median": statistics.median(per_round),
            "budget": TARGET_RATIO,
            "pass": overall >= TARGET_RATIO,
            "reference": page == FLOOR,
        }
    return {
        "workers": args.workers,
        "threads": 1,
        "connections": args.connections,
        "paths": tx_paths,
        "sizes": sizes,
        "runs": runs,
        "disturbed_runs_discarded": disturbed,
        "summary": summary,
        "ratios": ratios,
        "log": grep_log(log_path),
    }


def measure_mix(
    url: str,
    engine,
    accounts: list[str],
    read_paths: list[str],
    workers: int,
    threads: int,
    args,
    work: Path,
    label: str,
) -> dict:
    target = find_write_target(engine, accounts)
    before = drafts_now(engine, target)
    log_path = work / f"gunicorn-{label}-mix-{workers}x{threads}.log"
    try:
        with portal_server(url, workers=workers, threads=threads, log_path=log_path) as base_url:
            cookie = sign_in(base_url, demo.BENCH_TAXPAYER_EMAIL, demo.BENCH_TAXPAYER_PASSWORD)
            token = csrf_token(base_url, cookie)
            headers = {"Cookie": cookie, "HX-Request": "true", "Accept-Encoding": ACCEPT_ENCODING}
            write_headers = {"Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": token}
            # One write by hand first: it must answer 200 and save.
            status, _h, body = request(
                base_url,
                "POST",
                target.path,
                body=f"{target.key}=0".encode(),
                headers={"Cookie": cookie, "HX-Request": "true", **write_headers},
            )
            if status != 200 or b"Draft saved at" not in body or draft_value(engine, target) != "0":
                raise SystemExit(f"the autosave on {target.path} did not save ({status}): {body[:300]!r}")
            plan = Plan(
                headers,
                [*read_paths, "/"],
                writes=[(target.path, f"{target.key}={{n}}")],
                write_headers=write_headers,
                write_every=WRITE_EVERY,
                count_status=True,
            )
            plan_file = plan.save(work / f"plan-{label}-mix.tsv")
            run_wrk(base_url, plan_file, connections=args.connections, threads=args.wrk_threads, seconds=2)
            result = run_wrk(
                base_url, plan_file, connections=args.connections, threads=args.wrk_threads, seconds=args.mix_duration
            )
        value = draft_value(engine, target)
    finally:
        put_drafts_back(engine, target, before)
    counters = result["counters"]
    log = grep_log(log_path)
    saved_by_wrk = value is not None and value.isdigit() and int(value) >= 10_000_000
    result.update(
        workers=workers,
        threads=threads,
        connections=args.connections,
        write_path=target.path,
        status={k: counters[f"status_{k}"] for k in ("2xx", "3xx", "4xx", "5xx", "other")},
        write_share=counters["sent_writes"] / max(counters["sent_reads"] + counters["sent_writes"], 1),
        draft_holds_a_value_wrk_sent=saved_by_wrk,
        log=log,
        database_locked=log["database is locked"],
        passes={
            "no database is locked": log["database is locked"] == 0,
            "no OperationalError": log["OperationalError"] == 0,
            "no 5xx": counters["status_5xx"] == 0,
            "no 4xx": counters["status_4xx"] == 0,
            "writes saved": saved_by_wrk and counters["write_marker_seen"] > 0,
            "no socket errors": result["socket_errors"] == 0,
        },
    )
    result["pass"] = all(result["passes"].values())
    print(
        f"  mix {workers}x{threads}: {result['rps']:.1f} req/s, {counters['sent_writes']} writes sent, "
        f"{counters['write_marker_seen']} 'Draft saved', 4xx {counters['status_4xx']}, "
        f"5xx {counters['status_5xx']}, locked {log['database is locked']}, p99 {result['p99_ms']:.1f} ms"
    )
    return result


def measure_database(url: str, args, work: Path) -> dict:
    label = make_url(url).get_backend_name()
    ensure_database(url)
    build_seconds = ensure_data(url, args.accounts, args.transactions)
    engine = make_engine(url)
    try:
        accounts = demo.ensure_bench_taxpayer(engine, system_now())
        facts = machine_facts(engine)
        print(
            f"{facts['database']}: taxpayer accounts {', '.join(accounts)}; portal and bare route on "
            f"{args.workers} gunicorn workers, wrk -t{args.wrk_threads} -c{args.connections}"
        )
        reads = measure_reads(url, accounts, args, work, label)
        mixes = []
        for spec in args.mix:
            workers, threads = (int(x) for x in spec.lower().split("x"))
            mixes.append(measure_mix(url, engine, accounts, reads["paths"], workers, threads, args, work, label))
    finally:
        engine.dispose()
    p99 = {}
    for page in ("transactions", "dashboard") if reads["runs"] else ():
        view = reads["summary"][f"{page} view"]
        p99[page] = {
            "median_round_ms": view["p99_ms_median"],
            "worst_round_ms": view["p99_ms_worst"],
            "budget_ms": TARGET_P99_MS,
            "pass": view["p99_ms_median"] <= TARGET_P99_MS,
            "every_round_passes": view["p99_ms_worst"] <= TARGET_P99_MS,
        }
    return {
        "url": make_url(url).render_as_string(hide_password=True),
        "backend": label,
        "database": facts["database"],
        "build_seconds": build_seconds,
        "accounts": accounts,
        "reads": reads,
        "p99": p99,
        "mix": mixes,
    }


# --- Output ----------------------------------------------------------------------------


def fmt_ms(value: float) -> str:
    return f"{value:.1f}"


def print_tables(report: dict) -> None:
    for db in report["databases"]:
        reads = db["reads"]
        if reads["runs"]:
            print(
                f"\n### {db['database']}: reads, {reads['workers']} workers x 1 thread, "
                f"{reads['connections']} connections\n"
            )
            print(
                "| Target | Round | Conns | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx/3xx | socket errors "
                "| server CPU ms/req | server cores | PostgreSQL cores | wrk cores | kernel (unattributed) cores "
                "| other processes' cores | machine busy |"
            )
            print("|" + " --- |" * 17)
            for r in sorted(reads["runs"], key=lambda r: (r["page"], r["side"], r["round"])):
                print(
                    f"| {r['page']} {r['side']} | {r['round']} | {r['connections']} | {r['rps']:.1f} "
                    f"| {fmt_ms(r['p50_ms'])} | {fmt_ms(r['p90_ms'])} | {fmt_ms(r['p99_ms'])} "
                    f"| {fmt_ms(r['max_ms'])} | {r['non_2xx_3xx']} | {r['socket_errors']} "
                    f"| {r['cpu']['server_cpu_ms_per_request']:.2f} | {r['cpu']['server_cores']:.2f} "
                    f"| {r['cpu']['database_cores']:.2f} | {r['cpu']['wrk_cores']:.2f} "
                    f"| {r['cpu']['unattributed_cores']:.2f} | {r['cpu']['other_cores']:.2f} "
                    f"| {r['cpu']['machine_busy_share']:.0%} |"
                )
            print(
                "\n| Page | view req/s (overall) | bare req/s (overall) | ratio per round | ratio overall "
                "| budget | pass | view p99 median of rounds (worst) | budget | pass |"
            )
            print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
            for page in PAGES:
                ratio, p99 = reads["ratios"][page], db["p99"].get(page)
                if p99 is None:  # the floor: for reference, no budget of its own
                    print(
                        f"| {page} (reference: the cheapest signed-in request) "
                        f"| {reads['summary'][f'{page} view']['rps_overall']:.1f} "
                        f"| {reads['summary'][f'{page} bare']['rps_overall']:.1f} "
                        f"| {', '.join(f'{x:.2f}' for x in ratio['per_round'])} | {ratio['overall']:.2f} "
                        f"| | | {reads['summary'][f'{page} view']['p99_ms_median']:.1f} ms | | |"
                    )
                    continue
                print(
                    f"| {page} | {reads['summary'][f'{page} view']['rps_overall']:.1f} "
                    f"| {reads['summary'][f'{page} bare']['rps_overall']:.1f} "
                    f"| {', '.join(f'{x:.2f}' for x in ratio['per_round'])} | {ratio['overall']:.2f} "
                    f"| >= {TARGET_RATIO:.2f} | {'pass' if ratio['pass'] else 'FAIL'} "
                    f"| {p99['median_round_ms']:.1f} ms ({p99['worst_round_ms']:.1f}) | <= {TARGET_P99_MS:.0f} ms "
                    f"| {'pass' if p99['pass'] else 'FAIL'} |"
                )
            log = reads["log"]
            print(f"\nServer log during the reads: {log}")
            other = max(disturbance(r) for r in reads["runs"])
            if other > DISTURBED_CORES:
                print(
                    f"\nWARNING: up to {other:.2f} cores went to others during the reads: the machine "
                    f"was not quiet, and the figures are lower than they should be."
                )
        if db["mix"]:
            print(f"\n### {db['database']}: 90/10 read/write mix, {reads['connections']} connections\n")
            print(
                "| Workers x threads | req/s | p50 ms | p90 ms | p99 ms | max ms | reads sent | writes sent "
                "| 2xx | 3xx | 4xx | 5xx | socket errors | 'Draft saved' answers | draft holds a sent value "
                "| 'database is locked' | OperationalError | pass |"
            )
            print(
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
                "| --- | --- |"
            )
            for m in db["mix"]:
                c = m["counters"]
                print(
                    f"| {m['workers']}x{m['threads']} | {m['rps']:.1f} | {fmt_ms(m['p50_ms'])} "
                    f"| {fmt_ms(m['p90_ms'])} | {fmt_ms(m['p99_ms'])} | {fmt_ms(m['max_ms'])} | {c['sent_reads']} "
                    f"| {c['sent_writes']} | {c['status_2xx']} | {c['status_3xx']} | {c['status_4xx']} "
                    f"| {c['status_5xx']} | {m['socket_errors']} | {c['write_marker_seen']} "
                    f"| {'yes' if m['draft_holds_a_value_wrk_sent'] else 'NO'} | {m['log']['database is locked']} "
                    f"| {m['log']['OperationalError']} | {'pass' if m['pass'] else 'FAIL'} |"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--postgres", action="store_true", help="also measure PostgreSQL (--postgres-url)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers for the reads")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per target per round")
    parser.add_argument("--warm-up", type=int, default=2, help="seconds per target before the rounds")
    parser.add_argument("--next-pages", type=int, default=2, help="pages after the first, per account")
    parser.add_argument(
        "--mix",
        type=lambda s: [x for x in s.split(",") if x],
        default=["2x4", "4x1"],
        help='workers x threads for the 90/10 mix, comma separated ("" for none)',
    )
    parser.add_argument("--mix-duration", type=int, default=12)
    parser.add_argument("--accounts", type=int, default=5_000, help="when building: accounts")
    parser.add_argument("--transactions", type=int, default=1_000_000, help="when building: ledger entries")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be quiet (under 15%% busy)",
    )
    parser.add_argument(
        "--retry-budget",
        type=float,
        default=30,
        metavar="SECONDS",
        help="seconds to spend measuring again what other processes disturbed (0: never)",
    )
    parser.add_argument("--keep", type=Path, help="keep the plans, captured bodies and gunicorn logs here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0]

    urls = [args.database_url] + (
        [args.postgres_url] if args.postgres and args.postgres_url != args.database_url else []
    )
    waited = wait_for_quiet(args.wait_quiet) if args.wait_quiet else 0.0
    load = os.getloadavg()
    started = time.perf_counter()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work_cm = None
        work = Path(tempfile.mkdtemp(dir=args.keep))
    else:
        work_cm = tempfile.TemporaryDirectory(prefix="throughput-")
        work = Path(work_cm.name)
    try:
        print(f"{wrk_version.split(' Copyright')[0]}; load average at start {load[0]:.2f}")
        databases = [measure_database(url, args, work) for url in urls]
    finally:
        if work_cm is not None:
            work_cm.cleanup()
    engine = make_engine(urls[0])
    try:
        facts = machine_facts(engine)
    finally:
        engine.dispose()
    facts.pop("database", None)
    facts.update(
        wrk=wrk_version.split(" Copyright")[0], load_average_at_start=list(load), waited_for_quiet_seconds=waited
    )
    budgets = {}
    for db in databases:
        name = db["backend"]
        for page in db["p99"]:
            budgets[f"{name}: {page} req/s >= {TARGET_RATIO:.0%} of bare"] = db["reads"]["ratios"][page]["pass"]
            budgets[f"{name}: {page} p99 <= {TARGET_P99_MS:.0f} ms at {args.connections} connections"] = db["p99"][
                page
            ]["pass"]
        for m in db["mix"]:
            budgets[f"{name}: mix {m['workers']}x{m['threads']} no 'database is locked', no 5xx"] = (
                m["passes"]["no database is locked"] and m["passes"]["no 5xx"] and m["passes"]["no OperationalError"]
            )
    report = {
        "machine": facts,
        "seconds": time.perf_counter() - started,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "budgets": {"ratio_min": TARGET_RATIO, "p99_max_ms": TARGET_P99_MS, "results": budgets},
        "databases": databases,
    }
    print_tables(report)
    print(
        f"\nMachine: {facts['nproc']} CPUs, {facts['cpu']}, {facts['memory']}; {facts['wrk']}. "
        f"Run took {report['seconds']:.0f} s."
    )
    print("\n| Budget | Result |\n| --- | --- |")
    for name, ok in budgets.items():
        print(f"| {name} | {'pass' if ok else 'FAIL'} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nFigures written to {args.json}")
    return 0 if all(budgets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
