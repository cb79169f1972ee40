"""`report` and `status` for one big group: a 10k-member group with 31 days of history
(issue 14: 5.1 s / 1.7 s when every row came into Python; targets 0.5 s / 0.3 s, and `status`
flat in the length of the history).

Two code trees side by side in the same run, each in its own interpreter (`--before`, a checkout
of the code before the change, e.g. `git worktree add /tmp/before 3ca8de6`; `--after`, default
this tree), each on its own copy
of the same synthetic data, built by that tree's migrations. Each timing is min and median of 3:
`weekly_report` + the text rendering (8 weeks, the CLI's default), and `group_status` + the CLI's
text rendering (`cli.render_status`). The renderings of both trees are compared byte for byte
(report as text, CSV and HTML; status as JSON and text): `same_output`.

History, per member and day (Europe/London, prompts at 09:00, now = Tue 1 Dec 2026 10:00): 90%
answered within 0-40 min, 5% escalated to a contact who rang (resolved), 2% paused (skipped),
2% answered after an extra reply nobody could read ("unknown"), 1% failed to deliver and alerted
the organiser (resolved). Today: 60% answered, 30% sent and waiting, 5% escalating, 2% skipped,
2% with a reply to read, 1% alerted. Tomorrow's check-ins are planned (scheduled).

    python -m bench.bench_reports --before /tmp/before [--quick] [--members 10000] [--days 1,31] [--db sqlite,postgresql]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from bench.common import (ROOT, RESULTS, emit, git_head, log, on_database, pg_database, phone, run_child, scratch,
                          sqlite_url, target, utc)

NAME = "reports"
NOW = utc(2026, 12, 1, 10, 0)  # Tuesday, GMT
ZONE = ZoneInfo("Europe/London")
REPEATS = 3


# ---------------------------------------------------------------- the data (in the child)


def _due(day: int) -> datetime:
    """09:00 local on the day `day` days before today (negative: tomorrow)."""
    local = (NOW.astimezone(ZONE) - timedelta(days=day)).date()
    return datetime(local.year, local.month, local.day, 9, 0, tzinfo=ZONE).astimezone(NOW.tzinfo)


def build(url: str, members: int, days: int) -> dict[str, int]:
    from phonetree.db import get_engine
    from phonetree.models import CheckIn, Event, Group, Inbound, Member, Message, Task

    from bench.common import insert_rows

    engine = get_engine(url)
    created = NOW - timedelta(days=days + 1)
    insert_rows(engine, Group.__table__, [{
        "id": 1, "name": "Oakfield", "timezone": "Europe/London", "kind": "rural", "default_channel": "sms",
        "window_s": 1800, "escalation_wait_s": 1200, "quiet_start": "21:00", "quiet_end": "08:00",
        "reminder": True, "created_at": created, "retention_days": 30}])
    insert_rows(engine, Member.__table__, ({
        "id": i, "group_id": 1, "name": f"m{i}", "phone": phone(i), "channel": "sms",
        "roles": "organiser" if i == 1 else "peer",
        "paused_until": NOW.date() if i % 500 == 7 else None, "opted_out": i % 1000 == 3,
        "phone_problem": "landline, can't take texts" if i % 1000 == 5 else None, "created_at": created,
    } for i in range(1, members + 1)))
    ids = {"checkin": 0, "message": 0, "inbound": 0, "task": 0, "event": 0}
    checkins: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    inbound: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []  # only the trail of words passed on, which status reads

    def nxt(kind: str) -> int:
        ids[kind] += 1
        return ids[kind]

    def flush(force: bool = False) -> None:
        if not force and len(checkins) < 20000:
            return
        # Check-ins first: the rest refer to them.
        for table, rows in ((CheckIn.__table__, checkins), (Message.__table__, messages),
                            (Inbound.__table__, inbound), (Task.__table__, tasks), (Event.__table__, events)):
            if rows:
                insert_rows(engine, table, rows)
                rows.clear()

    for day in range(days - 1, -2, -1):  # oldest first; -1 is tomorrow
        due = _due(day)
        occurrence = (due.astimezone(ZONE)).date().isoformat()
        for i in range(1, members + 1):
            r = (i * 31 + day * 17) % 100
            cid = nxt("checkin")
            contact = i % members + 1
            row: dict[str, Any] = {
                "id": cid, "plan_id": None, "group_id": 1, "member_id": i, "occurrence": occurrence,
                "due_at": due, "state": "scheduled", "urgent": False, "window_s": 1800, "reminder_s": 900,
                "escalation_wait_s": 1200, "sent_at": None, "remind_at": None, "window_ends_at": None,
                "answered_at": None, "escalation_step": -1, "closed_at": None, "outcome": None,
                "help_requested_at": None}
            checkins.append(row)
            if day < 0:
                continue
            if r in (95, 96):
                row.update(state="skipped", outcome="paused")
                continue
            sent = due + timedelta(seconds=i % 60)
            row.update(sent_at=sent, window_ends_at=sent + timedelta(minutes=30), state="sent")
            mid = nxt("message")
            messages.append({
                "id": mid, "group_id": 1, "member_id": i, "checkin_id": cid, "task_id": None,
                "to_phone": phone(i), "channel": "sms", "kind": "checkin", "template": "checkin",
                "priority": 3, "body": f"Morning m{i}, reply OK", "dedupe_key": f"checkin:{cid}:prompt",
                "state": "failed" if r == 99 else "delivered", "created_at": due, "not_before": due,
                "expires_at": due + timedelta(minutes=30), "attempts": 1, "sent_at": sent,
                "error": "30003 unreachable" if r == 99 else None})
            answered = sent + timedelta(minutes=i % 40, seconds=day % 7, microseconds=i * 7 % 1000000)
            if (day > 0 and r < 90) or (day == 0 and r < 60) or r in (97, 98):
                if day == 0 and r in (97, 98):
                    pass  # today's: still sent, the reply waits to be read
                else:
                    row.update(state="answered", answered_at=answered, closed_at=answered)
                    inbound.append({"id": nxt("inbound"), "provider_sid": None, "member_id": i,
                                    "channel": "sms", "body": "OK", "intent": "ok", "received_at": answered})
                if r in (97, 98):
                    inbound.append({"id": nxt("inbound"), "provider_sid": None, "member_id": i, "channel": "sms",
                                    "body": "running late, will text later", "intent": "unknown",
                                    "received_at": sent + timedelta(minutes=3)})
                    events.append({"id": nxt("event"), "at": sent + timedelta(minutes=3), "group_id": 1,
                                   "member_id": i, "checkin_id": cid, "kind": "reply_forwarded",
                                   "detail": "to m1"})
            elif 90 <= r < 95 or r == 99:
                kind = "alert" if r == 99 else "escalation"
                closed = day > 0
                row.update(state=("resolved" if closed else ("alerted" if r == 99 else "escalating")),
                           escalation_step=-1 if r == 99 else 0,
                           closed_at=sent + timedelta(hours=1) if closed else None,
                           outcome="reached by phone" if closed else None)
                tid = nxt("task")
                tasks.append({"id": tid, "kind": kind, "group_id": 1, "assignee_id": 1 if r == 99 else contact,
                              "subject_id": i, "checkin_id": cid, "round_id": None, "cascade_id": None,
                              "dedupe_key": f"{kind}:{cid}", "state": "done" if closed else "asked",
                              "asked_at": sent + timedelta(minutes=30),
                              "expires_at": sent + timedelta(minutes=50),
                              "closed_at": sent + timedelta(hours=1) if closed else None})
            flush()
    flush(force=True)
    engine.dispose()
    return {k: v for k, v in ids.items()}


# ---------------------------------------------------------------- the measurement (in the child)


def measure(url: str, out: Path) -> dict[str, Any]:
    import phonetree
    try:
        from cli.views import render_status  # the cli package
    except ImportError:
        from cli import render_status  # cli.py, before it was a package
    from sqlalchemy import select

    from phonetree.db import get_engine, session_scope
    from phonetree.models import Group
    from phonetree.display_text import safe_data
    from phonetree.reports import render_csv, render_html, render_text, weekly_report
    from phonetree.status import group_status

    engine = get_engine(url)
    timings: dict[str, list[float]] = {"report": [], "status": []}
    outputs: dict[str, str] = {}
    for _ in range(REPEATS):
        with session_scope(engine) as session:
            started = time.perf_counter()
            group = session.scalar(select(Group).where(Group.name == "Oakfield"))
            report = weekly_report(session, group, NOW, 8)
            outputs["report.txt"] = render_text(report)
            timings["report"].append(time.perf_counter() - started)
        with session_scope(engine) as session:
            started = time.perf_counter()
            group = session.scalar(select(Group).where(Group.name == "Oakfield"))
            data = group_status(session, group, NOW)
            outputs["status.txt"] = render_status(safe_data(data))
            timings["status"].append(time.perf_counter() - started)
    outputs["report.csv"], outputs["report.html"] = render_csv(report), render_html(report)
    outputs["status.json"] = json.dumps(data, indent=2, sort_keys=True, default=str)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in outputs.items():
        (out / name).write_text(text)
    engine.dispose()
    return {"phonetree": str(Path(phonetree.__file__).parent),
            **{f"{k}_s": {"min": round(min(v), 3), "median": round(statistics.median(v), 3),
                          "all": [round(x, 3) for x in v]} for k, v in timings.items()},
            "open_items": len(data["open"]), "upcoming": len(data["upcoming"]),
            "replies_to_read": len(data["replies_to_read"]), "totals_sent": report.totals.checkins_sent}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.code)  # this tree's phonetree and cli, ahead of the installed one
    result = build(args.url, args.members, args.days) if args.build else measure(args.url, Path(args.out))
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------- the parent


def _run(code: str, *args: str) -> dict[str, Any]:
    """One child on the tree at `code` (its own interpreter, that tree's phonetree)."""
    return run_child("bench.bench_reports", "--child", "--code", code, *args, timeout=3600)


def _urls(db: str, trees: dict[str, str], days: int, members: int) -> Iterator[tuple[str, str]]:
    for side in trees:
        if db == "sqlite":
            yield side, sqlite_url(scratch(f"reports_{side}_{members}x{days}.db"))
        else:
            yield side, pg_database(f"reports_{side}_{members}x{days}")


def tie_sorted(data: dict[str, Any]) -> dict[str, Any]:
    """A status with the items of each list at one instant put in one order (by name)."""
    for key, at in (("open", "due_at"), ("upcoming", "due_at"), ("replies_to_read", "received_at"),
                    ("delivery_problems", "at")):
        data[key].sort(key=lambda item: (item[at], str(item["member"])))
    return data


def run(db: str, trees: dict[str, str], members: int, history: list[int], reuse: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for days in history:
        key = f"{members}x{days}d"
        results[key] = {}
        if reuse and db == "sqlite":  # the databases a previous run built (each tree's own)
            urls = {side: sqlite_url(RESULTS / "tmp" / f"reports_{side}_{members}x{days}.db") for side in trees}
        else:
            urls = dict(_urls(db, trees, days, members))
        for side, code in trees.items():
            if reuse and db == "sqlite":
                results[key]["reused_databases"] = True
                continue
            log(f"reports: {db} {key}: building for {side}")
            started = time.perf_counter()
            rows = _run(code, "--build", "--url", urls[side], "--members", str(members), "--days", str(days))
            results[key].setdefault("rows", rows)
            results[key].setdefault("build_s", {})[side] = round(time.perf_counter() - started, 1)
        # Measured alternately, before then after, so both see the same machine.
        for side, code in trees.items():
            log(f"reports: {db} {key}: measuring {side}")
            results[key][side] = _run(code, "--url", urls[side], "--out", str(RESULTS / "reports_out" / db / key / side))
        base = RESULTS / "reports_out" / db / key
        names = sorted(p.name for p in (base / "before").iterdir())
        results[key]["same_output"] = {n: (base / "before" / n).read_bytes() == (base / "after" / n).read_bytes()
                                       for n in names}
        # The old status left the order of items at the same instant to the database (SQLite:
        # after its join with tasks; PostgreSQL: any order); the new one orders them by id.
        # The same items otherwise?
        def open_sorted(side: str) -> Any:
            return tie_sorted(json.loads((base / side / "status.json").read_text()))
        results[key]["same_status_up_to_order_of_ties"] = open_sorted("before") == open_sorted("after")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--days", default="1,31", help="history lengths, comma-separated")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--before", help="the code tree to compare with (required, except with --child)")
    parser.add_argument("--after", default=str(ROOT))
    parser.add_argument("--reuse", action="store_true", help="SQLite: measure the databases the last run built")
    args = parser.parse_args()
    if args.child:
        args.days = int(args.days.split(",")[0])
        child(args)
        return
    if not args.before:
        parser.error("--before is required: the code tree to compare with")
    members = 1000 if args.quick else args.members
    history = [int(d) for d in args.days.split(",")]
    trees = {"before": args.before, "after": args.after}
    out: dict[str, Any] = {"now": NOW.isoformat(), "members": members, "history_days": history,
                           "trees": {side: {"path": p, "git_head": git_head(p)} for side, p in trees.items()},
                           "repeats": REPEATS}
    targets = []
    for db in args.db.split(","):
        reuse = args.reuse and db == "sqlite"  # a PostgreSQL server is new every run: nothing to reuse
        out[db] = on_database(db, lambda: run(db, trees, members, history, reuse))
        if "skipped" in out[db]:
            continue
        longest = max(history)
        after = out[db][f"{members}x{longest}d"]["after"]
        targets += [target(f"{db}: report, {members} members x {longest} days (median s)",
                           after["report_s"]["median"], 0.5),
                    target(f"{db}: status, {members} members x {longest} days (median s)",
                           after["status_s"]["median"], 0.3),
                    target(f"{db}: same output as before at {members} x {longest} days (report byte for byte; status up to the order of ties)",
                           float(all(v for n, v in out[db][f"{members}x{longest}d"]["same_output"].items()
                                     if not n.startswith("status"))
                                 and out[db][f"{members}x{longest}d"]["same_status_up_to_order_of_ties"]),
                           1.0, ">=")]
    emit(NAME, {**out, "targets": targets})


if __name__ == "__main__":
    main()
