"""A tick reads first which of its steps have anything to do (schedules/engine.due) and runs only
those: a tick with nothing due writes nothing, and a step's work that another step made this
same tick (a check-in planned for now) is still done this tick."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError

from schedules import engine as engine_module
from tests.conftest import sent, utc

NOW = utc(2026, 12, 1, 9, 0)  # a Tuesday, GMT: local time is UTC


def commits_during(engine: Engine, action: Any) -> int:
    """Transactions committed through SQLAlchemy while `action` runs (each step, the dispatcher's
    claim and the purge are one or more each; the tick's probe is a read, outside any, and its
    check that the database takes writes is one prepared statement that changes nothing)."""
    seen: list[int] = []

    def on_commit(_connection: Any) -> None:
        seen.append(1)

    event.listen(engine, "commit", on_commit)
    try:
        action()
    finally:
        event.remove(engine, "commit", on_commit)
    return len(seen)


def test_a_tick_with_nothing_due_opens_no_orm_transaction(oakfield, ok, engine, ticker, monkeypatch):
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m")
    ticker(utc(2026, 11, 30, 12, 1))  # plans the next 36 hours: tomorrow's 09:00 is made
    monkeypatch.setattr(engine_module, "_last_purge", None)  # the hourly purge is due too
    assert commits_during(engine, lambda: ticker(utc(2026, 11, 30, 12, 2))) == 0
    assert sent(engine) == []
    # ... and at 09:00 the same tick does its work: the check-in is prompted and the prompt sent.
    assert commits_during(engine, lambda: ticker(NOW)) > 0
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "sent"


def test_a_check_in_planned_at_its_own_minute_is_sent_by_the_same_tick(oakfield, ok, engine, ticker):
    """The planner's work (a row due now) is start_due's, later in the same tick: `due` is read
    again after a step has run, not only once at the start."""
    with freeze_time(NOW - timedelta(minutes=1)):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m")
    report = ticker(NOW)  # the first tick since the plan was made: nothing of it existed before
    assert (report.planned, report.prompted, report.sent) == (2, 1, 1), report.summary()
    [prompt] = sent(engine, kind="checkin")
    assert prompt.state == "sent" and prompt.to_phone == "+447911100001"


def test_a_tick_with_nothing_due_still_fails_on_a_database_that_refuses_writes(oakfield, ok, engine, ticker):
    """Nothing due is no write to do, but the tick must still fail when the database can't be
    written, as it did when each step opened a write transaction: `run` counts only a tick that
    succeeded, so /health and the heartbeat say so within a few ticks (issue 11 defect 5)."""
    from tests.test_journal import ReadOnly

    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m", "--escalate-to", "Jo")
    ticker(utc(2026, 11, 30, 12, 1))
    fault = ReadOnly(engine)
    try:
        engine.dispose()  # connections are set read-only as they are checked out
        fault.on = True
        with pytest.raises(DBAPIError):
            ticker(utc(2026, 11, 30, 12, 2))
        fault.on = False
        engine.dispose()
        assert ticker(utc(2026, 11, 30, 12, 3)).summary() == "nothing due"
    finally:
        fault.remove()
