"""Escalation chains (phonetree/escalation.py) told as whole stories through the CLI and the
engine's tick: each test kills mutants that survived the rest of the suite (bench/mutation.py
--module escalation). What is held: README "How it works" (each named contact in turn,
--escalation-wait each, CANT passes on at once, then the organisers, re-alerted a few hours
apart a few times), the texts each person gets, and the trail of recorded transitions
(ARCHITECTURE: state changes are rows) that says afterwards who was asked, when and why."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from click.testing import Result
from freezegun import freeze_time
from sqlalchemy import Engine, select

from phonetree.db import session_scope
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import CheckIn, Event, Group, Member, Task
from schedules.engine import tick
from tests.conftest import JO, MARGARET, PAT, SAM, outbox_json
from tests.test_delivery import wired  # noqa: F401 - the fixture: the stand-in, our webhooks, the gateway
from tests.twilio_standin import TwilioStandIn

NINE = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)  # 09:00 in London in December
Ticker = Callable[[datetime], object]


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _ids(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        ids = {m.name: m.id for m in session.scalars(select(Member))}
        ids["group"] = session.scalars(select(Group.id)).one()
        return ids


def _trail(engine: Engine, since: datetime) -> list[tuple[Any, ...]]:
    """Every transition recorded from `since`: (minutes after 09:00, kind, group, member,
    check-in, detail), the group, member and check-in as names."""
    with session_scope(engine) as session:
        names = {m.id: m.name for m in session.scalars(select(Member))}
        groups = {g.id: g.name for g in session.scalars(select(Group))}
        occurrences = {c.id: c.occurrence for c in session.scalars(select(CheckIn))}
        return [(int((e.at - NINE).total_seconds() // 60), e.kind, groups.get(e.group_id),  # type: ignore[arg-type]
                 names.get(e.member_id), occurrences.get(e.checkin_id), e.detail)  # type: ignore[arg-type]
                for e in session.scalars(select(Event).where(Event.at >= since).order_by(Event.id))]


def _tasks(engine: Engine, closed: bool = False) -> list[tuple[Any, ...]]:
    """(kind, holder, state) of every task, in the order they were made; with `closed`, also
    the minute after 09:00 it was closed (None while open)."""
    with session_scope(engine) as session:
        return [(t.kind, t.assignee.name, t.state)
                + ((int((t.closed_at - NINE).total_seconds() // 60) if t.closed_at else None,) if closed else ())
                for t in session.scalars(select(Task).order_by(Task.id))]


def _texts(ok: Callable[..., Result], since: datetime) -> list[tuple[str, str, str]]:
    """(to, kind, body) of every message recorded from `since`, oldest first."""
    return [(m["to"], m["kind"], m["body"]) for m in outbox_json(ok)
            if datetime.fromisoformat(m["created_at"]) >= since]


def _vera_chain(ok: Callable[..., Result], contacts: str) -> None:
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Pat", "--phone", PAT)
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", contacts,
           "--escalation-wait", "20m", "--reminder", "off")


def test_the_whole_chain_is_on_record_and_each_person_told_once(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Jo is asked at the window's end and says CANT; Pat is away (paused) and is skipped; Sam
    # lets the 20 minutes pass; the organiser is alerted, reminded twice three hours apart and
    # then left to `status`; her DONE resolves it and Sam, who let it lapse, is stood down.
    _vera_chain(ok, "Jo,Pat,Sam")
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "pause", "Oakfield", "Pat", "--until", "2026-12-03")
    ticker(NINE)
    ticker(NINE + timedelta(minutes=30))
    with freeze_time(_at(NINE + timedelta(minutes=35))):
        ok("receive", "--from", JO, "cant")
    for minutes in (54, 55, 234, 235, 415, 595, 775):  # 3 h = 180 min apart
        ticker(NINE + timedelta(minutes=minutes))
    with freeze_time(_at(NINE + timedelta(minutes=800))):
        ok("receive", "--from", MARGARET, "done")
    day = "2026-12-01"
    assert _trail(engine, NINE + timedelta(minutes=30)) == [
        (30, "no_reply", "Oakfield", "Vera", day, None),
        (30, "escalated", "Oakfield", "Vera", day, "asked Jo (no reply to the check-in)"),
        (35, "contact_cant", "Oakfield", "Vera", day, "Jo"),
        (35, "contact_skipped", "Oakfield", "Vera", day, "Pat can't be reached today"),
        (35, "escalated", "Oakfield", "Vera", day, "asked Sam (Jo couldn't ring)"),
        (55, "alerted", "Oakfield", "Vera", day, "Sam didn't reply in time; organisers alerted: Margaret"),
        (235, "realerted", "Oakfield", "Vera", day, "Margaret, reminder 1"),
        (415, "realerted", "Oakfield", "Vera", day, "Margaret, reminder 2"),
        (800, "resolved", "Oakfield", "Vera", day, "by Margaret"),
    ]
    # How each ask ended: Jo's own CANT, the lapsed ones stood down, Margaret's last one done;
    # every one closed, and Jo's and Margaret's answers at the moment they gave them.
    ended = _tasks(engine, closed=True)
    assert [row[:3] for row in ended] == [
        ("escalation", "Jo", "cant"), ("escalation", "Sam", "stood_down"), ("alert", "Margaret", "stood_down"),
        ("alert", "Margaret", "stood_down"), ("alert", "Margaret", "done")]
    assert None not in [row[3] for row in ended] and (ended[0][3], ended[4][3]) == (35, 800)
    # In the order written: Sam's ask is queued before Jo's acknowledgement, in the same step.
    ask = "hasn't replied today. Please ring them on 07911 100001, then reply DONE, or CANT if you can't."
    alert = ("Hi Margaret, Vera hasn't replied today and no one has reached them. Please ring them on "
             "07911 100001, then reply DONE.")
    assert _texts(ok, NINE + timedelta(minutes=30)) == [
        ("+447911100002", "escalation", "Hi Jo, Vera " + ask),
        ("+447911100003", "escalation", "Hi Sam, Vera " + ask),  # Pat skipped: away
        ("+447911100002", "confirmation", "No problem, Jo, we'll ask someone else."),
        ("+447911100004", "alert", alert),  # then reminded twice, 3 h apart, and no more
        ("+447911100004", "alert", alert),
        ("+447911100004", "alert", alert),
        ("+447911100003", "info", "Hi Sam, Margaret has spoken to Vera now, so no need to ring. Thank you."),
        ("+447911100004", "confirmation", "Thank you, Margaret."),  # Margaret, who reached her, not stood down
    ]


def _hill(ok: Callable[..., Result]) -> None:
    """Vera, whose only organisers can't take an alert about her: Ron shares her landline (he
    would be telling her about herself) and Oona has opted out; Jo and Sam are her contacts."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "add", "Hill", "--timezone", "Europe/London")
        ok("member", "add", "Hill", "Vera", "--phone", "07911 100001")
        ok("member", "add", "Hill", "Ron", "--phone", "07911 100001", "--shared", "--role", "organiser")
        ok("member", "add", "Hill", "Oona", "--phone", "07911 100006", "--role", "organiser")
        ok("member", "add", "Hill", "Jo", "--phone", JO)
        ok("member", "add", "Hill", "Sam", "--phone", SAM)
        ok("receive", "--from", "07911 100006", "STOP")
        ok("checkin", "add", "Hill", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
           "--escalation-wait", "20m", "--reminder", "off")


def test_no_organiser_who_can_take_it_is_said_plainly(ok: Callable[..., Result], engine: Engine,
                                                      ticker: Ticker) -> None:
    # A missed check-in at the end of its chain with no organiser able to take it stays open on
    # `status`, and the record says nobody was alerted and what to do, not that Ron or Oona were.
    _hill(ok)
    for minutes in (0, 30, 50):
        ticker(NINE + timedelta(minutes=minutes))
    assert _trail(engine, NINE + timedelta(minutes=50)) == [
        (50, "alerted", "Hill", "Vera", "2026-12-01",
         "Jo didn't reply in time; organisers alerted: NONE - add an organiser to this group")]
    assert [(to, kind) for to, kind, _ in _texts(ok, NINE + timedelta(minutes=50))] == []
    assert _tasks(engine) == [("escalation", "Jo", "expired")]


def test_a_call_asked_for_with_no_organiser_reaches_everyone_else(ok: Callable[..., Result], engine: Engine,
                                                                  ticker: Ticker) -> None:
    # Someone asking for help must reach a person: with no organiser who can take it, everyone
    # else in the group who can be reached is alerted (not Vera, not Ron on her own phone, not
    # Oona who opted out), in words that say a call was asked for.
    _hill(ok)
    ticker(NINE)
    with freeze_time(_at(NINE + timedelta(minutes=5))):
        ok("receive", "--from", "07911 100001", "HELP")
    ticker(NINE + timedelta(minutes=25))
    assert _trail(engine, NINE + timedelta(minutes=25)) == [
        (25, "alerted", "Hill", "Vera", "2026-12-01",
         "Jo didn't reply in time; organisers alerted: Jo, Sam")]
    texts = _texts(ok, NINE + timedelta(minutes=25))
    assert [(to, kind) for to, kind, _ in texts] == [("+447911100002", "alert"), ("+447911100003", "alert")]
    assert texts[1][2].startswith("Hi Sam, Vera asked for a call and no one has rung yet.")
    assert _tasks(engine) == [("escalation", "Jo", "expired"), ("alert", "Jo", "asked"), ("alert", "Sam", "asked")]


@pytest.mark.parametrize(("channel", "said"), [("sms", "unreachable"), ("voice", "no answer")])
def test_an_ask_that_never_reached_jo_passes_on_and_is_not_called_cant(
        oakfield: str, ok: Callable[..., Result], engine: Engine,
        wired: tuple[TwilioStandIn, TwilioGateway], channel: str, said: str) -> None:
    # Jo's number turns out not to be in use (SMS), or Jo's phone rings out (voice): not Jo's
    # answer, so never recorded as CANT (issue 11: status must not say someone said CANT who
    # didn't), and Sam is asked at once, not after Jo's 20 minutes.
    standin, gateway = wired
    _vera_chain(ok, "Jo,Sam")
    if channel == "voice":
        with freeze_time("2026-11-30 12:00:00"):
            ok("member", "set", "Oakfield", "Jo", "--channel", channel)
    tick(engine, gateway, NINE)
    tick(engine, gateway, NINE + timedelta(minutes=30))
    with freeze_time(_at(NINE + timedelta(minutes=32))):
        if channel == "sms":
            [ask] = [m for m in standin.messages if m.params["To"] == "+447911100002"]
            assert standin.send_status(ask.sid, "undelivered", error_code=30005)[0] == 200
        else:
            [call] = standin.calls
            assert standin.send_call_status(call.sid, "no-answer")[0] == 200
    assert [row[1:] for row in _trail(engine, NINE + timedelta(minutes=32))
            if row[1] in ("contact_cant", "contact_unreachable", "escalated", "undeliverable")] == [
        # The failed text is on record against the check-in it asked about (the ask's checkin_id).
        *([("undeliverable", "Oakfield", "Jo", "2026-12-01", "escalation: number not in use")]
          if channel == "sms" else []),
        ("contact_unreachable", "Oakfield", "Vera", "2026-12-01", f"Jo ({said})"),
        ("escalated", "Oakfield", "Vera", "2026-12-01", "asked Sam (Jo couldn't be reached)"),
    ]
    assert _tasks(engine) == [("escalation", "Jo", said.replace(" ", "_")), ("escalation", "Sam", "asked")]


def test_a_call_asked_for_goes_to_the_organisers_when_there_are_some(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Only with no organiser able to take it does a HELP reach everyone: Oakfield has Margaret,
    # so when Jo lets the call lapse it is Margaret who is alerted, not Sam or Pat too.
    _vera_chain(ok, "Jo")
    ticker(NINE)
    with freeze_time(_at(NINE + timedelta(minutes=5))):
        ok("receive", "--from", "07911 100001", "HELP")
    ticker(NINE + timedelta(minutes=25))
    assert [row[1:] for row in _trail(engine, NINE + timedelta(minutes=25))] == [
        ("alerted", "Oakfield", "Vera", "2026-12-01", "Jo didn't reply in time; organisers alerted: Margaret")]
    assert _texts(ok, NINE + timedelta(minutes=25)) == [
        ("+447911100004", "alert", "Hi Margaret, Vera asked for a call and no one has rung yet. "
                                   "Please ring them on 07911 100001, then reply DONE.")]


def test_a_check_in_missed_before_midnight_is_named_by_its_day(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # A window that runs past midnight: Vera's 23:45 check-in on Monday ends at 00:15 on
    # Tuesday, and Jo is asked then. "hasn't replied today" would be about the wrong day
    # (escalation.on_day): the text names the day the check-in was for, as the member's group
    # reads the calendar (an ask on the day itself says "today": the whole-chain test above).
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "set", "Oakfield", "--quiet", "off")
        ok("checkin", "add", "Oakfield", "Vera", "--at", "23:45", "--window", "30m", "--escalate-to", "Jo",
           "--escalation-wait", "20m", "--reminder", "off")
    monday = datetime(2026, 11, 30, 23, 45, tzinfo=timezone.utc)  # GMT: the same wall clock
    ticker(monday)
    ticker(monday + timedelta(minutes=30))
    [(to, kind, body)] = [t for t in _texts(ok, monday + timedelta(minutes=30)) if t[1] == "escalation"]
    assert (to, body) == ("+447911100002", "Hi Jo, Vera hasn't replied on Mon 30 Nov. Please ring them on "
                                           "07911 100001, then reply DONE, or CANT if you can't.")


def test_each_check_in_asks_the_contacts_of_its_own_plan(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Vera has two check-ins a day, each with its own contacts: Jo for the morning one, Sam for
    # the evening one. A missed evening check-in asks Sam, not the morning's Jo
    # (escalation.chain_for: the check-in's own plan, not the member's first).
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "set", "Oakfield", "--quiet", "off")
        for at, contact in (("09:00", "Jo"), ("18:00", "Sam")):
            ok("checkin", "add", "Oakfield", "Vera", "--at", at, "--window", "30m", "--escalate-to", contact,
               "--escalation-wait", "20m", "--reminder", "off")
    ticker(NINE)
    with freeze_time(_at(NINE + timedelta(minutes=5))):
        ok("receive", "--from", "07911 100001", "OK")
    evening = NINE + timedelta(hours=9)
    ticker(evening)
    ticker(evening + timedelta(minutes=30))
    assert [row[1:] for row in _trail(engine, evening) if row[1] == "escalated"] == [
        ("escalated", "Oakfield", "Vera", "2026-12-01", "asked Sam (no reply to the check-in)")]
    assert [(to, kind) for to, kind, _ in _texts(ok, evening + timedelta(minutes=30))] == [
        ("+447911100003", "escalation")]


def test_a_call_asked_for_with_no_check_in_running_later_reaches_her_new_first_contact(
        ok: Callable[..., Result], engine: Engine) -> None:
    # Brook has no organiser. Vera, whose check-in was stopped, asks for a call: with no contacts
    # of hers to ask (not Sam, the stopped check-in's, nor Sam as Jo's contact: that check-in is
    # not hers), everyone else is alerted, and both Jo and Sam say they can't. Then Vera is given
    # a new check-in with Jo as her first contact, and her next words go to Jo: with no organiser
    # and nobody holding her call, the first named contact reads them, taken from the plan she
    # has now although her call was asked for before it existed (escalation.chain_for's look-up
    # of the member's own active plan).
    with freeze_time("2026-12-01 10:00:00"):
        ok("group", "add", "Brook", "--timezone", "Europe/London")
        ok("member", "add", "Brook", "Vera", "--phone", "07911 100001")
        ok("member", "add", "Brook", "Jo", "--phone", JO)
        ok("member", "add", "Brook", "Sam", "--phone", SAM)
        ok("checkin", "add", "Brook", "Jo", "--at", "09:00", "--escalate-to", "Sam")
        ok("checkin", "add", "Brook", "Vera", "--at", "08:00", "--escalate-to", "Sam")
        ok("checkin", "remove", "Brook", "Vera")
        ok("receive", "--from", "07911 100001", "HELP")
        ok("receive", "--from", JO, "cant")
        ok("receive", "--from", SAM, "cant")
        ok("checkin", "add", "Brook", "Vera", "--at", "09:00", "--escalate-to", "Jo")
        ok("receive", "--from", "07911 100001", "the door is locked")
    help_call = "help:2026-12-01T10:00:00+00:00"  # the check-in made for the call
    assert [row[1:] for row in _trail(engine, NINE) if row[1] in ("alerted", "reply_forwarded")] == [
        ("alerted", "Brook", "Vera", help_call, "asked for a call (replied HELP); organisers alerted: Jo, Sam"),
        ("reply_forwarded", "Brook", "Vera", help_call, "to Jo"),
    ]
    # Her acknowledgement names nobody: the chain ran straight out ("organisers"), to several people.
    assert [body for to, kind, body in _texts(ok, NINE) if to == "+447911100001"] == [
        "Thanks Vera, we've asked someone to ring you."]
    forwarded = [(to, body) for to, kind, body in _texts(ok, NINE) if kind == "info"]
    assert [to for to, _ in forwarded] == ["+447911100002"] and "the door is locked" in forwarded[0][1]


def test_a_contact_asked_about_two_members_says_which_one_they_reached(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Ticker) -> None:
    # Jo is the contact of both Vera and Pat, and both miss their 09:00 check-ins: Jo holds two
    # asks. "DONE Vera" closes the one about Vera (inbound reads whom each ask is about, the
    # task's subject, which escalation.ask records), and Pat's stays with Jo.
    with freeze_time("2026-11-30 12:00:00"):
        ok("member", "add", "Oakfield", "Pat", "--phone", PAT)
        for member in ("Vera", "Pat"):
            ok("checkin", "add", "Oakfield", member, "--at", "09:00", "--window", "30m", "--escalate-to", "Jo",
               "--escalation-wait", "20m", "--reminder", "off")
    ticker(NINE)
    ticker(NINE + timedelta(minutes=30))
    with freeze_time(_at(NINE + timedelta(minutes=35))):
        ok("receive", "--from", JO, "DONE Vera")
    assert [row[1:] for row in _trail(engine, NINE + timedelta(minutes=35))] == [
        ("resolved", "Oakfield", "Vera", "2026-12-01", "by Jo")]
    with session_scope(engine) as session:
        asks = {t.subject.name: t.state for t in session.scalars(select(Task)) if t.subject is not None}
    assert asks == {"Vera": "done", "Pat": "asked"}
