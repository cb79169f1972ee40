"""The one seam to the outside world: a Gateway sends an SMS or places a call.

Adapters translate their provider's errors into GatewayError, whose `action` tells the
dispatcher what to do next; nothing provider-specific leaks past this file's subclasses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


class NotSupported(Exception):
    """The gateway cannot do this (e.g. a voice call on an SMS-only provider)."""


# What the dispatcher should do after a failure.
RETRY = "retry"              # transient: back off and try again (never a blind resend)
RETRY_LATER = "retry_later"  # the phone is off or out of signal: try again in a while
BAD_NUMBER = "bad_number"    # the number does not exist: mark it, escalate now
USE_VOICE = "use_voice"      # not SMS-capable (a landline): switch the member to voice
OPTED_OUT = "opted_out"      # the person sent STOP to this sender: record, never retry
BLOCKED = "blocked"          # carrier filtered it: don't resend the same text
CONFIG = "config"            # the account cannot send there: the organiser must fix settings
FAILED = "failed"            # anything else that won't succeed by retrying


class GatewayError(Exception):
    def __init__(self, message: str, permanent: bool = False, action: str | None = None,
                 code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.action = action or (FAILED if permanent else RETRY)
        self.code = code


@dataclass(frozen=True)
class Outgoing:
    """What the dispatcher hands a gateway: one message row, already rendered."""

    message_id: int
    to: str                 # E.164
    channel: str            # sms | voice
    kind: str               # checkin, reminder, escalation, ...
    body: str               # the SMS text, or the words to speak
    validity_s: int | None = None  # drop it at the provider if not delivered by then
    gather: bool = False    # voice: ask for a keypress (1 / 2) after the words
    # The dispatcher's "go": called just before the request leaves (it waits until this sending
    # thread's previous message is recorded, and raises if that failed). A gateway whose
    # `calls_ready` is True calls it itself, as late as it can; otherwise the dispatcher calls
    # it before `send`.
    ready: Callable[[], None] | None = field(default=None, compare=False, repr=False)


class Gateway:
    name = "base"
    calls_ready = False  # see Outgoing.ready

    def send_sms(self, out: Outgoing) -> str:
        """Send an SMS; return the provider's id for it."""
        raise NotSupported(f"the {self.name} gateway cannot send SMS")

    def place_call(self, out: Outgoing) -> str:
        """Start a voice call that speaks `out.body`; return the provider's id for it."""
        raise NotSupported(f"the {self.name} gateway cannot place calls")

    def send(self, out: Outgoing) -> str:
        return self.place_call(out) if out.channel == "voice" else self.send_sms(out)
