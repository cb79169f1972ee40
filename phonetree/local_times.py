"""Local time in a group's zone: the date an instant falls on, the instant of a wall-clock time
on a date, and times as a person reads them (with the zone's name on the clock, GMT or BST, so
nobody mistakes it for UTC). Stored times and JSON stay UTC (ISO 8601).

Daylight-saving policy (shared with `phonetree.recurrence`: each fire is a *local date* plus a
wall-clock time, at an instant whose local date is that date):

* An ordinary time is that wall-clock time: 09:00 in London is 08:00 UTC in summer and
  09:00 UTC in winter.
* A time that happens twice (clocks go back) is the first, e.g. 01:30 on 2026-10-25 in London
  is 01:30 BST = 00:30 UTC.
* A time the clocks skip (clocks go forward) is shifted forward by the length of the gap, e.g.
  01:30 on 2026-03-29 in London is 02:30 BST = 01:30 UTC; 02:30 on 2026-03-08 in New York is
  03:30 EDT = 07:30 UTC. This is the same instant the time would have had without the change
  (PEP 495 fold=0, RFC 5545's rule). If shifting forward would push it onto the next date (a
  gap that ends at midnight, e.g. America/Nuuk 23:00 -> 00:00), it is shifted *back* by the gap
  instead, so it still happens on its own day and never takes the next day's slot.
* A date the zone skipped entirely (Pacific/Apia, 2011-12-30) has no such instant.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from phonetree.times_of_day import parse_time
from phonetree.zones import zone

UTC = timezone.utc
ONE_DAY = timedelta(days=1)


def require_aware(value: datetime, name: str) -> None:
    """Refuse a naive datetime: astimezone() would read it as the *server's* local time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date `instant` falls on in zone `tz`."""
    require_aware(instant, "instant")
    return instant.astimezone(zone(tz)).date()


def instant_on(day: date, at: time, here: ZoneInfo) -> datetime | None:
    """The one UTC instant of wall-clock time `at` on local date `day` (policy: module
    docstring); None if the zone skipped that date altogether."""
    # fold=0 is the first of a repeated time, or a skipped time shifted forward by the gap;
    # fold=1 shifts a skipped time back instead, for a gap that ends at midnight.
    for fold in (0, 1):
        instant = datetime.combine(day, at, tzinfo=here).replace(fold=fold).astimezone(UTC)
        if instant.astimezone(here).date() == day:
            return instant
    return None


def local_instant(day: date, at_time: str, tz: str) -> datetime:
    """The UTC instant of local time `at_time` on `day` in `tz`, by the same DST policy as
    `occurrences` (a skipped time happens once, shifted by the gap; a repeated one, the first)."""
    clock = parse_time(at_time)
    instant = instant_on(day, time(int(clock[:2]), int(clock[3:])), zone(tz))
    if instant is None:  # the zone skipped the whole date: the start of the next one
        return datetime.combine(day + ONE_DAY, time(0), tzinfo=zone(tz)).astimezone(UTC)
    return instant


def local(instant: datetime | None, tz: str, *, date: bool = True, zone: bool = True) -> str:
    """'Tue 01 Dec 10:00 GMT' for a UTC instant, in zone `tz`; '-' for none."""
    if instant is None:
        return "-"
    here = instant.astimezone(ZoneInfo(tz))
    text = here.strftime("%a %d %b %H:%M" if date else "%H:%M")
    return f"{text} {here.strftime('%Z')}" if zone else text


def local_iso(instant: str | None, tz: str, **options: bool) -> str:
    """`local` for an ISO 8601 string as the JSON views carry them."""
    return local(datetime.fromisoformat(instant), tz, **options) if instant else "-"
