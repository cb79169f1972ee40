"""Danger or distress asks for a call wherever it arrives, and never stands anyone down.

The table under test is `phonetree.replies.DISTRESS`; these cases pin what it must catch, what a
negation cancels, and that every phrase in the table is reachable (a phrase no case reaches is
a phrase nobody checked).
"""
from __future__ import annotations

import re

import pytest

from phonetree.replies import DISTRESS, Intent, parse_reply

HELP, UNKNOWN, OK = Intent.HELP, Intent.UNKNOWN, Intent.OK

# Each of these is a person in trouble: HELP, whatever else the message says.
DISTRESSED = [
    "I've had a fall", "Ive had a fall", "had a fall this morning", "Mum's had a fall",
    "good but I fell yesterday", "I fell over in the garden", "she's fallen", "fallen down the stairs",
    "I'm on the floor", "can't get up", "chest pain", "Chest pains again", "my chest hurts",
    "chest feels tight", "I can't breathe", "cannot breathe", "struggling to breathe",
    "short of breath", "breathing problems", "I think it's a heart attack", "having a stroke",
    "he collapsed", "she's unconscious", "I passed out", "bleeding a lot", "had a seizure",
    "I've overdosed", "OD", "taken too many tablets", "not safe", "I'm not safe here",
    "I don't feel safe", "no longer safe at home", "unsafe", "I'm in danger", "he hit me",
    "scared for my life", "call an ambulance", "get the police", "ring 999",
    "I want to kill myself", "going to hurt myself", "feeling suicidal", "I want to end it all",
    "I can't go on", "can't take any more", "I can't do this anymore", "I want to die",
    # distress beats an OK, a STOP-ish word, a pause or a task word in the same message
    "ok but I've had a fall", "fine, chest pain though", "away 3 days, I had a fall",
    "done, but I can't breathe", "busy - I'm not safe",
]

# A negation just before the phrase cancels it; the rest of the message decides, and a person
# still reads anything with a worry in it.
NEGATED = [
    ("no chest pain today, all good", UNKNOWN),
    ("I haven't had a fall, fine", UNKNOWN),
    ("fine, not had a fall", UNKNOWN),
    ("no need for an ambulance", UNKNOWN),
    ("never had a stroke", UNKNOWN),
    ("I'm safe now", UNKNOWN),
    ("feeling safe", UNKNOWN),
]

# Look-alikes that are not distress, so they keep their ordinary meaning.
NOT_DISTRESS = [
    ("good", OK), ("ok", OK), ("Mood is good", OK), ("all fine thanks", OK),
    ("cant", Intent.CANT), ("busy", Intent.CANT), ("pause 3", Intent.PAUSE), ("done", Intent.DONE),
    ("back", Intent.BACK), ("fallow field", UNKNOWN), ("the police station is shut", HELP),
]


@pytest.mark.parametrize("text", DISTRESSED)
def test_distress_asks_for_a_call(text: str) -> None:
    assert parse_reply(text).intent is HELP


@pytest.mark.parametrize("text, intent", NEGATED)
def test_a_negation_before_the_phrase_cancels_it(text: str, intent: Intent) -> None:
    assert parse_reply(text).intent is intent


@pytest.mark.parametrize("text, intent", NOT_DISTRESS)
def test_look_alikes_keep_their_meaning(text: str, intent: Intent) -> None:
    assert parse_reply(text).intent is intent


def test_every_phrase_in_the_table_is_reached_by_a_case() -> None:
    """Each regex in DISTRESS matches at least one DISTRESSED case, so none is unchecked."""
    from phonetree.replies import _clauses

    phrases = [" ".join(w for clause in _clauses(text) for w in clause) for text in DISTRESSED]
    unreached = [p for p in DISTRESS
                 if not any(re.search(rf"(?<!\S)(?:{p})(?!\S)", phrase) for phrase in phrases)]
    assert unreached == []


@pytest.mark.parametrize("text", ["I've had a fall", "chest pain", "not safe", "call an ambulance",
                                  "I can't breathe"])
def test_the_issue_phrases_are_help_not_contact(text: str) -> None:
    # the phrases named in issue 11, verbatim
    assert parse_reply(text).intent is HELP
