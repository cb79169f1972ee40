"""A unit of work that starts bare and grows an ORM Session only if something needs one.

Why: the commonest request of all, a member's OK to a check-in nobody has been asked about yet,
is five prepared statements (phonetree.prepared). Run inside an ORM Session they cost about twice
as much as the statements themselves: the Session's begin, its connection bookkeeping and its
commit (issue 15, measured). So a webhook's work starts as a bare transaction on a pooled DBAPI
connection, and the Session is made, in the same transaction, on the first `work.session`:
a reply that needs the ORM (a HELP, a late OK that stands someone down) has it, one that does
not never pays for it. Either way it is one transaction, committed or rolled back as one.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from phonetree.db import writer_lock
from phonetree.prepared import Transaction, begin, finish


class Work:
    """What the code of one unit of work runs on: `connection()` for prepared statements and
    Core, `session` for the ORM (made on first use). `Work.of(session)` wraps a Session that is
    already open (the command line, tests), so the same code runs under either."""

    def __init__(self, engine: Engine, bare: Transaction | None, session: Session | None = None) -> None:
        self._engine = engine
        self._bare = bare
        self._core: Connection | None = None  # the SQLAlchemy Connection a grown Session is bound to
        self._session = session

    @classmethod
    def of(cls, session: Session) -> "Work":
        return cls(session.get_bind().engine, None, session)

    def connection(self) -> Connection | Transaction:
        if self._bare is not None:
            return self._bare  # the same DBAPI connection a grown Session writes through
        assert self._session is not None
        return self._session.connection()

    @property
    def session(self) -> Session:
        if self._session is None:
            assert self._bare is not None
            # A Connection over the pooled DBAPI connection already in its transaction: begin()
            # issues no BEGIN of its own (db.py's SQLite hook sees the transaction open), and the
            # Session joins it without committing it (join_transaction_mode's default): the
            # commit is this unit of work's, once, for everything.
            self._core = Connection(self._engine, connection=self._bare.connection)
            self._core.begin()
            self._session = Session(bind=self._core, expire_on_commit=False)
        return self._session

    @property
    def has_session(self) -> bool:
        return self._session is not None

    @property
    def info(self) -> dict[Any, Any]:
        """The Session's `info` (what `messages.queue` notes there); empty if none was made."""
        return self._session.info if self._session is not None else {}

    def loaded(self, model: type, ident: int) -> Any:
        """The instance the Session holds for this row, if a Session was made and holds one."""
        if self._session is None:
            return None
        return self._session.identity_map.get(identity_key(model, ident))

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()

    def _commit(self) -> None:
        if self._core is not None:
            assert self._session is not None  # (made together in `session`)
            self._session.commit()  # flushes; the transaction itself is the Connection's
            self._session.close()
            self._core.commit()
        else:
            assert self._bare is not None
            finish(self._bare, commit=True)

    def _rollback(self) -> None:
        if self._core is not None:
            if self._session is not None:
                self._session.close()
            self._core.rollback()
        else:
            assert self._bare is not None
            finish(self._bare, commit=False)

    def _close(self) -> None:
        # The grown Connection owns the pooled connection from then on: closing it returns it.
        if self._core is not None:
            self._core.close()
        else:
            assert self._bare is not None
            self._bare.connection.close()


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Work]:
    """One write transaction: commit on success, roll back on any error. It takes the same
    writer lock and, on SQLite, the same BEGIN IMMEDIATE as `db.session_scope`."""
    with writer_lock(engine):
        dbapi = engine.raw_connection()
        try:
            bare = begin(engine, dbapi)
        except BaseException:
            dbapi.rollback()
            dbapi.close()
            raise
        work = Work(engine, bare)
        try:
            yield work
            work._commit()
        except BaseException:
            work._rollback()
            raise
        finally:
            work._close()
