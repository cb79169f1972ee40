"""Recorded transitions: reports count them and `status` reads them back."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from phonetree.models import Event
from phonetree.prepared import Prepared, Transaction


_COLUMNS = ("at", "kind", "group_id", "member_id", "checkin_id", "detail")
# A prepared INSERT, not session.add: nothing reads the row back, and this is on every reply.
_INSERT = Prepared(insert(Event.__table__), columns=_COLUMNS)


def record(where: Session | Connection | Transaction, at: datetime, kind: str, *, group_id: int | None = None,
           member_id: int | None = None, checkin_id: int | None = None,
           detail: str | None = None) -> None:
    """One event, in the transaction of `where` (a session, or a connection running prepared
    statements). Like any Core statement run by a session, it doesn't flush the session first."""
    connection = where.connection() if isinstance(where, Session) else where
    _INSERT.rowcount(connection, {"at": at, "kind": kind, "group_id": group_id, "member_id": member_id,
                                  "checkin_id": checkin_id, "detail": detail})


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """One INSERT for many events (each dict: at, kind, group_id, member_id, checkin_id, detail)."""
    batch = [{"member_id": None, "checkin_id": None, "detail": None, **row} for row in rows]
    if batch:
        session.execute(insert(Event), batch)


# What organisers change (the audit log), as opposed to what the service does day to day.
CHANGES = ("group_added", "group_changed", "member_added", "member_forgotten", "plan_added", "paused",
           "resumed", "template_changed", "template_reset", "rota_added", "rota_joined", "rota_left",
           "resolved_by_organiser", "cascade_started", "member_changed", "plan_changed", "plan_removed",
           "rota_removed")


def changes(session: Session, group_id: int, now: datetime, days: int) -> list[dict[str, Any]]:
    from datetime import timedelta

    from sqlalchemy import select

    from phonetree.models import Member

    rows = session.execute(
        select(Event, Member.name).outerjoin(Member, Member.id == Event.member_id)
        .where(Event.group_id == group_id, Event.kind.in_(CHANGES), Event.at >= now - timedelta(days=days))
        .order_by(Event.at, Event.id)
    ).all()
    return [{"at": e.at.isoformat(), "kind": e.kind, "member": name, "detail": e.detail} for e, name in rows]
