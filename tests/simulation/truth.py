"""Ground truth: what each simulated person really did and what the phone network really
delivered, kept outside phonetree's database (which is what is being checked)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime


_ORDER = itertools.count()


def _next() -> int:
    return next(_ORDER)


@dataclass
class Delivery:
    """A message that really left: the provider took it (or timed out after taking it)."""

    message_id: int
    to: str
    channel: str
    template: str
    kind: str
    checkin_id: int | None
    task_id: int | None
    subject_id: int | None  # the member a task is about
    body: str
    real: datetime
    clock: datetime  # what phonetree's clock said
    how: str = "accepted"  # accepted | timed out (but left) | crash after the provider took it
    sid: str = ""
    reached: bool = True  # False when the provider took it but the phone is off (it never arrived)
    order: int = field(default_factory=_next)  # when it happened among everything else


@dataclass
class Said:
    """Something a person sent phonetree (SMS text, or a key on a call)."""

    real: datetime
    clock: datetime
    phone: str
    person: str
    text: str
    meaning: str  # ok | help | words | free | stop | start | pause | done | cant | key_ok | key_help ...
    channel: str = "sms"
    accepted: bool = False  # phonetree answered 200
    why_not: str = ""
    about_task: int | None = None  # the ask a DONE/CANT answers, as the person meant it
    about_checkin: int | None = None
    sid: str = ""
    order: int = field(default_factory=_next)


@dataclass
class Note:
    """A fault, a crash, an organiser's command: anything else for the story."""

    real: datetime
    clock: datetime
    text: str
    order: int = field(default_factory=_next)


@dataclass
class Truth:
    deliveries: list[Delivery] = field(default_factory=list)
    said: list[Said] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    # (real, clock, member_id) of each organiser's `phonetree resolve`
    resolves: list[tuple[datetime, datetime, int]] = field(default_factory=list)
    # message id -> how many times a send timed out or crashed after the provider took it
    allowed_repeats: dict[int, int] = field(default_factory=dict)
    # HELP items: checkin id -> (real, clock) of the HELP that made it one
    help_items: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    # check-ins answered before anyone was asked: checkin id -> clock time of the OK
    answered_unasked: dict[int, datetime] = field(default_factory=dict)
    accepted_sids: set[str] = field(default_factory=set)
    unanswered_calls: set[int] = field(default_factory=set)  # message ids of calls nobody picked up
    # What people chose to do, as "prompt:<behaviour>" and "ask:<choice>" (for the CI run's
    # coverage check: every action of issue 11 is exercised)
    behaviours: set[str] = field(default_factory=set)
    steps: int = 0

    def accepted(self) -> list[Said]:
        return [s for s in self.said if s.accepted]
