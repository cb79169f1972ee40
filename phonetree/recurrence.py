"""Recurrence rules: "at HH:MM local time on these days in the group's time zone" -> UTC
instants. The rule's parts are parsed by `phonetree.days`, `phonetree.times_of_day` and
`phonetree.zones`; each date's instant follows the daylight-saving policy in
`phonetree.local_times` (every matching local date fires exactly once, on that date).

What APScheduler 3.11's CronTrigger does by itself, and what `occurrences` corrects:

* Clocks going back: it fires twice (the BST 01:30 and then the GMT 01:30). Corrected: one fire
  per local date, the first.
* Clocks going forward, stepping from one fire to the next: it builds the non-existent wall time
  with fold=0, which is the policy. But started fresh inside the shifted hour (e.g. at
  01:15 UTC on 2026-03-29) it skips that day's 01:30 (= 01:30 UTC) and goes to the next day, and
  when the gap covers midnight (America/Santiago, 00:00 -> 01:00) it skips the whole date.
  Corrected: every matching date the trigger jumps over, from the window's first local date on,
  is put back, and each date's instant is computed with zoneinfo by the policy (so
  an instant on an earlier date than `after`'s can never be due).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterator
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from phonetree.days import parse_days, weekday_numbers
from phonetree.local_times import instant_on, require_aware
from phonetree.times_of_day import parse_time
from phonetree.zones import zone as _zone

UTC = timezone.utc
ONE_DAY = timedelta(days=1)
ONE_MICROSECOND = timedelta(microseconds=1)
# A plain datetime made at import, to turn any subclass instance back into a plain one (below).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Rule:
    trigger: CronTrigger
    zone: ZoneInfo
    at: time
    weekdays: frozenset[int]


_CRON_DAYS = {"daily": "*", "weekdays": "mon-fri", "weekends": "sat,sun"}


@lru_cache(maxsize=4096)
def _rule(days: str, at_time: str, tz: str) -> _Rule:
    """One trigger per distinct rule: a planner run shares these across a million plans."""
    # Parse again so a hand-written rule ("Mon-Fri", "9:00") can't build a wrong trigger; the
    # cache makes that a one-off cost per spelling.
    day_rule, clock = parse_days(days), parse_time(at_time)
    hour, minute = int(clock[:2]), int(clock[3:])
    zone = _zone(tz)
    trigger = CronTrigger(day_of_week=_CRON_DAYS.get(day_rule, day_rule), hour=hour,
                          minute=minute, timezone=zone)
    return _Rule(trigger, zone, time(hour, minute), weekday_numbers(day_rule))


def _fire_dates(rule: _Rule, start: datetime) -> Iterator[date]:
    """Every local date after `start` on which the rule fires, ascending, each once."""
    previous: datetime | None = None
    # The trigger gets a plain datetime, whatever subclass came in: with a test's clock frozen,
    # `start` may be freezegun's FakeDatetime (read back from the database), whose arithmetic
    # drops `fold`, and a start in the second pass of a repeated hour then fires before itself.
    cursor = _EPOCH + (start - _EPOCH)
    # Dates from the start's own local date on that the trigger jumps over get put back (below):
    # started inside a DST gap, its first fire can be a day late.
    last_day = start.astimezone(rule.zone).date() - ONE_DAY
    while True:
        fire = rule.trigger.get_next_fire_time(previous, cursor)
        if fire is None:  # only with an end_date, which we never set
            return
        day = fire.date()  # the wall-clock date the cron fields matched
        # APScheduler skips a date whose midnight falls in a DST gap (America/Santiago): put back
        # any matching date between the last fire and this one.
        skipped = last_day + ONE_DAY
        while skipped < day:
            if skipped.weekday() in rule.weekdays:
                yield skipped
            skipped += ONE_DAY
        if day > last_day:  # clocks going back: the second fire on the same date is dropped
            yield day
            last_day = day
        previous = fire
        # Step on in UTC: wall-clock arithmetic on `fire` would drop fold=1 and loop in an overlap.
        step = fire.astimezone(UTC) + ONE_MICROSECOND
        if step <= cursor:
            # Only a datetime that lost its fold gets here (freezegun's do, if it is let patch
            # APScheduler): fail loudly rather than ask for the same fire for ever.
            raise RuntimeError(f"the recurrence did not move on from {cursor.isoformat()}: "
                               f"{fire!r} has lost its fold")
        cursor = step


def occurrences(days: str, at_time: str, tz: str, after: datetime, until: datetime) -> list[datetime]:
    """Fire times strictly after `after` and at or before `until`, as UTC datetimes, ascending.

    `days` and `at_time` are in the forms `parse_days`/`parse_time` accept, `tz` an IANA name.
    """
    require_aware(after, "after")
    require_aware(until, "until")
    rule = _rule(days, at_time, tz)
    after, until = after.astimezone(UTC), until.astimezone(UTC)
    if until <= after:
        return []
    last_date = until.astimezone(rule.zone).date()
    result: list[datetime] = []
    for day in _fire_dates(rule, after):
        if day > last_date:  # each instant lies on its own local date, so we are past `until`
            break
        instant = instant_on(day, rule.at, rule.zone)
        if instant is not None and after < instant <= until:
            result.append(instant)
    return result

