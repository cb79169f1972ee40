"""`tick(now)`: everything that is due moves one step on. The database remembers; this only
looks at the clock it is given. Safe to run twice at the same instant, or on two workers."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Engine, bindparam, exists, false, select, update
from sqlalchemy.orm import Session

from phonetree import checkins, paced, privacy, rotas, tasks
from phonetree.db import session_scope
from phonetree.gateways.base import Gateway
from phonetree.models import CheckIn, CheckInPlan, Message, ProviderOutage, Rota, RotaRound, Task, UTCDateTime
from phonetree.prepared import Prepared, read, transaction
from schedules import dispatcher, planner


# Blanking old message text is cheap but needn't run every few seconds.
PURGE_EVERY = timedelta(hours=1)
_last_purge: datetime | None = None


# What each step would find, in one read: a step whose flag is false is skipped, so a tick with
# nothing due is one query instead of a transaction per step (ten, each taking SQLite's write
# lock). Each flag is its step's own WHERE or a looser one (never stricter: a false flag must
# mean the step would find nothing); a step's own query still decides what it does.
_NOW, _SOON = bindparam("now", type_=UTCDateTime()), bindparam("soon", type_=UTCDateTime())
_MARK, _UNTIL = bindparam("mark", type_=UTCDateTime()), bindparam("until", type_=UTCDateTime())
_DUE_NAMES = ("plans", "rotas", "start", "rounds", "remind", "close", "expire", "send")
_DUE = Prepared(select(
    # planner.plan_checkins' own first probe (the plans below the low-water mark) ...
    exists().where(CheckInPlan.active.is_(True), CheckInPlan.planned_until < _MARK)
    | exists().where(CheckInPlan.active.is_(True), CheckInPlan.planned_until.is_(None)),
    # ... and planner.plan_rounds' (the rotas whose next round comes within the horizon)
    exists().where(Rota.active.is_(True), Rota.next_round_at <= _UNTIL)
    | exists().where(Rota.active.is_(True), Rota.next_round_at.is_(None)),
    exists().where(CheckIn.state == "scheduled", CheckIn.due_at <= _NOW),  # checkins.start_due
    exists().where(RotaRound.state == "scheduled", RotaRound.due_at <= _NOW),  # rotas.prompt_due_rounds
    exists().where(CheckIn.state == "sent", CheckIn.remind_at <= _NOW),  # checkins.remind_due
    exists().where(CheckIn.state == "sent", CheckIn.window_ends_at <= _NOW),  # checkins.close_windows
    # tasks.expire_overdue, less its "ask not sent yet" condition (so true a little more often)
    exists().where(Task.state == "asked", Task.expires_at <= _NOW),
    # the dispatcher's claim: a due message, or a lease run out. `soon`, a second on: its claim
    # reads a clock that has moved on a little since `now`.
    exists().where(Message.state == "queued", Message.not_before <= _SOON)
    | exists().where(Message.state == "sending", Message.lease_until < _SOON),
))


# A write that changes nothing, for a tick whose steps all had nothing to do: the database must
# still refuse it when it can't be written (a read-only file, PostgreSQL in read-only mode), so
# such a tick fails as it did when every step opened a write transaction, and /health and the
# heartbeat notice within a few ticks, not at the next thing due (issue 11 defect 5).
_TOUCH = Prepared(update(ProviderOutage).where(false()).values(failures=ProviderOutage.failures))


def check_writable(engine: Engine) -> None:
    """Raise (an OperationalError or the like) if the database won't take a write now."""
    with transaction(engine) as connection:
        _TOUCH.rowcount(connection)


def due(engine: Engine, now: datetime) -> dict[str, bool]:
    """Which of the tick's steps (and the send) have anything to do at `now`."""
    params = {"now": now, "soon": now + timedelta(seconds=1), "mark": planner.low_water_mark(now),
              "until": now + planner.HORIZON}
    with read(engine) as connection:
        row = _DUE.rows(connection, params)[0]
    return {name: bool(flag) for name, flag in zip(_DUE_NAMES, row)}


@dataclass
class TickReport:
    planned: int = 0
    prompted: int = 0
    skipped: int = 0
    missed: int = 0
    reminded: int = 0
    call_prompts: int = 0
    escalated: int = 0
    passed_on: int = 0
    sent: int = 0
    failed: int = 0
    details: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{name.replace('_', ' ')} {value}" for name, value in vars(self).items()
                 if isinstance(value, int) and value]
        return ", ".join(parts) or "nothing due"


def step(engine: Engine, now: datetime, queued: Callable[[], None] | None = None) -> TickReport:
    """Plan and move items on, each step in its own transaction (short write locks). `queued`
    is called once the first of the morning slot's prompts are committed, so a sender can
    start on them while the rest are still being written."""
    return _steps(engine, now, queued)[0]


def _steps(engine: Engine, now: datetime, queued: Callable[[], None] | None = None) -> tuple[TickReport, bool]:
    """`step`, and whether any message is due to send once it is done. A step runs only when
    `due` says it has something to do; after one has run, `due` is read again (what it did, e.g.
    a check-in planned for now, may be the next step's work this tick)."""
    report = TickReport()
    flags = due(engine, now)
    steps_run = 0

    def ran() -> None:
        nonlocal steps_run
        steps_run += 1
        flags.update(due(engine, now))

    if flags["plans"]:
        # The planner commits chunk by chunk and stops after its budget; the rest waits a tick.
        report.planned = planner.plan_checkins(engine, now, budget=planner.BUDGET)
        ran()
    if flags["rotas"]:
        with session_scope(engine) as session:
            report.planned += planner.plan_rounds(session, now)
        ran()
    if flags["start"]:
        # Transactions of about paced.BUDGET_S each (at most checkins.BATCH a step), not one
        # for the whole slot: a webhook's or another process's write waits for one of them.
        def prompt(session: Session, limit: int) -> tuple[int, bool]:
            counts = checkins.start_due(session, now, limit)
            report.prompted += counts["prompted"]
            report.skipped += counts["skipped"]
            report.missed += counts["missed"]
            # Fewer than asked for: none left (or another worker holds the rest and goes on).
            return counts["claimed"], counts["claimed"] < limit

        woken = False

        def committed(rows: int) -> None:
            nonlocal woken
            if queued is not None and rows and report.prompted and not woken:
                woken = True
                queued()
        paced.run(engine, prompt, most=checkins.BATCH, committed=committed)
        ran()
    if flags["rounds"]:
        with session_scope(engine) as session:
            report.call_prompts = rotas.prompt_due_rounds(session, now)
        ran()
    if flags["remind"]:
        with session_scope(engine) as session:
            report.reminded = checkins.remind_due(session, now)
        ran()
    if flags["close"]:
        with session_scope(engine) as session:
            report.escalated = checkins.close_windows(session, now)
        ran()
    if flags["expire"]:
        with session_scope(engine) as session:
            report.passed_on = tasks.expire_overdue(session, now)
        ran()
    if not steps_run:
        check_writable(engine)  # (a step that ran has written, or tried to)
    global _last_purge
    if _last_purge is None or now - _last_purge >= PURGE_EVERY or now < _last_purge:
        # A read says whether there is any old text first: there almost never is.
        if privacy.anything_to_purge(engine, now):
            def purge(session: Session, limit: int) -> tuple[int, bool]:
                blanked = privacy.purge_bodies(session, now, total=limit)
                return blanked, blanked < limit  # fewer than asked for: nothing old is left
            # In time-bounded transactions, as the slot's prompts above (at most PURGE_CHUNK a step).
            paced.run(engine, purge, most=privacy.PURGE_CHUNK)
        _last_purge = now
    return report, flags["send"]


def tick(engine: Engine, gateway: Gateway, now: datetime) -> TickReport:
    """One whole pass: plan, step items on, then send what is due."""
    report, send_due = _steps(engine, now)
    if send_due:  # else the dispatcher would claim nothing (and read the outage table first)
        result = dispatcher.dispatch(engine, gateway, now)
        report.sent, report.failed = result.sent, result.failed
    return report
