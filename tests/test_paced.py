"""The morning slot's prompts and the retention purge in time-bounded transactions (issue 14):
each transaction stops once its time budget is spent, however many rows that is; nothing is
left unprompted or unpurged across transactions; a crash between two loses nothing. Time is
freezegun's: each row "takes" a fixed time on the frozen clock, so the chunk sizes follow from
it whatever the machine's speed (the real timings are bench/bench_stalls.py's)."""
from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Iterator

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, event, func, select

from phonetree import checkins, paced, privacy
from phonetree.db import session_scope
from phonetree.models import CheckIn, Group, Inbound, Member, Message
from schedules import engine as engine_module
from tests.conftest import utc

NOW = utc(2026, 6, 15, 9, 0)
PER_ROW = 0.0032  # frozen seconds a row takes (a whole number of microseconds): 31 fit in 0.1 s
FIT = int(paced.BUDGET_S / PER_ROW)


def seed_slot(engine: Engine, members: int) -> None:
    """`members` members in groups of 10 (UTC, no quiet hours), each with a check-in due now."""
    with session_scope(engine) as session:
        for g in range(members // 10):
            group = Group(name=f"g{g}", timezone="UTC", quiet_start="00:00", quiet_end="00:00",
                          created_at=NOW - timedelta(days=60))
            session.add(group)
            session.flush()
            for k in range(10):
                i = g * 10 + k
                member = Member(group_id=group.id, name=f"m{i}", phone=f"+4479111{i:05d}",
                                created_at=NOW - timedelta(days=60))
                session.add(member)
                session.flush()
                session.add(CheckIn(group_id=group.id, member_id=member.id, occurrence=NOW.date().isoformat(),
                                    due_at=NOW - timedelta(minutes=1), state="scheduled", window_s=1800,
                                    reminder_s=900, escalation_wait_s=1200, escalation_step=-1))


def seed_old_text(engine: Engine, rows: int) -> None:
    """One group keeping text 30 days, `rows` messages and `rows` replies 31 days old."""
    with session_scope(engine) as session:
        group = Group(name="Month", timezone="UTC", retention_days=30, created_at=NOW - timedelta(days=90))
        session.add(group)
        session.flush()
        member = Member(group_id=group.id, name="Vera", phone="+447911100001", created_at=NOW - timedelta(days=90))
        session.add(member)
        session.flush()
        at = NOW - timedelta(days=31)
        for i in range(rows):
            session.add(Message(group_id=group.id, member_id=member.id, to_phone=member.phone, channel="sms",
                                kind="checkin", template="checkin", priority=3, body=f"text {i}",
                                dedupe_key=f"old:{i}", state="sent", created_at=at, not_before=at, attempts=1))
            session.add(Inbound(provider_sid=f"SM{i}", member_id=member.id, channel="sms", body=f"reply {i}",
                                intent="ok", received_at=at))


class Commits:
    """The frozen clock and a running count at each COMMIT of the engine's transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.rows, self.at = engine, 0, [(time.monotonic(), 0)]
        event.listen(engine, "commit", self._commit)

    def _commit(self, _conn: Any) -> None:
        if self.rows != self.at[-1][1]:  # a transaction of the job's (not a read's)
            self.at.append((time.monotonic(), self.rows))

    def per_transaction(self) -> list[int]:
        return [b - a for (_, a), (_, b) in zip(self.at, self.at[1:])]

    def close(self) -> None:
        event.remove(self.engine, "commit", self._commit)


@pytest.fixture
def frozen() -> Iterator[Any]:
    with freeze_time(NOW) as clock:
        yield clock


def slow_start_due(monkeypatch: pytest.MonkeyPatch, frozen: Any, commits: Commits,
                   crash_on_call: int | None = None) -> list[int]:
    """checkins.start_due as it is, each check-in it claims taking PER_ROW on the frozen clock."""
    real, limits = checkins.start_due, []

    def slow(session: Any, now: Any, limit: int = checkins.BATCH) -> dict[str, int]:
        limits.append(limit)
        if crash_on_call is not None and len(limits) == crash_on_call:
            raise RuntimeError("the process died here")
        counts = real(session, now, limit)
        frozen.tick(PER_ROW * counts["claimed"])
        commits.rows += counts["claimed"]
        return counts

    monkeypatch.setattr(checkins, "start_due", slow)
    return limits


def prompt_messages(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return list(session.scalars(select(Message.dedupe_key).where(Message.template == "checkin")))


def states(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        return dict(session.execute(select(CheckIn.state, func.count()).group_by(CheckIn.state)).all())  # type: ignore[arg-type]


def test_the_slot_commits_each_time_its_budget_is_spent_and_prompts_everyone_once(engine, frozen, monkeypatch):
    seed_slot(engine, 200)
    commits = Commits(engine)
    slow_start_due(monkeypatch, frozen, commits)
    monkeypatch.setattr(engine_module, "_last_purge", NOW)  # the step is the slot alone
    report = engine_module.step(engine, NOW)
    commits.close()
    assert report.prompted == 200
    sizes = commits.per_transaction()
    # The first step's size is a guess (paced.FIRST); after it, each transaction holds what fits
    # in the budget at the rows' measured speed (31 of them), not a 500-row chunk.
    assert sizes == [paced.FIRST] + [FIT] * 4 + [26], sizes
    took = [b - a for (a, _), (b, _) in zip(commits.at[1:], commits.at[2:])]
    assert max(took) <= paced.BUDGET_S + 1e-9, took  # on the frozen clock (the gaps don't move it)
    keys = prompt_messages(engine)
    assert len(keys) == len(set(keys)) == 200 and states(engine) == {"prompting": 200}


def test_a_crash_between_transactions_loses_nothing_and_the_next_step_prompts_the_rest(engine, frozen,
                                                                                       monkeypatch):
    seed_slot(engine, 200)
    commits = Commits(engine)
    slow_start_due(monkeypatch, frozen, commits, crash_on_call=4)
    monkeypatch.setattr(engine_module, "_last_purge", NOW)
    with pytest.raises(RuntimeError, match="died"):
        engine_module.step(engine, NOW)
    committed = sum(commits.per_transaction())
    assert committed == paced.FIRST + 2 * FIT  # the three transactions before the crash
    # What committed is whole (a prompt for each check-in claimed); the crashed one left nothing.
    assert states(engine) == {"prompting": committed, "scheduled": 200 - committed}
    assert len(prompt_messages(engine)) == committed
    monkeypatch.setattr(checkins, "start_due", _real_start_due)
    assert engine_module.step(engine, NOW).prompted == 200 - committed
    commits.close()
    keys = prompt_messages(engine)
    assert len(keys) == len(set(keys)) == 200 and states(engine) == {"prompting": 200}


_real_start_due = checkins.start_due


def test_the_sender_is_woken_after_the_first_prompts_commit_not_at_the_end_of_the_slot(engine, frozen,
                                                                                        monkeypatch):
    seed_slot(engine, 100)
    commits = Commits(engine)
    slow_start_due(monkeypatch, frozen, commits)
    monkeypatch.setattr(engine_module, "_last_purge", NOW)
    woken: list[int] = []
    report = engine_module.step(engine, NOW, queued=lambda: woken.append(len(prompt_messages(engine))))
    commits.close()
    assert report.prompted == 100
    # Once, as soon as the first transaction's prompts were there to send, while the rest of the
    # slot was still to be written.
    assert woken == [paced.FIRST]


def test_the_purge_commits_each_time_its_budget_is_spent_and_blanks_everything_old(engine, frozen, monkeypatch):
    seed_old_text(engine, 60)
    commits = Commits(engine)
    real = privacy.purge_bodies

    def slow(session: Any, now: Any, limit: int | None = None, total: int | None = None) -> int:
        blanked = real(session, now, limit, total)
        frozen.tick(PER_ROW * blanked)
        commits.rows += blanked
        return blanked

    monkeypatch.setattr(privacy, "purge_bodies", slow)
    monkeypatch.setattr(engine_module, "_last_purge", None)
    engine_module.step(engine, NOW)
    commits.close()
    sizes = commits.per_transaction()
    # The first step's 50 rows (all messages), then what fits in the budget, 31 rows, however
    # they fall between the tables; nothing old is left.
    assert sizes == [paced.FIRST] + [FIT] * 2 + [8], sizes
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Message).where(Message.body.is_not(None))) == 0
        assert session.scalar(select(func.count()).select_from(Inbound).where(Inbound.body.is_not(None))) == 0
    assert not privacy.anything_to_purge(engine, NOW)


def test_a_step_stops_early_within_a_transaction_once_the_budget_is_spent(engine, frozen):
    """paced.run on its own: steps sized from the measured time per row fill one transaction up
    to the budget, then it commits; a step that finds fewer rows than asked for ends the job."""
    left = [95]
    calls: list[int] = []

    def step(_session: Any, limit: int) -> tuple[int, bool]:
        calls.append(limit)
        done = min(limit, left[0])
        left[0] -= done
        frozen.tick(done / 64)  # a whole number of microseconds
        return done, done < limit

    result = paced.run(engine, step, most=1000, budget_s=0.5, first=8)
    # 8 rows took 0.125 s: three more steps of 8 fill the first transaction's 0.5 s. Then 32 a
    # transaction, until a step finds 31 of the 32 asked for.
    assert calls == [8, 8, 8, 8, 32, 32]
    assert result.per_transaction == [32, 32, 31] and result.rows == 95 and left == [0]


def test_steps_whose_statements_cost_more_than_the_budget_are_not_sized_down_to_a_few_rows(engine, frozen):
    """A step's own cost (its statements', whatever its rows) is not the rows': sizing steps by
    time per row alone shrank them without end behind a slow statement, to a row a step."""
    left = [200]
    calls: list[int] = []

    def step(_session: Any, limit: int) -> tuple[int, bool]:
        calls.append(limit)
        done = min(limit, left[0])
        left[0] -= done
        frozen.tick(0.3 + PER_ROW * done)  # 0.3 s however few rows
        return done, done < limit

    result = paced.run(engine, step, most=1000)
    assert calls[0] == paced.FIRST and min(calls) == paced.LEAST, calls
    assert result.rows == 200 and result.transactions == len(calls) <= 1 + (200 - paced.FIRST) // paced.LEAST + 1
