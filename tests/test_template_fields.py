"""Only plain {placeholders} in a group's wording: no format specs, conversions or indexes."""
from __future__ import annotations

import json

import pytest
from freezegun import freeze_time
from sqlalchemy import update

from phonetree.db import session_scope
from phonetree.models import Group
from tests.conftest import sent, snapshot, utc


@pytest.mark.parametrize("wording", [
    "Hi {name:d}, reply OK",                 # a spec str.format refuses: was a traceback
    "Hi {name!r:{name}}, reply OK",          # conversion and nested field: was a traceback
    "Hi {name:>3000}, reply OK",             # was accepted: a 3,020-character check-in
    "Hi {name!s}, reply OK",
    "Hi {name[0]}, reply OK",
    "Hi {name.upper}, reply OK",
    "Hi {}, reply OK",
    "Hi {0}, reply OK",
])
def test_format_fields_are_refused_with_one_error_line(oakfield, run_cli, engine, wording):
    before = snapshot(engine)
    result = run_cli("template", "set", "Oakfield", "checkin", wording)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output + result.stderr
    assert snapshot(engine) == before


def test_plain_placeholders_still_work(oakfield, ok):
    out = ok("template", "set", "Oakfield", "checkin", "Morning {name}, reply OK or CALL.").stdout
    assert "Preview: Morning Sample A, reply OK or CALL." in out  # previews use sample names (issue 12)


def test_a_bad_field_stored_before_the_check_falls_back_to_the_default(oakfield, ok, engine, ticker):
    with session_scope(engine) as session:
        session.execute(update(Group).values(templates=json.dumps({"sms:checkin": "Hi {name:>3000}"})))
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--escalate-to", "Jo")
    ticker(utc(2026, 12, 1, 9, 0))
    [prompt] = sent(engine, kind="checkin")
    assert prompt.body.startswith("Hi Vera, just checking in.") and len(prompt.body) < 160
