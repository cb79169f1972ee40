"""Quiet hours: routine prompts wait until they end; urgent messages never wait."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from phonetree.errors import PhonetreeError
from phonetree.models import Group


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


def refuse_quiet_time(at_time: str, group: Group) -> None:
    """A rule's time ("HH:MM", local) must fall outside the group's quiet hours, or every prompt
    it makes would wait until they end: check-in plans and rotas alike."""
    if in_quiet_hours(datetime.strptime(at_time, "%H:%M").time(), group.quiet_start, group.quiet_end):
        raise PhonetreeError(
            f"{at_time} is inside {group.name}'s quiet hours ({group.quiet_start}-{group.quiet_end}); "
            f"choose a time between {group.quiet_end} and {group.quiet_start}.")


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
