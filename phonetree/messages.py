"""Putting messages in the outbox table. Nothing is sent here: the dispatcher does that.

Each message has a dedupe key naming the promise it keeps ("checkin:42:prompt"), so however
often a step runs, the message exists once.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from phonetree import texts
from phonetree.db import insert_ignoring_duplicates
from phonetree.models import Group, Member, Message
from phonetree.quiet_hours import next_allowed

# Lower goes first: a person asking for help never waits behind the morning's check-ins.
PRIORITY = {
    "alert": 0,
    "escalation": 1,
    "reminder": 2,
    "checkin": 3,
    "call_prompt": 4,
    "cascade": 4,
    "confirmation": 5,
    "info": 5,
}
URGENT_PRIORITY = 0

# Routine prompts respect quiet hours; alerts, escalations, replies and notices do not.
ROUTINE = {"checkin", "reminder", "call_prompt", "cascade"}


def message_row(now: datetime, group: Group, member: Member, *, kind: str, template: str,
                values: dict[str, str], dedupe_key: str, checkin_id: int | None = None,
                task_id: int | None = None, urgent: bool = False, channel: str | None = None,
                validity: timedelta | None = None, deadline: datetime | None = None,
                purpose: str | None = None, about: Member | None = None) -> dict[str, Any]:
    """The row for one message to `member`, rendered for their channel. `purpose` and `about`
    are the columns of the same names (models.Message): what it is for, whom it concerns."""
    channel = channel or member.channel
    not_before = now
    if kind in ROUTINE and not urgent:
        not_before = next_allowed(now, group.timezone, group.quiet_start, group.quiet_end)
    return {
        "group_id": group.id,
        "member_id": member.id,
        "checkin_id": checkin_id,
        "task_id": task_id,
        "to_phone": member.phone,
        "channel": channel,
        "kind": kind,
        "template": template,
        "priority": URGENT_PRIORITY if urgent else PRIORITY[kind],
        "body": texts.render(template, channel, own_wording(group), member.language, **values),
        "dedupe_key": dedupe_key,
        "purpose": purpose,
        "about_member_id": about.id if about is not None else None,
        "state": "queued",
        "created_at": now,
        "not_before": not_before,
        "expires_at": deadline,
        "validity_s": int(validity.total_seconds()) if validity else None,
        "attempts": 0,
    }


def own_wording(group: Group) -> dict[str, str] | None:
    """A group's template overrides, parsed once per group object (not once per message)."""
    if not group.templates:
        return None
    cached = group.__dict__.get("_own_wording")
    if cached is None or cached[0] != group.templates:
        cached = (group.templates, texts.only_plain(json.loads(group.templates)))
        group.__dict__["_own_wording"] = cached
    return cached[1]


def queue(session: Session, rows: list[dict[str, Any]]) -> int:
    """Add messages to the outbox; a row whose dedupe key exists already is skipped."""
    session.flush()
    added = insert_ignoring_duplicates(session, Message, rows)
    if added:
        # Lets a webhook know it should wake the dispatcher (see web.WebhookApp.on_change).
        session.info["queued"] = session.info.get("queued", 0) + added
    return added


def resend_row(message: Message, now: datetime, purpose: str, not_before: datetime) -> dict[str, Any]:
    """The same message again, as a new row (a new try after the phone was off, "later", or a
    redial, "redial"): same words, same recipient, its own dedupe key so it happens once."""
    return {
        "group_id": message.group_id, "member_id": message.member_id, "checkin_id": message.checkin_id,
        "task_id": message.task_id, "to_phone": message.to_phone, "channel": message.channel,
        "kind": message.kind, "template": message.template, "priority": message.priority,
        "body": message.body, "dedupe_key": f"{message.dedupe_key}:{purpose}",
        "purpose": purpose, "about_member_id": message.about_member_id, "state": "queued",
        "created_at": now, "not_before": not_before,
        "expires_at": message.expires_at, "validity_s": message.validity_s,
        "attempts": 0,
    }
