"""PostgreSQL connections are pinged before use only after sitting idle (db.IDLE_PING_SECONDS),
not on every checkout (issue 14: a ping was one round trip in seven of a webhook's OK); an idle
connection the server has closed is replaced without the caller seeing an error."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from phonetree import db
from phonetree.work import unit_of_work


def _select_one(engine) -> int:
    with unit_of_work(engine) as work:
        cursor = work.connection().connection.cursor()
        cursor.execute("SELECT 1")
        (value,) = cursor.fetchone()
        cursor.close()
    return value


@pytest.fixture
def pg_engine(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL pools ping")
    return db.get_engine(db_url)


def test_a_connection_in_steady_use_is_not_pinged(pg_engine, monkeypatch):
    pings: list[int] = []
    real = pg_engine.dialect.do_ping
    monkeypatch.setattr(pg_engine.dialect, "do_ping", lambda conn: pings.append(1) or real(conn))
    for _ in range(20):
        assert _select_one(pg_engine) == 1
    assert pings == []


def test_an_idle_connection_the_server_closed_is_replaced_unseen(pg_engine, db_url, monkeypatch):
    assert _select_one(pg_engine) == 1  # one connection, now idle in the pool
    admin = create_engine(db.normalise_url(db_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the server closes every other connection to this database
        killed = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert killed >= 1
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # as if it had sat idle past the limit
    assert _select_one(pg_engine) == 1
