"""Text people typed (a member's reply, a name, the news), made safe to print on an organiser's
terminal or write into an export. The database keeps what was sent; only what is shown changes.

A terminal acts on control characters: ESC starts sequences that retitle the window, clear the
screen or rewrite what was printed; BEL rings; C1 controls (U+0080-U+009F) are ESC's 8-bit twins.
Bidi overrides (U+202E) reverse the rest of a line, and zero-width characters make two different
strings look alike. Each becomes a visible escape (`\\x1b`, `\\u202e`), so an organiser sees that
something odd was sent rather than having it act on their screen."""
from __future__ import annotations

import json
import unicodedata
from typing import Any

# Bidi embedding, override and isolate controls, and the marks: they reorder what follows.
_BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_ZWJ = 0x200D


def _hidden(char: str) -> bool:
    """A character that acts on the display instead of showing: C0, DEL, C1, bidi, format
    (zero-width space, joiners, word joiner, BOM, tags), line and paragraph separators."""
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F or code in _BIDI:
        return True
    return unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs") and code > 0x7F


def _emoji_side(char: str) -> bool:
    return ord(char) >= 0x1F000 or ord(char) in (0xFE0F, 0x2640, 0x2642, 0x2695, 0x2764) \
        or unicodedata.category(char) == "So"


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def safe(text: str | None) -> str:
    """`text` with every character that would act on a terminal shown as an escape instead.
    A zero-width joiner inside an emoji sequence (a family, a flag) is kept: it only joins."""
    if not text:
        return text or ""
    if text.isprintable():  # the common case: nothing to do
        return text
    out = []
    for i, char in enumerate(text):
        if not _hidden(char):
            out.append(char)
        elif ord(char) == _ZWJ and 0 < i < len(text) - 1 and _emoji_side(text[i - 1]) and _emoji_side(text[i + 1]):
            out.append(char)
        else:
            out.append(_escape(char))
    return "".join(out)


def has_hidden(text: str) -> str | None:
    """The first character of `text` that `safe` would escape, or None: for refusing it at input."""
    for char in text:
        if _hidden(char):
            return char
    return None


def safe_data(data: Any) -> Any:
    """`safe` applied to every string (keys too) in a structure of dicts, lists and tuples."""
    kind = type(data)
    # The exact types first, with the printable case inline: a big group's status is ~175,000
    # values, nearly all plain printable strings, numbers and None, and a call per value was
    # most of the time the CLI spent after the query.
    if kind is str:
        return data if data.isprintable() else safe(data)
    if kind is dict:
        return {(k if type(k) is str and k.isprintable() else safe_data(k)): _safe_value(v)
                for k, v in data.items()}
    if kind is list:
        return [_safe_value(v) for v in data]
    if isinstance(data, str):
        return safe(data)
    if isinstance(data, dict):
        return {safe_data(k): safe_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(safe_data(v) for v in data)
    return data


_PLAIN = (int, float, bool, type(None))


def _safe_value(value: Any) -> Any:
    """safe_data of one value, without the call for a number, None or printable string."""
    kind = type(value)
    if kind in _PLAIN or (kind is str and value.isprintable()):
        return value
    return safe_data(value)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_json(data: Any, **kwargs: Any) -> str:
    """JSON of `data` that keeps every value exactly (a script reads what was sent) but carries
    no raw control, bidi or zero-width character: those are written as \\uXXXX escapes, which
    JSON decodes back to the same string. json.dumps escapes C0 itself; not DEL, C1 or bidi."""
    text = json.dumps(data, ensure_ascii=False, **kwargs)
    if text.isprintable() or all(not _hidden(c) or c in "\n" for c in text):
        return text
    # Outside strings JSON has only ASCII punctuation, digits, letters and the indent's
    # newlines and spaces, so every hidden character here is inside a string.
    return "".join(_json_escape(c) if _hidden(c) and c != "\n" else c for c in text)
