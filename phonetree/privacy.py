"""Privacy: message text is kept only as long as needed, and a member can be forgotten."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from typing import Any, Callable

import phonenumbers
from sqlalchemy import Engine, Select, bindparam, exists, func, select, true, update
from sqlalchemy.orm import Session

from phonetree import events, phones, tasks
from phonetree.checkins import open_checkin
from phonetree.db import rowcount
from phonetree.escalation import CLOSED, stand_down
from phonetree.models import (Cascade, CheckIn, Event, Group, Inbound, Member, Message, ProviderOutage, Task,
                              UTCDateTime)
from phonetree.prepared import Prepared, read

log = logging.getLogger(__name__)


# Rows of each table blanked per step of the hourly purge at most: the tick sizes its steps to a
# time budget (phonetree.paced); this only caps a step on a fast machine.
PURGE_CHUNK = 2000


def purge_bodies(session: Session, now: datetime, limit: int | None = None, total: int | None = None) -> int:
    """Blank the text of messages, replies and news older than each group's retention period.
    Counts, times and states stay, so reports still add up. Returns rows blanked.

    Set-based, one statement per table per retention period in use (not per group), and found
    through partial indexes on the rows whose text is still kept: the cost grows with what is
    blanked, not with groups or history. With `limit`, blanks at most that many rows of each
    table; with `total`, at most that many in all (fewer than `total` blanked: nothing old is
    left). Either is for a caller that commits between chunks (schedules.engine) so no write
    waits long."""
    blanked = 0
    periods = session.scalars(select(Group.retention_days).distinct()).all()
    for days in periods:
        cutoff = now - timedelta(days=days)
        # Whose a row is, by a probe per row found (primary keys), not an IN over every group or
        # member: for an IN, SQLite searched each member's replies through ix_inbound_member_id,
        # the rows already blanked included, so each step cost more than the last (at 30k members
        # with a month of history the tick's steps fell to a few rows a second).
        of_message = exists().where(Group.id == Message.group_id, Group.retention_days == days)
        of_news = exists().where(Group.id == Cascade.group_id, Group.retention_days == days)
        of_reply = exists().where(Member.id == Inbound.member_id, Group.id == Member.group_id,
                                  Group.retention_days == days)
        for model, column, ids in (
                (Message, Message.body, select(Message.id).where(
                    Message.body.is_not(None), Message.created_at < cutoff,
                    Message.state.not_in(("queued", "sending")), of_message)),
                (Inbound, Inbound.body, select(Inbound.id).where(
                    Inbound.body.is_not(None), Inbound.received_at < cutoff, of_reply)),
                (Cascade, Cascade.text, select(Cascade.id).where(
                    Cascade.text.is_not(None), Cascade.started_at < cutoff, of_news))):
            room = limit if total is None else total - blanked if limit is None else min(limit, total - blanked)
            if room is not None and room <= 0:
                break
            blanked += _blank(session, model, column, ids, room)
    if blanked:
        log.info("retention: blanked the text of %d old message(s)", blanked)
    return blanked


# Whether `purge_bodies` would find anything: any kept text older than the shortest retention
# period in use (looser than the purge's own per-group cutoffs, never stricter), through the
# same partial indexes. The tick asks this first, in a read, instead of opening a write
# transaction for three UPDATEs that almost always change nothing.
_SHORTEST = Prepared(select(func.min(Group.retention_days)))
_CUTOFF = bindparam("cutoff", type_=UTCDateTime())
_ANYTHING_OLD = Prepared(select(
    exists().where(Message.body.is_not(None), Message.created_at < _CUTOFF,
                   Message.state != "queued", Message.state != "sending")
    | exists().where(Inbound.body.is_not(None), Inbound.received_at < _CUTOFF)
    | exists().where(Cascade.text.is_not(None), Cascade.started_at < _CUTOFF)))


def anything_to_purge(engine: Engine, now: datetime) -> bool:
    with read(engine) as connection:
        days = _SHORTEST.rows(connection)[0][0]
        if days is None:
            return False  # no group, no text
        return bool(_ANYTHING_OLD.rows(connection, {"cutoff": now - timedelta(days=days)})[0][0])


def _blank(session: Session, model: Any, column: Any, ids: Select[Any], limit: int | None) -> int:
    if limit is not None:
        ids = ids.limit(limit)
    return rowcount(session.execute(update(model).where(model.id.in_(ids.scalar_subquery())).values({column: None})
                                    .execution_options(synchronize_session=False))) or 0


def forget(session: Session, member: Member, now: datetime) -> int:
    """Erase a member and their history. Anything they were asked to do for someone else is
    passed on first, so forgetting one person never drops another's check-in. Returns how many
    of their tasks were passed on."""
    held = list(session.scalars(select(Task).where(Task.assignee_id == member.id, Task.state == "asked")))
    for task in held:
        tasks.cant(session, task, now)
    checkin = open_checkin(session, member.id)
    while checkin is not None:
        checkin.state, checkin.closed_at, checkin.outcome = "resolved", now, "member forgotten"
        # Whoever was asked to ring them is told it is dealt with (the words lose the name below);
        # the notice is let go of the check-in, which goes with them, so it is still sent.
        stand_down(session, checkin, now, CLOSED)
        session.flush()
        session.execute(update(Message).where(Message.checkin_id == checkin.id, Message.template == CLOSED,
                                              Message.state == "queued")
                        .values(checkin_id=None, task_id=None).execution_options(synchronize_session=False))
        checkin = open_checkin(session, member.id)
    group_id = member.group_id
    scrub = _scrubber(member)
    # A message about them (`about`: their forwarded reply, a notice that their number failed
    # or that they paused) goes whole, as does any message to their number, whoever it was
    # filed under. Other texts that carried their name (a list of people to ring, a stand-down
    # naming them) lose it below; the counts stay.
    session.execute(Message.__table__.delete().where(
        ((Message.to_phone == member.phone) & Message.member_id.is_(None)) | ((Message.group_id == group_id) & (
            Message.about_member_id == member.id))))
    for message in session.scalars(select(Message).where(Message.group_id == group_id)):
        if message.body and scrub(message.body) != message.body:
            # One still waiting to go keeps its sense without them; one sent is only a record.
            message.body = scrub(message.body) if message.state in ("queued", "sending") else None
        if message.error:
            message.error = scrub(message.error)
    # Everything else that may quote their name or number: other members' replies, the audit
    # trail ("asked Zebediah"), organisers' notes on check-ins, news, phone problems, outages.
    others = select(Member.id).where(Member.group_id == group_id, Member.id != member.id).scalar_subquery()
    for model, column, where in (
            (Inbound, Inbound.body, Inbound.member_id.in_(others)),
            (Event, Event.detail, (Event.group_id == group_id) | Event.group_id.is_(None)),
            (CheckIn, CheckIn.outcome, CheckIn.group_id == group_id),
            (Cascade, Cascade.text, Cascade.group_id == group_id),
            (Member, Member.phone_problem, Member.id.in_(others)),
            (ProviderOutage, ProviderOutage.last_error, true())):
        for row_id, value in session.execute(select(model.id, column).where(where, column.is_not(None))):
            if value is not None and scrub(value) != value:  # never None: IS NOT NULL above
                session.execute(update(model).where(model.id == row_id).values({column.key: scrub(value)}))
    # Task rows others hold about them (and messages referring to those) go with them by
    # ON DELETE CASCADE; so do their check-ins, replies and messages.
    session.delete(member)
    session.flush()
    events.record(session, now, "member_forgotten", group_id=group_id,
                  detail=f"a member and their history were erased; {len(held)} task(s) passed on")
    return len(held)


def remove_group(session: Session, group: Group, now: datetime) -> tuple[int, int]:
    """Erase a group and its history, as `forget` erases a member. Open check-ins are closed
    first and whoever was asked to ring is stood down; those stand-down messages are kept
    (detached from the group) so they still go out after it is gone. Everything else not yet
    sent goes with the group. Returns (check-ins closed, people stood down)."""
    from sqlalchemy import delete

    from phonetree.checkins import OPEN_CHECKIN_STATES
    from phonetree.models import CheckIn

    closed = told = 0
    for checkin in session.scalars(select(CheckIn).where(
            CheckIn.group_id == group.id, CheckIn.state.in_(OPEN_CHECKIN_STATES))).all():
        checkin.state, checkin.closed_at, checkin.outcome = "resolved", now, "group removed"
        told += stand_down(session, checkin, now, CLOSED)
        closed += 1
    session.flush()
    # The stand-downs outlive the group: no links to its rows (which are about to go), only
    # the number and the words, so the dispatcher still sends them.
    session.execute(update(Message).where(
        Message.group_id == group.id, Message.template == CLOSED, Message.state == "queued")
        .values(group_id=None, member_id=None, checkin_id=None, task_id=None)
        .execution_options(synchronize_session=False))
    group_id = group.id
    session.expunge_all()  # every loaded row of the group is about to go
    # Members, plans, check-ins, tasks, messages, rotas, the tree and events go by ON DELETE CASCADE.
    session.execute(delete(Group).where(Group.id == group_id))
    events.record(session, now, "group_removed", detail=f"a group and its history were erased; "
                  f"{closed} open check-in(s) closed, {told} person(s) stood down")
    return closed, told


FORGOTTEN = "[forgotten]"


def _scrubber(member: Member) -> Callable[[str], str]:
    """A function that takes the member's name and every written form of their number out of
    a text: E.164, the digits alone, as dialled (07911 100001, spaced or not), masked."""
    name = re.compile(rf"\b{re.escape(member.name)}\b")
    national = phones.display(member.phone)
    forms = sorted({member.phone, member.phone.lstrip("+"), national, national.replace(" ", ""),
                    phones.mask(member.phone)}, key=len, reverse=True)

    def scrub(text: str) -> str:
        text = name.sub(FORGOTTEN, text)
        for form in forms:
            text = text.replace(form, FORGOTTEN)
        if any(c.isdigit() for c in text):  # other spellings: +44 (0)7911 100001, 07911-100-001
            for match in reversed(list(phonenumbers.PhoneNumberMatcher(text, phones.DEFAULT_REGION))):
                e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
                if e164 == member.phone:
                    text = text[:match.start] + FORGOTTEN + text[match.end:]
        return text

    return scrub
