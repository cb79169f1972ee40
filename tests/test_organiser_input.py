"""Small things an organiser meets: `group set` says what it set; odd quiet hours, windows over
a day, a sender that is no number and `--last -1` are refused; an error is one line whatever
was typed."""
from __future__ import annotations

import pytest
from freezegun import freeze_time

from tests.conftest import snapshot


def test_group_set_confirms_the_values_it_set(oakfield, ok):
    out = ok("group", "set", "Oakfield", "--quiet", "20:30-09:00", "--window", "45m", "--escalation-wait",
             "25m", "--no-reminder", "--channel", "voice").stdout
    assert out == ("Oakfield now has: quiet hours 20:30-09:00, window 45m, escalation wait 25m, reminder off, "
                   "default channel for new members voice.\n")
    assert ok("group", "set", "Oakfield", "--quiet", "off").stdout == "Oakfield now has: no quiet hours.\n"


@pytest.fixture
def vera_planned(oakfield, ok):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")


BAD = {
    "quiet hours of no length": (["group", "set", "Oakfield", "--quiet", "21:00-21:00"],
                                 "Error: quiet hours 21:00-21:00 start and end at the same time; write a span "
                                 "like 21:00-08:00, or off for none."),
    "group window over a day": (["group", "set", "Oakfield", "--window", "25h"],
                                "Error: a reply window of 1d1h is longer than a day; give at most 1d (e.g. 1h)."),
    "checkin window over a day": (["checkin", "add", "Oakfield", "Jo", "--at", "10:00", "--window", "2d",
                                   "--escalate-to", "Sam"],
                                  "Error: a reply window of 2d is longer than a day; give at most 1d (e.g. 1h)."),
    "checkin set window over a day": (["checkin", "set", "Oakfield", "Vera", "--window", "36h"],
                                      "Error: a reply window of 1d12h is longer than a day; give at most 1d "
                                      "(e.g. 1h)."),
    "receive from no number": (["receive", "--from", "notaphone", "OK"],
                               "Error: 'notaphone' is not a phone number; write it like 07911 100001 or "
                               "+447911100001."),
    "outbox last negative": (["outbox", "--last", "-1"],
                             "Error: Invalid value for '--last': -1 is not in the range x>=1. "
                             "(see: phonetree outbox --help)"),
    "outbox last zero": (["outbox", "--last", "0"],
                         "Error: Invalid value for '--last': 0 is not in the range x>=1. "
                         "(see: phonetree outbox --help)"),
    "newline in a path": (["member", "import", "Oakfield", "contacts\nlist.csv"],
                          "Error: can't read contacts\\nlist.csv: No such file or directory."),
}


@pytest.mark.parametrize("args, expected", BAD.values(), ids=BAD.keys())
def test_refused_with_one_line_and_nothing_changed(vera_planned, run_cli, engine, args, expected):
    before = snapshot(engine)
    with freeze_time("2026-12-01 08:00:00"):
        result = run_cli(*args)
    assert result.exit_code != 0
    assert result.stderr == expected + "\n"
    assert result.stdout == ""
    assert snapshot(engine) == before


def test_a_window_of_exactly_a_day_is_allowed(oakfield, ok):
    assert "window 1d" in ok("group", "set", "Oakfield", "--window", "1d").stdout
    with freeze_time("2026-11-30 12:00:00"):
        out = ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "1d", "--escalate-to", "Jo").stdout
    assert "window 1d" in out
