"""Where a test run's time went, from pytest's JUnit report: the slowest tests, and
the total of each part of the suite (database tests on SQLite and on PostgreSQL,
browser tests, the rest), so a run that grows slower says where.

    python .ci/timings.py test-artifacts/junit.xml [--slowest 15]

Each test's time is its set-up, call and tear-down together. The parts' times add
up the workers' time, so with two workers they come to about twice the wall time.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import Counter

PARTS = ("database, SQLite", "database, PostgreSQL", "browser", "the rest")


def part_of(module: str, name: str) -> str:
    if module.startswith("tests.browser."):
        return "browser"
    parameters = name.partition("[")[2]
    if parameters.startswith("sqlite") or "-sqlite" in parameters:
        return "database, SQLite"
    if parameters.startswith("postgresql") or "-postgresql" in parameters:
        return "database, PostgreSQL"
    return "the rest"


def read(path: str) -> list[tuple[str, str, float]]:
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        module = ".".join(p for p in case.get("classname", "").split(".") if not p[:1].isupper())
        cases.append((module, case.get("name", ""), float(case.get("time") or 0)))
    return cases


def report(cases: list[tuple[str, str, float]], slowest: int) -> str:
    seconds, counts = Counter(), Counter()
    for module, name, took in cases:
        part = part_of(module, name)
        seconds[part] += took
        counts[part] += 1
    lines = [f"Slowest {slowest} of {len(cases)} tests (set-up and tear-down included):"]
    for module, name, took in sorted(cases, key=lambda case: -case[2])[:slowest]:
        lines.append(f"  {took:7.2f} s  {module.replace('.', '/')}.py::{name}")
    lines.append("Time by part (all workers added up):")
    for part in PARTS:
        lines.append(f"  {part:22s} {seconds[part]:7.0f} s  {counts[part]:5d} tests")
    lines.append(f"  {'all':22s} {sum(seconds.values()):7.0f} s  {len(cases):5d} tests")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit")
    parser.add_argument("--slowest", type=int, default=15)
    args = parser.parse_args()
    print(report(read(args.junit), args.slowest))


if __name__ == "__main__":
    main()
