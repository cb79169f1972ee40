"""The one clock. Everything that schedules reads `now()` here, so tests move time with
freezegun and `phonetree demo` can play a day on a stepped clock of its own."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

_stepped: list[datetime] = []


def now() -> datetime:
    """The current instant, timezone-aware UTC."""
    if _stepped:
        return _stepped[-1]
    return datetime.now(timezone.utc)


@contextmanager
def stepped(start: datetime) -> Iterator["Stepper"]:
    """A clock that only moves when told (the demo's simulated day). `tick` and `run` never
    use this: they always read the system clock."""
    _stepped.append(start)
    try:
        yield Stepper()
    finally:
        _stepped.pop()


class Stepper:
    def set(self, instant: datetime) -> None:
        _stepped[-1] = instant

    @property
    def now(self) -> datetime:
        return _stepped[-1]
