"""Every text and spoken line phonetree sends.

Discretion first: nothing here says what a group is for, so a phone screen seen by someone else
reveals nothing. Each SMS template fits one GSM-7 segment with the longest names we allow
(tests check this): plain ASCII apostrophes and hyphens only, because one curly quote or
non-breaking space turns the whole text into UCS-2 and doubles or triples its cost.
"""
from __future__ import annotations

from string import Formatter

# Templates whose length depends on what people wrote (news, a forwarded reply), not on us.
FREE_TEXT = {"forward", "news", "cascade_outstanding", "missed_summary"}

# The longest name a member may have; the one-segment guarantee is tested at this length.
MAX_NAME = 20

SMS: dict[str, str] = {
    "checkin": "Hi {name}, just checking in. Reply OK if all is well, or CALL if you'd like a call.",
    "reminder": "Hi {name}, checking in again. Reply OK if all is well, or CALL if you'd like a call.",
    "escalation": "Hi {contact}, {member} hasn't replied {on_day}. Please ring them on {phone}, "
    "then reply DONE, or CANT if you can't.",
    "help": "Hi {contact}, {member} has asked for a call. Please ring them on {phone} now, "
    "then reply DONE, or CANT if you can't.",
    "alert": "Hi {contact}, {member} hasn't replied {on_day} and no one has reached them. "
    "Please ring them on {phone}, then reply DONE.",
    "help_alert": "Hi {contact}, {member} asked for a call and no one has rung yet. "
    "Please ring them on {phone}, then reply DONE.",
    "stand_down": "Hi {contact}, {member} has been in touch now, so no need to ring. Thank you.",
    "stand_down_ok": "Hi {contact}, {member} says they're OK now, so no need to ring. Thank you.",
    "stand_down_reached": "Hi {contact}, {by} has spoken to {member} now, so no need to ring. Thank you.",
    "stand_down_closed": "Hi {contact}, an organiser has dealt with {member} now, so no need to ring. "
    "Thank you.",
    "help_ack": "Thanks {name}, we've asked {contact} to ring you.",
    "help_ack_nobody": "Thanks {name}, we've asked someone to ring you.",
    "help_ack_none": "Sorry {name}, there is no one we can ask to ring you just now. If it's an "
    "emergency, ring 999.",
    "forward": "Reply from {member} ({phone}): {text}",
    "missed": "Hi {contact}, {member}'s {time} check-in on {day} wasn't sent as the service "
    "was down. Please check on them.",
    "missed_summary": "Hi {contact}, the service was down, so {count} check-ins between {day} and "
    "{last_day} weren't sent, for {people}. Please check on them.",
    "undeliverable": "Hi {contact}, we couldn't reach {member} on {phone} ({reason}). "
    "Please ring them and check the number.",
    "opted_out": "Hi {contact}, {member} replied STOP, so no more texts go to {phone}. "
    "Please keep in touch another way.",
    "opted_in": "Hi {contact}, {member} replied START, so texts to {phone} start again.",
    "switched_to_voice": "Hi {contact}, {phone} ({member}) can't get texts, so we'll "
    "ring it instead. Please check the number.",
    "call_prompt": "Hi {name}, {when} please ring {member} on {phone}. Reply DONE once "
    "you've spoken, or CANT if you can't.",
    "call_unmade": "Hi {name}, {member}'s call {when} hasn't been made. Please ring them on "
    "{phone}, then reply DONE.",
    "call_cancelled": "Hi {name}, that call rota has ended, so no need to ring {member} {when}. "
    "Thank you.",
    "news": "Hi {name}, news for the group: {text}",
    "pass_on": "Hi {name}, please ring {people} with the group's news, then reply DONE (or CANT).",
    "cascade_done": "Hi {name}, the news has reached all {count} people.",
    "cascade_outstanding": "Hi {name}, the news hasn't reached {people} yet. Please ring them.",
    "pause_ok": "Thanks {name}, check-ins are paused until {day}. Reply BACK to start again.",
    "paused_notice": "Hi {contact}, {member} replied PAUSE, so their check-ins stop until {day}. "
    "If that seems wrong, please ring them on {phone}.",
    "back_ok": "Welcome back {name}, check-ins start again.",
    "thanks": "Thank you, {name}.",
    "done_check": "Thanks {name}. {member} asked for a call again at {time}. "
    "If you've spoken to them since then, reply DONE.",
    "cant_ok": "No problem, {name}, we'll ask someone else.",
}

# Spoken by voice call (en-GB). Keypress 1 / 2 is asked for where `gather` is true.
VOICE: dict[str, str] = {
    "checkin": "Hello {name}. This is your daily call. Press 1 if you are OK. "
    "Press 2 if you would like someone to ring you.",
    "reminder": "Hello {name}. We are calling again. Press 1 if you are OK. "
    "Press 2 if you would like someone to ring you.",
    "escalation": "Hello {contact}. {member} has not replied {on_day}. Please ring them on {phone}. "
    "Press 1 if you will ring them now. Press 2 if you can't.",
    "help": "Hello {contact}. {member} has asked for a call. Please ring them on {phone} now. "
    "Press 1 if you will ring them. Press 2 if you can't.",
    "alert": "Hello {contact}. {member} has not replied {on_day}, and no one has reached them. "
    "Please ring them on {phone}. Press 1 if you will ring them now.",
    "help_alert": "Hello {contact}. {member} asked for a call and no one has rung yet. "
    "Please ring them on {phone}. Press 1 if you will ring them now.",
    "stand_down": "Hello {contact}. {member} has been in touch now, so there is no need to ring. "
    "Thank you.",
    "stand_down_ok": "Hello {contact}. {member} says they are OK now, so there is no need to ring. "
    "Thank you.",
    "stand_down_reached": "Hello {contact}. {by} has spoken to {member} now, so there is no need to "
    "ring. Thank you.",
    "stand_down_closed": "Hello {contact}. An organiser has dealt with {member} now, so there is no "
    "need to ring. Thank you.",
    "call_cancelled": "Hello {name}. That call rota has ended, so there is no need to ring {member} "
    "{when}. Thank you. Goodbye.",
    "news": "Hello {name}. Here is news for the group. {text}. Again: {text}. Goodbye.",
    "help_ack": "Hello {name}. We have asked {contact} to ring you. Goodbye.",
    "help_ack_nobody": "Hello {name}. We have asked someone to ring you. Goodbye.",
    "help_ack_none": "Hello {name}. Sorry, there is no one we can ask to ring you just now. If it is "
    "an emergency, ring 999. Goodbye.",
    "missed": "Hello {contact}. {member}'s {time} call on {day} was not made, because the service "
    "was down. Please check on them. Goodbye.",
    "missed_summary": "Hello {contact}. The service was down, so {count} calls between {day} and "
    "{last_day} were not made, for {people}. Please check on them. Goodbye.",
    "undeliverable": "Hello {contact}. We could not reach {member} on {phone}, because of {reason}. "
    "Please ring them and check the number. Goodbye.",
    "opted_out": "Hello {contact}. {member} has asked us to stop sending messages to {phone}. "
    "Please keep in touch another way. Goodbye.",
    "opted_in": "Hello {contact}. {member} has asked us to start sending messages to {phone} again. "
    "Goodbye.",
    "switched_to_voice": "Hello {contact}. The number {phone}, for {member}, can only take calls, "
    "so we will ring it from now on. Please check the number. Goodbye.",
    "pause_ok": "Thank you {name}. Your calls are paused until {day}. Goodbye.",
    "paused_notice": "Hello {contact}. {member} has asked to pause their calls until {day}. If that "
    "seems wrong, please ring them on {phone}. Goodbye.",
    "back_ok": "Welcome back {name}. Your calls start again. Goodbye.",
    "cant_ok": "No problem {name}. We will ask someone else. Goodbye.",
    "done_check": "Hello {name}. {member} asked for a call again at {time}. If you have not spoken to "
    "them since then, please ring them now. Goodbye.",
    "cascade_done": "Hello {name}. The news has reached all {count} people. Goodbye.",
    "cascade_outstanding": "Hello {name}. The news has not reached {people} yet. Please ring them. "
    "Goodbye.",
    "pass_on": "Hello {name}. Please ring {people} to pass on the group's news. "
    "Press 1 if you will ring them. Press 2 if you can't.",
    "call_prompt": "Hello {name}. {when} please ring {member} on {phone}. "
    "Press 1 if you will ring them. Press 2 if you can't.",
    "call_unmade": "Hello {name}. {member}'s call {when} hasn't been made. Please ring them on {phone}. "
    "Press 1 if you will ring them.",
}

# Which voice templates ask for a keypress.
GATHER = {"checkin", "reminder", "escalation", "help", "alert", "help_alert", "call_prompt", "call_unmade", "pass_on"}


DEFAULT_LANGUAGE = "en"


def override_key(template: str, channel: str, language: str = DEFAULT_LANGUAGE) -> str:
    """Where a group keeps its own wording: "sms:checkin", or "cy:sms:checkin" in Welsh."""
    spoken = channel == "voice" and template in VOICE
    key = ("voice:" if spoken else "sms:") + template
    return key if language == DEFAULT_LANGUAGE else f"{language}:{key}"


def wording(template: str, channel: str = "sms", own: dict[str, str] | None = None,
            language: str = DEFAULT_LANGUAGE) -> str:
    """The words for a template. Voice falls back to the SMS wording where no spoken version
    exists (information notices). `own` is a group's overrides; a member's language uses the
    group's wording in that language where the organiser has written one, else English."""
    spoken = channel == "voice" and template in VOICE
    default = (VOICE if spoken else SMS)[template]
    if not own:
        return default
    if language != DEFAULT_LANGUAGE:
        translated = own.get(override_key(template, channel, language))
        if translated:
            return translated
    return own.get(override_key(template, channel), default)


def render(template: str, channel: str = "sms", own: dict[str, str] | None = None,
           language: str = DEFAULT_LANGUAGE, **values: str) -> str:
    return fit(fill(wording(template, channel, own, language), **values), channel)


# Twilio refuses an SMS body over 1,600 characters (error 21617), counted in UTF-16 code units
# (an emoji is two). A forward of a member's long text, or long news, is cut to fit.
MAX_SMS_UNITS = 1600
# Inline TwiML is refused over 4,000 characters. The words are XML-escaped inside <Say> (an & is
# five characters), said once more after "Sorry, we didn't hear a key." on a retry, and wrapped
# in a <Gather> carrying the callback URL: 3,000 escaped characters of words leave room for that.
MAX_VOICE_ESCAPED = 3000
# Plain ASCII dots, not the ellipsis character: "…" is outside GSM-7 and would turn a text that
# was one or a few GSM-7 segments into UCS-2, doubling its cost.
MORE = "... more on status"
# Said at the end of a call cut short ("more on status" means nothing to a listener).
MORE_SPOKEN = "... The rest was too long for one call."


def _sms_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _spoken_size(text: str) -> int:
    from xml.sax.saxutils import escape

    return len(escape(text))


def fit(body: str, channel: str = "sms") -> str:
    """`body` cut (with MORE at the end) so the provider accepts it: at most MAX_SMS_UNITS for a
    text, at most MAX_VOICE_ESCAPED once escaped for a call. Most bodies are far shorter and
    come back as they are."""
    size, limit = (_spoken_size, MAX_VOICE_ESCAPED) if channel == "voice" else (_sms_units, MAX_SMS_UNITS)
    if len(body) * 5 <= limit or size(body) <= limit:  # an escaped char is at most 6 (&quot;): rough first test
        return body
    more = MORE_SPOKEN if channel == "voice" else MORE
    room = limit - size(more)
    low, high = 0, len(body)
    while low < high:  # the longest prefix that fits
        middle = (low + high + 1) // 2
        if size(body[:middle].rstrip()) <= room:
            low = middle
        else:
            high = middle - 1
    cut = body[:low]
    space = cut.rfind(" ")
    if space > len(cut) - 20 and space > 0:  # end on a word when one ends nearby
        cut = cut[:space]
    return cut.rstrip() + more


# Where a new sentence starts: the very beginning, or after a full stop, ? or ! and a space.
_SENTENCE_END = (".", "?", "!")


def fill(text: str, /, **values: str) -> str:
    """`text.format(**values)`, but a value that begins a sentence begins with a capital
    ("Hello Vera. {when} please ring" with when="this week" reads "... This week please ring").
    Only a value's first letter changes; the rest of it, and the wording, stay as written."""
    out: list[str] = []
    for literal, field, spec, conversion in Formatter().parse(text):
        out.append(literal)
        if field is None:
            continue
        value = format(Formatter().convert_field(values[field], conversion), spec or "")
        before = "".join(out).rstrip(" ")
        if value and (not before or before.endswith(_SENTENCE_END)) and value[0].islower():
            value = value[0].upper() + value[1:]
        out.append(value)
    return "".join(out)


def placeholders(template_text: str) -> set[str]:
    return {name for _, name, _, _ in Formatter().parse(template_text) if name}


def odd_field(template_text: str) -> str | None:
    """The first field that is not a plain `{placeholder}` (a format spec like `{name:>3000}`,
    a conversion `{name!r}`, an index or attribute `{name[0]}`, an empty `{}`), or None.
    str.format would act on them: pad a text to thousands of characters, or crash. Raises
    ValueError for an unbalanced brace."""
    for _, name, spec, conversion in Formatter().parse(template_text):
        if name is None:
            continue
        if spec or conversion or not name.isidentifier():
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return "{" + shown + "}"
    return None


def only_plain(own: dict[str, str]) -> dict[str, str]:
    """A group's overrides without any stored before fields were checked that aren't plain
    placeholders: those fall back to the default wording rather than crash or bloat a text."""
    def fine(text: str) -> bool:
        try:
            return odd_field(text) is None
        except ValueError:
            return False

    return {key: text for key, text in own.items() if fine(text)}
