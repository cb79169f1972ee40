"""The retention purge: each group's own period, set-based, in chunks, never a queued message.
(Issue 14: it was one transaction over all groups, three ORM UPDATEs per group.)"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select, update

from phonetree import privacy
from phonetree.db import session_scope
from phonetree.models import Group, Inbound, Member, Message
from schedules import engine as engine_module
from tests.conftest import utc

NOW = utc(2026, 12, 1, 12, 0)


def seed(engine, group_name: str, retention_days: int, old: int, recent: int, queued_old: int = 0) -> None:
    """A group, one member, `old` messages and replies past `retention_days`, `recent` within it."""
    with session_scope(engine) as session:
        group = Group(name=group_name, timezone="Europe/London", retention_days=retention_days,
                      created_at=NOW - timedelta(days=90))
        session.add(group)
        session.flush()
        member = Member(group_id=group.id, name="Vera", phone=f"+4479111{len(group_name):05d}",
                        created_at=NOW - timedelta(days=90))
        session.add(member)
        session.flush()
        ages = [retention_days + 1] * old + [retention_days - 1] * recent
        for i, age in enumerate(ages + [retention_days + 2] * queued_old):
            at = NOW - timedelta(days=age)
            queued = i >= len(ages)
            session.add(Message(group_id=group.id, member_id=member.id, to_phone=member.phone, channel="sms",
                                kind="checkin", template="checkin", priority=3, body=f"text {i}",
                                dedupe_key=f"{group_name}:{i}", state="queued" if queued else "sent",
                                created_at=at, not_before=at, attempts=0))
            if not queued:
                session.add(Inbound(provider_sid=f"SM{group_name}{i}", member_id=member.id, channel="sms",
                                    body=f"reply {i}", intent="ok", received_at=at))


def kept(engine, group_name: str) -> tuple[int, int]:
    with session_scope(engine) as session:
        gid = session.scalar(select(Group.id).where(Group.name == group_name))
        messages = session.scalar(select(func.count()).select_from(Message)
                                  .where(Message.group_id == gid, Message.body.is_not(None)))
        replies = session.scalar(select(func.count()).select_from(Inbound).join(Member)
                                 .where(Member.group_id == gid, Inbound.body.is_not(None)))
    return messages, replies


def test_each_group_keeps_text_for_its_own_period_and_queued_messages_are_never_blanked(engine):
    seed(engine, "Month", 30, old=3, recent=2, queued_old=1)
    seed(engine, "Week", 7, old=4, recent=1)
    with session_scope(engine) as session:
        assert privacy.purge_bodies(session, NOW) == 3 * 2 + 4 * 2
    assert kept(engine, "Month") == (2 + 1, 2)  # the queued one keeps its words until it is sent
    assert kept(engine, "Week") == (1, 1)
    with session_scope(engine) as session:
        assert privacy.purge_bodies(session, NOW) == 0  # nothing twice


def test_a_limited_purge_blanks_at_most_that_many_rows_of_each_kind(engine):
    seed(engine, "Month", 30, old=5, recent=0)
    with session_scope(engine) as session:
        assert privacy.purge_bodies(session, NOW, limit=2) == 2 + 2
    assert kept(engine, "Month") == (3, 3)


def test_a_purge_with_a_total_blanks_at_most_that_many_rows_in_all(engine):
    """The tick's steps (schedules.engine, phonetree.paced) ask for a number of rows in all;
    fewer than that blanked means nothing old is left."""
    seed(engine, "Month", 30, old=5, recent=1)
    seed(engine, "Week", 7, old=3, recent=0)
    with session_scope(engine) as session:
        assert privacy.purge_bodies(session, NOW, total=7) == 7
    assert sum(kept(engine, "Month")) + sum(kept(engine, "Week")) == 2 * 5 + 2 + 2 * 3 - 7
    with session_scope(engine) as session:
        assert privacy.purge_bodies(session, NOW, total=20) == 2 * 5 + 2 * 3 - 7  # the rest: < 20
    assert kept(engine, "Month") == (1, 1) and kept(engine, "Week") == (0, 0)


def test_the_tick_purges_in_chunks_until_nothing_old_is_left(engine, monkeypatch):
    seed(engine, "Month", 30, old=7, recent=1)
    seed(engine, "Week", 7, old=5, recent=2)
    monkeypatch.setattr(privacy, "PURGE_CHUNK", 3)
    monkeypatch.setattr(engine_module, "_last_purge", None)
    calls: list[int] = []
    real = privacy.purge_bodies

    def counting(session, now, limit=None, total=None):  # type: ignore[no-untyped-def]
        calls.append(limit if total is None else total)  # the tick asks for a total (phonetree.paced)
        return real(session, now, limit, total)

    monkeypatch.setattr(privacy, "purge_bodies", counting)
    engine_module.step(engine, NOW)
    assert kept(engine, "Month") == (1, 1) and kept(engine, "Week") == (2, 2)
    assert len(calls) >= 3 and set(calls) == {3}  # several short transactions, not one long one


def test_the_purge_reads_only_rows_whose_text_is_kept(engine):
    """The planner's plan for the message purge uses the partial index (SQLite and PostgreSQL),
    so its cost follows the rows to blank, not the history."""
    seed(engine, "Month", 30, old=3, recent=0)
    with session_scope(engine) as session:
        session.execute(update(Message).values(body=None))
    query = (select(Message.id).where(Message.body.is_not(None), Message.created_at < NOW)
             .limit(10))
    with engine.connect() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            plan = " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "ix_messages_unpurged" in plan, plan


def test_each_purge_statement_finds_its_rows_through_the_partial_index_of_kept_text(engine):
    """Whose a row is (its group's period) is asked of each row found, not by an IN over every
    member: with the IN, SQLite went through ix_inbound_member_id, member by member and the rows
    already blanked included, so each chunk of the tick's purge cost more than the last (issue
    14: at 30k members x 31 days it fell to a few rows a second)."""
    seed(engine, "Month", 30, old=3, recent=1)
    seed(engine, "Week", 7, old=2, recent=1)  # two periods in use
    statements: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE messages") or statement.startswith("UPDATE inbound"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with session_scope(engine) as session:
            assert privacy.purge_bodies(session, NOW, total=100) == 2 * 3 + 2 * 2
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) == 4  # messages and replies, for each period
    if engine.dialect.name != "sqlite":
        return  # PostgreSQL's plan follows its statistics (bench/bench_stalls.py measures it)
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = " ".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
            table = statement.split()[1]
            assert f"ix_{table}_unpurged" in plan and "member_id" not in plan, plan
