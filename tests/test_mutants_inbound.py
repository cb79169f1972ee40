"""Replies acted on (phonetree/inbound.py), at the edges the rest of the suite left open: each
test kills mutants that survived it (bench/mutation.py --module inbound). The rules held are the
module's docstrings: a DONE that may be the reply still owed to an earlier ask is held and the
holder asked to confirm, in the channel they used; a message that will never arrive passes on
what it carried (delivery.undeliverable)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Callable

import pytest
from click.testing import Result
from freezegun import freeze_time
from sqlalchemy import Engine, select

from phonetree import delivery, inbound
from phonetree.db import session_scope
from phonetree.gateways import base
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import CheckIn, Event, Group, Inbound, Member, Message, Task
from schedules.engine import tick
from tests.conftest import JO, LANDLINE, MARGARET, SAM, VERA, sent, snapshot, utc
from tests.test_delivery import wired  # noqa: F401 - the fixture: the stand-in, our webhooks, the gateway
from tests.test_help_stays_asked import E164, add_checkin, at, receive, templates_to, vera_open
from tests.test_shared_numbers import E164 as SHARED, at as shared_at, receive as shared_receive, two_groups  # noqa: F401
from tests.twilio_standin import TwilioStandIn

Ticker = Callable[..., object]
Wired = tuple[TwilioStandIn, TwilioGateway]


def test_a_held_done_is_checked_by_text_and_if_that_never_arrives_the_call_passes_on(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Jo is called rather than texted (a voice contact with a mobile). She was asked twice about
    # Vera (the escalation, then Vera's HELP), texted DONE once; Vera asked again and Jo's next
    # DONE is held (test_help_stays_asked). The check goes back by text, the way Jo replied, tied
    # to the ask it holds open and to Vera's check-in. Jo has opted out of texts since, so it can
    # never arrive: nobody knows whether Jo has rung about the newer request, so Sam is asked at
    # once, not after Jo's 20 minutes, and the failure is on the check-in's record.
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "set", "Oakfield", "Jo", "--channel", "voice")
    _asked_twice_answered_once(ok, ticker)
    receive(ok, VERA, "I can't breathe", at(9, 42))
    ticker(at(9, 42))
    assert templates_to(engine, JO) == ["escalation", "help", "thanks", "help"]
    assert [m.channel for m in sent(engine, to_phone=E164[JO])] == ["voice", "voice", "sms", "voice"]
    receive(ok, JO, "DONE", at(9, 42, 20))
    ticker(at(9, 42, 20))
    [checkin] = vera_open(engine)
    with session_scope(engine) as session:
        [held] = session.scalars(select(Task).where(Task.state == "asked"))
        assert held.assignee.name == "Jo" and held.checkin_id == checkin.id
        held_id = held.id
    [check] = sent(engine, to_phone=E164[JO], template="done_check")
    assert (check.channel, check.task_id, check.checkin_id, check.state) == ("sms", held_id, checkin.id, "sent")
    assert templates_to(engine, SAM) == []
    with freeze_time(at(9, 43)), session_scope(engine) as session:
        message = session.get_one(Message, check.id)
        assert delivery.message_status(session, at(9, 43), message, "undelivered", base.OPTED_OUT, "21610")
    ticker(at(9, 43))
    with session_scope(engine) as session:
        assert session.get_one(Task, held_id).state != "asked"
        [failed] = session.scalars(select(Event).where(Event.kind == "undeliverable"))
        assert failed.checkin_id == checkin.id
    assert templates_to(engine, SAM) == ["help"]
    assert [c.state for c in vera_open(engine)] == ["escalating"]


def _said(twiml: str) -> list[str]:
    return re.findall(r"<Say[^>]*>(.*?)</Say>", twiml)


def _hill(ok: Callable[..., Result], checking_in: str, contacts: str) -> None:
    """Hill: Vera (a mobile), Lil (a landline), Jo, and Margaret organising; `checking_in` has a
    09:00 check-in, no reminder, followed up by `contacts`."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "add", "Hill", "--timezone", "Europe/London")
        for name, phone in (("Vera", VERA), ("Lil", LANDLINE), ("Jo", JO)):
            ok("member", "add", "Hill", name, "--phone", phone)
        ok("member", "add", "Hill", "Margaret", "--phone", MARGARET, "--role", "organiser")
        ok("checkin", "add", "Hill", checking_in, "--at", "09:00", "--window", "30m", "--escalate-to", contacts,
           "--reminder", "off")


def _press(standin: TwilioStandIn, sid: str, digits: str, when: datetime) -> list[str]:
    """A key pressed on call `sid` at `when`, through our gather webhook: what the caller hears."""
    with freeze_time(when):
        status, twiml = standin.press_key(sid, digits)
    assert status == 200
    return _said(twiml)


def test_what_a_landline_member_hears_after_each_key_and_what_each_key_does(
        ok: Callable[..., Result], engine: Engine, wired: Wired) -> None:
    # Lil, on a landline, is called for her 09:00 check-in each day, through the real client,
    # the stand-in and our gather webhook. What she hears back is the whole of her answer, so
    # each reply is pinned word for word. Tue: a key that means nothing (the call ends; the
    # organiser rings her and resolves it); Wed: 1 (OK); Thu: 1 again, on a new call (a new
    # call's key is a new answer, never taken for a repeat of yesterday's); Fri: 2, and Twilio
    # delivers that gather twice: Jo is asked once.
    standin, gateway = wired
    _hill(ok, "Lil", "Jo")

    def call_on(day: int) -> str:
        tick(engine, gateway, utc(2026, 12, day, 9, 0))
        return standin.calls[-1].sid

    def press(sid: str, digits: str, day: int) -> list[str]:
        return _press(standin, sid, digits, utc(2026, 12, day, 9, 2))

    def states() -> list[str]:
        with session_scope(engine) as session:
            return list(session.scalars(select(CheckIn.state).where(CheckIn.state != "scheduled")
                                        .order_by(CheckIn.due_at)))

    tuesday = call_on(1)
    assert press(tuesday, "7", 1) == ["Sorry, we didn't catch that. Someone may ring you later. Goodbye."]
    assert states() == ["sent"]
    with freeze_time(utc(2026, 12, 1, 9, 10)):
        ok("resolve", "Hill", "Lil", "--note", "rang her")
    wednesday = call_on(2)
    assert press(wednesday, "1", 2) == ["Thank you. Glad you're OK. Goodbye."]
    assert states() == ["resolved", "answered"]
    thursday = call_on(3)
    assert press(thursday, "1", 3) == ["Thank you. Glad you're OK. Goodbye."]
    assert states() == ["resolved", "answered", "answered"]
    friday = call_on(4)
    assert press(friday, "2", 4) == ["Thank you. We're asking someone to ring you now. Goodbye."]
    assert press(friday, "2", 4) == ["Thank you. Goodbye."]  # the same gather again: nothing more
    tick(engine, gateway, utc(2026, 12, 4, 9, 2))
    assert [m.params["Body"][:22] for m in standin.messages if m.params["To"] == "+447911100002"] == [
        "Hi Jo, Lil has asked f"]
    with session_scope(engine) as session:
        assert [(i.channel, i.intent, i.body) for i in session.scalars(select(Inbound).order_by(Inbound.id))] == [
            ("voice", "ok", "1"), ("voice", "ok", "1"), ("voice", "help", "2")]  # the meaningless key: no reply


def test_a_key_on_a_call_about_nobody_we_know_is_thanked_and_changes_nothing(
        oakfield: str, engine: Engine) -> None:
    # A call whose person is no longer on record (forgotten while the call rang): the key is
    # thanked for, and nobody's check-in is touched.
    before = snapshot(engine)
    with session_scope(engine) as session:
        words = inbound.keypress(session, at(9, 1), Message(member_id=None, template="checkin"), "2",
                                 "CA" + "3" * 32)
    assert words == "Thank you. Goodbye."
    assert snapshot(engine) == before


def test_stop_reaches_every_membership_of_the_number_even_one_already_marked(
        two_groups: list[str], ok: Callable[..., Result], engine: Engine) -> None:
    # Pat is in Alpha and Beta. Pat's Alpha membership is already marked opted out (as a 21610
    # on one of Alpha's texts marks it: that membership only). Pat's STOP then marks the Beta one
    # as well, with its own event and Beta's organiser told; nothing is recorded or sent again
    # for Alpha. START brings both back, each group's organiser told.
    with session_scope(engine) as session:
        alpha_pat = session.scalars(select(Member).join(Group).where(Group.name == "Alpha", Member.name == "Pat")).one()
        alpha_pat.opted_out = True

    def trail(kind: str) -> list[tuple[str, str]]:
        with session_scope(engine) as session:
            return [(g, m) for g, m in session.execute(
                select(Group.name, Member.name).select_from(Event).join(Group, Group.id == Event.group_id)
                .join(Member, Member.id == Event.member_id).where(Event.kind == kind).order_by(Event.id))]

    def notices(template: str) -> list[str]:
        return [m.to_phone for m in sent(engine, template=template)]

    assert receive(ok, "07911 100005", "STOP", shared_at(10)).strip() == "Pat: stop: opted out; organisers told"
    with session_scope(engine) as session:
        assert sorted((m.group.name, m.opted_out) for m in session.scalars(
            select(Member).where(Member.name == "Pat"))) == [("Alpha", True), ("Beta", True)]
    assert trail("opted_out") == [("Beta", "Pat")]
    assert notices("opted_out") == [SHARED["Nell"]]
    assert receive(ok, "07911 100005", "START", shared_at(11)).strip() == (
        "Pat: start: opted back in; organisers told")
    with session_scope(engine) as session:
        assert [m.opted_out for m in session.scalars(select(Member).where(Member.name == "Pat"))] == [False, False]
    assert trail("opted_in") == [("Alpha", "Pat"), ("Beta", "Pat")]
    assert notices("opted_in") == [SHARED["Margaret"], SHARED["Nell"]]


def test_pause_and_back_by_text_are_confirmed_by_text_and_told_every_time(
        oakfield: str, ok: Callable[..., Result], engine: Engine) -> None:
    # Vera is called rather than texted, but she texts PAUSE 3 (Tuesday), then PAUSE 2 (she has
    # changed her plans), then BACK: each is confirmed by text, word for word, and each pause is
    # told to Margaret, the second as well as the first. BACK resumes her check-ins.
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "set", "Oakfield", "Vera", "--channel", "voice")
    receive(ok, VERA, "PAUSE 3", at(10))
    receive(ok, VERA, "pause 2", at(11))
    said = receive(ok, VERA, "BACK", at(12))
    assert said.strip() == "Vera: back: check-ins resumed"
    to_vera = sent(engine, to_phone=E164[VERA])
    assert [(m.template, m.channel, m.body) for m in to_vera] == [
        ("pause_ok", "sms", "Thanks Vera, check-ins are paused until Thu 03 Dec. Reply BACK to start again."),
        ("pause_ok", "sms", "Thanks Vera, check-ins are paused until Wed 02 Dec. Reply BACK to start again."),
        ("back_ok", "sms", "Welcome back Vera, check-ins start again."),
    ]
    assert [m.template for m in sent(engine, to_phone="+447911100004")] == ["paused_notice", "paused_notice"]
    with session_scope(engine) as session:
        vera = session.scalars(select(Member).where(Member.name == "Vera")).one()
        assert vera.paused_until is None
        assert [(e.kind, e.detail) for e in session.scalars(
            select(Event).where(Event.member_id == vera.id, Event.kind.in_(("paused", "resumed")))
            .order_by(Event.id))] == [("paused", "by reply, until 2026-12-03"), ("paused", "by reply, until 2026-12-02"),
                                      ("resumed", None)]
    with freeze_time(at(13)):
        ok("member", "forget", "Oakfield", "Vera", "--yes")
    assert sent(engine, to_phone=E164[VERA]) == []
    assert sent(engine, template="paused_notice") == []  # about her: gone whole, not just her name
    assert [m.body for m in sent(engine) if m.body and "Vera" in m.body] == []


def test_a_pause_from_a_number_in_two_groups_is_told_to_both_groups_organisers(
        two_groups: list[str], ok: Callable[..., Result], engine: Engine) -> None:
    shared_receive(ok, "PAUSE", shared_at(10))
    assert sorted(m.to_phone for m in sent(engine, template="paused_notice")) == sorted(
        [SHARED["Margaret"], SHARED["Nell"]])
    with session_scope(engine) as session:
        assert [m.paused_until is not None for m in session.scalars(select(Member).where(Member.name == "Pat"))] == [
            True, True]


@pytest.mark.parametrize("first, reply", [("Mary Ann", "DONE Mary Ann"), ("Zoë", "done zoë"),
                                          ("Siân", "DONE SIÂN, all fine"), ("Jo'anne", "done jo\u2019anne")])
def test_a_done_naming_a_member_of_several_words_or_letters_closes_only_their_call(
        ok: Callable[..., Result], engine: Engine, first: str, reply: str) -> None:
    # Jo is asked about two members' calls, the newest Pat's. "DONE Mary Ann" (a chosen name of
    # two words, or one with an accent) names the other: it closes that one, never Pat's, whom
    # nobody has rung. Before, a name matched only if it was one plain a-z word, and the DONE
    # closed the newest ask, Pat's.
    with freeze_time("2026-12-01 10:00:00"):
        ok("group", "add", "Brook", "--timezone", "Europe/London")
        ok("member", "add", "Brook", first, "--phone", VERA)
        ok("member", "add", "Brook", "Pat", "--phone", "07911 100005")
        ok("member", "add", "Brook", "Jo", "--phone", JO)
        ok("member", "add", "Brook", "Margaret", "--phone", MARGARET, "--role", "organiser")
        for name in (first, "Pat"):
            ok("checkin", "add", "Brook", name, "--at", "09:00", "--escalate-to", "Jo")
    receive(ok, VERA, "HELP", at(10, 1))
    receive(ok, "07911 100005", "HELP", at(10, 2))
    receive(ok, JO, reply, at(10, 10))
    with session_scope(engine) as session:
        still = {m.name: c.state for c, m in session.execute(
            select(CheckIn, Member).join(Member, Member.id == CheckIn.member_id)
            .where(CheckIn.state.in_(("escalating", "alerted", "resolved"))))}
    assert still == {first: "resolved", "Pat": "escalating"}


def _forwarded(engine: Engine) -> list[tuple[str, str, int | None, str | None, object]]:
    """The trail of words passed on: (group, member, check-in, detail, when), oldest first."""
    with session_scope(engine) as session:
        return [tuple(row) for row in session.execute(
            select(Group.name, Member.name, Event.checkin_id, Event.detail, Event.at)
            .join(Group, Group.id == Event.group_id).join(Member, Member.id == Event.member_id)
            .where(Event.kind == "reply_forwarded").order_by(Event.id))]


def test_words_to_an_open_check_in_answer_it_and_reach_the_organiser_and_go_when_the_member_goes(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Vera's 09:00 prompt has gone; she texts a few words back. They count as contact (the check-in
    # is answered, in those words on the record), Margaret is sent them by text, and the trail says
    # where they went. Later Vera asks for a call and texts again: the call stays asked for. When
    # Vera is forgotten, the texts that carried her words go with her.
    add_checkin(ok)
    ticker(at(9))
    said = receive(ok, VERA, "lovely morning, off to the shops", at(9, 5))
    assert said.strip() == "Vera: unknown: counted as contact: check-in answered; passed to Margaret"
    with session_scope(engine) as session:
        checkin = session.scalars(select(CheckIn).where(CheckIn.occurrence == "2026-12-01")).one()
        assert (checkin.state, checkin.outcome) == ("answered", "replied (unrecognised text, passed to a person)")
        checkin_id = checkin.id
    assert _forwarded(engine) == [("Oakfield", "Vera", checkin_id, "to Margaret", at(9, 5))]
    [forward] = sent(engine, template="forward")
    assert (forward.to_phone, forward.channel) == ("+447911100004", "sms")
    assert "lovely morning, off to the shops" in (forward.body or "")
    receive(ok, VERA, "HELP", at(9, 20))
    said = receive(ok, VERA, "please hurry", at(9, 21))
    assert said.strip() == "Vera: unknown: a call was asked for: it stays asked for; passed to Jo, Margaret"
    assert [row[3] for row in _forwarded(engine)] == ["to Margaret", "to Jo, Margaret"]
    with freeze_time(at(10)):
        ok("member", "forget", "Oakfield", "Vera", "--yes")
    assert [m.id for m in sent(engine, template="forward")] == []


def test_words_with_nothing_open_go_to_the_group_that_wrote_last_and_only_to_who_can_read_a_text(
        two_groups: list[str], ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Pat, in Alpha and Beta, has nothing open and holds nothing. Beta wrote to Pat last (Alpha on
    # Monday, Beta on Tuesday; Alpha has written to Jo since, which is not to Pat), so Pat's words
    # go to Beta's organiser alone, by text.
    from tests.test_shared_numbers import add_checkins

    add_checkins(ok, groups=("Alpha",))
    ticker(utc(2026, 11, 30, 9, 0))
    shared_receive(ok, "OK", utc(2026, 11, 30, 9, 1))
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "remove", "Alpha", "Pat")
    add_checkins(ok, groups=("Beta",))
    ticker(shared_at(9))
    shared_receive(ok, "OK", shared_at(9, 1))
    with freeze_time("2026-12-01 09:02:00"):
        ok("checkin", "remove", "Beta", "Pat")
    shared_receive(ok, "PAUSE", shared_at(9, 30), phone="07911 100002")  # Alpha writes since, to Jo, not Pat
    shared_receive(ok, "the bus was late again", shared_at(10))
    assert [m.to_phone for m in sent(engine, template="forward")] == [SHARED["Nell"]]
    assert _forwarded(engine) == [("Beta", "Pat", None, "to Nell", shared_at(10))]


def test_words_from_a_number_nobody_has_written_to_go_to_each_of_its_groups_who_can_read_them(
        two_groups: list[str], ok: Callable[..., Result], engine: Engine) -> None:
    # Neither group has written to Pat yet: the words go to both organisers. Then, with Nell
    # called rather than texted and Margaret opted out, nobody can be sent them: the trail says
    # so (before, it named them both as if they had been sent the words).
    shared_receive(ok, "hello, is this the right number?", shared_at(10))
    assert sorted(m.to_phone for m in sent(engine, template="forward")) == sorted([SHARED["Margaret"], SHARED["Nell"]])
    with freeze_time("2026-12-01 10:30:00"):
        ok("member", "set", "Beta", "Nell", "--channel", "voice")
    with session_scope(engine) as session:
        session.scalars(select(Member).where(Member.name == "Margaret")).one().opted_out = True
    assert receive(ok, "07911 100005", "hello again", shared_at(11)).strip() == (
        "Pat: unknown: passed to status (nobody to text)")  # once, though two groups have it on status
    assert len(sent(engine, template="forward")) == 2  # nobody new: one is called, one opted out
    assert sorted(row[:4] for row in _forwarded(engine) if row[4] == shared_at(11)) == [
        ("Alpha", "Pat", None, "to nobody: shown on status"), ("Beta", "Pat", None, "to nobody: shown on status")]


def test_an_ok_says_what_it_answered_and_whom_it_stood_down(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    add_checkin(ok)
    assert receive(ok, VERA, "OK", at(8)).strip() == "Vera: ok: nothing open; no change"
    ticker(at(9))
    ticker(at(9, 30))  # no reply: Jo is asked
    assert receive(ok, VERA, "ok thanks", at(9, 40)).strip() == (
        "Vera: ok: check-in answered (2026-12-01); 1 contact(s) stood down")
    with session_scope(engine) as session:
        checkin = session.scalars(select(CheckIn).where(CheckIn.occurrence == "2026-12-01")).one()
        assert (checkin.state, checkin.outcome) == ("answered", "replied OK")
    assert receive(ok, VERA, "OK", at(9, 41)).strip() == "Vera: ok: nothing open; no change"


def _asked_twice_answered_once(ok: Callable[..., Result], ticker: Ticker) -> None:
    """Jo is asked about Vera's check-in twice (the escalation at 09:30, then Vera's HELP at
    09:35) and texts DONE once, at 09:40: one reply to those texts may still be on its way."""
    add_checkin(ok)
    ticker(at(9))
    ticker(at(9, 30))
    receive(ok, VERA, "HELP", at(9, 35))
    ticker(at(9, 35))
    receive(ok, JO, "done", at(9, 40))


def _vera_asks_and_jos_done_closes_it_at_once(ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    """Vera asks for a call at 09:40, Jo (asked first) says DONE at 09:45: it closes the call
    without a check."""
    receive(ok, VERA, "HELP", at(9, 40))
    ticker(at(9, 40))
    receive(ok, JO, "done", at(9, 45))
    assert not sent(engine, to_phone=E164[JO], template="done_check")
    assert vera_open(engine) == []


@pytest.mark.parametrize("minutes, held", [(30, True), (40, False)])
def test_a_done_is_held_only_within_half_an_hour_of_the_last_one(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker, minutes: int, held: bool) -> None:
    # Vera asks for a call again 30 minutes after Jo's DONE (the edge of the window, inclusive) or
    # 40 minutes after: Jo's next DONE is held and checked at 30, and closes the call at once at 40.
    _asked_twice_answered_once(ok, ticker)
    again = at(9, 40) + timedelta(minutes=minutes)
    receive(ok, VERA, "I can't breathe", again)
    ticker(again)
    receive(ok, JO, "done", again + timedelta(minutes=1))
    assert bool(sent(engine, to_phone=E164[JO], template="done_check")) is held
    assert bool(vera_open(engine)) is held


def test_a_done_is_not_held_for_a_call_someone_else_closed_or_jo_could_not_make(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Jo was asked about Vera's check-in and said CANT; Sam rang and said DONE. Vera then asks for
    # a call and Jo, asked first, says DONE: nothing Jo sent before can be mistaken for it (her
    # one reply was CANT, and the DONE was Sam's), so it closes the call at once.
    add_checkin(ok)
    ticker(at(9))
    ticker(at(9, 30))
    receive(ok, JO, "cant", at(9, 31))
    ticker(at(9, 31))
    receive(ok, SAM, "done", at(9, 35))
    assert vera_open(engine) == []
    _vera_asks_and_jos_done_closes_it_at_once(ok, engine, ticker)


def test_a_done_is_not_held_because_of_an_earlier_call_about_someone_else(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Jo was asked twice about Pat (an escalation, then Pat's HELP) and said DONE once; then Vera
    # asks for a call and Jo says DONE: a reply still owed about Pat is no reason to doubt this
    # one about Vera.
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Pat", "--phone", "07911 100005")
        ok("checkin", "add", "Oakfield", "Pat", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--escalation-wait", "20m")
    add_checkin(ok)
    ticker(at(9))
    receive(ok, VERA, "OK", at(9, 5))
    ticker(at(9, 30))
    receive(ok, "07911 100005", "HELP", at(9, 32))
    ticker(at(9, 32))
    receive(ok, JO, "done", at(9, 35))
    _vera_asks_and_jos_done_closes_it_at_once(ok, engine, ticker)


def test_words_shown_on_status_are_on_the_status_of_the_group_they_concern(
        two_groups: list[str], ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Beta wrote to Pat last and Beta's organiser is called, not texted: Pat's words are shown on
    # Beta's status. Before, a reply showed only under the group of the first member with its
    # number (Alpha), which then read words about Beta while Beta never saw them.
    from phonetree.status import group_status
    from tests.test_shared_numbers import add_checkins

    add_checkins(ok, groups=("Beta",))
    ticker(shared_at(9))
    shared_receive(ok, "OK", shared_at(9, 1))
    with freeze_time("2026-12-01 09:02:00"):
        ok("checkin", "remove", "Beta", "Pat")
        ok("member", "set", "Beta", "Nell", "--channel", "voice")
    shared_receive(ok, "my grandson is home", shared_at(10))
    assert _forwarded(engine) == [("Beta", "Pat", None, "to nobody: shown on status", shared_at(10))]
    with session_scope(engine) as session:
        unread = {g.name: [r["text"] for r in group_status(session, g, shared_at(10, 5))["replies_to_read"]]
                  for g in session.scalars(select(Group))}
    assert unread == {"Alpha": [], "Beta": ["my grandson is home"]}


def test_what_a_landline_contact_hears_after_each_key_on_a_call_asking_them_to_ring(
        ok: Callable[..., Result], engine: Engine, wired: Wired) -> None:
    # Lil, on a landline, is Vera's first contact and is called when Vera doesn't reply. Tue: she
    # presses 1 (she will ring): the ask is done; a key on that call once it is sorted changes
    # nothing. Wed: a key that means nothing leaves the ask with her. Thu: 2, and Jo is asked.
    standin, gateway = wired
    _hill(ok, "Vera", "Lil,Jo")

    def ask_call(day: int) -> str:
        tick(engine, gateway, utc(2026, 12, day, 9, 0))
        tick(engine, gateway, utc(2026, 12, day, 9, 30))
        return standin.calls[-1].sid

    def press(sid: str, digits: str, day: int) -> list[str]:
        return _press(standin, sid, digits, utc(2026, 12, day, 9, 31))

    def lils_asks() -> list[str]:
        with session_scope(engine) as session:
            return list(session.scalars(select(Task.state).join(Member, Member.id == Task.assignee_id)
                                        .where(Member.name == "Lil").order_by(Task.id)))

    tuesday = ask_call(1)
    assert press(tuesday, "1", 1) == ["Thank you. Please ring them now. Goodbye."]
    assert lils_asks() == ["done"]
    before = snapshot(engine)
    with session_scope(engine) as session:
        ask = session.scalars(select(Message).where(Message.channel == "voice")).one()
        assert inbound.keypress(session, utc(2026, 12, 1, 9, 40), ask, "2", tuesday) == (
            "Thank you. This has been sorted already. Goodbye.")
    assert snapshot(engine) == before
    wednesday = ask_call(2)
    assert press(wednesday, "9", 2) == ["Sorry, we didn't catch that. Goodbye."]
    assert lils_asks() == ["done", "asked"]
    with freeze_time(utc(2026, 12, 2, 9, 35)):
        ok("resolve", "Hill", "Vera", "--note", "rang her")
    thursday = ask_call(3)
    assert press(thursday, "2", 3) == ["That's fine, we'll ask someone else. Goodbye."]
    tick(engine, gateway, utc(2026, 12, 3, 9, 31))
    assert lils_asks()[-1] == "cant"
    assert [m.params["To"] for m in standin.messages][-1] == "+447911100002"  # Jo, at once


def test_a_key_on_the_reminder_call_answers_the_check_in(
        oakfield: str, ok: Callable[..., Result], engine: Engine, wired: Wired) -> None:
    standin, gateway = wired
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "set", "Oakfield", "Vera", "--channel", "voice")
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--reminder", "15m")
    tick(engine, gateway, at(9))
    tick(engine, gateway, at(9, 15))
    assert len(standin.calls) == 2  # the prompt, unanswered, then the reminder
    assert _press(standin, standin.calls[-1].sid, "1", at(9, 16)) == ["Thank you. Glad you're OK. Goodbye."]
    assert vera_open(engine) == []


def test_a_done_names_the_longest_name_it_holds_and_not_the_senders_own_or_another_groups(
        ok: Callable[..., Result], engine: Engine) -> None:
    # Jo holds asks about Mary Ann, then Ann (the newest). "DONE Mary Ann" names both names, and
    # means the longer: Mary Ann's closes, Ann's stays. Then "Jo here, DONE" names only Jo herself,
    # which is not someone else: it closes the ask she holds (Ann's). Asked about Sam, "DONE Ann"
    # is about Ann, whom no ask is about now: it closes nothing. Pat is in another group: "DONE,
    # Pat says hi" is no reason to doubt Jo's DONE about Sam.
    with freeze_time("2026-12-01 10:00:00"):
        ok("group", "add", "Brook", "--timezone", "Europe/London")
        ok("group", "add", "Fen", "--timezone", "Europe/London")
        ok("member", "add", "Fen", "Pat", "--phone", "07911 100005")
        for name, phone in (("Ann", VERA), ("Mary Ann", "07911 100006"), ("Sam", SAM)):
            ok("member", "add", "Brook", name, "--phone", phone)
        ok("member", "add", "Brook", "Jo", "--phone", JO)
        ok("member", "add", "Brook", "Margaret", "--phone", MARGARET, "--role", "organiser")
        for name in ("Ann", "Mary Ann", "Sam"):
            ok("checkin", "add", "Brook", name, "--at", "09:00", "--escalate-to", "Jo")

    def states() -> dict[str, str]:
        with session_scope(engine) as session:
            return {m.name: c.state for c, m in session.execute(
                select(CheckIn, Member).join(Member, Member.id == CheckIn.member_id)
                .where(CheckIn.state.in_(("escalating", "resolved"))))}

    receive(ok, "07911 100006", "HELP", at(10, 1))
    receive(ok, VERA, "HELP", at(10, 2))
    receive(ok, JO, "DONE Mary Ann", at(10, 10))
    assert states() == {"Ann": "escalating", "Mary Ann": "resolved"}
    receive(ok, JO, "Jo here, DONE", at(10, 12))
    assert states() == {"Ann": "resolved", "Mary Ann": "resolved"}
    receive(ok, SAM, "HELP", at(10, 20))
    receive(ok, JO, "DONE Ann", at(10, 22))
    assert states() == {"Ann": "resolved", "Mary Ann": "resolved", "Sam": "escalating"}
    receive(ok, JO, "DONE, Pat says hi", at(10, 25))
    assert states() == {"Ann": "resolved", "Mary Ann": "resolved", "Sam": "resolved"}
