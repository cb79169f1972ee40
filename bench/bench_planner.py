"""(a) Plan a day of check-ins for 100k and 1M members with `schedules.planner.plan_checkins`.

Each size gets a fresh SQLite file built by one child process (not measured), then planned by
another, so peak RSS (ru_maxrss) belongs to that size's planning alone. The plans: daily, at one
of 20 local times (08:00..17:30), over 4 zones, in groups of 30; each plan is bookmarked at
`now` (00:00 UTC), and the planner is run with a 24 h horizon, so every plan yields exactly one
check-in row: N plans -> N rows.

Also measured: the *next* tick's planning pass, 5 s later (tick runs `plan_checkins` every
tick_seconds), which must find nothing new and, since the low-water mark, look at no plan
(`next_tick_replan_s` ~ 0); and the pass where the bookmarks fall below the low-water mark
(a third of the horizon on, here 8 h: about twice a day at the default 36 h), which plans every
plan again up to the new horizon (`low_water_replan_s`). During both, whether a concurrent short
write transaction (a webhook's) gets SQLite's write lock: plan_checkins runs in one transaction,
and on SQLite every transaction starts with BEGIN IMMEDIATE (busy timeout 10 s).

    python -m bench.bench_planner [--quick] [--sizes 100000,1000000] [--profile-size 100000]

Targets (issue 6): 1M planned in < 60 s and < 500 MB peak RSS.
"""
from __future__ import annotations

import argparse
import threading
import time
from datetime import timedelta

from bench.common import (current_rss_mb, emit, log, peak_rss_mb, profile_top, run_child, scratch,
                          sqlite_url, target, utc)

NAME = "planner"
NOW = utc(2026, 6, 15)  # a Monday, 00:00 UTC
DAY = timedelta(hours=24)


class _WriterProbe(threading.Thread):
    """Every 0.5 s, a short write transaction on another connection (what a webhook does):
    how long it waits for SQLite's write lock, and whether it gives up ("database is locked")."""

    def __init__(self, engine: object) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.stop = threading.Event()
        self.waits: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        from sqlalchemy.exc import OperationalError

        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                with self.engine.begin() as conn:  # type: ignore[attr-defined]
                    conn.exec_driver_sql("SELECT 1")
            except OperationalError as error:
                self.errors.append(str(error.orig))
            self.waits.append(time.perf_counter() - started)
            self.stop.wait(0.5)

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=30)

    def report(self) -> dict:
        return {"attempts": len(self.waits), "max_wait_s": round(max(self.waits, default=0.0), 2),
                "gave_up_locked": len(self.errors), "errors": sorted(set(self.errors))}


def _db(n: int) -> str:
    return sqlite_url(scratch(f"planner_{n}.db"))


def build(n: int, url: str) -> dict:
    from phonetree.db import get_engine

    from bench.common import build_population

    started = time.perf_counter()
    engine = get_engine(url)
    counts = build_population(engine, n, created_at=NOW - timedelta(days=1), planned_until=NOW)
    return {"setup_s": round(time.perf_counter() - started, 2), **counts}


def plan(n: int, url: str, profile: bool) -> dict:
    from sqlalchemy import func, select

    from phonetree.db import get_engine, session_scope
    from phonetree.models import CheckIn
    from schedules.planner import plan_checkins

    engine = get_engine(url)
    with engine.connect() as conn:  # open the pool's connection before the baseline
        conn.exec_driver_sql("SELECT 1")
    baseline = {"rss_before_mb": current_rss_mb(), "peak_rss_before_mb": peak_rss_mb()}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(engine) as session:
        created = plan_checkins(session, NOW, horizon=DAY)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
    peak = peak_rss_mb()
    with session_scope(engine) as session:
        rows = session.scalar(select(func.count()).select_from(CheckIn))
    # The next tick, 5 s later: nothing new is due inside the horizon, yet the pass runs again.
    # Meanwhile another thread tries a write transaction every 0.5 s, as a webhook would.
    probe = _WriterProbe(engine)
    probe.start()
    started = time.perf_counter()
    with session_scope(engine) as session:
        again = plan_checkins(session, NOW + timedelta(seconds=5), horizon=DAY)
    replan = time.perf_counter() - started
    probe.finish()
    # Once the low-water mark passes the bookmarks: every plan again, up to the new horizon.
    from schedules.planner import low_water_mark

    crossing = NOW + DAY / 3 + timedelta(seconds=5)
    assert low_water_mark(crossing, DAY) > NOW + DAY
    refill_probe = _WriterProbe(engine)
    refill_probe.start()
    started = time.perf_counter()
    with session_scope(engine) as session:
        refilled = plan_checkins(session, crossing, horizon=DAY)
    refill = time.perf_counter() - started
    refill_probe.finish()
    result = {
        "n": n, "created": created, "rows_in_table": rows, "plan_s": round(elapsed, 2), "plan_cpu_s": round(cpu, 2),
        "rows_per_s": round(created / elapsed) if elapsed else None,
        "peak_rss_mb": peak, **baseline,
        "next_tick_replan_s": round(replan, 2), "next_tick_replan_created": again,
        "writer_probe_during_replan": probe.report(),
        "low_water_replan_s": round(refill, 2), "low_water_replan_created": refilled,
        "writer_probe_during_low_water_replan": refill_probe.report(),
        "profiled": profile,
    }
    if profiler is not None:
        result["profile_top_tottime"] = profile_top(profiler, 12, "tottime")
        result["profile_top_cumulative"] = profile_top(profiler, 12, "cumulative")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k and 100k instead of 100k and 1M")
    parser.add_argument("--sizes", help="comma-separated plan counts")
    parser.add_argument("--profile-size", type=int, default=None,
                        help="also run this size under cProfile (default: the smallest size)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--child", choices=["build", "plan"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "build":
        import json
        print(json.dumps(build(args.n, args.db)))
        return
    if args.child == "plan":
        import json
        print(json.dumps(plan(args.n, args.db, args.profile)))
        return

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else \
        ([10_000, 100_000] if args.quick else [100_000, 1_000_000])
    runs = []
    for n in sizes:
        url = _db(n)
        log(f"planner: building {n} plans in {url}")
        setup = run_child("bench.bench_planner", "--child", "build", "--n", str(n), "--db", url)
        log(f"planner: built in {setup['setup_s']} s; planning")
        result = run_child("bench.bench_planner", "--child", "plan", "--n", str(n), "--db", url)
        log(f"planner: {n} -> {result['plan_s']} s, {result['peak_rss_mb']} MB")
        runs.append({**result, "setup_s": setup["setup_s"]})
    profile = None
    if not args.no_profile:
        n = args.profile_size or min(sizes)
        url = _db(n)
        run_child("bench.bench_planner", "--child", "build", "--n", str(n), "--db", url)
        log(f"planner: profiling {n}")
        profile = run_child("bench.bench_planner", "--child", "plan", "--n", str(n), "--db", url,
                            "--profile")
    for n in sizes:
        scratch(f"planner_{n}.db")  # remove the big files
    biggest = max(runs, key=lambda r: r["n"])
    targets = []
    if biggest["n"] >= 1_000_000:
        targets = [target("1M planned: seconds", biggest["plan_s"], 60),
                   target("1M planned: peak RSS MB", biggest["peak_rss_mb"], 500),
                   # An ordinary tick must not re-plan (it holds SQLite's write lock meanwhile).
                   target("1M next tick's planning: seconds", biggest["next_tick_replan_s"], 1)]
    emit(NAME, {"database": "sqlite file", "horizon_h": 24, "zones": 4, "distinct_times": 20,
                "group_size": 30, "runs": runs, "targets": targets, "profile": profile})


if __name__ == "__main__":
    main()
