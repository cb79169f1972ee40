"""(a) Plan a day of check-ins for 100k and 1M members with `schedules.planner.plan_checkins`.

Each size gets a fresh SQLite file built by one child process (not measured), then planned by
another, so peak RSS (ru_maxrss) belongs to that size's planning alone. The plans: daily, at one
of 20 local times (08:00..17:30), over 4 zones, in groups of 30; each plan is bookmarked at
`now` (00:00 UTC), and the planner is run with a 24 h horizon, so every plan yields exactly one
check-in row: N plans -> N rows.

The planner commits a chunk (planner.CHUNK plans) at a time and a pass stops after
planner.BUDGET, the rest left to the next tick; here passes run back to back until one finds
nothing (`plan_s` is their sum, `plan_passes` how many, `*_transactions` the longest time one
of them held SQLite's write lock).

Also measured: the *next* tick's planning pass, 5 s later (tick runs `plan_checkins` every
tick_seconds), which must find nothing new and, since the low-water mark, look at no plan
(`next_tick_replan_s` ~ 0); and the passes once the bookmarks fall below the low-water mark
(a third of the horizon on, here 8 h: about twice a day at the default 36 h), which plan every
plan again up to the new horizon (`low_water_replan_s`). During both, two probes of how long a
short write transaction (a webhook's) waits for SQLite's write lock: one every 50 ms through
the process's own writer lock (a webhook thread of `phonetree run`), one every 0.5 s straight to
SQLite (another process; on SQLite every transaction starts with BEGIN IMMEDIATE, busy timeout
10 s).

    python -m bench.bench_planner [--quick] [--sizes 100000,1000000] [--profile-size 100000]

Targets (issue 6): 1M planned in < 60 s and < 500 MB peak RSS; the top-up holds the write lock
no more than 1 s at a time.
"""
from __future__ import annotations

import argparse
import threading
import time
from datetime import datetime, timedelta

from bench.common import (current_rss_mb, emit, log, peak_rss_mb, percentile, profile_top, run_child,
                          scratch, sqlite_url, target, utc)

NAME = "planner"
NOW = utc(2026, 6, 15)  # a Monday, 00:00 UTC
DAY = timedelta(hours=24)


class _WriterProbe(threading.Thread):
    """Every `every` s, a short write transaction on another connection, as a webhook makes:
    how long it waits for SQLite's write lock, and whether it gives up ("database is locked").
    `in_process`: through `connection_scope`, queueing on the process's writer lock as the
    webhook threads of `phonetree run` do; otherwise straight to SQLite, whose busy handler
    polls with sleeps of up to 100 ms, as a writer in another process (a CLI command) meets it.
    (Every transaction here begins with BEGIN IMMEDIATE, so even `SELECT 1` takes the lock.)"""

    def __init__(self, engine: object, every: float, in_process: bool) -> None:
        super().__init__(daemon=True)
        self.engine, self.every, self.in_process = engine, every, in_process
        self.stop = threading.Event()
        self.waits: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        from sqlalchemy.exc import OperationalError

        from phonetree.db import connection_scope

        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                scope = connection_scope(self.engine) if self.in_process else self.engine.begin()  # type: ignore[attr-defined]
                with scope as conn:
                    conn.exec_driver_sql("SELECT 1")
            except OperationalError as error:
                self.errors.append(str(error.orig))
            self.waits.append(time.perf_counter() - started)
            self.stop.wait(self.every)

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=30)

    def report(self) -> dict:
        waits = sorted(self.waits)
        return {"every_s": self.every, "attempts": len(waits),
                "max_wait_s": round(waits[-1] if waits else 0.0, 3),
                "p99_wait_s": round(percentile(waits, 99), 3) if waits else 0.0,
                "gave_up_locked": len(self.errors), "errors": sorted(set(self.errors))}


class _Probes:
    """Both probes at once, for the length of a `with`."""

    def __init__(self, engine: object) -> None:
        self.webhook = _WriterProbe(engine, 0.05, in_process=True)
        self.other_process = _WriterProbe(engine, 0.5, in_process=False)

    def __enter__(self) -> "_Probes":
        self.webhook.start()
        self.other_process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.webhook.finish()
        self.other_process.finish()

    def report(self) -> dict:
        return {"in_process_webhook": self.webhook.report(), "other_process": self.other_process.report()}


class _Transactions:
    """How long each transaction of this thread held SQLite's write lock: from just after BEGIN
    IMMEDIATE (db.py's own "begin" listener, registered first, runs first) to the COMMIT (or
    ROLLBACK) being issued. The commit itself is not counted: in WAL mode it is a short append."""

    def __init__(self, engine: object) -> None:
        from sqlalchemy import event

        self.thread = threading.get_ident()
        self.began: dict[int, float] = {}
        self.held: list[float] = []
        for name, fn in (("begin", self._begin), ("commit", self._end), ("rollback", self._end)):
            event.listen(engine, name, fn)

    def _begin(self, conn: object) -> None:
        if threading.get_ident() == self.thread:
            self.began[id(conn)] = time.perf_counter()

    def _end(self, conn: object) -> None:
        began = self.began.pop(id(conn), None)
        if began is not None:
            self.held.append(time.perf_counter() - began)

    def take(self) -> dict:
        held, self.held = self.held, []
        return {"count": len(held), "longest_s": round(max(held, default=0.0), 3),
                "total_s": round(sum(held), 2)}


def _until_done(engine: object, now: datetime, horizon: timedelta) -> dict:
    """Tick passes back to back, as `step` runs them (each stops after planner.BUDGET), until
    one finds nothing to plan: the work a run of ticks does, without the rest of each tick."""
    from schedules.planner import plan_checkins

    created, passes, longest = 0, [], 0.0
    started, cpu = time.perf_counter(), time.process_time()
    while True:
        began = time.perf_counter()
        made = plan_checkins(engine, now, horizon=horizon)  # type: ignore[arg-type]
        longest = max(longest, time.perf_counter() - began)
        if not made:
            break
        created += made
        passes.append(made)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"created": created, "seconds": round(elapsed, 2), "cpu_s": round(cpu, 2),
            "passes": len(passes), "longest_pass_s": round(longest, 3)}


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
    from schedules.planner import BUDGET, CHUNK, low_water_mark, plan_checkins

    engine = get_engine(url)
    with engine.connect() as conn:  # open the pool's connection before the baseline
        conn.exec_driver_sql("SELECT 1")
    baseline = {"rss_before_mb": current_rss_mb(), "peak_rss_before_mb": peak_rss_mb()}
    transactions = _Transactions(engine)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    first = _until_done(engine, NOW, DAY)
    if profiler is not None:
        profiler.disable()
    first_transactions = transactions.take()
    peak = peak_rss_mb()
    with session_scope(engine) as session:
        rows = session.scalar(select(func.count()).select_from(CheckIn))
    # The next tick, 5 s later: nothing new is due inside the horizon, yet the pass runs again.
    # Meanwhile the probes try their writes, as webhooks would.
    with _Probes(engine) as probe:
        started = time.perf_counter()
        again = plan_checkins(engine, NOW + timedelta(seconds=5), horizon=DAY)
        replan = time.perf_counter() - started
    transactions.take()
    # Once the low-water mark passes the bookmarks: every plan again, up to the new horizon.
    crossing = NOW + DAY / 3 + timedelta(seconds=5)
    assert low_water_mark(crossing, DAY) > NOW + DAY
    with _Probes(engine) as refill_probe:
        refill = _until_done(engine, crossing, DAY)
    refill_transactions = transactions.take()
    result = {
        "n": n, "chunk": CHUNK, "budget_s": BUDGET.total_seconds(),
        "created": first["created"], "rows_in_table": rows,
        "plan_s": first["seconds"], "plan_cpu_s": first["cpu_s"], "plan_passes": first["passes"],
        "plan_longest_pass_s": first["longest_pass_s"], "plan_transactions": first_transactions,
        "rows_per_s": round(first["created"] / first["seconds"]) if first["seconds"] else None,
        "peak_rss_mb": peak, **baseline,
        "next_tick_replan_s": round(replan, 3), "next_tick_replan_created": again,
        "writer_probe_during_replan": probe.report(),
        "low_water_replan_s": refill["seconds"], "low_water_replan_created": refill["created"],
        "low_water_replan_passes": refill["passes"], "low_water_replan_longest_pass_s": refill["longest_pass_s"],
        "low_water_replan_transactions": refill_transactions,
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
                   target("1M next tick's planning: seconds", biggest["next_tick_replan_s"], 1),
                   # Nor may the top-up hold the lock for long at a time (issue 6: a webhook
                   # waited 9.9 s behind an 11 s transaction).
                   target("1M top-up: longest transaction, seconds",
                          biggest["low_water_replan_transactions"]["longest_s"], 1),
                   target("1M top-up: in-process webhook write's longest wait, seconds",
                          biggest["writer_probe_during_low_water_replan"]["in_process_webhook"]["max_wait_s"], 1)]
    emit(NAME, {"database": "sqlite file", "horizon_h": 24, "zones": 4, "distinct_times": 20,
                "group_size": 30, "runs": runs, "targets": targets, "profile": profile})


if __name__ == "__main__":
    main()
