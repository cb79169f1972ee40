"""The one clock. Everything that schedules reads `now()` here, so tests move time with freezegun."""
from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    """The current instant, timezone-aware UTC, to the microsecond."""
    return datetime.now(timezone.utc)
