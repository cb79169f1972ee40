"""Days of the week as an organiser types them ('weekdays', 'Mon - Fri', 'mon,wed,fri'), in
one canonical spelling, so equal rules compare equal and share one cached trigger."""
from __future__ import annotations

import re

from phonetree.errors import PhonetreeError

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


def weekday_numbers(day_rule: str) -> frozenset[int]:
    """The `date.weekday()` numbers of a canonical rule (as `parse_days` returns it)."""
    if day_rule in _KEYWORDS:
        return _KEYWORDS[day_rule]
    return frozenset(DAY_NAMES.index(d) for d in day_rule.split(","))
