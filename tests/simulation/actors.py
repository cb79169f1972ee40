"""What simulated people do when their phone gets something: a member answers a check-in (or
doesn't), a contact rings and says DONE, or CANT, or nothing. Each choice is drawn from an RNG
keyed by the person and the item, so the same seed makes the same people."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random

from tests.simulation.truth import Delivery
from tests.simulation.world import Person, choice_rng

PROMPTS = {"checkin", "reminder"}
# done_check: "X asked for a call again at HH:MM; if you've spoken to them since then, reply DONE"
# (inbound._may_repeat_a_done), read like any ask about the newer request.
ASKS = {"escalation", "help", "alert", "help_alert", "done_check"}
ORGANISER_ASKS = {"alert", "help_alert"}

OK_TEXTS = ["OK", "ok", "Im ok now"]
HELP_TEXTS = ["HELP", "call me", "Please call"]
AFTER_HELP = ["please hurry", "I can't breathe", "I've had a fall", "thank you", "where are you"]
DISTRESS = ["I've had a fall", "chest pain", "call an ambulance", "not safe"]
FREE_TEXTS = ["had a rough night but managing", "thanks, see you thursday", "at the shops", "x"]


@dataclass
class Act:
    """One thing a person will do at a real time: send an SMS, or handle a call."""

    real: datetime
    kind: str  # sms | call (a voice message reaching a phone) | resolve
    person: str
    text: str = ""
    meaning: str = ""
    delivery: Delivery | None = None
    digits: str = ""  # call: the key pressed; "" none; "-" no answer; "machine"
    about_task: int | None = None
    about_checkin: int | None = None
    member_id: int | None = None  # resolve: whose check-in
    cancelled: bool = False
    later: list["Act"] = field(default_factory=list)


def _minutes(rng: Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


def prompt_behaviour(rng: Random, person: Person, quiet: bool) -> str:
    if quiet:
        return "nothing"
    if person.landline:
        return rng.choices(["key_ok", "key_help", "no_answer", "machine", "silent"], [6, 1, 2, 1, 1])[0]
    return rng.choices(["ok", "late_ok", "help", "help_words", "help_then_ok", "distress", "free", "nothing",
                        "stop", "pause"], [30, 8, 5, 5, 4, 3, 6, 10, 2, 2])[0]


def react_to_prompt(seed: int, delivery: Delivery, person: Person, quiet: bool, window_s: int,
                    decided: dict[tuple[str, int], str], scripted: dict[str, str]) -> list[Act]:
    """A member's check-in prompt (or its reminder) has reached their phone."""
    assert delivery.checkin_id is not None
    key = (person.key, delivery.checkin_id)
    rng = choice_rng(seed, "prompt", person.key, delivery.checkin_id, delivery.message_id)
    if delivery.channel == "voice":
        # Each call is answered (or not) on its own; what they press is the person's choice.
        behaviour = decided.setdefault(key, scripted.get(person.key)
                                       or prompt_behaviour(choice_rng(seed, "member", *key), person, quiet))
        if behaviour in ("no_answer", "machine") and rng.random() < 0.3 and person.key not in scripted:
            behaviour = "key_ok"  # picked up the redial
        digits = {"key_ok": "1", "key_help": "2", "no_answer": "-", "machine": "machine", "silent": ""}.get(behaviour, "1")
        return [Act(delivery.real + timedelta(seconds=rng.uniform(5, 40)), "call", person.key, delivery=delivery,
                    digits=digits, meaning=behaviour, about_checkin=delivery.checkin_id)]
    if key in decided:
        return []  # the reminder: they already know what they'll do
    forced = scripted.get(person.key) if scripted.get(person.key) not in ASK_CHOICES[:3] else None
    behaviour = decided[key] = forced or prompt_behaviour(choice_rng(seed, "member", *key),
                                                                            person, quiet)
    at, window = delivery.real, window_s / 60

    def sms(after: timedelta, text: str, meaning: str) -> Act:
        return Act(at + after, "sms", person.key, text=text, meaning=meaning, about_checkin=delivery.checkin_id)

    if behaviour == "ok":
        return [sms(_minutes(rng, 0.5, max(1.0, 0.8 * window)), rng.choice(OK_TEXTS), "ok")]
    if behaviour == "late_ok":
        return [sms(_minutes(rng, window + 1, window + 60), "OK", "ok")]
    if behaviour in ("help", "help_words", "help_then_ok"):
        first = _minutes(rng, 0.5, 20)
        acts = [sms(first, rng.choice(HELP_TEXTS), "help")]
        if behaviour == "help_words":
            acts.append(sms(first + _minutes(rng, 0.5, 10), rng.choice(AFTER_HELP), "after_help"))
        if behaviour == "help_then_ok":
            acts.append(sms(first + _minutes(rng, 5, 90), "OK", "ok"))
        return acts
    if behaviour == "distress":
        return [sms(_minutes(rng, 0.5, 20), rng.choice(DISTRESS), "distress")]
    if behaviour == "free":
        return [sms(_minutes(rng, 0.5, max(1.0, window)), rng.choice(FREE_TEXTS), "free")]
    if behaviour == "stop":
        return [sms(_minutes(rng, 0.5, 20), "STOP", "stop")]
    if behaviour == "pause":
        return [sms(_minutes(rng, 0.5, 20), "PAUSE 2", "pause")]
    return []


ASK_CHOICES = ("done", "cant", "resolve", "nothing")


def react_to_ask(seed: int, delivery: Delivery, person: Person, quiet: bool, subject_name: str,
                 organiser: bool, scripted: dict[str, str]) -> list[Act]:
    """Someone has been asked to ring a member (or, as an organiser, alerted)."""
    rng = choice_rng(seed, "ask", person.key, delivery.task_id, delivery.message_id)
    if scripted.get(person.key) in ASK_CHOICES:
        choice = scripted[person.key]
    elif quiet:
        choice = "nothing"
    elif delivery.template in ORGANISER_ASKS:
        choice = rng.choices(["done", "resolve", "nothing"], [5, 2, 3])[0]
    else:
        choice = rng.choices(["done", "cant", "nothing"], [5, 3, 3])[0]
    if delivery.channel == "voice":
        if choice == "resolve":
            choice = "done"
        digits = {"done": "1", "cant": "2", "nothing": rng.choice(["-", ""])}[choice]
        return [Act(delivery.real + timedelta(seconds=rng.uniform(5, 40)), "call", person.key, delivery=delivery,
                    digits=digits, meaning={"1": "key_done", "2": "key_cant"}.get(digits, "no_answer"),
                    about_task=delivery.task_id, about_checkin=delivery.checkin_id)]
    if choice == "done":
        return [Act(delivery.real + _minutes(rng, 1, 25), "sms", person.key, text="DONE", meaning="done",
                    about_task=delivery.task_id, about_checkin=delivery.checkin_id)]
    if choice == "cant":
        return [Act(delivery.real + _minutes(rng, 0.5, 12), "sms", person.key, text="CANT", meaning="cant",
                    about_task=delivery.task_id, about_checkin=delivery.checkin_id)]
    if choice == "resolve":
        return [Act(delivery.real + _minutes(rng, 5, 40), "resolve", person.key, meaning="resolve",
                    member_id=delivery.subject_id, about_checkin=delivery.checkin_id)]
    return []
