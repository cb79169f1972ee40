"""Group kinds: sensible defaults an organiser can override, group by group."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    kind: str
    description: str
    default_channel: str  # for members added without --channel (a landline is always voice)
    window_s: int
    escalation_wait_s: int
    quiet_start: str
    quiet_end: str
    reminder: bool


PRESETS: dict[str, Preset] = {
    "rural": Preset("rural", "peers spread out, mostly on mobiles", "sms",
                    30 * 60, 20 * 60, "21:00", "08:00", True),
    "family": Preset("family", "families and carers, often at work in the day", "sms",
                     30 * 60, 20 * 60, "22:00", "08:00", True),
    # Grandparent carers: often a landline, a longer window, nothing late in the evening.
    "grandparents": Preset("grandparents", "grandparent carers, often on a landline", "voice",
                           60 * 60, 30 * 60, "20:00", "09:00", True),
}
