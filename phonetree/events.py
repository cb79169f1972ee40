"""Recorded transitions: reports count them and `status` reads them back."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from phonetree.models import Event


def record(session: Session, at: datetime, kind: str, *, group_id: int | None = None,
           member_id: int | None = None, checkin_id: int | None = None,
           detail: str | None = None) -> None:
    session.add(Event(at=at, kind=kind, group_id=group_id, member_id=member_id,
                      checkin_id=checkin_id, detail=detail))


def record_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """One INSERT for many events (each dict: at, kind, group_id, member_id, checkin_id, detail)."""
    batch = [{"member_id": None, "checkin_id": None, "detail": None, **row} for row in rows]
    if batch:
        session.execute(insert(Event), batch)
