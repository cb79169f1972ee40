"""Writes held for seconds (issue 14): the retention purge and the prompting of the 09:00 slot,
each with a writer-wait probe, on two code trees side by side in the same run.

The job is what `phonetree run` does: one `schedules.engine.step(engine, now)`, in-process,
on the tree's own code (before: `--before`, default /work/wt-scale-before = b08a582, the code
before the chunking; after: this tree). For the purge the step finds nothing else due; for the
slot the purge is marked as just done, so the step prompts the slot and nothing else.

Meanwhile a probe in **another process** makes a small write every 50 ms (BEGIN, one INSERT
into a table of its own, COMMIT, through SQLAlchemy; on SQLite with a 30 s busy timeout), as a
webhook or a CLI command of another process would, and reports how long each waited (max, p99).
`longest_transaction_s` is the longest of the step's own transactions, from BEGIN until its
connection is back in the pool (its COMMIT done, with any WAL checkpoint that COMMIT ran; on
SQLite each holds the write lock from BEGIN, which db.py makes IMMEDIATE, and the in-process
writer lock until then). For the slot, `prompts_ready` says when the prompts were committed
(seconds from the step's start: p50, p99, the last), so ready to send: what the step adds to the
slot's lateness.

Scenarios (full size; `--scale` divides the member counts, e.g. 10 for a tenth):
* purge_1m_no_messages: 1M members in groups of 30, no messages at all;
* purge_1m_25k_messages: the same with 25k messages past retention (30 days; 35 days old);
* purge_30k_x_30_days: 30k members with 31 days of history (a message and a reply each a day):
  the oldest day's 30k messages and 30k replies are past retention;
* slot_25k_due: 25k members, each with a check-in due at 09:00;
* slot_1m_16666_due: 1M members with today's check-ins planned, 16,666 of them due at 09:00.

Data is built once per scenario with the *before* tree (its migrations) and copied for the
after tree (SQLite: the file; PostgreSQL: CREATE DATABASE ... TEMPLATE), whose own migrations
bring it up to date when it opens it (not timed).

    python -m bench.bench_stalls [--quick] [--scale 1] [--db sqlite,postgresql] [--only purge_1m_no_messages,...]

Targets (issue 14): no transaction over 0.3 s; a writer never waits over 0.5 s.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

from bench.common import (ROOT, emit, git_head, log, on_database, percentile, pg_admin, pg_database, phone, run_child,
                          scratch, sqlite_url, target, utc)

NAME = "stalls"
NOW = utc(2026, 6, 15, 9, 0)  # a Monday, 09:00 UTC
GROUP = 30
SCENARIOS = {
    # name: (members, extra)
    "purge_1m_no_messages": 1_000_000,
    "purge_1m_25k_messages": 1_000_000,
    "purge_30k_x_30_days": 30_000,
    "slot_25k_due": 25_000,
    "slot_1m_16666_due": 1_000_000,
}
PROBE_EVERY = 0.05


# ---------------------------------------------------------------- building (child, before tree)


def _groups_members(engine: Any, n: int, created: datetime) -> None:
    from phonetree.models import Group, Member

    from bench.common import insert_rows

    # UTC groups without quiet hours: every due prompt is sent now, none waits for the morning.
    insert_rows(engine, Group.__table__, ({
        "id": g, "name": f"g{g}", "timezone": "UTC", "kind": "rural", "default_channel": "sms",
        "window_s": 1800, "escalation_wait_s": 1200, "quiet_start": "00:00", "quiet_end": "00:00",
        "reminder": True, "created_at": created, "retention_days": 30,
    } for g in range(1, (n - 1) // GROUP + 2)))
    insert_rows(engine, Member.__table__, ({
        "id": i, "group_id": (i - 1) // GROUP + 1, "name": f"m{i}", "phone": phone(i), "channel": "sms",
        "roles": "organiser" if (i - 1) % GROUP == 0 else "peer", "paused_until": None,
        "opted_out": False, "phone_problem": None, "created_at": created,
    } for i in range(1, n + 1)))


def _message(mid: int, member: int, at: datetime) -> dict[str, Any]:
    return {"id": mid, "group_id": (member - 1) // GROUP + 1, "member_id": member, "checkin_id": None,
            "task_id": None, "to_phone": phone(member), "channel": "sms", "kind": "checkin",
            "template": "checkin", "priority": 3, "body": f"Morning m{member}, reply OK",
            "dedupe_key": f"bench:{mid}", "state": "delivered", "created_at": at, "not_before": at,
            "expires_at": at + timedelta(minutes=30), "attempts": 1, "sent_at": at}


def build(url: str, scenario: str, members: int) -> dict[str, Any]:
    from sqlalchemy import Column, Float, Integer, MetaData, Table

    from phonetree.db import get_engine
    from phonetree.models import CheckIn, Inbound, Message

    from bench.common import insert_rows

    engine = get_engine(url)
    probe = Table("bench_probe", MetaData(), Column("id", Integer, primary_key=True), Column("at", Float))
    probe.create(engine)
    created = NOW - timedelta(days=60)
    _groups_members(engine, members, created)
    rows = {"members": members}
    if scenario == "purge_1m_25k_messages":
        old = NOW - timedelta(days=35)
        step = max(1, members // 25_000)
        rows["messages"] = insert_rows(engine, Message.__table__, (
            _message(k + 1, 1 + k * step % members, old + timedelta(seconds=k)) for k in range(25_000)))
    elif scenario == "purge_30k_x_30_days":
        def history() -> Iterator[dict[str, Any]]:
            mid = 0
            for day in range(31, 0, -1):  # 31 days ago (past retention) .. yesterday
                at = NOW - timedelta(days=day)
                for i in range(1, members + 1):
                    mid += 1
                    yield _message(mid, i, at)
        rows["messages"] = insert_rows(engine, Message.__table__, history())
        rows["inbound"] = insert_rows(engine, Inbound.__table__, ({
            "id": k + 1, "provider_sid": None, "member_id": k % members + 1, "channel": "sms", "body": "OK",
            "intent": "ok", "received_at": NOW - timedelta(days=31 - k // members, seconds=-60),
        } for k in range(31 * members)))
    elif scenario.startswith("slot_"):
        # 16,666 in a million (a minute's share of 1M spread over the hours), scaled with it.
        due = max(1, 16_666 * members // 1_000_000) if scenario == "slot_1m_16666_due" else members
        every = members / due

        def checkins() -> Iterator[dict[str, Any]]:
            for i in range(1, members + 1):
                # Spread the due ones over the groups; the rest later today.
                is_due = int((i - 1) / every) != int(i / every) if due < members else True
                yield {"id": i, "plan_id": None, "group_id": (i - 1) // GROUP + 1, "member_id": i,
                       "occurrence": NOW.date().isoformat(),
                       "due_at": NOW - timedelta(minutes=1) if is_due else NOW + timedelta(hours=1 + i % 8),
                       "state": "scheduled", "urgent": False, "window_s": 1800, "reminder_s": 900,
                       "escalation_wait_s": 1200, "escalation_step": -1}
        rows["checkins"] = insert_rows(engine, CheckIn.__table__, checkins())
        rows["due"] = due
    engine.dispose()
    return rows


# ---------------------------------------------------------------- the probe (its own process)


def probe(url: str) -> None:
    """Writes until stdin closes, then prints the waits as JSON."""
    from sqlalchemy import create_engine, text

    args = {"timeout": 30} if url.startswith("sqlite") else {}
    engine = create_engine(url, connect_args=args)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    waits: list[float] = []
    errors: list[str] = []
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    print("ready", flush=True)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO bench_probe (at) VALUES (:at)"), {"at": time.time()})
        except Exception as error:  # noqa: BLE001 - reported, not hidden
            errors.append(type(error).__name__ + ": " + str(error)[:120])
        waits.append(time.perf_counter() - started)
        stop.wait(PROBE_EVERY)
    print(json.dumps({"waits": waits, "errors": errors}), flush=True)


class Probe:
    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.bench_stalls", "--probe", "--url", url],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def finish(self) -> dict[str, Any]:
        out, _ = self.proc.communicate("", timeout=120)
        data = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
        waits = sorted(data["waits"])
        return {"every_s": PROBE_EVERY, "writes": len(waits), "max_wait_s": round(waits[-1], 3) if waits else None,
                "p99_wait_s": round(percentile(waits, 99), 3) if waits else None,
                "p50_wait_s": round(percentile(waits, 50), 4) if waits else None,
                "errors": len(data["errors"]), "error_kinds": sorted(set(data["errors"]))[:3]}


# ---------------------------------------------------------------- the job (child, either tree)


class InProcessProbe(threading.Thread):
    """The same small write every 50 ms from a thread of the job's own process, through
    `connection_scope` and so queueing on the process's writer lock, as the webhook threads of
    `phonetree run` do."""

    def __init__(self, engine: Any) -> None:
        super().__init__(daemon=True)
        self.engine, self.stop, self.waits = engine, threading.Event(), []  # type: list[float]

    def run(self) -> None:
        from sqlalchemy import text

        from phonetree.db import connection_scope

        while not self.stop.is_set():
            started = time.perf_counter()
            with connection_scope(self.engine) as conn:
                conn.execute(text("INSERT INTO bench_probe (at) VALUES (:at)"), {"at": time.time()})
            self.waits.append(time.perf_counter() - started)
            self.stop.wait(PROBE_EVERY)

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        self.join(timeout=60)
        waits = sorted(self.waits)
        return {"every_s": PROBE_EVERY, "writes": len(waits), "max_wait_s": round(waits[-1], 3) if waits else None,
                "p99_wait_s": round(percentile(waits, 99), 3) if waits else None,
                "p50_wait_s": round(percentile(waits, 50), 4) if waits else None}


class Transactions:
    """BEGIN to the connection's return to the pool (its COMMIT or ROLLBACK done, and on SQLite
    any checkpoint that COMMIT ran) of this thread's transactions on `engine`, and when the
    check-ins `start_due` claimed became prompts others could see (the end of their transaction)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.thread = threading.get_ident()
        self.began: dict[int, float] = {}
        self.held: list[float] = []
        self.claimed = 0  # claimed by start_due in the transaction under way
        self.ready: list[tuple[float, int]] = []  # (seconds from `start`, prompts committed then)
        self.start = time.perf_counter()
        event.listen(engine, "begin", self._begin)
        event.listen(engine.pool, "checkin", self._end)

    def _begin(self, conn: Any) -> None:
        if threading.get_ident() == self.thread:
            self.began[id(conn.connection.dbapi_connection)] = time.perf_counter()

    def _end(self, dbapi_connection: Any, _record: Any) -> None:
        began = self.began.pop(id(dbapi_connection), None)
        if began is not None:
            ended = time.perf_counter()
            self.held.append(ended - began)
            if self.claimed:
                self.ready.append((ended - self.start, self.claimed))
                self.claimed = 0

    def count_prompts(self, checkins: Any) -> None:
        """Wrap the tree's `checkins.start_due` (same signature in both trees) to count claims."""
        real = checkins.start_due

        def counted(*args: Any, **kwargs: Any) -> dict[str, int]:
            counts = real(*args, **kwargs)
            self.claimed += counts["claimed"] if "claimed" in counts else counts["prompted"]
            return counts

        checkins.start_due = counted

    def prompts_ready(self) -> dict[str, Any]:
        """Seconds from the step's start until each prompt was committed: p50, p99, last."""
        times = [at for at, n in self.ready for _ in range(n)]
        if not times:
            return {}
        return {"prompts": len(times), "p50_s": round(percentile(times, 50), 3),
                "p99_s": round(percentile(times, 99), 3), "last_s": round(times[-1], 3),
                "first_s": round(times[0], 3)}


def job(url: str, scenario: str) -> dict[str, Any]:
    import phonetree
    from sqlalchemy import func, select

    from phonetree.db import get_engine, session_scope
    from phonetree.models import CheckIn, Inbound, Message
    from schedules import engine as tick

    engine = get_engine(url)  # migrates the copy to this tree's head (not timed)
    with engine.connect() as conn:  # warm the page cache as a running server has it
        conn.execute(select(func.count()).select_from(Message)).scalar()
    if scenario.startswith("slot_"):
        tick._last_purge = NOW  # as if the hourly purge had just run: the step is the slot
    transactions = Transactions(engine)
    from phonetree import checkins
    transactions.count_prompts(checkins)
    watcher, webhook = Probe(url), InProcessProbe(engine)
    webhook.start()
    started, cpu = time.perf_counter(), time.process_time()
    transactions.start = started
    report = tick.step(engine, NOW)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    probe_result, webhook_result = watcher.finish(), webhook.finish()
    with session_scope(engine) as session:
        after = {"messages_blanked": session.scalar(select(func.count()).select_from(Message)
                                                    .where(Message.body.is_(None))),
                 "inbound_blanked": session.scalar(select(func.count()).select_from(Inbound)
                                                   .where(Inbound.body.is_(None))),
                 "checkins_prompting": session.scalar(select(func.count()).select_from(CheckIn)
                                                      .where(CheckIn.state == "prompting"))}
    held = transactions.held
    engine.dispose()
    return {"phonetree": str(Path(phonetree.__file__).parent), "step_s": round(elapsed, 3),
            "step_cpu_s": round(cpu, 3), "prompted": report.prompted,
            "transactions": len(held), "longest_transaction_s": round(max(held, default=0.0), 3),
            "longest_transactions_s": [round(x, 3) for x in sorted(held, reverse=True)[:5]],
            "transactions_total_s": round(sum(held), 3), "prompts_ready": transactions.prompts_ready(),
            "writer_probe_other_process": probe_result, "writer_probe_in_process_webhook": webhook_result,
            "db_after": after}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.code)  # this tree's phonetree and schedules, ahead of the installed one
    result = build(args.url, args.scenario, args.members) if args.build else job(args.url, args.scenario)
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- the parent


def _run(code: str, *args: str) -> dict[str, Any]:
    """One child on the tree at `code` (its own interpreter, that tree's phonetree)."""
    return run_child("bench.bench_stalls", "--child", "--code", code, *args, timeout=7200)


class Databases:
    """A built database and copies of it, per dialect."""

    def __init__(self, db: str) -> None:
        self.db = db

    def fresh(self, name: str) -> str:
        if self.db == "sqlite":
            return sqlite_url(scratch(f"stalls_{name}.db"))
        return pg_database(name)

    def copy(self, source: str, name: str) -> str:
        if self.db == "sqlite":
            path = scratch(f"stalls_{name}.db")
            shutil.copyfile(source.removeprefix("sqlite:///"), path)
            return sqlite_url(path)
        return pg_database(name, template=source.rsplit("/", 1)[1])

    def drop(self, url: str) -> None:
        if self.db == "sqlite":
            scratch(Path(url.removeprefix("sqlite:///")).name)
            return
        pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def run(db: str, trees: dict[str, str], scenarios: list[str], scale: int) -> dict[str, Any]:
    dbs = Databases(db)
    out: dict[str, Any] = {}
    for scenario in scenarios:
        members = max(GROUP, SCENARIOS[scenario] // scale)
        log(f"stalls: {db} {scenario}: building ({members} members)")
        started = time.perf_counter()
        source = dbs.fresh(f"{scenario}_source")
        rows = _run(trees["before"], "--build", "--url", source, "--scenario", scenario, "--members", str(members))
        result: dict[str, Any] = {"rows": rows, "build_s": round(time.perf_counter() - started, 1)}
        for side, code in trees.items():
            copy = dbs.copy(source, f"{scenario}_{side}")
            log(f"stalls: {db} {scenario}: {side}")
            result[side] = _run(code, "--url", copy, "--scenario", scenario)
            dbs.drop(copy)
        dbs.drop(source)
        out[scenario] = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    parser.add_argument("--members", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="--scale 100")
    parser.add_argument("--scale", type=int, default=1, help="divide every member count by this")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--only", help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--before", default="/work/wt-scale-before")
    parser.add_argument("--after", default=str(ROOT))
    args = parser.parse_args()
    if args.probe:
        probe(args.url)
        return
    if args.child:
        child(args)
        return
    scale = 100 if args.quick else args.scale
    scenarios = args.only.split(",") if args.only else list(SCENARIOS)
    trees = {"before": args.before, "after": args.after}
    out: dict[str, Any] = {"now": NOW.isoformat(), "scale": scale, "probe_every_s": PROBE_EVERY,
                           "trees": {side: {"path": p, "git_head": git_head(p)} for side, p in trees.items()}}
    targets = []
    for db in args.db.split(","):
        out[db] = on_database(db, lambda: run(db, trees, scenarios, scale))
        if "skipped" in out[db]:
            continue
        for scenario in scenarios:
            after = out[db][scenario]["after"]
            targets += [target(f"{db} {scenario}: longest transaction (s)", after["longest_transaction_s"], 0.3),
                        target(f"{db} {scenario}: another process's write waited (max s)",
                               after["writer_probe_other_process"]["max_wait_s"], 0.5),
                        target(f"{db} {scenario}: a webhook thread's write waited (max s)",
                               after["writer_probe_in_process_webhook"]["max_wait_s"], 0.5)]
    name = f"{NAME}_{'_'.join(args.db.split(','))}" + ("" if scale == 1 else f"_scale{scale}")
    emit(name, {**out, "targets": targets})


if __name__ == "__main__":
    main()
