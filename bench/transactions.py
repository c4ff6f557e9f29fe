#!/usr/bin/env python3
"""How much the financial transactions view costs over the bare SQL for the same
rows, and how heavy one page is, on the benchmark database (docs/performance.md).

    .venv/bin/python bench/transactions.py --database-url sqlite:///bench/data/bench.db
    .venv/bin/python bench/transactions.py --database-url postgresql://postgres@127.0.0.1:5432/portal_bench

Creates the database when it is missing (a PostgreSQL database on the same
server, or the SQLite file), migrates it, and builds the benchmark data
(`demo.build_benchmark`, the same as `flask demo-data --accounts … --transactions …`)
when the benchmark person has no accounts yet. Then, signed in as that person
through Flask's test client, it asks for the transactions fragment (HX-Request)
of random benchmark accounts in three ways — all processed transactions, one
period end, and the next page by the `after` cursor — and, interleaved in the
same run and in random order, runs `domain.ledger.transactions_query(...).limit(51)`
on a plain connection. It prints the median and 95th percentile of each, their
ratios, the gzip size of a 50-row fragment, and the dashboard's times.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import random
import re
import sqlite3
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import brotli  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import demo  # noqa: E402
from domain import ledger, overview  # noqa: E402
from domain.clock import system_now  # noqa: E402
from domain.db import make_engine  # noqa: E402
from migrations.runner import upgrade  # noqa: E402
from models import Account, Grant, User  # noqa: E402

TARGET_RATIO = 3.0
TARGET_GZIP_BYTES = 6_000  # "6 KB", read strictly
DEFAULT_URL = f"sqlite:///{ROOT / 'bench' / 'data' / 'bench.db'}"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        import psycopg

        name = parsed.database
        admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                print(f"Creating database {name}")
                conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)


def ensure_data(url: str, accounts: int, transactions: int) -> float | None:
    """Build the benchmark data when it is not there; the seconds it took, or None."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            user_id = conn.scalar(select(User.id).where(User.email == demo.BENCH_EMAIL))
            has = user_id is not None and conn.scalar(select(Grant.id).where(Grant.user_id == user_id).limit(1))
        if has:
            return None
        print(f"Building benchmark data: {accounts:,} accounts, {transactions:,} ledger entries")
        result = demo.build_benchmark(engine, system_now(), accounts=accounts, transactions=transactions)
        print(f"Built in {result.seconds:.1f} s")
        return result.seconds
    finally:
        engine.dispose()


def machine_facts(engine) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            database = "PostgreSQL " + conn.scalar(text("SHOW server_version"))
        else:
            database = "SQLite " + sqlite3.sqlite_version
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "database": database,
    }


def sign_in(client, email: str = demo.BENCH_EMAIL, password: str = demo.BENCH_PASSWORD) -> None:
    page = client.get("/auth/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/auth/sign-in", data={"email": email, "password": password, "next": "", "csrf_token": token}
    )
    if response.status_code != 303 or "/auth/" in response.headers.get("Location", ""):
        raise SystemExit(f"Could not sign in as {email}: {response.status_code}")


class WsgiCaller:
    """Calls the application the way a WSGI server does and times only the
    application: from the call to the last byte of the body and its close, so the
    request's teardown is in. The request (environ, with the session cookie the
    test client got at sign-in) is built before the clock starts, as a server
    would have read it off the socket; the test client's own work (building the
    request, wrapping the response, its cookie jar) is not server time."""

    def __init__(self, app, client):
        self.app = app
        self.cookie = "; ".join(
            f"{name}={client.get_cookie(name).value}"
            for name in ("portal_session", "__Host-session")
            if client.get_cookie(name)
        )

    def get(self, path: str, params: dict | None = None, headers: dict | None = None) -> tuple[float, int, bytes]:
        from werkzeug.test import EnvironBuilder

        environ = EnvironBuilder(
            path=path, query_string=params or {}, headers={**(headers or {}), "Cookie": self.cookie}
        ).get_environ()
        statuses: list[str] = []

        def start_response(status, _headers, _exc_info=None):
            statuses.append(status)

        started = time.perf_counter()
        iterable = self.app(environ, start_response)
        try:
            body = b"".join(iterable)
        finally:
            if hasattr(iterable, "close"):
                iterable.close()
        elapsed = time.perf_counter() - started
        return elapsed, int(statuses[-1].split()[0]), body


def minimal_route_app(engine, user_id: int):
    """The floor of this stack, to put the target in proportion: a bare Flask
    application with no server-side session, access gate, CSRF, ORM, form or
    security headers. Its one route runs the statements a transactions request
    needs (the session row with its person, the grant with its account, the page)
    with SQLAlchemy Core on one connection, and renders the same partial with the
    portal's own filters. What the portal costs above this is the price of what
    it does besides."""
    from flask import Flask, render_template

    from blueprints.accounts import KIND_LABELS
    from models import AuthSession
    from web.templating import day, money

    sessions_t, users_t, grants_t, accounts_t = (
        AuthSession.__table__,
        User.__table__,
        Grant.__table__,
        Account.__table__,
    )
    session_query = (
        select(sessions_t, users_t)
        .select_from(sessions_t.outerjoin(users_t, users_t.c.id == sessions_t.c.user_id))
        .where(sessions_t.c.id == sqlalchemy.bindparam("record_id"))
    )
    grant_query = (
        select(grants_t, accounts_t)
        .join(accounts_t, accounts_t.c.id == grants_t.c.account_id)
        .where(
            grants_t.c.user_id == sqlalchemy.bindparam("user_id"),
            accounts_t.c.number == sqlalchemy.bindparam("number"),
            grants_t.c.revoked_at.is_(None),
        )
    )
    with engine.connect() as conn:
        record_id = conn.scalar(
            select(sessions_t.c.id)
            .where(sessions_t.c.user_id == user_id, sessions_t.c.ended_at.is_(None))
            .order_by(sessions_t.c.created_at.desc())
            .limit(1)
        )
    minimal = Flask("minimal_route", template_folder=str(ROOT / "templates"))
    minimal.jinja_env.filters.update(day=day, money=money)

    @minimal.get("/minimal/<number>")
    def transactions(number: str):
        from flask import request

        args = request.args
        if args.get("mode") == "period":
            flt = ledger.TransactionFilter(mode="period", period_end=date.fromisoformat(args["period"]))
        else:
            flt = ledger.TransactionFilter(mode="processed")
        after = ledger.Cursor.parse(args.get("after"))
        with engine.connect() as conn:
            conn.execute(session_query, {"record_id": record_id}).first()
            grant = conn.execute(grant_query, {"user_id": user_id, "number": number}).first()
            query = ledger.transactions_query(grant.account_id, flt, after, limit=ledger.PAGE_SIZE + 1)
            rows = conn.execute(query.statement, query.params).all()
        more, rows = len(rows) > ledger.PAGE_SIZE, rows[: ledger.PAGE_SIZE]
        return render_template(
            "accounts/_transactions_results.html",
            rows=rows,
            kind_labels=KIND_LABELS,
            first_page=after is None,
            description="All transactions",
            is_fragment=True,
            next_url="/minimal/next" if more else None,
            first_url="/minimal/first",
            csv_url="/minimal.csv",
        )

    return minimal


# Parts of a transactions request, as (file ending, function) in the profile.
PROFILE_PARTS = {
    "load the server-side session (web.sessions.open_session)": ("web/sessions.py", "open_session"),
    "access gate (web.access.enforce)": ("web/access.py", "enforce"),
    "grant check (account_or_404)": ("web/access.py", "account_or_404"),
    "filter form: build (_filter_form)": ("blueprints/accounts/__init__.py", "_filter_form"),
    "filter form: check, a period by EXISTS (to_filter)": ("blueprints/accounts/forms.py", "to_filter"),
    "the page query (ledger.transactions_page)": ("domain/ledger.py", "transactions_page"),
    "render the fragment (web.htmx.render)": ("web/htmx.py", "render"),
    "save the session (save_session)": ("web/sessions.py", "save_session"),
    "activity and last-used writes at the end (web.database.close_db)": ("web/database.py", "close_db"),
}


def where_the_time_goes(client, accounts, rng, requests: int) -> dict[str, float]:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        _id, number = accounts[rng.randrange(len(accounts))]
        client.get(
            f"/accounts/{number}/transactions", query_string={"mode": "processed"}, headers={"HX-Request": "true"}
        ).get_data()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in stats.values())
    shares = {}
    for label, (ending, name) in PROFILE_PARTS.items():
        cumulative = sum(
            ct
            for (file, _line, func), (_cc, _nc, _tt, ct, _c) in stats.items()
            if func == name and file.replace("\\", "/").endswith(ending)
        )
        shares[label] = cumulative / total if total else 0.0
    shares["everything else (Flask, Werkzeug, test client, headers)"] = max(1.0 - sum(shares.values()), 0.0)
    return shares


def summarise(values: list[float]) -> dict:
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": percentile(values, 0.95),
        "min": min(values),
        "max": max(values),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--requests", type=int, default=400, help="transactions requests (each with its bare query)")
    parser.add_argument("--dashboard-requests", type=int, default=60)
    parser.add_argument("--accounts", type=int, default=5_000, help="when building: accounts")
    parser.add_argument("--transactions", type=int, default=1_000_000, help="when building: ledger entries")
    parser.add_argument("--warm-up", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile N view requests and show where their time goes",
    )
    args = parser.parse_args()
    url = args.database_url

    ensure_database(url)
    build_seconds = ensure_data(url, args.accounts, args.transactions)

    from app import create_app

    app = create_app(
        {
            "DATABASE_URL": url,
            "OUTBOX_THREAD": False,
            "SERVICE_HOURS": "always",
            "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdef",
        }
    )
    if "accounts.transactions" not in app.view_functions:
        raise SystemExit("The transactions view (accounts.transactions) does not exist yet.")
    engine = app.extensions["portal.engine"]
    facts = machine_facts(engine)
    rng = random.Random(args.seed)

    with engine.connect() as conn:
        user_id = conn.scalar(select(User.id).where(User.email == demo.BENCH_EMAIL))
        accounts = conn.execute(
            select(Account.id, Account.number)
            .join(Grant, Grant.account_id == Account.id)
            .where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
            .order_by(Account.id)
        ).all()
        entries = conn.scalar(text("SELECT count(*) FROM ledger_entries"))
    print(f"{facts['database']}: {len(accounts):,} benchmark accounts, {entries:,} ledger entries")

    client = app.test_client()
    sign_in(client)
    server = WsgiCaller(app, client)
    minimal = WsgiCaller(minimal_route_app(engine, user_id), client)
    floor_client: list[float] = []
    bare = engine.connect()
    # As a browser asks: the view's time includes compressing its answer.
    headers = {"HX-Request": "true", "Accept-Encoding": "br, gzip"}
    results: dict[str, dict[str, list]] = {}
    floor: list[float] = []

    def one(scenario: str, record: bool) -> None:
        """One view request and one bare query for the same rows, in random order."""
        while True:
            account_id, number = accounts[rng.randrange(len(accounts))]
            params: dict[str, str] = {"mode": "processed"}
            after = None
            if scenario == "period":
                period_ends = ledger.period_ends(bare_session, account_id)
                bare_session.rollback()
                if not period_ends:
                    continue
                period_end = period_ends[rng.randrange(len(period_ends))]
                flt = ledger.TransactionFilter(mode="period", period_end=period_end)
                params = {"mode": "period", "period": period_end.isoformat()}
            else:
                flt = ledger.TransactionFilter(mode="processed")
            if scenario == "next page":
                _rows, after = ledger.transactions_page(bare_session, account_id, flt)
                bare_session.rollback()
                if after is None:
                    continue  # one page only: try another account
                params["after"] = after.token()
            break
        query = ledger.transactions_query(account_id, flt, after, limit=ledger.PAGE_SIZE + 1)
        path = f"/accounts/{number}/transactions"

        def run_view():
            elapsed, status, body = server.get(path, params, headers)
            wire = len(body)
            body = brotli.decompress(body)
            if status != 200 or b'id="transactions-results"' not in body or b"<html" in body:
                raise SystemExit(f"Unexpected answer for {path}?{params}: {status}")
            return elapsed, (body, wire)

        def run_bare():
            started = time.perf_counter()
            rows = bare.execute(query.statement, query.params).all()
            elapsed = time.perf_counter() - started
            bare.rollback()
            return elapsed, rows

        def run_minimal():
            elapsed, status, body = minimal.get(f"/minimal/{number}", params)
            if status != 200 or b'id="transactions-results"' not in body:
                raise SystemExit(f"The minimal route answered {status}")
            return elapsed, body

        runs = {"view": run_view, "bare": run_bare, "minimal": run_minimal}
        done = {name: runs[name]() for name in rng.sample(sorted(runs), len(runs))}
        (view_s, (body, wire)), (bare_s, rows), (minimal_s, _) = done["view"], done["bare"], done["minimal"]
        # The floor: the cheapest signed-in request (the session timer's poll: session
        # load, access gate, JSON), to tell fixed per-request cost from the view's own.
        floor_s, status, _body = server.get("/auth/session", headers={"X-Background-Request": "true"})
        if status != 200:
            raise SystemExit(f"The session status answered {status}")
        # The same request through the test client, to show what the client itself adds.
        started = time.perf_counter()
        client.get("/auth/session", headers={"X-Background-Request": "true"}).get_data()
        floor_client_s = time.perf_counter() - started
        if not record:
            return
        floor.append(floor_s)
        floor_client.append(floor_client_s)
        got = results.setdefault(
            scenario,
            {"view": [], "bare": [], "ratio": [], "gzip": [], "raw": [], "br": [], "minimal": [], "minimal_ratio": []},
        )
        got["view"].append(view_s)
        got["bare"].append(bare_s)
        got["ratio"].append(view_s / bare_s)
        got["minimal"].append(minimal_s)
        got["minimal_ratio"].append(minimal_s / bare_s)
        if len(rows) > ledger.PAGE_SIZE:  # a full page of 50 rows
            got["raw"].append(len(body))
            got["gzip"].append(len(gzip.compress(body, compresslevel=6)))
            got["br"].append(wire)

    bare_session = Session(engine)
    scenarios = ("processed", "period", "next page")
    for i in range(args.warm_up):
        one(scenarios[i % 3], record=False)
    started = time.perf_counter()
    for i in range(args.requests):
        one(scenarios[i % 3], record=True)
    run_seconds = time.perf_counter() - started

    # The dashboard against the same queries without the web (overview.dashboard on a
    # plain session): the benchmark person (5,000 accounts, 25 a page, by keyset from
    # a random account, or a search) and the typical taxpayer (3 accounts).
    dashboard: dict[str, dict[str, list[float]]] = {}
    today = system_now().date()
    taxpayer_client = app.test_client()
    demo.ensure_bench_taxpayer(engine, system_now())
    taxpayer_id = bare_session.scalar(select(User.id).where(User.email == demo.BENCH_TAXPAYER_EMAIL))
    bare_session.rollback()
    sign_in(taxpayer_client, demo.BENCH_TAXPAYER_EMAIL, demo.BENCH_TAXPAYER_PASSWORD)
    taxpayer = WsgiCaller(app, taxpayer_client)
    sample = [accounts[rng.randrange(len(accounts))][1] for _ in range(args.dashboard_requests)]
    for i, number in enumerate(sample):
        name = demo._NAMES[i % len(demo._NAMES)]
        for label, caller, who, query_string, hdrs in (
            ("5,000 accounts: full page, first", server, user_id, {}, {"Accept-Encoding": "br, gzip"}),
            ("5,000 accounts: fragment, random page", server, user_id, {"after": number}, headers),
            ("5,000 accounts: fragment, search", server, user_id, {"q": name}, headers),
            ("3 accounts: full page", taxpayer, taxpayer_id, {}, {"Accept-Encoding": "br, gzip"}),
            ("3 accounts: fragment", taxpayer, taxpayer_id, {}, headers),
        ):

            def run_view(caller=caller, query_string=query_string, hdrs=hdrs):
                elapsed, status, _body = caller.get("/", query_string, hdrs)
                if status != 200:
                    raise SystemExit(f"Dashboard answered {status}")
                return elapsed

            def run_bare(who=who, query_string=query_string):
                started = time.perf_counter()
                overview.dashboard(
                    bare_session, who, today, query=query_string.get("q", ""), after=query_string.get("after")
                )
                elapsed = time.perf_counter() - started
                bare_session.rollback()
                return elapsed

            order = [run_view, run_bare] if rng.random() < 0.5 else [run_bare, run_view]
            timed = {fn.__name__: fn() for fn in order}
            if i >= 3:  # the first few warm up
                got = dashboard.setdefault(label, {"view": [], "bare": [], "ratio": []})
                got["view"].append(timed["run_view"])
                got["bare"].append(timed["run_bare"])
                got["ratio"].append(timed["run_view"] / timed["run_bare"])
    profile = where_the_time_goes(client, accounts, rng, args.profile) if args.profile else None
    bare.close()
    bare_session.close()

    report = {
        "url": make_url(url).render_as_string(hide_password=True),
        "facts": facts,
        "accounts": len(accounts),
        "entries": entries,
        "build_seconds": build_seconds,
        "requests": args.requests,
        "seconds": run_seconds,
        "transactions": {},
        "dashboard": {},
    }
    print(f"\n{args.requests} view requests and as many bare queries, interleaved, in {run_seconds:.1f} s")
    print(
        "| Request (HX-Request fragment) | n | view median | view p95 | bare median | bare p95 "
        "| ratio of medians | ratio of p95s | per-request ratio median / p95 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    all_ratios = []
    for scenario in scenarios:
        got = results[scenario]
        view, bare_stats, ratio = summarise(got["view"]), summarise(got["bare"]), summarise(got["ratio"])
        all_ratios += got["ratio"]
        report["transactions"][scenario] = {
            "view": view,
            "bare": bare_stats,
            "ratio": ratio,
            "ratio_of_medians": view["median"] / bare_stats["median"],
            "ratio_of_p95": view["p95"] / bare_stats["p95"],
        }
        print(
            f"| {scenario} | {view['n']} | {ms(view['median'])} | {ms(view['p95'])} | {ms(bare_stats['median'])} "
            f"| {ms(bare_stats['p95'])} | {view['median'] / bare_stats['median']:.2f}× "
            f"| {view['p95'] / bare_stats['p95']:.2f}× | {ratio['median']:.2f}× / {ratio['p95']:.2f}× |"
        )
    report["floor"] = summarise(floor)
    report["floor_through_test_client"] = summarise(floor_client)
    minimal_ratios = [r for scenario in scenarios for r in results[scenario]["minimal_ratio"]]
    report["minimal_route"] = {
        "time": summarise([t for sc in scenarios for t in results[sc]["minimal"]]),
        "ratio": summarise(minimal_ratios),
    }
    print(
        f"| (minimal route: bare Flask, same statements, same partial) | {len(minimal_ratios)} "
        f"| {ms(report['minimal_route']['time']['median'])} | {ms(report['minimal_route']['time']['p95'])} "
        f"| | | | | {report['minimal_route']['ratio']['median']:.2f}× / "
        f"{report['minimal_route']['ratio']['p95']:.2f}× |"
    )
    print(
        f"| (floor: GET /auth/session, signed in) | {len(floor)} | {ms(report['floor']['median'])} "
        f"| {ms(report['floor']['p95'])} | | | | | |"
    )
    print(
        f"(the same floor request through Flask's test client: median "
        f"{ms(report['floor_through_test_client']['median'])}, p95 "
        f"{ms(report['floor_through_test_client']['p95'])}; the difference is the client's own work)"
    )
    sizes = [s for scenario in scenarios for s in results[scenario]["gzip"]]
    raws = [s for scenario in scenarios for s in results[scenario]["raw"]]
    brs = [s for scenario in scenarios for s in results[scenario]["br"]]
    report["page_bytes"] = {"gzip": summarise(sizes), "raw": summarise(raws), "br_body": summarise(brs)}
    print(
        f"\n50-row fragment as sent (Brotli body, without headers): median {statistics.median(brs):,.0f} B, "
        f"p95 {percentile(brs, 0.95):,} B, max {max(brs):,} B"
    )
    print(
        f"\n50-row fragment, gzip level 6: median {statistics.median(sizes):,.0f} B, "
        f"p95 {percentile(sizes, 0.95):,} B, max {max(sizes):,} B (uncompressed median "
        f"{statistics.median(raws):,.0f} B; n={len(sizes)}); target ≤ {TARGET_GZIP_BYTES:,} B: "
        f"{'met' if max(sizes) <= TARGET_GZIP_BYTES else 'NOT met'}"
    )
    overall = summarise(all_ratios)
    report["ratio_overall"] = overall
    print(
        f"View / bare over all requests: median {overall['median']:.2f}×, p95 {overall['p95']:.2f}×; "
        f"target ≤ {TARGET_RATIO:.0f}×: {'met' if overall['median'] <= TARGET_RATIO else 'NOT met'} "
        f"at the median"
    )
    print(
        "\n| Dashboard request | n | view median | view p95 | bare median | bare p95 | per-request ratio median / p95 |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, got in dashboard.items():
        view, bare_stats, ratio = summarise(got["view"]), summarise(got["bare"]), summarise(got["ratio"])
        report["dashboard"][label] = {"view": view, "bare": bare_stats, "ratio": ratio}
        print(
            f"| {label} | {view['n']} | {ms(view['median'])} | {ms(view['p95'])} | {ms(bare_stats['median'])} "
            f"| {ms(bare_stats['p95'])} | {ratio['median']:.2f}× / {ratio['p95']:.2f}× |"
        )
    print(
        f"\nMachine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, Python {facts['python']}, "
        f"SQLAlchemy {facts['sqlalchemy']}, {facts['database']}; {date.today().isoformat()}"
    )
    if profile:
        report["profile"] = profile
        print(
            f"\nWhere a view request's time goes (cProfile, {args.profile} requests, cumulative, "
            "so the profiler's own overhead is in every share):"
        )
        for label, share in profile.items():
            print(f"  {share:5.1%}  {label}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
