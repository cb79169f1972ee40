"""A group's own wording: organisers can view, change, preview and reset any text or spoken
line. Overrides live on the group row (JSON), so rendering a morning's prompts needs no extra
query per member. Every change is checked: the same placeholders as the default, plain GSM-7
characters (typographic ones are replaced), one segment at the longest names, and nothing that
names what the group is about."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from phonetree import events, texts
from phonetree.display_text import has_hidden
from phonetree.errors import PhonetreeError
from phonetree.models import Group
from phonetree.sms_encoding import SegmentInfo, plain, segment_info

# Words that would tell someone glancing at the phone what the group is about.
REVEALING = re.compile(r"drug|addict|recover|support group|carer|grandparent|kinship|substance|alcohol|"
                       r"overdose|rehab|crisis|mental|safeguard", re.I)
# Previews use names nobody has and a number from Ofcom's range for drama (07700 900xxx), so a
# preview can't be mistaken for a real member with the wrong number. The person written to and
# the person written about differ, so no preview asks someone to ring themselves.
NAME_FIELDS = ("name", "contact", "member", "by")
SAMPLE = {"name": "Sample A", "contact": "Sample B", "member": "Sample C", "phone": "07700 900123",
          "time": "09:00", "day": "Tue 01 Dec", "reason": "number not in use", "when": "this week",
          "count": "12", "people": "Sample D and Sample E", "text": "Meeting moved to Thursday",
          "by": "Sample F", "on_day": "today", "last_day": "Wed 02 Dec"}
LONGEST = {key: "W" * texts.MAX_NAME if key in NAME_FIELDS else value for key, value in SAMPLE.items()}


def _with_names(names: list[str]) -> list[dict[str, str]]:
    """Values to count segments with: the longest name allowed, and each of the group's real
    names (one "Zoë" turns a text into UCS-2, which the Ws never would)."""
    return [LONGEST] + [{**LONGEST, **{field: name for field in NAME_FIELDS}} for name in names]


def overrides(group: Group) -> dict[str, str]:
    return json.loads(group.templates) if group.templates else {}


def usable_overrides(group: Group | None) -> dict[str, str] | None:
    """The overrides messages are rendered with (see texts.only_plain)."""
    return texts.only_plain(overrides(group)) if group is not None else None


def _key(channel: str, template: str, language: str = texts.DEFAULT_LANGUAGE) -> str:
    return texts.override_key(template, channel, language)


def text_for(group: Group | None, template: str, channel: str, language: str = texts.DEFAULT_LANGUAGE) -> str:
    """The wording used for this group: its own if set, else the default."""
    return texts.wording(template, channel, usable_overrides(group), language)


@dataclass
class Preview:
    template: str
    channel: str
    text: str
    sample: str
    custom: bool
    info: SegmentInfo
    worst: SegmentInfo
    warnings: list[str]


def preview(group: Group, template: str, channel: str = "sms",
            language: str = texts.DEFAULT_LANGUAGE) -> Preview:
    _check_name(template, channel)
    language = check_language(language)
    wording = text_for(group, template, channel, language)
    sample = texts.fill(wording, **SAMPLE)
    names = sorted({m.name for m in group.members})
    worst = max((segment_info(texts.fill(wording, **values)) for values in _with_names(names)),
                key=lambda info: (info.segments, info.encoding != "GSM-7"))
    warnings = []
    if channel == "sms" and template not in texts.FREE_TEXT and worst.segments > 1:
        warnings.append(f"with the longest names this is {worst.segments} SMS segments; one is cheaper and clearer.")
    if channel == "sms" and worst.encoding != "GSM-7":
        warnings.append("contains characters outside GSM-7 (" + " ".join(worst.bad_chars)
                        + "), so each text costs two or three times as much"
                        + (" (they are in members' names)." if segment_info(sample).encoding == "GSM-7" else "."))
    return Preview(template, channel, wording, sample, _key(channel, template, language) in overrides(group),
                   segment_info(sample), worst, warnings)


def all_names(channel: str) -> list[str]:
    return sorted(texts.VOICE if channel == "voice" else texts.SMS)


def _check_name(template: str, channel: str) -> None:
    if channel not in ("sms", "voice"):
        raise PhonetreeError(f"unknown channel {channel!r}; choose sms or voice.")
    table = texts.VOICE if channel == "voice" else texts.SMS
    if template not in table:
        from difflib import get_close_matches

        close = get_close_matches(template, list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else f" Choose from: {', '.join(sorted(table))}."
        raise PhonetreeError(f"no {channel} template called {template!r}.{hint}")


def set_text(session: Session, group: Group, template: str, channel: str, wording: str,
             now: datetime, language: str = texts.DEFAULT_LANGUAGE) -> tuple[str, list[str]]:
    """Change one template for the group. Returns the stored text and notes for the organiser."""
    _check_name(template, channel)
    default = (texts.VOICE if channel == "voice" else texts.SMS)[template]
    cleaned = plain(" ".join(wording.split()))
    notes = []
    if cleaned != " ".join(wording.split()):
        notes.append("replaced typographic quotes, dashes or spaces with plain ones (they'd cost more).")
    if not cleaned:
        raise PhonetreeError("the new wording is empty; to go back to the default use: template reset.")
    if has_hidden(cleaned) is not None:  # it would reach members' phones as typed
        raise PhonetreeError("the wording contains an invisible or control character; type it plainly.")
    wanted, given = texts.placeholders(default), _placeholders(cleaned)
    if given - wanted:
        raise PhonetreeError(f"unknown placeholder {{{sorted(given - wanted)[0]}}}; this template can use "
                             + ", ".join("{" + p + "}" for p in sorted(wanted)) + ".")
    missing = {"member", "phone", "people", "text"} & (wanted - given)
    if missing:
        raise PhonetreeError(f"the wording must keep {{{sorted(missing)[0]}}}: without it the person can't act.")
    if revealing := REVEALING.search(cleaned):
        raise PhonetreeError(f"{revealing.group(0)!r} would tell anyone who sees the phone "
                             "what the group is about; texts must stay discreet.")
    stored = overrides(group)
    language = check_language(language)
    stored[_key(channel, template, language)] = cleaned
    group.templates = json.dumps(stored, sort_keys=True)
    events.record(session, now, "template_changed", group_id=group.id, detail=_key(channel, template, language))
    return cleaned, notes + preview(group, template, channel, language).warnings


def reset(session: Session, group: Group, template: str, channel: str, now: datetime,
          language: str = texts.DEFAULT_LANGUAGE) -> None:
    _check_name(template, channel)
    language = check_language(language)
    stored = overrides(group)
    if stored.pop(_key(channel, template, language), None) is None:
        raise PhonetreeError(f"{group.name} uses the default {channel} {template!r} already.")
    group.templates = json.dumps(stored, sort_keys=True) if stored else None
    events.record(session, now, "template_reset", group_id=group.id, detail=_key(channel, template, language))


LANGUAGE = re.compile(r"[a-z]{2,3}")


def check_language(code: str) -> str:
    """A language code like en, cy, pl, pa (ISO 639): members' texts use the group's wording in it."""
    cleaned = (code or "").strip().lower()
    if not LANGUAGE.fullmatch(cleaned):
        raise PhonetreeError(f"{code!r} is not a language code; use two or three letters, e.g. cy for Welsh.")
    return cleaned


def _placeholders(text: str) -> set[str]:
    try:
        odd = texts.odd_field(text)
        if odd is not None:
            raise PhonetreeError(f"{odd} is not a placeholder phonetree can fill in; write placeholders "
                                 "plainly, like {name}, with nothing after the name.")
        return texts.placeholders(text)
    except ValueError:
        raise PhonetreeError("unbalanced { or } in the wording; placeholders look like {name}.")
