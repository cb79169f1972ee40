"""Lengths of time as an organiser types them ('90s', '30m', '1h30m') and as we print them."""
from __future__ import annotations

import re

from phonetree.errors import PhonetreeError

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
