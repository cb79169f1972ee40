"""Hostile text (a member's reply, a name) never reaches an organiser's terminal or an export
as raw control, bidi or zero-width characters; the database keeps what was sent."""
from __future__ import annotations

import json

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update

from phonetree.db import session_scope
from phonetree.display_text import safe, safe_data, safe_json
from phonetree.models import Inbound, Member
from tests.conftest import VERA, snapshot, utc

# A window-title change, a bell, clear-screen, a C1 CSI, a right-to-left override, a zero-width space.
HOSTILE = "tooth\x1b]0;owned\x07\x1b[2J\x9b31m\u202etxt.exe\u200b"
NAME = "Jo\x1b[2J\u202e"
RAW = ["\x1b", "\x07", "\x9b", "\u202e", "\u200b"]


def strings_in(data: object):  # type: ignore[no-untyped-def]
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from strings_in(value)
    elif isinstance(data, list):
        for value in data:
            yield from strings_in(value)


def raw_in(text: str) -> list[str]:
    return [c for c in RAW if c in text]


@pytest.fixture
def hostile(oakfield, ok, engine, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo,Sam")
        ok("rota", "add", "Oakfield", "calls", "--kind", "ring", "--on", "tue", "--at", "18:00",
           "--members", "Jo,Sam,Vera")
    ticker(utc(2026, 12, 1, 9, 0))
    with freeze_time("2026-12-01 09:05:00"):
        ok("receive", "--from", VERA, HOSTILE)
    # A name stored before names were checked at input.
    with session_scope(engine) as session:
        session.execute(update(Member).where(Member.name == "Jo").values(name=NAME))
    with freeze_time("2026-12-01 10:00:00"):
        ok("cascade", "start", "Oakfield", "Meeting moved to Thursday")
    return "Oakfield"


COMMANDS = [
    ["status", "Oakfield"], ["member", "list", "Oakfield"], ["rota", "show", "Oakfield", "calls"],
    ["outbox"], ["audit", "Oakfield"], ["cascade", "status", "Oakfield"], ["checkin", "list", "Oakfield"],
    ["cascade", "tree", "Oakfield"], ["group", "list"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_printed_text_carries_no_raw_controls(hostile, ok, command):
    with freeze_time("2026-12-01 10:05:00"):
        out = ok(*command).stdout
    assert raw_in(out) == []
    assert all(c.isprintable() or c == "\n" for c in out)


@pytest.mark.parametrize("command", [["status", "Oakfield"], ["member", "list", "Oakfield"],
                                     ["outbox"], ["rota", "show", "Oakfield", "calls"]],
                         ids=lambda c: c[0])
def test_json_is_exact_but_escaped(hostile, ok, command):
    with freeze_time("2026-12-01 10:05:00"):
        out = ok(*command, "--json").stdout
    assert raw_in(out) == []
    strings = list(strings_in(json.loads(out)))  # decodes back to what was stored
    assert NAME in strings or HOSTILE in strings


def test_status_shows_the_reply_escaped_and_the_database_keeps_it(hostile, ok, engine):
    with freeze_time("2026-12-01 10:05:00"):
        out = ok("status", "Oakfield").stdout
    assert "tooth\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202etxt.exe\\u200b" in out
    with session_scope(engine) as session:
        assert session.scalar(select(Inbound.body)) == HOSTILE


def test_rota_export_has_no_control_characters(hostile, ok):
    with freeze_time("2026-12-01 10:05:00"):
        ics = ok("rota", "export", "Oakfield", "calls").stdout
    assert "BEGIN:VEVENT" in ics
    body = ics.replace("\r\n", "").replace("\n", "")  # (CliRunner.stdout turns CRLF into LF)
    assert raw_in(body) == [] and [c for c in body if not c.isprintable()] == []


@pytest.mark.parametrize("args", [
    ["member", "add", "Oakfield", "Pa\x1bt", "--phone", "07911 100009"],
    ["member", "add", "Oakfield", "Pat\u202e", "--phone", "07911 100009"],
    ["member", "add", "Oakfield", "P\u200bat", "--phone", "07911 100009"],
    ["group", "add", "Oak\x07", "--timezone", "Europe/London"],
    ["rota", "add", "Oakfield", "r\x1b[2J", "--kind", "ring", "--on", "tue", "--at", "18:00"],
    ["template", "set", "Oakfield", "checkin", "Hi {name}\x1b[2J reply OK"],
    ["cascade", "start", "Oakfield", "news\x1b]0;x\x07"],
])
def test_control_characters_in_typed_names_are_refused(oakfield, run_cli, engine, args):
    before = snapshot(engine)
    result = run_cli(*args)
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1 and raw_in(result.stderr) == []
    assert snapshot(engine) == before


def test_safe_and_safe_json() -> None:
    assert safe("a\x1bb\u202ec\nd") == "a\\x1bb\\u202ec\\nd"
    assert safe("Vera 👍 café ok") == "Vera 👍 café ok"
    assert safe("👨\u200d👩\u200d👧") == "👨\u200d👩\u200d👧"  # a family emoji keeps its joiners
    data = {"t": "x\x1b\x85\u2066\U000e0041y"}
    encoded = safe_json(data)
    assert json.loads(encoded) == data and all(c.isprintable() for c in encoded)


class _Tag(str):
    """A str subclass (as an enum's value can be): escaped like any string."""


def _reference_safe_data(data: object) -> object:
    """safe_data as it was before its fast paths: the meaning they must keep."""
    if isinstance(data, str):
        return safe(data)
    if isinstance(data, dict):
        return {_reference_safe_data(k): _reference_safe_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_reference_safe_data(v) for v in data)
    return data


def test_safe_data_escapes_every_string_wherever_it_sits() -> None:
    """Keys, values, lists inside dicts, tuples inside lists, str subclasses; numbers, None,
    booleans and dates pass through as they are."""
    data = {
        HOSTILE: NAME, "plain": "ok", "": "", "n": 3, "f": 1.5, "b": True, "none": None, "at": utc(2026, 12, 1),
        "open": [{"member": NAME, "asked": [{"name": HOSTILE, "state": "asked"}], "note": None}],
        "pairs": [(NAME, 1), ("ok", HOSTILE)], "tag": _Tag("\x1b[2J"), _Tag("k\x07"): [_Tag("v")],
        "nested": [[NAME, ["\u202e", {"deep\x9b": "\u200b"}]]],
    }
    got = safe_data(data)
    assert got == _reference_safe_data(data)
    assert not any(raw in text for text in strings_in(got) for raw in RAW)
    assert not any(raw in key for key in got for raw in RAW)
    assert got["pairs"][1] == ("ok", safe(HOSTILE)) and type(got["pairs"][1]) is tuple
    assert got["tag"] == "\\x1b[2J" and got["at"] is data["at"] and got["b"] is True
