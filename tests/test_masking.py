"""Numbers are masked in listings, inside texts too, and two members' masks differ."""
from __future__ import annotations

from freezegun import freeze_time

from phonetree.phones import mask, mask_numbers_in
from tests.conftest import LANDLINE, VERA, utc


def test_outbox_masks_numbers_inside_escalation_texts(oakfield, ok, ticker):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo")
    ticker(utc(2026, 12, 1, 9, 0))
    ticker(utc(2026, 12, 1, 9, 31))  # no reply: Jo is asked to ring Vera on her number
    out = ok("outbox").stdout
    escalation = [line for line in out.splitlines() if " escalation " in line]
    assert escalation, out
    for number in ("07911 100001", "+447911100001", "7911100001", "100001"):
        assert number not in out
    assert "ring them on 07911 ***001" in escalation[0]
    full = ok("outbox", "--show-numbers").stdout
    assert "ring them on 07911 100001" in full and "(+447911100002)" in full


def test_two_members_masks_differ(ok):
    ok("group", "add", "Oakfield", "--timezone", "Europe/London")
    ok("member", "add", "Oakfield", "Vera", "--phone", VERA)
    ok("member", "add", "Oakfield", "Dot", "--phone", LANDLINE)
    listing = ok("member", "list", "Oakfield").stdout
    assert "07911 ***001" in listing and "01522 ***001" in listing
    assert "100001" not in listing and "500001" not in listing


def test_mask_schemes() -> None:
    assert mask("+447911100001") != mask("+441522500001")
    assert mask("+447911100001") != mask("+447911100002")
    assert mask("+442079460000") == "020 **** *000"
    assert mask(None) == "-"
    assert mask_numbers_in("ring +44 7911 100001 or 01522 500001.") == "ring 07911 ***001 or 01522 ***001."
    assert mask_numbers_in("no numbers, 3 cats") == "no numbers, 3 cats"
