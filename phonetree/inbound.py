"""An inbound reply: who sent it, what they mean, and which open item it is about.

A number that belongs to no member changes nothing and learns nothing. Anything a member sends
that we can't read still counts as contact and is passed to a person.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from phonetree import events, tasks
from phonetree.checkins import (UNESCALATED, answer, answer_unescalated, open_checkin, open_checkin_row,
                                request_help)
from phonetree.db import insert_for, insert_ignoring_duplicates
from phonetree.directory import organisers
from phonetree.escalation import chain_for
from phonetree.messages import message_row, queue
from phonetree.models import Group, Inbound, Member
from phonetree.phones import display, parse_phone
from phonetree.prepared import Prepared, transaction
from phonetree.errors import PhonetreeError
from phonetree.replies import Intent, Reply, parse_reply
from schedules.recurrence import local_date

DEFAULT_PAUSE_DAYS = 7


@dataclass
class Outcome:
    """What happened, for the CLI or the webhook log (never includes the message text)."""

    known: bool
    intent: str = "unknown"
    member: str | None = None
    actions: list[str] = field(default_factory=list)
    duplicate: bool = False


# Twilio sends From in E.164 already; only anything else needs the (slow) full parse.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}", re.ASCII)


_BY_PHONE = select(Member).where(Member.phone == bindparam("phone")).order_by(Member.id)  # built once


def members_for_phone(session: Session, phone: str) -> list[Member]:
    if _E164.fullmatch(phone):
        e164 = phone  # stored numbers are validated E.164, so an exact match is enough
    else:
        try:
            e164 = parse_phone(phone)
        except PhonetreeError:
            return []
    return list(session.scalars(_BY_PHONE, {"phone": e164}))


# The commonest reply by far is an OK to a check-in no one has been asked about yet. `answer_ok`
# does that in five prepared statements (phonetree.prepared), so the webhook keeps up with a morning's
# replies; anything else (another word, a phone shared by two members, someone to stand down,
# nothing open) comes back None and goes the whole way through `handle`. Both leave the same rows.
_members, _inbound = Member.__table__, Inbound.__table__
_MEMBER_BY_PHONE = Prepared(select(_members.c.id, _members.c.name)
                            .where(_members.c.phone == bindparam("phone")).limit(2))
_RECORD = Prepared(lambda dialect: insert_for(dialect)(_inbound).on_conflict_do_nothing().returning(_inbound.c.id),
                   columns=("provider_sid", "member_id", "channel", "body", "intent", "received_at"))


class _MovedOn(Exception):
    """The check-in changed between reading and writing it (another worker): start again."""


def answer_ok(engine: Engine, now: datetime, from_phone: str, text: str, sid: str | None) -> Outcome | None:
    """An SMS that is a plain OK to an unescalated check-in, answered in its own transaction;
    None (and nothing written) when it is anything else."""
    if sid is None or not _E164.fullmatch(from_phone):
        return None
    reply = parse_reply(text)
    if reply.intent is not Intent.OK:
        return None
    try:
        with transaction(engine) as connection:
            found = _MEMBER_BY_PHONE.rows(connection, {"phone": from_phone})
            if len(found) != 1:
                return None
            member_id, name = found[0]
            latest = open_checkin_row(connection, member_id)
            if latest is None or latest[1] not in UNESCALATED:
                return None
            checkin_id, state, occurrence, group_id = latest
            if not _RECORD.rows(connection, {"provider_sid": sid, "member_id": member_id, "channel": "sms",
                                             "body": text, "intent": reply.intent.value, "received_at": now}):
                return Outcome(known=True, intent=reply.intent.value, member=name, duplicate=True)
            if not answer_unescalated(connection, checkin_id, state, group_id, member_id, now, "replied OK"):
                raise _MovedOn()  # rolls the Inbound row back with it
    except _MovedOn:
        return None
    return Outcome(known=True, intent=reply.intent.value, member=name,
                   actions=[f"check-in answered ({occurrence})"])


def handle(session: Session, now: datetime, from_phone: str, text: str, *, sid: str | None = None,
           channel: str = "sms", reply: Reply | None = None, member_id: int | None = None) -> Outcome:
    """Act on one inbound message. `reply` overrides parsing (a keypress); `member_id` pins the
    sender when the gateway knows it (the person a call was placed to)."""
    members = members_for_phone(session, from_phone)
    if member_id is not None:
        members = [m for m in members if m.id == member_id] or members
    if not members:
        return Outcome(known=False)
    reply = reply or parse_reply(text)
    # Record first, keyed on the provider's id: a repeated delivery stops here.
    if sid is not None:
        inserted = insert_ignoring_duplicates(session, Inbound, [{
            "provider_sid": sid, "member_id": members[0].id, "channel": channel, "body": text,
            "intent": reply.intent.value, "received_at": now,
        }])
        if inserted == 0:
            return Outcome(known=True, intent=reply.intent.value, member=members[0].name, duplicate=True)
    else:
        session.add(Inbound(provider_sid=None, member_id=members[0].id, channel=channel, body=text,
                            intent=reply.intent.value, received_at=now))
    outcome = Outcome(known=True, intent=reply.intent.value, member=members[0].name)
    ROUTES[reply.intent](session, now, members, reply, text, outcome)
    session.flush()
    return outcome


# ---------------------------------------------------------------- one function per intent


def _ok(session: Session, now: datetime, members: list[Member], reply: Reply, text: str,
        outcome: Outcome) -> None:
    for member in members:
        checkin = open_checkin(session, member.id)
        if checkin is not None:
            told = answer(session, checkin, now, "replied OK")
            outcome.member = member.name
            outcome.actions.append(f"check-in answered ({checkin.occurrence})"
                                   + (f"; {told} contact(s) stood down" if told else ""))
            return
    outcome.actions.append("nothing open; no change")


def _help(session: Session, now: datetime, members: list[Member], reply: Reply, text: str,
          outcome: Outcome) -> None:
    member = _most_relevant(session, members)
    outcome.member = member.name
    checkin, asked = request_help(session, member, now, "replied " + reply.intent.value.upper())
    group = session.get(Group, member.group_id)
    assert group is not None
    template = "help_ack" if asked and asked != "organisers" else "help_ack_nobody"
    # Urgent like the ask itself: someone who asked for help shouldn't wait behind a morning's
    # prompts to hear that a person is on the way.
    queue(session, [message_row(now, group, member, kind="confirmation", template=template, urgent=True,
                                values={"name": member.name, "contact": asked},
                                dedupe_key=f"checkin:{checkin.id}:help_ack:{now.isoformat()}",
                                channel="sms" if member.channel == "sms" else member.channel,
                                checkin_id=checkin.id)])
    outcome.actions.append(f"wants a call: asked {asked} at once")


def _task_reply(session: Session, now: datetime, members: list[Member], reply: Reply, text: str,
                outcome: Outcome) -> None:
    held = tasks.open_tasks_for(session, [m.id for m in members])
    if not held:
        # Not holding anything: from a member with a check-in open it is still contact.
        _unknown(session, now, members, reply, text, outcome)
        return
    task = _task_meant(held, text)
    outcome.member = task.assignee.name
    group = session.get(Group, task.group_id)
    assert group is not None
    if reply.intent is Intent.DONE:
        tasks.done(session, task, now)
        template, what = "thanks", "done"
    else:
        tasks.cant(session, task, now)
        template, what = "cant_ok", "can't: passed on"
    queue(session, [message_row(now, group, task.assignee, kind="confirmation", template=template,
                                values={"name": task.assignee.name},
                                dedupe_key=f"task:{task.id}:{reply.intent.value}", task_id=task.id,
                                channel="sms" if task.assignee.channel == "sms" else "voice")])
    outcome.actions.append(f"{task.kind} task {what}")


def _task_meant(held: list, text: str):  # type: ignore[no-untyped-def]
    """Someone holding several tasks can say which: "DONE Sam". Otherwise the newest."""
    words = set(re.findall(r"[a-z']+", text.lower()))
    named = [t for t in held if t.subject is not None and t.subject.name.lower() in words]
    return named[0] if named else held[0]


def _pause(session: Session, now: datetime, members: list[Member], reply: Reply, text: str,
           outcome: Outcome) -> None:
    first = members[0]
    group = session.get(Group, first.group_id)
    assert group is not None
    days = reply.days or DEFAULT_PAUSE_DAYS
    # "PAUSE 3": today and the next two days have no check-in.
    until = local_date(now, group.timezone) + timedelta(days=days - 1)
    for member in members:
        member.paused_until = until
        events.record(session, now, "paused", group_id=member.group_id, member_id=member.id,
                      detail=f"by reply, until {until.isoformat()}")
    queue(session, [message_row(now, group, first, kind="confirmation", template="pause_ok",
                                values={"name": first.name, "day": until.strftime("%a %d %b")},
                                dedupe_key=f"member:{first.id}:pause:{now.isoformat()}")])
    outcome.actions.append(f"paused until {until.isoformat()}")


def _back(session: Session, now: datetime, members: list[Member], reply: Reply, text: str,
          outcome: Outcome) -> None:
    first = members[0]
    group = session.get(Group, first.group_id)
    assert group is not None
    for member in members:
        member.paused_until = None
        events.record(session, now, "resumed", group_id=member.group_id, member_id=member.id)
    queue(session, [message_row(now, group, first, kind="confirmation", template="back_ok",
                                values={"name": first.name},
                                dedupe_key=f"member:{first.id}:back:{now.isoformat()}")])
    outcome.actions.append("check-ins resumed")


def _opt(session: Session, now: datetime, members: list[Member], reply: Reply, text: str,
         outcome: Outcome) -> None:
    """STOP/START. Twilio already blocks or unblocks the number and replies itself, so we
    record it and tell the organisers; we send the member nothing."""
    stop = reply.intent is Intent.STOP
    rows = []
    for member in members:
        if member.opted_out == stop:
            continue
        member.opted_out = stop
        events.record(session, now, "opted_out" if stop else "opted_in", group_id=member.group_id,
                      member_id=member.id)
        group = session.get(Group, member.group_id)
        assert group is not None
        for organiser in organisers(session, member.group_id):
            if organiser.phone == member.phone:
                continue
            rows.append(message_row(
                now, group, organiser, kind="info", template="opted_out" if stop else "opted_in",
                values={"contact": organiser.name, "member": member.name, "phone": display(member.phone)},
                dedupe_key=f"member:{member.id}:{'stop' if stop else 'start'}:{now.isoformat()}:{organiser.id}",
            ))
    queue(session, rows)
    outcome.actions.append("opted out; organisers told" if stop else "opted back in; organisers told")


def _unknown(session: Session, now: datetime, members: list[Member], reply: Reply, text: str,
             outcome: Outcome) -> None:
    """Counts as contact, and a person reads it: the organisers, or the first named contact."""
    member = _most_relevant(session, members)
    outcome.member = member.name
    checkin = open_checkin(session, member.id)
    if checkin is not None:
        answer(session, checkin, now, "replied (unrecognised text, passed to a person)")
        outcome.actions.append("counted as contact: check-in answered")
    group = session.get(Group, member.group_id)
    assert group is not None
    readers = [m for m in organisers(session, member.group_id) if m.id != member.id]
    if not readers and checkin is not None:
        readers = chain_for(session, checkin)[:1]
    rows = [message_row(now, group, reader, kind="info", template="forward", channel="sms",
                        values={"member": member.name, "phone": display(member.phone), "text": text.strip()},
                        dedupe_key=f"inbound:{member.id}:{now.isoformat()}:{reader.id}")
            for reader in readers if reader.channel == "sms" and not reader.opted_out]
    queue(session, rows)
    events.record(session, now, "reply_forwarded", group_id=member.group_id, member_id=member.id,
                  checkin_id=checkin.id if checkin else None,
                  detail="to " + (", ".join(r.name for r in readers) or "nobody: shown on status"))
    outcome.actions.append("passed to " + (", ".join(r.name for r in readers) or "status (no organiser)"))


def _most_relevant(session: Session, members: list[Member]) -> Member:
    """Of several members sharing a number, the one with a check-in open, else the first."""
    for member in members:
        if open_checkin(session, member.id) is not None:
            return member
    return members[0]


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
