"""A call asked for stays asked for: only DONE, an organiser's resolve or the member's own OK
closes it; whatever else the member sends goes to a person. Stand-downs go once to each person,
and say what really happened. People are answered in the channel they used. (Issue 11 defect 1,
issue 12 "stand-downs", "answer in the channel used", issue 13 #10.)"""
from __future__ import annotations

from datetime import datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from phonetree import delivery, inbound
from phonetree.db import session_scope
from phonetree.models import CheckIn, Group, Member, Message, Task
from phonetree.replies import Intent, parse_reply
from phonetree.status import group_status
from tests.conftest import JO, MARGARET, SAM, VERA, sent, utc

DAY = (2026, 12, 1)  # a Tuesday, GMT
E164 = {VERA: "+447911100001", JO: "+447911100002", SAM: "+447911100003", MARGARET: "+447911100004"}


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return utc(*DAY, hour, minute, second)


def add_checkin(ok, contacts: str = "Jo,Sam") -> None:
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", contacts, "--escalation-wait", "20m")


def receive(ok, phone: str, text: str, when: datetime) -> str:
    with freeze_time(when):
        return ok("receive", "--from", phone, text).stdout


def vera_open(engine) -> list[CheckIn]:
    with session_scope(engine) as session:
        return list(session.scalars(select(CheckIn).where(
            CheckIn.state.in_(("prompting", "sent", "escalating", "alerted")))))


def templates_to(engine, phone: str) -> list[str]:
    return [m.template for m in sent(engine, to_phone=E164[phone])]


def open_on_status(engine, when: datetime) -> list[dict]:
    with session_scope(engine) as session:
        group = session.scalar(select(Group))
        return group_status(session, group, when)["open"]


@pytest.fixture
def helped(oakfield, ok, engine, ticker):
    """Vera's 09:00 prompt has gone; at 09:05 she texts HELP and Jo is asked at once."""
    add_checkin(ok)
    ticker(at(9))
    receive(ok, VERA, "HELP", at(9, 5))
    ticker(at(9, 5))
    assert templates_to(engine, JO) == ["help"]
    return engine


@pytest.mark.parametrize("words", ["please hurry", "I've had a fall", "I can't breathe", "done",
                                   "thank you", "x", "where are you?", "cant"])
def test_words_after_help_never_stand_the_caller_down(helped, ok, ticker, words):
    engine = helped
    receive(ok, VERA, words, at(9, 7))
    ticker(at(9, 7))
    [checkin] = vera_open(engine)
    asked_again = parse_reply(words).intent is Intent.HELP  # distress asks again, and is the newest HELP
    assert checkin.state == "escalating" and checkin.help_requested_at == (at(9, 7) if asked_again else at(9, 5))
    assert not [t for t in templates_to(engine, JO) if t.startswith("stand_down")]
    [item] = open_on_status(engine, at(9, 8))
    assert item["member"] == "Vera" and item["asked_for_call"] is True
    # Jo still holds a live ask about Vera (distress words are a HELP: Jo is texted them, not asked again)
    with session_scope(engine) as session:
        holders = [t.assignee.name for t in session.scalars(select(Task).where(Task.state == "asked"))]
    assert holders == ["Jo"]


def test_a_help_sent_again_is_not_asked_of_jo_again_but_its_words_reach_her(helped, ok, engine, ticker):
    """Vera texts HELP at 09:05 (Jo is asked), then HELP again and "I can't breathe". Jo and
    Margaret are texted each of those as Vera's words; Jo is not sent the same ask three times
    (before: three "help" texts, and no words), and her wait still runs from 09:05."""
    receive(ok, VERA, "HELP", at(9, 6))
    receive(ok, VERA, "I can't breathe", at(9, 7))
    ticker(at(9, 7))
    assert templates_to(engine, JO) == ["help", "forward", "forward"]
    for person in (JO, MARGARET):
        assert [m.body.rsplit(": ", 1)[1] for m in sent(engine, to_phone=E164[person], template="forward")] == [
            "HELP", "I can't breathe"]
    assert not sent(engine, to_phone=E164[SAM])
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.state == "asked")).all()
        assert (task.assignee.name, task.asked_at, task.expires_at) == ("Jo", at(9, 5), at(9, 25))
    # Vera is told each time that Jo has been asked.
    assert [m.body for m in sent(engine, to_phone=E164[VERA], template="help_ack")] == [
        "Thanks Vera, we've asked Jo to ring you."] * 3


@pytest.mark.parametrize("organiser", ["called", "opted out"])
def test_words_reach_the_first_contact_when_no_organiser_can_be_texted(oakfield, ok, engine, ticker, organiser):
    """Margaret, the only organiser, is called rather than texted (or has opted out): Vera's
    words go to her first named contact who can be texted, not only to status (before: the
    first contact read them only when the group had no organiser at all)."""
    add_checkin(ok, contacts="Sam,Jo")
    with session_scope(engine) as session:
        margaret = session.scalars(select(Member).where(Member.name == "Margaret")).one()
        if organiser == "called":
            margaret.channel = "voice"
        else:
            margaret.opted_out = True
        session.scalars(select(Member).where(Member.name == "Sam")).one().channel = "voice"
    ticker(at(9))
    assert receive(ok, VERA, "at my sister's till Friday", at(9, 5)).strip() == (
        "Vera: unknown: counted as contact: check-in answered; passed to Jo")
    [forward] = sent(engine, template="forward")
    assert forward.to_phone == E164[JO] and forward.body.endswith(": at my sister's till Friday")


@pytest.mark.parametrize("words", ["please hurry", "where are you?", "thank you"])
def test_free_text_after_help_is_forwarded_to_whoever_holds_the_call_and_the_organisers(helped, ok, words):
    engine = helped
    receive(ok, VERA, words, at(9, 7))
    for person in (JO, MARGARET):
        [forward] = sent(engine, to_phone=E164[person], template="forward")
        assert forward.body.endswith(words)
    assert not sent(engine, to_phone=E164[SAM])  # not asked, not an organiser


def test_a_members_cant_is_not_a_contacts_cant(helped, ok, engine, ticker):
    """ "I can't breathe" is distress (HELP); a bare "cant" from the member is their words."""
    receive(ok, VERA, "cant", at(9, 7))
    with session_scope(engine) as session:
        assert [t.state for t in session.scalars(select(Task))] == ["asked"]
    assert not sent(engine, to_phone=E164[SAM])


def test_only_the_members_own_ok_stands_a_help_down_and_says_so_plainly(helped, ok, engine, ticker):
    receive(ok, VERA, "ok", at(9, 10))
    ticker(at(9, 10))
    assert vera_open(engine) == []
    [told] = sent(engine, to_phone=E164[JO], template="stand_down_ok")
    assert told.body == "Hi Jo, Vera says they're OK now, so no need to ring. Thank you."


def test_done_from_the_contact_resolves_a_help(helped, ok, engine, ticker):
    receive(ok, JO, "done", at(9, 20))
    assert vera_open(engine) == []
    with session_scope(engine) as session:
        [checkin] = session.scalars(select(CheckIn).where(CheckIn.occurrence == "2026-12-01"))
        assert checkin.state == "resolved" and checkin.outcome == "reached by Jo"


def test_a_second_done_about_the_last_call_does_not_close_a_newer_help(oakfield, ok, engine, ticker):
    """Found by the long simulation (seed 9000064). Jo was asked twice about Vera's check-in (the
    escalation, then her HELP), rang and texted DONE once; Vera then asked again ("I can't
    breathe") and Jo was asked again; Jo's second DONE, the reply still owed to the earlier
    texts, arrived after that new ask. It closed the new HELP as "reached by Jo", with nobody
    on the way. Now Jo is asked to confirm, and only a DONE after that closes it."""
    add_checkin(ok)
    ticker(at(9))
    ticker(at(9, 30))  # no reply: Jo is asked
    receive(ok, VERA, "HELP", at(9, 35))
    ticker(at(9, 35))
    assert templates_to(engine, JO) == ["escalation", "help"]
    receive(ok, JO, "done", at(9, 40))
    receive(ok, VERA, "I can't breathe", at(9, 42))
    ticker(at(9, 42))
    assert templates_to(engine, JO) == ["escalation", "help", "thanks", "help"]
    receive(ok, JO, "DONE Vera", at(9, 42, 20))
    ticker(at(9, 42, 20))
    [checkin] = vera_open(engine)
    assert checkin.state == "escalating" and checkin.help_requested_at == at(9, 42)
    [check] = sent(engine, to_phone=E164[JO], template="done_check")
    assert check.body == ("Thanks Jo. Vera asked for a call again at 09:42. "
                          "If you've spoken to them since then, reply DONE.")
    [item] = open_on_status(engine, at(9, 43))
    assert item["member"] == "Vera" and item["asked_for_call"] is True
    receive(ok, JO, "done", at(9, 50))
    assert vera_open(engine) == []
    with session_scope(engine) as session:
        newest = session.scalars(select(CheckIn).order_by(CheckIn.id.desc())).first()
        assert newest.state == "resolved" and newest.outcome == "reached by Jo"
    assert templates_to(engine, JO) == ["escalation", "help", "thanks", "help", "done_check", "thanks"]


def test_a_done_for_each_ask_means_the_next_done_is_about_the_newer_help(helped, ok, engine, ticker):
    """Seed 9700008: Jo was asked once and answered DONE once, so no reply to the earlier text is
    still to come: a DONE after the new ask is about it, and closes it at once."""
    receive(ok, JO, "done", at(9, 10))
    receive(ok, VERA, "I can't breathe", at(9, 12))
    ticker(at(9, 12))
    receive(ok, JO, "done", at(9, 18))
    assert vera_open(engine) == []
    assert not sent(engine, to_phone=E164[JO], template="done_check")


def test_a_done_long_after_the_last_one_closes_the_newer_help_at_once(helped, ok, engine, ticker):
    receive(ok, JO, "done", at(9, 10))
    receive(ok, VERA, "help", at(9, 50))  # 40 minutes on: not a second reply to the 09:05 ask
    ticker(at(9, 50))
    receive(ok, JO, "done", at(9, 55))
    assert vera_open(engine) == []
    assert not sent(engine, to_phone=E164[JO], template="done_check")


def _open_held_by_jo(engine) -> list[str]:
    with session_scope(engine) as session:
        return sorted(c.occurrence for c in session.scalars(select(CheckIn).where(
            CheckIn.state.in_(("escalating", "alerted")))) if any(
            t.state == "asked" and t.assignee.name == "Jo" for t in c.tasks))


def test_a_done_that_may_be_owed_to_an_ask_stood_down_does_not_close_her_new_call(helped, ok, engine, ticker):
    """Long-run seed 10101340. Jo is asked at 09:05 to ring Vera; Margaret resolves it at 09:08
    (Jo stood down); at 09:12 Vera asks for a call again and Jo is asked; Jo's DONE at 09:14 may
    be the reply to the 09:05 ask. Jo is asked to confirm, and Vera's new call stays asked for
    until she does (before: only an earlier ask Jo had herself answered DONE counted, and this
    DONE closed the new call)."""
    with freeze_time(at(9, 8)):
        ok("resolve", "Oakfield", "Vera")
    receive(ok, VERA, "HELP", at(9, 12))
    ticker(at(9, 12))
    receive(ok, JO, "DONE", at(9, 14))
    [check] = sent(engine, to_phone=E164[JO], template="done_check")
    assert check.body == "Thanks Jo. Vera asked for a call again at 09:12. If you've spoken to them since then, reply DONE."
    assert _open_held_by_jo(engine) == ["help:2026-12-01T09:12:00+00:00"]
    receive(ok, JO, "DONE", at(9, 16))  # confirmed: now it closes
    assert vera_open(engine) == []


def test_a_done_that_may_be_owed_to_a_lapsed_ask_does_not_close_her_newer_call(oakfield, ok, engine, ticker):
    """Long-run seed 10101588. Vera asks for a call at 08:50, before her 09:00 check-in: Jo is
    asked (20 minutes). At 09:05 she asks again, on the 09:00 check-in now open: Jo is asked about
    that too. At 09:10 the first ask lapses and passes to Sam. Jo's DONE at 09:12 may answer
    either: she is asked to confirm, and the newer call stays with her (before: it closed it)."""
    add_checkin(ok)
    receive(ok, VERA, "HELP", at(8, 50))
    ticker(at(8, 50))
    ticker(at(9))
    receive(ok, VERA, "please call", at(9, 5))
    ticker(at(9, 5))
    ticker(at(9, 10))
    assert templates_to(engine, SAM) == ["help"]
    receive(ok, JO, "DONE", at(9, 12))
    assert [m.template for m in sent(engine, to_phone=E164[JO])][-1] == "done_check"
    assert _open_held_by_jo(engine) == ["2026-12-01"]


def test_a_cant_owed_to_a_lapsed_ask_does_not_drop_the_alert_not_yet_sent(oakfield, ok, engine, ticker):
    """Long-run seed 13000026. Margaret is Vera's only contact and the organiser. Her 09:30 ask
    runs out at 09:40 and the alert to her is queued, but the provider is failing, so it has not
    left when her CANT (about the 09:30 ask) arrives at 09:41. The CANT answers that ask, which
    has passed on already; the alert stands and goes when it can (before: the CANT closed the
    alert nobody had seen, and Vera's check-in was held by nobody)."""
    from phonetree.gateways.outbox import OutboxGateway
    from schedules import dispatcher
    from schedules.engine import step

    add_checkin(ok, contacts="Margaret")
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "set", "Oakfield", "Vera", "--escalation-wait", "10m")
    ticker(at(9))
    ticker(at(9, 30))
    assert templates_to(engine, MARGARET) == ["escalation"]
    step(engine, at(9, 40))  # the ask ran out: the alert is queued, not sent (the provider is down)
    receive(ok, MARGARET, "CANT", at(9, 41))
    with session_scope(engine) as session:
        assert [(t.kind, t.state) for t in session.scalars(select(Task).order_by(Task.id))] == [
            ("escalation", "expired"), ("alert", "asked")]
    dispatcher.dispatch(engine, OutboxGateway(), at(9, 45))
    assert [m.template for m in sent(engine, to_phone=E164[MARGARET]) if m.state == "sent"] == [
        "escalation", "alert", "cant_ok"]


def test_an_organisers_resolve_stands_a_help_down_in_its_own_words(helped, ok, engine):
    with freeze_time(at(9, 20)):
        ok("resolve", "Oakfield", "Vera")
    [told] = sent(engine, to_phone=E164[JO], template="stand_down_closed")
    assert "an organiser has dealt with Vera" in told.body


def test_a_stand_down_goes_once_to_each_person_and_names_who_reached_the_member(oakfield, ok, engine, ticker):
    """Margaret is both Vera's second contact and the organiser: after the chain runs out she
    holds two tasks (her lapsed ask and the alert). When Jo reaches Vera, Margaret is told
    once, that Jo spoke to Vera, not twice that Vera "has been in touch"."""
    add_checkin(ok, "Sam,Margaret")
    ticker(at(9))
    ticker(at(9, 30))  # window closes: Sam asked
    ticker(at(9, 50))  # Sam's wait runs out: Margaret asked
    ticker(at(10, 10))  # Margaret's wait runs out: organisers (Margaret) alerted
    with session_scope(engine) as session:
        held = sorted((t.assignee.name, t.kind, t.state) for t in session.scalars(select(Task)))
    assert held == [("Margaret", "alert", "asked"), ("Margaret", "escalation", "expired"),
                    ("Sam", "escalation", "expired")]
    receive(ok, MARGARET, "done", at(10, 30))
    assert [m.template for m in sent(engine, to_phone=E164[SAM]) if m.template.startswith("stand_down")] \
        == ["stand_down_reached"]
    assert not [m for m in sent(engine, to_phone=E164[MARGARET]) if m.template.startswith("stand_down")]
    [sam_told] = sent(engine, to_phone=E164[SAM], template="stand_down_reached")
    assert sam_told.body == "Hi Sam, Margaret has spoken to Vera now, so no need to ring. Thank you."


def test_a_late_ok_tells_each_holder_once_that_the_member_was_in_touch(oakfield, ok, engine, ticker):
    add_checkin(ok, "Sam,Margaret")
    for moment in (at(9), at(9, 30), at(9, 50), at(10, 10)):
        ticker(moment)
    receive(ok, VERA, "ok", at(10, 30))
    stand_downs = [(m.to_phone, m.template) for m in sent(engine) if m.template.startswith("stand_down")]
    assert sorted(stand_downs) == [(E164[SAM], "stand_down"), (E164[MARGARET], "stand_down")]


def test_a_text_gets_a_text_back_even_from_a_voice_member(oakfield, ok, engine, ticker):
    with session_scope(engine) as session:
        jo = session.scalar(select(Member).where(Member.name == "Jo"))
        jo.channel = "voice"
    add_checkin(ok)
    ticker(at(9))
    ticker(at(9, 30))  # Jo asked (by voice call)
    assert [m.channel for m in sent(engine, to_phone=E164[JO])] == ["voice"]
    receive(ok, JO, "cant", at(9, 35))
    [reply] = sent(engine, to_phone=E164[JO], template="cant_ok")
    assert reply.channel == "sms"


def test_a_keypress_for_help_is_answered_by_the_call_not_by_another_call(oakfield, ok, engine, ticker):
    with session_scope(engine) as session:
        session.scalar(select(Member).where(Member.name == "Vera")).channel = "voice"
    add_checkin(ok)
    ticker(at(9))
    with session_scope(engine) as session:
        [prompt] = session.scalars(select(Message).where(Message.kind == "checkin"))
        words = inbound.keypress(session, at(9, 1), prompt, "2", "CA" + "0" * 32)
    assert "asking someone to ring you" in words
    assert not sent(engine, template="help_ack") and not sent(engine, template="help_ack_nobody")
    assert templates_to(engine, JO) == ["help"]


def test_a_help_by_text_is_acknowledged_by_text(helped):
    [ack] = sent(helped, to_phone=E164[VERA], template="help_ack")
    assert ack.channel == "sms" and ack.body == "Thanks Vera, we've asked Jo to ring you."


def test_distress_with_nothing_open_still_reaches_a_person(oakfield, ok, engine):
    add_checkin(ok)
    receive(ok, VERA, "I've had a fall", at(14))
    [checkin] = vera_open(engine)
    assert checkin.state == "escalating" and checkin.help_requested_at == at(14)
    assert templates_to(engine, JO) == ["help"]


def test_every_pause_is_told_to_the_organisers(oakfield, ok, engine):
    add_checkin(ok)
    receive(ok, VERA, "pause 3", at(12))
    [notice] = sent(engine, to_phone=E164[MARGARET], template="paused_notice")
    assert notice.body == ("Hi Margaret, Vera replied PAUSE, so their check-ins stop until Thu 03 Dec. "
                           "If that seems wrong, please ring them on 07911 100001.")
    assert [m.template for m in sent(engine, to_phone=E164[VERA])] == ["pause_ok"]


def test_status_never_says_cant_for_an_ask_that_never_arrived(oakfield, ok, engine, ticker):
    """A contact whose number is dead did not say CANT: status shows them unreachable."""
    add_checkin(ok)
    with session_scope(engine) as session:
        session.scalar(select(Member).where(Member.name == "Jo")).phone_problem = None
    ticker(at(9))
    ticker(at(9, 30))  # Jo asked
    with session_scope(engine) as session:
        [ask] = session.scalars(select(Message).where(Message.template == "escalation"))
        delivery.message_status(session, at(9, 31), ask, "undelivered", "bad_number", "30005")
    [item] = open_on_status(engine, at(9, 32))
    assert [(a["name"], a["state"]) for a in item["asked"]] == [("Jo", "unreachable"), ("Sam", "asked")]


def test_status_shows_when_the_call_was_asked_for_not_when_the_check_in_was_due(helped, ok):
    receive(ok, VERA, "please hurry", at(9, 7))
    with freeze_time(at(9, 8)):
        text = ok("status", "Oakfield").stdout
    assert "Vera: escalating (asked for a call Tue 01 Dec 09:05)" in text
    assert "please hurry" in text  # a reply to read


def test_a_help_from_the_only_organiser_reaches_everyone_else_in_the_group(oakfield, ok, engine):
    """Margaret is Oakfield's only organiser and has no check-in: her HELP has no chain and no
    other organiser, so every other reachable member is asked (simulation finding F6)."""
    add_checkin(ok)
    receive(ok, MARGARET, "call an ambulance", at(10))
    asked = sorted(m.to_phone for m in sent(engine, template="help_alert"))
    assert asked == sorted([E164[VERA], E164[JO], E164[SAM]])
    [ack] = sent(engine, to_phone=E164[MARGARET], template="help_ack_nobody")
    assert ack.body == "Thanks Margaret, we've asked someone to ring you."


def test_a_help_nobody_can_be_asked_about_says_so_honestly(ok, engine):
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "add", "Solo", "--timezone", "Europe/London")
        ok("member", "add", "Solo", "Ivy", "--phone", JO, "--role", "organiser")
    receive(ok, JO, "help", at(10))
    [ack] = sent(engine, to_phone=E164[JO])
    assert ack.template == "help_ack_none" and "ring 999" in ack.body
    [item] = open_on_status(engine, at(10, 1))
    assert item["member"] == "Ivy" and item["asked_for_call"] is True  # it stays open on status


def test_forgetting_a_member_stands_down_whoever_was_asked_to_ring_them(helped, ok, engine):
    with freeze_time(at(9, 20)):
        ok("member", "forget", "Oakfield", "Vera", "--yes")
    [told] = sent(engine, to_phone=E164[JO], template="stand_down_closed")
    assert told.body == "Hi Jo, an organiser has dealt with [forgotten] now, so no need to ring. Thank you."
    with session_scope(engine) as session:
        assert session.scalars(select(Task).where(Task.state == "asked")).all() == []
