"""Proportionate monitoring: week-by-week counts a funder or steering group can see.

Counts only. Nothing here reads a name, a phone number or a message body, so a report can be
handed on without exposing anyone (PRODUCT.md, "Proportionate monitoring").

Definitions (each check-in belongs to the week of its due date, in the group's time zone; a
check-in asked for out of turn with HELP is due when it was asked for):

- checkins_sent: check-ins whose prompt actually went out (`sent_at` is set). Skipped (paused,
  opted out) and missed (service down) check-ins were never sent and are not counted.
- answered: check-ins the member answered themselves (state `answered`), including late answers
  after a contact or organiser had already been asked.
- followed_up: check-ins where the service went to a person: the escalation chain was started
  (`escalation_step >= 0`) or an escalation/alert task exists for it.
- resolved: check-ins a person closed (state `resolved`: a contact's DONE or `phonetree resolve`).
- still_open: check-ins open *now* (prompting, sent, escalating or alerted), whatever their week.
- help_requests: check-ins on which the member asked for a call (`urgent`). Several HELPs on one
  open check-in count once; a HELP with nothing open creates its own check-in, which counts here
  and under followed_up but not under checkins_sent (no prompt was sent).
- median_reply_minutes: median of `answered_at - sent_at` over answered check-ins that had been
  sent, in minutes; None when there are none. The totals row takes the median of all of them.
- calls_prompted / calls_completed: rota calls (member X to be rung in round R), by the round's
  local date. A call passed to a backup or to the organisers is still one call; it is completed
  if anyone holding it replied DONE.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Integer, String, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from phonetree.errors import PhonetreeError
from phonetree.checkins import OPEN_CHECKIN_STATES
from phonetree.models import CheckIn, Group, RotaRound, Task

MAX_WEEKS = 260  # five years: further back than any steering group asks, and the chart still reads


@dataclass
class WeekRow:
    week_start: date  # a Monday, in the group's time zone; for the totals row, the first Monday
    checkins_sent: int = 0
    answered: int = 0
    followed_up: int = 0
    resolved: int = 0
    still_open: int = 0
    help_requests: int = 0
    median_reply_minutes: float | None = None
    calls_completed: int = 0
    calls_prompted: int = 0


COUNTS = tuple(f.name for f in fields(WeekRow) if f.name not in ("week_start", "median_reply_minutes"))


@dataclass
class Report:
    group: str
    timezone: str
    generated_at: datetime
    weeks: list[WeekRow]
    totals: WeekRow

    @property
    def period_start(self) -> date:
        return self.weeks[0].week_start

    @property
    def period_end(self) -> date:
        """The last day covered (a Sunday), inclusive."""
        return self.weeks[-1].week_start + timedelta(days=6)


# ---------------------------------------------------------------- counting


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) whose local date is `day` or later. Local midnight with fold=0
    is that instant even where a DST change skips or repeats midnight itself: a skipped
    midnight resolves to the moment of the jump, a repeated one to its first occurrence."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)


def _week_of(column: Any, bounds: list[datetime], lo: int, hi: int) -> ColumnElement[Any]:
    """The index of the week (lo..hi-1) holding `column`, for a row known to fall inside
    bounds[lo]..bounds[hi]: a balanced CASE, so each row is compared about log2(weeks) times."""
    if hi - lo == 1:
        return literal(lo)
    mid = (lo + hi) // 2
    return case((column < bounds[mid], _week_of(column, bounds, lo, mid)),
                else_=_week_of(column, bounds, mid, hi))


def _reply_micros(dialect: str, version: tuple[int | str, ...]) -> ColumnElement[Any]:
    """answered_at - sent_at in whole microseconds, exactly (not a float of days), so the SQL
    orders replies exactly as Python's timedelta would; negative durations count as 0. The
    difference is written once: a CASE that compared it with 0 and then gave it evaluated the
    date parsing twice per row, the larger part of the report's time on SQLite."""
    if dialect == "postgresql":
        # date_part gives the interval's seconds as the nearest double (extract gives numeric,
        # whose arithmetic was a third of the report's time); times a million and rounded, that
        # is the exact microsecond count for any interval under 2**50 us (35 years).
        micros = cast(func.round(func.date_part("epoch", CheckIn.answered_at - CheckIn.sent_at) * 1_000_000),
                      BigInteger)
        return func.greatest(micros, 0)
    # SQLite keeps SQLAlchemy's "YYYY-MM-DD HH:MM:SS.ffffff": whole seconds from the first 19
    # characters, the six digits after the point as they are. Not strftime of the whole text:
    # SQLite's date functions round to the millisecond, so ...:00.9997 would read as ...:01 and
    # the reply be a second out. max() of two arguments is SQLite's scalar max.
    def parts(column: Any) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        return (_epoch_seconds(func.substr(column, 1, 19), version), cast(func.substr(column, 21), Integer))
    (a_s, a_us), (s_s, s_us) = parts(CheckIn.answered_at), parts(CheckIn.sent_at)
    return func.max((a_s - s_s) * 1_000_000 + (a_us - s_us), 0)


def _epoch_seconds(text: ColumnElement[Any], version: tuple[int | str, ...]) -> ColumnElement[Any]:
    """Whole seconds since 1970 of SQLite's "YYYY-MM-DD HH:MM:SS". unixepoch() (SQLite 3.38)
    parses it in about half the time strftime('%s') takes, the larger cost of a long report.
    `version` is the connection's own SQLite (an encrypted database's is SQLCipher's, not the
    sqlite3 module's)."""
    if version >= (3, 38, 0):
        return func.unixepoch(text)
    return cast(func.strftime("%s", text), Integer)


def _median(micros: list[int]) -> float | None:
    """The median reply in minutes, computed as statistics.median over the minutes of each
    (the same floats, to the last bit)."""
    if not micros:
        return None
    values = sorted(micros)
    mid = len(values) // 2
    minutes = [timedelta(microseconds=m).total_seconds() / 60 for m in values[mid - 1:mid + 1]]
    return minutes[-1] if len(values) % 2 else (minutes[0] + minutes[1]) / 2


def weekly_report(session: Session, group: Group, now: datetime, weeks: int = 8) -> Report:
    """The last `weeks` weeks (Monday to Sunday, group-local) up to and including the current
    one, oldest first. Two queries in all, whatever the size of the group, both counted in
    the database: a row per week comes back, not one per check-in."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise PhonetreeError(f"--weeks must be between 1 and {MAX_WEEKS}, not {weeks}.")
    if now.tzinfo is None or now.utcoffset() is None:
        # A naive time would be read as the server's zone, and weeks would shift by its offset.
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(group.timezone)
    first = _monday(now.astimezone(zone).date()) - timedelta(weeks=weeks - 1)
    after = first + timedelta(weeks=weeks)  # the Monday after the last week
    starts = [first + timedelta(weeks=i) for i in range(weeks)]
    rows = {start: WeekRow(week_start=start) for start in starts}
    # Where each week begins in UTC: a check-in belongs to the week of its local due date.
    bounds = [_day_start(start, zone) for start in [*starts, after]]

    bind = session.connection().dialect  # connected: its server_version_info is the database's SQLite
    dialect = bind.name
    # Check-ins a person was asked about: one set, read once (not an EXISTS per check-in).
    person_asked = CheckIn.id.in_(select(Task.checkin_id).where(
        Task.group_id == group.id, Task.kind.in_(("escalation", "alert")), Task.checkin_id.is_not(None)))
    replied = and_(CheckIn.state == "answered", CheckIn.sent_at.is_not(None), CheckIn.answered_at.is_not(None))
    reply = case((replied, cast(_reply_micros(dialect, bind.server_version_info or ()), String)), else_=None)

    def count(condition: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[Any]:
        return func.sum(case((condition, 1), else_=0))

    week = _week_of(CheckIn.due_at, bounds, 0, weeks).label("week")
    # One pass over the period's check-ins, each expression written once in the select list
    # (no subquery whose columns the outer query would expand again). Counts are summed in the
    # database; each week's reply times come back as one list (exact microseconds), from which
    # the medians are taken: a row per week, not one per check-in.
    weekly = session.execute(
        select(week, func.count(CheckIn.sent_at), count(CheckIn.state == "answered"),
               count(or_(CheckIn.escalation_step >= 0, person_asked)), count(CheckIn.state == "resolved"),
               count(CheckIn.state.in_(OPEN_CHECKIN_STATES)), count(CheckIn.urgent),
               func.string_agg(reply, ",") if dialect == "postgresql" else func.group_concat(reply, ","))
        .where(CheckIn.group_id == group.id, CheckIn.due_at >= bounds[0], CheckIn.due_at < bounds[-1])
        .group_by(week)
    ).all()
    every: list[int] = []
    for week, sent, answered, followed, resolved, still_open, urgent, times in weekly:
        row = rows[starts[week]]
        row.checkins_sent, row.answered, row.followed_up = int(sent), int(answered), int(followed)
        row.resolved, row.still_open, row.help_requests = int(resolved), int(still_open), int(urgent)
        micros = [int(x) for x in times.split(",")] if times else []
        row.median_reply_minutes = _median(micros)
        every += micros

    # One call per (round, person to be rung), however many people held it in turn.
    call = (select(RotaRound.local_date.label("day"),
                   func.max(case((Task.state == "done", 1), else_=0)).label("done"))
            .join(RotaRound, RotaRound.id == Task.round_id)
            .where(Task.group_id == group.id, Task.kind == "call_prompt",
                   RotaRound.local_date >= first, RotaRound.local_date < after)
            .group_by(Task.round_id, Task.subject_id, RotaRound.local_date)
            .subquery())
    for day, prompted, done in session.execute(
            select(call.c.day, func.count(), func.sum(call.c.done)).group_by(call.c.day)).all():
        row = rows[_monday(day)]
        row.calls_prompted += int(prompted)
        row.calls_completed += int(done)

    totals = WeekRow(week_start=first, **{name: sum(getattr(r, name) for r in rows.values()) for name in COUNTS})
    # The period's median is over every reply, not a median of the weekly medians.
    totals.median_reply_minutes = _median(every)
    return Report(group=group.name, timezone=group.timezone, generated_at=now,
                  weeks=list(rows.values()), totals=totals)


# How it is shown lives in report_rendering; these names stay importable from here too.
from phonetree.report_rendering import render, render_csv, render_html, render_text  # noqa: E402

__all__ = ["MAX_WEEKS", "Report", "WeekRow", "weekly_report", "render", "render_csv", "render_html",
           "render_text"]
