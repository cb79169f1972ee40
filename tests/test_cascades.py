"""News down the telephone tree: prompts, confirmations, repair of broken links, status."""
from __future__ import annotations

import json

import pytest
from freezegun import freeze_time

from tests.conftest import sent, utc

NAMES = ["Org", "Ann", "Ben", "Cath", "Dev", "Eve", "Fred", "Gus", "Hal", "Ivy", "Jan", "Kit", "Lou", "Max", "Ned"]
PHONE = {name: f"07911 1000{i + 20:02d}" for i, name in enumerate(NAMES, start=1)}
E164 = {name: "+44" + phone.replace(" ", "")[1:] for name, phone in PHONE.items()}


@pytest.fixture
def village(ok) -> dict[str, list[str]]:
    """15 people, a binary tree from the organiser: Org > Ann, Ben; Ann > Cath, Dev; ..."""
    with freeze_time("2026-12-01 09:00:00"):
        ok("group", "add", "Vale", "--timezone", "Europe/London")
        for name in NAMES:
            ok("member", "add", "Vale", name, "--phone", PHONE[name],
               *(("--role", "organiser") if name == "Org" else ()))
        tree = json.loads(ok("cascade", "tree", "Vale", "--branching", "2", "--json").stdout)
    return tree


def reply(ok, name: str, text: str, when: str) -> None:
    with freeze_time(when):
        ok("receive", "--from", PHONE[name], text)


def status(ok, when: str) -> dict:
    with freeze_time(when):
        return json.loads(ok("cascade", "status", "Vale", "--json").stdout)


def test_the_default_tree_follows_member_order_with_the_organiser_on_top(village):
    assert village["Org"] == ["Ann", "Ben"]
    assert village["Ann"] == ["Cath", "Dev"] and village["Ben"] == ["Eve", "Fred"]
    assert village["Cath"] == ["Gus", "Hal"] and village["Fred"] == ["Max", "Ned"] and "Gus" not in village
    assert sum(len(v) for v in village.values()) == 14


def test_news_travels_down_level_by_level(village, ok, engine, ticker):
    with freeze_time("2026-12-01 10:00:00"):
        ok("cascade", "start", "Vale", "Thursday's meeting has moved to Friday")
    news = sent(engine, template="news")
    assert {m.to_phone for m in news} == {E164["Ann"], E164["Ben"]}
    assert "moved to Friday" in news[0].body
    asks = sent(engine, template="pass_on")
    assert {m.to_phone for m in asks} == {E164["Ann"], E164["Ben"]}
    assert "Cath and Dev" in [m.body for m in asks if m.to_phone == E164["Ann"]][0]
    reply(ok, "Ann", "done", "2026-12-01 10:30:00")
    # Cath and Dev have it now, and are asked to pass it to theirs.
    later = {m.to_phone for m in sent(engine, template="pass_on")}
    assert {E164["Cath"], E164["Dev"]} <= later
    assert status(ok, "2026-12-01 10:31:00")["reached"] == 4  # Ann, Ben, Cath, Dev


def test_two_broken_links_are_repaired_and_everyone_is_reached(village, ok, engine, ticker):
    with freeze_time("2026-12-01 10:00:00"):
        ok("cascade", "start", "Vale", "Meeting moved", "--wait", "1h")
    # Level 1 both confirm; of level 2, Cath goes silent and Fred can't.
    reply(ok, "Ann", "done", "2026-12-01 10:10:00")
    reply(ok, "Ben", "done", "2026-12-01 10:12:00")
    reply(ok, "Dev", "done", "2026-12-01 10:20:00")
    reply(ok, "Eve", "done", "2026-12-01 10:21:00")
    reply(ok, "Fred", "sorry can't today", "2026-12-01 10:22:00")
    # Fred's people (Max? per tree) pass at once to Ben, the nearest above who confirmed.
    fred_people = village["Fred"]
    to_ben = [m.body for m in sent(engine, template="pass_on") if m.to_phone == E164["Ben"]]
    assert len(to_ben) == 2 and all(p in to_ben[1] for p in fred_people)
    reply(ok, "Ben", "done", "2026-12-01 10:40:00")
    ticker(utc(2026, 12, 1, 11, 9))
    assert not [m for m in sent(engine, template="pass_on") if m.to_phone == E164["Ann"]][1:]
    ticker(utc(2026, 12, 1, 11, 10))  # Cath's hour is up: her people go to Ann
    to_ann = [m.body for m in sent(engine, template="pass_on") if m.to_phone == E164["Ann"]]
    assert len(to_ann) == 2 and all(p in to_ann[1] for p in village["Cath"])
    state = status(ok, "2026-12-01 11:15:00")
    assert state["state"] == "running"
    outstanding = {p["name"] for p in state["people"] if not p["reached"]}
    assert set(village["Cath"]) <= outstanding
    reply(ok, "Ann", "done", "2026-12-01 11:30:00")
    # With Ann's DONE every branch is confirmed. The leaves (Gus .. Ned) hold nobody: they are
    # never asked to pass it on, and the cascade completes without a word from them.
    leaves = [name for name in NAMES[1:] if name not in village]
    assert leaves == ["Gus", "Hal", "Ivy", "Jan", "Kit", "Lou", "Max", "Ned"]
    assert not [m for m in sent(engine, template="pass_on") if m.to_phone in {E164[n] for n in leaves}]
    final = status(ok, "2026-12-01 11:31:00")
    assert final["reached"] == final["total"] == 14 and final["state"] == "complete"
    [told] = [m for m in sent(engine, to_phone=E164["Org"]) if m.template == "cascade_done"]
    assert "all 14 people" in told.body


def test_the_organiser_hears_who_is_outstanding_when_nobody_is_left_to_try(village, ok, engine, ticker):
    with freeze_time("2026-12-01 10:00:00"):
        ok("cascade", "start", "Vale", "Meeting moved", "--wait", "1h")
    for hour in range(1, 8):
        ticker(utc(2026, 12, 1, 10 + hour, 0))
    final = status(ok, "2026-12-01 18:00:00")
    assert final["state"] == "incomplete"
    [told] = [m for m in sent(engine, to_phone=E164["Org"]) if m.template == "cascade_outstanding"]
    assert "Cath" in told.body


def test_voice_news_is_spoken_not_texted(village, ok, engine):
    with freeze_time("2026-12-01 10:00:00"):
        ok("cascade", "start", "Vale", "The venue is the church hall on Mill Lane", "--voice")
    news = sent(engine, template="news")
    assert news and all(m.channel == "voice" for m in news)
    texts = [m for m in sent(engine) if m.channel == "sms"]
    assert texts and not any("Mill Lane" in (m.body or "") for m in texts)


def test_cascade_status_in_text(village, ok):
    with freeze_time("2026-12-01 10:00:00"):
        ok("cascade", "start", "Vale", "Meeting moved")
        out = ok("cascade", "status", "Vale").stdout
    assert "2 of 14 reached" in out and "+ Ann" in out and "- Cath" in out


# ---------------------------------------------------------------- issue 12: what the organiser is told


def test_members_added_after_the_tree_are_placed_and_named(village, ok, run_cli, engine):
    with freeze_time("2026-12-01 09:30:00"):
        ok("member", "add", "Vale", "Pat", "--phone", "07911 100090")
        ok("member", "add", "Vale", "Dot", "--phone", "07911 100091")
        result = run_cli("cascade", "start", "Vale", "Meeting moved to Thursday")
    assert result.exit_code == 0
    assert result.stderr == ("Warning: Pat, Dot joined after the tree was set, so phonetree sends them the news "
                             "itself; to place them, see: phonetree cascade tree Vale --help\n")
    news_to = {m.to_phone for m in sent(engine, template="news")}
    assert {"+447911100090", "+447911100091"} <= news_to
    assert "of 16 reached" in status_line(ok)
    with freeze_time("2026-12-01 09:40:00"):
        tree = json.loads(ok("cascade", "tree", "Vale", "--json").stdout)
    assert tree["Org"] == ["Ann", "Ben", "Pat", "Dot"]


def status_line(ok) -> str:
    with freeze_time("2026-12-01 09:35:00"):
        return ok("cascade", "status", "Vale").stdout.splitlines()[0]


def test_inside_quiet_hours_the_cascade_says_when_it_will_go(village, ok, engine):
    with freeze_time("2026-12-01 22:00:00"):
        out = ok("cascade", "start", "Vale", "Meeting moved").stdout
    assert out.startswith("It is quiet hours in Vale (21:00-08:00), so the news is held until Wed 02 Dec 08:00 GMT;")
    assert {m.state for m in sent(engine, template="news")} == {"queued"}


@pytest.mark.parametrize("text, message", [
    ("Meeting moved. " * 40, "Error: as a text the news is 5 SMS segments"),
    ("The recovery group meets on Thursday", "Error: 'recover' would tell anyone who sees the phone"),
])
def test_news_too_long_or_revealing_is_refused(village, run_cli, engine, text, message):
    from tests.conftest import snapshot

    before = snapshot(engine)
    with freeze_time("2026-12-01 10:00:00"):
        result = run_cli("cascade", "start", "Vale", text)
    assert result.exit_code == 1 and result.stderr.startswith(message), result.stderr
    assert snapshot(engine) == before


def test_long_news_is_refused_with_its_count_but_goes_by_voice(village, ok, run_cli):
    text = "The meeting has moved to the village hall on Thursday at seven. " * 7
    with freeze_time("2026-12-01 10:00:00"):
        result = run_cli("cascade", "start", "Vale", text)
        assert result.exit_code == 1
        assert "the news is 4 SMS segments (GSM-7, 476 characters with the greeting); keep it to 3" in result.stderr
        ok("cascade", "start", "Vale", text, "--voice")
