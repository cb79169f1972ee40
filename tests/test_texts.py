"""Every text is discreet, plain GSM-7, and one segment with the longest names we allow."""
from __future__ import annotations

import re

import pytest

from phonetree import texts
from phonetree.sms_encoding import segment_info

LONGEST = {
    "name": "N" * texts.MAX_NAME, "contact": "C" * texts.MAX_NAME, "member": "M" * texts.MAX_NAME,
    "by": "B" * texts.MAX_NAME, "on_day": "on Wed 30 Sep", "last_day": "Thu 01 Oct",
    "phone": "+44 7911 100001", "time": "09:00", "day": "Wed 30 Sep", "reason": "blocked by the network",
    "when": "this fortnight", "count": "50",
    # A branch's people: the default tree puts three under each person.
    "people": ", ".join(["P" * texts.MAX_NAME] * 2) + " and " + "P" * texts.MAX_NAME,
}
FREE_TEXT = texts.FREE_TEXT
# Words that would tell someone glancing at the phone what the group is about.
REVEALING = re.compile(r"drug|addict|recover|support group|carer|grandparent|kinship|substance|alcohol|"
                       r"overdose|rehab|crisis|mental|safeguard", re.I)


@pytest.mark.parametrize("key", sorted(set(texts.SMS) - FREE_TEXT))
def test_every_sms_fits_one_gsm7_segment_at_the_longest_names(key):
    values = {name: LONGEST[name] for name in texts.placeholders(texts.SMS[key])}
    info = segment_info(texts.render(key, "sms", **values))
    assert info.encoding == "GSM-7", info.bad_chars
    assert info.segments == 1, (key, info.units)


@pytest.mark.parametrize("table", [texts.SMS, texts.VOICE], ids=["sms", "voice"])
def test_no_text_reveals_what_the_group_is_about(table):
    for key, template in table.items():
        assert not REVEALING.search(template), key


@pytest.mark.parametrize("key", sorted(texts.VOICE))
def test_spoken_versions_ask_for_the_keys_we_listen_for(key):
    template = texts.VOICE[key]
    if key in texts.GATHER:
        assert "Press 1" in template
    assert segment_info(template).encoding == "GSM-7"  # plain words for the speech engine too


# Written for reading, not hearing: a spoken message never asks for a reply or mentions texts.
FOR_READING = re.compile(r"\breply\b|\btexts?\b|\bSTOP\b|\bSTART\b|\bPAUSE\b|\bBACK\b|\bDONE\b|\bCANT\b|[():]")


@pytest.mark.parametrize("key", sorted(set(texts.SMS) - texts.FREE_TEXT - {"thanks"}))
def test_every_message_a_voice_member_may_get_is_written_for_speech(key):
    assert key in texts.VOICE, key
    assert not FOR_READING.search(texts.VOICE[key]), texts.VOICE[key]


def test_voice_falls_back_to_the_sms_wording_for_notices():
    assert texts.render("thanks", "voice", name="Jo") == "Thank you, Jo."


def test_a_value_that_starts_a_sentence_is_capitalised_and_nothing_else_changes():
    from phonetree.texts import fill, render

    spoken = render("call_prompt", "voice", name="Vera", member="Sam", phone="07911 100003", when="this week")
    assert spoken.startswith("Hello Vera. This week please ring Sam on 07911 100003.")
    texted = render("call_prompt", "sms", name="Vera", member="Sam", phone="07911 100003", when="this week")
    assert texted.startswith("Hi Vera, this week please ring Sam")
    # A member's own words keep their case; only a value's first letter at a sentence start changes.
    assert render("forward", "sms", member="Vera", phone="07911 100001", text="ok. all fine") == \
        "Reply from Vera (07911 100001): ok. all fine"
    assert fill("{a} and {b}! {c}", a="one", b="two", c="three") == "One and two! Three"
