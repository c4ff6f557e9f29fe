"""Load (issue 8, Reliability): the main journeys of bench/locustfile.py under real gunicorn
(2 workers x 4 threads, as `make run`), locust headless on loopback, in processes of their
own (bench/load.py; locust's gevent must not patch the test process).

The long run (`--long`, `make proof`): 50 people for 4 minutes; no 5xx, failures under
0.1% (whole run), every page and fragment read within the p95 budget once every user has
started. The smoke run (every CI run):
5 people for 15 s, each first running every task once, so the locustfile cannot rot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "bench" / "load.py"

TAXPAYER_TASKS = {
    "sign in",
    "dashboard",
    "dashboard search",
    "session poll",
    "transactions",
    "filter by period",
    "filter by dates",
    "next page",
    "returns list",
    "save draft",
    "file return",
    "messages",
    "upload",
    "sign out",
}
OFFICER_TASKS = {"staff sign in", "staff home", "staff search", "staff open account"}
# Every journey step the locustfile names, each of which must have been asked at least once.
STEPS = {
    "taxpayer: sign-in page",
    "taxpayer: sign in",
    "taxpayer: dashboard",
    "taxpayer: dashboard search (fragment)",
    "taxpayer: session timer poll",
    "taxpayer: transactions page",
    "taxpayer: filter by period (fragment)",
    "taxpayer: filter by dates (fragment)",
    "taxpayer: next page (fragment)",
    "taxpayer: returns",
    "taxpayer: file a return",
    "taxpayer: begin a return",
    "taxpayer: return figures",
    "taxpayer: autosave draft (fragment)",
    "taxpayer: return figures continue",
    "taxpayer: return check",
    "taxpayer: file the return",
    "taxpayer: messages",
    "taxpayer: message thread",
    "taxpayer: upload page",
    "taxpayer: upload a PDF",
    "taxpayer: profile",
    "taxpayer: sign out",
    "staff: sign-in page",
    "staff: sign in",
    "staff: home",
    "staff: search (fragment)",
    "staff: account",
}


def _postgres_name(db_backend: str) -> str:
    """A database of the test's own on the local PostgreSQL (made and dropped here)."""
    if db_backend != "postgresql":
        return "unused"
    return postgres_or_skip("portal_load")


def postgres_or_skip(prefix: str) -> str:
    """A new database name on the local PostgreSQL, after checking the server answers:
    skipped when it does not, failed under CI (where it must)."""
    import psycopg

    from tests.conftest import POSTGRES_ADMIN_URL, UNDER_CI

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3):
            pass
    except psycopg.OperationalError as error:
        if UNDER_CI:
            pytest.fail(f"PostgreSQL is required under CI and is not reachable: {error}")
        pytest.skip(f"PostgreSQL not reachable: {error}")
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _drop(name: str) -> None:
    if name == "unused":
        return
    import psycopg

    from tests.conftest import POSTGRES_ADMIN_URL

    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _load(db_backend: str, tmp_path: Path, *args: str, timeout: int) -> tuple[int, dict, str]:
    name = _postgres_name(db_backend)
    out = tmp_path / "load.json"
    try:
        done = subprocess.run(
            [
                sys.executable,
                str(LOAD),
                "--database",
                db_backend,
                "--work-dir",
                str(tmp_path / "work"),
                "--json",
                str(out),
                "--postgres-database",
                name,
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        _drop(name)
    assert out.exists(), f"bench/load.py wrote no result:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.returncode, json.loads(out.read_text()), done.stdout


def test_locust_smoke_every_journey_runs_without_failure(db_backend, tmp_path):
    """ASVS 5.0 15.2.2 (availability under use; the smoke keeps the load run honest): 5 people
    (one an officer) for 15 s on gunicorn, each running every task once first; every request
    answered as the journey expects, no 5xx, no traceback, every task and journey step ran."""
    _code, result, printed = _load(
        db_backend, tmp_path, "--users", "5", "--officers", "1", "--duration", "15s", "--tour", timeout=240
    )
    assert result["failures"] == 0, printed
    assert result["server_errors_5xx"] == 0, printed
    assert result["server_log_tracebacks"] == 0, printed
    assert result["locust_exit"] == 0, printed
    assert set(result["tasks_run"]) >= TAXPAYER_TASKS | OFFICER_TASKS, result["tasks_run"]
    asked = {step["name"] for step in result["steps"] if step["requests"] > 0}
    assert asked >= STEPS, f"steps never asked: {sorted(STEPS - asked)}"
    assert result["requests"] >= len(STEPS)


@pytest.mark.long
def test_locust_many_people_for_four_minutes(db_backend, tmp_path):
    """ASVS 5.0 15.2.2: 50 people (45 taxpayers, 5 officers) for 4 minutes on gunicorn 2 x 4:
    no 5xx, failures under 0.1% of requests, p95 of every page and fragment read within the
    budget of docs/performance.md (50 ms)."""
    # As root, the run gets a session of its own at niceness -10 (bench/load.py --priority),
    # so the other work of a shared machine does not stretch the figures: the budget is for
    # a VM the portal has to itself.
    priority = ["--priority", "-10"] if os.geteuid() == 0 else []
    code, result, printed = _load(db_backend, tmp_path, "--users", "50", "--duration", "4m", *priority, timeout=900)
    print(printed)
    assert result["requests"] > 5000, printed
    assert result["server_errors_5xx"] == 0, printed
    assert result["failure_ratio"] < 0.001, printed
    assert not result["over_budget"], printed
    assert result["checks"]["no_server_traceback"], printed
    assert code == 0, printed
