"""Replies: SMS text and keypresses to intents (INTERFACE.md "Replies", TWILIO.md "Opt-out")."""
from __future__ import annotations

import json

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from phonetree.db import session_scope
from phonetree.models import Inbound, Member
from phonetree.replies import Intent, Reply, parse_keypress, parse_reply
from tests.conftest import JO, SAM, VERA

OK, HELP, DONE, CANT = Intent.OK, Intent.HELP, Intent.DONE, Intent.CANT
PAUSE, BACK, STOP, START, UNKNOWN = (Intent.PAUSE, Intent.BACK, Intent.STOP, Intent.START,
                                     Intent.UNKNOWN)


def cases(intent: Intent, *texts: str) -> list[tuple[str, Intent]]:
    return [(text, intent) for text in texts]


# Every word in the INTERFACE table, as written there.
INTERFACE_TABLE = [
    *cases(OK, "OK", "okay", "yes", "fine", "1", "\U0001F44D"),
    *cases(HELP, "HELP", "CALL", "CALL ME", "NOT OK", "2"),
    *cases(DONE, "DONE", "CALLED", "SPOKEN"),
    *cases(CANT, "CANT", "CAN'T", "CANNOT", "BUSY"),
    *cases(BACK, "BACK"),
    *cases(STOP, "STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOPALL"),
    *cases(START, "START", "UNSTOP"),
]

OK_VARIANTS = [
    *cases(OK, "ok", "Ok", "OK.", "ok!!!", "  ok  ", "Okay!", "okey", "okie", "oki", "okk", "k",
           "kk", "o.k.", "okey dokey", "Okey-dokey", "yep", "yeah", "yup", "yea", "Aye", "Yes!",
           "fine", "Fine thanks", "all good", "All good here x", "good", "great thanks", "grand",
           "alright", "all right", "I'm well", "doing well thanks", "I'm ok thanks",
           "I’m fine thank you", "ok x", "yes all fine", "Fine thanks, how are you?",
           "can't complain", "Good morning, all fine", "1 thanks",
           "\U0001F44D\U0001F3FB", "\U0001F44D\U0001F3FD", "\U0001F44D\U0001F3FF",
           "\U0001F44D\uFE0F", "ok \U0001F44D", "\U0001F44C", "all fine no worries",
           "end of the day I'm fine", "Sorry I missed your call, all fine",
           "had a call from the GP earlier, fine"),
    # the whole message is the keyword only for STOP/START: YES is all well here
    ("YES", OK),
]

HELP_VARIANTS = [
    *cases(HELP, "help", "Help!", "help me please", "HELP ME", "call", "Call me", "call me pls",
           "call?", "ring me", "Ring me when you can", "Ring", "please call", "Please call me",
           "phone me", "can you call me", "could you ring me?", "I'd like a call",
           "need a call please", "give me a ring", "give us a bell", "call me back",
           "not ok", "Not OK!", "not okay", "I'm not ok", "im not ok", "I’m not okay",
           "not fine", "not good", "not so good", "not too good", "not feeling good",
           "really not ok", "isn't good", "no good", "don't feel ok", "not all right",
           "2", "2 please", "can't cope", "cannot cope", "not coping", "struggling today",
           "need to talk", "\U0001F198", "not sure, call me", "2.", "will you call me",
           "waiting for your call", "no please call me", "isnt ok", "\uff12"),
]

# A call request beats an OK word (and every other intent) in the same message.
MIXED_HELP_WINS = [
    *cases(HELP, "ok but please call me", "fine, can you ring me", "I'm fine. Call me tomorrow",
           "yes call me", "all good but ring me later", "ok 👍 call me", "done, now call me",
           "busy, call me later", "away 3 days, call me first", "back, please call",
           "don't call, not ok", "not ok, no need to rush"),
]

# Refusing a call is not asking for one.
NEGATED_CALLS = [
    *cases(OK, "no need to call, all fine", "I'm fine, don't call", "ok, no call needed",
           "fine thanks, no need for a call", "all good, do not call",
           "no help needed thanks, all good", "I'm OK, dont need a call"),
    *cases(UNKNOWN, "don't call", "Please don't call me", "no need to call", "no call needed",
           "don't need help", "I don't need a call", "call not needed"),
]

# "not ..." that isn't clearly "not ok" is ambiguous: a person reads it.
NEGATIONS = [
    *cases(UNKNOWN, "not great", "Not really", "not bad", "not well", "not feeling well",
           "not doing well", "ok not really", "I'm ok but not great", "fine but tired",
           "ok I guess but a bit low", "no", "No.", "nope", "no thanks", "not sure",
           "is it ok if I skip tomorrow?", "yes please", "ok \U0001F44E", "\U0001F44E",
           "fine but back in hospital", "nah im good",
           "good night", "not 100%"),
    # a call for someone else is not a request for the sender, nor a plain OK
    *cases(UNKNOWN, "I will call her", "I'll ring her now", "Ok, ring her please",
           "ok will call him later"),
]

DONE_VARIANTS = [
    *cases(DONE, "done", "Done!", "called", "Called her", "spoken", "spoke to her",
           "Spoke to him, he's fine", "rang", "rang her, all good", "I've called her",
           "phoned", "talked to her", "all sorted", "call done", "Done thanks \U0001F44D"),
    # a call that did not reach the person is not done
    *cases(UNKNOWN, "rang, no answer", "called but went to voicemail",
           "tried calling, no answer", "not done yet", "haven't called yet",
           "spoke to her, not great", "rang, left a message"),
]

CANT_VARIANTS = [
    *cases(CANT, "cant", "can't", "can’t", "CAN‘T", "Cannot", "can not", "busy",
           "Busy today sorry", "unable", "unable to today", "not able to", "not available",
           "sorry I can't today", "can't get through", "no can do", "ok but busy",
           "can't call her today"),
    *cases(UNKNOWN, "not busy", "can't wait"),
]

PAUSE_CASES = [
    ("PAUSE 3", Reply(PAUSE, 3)),
    ("AWAY 3", Reply(PAUSE, 3)),
    ("away 3 days", Reply(PAUSE, 3)),
    ("Away for 3 days", Reply(PAUSE, 3)),
    ("pause for a week", Reply(PAUSE, 7)),
    ("pause a week please", Reply(PAUSE, 7)),
    ("PAUSE", Reply(PAUSE, None)),
    ("pause.", Reply(PAUSE, None)),
    ("away", Reply(PAUSE, None)),
    ("pause two weeks", Reply(PAUSE, 14)),
    ("pause a fortnight", Reply(PAUSE, 14)),
    ("pause ten", Reply(PAUSE, 10)),
    ("away fourteen days", Reply(PAUSE, 14)),
    ("pause for a couple of days", Reply(PAUSE, 2)),
    ("I'm away for 5 days", Reply(PAUSE, 5)),
    ("going away 4 nights", Reply(PAUSE, 4)),
    ("I'll be away 2 weeks", Reply(PAUSE, 14)),
    ("please pause my check ins for the next 3 days", Reply(PAUSE, 3)),
    ("pause3", Reply(PAUSE, 3)),
    ("away 3days", Reply(PAUSE, 3)),
    ("Pause 3!", Reply(PAUSE, 3)),
    ("pause 100", Reply(PAUSE, 90)),
    ("pause 6 months", Reply(PAUSE, 90)),
    ("pause 99999999999999999999", Reply(PAUSE, 90)),
    ("away till monday", Reply(PAUSE, None)),
    ("ok, away 3 days", Reply(PAUSE, 3)),
    # a length we can't honour is for a person to read
    ("pause 0", Reply(UNKNOWN)),
    ("pause zero", Reply(UNKNOWN)),
    ("pause -3", Reply(UNKNOWN)),
    ("pause 1.5 days", Reply(UNKNOWN)),
    ("pause 3 hours", Reply(UNKNOWN)),
    ("away a year", Reply(UNKNOWN)),
    ("away 3 days, not feeling great", Reply(UNKNOWN)),
    ("away a week in hospital", Reply(UNKNOWN)),
    # not a pause at all
    ("don't pause", Reply(UNKNOWN)),
    ("not away", Reply(UNKNOWN)),
    ("my son is away, all fine", Reply(OK)),
]

BACK_CASES = [
    *cases(BACK, "back", "Back!", "I'm back", "im back", "I’m back home now", "we're back",
           "back now, all good", "resume", "unpause"),
    *cases(UNKNOWN, "back pain", "not back till friday", "back in hospital"),
]

# Twilio opts out only on the bare keyword; "STOP PLEASE" is not an opt-out.
OPT_OUT = [
    *cases(STOP, "stop", "Stop.", " STOP! ", "stopall", "Unsubscribe", "optout", "opt-out",
           "revoke", "cancel", "end", "quit", "STOP\n"),
    *cases(START, "start", "Start.", "UNSTOP"),
    *cases(UNKNOWN, "stop please", "STOP PLEASE", "stop texting me", "please stop",
           "stop stop", "cancel please", "start again", "stop \U0001F44D", "quit it"),
]

EDGES = [
    *cases(UNKNOWN, "", "   ", "\n", "?", "...", "\U0001F60A", "3", "0", "9", "12", "22",
           "1 2", "2 days", "info", "thanks", "hello", "what?", "who is this"),
]

ALL_TEXT_CASES = (INTERFACE_TABLE + OK_VARIANTS + HELP_VARIANTS + MIXED_HELP_WINS + NEGATED_CALLS
                  + NEGATIONS + DONE_VARIANTS + CANT_VARIANTS + BACK_CASES + OPT_OUT + EDGES)


@pytest.mark.parametrize(("text", "intent"), ALL_TEXT_CASES)
def test_parse_reply_intent(text: str, intent: Intent) -> None:
    reply = parse_reply(text)
    assert reply.intent == intent, f"{text!r} -> {reply.intent}, expected {intent}"
    assert reply.days is None  # days come only with PAUSE (PAUSE_CASES below)


@pytest.mark.parametrize(("text", "expected"), PAUSE_CASES)
def test_pause(text: str, expected: Reply) -> None:
    assert parse_reply(text) == expected


@pytest.mark.parametrize("text", ["ok", "NOT OK", "stop", "pause 3", "can't", "👍🏾", ""])
def test_case_and_surrounding_punctuation_do_not_matter(text: str) -> None:
    expected = parse_reply(text)
    for variant in (text.upper(), text.lower(), f"  {text}  ", f"{text}!", f"{text}.", f'"{text}"'):
        assert parse_reply(variant) == expected, variant


@pytest.mark.parametrize(("digits", "expected"), [
    ("1", Reply(OK)),
    ("2", Reply(HELP)),
    (" 1 ", Reply(OK)),
    ("3", Reply(UNKNOWN)),
    ("0", Reply(UNKNOWN)),
    ("9", Reply(UNKNOWN)),
    ("*", Reply(UNKNOWN)),
    ("#", Reply(UNKNOWN)),
    ("12", Reply(UNKNOWN)),
    ("21", Reply(UNKNOWN)),
    ("", Reply(UNKNOWN)),
    (None, Reply(UNKNOWN)),
])
def test_parse_keypress(digits: str | None, expected: Reply) -> None:
    assert parse_keypress(digits) == expected


def test_reply_is_frozen_and_the_intents_are_the_documented_ones() -> None:
    reply = parse_reply("pause 3")
    with pytest.raises(AttributeError):
        reply.days = 5  # type: ignore[misc]
    assert reply == Reply(PAUSE, 3)
    assert {i.value for i in Intent} == {"ok", "help", "done", "cant", "pause", "back", "stop",
                                         "start", "unknown"}


def test_an_intent_is_reported_and_stored_as_its_word(oakfield, ok, engine) -> None:
    # `receive --json` reports the intent as a plain word and the inbound row stores it so:
    # `status` finds the replies a person must read by the stored word "unknown".
    for name, phone, text, word in (("Vera", VERA, "OK", "ok"), ("Jo", JO, "what?", "unknown"),
                                    ("Sam", SAM, "PAUSE 3", "pause")):
        with freeze_time("2026-12-01 09:05:00"):
            assert json.loads(ok("receive", "--from", phone, text, "--json").stdout)["intent"] == word
        with session_scope(engine) as session:
            stored = session.scalar(select(Inbound.intent).join(Member, Member.id == Inbound.member_id)
                                    .where(Member.name == name))
        assert stored == word
    with freeze_time("2026-12-01 09:06:00"):
        status = json.loads(ok("status", "Oakfield", "--json").stdout)
    assert [(r["member"], r["text"]) for r in status["replies_to_read"]] == [("Jo", "what?")]


def test_table_is_big_enough() -> None:
    assert len(ALL_TEXT_CASES) + len(PAUSE_CASES) >= 80
