"""Escalation chains: ask the next named contact, wait, pass on, alert the organisers, stand
everyone down. Every step is a row (a Task and its Message) written in the same transaction
as the state change it belongs to, so a crash can lose neither."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from phonetree import events
from phonetree.db import insert_ignoring_duplicates
from phonetree.directory import can_be_told, organisers, reachable
from phonetree.messages import message_row, queue
from phonetree.models import CheckIn, CheckInPlan, Group, Member, Message, Task
from phonetree.phones import display
from phonetree.task_kinds import owns
from phonetree.local_times import local_date

# An alert nobody closes is repeated this often, this many times, then left open on `status`.
REALERT_AFTER = timedelta(hours=3)
MAX_REALERTS = 2


def on_day(checkin: CheckIn, group: Group, now: datetime) -> str:
    """ "today", or "on Mon 30 Nov" for a check-in of an earlier day (after an outage, or a window
    that ran past midnight): a text never says "today" about another day."""
    day = local_date(checkin.due_at, group.timezone)
    return "today" if day == local_date(now, group.timezone) else "on " + day.strftime("%a %d %b")


def chain_for(session: Session, checkin: CheckIn) -> list[Member]:
    """The named contacts, in order, for this check-in's member."""
    plan = checkin.plan
    if plan is None:
        plan = session.scalar(
            select(CheckInPlan)
            .where(CheckInPlan.member_id == checkin.member_id, CheckInPlan.active.is_(True))
            .order_by(CheckInPlan.id)
        )
    if plan is None:
        return []
    return [c.member for c in plan.contacts if c.member_id != checkin.member_id]


def ask(session: Session, now: datetime, group: Group, checkin: CheckIn, contact: Member,
         kind: str, template: str, key: str, expires_at: datetime | None, repetition: int = 0) -> None:
    insert_ignoring_duplicates(session, Task, [{
        "kind": kind, "group_id": group.id, "assignee_id": contact.id,
        "subject_id": checkin.member_id, "checkin_id": checkin.id, "dedupe_key": key,
        "repetition": repetition, "state": "asked", "asked_at": now, "expires_at": expires_at,
    }])
    task = session.scalar(select(Task).where(Task.dedupe_key == key))
    assert task is not None
    queue(session, [ask_row(now, task, checkin, template, f"task:{task.id}:ask")])


def ask_row(now: datetime, task: Task, checkin: CheckIn, template: str, key: str,
            channel: str | None = None) -> dict[str, Any]:
    """The message asking `task`'s holder to ring the member (or, for an alert, to act)."""
    group, contact, subject = checkin.group, task.assignee, checkin.member
    return message_row(
        now, group, contact, kind="alert" if task.kind == "alert" else "escalation",
        template=template, dedupe_key=key, purpose="ask",
        values={"contact": contact.name, "member": subject.name, "phone": display(subject.phone),
                "on_day": on_day(checkin, group, now)},
        checkin_id=checkin.id, task_id=task.id, urgent=checkin.urgent, channel=channel,
    )


def ring_instead(session: Session, now: datetime, task: Task, message: Message) -> bool:
    """An ask or alert texted to a number that can't take texts (a landline): the same words
    are rung instead, and the task stays with them. False when it is not one of ours (or
    has moved on), for the caller to pass on."""
    checkin = task.checkin
    if task.kind not in ("escalation", "alert") or task.state != "asked" or checkin is None:
        return False
    queue(session, [ask_row(now, task, checkin, message.template, f"{message.dedupe_key}:voice", channel="voice")])
    return True


def ask_next(session: Session, checkin: CheckIn, now: datetime, reason: str) -> str:
    """Move the chain one step on from `checkin.escalation_step`. Returns who was asked, or
    "organisers" when the chain has run out."""
    group = checkin.group
    chain = chain_for(session, checkin)
    step = checkin.escalation_step + 1
    while step < len(chain):
        contact = chain[step]
        if reachable(contact, group, now):
            checkin.escalation_step = step
            checkin.state = "escalating"
            ask(session, now, group, checkin, contact, "escalation",
                 "help" if checkin.urgent else "escalation",
                 f"checkin:{checkin.id}:ask:{step}",
                 now + timedelta(seconds=checkin.escalation_wait_s))
            events.record(session, now, "escalated", group_id=group.id, member_id=checkin.member_id,
                          checkin_id=checkin.id, detail=f"asked {contact.name} ({reason})")
            return contact.name
        events.record(session, now, "contact_skipped", group_id=group.id,
                      member_id=checkin.member_id, checkin_id=checkin.id,
                      detail=f"{contact.name} can't be reached today")
        step += 1
    checkin.escalation_step = len(chain)
    alert_organisers(session, checkin, group, now, reason)
    return "organisers"


def alert_organisers(session: Session, checkin: CheckIn, group: Group, now: datetime,
                     reason: str) -> None:
    """The end of the chain: every reachable organiser is alerted; the check-in stays open
    on `status` until one of them (or the member) closes it. A call asked for (HELP) with no
    organiser left to tell (the member is the only one) goes to everyone else in the group who
    can be reached: someone asking for help must reach a person."""
    checkin.state = "alerted"
    member = checkin.member
    people = [m for m in organisers(session, group.id) if can_be_told(m, member)]
    if not people and checkin.help_requested_at is not None:
        people = [m for m in session.scalars(select(Member).where(Member.group_id == group.id)
                                             .order_by(Member.id)) if can_be_told(m, member)]
    for organiser in people:
        ask(session, now, group, checkin, organiser, "alert",
            "help_alert" if checkin.urgent else "alert",
            f"checkin:{checkin.id}:alert:{organiser.id}", now + REALERT_AFTER)
    detail = f"{reason}; organisers alerted: " + (", ".join(m.name for m in people) or
                                                   "NONE - add an organiser to this group")
    events.record(session, now, "alerted", group_id=group.id, member_id=checkin.member_id,
                  checkin_id=checkin.id, detail=detail)


# Why the people asked are stood down, as the template that tells them (texts.SMS / texts.VOICE).
IN_TOUCH = "stand_down"  # the member replied (not after a HELP)
SAYS_OK = "stand_down_ok"  # the member asked for a call, then said they are OK
REACHED = "stand_down_reached"  # someone else reached the member: {by}
CLOSED = "stand_down_closed"  # an organiser closed it


def stand_down(session: Session, checkin: CheckIn, now: datetime, why: str = IN_TOUCH,
               by: Member | None = None) -> int:
    """Close every open task on this check-in and tell those still holding one (or who let it
    lapse and may still be trying) that they needn't ring: once each, however many tasks they
    held, in words that say what happened. `by`, the person who reached the member, is not told
    (they know). Returns how many were told."""
    group = checkin.group
    tasks = session.scalars(
        select(Task).where(Task.checkin_id == checkin.id, Task.state.in_(("asked", "expired")))
        .order_by(Task.id)
    ).all()
    # An ask still waiting to go (the provider down, a phone off: retried later) goes with its
    # task (the dispatcher withdraws, at claim, any ask whose task has left "asked"), and whoever
    # it was for is not told: "no need to ring" about a call they were never asked to make would
    # only puzzle them. An ask that may have left (sent, or in flight) is.
    ids = [task.id for task in tasks]
    reached: set[int] = set()
    if ids:
        reached = set(session.scalars(select(Message.task_id).where(
            Message.task_id.in_(ids), Message.purpose.is_not(None),
            or_(Message.sent_at.is_not(None), Message.state == "sending"))))
    holders: dict[int, Task] = {}
    for task in tasks:
        task.state, task.closed_at = "stood_down", now
        if task.id in reached and (by is None or task.assignee_id != by.id):
            holders.setdefault(task.assignee_id, task)
    rows = [message_row(
        now, group, task.assignee, kind="info", template=why,
        dedupe_key=f"checkin:{checkin.id}:stand_down:{task.assignee_id}",
        values={"contact": task.assignee.name, "member": checkin.member.name, "by": by.name if by else ""},
        checkin_id=checkin.id, task_id=task.id,
    ) for task in holders.values()]
    queue(session, rows)
    return len(rows)


def on_not_done(session: Session, task: Task, now: datetime, why: str) -> None:
    """A contact's or organiser's task not done: time ran out ("expired"), or they said CANT or
    couldn't be reached."""
    if why == "expired":
        _expired(session, task, now)
    else:
        _cant(session, task, now, why)


def _expired(session: Session, task: Task, now: datetime) -> None:
    """An ask nobody answered within the wait passes to the next contact. An organiser's
    alert nobody has closed is sent again, a few hours apart, a few times: the check-in
    stays open on `status` all the while, but a text read by nobody is no safety net."""
    checkin = task.checkin
    if checkin is None:
        return
    if checkin.state == "escalating" and task.kind == "escalation":
        ask_next(session, checkin, now, f"{task.assignee.name} didn't reply in time")
    elif checkin.state == "alerted" and task.kind == "alert":
        repeat = task.repetition
        if repeat < MAX_REALERTS:
            group = checkin.group
            ask(session, now, group, checkin, task.assignee, "alert",
                "help_alert" if checkin.urgent else "alert", f"{task.dedupe_key}:again",
                now + REALERT_AFTER if repeat + 1 < MAX_REALERTS else None, repetition=repeat + 1)
            events.record(session, now, "realerted", group_id=group.id, member_id=checkin.member_id,
                          checkin_id=checkin.id, detail=f"{task.assignee.name}, reminder {repeat + 1}")


def on_done(session: Session, task: Task, now: datetime) -> None:
    """A contact or organiser reports they've spoken to the member: the check-in is resolved."""
    task.state, task.closed_at = "done", now
    checkin = task.checkin
    if checkin is not None and checkin.state in ("escalating", "alerted"):
        checkin.state, checkin.closed_at = "resolved", now
        checkin.outcome = f"reached by {task.assignee.name}"
        stand_down(session, checkin, now, REACHED, by=task.assignee)
        events.record(session, now, "resolved", group_id=checkin.group_id, member_id=checkin.member_id,
                      checkin_id=checkin.id, detail=f"by {task.assignee.name}")


def _cant(session: Session, task: Task, now: datetime, state: str) -> None:
    """The contact can't ring (`state` "cant", their own word), or the ask never reached them
    ("unreachable": a number that can't take it; "no_answer": a call nobody picked up). Either
    way the next one is asked at once; only the first is ever shown as CANT. An organiser's
    alert that fails leaves the alert with the other organisers; if none is left holding it,
    it stays open."""
    task.state, task.closed_at = state, now
    checkin = task.checkin
    if checkin is None:
        return
    said = state == "cant"
    events.record(session, now, "contact_cant" if said else "contact_unreachable", group_id=checkin.group_id,
                  member_id=checkin.member_id, checkin_id=checkin.id,
                  detail=task.assignee.name if said else f"{task.assignee.name} ({state.replace('_', ' ')})")
    if task.kind == "escalation" and checkin.state == "escalating":
        ask_next(session, checkin, now, f"{task.assignee.name} couldn't ring" if said
                 else f"{task.assignee.name} couldn't be reached")


# Its kinds in the task table (task_kinds): DONE, CANT and time-up on an ask or an alert come here.
owns("escalation", on_done, on_not_done)
owns("alert", on_done, on_not_done)
