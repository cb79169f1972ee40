"""(f) The naive design, measured: one APScheduler 3 job per check-in in a SQLAlchemyJobStore
(SQLite file, the job store's defaults), against our planner planning the same day.

Both read the same N plans (bench_planner's population: 20 local times, 4 zones, groups of 30)
from a SQLite file. The naive side computes each plan's next 09:00-style instant with one cached
CronTrigger per (time, zone) rule - as cheap as it could be - and adds one `date` job per
check-in (id "checkin:<plan>:<date>") to a running (paused) scheduler, i.e. one pickled row and
one commit per job. Ours is `plan_checkins(now, 24 h)` on a fresh copy: N rows. The naive side
is also run at N/10 to show it is linear, and extrapolated to 1M from its per-job cost.

    python -m bench.bench_apscheduler [--quick] [--n 10000]

Target (issue 6): ours >= 10x faster than the naive jobs for the same N.
"""
from __future__ import annotations

import argparse
import shutil
import time
from datetime import datetime, time as clock_time, timedelta, timezone
from typing import Any

from bench.common import emit, log, scratch, sqlite_url, target

NAME = "apscheduler_naive"
# Midnight UTC a week ahead: every job lies in the future, so the (paused) scheduler never
# finds one due and the run measures adding jobs only.
NOW = datetime.combine(datetime.now(timezone.utc).date() + timedelta(days=7), clock_time(0), tzinfo=timezone.utc)


def remind(plan_id: int, occurrence: str) -> None:  # pragma: no cover - never runs (paused)
    """The job the naive design would run: text this member."""


def _build(n: int) -> str:
    from phonetree.db import dispose_all, get_engine

    from bench.common import build_population

    path = scratch(f"aps_plans_{n}.db")
    build_population(get_engine(sqlite_url(path)), n, created_at=NOW - timedelta(days=1), planned_until=NOW)
    dispose_all()
    return str(path)


def naive(plans_db: str, n: int) -> dict[str, Any]:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from sqlalchemy import select

    from phonetree.db import dispose_all, get_engine, session_scope
    from phonetree.models import CheckInPlan, Group
    from phonetree.local_times import local_date

    jobs_path = scratch(f"aps_jobs_{n}.db")
    scheduler = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=sqlite_url(jobs_path))},
                                    timezone="UTC")
    scheduler.start(paused=True)
    started = time.perf_counter()
    engine = get_engine(sqlite_url(plans_db))
    with session_scope(engine) as session:
        plans = session.execute(select(CheckInPlan.id, CheckInPlan.at_time, Group.timezone)
                                .join(Group, Group.id == CheckInPlan.group_id).order_by(CheckInPlan.id)).all()
    triggers: dict[tuple[str, str], CronTrigger] = {}
    for plan in plans:
        rule = (plan.at_time, plan.timezone)
        if rule not in triggers:
            hour, minute = plan.at_time.split(":")
            triggers[rule] = CronTrigger(hour=int(hour), minute=int(minute), timezone=plan.timezone)
        due = triggers[rule].get_next_fire_time(None, NOW)
        occurrence = local_date(due, plan.timezone).isoformat()
        scheduler.add_job(remind, "date", run_date=due, args=[plan.id, occurrence],
                          id=f"checkin:{plan.id}:{occurrence}")
    elapsed = time.perf_counter() - started
    jobs = len(scheduler.get_jobs())
    scheduler.shutdown(wait=False)
    dispose_all()
    size_mb = round(jobs_path.stat().st_size / 2**20, 1)
    scratch(f"aps_jobs_{n}.db")
    return {"n": n, "seconds": round(elapsed, 3), "jobs_in_store": jobs, "per_job_ms": round(elapsed / n * 1000, 3),
            "jobs_per_s": round(n / elapsed, 1), "jobstore_mb": size_mb}


def ours(plans_db: str, n: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from phonetree.db import dispose_all, get_engine, session_scope
    from phonetree.models import CheckIn
    from schedules.planner import plan_checkins

    path = scratch(f"aps_ours_{n}.db")
    shutil.copyfile(plans_db, path)
    engine = get_engine(sqlite_url(path))
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    started = time.perf_counter()
    created = plan_checkins(engine, NOW, horizon=timedelta(hours=24), budget=None)  # all of it
    elapsed = time.perf_counter() - started
    with session_scope(engine) as session:
        rows = session.scalar(select(func.count()).select_from(CheckIn))
    dispose_all()
    scratch(f"aps_ours_{n}.db")
    return {"n": n, "seconds": round(elapsed, 3), "created": created, "rows_in_table": rows,
            "rows_per_s": round(created / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2000 check-ins")
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    n = args.n or (2000 if args.quick else 10_000)
    small = max(100, n // 10)

    log(f"apscheduler: building {n} plans")
    plans_db = _build(n)
    small_db = _build(small)
    log(f"apscheduler: naive, {small} jobs")
    naive_small = naive(small_db, small)
    log(f"apscheduler: naive, {n} jobs")
    naive_full = naive(plans_db, n)
    log(f"apscheduler: naive {naive_full['seconds']} s; ours")
    ours_full = ours(plans_db, n)
    scratch(f"aps_plans_{n}.db")
    scratch(f"aps_plans_{small}.db")
    ratio = round(naive_full["seconds"] / ours_full["seconds"], 1)
    emit(NAME, {
        "n": n, "database": "sqlite files (plans; APScheduler job store)", "naive": naive_full,
        "naive_small": naive_small, "ours": ours_full, "speedup_ours_over_naive": ratio,
        "naive_extrapolated_1M_s": round(naive_full["per_job_ms"] * 1000, 0),
        "naive_extrapolated_1M_note": "linear from the per-job cost at n (see naive_small for linearity)",
        "targets": [target("ours / naive speed for the same N", ratio, 10, ">=")],
    })


if __name__ == "__main__":
    main()
