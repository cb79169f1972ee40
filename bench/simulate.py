"""The long run of the issue 11 simulation: fresh seeds, every failing one shrunk, printed as a
story and saved to tests/simulation_seeds.txt (which CI replays).

    python -m bench.simulate --scenarios 10000 --seed 1000      # seeds 1000..10999
    python -m bench.simulate --seed 1234 --scenarios 1          # one seed, its whole story
    python -m bench.simulate --scenarios 500 --postgres 0.1     # every 10th scenario on PostgreSQL
    python -m bench.simulate --minutes 30                       # as many as fit in half an hour

Prints one JSON line at the end: scenarios, steps, violations (by code), crashes, the rate.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.simulation.runner import Result, empty_postgres, fresh_sqlite, run_scenario
from tests.simulation.shrink import shrink
from tests.simulation.world import make_scenario

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "simulation_seeds.txt"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


_STARTED_AT = None  # the commit whose code this process runs (HEAD may move while it runs)


def save_seed(seed: int, database: str, result: Result) -> None:
    assert result.violation is not None
    known = SEEDS.read_text() if SEEDS.exists() else ""
    if any(line.split("#")[0].split() == [str(seed), database] for line in known.splitlines()):
        return
    title = result.violation.line().replace("\n", " ")[:150]
    with SEEDS.open("a") as out:
        out.write(f"{seed} {database}  # {title} (found at {_STARTED_AT or commit()})\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=None,
                        help="how many (default 100, or as many as --minutes allows)")
    parser.add_argument("--seed", type=int, default=None, help="the first seed (default: a fresh one)")
    parser.add_argument("--minutes", type=float, default=None, help="stop starting new scenarios after this long")
    parser.add_argument("--postgres", type=float, default=0.0, help="the share of scenarios run on PostgreSQL")
    parser.add_argument("--skip", default="", help="comma-separated violation codes (or parts of them, e.g. -outage) to ignore: known, open bugs")
    parser.add_argument("--no-save", action="store_true", help="don't append failing seeds to the seeds file")
    parser.add_argument("--no-shrink", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="one line per failing seed, no stories")
    args = parser.parse_args(argv)
    global _STARTED_AT
    _STARTED_AT = commit()
    logging.getLogger().addHandler(logging.NullHandler())  # phonetree's warnings are part of the story, not stderr
    first = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "big") * 1000
    skip = frozenset(c for c in args.skip.split(",") if c)
    work = Path(tempfile.mkdtemp(prefix="phonetree-sim-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    server = None
    if args.postgres:
        from tests.conftest import fresh_postgres_database
        from tests.pg import PostgresServer

        server = PostgresServer()
        base = server.start()

    pg_url: str | None = None

    def database(seed: int, pg: bool) -> str:
        # One SQLite file and one PostgreSQL database for the whole run, renewed per scenario
        # (so the runner's engines, and their compiled statements, are reused: see runner.py).
        nonlocal pg_url
        if pg:
            if pg_url is None:
                pg_url = fresh_postgres_database(base)
            return empty_postgres(pg_url)
        return fresh_sqlite(work, "sim.db")

    started = time.monotonic()
    totals: Counter[str] = Counter()
    steps = crashes = ran = 0
    failing: list[int] = []
    try:
        # --minutes alone means as many as fit: the default 100 capped a 75-minute run at 100.
        count = args.scenarios if args.scenarios is not None else (10**9 if args.minutes is not None else 100)
        for n in range(count):
            if args.minutes is not None and time.monotonic() - started > args.minutes * 60:
                break
            seed = first + n
            pg = bool(args.postgres) and n % max(1, round(1 / args.postgres)) == 0
            scenario = make_scenario(seed)
            result = run_scenario(scenario, database(seed, pg), skip)
            ran += 1
            steps += result.steps
            crashes += result.crashes
            if ran % 10 == 0:
                print(f"... {ran} scenarios (seeds {first}..{seed}), {steps} steps, {sum(totals.values())} violations, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
            if result.violation is None:
                if args.scenarios == 1 and not args.quiet:
                    print(f"seed {seed}: no violation in {result.steps} steps")
                continue
            totals[result.violation.code] += 1
            failing.append(seed)
            print(f"seed {seed} ({result.database}): {result.violation.line()}", flush=True)
            if not args.no_save:
                save_seed(seed, result.database, result)
            if args.quiet:
                continue
            print(result.story, "\n", flush=True)
            if not args.no_shrink:
                small, shrunk, removed = shrink(scenario, lambda s: run_scenario(s, database(seed, pg), skip),
                                                result.violation.code)
                if shrunk is not None:
                    print(f"--- seed {seed} shrunk ({'; '.join(removed)}):\n{shrunk.story}\n", flush=True)
    finally:
        if server is not None:
            server.stop()
    elapsed = time.monotonic() - started
    print(json.dumps({"first_seed": first, "scenarios": ran, "steps": steps, "violations": sum(totals.values()),
                      "by_code": dict(totals), "crashes": crashes, "seconds": round(elapsed, 1),
                      "scenarios_per_minute": round(ran / elapsed * 60, 1) if elapsed else None,
                      "commit": _STARTED_AT, "failing_seeds": failing[:50]}))
    return 1 if totals else 0


if __name__ == "__main__":
    sys.exit(main())
