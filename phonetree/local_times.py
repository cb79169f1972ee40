"""Times as a person reads them: in the group's own zone, with the zone's name on the clock
(GMT, BST) so nobody mistakes it for UTC. Stored times and JSON stay UTC (ISO 8601)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


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
