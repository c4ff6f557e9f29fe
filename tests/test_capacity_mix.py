"""The capacity figure (issue 21): bench/load.py --capacity and the locustfile's deadline-day
mix (DeadlineTaxpayer). How a count is judged and the figure chosen, on made-up results; and a
smoke of the mix on PostgreSQL: 3 taxpayers, each first running every action once (no think
time), so the deadline-day visit cannot rot. The real measurement is long and wants a quiet
machine: docs/reliability.md and bench/load.py's docstring say how to run it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import CAPACITY_P95_MS, capacity_figure, capacity_table, capacity_verdict, users_list

ROOT = Path(__file__).resolve().parents[1]
LOAD = ROOT / "bench" / "load.py"

DEADLINE_TASKS = {
    "sign in",
    "dashboard",
    "account summary",
    "transactions",
    "filter by period",
    "filter by dates",
    "next page",
    "returns list",
    "save draft",
    "file return",
    "upload",
    "download CSV",
    "messages",
    "sign out",
}


def _result(users: int, *, p95: float = 120, failures: int = 0, server_errors: int = 0) -> dict:
    """What bench/load.py's measure() gives, with only what the capacity code reads."""
    result = {
        "users": users,
        "rps": users / 12,
        "requests": users * 20,
        "steady_requests": users * 15,
        "failures": failures,
        "server_errors_5xx": server_errors,
        "server_log_tracebacks": 0,
        "locust_exit": 0,
        "p50_ms": 20,
        "p95_ms": p95,
        "p99_ms": p95 * 2,
        "steady": {"reads": {"p50_ms": 15, "p95_ms": p95 - 10, "p99_ms": p95}},
        "steps": [{"name": "taxpayer: sign in", "rps": users / 250}],
        "cpu": {
            "cores": 2,
            "machine_busy_cores": 1.5,
            "server_cores": 0.9,
            "postgres_cores": 0.3,
            "locust_cores": 0.2,
            "other_cores": 0.1,
        },
        "locust_cpu_warning": False,
        "mix_settings": {"name": "deadline", "think_s": [5, 30], "visit_actions": [8, 16]},
    }
    result["capacity"] = capacity_verdict(result)
    return result


def test_users_list_is_ascending_positive_and_unique():
    assert users_list("500, 250,1250,250") == [250, 500, 1250]
    with pytest.raises(argparse.ArgumentTypeError):
        users_list("0,250")


def test_a_count_holds_only_within_the_p95_budget_and_without_any_error():
    assert _result(1000, p95=CAPACITY_P95_MS)["capacity"]["held"]
    assert not _result(1000, p95=CAPACITY_P95_MS + 1)["capacity"]["held"]
    assert not _result(1000, failures=1)["capacity"]["held"]
    assert not _result(1000, server_errors=1)["capacity"]["held"]
    unmeasured = _result(1000)
    unmeasured["steady_requests"] = 0
    assert not capacity_verdict(unmeasured)["held"]


def test_the_figure_is_the_largest_count_below_the_first_that_did_not_hold():
    assert capacity_figure([_result(500), _result(250), _result(750)]) == 750
    # A larger count that happens to hold after one that did not is not the figure.
    assert capacity_figure([_result(250), _result(500, p95=400), _result(750)]) == 250
    assert capacity_figure([_result(250, failures=3)]) is None


def test_the_table_has_a_row_per_count_and_states_the_figure_and_locusts_share():
    steps = [_result(250), _result(500), _result(750, p95=450)]
    report = {
        "steps": steps,
        "capacity_users": capacity_figure(steps),
        "meets_target": False,
        "target_users": 1000,
        "p95_budget_ms": CAPACITY_P95_MS,
        "mix": "deadline",
        "database": "postgresql",
        "workers": 2,
        "threads": 4,
        "cores": 2,
        "ramp": "2m",
        "duration": "5m",
    }
    table = capacity_table(report)
    rows = [line for line in table.splitlines() if line.startswith(("| 250 ", "| 750 "))]
    assert len(rows) == 2
    assert "no: p95_within_budget" in rows[1]
    assert "**500 simulated taxpayers**" in table
    assert "NOT met" in table
    assert "think time 5-30 s" in table
    assert "Locust ran on the same 2 cores: 0.2 of a core at 750 users" in table


def _postgres_or_skip() -> str:
    from tests.reliability.test_load import postgres_or_skip

    return postgres_or_skip("portal_capacity")


def test_deadline_mix_smoke_every_action_runs_without_failure(tmp_path):
    """ASVS 5.0 15.2.2: bench/load.py --capacity at 3 taxpayers for 15 s on PostgreSQL, each
    first taking every deadline-day action once and then a new visit: every request answered
    as the visit expects, no 5xx, no traceback; the report names the count and its figures."""
    import psycopg

    from tests.conftest import POSTGRES_ADMIN_URL

    name = _postgres_or_skip()
    out = tmp_path / "capacity.json"
    try:
        done = subprocess.run(
            [
                sys.executable,
                str(LOAD),
                "--capacity",
                "--users-list",
                "3",
                "--ramp",
                "0",
                "--duration",
                "15s",
                "--tour",
                "--target",
                "1",
                "--work-dir",
                str(tmp_path / "work"),
                "--postgres-database",
                name,
                "--json",
                str(out),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert out.exists(), f"bench/load.py wrote no result:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(out.read_text())
    [step] = report["steps"]
    printed = done.stdout
    assert step["mix"] == "deadline", printed
    assert step["failures"] == 0, printed
    assert step["server_errors_5xx"] == 0, printed
    assert step["server_log_tracebacks"] == 0, printed
    assert step["locust_exit"] == 0, printed
    assert set(step["tasks_run"]) >= DEADLINE_TASKS, step["tasks_run"]
    assert "session poll" not in step["tasks_run"], step["tasks_run"]
    assert step["tasks_run"]["sign in"] >= 6, step["tasks_run"]  # each user's first visit and the next
    asked = {s["name"] for s in step["steps"] if s["requests"] > 0}
    assert {"taxpayer: account summary", "taxpayer: transactions CSV", "taxpayer: file the return"} <= asked
    assert not any(name.startswith("staff:") for name in asked), asked
    assert step["steady"]["reads"]["requests"] > 0
    assert "postgres_cores" in step["cpu"]
    # Whether 3 users held depends on the machine (a busy one stretches p95): only its errors are judged here.
    checks = step["capacity"]["checks"]
    assert checks["no_failures"] and checks["no_5xx"] and checks["measured"], printed
    assert report["capacity_users"] in (3, None), printed
    assert "| 3 |" in printed
