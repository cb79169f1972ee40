"""db.insert_ignoring_duplicates, how every promise is written once: a row whose dedupe key is
taken is skipped, and a key that is no column is an error, not silently dropped (a misspelt
"stat" would have left a task to its default state)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from phonetree.db import insert_ignoring_duplicates, session_scope
from phonetree.models import Event


def _event(detail: str) -> dict:
    return {"at": datetime(2026, 12, 1, 9, tzinfo=timezone.utc), "kind": "test", "detail": detail}


def test_a_key_that_is_no_column_is_an_error_and_nothing_is_written(engine, oakfield):
    with pytest.raises(ValueError, match="not columns of events: detial"):
        with session_scope(engine) as session:
            insert_ignoring_duplicates(session, Event, [_event("fine"), {**_event("x"), "detial": "typo"}])
    with session_scope(engine) as session:
        assert session.scalars(select(Event.detail).where(Event.kind == "test")).all() == []


def test_rows_of_real_columns_are_inserted_and_counted(engine, oakfield):
    with session_scope(engine) as session:
        assert insert_ignoring_duplicates(session, Event, [_event("one"), _event("two")]) == 2
    with session_scope(engine) as session:
        assert sorted(session.scalars(select(Event.detail).where(Event.kind == "test"))) == ["one", "two"]
