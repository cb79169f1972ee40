"""The check-in's life (one day's item), as ARCHITECTURE.md draws it; its rule, the plan, is
phonetree/plans.py's.

Each step function takes `now`, does one thing for every row that is due, and is safe to run
twice or from two workers at once: rows are claimed with a conditional UPDATE before anything
is written for them, and messages carry dedupe keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import BindParameter, Connection, bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from phonetree import events
from zoneinfo import ZoneInfo

from phonetree.directory import can_be_told, organisers
from phonetree.errors import PhonetreeError
from phonetree.escalation import CLOSED, IN_TOUCH, SAYS_OK, ask, ask_next, chain_for, stand_down
from phonetree.messages import message_row, queue
from phonetree.models import CheckIn, CheckInPlan, Group, Member
from phonetree.prepared import Prepared, Transaction, one_of
from phonetree.quiet_hours import next_allowed
from phonetree.local_times import local_date, local_instant
from phonetree.work import Work

# A check-in in these states still awaits an answer or a person (see models.CheckIn's life).
OPEN_CHECKIN_STATES = ("prompting", "sent", "escalating", "alerted")
# Check-ins prompted per step at most: the tick sizes its steps to a time budget (phonetree.paced),
# so the morning slot is many short transactions; this only caps a step on a fast machine.
BATCH = 500


# ---------------------------------------------------------------- the day's steps


def start_due(session: Session, now: datetime, limit: int = BATCH) -> dict[str, int]:
    """Send the prompt for up to `limit` of the check-ins now due, earliest first ("claimed" in
    the counts says how many; the caller commits and comes back for the rest, so the morning's
    slot is many short transactions, not one that holds the write lock for seconds). One that the service missed while it was
    down is still sent if it is the same local day (its window counts from the late send);
    a past day's is reported to the organisers instead, never raised as a false alarm."""
    counts = {"prompted": 0, "skipped": 0, "missed": 0, "claimed": 0}
    while True:
        ids = list(session.scalars(
            select(CheckIn.id).where(CheckIn.state == "scheduled", CheckIn.due_at <= now)
            .order_by(CheckIn.due_at).limit(limit)
        ))
        if not ids:
            return counts
        # Claim: another worker that got here first has already moved these on.
        claimed = list(session.scalars(
            update(CheckIn).where(CheckIn.id.in_(ids), CheckIn.state == "scheduled")
            .values(state="prompting").returning(CheckIn.id)
        ))
        if not claimed:
            continue
        counts["claimed"] += len(claimed)
        rows = session.execute(
            select(CheckIn, Member, Group)
            .join(Member, Member.id == CheckIn.member_id)
            .join(Group, Group.id == CheckIn.group_id)
            .where(CheckIn.id.in_(claimed))
        ).all()
        messages: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        missed: list[CheckIn] = []
        log: list[dict[str, Any]] = []
        for checkin, member, group in rows:
            day = date.fromisoformat(checkin.occurrence)
            send_at = next_allowed(now, group.timezone, group.quiet_start, group.quiet_end)
            if member.is_paused(day) or member.opted_out:
                why = "paused" if member.is_paused(day) else "opted out"
                skipped.append({"id": checkin.id, "state": "skipped", "closed_at": now, "outcome": why})
                log.append({"at": now, "kind": "skipped", "group_id": group.id, "member_id": member.id,
                            "checkin_id": checkin.id, "detail": why})
            elif local_date(send_at, group.timezone) != day:
                missed.append(checkin)
            else:
                # Late is fine the same day (the window starts when it leaves); past midnight
                # it is reported as missed instead of sent.
                end_of_day = local_instant(day + timedelta(days=1), "00:00", group.timezone)
                messages.append(message_row(
                    now, group, member, kind="checkin", template="checkin",
                    values={"name": member.name}, dedupe_key=f"checkin:{checkin.id}:prompt",
                    checkin_id=checkin.id, validity=timedelta(seconds=checkin.window_s),
                    deadline=end_of_day,
                ))
        queue(session, messages)
        if skipped:
            session.execute(update(CheckIn), skipped)
        report_missed(session, missed, now)
        events.record_many(session, log)
        counts["prompted"] += len(messages)
        counts["skipped"] += len(skipped)
        counts["missed"] += len(missed)
        session.flush()
        return counts


def report_missed(session: Session, missed: list[CheckIn], now: datetime) -> None:
    """Check-ins whose day passed while the service was down: tell a human, don't pretend.
    Each person told gets one message for the lot (after days down, one summary, not an alarm
    per missed day): the organisers who can be told, or with none the first named contact who
    can (a summary to an organiser who has opted out would reach nobody)."""
    by_person: dict[tuple[int, int], tuple[Group, Member, list[CheckIn]]] = {}
    for checkin in missed:
        checkin.state, checkin.closed_at, checkin.outcome = "missed", now, "not sent: service was down"
        group, member = checkin.group, checkin.member
        people = ([m for m in organisers(session, group.id) if can_be_told(m, member)]
                  or [c for c in chain_for(session, checkin) if can_be_told(c, member)][:1])
        for person in people:
            by_person.setdefault((group.id, person.id), (group, person, []))[2].append(checkin)
        events.record(session, now, "missed", group_id=group.id, member_id=member.id,
                      checkin_id=checkin.id, detail="service down; reported to " +
                      (", ".join(p.name for p in people) or "nobody who can be told"))
    rows = []
    for group, person, items in by_person.values():
        zone = ZoneInfo(group.timezone)
        items.sort(key=lambda c: c.due_at)
        first, last = (items[0].due_at.astimezone(zone), items[-1].due_at.astimezone(zone))
        values = {"contact": person.name, "member": items[0].member.name, "time": first.strftime("%H:%M"),
                  "day": first.strftime("%a %d %b"), "last_day": last.strftime("%a %d %b"),
                  "count": str(len(items)), "people": _names({c.member.name: None for c in items})}
        rows.append(message_row(
            now, group, person, kind="alert", template="missed" if len(items) == 1 else "missed_summary",
            dedupe_key=f"checkin:{items[0].id}:missed:{person.id}", values=values,
            checkin_id=items[0].id,
        ))
    queue(session, rows)


def _names(names: dict[str, None], most: int = 3) -> str:
    """ "Vera", "Vera and Sam", "Vera, Sam, Jo and 2 more": a list that stays short."""
    listed = list(names)
    if len(listed) > most:
        listed = listed[:most] + [f"{len(listed) - most} more"]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


@dataclass(frozen=True)
class PromptWindow:
    """What starting a prompted check-in's window needs, read when its prompt is claimed."""

    checkin_id: int
    window_s: int
    reminder_s: int | None


def prompt_windows(session: Session, checkin_ids: Iterable[int]) -> dict[int, PromptWindow]:
    """The check-ins among these still waiting for their prompt to leave, in one query."""
    ids = list(set(checkin_ids))
    if not ids:
        return {}
    rows = session.execute(select(CheckIn.id, CheckIn.window_s, CheckIn.reminder_s)
                           .where(CheckIn.id.in_(ids), CheckIn.state == "prompting"))
    return {row.id: PromptWindow(*row) for row in rows}


_checkins = CheckIn.__table__
# Built once: this runs for every prompt that leaves, in the dispatcher's hot loop.
_START_WINDOW = Prepared(update(_checkins)
                          .where(_checkins.c.id == bindparam("cid"), _checkins.c.state == "prompting")
                          .values(state="sent", sent_at=bindparam("at"), window_ends_at=bindparam("ends"),
                                  remind_at=bindparam("remind")))


def prompt_sent(connection: Connection | Transaction, window: PromptWindow, sent_at: datetime) -> None:
    """The dispatcher reports a prompt that actually left: the window starts now, not at due.
    (If the check-in has moved on meanwhile, e.g. it was answered, nothing changes.) No event
    is recorded: the check-in's own `sent_at` says it, and this runs for every prompt."""
    remind = sent_at + timedelta(seconds=window.reminder_s) if window.reminder_s else None
    _START_WINDOW.rowcount(connection, {
        "cid": window.checkin_id, "at": sent_at, "ends": sent_at + timedelta(seconds=window.window_s),
        "remind": remind,
    })


def remind_due(session: Session, now: datetime) -> int:
    claimed = list(session.scalars(
        update(CheckIn).where(CheckIn.state == "sent", CheckIn.remind_at.is_not(None),
                              CheckIn.remind_at <= now)
        .values(remind_at=None).returning(CheckIn.id)
    ))
    if not claimed:
        return 0
    rows = session.execute(
        select(CheckIn, Member, Group).join(Member, Member.id == CheckIn.member_id)
        .join(Group, Group.id == CheckIn.group_id).where(CheckIn.id.in_(claimed))
    ).all()
    reminders = [message_row(
        now, group, member, kind="reminder", template="reminder", values={"name": member.name},
        dedupe_key=f"checkin:{checkin.id}:reminder", checkin_id=checkin.id,
        validity=(checkin.window_ends_at - now) if checkin.window_ends_at else None,
        deadline=checkin.window_ends_at,
    ) for checkin, member, group in rows]
    # A reminder that quiet hours would hold past the window's end is pointless: drop it.
    reminders = [r for r in reminders if r["expires_at"] is None or r["not_before"] < r["expires_at"]]
    queue(session, reminders)
    return len(reminders)


def close_windows(session: Session, now: datetime) -> int:
    """No reply by the end of the window: the first named contact is asked to ring."""
    claimed = list(session.scalars(
        update(CheckIn).where(CheckIn.state == "sent", CheckIn.window_ends_at <= now)
        .values(state="escalating").returning(CheckIn.id)
    ))
    for checkin in session.scalars(select(CheckIn).where(CheckIn.id.in_(claimed))):
        events.record(session, now, "no_reply", group_id=checkin.group_id,
                      member_id=checkin.member_id, checkin_id=checkin.id)
        ask_next(session, checkin, now, "no reply to the check-in")
    return len(claimed)


def prompt_failed(session: Session, checkin_id: int, now: datetime, reason: str) -> None:
    """The prompt could not be delivered: a person must follow up now, not at window end."""
    checkin = session.get(CheckIn, checkin_id)
    if checkin is None or checkin.state not in ("prompting", "sent"):
        return
    checkin.state = "escalating"
    checkin.outcome = f"prompt undeliverable: {reason}"
    events.record(session, now, "undeliverable", group_id=checkin.group_id,
                  member_id=checkin.member_id, checkin_id=checkin.id, detail=reason)
    ask_next(session, checkin, now, f"the check-in couldn't be delivered ({reason})")


# ---------------------------------------------------------------- replies from the member


# A member's check-ins still awaiting an answer or a person: every reply looks them up, through
# the ORM or, on an OK, as prepared rows. Built once.
_OPEN_FOR_MEMBER = (CheckIn.member_id == bindparam("member_id"), one_of(CheckIn.state, OPEN_CHECKIN_STATES))
_NEWEST_FIRST = (CheckIn.due_at.desc(), CheckIn.id.desc())
_OPEN_CHECKIN = select(CheckIn).where(*_OPEN_FOR_MEMBER).order_by(*_NEWEST_FIRST).limit(1)
_OPEN_CHECKIN_ROWS = Prepared(select(CheckIn.id, CheckIn.state, CheckIn.occurrence, CheckIn.group_id,
                                     CheckIn.member_id, CheckIn.due_at)
                              .where(*_OPEN_FOR_MEMBER).order_by(*_NEWEST_FIRST))


@dataclass(frozen=True)
class OpenCheckIn:
    """An open check-in as a reply reads it: what answering it needs, without an ORM object."""

    id: int
    state: str
    occurrence: str
    group_id: int
    member_id: int
    due: Any  # due_at as the driver gives it: only compared with another row's

    @classmethod
    def of(cls, checkin: CheckIn) -> "OpenCheckIn":
        return cls(checkin.id, checkin.state, checkin.occurrence, checkin.group_id, checkin.member_id,
                   checkin.due_at)


def open_checkin(session: Session, member_id: int) -> CheckIn | None:
    """The member's most recent check-in still awaiting an answer or a person."""
    return session.scalar(_OPEN_CHECKIN, {"member_id": member_id})


def open_checkins(session: Session, member_ids: list[int]) -> list[CheckIn]:
    """Every check-in of these members still awaiting an answer or a person, newest first."""
    if not member_ids:
        return []
    return list(session.scalars(
        select(CheckIn).where(CheckIn.member_id.in_(member_ids), CheckIn.state.in_(OPEN_CHECKIN_STATES))
        .order_by(*_NEWEST_FIRST)))


def open_checkin_rows(work: Work, member_ids: list[int]) -> list[OpenCheckIn]:
    """`open_checkins` as prepared rows (one statement per member), newest first."""
    connection = work.connection()
    rows = [OpenCheckIn(*row) for member_id in member_ids
            for row in _OPEN_CHECKIN_ROWS.rows(connection, {"member_id": member_id})]
    if len(member_ids) > 1:
        rows.sort(key=lambda row: (row.due, row.id), reverse=True)
    return rows


# The states in which an answer has no one to stand down: nobody has been asked yet.
UNESCALATED = ("prompting", "sent")
_now: BindParameter[Any] = bindparam("now")
_ANSWER_UNESCALATED = Prepared(
    update(_checkins)
    .where(_checkins.c.id == bindparam("cid"), _checkins.c.state == bindparam("was"),
           one_of(_checkins.c.state, UNESCALATED))
    .values(state="answered", answered_at=_now, closed_at=_now, outcome=bindparam("how")))


def answer(work: Work, item: OpenCheckIn, now: datetime, how: str) -> int:
    """The member has been in touch. Closes the check-in; if anyone had been asked to ring,
    they are stood down, told plainly whether the member says they are OK after asking for a
    call, or has simply been in touch. Returns how many people were told.

    Callers must not pass a check-in with a HELP in force unless the member said OK: only the
    member's own all-clear, a DONE or an organiser closes a call that was asked for."""
    # The common case, nobody asked yet, so nobody to tell: a conditional UPDATE and the event,
    # as prepared statements. It changes nothing if the check-in has moved on meanwhile.
    if item.state in UNESCALATED and _ANSWER_UNESCALATED.rowcount(
            work.connection(), {"cid": item.id, "was": item.state, "now": now, "how": how}):
        loaded = work.loaded(CheckIn, item.id)
        if loaded is not None:  # keep a CheckIn this session holds true to its row
            for name, value in (("state", "answered"), ("answered_at", now), ("closed_at", now), ("outcome", how)):
                set_committed_value(loaded, name, value)
        events.record(work.connection(), now, "answered", group_id=item.group_id, member_id=item.member_id,
                      checkin_id=item.id, detail=how)
        return 0
    session = work.session  # someone may be stood down: the domain's rules, through the ORM
    checkin = session.get(CheckIn, item.id)
    if checkin is None:
        return 0
    if item.state in UNESCALATED:
        session.refresh(checkin)  # it moved on between reading and writing (another worker)
    if checkin.state not in OPEN_CHECKIN_STATES:
        return 0
    was = checkin.state
    checkin.state, checkin.answered_at, checkin.closed_at = "answered", now, now
    checkin.outcome = how
    why = SAYS_OK if checkin.help_requested_at is not None else IN_TOUCH
    told = stand_down(session, checkin, now, why) if was in ("escalating", "alerted") else 0
    events.record(session, now, "answered", group_id=checkin.group_id, member_id=checkin.member_id,
                  checkin_id=checkin.id, detail=how + (f" (late; {told} stood down)" if told else ""))
    return told


def help_in_force(checkin: CheckIn) -> bool:
    """A call asked for and with a person now: whoever holds it has been told it is a call
    request, so a HELP sent again is not asked of them again (request_help) but passed on as
    the member's words (inbound._help)."""
    return checkin.help_requested_at is not None and checkin.state in ("escalating", "alerted")


def request_help(session: Session, member: Member, now: datetime, source: str) -> tuple[CheckIn, str]:
    """The member wants a call: the first reachable contact is asked at once, whatever the
    window. Returns the check-in and who was asked."""
    checkin = open_checkin(session, member.id)
    if checkin is None:
        plan = session.scalar(select(CheckInPlan).where(
            CheckInPlan.member_id == member.id, CheckInPlan.active.is_(True)).order_by(CheckInPlan.id))
        group = member.group
        checkin = CheckIn(
            plan_id=plan.id if plan else None, group_id=member.group_id, member_id=member.id,
            occurrence=f"help:{now.isoformat()}", due_at=now, state="escalating", urgent=True,
            help_requested_at=now,
            window_s=plan.window_s if plan else group.window_s, reminder_s=None,
            escalation_wait_s=plan.escalation_wait_s if plan else group.escalation_wait_s,
        )
        session.add(checkin)
        session.flush()
    elif checkin.state in ("escalating", "alerted"):
        # Already with a person: make it urgent and tell whoever holds it now. Whoever was asked
        # since a HELP knows already and is not asked again: a member texting HELP three times in
        # a panic must not send Jo the same text three times (inbound passes on their words).
        knew = help_in_force(checkin)
        checkin.urgent = True
        checkin.help_requested_at = now
        events.record(session, now, "help", group_id=checkin.group_id, member_id=member.id,
                      checkin_id=checkin.id, detail=source)
        open_tasks = [t for t in checkin.tasks if t.state == "asked"]
        if open_tasks:
            group = checkin.group
            for task in [] if knew else open_tasks:
                ask(session, now, group, checkin, task.assignee, task.kind,
                     "help" if task.kind == "escalation" else "help_alert",
                     f"{task.dedupe_key}:help", task.expires_at, repetition=task.repetition)
                task.state, task.closed_at = "stood_down", now
            return checkin, ", ".join(t.assignee.name for t in open_tasks)
        return checkin, ask_next(session, checkin, now, f"asked for a call ({source})")
    checkin.urgent = True
    checkin.help_requested_at = now
    checkin.state = "escalating"
    checkin.escalation_step = -1
    events.record(session, now, "help", group_id=checkin.group_id, member_id=member.id,
                  checkin_id=checkin.id, detail=source)
    return checkin, ask_next(session, checkin, now, f"asked for a call ({source})")


def resolve_by_organiser(session: Session, member: Member, now: datetime, note: str) -> int:
    """An organiser closes a member's open check-in from the command line."""
    checkin = open_checkin(session, member.id)
    if checkin is None:
        raise PhonetreeError(f"{member.name} has no open check-in to close.")
    checkin.state, checkin.closed_at, checkin.outcome = "resolved", now, note
    told = stand_down(session, checkin, now, CLOSED)
    events.record(session, now, "resolved_by_organiser", group_id=checkin.group_id, member_id=member.id,
                  checkin_id=checkin.id, detail=note)
    return told
