"""How many SMS segments a text costs, and how to keep it in GSM-7.

Twilio bills per segment. A text made only of GSM 03.38 characters is sent as GSM-7: 160 septets
in one segment, 153 per segment once split (7 septets go to the concatenation header). A single
character outside that alphabet - a curly quote pasted from a word processor, an en dash, a
non-breaking space, an emoji - switches the *whole* text to UCS-2: 70 UTF-16 code units in one
segment, 67 once split. So one stray curly quote in a 150-character check-in turns 1 segment into
3, and does the same to every copy sent to every member. `plain()` repairs the usual culprits.

Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SegmentInfo", "segment_info", "is_gsm7", "plain"]

# GSM 03.38 basic character set (one septet each), in table order. Position 0x1B is the escape
# to the extension table and is not a character of its own. Note: uppercase Ç only (no ç), and no
# á í ó ú ê or backtick.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# GSM 03.38 extension table: each is sent as ESC + char, so costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE_MAX = 160
GSM7_SEGMENT = 153
UCS2_SINGLE_MAX = 70
UCS2_SEGMENT = 67


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # GSM-7 septets, or UCS-2 (UTF-16) code units
    segments: int
    bad_chars: tuple[str, ...]  # distinct chars that forced UCS-2, in order of first appearance


def _septets(ch: str) -> int:
    return 2 if ch in GSM7_EXTENSION else 1


def _gsm7_segments(text: str, units: int) -> int:
    if units == 0:
        return 0
    if units <= GSM7_SINGLE_MAX:
        return 1
    # Split: walk the text, because an escape sequence (ESC + char) is never split across two
    # segments - an extension char that would straddle a boundary starts the next segment, so
    # ceil(units / 153) can undercount.
    segments, used = 1, 0
    for ch in text:
        n = _septets(ch)
        if used + n > GSM7_SEGMENT:
            segments += 1
            used = 0
        used += n
    return segments


def _ucs2_units(text: str) -> int:
    # UTF-16 code units: characters outside the BMP (most emoji) take a surrogate pair.
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def segment_info(text: str) -> SegmentInfo:
    bad: dict[str, None] = {}
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            bad.setdefault(ch)
    if not bad:
        units = sum(_septets(ch) for ch in text)
        return SegmentInfo("GSM-7", units, _gsm7_segments(text, units), ())
    units = _ucs2_units(text)
    if units <= UCS2_SINGLE_MAX:
        segments = 1
    else:
        segments = -(-units // UCS2_SEGMENT)
    return SegmentInfo("UCS-2", units, segments, tuple(bad))


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


# Typographic characters that force UCS-2, and their GSM-7 stand-ins.
_REPLACEMENTS: dict[str, str] = {
    # single quotes / apostrophes
    "\u2018": "'",  # ‘ left single quotation mark
    "\u2019": "'",  # ’ right single quotation mark (the usual curly apostrophe)
    "\u201a": "'",  # ‚ single low-9 quotation mark
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
    # double quotes
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',  # ‟
    # dashes and minus
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # − minus sign
    # ellipsis
    "\u2026": "...",
    # bullet
    "\u2022": "-",
    # non-breaking and other Unicode spaces
    "\u00a0": " ",  # no-break space
    "\u1680": " ",  # ogham space mark
    **{chr(cp): " " for cp in range(0x2000, 0x200B)},  # en quad .. hair space (incl. U+2007, U+2009)
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    # invisible characters: removed
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # zero-width no-break space / BOM
}

# Zero-width (non-)joiners are removed too, except between two non-GSM characters, where they
# are doing real work (emoji ZWJ sequences such as 👩‍⚕️, joining in some scripts) and the text
# is UCS-2 anyway.
_JOINERS = frozenset("\u200c\u200d")


def _non_gsm(ch: str) -> bool:
    """True for a visible character that stays outside GSM-7 after plain() (e.g. an emoji)."""
    return not (
        ch.isspace()
        or ch in GSM7_BASIC
        or ch in GSM7_EXTENSION
        or ch in _REPLACEMENTS
        or ch in _JOINERS
    )


def plain(text: str) -> str:
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in _JOINERS:
            if 0 < i < last and _non_gsm(text[i - 1]) and _non_gsm(text[i + 1]):
                out.append(ch)
            continue
        out.append(_REPLACEMENTS.get(ch, ch))
    return "".join(out)
