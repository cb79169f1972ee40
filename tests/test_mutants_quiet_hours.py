"""Quiet hours at their exact edges (phonetree/quiet_hours.py): written to kill the mutants that
survived the rest of the suite (bench/mutation.py). Quiet hours are the half-open local span
[start, end), may cross midnight, and "off" is stored as 00:00-00:00 (phonetree/directory.py);
a routine message due inside them waits until they end, in the group's zone."""
from __future__ import annotations

from datetime import datetime, time, timezone

import pytest

from phonetree.quiet_hours import in_quiet_hours, next_allowed

LONDON = "Europe/London"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(("at", "quiet"), [
    (time(21, 0), True),     # the start is inside
    (time(20, 59), False),
    (time(23, 59), True),
    (time(0, 0), True),      # across midnight
    (time(7, 59), True),
    (time(8, 0), False),     # the end is outside
    (time(12, 0), False),
])
def test_overnight_span_is_half_open(at: time, quiet: bool) -> None:
    assert in_quiet_hours(at, "21:00", "08:00") is quiet


@pytest.mark.parametrize(("at", "quiet"), [
    (time(12, 59), False),
    (time(13, 0), True),
    (time(13, 30), True),
    (time(13, 59), True),
    (time(14, 0), False),
    (time(23, 0), False),
])
def test_same_day_span_is_half_open(at: time, quiet: bool) -> None:
    assert in_quiet_hours(at, "13:00", "14:00") is quiet


def test_minutes_of_the_span_count() -> None:
    assert in_quiet_hours(time(21, 29), "21:30", "07:45") is False
    assert in_quiet_hours(time(21, 30), "21:30", "07:45") is True
    assert in_quiet_hours(time(7, 44), "21:30", "07:45") is True
    assert in_quiet_hours(time(7, 45), "21:30", "07:45") is False


@pytest.mark.parametrize("at", [time(0, 0), time(8, 0), time(21, 0), time(23, 59)])
def test_equal_start_and_end_means_no_quiet_hours(at: time) -> None:
    # `group set --quiet off` stores 00:00-00:00: nothing is ever held.
    assert in_quiet_hours(at, "00:00", "00:00") is False
    assert in_quiet_hours(at, "21:00", "21:00") is False


def test_outside_quiet_hours_the_instant_itself() -> None:
    noon = utc(2026, 12, 1, 12, 0, 0)
    assert next_allowed(noon, LONDON, "21:00", "08:00") == noon


def test_evening_waits_for_tomorrow_mornings_end() -> None:
    # 22:30 on 1 December (GMT) waits for 08:00 on the 2nd, not this morning's 08:00.
    held = next_allowed(utc(2026, 12, 1, 22, 30), LONDON, "21:00", "08:00")
    assert held == utc(2026, 12, 2, 8, 0)
    assert held.utcoffset() is not None and held.utcoffset().total_seconds() == 0


def test_early_morning_waits_for_this_mornings_end() -> None:
    assert next_allowed(utc(2026, 12, 1, 6, 15), LONDON, "21:00", "08:00") == utc(2026, 12, 1, 8, 0)
    assert next_allowed(utc(2026, 12, 1, 0, 0), LONDON, "21:00", "08:00") == utc(2026, 12, 1, 8, 0)


def test_the_end_is_local_wall_clock_in_summer() -> None:
    # 23:00 BST on 1 July is 22:00 UTC; quiet hours end at 08:00 BST on 2 July = 07:00 UTC.
    assert next_allowed(utc(2026, 7, 1, 22, 0), LONDON, "21:00", "08:00") == utc(2026, 7, 2, 7, 0)
    assert next_allowed(utc(2026, 7, 2, 5, 0), LONDON, "21:00", "08:00") == utc(2026, 7, 2, 7, 0)


def test_the_end_is_local_across_the_autumn_change() -> None:
    # 22:00 BST on Saturday 24 October; the clocks go back overnight: 08:00 GMT on the 25th.
    assert next_allowed(utc(2026, 10, 24, 21, 0), LONDON, "21:00", "08:00") == utc(2026, 10, 25, 8, 0)


def test_the_end_with_minutes_in_another_zone() -> None:
    # New York, 1 December (UTC-5): 23:10 local waits for 07:45 local on the 2nd.
    held = next_allowed(utc(2026, 12, 2, 4, 10), "America/New_York", "21:30", "07:45")
    assert held == utc(2026, 12, 2, 12, 45)


def test_a_same_day_span_waits_until_it_ends_today() -> None:
    # 13:00-14:00 in London, 13:20 GMT: 14:00 the same day.
    assert next_allowed(utc(2026, 12, 1, 13, 20), LONDON, "13:00", "14:00") == utc(2026, 12, 1, 14, 0)


@pytest.fixture
def machine_in_new_york(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The process's own local zone set to New York, as on an organiser's laptop there."""
    import time as systime

    monkeypatch.setenv("TZ", "America/New_York")
    systime.tzset()
    yield
    monkeypatch.undo()
    systime.tzset()


def test_the_groups_zone_not_the_machines_and_the_answer_in_utc(machine_in_new_york: None) -> None:
    # Quiet hours are the group's (London) wall clock, whatever zone the machine is set to, and
    # the moment comes back in UTC as the docstring says (rows hold UTC instants).
    held = next_allowed(utc(2026, 12, 1, 22, 30), LONDON, "21:00", "08:00")
    assert held == utc(2026, 12, 2, 8, 0)
    assert held.utcoffset() is not None and held.utcoffset().total_seconds() == 0
    # 02:00 UTC is 21:00 in New York but 02:00 in London: quiet in London, held till 08:00 GMT.
    assert next_allowed(utc(2026, 12, 1, 2, 0), LONDON, "21:00", "08:00") == utc(2026, 12, 1, 8, 0)
    # 23:30 UTC is 18:30 in New York: London's quiet hours hold it, New York's would not.
    assert next_allowed(utc(2026, 12, 1, 23, 30), LONDON, "21:00", "08:00") == utc(2026, 12, 2, 8, 0)
