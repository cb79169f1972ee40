"""click types for what the domain reads from a command line: times of day and lengths of time.

They parse while click reads the arguments, so a command gets `'09:30'` or `1800`, and refuse
through `self.fail` with the domain's own words. `PhonetreeGroup` shows those refusals as it
shows any domain error (one `Error:` line, exit 1): the wording and exit code of a bad time or
duration are part of the interface and stay what they were when each command parsed its own."""
from __future__ import annotations

from typing import Any

import click

from phonetree.durations import parse_duration
from phonetree.errors import PhonetreeError
from phonetree.times_of_day import parse_time

# What `--reminder off` reads as: no length of time parses to 0 (parse_duration refuses it).
OFF = 0
OFF_WORDS = ("off", "none", "no")


class DomainValue(click.ParamType):
    """A value one of the domain's parsers reads; its `PhonetreeError` becomes `self.fail`."""

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value  # already read (click may convert a value twice)
        try:
            return self.parse(value)
        except PhonetreeError as error:
            self.fail(str(error), param, ctx)


class TimeOfDay(DomainValue):
    """HH:MM on the 24-hour clock, local to the group: '9:00' -> '09:00'."""

    name = "hh:mm"

    def parse(self, text: str) -> str:
        return parse_time(text)


class Duration(DomainValue):
    """A length of time such as 30m or 1h30m, in seconds; with `off=True`, also 'off' (-> OFF)."""

    name = "duration"

    def __init__(self, off: bool = False) -> None:
        self.off = off

    def parse(self, text: str) -> int:
        if self.off and text.strip().lower() in OFF_WORDS:
            return OFF
        return parse_duration(text)


TIME_OF_DAY = TimeOfDay()
DURATION = Duration()
DURATION_OR_OFF = Duration(off=True)
