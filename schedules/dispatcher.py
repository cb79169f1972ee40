"""The dispatcher: claim due messages in priority order, send them through the gateway at the
rate the provider allows, and act on what comes back.

A message is claimed (state `sending`, with a lease) in one short transaction, sent outside any
transaction, then marked. If a worker dies between send and mark, the lease runs out and the
message is sent again: that lease is the documented duplicate window. Nothing is ever resent
blindly after an error the provider may have acted on.

Marks are written by a thread of their own (`_Marker`), so a sending thread goes on to its next
message while the last one's commit runs. But no sending thread lets a request leave before its
previous message is recorded (`Outgoing.ready`; the twilio gateway waits for it just before the
request is written, after the client's own work on it): a worker killed at any moment has at
most one message per sending thread that left unrecorded, as when each thread marked its own.
"""
from __future__ import annotations

import itertools
import logging
import queue
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Connection, Engine, bindparam, exists, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from phonetree import checkins, outages, tasks
from phonetree.checkins import PromptWindow
from phonetree.db import session_scope
from phonetree.delivery import undeliverable
from phonetree.gateways import base
from phonetree.gateways.base import Gateway, GatewayError, NotSupported, Outgoing
from phonetree.models import Member, Message, Task
from phonetree.phones import mask
from phonetree.prepared import Prepared, Transaction, transaction
from phonetree.texts import GATHER

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
BATCH = 200
MARK_ATTEMPTS = 6  # 0.25 s, doubling: about 8 s in all
# Tries for a message whose recipient's phone is off (RETRY_LATER). A transient provider failure
# (RETRY) has no such limit: it is not anyone's answer, so the message is tried again for as
# long as it is still useful (until its expires_at), and its waits start when it finally leaves.
MAX_ATTEMPTS = 6
RETRY_LATER = timedelta(minutes=10)
# The longest wait between tries during an outage: sending resumes within about a minute of the
# provider coming back (and each dispatch pass probes with the most urgent message meanwhile).
MAX_BACKOFF = timedelta(seconds=60)


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    suppressed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, other: "DispatchResult") -> None:
        with self._lock:  # sending threads finish at once
            for name in ("sent", "failed", "retried", "suppressed"):
                setattr(self, name, getattr(self, name) + getattr(other, name))


class RateLimiter:
    """A token bucket per channel: at most `rate` starts per second, smoothly. It reads the
    monotonic clock (throughput, not scheduling), so freezegun'd tests are not slowed."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, priority: int | None = None) -> None:
        """Block until this send may start. (`priority` matters only to the limit shared between
        workers, schedules/shared_rate.py: within one process at most `threads` starts are
        reserved ahead, a fraction of a second.)"""
        if not self.interval:
            return
        with self._lock:
            moment = time.monotonic()
            start = max(moment, self._next)
            self._next = start + self.interval
        if start > moment:
            time.sleep(start - moment)

    @property
    def share(self) -> float:
        """The starts a second this worker gets: all of them, as it is the only one."""
        return self.rate


def backoff(attempt: int) -> timedelta:
    """Jittered exponential backoff: 2, 4, 8 ... seconds, +/- 50%, never more than MAX_BACKOFF."""
    seconds = min(2 ** min(attempt, 16), MAX_BACKOFF.total_seconds())
    return min(timedelta(seconds=seconds * random.uniform(0.5, 1.5)), MAX_BACKOFF)


@dataclass
class _Provider:
    """Whether the provider is failing, as this dispatch pass knows it. While it is, a pass sends
    one message (the most urgent due) as a probe rather than hammering a provider that is down
    with a morning's queue, and a failed try moves every waiting message to the same next try
    (see `_failed`): so when the provider comes back they are all due together and leave in
    priority order, urgent first. The first answer from the provider that is not a transient
    failure ends the outage: a message that leaves, or one it refuses for good (a landline, a
    number that doesn't exist), which proves it is answering just as well. (A probe refused for
    good used to leave the outage on, and that pass ended with the rest of the queue due.)"""

    gateway: str
    failing: bool
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answered(self, engine: Engine, now: datetime) -> None:
        with self._lock:
            if not self.failing:
                return
            self.failing = False
        outages.recovered(engine, self.gateway, now)


class MarkFailed(Exception):
    """A message that left could not be recorded (the database refused MARK_ATTEMPTS times):
    the pass stops rather than send more it could not record. (That message is sent again once
    its lease runs out: the documented duplicate.)"""


@dataclass
class _Mark:
    """One message's outcome, waiting to be recorded. `outcome` None: a flush (`_Marker.flush`)."""

    when: datetime
    outcome: tuple[Message, str | None, GatewayError | None] | None
    window: PromptWindow | None
    done: threading.Event = field(default_factory=threading.Event)
    failed: bool = False


class _Marker:
    """Records outcomes in order on a thread of its own: what is waiting when it gets to them
    (at most one per sending thread: see `_deliver`) goes in one transaction when they all
    simply left, so sending threads don't queue behind each other's commits. Once a mark has
    failed for good every later one fails too, and each sending thread's next `ready` raises
    MarkFailed: nothing more leaves that could not be recorded."""

    def __init__(self, engine: Engine, provider: _Provider, result: DispatchResult) -> None:
        self.engine, self.provider, self.result = engine, provider, result
        self._queue: "queue.SimpleQueue[_Mark | None]" = queue.SimpleQueue()
        self.failed = False
        self._thread = threading.Thread(target=self._run, name="mark", daemon=True)
        self._thread.start()

    def put(self, mark: _Mark) -> None:
        self._queue.put(mark)

    def wait(self, mark: _Mark) -> None:
        mark.done.wait()
        if mark.failed:
            raise MarkFailed(f"message {mark.outcome[0].id if mark.outcome else '?'} could not be recorded")

    def flush(self) -> None:
        """Wait until everything handed over so far is recorded (raises MarkFailed if it wasn't)."""
        barrier = _Mark(datetime.min, None, None)
        self.put(barrier)
        self.wait(barrier)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        running = True
        while running:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    running = False
                    break
                batch.append(more)
            try:
                self._record(batch)
            except Exception:  # noqa: BLE001 - a refusal or a bug: senders must not wait forever
                log.exception("recording %d message outcome(s) failed", len(batch))
                for mark in batch:
                    if mark.outcome is not None:
                        log.error("could not record message %s; it may be sent again when its lease "
                                  "runs out", mark.outcome[0].id)
                self.failed = True
            for mark in batch:
                mark.failed = self.failed and mark.outcome is not None
                mark.done.set()

    def _record(self, batch: list[_Mark]) -> None:
        if self.failed:
            for mark in batch:
                if mark.outcome is not None:
                    log.error("could not record message %s: the database refused an earlier mark; it may "
                              "be sent again when its lease runs out", mark.outcome[0].id)
            return
        quick = [m for m in batch if m.outcome is not None and _is_quick(m.outcome)]
        if quick and not _mark_sent(self.engine, self.provider.gateway, quick):
            self.failed = True
            return
        if quick:
            self.result.add(DispatchResult(sent=len(quick)))
            self.provider.answered(self.engine, quick[-1].when)
        for mark in batch:
            if mark.outcome is not None and not _is_quick(mark.outcome):
                if not _mark(self.engine, mark.when, self.provider, mark.outcome, mark.window, self.result):
                    self.failed = True
                    return


def _is_quick(outcome: tuple[Message, str | None, GatewayError | None]) -> bool:
    """A message that simply left (not a contact's ask, whose wait starts now): two prepared
    statements; the rest go through the ORM and the domain's own rules."""
    return outcome[2] is None and not _is_task_ask(outcome[0])


def _claim(session: Session, now: datetime, limit: int, lease: timedelta) -> list[Message]:
    # Leases that ran out belong to a worker that died mid-send: put them back in the queue.
    session.execute(update(Message).where(Message.state == "sending", Message.lease_until < now)
                    .values(state="queued", lease_until=None))
    # An ask, or its retry, whose task has left "asked" since it was queued (passed on when the
    # wait ran out, done, CANT) is not sent: the chain has moved on without it. (Stand-downs
    # withdraw their own asks: escalation.stand_down.)
    session.execute(update(Message).where(
        Message.state == "queued", Message.not_before <= now, Message.purpose.is_not(None),
        exists().where(Task.id == Message.task_id, Task.state != "asked"))
        .values(state="withdrawn"), execution_options={"synchronize_session": False})
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
             limiters: dict[str, RateLimiter] | None = None, lease: timedelta = LEASE,
             stop: threading.Event | None = None, threads: int = 1) -> DispatchResult:
    """Send everything due at `now` (or up to `limit` messages), most urgent first. When `stop`
    is set (the service is shutting down) it stops after the message in hand and puts what it
    had claimed back in the queue, rather than finishing a burst that may take minutes.

    `threads` messages are sent at once, each handed to the marker the moment it leaves: against
    a provider 100-300 ms away one at a time manages only 3-10 a second, below a sender's 10 a
    second. A worker killed mid-send repeats at most one message per sending thread: the one in
    flight, or the one just sent whose mark is being committed (the next waits for it).
    Raises MarkFailed once a mark is refused for good (see `_Marker`)."""
    result = DispatchResult()
    started = time.monotonic()
    provider = _Provider(gateway.name, outages.is_failing(engine, gateway.name))

    def current() -> datetime:
        # `now` moved on by the time this dispatch has taken: a long burst's later claims get
        # leases that are still valid when claimed, and their sends their real time.
        return now + timedelta(seconds=time.monotonic() - started)

    remaining = limit

    marker = _Marker(engine, provider, result)
    slot = threading.local()  # each sending thread's last message handed to the marker

    def deliver(message: Message, recipients: dict[int, Member], windows: dict[int, PromptWindow]) -> bool:
        """Send one claimed message and hand it to the marker; False (nothing done) once stopping.
        (Its batch's lookups are arguments: a sending thread may still be on an earlier batch.)"""
        if stop is not None and stop.is_set():
            return False
        previous: _Mark | None = getattr(slot, "last", None)

        def ready() -> None:
            # This thread's previous message recorded before this one may leave: a worker
            # killed now has at most one unrecorded message per sending thread.
            if previous is not None:
                marker.wait(previous)

        member = recipients.get(message.member_id) if message.member_id else None
        outcome: tuple[Message, str | None, GatewayError | None]
        if member is not None and member.opted_out:
            outcome = (message, None, GatewayError("opted out", True, "suppressed"))
        elif message.expires_at is not None and message.expires_at <= current():
            outcome = (message, None, GatewayError("not sent in time", True, "expired"))
        else:
            if limiters and message.channel in limiters:
                limiters[message.channel].wait(message.priority)
            if not gateway.calls_ready:
                ready()
            _sending.ready = ready
            try:
                outcome = _send_one(gateway, message)
            finally:
                _sending.ready = None
        ready()  # whatever the gateway did: at most one waiting per thread
        window = windows.get(message.checkin_id) if _is_prompt(message) else None  # type: ignore[arg-type]
        slot.last = _Mark(current() if limiters else now, outcome, window)
        marker.put(slot.last)
        return True

    pool = ThreadPoolExecutor(threads, thread_name_prefix="send") if threads > 1 else None
    in_flight: list[tuple[Message, Future[bool]]] = []
    try:
        while remaining is None or remaining > 0:
            probing = provider.failing
            step = _step(limiters)
            batch = 1 if probing else step if remaining is None else min(step, remaining)
            with session_scope(engine) as session:
                claimed = _claim(session, current(), batch, lease)
                recipients = {m.id: m for m in session.scalars(
                    select(Member).where(Member.id.in_({c.member_id for c in claimed if c.member_id}))
                )}
                windows = checkins.prompt_windows(session, (c.checkin_id for c in claimed
                                                             if _is_prompt(c) and c.checkin_id is not None))
            if not claimed:
                break

            if pool is None:  # one by one, until stopped
                done = list(itertools.takewhile(bool, (deliver(m, recipients, windows) for m in claimed)))
                unsent = [message.id for message in claimed[len(done):]]
            else:
                # In priority order, `threads` at a time. The next batch is claimed as soon as
                # this one is all in flight, not once it has all left: no sender idles at the seam.
                # Under a rate limit, once one sender is free: its head (a HELP, if one came) then
                # starts at once instead of behind senders waiting for their slots.
                in_flight += [(message, pool.submit(deliver, message, recipients, windows)) for message in claimed]
                in_flight, unsent = _settle(in_flight, 0 if probing else threads - 1 if limiters else threads)
            if unsent or (stop is not None and stop.is_set()):
                in_flight, more = _settle(in_flight, 0)
                marker.flush()
                _release(engine, unsent + more)
                return result
            if probing or pool is None:
                # What was sent is recorded before the next claim: an outage a failure started
                # makes the next pass probe, and a probe's success ends it.
                marker.flush()
            if probing and provider.failing:
                break  # still down: the next pass probes again
            if remaining is not None:
                remaining -= len(claimed)
        _settle(in_flight, 0)
        marker.flush()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        marker.close()
    return result


def _step(limiters: dict[str, RateLimiter] | None) -> int:
    """How many to claim next. Under a rate limit about a second's worth of this worker's sends,
    so a HELP that arrives mid-burst is picked up within a second instead of waiting behind a
    whole batch; with several workers sharing the rate, a second's worth of this one's share."""
    if not limiters:
        return BATCH
    fastest = max(l.share for l in limiters.values())
    return max(1, min(BATCH, int(fastest))) if fastest > 0 else BATCH


def _settle(in_flight: list[tuple[Message, "Future[bool]"]], most: int) -> tuple[list[tuple[Message, "Future[bool]"]], list[int]]:
    """Wait until at most `most` of the messages handed to the sending threads are unfinished.
    Returns those, and the ids of finished ones that were not sent (the dispatch is stopping).
    A send that raised raises here."""
    while sum(not future.done() for _, future in in_flight) > most:
        wait([future for _, future in in_flight if not future.done()], return_when=FIRST_COMPLETED)
    unsent = [message.id for message, future in in_flight if future.done() and not future.result()]
    return [(m, future) for m, future in in_flight if not future.done()], unsent


def _release(engine: Engine, ids: list[int]) -> None:
    """Give claimed, unsent messages back to the queue at once (not when their lease runs out)."""
    with session_scope(engine) as session:
        session.execute(update(Message).where(Message.id.in_(ids), Message.state == "sending")
                        .values(state="queued", lease_until=None, attempts=Message.attempts - 1))


def _refused_by_provider(error: GatewayError) -> bool:
    """The provider itself answered with a refusal that retrying won't change (it carries the
    provider's error code), as opposed to a transient failure or one decided here (an opted-out
    member, a message past its use, a text too long for a call)."""
    return error.action != base.RETRY and error.code is not None


def _is_prompt(message: Message) -> bool:
    return bool(message.checkin_id) and message.kind == "checkin"


def _is_task_ask(message: Message) -> bool:
    return bool(message.task_id) and message.purpose == "ask"


def _mark(engine: Engine, when: datetime, provider: _Provider,
          outcome: tuple[Message, str | None, GatewayError | None], window: PromptWindow | None,
          result: DispatchResult) -> bool:
    """Record what happened to one message (through the ORM and the domain's own rules); False
    if the database refused it for good."""
    message, _, error = outcome
    counts = DispatchResult()

    def write() -> None:
        nonlocal counts
        counts = DispatchResult()  # a try that rolled back counts nothing
        with session_scope(engine) as session:
            _record(session, when, provider, outcome, counts)

    if not _retried(write, [message.id]):
        return False
    result.add(counts)
    if error is None or _refused_by_provider(error):
        provider.answered(engine, when)
    return True


def _mark_sent(engine: Engine, gateway_name: str, marks: list[_Mark]) -> bool:
    """Record messages that simply left, in one transaction of their own (two prepared statements
    each); False if the database refused for good."""
    def write() -> None:
        with transaction(engine) as connection:
            for mark in marks:
                assert mark.outcome is not None
                message, sid, _ = mark.outcome
                _record_sent(connection, mark.when, gateway_name, message, sid, mark.window)

    return _retried(write, [mark.outcome[0].id for mark in marks if mark.outcome is not None])


def _retried(write: Callable[[], None], message_ids: list[int]) -> bool:
    """Run `write`, one transaction of marks, until it commits. If the database is busy, try again
    for a while: a message that left but isn't marked would be sent again when its lease runs
    out. False, with each message logged, if it never did."""
    for attempt in range(MARK_ATTEMPTS):
        try:
            write()
            return True
        except OperationalError:
            if attempt < MARK_ATTEMPTS - 1:
                time.sleep(0.25 * 2 ** attempt)
    for message_id in message_ids:
        log.error("could not record message %s after %d tries; it may be sent again when its lease "
                  "runs out", message_id, MARK_ATTEMPTS)
    return False


_messages = Message.__table__
_SENT = Prepared(update(_messages).where(_messages.c.id == bindparam("mid"))
                 .values(state="sent", sent_at=bindparam("at"), lease_until=None, gateway=bindparam("gw"),
                         provider_sid=bindparam("sid")))


def _record_sent(connection: Connection | Transaction, when: datetime, gateway_name: str, message: Message,
                 sid: str | None, window: PromptWindow | None) -> None:
    _SENT.rowcount(connection, {"mid": message.id, "at": when, "gw": gateway_name, "sid": sid})
    if window is not None:
        checkins.prompt_sent(connection, window, when)
    log.debug("message %s sent via %s", message.id, gateway_name)


# The sending thread's `ready` for the message in hand (set by `dispatch`'s deliver), so that
# `_send_one(gateway, message)` stays the one seam tests wrap.
_sending = threading.local()


def _send_one(gateway: Gateway, message: Message) -> tuple[Message, str | None, GatewayError | None]:
    out = Outgoing(
        message_id=message.id, to=message.to_phone, channel=message.channel, kind=message.kind,
        body=message.body or "", gather=message.template in GATHER, validity_s=message.validity_s,
        ready=getattr(_sending, "ready", None),
    )
    try:
        return message, gateway.send(out), None
    except MarkFailed:
        raise  # not sent: the one before it could not be recorded
    except GatewayError as error:
        return message, None, error
    except NotSupported as error:
        return message, None, GatewayError(str(error), True, base.CONFIG)
    except Exception as error:  # noqa: BLE001 - a gateway bug must not lose the message
        log.exception("gateway %s failed on message %s", gateway.name, message.id)
        # We don't know whether it left: retrying risks a duplicate, dropping risks a miss.
        # A check-in is safer sent twice than never, so it is retried like a transient error.
        return message, None, GatewayError(f"unexpected error: {error}", False, base.RETRY)


def _record(session: Session, now: datetime, provider: _Provider,
            outcome: tuple[Message, str | None, GatewayError | None], result: DispatchResult) -> None:
    message, sid, error = outcome
    if error is not None:
        _failed(session, now, message, error, result, provider)
        return
    _record_sent(session.connection(), now, provider.gateway, message, sid, None)
    if message.task_id and _is_task_ask(message):
        tasks.wait_from(session, message.task_id, now)
    result.sent += 1


def _failed(session: Session, now: datetime, message: Message, error: GatewayError,
            result: DispatchResult, provider: _Provider) -> None:
    row = session.get(Message, message.id)
    assert row is not None
    row.lease_until = None
    row.error = (f"{error.code}: " if error.code else "") + error.message[:180]
    if error.action == base.RETRY:
        # The provider, not the person: held and tried again, however long it takes, while it is
        # still useful (a message past its expires_at is reported instead when next claimed).
        row.state = "queued"
        row.not_before = now + backoff(row.attempts)
        result.retried += 1
        outages.failed(session, provider.gateway, now, row.error)
        provider.failing = True
        # Everything else waiting is tried no sooner than this one (never moved earlier): one
        # probe at a time while the provider is down, then all together by priority.
        session.execute(update(Message).where(Message.state == "queued", Message.id != row.id,
                                              Message.not_before < row.not_before)
                        .values(not_before=row.not_before))
        log.info("message %s to %s held: %s; next try at %s", row.id, mask(row.to_phone),
                 row.error, row.not_before.isoformat())
        return
    if error.action == base.RETRY_LATER and row.attempts < MAX_ATTEMPTS:
        row.state = "queued"
        row.not_before = now + RETRY_LATER
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
