"""Quiet hours: when a routine message held by them goes out (phonetree/quiet_hours.py), alone
and through the engine. An evening's held message waits for the *next* morning's end."""
from __future__ import annotations

import pytest
from freezegun import freeze_time

from phonetree.quiet_hours import next_allowed
from tests.conftest import sent, utc

LONDON = "Europe/London"


@pytest.mark.parametrize("instant, quiet, allowed", [
    (utc(2026, 12, 1, 22, 30), ("21:00", "08:00"), utc(2026, 12, 2, 8, 0)),   # evening: tomorrow's end
    (utc(2026, 12, 1, 23, 59), ("21:00", "08:00"), utc(2026, 12, 2, 8, 0)),
    (utc(2026, 12, 2, 0, 0), ("21:00", "08:00"), utc(2026, 12, 2, 8, 0)),     # after midnight: today's
    (utc(2026, 12, 2, 7, 59), ("21:00", "08:00"), utc(2026, 12, 2, 8, 0)),
    (utc(2026, 12, 2, 8, 0), ("21:00", "08:00"), utc(2026, 12, 2, 8, 0)),     # the end itself: allowed
    (utc(2026, 12, 1, 20, 59), ("21:00", "08:00"), utc(2026, 12, 1, 20, 59)),
    (utc(2026, 12, 1, 21, 0), ("21:00", "08:00"), utc(2026, 12, 2, 8, 0)),
    (utc(2026, 12, 1, 13, 0), ("12:00", "14:00"), utc(2026, 12, 1, 14, 0)),   # a daytime span
    (utc(2026, 12, 1, 13, 0), ("00:00", "00:00"), utc(2026, 12, 1, 13, 0)),   # none
    # The evening before the clocks go back: 22:30 BST; 08:00 next morning is GMT, 08:00 UTC.
    (utc(2026, 10, 24, 21, 30), ("21:00", "08:00"), utc(2026, 10, 25, 8, 0)),
    # The evening before they go forward: 22:30 GMT; 08:00 next morning is BST, 07:00 UTC.
    (utc(2026, 3, 28, 22, 30), ("21:00", "08:00"), utc(2026, 3, 29, 7, 0)),
])
def test_next_allowed(instant, quiet, allowed):
    assert next_allowed(instant, LONDON, *quiet) == allowed


def test_news_started_in_the_evening_waits_for_the_next_morning(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "set", "Oakfield", "--quiet", "21:00-08:00")
    with freeze_time("2026-12-01 22:00:00"):
        ok("cascade", "start", "Oakfield", "Thursday's meeting has moved to Friday")
    news = sent(engine, template="news")
    assert news and {m.not_before for m in news} == {utc(2026, 12, 2, 8, 0)}
    ticker(utc(2026, 12, 1, 22, 5))
    ticker(utc(2026, 12, 2, 7, 59))
    assert {m.state for m in sent(engine, template="news")} == {"queued"}  # nobody woken
    ticker(utc(2026, 12, 2, 8, 0))
    assert {(m.state, m.sent_at) for m in sent(engine, template="news")} == {("sent", utc(2026, 12, 2, 8, 0))}
