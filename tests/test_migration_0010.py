"""Migration 0010 fills the new columns from the dedupe keys that used to carry their meaning:
a database with old-style rows (written at 0009) upgrades to rows whose columns say it."""
from __future__ import annotations

from datetime import datetime, timezone

from alembic import command
from sqlalchemy import Engine, column, inspect, select, table
from sqlalchemy.types import DateTime, Integer, String

from phonetree.db import alembic_config, get_engine, session_scope, upgrade
from phonetree.models import CheckIn, Group, Member, Message, Task

AT = datetime(2026, 12, 1, 9, 0)  # naive UTC, as the columns store it


def _at(engine: Engine, revision: str, how: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, how)(config, revision)


# The two tables as they were at 0009: only the columns an old row had.
_tasks = table("tasks", *(column(c, Integer) for c in ("id", "group_id", "assignee_id", "subject_id", "checkin_id")),
               column("kind", String), column("dedupe_key", String), column("state", String),
               column("asked_at", DateTime))
_messages = table("messages", *(column(c, Integer) for c in ("id", "group_id", "member_id", "task_id", "priority",
                                                              "attempts")),
                  *(column(c, String) for c in ("to_phone", "channel", "kind", "template", "dedupe_key", "state")),
                  column("created_at", DateTime), column("not_before", DateTime))


def test_0010_fills_the_columns_from_old_keys(db_url: str) -> None:
    engine = get_engine(db_url)
    with session_scope(engine) as session:
        group = Group(name="Oakfield", timezone="Europe/London", created_at=AT.replace(tzinfo=timezone.utc))
        session.add(group)
        session.flush()
        vera, jo, org = (Member(group_id=group.id, name=n, phone=p, created_at=AT.replace(tzinfo=timezone.utc))
                         for n, p in (("Vera", "+447911100001"), ("Jo", "+447911100002"),
                                      ("Margaret", "+447911100004")))
        session.add_all([vera, jo, org])
        session.flush()
        checkin = CheckIn(group_id=group.id, member_id=vera.id, occurrence="2026-12-01",
                          due_at=AT.replace(tzinfo=timezone.utc), state="alerted", window_s=1800,
                          escalation_wait_s=1200)
        session.add(checkin)
        session.flush()
        ids = {"g": group.id, "vera": vera.id, "jo": jo.id, "org": org.id, "c": checkin.id}
    _at(engine, "0009", "downgrade")
    assert "purpose" not in {c["name"] for c in inspect(engine).get_columns("messages")}

    tasks = {  # id: (kind, key)
        1: ("alert", f"checkin:{ids['c']}:alert:{ids['org']}"),
        2: ("alert", f"checkin:{ids['c']}:alert:{ids['org']}:again"),
        3: ("alert", f"checkin:{ids['c']}:alert:{ids['org']}:again:again"),
        4: ("escalation", f"checkin:{ids['c']}:ask:0"),
        5: ("call_prompt", f"rota:7:call:{ids['jo']}:{ids['vera']}"),
        6: ("call_prompt", f"rota:7:backup:{ids['org']}:{ids['vera']}"),
        7: ("call_prompt", f"rota:7:organiser:{ids['org']}:{ids['vera']}"),
        8: ("cascade", "cascade:3:news:5:9"),
    }
    messages = {  # id: (to, task, key)
        1: (ids["org"], 1, "task:1:ask"),
        2: (ids["org"], 1, "task:1:ask:later"),
        3: (ids["vera"], None, f"checkin:{ids['c']}:prompt:redial"),
        4: (ids["vera"], None, f"checkin:{ids['c']}:prompt:redial:later"),
        5: (ids["org"], None, f"inbound:{ids['vera']}:2026-12-01T09:05:00+00:00:{ids['org']}"),
        6: (ids["org"], None, f"member:{ids['vera']}:pause:2026-12-01T09:05:00+00:00:{ids['org']}"),
        7: (ids["vera"], None, f"checkin:{ids['c']}:prompt"),
        8: (ids["jo"], 4, "task:4:cant"),
    }
    with engine.begin() as connection:
        connection.execute(_tasks.insert(), [
            {"id": tid, "group_id": ids["g"], "assignee_id": ids["org"], "subject_id": ids["vera"],
             "checkin_id": ids["c"], "kind": kind, "dedupe_key": key, "state": "asked", "asked_at": AT}
            for tid, (kind, key) in tasks.items()])
        connection.execute(_messages.insert(), [
            {"id": mid, "group_id": ids["g"], "member_id": to, "task_id": task, "priority": 0, "attempts": 0,
             "to_phone": "+447911100004", "channel": "sms", "kind": "alert", "template": "alert",
             "dedupe_key": key, "state": "queued", "created_at": AT, "not_before": AT}
            for mid, (to, task, key) in messages.items()])

    upgrade(engine)

    with session_scope(engine) as session:
        got_tasks = {t.id: (t.repetition, t.call_role) for t in session.scalars(select(Task))}
        got_messages = {m.id: (m.purpose, m.about_member_id) for m in session.scalars(select(Message))}
        keys = {m.id: m.dedupe_key for m in session.scalars(select(Message))}
    assert got_tasks == {1: (0, None), 2: (1, None), 3: (2, None), 4: (0, None),
                         5: (0, "paired"), 6: (0, "backup"), 7: (0, "organiser"), 8: (0, None)}
    assert got_messages == {1: ("ask", None), 2: ("later", None), 3: ("redial", None), 4: ("later", None),
                            5: (None, ids["vera"]), 6: (None, ids["vera"]), 7: (None, None), 8: (None, None)}
    assert keys == {mid: key for mid, (_, _, key) in messages.items()}  # the keys themselves are untouched
    assert "ix_messages_task_ask" in {i["name"] for i in inspect(engine).get_indexes("messages")}


def test_0010_downgrades_and_upgrades_again(db_url: str) -> None:
    engine = get_engine(db_url)
    _at(engine, "0009", "downgrade")
    names = {c["name"] for c in inspect(engine).get_columns("tasks")}
    assert "repetition" not in names and "call_role" not in names
    upgrade(engine)
    names = {c["name"] for c in inspect(engine).get_columns("tasks")}
    assert {"repetition", "call_role"} <= names
