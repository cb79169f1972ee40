"""Shared helpers for the benchmarks: fast synthetic data, percentiles, peak RSS, JSON results.

Data goes in with SQLAlchemy Core bulk inserts (executemany over explicit ids) into a fresh
database migrated by `phonetree.db.get_engine`, so a million plans take seconds, not the hours
the CLI would. Everything here is synthetic: phones are valid-looking UK mobiles +4474xxxxxxxx.
"""
from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Engine, insert

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
WORK = RESULTS / "tmp"  # scratch databases; git-ignored with the results

# A few zones (both hemispheres, a half-hour offset) and ~20 distinct local times.
ZONES = ("Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata")
TIMES = tuple(f"{8 + i // 2:02d}:{30 * (i % 2):02d}" for i in range(20))  # 08:00 .. 17:30
GROUP_SIZE = 30
CHUNK = 20000
PUBLIC_URL = "https://tree.example.org"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def log(*parts: Any) -> None:
    """Progress goes to stderr: stdout carries exactly one JSON object."""
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, file=sys.stderr, flush=True)


def phone(i: int) -> str:
    return f"+4474{i:08d}"


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except OSError:
        return float("nan")


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of a non-empty list."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def dist(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    """p50/p90/p99/max/mean of `values` times `scale` (1000 for ms)."""
    if not values:
        return {"n": 0}
    return {"n": len(values),
            "p50": round(percentile(values, 50) * scale, digits),
            "p90": round(percentile(values, 90) * scale, digits),
            "p99": round(percentile(values, 99) * scale, digits),
            "max": round(max(values) * scale, digits),
            "mean": round(sum(values) / len(values) * scale, digits)}


def target(description: str, measured: float, bound: float, op: str = "<=") -> dict[str, Any]:
    ok = measured <= bound if op == "<=" else measured >= bound
    return {"target": description, "measured": measured, "bound": f"{op} {bound}", "met": bool(ok)}


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.rstrip("\n")
    except (OSError, subprocess.SubprocessError):
        return ""


def git_head(tree: Path | str) -> str:
    """The short commit a code tree (a worktree benched side by side with this one) is at."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def meta() -> dict[str, Any]:
    return {"git_head": _git("rev-parse", "--short", "HEAD").strip(),
            "git_dirty_files": [line[3:] for line in _git("status", "--porcelain").splitlines()
                                if not line[3:].startswith("bench/")],
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(), "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            # Other work on the machine skews wall-clock numbers: the 1/5/15-minute load averages
            # at the end of the run (this benchmark itself adds about 1-2).
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "busy_processes_at_end": _busy_processes()}


def _busy_processes() -> list[str]:
    """Other processes using a noticeable share of a CPU right now (not ours): contention."""
    mine = {os.getpid(), os.getppid()}
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True,
                             text=True, timeout=10).stdout.splitlines()[1:8]
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out:
        pid, pcpu, *args = line.split(None, 2)
        if int(pid) not in mine and float(pcpu) >= 20 and args and "ps -eo" not in args[0]:
            busy.append(f"{pcpu}% {args[0][:90]}")
    return busy


def emit(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """Write bench/results/<name>.json and print the same object to stdout."""
    data = {"benchmark": name, **data, "meta": meta()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data), flush=True)
    return data


def scratch(name: str) -> Path:
    """A fresh scratch path under bench/results/tmp (any old file of that name removed)."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / name
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# ---------------------------------------------------------------- bulk data


def insert_rows(engine: Engine, table: Any, rows: Iterable[dict[str, Any]], chunk: int = CHUNK) -> int:
    """executemany INSERT in chunks, one transaction per chunk."""
    count = 0
    batch: list[dict[str, Any]] = []
    stmt = insert(table)
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            with engine.begin() as conn:
                conn.execute(stmt, batch)
            count += len(batch)
            batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(stmt, batch)
        count += len(batch)
    return count


def build_population(engine: Engine, n: int, *, created_at: datetime, planned_until: datetime | None,
                     plans: bool = True, contacts: int = 0, quiet_off: bool = False,
                     group_size: int = GROUP_SIZE) -> dict[str, int]:
    """`n` members in groups of `group_size` (the first of each an organiser), spread over
    ZONES; with `plans`, one daily check-in plan each at one of TIMES, and `contacts` named
    escalation contacts (the next members of the same group). Ids are 1..n (members, plans)."""
    from phonetree.models import CheckInPlan, Group, Member, PlanContact

    groups = math.ceil(n / group_size)
    quiet = ("00:00", "00:00") if quiet_off else ("21:00", "08:00")
    insert_rows(engine, Group.__table__, ({
        "id": g, "name": f"g{g}", "timezone": ZONES[g % len(ZONES)], "kind": "rural",
        "default_channel": "sms", "window_s": 1800, "escalation_wait_s": 1200,
        "quiet_start": quiet[0], "quiet_end": quiet[1], "reminder": True, "created_at": created_at,
    } for g in range(1, groups + 1)))
    insert_rows(engine, Member.__table__, ({
        "id": i, "group_id": (i - 1) // group_size + 1, "name": f"m{i}", "phone": phone(i),
        "channel": "sms", "roles": "organiser" if (i - 1) % group_size == 0 else "peer",
        "paused_until": None, "opted_out": False, "phone_problem": None, "created_at": created_at,
    } for i in range(1, n + 1)))
    if plans:
        insert_rows(engine, CheckInPlan.__table__, ({
            "id": i, "group_id": (i - 1) // group_size + 1, "member_id": i,
            # Neighbours get different times: a group's members are spread over the morning.
            "at_time": TIMES[(i * 7) % len(TIMES)], "days": "daily", "window_s": 1800,
            "escalation_wait_s": 1200, "reminder_s": 900, "active": True, "created_at": created_at,
            "planned_until": planned_until,
        } for i in range(1, n + 1)))
    if plans and contacts:
        def contact_rows() -> Iterator[dict[str, Any]]:
            cid = 0
            for i in range(1, n + 1):
                g0 = (i - 1) // group_size * group_size + 1
                size = min(group_size, n - g0 + 1)
                for k in range(1, min(contacts, size - 1) + 1):
                    cid += 1
                    yield {"id": cid, "plan_id": i, "position": k - 1,
                           "member_id": g0 + (i - g0 + k) % size}
        insert_rows(engine, PlanContact.__table__, contact_rows())
    return {"groups": groups, "members": n, "plans": n if plans else 0}


def build_due_checkin_messages(engine: Engine, n: int, now: datetime, *, state: str = "prompting",
                               validity: timedelta = timedelta(minutes=30)) -> None:
    """For members 1..n: today's check-in (state `state`, due a minute ago) and its queued
    prompt, exactly as `checkins.start_due` would have written them."""
    from phonetree import texts
    from phonetree.models import CheckIn, Message

    due = now - timedelta(minutes=1)
    occurrence = now.date().isoformat()
    insert_rows(engine, CheckIn.__table__, ({
        "id": i, "plan_id": i, "group_id": (i - 1) // GROUP_SIZE + 1, "member_id": i,
        "occurrence": occurrence, "due_at": due, "state": state, "urgent": False, "window_s": 1800,
        "reminder_s": 900, "escalation_wait_s": 1200, "escalation_step": -1,
    } for i in range(1, n + 1)))
    insert_rows(engine, Message.__table__, ({
        "id": i, "group_id": (i - 1) // GROUP_SIZE + 1, "member_id": i, "checkin_id": i,
        "task_id": None, "to_phone": phone(i), "channel": "sms", "kind": "checkin",
        "template": "checkin", "priority": 3, "body": texts.render("checkin", "sms", name=f"m{i}"),
        "dedupe_key": f"checkin:{i}:prompt", "state": "queued", "created_at": due, "not_before": due,
        "expires_at": due + validity, "attempts": 0,
    } for i in range(1, n + 1)))


def on_database(db: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`measure()` on `db`. For postgresql a throwaway server is started first and stopped after
    (its base URL in BENCH_PG_BASE, for `pg_database`); {"skipped": ...} without PostgreSQL."""
    if db != "postgresql":
        return measure()
    from tests.pg import PostgresServer

    server = PostgresServer()
    if not server.available:
        return {"skipped": "pg_ctl not installed"}
    os.environ["BENCH_PG_BASE"] = server.start()
    try:
        return measure()
    finally:
        server.stop()


@contextmanager
def postgres_server(name: str) -> Iterator[str | None]:
    """A throwaway PostgreSQL server for a bench that needs one, stopped afterwards: its base URL,
    or None when pg_ctl is not installed (the bench's JSON then says "skipped")."""
    from tests.pg import PostgresServer

    server = PostgresServer()
    if not server.available:
        emit(name, {"skipped": "PostgreSQL binaries (pg_ctl) not installed"})
        yield None
        return
    base = server.start()
    try:
        yield base
    finally:
        server.stop()


def pg_admin(sql: str) -> None:
    """One statement outside a transaction (CREATE / DROP DATABASE) on the BENCH_PG_BASE server."""
    from sqlalchemy import create_engine, text

    admin = create_engine(os.environ["BENCH_PG_BASE"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def pg_database(name: str, template: str | None = None) -> str:
    """A new database `name` on the BENCH_PG_BASE server (an old one of that name dropped first),
    empty or a copy of `template`; its URL."""
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return os.environ["BENCH_PG_BASE"].rsplit("/", 1)[0] + f"/{name}"


def run_child(module: str, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run `python -m <module> <args>` in a fresh interpreter (its own peak RSS) and return the
    JSON object it prints last on stdout. Its stderr passes through."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} exited {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def profile_top(profiler: Any, n: int = 12, sort: str = "tottime") -> list[str]:
    """The top-n lines of a cProfile.Profile, as short strings for the JSON."""
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(sort)
    rows = []
    for func in stats.fcn_list[:n]:  # type: ignore[attr-defined]
        cc, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
        filename, line, name = func
        short = "/".join(Path(filename).parts[-2:]) if filename != "~" else ""
        rows.append(f"tottime {tt:8.3f}s cum {ct:8.3f}s calls {nc:>9} {short}:{line}({name})")
    return rows
