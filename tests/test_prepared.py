"""Prepared statements (phonetree/prepared.py): the same rows as SQLAlchemy would write, inside
the caller's transaction, with SQLAlchemy's errors. Over SQLite and PostgreSQL, and over both
units of work they run in: a SQLAlchemy `Connection` and prepared.transaction's own."""
from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any, Callable

import pytest
from sqlalchemy import Engine, bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from phonetree import events
from phonetree.db import connection_scope, session_scope
from phonetree.models import Event, Group, Message
from phonetree.prepared import Prepared, one_of, transaction

AT = datetime(2026, 10, 25, 1, 30, 15, 123456, tzinfo=timezone.utc)
_events = Event.__table__
Unit = Callable[[Engine], AbstractContextManager[Any]]


@pytest.fixture(params=["connection_scope", "transaction"])
def unit(request: pytest.FixtureRequest) -> Unit:
    return {"connection_scope": connection_scope, "transaction": transaction}[request.param]


def test_rows_are_stored_exactly_as_the_orm_stores_them(engine: Engine, unit: Unit) -> None:
    with session_scope(engine) as session:
        events.record(session, AT, "answered", detail="by the ORM's path")
    with unit(engine) as connection:
        events.record(connection, AT, "answered", detail="prepared")
    with session_scope(engine) as session:
        stored = session.scalars(select(Event).order_by(Event.id)).all()
        raw = session.execute(text("SELECT at FROM events ORDER BY id")).scalars().all()
    assert [(e.at, e.kind, e.group_id) for e in stored] == [(AT, "answered", None)] * 2
    assert [e.detail for e in stored] == ["by the ORM's path", "prepared"]
    assert raw[0] == raw[1]  # byte for byte the same representation (SQLite keeps text)


def test_constants_in_the_statement_and_returned_rows(engine: Engine, unit: Unit) -> None:
    statement = Prepared(select(_events.c.id, _events.c.kind)
                         .where(one_of(_events.c.kind, ("help", "answered")), _events.c.at >= bindparam("since"))
                         .order_by(_events.c.id).limit(5))
    with unit(engine) as connection:
        for kind in ("answered", "missed", "help"):
            events.record(connection, AT, kind)
        assert [kind for _id, kind in statement.rows(connection, {"since": AT})] == ["answered", "help"]
        assert statement.rows(connection, {"since": datetime(2027, 1, 1, tzinfo=timezone.utc)}) == []
    rename = Prepared(update(_events).where(_events.c.kind == bindparam("was")).values(kind="missed_day"))
    with unit(engine) as connection:
        assert rename.rowcount(connection, {"was": "missed"}) == 1
        assert rename.rowcount(connection, {"was": "missed"}) == 0


def test_it_runs_inside_the_callers_transaction(engine: Engine, unit: Unit) -> None:
    with pytest.raises(RuntimeError):
        with unit(engine) as connection:
            events.record(connection, AT, "answered")
            raise RuntimeError("something later in the same unit of work failed")
    with session_scope(engine) as session:
        assert session.scalars(select(Event)).all() == []


def test_driver_errors_are_sqlalchemys_and_roll_back(engine: Engine, unit: Unit) -> None:
    with pytest.raises(IntegrityError):
        with unit(engine) as connection:
            events.record(connection, AT, "answered")
            events.record(connection, AT, "answered", group_id=999)  # no such group
    with session_scope(engine) as session:
        assert session.scalars(select(Event)).all() == []
        assert session.scalars(select(Group)).all() == []


def test_what_it_refuses_to_prepare(engine: Engine, unit: Unit) -> None:
    with unit(engine) as connection:
        expanding = Prepared(select(_events.c.id).where(_events.c.kind.in_(["help", "answered"])))
        with pytest.raises(ValueError, match="expanding IN"):
            expanding.rows(connection)
        # Message.state has a Python-side default that SQLAlchemy computes per execution.
        defaulted = Prepared(insert(Message.__table__), columns=("to_phone", "channel", "kind"))
        with pytest.raises(ValueError, match="give every column a value"):
            defaulted.rowcount(connection, {"to_phone": "+447911100001", "channel": "sms", "kind": "info"})


def test_a_transaction_holds_the_sqlite_write_lock_from_its_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """BEGIN IMMEDIATE, as every other unit of work here: another process's writer waits (here:
    gives up at once) instead of the two deadlocking later."""
    import sqlite3

    from phonetree.db import get_engine

    engine = get_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    with transaction(engine):
        other = sqlite3.connect(tmp_path / "lock.db", timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    with transaction(engine) as connection:
        events.record(connection, AT, "answered")
    with session_scope(engine) as session:
        assert len(session.scalars(select(Event)).all()) == 1
