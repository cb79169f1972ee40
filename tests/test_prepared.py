"""Prepared statements (phonetree/prepared.py): the same rows as SQLAlchemy would write, inside
the caller's transaction, with SQLAlchemy's errors. Over SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from phonetree import events
from phonetree.db import connection_scope, session_scope
from phonetree.models import Event, Group, Message
from phonetree.prepared import Prepared, one_of

AT = datetime(2026, 10, 25, 1, 30, 15, 123456, tzinfo=timezone.utc)
_events = Event.__table__


def test_rows_are_stored_exactly_as_the_orm_stores_them(engine: Engine) -> None:
    with session_scope(engine) as session:
        events.record(session, AT, "answered", detail="by the ORM's path")
    with connection_scope(engine) as connection:
        events.record_quickly(connection, AT, "answered", detail="prepared")
    with session_scope(engine) as session:
        stored = session.scalars(select(Event).order_by(Event.id)).all()
        raw = session.execute(text("SELECT at FROM events ORDER BY id")).scalars().all()
    assert [(e.at, e.kind, e.group_id) for e in stored] == [(AT, "answered", None)] * 2
    assert [e.detail for e in stored] == ["by the ORM's path", "prepared"]
    assert raw[0] == raw[1]  # byte for byte the same representation (SQLite keeps text)


def test_constants_in_the_statement_and_returned_rows(engine: Engine) -> None:
    statement = Prepared(select(_events.c.id, _events.c.kind)
                         .where(one_of(_events.c.kind, ("help", "answered")), _events.c.at >= bindparam("since"))
                         .order_by(_events.c.id).limit(5))
    with connection_scope(engine) as connection:
        for kind in ("answered", "missed", "help"):
            events.record_quickly(connection, AT, kind)
        assert [kind for _id, kind in statement.rows(connection, {"since": AT})] == ["answered", "help"]
        assert statement.rows(connection, {"since": datetime(2027, 1, 1, tzinfo=timezone.utc)}) == []
    rename = Prepared(update(_events).where(_events.c.kind == bindparam("was")).values(kind="missed_day"))
    with connection_scope(engine) as connection:
        assert rename.rowcount(connection, {"was": "missed"}) == 1
        assert rename.rowcount(connection, {"was": "missed"}) == 0


def test_it_runs_inside_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError):
        with connection_scope(engine) as connection:
            events.record_quickly(connection, AT, "answered")
            raise RuntimeError("something later in the same unit of work failed")
    with session_scope(engine) as session:
        assert session.scalars(select(Event)).all() == []


def test_driver_errors_are_sqlalchemys_and_roll_back(engine: Engine) -> None:
    with pytest.raises(IntegrityError):
        with connection_scope(engine) as connection:
            events.record_quickly(connection, AT, "answered")
            events.record_quickly(connection, AT, "answered", group_id=999)  # no such group
    with session_scope(engine) as session:
        assert session.scalars(select(Event)).all() == []
        assert session.scalars(select(Group)).all() == []


def test_what_it_refuses_to_prepare(engine: Engine) -> None:
    with connection_scope(engine) as connection:
        expanding = Prepared(select(_events.c.id).where(_events.c.kind.in_(["help", "answered"])))
        with pytest.raises(ValueError, match="expanding IN"):
            expanding.rows(connection)
        # Message.state has a Python-side default that SQLAlchemy computes per execution.
        defaulted = Prepared(insert(Message.__table__), columns=("to_phone", "channel", "kind"))
        with pytest.raises(ValueError, match="give every column a value"):
            defaulted.rowcount(connection, {"to_phone": "+447911100001", "channel": "sms", "kind": "info"})
