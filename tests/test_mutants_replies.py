"""Replies at the edges the rest of the suite left open: each case kills a mutant of
phonetree/replies.py that survived tests/test_replies.py (bench/mutation.py --module replies).
Every expectation is the module's own documented rule (its docstrings and keyword-table
comments, INTERFACE.md "Replies"); the rule each case holds is named beside it."""
from __future__ import annotations

import pytest

from phonetree.replies import Intent, Reply, parse_reply

OK, HELP, UNKNOWN, PAUSE, CANT = Intent.OK, Intent.HELP, Intent.UNKNOWN, Intent.PAUSE, Intent.CANT


@pytest.mark.parametrize(("text", "intent"), [
    # "phone" is too often a noun: only "phone me" asks for a call.
    ("my phone died, im ok", OK),
    ("sorry phone died", UNKNOWN),
    # A call word at the very start is a request; nothing at the end of the clause is "before" it.
    ("call please if you will", HELP),
    # "I will ring later" (FUTURE right before the call word) is not a request, wherever it stands.
    ("will ring later", UNKNOWN),
    ("I will call later", UNKNOWN),
    ("I'll ring later", UNKNOWN),
    # Only the two words before a call word can make it some other, past call ("missed a call");
    # a past word further back does not cancel a request (a missed call costs a lot).
    ("on edge please call", HELP),
])
def test_which_call_words_ask_for_a_call(text: str, intent: Intent) -> None:
    assert parse_reply(text).intent == intent, text


@pytest.mark.parametrize(("text", "intent"), [
    # "call not needed"/"call unnecessary" refuse the call; the refusal is not a worry.
    ("call unnecessary, all fine", OK),
    ("call unnecessary today, im fine", OK),
    ("call not needed, all fine", OK),
    # "HELP not great" is not refused: a "not" after the request negates it only when what
    # follows says the call isn't needed (the comment in `_negator`).
    ("help not great", HELP),
    ("help not great today", HELP),
    ("help not", HELP),
    # A negator more than NEGATION_WINDOW (4) words before the request does not cancel it.
    ("I never felt this bad please help", HELP),
    # Nothing after a request at the start of a clause negates it from "before".
    ("help I have nobody", HELP),
])
def test_what_negates_a_request(text: str, intent: Intent) -> None:
    assert parse_reply(text).intent == intent, text


def test_ok_spelled_with_stops_is_ok_in_not_ok_too() -> None:
    # Matching ignores punctuation (INTERFACE.md): "o.k." is "ok", so "not o.k." is "not ok".
    assert parse_reply("not o.k.").intent == HELP
    assert parse_reply("im not o. k.").intent == HELP


def test_an_emoji_is_one_word_within_the_negation_window() -> None:
    # 👎 becomes one word: "don't 👎👎 call" still refuses the call (the negator is 3 words
    # back), and the thumbs-down is a worry, so a person reads it.
    assert parse_reply("don't \U0001F44E\U0001F44E call").intent == UNKNOWN


def test_not_ok_is_found_after_another_not() -> None:
    # "not sure" is no "not ok", but it must not hide the "not ok" later in the same clause.
    assert parse_reply("not sure why but im not ok").intent == HELP


def test_a_call_for_someone_else_is_a_worry_even_as_the_last_words() -> None:
    # `_has_worry`: "ok, ring her" is a call for someone else, so not a plain OK.
    assert parse_reply("ok, ring her").intent == UNKNOWN
    assert parse_reply("fine, call him").intent == UNKNOWN


@pytest.mark.parametrize(("text", "expected"), [
    ("away for a couple of weeks", Reply(PAUSE, 14)),
    ("pause a couple of weeks please", Reply(PAUSE, 14)),
    # a word after the number that is no unit means days
    ("pause 3 please", Reply(PAUSE, 3)),
    ("away 5 thanks", Reply(PAUSE, 5)),
    # one day is a length like any other; only zero or less is unreadable
    ("pause 1", Reply(PAUSE, 1)),
    ("away 1 day", Reply(PAUSE, 1)),
    # a hostile, enormous number is capped at 90 days, not an exception (int() refuses
    # strings of more than 4300 digits)
    ("pause " + "9" * 5000, Reply(PAUSE, 90)),
])
def test_pause_lengths(text: str, expected: Reply) -> None:
    assert parse_reply(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    # Leading zeros change no number: "0000003" is 3 days, not the 90-day cap, and seven
    # zeros are zero, which `_pause_days` documents as unreadable (UNKNOWN: a person reads it).
    # Found by the mutants of the 6-digit guard in `_pause_days` (`<= 6` -> `<= 7` survived).
    ("pause 0000003", Reply(PAUSE, 3)),
    ("away 0000000000014 days", Reply(PAUSE, 14)),
    ("pause 0000000", Reply(UNKNOWN)),
    ("pause 000000000000000000000", Reply(UNKNOWN)),
])
def test_leading_zeros_do_not_lengthen_a_pause(text: str, expected: Reply) -> None:
    assert parse_reply(text) == expected
