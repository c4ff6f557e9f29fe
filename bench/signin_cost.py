#!/usr/bin/env python3
"""What one sign-in costs the server: the argon2id check of a password, with the
portal's parameters and with OWASP's minimum, in CPU time per check and checks per
core-second (issue 21, budget c).

    .venv/bin/python bench/signin_cost.py              # 20 checks each
    .venv/bin/python bench/signin_cost.py --checks 50 --json signin.json

The portal hashes with argon2-cffi's defaults (RFC 9106's second recommended
option): 64 MiB, 3 passes, 4 lanes, unless ARGON2_TIME_COST / ARGON2_MEMORY_KIB say
otherwise. OWASP's Password Storage Cheat Sheet asks for at least 19 MiB, 2 passes,
1 lane (m=19456, t=2, p=1). A check is `PasswordHasher.verify` of the right password:
what a sign-in spends (a wrong password or an unknown email costs the same, by
design). CPU time is the process's (time.process_time): the 4 lanes run on argon2's
own threads, so on 2 cores a check's wall time is shorter than its CPU time, and
CPU time is what bounds sign-ins per second on a busy server.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from argon2 import PasswordHasher

PASSWORD = "correct-horse-battery-staple-42"


@dataclass(frozen=True)
class Parameters:
    name: str
    memory_kib: int
    time_cost: int
    parallelism: int

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism)


def portal_parameters() -> Parameters:
    defaults = PasswordHasher()
    return Parameters("portal (argon2-cffi defaults)", defaults.memory_cost, defaults.time_cost, defaults.parallelism)


OWASP_MINIMUM = Parameters("OWASP minimum", 19_456, 2, 1)


@dataclass
class Cost:
    parameters: Parameters
    checks: int
    cpu_ms_median: float
    cpu_ms_max: float
    wall_ms_median: float
    checks_per_core_second: float


def measure(parameters: Parameters, checks: int) -> Cost:
    hasher = parameters.hasher()
    stored = hasher.hash(PASSWORD)
    hasher.verify(stored, PASSWORD)  # warm: the first allocation of the memory is dearer
    cpu, wall = [], []
    for _ in range(checks):
        c0, w0 = time.process_time(), time.perf_counter()
        assert hasher.verify(stored, PASSWORD)
        cpu.append((time.process_time() - c0) * 1000)
        wall.append((time.perf_counter() - w0) * 1000)
    median_cpu = statistics.median(cpu)
    return Cost(
        parameters,
        checks,
        round(median_cpu, 1),
        round(max(cpu), 1),
        round(statistics.median(wall), 1),
        round(1000 / median_cpu, 1),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    costs = [measure(portal_parameters(), args.checks), measure(OWASP_MINIMUM, args.checks)]
    print(f"# Sign-in cost: argon2id checks on {os.cpu_count()} cores, {args.checks} checks each\n")
    print("| parameters | memory | passes | lanes | CPU per check (median, max) | wall (median) | per core-second |")
    print("|---|---|---|---|---|---|---|")
    for cost in costs:
        p = cost.parameters
        print(
            f"| {p.name} | {p.memory_kib // 1024} MiB | {p.time_cost} | {p.parallelism} "
            f"| {cost.cpu_ms_median} ms, {cost.cpu_ms_max} ms | {cost.wall_ms_median} ms "
            f"| {cost.checks_per_core_second} |"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in costs], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
