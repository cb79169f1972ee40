"""`tick(now)`: everything that is due moves one step on. The database remembers; this only
looks at the clock it is given. Safe to run twice at the same instant, or on two workers."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from phonetree import checkins, privacy, rotas, tasks
from phonetree.db import let_others_write, session_scope
from phonetree.gateways.base import Gateway
from schedules import dispatcher, planner


# Blanking old message text is cheap but needn't run every few seconds.
PURGE_EVERY = timedelta(hours=1)
_last_purge: datetime | None = None


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


def step(engine: Engine, now: datetime) -> TickReport:
    """Plan and move items on, each step in its own transaction (short write locks)."""
    report = TickReport()
    # The planner commits chunk by chunk and stops after its budget; the rest waits a tick.
    report.planned = planner.plan_checkins(engine, now, budget=planner.BUDGET)
    with session_scope(engine) as session:
        report.planned += planner.plan_rounds(session, now)
    while True:  # a chunk per transaction (see checkins.BATCH)
        with session_scope(engine) as session:
            counts = checkins.start_due(session, now)
        report.prompted += counts["prompted"]
        report.skipped += counts["skipped"]
        report.missed += counts["missed"]
        if not counts["claimed"]:
            break
        if counts["claimed"] >= checkins.BATCH:  # a full chunk: more to come, let others in first
            let_others_write(engine)
    with session_scope(engine) as session:
        report.call_prompts = rotas.prompt_due_rounds(session, now)
    with session_scope(engine) as session:
        report.reminded = checkins.remind_due(session, now)
    with session_scope(engine) as session:
        report.escalated = checkins.close_windows(session, now)
    with session_scope(engine) as session:
        report.passed_on = tasks.expire_overdue(session, now)
    global _last_purge
    if _last_purge is None or now - _last_purge >= PURGE_EVERY or now < _last_purge:
        while True:  # in chunks, each its own short transaction, so no writer waits behind it
            with session_scope(engine) as session:
                blanked = privacy.purge_bodies(session, now, limit=privacy.PURGE_CHUNK)
            if not blanked:
                break
            if blanked >= privacy.PURGE_CHUNK:
                let_others_write(engine)
        _last_purge = now
    return report


def tick(engine: Engine, gateway: Gateway, now: datetime) -> TickReport:
    """One whole pass: plan, step items on, then send what is due."""
    report = step(engine, now)
    result = dispatcher.dispatch(engine, gateway, now)
    report.sent, report.failed = result.sent, result.failed
    return report
