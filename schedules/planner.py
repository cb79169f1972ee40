"""Rules become dated items: every active check-in plan gets a `checkins` row for each
occurrence up to a horizon. Idempotent (a unique key per plan and local date) and set-based:
plans sharing a rule share one recurrence computation, and the database writes the rows itself,
one INSERT .. SELECT per chunk of plans; Python never builds a row per check-in.

Each plan carries a bookmark, `planned_until`: its occurrences exist up to there. A plan is
planned again only once its bookmark falls below a low-water mark, two thirds of the horizon
ahead (24 h of the default 36 h), and then up to the whole horizon. So each plan is revisited
about twice a day, and an ordinary tick in between touches no plan: an index probe finds none.
(It used to re-plan every plan on every tick, holding SQLite's write lock for tens of seconds.)

Each chunk is its own transaction: its rows and its plans' bookmarks commit together, so a
crash loses at most the chunk in hand and the next pass carries on from the bookmarks. Between
chunks the write lock is let go, so a webhook's write waits for one chunk, not the whole pass
(at 1M plans the pass used to hold SQLite's lock for 11 s). The most urgent plans go first
(no bookmark, then the earliest), and a pass stops after BUDGET so the tick can go on to send
and escalate; the next tick carries on.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Callable

from sqlalchemy import (ARRAY, Column, Connection, Engine, Insert, Integer, MetaData, Select,
                        String, Table, Update, and_, any_, bindparam, delete, exists, false, func,
                        insert, literal, or_, select, update)
from sqlalchemy.schema import CreateTable

from sqlalchemy.orm import Session

from phonetree.db import connection_scope, insert_for, insert_ignoring_duplicates
from phonetree.models import CheckIn, CheckInPlan, Group, Rota, RotaRound, UTCDateTime
from phonetree.local_times import local_date, local_instant
from phonetree.rotas import nth_round_date
from phonetree.recurrence import occurrences

HORIZON = timedelta(hours=36)
# After a long outage, look back at most this far: each missed day is reported, not flooded.
LOOKBACK = timedelta(days=7)
# Plans per transaction: at 1M plans on SQLite a chunk holds the write lock for a fraction of
# a second (bench/bench_planner.py reports the longest transaction).
CHUNK = 20000
# A pass plans for about this long, then leaves the rest to the next tick (a top-up of 1M plans
# takes ~15 s of work, spread over a minute or so of ticks, 12 h before any of it is due).
BUDGET = timedelta(seconds=1)
# The pause between chunks that lets threads queued for the writer lock go first.
YIELD_S = 0.001

_PLANS = CheckInPlan.__table__
_GROUPS = Group.__table__
_CHECKINS = CheckIn.__table__

# The fire times of this pass's rules, one row per (rule, instant), in a temporary table of the
# connection's own. The INSERT looks each plan's up by primary key; SQLite has no hash join, and
# joined to a VALUES list it scanned the whole list for every plan. (Own MetaData: not part of
# the schema or its migrations.)
_FIRES = Table(
    "planner_fires", MetaData(),
    Column("days", String(40), primary_key=True),
    Column("at_time", String(5), primary_key=True),
    Column("timezone", String(64), primary_key=True),
    Column("due_at", UTCDateTime(), primary_key=True),
    Column("occurrence", String(40), nullable=False),
    prefixes=["TEMPORARY"],
)

Rule = tuple[str, str, str]  # (days, at_time, time zone): all a recurrence depends on
Fire = tuple[str, str, str, datetime]  # a rule and one instant: _FIRES' primary key


def low_water_mark(now: datetime, horizon: timedelta = HORIZON) -> datetime:
    """Plans whose bookmark is before this are planned again. Never before `now`, so a plan
    made a moment ago (bookmarked at its creation) is planned at the very next tick; a third of
    the horizon short of `now + horizon`, so a plan just planned is left alone that long."""
    return now + horizon - horizon / 3


def plan_checkins(engine: Engine, now: datetime, horizon: timedelta = HORIZON,
                  budget: timedelta | None = BUDGET) -> int:
    """Materialise check-ins due up to now + horizon for the active plans whose bookmark is
    below the low-water mark, most urgent first, a chunk per transaction, until none is left
    or `budget` has been spent (at least one chunk; None: no limit). Returns how many rows were
    new. Takes the engine, not a session: it commits as it goes, so call it outside any."""
    if horizon < timedelta(0):
        raise ValueError(f"the horizon can't be negative: {horizon}")
    until = now + horizon
    floor = now - LOOKBACK
    mark = low_water_mark(now, horizon)
    sql = _statements(engine.dialect.name)
    computed: dict[tuple[Rule, datetime], list[datetime]] = {}
    created = 0
    started = time.monotonic()
    first = True
    while True:
        with connection_scope(engine) as connection:
            if first and not connection.execute(sql.anything_to_plan, {"mark": mark}).scalar():
                return 0  # the usual answer, from the index alone
            first = False
            ids = _next_chunk(connection, sql, mark)
            if not ids:
                return created
            created += _plan_chunk(connection, sql, ids, floor, until, computed)
        if budget is not None and time.monotonic() - started >= budget.total_seconds():
            return created  # the rest next tick, still first in line
        # Let a thread queued for the writer lock (a webhook, the sender) in before the next
        # chunk: released and at once re-taken, the lock mostly goes back to this thread.
        time.sleep(YIELD_S)


def _next_chunk(connection: Connection, sql: _Statements, mark: datetime) -> list[int]:
    """The next CHUNK plans to plan: those never planned, then the earliest bookmarks (a
    bookmark before now means check-ins due now may be missing). Two queries, so each is a
    range of ix_checkin_plans_planned_until; SQLite would scan the table for their OR."""
    ids = list(connection.execute(sql.unbookmarked, {"limit": CHUNK}).scalars())
    if len(ids) < CHUNK:
        ids += connection.execute(sql.below_mark, {"mark": mark, "limit": CHUNK - len(ids)}).scalars()
    return ids


def _plan_chunk(connection: Connection, sql: _Statements, ids: list[int], floor: datetime,
                until: datetime, computed: dict[tuple[Rule, datetime], list[datetime]]) -> int:
    """One chunk's rows and bookmarks, in the caller's transaction. Returns rows inserted."""
    chunk = {"ids": sql.pack(ids)}
    # The fire table is refilled for each chunk: a chunk's transaction may come on another of
    # the pool's connections, and the TEMPORARY table is per connection.
    connection.execute(CreateTable(_FIRES, if_not_exists=True))
    connection.execute(delete(_FIRES))
    # One recurrence per rule, from the earliest start among the chunk's plans of it; the
    # INSERT gives each plan only the fires after its own start. Those are the instants
    # `occurrences` would give that plan alone: each local date has exactly one, whatever
    # window it is asked for. Never before the plan existed; after a long outage, no further
    # back than LOOKBACK.
    fires: dict[Fire, str] = {}
    for days, at_time, tz, earliest in connection.execute(sql.rules, chunk):
        rule = (days, at_time, tz)
        start = max(earliest, floor)
        if (rule, start) not in computed:  # chunks mostly share rules and starts
            computed[rule, start] = occurrences(days, at_time, tz, start, until)
        for due in computed[rule, start]:
            fires.setdefault((*rule, due), local_date(due, tz).isoformat())
    if fires:
        connection.execute(insert(_FIRES), [
            {"days": days, "at_time": at_time, "timezone": tz, "due_at": due, "occurrence": occurrence}
            for (days, at_time, tz, due), occurrence in fires.items()])
    # One INSERT .. SELECT's rowcount counts only the rows really inserted (conflicts are
    # skipped), on SQLite (changes()) and PostgreSQL alike.
    created: int = connection.execute(sql.insert, chunk).rowcount
    connection.execute(sql.bookmark, {**chunk, "until": until})
    return created


@dataclass(frozen=True)
class _Statements:
    anything_to_plan: Select[Any]
    unbookmarked: Select[Any]
    below_mark: Select[Any]
    rules: Select[Any]
    insert: Insert
    bookmark: Update
    pack: Callable[[list[int]], Any]  # plan ids -> the :ids parameter


@cache
def _statements(dialect: str) -> _Statements:
    """The planner's statements, built once per dialect with bound parameters, so SQLAlchemy
    compiles each once and afterwards only binds values. A set of plan ids is one parameter:
    an IN list is expanded a parameter at a time, seconds per million plans."""
    dialect_insert = insert_for(dialect)  # the dialect's own: it has on_conflict_do_nothing
    if dialect == "postgresql":
        in_chunk = _PLANS.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))

        def pack(ids: list[int]) -> Any:
            return ids
    elif dialect == "sqlite":
        # No arrays in SQLite; its JSON functions are built in (3.38+, and Python's own builds).
        listed = func.json_each(bindparam("ids", type_=String)).table_valued("value")
        in_chunk = _PLANS.c.id.in_(select(listed.c.value))

        def pack(ids: list[int]) -> Any:
            return json.dumps(ids)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")

    active = _PLANS.c.active.is_(True)
    mark = bindparam("mark", type_=UTCDateTime())
    # Two EXISTS of one term each, so SQLite answers both from ix_checkin_plans_planned_until
    # whatever its statistics say (for the OR of the two it may scan the table).
    anything_to_plan = select(exists().where(active, _PLANS.c.planned_until < mark)
                              | exists().where(active, _PLANS.c.planned_until.is_(None)))
    # Most urgent first: no bookmark, then the earliest. A chunk's plans leave the range as it
    # commits (their bookmarks move past the mark), so each query reads only the chunk it takes.
    # FOR UPDATE (PostgreSQL) holds a chunk's plans as read until commit; SKIP LOCKED lets a
    # second worker ticking at the same moment pass over plans the first has taken rather than
    # wait (or deadlock on the unique key). SQLite ignores it: BEGIN IMMEDIATE holds everything.
    # The LIMIT is a parameter, so CHUNK is read at each call.
    limit = bindparam("limit", type_=Integer)
    unbookmarked = (
        select(_PLANS.c.id).where(active, _PLANS.c.planned_until.is_(None))
        .order_by(_PLANS.c.id).limit(limit).with_for_update(skip_locked=True)
    )
    below_mark = (
        select(_PLANS.c.id).where(active, _PLANS.c.planned_until < mark)
        .order_by(_PLANS.c.planned_until, _PLANS.c.id).limit(limit).with_for_update(skip_locked=True)
    )
    # A plan's next occurrence comes after its bookmark, or its creation if it has none.
    start = func.coalesce(_PLANS.c.planned_until, _PLANS.c.created_at, type_=UTCDateTime())
    rules = (
        select(_PLANS.c.days, _PLANS.c.at_time, _GROUPS.c.timezone, func.min(start))
        .join_from(_PLANS, _GROUPS, _GROUPS.c.id == _PLANS.c.group_id)
        .where(in_chunk)
        .group_by(_PLANS.c.days, _PLANS.c.at_time, _GROUPS.c.timezone)
    )
    new_rows = (
        select(_PLANS.c.id, _PLANS.c.group_id, _PLANS.c.member_id, _FIRES.c.occurrence, _FIRES.c.due_at,
               literal("scheduled", String), false(), _PLANS.c.window_s, _PLANS.c.reminder_s,
               _PLANS.c.escalation_wait_s, literal(-1, Integer))
        .join_from(_PLANS, _GROUPS, _GROUPS.c.id == _PLANS.c.group_id)
        .join(_FIRES, and_(_FIRES.c.days == _PLANS.c.days, _FIRES.c.at_time == _PLANS.c.at_time,
                           _FIRES.c.timezone == _GROUPS.c.timezone, _FIRES.c.due_at > start))
        # The WHERE also keeps SQLite from reading the upsert's ON as the join's (a parsing
        # ambiguity its documentation describes).
        .where(in_chunk)
        # Rows go in in plan order: the unique key and the member and group indexes then grow
        # at one end; in rule order they took twice as long.
        .order_by(_PLANS.c.id, _FIRES.c.due_at)
    )
    insert_checkins = (
        dialect_insert(_CHECKINS)
        .from_select(["plan_id", "group_id", "member_id", "occurrence", "due_at", "state", "urgent",
                      "window_s", "reminder_s", "escalation_wait_s", "escalation_step"], new_rows)
        .on_conflict_do_nothing()
        # By itself SQLAlchemy keeps only an UPDATE's or DELETE's rowcount.
        .execution_options(preserve_rowcount=True)
    )
    bookmark = update(_PLANS).where(in_chunk).values(planned_until=bindparam("until", type_=UTCDateTime()))
    return _Statements(anything_to_plan, unbookmarked, below_mark, rules, insert_checkins, bookmark, pack)


# ---------------------------------------------------------------- rota rounds


def plan_rounds(session: Session, now: datetime) -> int:
    """Materialise rota rounds due up to now + HORIZON (idempotent by rota and round number),
    as plan_checkins does check-ins.
    Only rotas whose next round (`next_round_at`, NULL if not yet known) falls by then are
    read; on an ordinary tick none does and the index alone says so."""
    until = now + HORIZON
    active = Rota.active.is_(True)
    # Two EXISTS of one term each, so SQLite answers both from ix_rotas_next_round_at (for their
    # OR it may scan the table), as the check-in planner does.
    if not session.scalar(select(exists().where(active, Rota.next_round_at <= until)
                                 | exists().where(active, Rota.next_round_at.is_(None)))):
        return 0
    # Each rota's latest round by a probe of uq_rota_rounds_number, not a scan of every round.
    latest = (select(func.max(RotaRound.number)).where(RotaRound.rota_id == Rota.id)
              .correlate(Rota).scalar_subquery())
    rows = session.execute(
        select(Rota.id, Rota.start_date, Rota.cadence, Rota.at_time, Group.timezone, latest)
        .join(Group, Group.id == Rota.group_id)
        .where(active, or_(Rota.next_round_at.is_(None), Rota.next_round_at <= until))).all()
    new, bookmarks = [], []
    for rota_id, start, cadence, at_time, tz, last in rows:
        number = (last if last is not None else -1) + 1
        while True:
            day = nth_round_date(start, cadence, number)
            due = local_instant(day, at_time, tz)
            if due > until:
                bookmarks.append({"rota": rota_id, "next": due})
                break
            new.append({"rota_id": rota_id, "number": number, "local_date": day, "due_at": due,
                        "state": "scheduled"})
            number += 1
    created = insert_ignoring_duplicates(session, RotaRound, new)
    if bookmarks:  # one statement for all of them (executemany), with their rounds
        session.execute(update(Rota.__table__).where(Rota.__table__.c.id == bindparam("rota"))
                        .values(next_round_at=bindparam("next")), bookmarks)
    return created
