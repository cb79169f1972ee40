"""Recurrence rules: "at HH:MM local time on these days in the group's time zone".

Parsers turn what an organiser types into one canonical form (so equal rules compare equal and
share one cached trigger) and raise `PhonetreeError` with a message saying what to type instead.
`occurrences` turns a rule into UTC instants.

Daylight-saving policy (each fire is a *local date* plus a wall-clock time; every matching date
fires exactly once, at an instant whose local date is that date):

* An ordinary time fires at that wall-clock time: 09:00 in London is 08:00 UTC in summer and
  09:00 UTC in winter.
* A time that happens twice (clocks go back) fires once, at the first, e.g. 01:30 on 2026-10-25
  in London is 01:30 BST = 00:30 UTC.
* A time the clocks skip (clocks go forward) fires once, shifted forward by the length of the
  gap, e.g. 01:30 on 2026-03-29 in London is 02:30 BST = 01:30 UTC; 02:30 on 2026-03-08 in
  New York is 03:30 EDT = 07:30 UTC. This is the same instant the time would have had without
  the change (PEP 495 fold=0, RFC 5545's rule). If shifting forward would push it onto the next
  date (a gap that ends at midnight, e.g. America/Nuuk 23:00 -> 00:00), it is shifted *back*
  by the gap instead, so it still happens on its own day and never takes the next day's slot.
* A date the zone skipped entirely (Pacific/Apia, 2011-12-30) has no fire.

What APScheduler 3.11's CronTrigger does by itself, and what `occurrences` corrects:

* Clocks going back: it fires twice (the BST 01:30 and then the GMT 01:30). Corrected: one fire
  per local date, the first.
* Clocks going forward, stepping from one fire to the next: it builds the non-existent wall time
  with fold=0, which is the policy above. But started fresh inside the shifted hour (e.g. at
  01:15 UTC on 2026-03-29) it skips that day's 01:30 (= 01:30 UTC) and goes to the next day, and
  when the gap covers midnight (America/Santiago, 00:00 -> 01:00) it skips the whole date.
  Corrected: every matching date the trigger jumps over, from the window's first local date on,
  is put back, and each date's instant is computed here with zoneinfo by the policy above (so
  an instant on an earlier date than `after`'s can never be due).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterator
from zoneinfo import ZoneInfo, available_timezones

from apscheduler.triggers.cron import CronTrigger

from phonetree.errors import PhonetreeError

UTC = timezone.utc
ONE_DAY = timedelta(days=1)
ONE_MICROSECOND = timedelta(microseconds=1)
# A plain datetime made at import, to turn any subclass instance back into a plain one (below).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ---------------------------------------------------------------- times

# [0-9] and re.ASCII, not \d: "٠٩:٣٠" (Arabic-Indic digits) is not something we should store.
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})", re.ASCII)
_AM_PM = re.compile(r"[ap]\.?m\.?$", re.IGNORECASE)


def parse_time(text: str) -> str:
    """'9:00' or '09:00' -> '09:00'. Only H:MM and HH:MM on the 24-hour clock."""
    cleaned = text.strip()
    match = _TIME.fullmatch(cleaned)
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if hour < 24 and minute < 60:
            return f"{hour:02d}:{minute:02d}"
    if _AM_PM.search(cleaned):
        # "9am" is a common slip; say which clock we mean rather than just "not a time".
        raise PhonetreeError(f"'{cleaned}' is not a time; use the 24-hour clock as HH:MM, "
                             "e.g. 09:30 or 21:30.")
    raise PhonetreeError(f"'{cleaned}' is not a time; write it as HH:MM, e.g. 09:30.")


# ---------------------------------------------------------------- days

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # Monday = 0, as date.weekday()
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS: dict[str, int] = {}
for _i, (_short, _full) in enumerate(zip(DAY_NAMES, _FULL_NAMES)):
    _DAY_WORDS.update({_short: _i, _full: _i, _full + "s": _i})  # mon, monday, mondays
_DAY_WORDS.update({"tues": 1, "weds": 2, "thur": 3, "thurs": 3})  # common abbreviations

_WEEKDAYS = frozenset(range(5))
_WEEKENDS = frozenset({5, 6})
_ALL_DAYS = frozenset(range(7))
_KEYWORDS: dict[str, frozenset[int]] = {
    "daily": _ALL_DAYS, "everyday": _ALL_DAYS,
    "weekdays": _WEEKDAYS, "weekday": _WEEKDAYS,
    "weekends": _WEEKENDS, "weekend": _WEEKENDS,
}
_DAYS_HELP = "use daily, weekdays, weekends, or days like mon,wed,fri or mon-fri."


def _day(word: str) -> int:
    if word not in _DAY_WORDS:
        raise PhonetreeError(f"'{word}' is not a day; {_DAYS_HELP}")
    return _DAY_WORDS[word]


def parse_days(text: str) -> str:
    """Canonical day rule: 'daily', 'weekdays', 'weekends' or e.g. 'mon,wed,fri' (week order)."""
    # "Mon - Fri" -> "mon-fri" so the split below keeps a range in one piece.
    normalised = re.sub(r"\s*-\s*", "-", text.strip().lower())
    tokens = [t for t in re.split(r"[,\s]+", normalised) if t]
    if not tokens:
        raise PhonetreeError(f"say which days the check-in is on; {_DAYS_HELP}")
    chosen: set[int] = set()
    for token in tokens:
        if token in _KEYWORDS:
            chosen |= _KEYWORDS[token]
        elif "-" in token:
            ends = token.split("-")
            if len(ends) != 2 or not all(ends):
                raise PhonetreeError(f"'{token}' is not a range of days; write it like mon-fri.")
            first, last = _day(ends[0]), _day(ends[1])
            # A range may wrap round the weekend: fri-mon is fri,sat,sun,mon.
            chosen |= {(first + k) % 7 for k in range((last - first) % 7 + 1)}
        else:
            chosen.add(_day(token))
    return _canonical_days(frozenset(chosen))


def _canonical_days(chosen: frozenset[int]) -> str:
    # Equal sets get the same spelling, so "mon-fri" and "weekdays" share one planner group.
    for name in ("daily", "weekdays", "weekends"):
        if chosen == _KEYWORDS[name]:
            return name
    return ",".join(DAY_NAMES[i] for i in sorted(chosen))


# ---------------------------------------------------------------- durations

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
# Units largest first, each at most once: 1d, 2h, 1h30m, 90s.
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?", re.ASCII)
_DURATION_HELP = "write it like 90s, 30m, 2h, 1d or 1h30m."


def parse_duration(text: str) -> int:
    """'90s', '30m', '2h', '1d', '1h30m' -> seconds (> 0)."""
    shown = text.strip()
    cleaned = re.sub(r"\s+", "", shown.lower())  # "1h 30m" is fine
    if not cleaned:
        raise PhonetreeError(f"give a length of time; {_DURATION_HELP}")
    if cleaned.isascii() and cleaned.isdigit():
        # A bare number is the most likely slip: minutes or seconds? Don't guess.
        raise PhonetreeError(f"'{shown}' has no unit; add one, e.g. {cleaned}m for minutes "
                             f"or {cleaned}s for seconds.")
    match = _DURATION.fullmatch(cleaned)
    if not match:
        raise PhonetreeError(f"'{shown}' is not a length of time; {_DURATION_HELP}")
    seconds = sum(int(n) * size for n, (_, size) in zip(match.groups(), _UNITS) if n)
    if seconds <= 0:
        raise PhonetreeError(f"'{shown}' is no time at all; give a length above zero, e.g. 30m.")
    return seconds


def format_duration(seconds: int) -> str:
    """5400 -> '1h30m': the shortest form `parse_duration` reads back to the same number."""
    if seconds < 0:
        raise ValueError(f"a duration can't be negative: {seconds}")
    if seconds == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# ---------------------------------------------------------------- time zones


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    # Lower-case -> canonical, so "europe/london" is accepted on a case-sensitive filesystem.
    # available_timezones() walks the tz database, hence the cache.
    return {name.lower(): name for name in available_timezones()}


def parse_timezone(name: str) -> str:
    """Validate an IANA zone name; returns its canonical spelling ('Europe/London')."""
    cleaned = name.strip()
    # Looking the name up in the list (rather than trying ZoneInfo(name)) also refuses paths
    # such as "../../etc/passwd" and non-zones such as "posixrules".
    canonical = _zone_names().get(cleaned.lower())
    if canonical is not None:
        return canonical
    raise PhonetreeError(f"unknown time zone '{cleaned}'; use a name like Europe/London "
                         "or America/New_York.")


@lru_cache(maxsize=1024)
def _zone(tz: str) -> ZoneInfo:
    # local_date runs once per check-in row; don't re-validate the name each time.
    return ZoneInfo(parse_timezone(tz))


def local_date(instant: datetime, tz: str) -> date:
    """The calendar date `instant` falls on in zone `tz`."""
    _require_aware(instant, "instant")
    return instant.astimezone(_zone(tz)).date()


def _require_aware(value: datetime, name: str) -> None:
    # A naive datetime would be read as the *server's* local time by astimezone(): refuse it.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


# ---------------------------------------------------------------- occurrences


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
    if day_rule in _KEYWORDS:
        weekdays = _KEYWORDS[day_rule]
    else:
        weekdays = frozenset(DAY_NAMES.index(d) for d in day_rule.split(","))
    return _Rule(trigger, zone, time(hour, minute), weekdays)


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


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """The one UTC instant the rule fires on local date `day` (policy: module docstring)."""
    # fold=0 is the first of a repeated time, or a skipped time shifted forward by the gap;
    # fold=1 shifts a skipped time back instead, for a gap that ends at midnight.
    for fold in (0, 1):
        instant = datetime.combine(day, at, tzinfo=zone).replace(fold=fold).astimezone(UTC)
        if instant.astimezone(zone).date() == day:
            return instant
    return None  # the zone skipped this date altogether


def occurrences(days: str, at_time: str, tz: str, after: datetime, until: datetime) -> list[datetime]:
    """Fire times strictly after `after` and at or before `until`, as UTC datetimes, ascending.

    `days` and `at_time` are in the forms `parse_days`/`parse_time` accept, `tz` an IANA name.
    """
    _require_aware(after, "after")
    _require_aware(until, "until")
    rule = _rule(days, at_time, tz)
    after, until = after.astimezone(UTC), until.astimezone(UTC)
    if until <= after:
        return []
    last_date = until.astimezone(rule.zone).date()
    result: list[datetime] = []
    for day in _fire_dates(rule, after):
        if day > last_date:  # each instant lies on its own local date, so we are past `until`
            break
        instant = _instant(day, rule.at, rule.zone)
        if instant is not None and after < instant <= until:
            result.append(instant)
    return result


def local_instant(day: date, at_time: str, tz: str) -> datetime:
    """The UTC instant of local time `at_time` on `day` in `tz`, by the same DST policy as
    `occurrences` (a skipped time happens once, shifted by the gap; a repeated one, the first)."""
    clock = parse_time(at_time)
    instant = _instant(day, time(int(clock[:2]), int(clock[3:])), _zone(tz))
    if instant is None:  # the zone skipped the whole date: the start of the next one
        return datetime.combine(day + ONE_DAY, time(0), tzinfo=_zone(tz)).astimezone(UTC)
    return instant
