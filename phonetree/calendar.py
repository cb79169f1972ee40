"""A rota as iCalendar (RFC 5545): one event per call, in the group's own time zone, so peers
can subscribe from their phone's calendar. Built with the `icalendar` library, which gets
line folding, escaping and the VTIMEZONE right."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone

from phonetree.display_text import safe
from phonetree.models import Group, Rota

CALL_LENGTH = timedelta(minutes=30)


def export(group: Group, rota: Rota, rounds: list[dict[str, Any]], now: datetime) -> str:
    zone = ZoneInfo(group.timezone)
    cal = Calendar()
    cal.add("prodid", "-//phonetree//call rota//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    # Names are shown by whatever calendar reads this: no raw control or bidi character in it
    # (RFC 5545 forbids controls in text values anyway).
    cal.add("x-wr-calname", safe(f"{group.name}: {rota.name}"))
    cal.add("x-wr-timezone", group.timezone)
    if rounds:
        first = date.fromisoformat(rounds[0]["date"])
        last = date.fromisoformat(rounds[-1]["date"])
        cal.add_component(Timezone.from_tzinfo(zone, first_date=datetime(first.year, 1, 1),
                                               last_date=datetime(last.year + 1, 1, 1)))
    hour, minute = map(int, rota.at_time.split(":"))
    for r in rounds:
        day = date.fromisoformat(r["date"])
        start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
        for call in r["calls"]:
            event = Event()
            # Stable per rota, date and pair, so a re-export updates events rather than duplicating them.
            uid = hashlib.sha1(f"{rota.id}|{r['date']}|{call['caller']}|{call['callee']}".encode()).hexdigest()
            event.add("uid", f"{uid}@phonetree")
            event.add("dtstamp", now)
            event.add("dtstart", start)
            event.add("dtend", start + CALL_LENGTH)
            event.add("summary", safe(f"{call['caller']} rings {call['callee']}"))
            event.add("description", "Reply DONE to the text once you've spoken, or CANT if you can't.")
            cal.add_component(event)
    return cal.to_ical().decode("utf-8")
