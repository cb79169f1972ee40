"""Planning through the real engine across clock changes, midnight and time zones."""
from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from phonetree.db import session_scope
from phonetree.models import CheckIn
from schedules.planner import plan_checkins
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
    with session_scope(engine) as session:
        first = plan_checkins(session, utc(2026, 12, 1, 8))
    with session_scope(engine) as session:
        again = plan_checkins(session, utc(2026, 12, 1, 8))
    with session_scope(engine) as session:
        # Even with the bookmark lost, the unique key keeps one row per plan and day.
        session.execute(CheckIn.__table__.update().values(state="scheduled"))
        from phonetree.models import CheckInPlan
        session.execute(CheckInPlan.__table__.update().values(planned_until=None))
        replanned = plan_checkins(session, utc(2026, 12, 1, 8))
        total = session.scalar(select(func.count()).select_from(CheckIn))
    assert first == 2 and again == 0 and replanned == 0 and total == 2
