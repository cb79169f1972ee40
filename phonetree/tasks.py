"""Tasks people hold (ring a member, make a rota call, pass news on): DONE, CANT and running
out of time, routed to the module that owns each kind by the table in `task_kinds`."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, literal_column, select, update
from sqlalchemy.orm import Session

# Imported for what they do on import: each fills in task_kinds.OWNERS with its own kinds.
from phonetree import cascades, escalation, rotas  # noqa: F401
from phonetree.db import rowcount
from phonetree.models import Message, Task
from phonetree.task_kinds import OWNERS


def open_tasks_for(session: Session, member_ids: list[int]) -> list[Task]:
    """Tasks these members hold, the most recent first."""
    return list(session.scalars(
        select(Task).where(Task.assignee_id.in_(member_ids), Task.state == "asked")
        .order_by(Task.asked_at.desc(), Task.id.desc())
    ))


def done(session: Session, task: Task, now: datetime) -> None:
    OWNERS[task.kind].on_done(session, task, now)


def cant(session: Session, task: Task, now: datetime) -> None:
    """The person holding it said CANT."""
    _not_done(session, task, now, "cant")


def unreachable(session: Session, task: Task, now: datetime, why: str = "unreachable") -> None:
    """The ask never reached the person: a number that can't take it ("unreachable") or a call
    nobody picked up ("no_answer"). Not their answer, so never recorded as CANT; the task moves
    on at once all the same."""
    _not_done(session, task, now, why)


def _not_done(session: Session, task: Task, now: datetime, why: str) -> None:
    """CANT, unreachable or time up: the task moves on, each kind in its own way."""
    OWNERS[task.kind].on_not_done(session, task, now, why)


def wait_from(session: Session, task_id: int, sent_at: datetime) -> None:
    """A person's time to answer counts from when the ask reached them, not from when it was
    queued (after an outage, or behind a burst, those differ)."""
    task = session.get(Task, task_id)
    if task is not None and task.state == "asked" and task.expires_at and sent_at > task.asked_at:
        task.expires_at = task.expires_at + (sent_at - task.asked_at)


def expire_overdue(session: Session, now: datetime) -> int:
    """Every task whose time is up moves on: to the next contact, a backup peer, or up the tree."""
    # An ask still waiting to go out hasn't started its clock: it gets its full wait from the
    # moment it leaves (the dispatcher moves expires_at on when it sends it).
    # (The purpose as a literal, not a parameter: SQLite uses ix_messages_task_ask only then.)
    unsent = exists().where(Message.task_id == Task.id, Message.purpose == literal_column("'ask'"),
                            Message.state.in_(("queued", "sending")))
    due = list(session.scalars(
        select(Task.id).where(Task.state == "asked", Task.expires_at.is_not(None), Task.expires_at <= now,
                              ~unsent)
        .order_by(Task.expires_at, Task.id)
    ))
    moved = 0
    for task_id in due:
        # A conditional update claims the task, so two workers never pass it on twice.
        claimed = rowcount(session.execute(update(Task).where(Task.id == task_id, Task.state == "asked")
                                           .values(state="expired", closed_at=now)))
        if claimed != 1:
            continue
        task = session.get(Task, task_id)
        assert task is not None
        session.refresh(task)
        _not_done(session, task, now, "expired")
        moved += 1
    return moved
