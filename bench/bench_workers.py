"""(e) 1, 2 and 4 worker processes dispatching from one PostgreSQL database.

A throwaway PostgreSQL (tests/pg.py PostgresServer) holds M due check-in prompts; each worker
process runs `schedules.dispatcher.dispatch` (claims with SELECT ... FOR UPDATE SKIP LOCKED,
BATCH per claim, no rate limit) with a gateway that sleeps 20 ms per send (simulated provider
latency) and appends the message id to its own file. Afterwards every file is read: each id
must appear exactly once (duplicates = lines - distinct ids; missing = M - distinct ids). The
database is checked too (every message `sent`, attempts = 1). Fresh database per worker count.

    python -m bench.bench_workers [--quick] [--m 4000] [--workers 1,2,4]

Targets (issue 6): 2 workers >= 1.7x one worker's throughput; 0 duplicates.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import WORK, emit, log, postgres_server, target

NAME = "workers"
LATENCY = 0.020


class SleepingGateway:
    """Takes LATENCY per send, like a provider's API round trip, and records the id."""

    name = "sleeping"

    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)

    def send(self, out: Any) -> str:
        time.sleep(LATENCY)
        self.file.write(f"{out.message_id}\n")
        return f"SL{out.message_id:030d}"

    send_sms = place_call = send


def _worker(url: str, path: str, ready: Any, go: Any, results: Any) -> None:
    from phonetree import clock
    from phonetree.db import get_engine
    from schedules.dispatcher import dispatch

    engine = get_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    gateway = SleepingGateway(path)
    ready.put(os.getpid())
    go.wait()
    started = time.monotonic()
    sent = failed = 0
    while True:
        result = dispatch(engine, gateway, clock.now())  # type: ignore[arg-type]
        sent, failed = sent + result.sent, failed + result.failed
        if not (result.sent or result.failed or result.retried):
            break
    gateway.file.close()
    results.put({"pid": os.getpid(), "sent": sent, "failed": failed, "start": started,
                 "end": time.monotonic()})


_names = itertools.count(1)


def _fresh_database(base: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"bench_{os.getpid()}_{next(_names)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"


def run(base: str, workers: int, m: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from phonetree.db import dispose_all, get_engine, session_scope
    from phonetree.models import Message

    from bench.common import build_due_checkin_messages, build_population

    url = _fresh_database(base)
    now = datetime.now(timezone.utc)
    engine = get_engine(url)
    build_population(engine, m, created_at=now, planned_until=now, contacts=2, quiet_off=True)
    build_due_checkin_messages(engine, m, now)
    dispose_all()

    WORK.mkdir(parents=True, exist_ok=True)
    files = [WORK / f"workers_{workers}_{k}.ids" for k in range(workers)]
    for f in files:
        f.unlink(missing_ok=True)
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, str(files[k]), ready, go, results))
             for k in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    started = time.monotonic()
    go.set()
    reports = [results.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    wall = max(r["end"] for r in reports) - started

    ids = [int(line) for f in files for line in Path(f).read_text().split()]
    distinct = set(ids)
    engine = get_engine(url)
    with session_scope(engine) as session:
        sent_rows = session.scalar(select(func.count()).select_from(Message).where(Message.state == "sent"))
        max_attempts = session.scalar(select(func.max(Message.attempts)))
    dispose_all()
    for f in files:
        f.unlink(missing_ok=True)
    return {"workers": workers, "messages": m, "seconds": round(wall, 2), "per_s": round(m / wall, 1),
            "ideal_per_s": round(workers / LATENCY, 1),
            "sends_recorded": len(ids), "distinct": len(distinct), "duplicates": len(ids) - len(distinct),
            "missing": m - len(distinct), "db_sent": sent_rows, "db_max_attempts": max_attempts,
            "per_worker_sent": sorted(r["sent"] for r in reports)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="800 messages")
    parser.add_argument("--m", type=int)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    m = args.m or (800 if args.quick else 4000)
    counts = [int(w) for w in args.workers.split(",")]

    runs = []
    with postgres_server(NAME) as base:
        if base is None:
            return
        for workers in counts:
            log(f"workers: {workers} worker(s), {m} messages, {LATENCY * 1000:.0f} ms per send")
            result = run(base, workers, m)
            log(f"workers: {workers}: {result['per_s']}/s, duplicates {result['duplicates']}, "
                f"missing {result['missing']}")
            runs.append(result)
    one = next((r for r in runs if r["workers"] == 1), None)
    for r in runs:
        r["speedup_vs_1"] = round(r["per_s"] / one["per_s"], 3) if one else None
    targets = [target("total duplicates", sum(r["duplicates"] for r in runs), 0),
               target("total missing", sum(r["missing"] for r in runs), 0)]
    two = next((r for r in runs if r["workers"] == 2), None)
    if one and two:
        targets.insert(0, target("2 workers / 1 worker throughput", two["speedup_vs_1"], 1.7, ">="))
    emit(NAME, {"database": "postgresql (tests/pg.py, fsync off)", "send_latency_ms": LATENCY * 1000,
                "runs": runs, "targets": targets})


if __name__ == "__main__":
    main()
