"""phonetree.work: a webhook's unit of work starts bare and grows an ORM Session only for a reply
that needs one, and either way it is one transaction (issue 15 item 4: one reply path at the fast
path's speed). On both databases."""
from __future__ import annotations

from datetime import datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from phonetree import inbound
from phonetree.db import session_scope
from phonetree.models import CheckIn, Event, Inbound, Message
from phonetree.work import unit_of_work
from tests.conftest import utc

VERA_E164 = "+447911100001"
TODAY = CheckIn.occurrence == "2026-12-01"  # (the planner has made later days' too)


def at(hour: int, minute: int = 0) -> datetime:
    return utc(2026, 12, 1, hour, minute)


@pytest.fixture
def prompted(oakfield, ok, ticker):
    """Vera's 09:00 check-in has been sent; Jo is her first contact after a 20-minute wait."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo", "--escalation-wait", "20m")
    ticker(at(9))


def counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as session:
        return (session.scalar(select(func.count()).select_from(Inbound)),
                session.scalar(select(func.count()).select_from(Event).where(Event.kind == "answered")),
                session.scalar(select(func.count()).select_from(CheckIn).where(CheckIn.state == "answered")))


def test_an_ok_nobody_was_asked_about_runs_without_an_orm_session(prompted, engine):
    with unit_of_work(engine) as work:
        outcome = inbound.handle(work, at(9, 5), VERA_E164, "OK", sid="SM" + "1" * 32)
        assert not work.has_session and work.info == {}
    assert outcome.actions == ["check-in answered (2026-12-01)"]
    assert counts(engine) == (1, 1, 1)


def test_a_late_ok_grows_a_session_in_the_same_transaction_and_stands_jo_down(prompted, engine, ticker):
    ticker(at(9, 31))  # no reply in the window: Jo is asked
    with session_scope(engine) as session:
        assert session.scalar(select(CheckIn.state).where(TODAY)) == "escalating"
    ticker(at(9, 32))  # Jo's ask leaves
    with unit_of_work(engine) as work:
        outcome = inbound.handle(work, at(9, 40), VERA_E164, "OK", sid="SM" + "2" * 32)
        assert work.has_session and work.info.get("queued")
    assert "1 contact(s) stood down" in outcome.actions[0]
    assert counts(engine) == (1, 1, 1)
    with session_scope(engine) as session:
        told = session.scalars(select(Message.template).where(Message.to_phone == "+447911100002")).all()
    assert told.count("stand_down") == 1, told  # "Vera has been in touch: no need to ring"


def test_work_done_bare_and_through_the_grown_session_rolls_back_as_one(prompted, engine):
    """The Inbound row is written bare (prepared), then the Session is made and changes a row:
    an error after both leaves neither."""
    with pytest.raises(RuntimeError):
        with unit_of_work(engine) as work:
            inbound.handle(work, at(9, 5), VERA_E164, "OK", sid="SM" + "3" * 32)
            checkin = work.session.scalar(select(CheckIn).where(TODAY))
            checkin.outcome = "should not stay"
            work.flush()
            raise RuntimeError("the process fails before the commit")
    assert counts(engine) == (0, 0, 0)
    with session_scope(engine) as session:
        assert session.scalar(select(CheckIn.outcome).where(TODAY)) is None
    # And the pooled connection it used is clean for the next unit of work.
    with unit_of_work(engine) as work:
        assert inbound.handle(work, at(9, 6), VERA_E164, "OK", sid="SM" + "4" * 32).actions
    assert counts(engine) == (1, 1, 1)


def test_work_done_bare_and_through_the_grown_session_commits_as_one(prompted, engine):
    with unit_of_work(engine) as work:
        inbound.handle(work, at(9, 5), VERA_E164, "OK", sid="SM" + "5" * 32)
        work.session.scalar(select(CheckIn).where(TODAY)).outcome = "replied OK, checked"
    assert counts(engine) == (1, 1, 1)
    with session_scope(engine) as session:
        assert session.scalar(select(CheckIn.outcome).where(TODAY)) == "replied OK, checked"


def test_a_help_through_a_bare_unit_of_work_asks_the_contact(prompted, engine):
    with unit_of_work(engine) as work:
        outcome = inbound.handle(work, at(9, 5), VERA_E164, "HELP", sid="SM" + "6" * 32)
        assert work.has_session and work.info.get("queued")
    assert outcome.actions == ["wants a call: asked Jo at once"]
    with session_scope(engine) as session:
        assert session.scalar(select(CheckIn.state).where(TODAY)) == "escalating"
        assert session.scalar(select(func.count()).select_from(Message).where(
            Message.to_phone == "+447911100002", Message.purpose == "ask")) == 1
