"""Privacy: message text is kept only as long as needed, and a member can be forgotten."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from phonetree import events, tasks
from phonetree.checkins import open_checkin
from phonetree.models import Cascade, Group, Inbound, Member, Message, Task

log = logging.getLogger(__name__)


def purge_bodies(session: Session, now: datetime) -> int:
    """Blank the text of messages, replies and news older than each group's retention period.
    Counts, times and states stay, so reports still add up. Returns rows blanked."""
    blanked = 0
    for group_id, days in session.execute(select(Group.id, Group.retention_days)).all():
        cutoff = now - timedelta(days=days)
        blanked += session.execute(update(Message).where(
            Message.group_id == group_id, Message.created_at < cutoff, Message.body.is_not(None),
            Message.state.not_in(("queued", "sending"))).values(body=None)).rowcount or 0
        members = select(Member.id).where(Member.group_id == group_id).scalar_subquery()
        blanked += session.execute(update(Inbound).where(
            Inbound.member_id.in_(members), Inbound.received_at < cutoff, Inbound.body.is_not(None))
            .values(body=None)).rowcount or 0
        blanked += session.execute(update(Cascade).where(
            Cascade.group_id == group_id, Cascade.started_at < cutoff, Cascade.text.is_not(None))
            .values(text=None)).rowcount or 0
    if blanked:
        log.info("retention: blanked the text of %d old message(s)", blanked)
    return blanked


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
        session.flush()
        checkin = open_checkin(session, member.id)
    group_id = member.group_id
    # Texts to other people that carried their words or their name (a forwarded reply, a
    # notice, a list of people to ring) lose their text; the counts stay.
    session.execute(Message.__table__.delete().where(
        Message.group_id == group_id,
        Message.dedupe_key.like(f"inbound:{member.id}:%") | Message.dedupe_key.like(f"member:{member.id}:%")))
    mentioning = session.scalars(select(Message).where(
        Message.group_id == group_id, Message.body.like(f"%{member.name}%")))
    name = re.compile(rf"\b{re.escape(member.name)}\b")
    for message in mentioning:
        if message.body and name.search(message.body):
            message.body = None
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

    from phonetree.escalation import OPEN_CHECKIN_STATES, stand_down
    from phonetree.models import CheckIn

    closed = told = 0
    for checkin in session.scalars(select(CheckIn).where(
            CheckIn.group_id == group.id, CheckIn.state.in_(OPEN_CHECKIN_STATES))).all():
        checkin.state, checkin.closed_at, checkin.outcome = "resolved", now, "group removed"
        told += stand_down(session, checkin, now)
        closed += 1
    session.flush()
    # The stand-downs outlive the group: no links to its rows (which are about to go), only
    # the number and the words, so the dispatcher still sends them.
    session.execute(update(Message).where(
        Message.group_id == group.id, Message.template == "stand_down", Message.state == "queued")
        .values(group_id=None, member_id=None, checkin_id=None, task_id=None)
        .execution_options(synchronize_session=False))
    group_id = group.id
    session.expunge_all()  # every loaded row of the group is about to go
    # Members, plans, check-ins, tasks, messages, rotas, the tree and events go by ON DELETE CASCADE.
    session.execute(delete(Group).where(Group.id == group_id))
    events.record(session, now, "group_removed", detail=f"a group and its history were erased; "
                  f"{closed} open check-in(s) closed, {told} person(s) stood down")
    return closed, told
