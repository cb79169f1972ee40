"""What happens after a message leaves: delivery receipts, call outcomes, and the rule that a
message which will never arrive still reaches a person by another way. (A key pressed on one of
our calls is a reply: inbound.keypress.)"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from phonetree import checkins, escalation, events
from phonetree.db import insert_ignoring_duplicates
from phonetree.directory import organisers
from phonetree import tasks
from phonetree.gateways import base
from phonetree.messages import message_row, queue, resend_row
from phonetree.models import Group, Member, Message, Task, WebhookReceipt
from phonetree.phones import display

log = logging.getLogger(__name__)

REASONS = {
    base.BAD_NUMBER: "number not in use", base.OPTED_OUT: "they have opted out",
    base.USE_VOICE: "can't get texts", base.BLOCKED: "blocked by the network",
    base.CONFIG: "account settings", "suppressed": "they have opted out",
    "expired": "not sent in time", "no_answer": "no answer",
}
# Notices about failures: if one of these fails too, it is logged, not re-notified (no loops).
FAILURE_NOTICES = ("undeliverable", "switched_to_voice")
# Forward-only ordering of message statuses; the last two are both final.
MESSAGE_ORDER = {"queued": 0, "accepted": 0, "sending": 1, "sent": 2, "delivered": 3,
                 "undelivered": 3, "failed": 3, "read": 4}
NO_ANSWER = {"busy", "no-answer", "failed", "canceled"}
RETRY_CALL_AFTER = timedelta(minutes=5)
RETRY_LATER = timedelta(minutes=10)


def first_time(session: Session, now: datetime, sid: str, event: str) -> bool:
    """Record a webhook event; False if this (sid, event) was seen before (a repeat delivery)."""
    return insert_ignoring_duplicates(session, WebhookReceipt, [
        {"sid": sid, "event": event[:40], "received_at": now}]) == 1


def undeliverable(session: Session, now: datetime, message: Message, action: str, detail: str = "") -> None:
    """A message that will never arrive. Whatever it carried must still reach a person."""
    member = session.get(Member, message.member_id) if message.member_id else None
    if member is None:
        return
    group = member.group
    reason = REASONS.get(action, "not delivered")
    if action == base.BAD_NUMBER:
        member.phone_problem = reason
    if action == base.OPTED_OUT:
        member.opted_out = True
    if action == base.USE_VOICE and message.channel == "sms":
        member.channel = "voice"
        events.record(session, now, "switched_to_voice", group_id=group.id, member_id=member.id)
        tell_organisers(session, now, group, member, message, "switched_to_voice")
        if message.template in ("checkin", "reminder"):
            # The same prompt, spoken instead, by the same deadline; the check-in waits for it.
            spoken = message_row(now, group, member, kind=message.kind,
                                 template=message.template, values={"name": member.name},
                                 dedupe_key=f"{message.dedupe_key}:voice", checkin_id=message.checkin_id,
                                 channel="voice", deadline=message.expires_at,
                                 validity=timedelta(seconds=message.validity_s) if message.validity_s else None)
            if spoken["expires_at"] is None or spoken["not_before"] < spoken["expires_at"]:
                queue(session, [spoken])
                return
            # Quiet hours hold the call past its deadline (a prompt late from an outage, found to
            # be a landline at 22:45): a reminder lapses; the day's prompt is reported as missed
            # now, not rung tomorrow morning (long-run seed 15000012: "prompting" all night).
            _report_unsent_prompt(session, now, message)
            return
        # An ask or alert: the same, rung, and it stays with them (passed on instead, a HELP's
        # alert to the one other organiser reached nobody).
        task = session.get(Task, message.task_id) if message.task_id else None
        if task is not None and message.purpose is not None and escalation.ring_instead(session, now, task, message):
            return
    events.record(session, now, "undeliverable", group_id=group.id, member_id=member.id,
                  checkin_id=message.checkin_id, detail=f"{message.kind}: {reason}")
    if message.template in FAILURE_NOTICES:
        log.error("a notice about a failed message could not be delivered either (%s)", detail[:100])
        return
    if message.kind in ("checkin", "reminder") and message.checkin_id:
        if action == "expired":
            # Never sent in time: a reminder just lapses (the window's end still acts); a
            # prompt whose day ended unsent is reported as missed, not raised as "no reply".
            _report_unsent_prompt(session, now, message)
        elif message.kind == "checkin" or action not in ("suppressed", base.OPTED_OUT):
            # A reminder to someone who has opted out since their prompt arrived lapses, whether
            # we held it back or the provider refused it (their STOP lost in a crash): they had
            # the prompt and may still reply, and the window's end acts as for any silence.
            checkins.prompt_failed(session, message.checkin_id, now, reason)
    elif message.task_id:
        task = session.get(Task, message.task_id)
        if task is not None and task.state == "asked":
            tasks.unreachable(session, task, now)
    if action in (base.BAD_NUMBER, base.CONFIG, base.BLOCKED):
        tell_organisers(session, now, group, member, message, reason)


def _report_unsent_prompt(session: Session, now: datetime, message: Message) -> None:
    """A check-in prompt that can't go out on its day: the check-in, if it still waits for it,
    is reported as missed (checkins.report_missed). A reminder just lapses."""
    checkin = session.get(checkins.CheckIn, message.checkin_id) if message.checkin_id else None
    if message.kind == "checkin" and checkin is not None and checkin.state == "prompting":
        checkins.report_missed(session, [checkin], now)


def tell_organisers(session: Session, now: datetime, group: Group, member: Member, message: Message,
                    reason: str) -> None:
    template = "switched_to_voice" if reason == "switched_to_voice" else "undeliverable"
    queue(session, [message_row(
        now, group, organiser, kind="alert", template=template,
        values={"contact": organiser.name, "member": member.name, "phone": display(member.phone),
                "reason": reason},
        dedupe_key=f"message:{message.id}:{template}:{organiser.id}", checkin_id=message.checkin_id,
        about=member,
    ) for organiser in organisers(session, group.id) if organiser.id != member.id])


def left(session: Session, now: datetime, message: Message) -> None:
    """A receipt for a message we never marked as sent: the provider took it, and we crashed (or
    timed out) between its answer and our mark. It left, so it is marked sent, not sent again
    when its lease runs out, and what its leaving starts starts now: a check-in's window, a
    contact's wait. Otherwise the check-in would wait for a mark that never comes."""
    if message.state not in ("sending", "queued"):
        return
    message.state, message.sent_at, message.lease_until = "sent", now, None
    if message.kind == "checkin" and message.checkin_id:
        window = checkins.prompt_windows(session, [message.checkin_id]).get(message.checkin_id)
        if window is not None:
            checkins.prompt_sent(session.connection(), window, now)
    if message.task_id and message.purpose == "ask":
        tasks.wait_from(session, message.task_id, now)
    log.info("message %s: a receipt arrived before its send was recorded; marked sent", message.id)


def message_status(session: Session, now: datetime, message: Message, status: str,
                   failure_action: str | None, error_code: str | None) -> bool:
    """A delivery receipt. Statuses only move forward (Twilio sends them in no fixed order).
    Returns True if anything changed."""
    current = MESSAGE_ORDER.get(message.provider_status or message.state, 0)
    new = MESSAGE_ORDER.get(status)
    if new is None or new < current or (new == current and message.provider_status is not None):
        return False
    left(session, now, message)
    message.provider_status = status
    if status in ("delivered", "read"):
        message.state = "delivered"
        return True
    if status not in ("undelivered", "failed"):
        return True
    message.state = "failed"
    message.error = f"{error_code}: delivery failed" if error_code else "delivery failed"
    if failure_action == base.RETRY_LATER and message.purpose != "later":
        # The phone was off or out of signal: one more try in a while, then a person.
        queue(session, [resend_row(message, now, "later", now + RETRY_LATER)])
        return True
    undeliverable(session, now, message, failure_action or base.FAILED, message.error)
    return True


def call_status(session: Session, now: datetime, message: Message, status: str, machine: bool) -> bool:
    """A voice call ended. Busy, no answer, failure or an answering machine count as no answer:
    a check-in call is tried once more after a few minutes (never again after a machine, so a
    person living alone isn't rung over and over), then the normal window and escalation go on.
    An escalation call nobody answered passes to the next contact at once."""
    left(session, now, message)
    message.provider_status = status
    unanswered = status in NO_ANSWER or (status == "completed" and machine)
    if not unanswered:
        if status == "completed" and message.state == "sent":
            message.state = "delivered"
        return status == "completed"
    message.error = "answering machine" if machine else status
    if message.template in ("checkin", "reminder") and message.checkin_id:
        checkin = session.get(checkins.CheckIn, message.checkin_id)
        if (checkin is not None and checkin.state in ("prompting", "sent") and not machine
                and message.purpose != "redial"):
            redial = resend_row(message, now, "redial", now + RETRY_CALL_AFTER)
            queue(session, [redial])
        events.record(session, now, "call_unanswered", group_id=message.group_id, member_id=message.member_id,
                      checkin_id=message.checkin_id, detail=message.error)
        return True
    if message.task_id:
        task = session.get(Task, message.task_id)
        if task is not None and task.state == "asked" and task.kind == "escalation":
            tasks.unreachable(session, task, now, "no_answer")
    return True
