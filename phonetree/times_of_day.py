"""Times of day as an organiser types them: '9:00' -> '09:00', the one stored spelling.

Raises `PhonetreeError` with a message saying what to type instead."""
from __future__ import annotations

import re

from phonetree.errors import PhonetreeError

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
