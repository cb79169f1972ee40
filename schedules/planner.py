"""Rules become dated items: every active check-in plan gets a `checkins` row for each
occurrence up to a horizon. Idempotent (a unique key per plan and local date) and set-based:
plans sharing a rule share one recurrence computation, and the database writes the rows itself,
one INSERT .. SELECT per chunk of plans; Python never builds a row per check-in.

Each plan carries a bookmark, `planned_until`: its occurrences exist up to there. A plan is
planned again only once its bookmark falls below a low-water mark, two thirds of the horizon
ahead (24 h of the default 36 h), and then up to the whole horizon. So each plan is revisited
about twice a day, and an ordinary tick in between touches no plan: an index probe finds none.
(It used to re-plan every plan on every tick, holding SQLite's write lock for tens of seconds.)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Callable

from sqlalchemy import (ARRAY, Column, Insert, Integer, MetaData, Select, String,
                        Table, Update, and_, any_, bindparam, delete, exists, false, func, insert,
                        literal, or_, select, update)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from phonetree.models import CheckIn, CheckInPlan, Group, UTCDateTime
from schedules.recurrence import local_date, occurrences

HORIZON = timedelta(hours=36)
# After a long outage, look back at most this far: each missed day is reported, not flooded.
LOOKBACK = timedelta(days=7)
CHUNK = 20000

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


def plan_checkins(session: Session, now: datetime, horizon: timedelta = HORIZON) -> int:
    """Materialise check-ins due up to now + horizon for every active plan whose bookmark is
    below the low-water mark. Returns how many rows were new."""
    if horizon < timedelta(0):
        raise ValueError(f"the horizon can't be negative: {horizon}")
    until = now + horizon
    floor = now - LOOKBACK
    mark = {"mark": low_water_mark(now, horizon)}
    sql = _statements(session.get_bind().dialect.name)
    if not session.execute(sql.anything_to_plan, mark).scalar():
        return 0  # the usual answer, from the index alone
    session.execute(CreateTable(_FIRES, if_not_exists=True))
    session.execute(delete(_FIRES))  # a previous pass's, on this connection
    listed: set[Fire] = set()
    computed: dict[tuple[Rule, datetime], list[datetime]] = {}
    created = 0
    last_id = 0
    while True:
        ids = session.execute(sql.next_chunk, {**mark, "after": last_id}).scalars().all()
        if not ids:
            return created
        last_id = ids[-1]
        chunk = {"ids": sql.pack(list(ids))}
        # One recurrence per rule, from the earliest start among the chunk's plans of it; the
        # INSERT gives each plan only the fires after its own start. Those are the instants
        # `occurrences` would give that plan alone: each local date has exactly one, whatever
        # window it is asked for. Never before the plan existed; after a long outage, no further
        # back than LOOKBACK.
        new: list[dict[str, Any]] = []
        for days, at_time, tz, earliest in session.execute(sql.rules, chunk):
            rule = (days, at_time, tz)
            start = max(earliest, floor)
            if (rule, start) not in computed:  # chunks mostly share rules and starts
                computed[rule, start] = occurrences(days, at_time, tz, start, until)
            for due in computed[rule, start]:
                if (*rule, due) not in listed:
                    listed.add((*rule, due))
                    new.append({"days": days, "at_time": at_time, "timezone": tz, "due_at": due,
                                "occurrence": local_date(due, tz).isoformat()})
        if new:
            session.execute(insert(_FIRES), new)
        # One INSERT .. SELECT's rowcount counts only the rows really inserted (conflicts are
        # skipped), on SQLite (changes()) and PostgreSQL alike.
        created += session.execute(sql.insert, chunk).rowcount
        session.execute(sql.bookmark, {**chunk, "until": until})


@dataclass(frozen=True)
class _Statements:
    anything_to_plan: Select[Any]
    next_chunk: Select[Any]
    rules: Select[Any]
    insert: Insert
    bookmark: Update
    pack: Callable[[list[int]], Any]  # plan ids -> the :ids parameter


@cache
def _statements(dialect: str) -> _Statements:
    """The planner's statements, built once per dialect with bound parameters, so SQLAlchemy
    compiles each once and afterwards only binds values. A set of plan ids is one parameter:
    an IN list is expanded a parameter at a time, seconds per million plans."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert

        in_chunk = _PLANS.c.id == any_(bindparam("ids", type_=ARRAY(Integer)))

        def pack(ids: list[int]) -> Any:
            return ids
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert

        # No arrays in SQLite; its JSON functions are built in (3.38+, and Python's own builds).
        listed = func.json_each(bindparam("ids", type_=String)).table_valued("value")
        in_chunk = _PLANS.c.id.in_(select(listed.c.value))
        pack = json.dumps
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database {dialect}")

    active = _PLANS.c.active.is_(True)
    mark = bindparam("mark", type_=UTCDateTime())
    # Two EXISTS of one term each, so SQLite answers both from ix_checkin_plans_planned_until
    # whatever its statistics say (for the OR of the two it may scan the table).
    anything_to_plan = select(exists().where(active, _PLANS.c.planned_until < mark)
                              | exists().where(active, _PLANS.c.planned_until.is_(None)))
    # Paged by id: paged by bookmark, each page would re-read the plans planned so far. FOR
    # UPDATE (PostgreSQL) holds a chunk's plans as read until commit; SKIP LOCKED lets a second
    # worker ticking at the same moment pass over plans the first has taken rather than wait
    # (or deadlock on the unique key). SQLite ignores it: BEGIN IMMEDIATE holds everything.
    next_chunk = (
        select(_PLANS.c.id)
        .where(active, or_(_PLANS.c.planned_until.is_(None), _PLANS.c.planned_until < mark),
               _PLANS.c.id > bindparam("after", type_=Integer))
        .order_by(_PLANS.c.id).limit(CHUNK)
        .with_for_update(skip_locked=True)
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
    return _Statements(anything_to_plan, next_chunk, rules, insert_checkins, bookmark, pack)
