#!/usr/bin/env python3
"""`make bench`: every performance measurement of docs/performance.md in one run, and
one table of every budget against what was measured.

    .venv/bin/python bench/run.py                 # everything, about 10 minutes
    .venv/bin/python bench/run.py --quick         # fewer requests and runs, about 5 minutes
    .venv/bin/python bench/run.py --only journey,lighthouse

Runs, one after the other (never two at once: the machine has two cores and every
figure is a timing), each writing its JSON and its own tables:

1. bench/transactions.py on SQLite and on PostgreSQL: server time of the
   transactions fragment and the dashboard against the bare queries;
2. bench/throughput.py: gunicorn under wrk on loopback, against a bare route, p99
   at 16 connections, and the 90/10 read/write mix on SQLite;
3. bench/journey.py: the browser journey in Chromium at 3G, Slow 4G and 2G;
4. bench/lighthouse.py: Lighthouse on the sign-in page, dashboard and transactions.

The benchmark database (1,000,000 ledger entries) is built on the first run. Results
go to bench/data/results/<date-time>/ (git-ignored): each script's JSON and Markdown
output, and summary.md, the table of budgets printed at the end. Exits 1 when a
budget is not met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SQLITE_URL = f"sqlite:///{ROOT / 'bench' / 'data' / 'bench.db'}"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/portal_bench")
PARTS = ("server", "throughput", "journey", "lighthouse")


def run(name: str, args: list[str], out: Path) -> tuple[int, float]:
    """One script, its output shown as it goes and kept in <name>.md."""
    print(f"\n## {name}\n\n$ {' '.join(['python'] + [str(a) for a in args])}\n", flush=True)
    started = time.perf_counter()
    with open(out / f"{name}.md", "w") as log:
        process = subprocess.Popen(
            [PYTHON, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = process.wait()
    return code, time.perf_counter() - started


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def summary_rows(out: Path) -> list[tuple[str, str, str, bool | None]]:
    """(budget, measured, limit, met) from every script's JSON; met is None for a figure
    shown for reference."""
    rows: list[tuple[str, str, str, bool | None]] = []
    journey = load(out / "journey.json")
    if journey:
        for profile, steps in journey["summary"].items():
            for step in steps:
                for b in step.get("budgets", []):
                    worst = max(b["measured"]) if b["measured"] else None
                    unit = " ms" if "ms" in b["budget"] else (" B" if "bytes" in b["budget"] else "")
                    rows.append(
                        (
                            f"journey, {profile}: {step['step']}: {b['budget']}",
                            f"max {worst:,}{unit} ({b['runs_ok']}/{b['runs']} runs)" if worst is not None else "—",
                            f"{b['limit']:,}{unit}" if b.get("limit") is not None else "—",
                            b["ok"],
                        )
                    )
    lighthouse = load(out / "lighthouse.json")
    if lighthouse:
        for page in lighthouse["pages"]:
            for category, b in page["budgets"].items():
                rows.append(
                    (
                        f"Lighthouse {category}: {page['page']}",
                        f"median {b['median']:.2f}",
                        f"≥ {b['budget']:.2f}",
                        b["pass"],
                    )
                )
    throughput = load(out / "throughput.json")
    if throughput:
        for db in throughput["databases"]:
            for page, ratio in db["reads"]["ratios"].items():
                reference = ratio.get("reference")
                rows.append(
                    (
                        f"throughput {db['backend']}: {page} req/s ÷ bare route req/s"
                        + (" (for reference: the cheapest signed-in request)" if reference else ""),
                        f"{ratio['overall']:.0%} (rounds {', '.join(f'{r:.0%}' for r in ratio['per_round'])})",
                        "—" if reference else f"≥ {ratio['budget']:.0%}",
                        None if reference else ratio["pass"],
                    )
                )
            for page, p99 in db.get("p99", {}).items():
                rows.append(
                    (
                        f"p99 at 16 connections, {db['backend']}: {page}",
                        f"median of rounds {ms(p99['median_round_ms'])}, worst {ms(p99['worst_round_ms'])}",
                        f"≤ {ms(p99['budget_ms'])}",
                        p99["pass"],
                    )
                )
            for mix in db.get("mix", []) or []:
                rows.append(
                    (
                        f"90/10 mix on {db['backend']}, {mix['workers']} workers × {mix['threads']} threads: "
                        f"'database is locked', 5xx",
                        f"{mix['log']['database is locked']} locked, {mix['status']['5xx']} 5xx",
                        "0",
                        mix["pass"],
                    )
                )
    for backend in ("sqlite", "postgresql"):
        server = load(out / f"server-{backend}.json")
        if server:
            overall = server["ratio_overall"]
            rows.append(
                (
                    f"server time {backend}: transactions fragment ÷ bare query (per request)",
                    f"median {overall['median']:.1f}×, p95 {overall['p95']:.1f}×",
                    "≤ 3×",
                    overall["median"] <= 3,
                )
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests and runs (a check, not the figures)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--no-postgres", action="store_true", help="server time on SQLite only")
    parser.add_argument("--out", type=Path, help="results folder (default bench/data/results/<date-time>)")
    args = parser.parse_args()
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    out = args.out or ROOT / "bench" / "data" / "results" / datetime.now().strftime("%Y-%m-%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    codes: dict[str, int] = {}
    seconds: dict[str, float] = {}

    if "server" in parts:
        backends = [("sqlite", SQLITE_URL)] + ([] if args.no_postgres else [("postgresql", POSTGRES_URL)])
        for backend, url in backends:
            codes[f"server-{backend}"], seconds[f"server-{backend}"] = run(
                f"server-{backend}",
                [
                    "bench/transactions.py",
                    "--database-url",
                    url,
                    "--requests",
                    90 if quick else 400,
                    "--dashboard-requests",
                    12 if quick else 60,
                    "--json",
                    out / f"server-{backend}.json",
                ],
                out,
            )
    if "throughput" in parts:
        codes["throughput"], seconds["throughput"] = run(
            "throughput",
            [
                "bench/throughput.py",
                "--database-url",
                SQLITE_URL,
                "--json",
                out / "throughput.json",
                *(["--rounds", 1, "--duration", 4, "--mix-duration", 6] if quick else []),
            ],
            out,
        )
    if "journey" in parts:
        codes["journey"], seconds["journey"] = run(
            "journey",
            [
                "bench/journey.py",
                "--database-url",
                SQLITE_URL,
                "--runs",
                1 if quick else 3,
                "--json",
                out / "journey.json",
            ],
            out,
        )
    if "lighthouse" in parts:
        codes["lighthouse"], seconds["lighthouse"] = run(
            "lighthouse",
            [
                "bench/lighthouse.py",
                "--database-url",
                SQLITE_URL,
                "--runs",
                1 if quick else 3,
                "--json",
                out / "lighthouse.json",
            ],
            out,
        )

    rows = summary_rows(out)
    lines = ["| Budget | Measured | Budget | Met |", "| --- | --- | --- | --- |"]
    lines += [
        f"| {name} | {measured} | {limit} | {'—' if met is None else 'yes' if met else '**no**'} |"
        for name, measured, limit, met in rows
    ]
    rows = [row for row in rows if row[3] is not None]  # budgets only from here
    met = sum(1 for row in rows if row[3])
    lines.append("")
    lines.append(
        f"{met} of {len(rows)} budgets met. Run {out.name}; "
        + ", ".join(f"{name} {secs:.0f} s" for name, secs in seconds.items())
        + "."
    )
    crashed = [name for name, code in codes.items() if code not in (0, 1)]
    if crashed:
        lines.append(f"Failed to run: {', '.join(crashed)} (see their .md files).")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    print(f"\n## Summary ({out / 'summary.md'})\n\n{text}")
    return 0 if met == len(rows) and not crashed else 1


if __name__ == "__main__":
    sys.exit(main())
