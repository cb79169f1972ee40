"""Every time a person reads is the group's local time, zone shown; JSON stays UTC.

In British Summer Time a 10:00 check-in is 09:00 UTC: it used to be listed as 09:00."""
from __future__ import annotations

import json

import pytest
from freezegun import freeze_time

from tests.conftest import JO, MARGARET, VERA, utc


@pytest.fixture
def summer(ok):
    with freeze_time("2026-07-01 08:00:00"):  # 09:00 BST
        ok("group", "add", "Summer", "--timezone", "Europe/London")
        ok("member", "add", "Summer", "Vera", "--phone", VERA)
        ok("member", "add", "Summer", "Jo", "--phone", JO)
        ok("member", "add", "Summer", "Margaret", "--phone", MARGARET, "--role", "organiser")
        ok("checkin", "add", "Summer", "Vera", "--at", "10:00", "--escalate-to", "Jo")
    return "Summer"


def test_a_ten_oclock_bst_checkin_reads_ten_oclock_everywhere(summer, ok, ticker):
    ticker(utc(2026, 7, 1, 9, 0))  # 10:00 BST: Vera's prompt goes
    with freeze_time("2026-07-01 09:05:00"):
        ok("receive", "--from", VERA, "my tooth hurts")  # a reply a person should read
        outbox = ok("outbox").stdout
        outbox_json = json.loads(ok("outbox", "--json").stdout)
        status = ok("status", "Summer").stdout
        audit = ok("audit", "Summer").stdout
        audit_json = json.loads(ok("audit", "Summer", "--json").stdout)
    prompt = outbox.splitlines()[0]
    assert prompt.startswith("Wed 01 Jul 10:00 BST, sent 10:00 BST  checkin")
    assert outbox_json[0]["created_at"] == "2026-07-01T09:00:00+00:00"
    assert outbox_json[0]["sent_at"] == "2026-07-01T09:00:00+00:00"
    assert "Vera at Wed 01 Jul 10:05 BST: my tooth hurts" in status
    assert audit.splitlines()[0] == "Times are Europe/London local time."
    assert "Wed 01 Jul 09:00 BST  plan_added" in audit
    assert audit_json[-1]["at"] == "2026-07-01T08:00:00+00:00"


def test_a_message_still_queued_shows_only_when_it_was_queued(summer, ok, ticker):
    with freeze_time("2026-07-01 08:30:00"):
        ok("group", "set", "Summer", "--quiet", "21:00-10:30")
    ticker(utc(2026, 7, 1, 9, 0))  # held by quiet hours until 10:30 BST
    with freeze_time("2026-07-01 09:05:00"):
        line = ok("outbox").stdout.splitlines()[0]
    assert line.startswith("Wed 01 Jul 10:00 BST  checkin") and "sent" not in line.split("checkin")[0]
    ticker(utc(2026, 7, 1, 9, 30))
    with freeze_time("2026-07-01 09:35:00"):
        line = ok("outbox").stdout.splitlines()[0]
    assert line.startswith("Wed 01 Jul 10:00 BST, sent 10:30 BST  checkin")


def test_cascade_status_reads_in_local_time(summer, ok):
    with freeze_time("2026-07-01 09:30:00"):
        ok("cascade", "start", "Summer", "Meeting moved")
        out = ok("cascade", "status", "Summer").stdout
    assert out.startswith("News from Margaret, started Wed 01 Jul 10:30 BST:")
    assert "reached via Margaret at Wed 01 Jul 10:30\n" in out
