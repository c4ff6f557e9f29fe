#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind: a figure that does
not move with the machine's load, to tell whether a change made the
transactions request cheaper when wall-clock medians on a shared machine wander
by a factor of two (docs/performance.md).

    .venv/bin/python bench/instructions.py --database-url sqlite:///bench/data/bench.db

For each kind of request — the transactions fragment (`view`), the same
statements and partial in a bare Flask app (`minimal`, see
bench/transactions.py), the bare SQL query (`bare`) and the session poll
(`floor`) — it runs this script again under callgrind with instrumentation off,
warms up, switches counting on (`callgrind_control -i on`) for N requests of
random benchmark accounts, switches it off, and divides. Uses the benchmark
database bench/transactions.py builds; needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KINDS = ("bare", "minimal", "view", "floor")


def child(url: str, kind: str, requests: int, seed: int, first_use: bool = False) -> None:
    """Runs under callgrind: warm up, then count `requests` requests of one kind."""
    from sqlalchemy import select, update

    import demo
    from app import create_app
    from bench.transactions import WsgiCaller, minimal_route_app, sign_in
    from domain import ledger
    from models import Account, Grant, User

    # A clock stopped at the start. The portal writes a session's last activity at most
    # every 5 s and a grant's last use at most once a minute, by the clock; under valgrind
    # the program runs about 50 times slower, so by the wall clock those writes would come
    # 50 times as often as in a real burst of requests (and vary from run to run).
    stopped_at = datetime.now(UTC)
    app = create_app(
        {
            "CLOCK": lambda: stopped_at,
            "DATABASE_URL": url,
            "OUTBOX_THREAD": False,
            "SERVICE_HOURS": "always",
            "SECRET_KEY": "benchmark-only-secret-key-0123456789abcdef",
        }
    )
    engine = app.extensions["portal.engine"]
    with engine.connect() as conn:
        user_id = conn.scalar(select(User.id).where(User.email == demo.BENCH_EMAIL))
        accounts = conn.execute(
            select(Account.id, Account.number)
            .join(Grant, Grant.account_id == Account.id)
            .where(Grant.user_id == user_id)
            .order_by(Account.id)
        ).all()
    with engine.begin() as conn:
        # The same state every run: each grant used just now, as a person's own account is
        # while they click through it (its last use is written once a minute), or, with
        # first_use, never, so that each request writes its grant's last use.
        conn.execute(
            update(Grant).where(Grant.user_id == user_id).values(last_used_at=None if first_use else stopped_at)
        )
    client = app.test_client()
    sign_in(client)
    server, minimal = WsgiCaller(app, client), WsgiCaller(minimal_route_app(engine, user_id), client)
    bare = engine.connect()
    rng = random.Random(seed)
    picks = [accounts[rng.randrange(len(accounts))] for _ in range(requests + 10)]

    def one(account_id: int, number: str) -> None:
        if kind == "bare":
            query = ledger.transactions_query(account_id, ledger.TransactionFilter(), limit=ledger.PAGE_SIZE + 1)
            bare.execute(query.statement, query.params).all()
            bare.rollback()
            return
        if kind == "view":
            _s, status, _b = server.get(
                f"/accounts/{number}/transactions", {"mode": "processed"}, {"HX-Request": "true"}
            )
        elif kind == "minimal":
            _s, status, _b = minimal.get(f"/minimal/{number}", {"mode": "processed"})
        else:
            _s, status, _b = server.get("/auth/session", None, {"X-Background-Request": "true"})
        if status != 200:
            raise SystemExit(f"{kind} answered {status}")

    for account_id, number in picks[:10]:
        one(account_id, number)
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)
    for account_id, number in picks[10:]:
        one(account_id, number)
    subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, stdout=subprocess.DEVNULL)


def count(url: str, kind: str, requests: int, seed: int, first_use: bool = False) -> int:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                kind,
                "--database-url",
                url,
                "--requests",
                str(requests),
                "--seed",
                str(seed),
                *(["--first-use"] if first_use else []),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict and set orders every run
        )
        totals = re.search(r"^totals:\s+(\d+)", out.read_text(errors="replace"), re.MULTILINE)
        return int(totals.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{ROOT / 'bench' / 'data' / 'bench.db'}")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--first-use", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.database_url, args.child, args.requests, args.seed, args.first_use)
        return 0
    per_request = {kind: count(args.database_url, kind, args.requests, args.seed) / args.requests for kind in KINDS}
    print(f"Instructions per request (callgrind, {args.requests} requests each, the same accounts):")
    for kind in KINDS:
        print(f"  {kind:8s} {per_request[kind] / 1e6:6.2f} M   {per_request[kind] / per_request['bare']:.2f}× bare")
    first_use = count(args.database_url, "view", args.requests, args.seed, first_use=True) / args.requests
    print(
        f"  view, each request the first use of its grant in a minute (writes it): {first_use / 1e6:.2f} M; "
        f"view / minimal {per_request['view'] / per_request['minimal']:.2f}×, "
        f"first use {first_use / per_request['minimal']:.2f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
