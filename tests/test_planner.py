"""Planning through the real engine across clock changes, midnight and time zones."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Iterator

import pytest
from freezegun import freeze_time
from sqlalchemy import create_engine, delete, event, func, select

from phonetree import events
from phonetree.db import connection_scope, normalise_url, session_scope
from phonetree.models import CheckIn, CheckInPlan, Member
from schedules import planner
from schedules.planner import HORIZON, LOOKBACK, low_water_mark, plan_checkins
from phonetree.local_times import local_date
from phonetree.recurrence import occurrences
from tests.conftest import JO, VERA, sent, utc


def group_with_checkin(ok, tz: str, at: str, created: str, days: str = "daily") -> None:
    with freeze_time(created):
        ok("group", "add", "G", "--timezone", tz)
        ok("group", "set", "G", "--quiet", "off")
        ok("member", "add", "G", "Vera", "--phone", VERA)
        ok("member", "add", "G", "Jo", "--phone", JO)
        ok("checkin", "add", "G", "Vera", "--at", at, "--days", days, "--window", "30m", "--escalate-to", "Jo")


def prompt_times(engine) -> list:
    return [m.sent_at for m in sent(engine, kind="checkin")]


def run_days(ticker, start, days: int, step=timedelta(hours=1)) -> None:
    moment = start
    while moment < start + timedelta(days=days):
        ticker(moment)
        moment += step


@pytest.mark.parametrize("tz, created, start, expected", [
    # Europe/London springs forward on 29 March 2026: 09:00 BST is 08:00 UTC.
    ("Europe/London", "2026-03-27 12:00", utc(2026, 3, 28), [utc(2026, 3, 28, 9), utc(2026, 3, 29, 8),
                                                           utc(2026, 3, 30, 8)]),
    # ... and falls back on 25 October 2026: 09:00 GMT is 09:00 UTC again.
    ("Europe/London", "2026-10-23 12:00", utc(2026, 10, 24), [utc(2026, 10, 24, 8), utc(2026, 10, 25, 9),
                                                            utc(2026, 10, 26, 9)]),
    # America/New_York: 8 March and 1 November 2026.
    ("America/New_York", "2026-03-06 23:00", utc(2026, 3, 7), [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13),
                                                             utc(2026, 3, 9, 13)]),
    ("America/New_York", "2026-10-30 23:00", utc(2026, 10, 31), [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14),
                                                               utc(2026, 11, 2, 14)]),
])
def test_nine_oclock_stays_nine_oclock_local_across_dst(ok, engine, ticker, tz, created, start, expected):
    group_with_checkin(ok, tz, "09:00", created)
    run_days(ticker, start, 3)
    assert prompt_times(engine) == expected


def test_a_skipped_local_time_happens_once_on_the_spring_day(ok, engine, ticker):
    group_with_checkin(ok, "Europe/London", "01:30", "2026-03-27 12:00")
    run_days(ticker, utc(2026, 3, 28), 3, step=timedelta(minutes=30))
    times = prompt_times(engine)
    assert len(times) == 3
    assert times[0] == utc(2026, 3, 28, 1, 30)
    assert utc(2026, 3, 29, 1) <= times[1] <= utc(2026, 3, 29, 1, 30)  # 01:30 doesn't exist; once, just after
    assert times[2] == utc(2026, 3, 30, 0, 30)  # 01:30 BST


def test_a_repeated_local_time_happens_once_on_the_autumn_day(ok, engine, ticker):
    group_with_checkin(ok, "Europe/London", "01:30", "2026-10-23 12:00")
    run_days(ticker, utc(2026, 10, 24), 3, step=timedelta(minutes=30))
    assert prompt_times(engine) == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_midnight_checkins_belong_to_their_own_day(ok, engine, ticker):
    group_with_checkin(ok, "Europe/London", "00:00", "2026-11-30 12:00")
    run_days(ticker, utc(2026, 12, 1), 2)
    assert prompt_times(engine) == [utc(2026, 12, 1), utc(2026, 12, 2)]
    with session_scope(engine) as session:
        assert list(session.scalars(select(CheckIn.occurrence).order_by(CheckIn.due_at)))[:2] == [
            "2026-12-01", "2026-12-02"]


def test_weekdays_skip_the_weekend(ok, engine, ticker):
    group_with_checkin(ok, "Europe/London", "10:00", "2026-11-27 12:00", days="weekdays")
    run_days(ticker, utc(2026, 11, 28), 7)  # Sat 28 Nov .. Fri 4 Dec
    assert [t.day for t in prompt_times(engine)] == [30, 1, 2, 3, 4]


def test_planning_is_idempotent(ok, engine):
    group_with_checkin(ok, "Europe/London", "09:00", "2026-11-30 12:00")
    first = plan_checkins(engine, utc(2026, 12, 1, 8))
    again = plan_checkins(engine, utc(2026, 12, 1, 8))
    with session_scope(engine) as session:
        # Even with the bookmark lost, the unique key keeps one row per plan and day.
        session.execute(CheckIn.__table__.update().values(state="scheduled"))
        session.execute(CheckInPlan.__table__.update().values(planned_until=None))
    replanned = plan_checkins(engine, utc(2026, 12, 1, 8))
    with session_scope(engine) as session:
        total = session.scalar(select(func.count()).select_from(CheckIn))
    assert first == 2 and again == 0 and replanned == 0 and total == 2


# ---------------------------------------------------------------- the low-water mark
#
# A plan is planned up to now + HORIZON and then left alone until its bookmark (planned_until)
# falls below low_water_mark(now) = now + 2/3 HORIZON: so about twice a day, not every tick.

PlanSpec = tuple[str, str, str]  # member, at, days


def group_with_plans(ok, tz: str, created: str, plans: list[PlanSpec]) -> None:
    with freeze_time(created):
        ok("group", "add", "G", "--timezone", tz)
        ok("group", "set", "G", "--quiet", "off")
        ok("member", "add", "G", "Contact", "--phone", JO)
        for i, (name, at, days) in enumerate(plans):
            ok("member", "add", "G", name, "--phone", f"07911 2000{i:02d}")
            ok("checkin", "add", "G", name, "--at", at, "--days", days, "--escalate-to", "Contact")


def plan_at(engine, moment: datetime) -> int:
    """One tick's planning pass with the clock frozen at `moment` (APScheduler is left
    unfrozen for every test: see conftest). Frozen, the pass's time budget never runs out."""
    with freeze_time(moment):
        return plan_checkins(engine, moment)


def bookmarks(engine) -> dict[int, datetime]:
    with session_scope(engine) as session:
        return {plan_id: until for plan_id, until in session.execute(
            select(CheckInPlan.id, CheckInPlan.planned_until))}


def checkin_keys(engine) -> set[tuple[int, str, datetime]]:
    with session_scope(engine) as session:
        return {(plan_id, occurrence, due) for plan_id, occurrence, due in session.execute(
            select(CheckIn.plan_id, CheckIn.occurrence, CheckIn.due_at))}


@contextmanager
def statements(engine) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement the engine sends meanwhile, with its parameters (bar SQLite's BEGIN
    IMMEDIATE)."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not statement.startswith("BEGIN"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_an_ordinary_tick_after_planning_examines_and_creates_nothing(ok, engine):
    group_with_plans(ok, "Europe/London", "2026-11-30 12:00", [
        ("Vera", "09:00", "daily"), ("Pat", "17:30", "weekdays"), ("Dot", "00:00", "daily")])
    first = utc(2026, 11, 30, 12, 0, 5)
    # Up to 2 Dec 00:00:05: Vera 1 Dec; Pat (weekdays) Mon 30 Nov and Tue 1 Dec; Dot 1 and 2 Dec.
    assert plan_at(engine, first) == 5
    planned = checkin_keys(engine)
    assert set(bookmarks(engine).values()) == {first + HORIZON}
    # Up to 12 h later every bookmark is still above the mark (now + 24 h): the pass is one probe.
    for later in (timedelta(seconds=5), timedelta(hours=1), timedelta(hours=11, minutes=59)):
        with statements(engine) as sent_sql:
            assert plan_at(engine, first + later) == 0
        [(probe, parameters)] = sent_sql
        assert probe.startswith("SELECT") and "EXISTS" in probe
        if engine.dialect.name == "sqlite":  # ... answered from the index, not by reading plans
            with engine.connect() as conn:
                steps = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + probe, parameters)]
            assert not [s for s in steps if "checkin_plans" in s and "ix_checkin_plans_planned_until" not in s], steps
        assert set(bookmarks(engine).values()) == {first + HORIZON}
        assert checkin_keys(engine) == planned
    # Once the mark passes the bookmarks, every plan is planned again, up to the full horizon.
    again = first + timedelta(hours=12, seconds=5)
    assert low_water_mark(again) > first + HORIZON
    assert plan_at(engine, again) > 0
    assert set(bookmarks(engine).values()) == {again + HORIZON}


@pytest.mark.parametrize("created, start", [
    # Europe/London springs forward on Sunday 29 March 2026 and falls back on Sunday 25 October.
    ("2026-03-25 10:00", utc(2026, 3, 25, 10, 0, 5)),
    ("2026-10-21 10:00", utc(2026, 10, 21, 10, 0, 5)),
])
def test_ticks_across_the_low_water_mark_and_dst_miss_and_repeat_nothing(ok, engine, created, start):
    specs = [("Vera", "09:00", "daily"), ("Pat", "01:30", "daily"),  # 01:30 is skipped / repeated
             ("Dot", "00:00", "daily"), ("Len", "23:30", "weekdays"), ("Ann", "13:15", "mon,wed,fri")]
    group_with_plans(ok, "Europe/London", created, specs)
    with session_scope(engine) as session:
        plans = [(plan_id, days, at, made) for plan_id, days, at, made in session.execute(
            select(CheckInPlan.id, CheckInPlan.days, CheckInPlan.at_time, CheckInPlan.created_at)
            .order_by(CheckInPlan.id))]

    def expected(until: datetime) -> set[tuple[int, str, datetime]]:
        # One window per plan from its creation: the planner's many short ones must add up to it.
        return {(plan_id, local_date(due, "Europe/London").isoformat(), due)
                for plan_id, days, at, made in plans
                for due in occurrences(days, at, "Europe/London", made, until)}

    days = 9
    end = start + timedelta(days=days)
    moment, passes = start, set()
    while moment < end:  # a tick every 37 minutes, so the mark is crossed at varying offsets
        plan_at(engine, moment)
        passes |= set(bookmarks(engine).values())
        have = checkin_keys(engine)
        # Everything due before the mark is always there already, the next 24 h at least...
        assert {k for k in expected(low_water_mark(moment)) if k not in have} == set(), moment
        # ... and nothing that isn't an occurrence, nor any occurrence twice.
        assert have <= expected(moment + HORIZON)
        moment += timedelta(minutes=37)
    assert checkin_keys(engine) == expected(bookmarks(engine)[plans[0][0]])
    # Each pass that planned moved every bookmark to its own horizon: about two a day.
    assert len(passes) <= 2 * days + 2
    # Hand-checked instants on the days the clocks change.
    have = {(due, occurrence) for _, occurrence, due in checkin_keys(engine)}
    if start.month == 3:
        assert (utc(2026, 3, 28, 9), "2026-03-28") in have       # 09:00 GMT
        assert (utc(2026, 3, 29, 8), "2026-03-29") in have       # 09:00 BST
        assert (utc(2026, 3, 29, 1, 30), "2026-03-29") in have   # 01:30 doesn't exist: 02:30 BST
        assert (utc(2026, 3, 29, 0), "2026-03-29") in have       # midnight, still GMT
        assert (utc(2026, 3, 29, 23), "2026-03-30") in have      # midnight BST is 23:00 UTC
    else:
        assert (utc(2026, 10, 24, 8), "2026-10-24") in have      # 09:00 BST
        assert (utc(2026, 10, 25, 9), "2026-10-25") in have      # 09:00 GMT
        assert (utc(2026, 10, 25, 0, 30), "2026-10-25") in have  # 01:30 happens twice: the first
        assert (utc(2026, 10, 25, 1, 30), "2026-10-25") not in have
        assert (utc(2026, 10, 24, 23), "2026-10-25") in have     # midnight BST
        assert (utc(2026, 10, 26, 0), "2026-10-26") in have      # midnight GMT


@pytest.mark.parametrize("inside", [
    utc(2026, 10, 25, 0, 30),  # 01:30 BST: the first 01:30 of 25 October in London (fold=0)
    utc(2026, 10, 25, 1, 5),   # 01:05 GMT: the second time round (fold=1)
    utc(2026, 10, 25, 1, 30),  # 01:30 GMT, the second 01:30 (fold=1)
])
def test_a_clock_frozen_in_the_hour_that_happens_twice_plans_and_ticks(ok, engine, ticker, inside):
    # freezegun's datetimes lose `fold`; handed to APScheduler they made `occurrences` loop for
    # ever here. conftest keeps them from it (and recurrence.py now fails rather than loops).
    group_with_plans(ok, "Europe/London", "2026-10-24 12:00", [
        ("Vera", "01:30", "daily"), ("Pat", "01:00", "daily"), ("Dot", "09:00", "daily")])
    with freeze_time(inside):
        ok("member", "add", "G", "Len", "--phone", "07911 200099")
        ok("checkin", "add", "G", "Len", "--at", "01:45", "--escalate-to", "Contact")
        ticker(inside)
    with session_scope(engine) as session:
        have = {(name, occurrence, due) for name, occurrence, due in session.execute(
            select(Member.name, CheckIn.occurrence, CheckIn.due_at).join(Member, Member.id == CheckIn.member_id))}
    expected = {
        ("Pat", "2026-10-25", utc(2026, 10, 25, 0)), ("Pat", "2026-10-26", utc(2026, 10, 26, 1)),
        ("Vera", "2026-10-25", utc(2026, 10, 25, 0, 30)), ("Vera", "2026-10-26", utc(2026, 10, 26, 1, 30)),
        ("Dot", "2026-10-25", utc(2026, 10, 25, 9)), ("Dot", "2026-10-26", utc(2026, 10, 26, 9)),
        ("Len", "2026-10-26", utc(2026, 10, 26, 1, 45)),
    }
    if inside < utc(2026, 10, 25, 0, 45):  # a repeated time happens once, the first
        expected.add(("Len", "2026-10-25", utc(2026, 10, 25, 0, 45)))
    assert have == expected
    # Everything due by then was prompted, once.
    assert len(sent(engine, kind="checkin")) == len([due for _, _, due in expected if due <= inside]) == 2


def test_a_checkin_added_a_minute_before_its_time_goes_out_today(oakfield, ok, engine, ticker):
    add_checkin = ["--window", "30m", "--escalate-to", "Jo"]
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "10:00", *add_checkin)
    for hour in range(0, 9):  # Vera's plan is planned and far from its low-water mark by 08:59
        ticker(utc(2026, 12, 1, hour))
    before = bookmarks(engine)
    with freeze_time("2026-12-01 08:59:00"):
        ok("checkin", "add", "Oakfield", "Sam", "--at", "09:00", *add_checkin)
    ticker(utc(2026, 12, 1, 8, 59, 5))
    after = bookmarks(engine)
    assert {k: v for k, v in after.items() if k in before} == before  # Vera's was not re-planned
    ticker(utc(2026, 12, 1, 9, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.to_phone == "+447911100003" and prompt.sent_at == utc(2026, 12, 1, 9, 0)


def test_plans_sharing_a_rule_each_start_from_their_own_bookmark(ok, engine):
    group_with_plans(ok, "Europe/London", "2026-12-01 08:00", [("Vera", "09:00", "daily")])
    with freeze_time("2026-12-01 09:30"):  # after today's 09:00: Pat's first is tomorrow's
        ok("member", "add", "G", "Pat", "--phone", "07911 200099")
        ok("checkin", "add", "G", "Pat", "--at", "09:00", "--escalate-to", "Contact")
    assert plan_at(engine, utc(2026, 12, 1, 9, 31)) == 3  # both planned in one pass, one rule
    with session_scope(engine) as session:
        rows = sorted((m, o) for m, o in session.execute(
            select(CheckInPlan.member_id, CheckIn.occurrence).join(CheckIn, CheckIn.plan_id == CheckInPlan.id)))
    vera, pat = sorted({m for m, _ in rows})
    assert rows == [(vera, "2026-12-01"), (vera, "2026-12-02"), (pat, "2026-12-02")]


def test_two_workers_planning_at_once_neither_waits_nor_writes_twice(ok, engine, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time (BEGIN IMMEDIATE)")
    group_with_plans(ok, "Europe/London", "2026-12-01 08:00", [("Vera", "09:00", "daily"), ("Pat", "10:00", "daily")])
    now = utc(2026, 12, 1, 8, 0, 5)
    # The first worker stops in the middle of its chunk: both plans taken (FOR UPDATE), its
    # rows not yet committed.
    holding, release = threading.Event(), threading.Event()
    results: dict[str, int] = {}

    def hold(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO checkins") and threading.current_thread().name == "first":
            holding.set()
            release.wait(10)

    first = threading.Thread(name="first", target=lambda: results.setdefault("first", plan_checkins(engine, now)))
    # The second worker's own engine gives up on any lock after 2 s: waiting would fail the test.
    impatient = create_engine(normalise_url(db_url), connect_args={"options": "-c lock_timeout=2s"})
    event.listen(engine, "before_cursor_execute", hold)
    try:
        first.start()
        assert holding.wait(10)
        # Meanwhile a second worker's tick passes over the taken plans (SKIP LOCKED) at once.
        assert plan_checkins(impatient, now) == 0
    finally:
        release.set()
        first.join(10)
        event.remove(engine, "before_cursor_execute", hold)
        impatient.dispose()
    assert results["first"] == 4
    assert plan_checkins(engine, now + timedelta(seconds=5)) == 0
    assert len(checkin_keys(engine)) == 4


# ---------------------------------------------------------------- a chunk per transaction
#
# Each chunk of plans commits its rows and bookmarks by itself; the writer lock is let go
# between chunks; a pass takes the most urgent plans first and stops after its budget.

PEOPLE = ("Ann", "Bea", "Cal", "Dot", "Eve", "Fay", "Gil")
MADE = utc(2026, 12, 1, 8)


def seven_plans(ok, engine) -> list[int]:
    """Seven daily 09:00 plans made at MADE (each bookmarked there), in id order."""
    group_with_plans(ok, "Europe/London", "2026-12-01 08:00", [(name, "09:00", "daily") for name in PEOPLE])
    return sorted(bookmarks(engine))


def daily_nine(plan_id: int, start: datetime, until: datetime) -> set[tuple[int, str, datetime]]:
    """What one of seven_plans' plans should have from `start` (exclusive) to `until`."""
    return {(plan_id, local_date(due, "Europe/London").isoformat(), due)
            for due in occurrences("daily", "09:00", "Europe/London", start, until)}


def test_each_chunk_commits_by_itself_and_a_crash_loses_only_the_chunk_in_hand(
        ok, engine, db_url, monkeypatch):
    plans = seven_plans(ok, engine)
    monkeypatch.setattr(planner, "CHUNK", 3)
    now = MADE + timedelta(seconds=5)
    # Another connection, outside the planner's transactions: plain SQLAlchemy (no BEGIN
    # IMMEDIATE), so on SQLite it reads the last commit from the WAL without waiting.
    onlooker = create_engine(normalise_url(db_url))
    seen: list[tuple[int, int]] = []

    def at_each_insert(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not statement.startswith("INSERT INTO checkins"):
            return
        with onlooker.connect() as look:
            rows = look.scalar(select(func.count()).select_from(CheckIn.__table__))
            done = look.scalar(select(func.count()).select_from(CheckInPlan.__table__)
                               .where(CheckInPlan.__table__.c.planned_until > MADE))
        seen.append((rows, done))
        if len(seen) == 3:
            raise RuntimeError("the worker dies in its third chunk")

    event.listen(engine, "before_cursor_execute", at_each_insert)
    try:
        with pytest.raises(RuntimeError, match="third chunk"):
            plan_checkins(engine, now, budget=None)
    finally:
        event.remove(engine, "before_cursor_execute", at_each_insert)
        onlooker.dispose()
    # Each chunk's rows (3 plans x 1 and 2 December) and bookmarks were there for everyone as
    # soon as it committed, while the next was still being written.
    assert seen == [(0, 0), (6, 3), (12, 6)]
    # The crash lost the third chunk's work alone ...
    marks = bookmarks(engine)
    assert [p for p in plans if marks[p] == now + HORIZON] == plans[:6]
    assert marks[plans[6]] == MADE
    assert {p for p, _, _ in checkin_keys(engine)} == set(plans[:6])
    # ... and the next tick carries on from the bookmarks: the rest, nothing missing or twice.
    assert plan_checkins(engine, now + timedelta(seconds=5)) == 2
    assert checkin_keys(engine) == set().union(*(daily_nine(p, MADE, now + HORIZON) for p in plans))


def test_a_pass_plans_the_most_urgent_first_and_stops_at_its_budget(ok, engine, monkeypatch):
    plans = seven_plans(ok, engine)
    now = utc(2026, 12, 1, 20)
    # A top-up under way, bookmarks in no order of id, every one below the mark (now + 24 h):
    # one never planned, two behind the clock (check-ins due by now may be missing).
    given: dict[int, datetime | None] = {
        plans[0]: now + timedelta(hours=20), plans[1]: now + timedelta(hours=3), plans[2]: None,
        plans[3]: now - timedelta(hours=2), plans[4]: now + timedelta(hours=23),
        plans[5]: now - timedelta(hours=1), plans[6]: now + timedelta(hours=1)}
    with session_scope(engine) as session:
        for plan_id, until in given.items():
            session.execute(CheckInPlan.__table__.update().where(CheckInPlan.__table__.c.id == plan_id)
                            .values(planned_until=until))
    monkeypatch.setattr(planner, "CHUNK", 2)
    order: list[set[int]] = []
    for _ in range(len(plans)):
        # No time to spare: each pass plans one chunk (always at least one) and stops.
        plan_checkins(engine, now, budget=timedelta(0))
        done = {p for p, until in bookmarks(engine).items() if until == now + HORIZON}
        if done == set().union(*order):
            break
        order.append(done - set().union(*order))
    # Never planned first, then the earliest bookmark on.
    assert order == [{plans[2], plans[3]}, {plans[5], plans[6]}, {plans[1], plans[0]}, {plans[4]}]
    # Pass by pass, each plan got exactly what one pass would have given it.
    assert checkin_keys(engine) == set().union(*(
        daily_nine(p, MADE if given[p] is None else given[p], now + HORIZON) for p in plans))


def test_a_plan_made_a_moment_ago_is_planned_at_the_next_tick_though_a_top_up_is_under_way(
        oakfield, ok, engine, ticker, monkeypatch):
    add_checkin = ["--window", "30m", "--escalate-to", "Jo"]
    with freeze_time("2026-11-30 12:00:00"):
        for name, at in (("Vera", "10:00"), ("Jo", "11:00"), ("Margaret", "12:00")):
            ok("checkin", "add", "Oakfield", name, "--at", at, "--window", "30m", "--escalate-to", "Sam")
    # Every tick's pass has time for one chunk of one plan.
    monkeypatch.setattr(planner, "CHUNK", 1)
    monkeypatch.setattr(planner, "BUDGET", timedelta(0))
    for second in (5, 10, 15):
        ticker(utc(2026, 11, 30, 12, 0, second))
    planned = bookmarks(engine)
    assert sorted(planned.values()) == [utc(2026, 11, 30, 12, 0, s) + HORIZON for s in (5, 10, 15)]
    # Twelve hours on, all three fall below the mark together: the top-up's first tick.
    ticker(utc(2026, 12, 1, 0, 0, 20))
    with freeze_time("2026-12-01 08:59:00"):
        ok("checkin", "add", "Oakfield", "Sam", "--at", "09:00", *add_checkin)
    ticker(utc(2026, 12, 1, 8, 59, 5))
    after = bookmarks(engine)
    [sams] = set(after) - set(planned)
    # Sam's plan went ahead of the two still waiting for their top-up ...
    assert after[sams] == utc(2026, 12, 1, 8, 59, 5) + HORIZON
    assert sorted(after[p] for p in planned) == sorted(
        [utc(2026, 11, 30, 12, 0, 10) + HORIZON, utc(2026, 11, 30, 12, 0, 15) + HORIZON,
         utc(2026, 12, 1, 0, 0, 20) + HORIZON])
    # ... and its check-in goes out on time.
    ticker(utc(2026, 12, 1, 9, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.to_phone == "+447911100003" and prompt.sent_at == utc(2026, 12, 1, 9, 0)


def test_a_webhook_write_gets_in_between_the_chunks_of_a_long_pass(ok, engine, monkeypatch):
    plans = seven_plans(ok, engine)
    monkeypatch.setattr(planner, "CHUNK", 1)
    log: list[str] = []

    def webhook() -> None:  # a reply's write, as web.py makes it, from its own thread
        with connection_scope(engine) as connection:
            events.record(connection, MADE, "probe", detail="a webhook's write")
        log.append("webhook")

    writer = threading.Thread(target=webhook)

    def at_each_insert(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO checkins") and threading.current_thread() is not writer:
            log.append("chunk")
            if log.count("chunk") == 1:
                writer.start()  # it queues for the writer lock the first chunk holds

    event.listen(engine, "before_cursor_execute", at_each_insert)
    try:
        plan_checkins(engine, MADE + timedelta(seconds=5), budget=None)
    finally:
        event.remove(engine, "before_cursor_execute", at_each_insert)
        writer.join(10)
    assert log.count("chunk") == len(plans)
    # It waited for a chunk or so, not for the whole pass.
    assert "webhook" in log[:-1], log


def test_two_workers_planning_chunk_by_chunk_at_once_plan_everything_once(ok, engine, monkeypatch):
    plans = seven_plans(ok, engine)
    monkeypatch.setattr(planner, "CHUNK", 2)
    now = MADE + timedelta(seconds=5)
    results: list[int] = []
    workers = [threading.Thread(target=lambda: results.append(plan_checkins(engine, now, budget=None)))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert len(results) == 2
    expected = set().union(*(daily_nine(p, MADE, now + HORIZON) for p in plans))
    # Every row written once and counted once, between them.
    assert checkin_keys(engine) == expected and sum(results) == len(expected)


def edit_time(engine, at_time: str, replan_at: datetime | None = None) -> None:
    """Change Vera's plan's time. There is no edit command yet; `replan_at` does what one
    would have to for the change to apply at once: bookmark reset, unsent check-ins dropped."""
    with session_scope(engine) as session:
        plan = session.scalars(select(CheckInPlan)).one()
        plan.at_time = at_time
        if replan_at is not None:
            plan.planned_until = replan_at
            session.execute(delete(CheckIn).where(CheckIn.plan_id == plan.id, CheckIn.state == "scheduled"))


def vera_prompts(engine) -> list[datetime]:
    return [m.sent_at for m in sent(engine, kind="checkin", to_phone="+447911100001")]


def test_an_edited_time_applies_from_the_first_day_not_yet_planned(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(2026, 12, 1, 0))
    ticker(utc(2026, 12, 1, 9))
    edit_time(engine, "11:00")
    # A check-in already planned keeps the time it was planned with (at most a horizon ahead).
    run_days(ticker, utc(2026, 12, 1, 10), 4)
    assert vera_prompts(engine) == [utc(2026, 12, 1, 9), utc(2026, 12, 2, 9), utc(2026, 12, 3, 11),
                                    utc(2026, 12, 4, 11)]


def test_an_edit_that_resets_the_bookmark_applies_at_the_next_tick(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(2026, 12, 1, 0))
    ticker(utc(2026, 12, 1, 9))
    edit_time(engine, "11:00", replan_at=utc(2026, 12, 1, 10))
    run_days(ticker, utc(2026, 12, 1, 10), 3)
    # Today's was already sent at 09:00 and stays the day's one; from tomorrow, 11:00.
    assert vera_prompts(engine) == [utc(2026, 12, 1, 9), utc(2026, 12, 2, 11), utc(2026, 12, 3, 11)]


def test_after_a_long_outage_planning_looks_back_a_week_at_most(ok, engine):
    group_with_plans(ok, "Europe/London", "2026-11-16 12:00", [("Vera", "09:00", "daily")])
    plan_at(engine, utc(2026, 11, 16, 12, 0, 5))
    back = utc(2026, 12, 3, 10)  # down from 16 Nov to 3 Dec
    plan_at(engine, back)
    dues = sorted(due for _, _, due in checkin_keys(engine))
    assert [d for d in dues if d < back - LOOKBACK] == [utc(2026, 11, 17, 9)]  # planned before the outage
    assert [d for d in dues if d >= back - LOOKBACK] == [utc(2026, 11, day, 9) for day in (27, 28, 29, 30)] + [
        utc(2026, 12, day, 9) for day in (1, 2, 3, 4)]
