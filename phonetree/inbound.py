"""An inbound reply: who sent it, what they mean, and which open item it is about.

A number that belongs to no member changes nothing and learns nothing. Anything a member sends
that we can't read still counts as contact and is passed to a person.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from phonetree import events, tasks
from phonetree.checkins import (OpenCheckIn, answer, help_in_force, open_checkin_rows, open_checkins,
                                request_help)
from phonetree.db import insert_for
from phonetree.directory import organisers, pause_member
from phonetree.escalation import chain_for
from phonetree.messages import message_row, queue
from phonetree.models import CheckIn, Inbound, Member, Message, Task
from phonetree.phones import display, parse_phone
from phonetree.prepared import Prepared
from phonetree.errors import PhonetreeError
from phonetree.replies import Intent, Reply, parse_keypress, parse_reply
from phonetree.local_times import local, local_date
from phonetree.work import Work

DEFAULT_PAUSE_DAYS = 7


@dataclass
class Outcome:
    """What happened, for the CLI or the webhook log (never includes the message text)."""

    known: bool
    intent: str = "unknown"
    member: str | None = None
    member_id: int | None = None  # the sender's (first) member row, for the log: no number, no name
    actions: list[str] = field(default_factory=list)
    duplicate: bool = False


# Twilio sends From in E.164 already; only anything else needs the (slow) full parse.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)


def e164_of(phone: str) -> str | None:
    """The number as stored (validated E.164), or None if it is no phone number."""
    if _E164.fullmatch(phone):
        return phone  # stored numbers are validated E.164, so an exact match is enough
    try:
        return parse_phone(phone)
    except PhonetreeError:
        return None


# Every reply starts with two prepared statements (phonetree.prepared), run on the session's own
# connection: who has this number, and the reply recorded. The commonest reply by far, an OK to
# a check-in no one has been asked about yet, then takes three more (checkins.answer), so the
# webhook keeps up with a morning's replies; the rest loads what it needs through the ORM.
_members, _inbound = Member.__table__, Inbound.__table__
_MEMBERS_BY_PHONE = Prepared(select(_members.c.id, _members.c.name, _members.c.group_id)
                             .where(_members.c.phone == bindparam("phone")).order_by(_members.c.id))
_RECORD = Prepared(lambda dialect: insert_for(dialect)(_inbound).on_conflict_do_nothing().returning(_inbound.c.id),
                   columns=("provider_sid", "member_id", "channel", "body", "intent", "received_at"))


def handle(where: Session | Work, now: datetime, from_phone: str, text: str, *, sid: str | None = None,
           channel: str = "sms", reply: Reply | None = None, member_id: int | None = None) -> Outcome:
    """Act on one inbound message, in `where`'s transaction (a webhook's bare unit of work,
    which the ORM joins only for a reply that needs it, or an open Session). `reply` overrides
    parsing (a keypress); `member_id` pins the sender when the gateway knows it (the person a
    call was placed to): then the reply is theirs in each group they are in (the same number and
    name), not a housemate's on a shared line."""
    work = where if isinstance(where, Work) else Work.of(where)
    e164 = e164_of(from_phone)
    connection = work.connection()
    found: list[_Found] = [] if e164 is None else [
        _Found(*row) for row in _MEMBERS_BY_PHONE.rows(connection, {"phone": e164})]
    if member_id is not None:
        pinned = next((m for m in found if m.id == member_id), None)
        if pinned is not None:
            found = [m for m in found if m.id == pinned.id
                     or (m.group_id != pinned.group_id and m.name.casefold() == pinned.name.casefold())]
    if not found:
        return Outcome(known=False)
    reply = reply or parse_reply(text)
    # Record first, keyed on the provider's id: a repeated delivery stops here. (Without an id,
    # from the command line, there is nothing to conflict with: it is always recorded.)
    if not _RECORD.rows(connection, {"provider_sid": sid, "member_id": found[0].id, "channel": channel,
                                     "body": text, "intent": reply.intent.value, "received_at": now}):
        return Outcome(known=True, intent=reply.intent.value, member=found[0].name, member_id=found[0].id,
                       duplicate=True)
    outcome = Outcome(known=True, intent=reply.intent.value, member=found[0].name, member_id=found[0].id)
    ROUTES[reply.intent](work, now, _Sender(work, found, channel), reply, text, outcome)
    work.flush()
    return outcome


# ---------------------------------------------------------------- one function per intent


@dataclass(frozen=True)
class _Found:
    """A member with the sender's number, as the prepared lookup reads it."""

    id: int
    name: str
    group_id: int


@dataclass
class _Sender:
    """Whoever sent it: every member with that number (one person in two groups, or a couple on
    one landline, is one phone), and the channel it came by, which is the channel we answer in.
    The members themselves are loaded only by a route that needs more than their ids."""

    work: Work
    found: list[_Found]
    channel: str

    @property
    def ids(self) -> list[int]:
        return [m.id for m in self.found]

    def name_of(self, member_id: int) -> str:
        return next(m.name for m in self.found if m.id == member_id)

    @cached_property
    def members(self) -> list[Member]:
        by_id = {m.id: m for m in self.work.session.scalars(select(Member).where(Member.id.in_(self.ids)))}
        return [by_id[i] for i in self.ids]

    def in_group(self, group_id: int) -> Member:
        return next(m for m in self.members if m.group_id == group_id)


def _ok(work: Work, now: datetime, sender: _Sender, reply: Reply, text: str, outcome: Outcome) -> None:
    """All well: every open check-in of this number is answered, and whoever was asked is told
    (a HELP included: the member's own OK is the one word that stands a call request down)."""
    open_items = open_checkin_rows(work, sender.ids)
    if not open_items:
        outcome.actions.append("nothing open; no change")
        return
    outcome.member = sender.name_of(open_items[0].member_id)
    for checkin in open_items:
        told = answer(work, checkin, now, "replied OK")
        outcome.actions.append(f"check-in answered ({checkin.occurrence})"
                               + (f"; {told} contact(s) stood down" if told else ""))


def _help(work: Work, now: datetime, sender: _Sender, reply: Reply, text: str, outcome: Outcome) -> None:
    """Wants a call: in each group where this number has a check-in open (with none open, each
    of its groups), the first reachable contact is asked at once. One acknowledgement goes
    back, by text when they texted; a keypress is answered by the call itself."""
    session = work.session
    open_items = open_checkins(session, sender.ids)
    open_ids = {c.member_id for c in open_items}
    # A HELP already with a person is not asked of them again (request_help): they are texted
    # these words instead, which may say more ("I can't breathe").
    newest = {c.member_id: c for c in reversed(open_items)}.values()  # the one request_help takes
    again = [c for c in newest if help_in_force(c)]
    targets = [m for m in sender.members if m.id in open_ids] or sender.members
    asked: list[tuple[CheckIn, str]] = []
    for member in targets:
        asked.append(request_help(session, member, now, "replied " + reply.intent.value.upper()))
    outcome.member = targets[0].name
    outcome.actions += [f"wants a call: asked {who} at once" for _, who in asked]
    if sender.channel != "sms":
        return
    for checkin in again:
        _pass_on(session, now, sender.in_group(checkin.group_id), [checkin], text, outcome)
    first, who = asked[0][0], asked[0][1]
    group = first.group
    # One group's contact by name; several groups (or only the organisers): "someone", so no
    # group's wording names a person from another. Nobody at all: say so, never "we've asked".
    named = len(asked) == 1 and who != "organisers"
    anyone = session.scalar(select(Task.id).where(Task.checkin_id.in_([c.id for c, _ in asked]),
                                                  Task.state == "asked").limit(1)) is not None
    # Urgent like the ask itself: someone who asked for help shouldn't wait behind a morning's
    # prompts to hear that a person is on the way.
    queue(session, [message_row(now, group, targets[0], kind="confirmation",
                                template=("help_ack" if named else "help_ack_nobody") if anyone
                                else "help_ack_none", urgent=True,
                                values={"name": targets[0].name, "contact": who},
                                dedupe_key=f"checkin:{first.id}:help_ack:{now.isoformat()}",
                                channel="sms", checkin_id=first.id)])


def _task_reply(work: Work, now: datetime, sender: _Sender, reply: Reply, text: str,
                outcome: Outcome) -> None:
    """DONE or CANT from someone holding a task. From a member whose own call request is open
    it is read as their words, not a contact's answer ("I can't ..." is not "I can't ring"):
    forwarded to a person, and a CANT still passes on what they hold (someone else rings)."""
    session = work.session
    held = tasks.open_tasks_for(session, sender.ids)
    own_help = any(c.help_requested_at is not None for c in open_checkins(session, sender.ids))
    if not held or (own_help and reply.intent is Intent.DONE):
        _unknown(work, now, sender, reply, text, outcome)
        return
    said = _words(text)
    task = _named_task(held, said)
    elsewhere = [] if task else _groups_naming(session, sender, said)
    if task is None and elsewhere:  # about someone else: their group's people read it, nothing is closed
        _unknown(work, now, sender, reply, text, outcome, named=elsewhere)
        return
    task = task or held[0]
    outcome.member = task.assignee.name
    group = task.group
    if reply.intent is Intent.DONE and _may_repeat_a_done(session, task, sender.ids):
        _check_done(session, now, sender, task)
        outcome.actions.append(f"{task.kind} task kept open: DONE may be about the last call; asked to confirm")
        return
    if reply.intent is Intent.DONE:
        tasks.done(session, task, now)
        template, what = "thanks", "done"
    elif _answers_a_lapsed_ask(session, task):
        template, what = "cant_ok", "kept: the CANT answers their earlier ask, passed on already"
    else:
        tasks.cant(session, task, now)
        template, what = "cant_ok", "can't: passed on"
    queue(session, [message_row(now, group, task.assignee, kind="confirmation", template=template,
                                values={"name": task.assignee.name},
                                dedupe_key=f"task:{task.id}:{reply.intent.value}", task_id=task.id,
                                channel=_answer_channel(sender, task.assignee))])
    outcome.actions.append(f"{task.kind} task {what}")
    if own_help:
        _unknown(work, now, sender, reply, text, outcome)


# A person asked twice about the same member (say an escalation, then the member's HELP) may
# text DONE once for each ask. A DONE that could be the second reply to an earlier, already
# closed request must not close a newer one about the same member: the member may have asked
# again ("I can't breathe") since the call, and nobody has rung about that yet.
REPEAT_DONE_WINDOW = timedelta(minutes=30)


def _may_repeat_a_done(session: Session, task: Task, sender_ids: list[int]) -> bool:
    """The holder was asked about the same member on another check-in before this one, and that
    ask ended (their own DONE, stood down because someone else reached the member, or their time
    ran out) at most a little before this one was asked, or since; they had been sent more asks
    about that check-in than they had answered DONE by the time this one was asked (so one reply
    was still to come); and they haven't been asked to confirm this one yet. (Before, only an
    earlier ask closed by their own DONE counted: a DONE owed to an ask stood down, or one that
    had lapsed, closed the member's newer call request; long-run seeds 10101340, 10101588.)"""
    if task.subject_id is None:
        return False
    earlier = session.scalar(select(Task.checkin_id).where(
        Task.assignee_id == task.assignee_id, Task.subject_id == task.subject_id, Task.id != task.id,
        Task.checkin_id.is_not(None), Task.checkin_id != task.checkin_id,
        Task.state.in_(("done", "stood_down", "expired")), Task.asked_at < task.asked_at,
        Task.closed_at >= task.asked_at - REPEAT_DONE_WINDOW)
        .order_by(Task.closed_at.desc()).limit(1))
    if earlier is None:
        return False
    held = select(Task.id).where(Task.assignee_id == task.assignee_id, Task.checkin_id == earlier)
    # Each time an ask (or its retry, or redial: the rows with a purpose) went out may have its
    # own reply: a send that timed out after leaving went twice. Counting tries that never left
    # too errs on the side of asking.
    asks = session.execute(select(func.coalesce(func.sum(Message.attempts), 0), func.min(Message.sent_at)).where(
        Message.task_id.in_(held), Message.purpose.is_not(None), Message.sent_at.is_not(None))).one()
    if not asks[0]:
        return False
    dones = session.scalar(select(func.count()).select_from(Inbound).where(
        Inbound.member_id.in_(sender_ids),  # a reply is recorded under the first member with its number
        Inbound.intent == Intent.DONE.value, Inbound.received_at >= asks[1], Inbound.received_at < task.asked_at))
    if (dones or 0) >= asks[0]:
        return False  # every ask about it has had its DONE: this one is about the newer request
    return session.scalar(select(Message.id).where(Message.dedupe_key == _check_key(task))) is None


def _answers_a_lapsed_ask(session: Session, task: Task) -> bool:
    """A CANT for a task whose ask has not reached them yet (the provider failing), while an
    earlier ask of theirs on the same check-in ran out of time: it answers that one, which has
    passed on already (to this task, when they are also the organiser alerted). Applied here it
    would drop an alert nobody has seen (long-run seed 13000026)."""
    if task.checkin_id is None:
        return False
    left = session.scalar(select(Message.id).where(
        Message.task_id == task.id, Message.purpose.is_not(None), Message.sent_at.is_not(None)).limit(1))
    return left is None and session.scalar(select(Task.id).where(
        Task.checkin_id == task.checkin_id, Task.assignee_id == task.assignee_id, Task.id != task.id,
        Task.state == "expired", Task.asked_at < task.asked_at).limit(1)) is not None


def _check_key(task: Task) -> str:
    return f"task:{task.id}:done_check"


def _check_done(session: Session, now: datetime, sender: _Sender, task: Task) -> None:
    """Ask once whether this DONE is about the newer request; their next DONE closes it."""
    assert task.subject is not None  # _may_repeat_a_done
    queue(session, [message_row(now, task.group, task.assignee, kind="confirmation", template="done_check",
                                values={"name": task.assignee.name, "member": task.subject.name,
                                        "time": local(task.asked_at, task.group.timezone, date=False,
                                                      zone=False)},
                                dedupe_key=_check_key(task), task_id=task.id, checkin_id=task.checkin_id,
                                channel=_answer_channel(sender, task.assignee))])


def _answer_channel(sender: _Sender, member: Member) -> str:
    """Answer in the channel they used: a text gets a text, even in a voice-first group."""
    return "sms" if sender.channel == "sms" else member.channel


def _named_task(held: list[Task], said: tuple[str, ...]) -> Task | None:
    """Someone holding several tasks can say which: "DONE Sam" (the longest name said wins:
    "Mary Ann" over "Ann"). None when no task held is about anyone named."""
    named = [t for t in held if t.subject is not None and _names(said, t.subject.name)]
    return max(named, key=lambda t: len(_words(t.subject.name)) if t.subject else 0, default=None)


def _groups_naming(session: Session, sender: _Sender, said: tuple[str, ...]) -> list[int]:
    """The sender's groups with a member, not the sender, whom the words name. A DONE naming
    someone no open ask is about (one stood down, or lapsed, since) is about them, in whichever
    of the sender's groups they are: applied to the newest task held it would close a check-in
    nobody reached (before: only the held tasks' groups were looked in, so "DONE Olu" from a
    number in two groups closed the other group's ask about Wyn)."""
    own = {_words(m.name) for m in sender.members}
    rows = session.execute(select(Member.group_id, Member.name).where(
        Member.group_id.in_({m.group_id for m in sender.members}), Member.id.not_in(sender.ids)))
    return list(dict.fromkeys(g for g, name in rows if _names(said, name) and _words(name) not in own))


def _words(text: str) -> tuple[str, ...]:
    """The words of a text or a name, caseless, accents kept ("Zoë", "Siân", "O'Neill")."""
    return tuple(re.findall(r"[\w']+", text.replace("\u2019", "'").casefold()))


def _names(said: tuple[str, ...], name: str) -> bool:
    """Whether the words said include the name, all its words in a row ("DONE Mary Ann")."""
    wanted = _words(name)
    return bool(wanted) and any(said[i:i + len(wanted)] == wanted for i in range(len(said) - len(wanted) + 1))


def _pause(work: Work, now: datetime, sender: _Sender, reply: Reply, text: str, outcome: Outcome) -> None:
    """Away for a while. The organisers are told every time: a phone may not be in its owner's
    hands, and a member silenced by someone else must be noticed."""
    session = work.session
    first = sender.members[0]
    group = first.group
    days = reply.days or DEFAULT_PAUSE_DAYS
    # "PAUSE 3": today and the next two days have no check-in.
    until = local_date(now, group.timezone) + timedelta(days=days - 1)
    notices = []
    for member in sender.members:
        pause_member(session, member, until, now, how="by reply")
        notices += _tell_organisers(session, now, member, "paused_notice", f"pause:{now.isoformat()}",
                                    {"day": until.strftime("%a %d %b")})
    queue(session, [message_row(now, group, first, kind="confirmation", template="pause_ok",
                                values={"name": first.name, "day": until.strftime("%a %d %b")},
                                dedupe_key=f"member:{first.id}:pause:{now.isoformat()}", about=first,
                                channel=_answer_channel(sender, first))] + notices)
    outcome.actions.append(f"paused until {until.isoformat()}; organisers told")


def _back(work: Work, now: datetime, sender: _Sender, reply: Reply, text: str, outcome: Outcome) -> None:
    session = work.session
    first = sender.members[0]
    group = first.group
    for member in sender.members:
        pause_member(session, member, None, now)
    queue(session, [message_row(now, group, first, kind="confirmation", template="back_ok",
                                values={"name": first.name},
                                dedupe_key=f"member:{first.id}:back:{now.isoformat()}", about=first,
                                channel=_answer_channel(sender, first))])
    outcome.actions.append("check-ins resumed")


def _opt(work: Work, now: datetime, sender: _Sender, reply: Reply, text: str, outcome: Outcome) -> None:
    """STOP/START. Twilio already blocks or unblocks the number and replies itself, so we
    record it and tell the organisers; we send the member nothing."""
    session = work.session
    stop = reply.intent is Intent.STOP
    rows = []
    for member in sender.members:
        if member.opted_out == stop:
            continue
        member.opted_out = stop
        events.record(session, now, "opted_out" if stop else "opted_in", group_id=member.group_id,
                      member_id=member.id)
        rows += _tell_organisers(session, now, member, "opted_out" if stop else "opted_in",
                                 f"{'stop' if stop else 'start'}:{now.isoformat()}", {})
    queue(session, rows)
    outcome.actions.append("opted out; organisers told" if stop else "opted back in; organisers told")


def _tell_organisers(session: Session, now: datetime, member: Member, template: str, key: str,
                     values: dict[str, str]) -> list[dict[str, Any]]:
    """Notices to the organisers of the member's own group (never another's) about the member."""
    group = member.group
    return [message_row(
        now, group, organiser, kind="info", template=template,
        values={"contact": organiser.name, "member": member.name, "phone": display(member.phone), **values},
        dedupe_key=f"member:{member.id}:{key}:{organiser.id}", about=member,
    ) for organiser in organisers(session, member.group_id) if organiser.phone != member.phone]


def _unknown(work: Work, now: datetime, sender: _Sender, reply: Reply, text: str,
             outcome: Outcome, named: Sequence[int] = ()) -> None:
    """Counts as contact, and a person reads it: the organisers of the group(s) it concerns, or
    the first named contact. A check-in with a HELP in force is not answered by it: the call
    stays asked for, and whoever holds it gets the words too."""
    session = work.session
    open_items = open_checkins(session, sender.ids)
    for checkin in open_items:
        if checkin.help_requested_at is None:
            answer(work, OpenCheckIn.of(checkin), now, "replied (unrecognised text, passed to a person)")
            outcome.actions.append("counted as contact: check-in answered")
        else:
            outcome.actions.append("a call was asked for: it stays asked for")
    for group_id in _groups_concerned(session, sender, open_items, named):
        member = sender.in_group(group_id)
        outcome.member = member.name
        _pass_on(session, now, member, [c for c in open_items if c.group_id == group_id], text, outcome)


def _pass_on(session: Session, now: datetime, member: Member, items: list[CheckIn], text: str,
             outcome: Outcome) -> None:
    """A member's words, texted to whoever reads them in one group (`_readers`); with nobody
    to text, they are on `status` (the trail says which)."""
    readers = _readers(session, member, items)
    queue(session, [message_row(now, member.group, reader, kind="info", template="forward", channel="sms",
                                values={"member": member.name, "phone": display(member.phone),
                                        "text": text.strip()},
                                dedupe_key=f"inbound:{member.id}:{now.isoformat()}:{reader.id}",
                                about=member)
                    for reader in readers])
    events.record(session, now, "reply_forwarded", group_id=member.group_id, member_id=member.id,
                  checkin_id=items[0].id if items else None,
                  detail="to " + (", ".join(r.name for r in readers) or "nobody: shown on status"))
    action = "passed to " + (", ".join(r.name for r in readers) or "status (nobody to text)")
    if action not in outcome.actions:  # several groups with nobody to text: said once
        outcome.actions.append(action)


def _groups_concerned(session: Session, sender: _Sender, open_items: list[CheckIn],
                      named: Sequence[int] = ()) -> list[int]:
    """The groups a member's words are about, so no group reads what concerns another: those with
    a check-in of theirs open, and those of someone the words name (`named`); else those where
    they hold a task; else the group that last wrote to them; else every group they are in."""
    own = {m.group_id for m in sender.members}
    ordered = [*(c.group_id for c in open_items), *named]
    if not ordered:
        ordered = [t.group_id for t in tasks.open_tasks_for(session, sender.ids)]
    if not ordered:
        last = session.scalar(select(Message.group_id).where(Message.member_id.in_(sender.ids))
                              .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))
        ordered = [last] if last is not None else [m.group_id for m in sender.members]
    return [g for g in dict.fromkeys(ordered) if g in own]


def _readers(session: Session, member: Member, items: list[CheckIn]) -> list[Member]:
    """Who is texted a member's words in one group: whoever holds an open task about their call
    request, and the organisers; when none of those can be texted (called, or opted out), the
    first named contact who can."""
    def textable(people: list[Member]) -> list[Member]:
        return [p for p in people if p.channel == "sms" and not p.opted_out and p.phone != member.phone]

    holders = [t.assignee for c in items if c.help_requested_at is not None
               for t in c.tasks if t.state == "asked"]
    people = textable(holders + organisers(session, member.group_id))
    if not people and items:
        people = textable(chain_for(session, items[0]))[:1]
    return list({p.id: p for p in people}.values())


def keypress(session: Session, now: datetime, message: Message, digits: str, call_sid: str) -> str:
    """A key pressed on one of our calls. On a check-in call, 1 is OK and 2 wants a call; on a
    call asking someone to ring a member, 1 means they will (the task is done: a person has it)
    and 2 that they can't. Returns the words to say back."""
    reply = parse_keypress(digits)
    member = session.get(Member, message.member_id) if message.member_id else None
    if member is None:
        return "Thank you. Goodbye."
    if message.template in ("checkin", "reminder"):
        if reply.intent is Intent.UNKNOWN:
            return "Sorry, we didn't catch that. Someone may ring you later. Goodbye."
        handle(session, now, member.phone, digits, sid=f"{call_sid[-48:]}:{digits[:8]}", channel="voice",
                       reply=reply, member_id=member.id)
        if reply.intent is Intent.OK:
            return "Thank you. Glad you're OK. Goodbye."
        return "Thank you. We're asking someone to ring you now. Goodbye."
    task = session.get(Task, message.task_id) if message.task_id else None
    if task is None or task.state != "asked":
        return "Thank you. This has been sorted already. Goodbye."
    if reply.intent is Intent.OK:
        tasks.done(session, task, now)
        return "Thank you. Please ring them now. Goodbye."
    if reply.intent is Intent.HELP:
        tasks.cant(session, task, now)
        return "That's fine, we'll ask someone else. Goodbye."
    return "Sorry, we didn't catch that. Goodbye."


# Each takes the unit of work: all but OK use its ORM Session; OK (most replies) makes one only
# if someone is to be stood down.
ROUTES = {
    Intent.OK: _ok,
    Intent.HELP: _help,
    Intent.DONE: _task_reply,
    Intent.CANT: _task_reply,
    Intent.PAUSE: _pause,
    Intent.BACK: _back,
    Intent.STOP: _opt,
    Intent.START: _opt,
    Intent.UNKNOWN: _unknown,
}
