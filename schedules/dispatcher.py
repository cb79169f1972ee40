"""The dispatcher: claim due messages in priority order, send them through the gateway at the
rate the provider allows, and act on what comes back.

A message is claimed (state `sending`, with a lease) in one short transaction, sent outside any
transaction, then marked. If a worker dies between send and mark, the lease runs out and the
message is sent again: that lease is the documented duplicate window. Nothing is ever resent
blindly after an error the provider may have acted on.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from phonetree import checkins, events
from phonetree.db import session_scope
from phonetree.directory import organisers
from phonetree.escalation import task_cant
from phonetree.gateways import base
from phonetree.gateways.base import Gateway, GatewayError, NotSupported, Outgoing
from phonetree.messages import message_row, queue
from phonetree.models import Group, Member, Message, Task
from phonetree.phones import display, mask
from phonetree.texts import GATHER

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
BATCH = 200
MAX_ATTEMPTS = 6
RETRY_LATER = timedelta(minutes=10)


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    suppressed: int = 0


class RateLimiter:
    """A token bucket per channel: at most `rate` starts per second, smoothly. It reads the
    monotonic clock (throughput, not scheduling), so freezegun'd tests are not slowed."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            moment = time.monotonic()
            start = max(moment, self._next)
            self._next = start + self.interval
        if start > moment:
            time.sleep(start - moment)


def backoff(attempt: int) -> timedelta:
    """Jittered exponential backoff: 2, 4, 8 ... seconds (capped at 10 minutes), +/- 50%."""
    seconds = min(2 ** attempt, 600)
    return timedelta(seconds=seconds * random.uniform(0.5, 1.5))


def _claim(session: Session, now: datetime, limit: int) -> list[Message]:
    # Leases that ran out belong to a worker that died mid-send: put them back in the queue.
    session.execute(update(Message).where(Message.state == "sending", Message.lease_until < now)
                    .values(state="queued", lease_until=None))
    due = (select(Message.id).where(Message.state == "queued", Message.not_before <= now)
           .order_by(Message.priority, Message.not_before, Message.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        return []
    claimed = list(session.scalars(
        update(Message).where(Message.id.in_(ids), Message.state == "queued")
        .values(state="sending", lease_until=now + LEASE, attempts=Message.attempts + 1)
        .returning(Message.id)
    ))
    return list(session.scalars(select(Message).where(Message.id.in_(claimed))
                                .order_by(Message.priority, Message.not_before, Message.id)))


def dispatch(engine: Engine, gateway: Gateway, now: datetime, limit: int | None = None,
             limiters: dict[str, RateLimiter] | None = None) -> DispatchResult:
    """Send everything due at `now` (or up to `limit` messages), most urgent first."""
    result = DispatchResult()
    remaining = limit
    while remaining is None or remaining > 0:
        batch = BATCH if remaining is None else min(BATCH, remaining)
        with session_scope(engine) as session:
            claimed = _claim(session, now, batch)
            recipients = {m.id: m for m in session.scalars(
                select(Member).where(Member.id.in_({c.member_id for c in claimed if c.member_id}))
            )}
        if not claimed:
            break
        outcomes: list[tuple[Message, str | None, GatewayError | None]] = []
        for message in claimed:
            member = recipients.get(message.member_id) if message.member_id else None
            if member is not None and member.opted_out:
                outcomes.append((message, None, GatewayError("opted out", True, "suppressed")))
                continue
            if message.expires_at is not None and message.expires_at <= now:
                outcomes.append((message, None, GatewayError("not sent in time", True, "expired")))
                continue
            if limiters and message.channel in limiters:
                limiters[message.channel].wait()
            outcomes.append(_send_one(gateway, message))
        with session_scope(engine) as session:
            _record(session, now, gateway.name, outcomes, result)
        if remaining is not None:
            remaining -= len(claimed)
    return result


def _send_one(gateway: Gateway, message: Message) -> tuple[Message, str | None, GatewayError | None]:
    out = Outgoing(
        message_id=message.id, to=message.to_phone, channel=message.channel, kind=message.kind,
        body=message.body or "", gather=message.template in GATHER,
        validity_s=int((message.expires_at - message.not_before).total_seconds())
        if message.expires_at else None,
    )
    try:
        return message, gateway.send(out), None
    except GatewayError as error:
        return message, None, error
    except NotSupported as error:
        return message, None, GatewayError(str(error), True, base.CONFIG)
    except Exception as error:  # noqa: BLE001 - a gateway bug must not lose the message
        log.exception("gateway %s failed on message %s", gateway.name, message.id)
        # We don't know whether it left: retrying risks a duplicate, dropping risks a miss.
        # A check-in is safer sent twice than never, so it is retried like a transient error.
        return message, None, GatewayError(f"unexpected error: {error}", False, base.RETRY)


def _record(session: Session, now: datetime, gateway_name: str,
            outcomes: list[tuple[Message, str | None, GatewayError | None]], result: DispatchResult) -> None:
    sent_rows: list[dict[str, Any]] = []
    prompts: list[tuple[int, datetime]] = []
    for message, sid, error in outcomes:
        if error is None:
            sent_rows.append({"id": message.id, "state": "sent", "sent_at": now, "lease_until": None,
                              "gateway": gateway_name, "provider_sid": sid})
            if message.checkin_id and message.kind == "checkin":
                prompts.append((message.checkin_id, now))
            result.sent += 1
            continue
        _failed(session, now, message, error, result)
    if sent_rows:
        session.execute(update(Message), sent_rows)
    checkins.prompts_sent(session, prompts)
    if sent_rows:
        log.info("sent %d message(s) via %s", len(sent_rows), gateway_name)


def _failed(session: Session, now: datetime, message: Message, error: GatewayError,
            result: DispatchResult) -> None:
    row = session.get(Message, message.id)
    assert row is not None
    row.lease_until = None
    row.error = (f"{error.code}: " if error.code else "") + error.message[:180]
    retryable = error.action in (base.RETRY, base.RETRY_LATER) and row.attempts < MAX_ATTEMPTS
    if retryable:
        row.state = "queued"
        row.not_before = now + (backoff(row.attempts) if error.action == base.RETRY else RETRY_LATER)
        result.retried += 1
        log.warning("message %s to %s: %s; retrying at %s", row.id, mask(row.to_phone),
                    row.error, row.not_before.isoformat())
        return
    if error.action == "suppressed":
        row.state = "suppressed"
        result.suppressed += 1
    elif error.action == "expired":
        row.state = "expired"
        result.failed += 1
    else:
        row.state = "failed"
        result.failed += 1
    log.warning("message %s to %s not sent: %s", row.id, mask(row.to_phone), row.error)
    undeliverable(session, now, row, error)


def undeliverable(session: Session, now: datetime, message: Message, error: GatewayError) -> None:
    """A message that will never arrive. Whatever it carried must still reach a person."""
    member = session.get(Member, message.member_id) if message.member_id else None
    if member is None:
        return
    group = session.get(Group, member.group_id)
    assert group is not None
    reason = {base.BAD_NUMBER: "number not in use", base.OPTED_OUT: "they have opted out",
              base.USE_VOICE: "can't get texts", base.BLOCKED: "blocked by the network",
              base.CONFIG: "account settings", "suppressed": "they have opted out",
              "expired": "not sent in time"}.get(error.action, "not delivered")
    if error.action == base.BAD_NUMBER:
        member.phone_problem = reason
    if error.action == base.OPTED_OUT:
        member.opted_out = True
    if error.action == base.USE_VOICE and message.channel == "sms":
        member.channel = "voice"
        events.record(session, now, "switched_to_voice", group_id=group.id, member_id=member.id)
        _tell_organisers(session, now, group, member, message, "switched_to_voice")
        if message.template in ("checkin", "reminder"):
            # The same prompt, spoken instead; the check-in waits for it.
            queue(session, [message_row(now, group, member, kind=message.kind,
                                        template=message.template, values={"name": member.name},
                                        dedupe_key=f"{message.dedupe_key}:voice",
                                        checkin_id=message.checkin_id, channel="voice")])
            return
    events.record(session, now, "undeliverable", group_id=group.id, member_id=member.id,
                  checkin_id=message.checkin_id, detail=f"{message.kind}: {reason}")
    if message.kind in ("checkin", "reminder") and message.checkin_id:
        if message.kind == "checkin" or error.action != "suppressed":
            checkins.prompt_failed(session, message.checkin_id, now, reason)
    elif message.task_id:
        task = session.get(Task, message.task_id)
        if task is not None and task.state == "asked":
            task_cant(session, task, now)
    if error.action in (base.BAD_NUMBER, base.CONFIG, base.BLOCKED):
        _tell_organisers(session, now, group, member, message, reason)


def _tell_organisers(session: Session, now: datetime, group: Group, member: Member, message: Message,
                     reason: str) -> None:
    template = "switched_to_voice" if reason == "switched_to_voice" else "undeliverable"
    queue(session, [message_row(
        now, group, organiser, kind="alert", template=template,
        values={"contact": organiser.name, "member": member.name, "phone": display(member.phone),
                "reason": reason},
        dedupe_key=f"message:{message.id}:{template}:{organiser.id}", checkin_id=message.checkin_id,
    ) for organiser in organisers(session, group.id) if organiser.id != member.id])
