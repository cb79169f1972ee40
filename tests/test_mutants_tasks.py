"""Tasks people hold (phonetree/tasks.py), at the edges the rest of the suite left open: each
test kills mutants that survived it (bench/mutation.py --module tasks). The rules held are the
module's docstrings: `open_tasks_for` gives "the most recent first" (inbound `_task_meant`: a
reply from someone holding several means the newest unless it names whom); each kind of task
moves on in its owner's way; an ask that never reached its contact is not their CANT."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
from click.testing import Result
from freezegun import freeze_time
from sqlalchemy import Engine, select

from phonetree import tasks
from phonetree.db import session_scope
from phonetree.gateways.twilio import TwilioGateway
from phonetree.models import Event, Group, Member, Message, Task
from schedules.engine import tick
from tests.test_delivery import wired  # noqa: F401 - the fixture: the stand-in, our webhooks, the gateway
from tests.twilio_standin import TwilioStandIn

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
Wired = tuple[TwilioStandIn, TwilioGateway]
_keys = itertools.count()


def _people(engine: Engine) -> dict[str, Member]:
    with session_scope(engine) as session:
        return {m.name: m for m in session.scalars(select(Member))}


def _add_tasks(engine: Engine, holder: str, asks: list[tuple[str, datetime]]) -> list[int]:
    """Open escalation tasks held by `holder`, one per (subject, asked_at), inserted in order."""
    people = _people(engine)
    with session_scope(engine) as session:
        group_id = session.scalar(select(Group.id))
        rows = [Task(kind="escalation", group_id=group_id, assignee_id=people[holder].id,
                     subject_id=people[subject].id, dedupe_key=f"test:{next(_keys)}", state="asked",
                     asked_at=asked_at) for subject, asked_at in asks]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _open_for(engine: Engine, holder: str) -> list[int]:
    people = _people(engine)
    with session_scope(engine) as session:
        return [t.id for t in tasks.open_tasks_for(session, [people[holder].id])]


def test_most_recently_asked_first_whatever_the_row_order(oakfield: str, engine: Engine) -> None:
    # The clock can be set back between two asks (issue 11: clock jumps): the task asked later
    # in time comes first even though its row is older.
    first, second = _add_tasks(engine, "Jo", [("Vera", T0 + timedelta(minutes=10)), ("Sam", T0)])
    assert _open_for(engine, "Jo") == [first, second]


def test_asked_at_the_same_moment_the_newer_row_first(oakfield: str, engine: Engine) -> None:
    # One tick asks Jo about two people at once: "the newest" is the one written last.
    ids = _add_tasks(engine, "Jo", [("Vera", T0), ("Sam", T0), ("Margaret", T0)])
    assert _open_for(engine, "Jo") == list(reversed(ids))


def test_only_open_tasks_of_the_members_asked_about(oakfield: str, engine: Engine) -> None:
    mine = _add_tasks(engine, "Jo", [("Vera", T0)])
    _add_tasks(engine, "Sam", [("Vera", T0 + timedelta(minutes=1))])
    [closed] = _add_tasks(engine, "Jo", [("Sam", T0 + timedelta(minutes=2))])
    with session_scope(engine) as session:
        task = session.get(Task, closed)
        assert task is not None
        task.state = "done"
    assert _open_for(engine, "Jo") == mine


ROTA_PHONES = {"Ann": "07911 200001", "Ben": "07911 200002"}


def _two_peer_rota(ok: Callable[..., Result]) -> None:
    with freeze_time("2026-11-30 12:00:00"):
        ok("group", "add", "Dales", "--timezone", "Europe/London")
        ok("member", "add", "Dales", "Org", "--phone", "07911 200099", "--role", "organiser")
        for name, phone in ROTA_PHONES.items():
            ok("member", "add", "Dales", name, "--phone", phone)
        ok("rota", "add", "Dales", "weekly", "--kind", "pairs", "--on", "tue", "--at", "18:00",
           "--members", "Ann,Ben")


def test_a_rota_callers_done_is_recorded_as_the_call_made(ok: Callable[..., Result], engine: Engine,
                                                          ticker: Callable[[datetime], object]) -> None:
    # `tasks.done` routes a call prompt's DONE to the rota (rotas.call_done): the task is done
    # and the call is recorded, who rang whom (a recorded transition, ARCHITECTURE "state
    # changes are rows"), not treated as an escalation's DONE.
    _two_peer_rota(ok)
    ticker(datetime(2026, 12, 1, 18, 0, tzinfo=timezone.utc))
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.kind == "call_prompt")).all()
        caller, callee = task.assignee.name, task.subject.name  # type: ignore[union-attr]
    with freeze_time("2026-12-01 19:00:00"):
        ok("receive", "--from", ROTA_PHONES[caller], "done")
    with session_scope(engine) as session:
        assert session.get(Task, task.id).state == "done"  # type: ignore[union-attr]
        made = session.scalars(select(Event).where(Event.kind == "call_done")).all()
        assert [(e.member_id, e.detail) for e in made] == [(task.subject_id, f"{caller} rang {callee}")]


def _jo_asked_about_vera(ok: Callable[..., Result], ticker: Callable[[datetime], object]) -> None:
    """Vera's 09:00 check-in goes unanswered; at 09:30 Jo, first of Jo then Sam, is asked."""
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m")
    ticker(datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc))
    ticker(datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc))


def _holders(engine: Engine) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return [(t.assignee.name, t.state) for t in session.scalars(
            select(Task).where(Task.kind == "escalation").order_by(Task.id))]


def _events(engine: Engine, *kinds: str) -> list[tuple[str, str | None]]:
    with session_scope(engine) as session:
        return [(e.kind, e.detail) for e in session.scalars(
            select(Event).where(Event.kind.in_(kinds)).order_by(Event.id))]


@pytest.mark.parametrize(("why", "said"), [("unreachable", "unreachable"), ("no_answer", "no answer")])
def test_an_ask_that_never_reached_the_contact_passes_on_and_is_not_cant(
        oakfield: str, ok: Callable[..., Result], engine: Engine, ticker: Callable[[datetime], object],
        why: str, said: str) -> None:
    # tasks.unreachable: "Not their answer, so never recorded as CANT; the task moves on at once."
    _jo_asked_about_vera(ok, ticker)
    assert _holders(engine) == [("Jo", "asked")]
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.kind == "escalation")).all()
        tasks.unreachable(session, task, T0 + timedelta(minutes=3), why)
    assert _holders(engine) == [("Jo", why), ("Sam", "asked")]
    assert _events(engine, "contact_cant") == []
    assert _events(engine, "contact_unreachable") == [("contact_unreachable", f"Jo ({said})")]


def test_unreachable_is_the_default_reason(oakfield: str, ok: Callable[..., Result], engine: Engine,
                                           ticker: Callable[[datetime], object]) -> None:
    _jo_asked_about_vera(ok, ticker)
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.kind == "escalation")).all()
        tasks.unreachable(session, task, T0 + timedelta(minutes=3))
    assert _holders(engine) == [("Jo", "unreachable"), ("Sam", "asked")]


def test_cant_is_the_contacts_own_word_and_passes_on(oakfield: str, ok: Callable[..., Result], engine: Engine,
                                                     ticker: Callable[[datetime], object]) -> None:
    _jo_asked_about_vera(ok, ticker)
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.kind == "escalation")).all()
        tasks.cant(session, task, T0 + timedelta(minutes=3))
    assert _holders(engine) == [("Jo", "cant"), ("Sam", "asked")]
    assert _events(engine, "contact_cant") == [("contact_cant", "Jo")]
    assert _events(engine, "contact_unreachable") == []


def test_a_cascade_branch_cant_is_recorded_as_cant_and_its_people_passed_up(
        ok: Callable[..., Result], engine: Engine) -> None:
    # `tasks.cant` routes a cascade branch's CANT to cascades.on_not_done with the reason:
    # the task is "cant" (not "expired") and the repair says the branch couldn't.
    phones = {"Org": "07911 100401", "Ann": "07911 100402", "Ben": "07911 100403",
              "Cath": "07911 100404", "Dev": "07911 100405"}
    with freeze_time("2026-12-01 09:00:00"):
        ok("group", "add", "Vale", "--timezone", "Europe/London")
        for name, phone in phones.items():
            ok("member", "add", "Vale", name, "--phone", phone, *(("--role", "organiser") if name == "Org" else ()))
        ok("cascade", "tree", "Vale", "--branching", "2")
    with freeze_time("2026-12-01 10:00:00"):
        ok("cascade", "start", "Vale", "Thursday's meeting has moved to Friday")
    with session_scope(engine) as session:
        branch = session.scalars(select(Task).where(Task.kind == "cascade").order_by(Task.id)).first()
        assert branch is not None
        holder = branch.assignee.name
    with freeze_time("2026-12-01 10:20:00"):
        ok("receive", "--from", phones[holder], "cant today")
    with session_scope(engine) as session:
        assert session.get(Task, branch.id).state == "cant"  # type: ignore[union-attr]
        repaired = session.scalars(select(Event.detail).where(Event.kind == "cascade_repaired")).all()
    assert len(repaired) == 1 and repaired[0].endswith("passed up from a branch that couldn't")


def _ask_state(engine: Engine, state: str) -> None:
    """Put Jo's ask message in `state`, as a provider outage or a slow send would leave it."""
    with session_scope(engine) as session:
        [task] = session.scalars(select(Task).where(Task.kind == "escalation")).all()
        [ask] = session.scalars(select(Message).where(Message.task_id == task.id)).all()
        assert ask.dedupe_key.endswith(":ask")
        ask.state = state


def _expire(engine: Engine, at: datetime) -> int:
    with session_scope(engine) as session:
        return tasks.expire_overdue(session, at)


def test_an_ask_not_yet_sent_does_not_run_out_of_time(oakfield: str, ok: Callable[..., Result], engine: Engine,
                                                      ticker: Callable[[datetime], object]) -> None:
    # expire_overdue: "An ask still waiting to go out hasn't started its clock." Jo's 20 minutes
    # are up at 09:50, but while the ask is queued or being sent, Jo's task stays with Jo.
    _jo_asked_about_vera(ok, ticker)
    up = T0 + timedelta(minutes=20)
    for state in ("queued", "sending"):
        _ask_state(engine, state)
        assert _expire(engine, up) == 0
        assert _holders(engine) == [("Jo", "asked")]
    _ask_state(engine, "sent")  # it left: the wait counts now
    assert _expire(engine, up - timedelta(seconds=1)) == 0
    assert _expire(engine, up) == 1
    assert _holders(engine) == [("Jo", "expired"), ("Sam", "asked")]


def test_a_contact_whose_phone_is_off_does_not_hold_up_the_chain(oakfield: str, ok: Callable[..., Result],
                                                                   engine: Engine, wired: Wired) -> None:
    # The ask to Jo left at 09:30, so Jo's 20 minutes run from then (README: each named contact
    # in turn, --escalation-wait each). At 09:45 Twilio reports Jo's phone off (30003): one more
    # try is queued for 09:55, but that retry is not a new ask, and Jo can't see the first, so
    # at 09:50 the chain moves on to Sam (expire_overdue_6 kept Jo holding it until the retry left).
    standin, gateway = wired
    with freeze_time("2026-11-30 12:00:00"):
        ok("checkin", "add", "Oakfield", "Vera", "--at", "09:00", "--window", "30m",
           "--escalate-to", "Jo,Sam", "--escalation-wait", "20m", "--reminder", "off")
    tick(engine, gateway, T0 - timedelta(minutes=30))
    tick(engine, gateway, T0)
    [ask] = [m for m in standin.messages if m.params["To"] == "+447911100002"]
    with freeze_time("2026-12-01 09:45:00"):
        assert standin.send_status(ask.sid, "undelivered", error_code=30003)[0] == 200
    tick(engine, gateway, T0 + timedelta(minutes=19))
    assert _holders(engine) == [("Jo", "asked")]
    tick(engine, gateway, T0 + timedelta(minutes=20))
    assert _holders(engine) == [("Jo", "expired"), ("Sam", "asked")]
    assert [m.params["To"] for m in standin.messages][-1] == "+447911100003"  # Sam asked at 09:50
