"""What an organiser reads back: the open items of a group, and the outbox."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from phonetree import outages
from phonetree.checkins import OPEN_CHECKIN_STATES
from phonetree.models import CheckIn, Group, Inbound, Member, Message

RECENT_REPLIES = timedelta(days=2)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def group_status(session: Session, group: Group, now: datetime) -> dict[str, Any]:
    """Check-ins awaiting a reply, escalations in progress, alerts nobody has closed, and
    replies a person should read."""
    zone = ZoneInfo(group.timezone)
    open_items = session.scalars(
        select(CheckIn).options(joinedload(CheckIn.member), joinedload(CheckIn.tasks))
        .where(CheckIn.group_id == group.id, CheckIn.state.in_(OPEN_CHECKIN_STATES))
        .order_by(CheckIn.due_at)
    ).unique().all()
    items = []
    for checkin in open_items:
        asked = [{"name": t.assignee.name, "state": t.state, "asked_at": _iso(t.asked_at),
                  "kind": t.kind} for t in checkin.tasks]
        items.append({
            "member": checkin.member.name,
            "asked_for_call": checkin.help_requested_at is not None,
            "asked_for_call_at": _iso(checkin.help_requested_at),
            "asked_for_call_local": (checkin.help_requested_at.astimezone(zone).strftime("%a %d %b %H:%M")
                                     if checkin.help_requested_at else None),
            "state": checkin.state,
            "urgent": checkin.urgent,
            "due_at": _iso(checkin.due_at),
            "due_local": checkin.due_at.astimezone(zone).strftime("%a %d %b %H:%M"),
            "sent_at": _iso(checkin.sent_at),
            "window_ends_at": _iso(checkin.window_ends_at),
            "note": checkin.outcome,
            "asked": asked,
        })
    upcoming = session.scalars(
        select(CheckIn).options(joinedload(CheckIn.member))
        .where(CheckIn.group_id == group.id, CheckIn.state == "scheduled",
               CheckIn.due_at <= now + timedelta(hours=24))
        .order_by(CheckIn.due_at)
    ).all()
    unread = session.execute(
        select(Inbound, Member).join(Member, Member.id == Inbound.member_id)
        .where(Member.group_id == group.id, Inbound.intent == "unknown",
               Inbound.received_at >= now - RECENT_REPLIES)
        .order_by(Inbound.received_at)
    ).all()
    failures = session.execute(
        select(Message, Member.name).outerjoin(Member, Member.id == Message.member_id)
        .where(Message.group_id == group.id, Message.state.in_(("failed", "expired")),
               Message.created_at >= now - RECENT_REPLIES)
        .order_by(Message.created_at)
    ).all()
    return {
        "group": group.name,
        "timezone": group.timezone,
        "now": _iso(now),
        "provider": _provider(session, group, zone),
        "open": items,
        "upcoming": [{"member": c.member.name, "due_at": _iso(c.due_at),
                      "due_local": c.due_at.astimezone(zone).strftime("%a %d %b %H:%M")} for c in upcoming],
        "replies_to_read": [{"member": m.name, "received_at": _iso(i.received_at), "text": i.body}
                            for i, m in unread],
        "paused": [{"member": m.name, "until": m.paused_until.isoformat()} for m in group.members
                   if m.paused_until and m.is_paused(now.astimezone(zone).date())],
        "opted_out": [m.name for m in group.members if m.opted_out],
        "phone_problems": [{"member": m.name, "problem": m.phone_problem} for m in group.members
                           if m.phone_problem],
        "delivery_problems": [{"member": name, "kind": m.kind, "error": m.error,
                               "at": _iso(m.created_at)} for m, name in failures],
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
            "failing_since_local": outage.started_at.astimezone(zone).strftime("%a %d %b %H:%M"),
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
