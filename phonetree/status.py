"""What an organiser reads back: the open items of a group, and the outbox."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from phonetree import outages
from phonetree.checkins import OPEN_CHECKIN_STATES
from phonetree.models import CheckIn, Event, Group, Inbound, Member, Message, Task

RECENT_REPLIES = timedelta(days=2)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _local(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%a %d %b %H:%M")


class _Times:
    """_iso and _local, each worked out once per distinct instant: a big group's open and
    upcoming check-ins share a few slot times, and formatting each row's anew was most of
    the time `status` took (10,000 members: 22,000 isoformat calls for ~150 instants)."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._iso: dict[datetime, str] = {}
        self._local: dict[datetime, str] = {}

    def iso(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is not timezone.utc:
            # Equal instants in other zones are equal keys but print other offsets.
            return value.isoformat()
        text = self._iso.get(value)
        if text is None:
            text = self._iso[value] = value.isoformat()
        return text

    def local(self, value: datetime) -> str:
        text = self._local.get(value)  # the same local text for an instant, whatever its zone
        if text is None:
            text = self._local[value] = _local(value, self.zone)
        return text


def group_status(session: Session, group: Group, now: datetime) -> dict[str, Any]:
    """Check-ins awaiting a reply, escalations in progress, alerts nobody has closed, and
    replies a person should read.

    Columns, not ORM objects, and each read bounded by what is open or recent (through an
    index), so its cost follows what there is to show, not the group's size or history."""
    zone = ZoneInfo(group.timezone)
    # Plain Core rows (the session's connection, after a flush so nothing pending is missed):
    # the ORM's result machinery cost more than the queries at 14,000 rows.
    session.flush()
    read = session.connection().execute
    times = _Times(zone)
    iso, local = times.iso, times.local
    is_open = and_(CheckIn.group_id == group.id, CheckIn.state.in_(OPEN_CHECKIN_STATES))
    open_items = read(
        select(CheckIn.id, Member.name, CheckIn.help_requested_at, CheckIn.state, CheckIn.urgent,
               CheckIn.due_at, CheckIn.sent_at, CheckIn.window_ends_at, CheckIn.outcome)
        .join(Member, Member.id == CheckIn.member_id)
        .where(is_open).order_by(CheckIn.due_at, CheckIn.id)
    ).all()
    asked: dict[int, list[dict[str, Any]]] = {row.id: [] for row in open_items}
    for checkin_id, name, state, asked_at, kind in read(
            select(Task.checkin_id, Member.name, Task.state, Task.asked_at, Task.kind)
            .join(Member, Member.id == Task.assignee_id)
            .where(Task.checkin_id.in_(select(CheckIn.id).where(is_open)))
            .order_by(Task.id)):
        if checkin_id is not None:  # always, by the IN; the column is nullable for other kinds
            asked[checkin_id].append({"name": name, "state": state, "asked_at": iso(asked_at), "kind": kind})
    items = [{
        "member": c.name,
        "asked_for_call": c.help_requested_at is not None,
        "asked_for_call_at": iso(c.help_requested_at),
        "asked_for_call_local": local(c.help_requested_at) if c.help_requested_at else None,
        "state": c.state,
        "urgent": c.urgent,
        "due_at": iso(c.due_at),
        "due_local": local(c.due_at),
        "sent_at": iso(c.sent_at),
        "window_ends_at": iso(c.window_ends_at),
        "note": c.outcome,
        "asked": asked[c.id],
    } for c in open_items]
    upcoming = read(
        select(Member.name, CheckIn.due_at).join(Member, Member.id == CheckIn.member_id)
        .where(CheckIn.group_id == group.id, CheckIn.state == "scheduled",
               CheckIn.due_at <= now + timedelta(hours=24))
        .order_by(CheckIn.due_at, CheckIn.id)
    ).all()
    # The words passed on in this group (inbound._unknown's trail), whoever they reached: a reply
    # is recorded under the first member with its number, who may be in another group, and words
    # about one group are never shown to another.
    in_group, sender = aliased(Member), aliased(Member)
    unread = read(
        select(in_group.name, Inbound.received_at, Inbound.body).select_from(Event)
        .join(in_group, in_group.id == Event.member_id)
        .join(sender, sender.phone == in_group.phone)
        .join(Inbound, and_(Inbound.member_id == sender.id, Inbound.received_at == Event.at))
        .where(Event.group_id == group.id, Event.kind == "reply_forwarded", Event.at >= now - RECENT_REPLIES)
        .order_by(Inbound.received_at, Inbound.id)
    ).all()
    # Check-ins whose day passed while the service was down (checkins.report_missed): told to
    # whoever could be told, and shown here too, for a group where nobody could (few rows, by
    # the group-state index, whatever the history).
    missed = read(
        select(Member.name, CheckIn.due_at).join(Member, Member.id == CheckIn.member_id)
        .where(CheckIn.group_id == group.id, CheckIn.state == "missed",
               CheckIn.closed_at >= now - RECENT_REPLIES)
        .order_by(CheckIn.due_at, CheckIn.id)
    ).all()
    failures = read(
        select(Member.name, Message.kind, Message.error, Message.created_at)
        .outerjoin(Member, Member.id == Message.member_id)
        .where(Message.group_id == group.id, Message.state.in_(("failed", "expired")),
               Message.created_at >= now - RECENT_REPLIES)
        .order_by(Message.created_at, Message.id)
    ).all()
    today = now.astimezone(zone).date()
    members = read(
        select(Member.name, Member.paused_until, Member.opted_out, Member.phone_problem)
        .where(Member.group_id == group.id,
               or_(Member.paused_until >= today, Member.opted_out.is_(True),
                   and_(Member.phone_problem.is_not(None), Member.phone_problem != "")))
        .order_by(Member.id)
    ).all()
    return {
        "group": group.name,
        "timezone": group.timezone,
        "now": _iso(now),
        "provider": _provider(session, group, zone),
        "open": items,
        "upcoming": [{"member": name, "due_at": iso(due_at), "due_local": local(due_at)}
                     for name, due_at in upcoming],
        "replies_to_read": [{"member": name, "received_at": _iso(at), "text": body} for name, at, body in unread],
        "missed_while_down": [{"member": name, "due_at": iso(due_at), "due_local": local(due_at)}
                              for name, due_at in missed],
        "paused": [{"member": m.name, "until": m.paused_until.isoformat()} for m in members
                   if m.paused_until is not None and today <= m.paused_until],
        "opted_out": [m.name for m in members if m.opted_out],
        "phone_problems": [{"member": m.name, "problem": m.phone_problem} for m in members if m.phone_problem],
        "delivery_problems": [{"member": name, "kind": kind, "error": error, "at": _iso(at)}
                              for name, kind, error, at in failures],
    }


def _provider(session: Session, group: Group, zone: ZoneInfo) -> dict[str, Any] | None:
    """While the SMS/voice provider is failing: since when, and how many of this group's
    messages are waiting for it. None while all is well."""
    outage = outages.current(session)
    if outage is None:
        return None
    waiting = session.scalar(select(func.count()).select_from(Message).where(
        Message.group_id == group.id, Message.state.in_(("queued", "sending"))))
    return {"failing_since": _iso(outage.started_at),
            "failing_since_local": _local(outage.started_at, zone),
            "failures": outage.failures, "last_error": outage.last_error, "waiting": waiting}


def outbox(session: Session, group: Group | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Messages sent or recorded, oldest first. `timezone` is the group's (None for a message
    that outlived its group), so a person reads its times in local time."""
    query = (select(Message, Member.name, Group.timezone).outerjoin(Member, Member.id == Message.member_id)
             .outerjoin(Group, Group.id == Message.group_id))
    if group is not None:
        query = query.where(Message.group_id == group.id)
    query = query.order_by(Message.created_at, Message.id)
    rows = session.execute(query).all()
    if limit is not None:
        rows = rows[-limit:]
    return [{
        "id": m.id,
        "to": m.to_phone,
        "name": name,
        "channel": m.channel,
        "body": m.body,
        "kind": m.kind,
        "state": m.state,
        "created_at": _iso(m.created_at),
        "sent_at": _iso(m.sent_at),
        "error": m.error,
        "timezone": tz,
    } for m, name, tz in rows]
