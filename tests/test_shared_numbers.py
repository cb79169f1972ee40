"""One phone, several memberships: a person in two groups (or a couple on one landline) is one
number. Their reply answers every open check-in of that number; a HELP reaches each group it
concerns; their words go only to the organisers of the groups they concern; no group's messages
reveal the other group. (Issue 11 defect 2.)"""
from __future__ import annotations

from datetime import datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from phonetree.db import session_scope
from phonetree.models import CheckIn, Group, Member
from tests.conftest import sent, utc

DAY = (2026, 12, 1)
PAT = "07911 100005"
PEOPLE = {  # group -> (contact, organiser)
    "Alpha": (("Jo", "07911 100002"), ("Margaret", "07911 100004")),
    "Beta": (("Sam", "07911 100003"), ("Nell", "07911 100006")),
}
E164 = {"Pat": "+447911100005", "Jo": "+447911100002", "Margaret": "+447911100004",
        "Sam": "+447911100003", "Nell": "+447911100006"}


def at(hour: int, minute: int = 0) -> datetime:
    return utc(*DAY, hour, minute)


@pytest.fixture
def two_groups(ok):
    with freeze_time("2026-11-30 12:00:00"):
        for group, ((contact, contact_phone), (organiser, organiser_phone)) in PEOPLE.items():
            ok("group", "add", group, "--timezone", "Europe/London")
            ok("member", "add", group, "Pat", "--phone", PAT)
            ok("member", "add", group, contact, "--phone", contact_phone)
            ok("member", "add", group, organiser, "--phone", organiser_phone, "--role", "organiser")
    return list(PEOPLE)


def add_checkins(ok, groups=("Alpha", "Beta"), at_time: str = "09:00") -> None:
    with freeze_time("2026-11-30 12:00:00"):
        for group in groups:
            contact = PEOPLE[group][0][0]
            ok("checkin", "add", group, "Pat", "--at", at_time, "--window", "30m", "--escalate-to", contact)


def receive(ok, text: str, when: datetime, phone: str = PAT) -> None:
    with freeze_time(when):
        ok("receive", "--from", phone, text)


def states(engine) -> dict[str, str]:
    with session_scope(engine) as session:
        rows = session.execute(select(Group.name, CheckIn.state).join(Group, Group.id == CheckIn.group_id)
                               .where(CheckIn.occurrence != "2026-12-02")).all()
    return {name: state for name, state in rows}


def to(engine, name: str) -> list[str]:
    return [m.template for m in sent(engine, to_phone=E164[name])]


def test_one_ok_answers_the_check_in_of_every_group(two_groups, ok, engine, ticker):
    add_checkins(ok)
    ticker(at(9))
    assert sorted(m.group_id for m in sent(engine, kind="checkin")) == [1, 2]
    receive(ok, "ok", at(9, 5))
    ticker(at(9, 31))  # both windows have closed
    assert states(engine) == {"Alpha": "answered", "Beta": "answered"}
    assert not sent(engine, kind="escalation")  # nobody is raised as missing


def test_a_late_ok_stands_down_the_contacts_of_every_group(two_groups, ok, engine, ticker):
    add_checkins(ok)
    ticker(at(9))
    ticker(at(9, 30))
    assert to(engine, "Jo") == ["escalation"] and to(engine, "Sam") == ["escalation"]
    receive(ok, "ok", at(9, 40))
    assert to(engine, "Jo") == ["escalation", "stand_down"]
    assert to(engine, "Sam") == ["escalation", "stand_down"]


def test_help_reaches_each_group_with_a_check_in_open(two_groups, ok, engine, ticker):
    add_checkins(ok)
    ticker(at(9))
    receive(ok, "help", at(9, 5))
    assert to(engine, "Jo") == ["help"] and to(engine, "Sam") == ["help"]
    # one acknowledgement, naming nobody from either group
    [ack] = sent(engine, to_phone=E164["Pat"], template="help_ack_nobody")
    assert ack.body == "Thanks Pat, we've asked someone to ring you."
    assert [m.template for m in sent(engine, to_phone=E164["Pat"]) if m.kind == "confirmation"] \
        == ["help_ack_nobody"]


def test_help_reaches_only_the_group_with_a_check_in_open(two_groups, ok, engine, ticker):
    add_checkins(ok, groups=("Alpha",))
    ticker(at(9))
    receive(ok, "call me", at(9, 5))
    assert to(engine, "Jo") == ["help"] and to(engine, "Sam") == []


def test_help_with_nothing_open_reaches_each_of_its_groups(two_groups, ok, engine):
    add_checkins(ok)
    receive(ok, "help", at(14))
    assert to(engine, "Jo") == ["help"] and to(engine, "Sam") == ["help"]


def test_free_text_goes_only_to_the_organisers_of_the_group_it_concerns(two_groups, ok, engine, ticker):
    add_checkins(ok, groups=("Beta",))
    ticker(at(9))
    receive(ok, "feeling a bit off today", at(9, 5))
    assert to(engine, "Nell") == ["forward"]
    assert to(engine, "Margaret") == []
    assert states(engine) == {"Beta": "answered"}  # contact, in Beta


def test_no_group_is_told_of_the_other(two_groups, ok, engine, ticker):
    add_checkins(ok)
    ticker(at(9))
    ticker(at(9, 30))
    receive(ok, "not sure", at(9, 40))
    with session_scope(engine) as session:
        groups = {g.id: g.name for g in session.scalars(select(Group))}
        members = {m.id: (groups[m.group_id], m.name) for m in session.scalars(select(Member))}
    for message in sent(engine):
        group = groups[message.group_id]
        other = "Beta" if group == "Alpha" else "Alpha"
        others = {name for (g, name) in members.values() if g == other and name != "Pat"}
        assert other not in message.body and not any(name in message.body for name in others), message.body
        # and each message goes to someone of its own group
        assert members[message.member_id][0] == group


def test_stop_tells_the_organisers_of_each_group_once(two_groups, ok, engine):
    receive(ok, "STOP", at(12))
    assert to(engine, "Margaret") == ["opted_out"] and to(engine, "Nell") == ["opted_out"]
    with session_scope(engine) as session:
        assert [m.opted_out for m in session.scalars(select(Member).where(Member.name == "Pat"))] == [True, True]


def test_a_keypress_answers_the_same_persons_check_in_in_every_group_but_not_a_housemates(
        two_groups, ok, engine, ticker):
    """Pat is called by Beta and presses 1: Alpha's open check-in for Pat is answered too (same
    number, same name); Dot, who shares Pat's landline in Alpha, is not answered by it."""
    from phonetree import inbound
    from phonetree.models import Message

    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Alpha", "Dot", "--phone", PAT, "--shared")
        ok("checkin", "add", "Alpha", "Dot", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo")
    add_checkins(ok)
    ticker(at(9))
    with session_scope(engine) as session:
        beta_prompt = session.scalar(select(Message).join(Group, Group.id == Message.group_id)
                                     .where(Message.kind == "checkin", Group.name == "Beta"))
        inbound.keypress(session, at(9, 2), beta_prompt, "1", "CA" + "1" * 32)
    with session_scope(engine) as session:
        rows = session.execute(select(Group.name, Member.name, CheckIn.state)
                               .join(Group, Group.id == CheckIn.group_id).join(Member, Member.id == CheckIn.member_id)
                               .where(CheckIn.occurrence == "2026-12-01")).all()
    assert sorted(rows) == [("Alpha", "Dot", "sent"), ("Alpha", "Pat", "answered"), ("Beta", "Pat", "answered")]


def test_a_done_naming_someone_of_the_other_group_closes_nothing_and_goes_to_that_group(
        two_groups, ok, engine, ticker):
    """Long-run seed 11000407. Pat, in Alpha and Beta, was asked about Beta's Olu at 08:30 and
    let it lapse (08:50: Nell, Beta's organiser, is alerted); at 09:30 Pat is asked about Alpha's
    Wyn. At 09:40 Pat texts "DONE Olu": it is about Olu, so it closes nothing Pat holds (before:
    it closed Wyn's check-in as "reached by Pat", though nobody had rung Wyn, because names were
    looked for only in the groups of the tasks Pat held). Nell reads it; Alpha hears nothing."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Alpha", "Wyn", "--phone", "07911 100007")
        ok("member", "add", "Beta", "Olu", "--phone", "07911 100008")
        ok("checkin", "add", "Beta", "Olu", "--at", "08:00", "--window", "30m", "--escalate-to", "Pat",
           "--escalation-wait", "20m")
        ok("checkin", "add", "Alpha", "Wyn", "--at", "09:00", "--window", "30m", "--escalate-to", "Pat",
           "--escalation-wait", "20m")
    for minute in (8 * 60, 8 * 60 + 30, 8 * 60 + 50, 9 * 60, 9 * 60 + 30):
        ticker(at(minute // 60, minute % 60))
    assert to(engine, "Pat") == ["escalation", "escalation"] and to(engine, "Nell") == ["alert"]
    receive(ok, "DONE Olu", at(9, 40))
    with session_scope(engine) as session:
        rows = session.execute(select(Member.name, CheckIn.state).join(Member, Member.id == CheckIn.member_id)
                               .where(CheckIn.occurrence == "2026-12-01")).all()
    assert sorted(rows) == [("Olu", "alerted"), ("Wyn", "escalating")]
    [forward] = sent(engine, template="forward")
    assert forward.to_phone == E164["Nell"] and forward.body.endswith(": DONE Olu")
    assert to(engine, "Margaret") == [] and "thanks" not in to(engine, "Pat")
