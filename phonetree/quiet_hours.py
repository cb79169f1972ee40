"""Quiet hours: routine prompts wait until they end; urgent messages never wait."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


def _hm(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def in_quiet_hours(at_local: time, start: str, end: str) -> bool:
    """Whether a local wall-clock time lies in [start, end); the span may cross midnight."""
    begin, finish = _hm(start), _hm(end)
    if begin == finish:
        return False
    if begin < finish:
        return begin <= at_local < finish
    return at_local >= begin or at_local < finish


def next_allowed(instant: datetime, tz: str, start: str, end: str) -> datetime:
    """`instant` itself if it is outside quiet hours, else the moment quiet hours end (UTC)."""
    zone = ZoneInfo(tz)
    local = instant.astimezone(zone)
    if not in_quiet_hours(local.time(), start, end):
        return instant
    finish = _hm(end)
    day = local.date() if local.time() < finish else local.date() + timedelta(days=1)
    # Built from the wall clock, then normalised, so a DST change overnight is respected.
    resume = datetime.combine(day, finish, tzinfo=zone)
    return resume.astimezone(timezone.utc)
