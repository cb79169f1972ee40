"""Turn a reply from a peer or carer (an SMS text or a keypress) into an intent.

This decides whether a vulnerable person gets a call, so it prefers safe mistakes:

- A call request beats everything except a whole-message STOP/START: "ok but call me" is HELP,
  and "not ok", "can't cope" are HELP too. A needless call costs a little; a missed one costs a lot.
- The replies that stand people down (OK, DONE, PAUSE, BACK) need a clean message: any negation,
  hedge or sign of trouble ("fine but tired", "rang, no answer", "back in hospital") makes the
  reply UNKNOWN instead. UNKNOWN is always safe: it counts as contact and a person reads it.
- STOP/START follow Twilio's opt-out rules: the keyword must be the whole message, so
  "stop please" or "end of the day I'm fine" are not opt-outs (Twilio doesn't treat them as such).

How it works: the text is normalised (case, apostrophes, emoji, punctuation) into clauses of
words, a few multi-word phrases are rewritten to single words, and the words are then matched
against the keyword tables below in priority order (see `parse_reply`).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache


class Intent(StrEnum):
    OK = "ok"
    HELP = "help"
    DONE = "done"
    CANT = "cant"
    PAUSE = "pause"
    BACK = "back"
    STOP = "stop"
    START = "start"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Reply:
    intent: Intent
    days: int | None = None  # for PAUSE/AWAY: number of days if given, else None


# ---------------------------------------------------------------------------------------------
# Keyword tables (all lower case, apostrophes removed: "can't" is "cant", "I'm" is "im").

# Twilio acts on these only when they are the whole message; so do we.
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "optout", "revoke", "cancel", "end", "quit"})
START_WORDS = frozenset({"start", "unstop"})

# Words that ask for a call anywhere in a message (unless negated: "no help needed").
HELP_WORDS = frozenset({"help", "helpme", "sos", "emergency", "crisis", "struggling"})
# "call"/"ring" ask for a call unless they describe some other call ("missed a call", "will ring
# her"); "phone" is too often a noun ("my phone was off"), so only "phone me" counts.
CALL_WORDS = frozenset({"call", "ring", "phone"})
CALL_OBJECTS_FOR_SENDER = frozenset({"me", "us"})
THIRD_PARTY = frozenset({"her", "him", "them"})  # "I'll call her": a carer's note, not a request
FUTURE = frozenset({"will", "shall", "gonna"})  # "I will ring later"
CALL_IS_PAST_BEFORE = frozenset({"missed", "had", "got", "after", "on", "was", "last", "earlier"})
CALL_IS_PAST_AFTER = frozenset({"done", "made", "complete", "completed", "went", "was", "ended"})
# A negator within this many words before a request cancels it ("don't really need a call").
NEGATION_WINDOW = 4
ALWAYS_NEGATE = frozenset({"dont", "neednt", "never", "didnt", "doesnt", "wont", "nobody", "noone"})
# "no"/"not" only negate right before the word ("no call") or as "no need ..." ("no need to call");
# otherwise "not sure, call me" or "no please call" would lose a real request.
SOMETIMES_NEGATE = frozenset({"no", "not"})
NEED_WORDS = frozenset({"need", "needed", "necessary", "needs"})
NEGATE_AFTER = frozenset({"not", "isnt", "unnecessary"})  # "call not needed"
NOT_NEEDED = frozenset({"needed", "necessary", "required", "need", "needd"})

# "not ok", "not so good", "isn't fine": wants a call. Only these core words: "not great",
# "not well", "not really" are ambiguous and end up UNKNOWN via the worry words instead.
NOT_WORDS = frozenset({"not", "isnt", "arent", "aint", "wasnt"})
SOFTENERS = frozenset({"so", "too", "very", "really", "that", "feeling", "at", "all", "quite",
                       "doing", "exactly", "totally", "entirely", "particularly"})
CORE_OK_PATTERN = re.compile(r"o+k+|k+|o+k+a+y+|o+k+e+y*|o+k+i+e*|f+i+n+e+|g+o+o+d+|gud|gd|alright")
# Everything that means "all is well" (misspellings included); THUMBS_UP is 👍/👌 in any skin tone.
THUMBS_UP = "thumbsup"
OK_PATTERN = re.compile(
    CORE_OK_PATTERN.pattern
    + rf"|y+e+s+|y+e+p+|y+u+p+|y+e+a+h*|a+y+e+|great|grand|allright|allwell|{THUMBS_UP}")

DONE_WORDS = frozenset({"done", "called", "rang", "rung", "spoke", "spoken", "talked", "phoned",
                        "sorted"})
CANT_WORDS = frozenset({"cant", "cannot", "carnt", "busy", "unable", "unavailable"})
NOT_CANT = frozenset({"not", "isnt", "arent", "wasnt", "never"})  # "not busy" is not CANT

PAUSE_WORDS = frozenset({"pause", "away"})
BACK_WORDS = frozenset({"back", "resume", "unpause"})
# PAUSE/BACK must come first or after only these, so "my son is away" or "call me back" is not one.
LEAD_IN = frozenset({"i", "im", "am", "we", "were", "are", "will", "be", "going", "now", "just",
                     "please", "pls", "plz", "can", "could", "you", "hi", "hello", "hey", "ok",
                     "okay", "yes"})
# Words between PAUSE and its length: "pause my check ins for the next 3 days".
PAUSE_FILLER = frozenset({"for", "a", "an", "the", "next", "another", "about", "around", "roughly",
                          "please", "pls", "plz", "me", "my", "it", "them", "us", "checkins",
                          "checkin", "check", "ins", "texts", "text", "messages", "from", "now",
                          "today", "x", "xx", "xxx", "thanks", "thank", "you", "thx"})
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "twenty": 20, "thirty": 30, "couple": 2,
}
UNIT_DAYS: dict[str, int] = {"day": 1, "days": 1, "night": 1, "nights": 1, "week": 7, "weeks": 7,
                             "wk": 7, "wks": 7, "fortnight": 14, "fortnights": 14, "month": 30,
                             "months": 30}
# A length we can't honour as days: "pause 3 hours", "away a year" -> UNKNOWN, a person reads it.
UNREADABLE_UNITS = frozenset({"hour", "hours", "hr", "hrs", "h", "min", "mins", "minute",
                              "minutes", "year", "years"})
MAX_PAUSE_DAYS = 90

# Any of these left in a message (after the rewrites below and the negations a call request used
# up) stops it being read as OK/DONE/PAUSE/BACK: the reply becomes UNKNOWN and a person reads it.
WORRY_WORDS = frozenset({
    # negations and hedges: "not great", "ok but", "nope", "is it ok if ..."
    "not", "no", "nope", "nah", "isnt", "arent", "aint", "wasnt", "dont", "doesnt", "didnt",
    "never", "havent", "hasnt", "couldnt", "wont", "but", "though", "although", "however",
    "except", "if", "unless", "maybe",
    # signs of trouble
    "bad", "worse", "ill", "unwell", "sick", "poorly", "pain", "hurt", "hurting", "sore", "sad",
    "low", "lonely", "scared", "afraid", "worried", "anxious", "depressed", "tired", "exhausted",
    "rough", "awful", "terrible", "wrong", "problem", "problems", "hospital", "ambulance", "fell",
    "fallen", "thumbsdown",
    # a carer's call that did not reach the person: "rang, went to voicemail"
    "voicemail", "answerphone", "engaged", "tried", "message",
    # opt-out words inside a longer message: not an opt-out, but not a plain OK either
    "stop", "stopall", "unsubscribe", "optout", "unstop",
})

# Phrases rewritten before matching (regexes over space-separated words, applied in order).
REWRITES: list[tuple[str, str]] = [
    # courtesies and reassurance, not requests or worries
    (r"thank(s|you| you)? for (the |your |all (the |your )?)?(help|call)", "thanks"),
    (r"(no|not to|dont|nothing to) worr(y|ies)( about)?", ""),
    (r"no (problems?|issues|complaints)", ""),
    (r"good (morning|afternoon|evening|night)", ""),  # a greeting, not "I'm good"
    (r"(cant|cannot) complain", "fine"),  # British for fine, and not CANT
    (r"(cant|cannot) wait", ""),  # looking forward, not CANT
    (r"(yes|yeah|yep) (please|pls|plz)", ""),  # yes to what? could be "yes please call"
    # spellings of OK
    (r"all right", "alright"),
    (r"(all|im|doing|very) well", "allwell"),  # not a core OK word: "not doing well" is UNKNOWN
    (r"okey ?dokey", "ok"),
    # can't do it
    (r"can not|no can do", "cannot"),
    (r"not able", "unable"),
    (r"not (available|free)", "busy"),
    # wants a call
    (r"(cant|cannot) cope|not coping", "struggling"),
    (r"give (me|us) a (call|ring|bell|buzz)|(bell|buzz) (me|us)", "call me"),
    (r"(need|want|like) to (talk|chat)|need (someone|somebody)", "help"),
    (r"no good", "not good"),
    (r"dont feel", "not feeling"),
]
_REWRITES = [(re.compile(rf"\b(?:{pattern})\b"), repl) for pattern, repl in REWRITES]

# Danger or distress, in whatever words it comes: each of these asks for a call (HELP) wherever
# it arrives, with or without a check-in open, and is never read as "all well" or as a contact's
# CANT ("I can't breathe" is not "I can't ring"). Regexes over a clause's normalised words
# (lower case, apostrophes gone: "can't" is "cant", "I've" is "ive"). A negator among the few
# words before a phrase cancels it ("no chest pain", "I haven't had a fall", "no need for an
# ambulance"); the reply is then read as usual, and its worry words make it UNKNOWN, so a
# person still reads it. A needless call costs a little; a missed one costs a lot.
DISTRESS: tuple[str, ...] = (
    # falls
    r"(had|have|taken|took) (a )?(fall|tumble)", r"(i|ive|mum|dad|he|she|hes|shes) (fell|fallen)",
    r"fallen (over|down)", r"fell (over|down)", r"on the floor", r"(cant|cannot) get up",
    # body
    r"chest (pain|pains|hurts|(feels )?tight|tightness)", r"(cant|cannot|struggling to|hard to) breathe?",
    r"(short|shortness) of breath", r"breathing (problems?|difficulty|difficulties)",
    r"heart attack", r"(a |having a )?stroke", r"collapsed?", r"unconscious", r"passed out",
    r"bleeding", r"seizure",
    r"overdosed?", r"od", r"taken too (many|much)",
    # danger
    r"not (feeling |feel )?safe", r"no longer safe", r"unsafe", r"in danger",
    r"(hit|hurt|threatened|attacked) me", r"scared for my life",
    r"ambulance", r"999", r"police",
    # self-harm
    r"(kill|hurt|harm) (my ?self|me)", r"suicid(e|al)", r"end (it|it all|my life)",
    r"(cant|cannot) (go on|take (it|any ?more)|do this any ?more)", r"want to die",
)
# Any of these among the words just before a distress phrase negates it.
DISTRESS_NEGATORS = frozenset({"no", "not", "never", "without", "dont", "didnt", "doesnt", "havent",
                               "hasnt", "hadnt", "wasnt", "isnt", "arent", "wont", "neednt"})
DISTRESS_NEGATION_WINDOW = 4
_DISTRESS = [re.compile(rf"(?<!\S)(?:{pattern})(?!\S)") for pattern in DISTRESS]

# Normalising raw text.
_THUMBS_UP_RE = re.compile("[\U0001F44D\U0001F44C][\U0001F3FB-\U0001F3FF]?\uFE0F?")
_THUMBS_DOWN_RE = re.compile("\U0001F44E[\U0001F3FB-\U0001F3FF]?\uFE0F?")
_SOS_RE = re.compile("\U0001F198")
_APOSTROPHES_RE = re.compile("['\u2018\u2019\u02bc`\u00b4]")
_WILL_RE = re.compile(r"(\w)['\u2018\u2019\u02bc`\u00b4]ll\b")  # "I'll" -> "I will", not "ill"
_CLAUSE_BREAK_RE = re.compile(r"[.,!?;:\n\r()]+|\s[-\u2013\u2014]\s")


def parse_keypress(digits: str | None) -> Reply:
    """A key pressed during a voice check-in: 1 is all well, 2 wants a call, anything else UNKNOWN."""
    key = (digits or "").strip()
    if key == "1":
        return Reply(Intent.OK)
    if key == "2":
        return Reply(Intent.HELP)
    return Reply(Intent.UNKNOWN)


# Most replies are a handful of short texts ("OK", "ok thanks", "Done"): parsing is pure, so
# those are remembered (the webhook's commonest request then skips the regexes). Only short
# texts, so a stranger's long messages can't fill the memory.
_REMEMBER_UP_TO = 40


def parse_reply(text: str) -> Reply:
    """The intent of an inbound SMS. Checked in order of safety, first match wins."""
    if len(text) <= _REMEMBER_UP_TO:
        return _parse_short(text)
    return _parse(text)


@lru_cache(maxsize=2048)
def _parse_short(text: str) -> Reply:
    return _parse(text)


def _parse(text: str) -> Reply:
    clauses = _clauses(text)
    words = [word for clause in clauses for word in clause]
    if not words:
        return Reply(Intent.UNKNOWN)

    # 1. Opt-out/in: only the whole message, exactly as Twilio decides it.
    if len(words) == 1 and words[0] in STOP_WORDS:
        return Reply(Intent.STOP)
    if len(words) == 1 and words[0] in START_WORDS:
        return Reply(Intent.START)

    # 2. A call request wins over everything else in the message.
    wants_call, used_negators = _wants_call(clauses)
    if wants_call or _keypad_digit(words) == "2" or in_distress(clauses):
        return Reply(Intent.HELP)

    worried = _has_worry(clauses, used_negators)

    # 3. Away / back: stand-down intents, so a worry in the message makes them UNKNOWN.
    pause = _pause(words)
    if pause is not None:
        return Reply(Intent.UNKNOWN) if worried else pause
    if _keyword_at_start(words, BACK_WORDS) is not None:
        return Reply(Intent.UNKNOWN if worried else Intent.BACK)

    # 4. Can't do it: passing a task on is always safe, so no worry check.
    if _cant(words):
        return Reply(Intent.CANT)

    # 5. Done, then all well: both stand people down, so both need a worry-free message.
    if any(word in DONE_WORDS for word in words):
        return Reply(Intent.UNKNOWN if worried else Intent.DONE)
    if _keypad_digit(words) == "1" or any(OK_PATTERN.fullmatch(word) for word in words):
        return Reply(Intent.UNKNOWN if worried else Intent.OK)

    return Reply(Intent.UNKNOWN)


# ---------------------------------------------------------------------------------------------
# Normalising


def _clauses(text: str) -> list[list[str]]:
    """Lower-case words, split into clauses at punctuation, with REWRITES applied.

    Clauses keep a negation from reaching across a comma: "not sure, call me" still asks for a call.
    """
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = _THUMBS_UP_RE.sub(f" {THUMBS_UP} ", text)
    text = _THUMBS_DOWN_RE.sub(" thumbsdown ", text)
    text = _SOS_RE.sub(" sos ", text)
    text = re.sub(r"\bo\.\s?k\b\.?", "ok", text)  # "o.k."
    text = _WILL_RE.sub(r"\1 will", text)
    text = _APOSTROPHES_RE.sub("", text)  # "can't" -> "cant", "I'm" -> "im"
    text = re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", "", text)  # "opt-out" -> "optout"
    text = re.sub(r"(?<![\w])[-\u2212\u2013](?=\d)", " minus ", text)  # "pause -3"
    text = re.sub(r"(?<=\d)[.,](?=\d)", "_", text)  # "1.5" stays one (non-integer) word
    text = re.sub(r"\b(pause|away)(?=\d)", r"\1 ", text)  # "pause3"
    text = re.sub(r"(?<=\d)(days?|nights?|weeks?|wks?)\b", r" \1", text)  # "3days"

    clauses = []
    for chunk in _CLAUSE_BREAK_RE.split(text):
        phrase = " ".join(re.findall(r"\w+", chunk))
        for pattern, repl in _REWRITES:
            phrase = pattern.sub(repl, phrase)
        if words := phrase.split():
            clauses.append(words)
    return clauses


def in_distress(clauses: list[list[str]]) -> bool:
    """Whether any clause holds a DISTRESS phrase that no negator just before it cancels."""
    for words in clauses:
        phrase = " ".join(words)
        for pattern in _DISTRESS:
            for found in pattern.finditer(phrase):
                before = phrase[:found.start()].split()[-DISTRESS_NEGATION_WINDOW:]
                if not DISTRESS_NEGATORS.intersection(before):
                    return True
    return False


def _keypad_digit(words: list[str]) -> str | None:
    """A leading "1" or "2" typed like a keypress ("2", "2 please"), but not "2 days" or "1 2"."""
    if words[0] not in ("1", "2"):
        return None
    if len(words) > 1 and (words[1].isdecimal() or words[1] in NUMBER_WORDS
                           or words[1] in UNIT_DAYS or words[1] in UNREADABLE_UNITS):
        return None
    return words[0]


# ---------------------------------------------------------------------------------------------
# Wants a call


def _wants_call(clauses: list[list[str]]) -> tuple[bool, set[tuple[int, int]]]:
    """Whether any clause asks for a call, and the negators used up by refused calls.

    The used negators ("no" in "no need to call") are not worries: "no need to call, all fine" is OK.
    """
    used: set[tuple[int, int]] = set()
    for c, words in enumerate(clauses):
        if _says_not_ok(words):
            return True, used
        for i in range(len(words)):
            if not _is_request(words, i):
                continue
            negator = _negator(words, i)
            if negator is None:
                return True, used
            used.add((c, negator))
    return False, used


def _is_request(words: list[str], i: int) -> bool:
    """Whether words[i] asks for a call, ignoring negation (see `_negator`)."""
    word = words[i]
    after = words[i + 1] if i + 1 < len(words) else ""
    if word in HELP_WORDS:
        return True
    if word not in CALL_WORDS:
        return False
    if after in CALL_OBJECTS_FOR_SENDER:  # "call me", "ring us", "phone me"
        return True
    if word == "phone" or after in THIRD_PARTY or after in CALL_IS_PAST_AFTER:
        return False
    if i > 0 and words[i - 1] in FUTURE:
        return False
    return not CALL_IS_PAST_BEFORE.intersection(words[max(0, i - 2):i])


def _negator(words: list[str], i: int) -> int | None:
    """The index of the word that negates the request at words[i], if any."""
    # "call not needed" refuses the call; "HELP not great" does not: a "not" after the request
    # only negates it when what follows says the call isn't needed.
    if i + 1 < len(words) and words[i + 1] in NEGATE_AFTER:
        if words[i + 1] == "unnecessary" or (i + 2 < len(words) and words[i + 2] in NOT_NEEDED):
            return i + 1
    for j in range(i - 1, max(-1, i - 1 - NEGATION_WINDOW), -1):
        if words[j] in ALWAYS_NEGATE:
            return j
        if words[j] in SOMETIMES_NEGATE and (j == i - 1 or words[j + 1] in NEED_WORDS):
            return j
    return None


def _says_not_ok(words: list[str]) -> bool:
    """ "not ok", "im not okay", "not so good", "isnt fine" (softeners allowed in between)."""
    for i, word in enumerate(words):
        if word not in NOT_WORDS:
            continue
        for following in words[i + 1:i + 5]:
            if CORE_OK_PATTERN.fullmatch(following):
                return True
            if following not in SOFTENERS:
                break
    return False


def _has_worry(clauses: list[list[str]], used: set[tuple[int, int]]) -> bool:
    """A worry word not used up by a refused call, or a call for someone else ("ok, ring her")."""
    for c, words in enumerate(clauses):
        for i, word in enumerate(words):
            if word in WORRY_WORDS and (c, i) not in used:
                return True
            if word in CALL_WORDS and i + 1 < len(words) and words[i + 1] in THIRD_PARTY:
                return True
    return False


# ---------------------------------------------------------------------------------------------
# Other intents


def _cant(words: list[str]) -> bool:
    return any(word in CANT_WORDS and (i == 0 or words[i - 1] not in NOT_CANT)
               for i, word in enumerate(words))


def _keyword_at_start(words: list[str], keywords: frozenset[str]) -> int | None:
    """The index of the first keyword if only LEAD_IN words come before it ("im back")."""
    for i, word in enumerate(words):
        if word in keywords:
            return i
        if word not in LEAD_IN:
            return None
    return None


def _pause(words: list[str]) -> Reply | None:
    """PAUSE with its days, UNKNOWN for a length we can't honour, or None if not a pause."""
    i = _keyword_at_start(words, PAUSE_WORDS)
    if i is None:
        return None
    readable, days = _pause_days(words[i + 1:])
    return Reply(Intent.PAUSE, days) if readable else Reply(Intent.UNKNOWN)


def _pause_days(rest: list[str]) -> tuple[bool, int | None]:
    """(readable, days) from the words after PAUSE/AWAY.

    "3", "3 days", "for a week" (7), "two weeks", "a fortnight" (14) give days, capped at 90.
    Nothing, or words that are not a length ("till monday"), give (True, None): no days given.
    Zero, negative, fractional, or a length in hours/years give (False, None): UNKNOWN.
    """
    words = list(rest)
    while words and words[0] in PAUSE_FILLER:
        words.pop(0)
    if not words:
        return True, None
    first, after = words[0], words[1:]
    if first == "minus" or (any(ch.isdigit() for ch in first) and not first.isdecimal()):
        return False, None
    if first in UNIT_DAYS:  # "pause for a week": the "a" was filler
        return True, UNIT_DAYS[first]
    if first in UNREADABLE_UNITS:
        return False, None
    if first.isdecimal():
        digits = first.lstrip("0") or "0"  # "0000003" is 3 days, not a 7-digit number
        count = int(digits) if len(digits) <= 6 else MAX_PAUSE_DAYS  # int() refuses huge strings
    elif first in NUMBER_WORDS:
        count = NUMBER_WORDS[first]
    else:
        return True, None
    if after and after[0] == "of":  # "a couple of days"
        after = after[1:]
    unit = after[0] if after else "days"
    if unit in UNREADABLE_UNITS:
        return False, None
    days = count * UNIT_DAYS.get(unit, 1)
    if days <= 0:
        return False, None
    return True, min(days, MAX_PAUSE_DAYS)
