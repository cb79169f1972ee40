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

from phonetree import checkins
from phonetree.db import session_scope
from phonetree.delivery import undeliverable
from phonetree.gateways import base
from phonetree.gateways.base import Gateway, GatewayError, NotSupported, Outgoing
from phonetree.models import Member, Message
from phonetree.phones import mask
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
        self.rate = rate
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


def _claim(session: Session, now: datetime, limit: int, lease: timedelta) -> list[Message]:
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
        .values(state="sending", lease_until=now + lease, attempts=Message.attempts + 1)
        .returning(Message.id)
    ))
    return list(session.scalars(select(Message).where(Message.id.in_(claimed))
                                .order_by(Message.priority, Message.not_before, Message.id)))


def dispatch(engine: Engine, gateway: Gateway, now: datetime, limit: int | None = None,
             limiters: dict[str, RateLimiter] | None = None, lease: timedelta = LEASE) -> DispatchResult:
    """Send everything due at `now` (or up to `limit` messages), most urgent first."""
    result = DispatchResult()
    started = time.monotonic()
    remaining = limit
    # Under a rate limit, claim about a second's worth at a time, so a HELP that arrives
    # mid-burst is picked up within a second instead of waiting behind a whole batch.
    step = BATCH
    if limiters:
        fastest = max(l.rate for l in limiters.values())
        step = max(1, min(BATCH, int(fastest))) if fastest > 0 else BATCH
    while remaining is None or remaining > 0:
        batch = step if remaining is None else min(step, remaining)
        with session_scope(engine) as session:
            claimed = _claim(session, now, batch, lease)
            recipients = {m.id: m for m in session.scalars(
                select(Member).where(Member.id.in_({c.member_id for c in claimed if c.member_id}))
            )}
        if not claimed:
            break
        for message in claimed:
            member = recipients.get(message.member_id) if message.member_id else None
            if member is not None and member.opted_out:
                outcome = (message, None, GatewayError("opted out", True, "suppressed"))
            elif message.expires_at is not None and message.expires_at <= now:
                outcome = (message, None, GatewayError("not sent in time", True, "expired"))
            else:
                if limiters and message.channel in limiters:
                    limiters[message.channel].wait()
                outcome = _send_one(gateway, message)
            # Marked at once, each in its own transaction: a worker killed mid-batch resends
            # at most the one message it was sending, never the ones already out. Under a rate
            # limit a burst takes a while: the window starts when the message really left.
            sent_at = now + timedelta(seconds=time.monotonic() - started) if limiters else now
            with session_scope(engine) as session:
                _record(session, sent_at, gateway.name, [outcome], result)
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
    undeliverable(session, now, row, error.action, error.message)
